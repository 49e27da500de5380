/* Finite-difference gradient checks of every op through the tape, on the
 * reference backend.
 *
 * The scalar checked is L = sum_i y_i r_i with r fixed and random, computed
 * in double; the analytic gradient comes from the op's backward with
 * dL/dy = r. Central differences with h = 1e-2 on float32 inputs of order 1
 * have truncation error O(h^2 |f'''|) ~ 1e-4 and rounding error
 * ~ eps_f32 * |L| / h ~ 1e-4 for these sizes, so the tolerance is 5e-3,
 * measured as |num - ana| / max(1, |num|, |ana|). */
#include "testutil.h"

#include "slim/autograd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 5e-3

enum op_kind {
    OP_DENSE,
    OP_RELU,
    OP_XENT,
    OP_CONV,
    OP_BN,
    OP_MAXPOOL,
    OP_AVGPOOL,
    OP_GAP,
    OP_ADD,
    OP_FLATTEN_DENSE,
    OP_RELU6,
    OP_CONCAT
};

typedef struct case_t {
    enum op_kind kind;
    slim_tensor a, b, c; /* inputs (headers over the buffers below) */
    int has_b, has_c;
    int stride, pad, k, groups;
    int cat[5], n_cat; /* concat: the inputs, 0/1/2 for a/b/c, in order */
    float *r;          /* dL/dy */
    size_t out_n;      /* numel of the output */
    int32_t labels[8];
    float rm[16], rv[16];
} case_t;

static slim_status run(case_t *cs, slim_tape *tape, slim_tensor **y) {
    slim_tensor *a = &cs->a, *b = cs->has_b ? &cs->b : NULL, *c = cs->has_c ? &cs->c : NULL;
    switch (cs->kind) {
    case OP_DENSE: return slim_op_dense(tape, a, b, c, y);
    case OP_RELU: return slim_op_relu(tape, a, y);
    case OP_XENT: return slim_op_softmax_xent(tape, a, cs->labels, y);
    case OP_CONV:
        return slim_op_conv2d(tape, a, b, c, NULL, cs->stride, cs->pad, cs->groups, NULL, y);
    case OP_BN: return slim_op_batchnorm(tape, a, b, c, cs->rm, cs->rv, 1e-5f, 0.1f, 1, NULL, y);
    case OP_MAXPOOL: return slim_op_maxpool(tape, a, cs->k, cs->stride, cs->pad, NULL, y);
    case OP_AVGPOOL: return slim_op_avgpool(tape, a, cs->k, cs->stride, cs->pad, NULL, y);
    case OP_GAP: return slim_op_gap(tape, a, y);
    case OP_ADD: return slim_op_add(tape, a, b, y);
    case OP_FLATTEN_DENSE: {
        slim_tensor *f;
        SLIM_TRY(slim_op_flatten(tape, a, &f));
        return slim_op_dense(tape, f, b, c, y);
    }
    case OP_RELU6: return slim_op_relu6(tape, a, y);
    case OP_CONCAT: {
        slim_tensor *abc[3] = {a, b, c}, *xs[5];
        for (int j = 0; j < cs->n_cat; j++)
            xs[j] = abc[cs->cat[j]];
        return slim_op_concat(tape, cs->n_cat, xs, y);
    }
    }
    return SLIM_ERR_ARG;
}

static double loss_of(void *ctx) {
    case_t *cs = ctx;
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    tape.recording = 0;
    slim_tensor *y = NULL;
    assert_int_equal(run(cs, &tape, &y), SLIM_OK);
    double s = 0;
    for (size_t i = 0; i < slim_tensor_numel(y); i++)
        s += (double)y->data[i] * cs->r[i];
    slim_tape_free(&tape);
    return s;
}

static void alloc_input(slim_tensor *t, int ndim, const int *shape, slim_rng *rng, float lo,
                        float hi) {
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    size_t n = slim_tensor_numel(t);
    t->data = malloc(n * sizeof(float));
    t->grad = calloc(n, sizeof(float));
    t->requires_grad = 1;
    tu_fill_uniform(rng, t->data, n, lo, hi);
}

static void free_input(slim_tensor *t) {
    free(t->data);
    free(t->grad);
}

/* Runs forward with recording, seeds dL/dy = r, runs backward, then checks
 * every input's gradient against finite differences. */
static void check(case_t *cs, slim_rng *rng) {
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    tape.recording = 1;
    slim_tensor *y = NULL;
    assert_int_equal(run(cs, &tape, &y), SLIM_OK);
    cs->out_n = slim_tensor_numel(y);
    cs->r = malloc(cs->out_n * sizeof(float));
    tu_fill_uniform(rng, cs->r, cs->out_n, -1, 1);
    assert_non_null(y->grad);
    memcpy(y->grad, cs->r, cs->out_n * sizeof(float));
    for (slim_tape_node *node = tape.last; node; node = node->prev)
        assert_int_equal(node->backward(&tape, node), SLIM_OK);
    slim_tensor *ins[3] = {&cs->a, cs->has_b ? &cs->b : NULL, cs->has_c ? &cs->c : NULL};
    for (int i = 0; i < 3; i++) {
        if (!ins[i]) continue;
        size_t n = slim_tensor_numel(ins[i]);
        float *ana = malloc(n * sizeof(float));
        memcpy(ana, ins[i]->grad, n * sizeof(float));
        double err = tu_gradcheck(loss_of, cs, ins[i]->data, ana, n, 1e-2f, 200, rng);
        if (err > TOL)
            fail_msg("op %d input %d: gradient error %.3g > %.3g", cs->kind, i, err, TOL);
        free(ana);
    }
    free(cs->r);
    slim_tape_free(&tape);
    free_input(&cs->a);
    if (cs->has_b) free_input(&cs->b);
    if (cs->has_c) free_input(&cs->c);
}

static void test_dense(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 1, 1);
    case_t cs = {.kind = OP_DENSE, .has_b = 1, .has_c = 1};
    alloc_input(&cs.a, 2, (int[]){3, 5}, &rng, -1, 1);
    alloc_input(&cs.b, 2, (int[]){4, 5}, &rng, -1, 1);
    alloc_input(&cs.c, 1, (int[]){4}, &rng, -1, 1);
    check(&cs, &rng);
}

static void test_flatten_dense(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 2, 1);
    case_t cs = {.kind = OP_FLATTEN_DENSE, .has_b = 1, .has_c = 1};
    alloc_input(&cs.a, 4, (int[]){2, 3, 2, 2}, &rng, -1, 1);
    alloc_input(&cs.b, 2, (int[]){3, 12}, &rng, -1, 1);
    alloc_input(&cs.c, 1, (int[]){3}, &rng, -1, 1);
    check(&cs, &rng);
}

static void test_relu(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 3, 1);
    case_t cs = {.kind = OP_RELU};
    alloc_input(&cs.a, 2, (int[]){4, 6}, &rng, -1, 1);
    /* Keep inputs away from the kink, where the derivative is undefined. */
    for (int i = 0; i < 24; i++)
        if (fabsf(cs.a.data[i]) < 0.05f) cs.a.data[i] = 0.3f;
    check(&cs, &rng);
}

static void test_xent(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 4, 1);
    case_t cs = {.kind = OP_XENT, .labels = {0, 3, 2, 1}};
    alloc_input(&cs.a, 2, (int[]){4, 5}, &rng, -3, 3);
    check(&cs, &rng);
}

static void test_xent_stable(void **state) {
    (void)state;
    /* Huge logits must not overflow: the loss stays finite and correct. */
    float logits[4] = {1000.0f, 0.0f, -1000.0f, 999.0f};
    int32_t labels[1] = {3};
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    slim_tensor *x = slim_tape_wrap(&tape, logits, NULL, 2, (int[]){1, 4});
    slim_tensor *y;
    assert_int_equal(slim_op_softmax_xent(&tape, x, labels, &y), SLIM_OK);
    /* loss = logsumexp - 999 = 1000 + log(1 + e^-1 + ...) - 999 */
    assert_true(fabs(y->data[0] - (1.0 + log1p(exp(-1.0)))) < 1e-5);
    labels[0] = 4;
    assert_int_equal(slim_op_softmax_xent(&tape, x, labels, &y), SLIM_ERR_ARG);
    slim_tape_free(&tape);
}

static void conv_case(int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                      int groups, int bias, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    case_t cs = {
        .kind = OP_CONV, .has_b = 1, .has_c = bias, .stride = stride, .pad = pad, .groups = groups};
    alloc_input(&cs.a, 4, (int[]){n, cin, h, w}, &rng, -1, 1);
    alloc_input(&cs.b, 4, (int[]){cout, cin / groups, k, k}, &rng, -1, 1);
    if (bias) alloc_input(&cs.c, 1, (int[]){cout}, &rng, -1, 1);
    check(&cs, &rng);
}

static void test_conv(void **state) {
    (void)state;
    conv_case(2, 3, 5, 7, 4, 3, 1, 1, 1, 1, 5);
    conv_case(1, 2, 6, 5, 3, 3, 2, 1, 1, 0, 6);
    conv_case(2, 2, 7, 7, 2, 3, 2, 0, 1, 1, 7);
    conv_case(1, 3, 4, 4, 2, 1, 1, 0, 1, 1, 8);
}

static void test_conv_grouped(void **state) {
    (void)state;
    /* Depthwise (groups = cin = cout), stride 1 and 2, padded. */
    conv_case(2, 4, 5, 6, 4, 3, 1, 1, 4, 1, 21);
    conv_case(2, 3, 7, 7, 3, 3, 2, 1, 3, 0, 22);
    /* Depthwise with a channel multiplier: 2 outputs per input channel. */
    conv_case(1, 3, 5, 5, 6, 3, 1, 1, 3, 1, 23);
    /* Grouped, 1 < G < channels, unequal cin and cout per group. */
    conv_case(2, 6, 5, 5, 4, 3, 1, 1, 2, 1, 24);
    conv_case(1, 6, 6, 7, 9, 3, 2, 1, 3, 0, 25);
    conv_case(2, 4, 4, 4, 8, 1, 1, 0, 4, 1, 26);
}

static void test_conv_groups_mismatch(void **state) {
    (void)state;
    float x[2 * 4 * 9] = {0}, w[4 * 2 * 9] = {0};
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){2, 4, 3, 3});
    slim_tensor *wt = slim_tape_wrap(&tape, w, NULL, 4, (int[]){4, 2, 3, 3});
    slim_tensor *y = NULL;
    /* 4 input channels, 2 per group: only groups = 2 fits. */
    assert_int_equal(slim_op_conv2d(&tape, xt, wt, NULL, NULL, 1, 1, 2, NULL, &y), SLIM_OK);
    assert_int_equal(slim_op_conv2d(&tape, xt, wt, NULL, NULL, 1, 1, 1, NULL, &y), SLIM_ERR_SHAPE);
    assert_int_equal(slim_op_conv2d(&tape, xt, wt, NULL, NULL, 1, 1, 4, NULL, &y), SLIM_ERR_SHAPE);
    assert_int_equal(slim_op_conv2d(&tape, xt, wt, NULL, NULL, 1, 1, 0, NULL, &y), SLIM_ERR_ARG);
    /* 2 groups but 3 output channels: not divisible. */
    slim_tensor *w3 = slim_tape_wrap(&tape, w, NULL, 4, (int[]){3, 2, 3, 3});
    assert_int_equal(slim_op_conv2d(&tape, xt, w3, NULL, NULL, 1, 1, 2, NULL, &y), SLIM_ERR_SHAPE);
    slim_tape_free(&tape);
}

static void test_bn(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 9, 1);
    case_t cs = {.kind = OP_BN, .has_b = 1, .has_c = 1};
    alloc_input(&cs.a, 4, (int[]){3, 2, 3, 2}, &rng, -2, 2);
    alloc_input(&cs.b, 1, (int[]){2}, &rng, 0.5f, 1.5f);
    alloc_input(&cs.c, 1, (int[]){2}, &rng, -1, 1);
    for (int i = 0; i < 2; i++)
        cs.rm[i] = 0, cs.rv[i] = 1;
    check(&cs, &rng);
}

static void test_pools(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 10, 1);
    case_t mp = {.kind = OP_MAXPOOL, .k = 2, .stride = 2, .pad = 0};
    alloc_input(&mp.a, 4, (int[]){2, 2, 4, 6}, &rng, -1, 1);
    /* Distinct values with gaps larger than h keep the argmax stable under
     * the finite-difference perturbation. */
    for (int i = 0; i < 96; i++)
        mp.a.data[i] = (float)((i * 37) % 96) * 0.05f;
    check(&mp, &rng);
    case_t ap = {.kind = OP_AVGPOOL, .k = 3, .stride = 2, .pad = 1};
    alloc_input(&ap.a, 4, (int[]){1, 2, 5, 7}, &rng, -1, 1);
    check(&ap, &rng);
    case_t gp = {.kind = OP_GAP};
    alloc_input(&gp.a, 4, (int[]){2, 3, 3, 5}, &rng, -1, 1);
    check(&gp, &rng);
}

static void test_add(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 11, 1);
    case_t cs = {.kind = OP_ADD, .has_b = 1};
    alloc_input(&cs.a, 4, (int[]){2, 3, 2, 2}, &rng, -1, 1);
    alloc_input(&cs.b, 4, (int[]){2, 3, 2, 2}, &rng, -1, 1);
    check(&cs, &rng);
}

static void test_relu6(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 12, 1);
    case_t cs = {.kind = OP_RELU6};
    alloc_input(&cs.a, 2, (int[]){6, 10}, &rng, -2, 8);
    /* Half the values within 0.25 of a kink (either side, both kinks), all
     * more than the step h = 1e-2 away from it, where the derivative is
     * undefined. */
    for (int i = 0; i < 60; i += 2) {
        float off = 0.02f + 0.23f * (float)((i * 7) % 10) / 10.0f;
        float kink = (i / 2) % 2 ? 6.0f : 0.0f;
        cs.a.data[i] = kink + ((i / 4) % 2 ? off : -off);
    }
    check(&cs, &rng);
}

static void test_relu6_ties(void **state) {
    (void)state;
    /* Forward clamps to [0, 6]; the gradient passes only where 0 < x < 6:
     * none at x = 0 or x = 6 exactly (PyTorch's hardtanh convention). */
    float x[7] = {-1.0f, 0.0f, 1e-6f, 3.0f, 6.0f - 1e-5f, 6.0f, 7.5f};
    float g[7] = {0}, ones[7] = {1, 1, 1, 1, 1, 1, 1};
    const float want_y[7] = {0.0f, 0.0f, 1e-6f, 3.0f, 6.0f - 1e-5f, 6.0f, 6.0f};
    const float want_g[7] = {0, 0, 1, 1, 1, 0, 0};
    for (int backend = 0; backend < 2; backend++) {
        slim_tape tape;
        slim_tape_init(&tape, backend ? SLIM_BACKEND_FAST : SLIM_BACKEND_REF);
        tape.recording = 1;
        slim_tensor *xt = slim_tape_wrap(&tape, x, g, 1, (int[]){7}), *y;
        assert_int_equal(slim_op_relu6(&tape, xt, &y), SLIM_OK);
        memcpy(y->grad, ones, sizeof ones);
        assert_int_equal(tape.last->backward(&tape, tape.last), SLIM_OK);
        for (int i = 0; i < 7; i++) {
            assert_true(y->data[i] == want_y[i]);
            assert_true(g[i] == want_g[i]);
            g[i] = 0;
        }
        slim_tape_free(&tape);
    }
}

static void concat_case(const int *cat, int n_cat, int n_inputs, const int *channels, int ndim,
                        uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    case_t cs = {.kind = OP_CONCAT, .has_b = n_inputs > 1, .has_c = n_inputs > 2, .n_cat = n_cat};
    memcpy(cs.cat, cat, (size_t)n_cat * sizeof *cat);
    slim_tensor *abc[3] = {&cs.a, &cs.b, &cs.c};
    for (int j = 0; j < n_inputs; j++)
        alloc_input(abc[j], ndim, (int[]){2, channels[j], 3, 4}, &rng, -1, 1);
    check(&cs, &rng);
}

static void test_concat(void **state) {
    (void)state;
    /* Three distinct inputs of different widths. */
    concat_case((int[]){0, 1, 2}, 3, 3, (int[]){2, 3, 1}, 4, 31);
    /* Three inputs with one repeated: a's two slices' gradients add. */
    concat_case((int[]){0, 1, 0}, 3, 2, (int[]){2, 3}, 4, 32);
    /* Five inputs (past the node's three inline slots), repeats included. */
    concat_case((int[]){2, 0, 1, 0, 2}, 5, 3, (int[]){1, 2, 3}, 4, 33);
    /* (n, f) feature vectors, one repeated. */
    concat_case((int[]){1, 0, 1}, 3, 2, (int[]){4, 3}, 2, 34);
}

static void test_concat_mismatch(void **state) {
    (void)state;
    float buf[2 * 3 * 4 * 4] = {0};
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    slim_tensor *a = slim_tape_wrap(&tape, buf, NULL, 4, (int[]){2, 3, 4, 4});
    slim_tensor *b = slim_tape_wrap(&tape, buf, NULL, 4, (int[]){2, 3, 4, 3});
    slim_tensor *c = slim_tape_wrap(&tape, buf, NULL, 4, (int[]){1, 3, 4, 4});
    slim_tensor *d = slim_tape_wrap(&tape, buf, NULL, 2, (int[]){2, 48});
    slim_tensor *y = NULL;
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){a, b}, &y), SLIM_ERR_SHAPE);
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){a, c}, &y), SLIM_ERR_SHAPE);
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){a, d}, &y), SLIM_ERR_SHAPE);
    assert_int_equal(slim_op_concat(&tape, 0, (slim_tensor *[]){a}, &y), SLIM_ERR_ARG);
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){a, a}, &y), SLIM_OK);
    assert_int_equal(y->shape[1], 6);
    /* (n, f) inputs give (n, sum f); an (n, c, 1, 1) among them makes the
     * output (n, sum, 1, 1); other ranks are refused. */
    slim_tensor *e = slim_tape_wrap(&tape, buf, NULL, 2, (int[]){2, 5});
    slim_tensor *f = slim_tape_wrap(&tape, buf, NULL, 4, (int[]){2, 3, 1, 1});
    slim_tensor *g = slim_tape_wrap(&tape, buf, NULL, 3, (int[]){2, 3, 1});
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){e, d}, &y), SLIM_OK);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[1], 53);
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){e, f}, &y), SLIM_OK);
    assert_int_equal(y->ndim, 4);
    assert_int_equal(y->shape[1], 8);
    assert_int_equal(y->shape[2] * y->shape[3], 1);
    assert_int_equal(slim_op_concat(&tape, 2, (slim_tensor *[]){f, g}, &y), SLIM_ERR_SHAPE);
    slim_tape_free(&tape);
}

static void test_backward_accumulates(void **state) {
    (void)state;
    /* The same tensor used twice (y = x + x) must receive both gradients. */
    float xd[3] = {1, 2, 3}, xg[3] = {0, 0, 0};
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    tape.recording = 1;
    slim_tensor *x = slim_tape_wrap(&tape, xd, xg, 1, (int[]){3});
    slim_tensor *y;
    assert_int_equal(slim_op_add(&tape, x, x, &y), SLIM_OK);
    for (int i = 0; i < 3; i++)
        y->grad[i] = 1;
    assert_int_equal(tape.last->backward(&tape, tape.last), SLIM_OK);
    for (int i = 0; i < 3; i++)
        assert_true(xg[i] == 2.0f);
    slim_tape_free(&tape);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),        cmocka_unit_test(test_flatten_dense),
        cmocka_unit_test(test_relu),         cmocka_unit_test(test_xent),
        cmocka_unit_test(test_xent_stable),  cmocka_unit_test(test_conv),
        cmocka_unit_test(test_bn),           cmocka_unit_test(test_pools),
        cmocka_unit_test(test_add),          cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_conv_grouped), cmocka_unit_test(test_conv_groups_mismatch),
        cmocka_unit_test(test_relu6),        cmocka_unit_test(test_relu6_ties),
        cmocka_unit_test(test_concat),       cmocka_unit_test(test_concat_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
