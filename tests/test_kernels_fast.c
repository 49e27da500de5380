/* Fast kernels (oneDNN, OpenBLAS, and the C loops of the fast backend)
 * against the reference ones, forward and backward, on odd shapes (5x7
 * images, 3 channels, batch 1, stride 2, pad 0 and 1, 1x1 and 3x3 kernels,
 * channel counts that are not multiples of oneDNN's blocks of 16), on
 * shapes large enough for the multi-threaded paths, on shapes that the
 * convolution runs with Winograd (3x3, stride 1, >= 16 channels each way,
 * >= 512 output positions) and with plain-layout backward data (< 8 input
 * channels), and through cache rebuilds.
 *
 * Backward runs on gradient buffers pre-filled with the same random values
 * for both kernels, so a fast kernel that overwrote instead of adding (or
 * added twice) would differ by O(1).
 *
 * Tolerances, relative to the largest reference magnitude m of the buffer:
 * forward 1e-4 max(1, m), backward 3e-4 max(1, m). Both kernels compute in
 * float32 but sum in different orders (oneDNN blocks and vectorises, the
 * reference runs straight loops, BN's reference sums in double); each
 * output here is a sum of at most a few hundred terms of order 1, so the
 * orders differ by ~ sqrt(terms) ulps ~ 1e-6 relative. Winograd adds the
 * rounding of its input and output transforms, of the same order (~2e-6 of
 * the output's magnitude on the benchmark network's shapes). Backward sums
 * are longer (over batch and positions) and BN's dx combines three sums,
 * hence the looser bound. (Observed here: <= 1.4e-6 for all of them, the
 * largest on the Winograd shapes.) A wrong index, a missed padding tap or a
 * missing gradient term shows up at the 1e-1 level. ReLU is exact: its fast
 * loops must match the reference bit for bit. */
#include "testutil.h"

#include "kernels/kernels.h"
#include "kernels/own.h"
#include "kernels/own_impl.h"
#include "slim/autograd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FWD 1e-4
#define TOL_BWD 3e-4

static float *frand(slim_rng *rng, size_t n, float lo, float hi) {
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    tu_fill_uniform(rng, p, n, lo, hi);
    return p;
}

static float *fcopy(const float *src, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

/* Values spaced 0.01 apart in random order, so max pooling has no ties
 * (the two kernels may break ties differently, which is fine). */
static float *fdistinct(slim_rng *rng, size_t n) {
    float *p = calloc(n, sizeof *p);
    uint32_t *perm = malloc(n * sizeof *perm);
    assert_true(p && perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    slim_rng_shuffle(rng, perm, n);
    for (size_t i = 0; i < n; i++)
        p[i] = 0.01f * ((float)perm[i] - (float)n / 2);
    free(perm);
    return p;
}

static void expect_close(const float *fast, const float *ref, size_t n, double rel,
                         const char *what) {
    double m = tu_max_abs(ref, n);
    double tol = rel * (m > 1 ? m : 1);
    double d = tu_max_abs_diff(fast, ref, n);
    if (!(d <= tol)) fail_msg("%s: max |fast - ref| = %g > %g", what, d, tol);
}

static void expect_ok(slim_status st) {
    if (st != SLIM_OK) fail_msg("status %s: %s", slim_status_name(st), slim_last_error());
}

/* ---- dense (OpenBLAS) ------------------------------------------------- */

static void dense_case(int n, int in, int out, int with_bias, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    float *x = frand(&rng, nx, -1, 1), *w = frand(&rng, nw, -1, 1);
    float *b = with_bias ? frand(&rng, out, -1, 1) : NULL;
    float *yr = frand(&rng, ny, -1, 1), *yf = frand(&rng, ny, -1, 1); /* garbage in y */
    slim_ref_dense_forward(n, in, out, x, w, b, yr);
    slim_blas_dense_forward(n, in, out, x, w, b, yf);
    expect_close(yf, yr, ny, TOL_FWD, "dense y");

    float *dy = frand(&rng, ny, -1, 1);
    float *dxr = frand(&rng, nx, -1, 1), *dwr = frand(&rng, nw, -1, 1);
    float *dbr = frand(&rng, out, -1, 1);
    float *dxf = fcopy(dxr, nx), *dwf = fcopy(dwr, nw), *dbf = fcopy(dbr, out);
    slim_ref_dense_backward(n, in, out, x, w, dy, dxr, dwr, dbr);
    slim_blas_dense_backward(n, in, out, x, w, dy, dxf, dwf, dbf);
    expect_close(dxf, dxr, nx, TOL_BWD, "dense dx");
    expect_close(dwf, dwr, nw, TOL_BWD, "dense dw");
    expect_close(dbf, dbr, out, TOL_BWD, "dense db");
    /* NULL gradients are skipped: dw alone adds the same again. */
    slim_ref_dense_backward(n, in, out, x, w, dy, NULL, dwr, NULL);
    slim_blas_dense_backward(n, in, out, x, w, dy, NULL, dwf, NULL);
    expect_close(dwf, dwr, nw, TOL_BWD, "dense dw (alone)");
    free(x), free(w), free(b), free(yr), free(yf), free(dy);
    free(dxr), free(dwr), free(dbr), free(dxf), free(dwf), free(dbf);
}

static void test_dense(void **state) {
    (void)state;
    dense_case(1, 7, 3, 1, 1);
    dense_case(5, 13, 10, 1, 2);
    dense_case(4, 3, 1, 0, 3);
    dense_case(33, 65, 17, 1, 4);
}

/* ---- conv ------------------------------------------------------------- */

/* Runs forward and backward on `cache` and holds them to the reference.
 * with_bias = 0 runs the forward without bias and backward without db;
 * first_layer runs backward without dx (NULL). */
static void conv_case(slim_dnnl_cache **cache, slim_conv_shape s, int with_bias, int first_layer,
                      uint64_t seed) {
    expect_ok(slim_conv_shape_finish(&s));
    slim_rng rng;
    slim_rng_seed(&rng, seed, 2);
    size_t nx = (size_t)s.n * s.cin * s.h * s.w;
    size_t nw = (size_t)s.cout * (s.cin / s.groups) * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.cout * s.oh * s.ow;
    float *x = frand(&rng, nx, -1, 1), *w = frand(&rng, nw, -1, 1);
    float *b = with_bias ? frand(&rng, s.cout, -1, 1) : NULL;
    float *yr = frand(&rng, ny, -1, 1), *yf = frand(&rng, ny, -1, 1);
    slim_ref_conv2d_forward(&s, x, w, b, yr);
    expect_ok(slim_dnnl_conv2d_forward(cache, &s, x, w, b, yf));
    expect_close(yf, yr, ny, TOL_FWD, "conv y");

    float *dy = frand(&rng, ny, -1, 1);
    float *dxr = frand(&rng, nx, -1, 1), *dwr = frand(&rng, nw, -1, 1);
    float *dbr = frand(&rng, s.cout, -1, 1);
    float *dxf = fcopy(dxr, nx), *dwf = fcopy(dwr, nw), *dbf = fcopy(dbr, s.cout);
    float *dx0 = fcopy(dxr, nx), *db0 = fcopy(dbr, s.cout);
    slim_ref_conv2d_backward(&s, x, w, dy, first_layer ? NULL : dxr, dwr, with_bias ? dbr : NULL);
    expect_ok(slim_dnnl_conv2d_backward(cache, &s, x, w, dy, first_layer ? NULL : dxf, dwf,
                                        with_bias ? dbf : NULL));
    expect_close(dxf, dxr, nx, TOL_BWD, "conv dx");
    expect_close(dwf, dwr, nw, TOL_BWD, "conv dw");
    expect_close(dbf, dbr, s.cout, TOL_BWD, "conv db");
    /* Skipped gradients are untouched. */
    if (first_layer) assert_memory_equal(dxf, dx0, nx * sizeof *dxf);
    if (!with_bias) assert_memory_equal(dbf, db0, s.cout * sizeof *dbf);
    free(x), free(w), free(b), free(yr), free(yf), free(dy), free(dx0), free(db0);
    free(dxr), free(dwr), free(dbr), free(dxf), free(dwf), free(dbf);
}

static const slim_conv_shape conv_shapes[] = {
    {.n = 2, .cin = 3, .h = 5, .w = 7, .cout = 4, .kh = 3, .kw = 3, .stride = 2, .pad = 1},
    {.n = 1, .cin = 3, .h = 5, .w = 7, .cout = 5, .kh = 3, .kw = 3, .stride = 2, .pad = 0},
    {.n = 1, .cin = 3, .h = 5, .w = 7, .cout = 8, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
    {.n = 3, .cin = 5, .h = 6, .w = 5, .cout = 3, .kh = 1, .kw = 1, .stride = 1, .pad = 0},
    {.n = 2, .cin = 4, .h = 7, .w = 7, .cout = 6, .kh = 1, .kw = 1, .stride = 2, .pad = 0},
    {.n = 2, .cin = 16, .h = 8, .w = 8, .cout = 32, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
    {.n = 1, .cin = 2, .h = 7, .w = 6, .cout = 3, .kh = 2, .kw = 3, .stride = 3, .pad = 1},
    /* Blocked backward data with channels that are not a multiple of 16. */
    {.n = 2, .cin = 12, .h = 9, .w = 9, .cout = 20, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
    /* Winograd shapes (>= 16 channels each way, >= 512 output positions):
     * padded and unpadded, channel counts that are not multiples of 16. */
    {.n = 3, .cin = 16, .h = 14, .w = 14, .cout = 24, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
    {.n = 2, .cin = 20, .h = 18, .w = 18, .cout = 17, .kh = 3, .kw = 3, .stride = 1, .pad = 0},
};
#define N_CONV (sizeof conv_shapes / sizeof conv_shapes[0])
#define CONV_WINO 8 /* index of the first Winograd shape */

/* Grouped: depthwise (groups = cin = cout) at stride 1 and 2, padded,
 * below and above the blocked-backward-data threshold and past one
 * 16-channel block; a channel multiplier; 1 < groups < channels.
 * n, cin, h, w, cout, k, stride, pad, groups: */
static const int grouped_shapes[][9] = {
    {2, 4, 7, 7, 4, 3, 1, 1, 4},    {2, 24, 14, 14, 24, 3, 1, 1, 24},
    {3, 32, 9, 9, 32, 3, 2, 1, 32}, {1, 8, 6, 5, 16, 3, 2, 1, 8},
    {2, 6, 8, 8, 4, 3, 1, 1, 2},    {2, 32, 10, 10, 48, 3, 2, 1, 4},
    {2, 16, 7, 7, 32, 1, 1, 0, 2},
};

static void test_conv_grouped(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof grouped_shapes / sizeof grouped_shapes[0]; i++) {
        const int *g = grouped_shapes[i];
        slim_conv_shape s = {.n = g[0],
                             .cin = g[1],
                             .h = g[2],
                             .w = g[3],
                             .cout = g[4],
                             .kh = g[5],
                             .kw = g[5],
                             .stride = g[6],
                             .pad = g[7],
                             .groups = g[8]};
        slim_dnnl_cache *cache = NULL;
        conv_case(&cache, s, 1, 0, 1500 + i);
        conv_case(&cache, s, 1, 0, 1600 + i); /* cached primitives, new data */
        conv_case(&cache, s, 0, 1, 1700 + i); /* no bias; no dx */
        slim_dnnl_cache_free(cache);
    }
}

static void test_conv(void **state) {
    (void)state;
    for (size_t i = 0; i < N_CONV; i++) {
        slim_dnnl_cache *cache = NULL;
        conv_case(&cache, conv_shapes[i], 1, 0, 100 + i);
        conv_case(&cache, conv_shapes[i], 1, 0, 200 + i); /* cached primitives, new data */
        conv_case(&cache, conv_shapes[i], 0, 1, 300 + i); /* no bias; first layer */
        conv_case(&cache, conv_shapes[i], 1, 1, 400 + i); /* bias back on */
        slim_dnnl_cache_free(cache);
    }
}

/* One cache through shapes A, B, A: each call rebuilds for its shape. */
static void test_conv_rebuild(void **state) {
    (void)state;
    slim_dnnl_cache *cache = NULL;
    conv_case(&cache, conv_shapes[0], 1, 0, 500);
    conv_case(&cache, conv_shapes[3], 1, 0, 501);
    conv_case(&cache, conv_shapes[0], 1, 0, 502);
    /* Pruning shrinks channels: same image, fewer filters. */
    slim_conv_shape pruned = conv_shapes[0];
    pruned.cout = 1;
    conv_case(&cache, pruned, 1, 0, 503);
    /* Winograd, then a pruned copy too narrow for it (direct), then back:
     * the primitives, their reorders and the algorithm follow the shape. */
    conv_case(&cache, conv_shapes[CONV_WINO], 1, 0, 504);
    pruned = conv_shapes[CONV_WINO];
    pruned.cout = 5;
    conv_case(&cache, pruned, 1, 0, 505);
    conv_case(&cache, conv_shapes[CONV_WINO], 0, 0, 506);
    slim_dnnl_cache_free(cache);
    slim_dnnl_cache_free(NULL); /* allowed, like free(NULL) */
}

/* Backward with no forward on the cache yet builds what it needs. */
static void test_conv_backward_first(void **state) {
    (void)state;
    slim_conv_shape s = conv_shapes[1];
    expect_ok(slim_conv_shape_finish(&s));
    slim_rng rng;
    slim_rng_seed(&rng, 7, 7);
    size_t nx = (size_t)s.n * s.cin * s.h * s.w;
    size_t nw = (size_t)s.cout * (s.cin / s.groups) * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.cout * s.oh * s.ow;
    float *x = frand(&rng, nx, -1, 1), *w = frand(&rng, nw, -1, 1), *dy = frand(&rng, ny, -1, 1);
    float *dxr = calloc(nx, sizeof(float)), *dxf = calloc(nx, sizeof(float));
    float *dwr = calloc(nw, sizeof(float)), *dwf = calloc(nw, sizeof(float));
    assert_true(dxr && dxf && dwr && dwf);
    slim_dnnl_cache *cache = NULL;
    slim_ref_conv2d_backward(&s, x, w, dy, dxr, dwr, NULL);
    expect_ok(slim_dnnl_conv2d_backward(&cache, &s, x, w, dy, dxf, dwf, NULL));
    expect_close(dxf, dxr, nx, TOL_BWD, "conv dx (backward first)");
    expect_close(dwf, dwr, nw, TOL_BWD, "conv dw (backward first)");
    slim_dnnl_cache_free(cache);
    free(x), free(w), free(dy), free(dxr), free(dxf), free(dwr), free(dwf);
}

static void test_conv_errors(void **state) {
    (void)state;
    slim_conv_shape s = conv_shapes[0];
    expect_ok(slim_conv_shape_finish(&s));
    float buf[1024] = {0};
    slim_dnnl_cache *cache = NULL;
    s.oh += 1; /* inconsistent with the geometry */
    assert_int_equal(slim_dnnl_conv2d_forward(&cache, &s, buf, buf, NULL, buf), SLIM_ERR_SHAPE);
    s.oh -= 1;
    assert_int_equal(slim_dnnl_conv2d_forward(NULL, &s, buf, buf, NULL, buf), SLIM_ERR_ARG);
    assert_int_equal(slim_dnnl_conv2d_forward(&cache, &s, NULL, buf, NULL, buf), SLIM_ERR_ARG);
    /* Nothing wanted: nothing done, nothing needed. */
    assert_int_equal(slim_dnnl_conv2d_backward(&cache, &s, NULL, NULL, NULL, NULL, NULL, NULL),
                     SLIM_OK);
    slim_dnnl_cache_free(cache);
}

/* ---- batch norm ------------------------------------------------------- */

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static void bn_case(slim_dnnl_cache **cache, int n, int c, int hw, int with_dx, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 3);
    size_t nx = (size_t)n * c * hw;
    float *x = frand(&rng, nx, -2, 3), *g = frand(&rng, c, 0.5f, 1.5f);
    float *b = frand(&rng, c, -1, 1);
    float *rmr = frand(&rng, c, -1, 1), *rvr = frand(&rng, c, 0.5f, 2);
    float *rmf = fcopy(rmr, c), *rvf = fcopy(rvr, c);
    float *yr = frand(&rng, nx, -1, 1), *yf = frand(&rng, nx, -1, 1);
    float *smr = frand(&rng, c, -1, 1), *svr = frand(&rng, c, -1, 1);
    float *smf = frand(&rng, c, -1, 1), *svf = frand(&rng, c, -1, 1);
    slim_ref_bn_forward_train(n, c, hw, x, g, b, BN_EPS, BN_MOMENTUM, rmr, rvr, yr, smr, svr, NULL);
    expect_ok(slim_dnnl_bn_forward_train(cache, n, c, hw, x, g, b, BN_EPS, BN_MOMENTUM, rmf, rvf,
                                         yf, smf, svf, NULL));
    expect_close(yf, yr, nx, TOL_FWD, "bn y");
    expect_close(smf, smr, c, TOL_FWD, "bn save_mean");
    expect_close(svf, svr, c, TOL_FWD, "bn save_var");
    expect_close(rmf, rmr, c, TOL_FWD, "bn running_mean");
    expect_close(rvf, rvr, c, TOL_FWD, "bn running_var");

    float *dy = frand(&rng, nx, -1, 1);
    float *dxr = frand(&rng, nx, -1, 1), *dgr = frand(&rng, c, -1, 1);
    float *dbr = frand(&rng, c, -1, 1);
    float *dxf = fcopy(dxr, nx), *dgf = fcopy(dgr, c), *dbf = fcopy(dbr, c);
    float *dx0 = fcopy(dxr, nx);
    slim_ref_bn_backward(n, c, hw, x, g, BN_EPS, smr, svr, dy, with_dx ? dxr : NULL, dgr, dbr,
                         NULL);
    expect_ok(slim_dnnl_bn_backward(cache, n, c, hw, x, g, BN_EPS, smf, svf, dy,
                                    with_dx ? dxf : NULL, dgf, dbf, NULL));
    expect_close(dxf, dxr, nx, TOL_BWD, "bn dx");
    expect_close(dgf, dgr, c, TOL_BWD, "bn dgamma");
    expect_close(dbf, dbr, c, TOL_BWD, "bn dbeta");
    if (!with_dx) assert_memory_equal(dxf, dx0, nx * sizeof *dxf);

    /* Eval mode with the (updated) running statistics. */
    slim_ref_bn_forward_eval(n, c, hw, x, g, b, BN_EPS, rmr, rvr, yr);
    expect_ok(slim_dnnl_bn_forward_eval(cache, n, c, hw, x, g, b, BN_EPS, rmr, rvr, yf));
    expect_close(yf, yr, nx, TOL_FWD, "bn eval y");
    free(x), free(g), free(b), free(rmr), free(rvr), free(rmf), free(rvf), free(yr), free(yf);
    free(smr), free(svr), free(smf), free(svf), free(dy), free(dxr), free(dgr), free(dbr);
    free(dxf), free(dgf), free(dbf), free(dx0);
}

static void test_bn(void **state) {
    (void)state;
    /* The last two are large enough for the multi-threaded path (with
     * planes of 196 and of 1 value). */
    const int shapes[][3] = {{2, 3, 35}, {1, 4, 9},    {5, 2, 1},   {4, 16, 64},
                             {3, 5, 12}, {8, 24, 196}, {4096, 9, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        slim_dnnl_cache *cache = NULL;
        bn_case(&cache, shapes[i][0], shapes[i][1], shapes[i][2], 1, 600 + i);
        bn_case(&cache, shapes[i][0], shapes[i][1], shapes[i][2], 0, 700 + i);
        slim_dnnl_cache_free(cache);
    }
}

static void test_bn_rebuild(void **state) {
    (void)state;
    slim_dnnl_cache *cache = NULL;
    bn_case(&cache, 2, 3, 35, 1, 800);
    bn_case(&cache, 1, 4, 9, 1, 801);
    bn_case(&cache, 2, 3, 35, 1, 802);
    /* A conv on the same cache, then BN again: the kind changes too. */
    conv_case(&cache, conv_shapes[0], 1, 0, 803);
    bn_case(&cache, 2, 3, 35, 1, 804);
    slim_dnnl_cache_free(cache);
}

/* Eval alone on a fresh cache (inference never runs a training forward). */
static void test_bn_eval_only(void **state) {
    (void)state;
    enum { N = 2, C = 3, HW = 10 };
    slim_rng rng;
    slim_rng_seed(&rng, 9, 9);
    float x[N * C * HW], yr[N * C * HW], yf[N * C * HW], g[C], b[C], rm[C], rv[C];
    tu_fill_uniform(&rng, x, N * C * HW, -2, 2);
    tu_fill_uniform(&rng, g, C, -1, 1);
    tu_fill_uniform(&rng, b, C, -1, 1);
    tu_fill_uniform(&rng, rm, C, -1, 1);
    tu_fill_uniform(&rng, rv, C, 0.1f, 2);
    slim_dnnl_cache *cache = NULL;
    slim_ref_bn_forward_eval(N, C, HW, x, g, b, BN_EPS, rm, rv, yr);
    expect_ok(slim_dnnl_bn_forward_eval(&cache, N, C, HW, x, g, b, BN_EPS, rm, rv, yf));
    expect_close(yf, yr, N * C * HW, TOL_FWD, "bn eval y (fresh cache)");
    slim_dnnl_cache_free(cache);
}

/* ---- pooling ---------------------------------------------------------- */

static void pool_case(slim_dnnl_cache **cache, int max, slim_pool_shape s, uint64_t seed) {
    expect_ok(slim_pool_shape_finish(&s));
    slim_rng rng;
    slim_rng_seed(&rng, seed, 4);
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.oh * s.ow;
    float *x = max ? fdistinct(&rng, nx) : frand(&rng, nx, -1, 1);
    float *yr = frand(&rng, ny, -1, 1), *yf = frand(&rng, ny, -1, 1);
    int32_t *am = calloc(ny, sizeof *am);
    assert_non_null(am);
    if (max) {
        slim_ref_maxpool_forward(&s, x, yr, am);
        expect_ok(slim_dnnl_maxpool_forward(cache, &s, x, yf));
    } else {
        slim_ref_avgpool_forward(&s, x, yr);
        expect_ok(slim_dnnl_avgpool_forward(cache, &s, x, yf));
    }
    expect_close(yf, yr, ny, TOL_FWD, max ? "maxpool y" : "avgpool y");
    float *dy = frand(&rng, ny, -1, 1);
    float *dxr = frand(&rng, nx, -1, 1), *dxf = fcopy(dxr, nx);
    if (max) {
        slim_ref_maxpool_backward(&s, am, dy, dxr);
        expect_ok(slim_dnnl_maxpool_backward(cache, &s, dy, dxf));
    } else {
        slim_ref_avgpool_backward(&s, dy, dxr);
        expect_ok(slim_dnnl_avgpool_backward(cache, &s, dy, dxf));
    }
    expect_close(dxf, dxr, nx, TOL_BWD, max ? "maxpool dx" : "avgpool dx");
    free(x), free(yr), free(yf), free(am), free(dy), free(dxr), free(dxf);
}

static const slim_pool_shape pool_shapes[] = {
    {.n = 2, .c = 3, .h = 5, .w = 7, .k = 2, .stride = 2, .pad = 0},
    {.n = 1, .c = 3, .h = 5, .w = 7, .k = 3, .stride = 2, .pad = 1},
    {.n = 2, .c = 2, .h = 6, .w = 5, .k = 3, .stride = 1, .pad = 1},
    {.n = 1, .c = 16, .h = 8, .w = 8, .k = 2, .stride = 2, .pad = 0},
    {.n = 3, .c = 1, .h = 7, .w = 4, .k = 3, .stride = 3, .pad = 0},
    /* Large enough for the multi-threaded add of the backward. */
    {.n = 8, .c = 16, .h = 32, .w = 32, .k = 2, .stride = 2, .pad = 0},
};
#define N_POOL (sizeof pool_shapes / sizeof pool_shapes[0])

static void test_pool(void **state) {
    (void)state;
    for (int max = 0; max < 2; max++)
        for (size_t i = 0; i < N_POOL; i++) {
            slim_dnnl_cache *cache = NULL;
            pool_case(&cache, max, pool_shapes[i], 900 + 10 * max + i);
            pool_case(&cache, max, pool_shapes[i], 950 + 10 * max + i);
            slim_dnnl_cache_free(cache);
        }
}

static void test_pool_rebuild(void **state) {
    (void)state;
    slim_dnnl_cache *cache = NULL;
    pool_case(&cache, 1, pool_shapes[0], 1000);
    pool_case(&cache, 1, pool_shapes[1], 1001);
    pool_case(&cache, 1, pool_shapes[0], 1002);
    pool_case(&cache, 0, pool_shapes[0], 1003); /* max -> avg on the same shape */
    pool_case(&cache, 1, pool_shapes[0], 1004);
    slim_dnnl_cache_free(cache);
}

/* Max pooling's backward needs the workspace of a forward of its shape. */
static void test_maxpool_needs_forward(void **state) {
    (void)state;
    slim_pool_shape a = pool_shapes[0], b = pool_shapes[1];
    expect_ok(slim_pool_shape_finish(&a));
    expect_ok(slim_pool_shape_finish(&b));
    float x[256] = {0}, y[256], dx[256] = {0};
    slim_dnnl_cache *cache = NULL;
    assert_int_equal(slim_dnnl_maxpool_backward(&cache, &a, y, dx), SLIM_ERR_ARG);
    expect_ok(slim_dnnl_maxpool_forward(&cache, &a, x, y));
    /* A different shape rebuilds the cache and drops the workspace. */
    assert_int_equal(slim_dnnl_maxpool_backward(&cache, &b, y, dx), SLIM_ERR_ARG);
    assert_true(strstr(slim_last_error(), "forward") != NULL);
    a.pad = a.k; /* rejected geometry */
    assert_int_equal(slim_dnnl_maxpool_forward(&cache, &a, x, y), SLIM_ERR_SHAPE);
    slim_dnnl_cache_free(cache);
}

/* ---- buffers shared between caches ------------------------------------- */

/* One layer's data for the interleaving test below. */
typedef struct layer_data {
    slim_conv_shape s;
    float *x, *w, *y, *dy, *dxr, *dwr, *dxf, *dwf;
} layer_data;

static void layer_init(layer_data *l, slim_conv_shape s, uint64_t seed) {
    expect_ok(slim_conv_shape_finish(&s));
    l->s = s;
    slim_rng rng;
    slim_rng_seed(&rng, seed, 6);
    size_t nx = (size_t)s.n * s.cin * s.h * s.w;
    size_t nw = (size_t)s.cout * (s.cin / s.groups) * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.cout * s.oh * s.ow;
    l->x = frand(&rng, nx, -1, 1), l->w = frand(&rng, nw, -1, 1), l->y = frand(&rng, ny, -1, 1);
    l->dy = frand(&rng, ny, -1, 1);
    l->dxr = frand(&rng, nx, -1, 1), l->dwr = frand(&rng, nw, -1, 1);
    l->dxf = fcopy(l->dxr, nx), l->dwf = fcopy(l->dwr, nw);
    slim_ref_conv2d_backward(&s, l->x, l->w, l->dy, l->dxr, l->dwr, NULL);
}

static void layer_check(const layer_data *l) {
    const slim_conv_shape *s = &l->s;
    size_t nx = (size_t)s->n * s->cin * s->h * s->w, nw = (size_t)s->cout * s->cin * s->kh * s->kw;
    size_t ny = (size_t)s->n * s->cout * s->oh * s->ow;
    float *yr = malloc(ny * sizeof *yr);
    assert_non_null(yr);
    slim_ref_conv2d_forward(s, l->x, l->w, NULL, yr);
    expect_close(l->y, yr, ny, TOL_FWD, "interleaved conv y");
    expect_close(l->dxf, l->dxr, nx, TOL_BWD, "interleaved conv dx");
    expect_close(l->dwf, l->dwr, nw, TOL_BWD, "interleaved conv dw");
    free(yr);
    free(l->x), free(l->w), free(l->y), free(l->dy), free(l->dxr), free(l->dwr), free(l->dxf);
    free(l->dwf);
}

/* Temporaries are shared by all caches and the max-pooling workspace is
 * not: run two layers the way a training step does (forward A, forward B,
 * backward B, backward A), with a max pooling in between whose backward
 * must find its own workspace, and free one cache while the other still
 * works (the shared buffers must survive it). */
static void test_shared_buffers(void **state) {
    (void)state;
    layer_data a, b;
    layer_init(&a, conv_shapes[CONV_WINO], 1300);
    layer_init(&b, conv_shapes[5], 1301);
    slim_pool_shape ps = pool_shapes[3], qs = pool_shapes[0];
    expect_ok(slim_pool_shape_finish(&ps));
    expect_ok(slim_pool_shape_finish(&qs));
    size_t np = (size_t)ps.n * ps.c * ps.h * ps.w, npo = (size_t)ps.n * ps.c * ps.oh * ps.ow;
    size_t nq = (size_t)qs.n * qs.c * qs.h * qs.w, nqo = (size_t)qs.n * qs.c * qs.oh * qs.ow;
    slim_rng rng;
    slim_rng_seed(&rng, 1302, 6);
    float *px = fdistinct(&rng, np), *py = calloc(npo, sizeof(float)),
          *pdy = frand(&rng, npo, -1, 1);
    float *qx = fdistinct(&rng, nq), *qy = calloc(nqo, sizeof(float)),
          *qdy = frand(&rng, nqo, -1, 1);
    float *pdxr = calloc(np, sizeof(float)), *pdxf = calloc(np, sizeof(float));
    int32_t *pam = calloc(npo, sizeof *pam), *qam = calloc(nqo, sizeof *qam);
    assert_true(py && qy && pdxr && pdxf && pam && qam);
    slim_ref_maxpool_forward(&ps, px, pdxr, pam); /* pdxr as scratch for y */
    memset(pdxr, 0, np * sizeof *pdxr);
    slim_ref_maxpool_backward(&ps, pam, pdy, pdxr);

    slim_dnnl_cache *ca = NULL, *cb = NULL, *cp = NULL, *cq = NULL;
    expect_ok(slim_dnnl_conv2d_forward(&ca, &a.s, a.x, a.w, NULL, a.y));
    expect_ok(slim_dnnl_maxpool_forward(&cp, &ps, px, py));
    expect_ok(slim_dnnl_conv2d_forward(&cb, &b.s, b.x, b.w, NULL, b.y));
    expect_ok(slim_dnnl_maxpool_forward(&cq, &qs, qx, qy)); /* another workspace */
    expect_ok(slim_dnnl_conv2d_backward(&cb, &b.s, b.x, b.w, b.dy, b.dxf, b.dwf, NULL));
    expect_ok(slim_dnnl_maxpool_backward(&cp, &ps, pdy, pdxf));
    slim_dnnl_cache_free(cb);
    slim_dnnl_cache_free(cq);
    expect_ok(slim_dnnl_conv2d_backward(&ca, &a.s, a.x, a.w, a.dy, a.dxf, a.dwf, NULL));
    expect_close(pdxf, pdxr, np, TOL_BWD, "interleaved maxpool dx");
    layer_check(&a);
    layer_check(&b);
    slim_dnnl_cache_free(ca);
    slim_dnnl_cache_free(cp);
    free(px), free(py), free(pdy), free(qx), free(qy), free(qdy), free(pdxr), free(pdxf);
    free(pam), free(qam);
}

/* ---- ReLU op (its fast loops live in the op) ---------------------------- */

/* Runs relu forward and its backward node on a tape of `backend`: y from
 * x, then dx (pre-filled) += relu'(dy). */
static void relu_run(slim_backend backend, size_t n, const float *x, const float *dy, float *y,
                     float *dx) {
    slim_tape tape;
    slim_tape_init(&tape, backend);
    tape.recording = 1;
    int shape[2] = {1, (int)n};
    slim_tensor *xt = slim_tape_wrap(&tape, (float *)x, dx, 2, shape), *yt;
    assert_non_null(xt);
    expect_ok(slim_op_relu(&tape, xt, &yt));
    assert_non_null(yt->grad);
    memcpy(y, yt->data, n * sizeof *y);
    memcpy(yt->grad, dy, n * sizeof *dy);
    assert_non_null(tape.last);
    expect_ok(tape.last->backward(&tape, tape.last));
    slim_tape_free(&tape);
}

/* The fast backend's loops match the reference exactly, on a small input
 * (one thread) and one large enough to be shared out. */
static void test_relu_op(void **state) {
    (void)state;
    const size_t sizes[] = {37, 200003};
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k];
        slim_rng rng;
        slim_rng_seed(&rng, 1200 + k, 5);
        float *x = frand(&rng, n, -1, 1), *dy = frand(&rng, n, -1, 1);
        for (size_t i = 0; i < n; i += 7)
            x[i] = 0.0f; /* zero passes no gradient */
        float *yr = frand(&rng, n, -1, 1), *yf = frand(&rng, n, -1, 1);
        float *dxr = frand(&rng, n, -1, 1), *dxf = fcopy(dxr, n);
        relu_run(SLIM_BACKEND_REF, n, x, dy, yr, dxr);
        relu_run(SLIM_BACKEND_FAST, n, x, dy, yf, dxf);
        assert_memory_equal(yf, yr, n * sizeof *yf);
        assert_memory_equal(dxf, dxr, n * sizeof *dxf);
        free(x), free(dy), free(yr), free(yf), free(dxr), free(dxf);
    }
}

/* ---- our Winograd F(4x4, 3x3) inference conv ------------------------- */

/* (n, c, hw) plain <-> (n, ceil(c/16), hw, 16) blocks; pad fills the
 * blocks' padding channels. */
static float *to_blocks(int n, int c, int hw, const float *x, float pad) {
    int cb = round16(c) / 16;
    size_t total = (size_t)n * cb * 16 * hw;
    float *y = malloc(total * sizeof(float));
    for (size_t i = 0; i < total; i++)
        y[i] = pad;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                y[(((size_t)i * cb + ch / 16) * hw + p) * 16 + ch % 16] =
                    x[((size_t)i * c + ch) * hw + p];
    return y;
}

/* (n, ceil(c/16), h, w, 16) blocks -> the same in padded planes
 * (padded_size), border filled with `border`. */
static float *to_padded(int n, int c, int h, int w, const float *x, float border) {
    size_t planes = (size_t)n * (round16(c) / 16), hp = padded_size(h), wp = padded_size(w);
    float *y = malloc(planes * hp * wp * 16 * sizeof(float));
    for (size_t i = 0; i < planes * hp * wp * 16; i++)
        y[i] = border;
    for (size_t pl = 0; pl < planes; pl++)
        for (int r = 0; r < h; r++)
            memcpy(y + ((pl * hp + r + 1) * wp + 1) * 16, x + (pl * h + r) * (size_t)w * 16,
                   (size_t)w * 16 * sizeof(float));
    return y;
}

/* Padded planes (n images of c channels, h x w) with their last block
 * made narrow in place (planes_narrow: 8 floats per pixel in the
 * first half of its plane), the half it no longer uses set to `rest`. */
static void to_narrow(float *y, int n, int c, int h, int w, float rest) {
    size_t blocks = (size_t)round16(c) / 16, pixels = (size_t)padded_size(h) * padded_size(w);
    for (int i = 0; i < n; i++) {
        float *plane = y + ((size_t)i * blocks + blocks - 1) * pixels * 16;
        for (size_t p = 0; p < pixels; p++)
            memmove(plane + p * 8, plane + p * 16, 8 * sizeof(float));
        for (size_t k = pixels * 8; k < pixels * 16; k++)
            plane[k] = rest;
    }
}

/* The builds of our kernels (kernels/own_impl.h): the AVX-512 one, the
 * AVX2 one, and the AVX-512 one's 16-lane source compiled for AVX2
 * (tests/own_w16_avx2.c), which runs its logic where AVX-512 is missing. */
extern const own_impl own_impl_w16_on_avx2;
static const own_impl *const own_builds[] = {&own_impl_avx512, &own_impl_avx2,
                                             &own_impl_w16_on_avx2};
static const own_impl *own_build; /* the one the cases run on */

/* The cases on each build this CPU runs (skipped when none does). */
static void on_each_build(void (*cases)(void)) {
    int ran = 0;
    for (size_t i = 0; i < sizeof own_builds / sizeof own_builds[0]; i++) {
        if (own_impl_isa(own_builds[i]) > own_isa_cpu()) continue;
        own_build = own_builds[i];
        cases();
        ran++;
    }
    own_build = NULL;
    if (!ran) skip();
}

/* Our inference convs: Winograd (blocked input) and the stem conv (plain
 * input), both writing 16-channel blocks. */
typedef enum { OWN_WINO, OWN_STEM } own_kernel;

/* Layouts and the fused pool (Winograd reads padded input, both write
 * padded output, Winograd pools). */
enum { IN_PADDED = 1, OUT_PADDED = 2, POOLED = 4, IN_NARROW = 8, OUT_NARROW = 16 };

/* Runs kernel k on xb (blocked for Winograd, plain for the stem) into got. */
static void own_conv_run(own_kernel k, int n, int cin, int cout, int h, int w, const float *wt,
                         const float *b, const float *map, int sum, int relu, int threads,
                         int layout, const float *xb, float *got) {
    if (k == OWN_WINO) {
        const wino_desc d = {.cin = cin,
                             .cout = cout,
                             .h = h,
                             .w = w,
                             .weights = wt,
                             .bias = b,
                             .biasmap = map,
                             .relu = relu,
                             .sum = sum,
                             .pool = (layout & POOLED) != 0,
                             .in_padded = (layout & IN_PADDED) != 0,
                             .in_narrow = (layout & IN_NARROW) != 0,
                             .out_padded = (layout & OUT_PADDED) != 0,
                             .impl = own_build};
        wino_conv *c = NULL;
        expect_ok(wino_create(&d, &c));
        void *scratch = malloc(wino_scratch_bytes(c, threads));
        expect_ok(wino_run(c, n, xb, got, scratch, threads));
        free(scratch);
        wino_destroy(c);
    } else {
        const stem_desc d = {.cin = cin,
                             .cout = cout,
                             .h = h,
                             .w = w,
                             .weights = wt,
                             .bias = b,
                             .biasmap = map,
                             .relu = relu,
                             .sum = sum,
                             .out_padded = (layout & OUT_PADDED) != 0,
                             .out_narrow = (layout & OUT_NARROW) != 0,
                             .impl = own_build};
        stem_conv *c = NULL;
        expect_ok(stem_create(&d, &c));
        void *scratch = malloc(stem_scratch_bytes(c, threads));
        expect_ok(stem_run(c, n, xb, got, scratch, threads));
        free(scratch);
        stem_destroy(c);
    }
}

/* One conv on our kernel k against the reference conv (+ biasmap, + a
 * residual already in the output, ReLU, then with POOLED a 2x2 max pool),
 * on `threads` threads, in the layouts `layout` names. Winograd's blocked
 * input holds NaN in its padding channels, which must not reach the
 * output; the output's padding channels must be zero, and the border of
 * padded output planes untouched. */
static void own_conv_case_in(own_kernel k, int n, int cin, int cout, int h, int w, int with_bias,
                             int with_map, int with_sum, int relu, int threads, int layout,
                             uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 3);
    size_t xn = (size_t)n * cin * h * w, yn = (size_t)n * cout * h * w;
    float *x = malloc(xn * sizeof(float)), *wt = malloc((size_t)cout * cin * 9 * sizeof(float));
    float *b = malloc((size_t)cout * sizeof(float)), *y = malloc(yn * sizeof(float));
    float *map = malloc((size_t)cout * h * w * sizeof(float));
    float *res = malloc(yn * sizeof(float)); /* the residual a sum adds */
    tu_fill_uniform(&rng, x, xn, -1, 1);
    tu_fill_uniform(&rng, wt, (size_t)cout * cin * 9, -0.3f, 0.3f);
    tu_fill_uniform(&rng, b, (size_t)cout, -0.5f, 0.5f);
    tu_fill_uniform(&rng, map, (size_t)cout * h * w, -0.5f, 0.5f);
    if (with_map == 2) /* as pruning makes them: the same away from the border */
        for (int o = 0; o < cout; o++)
            for (int r = 1; r < h - 1; r++)
                for (int q = 1; q < w - 1; q++)
                    map[((size_t)o * h + r) * w + q] = map[((size_t)o * h + 1) * w + 1];
    tu_fill_uniform(&rng, res, yn, -1, 1);
    slim_conv_shape s = {
        .n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = 3, .kw = 3, .stride = 1, .pad = 1};
    expect_ok(slim_conv_shape_finish(&s));
    slim_ref_conv2d_forward(&s, x, wt, with_bias ? b : NULL, y);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < (size_t)cout * h * w; j++) {
            float *v = &y[(size_t)i * cout * h * w + j];
            if (with_map) *v += map[j];
            if (with_sum) *v += res[(size_t)i * cout * h * w + j];
            if (relu && *v < 0) *v = 0;
        }
    int oh = h, ow = w; /* the output's size */
    if (layout & POOLED) {
        oh = h / 2, ow = w / 2;
        for (int i = 0; i < n * cout; i++) /* in place: (r, c) reads rows 2r, 2r+1 only */
            for (int r = 0; r < oh; r++)
                for (int c = 0; c < ow; c++) {
                    const float *q = y + ((size_t)i * h + 2 * r) * w + 2 * c;
                    float a = fmaxf(q[0], q[1]), e = fmaxf(q[w], q[w + 1]);
                    y[((size_t)i * oh + r) * ow + c] = fmaxf(a, e);
                }
    }
    float *xb = k == OWN_WINO ? to_blocks(n, cin, h * w, x, NAN) : NULL;
    if (xb && (layout & IN_PADDED)) {
        float *xp = to_padded(n, cin, h, w, xb, 0.0f);
        free(xb);
        xb = xp;
        if (layout & IN_NARROW) to_narrow(xb, n, cin, h, w, NAN); /* the rest is not read */
    }
    float *want = to_blocks(n, cout, oh * ow, y, 0.0f);
    float *resb = to_blocks(n, cout, h * w, res, 0.0f);
    if (layout & OUT_PADDED) { /* the border: a value no conv writes */
        float *wp = to_padded(n, cout, oh, ow, want, -7.0f),
              *rp = to_padded(n, cout, h, w, resb, -7.0f);
        free(want), free(resb);
        want = wp, resb = rp;
        if (layout & OUT_NARROW) { /* the last block's other half: not written either */
            to_narrow(want, n, cout, oh, ow, -7.0f);
            to_narrow(resb, n, cout, h, w, -7.0f);
        }
    }
    size_t ybn =
        (size_t)n * round16(cout) *
        ((layout & OUT_PADDED) ? (size_t)padded_size(oh) * padded_size(ow) : (size_t)oh * ow);
    float *got = malloc(ybn * sizeof(float));
    for (size_t i = 0; i < ybn; i++)
        got[i] = with_sum ? resb[i] : -7.0f; /* else: every element must be written */
    own_conv_run(k, n, cin, cout, h, w, wt, with_bias ? b : NULL, with_map ? map : NULL, with_sum,
                 relu, threads, layout, k == OWN_WINO ? xb : x, got);
    char what[160];
    snprintf(what, sizeof what,
             "%s (%s) n%d %d->%d %dx%d bias%d map%d sum%d relu%d threads%d layout%d",
             k == OWN_WINO ? "wino" : "stem", own_impl_name(own_build), n, cin, cout, h, w,
             with_bias, with_map, with_sum, relu, threads, layout);
    /* F(4x4, 3x3) rounds more than direct summation: ~1e-6 relative per
     * term, growing with the channels summed. */
    expect_close(got, want, ybn, 2e-5 * (1 + cin / 16.0), what);
    free(x);
    free(wt);
    free(b);
    free(y);
    free(map);
    free(res);
    free(resb);
    free(xb);
    free(want);
    free(got);
}

static void own_conv_case(own_kernel k, int n, int cin, int cout, int h, int w, int with_bias,
                          int with_map, int with_sum, int relu, int threads, uint64_t seed) {
    own_conv_case_in(k, n, cin, cout, h, w, with_bias, with_map, with_sum, relu, threads, 0, seed);
}

static void wino_case(int n, int cin, int cout, int h, int w, int with_bias, int with_map,
                      int with_sum, int relu, int threads, uint64_t seed) {
    own_conv_case(OWN_WINO, n, cin, cout, h, w, with_bias, with_map, with_sum, relu, threads, seed);
}

static void wino_cases(void) {
    /* Sizes not multiples of the 4x4 tile, channel counts on both sides of
     * 16-channel blocks, batches that leave a last group part empty. */
    wino_case(1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1);
    wino_case(2, 3, 5, 5, 7, 1, 0, 0, 1, 1, 2);
    wino_case(3, 16, 16, 4, 4, 0, 0, 0, 0, 1, 3);
    wino_case(2, 19, 15, 28, 28, 1, 1, 0, 1, 1, 4);
    wino_case(2, 17, 33, 14, 14, 1, 0, 0, 1, 2, 5);
    wino_case(5, 30, 32, 7, 7, 0, 1, 0, 0, 2, 6);
    wino_case(1, 64, 47, 9, 6, 1, 1, 0, 1, 2, 7);
    wino_case(7, 33, 16, 3, 2, 1, 1, 0, 1, 3, 8);
    wino_case(2, 20, 70, 6, 5, 1, 1, 0, 1, 1, 9);   /* 5 vectors in one call */
    wino_case(1, 20, 100, 5, 6, 1, 1, 0, 1, 2, 13); /* 4 vectors, then 3 */
    wino_case(2, 8, 130, 4, 4, 1, 0, 0, 1, 1, 14);  /* 4, then 5 */
    wino_case(3, 16, 64, 8, 8, 1, 0, 0, 1, 2, 10);
    wino_case(2, 24, 20, 10, 9, 1, 1, 1, 1, 2, 11); /* a residual sum, as resnet-fm's */
    wino_case(1, 16, 8, 5, 5, 0, 0, 1, 0, 1, 12);
    /* 1-16 outputs take the GEMM in pairs of input channels: an odd count
     * in blocks (15), and held apart, even (24: 16 + 8) and odd (19, 33). */
    wino_case(2, 15, 12, 6, 9, 1, 1, 0, 1, 1, 15);
    wino_case(1, 24, 10, 8, 8, 1, 0, 1, 1, 2, 16);
    /* A last vector of at most 8 outputs is paired too, after 1, 2, 3 and
     * 4 others in its call (70, 100, 33 above; 52, 84 here). */
    wino_case(2, 19, 52, 5, 6, 1, 1, 0, 1, 1, 17);
    wino_case(1, 21, 84, 6, 5, 1, 0, 1, 1, 2, 18);
}

static void test_wino(void **state) {
    (void)state;
    on_each_build(wino_cases);
}

static void stem_case(int n, int cin, int cout, int h, int w, int with_bias, int with_map,
                      int with_sum, int relu, int threads, uint64_t seed) {
    own_conv_case(OWN_STEM, n, cin, cout, h, w, with_bias, with_map, with_sum, relu, threads, seed);
}

static void stem_cases(void) {
    /* Rows shorter and longer than a run of 7 pixels and not multiples of
     * it; output channels as one 8-lane block, one 16-lane block, pairs of
     * blocks whose second has 8 lanes or 16, and an odd last block; more
     * threads than rows. */
    stem_case(1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 21);
    stem_case(2, 1, 18, 28, 28, 1, 0, 0, 1, 1, 22); /* vgg-fm's first conv, pruned */
    stem_case(2, 1, 32, 28, 28, 1, 0, 0, 1, 2, 23);
    stem_case(3, 3, 16, 9, 13, 0, 1, 0, 1, 2, 24);
    stem_case(1, 2, 40, 5, 8, 1, 1, 1, 0, 3, 25);
    stem_case(2, 3, 57, 6, 15, 1, 0, 1, 1, 1, 26);
    stem_case(1, 1, 8, 2, 3, 1, 1, 0, 1, 3, 27);
    stem_case(4, 3, 9, 7, 7, 1, 0, 0, 0, 2, 28);
    /* A last block of 1-4 channels: alone, after a pair of blocks, after a
     * lone block; rows of 16 and of one more. */
    stem_case(2, 3, 3, 6, 17, 1, 1, 0, 1, 1, 29);
    stem_case(1, 1, 20, 5, 16, 1, 0, 1, 1, 2, 30);
    stem_case(2, 2, 35, 9, 33, 0, 1, 1, 0, 1, 31);
    stem_case(1, 1, 50, 4, 30, 1, 1, 0, 1, 3, 32);
}

static void test_stem(void **state) {
    (void)state;
    on_each_build(stem_cases);
}

/* Padded planes in and out (read in place, border left as it is) and the
 * 2x2 max pool in the output transform: even and odd sizes (a last pooled
 * row or column from a tile's first half), sizes below one tile, a
 * residual into padded output, with and without ReLU. */
static void own_conv_layouts_cases(void) {
    const int in = IN_PADDED, out = OUT_PADDED, pool = POOLED;
    own_conv_case_in(OWN_WINO, 2, 18, 16, 28, 28, 1, 1, 0, 1, 1, in | out | pool, 41);
    own_conv_case_in(OWN_WINO, 3, 29, 27, 7, 7, 1, 1, 0, 1, 2, in | out | pool, 42);
    own_conv_case_in(OWN_WINO, 1, 16, 40, 9, 6, 0, 0, 0, 0, 1, pool, 43);
    own_conv_case_in(OWN_WINO, 2, 20, 70, 5, 11, 1, 0, 0, 1, 3, in | pool, 44);
    own_conv_case_in(OWN_WINO, 2, 8, 24, 2, 3, 1, 1, 0, 1, 1, out | pool, 45);
    own_conv_case_in(OWN_WINO, 4, 33, 17, 14, 14, 1, 1, 1, 1, 2, in | out, 46);
    own_conv_case_in(OWN_WINO, 1, 5, 9, 3, 1, 1, 0, 0, 1, 1, in, 47);
    own_conv_case_in(OWN_WINO, 1, 18, 16, 9, 9, 1, 0, 0, 1, 2, in, 52); /* a tile unpaired */
    /* Biasmaps constant away from the border: inner tiles take them as a bias. */
    own_conv_case_in(OWN_WINO, 2, 18, 16, 28, 28, 1, 2, 0, 1, 1, in | out | pool, 54);
    own_conv_case_in(OWN_WINO, 1, 29, 27, 14, 13, 1, 2, 0, 1, 2, in | out, 55);
    own_conv_case_in(OWN_WINO, 2, 20, 33, 10, 9, 0, 2, 1, 0, 1, 0, 56);
    /* (its border terms alone at the border pixels: last rows and columns
     * at every place in a tile, the smallest interior, pooled) */
    own_conv_case_in(OWN_WINO, 2, 27, 63, 7, 7, 1, 2, 0, 1, 1, in | out, 62);
    own_conv_case_in(OWN_WINO, 1, 16, 20, 6, 5, 1, 2, 0, 1, 2, in | pool, 63);
    own_conv_case_in(OWN_WINO, 1, 9, 12, 3, 8, 0, 2, 0, 1, 1, 0, 64);
    own_conv_case_in(OWN_WINO, 2, 18, 29, 7, 9, 1, 2, 0, 1, 1, in | out | pool, 65);
    own_conv_case_in(OWN_WINO, 2, 40, 24, 6, 7, 0, 1, 0, 1, 1, in | out | pool, 53);
    own_conv_case_in(OWN_WINO, 2, 16, 16, 6, 6, 1, 0, 1, 0, 2, out, 48);
    own_conv_case_in(OWN_STEM, 2, 1, 18, 28, 28, 1, 1, 0, 1, 2, out, 49);
    own_conv_case_in(OWN_STEM, 1, 3, 33, 5, 9, 1, 0, 1, 1, 1, out, 50);
    /* A last block of at most 8 channels narrow between the stem and
     * Winograd: written after a 16-lane block in the same run, alone (with
     * biasmap and residual), after a pair of blocks; read in pairs of
     * tiles and a last odd one, alone, after 16-channel blocks. */
    const int n_out = out | OUT_NARROW, n_in = in | IN_NARROW;
    own_conv_case_in(OWN_STEM, 2, 1, 18, 28, 28, 1, 0, 0, 1, 1, n_out, 66);
    own_conv_case_in(OWN_STEM, 1, 3, 8, 5, 9, 1, 1, 1, 1, 2, n_out, 67);
    own_conv_case_in(OWN_STEM, 1, 2, 40, 6, 7, 0, 0, 0, 1, 1, n_out, 68);
    own_conv_case_in(OWN_WINO, 2, 18, 16, 28, 28, 1, 2, 0, 1, 1, n_in | out | pool, 69);
    own_conv_case_in(OWN_WINO, 1, 5, 9, 3, 5, 1, 0, 0, 1, 1, n_in, 70);
    own_conv_case_in(OWN_WINO, 3, 40, 20, 9, 7, 1, 1, 0, 1, 2, n_in | out, 71);
    own_conv_case_in(OWN_STEM, 2, 1, 18, 28, 28, 1, 0, 0, 1, 1, out, 57); /* as vgg-fm's, pruned */
    own_conv_case_in(OWN_STEM, 1, 2, 19, 7, 18, 1, 1, 1, 0, 2, out, 58);
    own_conv_case_in(OWN_STEM, 1, 1, 4, 3, 21, 0, 0, 0, 1, 1, out, 59);
}

static void test_own_conv_layouts(void **state) {
    (void)state;
    on_each_build(own_conv_layouts_cases);
}

/* Every combination of settings a descriptor allows, on each kernel: the
 * runtime creates them all from descriptors. */
static void own_conv_settings_cases(void) {
    const int ins[] = {0, IN_PADDED, IN_PADDED | IN_NARROW};
    uint64_t seed = 100;
    for (int relu = 0; relu < 2; relu++)
        for (int map = 0; map < 3; map++)
            for (int out = 0; out < 2; out++) {
                for (int in = 0; in < 3; in++)
                    for (int fuse = 0; fuse < 3; fuse++) /* none, sum, pool */
                        own_conv_case_in(
                            OWN_WINO, 2, 18, 20, 6, 7, 1, map, fuse == 1, relu, 1,
                            ins[in] | (out ? OUT_PADDED : 0) | (fuse == 2 ? POOLED : 0), seed++);
                for (int narrow = 0; narrow <= out; narrow++)
                    for (int sum = 0; sum < 2; sum++)
                        own_conv_case_in(OWN_STEM, 2, 3, 18, 5, 9, 1, map, sum, relu, 1,
                                         (out ? OUT_PADDED : 0) | (narrow ? OUT_NARROW : 0),
                                         seed++);
            }
}

static void test_own_conv_settings(void **state) {
    (void)state;
    on_each_build(own_conv_settings_cases);
}

/* Create refuses what a kernel cannot run, with a message, leaving *out
 * NULL (ASan: and nothing allocated); destroy(NULL) does nothing; run
 * refuses a missing kernel, data or scratch. */
#define EXPECT_REFUSED(call, want, made)                                                           \
    do {                                                                                           \
        slim_status st_ = (call); /* before made is read */                                        \
        assert_int_equal(st_, want);                                                               \
        assert_null(made);                                                                         \
        assert_true(slim_last_error()[0] != '\0');                                                 \
    } while (0)

static void test_own_lifecycle_errors(void **state) {
    (void)state;
    float wt[9] = {0}, x[16 * 16] = {0}, y[16 * 16], scratch[4096];
    const wino_desc wd = {.cin = 1, .cout = 1, .h = 4, .w = 4, .weights = wt};
    wino_desc d = wd;
    wino_conv *wc = (wino_conv *)x; /* not NULL: create must clear it */
    d.cin = 0;
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_SHAPE, wc);
    d = wd, d.cout = 0;
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_SHAPE, wc);
    d = wd, d.h = 0;
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_SHAPE, wc);
    d = wd, d.weights = NULL;
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_ARG, wc);
    EXPECT_REFUSED(wino_create(NULL, &wc), SLIM_ERR_ARG, wc);
    assert_int_equal(wino_create(&wd, NULL), SLIM_ERR_ARG);
    d = wd, d.pool = d.sum = 1; /* a pool needs 2x2 outputs and no residual */
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_ARG, wc);
    d = wd, d.pool = 1, d.h = 1;
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_ARG, wc);
    d = wd, d.in_narrow = 1; /* narrow needs padded planes */
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_ARG, wc);
    d = wd, d.in_narrow = d.in_padded = 1, d.cin = 16; /* and a last block of at most 8 */
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_ARG, wc);
    d = wd, d.in_narrow = d.in_padded = 1, d.cin = 9;
    EXPECT_REFUSED(wino_create(&d, &wc), SLIM_ERR_ARG, wc);
    wino_destroy(NULL);
    assert_int_equal(wino_run(NULL, 1, x, y, scratch, 1), SLIM_ERR_ARG);
    expect_ok(wino_create(&wd, &wc));
    assert_int_equal(wino_run(wc, 1, x, y, NULL, 1), SLIM_ERR_ARG);
    assert_int_equal(wino_run(wc, 0, x, y, scratch, 1), SLIM_ERR_ARG);
    wino_destroy(wc);

    const stem_desc sd = {.cin = 1, .cout = 1, .h = 4, .w = 4, .weights = wt};
    stem_desc e = sd;
    stem_conv *sc = (stem_conv *)x;
    e.cin = 0;
    EXPECT_REFUSED(stem_create(&e, &sc), SLIM_ERR_SHAPE, sc);
    e = sd, e.w = 0;
    EXPECT_REFUSED(stem_create(&e, &sc), SLIM_ERR_SHAPE, sc);
    e = sd, e.weights = NULL;
    EXPECT_REFUSED(stem_create(&e, &sc), SLIM_ERR_ARG, sc);
    EXPECT_REFUSED(stem_create(NULL, &sc), SLIM_ERR_ARG, sc);
    assert_int_equal(stem_create(&sd, NULL), SLIM_ERR_ARG);
    e = sd, e.out_narrow = 1;
    EXPECT_REFUSED(stem_create(&e, &sc), SLIM_ERR_ARG, sc);
    e = sd, e.out_narrow = e.out_padded = 1, e.cout = 32;
    EXPECT_REFUSED(stem_create(&e, &sc), SLIM_ERR_ARG, sc);
    stem_destroy(NULL);
    assert_int_equal(stem_run(NULL, 1, x, y, scratch, 1), SLIM_ERR_ARG);
    expect_ok(stem_create(&sd, &sc));
    assert_int_equal(stem_run(sc, 1, NULL, y, scratch, 1), SLIM_ERR_ARG);
    stem_destroy(sc);

    const head_desc hd = {.c = 1, .k = 1, .h = 1, .w = 1, .weights = wt};
    head_desc f = hd;
    head_kernel *hk = (head_kernel *)x;
    f.c = 0;
    EXPECT_REFUSED(head_create(&f, &hk), SLIM_ERR_SHAPE, hk);
    f = hd, f.w = 0;
    EXPECT_REFUSED(head_create(&f, &hk), SLIM_ERR_SHAPE, hk);
    f = hd, f.k = 0;
    EXPECT_REFUSED(head_create(&f, &hk), SLIM_ERR_SHAPE, hk);
    f = hd, f.weights = NULL;
    EXPECT_REFUSED(head_create(&f, &hk), SLIM_ERR_ARG, hk);
    EXPECT_REFUSED(head_create(NULL, &hk), SLIM_ERR_ARG, hk);
    head_destroy(NULL);
    assert_int_equal(head_run(NULL, 1, x, y), SLIM_ERR_ARG);
    expect_ok(head_create(&hd, &hk));
    assert_int_equal(head_run(hk, 1, x, NULL), SLIM_ERR_ARG);
    head_destroy(hk);
}

/* The settings a kernel reports are those it was created with (the
 * runtime's plan listing reads them), without the borrowed pointers. */
static void test_own_settings_kept(void **state) {
    (void)state;
    float wt[18 * 3 * 9] = {0}, bias[18] = {0};
    const wino_desc wd = {.cin = 3,
                          .cout = 18,
                          .h = 5,
                          .w = 6,
                          .weights = wt,
                          .bias = bias,
                          .relu = 1,
                          .pool = 1,
                          .in_padded = 1,
                          .out_padded = 1};
    wino_conv *wc = NULL;
    expect_ok(wino_create(&wd, &wc));
    const wino_desc *got = wino_settings(wc);
    assert_true(got->cin == 3 && got->cout == 18 && got->h == 5 && got->w == 6);
    assert_true(got->relu && !got->sum && got->pool && got->in_padded && !got->in_narrow &&
                got->out_padded);
    assert_true(!got->weights && !got->bias && !got->biasmap);
    assert_true(wino_scratch_bytes(wc, 2) >= 2 * wino_scratch_bytes(wc, 1));
    wino_destroy(wc);
    const stem_desc sd = {.cin = 1,
                          .cout = 18,
                          .h = 5,
                          .w = 6,
                          .weights = wt,
                          .sum = 1,
                          .out_padded = 1,
                          .out_narrow = 1};
    stem_conv *sc = NULL;
    expect_ok(stem_create(&sd, &sc));
    const stem_desc *sgot = stem_settings(sc);
    assert_true(sgot->cin == 1 && sgot->cout == 18 && sgot->h == 5 && sgot->w == 6);
    assert_true(!sgot->relu && sgot->sum && sgot->out_padded && sgot->out_narrow);
    assert_true(!sgot->weights && !sgot->bias && !sgot->biasmap);
    stem_destroy(sc);
}

/* Our head (global average pool + dense) against the plain computation:
 * its blocked input holds NaN in its padding channels, which must not
 * reach the outputs; outputs beyond k must not be written. */
static void head_case(int n, int c, int k, int h, int w, int with_bias, int relu, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 5);
    const int hw = h * w;
    float *x = malloc((size_t)n * c * hw * sizeof(float));
    float *wt = malloc((size_t)k * c * sizeof(float)), *b = malloc((size_t)k * sizeof(float));
    float *want = malloc(((size_t)n * k + 1) * sizeof(float));
    float *got = malloc(((size_t)n * k + 1) * sizeof(float));
    tu_fill_uniform(&rng, x, (size_t)n * c * hw, -1, 1);
    tu_fill_uniform(&rng, wt, (size_t)k * c, -0.5f, 0.5f);
    tu_fill_uniform(&rng, b, (size_t)k, -0.5f, 0.5f);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < k; o++) {
            double acc = with_bias ? b[o] : 0.0;
            for (int ch = 0; ch < c; ch++) {
                double mean = 0;
                for (int p = 0; p < hw; p++)
                    mean += x[((size_t)i * c + ch) * hw + p];
                acc += wt[(size_t)o * c + ch] * (mean / hw);
            }
            want[(size_t)i * k + o] = (float)(relu && acc < 0 ? 0 : acc);
        }
    float *xb = to_blocks(n, c, hw, x, NAN);
    const head_desc d = {.c = c,
                         .k = k,
                         .h = h,
                         .w = w,
                         .weights = wt,
                         .bias = with_bias ? b : NULL,
                         .relu = relu,
                         .impl = own_build};
    head_kernel *hd = NULL;
    expect_ok(head_create(&d, &hd));
    got[(size_t)n * k] = want[(size_t)n * k] = -7.0f; /* past the end: untouched */
    expect_ok(head_run(hd, n, xb, got));
    char what[120];
    snprintf(what, sizeof what, "head (%s) n%d %d(%dx%d)->%d bias%d relu%d",
             own_impl_name(own_build), n, c, h, w, k, with_bias, relu);
    expect_close(got, want, (size_t)n * k + 1, 1e-5 * (1 + c / 16.0), what);
    head_destroy(hd);
    free(x);
    free(wt);
    free(b);
    free(want);
    free(got);
    free(xb);
}

static void head_cases(void) {
    /* vgg-fm's (unpruned and pruned), channels and outputs on both sides of
     * 16, one pixel, pixel counts below and above a multiple of 4. */
    head_case(8, 128, 10, 7, 7, 1, 0, 71);
    head_case(3, 70, 10, 7, 7, 1, 0, 72);
    head_case(2, 5, 1, 1, 1, 0, 1, 73);
    head_case(2, 33, 40, 3, 5, 1, 1, 74);
    head_case(1, 16, 16, 2, 2, 1, 1, 75);
    head_case(2, 17, 33, 1, 3, 0, 0, 76);
}

static void test_head(void **state) {
    (void)state;
    on_each_build(head_cases);
}

/* ---- threads ---------------------------------------------------------- */

static void test_threads(void **state) {
    (void)state;
    int before = slim_get_threads();
    slim_set_threads(1);
    assert_int_equal(slim_get_threads(), 1);
    slim_dnnl_cache *cache = NULL;
    conv_case(&cache, conv_shapes[5], 1, 0, 1100); /* one thread gives the same results */
    slim_set_threads(2);
    assert_int_equal(slim_get_threads(), 2);
    conv_case(&cache, conv_shapes[5], 1, 0, 1101);
    slim_dnnl_cache_free(cache);
    slim_set_threads(before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_grouped),
        cmocka_unit_test(test_conv_rebuild),
        cmocka_unit_test(test_conv_backward_first),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_bn),
        cmocka_unit_test(test_bn_rebuild),
        cmocka_unit_test(test_bn_eval_only),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_rebuild),
        cmocka_unit_test(test_maxpool_needs_forward),
        cmocka_unit_test(test_shared_buffers),
        cmocka_unit_test(test_relu_op),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_wino),
        cmocka_unit_test(test_stem),
        cmocka_unit_test(test_own_conv_layouts),
        cmocka_unit_test(test_own_conv_settings),
        cmocka_unit_test(test_own_lifecycle_errors),
        cmocka_unit_test(test_own_settings_kept),
        cmocka_unit_test(test_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
