/* Reference elementwise add (residual connections). */
#include "kernels/kernels.h"

/* a, b, y: (n); y may alias a or b. */
void slim_ref_add_forward(size_t n, const float *a, const float *b, float *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

/* da += dy, db += dy; NULL gradients are skipped. */
void slim_ref_add_backward(size_t n, const float *dy, float *da, float *db) {
    if (da)
        for (size_t i = 0; i < n; i++)
            da[i] += dy[i];
    if (db)
        for (size_t i = 0; i < n; i++)
            db[i] += dy[i];
}
