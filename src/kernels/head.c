/* A network's head for inference: global average pooling and the dense
 * layer after it, with bias and an optional ReLU.
 *   x: (n, ceil(c/16), h, w, 16) (padding channels not read) -> y: (n, k)
 * Lifecycle: head_create -> head_run -> head_destroy (kernels/own.h).
 *
 * Why our own: the work is tiny, and oneDNN's pooling and inner-product
 * primitives spent most of their time on the cost of a call; here both are
 * one pass over the data. */
#include <stdlib.h>
#include <string.h>

#include "kernels/own_impl.h"

slim_status head_create(const head_desc *d, head_kernel **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "head: no place for the kernel");
    *out = NULL;
    if (!d || !d->weights) return slim_error(SLIM_ERR_ARG, "head: no weights");
    if (d->c < 1 || d->k < 1 || d->h < 1 || d->w < 1)
        return slim_error(SLIM_ERR_SHAPE,
                          "head: %d channels of %dx%d to %d outputs is not a valid shape", d->c,
                          d->h, d->w, d->k);
    const int c = d->c, k = d->k, kp = round16(k);
    head_kernel *hd = calloc(1, sizeof *hd);
    if (hd) {
        hd->wt = floats64((size_t)c * kp);
        hd->bias = floats64((size_t)kp);
    }
    if (!hd || !hd->wt || !hd->bias) {
        head_destroy(hd);
        return slim_error(SLIM_ERR_NOMEM, "head: no memory for %d x %d weights", k, c);
    }
    hd->d = *d;
    hd->d.weights = hd->d.bias = NULL;
    hd->d.relu = d->relu != 0;
    if (!d->impl) hd->d.impl = own_impl_for(own_isa_active());
    for (int o = 0; o < k; o++) {
        for (int i = 0; i < c; i++)
            hd->wt[(size_t)i * kp + o] = d->weights[(size_t)o * c + i];
        hd->bias[o] = d->bias ? d->bias[o] : 0.0f;
    }
    *out = hd;
    return SLIM_OK;
}

void head_destroy(head_kernel *hd) {
    if (!hd) return;
    free(hd->wt);
    free(hd->bias);
    free(hd);
}

const head_desc *head_settings(const head_kernel *hd) { return &hd->d; }

slim_status head_run(const head_kernel *hd, int n, const float *x, float *y) {
    if (!hd || n < 1 || !x || !y) return slim_error(SLIM_ERR_ARG, "head: missing kernel or data");
    SLIM_TRY(own_impl_check(hd->d.impl, "head"));
    hd->d.impl->head(hd, n, x, y);
    return SLIM_OK;
}
