/* A network's head for inference: global average pooling and the dense
 * layer after it, with bias and an optional ReLU.
 *   x: (n, ceil(c/16), h, w, 16) (padding channels not read) -> y: (n, k)
 * Lifecycle: head_create -> head_run -> head_destroy (kernels/own.h).
 *
 * Why our own: the work is tiny, and oneDNN's pooling and inner-product
 * primitives spent most of their time on the cost of a call; here both are
 * one pass over the data.
 *
 * Per image and 16-channel block: the block's sums over the h x w pixels
 * (four chains of adds, not one long one), scaled by 1 / (h w), then for
 * each vector of 16 outputs each channel's mean, broadcast from its lane,
 * times that channel's weights, added to the outputs (the bias first). */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/own.h"

#define HEAD_TARGET __attribute__((target("avx512f,avx512vl,fma")))

struct head_kernel {
    head_desc d; /* its pointers NULL */
    float *wt;   /* c x round16(k): the dense weights, transposed, zero beyond k */
    float *bias; /* round16(k), zero beyond k */
};

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

/* The mean of one 16-channel block over its `pixels` pixels at x. */
HEAD_TARGET static __m512 block_mean(const float *x, int pixels, float scale) {
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    int p = 0;
    for (; p + 4 <= pixels; p += 4)
        for (int j = 0; j < 4; j++)
            s[j] = _mm512_add_ps(s[j], _mm512_load_ps(x + (size_t)(p + j) * 16));
    for (; p < pixels; p++)
        s[0] = _mm512_add_ps(s[0], _mm512_load_ps(x + (size_t)p * 16));
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3]));
    return _mm512_mul_ps(sum, _mm512_set1_ps(scale));
}

/* Each image's outputs accumulate in y itself, block of channels by block
 * (each block's mean computed once, whatever the outputs). */
HEAD_TARGET static void forward(const head_kernel *hd, int n, const float *x, float *y) {
    const int c = hd->d.c, k = hd->d.k, kp = round16(k), blocks = round16(c) / 16;
    const int pixels = hd->d.h * hd->d.w;
    const float scale = 1.0f / (float)pixels;
    for (int img = 0; img < n; img++) {
        const float *xi = x + (size_t)img * blocks * pixels * 16;
        float *yi = y + (size_t)img * k;
        for (int b = 0; b < blocks; b++) {
            const __m512 mean = block_mean(xi + (size_t)b * pixels * 16, pixels, scale);
            for (int o = 0; o < kp; o += 16) {
                const __mmask16 real = (__mmask16)((1u << (k - o < 16 ? k - o : 16)) - 1);
                const float *wp = hd->wt + (size_t)b * 16 * kp + o;
                __m512 acc =
                    b == 0 ? _mm512_load_ps(hd->bias + o) : _mm512_maskz_loadu_ps(real, yi + o);
                for (int j = 0; j < 16 && b * 16 + j < c; j++)
                    acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(j), mean),
                                          _mm512_load_ps(wp + (size_t)j * kp), acc);
                if (hd->d.relu && b == blocks - 1) acc = _mm512_max_ps(acc, _mm512_setzero_ps());
                _mm512_mask_storeu_ps(yi + o, real, acc);
            }
        }
    }
}

slim_status head_run(const head_kernel *hd, int n, const float *x, float *y) {
    if (!hd || n < 1 || !x || !y) return slim_error(SLIM_ERR_ARG, "head: missing kernel or data");
    if (!own_kernels_available())
        return slim_error(SLIM_ERR_BACKEND, "head: this CPU has no AVX-512F/VL");
    forward(hd, n, x, y);
    return SLIM_OK;
}
