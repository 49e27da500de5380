/* Reference dense (fully connected) layer: y = x W^T + b. */
#include "kernels/kernels.h"

/* x: (n, in), w: (out, in), b: (out) or NULL, y: (n, out) */
void slim_ref_dense_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                            float *y) {
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < out; o++) {
            float acc = b ? b[o] : 0.0f;
            for (int k = 0; k < in; k++)
                acc += x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = acc;
        }
    }
}

/* dy: (n, out). Adds dx += dy W (n, in), dw += dy^T x (out, in), db += sum_i dy. */
void slim_ref_dense_backward(int n, int in, int out, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db) {
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < out; o++) {
            float g = dy[(size_t)i * out + o];
            if (db) db[o] += g;
            for (int k = 0; k < in; k++) {
                if (dx) dx[(size_t)i * in + k] += g * w[(size_t)o * in + k];
                if (dw) dw[(size_t)o * in + k] += g * x[(size_t)i * in + k];
            }
        }
    }
}
