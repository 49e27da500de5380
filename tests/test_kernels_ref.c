/* Reference kernels: forward values on hand-worked examples, and every
 * backward against finite differences.
 *
 * Gradient checks use the scalar L = sum_i y_i r_i with r fixed and random
 * in [-1, 1), summed in double, so dL/dy = r. The analytic gradient comes
 * from the backward kernel run on buffers pre-filled with PREFILL, minus
 * PREFILL: this also checks that backward ADDS instead of overwriting.
 *
 * Tolerance: central differences with h = 1e-2 on float32 data of order 1.
 * Linear ops (dense, conv, pooling, gap) have no truncation error; for
 * softmax and batch norm it is O(h^2 |f'''|) ~ 1e-4 at most. Rounding: L is
 * a sum of <= 500 float32 outputs, each within a few ulps, so L is off by
 * ~1e-6, i.e. ~5e-5 after dividing by 2h (the errors observed are <= 4e-5).
 * TOL = 1e-3, measured as |num - ana| / max(1, |num|, |ana|), keeps a 20x
 * margin over that, while a wrong gradient (a missing term, a swapped
 * index, an overwrite) is off by O(0.01..1). ReLU inputs stay >= 0.1 away from 0 and max pooling
 * inputs are distinct by >= 0.05, so no kink lies within h. */
#include "testutil.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define H 1e-2f
#define TOL 1e-3
#define PREFILL 0.25f
#define ALL ((size_t)-1) /* check every entry */

/* ---- helpers ---------------------------------------------------------- */

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static float *frand(slim_rng *rng, size_t n, float lo, float hi) {
    float *p = falloc(n);
    tu_fill_uniform(rng, p, n, lo, hi);
    return p;
}

static float *fconst(size_t n, float v) {
    float *p = falloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

/* Removes the pre-fill so the buffer holds what backward added. */
static void unfill(float *g, size_t n) {
    for (size_t i = 0; i < n; i++)
        g[i] -= PREFILL;
}

static double dot(const float *y, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)y[i] * r[i];
    return s;
}

/* Values spaced `gap` apart in random order: max pooling without ties. */
static float *fdistinct(slim_rng *rng, size_t n, float gap) {
    float *p = falloc(n);
    uint32_t *perm = malloc(n * sizeof *perm);
    assert_non_null(perm);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    slim_rng_shuffle(rng, perm, n);
    for (size_t i = 0; i < n; i++)
        p[i] = gap * ((float)perm[i] - (float)n / 2);
    free(perm);
    return p;
}

static void check_grad(tu_loss_fn loss, void *ctx, float *param, const float *analytic, size_t n,
                       slim_rng *rng, const char *what) {
    double err = tu_gradcheck(loss, ctx, param, analytic, n, H, ALL, rng);
    if (!(err <= TOL)) fail_msg("%s: gradient error %g > %g", what, err, TOL);
}

static void assert_close(const float *a, const float *b, size_t n, double tol) {
    double d = tu_max_abs_diff(a, b, n);
    if (!(d <= tol)) fail_msg("max |diff| %g > %g", d, tol);
}

/* ---- shapes ----------------------------------------------------------- */

static void test_shapes(void **state) {
    (void)state;
    slim_conv_shape s = {
        .n = 1, .cin = 3, .h = 5, .w = 7, .cout = 2, .kh = 3, .kw = 3, .stride = 2, .pad = 1};
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    assert_int_equal(s.oh, 3); /* (5 + 2 - 3) / 2 + 1 */
    assert_int_equal(s.ow, 4); /* (7 + 2 - 3) / 2 + 1 */
    s.pad = 0;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    assert_int_equal(s.oh, 2); /* floor(2 / 2) + 1 */
    assert_int_equal(s.ow, 3);
    s.kh = 6; /* taller than the input */
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);
    s.kh = 3;
    s.stride = 0;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);
    s.stride = 1;
    s.pad = -1;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);
    s.pad = 0;
    /* groups 0 means 1; groups must divide both channel counts. */
    assert_int_equal(s.groups, 1);
    s.cin = 4;
    s.cout = 6;
    s.groups = 2;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    s.groups = 3; /* divides cout, not cin */
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);
    s.groups = 4; /* divides cin, not cout */
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);
    s.groups = -2;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);
    s.groups = 1;
    s.cin = 0;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_ERR_SHAPE);

    slim_pool_shape p = {.n = 2, .c = 3, .h = 5, .w = 7, .k = 2, .stride = 2, .pad = 0};
    assert_int_equal(slim_pool_shape_finish(&p), SLIM_OK);
    assert_int_equal(p.oh, 2);
    assert_int_equal(p.ow, 3);
    p.k = 3;
    p.pad = 1;
    assert_int_equal(slim_pool_shape_finish(&p), SLIM_OK);
    assert_int_equal(p.oh, 3);
    assert_int_equal(p.ow, 4);
    p.pad = 3; /* a window could lie wholly in the padding */
    assert_int_equal(slim_pool_shape_finish(&p), SLIM_ERR_SHAPE);
    p.pad = 0;
    p.k = 8;
    assert_int_equal(slim_pool_shape_finish(&p), SLIM_ERR_SHAPE);
}

/* ---- dense ------------------------------------------------------------ */

static void test_dense_forward(void **state) {
    (void)state;
    /* x = [[1, 2, 3], [-1, 0, 2]], w = [[1, 0, -1], [2, 1, 0]], b = [0.5, -1]
     * y = x w^T + b = [[1 - 3, 2 + 2] + b, [-1 - 2, -2 + 0] + b]. */
    const float x[] = {1, 2, 3, -1, 0, 2};
    const float w[] = {1, 0, -1, 2, 1, 0};
    const float b[] = {0.5f, -1};
    const float want[] = {-1.5f, 3, -2.5f, -3};
    const float want_nob[] = {-2, 4, -3, -2};
    float y[4];
    slim_ref_dense_forward(2, 3, 2, x, w, b, y);
    assert_close(y, want, 4, 0);
    slim_ref_dense_forward(2, 3, 2, x, w, NULL, y);
    assert_close(y, want_nob, 4, 0);
}

typedef struct dense_ctx {
    int n, in, out;
    float *x, *w, *b, *y, *r;
} dense_ctx;

static double dense_loss(void *p) {
    dense_ctx *c = p;
    slim_ref_dense_forward(c->n, c->in, c->out, c->x, c->w, c->b, c->y);
    return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void test_dense_grad(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 1, 1);
    dense_ctx c = {.n = 3, .in = 5, .out = 4};
    size_t nx = 15, nw = 20;
    c.x = frand(&rng, nx, -1, 1);
    c.w = frand(&rng, nw, -1, 1);
    c.b = frand(&rng, 4, -1, 1);
    c.y = falloc(12);
    c.r = frand(&rng, 12, -1, 1);
    float *dx = fconst(nx, PREFILL), *dw = fconst(nw, PREFILL), *db = fconst(4, PREFILL);
    slim_ref_dense_backward(c.n, c.in, c.out, c.x, c.w, c.r, dx, dw, db);
    unfill(dx, nx);
    unfill(dw, nw);
    unfill(db, 4);
    check_grad(dense_loss, &c, c.x, dx, nx, &rng, "dense dx");
    check_grad(dense_loss, &c, c.w, dw, nw, &rng, "dense dw");
    check_grad(dense_loss, &c, c.b, db, 4, &rng, "dense db");
    /* NULL gradients are skipped; the others are unchanged by that. */
    float *db2 = fconst(4, 0);
    slim_ref_dense_backward(c.n, c.in, c.out, c.x, c.w, c.r, NULL, NULL, db2);
    assert_close(db2, db, 4, 1e-6);
    free(db2);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
}

/* ---- relu and add ----------------------------------------------------- */

typedef struct relu_ctx {
    size_t n;
    float *x, *y, *r;
} relu_ctx;

static double relu_loss(void *p) {
    relu_ctx *c = p;
    slim_ref_relu_forward(c->n, c->x, c->y);
    return dot(c->y, c->r, c->n);
}

static void test_relu(void **state) {
    (void)state;
    const float x0[] = {-2, -0.5f, 0, 0.5f, 3};
    const float want[] = {0, 0, 0, 0.5f, 3};
    float y0[5];
    slim_ref_relu_forward(5, x0, y0);
    assert_close(y0, want, 5, 0);

    slim_rng rng;
    slim_rng_seed(&rng, 2, 1);
    relu_ctx c = {.n = 40};
    c.x = frand(&rng, c.n, 0.1f, 1);
    for (size_t i = 0; i < c.n; i += 2)
        c.x[i] = -c.x[i]; /* half negative, |x| >= 0.1 */
    c.y = falloc(c.n);
    c.r = frand(&rng, c.n, -1, 1);
    float *dx = fconst(c.n, PREFILL);
    relu_loss(&c);
    slim_ref_relu_backward(c.n, c.y, c.r, dx);
    unfill(dx, c.n);
    check_grad(relu_loss, &c, c.x, dx, c.n, &rng, "relu dx");
    free(c.x), free(c.y), free(c.r), free(dx);
}

static void test_relu6(void **state) {
    (void)state;
    const float x[] = {-2, 0, 0.5f, 5.5f, 6, 7};
    const float want[] = {0, 0, 0.5f, 5.5f, 6, 6};
    float y[6];
    slim_ref_relu6_forward(6, x, y);
    assert_close(y, want, 6, 0);
    /* Gradient only where 0 < x < 6: none at either kink; it adds. */
    const float dy[] = {1, 2, 3, 4, 5, 6};
    float dx[] = {1, 1, 1, 1, 1, 1};
    const float want_dx[] = {1, 1, 4, 5, 1, 1};
    slim_ref_relu6_backward(6, y, dy, dx);
    assert_close(dx, want_dx, 6, 0);
}

static void test_concat(void **state) {
    (void)state;
    /* n = 2, hw = 2: a (2 channels), b (1 channel), then a again. */
    const float a[] = {1, 2, 3, 4, /* image 1 */ 5, 6, 7, 8};
    const float b[] = {-1, -2, /* image 1 */ -3, -4};
    const float *xs[] = {a, b, a};
    const int c[] = {2, 1, 2};
    const float want[] = {1, 2, 3, 4, -1, -2, 1, 2, 3, 4, /* image 1 */
                          5, 6, 7, 8, -3, -4, 5, 6, 7, 8};
    float y[20];
    slim_ref_concat_forward(2, 3, c, 2, xs, y);
    assert_close(y, want, 20, 0);
    /* Backward: a's two slices add; b's slice lands; NULL skipped. */
    float dy[20], da[8], db[4] = {10, 10, 10, 10};
    for (int i = 0; i < 20; i++)
        dy[i] = (float)i;
    memset(da, 0, sizeof da);
    float *dx[] = {da, db, da};
    slim_ref_concat_backward(2, 3, c, 2, dy, dx);
    const float want_da[] = {0 + 6, 1 + 7, 2 + 8, 3 + 9, 10 + 16, 11 + 17, 12 + 18, 13 + 19};
    const float want_db[] = {14, 15, 24, 25};
    assert_close(da, want_da, 8, 0);
    assert_close(db, want_db, 4, 0);
    float *skip[] = {NULL, db, NULL};
    slim_ref_concat_backward(2, 3, c, 2, dy, skip);
    const float want_db2[] = {18, 20, 38, 40};
    assert_close(db, want_db2, 4, 0);
}

static void test_add(void **state) {
    (void)state;
    const float a[] = {1, 2, 3}, b[] = {0.5f, -2, 4}, want[] = {1.5f, 0, 7};
    float y[3];
    slim_ref_add_forward(3, a, b, y);
    assert_close(y, want, 3, 0);
    const float dy[] = {1, -1, 2};
    float da[] = {1, 1, 1}, db[] = {0, 0, 0};
    const float want_da[] = {2, 0, 3};
    slim_ref_add_backward(3, dy, da, db);
    assert_close(da, want_da, 3, 0);
    assert_close(db, dy, 3, 0);
    slim_ref_add_backward(3, dy, NULL, db); /* NULL skipped */
    const float want_db[] = {2, -2, 4};
    assert_close(db, want_db, 3, 0);
}

/* ---- softmax cross-entropy -------------------------------------------- */

typedef struct xent_ctx {
    int n, k;
    float scale;
    float *logits, *prob;
    int32_t *labels;
} xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    return c->scale *
           (double)slim_ref_softmax_xent_forward(c->n, c->k, c->logits, c->labels, c->prob);
}

static void test_softmax_xent(void **state) {
    (void)state;
    /* Equal logits: every prob is 1/k and the loss log k, even when the
     * logits are huge (the max is subtracted before exp). */
    const float flat[] = {1000, 1000, 1000, 1000, -3, -3, -3, -3};
    const int32_t lab[] = {2, 0};
    float prob[8];
    float loss = slim_ref_softmax_xent_forward(2, 4, flat, lab, prob);
    assert_true(fabs(loss - log(4.0)) < 1e-6);
    for (int i = 0; i < 8; i++)
        assert_true(fabs(prob[i] - 0.25) < 1e-7);
    /* logits (0, ln 3): probs (1/4, 3/4); label 1 -> loss ln(4/3). */
    const float two[] = {0, (float)log(3.0)};
    const int32_t lab1[] = {1};
    loss = slim_ref_softmax_xent_forward(1, 2, two, lab1, prob);
    assert_true(fabs(loss - log(4.0 / 3.0)) < 1e-6);
    assert_true(fabs(prob[0] - 0.25) < 1e-6 && fabs(prob[1] - 0.75) < 1e-6);
    /* An out-of-range label makes the loss NaN rather than read wild. */
    const int32_t bad[] = {5};
    assert_true(isnan(slim_ref_softmax_xent_forward(1, 2, two, bad, prob)));

    slim_rng rng;
    slim_rng_seed(&rng, 3, 1);
    xent_ctx c = {.n = 4, .k = 5, .scale = 0.7f};
    int32_t labels[] = {0, 4, 2, 2};
    c.labels = labels;
    c.logits = frand(&rng, 20, -3, 3);
    c.prob = falloc(20);
    float *d = fconst(20, PREFILL);
    xent_loss(&c);
    slim_ref_softmax_xent_backward(c.n, c.k, c.prob, c.labels, c.scale, d);
    unfill(d, 20);
    check_grad(xent_loss, &c, c.logits, d, 20, &rng, "softmax xent dlogits");
    free(c.logits), free(c.prob), free(d);
}

/* ---- conv2d ----------------------------------------------------------- */

static void test_conv_forward(void **state) {
    (void)state;
    /* x = 1..9 as 3x3, w = [[1, 2], [3, 4]], stride 1, no pad (a kernel that
     * is not symmetric, so a flipped kernel would show):
     * y00 = 1 + 2*2 + 3*4 + 4*5 = 37, y01 = 2 + 6 + 15 + 24 = 47,
     * y10 = 4 + 10 + 21 + 32 = 67, y11 = 5 + 12 + 24 + 36 = 77; plus b. */
    const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[] = {1, 2, 3, 4};
    const float b[] = {0.5f};
    slim_conv_shape s = {
        .n = 1, .cin = 1, .h = 3, .w = 3, .cout = 1, .kh = 2, .kw = 2, .stride = 1, .pad = 0};
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    float y[4];
    const float want[] = {37.5f, 47.5f, 67.5f, 77.5f};
    slim_ref_conv2d_forward(&s, x, w, b, y);
    assert_close(y, want, 4, 0);
    /* 3x3 kernel of ones, stride 2, pad 1: each output sums the 2x2 corner
     * block it overlaps: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9. */
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    s = (slim_conv_shape){
        .n = 1, .cin = 1, .h = 3, .w = 3, .cout = 1, .kh = 3, .kw = 3, .stride = 2, .pad = 1};
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    const float want2[] = {12, 16, 24, 28};
    slim_ref_conv2d_forward(&s, x, ones, NULL, y);
    assert_close(y, want2, 4, 0);
    /* Two input channels add up: the same x twice with w and 2 w. */
    float x2[18], w2[8];
    memcpy(x2, x, sizeof x), memcpy(x2 + 9, x, sizeof x);
    for (int i = 0; i < 4; i++)
        w2[i] = w[i], w2[4 + i] = 2 * w[i];
    s = (slim_conv_shape){
        .n = 1, .cin = 2, .h = 3, .w = 3, .cout = 1, .kh = 2, .kw = 2, .stride = 1, .pad = 0};
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    const float want3[] = {111, 141, 201, 231};
    slim_ref_conv2d_forward(&s, x2, w2, NULL, y);
    assert_close(y, want3, 4, 0);
}

typedef struct conv_ctx {
    slim_conv_shape s;
    float *x, *w, *b, *y, *r;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *c = p;
    slim_ref_conv2d_forward(&c->s, c->x, c->w, c->b, c->y);
    return dot(c->y, c->r, (size_t)c->s.n * c->s.cout * c->s.oh * c->s.ow);
}

static void conv_grad_case(slim_conv_shape s, uint64_t seed) {
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 4);
    conv_ctx c = {.s = s};
    size_t nx = (size_t)s.n * s.cin * s.h * s.w;
    size_t nw = (size_t)s.cout * (s.cin / s.groups) * s.kh * s.kw;
    size_t ny = (size_t)s.n * s.cout * s.oh * s.ow;
    c.x = frand(&rng, nx, -1, 1);
    c.w = frand(&rng, nw, -1, 1);
    c.b = frand(&rng, (size_t)s.cout, -1, 1);
    c.y = falloc(ny);
    c.r = frand(&rng, ny, -1, 1);
    float *dx = fconst(nx, PREFILL), *dw = fconst(nw, PREFILL), *db = fconst(s.cout, PREFILL);
    slim_ref_conv2d_backward(&s, c.x, c.w, c.r, dx, dw, db);
    unfill(dx, nx);
    unfill(dw, nw);
    unfill(db, s.cout);
    check_grad(conv_loss, &c, c.x, dx, nx, &rng, "conv dx");
    check_grad(conv_loss, &c, c.w, dw, nw, &rng, "conv dw");
    check_grad(conv_loss, &c, c.b, db, s.cout, &rng, "conv db");
    /* Each gradient alone (the others NULL) gives the same values. */
    float *g = falloc(nx > nw ? nx : nw);
    slim_ref_conv2d_backward(&s, c.x, c.w, c.r, g, NULL, NULL);
    assert_close(g, dx, nx, 1e-6);
    memset(g, 0, nw * sizeof *g);
    slim_ref_conv2d_backward(&s, c.x, c.w, c.r, NULL, g, NULL);
    assert_close(g, dw, nw, 1e-6);
    free(g);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
}

static void test_conv_grad(void **state) {
    (void)state;
    /* stride 2 pad 1 on a non-square image, batch 2, cin 3 */
    conv_grad_case(
        (slim_conv_shape){
            .n = 2, .cin = 3, .h = 5, .w = 7, .cout = 4, .kh = 3, .kw = 3, .stride = 2, .pad = 1},
        10);
    /* stride 2 pad 0 (the last column is never read), batch 1 */
    conv_grad_case(
        (slim_conv_shape){
            .n = 1, .cin = 3, .h = 5, .w = 7, .cout = 2, .kh = 3, .kw = 3, .stride = 2, .pad = 0},
        11);
    /* 'same' 3x3 and a 1x1 kernel */
    conv_grad_case(
        (slim_conv_shape){
            .n = 1, .cin = 3, .h = 5, .w = 7, .cout = 3, .kh = 3, .kw = 3, .stride = 1, .pad = 1},
        12);
    conv_grad_case(
        (slim_conv_shape){
            .n = 2, .cin = 2, .h = 6, .w = 5, .cout = 3, .kh = 1, .kw = 1, .stride = 1, .pad = 0},
        13);
    /* rectangular kernel, stride 3 */
    conv_grad_case(
        (slim_conv_shape){
            .n = 1, .cin = 2, .h = 7, .w = 6, .cout = 2, .kh = 2, .kw = 3, .stride = 3, .pad = 1},
        14);
    /* depthwise, stride 2 padded; grouped with unequal channels per group */
    slim_conv_shape dw = {.n = 2, .cin = 3, .h = 5, .w = 6, .cout = 3, .kh = 3, .kw = 3};
    dw.stride = 2, dw.pad = 1, dw.groups = 3;
    conv_grad_case(dw, 15);
    slim_conv_shape gr = {.n = 1, .cin = 4, .h = 5, .w = 5, .cout = 6, .kh = 3, .kw = 3};
    gr.stride = 1, gr.pad = 1, gr.groups = 2;
    conv_grad_case(gr, 16);
}

/* A grouped convolution is `groups` plain ones, each on its own slice of
 * the input channels, with its own slice of the filters. */
static void test_conv_grouped_forward(void **state) {
    (void)state;
    enum { N = 2, CIN = 6, HH = 5, WW = 4, COUT = 4, G = 2, K = 3 };
    slim_conv_shape s = {.n = N, .cin = CIN, .h = HH, .w = WW, .cout = COUT, .kh = K, .kw = K};
    s.stride = 2, s.pad = 1, s.groups = G;
    assert_int_equal(slim_conv_shape_finish(&s), SLIM_OK);
    slim_conv_shape part = s;
    part.n = 1;
    part.cin = CIN / G;
    part.cout = COUT / G;
    part.groups = 1;
    slim_rng rng;
    slim_rng_seed(&rng, 17, 4);
    const size_t plane = (size_t)HH * WW, oplane = (size_t)s.oh * s.ow;
    const size_t wsize = (size_t)(CIN / G) * K * K;
    float *x = frand(&rng, (size_t)N * CIN * plane, -1, 1);
    float *w = frand(&rng, (size_t)COUT * wsize, -1, 1);
    float *b = frand(&rng, COUT, -1, 1);
    float *y = falloc((size_t)N * COUT * oplane), *yp = falloc((size_t)(COUT / G) * oplane);
    slim_ref_conv2d_forward(&s, x, w, b, y);
    for (int i = 0; i < N; i++)
        for (int g = 0; g < G; g++) {
            const float *xg = x + ((size_t)i * CIN + (size_t)g * (CIN / G)) * plane;
            const float *wg = w + (size_t)g * (COUT / G) * wsize;
            slim_ref_conv2d_forward(&part, xg, wg, b + g * (COUT / G), yp);
            assert_close(y + ((size_t)i * COUT + (size_t)g * (COUT / G)) * oplane, yp,
                         (size_t)(COUT / G) * oplane, 0);
        }
    free(x), free(w), free(b), free(y), free(yp);
}

/* ---- batch norm ------------------------------------------------------- */

static void test_bn_running_stats(void **state) {
    (void)state;
    /* n = 2, c = 1, hw = 2, x = {1, 2 | 3, 6}: m = 4, mean = 12 / 4 = 3,
     * squared deviations 4 + 1 + 0 + 9 = 14, biased var = 14 / 4 = 3.5,
     * unbiased var = 14 / 3. With momentum 0.1 from running (0, 1):
     *   running_mean = 0.9 * 0 + 0.1 * 3      = 0.3,
     *   running_var  = 0.9 * 1 + 0.1 * 14 / 3 = 0.9 + 0.46667 = 1.366667.
     * y = gamma (x - 3) / sqrt(3.5 + eps) + beta with gamma 2, beta 1. */
    const float x[] = {1, 2, 3, 6};
    const float gamma[] = {2}, beta[] = {1};
    float rm[] = {0}, rv[] = {1}, sm[1], sv[1], y[4];
    const float eps = 1e-5f;
    slim_ref_bn_forward_train(2, 1, 2, x, gamma, beta, eps, 0.1f, rm, rv, y, sm, sv, NULL);
    assert_true(fabs(sm[0] - 3.0) < 1e-6);
    assert_true(fabs(sv[0] - 3.5) < 1e-6);
    assert_true(fabs(rm[0] - 0.3) < 1e-6);
    assert_true(fabs(rv[0] - (0.9 + 0.1 * 14.0 / 3.0)) < 1e-6);
    for (int i = 0; i < 4; i++) {
        double want = 2.0 * (x[i] - 3.0) / sqrt(3.5 + eps) + 1.0;
        assert_true(fabs(y[i] - want) < 1e-5);
    }
    /* A second step moves the running stats on from where they are. */
    slim_ref_bn_forward_train(2, 1, 2, x, gamma, beta, eps, 0.1f, rm, rv, y, sm, sv, NULL);
    assert_true(fabs(rm[0] - (0.9 * 0.3 + 0.3)) < 1e-6);
    assert_true(fabs(rv[0] - (0.9 * (0.9 + 0.1 * 14.0 / 3.0) + 0.1 * 14.0 / 3.0)) < 1e-6);
    /* Eval uses the running stats, not the batch: x = 3 with mean 0.57,
     * var 1.7 -> 2 (3 - 0.57) / sqrt(1.7 + eps) + 1. */
    float ye[4];
    slim_ref_bn_forward_eval(2, 1, 2, x, gamma, beta, eps, rm, rv, ye);
    for (int i = 0; i < 4; i++) {
        double want = 2.0 * (x[i] - (double)rm[0]) / sqrt((double)rv[0] + eps) + 1.0;
        assert_true(fabs(ye[i] - want) < 1e-5);
    }
}

static void test_bn_forward(void **state) {
    (void)state;
    /* gamma = 1, beta = 0: every channel comes out with mean 0, variance 1
     * (up to eps), whatever its input scale and offset. */
    enum { N = 3, C = 2, HW = 4 };
    slim_rng rng;
    slim_rng_seed(&rng, 5, 1);
    float x[N * C * HW], y[N * C * HW], sm[C], sv[C];
    tu_fill_uniform(&rng, x, N * C * HW, -1, 1);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < HW; j++)
            x[(i * C + 1) * HW + j] = 10 + 5 * x[(i * C + 1) * HW + j];
    const float gamma[] = {1, 1}, beta[] = {0, 0};
    slim_ref_bn_forward_train(N, C, HW, x, gamma, beta, 1e-5f, 0.1f, NULL, NULL, y, sm, sv, NULL);
    for (int ch = 0; ch < C; ch++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double v = y[(i * C + ch) * HW + j];
                s += v, s2 += v * v;
            }
        assert_true(fabs(s / (N * HW)) < 1e-5);
        assert_true(fabs(s2 / (N * HW) - 1.0) < 1e-3);
    }
    assert_true(sm[1] > 5 && sv[1] > 1); /* channel 1 really was shifted and scaled */
}

typedef struct bn_ctx {
    int n, c, hw;
    float *x, *gamma, *beta, *y, *sm, *sv, *r;
} bn_ctx;

#define BN_EPS 1e-5f

static double bn_loss(void *p) {
    bn_ctx *c = p;
    slim_ref_bn_forward_train(c->n, c->c, c->hw, c->x, c->gamma, c->beta, BN_EPS, 0.1f, NULL, NULL,
                              c->y, c->sm, c->sv, NULL);
    return dot(c->y, c->r, (size_t)c->n * c->c * c->hw);
}

static void bn_grad_case(int n, int ch, int hw, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 6);
    bn_ctx c = {.n = n, .c = ch, .hw = hw};
    size_t nx = (size_t)n * ch * hw;
    c.x = frand(&rng, nx, -1, 2);
    c.gamma = frand(&rng, ch, 0.5f, 1.5f);
    c.beta = frand(&rng, ch, -1, 1);
    c.y = falloc(nx);
    c.sm = falloc(ch);
    c.sv = falloc(ch);
    c.r = frand(&rng, nx, -1, 1);
    float *dx = fconst(nx, PREFILL), *dg = fconst(ch, PREFILL), *dbeta = fconst(ch, PREFILL);
    bn_loss(&c);
    slim_ref_bn_backward(n, ch, hw, c.x, c.gamma, BN_EPS, c.sm, c.sv, c.r, dx, dg, dbeta, NULL);
    unfill(dx, nx);
    unfill(dg, ch);
    unfill(dbeta, ch);
    check_grad(bn_loss, &c, c.x, dx, nx, &rng, "bn dx");
    check_grad(bn_loss, &c, c.gamma, dg, ch, &rng, "bn dgamma");
    check_grad(bn_loss, &c, c.beta, dbeta, ch, &rng, "bn dbeta");
    free(c.x), free(c.gamma), free(c.beta), free(c.y), free(c.sm), free(c.sv), free(c.r);
    free(dx), free(dg), free(dbeta);
}

static void test_bn_grad(void **state) {
    (void)state;
    bn_grad_case(3, 2, 5, 20);
    bn_grad_case(1, 3, 35, 21); /* batch 1, a 5x7 image */
    bn_grad_case(6, 2, 1, 22);  /* BN after a dense layer */
}

/* ---- pooling ---------------------------------------------------------- */

static void test_pool_forward(void **state) {
    (void)state;
    /* x = 1..12 as 3x4 with a bump at (1,1); 2x2 max, stride 2:
     * windows {1,2,5,60} {3,4,7,8} -> 60 at index 5, 8 at index 7. */
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i + 1);
    x[5] = 60;
    slim_pool_shape s = {.n = 1, .c = 1, .h = 3, .w = 4, .k = 2, .stride = 2, .pad = 0};
    assert_int_equal(slim_pool_shape_finish(&s), SLIM_OK);
    assert_int_equal(s.oh * s.ow, 2);
    float y[12];
    int32_t am[12];
    slim_ref_maxpool_forward(&s, x, y, am);
    assert_true(y[0] == 60 && y[1] == 8);
    assert_true(am[0] == 5 && am[1] == 7);
    /* All-negative input with padding: the padding (0) must never win. */
    float neg[12];
    for (int i = 0; i < 12; i++)
        neg[i] = -(float)(i + 1);
    s = (slim_pool_shape){.n = 1, .c = 1, .h = 3, .w = 4, .k = 3, .stride = 2, .pad = 1};
    assert_int_equal(slim_pool_shape_finish(&s), SLIM_OK); /* 2x2 */
    slim_ref_maxpool_forward(&s, neg, y, am);
    /* windows rows {-1..1} cols {-1..1}: max of -1,-2,-5,-6 = -1 (index 0);
     * cols {1..3}: -2,-3,-4,-6,-7,-8 -> -2; rows {1..3}: -5 / -6. */
    const float wantmax[] = {-1, -2, -5, -6};
    assert_close(y, wantmax, 4, 0);
    assert_true(am[0] == 0 && am[1] == 1 && am[2] == 4 && am[3] == 5);
    /* Average with padding excluded: the corner window covers 4 inputs. */
    slim_ref_avgpool_forward(&s, neg, y);
    const float wantavg[] = {-(1 + 2 + 5 + 6) / 4.0f, -(2 + 3 + 4 + 6 + 7 + 8) / 6.0f,
                             -(5 + 6 + 9 + 10) / 4.0f, -(6 + 7 + 8 + 10 + 11 + 12) / 6.0f};
    assert_close(y, wantavg, 4, 1e-6);
    /* Global average: plane means. */
    slim_ref_gap_forward(1, 2, 6, x, y); /* two planes of 6 */
    assert_true(fabs(y[0] - (1 + 2 + 3 + 4 + 5 + 60) / 6.0) < 1e-5);
    assert_true(fabs(y[1] - (7 + 8 + 9 + 10 + 11 + 12) / 6.0) < 1e-5);
}

typedef struct pool_ctx {
    slim_pool_shape s;
    int kind; /* 0 max, 1 avg, 2 gap */
    float *x, *y, *r;
    int32_t *am;
} pool_ctx;

static size_t pool_out(const pool_ctx *c) {
    return c->kind == 2 ? (size_t)c->s.n * c->s.c : (size_t)c->s.n * c->s.c * c->s.oh * c->s.ow;
}

static double pool_loss(void *p) {
    pool_ctx *c = p;
    if (c->kind == 0)
        slim_ref_maxpool_forward(&c->s, c->x, c->y, c->am);
    else if (c->kind == 1)
        slim_ref_avgpool_forward(&c->s, c->x, c->y);
    else
        slim_ref_gap_forward(c->s.n, c->s.c, c->s.h * c->s.w, c->x, c->y);
    return dot(c->y, c->r, pool_out(c));
}

static void pool_grad_case(int kind, slim_pool_shape s, uint64_t seed) {
    assert_int_equal(slim_pool_shape_finish(&s), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 7);
    pool_ctx c = {.s = s, .kind = kind};
    size_t nx = (size_t)s.n * s.c * s.h * s.w;
    c.x = kind == 0 ? fdistinct(&rng, nx, 0.05f) : frand(&rng, nx, -1, 1);
    c.y = falloc(pool_out(&c));
    c.am = calloc(pool_out(&c), sizeof *c.am);
    assert_non_null(c.am);
    c.r = frand(&rng, pool_out(&c), -1, 1);
    float *dx = fconst(nx, PREFILL);
    pool_loss(&c);
    if (kind == 0)
        slim_ref_maxpool_backward(&s, c.am, c.r, dx);
    else if (kind == 1)
        slim_ref_avgpool_backward(&s, c.r, dx);
    else
        slim_ref_gap_backward(s.n, s.c, s.h * s.w, c.r, dx);
    unfill(dx, nx);
    static const char *names[] = {"maxpool dx", "avgpool dx", "gap dx"};
    check_grad(pool_loss, &c, c.x, dx, nx, &rng, names[kind]);
    free(c.x), free(c.y), free(c.am), free(c.r), free(dx);
}

static void test_pool_grad(void **state) {
    (void)state;
    slim_pool_shape a = {.n = 2, .c = 3, .h = 5, .w = 7, .k = 2, .stride = 2, .pad = 0};
    slim_pool_shape b = {.n = 1, .c = 3, .h = 5, .w = 7, .k = 3, .stride = 2, .pad = 1};
    slim_pool_shape o = {.n = 1, .c = 2, .h = 6, .w = 5, .k = 3, .stride = 1, .pad = 1};
    for (int kind = 0; kind < 2; kind++) {
        pool_grad_case(kind, a, 30 + kind);
        pool_grad_case(kind, b, 32 + kind);
        pool_grad_case(kind, o, 34 + kind); /* overlapping windows */
    }
    pool_grad_case(2, a, 36);
    pool_grad_case(2, b, 37);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),       cmocka_unit_test(test_dense_forward),
        cmocka_unit_test(test_dense_grad),   cmocka_unit_test(test_relu),
        cmocka_unit_test(test_add),          cmocka_unit_test(test_relu6),
        cmocka_unit_test(test_concat),       cmocka_unit_test(test_conv_grouped_forward),
        cmocka_unit_test(test_softmax_xent), cmocka_unit_test(test_conv_forward),
        cmocka_unit_test(test_conv_grad),    cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_bn_forward),   cmocka_unit_test(test_bn_grad),
        cmocka_unit_test(test_pool_forward), cmocka_unit_test(test_pool_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
