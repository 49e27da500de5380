/* SGD, weight decay groups, the penalties' proximal steps, and the KKT
 * conditions at convergence. */
#include "testutil.h"

#include "slim/autograd.h"
#include "slim/nn.h"
#include "slim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *bn_net = "input shape=2x2x2\n"
                            "bn b1\n"
                            "gap\n"
                            "dense fc out=2\n";

static slim_model *parse(const char *text) {
    slim_model *m = NULL;
    if (slim_model_parse(text, "test", &m) != SLIM_OK) fail_msg("%s", slim_last_error());
    slim_rng rng;
    slim_rng_seed(&rng, 3, 3);
    slim_model_init_params(m, &rng);
    return m;
}

static slim_param *param(slim_model *m, const char *name) {
    int i = slim_model_find_param(m, name);
    assert_true(i >= 0);
    return &m->params[i];
}

static void test_heavy_ball(void **state) {
    (void)state;
    /* Without a penalty the step is PyTorch's SGD: v = mu v + g + wd theta;
     * theta -= lr v. Checked against a double-precision replay. */
    slim_model *m = parse(bn_net);
    slim_param *w = param(m, "fc.weight");
    slim_sgd opt;
    slim_sgd_config cfg = {.momentum = 0.9f, .weight_decay = 0.01f, .bn_weight_decay = 0.01f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    double theta = w->data[0], v = 0;
    for (int step = 0; step < 10; step++) {
        float g = 0.3f - 0.1f * (float)step;
        w->grad[0] = g;
        assert_int_equal(slim_sgd_step(&opt, m, 0.1f), SLIM_OK);
        v = 0.9 * v + g + 0.01 * theta;
        theta -= 0.1 * v;
        assert_true(fabs(w->data[0] - theta) < 1e-5);
    }
    slim_sgd_free(&opt);
    slim_model_free(m);
}

static void test_gamma_prox_kkt_at_zero(void **state) {
    (void)state;
    slim_model *m = parse(bn_net);
    slim_param *g = param(m, "b1.gamma");
    slim_sgd opt;
    const float lambda = 0.5f, lr = 0.1f;
    slim_sgd_config cfg = {.momentum = 0.9f,
                           .weight_decay = 0.1f,
                           .bn_weight_decay = 0.1f,
                           .penalty = SLIM_PENALTY_GAMMA_L1,
                           .lambda = lambda};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    assert_true(opt.config.bn_weight_decay == 0.0f); /* no decay on gamma under a gamma penalty */
    g->data[0] = 0.0f;
    g->data[1] = 1.0f;
    /* |gradient| <= lambda: gamma stays exactly zero, step after step, even
     * with momentum (the buffer of a parameter held at zero is zero). */
    for (int step = 0; step < 50; step++) {
        memset(m->grad_block, 0, m->param_floats * sizeof(float));
        g->grad[0] = (step % 2 ? 1.0f : -1.0f) * lambda * 0.99f;
        g->grad[1] = 0.0f;
        assert_int_equal(slim_sgd_step(&opt, m, lr), SLIM_OK);
        assert_true(g->data[0] == 0.0f);
    }
    /* gamma 1 with zero gradient is driven to zero by the penalty alone
     * (momentum accumulates the constant subgradient lambda), and stays. */
    assert_true(g->data[1] == 0.0f);
    /* |gradient| > lambda: gamma leaves zero, against the gradient. */
    memset(m->grad_block, 0, m->param_floats * sizeof(float));
    g->grad[0] = 2.0f * lambda;
    assert_int_equal(slim_sgd_step(&opt, m, lr), SLIM_OK);
    assert_true(g->data[0] < 0.0f);
    assert_true(fabsf(g->data[0] - (-lr * lambda)) < 1e-3f);
    slim_sgd_free(&opt);
    slim_model_free(m);
}

/* hold_zeros: a gamma at exactly 0 stays there (and its momentum 0)
 * whatever its gradient; the others move as without it. */
static void test_gamma_hold_zeros(void **state) {
    (void)state;
    slim_model *m = parse(bn_net), *twin = parse(bn_net);
    slim_param *g = param(m, "b1.gamma"), *tg = param(twin, "b1.gamma");
    slim_sgd opt, ref;
    slim_sgd_config cfg = {.momentum = 0.9f, .penalty = SLIM_PENALTY_GAMMA_L1, .lambda = 0.01f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    assert_int_equal(slim_sgd_init(&ref, twin, &cfg), SLIM_OK);
    assert_int_equal(opt.hold_zeros, 0);
    opt.hold_zeros = 1;
    g->data[0] = tg->data[0] = 0.0f;
    g->data[1] = tg->data[1] = 0.5f;
    g->momentum[0] = tg->momentum[0] = 3.0f; /* left from before it reached 0 */
    for (int step = 0; step < 5; step++) {
        memset(m->grad_block, 0, m->param_floats * sizeof(float));
        memset(twin->grad_block, 0, twin->param_floats * sizeof(float));
        g->grad[0] = tg->grad[0] = -10.0f; /* far above lambda: the prox would let it go */
        g->grad[1] = tg->grad[1] = 0.3f;
        assert_int_equal(slim_sgd_step(&opt, m, 0.1f), SLIM_OK);
        assert_int_equal(slim_sgd_step(&ref, twin, 0.1f), SLIM_OK);
        assert_true(g->data[0] == 0.0f && g->momentum[0] == 0.0f);
        assert_true(g->data[1] == tg->data[1] && g->momentum[1] == tg->momentum[1]);
    }
    assert_true(tg->data[0] > 0.0f); /* without the hold it left 0 */
    slim_sgd_free(&opt);
    slim_sgd_free(&ref);
    slim_model_free(m);
    slim_model_free(twin);
}

/* retarget: after a long run at lambda 0.02 (no loss gradient) the
 * momentum holds the pull of 0.02; moved to 0.005 (and c_j to 2, 1, 1, ...)
 * the next step travels as far as a long run at the new values would,
 * where set_lambda alone keeps travelling at the old pace. */
static void test_retarget_moves_the_pull(void **state) {
    (void)state;
    const char *net = "input shape=3x2x2\nbn b1\ngap\ndense fc out=2\n";
    slim_model *m = parse(net), *twin = parse(net);
    slim_param *g = param(m, "b1.gamma"), *tg = param(twin, "b1.gamma");
    slim_sgd opt, plain;
    slim_sgd_config cfg = {.momentum = 0.9f, .penalty = SLIM_PENALTY_GAMMA_L1, .lambda = 0.02f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    assert_int_equal(slim_sgd_init(&plain, twin, &cfg), SLIM_OK);
    g->data[0] = tg->data[0] = 2.0f;
    g->data[1] = tg->data[1] = -2.0f;
    g->data[2] = tg->data[2] = 0.0f;
    const float lr = 0.01f;
    for (int step = 0; step < 300; step++) {
        memset(m->grad_block, 0, m->param_floats * sizeof(float));
        memset(twin->grad_block, 0, twin->param_floats * sizeof(float));
        assert_int_equal(slim_sgd_step(&opt, m, lr), SLIM_OK);
        assert_int_equal(slim_sgd_step(&plain, twin, lr), SLIM_OK);
    }
    float *w = malloc(m->param_floats * sizeof(float));
    for (size_t e = 0; e < m->param_floats; e++)
        w[e] = 1.0f;
    w[g->offset] = 2.0f;
    /* A bad weight changes nothing. */
    float v0 = g->momentum[0], bad = w[g->offset + 1];
    w[g->offset + 1] = -1.0f;
    assert_int_equal(slim_sgd_retarget(&opt, m, 0.005, w), SLIM_ERR_ARG);
    assert_true(g->momentum[0] == v0 && opt.config.lambda == 0.02f && !opt.weight);
    w[g->offset + 1] = bad;
    assert_int_equal(slim_sgd_retarget(&opt, m, 0.005, w), SLIM_OK);
    assert_int_equal(slim_sgd_set_lambda(&plain, 0.005), SLIM_OK);
    assert_int_equal(slim_sgd_set_weights(&plain, w), SLIM_OK);
    float before[3], tbefore[3];
    for (int j = 0; j < 3; j++) {
        before[j] = g->data[j];
        tbefore[j] = tg->data[j];
    }
    memset(m->grad_block, 0, m->param_floats * sizeof(float));
    memset(twin->grad_block, 0, twin->param_floats * sizeof(float));
    assert_int_equal(slim_sgd_step(&opt, m, lr), SLIM_OK);
    assert_int_equal(slim_sgd_step(&plain, twin, lr), SLIM_OK);
    /* A long run at lambda c_j travels lr * lambda * c_j / (1 - mu) a step. */
    float k = 1.0f / (1.0f - 0.9f);
    assert_true(fabsf((before[0] - g->data[0]) / (lr * 0.005f * 2.0f * k) - 1) < 0.01f);
    assert_true(fabsf((g->data[1] - before[1]) / (lr * 0.005f * k) - 1) < 0.01f);
    assert_true(g->data[2] == 0.0f && g->momentum[2] == 0.0f);
    /* set_lambda alone: still ~the old pace. */
    assert_true((tbefore[0] - tg->data[0]) > lr * 0.02f * k * 0.9f);
    free(w);
    slim_sgd_free(&opt);
    slim_sgd_free(&plain);
    slim_model_free(m);
    slim_model_free(twin);
}

static void test_no_decay_on_gamma_with_penalty(void **state) {
    (void)state;
    slim_model *m = parse(bn_net);
    slim_param *g = param(m, "b1.gamma");
    for (int pen = 0; pen < 2; pen++) {
        slim_sgd opt;
        slim_sgd_config cfg = {.momentum = 0,
                               .weight_decay = 0.1f,
                               .bn_weight_decay = 0.1f,
                               .penalty = pen ? SLIM_PENALTY_GAMMA_L1_SUBGRAD : SLIM_PENALTY_NONE,
                               .lambda = 0.01f};
        assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
        g->data[0] = 1.0f;
        memset(m->grad_block, 0, m->param_floats * sizeof(float));
        assert_int_equal(slim_sgd_step(&opt, m, 0.5f), SLIM_OK);
        /* none: decay 1 - 0.5*0.1; subgrad: lambda*sign only, no decay */
        float expect = pen ? 1.0f - 0.5f * 0.01f : 1.0f - 0.5f * 0.1f;
        assert_true(fabsf(g->data[0] - expect) < 1e-6f);
        slim_sgd_free(&opt);
    }
    slim_model_free(m);
}

static void test_weight_l1_and_filter_l1(void **state) {
    (void)state;
    slim_model *m = parse("input shape=1x3x3\nconv c1 out=2 k=3\nflatten\ndense fc out=2\n");
    slim_param *w = param(m, "c1.weight");
    slim_param *fc = param(m, "fc.weight");
    slim_sgd opt;
    slim_sgd_config cfg = {.penalty = SLIM_PENALTY_FILTER_L1, .lambda = 1.0f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    for (int j = 0; j < 9; j++)
        w->data[j] = 0.01f, w->data[9 + j] = 1.0f;
    float fc0 = fc->data[0];
    memset(m->grad_block, 0, m->param_floats * sizeof(float));
    assert_int_equal(slim_sgd_step(&opt, m, 0.1f), SLIM_OK);
    /* filter 0 (norm 0.03 <= 0.1) vanishes whole; filter 1 (norm 3) is
     * scaled by 1 - 0.1/3; the dense layer is outside the group. */
    for (int j = 0; j < 9; j++)
        assert_true(w->data[j] == 0.0f);
    assert_true(fabsf(w->data[9] - (1.0f - 0.1f / 3.0f)) < 1e-6f);
    assert_true(fc->data[0] == fc0);
    slim_sgd_free(&opt);

    cfg.penalty = SLIM_PENALTY_WEIGHT_L1;
    cfg.lambda = 0.1f;
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    fc->data[0] = 0.005f;
    fc->data[1] = -0.5f;
    memset(m->grad_block, 0, m->param_floats * sizeof(float));
    memset(m->momentum_block, 0, m->param_floats * sizeof(float));
    assert_int_equal(slim_sgd_step(&opt, m, 0.1f), SLIM_OK);
    assert_true(fc->data[0] == 0.0f);
    assert_true(fabsf(fc->data[1] - (-0.49f)) < 1e-6f);
    slim_sgd_free(&opt);
    slim_model_free(m);
}

/* The KKT problem: 24 images, 3 classes, full batches (test_kkt_at_convergence). */
typedef struct kkt_problem {
    slim_model *m;
    float x[24 * 16];
    int32_t y[24];
} kkt_problem;

static double full_batch_grad(kkt_problem *p, slim_tape *tape) {
    slim_tape_reset(tape);
    slim_model_zero_grad(p->m);
    slim_tensor *x = slim_tape_wrap(tape, p->x, NULL, 4, (int[]){24, 1, 4, 4});
    slim_tensor *logits, *loss;
    assert_int_equal(slim_model_forward(p->m, tape, x, 1, &logits), SLIM_OK);
    assert_int_equal(slim_op_softmax_xent(tape, logits, p->y, &loss), SLIM_OK);
    assert_int_equal(slim_tape_backward(tape, loss), SLIM_OK);
    return loss->data[0];
}

/* Trains the KKT problem with gamma weights c (NULL: uniform) and returns
 * the worst KKT violation: nonzero -> dL/dgamma_j = -lambda c_j
 * sign(gamma_j); zero -> |dL/dgamma_j| <= lambda c_j. *zeros: how many
 * gammas are exactly zero; zero_mask gets bit j for each. */
static double kkt_run(const float *c, int *zeros, unsigned *zero_mask) {
    kkt_problem p;
    p.m = parse("input shape=1x4x4\nconv c1 out=6 k=3 pad=1\nbn b1\ngap\ndense fc out=3\n");
    for (int i = 0; i < p.m->n_params; i++)
        p.m->params[i].trainable =
            p.m->params[i].role == SLIM_PARAM_GAMMA || p.m->params[i].role == SLIM_PARAM_BETA;
    slim_rng rng;
    slim_rng_seed(&rng, 11, 2);
    tu_fill_uniform(&rng, p.x, 24 * 16, -1, 1);
    for (int i = 0; i < 24; i++)
        p.y[i] = (int32_t)(i % 3);
    /* Make the classes learnable: class k brightens row k. */
    for (int i = 0; i < 24; i++)
        for (int j = 0; j < 4; j++)
            p.x[i * 16 + p.y[i] * 4 + j] += 1.0f;
    const float lambda = 0.02f, lr = 0.05f;
    slim_sgd opt;
    slim_sgd_config cfg = {.momentum = 0.9f,
                           .weight_decay = 1e-2f,
                           .penalty = SLIM_PENALTY_GAMMA_L1,
                           .lambda = lambda};
    assert_int_equal(slim_sgd_init(&opt, p.m, &cfg), SLIM_OK);
    slim_param *g = param(p.m, "b1.gamma");
    if (c) {
        /* The weights are laid out like the parameters; only gamma's count. */
        float *w = calloc(p.m->param_floats, sizeof(float));
        assert_non_null(w);
        memcpy(w + g->offset, c, g->numel * sizeof(float));
        assert_int_equal(slim_sgd_set_weights(&opt, w), SLIM_OK);
        free(w);
    }
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    for (int step = 0; step < 12000; step++) {
        full_batch_grad(&p, &tape);
        assert_int_equal(slim_sgd_step(&opt, p.m, lr), SLIM_OK);
    }
    full_batch_grad(&p, &tape);
    double worst = 0;
    *zeros = 0;
    *zero_mask = 0;
    for (size_t j = 0; j < g->numel; j++) {
        double gj = g->grad[j], viol, cj = c ? c[j] : 1;
        if (g->data[j] != 0.0f) {
            viol = fabs(gj + lambda * cj * (g->data[j] > 0 ? 1 : -1));
        } else {
            (*zeros)++;
            *zero_mask |= 1u << j;
            viol = fmax(fabs(gj) - lambda * cj, 0);
        }
        worst = fmax(worst, viol);
    }
    slim_tape_free(&tape);
    slim_sgd_free(&opt);
    slim_model_free(p.m);
    return worst;
}

/* The KKT test: a tiny conv-BN network trained to convergence with full
 * batches (so the objective is deterministic) by proximal SGD with
 * momentum, uniform and cost-weighted (slim_sgd_set_weights), must meet
 * the conditions of kkt_run.
 * Only BN's gamma and beta train (conv and dense stay at their random
 * init) and no ReLU follows the BN, so the logits are affine in (gamma,
 * beta) and the problem is convex: it has one minimum, which proximal
 * gradient reaches to high precision. (With every layer training, BN's
 * scale invariance leaves a slow valley - gamma grows while the next
 * layer's weights decay - along which "converged" is a matter of hours.) */
static void test_kkt_at_convergence(void **state) {
    (void)state;
    int zeros;
    unsigned mask;
    double worst = kkt_run(NULL, &zeros, &mask);
    print_message("kkt: %d of 6 gammas exactly zero, worst violation %.3g\n", zeros, worst);
    assert_true(zeros >= 1);
    assert_true(zeros < 6);
    assert_true(worst < 1e-5);
    /* Weighted: the zeros of the uniform run cost little (c = 0.4: some
     * leave zero), the others more (c = 2). The zero set must change, and
     * the weighted conditions hold. */
    float c[6];
    for (int j = 0; j < 6; j++)
        c[j] = (mask >> j) & 1 ? 0.4f : 2.0f;
    unsigned wmask;
    double wworst = kkt_run(c, &zeros, &wmask);
    print_message("weighted kkt: %d of 6 gammas exactly zero (mask %x, uniform %x), worst "
                  "violation %.3g\n",
                  zeros, wmask, mask, wworst);
    assert_true(wmask != mask);
    assert_true(zeros >= 1);
    assert_true(wworst < 1e-5);
}

static void test_names(void **state) {
    (void)state;
    slim_penalty p;
    assert_int_equal(slim_penalty_parse("filter-l1", &p), SLIM_OK);
    assert_int_equal(p, SLIM_PENALTY_FILTER_L1);
    assert_string_equal(slim_penalty_name(SLIM_PENALTY_GAMMA_L1_SUBGRAD), "gamma-l1-subgrad");
    assert_int_equal(slim_penalty_parse("l1", &p), SLIM_ERR_ARG);
    slim_schedule s;
    assert_int_equal(slim_schedule_parse("cosine", &s), SLIM_OK);
    assert_true(slim_schedule_lr(s, 1.0f, 0, 100) == 1.0f);
    assert_true(fabsf(slim_schedule_lr(s, 1.0f, 50, 100) - 0.5f) < 1e-6f);
    assert_true(slim_schedule_lr(s, 1.0f, 100, 100) > 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heavy_ball),
        cmocka_unit_test(test_gamma_prox_kkt_at_zero),
        cmocka_unit_test(test_gamma_hold_zeros),
        cmocka_unit_test(test_retarget_moves_the_pull),
        cmocka_unit_test(test_no_decay_on_gamma_with_penalty),
        cmocka_unit_test(test_weight_l1_and_filter_l1),
        cmocka_unit_test(test_kkt_at_convergence),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
