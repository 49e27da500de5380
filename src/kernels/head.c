/* A network's head for inference: global average pooling of activations in
 * 16-channel blocks (oneDNN's aBcd16b) and the dense layer after it, with
 * bias and an optional ReLU, to plain (n, k) outputs.
 *
 * Why our own: the work is tiny (vgg-fm: 8 images x 128 channels x 49
 * pixels of sums, then 128 x 10 multiply-adds each), and oneDNN 2.6's
 * pooling and inner-product primitives took 0.0014 and 0.0050 ms per call
 * for it (a tile of 8 images, one thread: 2% of a pruned vgg-fm's time),
 * most of it the cost of a call; here both are one pass over the data.
 *
 * Per image and 16-channel block: the block's sums over the h x w pixels
 * (four chains of adds, not one long one), scaled by 1 / (h w), then for
 * each vector of 16 outputs each channel's mean, broadcast from its lane,
 * times that channel's weights, added to the outputs (the bias first). The
 * vector code needs AVX-512F (slim_head_available). */
#include "slim/kernels.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_TARGET __attribute__((target("avx512f,avx512vl,fma")))

int slim_head_available(void) { return slim_wino_available(); }

static int round16(int c) { return (c + 15) / 16 * 16; }

slim_status slim_head_init(slim_head *hd, int c, int k, int h, int w, const float *weights,
                           const float *bias, int relu) {
    memset(hd, 0, sizeof *hd);
    if (c < 1 || k < 1 || h < 1 || w < 1 || !weights)
        return slim_error(SLIM_ERR_SHAPE,
                          "head: %d channels of %dx%d to %d outputs is not a valid shape", c, h, w,
                          k);
    const int kp = round16(k);
    hd->c = c;
    hd->k = k;
    hd->h = h;
    hd->w = w;
    hd->relu = relu != 0;
    hd->wt = slim_floats64((size_t)c * kp);
    hd->bias = slim_floats64((size_t)kp);
    if (!hd->wt || !hd->bias) {
        slim_head_free(hd);
        return slim_error(SLIM_ERR_NOMEM, "head: no memory for %d x %d weights", k, c);
    }
    for (int o = 0; o < k; o++) {
        for (int i = 0; i < c; i++)
            hd->wt[(size_t)i * kp + o] = weights[(size_t)o * c + i];
        hd->bias[o] = bias ? bias[o] : 0.0f;
    }
    return SLIM_OK;
}

void slim_head_free(slim_head *hd) {
    free(hd->wt);
    free(hd->bias);
    hd->wt = hd->bias = NULL;
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
HEAD_TARGET static void forward(const slim_head *hd, int n, const float *x, float *y) {
    const int c = hd->c, k = hd->k, kp = round16(k), blocks = round16(c) / 16;
    const int pixels = hd->h * hd->w;
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
                if (hd->relu && b == blocks - 1) acc = _mm512_max_ps(acc, _mm512_setzero_ps());
                _mm512_mask_storeu_ps(yi + o, real, acc);
            }
        }
    }
}

slim_status slim_head_forward(const slim_head *hd, int n, const float *x, float *y) {
    if (!hd || !hd->wt || n < 1 || !x || !y)
        return slim_error(SLIM_ERR_ARG, "head: missing weights or data");
    if (!slim_head_available())
        return slim_error(SLIM_ERR_BACKEND, "head: this CPU has no AVX-512F/VL");
    forward(hd, n, x, y);
    return SLIM_OK;
}
