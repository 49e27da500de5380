/* Reference ReLU. */
#include "kernels/kernels.h"

/* x, y: (n) */
void slim_ref_relu_forward(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* Uses the forward output y: y > 0 exactly where x > 0, and keeping y lets
 * the forward run in place. dx += dy where y > 0. */
void slim_ref_relu_backward(size_t n, const float *y, const float *dy, float *dx) {
    for (size_t i = 0; i < n; i++)
        if (y[i] > 0.0f) dx[i] += dy[i];
}
