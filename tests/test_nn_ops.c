/* Grouped and depthwise convolutions, concat and relu6 inside models, run
 * by slim_model_forward and trained through the tape (the pool's gradient
 * buffers, a concat of more inputs than a node's three inline slots):
 *   - a whole-model finite-difference check of every parameter's gradient
 *     (reference backend; tolerance as in test_ops.c);
 *   - the same through slim_tape_backward for a concat of five inputs.
 * test_backends.c trains MobileNet- and DenseNet-like nets on both
 * backends. */
#include "testutil.h"

#include "slim/autograd.h"
#include "slim/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 5e-3

/* Every new piece at once: a grouped conv, relu6, a depthwise conv, a
 * concat of five inputs with repeats (the model input among them), and a
 * strided grouped conv over the concat. */
static const char *grad_net = "input shape=2x6x6\n"
                              "conv a out=4 k=3 pad=1 groups=2 bias=1\n"
                              "bn ba\n"
                              "relu6 r\n"
                              "conv dw out=4 k=3 pad=1 groups=4 bias=1\n"
                              "conv p out=4 k=1 from=input bias=1\n"
                              "concat cat from=input,r,dw,p,r\n"
                              "conv g out=6 k=3 stride=2 pad=1 groups=3 bias=1\n"
                              "gap\n"
                              "dense fc out=3\n";

enum { GRAD_BATCH = 3 };

typedef struct grad_ctx {
    slim_model *m;
    float x[GRAD_BATCH * 2 * 6 * 6];
    int32_t labels[GRAD_BATCH];
} grad_ctx;

/* The training-mode loss (BN on batch statistics) and, with `backward`,
 * the parameter gradients in the model's gradient block. */
static double model_loss(grad_ctx *g, int backward) {
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    slim_tensor *x = slim_tape_wrap(&tape, g->x, NULL, 4, (int[]){GRAD_BATCH, 2, 6, 6});
    slim_tensor *logits, *loss;
    assert_int_equal(slim_model_forward(g->m, &tape, x, 1, &logits), SLIM_OK);
    assert_int_equal(slim_op_softmax_xent(&tape, logits, g->labels, &loss), SLIM_OK);
    if (backward) {
        slim_model_zero_grad(g->m);
        assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
    }
    double v = loss->data[0];
    slim_tape_free(&tape);
    return v;
}

static double loss_only(void *ctx) { return model_loss(ctx, 0); }

static void test_model_gradcheck(void **state) {
    (void)state;
    grad_ctx g;
    assert_int_equal(slim_model_parse(grad_net, "grad", &g.m), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, 41, 1);
    slim_model_init_params(g.m, &rng);
    /* Random gammas and betas so that relu6 sees both of its kinks. */
    for (int i = 0; i < g.m->n_params; i++) {
        slim_param *p = &g.m->params[i];
        if (p->role == SLIM_PARAM_GAMMA) tu_fill_uniform(&rng, p->data, p->numel, 1.0f, 4.0f);
        if (p->role == SLIM_PARAM_BETA) tu_fill_uniform(&rng, p->data, p->numel, 0.0f, 4.0f);
    }
    tu_fill_uniform(&rng, g.x, sizeof g.x / sizeof *g.x, -1, 1);
    for (int i = 0; i < GRAD_BATCH; i++)
        g.labels[i] = i % 3;
    model_loss(&g, 1);
    float *ana = malloc(g.m->param_floats * sizeof *ana);
    memcpy(ana, g.m->grad_block, g.m->param_floats * sizeof *ana);
    for (int i = 0; i < g.m->n_params; i++) {
        slim_param *p = &g.m->params[i];
        double err =
            tu_gradcheck(loss_only, &g, p->data, ana + p->offset, p->numel, 1e-2f, 40, &rng);
        if (err > TOL) fail_msg("%s: gradient error %.3g > %.3g", p->name, err, TOL);
    }
    free(ana);
    slim_model_free(g.m);
}

/* A concat of tape tensors past the node's three inline inputs, through
 * slim_tape_backward: y = concat(relu(x0), relu(x1), relu6(x2), relu(x3),
 * relu(x0)) -> gap -> cross-entropy. x3 reaches the loss only through the
 * fourth slot, so its gradient needs the tape to hand that input a buffer. */
typedef struct cat_ctx {
    float x[4][2 * 3 * 2 * 2], g[4][2 * 3 * 2 * 2];
    int32_t labels[2];
} cat_ctx;

static double cat_loss(cat_ctx *c, int backward) {
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    tape.recording = 1;
    slim_tensor *t[5], *y, *pooled, *loss;
    for (int j = 0; j < 4; j++) {
        slim_tensor *x = slim_tape_wrap(&tape, c->x[j], c->g[j], 4, (int[]){2, 3, 2, 2});
        if (j == 2)
            assert_int_equal(slim_op_relu6(&tape, x, &t[j]), SLIM_OK);
        else
            assert_int_equal(slim_op_relu(&tape, x, &t[j]), SLIM_OK);
    }
    t[4] = t[0];
    assert_int_equal(slim_op_concat(&tape, 5, t, &y), SLIM_OK);
    assert_int_equal(slim_op_gap(&tape, y, &pooled), SLIM_OK);
    assert_int_equal(slim_op_softmax_xent(&tape, pooled, c->labels, &loss), SLIM_OK);
    if (backward) assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
    double v = loss->data[0];
    slim_tape_free(&tape);
    return v;
}

static double cat_loss_only(void *ctx) { return cat_loss(ctx, 0); }

static void test_concat_tape(void **state) {
    (void)state;
    cat_ctx c = {.labels = {3, 14}};
    slim_rng rng;
    slim_rng_seed(&rng, 42, 1);
    for (int j = 0; j < 4; j++) {
        tu_fill_uniform(&rng, c.x[j], 24, 0.5f, 3.0f);
        for (int i = 0; i < 24; i += 3)
            c.x[j][i] = -c.x[j][i]; /* some below relu's kink */
    }
    cat_loss(&c, 1);
    for (int j = 0; j < 4; j++) {
        double err = tu_gradcheck(cat_loss_only, &c, c.x[j], c.g[j], 24, 1e-2f, 24, &rng);
        if (err > TOL) fail_msg("input %d: gradient error %.3g > %.3g", j, err, TOL);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_gradcheck),
        cmocka_unit_test(test_concat_tape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
