/* Live pruning (slim train --live-prune): removing channels whose gamma is
 * exactly 0 while training.
 *   - the function is unchanged across a removal, in training mode (batch
 *     statistics) and in inference mode, with padded consumers that need a
 *     bias map, a dense consumer that needs a bias, and residual coupling;
 *   - only allowed channels with every gamma of the group at 0 go;
 *   - the optimizer state is sliced: the momentum equals a hand slice of the
 *     wide model's, and a step after the removal equals the same step on the
 *     model slim_prune gives offline with that state;
 *   - the step counters: a channel goes at the first check once its gamma
 *     has been 0 for K steps, a nonzero gamma starts the count again;
 *   - a steady-state step after a removal allocates nothing, also when the
 *     folds' bias maps made the model larger;
 *   - the checkpoint keys round-trip, and corrupted ones are refused with
 *     the key named. */
#include "prune_helpers.h"
#include "testutil.h"

#include "kernels/kernels.h"
#include "passes/prune_live.h"
#include "slim/autograd.h"
#include "slim/ckpt.h"
#include "slim/nn.h"
#include "slim/optim.h"
#include "slim/passes.h"
#include "train/live_prune.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_IMG 6

static const char *SMALL = "input shape=2x8x8\n"
                           "conv c1 out=6 k=3 pad=1\n"
                           "bn b1\n"
                           "relu r1\n"
                           "conv c2 out=5 k=3 pad=1\n" /* padded consumer: a bias map */
                           "bn b2\n"
                           "relu r2\n"
                           "maxpool p1 k=2\n"
                           "conv c3 out=4 k=3 pad=1 bias=1\n"
                           "bn b3\n"
                           "relu r3\n"
                           "gap g\n"
                           "dense d out=3\n"; /* reads b3's channels: a bias fold */

/* Random parameters, running statistics and momentum. */
static slim_model *randomised(slim_model *m, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model_init_params(m, &rng);
    /* Positive betas (relu keeps them) and running statistics, so that every
     * fold matters. */
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        tu_fill_uniform(&rng, m->params[l->p_beta].data, (size_t)l->c, 0.1f, 1.0f);
        tu_fill_uniform(&rng, m->params[l->p_gamma].data, (size_t)l->c, 0.5f, 1.5f);
        tu_fill_uniform(&rng, l->running_mean, (size_t)l->c, -0.3f, 0.3f);
        tu_fill_uniform(&rng, l->running_var, (size_t)l->c, 0.5f, 2.0f);
    }
    tu_fill_uniform(&rng, m->momentum_block, m->param_floats, -0.1f, 0.1f);
    return m;
}

static slim_model *make(const char *text, uint64_t seed) { return randomised(parse(text), seed); }

static slim_model *load_model(const char *rel, uint64_t seed) {
    return randomised(load(rel), seed);
}

static float *gamma_at(slim_model *m, const char *bn, int t) {
    int i = slim_model_find_layer(m, bn);
    assert_true(i >= 0);
    return &m->params[m->layers[i].p_gamma].data[t];
}

static size_t gamma_offset(const slim_model *m, const char *bn) {
    int i = slim_model_find_layer(m, bn);
    assert_true(i >= 0);
    return m->params[m->layers[i].p_gamma].offset;
}

static unsigned char *allow_all(const slim_model *m) {
    unsigned char *a = malloc(m->param_floats);
    assert_non_null(a);
    memset(a, 1, m->param_floats);
    return a;
}

static float *inputs(const slim_model *m, uint64_t seed) {
    const slim_layer *in = &m->layers[0];
    size_t n = (size_t)N_IMG * in->c * in->h * in->w;
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 2);
    tu_fill_uniform(&rng, x, n, -1.0f, 1.0f);
    return x;
}

static void assert_close(const float *a, const float *b, size_t n, const char *what) {
    double d = tu_max_abs_diff(a, b, n), s = tu_max_abs(a, n);
    if (!(d <= 1e-5 * (s > 1 ? s : 1)))
        fail_msg("%s: logits differ by %g (max |logit| %g) across the removal", what, d, s);
}

/* Removes what m's zero gammas allow and checks that the logits stay, in
 * training mode, then in inference mode (with the statistics that training
 * pass updated in both). Returns the channels removed. */
static int check_function(slim_model *m, int want_removed) {
    unsigned char *allow = allow_all(m);
    slim_model *n = NULL;
    size_t *src = NULL;
    int removed = -1;
    slim_status st = prune_live(m, allow, &n, &src, &removed);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    assert_int_equal(removed, want_removed);
    assert_non_null(n);
    float *x = inputs(m, 9);
    float *a = train_logits(m, x, N_IMG, SLIM_BACKEND_FAST);
    float *b = train_logits(n, x, N_IMG, SLIM_BACKEND_FAST);
    assert_close(a, b, (size_t)N_IMG * (size_t)m->n_classes, "training mode");
    free(a);
    free(b);
    double delta, big;
    size_t mism;
    assert_int_equal(slim_prune_compare(m, n, x, N_IMG, SLIM_BACKEND_FAST, &delta, &big, &mism),
                     SLIM_OK);
    if (!(delta <= 1e-5 * (big > 1 ? big : 1)))
        fail_msg("inference mode: logits differ by %g (max |logit| %g) across the removal", delta,
                 big);
    free(x);
    free(src);
    free(allow);
    slim_model_free(n);
    return removed;
}

static void test_function_unchanged(void **state) {
    (void)state;
    slim_model *m = make(SMALL, 1);
    *gamma_at(m, "b1", 1) = 0;
    *gamma_at(m, "b1", 4) = 0;
    *gamma_at(m, "b2", 2) = 0;
    *gamma_at(m, "b3", 1) = 0;
    check_function(m, 4);
    /* The removal needed a bias map (c2, c3: padding) and a bias (d). */
    unsigned char *allow = allow_all(m);
    slim_model *n = NULL;
    size_t *src = NULL;
    int removed;
    assert_int_equal(prune_live(m, allow, &n, &src, &removed), SLIM_OK);
    assert_true(n->layers[slim_model_find_layer(n, "c2")].p_biasmap >= 0);
    assert_true(n->layers[slim_model_find_layer(n, "c3")].p_biasmap >= 0);
    assert_int_equal(n->layers[slim_model_find_layer(n, "c1")].c, 4);
    assert_int_equal(n->layers[slim_model_find_layer(n, "d")].in_c, 3);
    free(src);
    free(allow);
    slim_model_free(n);
    slim_model_free(m);
}

static void test_function_unchanged_residual(void **state) {
    (void)state;
    slim_model *m = load_model("models/resnet-fm.net", 2);
    /* stem_bn and b1_bn2 meet at b1_add: one group, both gammas must be 0. */
    *gamma_at(m, "stem_bn", 3) = 0;
    *gamma_at(m, "b1_bn2", 3) = 0;
    *gamma_at(m, "stem_bn", 5) = 0; /* alone: stays */
    *gamma_at(m, "b1_bn1", 7) = 0;
    *gamma_at(m, "b2_bn1", 0) = 0;
    check_function(m, 3);
    slim_model_free(m);
}

/* Channels go only where allowed in every BN of the group. */
static void test_allow(void **state) {
    (void)state;
    slim_model *m = load_model("models/resnet-fm.net", 3);
    *gamma_at(m, "stem_bn", 3) = 0;
    *gamma_at(m, "b1_bn2", 3) = 0;
    *gamma_at(m, "b1_bn1", 7) = 0;
    unsigned char *allow = allow_all(m);
    allow[gamma_offset(m, "b1_bn2") + 3] = 0;
    slim_model *n = NULL;
    size_t *src = NULL;
    int removed;
    assert_int_equal(prune_live(m, allow, &n, &src, &removed), SLIM_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(n->layers[slim_model_find_layer(n, "stem_bn")].c, 16);
    assert_int_equal(n->layers[slim_model_find_layer(n, "b1_bn1")].c, 15);
    free(src);
    slim_model_free(n);
    /* Nothing allowed: nothing removed, no model. */
    memset(allow, 0, m->param_floats);
    assert_int_equal(prune_live(m, allow, &n, &src, &removed), SLIM_OK);
    assert_null(n);
    assert_null(src);
    assert_int_equal(removed, 0);
    free(allow);
    slim_model_free(m);
}

/* ---- the optimizer state --------------------------------------------------- */

/* dst[r, c, k] = src[rows[r], cols[c], k] for a (?, in, kk) tensor. */
static void slice(float *dst, const float *src, const int *rows, int nr, const int *cols, int nc,
                  int in, int kk) {
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++)
            for (int k = 0; k < kk; k++)
                dst[((size_t)r * nc + c) * kk + k] = src[((size_t)rows[r] * in + cols[c]) * kk + k];
}

/* One SGD step with the gamma-l1 prox on the batch x. */
static void one_step(slim_model *m, const float *x) {
    const slim_layer *in = &m->layers[0];
    int32_t y[N_IMG];
    for (int i = 0; i < N_IMG; i++)
        y[i] = i % m->n_classes;
    slim_sgd opt;
    slim_sgd_config cfg = {.momentum = 0.9f,
                           .weight_decay = 5e-4f,
                           .bn_weight_decay = 5e-4f,
                           .penalty = SLIM_PENALTY_GAMMA_L1,
                           .lambda = 1e-2f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_FAST);
    slim_model_zero_grad(m);
    slim_tensor *xt =
        slim_tape_wrap(&tape, (float *)x, NULL, 4, (int[]){N_IMG, in->c, in->h, in->w});
    slim_tensor *logits, *loss;
    assert_int_equal(slim_model_forward(m, &tape, xt, 1, &logits), SLIM_OK);
    assert_int_equal(slim_op_softmax_xent(&tape, logits, y, &loss), SLIM_OK);
    assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
    assert_int_equal(slim_sgd_step(&opt, m, 0.05f), SLIM_OK);
    slim_tape_free(&tape);
    slim_sgd_free(&opt);
}

static void test_optimizer_state(void **state) {
    (void)state;
    slim_model *m = make(SMALL, 4);
    *gamma_at(m, "b1", 1) = 0;
    *gamma_at(m, "b1", 4) = 0;
    *gamma_at(m, "b2", 2) = 0;
    *gamma_at(m, "b3", 1) = 0;
    unsigned char *allow = allow_all(m);
    slim_model *live = NULL, *off = NULL;
    size_t *src = NULL;
    int removed;
    assert_int_equal(prune_live(m, allow, &live, &src, &removed), SLIM_OK);
    assert_int_equal(removed, 4);
    assert_int_equal(slim_prune(m, NULL, &off, NULL), SLIM_OK);
    assert_int_equal(off->param_floats, live->param_floats);

    /* The offline model gets the wide model's momentum sliced by hand. */
    static const int k1[] = {0, 2, 3, 5}, k2[] = {0, 1, 3, 4}, k3[] = {0, 2, 3},
                     all[] = {0, 1, 2, 3, 4, 5};
    memset(off->momentum_block, 0, off->param_floats * sizeof(float));
    static const struct {
        const char *name;
        const int *out, n_out, *in, n_in, in_total, plane;
    } cut[] = {
        {"c1.weight", k1, 4, all, 2, 2, 9}, {"b1.gamma", k1, 4, all, 1, 1, 1},
        {"b1.beta", k1, 4, all, 1, 1, 1},   {"c2.weight", k2, 4, k1, 4, 6, 9},
        {"b2.gamma", k2, 4, all, 1, 1, 1},  {"b2.beta", k2, 4, all, 1, 1, 1},
        {"c3.weight", k3, 3, k2, 4, 5, 9},  {"c3.bias", k3, 3, all, 1, 1, 1},
        {"b3.gamma", k3, 3, all, 1, 1, 1},  {"b3.beta", k3, 3, all, 1, 1, 1},
        {"d.weight", all, 3, k3, 3, 4, 1},  {"d.bias", all, 3, all, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
        slice(param(off, cut[i].name)->momentum, param(m, cut[i].name)->momentum, cut[i].out,
              cut[i].n_out, cut[i].in, cut[i].n_in, cut[i].in_total, cut[i].plane);
    for (size_t k = 0; k < live->param_floats; k++)
        if (live->momentum_block[k] != off->momentum_block[k])
            fail_msg("momentum value %zu: %g after the live removal, %g sliced by hand", k,
                     (double)live->momentum_block[k], (double)off->momentum_block[k]);
    assert_memory_equal(live->param_block, off->param_block, live->param_floats * sizeof(float));

    /* The same step on both gives the same parameters and momentum. */
    float *x = inputs(m, 5);
    one_step(live, x);
    one_step(off, x);
    assert_true(tu_max_abs_diff(live->param_block, off->param_block, live->param_floats) == 0);
    assert_true(tu_max_abs_diff(live->momentum_block, off->momentum_block, live->param_floats) ==
                0);
    free(x);
    free(src);
    free(allow);
    slim_model_free(live);
    slim_model_free(off);
    slim_model_free(m);
}

/* ---- the counters ------------------------------------------------------------ */

static void test_counters(void **state) {
    (void)state;
    slim_model *m = make(SMALL, 5);
    train_live lp = {0};
    assert_int_equal(train_live_init(&lp, m, 8, 1), SLIM_OK); /* checks every 2 steps */
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_FAST);
    int before = train_live_channels(m);
    *gamma_at(m, "b2", 3) = 0;
    uint64_t step = 0;
    for (; step < 7; step++) {
        assert_int_equal(train_live_after_step(&lp, &m, &tape, step + 1, 1), SLIM_OK);
        if (step == 3) *gamma_at(m, "b2", 3) = 0.5f; /* leaves zero: the count starts again */
        if (step == 4) *gamma_at(m, "b2", 3) = 0;
    }
    assert_int_equal(train_live_channels(m), before);
    assert_int_equal(lp.returns, 0); /* 4 steps at 0: fewer than K */
    assert_int_equal(lp.longest_return, 4);
    /* At 0 from step 6: 8 steps at step 13, removed at the check of step 14. */
    for (; step < 13; step++)
        assert_int_equal(train_live_after_step(&lp, &m, &tape, step + 1, 1), SLIM_OK);
    assert_int_equal(train_live_channels(m), before);
    assert_int_equal(train_live_after_step(&lp, &m, &tape, 14, 2), SLIM_OK);
    assert_int_equal(train_live_channels(m), before - 1);
    assert_int_equal(lp.removed, 1);
    assert_int_equal((int)lp.first_step, 14);
    assert_int_equal(lp.n_epochs, 2);
    assert_int_equal(lp.per_epoch[1], 1);
    /* The counters followed the narrower model. */
    assert_int_equal(lp.zero_steps[gamma_offset(m, "b2") + 3], 0);
    train_live_epoch_done(&lp);
    assert_int_equal(lp.longest_return, 0);

    /* Counting alone (live pruning off): nothing goes, and a gamma leaving 0
     * after K steps or more is a return. */
    assert_int_equal(train_live_init(&lp, m, 3, 0), SLIM_OK);
    before = train_live_channels(m);
    *gamma_at(m, "b1", 0) = 0;
    for (step = 0; step < 9; step++)
        assert_int_equal(train_live_after_step(&lp, &m, &tape, step + 1, 1), SLIM_OK);
    assert_int_equal(train_live_channels(m), before);
    assert_int_equal(lp.zero_steps[gamma_offset(m, "b1")], 9); /* not capped at K */
    *gamma_at(m, "b1", 0) = 0.25f;
    assert_int_equal(train_live_after_step(&lp, &m, &tape, 10, 1), SLIM_OK);
    assert_int_equal(lp.returns, 1);
    assert_int_equal(lp.longest_return, 9);
    slim_tape_free(&tape);
    train_live_free(&lp);
    slim_model_free(m);
}

/* After a removal and one step to settle, a training step allocates nothing
 * of slim's own (the tape and oneDNN buffers; test_nomalloc has the rest). */
static void test_no_alloc_after_removal(void **state) {
    (void)state;
    slim_model *m = load_model("models/vgg-fm.net", 6);
    float *x = inputs(m, 7);
    int32_t y[N_IMG];
    for (int i = 0; i < N_IMG; i++)
        y[i] = i % 10;
    train_live lp = {0};
    assert_int_equal(train_live_init(&lp, m, 1, 1), SLIM_OK);
    slim_sgd opt;
    slim_sgd_config cfg = {
        .momentum = 0.9f, .weight_decay = 5e-4f, .penalty = SLIM_PENALTY_GAMMA_L1, .lambda = 1e-3f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_FAST);
    int before = train_live_channels(m);
    size_t floats_before = m->param_floats, pool, arena, dnnl;
    for (int step = 0; step < 7; step++) {
        if (step == 1) {
            *gamma_at(m, "bn2", 5) = 0;
            *gamma_at(m, "bn5", 9) = 0;
        }
        slim_tape_reset(&tape);
        pool = tape.grads.n_mallocs;
        arena = tape.arena.n_mallocs;
        dnnl = slim_dnnl_buf_allocs();
        slim_model_zero_grad(m);
        slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){N_IMG, 1, 28, 28});
        slim_tensor *logits, *loss;
        assert_int_equal(slim_model_forward(m, &tape, xt, 1, &logits), SLIM_OK);
        assert_int_equal(slim_op_softmax_xent(&tape, logits, y, &loss), SLIM_OK);
        assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
        assert_int_equal(slim_sgd_step(&opt, m, 0.01f), SLIM_OK);
        if (step >= 4) { /* steady state: the step allocated nothing */
            assert_int_equal(tape.grads.n_mallocs, pool);
            assert_int_equal(tape.arena.n_mallocs, arena);
            assert_int_equal(slim_dnnl_buf_allocs(), dnnl);
        }
        if (step == 1) { /* the prox moves gammas: set the two to 0 again */
            *gamma_at(m, "bn2", 5) = 0;
            *gamma_at(m, "bn5", 9) = 0;
        }
        assert_int_equal(train_live_after_step(&lp, &m, &tape, (uint64_t)step + 1, 1), SLIM_OK);
    }
    assert_int_equal(train_live_channels(m), before - 2);
    /* The folds' bias maps made the model larger than before, and the
     * optimizer's per-value scratch followed it. */
    assert_true(m->param_floats > floats_before);
    assert_true(opt.scratch_floats >= m->param_floats);
    slim_tape_free(&tape);
    slim_sgd_free(&opt);
    train_live_free(&lp);
    free(x);
    slim_model_free(m);
}

/* ---- the checkpoint ---------------------------------------------------------- */

static slim_ckpt *stored(const train_live *lp, const slim_model *m) {
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_non_null(ck);
    assert_int_equal(train_live_store(lp, m, ck), SLIM_OK);
    return ck;
}

static void test_checkpoint(void **state) {
    (void)state;
    slim_model *m = make(SMALL, 8);
    train_live lp = {0}, back = {0};
    assert_int_equal(train_live_init(&lp, m, 40, 1), SLIM_OK);
    lp.removed = 7;
    lp.n_epochs = 3;
    lp.per_epoch = calloc(3, sizeof(int));
    lp.per_epoch[0] = 5;
    lp.per_epoch[2] = 2;
    lp.first_step = 31;
    lp.due = 1;
    lp.returns = 3;
    lp.longest_return = 77;
    lp.zero_steps[gamma_offset(m, "b2") + 1] = 40;
    lp.zero_steps[gamma_offset(m, "b3") + 2] = 17;
    slim_ckpt *ck = stored(&lp, m);
    assert_string_equal(slim_ckpt_get_meta(ck, "live_prune.history"), "1:5 3:2");
    assert_int_equal(train_live_restore(&back, m, ck, "R.ckpt"), SLIM_OK);
    assert_int_equal(back.after, 40);
    assert_int_equal(back.removed, 7);
    assert_int_equal((int)back.first_step, 31);
    assert_int_equal(back.due, 1);
    assert_int_equal(back.remove, 1);
    assert_int_equal(back.returns, 3);
    assert_int_equal(back.longest_return, 77);
    assert_int_equal(back.n_epochs, 3);
    assert_int_equal(back.per_epoch[2], 2);
    assert_memory_equal(back.zero_steps, lp.zero_steps, m->param_floats * sizeof(uint32_t));
    train_live_free(&back);

    /* Corrupted: each refused with the key named. */
    static const char *const bad[][3] = {
        {"live_prune.after", "abc", "live_prune.after"},
        {"live_prune.after", "-3", "live_prune.after"},
        {"live_prune.after", "99999999999", "live_prune.after"},
        {"live_prune.due", "2", "live_prune.due"},
        {"live_prune.remove", "on", "live_prune.remove"},
        {"live_prune.returns", "-1", "live_prune.returns"},
        {"live_prune.longest_return", "1e3", "live_prune.longest_return"},
        {"live_prune.history", "1:5 3:3", "live_prune.removed"},
        {"live_prune.history", "3:2 1:5", "live_prune.history"},
        {"live_prune.history", "1:5,3:2", "live_prune.history"},
        {"live_prune.history", "0:7", "live_prune.history"},
        {"live_prune.history", "1:-7", "live_prune.history"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        slim_ckpt *c = stored(&lp, m);
        assert_int_equal(slim_ckpt_set_meta(c, bad[i][0], bad[i][1]), SLIM_OK);
        slim_status st = train_live_restore(&back, m, c, "R.ckpt");
        if (st != SLIM_ERR_FORMAT || !tu_error_has(bad[i][2]) || !tu_error_has("R.ckpt"))
            fail_msg("%s = '%s': status %d, '%s'", bad[i][0], bad[i][1], st, slim_last_error());
        train_live_free(&back);
        slim_ckpt_free(c);
    }
    /* Counters: out of range, not whole, wrong size. */
    static const float values[] = {-1.0f, 41.0f, 2.5f};
    for (size_t i = 0; i < 3; i++) {
        uint32_t keep = lp.zero_steps[gamma_offset(m, "b3") + 2];
        slim_ckpt *c = stored(&lp, m);
        slim_ckpt_tensor *t = (slim_ckpt_tensor *)slim_ckpt_find(c, "optim.live_zero_steps");
        assert_non_null(t);
        t->data[3] = values[i];
        tu_assert_error(train_live_restore(&back, m, c, "R.ckpt"), SLIM_ERR_FORMAT,
                        "optim.live_zero_steps");
        train_live_free(&back);
        slim_ckpt_free(c);
        lp.zero_steps[gamma_offset(m, "b3") + 2] = keep;
    }
    slim_model *other = make("input shape=2x8x8\nconv out=3 k=3\nbn\nrelu\ngap\ndense out=2\n", 1);
    tu_assert_error(train_live_restore(&back, other, ck, "R.ckpt"), SLIM_ERR_FORMAT,
                    "the wrong size");
    train_live_free(&back);
    slim_model_free(other);
    slim_ckpt_free(ck);

    /* Off: one key, and a checkpoint without any restores off. */
    train_live off = {0};
    ck = stored(&off, m);
    assert_string_equal(slim_ckpt_get_meta(ck, "live_prune.after"), "0");
    assert_null(slim_ckpt_find(ck, "optim.live_zero_steps"));
    assert_int_equal(train_live_restore(&back, m, ck, "R.ckpt"), SLIM_OK);
    assert_int_equal(back.after, 0);
    slim_ckpt_free(ck);
    ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_int_equal(train_live_restore(&back, m, ck, "R.ckpt"), SLIM_OK);
    assert_int_equal(back.after, 0);
    slim_ckpt_free(ck);
    train_live_free(&lp);
    slim_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_unchanged),
        cmocka_unit_test(test_function_unchanged_residual),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_optimizer_state),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_no_alloc_after_removal),
        cmocka_unit_test(test_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
