/* What our inference kernels (wino.c, stem.c, head.c) share: the layout of padded planes and of a
 * block's pixels (planes_of), and their bias and biasmap in the 16-channel blocks their outputs are
 * in, zero beyond the real channels, so that the padding channels they write stay zero. */
#include "kernels/blocked.h"

#include <stdlib.h>
#include <string.h>

int padded_size(int n) { return (n + 3) / 4 * 4 + 2; }

block_planes planes_of(int h, int w, int padded) {
    size_t rows = (size_t)(padded ? padded_size(h) : h);
    size_t stride = (size_t)(padded ? padded_size(w) : w) * 16;
    return (block_planes){rows * stride, stride, padded ? stride + 16 : 0, 16};
}

block_planes planes_narrow(block_planes p) {
    return (block_planes){p.plane, p.stride / 2, p.origin / 2, 8};
}

float *floats64(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) return NULL;
    memset(p, 0, n * sizeof(float));
    return p;
}

int blocked_bias_init(int cout, int h, int w, const float *bias, const float *biasmap,
                      float **bias16, float **biasmap16) {
    size_t coutp = (size_t)round16(cout), plane = (size_t)h * w;
    *bias16 = floats64(coutp);
    *biasmap16 = biasmap ? floats64(coutp * plane) : NULL;
    if (!*bias16 || (biasmap && !*biasmap16)) {
        free(*bias16);
        free(*biasmap16);
        *bias16 = *biasmap16 = NULL;
        return 0;
    }
    for (int o = 0; o < cout; o++)
        (*bias16)[o] = bias ? bias[o] : 0.0f;
    if (biasmap)
        for (int o = 0; o < cout; o++)
            for (size_t p = 0; p < plane; p++)
                (*biasmap16)[((size_t)(o / 16) * plane + p) * 16 + o % 16] =
                    biasmap[(size_t)o * plane + p];
    return 1;
}
