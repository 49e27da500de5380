/* What the builds of our inference kernels share (private to kernels/): the
 * kernels' state, made by their create (wino.c, stem.c, head.c) whatever
 * the target, and the table of one target's compute functions (an
 * own_impl), which a file per target fills from the one source
 * (kernels/<kernel>_simd.h, built by kernels/isa_avx512.c and isa_avx2.c). */
#ifndef SLIM_KERNELS_OWN_IMPL_H
#define SLIM_KERNELS_OWN_IMPL_H

#include "kernels/own.h"

struct head_kernel {
    head_desc d; /* its pointers NULL, but impl */
    float *wt;   /* c x round16(k): the dense weights, transposed, zero beyond k */
    float *bias; /* round16(k), zero beyond k */
};

/* The longest run of pixels a stem build computes at once: its padded
 * copy of the input holds that many floats past each row. */
#define STEM_RUN_MAX 8

struct stem_conv {
    stem_desc d;    /* its pointers NULL, but impl */
    float *wt;      /* cin x 9 taps x round16(cout), zero beyond cout */
    float *bias;    /* round16(cout), zero beyond cout */
    float *biasmap; /* NULL or (round16(cout) / 16, h, w, 16), zero beyond cout */
};

/* The stem's zero-bordered copy of one image: cin planes of (h + 2) rows
 * of w + 2 + STEM_RUN_MAX floats (a run may read past the row's end; what
 * it computes there is not stored). */
static inline size_t stem_pad_row(const stem_conv *c) { return (size_t)c->d.w + 2 + STEM_RUN_MAX; }
static inline size_t stem_pad_plane(const stem_conv *c) {
    return (size_t)(c->d.h + 2) * stem_pad_row(c);
}

struct own_impl {
    own_isa needs;    /* of the CPU */
    const char *name; /* as the plan print-out shows it */
    int lanes;        /* floats per vector */
    /* n images x to y (head.c). */
    void (*head)(const head_kernel *hd, int n, const float *x, float *y);
    /* Output rows [first, last) of the n images' n x h rows (stem.c);
     * scratch: one thread's, stem_pad_plane x cin floats + 64 bytes. */
    void (*stem)(const stem_conv *c, const float *x, float *y, void *scratch, int first, int last);
    /* Groups of tiles [first, last) of the n images (wino.c); NULL: none
     * in this build. */
    void (*wino)(const wino_conv *c, int n, const float *x, float *y, void *scratch, int first,
                 int last);
};

/* ---- Winograd (wino.c) ---- */

struct wino_conv {
    wino_desc d;    /* its pointers NULL */
    float *u;       /* transformed weights: 36 points x cin (rounded up to even) x
                     * round16(cout), a last vector's by pairs of input channels */
    float *bias;    /* round16(cout), zero beyond cout */
    float *biasmap; /* NULL or (round16(cout) / 16, h, w, 16), zero beyond cout */
    float *inner;   /* NULL, or bias + the biasmap where that is the same at every pixel
                     * of rows and columns 1..h-2, 1..w-2 (as pruning's are): every
                     * tile's bias then, */
    float *edge;    /* and with it the biasmap minus that at the border pixels, zero
                     * elsewhere (the biasmap's layout): what a tile there adds */
};

/* With 16 lanes, groups of 8 tiles for convs of at most 32 output
 * channels, else 4. A broadcast of v serves a multiply-add per output
 * vector, and a weight vector loaded serves one per tile: with one or two
 * output vectors, 4 tiles leave the GEMM bound by loads and by its few
 * chains of dependent multiply-adds; with more vectors, 8 tiles would not
 * fit the sums in 32 registers. With 8 lanes, 6 tiles: a block's two
 * vectors for 6 tiles are 12 sums, with 2 weights and a broadcast in 16
 * registers. */
#define WINO_GROUP_MAX 8
/* Floats between the points of v beyond the group's G x round16(cin): with
 * none, the input transform's 36 stores per tile land a power of two apart
 * (1 KiB with 8 tiles of 32 channels) and share few cache sets. */
#define WINO_SKEW 16
static inline int group_size(const wino_conv *c) {
    if (c->d.impl && c->d.impl->lanes == 8) return 6;
    return round16(c->d.cout) <= 32 ? 8 : 4;
}

/* The input channels v holds in 16-channel blocks per tile: all of them
 * (rounded up to 16), or all but a last block of at most 8 real ones, which
 * v holds apart, 8 floats per tile. */
static inline int block_channels(int cin) {
    return cin % 16 != 0 && cin % 16 <= 8 ? cin / 16 * 16 : round16(cin);
}

/* Whether the last vector of output channels (16 lanes from round16(cout)
 * - 16) is "paired": in a 16-lane build, when it holds at most 8 real
 * channels, or is the only one. Its GEMM then takes input channels two at a time (see
 * gemm_step), and u holds its weights by pairs of input channels
 * (pair_slot). */
static inline int paired_last(int cout, int lanes) {
    return lanes == 16 && (round16(cout) == 16 || (cout % 16 != 0 && cout % 16 <= 8));
}
/* u: per point, per input channel (their count rounded up to even: a last
 * odd one's pair slot exists), round16(cout) floats. */
static inline int even_cin(int cin) { return cin + cin % 2; }

/* The builds: for AVX-512F/VL (16 lanes) and for AVX2 + FMA (8 lanes). */
extern const own_impl own_impl_avx512, own_impl_avx2;

#endif
