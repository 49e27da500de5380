/* The 16-channel blocked layout of our inference kernels (private).
 *
 * Activations are in oneDNN's aBcd16b: x: (n, ceil(c/16), h, w, 16), the
 * channels beyond c ("padding channels") zero where our kernels write them.
 * Two variants of a block's plane:
 * - padded planes: the h x w image stored from row 1, column 1 of a
 *   padded_size(h) x padded_size(w) plane whose other pixels are zero, so
 *   that every 6x6 input patch of a Winograd tile (4x4 outputs, from row
 *   and column -1) lies inside it and no border tile needs a zero-padded
 *   copy. Our convs read (wino) and write (wino, stem) them; the zeros are
 *   the caller's (written once).
 * - a narrow block: a last block of at most 8 real channels stored 8 floats
 *   per pixel in the first half of its padded plane (between our stem and
 *   our Winograd: their 8 lanes are all either reads or writes, and half
 *   the cache lines).
 */
#ifndef SLIM_KERNELS_BLOCKED_H
#define SLIM_KERNELS_BLOCKED_H

#include <stddef.h>

/* c rounded up to a whole number of 16-channel blocks. */
static inline int round16(int c) { return (c + 15) / 16 * 16; }

/* Rows (or columns) of a padded plane for an image of n rows (columns). */
int padded_size(int n);

/* Where an h x w image's pixels lie in one 16-channel block of its buffer:
 * `plane` floats per block, `stride` floats from row to row, pixel (0, 0)
 * at `origin`, `step` floats from pixel to pixel (16, or 8 when narrow). */
typedef struct block_planes {
    size_t plane, stride, origin, step;
} block_planes;
block_planes planes_of(int h, int w, int padded);
/* The same block made narrow (stride, origin and step halved). */
block_planes planes_narrow(block_planes p);

/* n floats, zeroed, 64-byte aligned (free with free); NULL when out of
 * memory. */
float *floats64(size_t n);
/* bias (cout) or NULL (zeros) to *bias16 (round16(cout) floats) and biasmap
 * (cout, h, w) or NULL to *biasmap16 ((round16(cout) / 16, h, w, 16), or
 * NULL), both zero beyond cout. 0 when out of memory (both NULL then). */
int blocked_bias_init(int cout, int h, int w, const float *bias, const float *biasmap,
                      float **bias16, float **biasmap16);

/* The channel concatenation of k blocked inputs (unpadded planes of hw
 * pixels, src[i] with cin[i] channels) into dst, n images, cout = the sum of
 * cin: input i's channels at offset cin[0] + ... + cin[i - 1], lanes
 * shifted where that offset is not a multiple of 16; dst's padding
 * channels zero. One thread: it moves memory, and the runtime runs tiles
 * of the batch in parallel. */
void blocked_concat(int n, size_t hw, int k, const float *const *src, const int *cin, float *dst);

#endif
