/* The two backends train the same network the same way: a
 * conv -> BN -> ReLU -> maxpool -> conv -> BN -> ReLU -> global-avg-pool ->
 * dense network on the first Fashion-MNIST images, from one initialisation,
 * 20 SGD steps on each backend; the loss curves must agree within float
 * noise. Three more networks do the same through grouped and depthwise
 * convolutions (stride 1 and 2, padded), relu6 and concat: a mix of them,
 * a MobileNetV2-like and a DenseNet-like one.
 *
 * Tolerance: 2e-3 relative per step. The fast kernels sum in another order
 * (and use Winograd for some convolutions): ~1e-6 relative per op, which
 * the 20 steps' feedback amplifies to ~1e-4 at most in practice; a wrong
 * kernel (a missing term, a wrong gradient) moves the curve by far more.
 * The MobileNet-like net at its learning rate amplifies faster (1e-7 at
 * step 2, 1e-4 by step 9, 3e-3 by step 20), so it gets 1e-2; every net's
 * first three steps, before the feedback, must agree within 2e-5. */
#include "testutil.h"

#include "slim/autograd.h"
#include "slim/data.h"
#include "slim/nn.h"
#include "slim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *net = "input shape=1x28x28\n"
                         "conv c1 out=8 k=3 pad=1\n"
                         "bn b1\n"
                         "relu\n"
                         "maxpool k=2\n"
                         "conv c2 out=16 k=3 pad=1\n"
                         "bn b2\n"
                         "relu\n"
                         "gap\n"
                         "dense fc out=10\n";

static const char *net_groups = "input shape=1x28x28\n"
                                "conv c1 out=8 k=3 pad=1\n"
                                "bn b1\n"
                                "relu6 r1\n"
                                "conv dw1 out=8 k=3 pad=1 groups=8\n"
                                "bn\n"
                                "relu6 r2\n"
                                "concat cat from=r1,r2,r1\n"
                                "conv g1 out=16 k=3 stride=2 pad=1 groups=4\n"
                                "bn\n"
                                "relu6\n"
                                "conv dw2 out=32 k=3 stride=2 pad=1 groups=16\n"
                                "bn\n"
                                "relu\n"
                                "gap\n"
                                "dense fc out=10\n";

/* MobileNetV2-like: stem, inverted residual blocks (1x1 expand + relu6,
 * 3x3 depthwise + relu6, 1x1 project), one with a stride-2 depthwise. */
static const char *mobile_net = "input shape=1x28x28\n"
                                "conv stem out=8 k=3 pad=1\n bn\n relu6 s\n"
                                "conv e1 out=16 k=1\n bn\n relu6\n"
                                "conv d1 out=16 k=3 pad=1 groups=16\n bn\n relu6\n"
                                "conv p1 out=8 k=1\n bn pb1\n"
                                "add a1 from=pb1,s\n"
                                "conv e2 out=16 k=1\n bn\n relu6\n"
                                "conv d2 out=16 k=3 stride=2 pad=1 groups=16\n bn\n relu6\n"
                                "conv p2 out=12 k=1\n bn\n"
                                "conv head out=32 k=1\n bn\n relu6\n"
                                "gap\n"
                                "dense fc out=10\n";

/* DenseNet-like: each layer's output joins its block input by concat;
 * a transition (1x1 conv, bn, relu, avgpool) between blocks. */
static const char *dense_net = "input shape=1x28x28\n"
                               "conv stem out=8 k=3 pad=1\n bn\n relu r0\n"
                               "conv c1 out=4 k=3 pad=1\n bn\n relu r1\n"
                               "concat k1 from=r0,r1\n"
                               "conv c2 out=4 k=3 pad=1\n bn\n relu r2\n"
                               "concat k2 from=r0,r1,r2\n"
                               "conv t1 out=8 k=1\n bn\n relu\n avgpool k=2\n"
                               "conv c3 out=4 k=3 pad=1\n bn\n relu r3\n"
                               "concat k3 from=avgpool1,r3\n"
                               "gap\n"
                               "dense fc out=10\n";

enum { STEPS = 20, BATCH = 32, EARLY = 3 };
#define TOL_EARLY 2e-5

static void train(const char *text, float lr, slim_backend backend, const slim_dataset *ds,
                  double *losses) {
    slim_model *m = NULL;
    assert_int_equal(slim_model_parse(text, "backends", &m), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, 7, 1);
    slim_model_init_params(m, &rng);
    slim_sgd opt;
    slim_sgd_config cfg = {.momentum = 0.9f,
                           .weight_decay = 5e-4f,
                           .bn_weight_decay = 5e-4f,
                           .penalty = SLIM_PENALTY_GAMMA_L1,
                           .lambda = 1e-3f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    slim_tape tape;
    slim_tape_init(&tape, backend);
    for (int step = 0; step < STEPS; step++) {
        slim_tape_reset(&tape);
        slim_model_zero_grad(m);
        float *x = ds->images + (size_t)step * BATCH * 784;
        slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){BATCH, 1, 28, 28});
        slim_tensor *logits, *loss;
        assert_int_equal(slim_model_forward(m, &tape, xt, 1, &logits), SLIM_OK);
        assert_int_equal(
            slim_op_softmax_xent(&tape, logits, ds->labels + (size_t)step * BATCH, &loss), SLIM_OK);
        assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
        assert_int_equal(slim_sgd_step(&opt, m, lr), SLIM_OK);
        losses[step] = loss->data[0];
    }
    slim_tape_free(&tape);
    slim_sgd_free(&opt);
    slim_model_free(m);
}

static void same_loss_curve(const char *text, float lr, double tol) {
    if (!tu_have_fashion_mnist()) skip();
    slim_data_options o = {.c = 1, .h = 28, .w = 28, .limit = STEPS * BATCH};
    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load("fashion-mnist", 1, &o, &ds), SLIM_OK);
    assert_int_equal(slim_dataset_to_floats(ds), SLIM_OK); /* batches read straight from it */
    double ref[STEPS], fast[STEPS];
    train(text, lr, SLIM_BACKEND_REF, ds, ref);
    train(text, lr, SLIM_BACKEND_FAST, ds, fast);
    double worst = 0, early = 0;
    for (int i = 0; i < STEPS; i++) {
        double rel = fabs(ref[i] - fast[i]) / fabs(ref[i]);
        if (rel > worst) worst = rel;
        if (i < EARLY && rel > early) early = rel;
    }
    print_message("loss: step 1 %.5f -> step %d %.5f (ref), %.5f -> %.5f (fast); worst relative "
                  "difference %.2e\n",
                  ref[0], STEPS, ref[STEPS - 1], fast[0], fast[STEPS - 1], worst);
    /* It learns... */
    assert_true(ref[STEPS - 1] < ref[0] - 0.2);
    /* ...and both backends follow the same curve. */
    assert_true(early < TOL_EARLY);
    assert_true(worst < tol);
    slim_dataset_free(ds);
}

static void test_same_loss_curve(void **state) {
    (void)state;
    same_loss_curve(net, 0.05f, 2e-3);
}

static void test_same_loss_curve_groups(void **state) {
    (void)state;
    same_loss_curve(net_groups, 0.05f, 2e-3);
}

static void test_same_loss_curve_mobilenet(void **state) {
    (void)state;
    same_loss_curve(mobile_net, 0.1f, 1e-2);
}

static void test_same_loss_curve_densenet(void **state) {
    (void)state;
    same_loss_curve(dense_net, 0.1f, 2e-3);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_same_loss_curve),
                                       cmocka_unit_test(test_same_loss_curve_groups),
                                       cmocka_unit_test(test_same_loss_curve_mobilenet),
                                       cmocka_unit_test(test_same_loss_curve_densenet)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
