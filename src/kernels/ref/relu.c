/* Reference ReLU and ReLU6. */
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

/* x, y: (n) */
void slim_ref_relu6_forward(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? (x[i] < 6.0f ? x[i] : 6.0f) : 0.0f;
}

/* dx += dy where 0 < y < 6, which is exactly 0 < x < 6: both kinks (x = 0,
 * x = 6) pass no gradient, as PyTorch's hardtanh(0, 6). */
void slim_ref_relu6_backward(size_t n, const float *y, const float *dy, float *dx) {
    for (size_t i = 0; i < n; i++)
        if (y[i] > 0.0f && y[i] < 6.0f) dx[i] += dy[i];
}
