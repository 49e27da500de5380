/* Direct 3x3, stride 1, pad 1 convolution for inference on few input
 * channels (the first conv of an image network: 1 channel for
 * Fashion-MNIST, 3 for CIFAR), with bias and, each optional, a biasmap, a
 * residual sum and a fused ReLU.
 *   x: (n, cin, h, w) plain -> y: (n, ceil(cout/16), h, w, 16), or padded
 *   planes, the last block narrow or not (kernels/blocked.h)
 * Lifecycle: stem_create -> stem_scratch_bytes -> stem_run -> stem_destroy
 * (kernels/own.h).
 *
 * Why our own: with one input channel a conv is 9 multiply-adds per output
 * value, which Winograd cannot cut (its transforms cost more than that), and
 * oneDNN 2.6's direct kernel spends a whole 16-lane vector on a last block
 * of output channels however few of them are real. Here a last block of at
 * most 8 real channels takes 8-lane vectors, which cost half on CPUs that
 * split 16-lane operations in two.
 *
 * The compute is built per target from one source: kernels/stem_simd.h. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/own_impl.h"

/* The shape's and the settings' errors, or SLIM_OK. */
static slim_status check_desc(const stem_desc *d) {
    if (!d || !d->weights) return slim_error(SLIM_ERR_ARG, "stem conv: no weights");
    if (d->cin < 1 || d->cout < 1 || d->h < 1 || d->w < 1)
        return slim_error(SLIM_ERR_SHAPE,
                          "stem conv: %d -> %d channels at %dx%d is not a valid shape", d->cin,
                          d->cout, d->h, d->w);
    if (d->out_narrow && !d->out_padded)
        return slim_error(SLIM_ERR_ARG, "stem conv: a narrow output needs padded planes");
    if (d->out_narrow && (d->cout % 16 == 0 || d->cout % 16 > 8))
        return slim_error(SLIM_ERR_ARG,
                          "stem conv: a narrow output needs a last block of at most 8 channels, "
                          "not %d",
                          d->cout % 16 ? d->cout % 16 : 16);
    return SLIM_OK;
}

slim_status stem_create(const stem_desc *d, stem_conv **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "stem conv: no place for the kernel");
    *out = NULL;
    slim_status st = check_desc(d);
    if (st != SLIM_OK) return st;
    const int cin = d->cin, cout = d->cout, coutp = round16(cout);
    stem_conv *c = calloc(1, sizeof *c);
    if (c) c->wt = floats64((size_t)9 * cin * coutp);
    if (!c || !c->wt ||
        !blocked_bias_init(cout, d->h, d->w, d->bias, d->biasmap, &c->bias, &c->biasmap)) {
        stem_destroy(c);
        return slim_error(SLIM_ERR_NOMEM, "stem conv: no memory for %d x %d weights", cin, cout);
    }
    c->d = *d;
    c->d.weights = c->d.bias = c->d.biasmap = NULL;
    c->d.relu = d->relu != 0;
    c->d.sum = d->sum != 0;
    if (!d->impl) c->d.impl = own_impl_for(own_isa_active());
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int k = 0; k < 9; k++)
                c->wt[((size_t)i * 9 + k) * coutp + o] = d->weights[((size_t)o * cin + i) * 9 + k];
    *out = c;
    return SLIM_OK;
}

void stem_destroy(stem_conv *c) {
    if (!c) return;
    free(c->wt);
    free(c->bias);
    free(c->biasmap);
    free(c);
}

const stem_desc *stem_settings(const stem_conv *c) { return &c->d; }

static size_t thread_scratch(const stem_conv *c) {
    return (size_t)c->d.cin * stem_pad_plane(c) * sizeof(float) + 64;
}

size_t stem_scratch_bytes(const stem_conv *c, int threads) {
    return thread_scratch(c) * (size_t)(threads > 1 ? threads : 1);
}

slim_status stem_run(const stem_conv *c, int n, const float *x, float *y, void *scratch,
                     int threads) {
    if (!c || n < 1 || !x || !y || !scratch)
        return slim_error(SLIM_ERR_ARG, "stem conv: missing kernel, data or scratch");
    SLIM_TRY(own_impl_check(c->d.impl, "stem conv"));
    void (*forward)(const stem_conv *, const float *, float *, void *, int, int) = c->d.impl->stem;
    int rows = n * c->d.h;
    if (threads <= 1 || rows < 2) {
        forward(c, x, y, scratch, 0, rows);
        return SLIM_OK;
    }
    size_t per = thread_scratch(c);
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        forward(c, x, y, (char *)scratch + (size_t)t * per, rows * t / nt, rows * (t + 1) / nt);
    }
    return SLIM_OK;
}
