/* Reference channel concatenation. Each (image, input) slice is one
 * contiguous block of c[j]*hw values in x[j] and in y, so both directions
 * are block copies (memory-bound: the reference is also the fast path). */
#include "kernels/kernels.h"

#include <string.h>

/* x[j]: (n, c[j], hw), y: (n, C, hw) with C = sum_j c[j]; input j lands at
 * channels [sum_{i<j} c[i], ... + c[j]). */
void slim_ref_concat_forward(int n, int k, const int *c, size_t hw, const float *const *x,
                             float *y) {
    size_t total = 0;
    for (int j = 0; j < k; j++)
        total += (size_t)c[j];
    for (int i = 0; i < n; i++) {
        float *yi = y + (size_t)i * total * hw;
        for (int j = 0; j < k; j++) {
            size_t block = (size_t)c[j] * hw;
            memcpy(yi, x[j] + (size_t)i * block, block * sizeof *yi);
            yi += block;
        }
    }
}

/* dy: (n, C, hw); dx[j] (n, c[j], hw) += its slice of dy; NULL dx[j] skipped. */
void slim_ref_concat_backward(int n, int k, const int *c, size_t hw, const float *dy,
                              float *const *dx) {
    size_t total = 0;
    for (int j = 0; j < k; j++)
        total += (size_t)c[j];
    for (int i = 0; i < n; i++) {
        const float *gi = dy + (size_t)i * total * hw;
        for (int j = 0; j < k; j++) {
            size_t block = (size_t)c[j] * hw;
            if (dx[j]) {
                float *d = dx[j] + (size_t)i * block;
                for (size_t t = 0; t < block; t++)
                    d[t] += gi[t];
            }
            gi += block;
        }
    }
}
