/* Tests of the pruned-cost bookkeeping (slim_pruned_cost_measure,
 * src/passes/cost.c) and of the lambda controller of a budget
 * (slim_budget_update, src/optim/budget.c).
 *
 * The bookkeeping must give the MACs and params of the model slim_prune
 * would build at threshold 0 without building it: checked against hand
 * counts on a model with a residual add, and against the model slim_prune
 * actually returns on vgg-fm and resnet-fm with random zero gammas. The
 * cost weights must be each channel's marginal cost: checked against the
 * difference the channel's removal makes to the measured total.
 *
 * Pruning to a budget (slim_prune_for_budget) must give the largest model
 * within the budget in Network Slimming's order: checked by building it
 * and the one with a channel fewer removed. */
#include "prune_helpers.h"

#include "slim/measure.h"
#include "slim/optim.h"
#include "slim/passes.h"

static slim_model *residual(void) {
    slim_model *m = parse(residual_net());
    slim_rng rng;
    slim_rng_seed(&rng, 5, 5);
    slim_model_init_params(m, &rng);
    return m;
}

/* A latency table whose times are f below, bilinear in the widths, which
 * the table's interpolation therefore gives exactly: hand counts hold. */
static double f_us(const slim_model *m, int i, double in, double out) {
    const slim_layer *l = &m->layers[i];
    return 1 + 0.5 * in + (1 + i % 3) * out + 0.02 * in * out * l->h * l->w;
}

#define REST_US 7.0

static void bilinear_table(const slim_model *m, slim_latency_table *t) {
    enum { P = SLIM_LATENCY_POINTS };
    assert_int_equal(slim_latency_table_alloc(t, m->n_layers), SLIM_OK);
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_CONV && l->kind != SLIM_LAYER_DENSE) continue;
        for (int k = 0; k < P; k++) {
            t->in[i * P + k] = (float)(1 + (l->in_c - 1) * k / (P - 1));
            t->out[i * P + k] = (float)(1 + (l->c - 1) * k / (P - 1));
        }
        for (int a = 0; a < P; a++)
            for (int b = 0; b < P; b++)
                t->us[(i * P + a) * P + b] = (float)f_us(m, i, t->in[i * P + a], t->out[i * P + b]);
    }
    t->rest_us = REST_US;
    assert_int_equal(slim_latency_table_check(t, m, "test"), SLIM_OK);
}

/* The table measure() uses (NULL: none; needed for SLIM_COST_LATENCY). */
static const slim_latency_table *test_table;

static slim_pruned_cost measure(const slim_model *m, slim_cost kind, float *w) {
    slim_pruned_cost c;
    slim_status st = slim_pruned_cost_measure_table(m, kind, test_table, NULL, w, &c);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    return c;
}

/* The residual net's hand-counted MACs and params with ab channels left
 * in the add's group (a and b) and cc in c; `alive` group channels. */
static void expect_residual_cost(const slim_model *m, int ab, int cc, int alive) {
    slim_pruned_cost c = measure(m, SLIM_COST_MACS, NULL);
    assert_true(c.macs == ab * 1 * 9 * 16 + ab * ab * 9 * 16 + cc * ab * 16 + cc * 2);
    assert_true(c.params == ab * 9 + 2 * ab + ab * ab * 9 + 2 * ab + cc * ab + 2 * cc + cc * 2 + 2);
    assert_int_equal(c.channels_alive, alive);
    if (!test_table) return;
    /* a, b, c, fc are layers 1, 4, 8, 12 */
    double lat =
        f_us(m, 1, 1, ab) + f_us(m, 4, ab, ab) + f_us(m, 8, ab, cc) + f_us(m, 12, cc, 2) + REST_US;
    assert_true(fabs(c.latency_us - lat) <= 1e-5 * lat);
    assert_true(c.projected_latency_us == c.latency_us);
    double full =
        f_us(m, 1, 1, 4) + f_us(m, 4, 4, 4) + f_us(m, 8, 4, 3) + f_us(m, 12, 3, 2) + REST_US;
    assert_true(fabs(c.full_latency_us - full) <= 1e-5 * full);
}

/* Hand counts: MACs per image of a conv = out * in * k * k * h * w, of a
 * dense in * out; params = weights (+ biases) + 2 per BN channel. */
static void test_hand_counted_residual(void **state) {
    (void)state;
    slim_model *m = residual();
    size_t bias = 0; /* the model's biases: the parser's defaults, counted as they are */
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].p_bias >= 0) bias += m->params[m->layers[i].p_bias].numel;
    assert_int_equal(bias, 2); /* only the dense layer has one */
    slim_pruned_cost c = measure(m, SLIM_COST_MACS, NULL);
    double full_macs = 4 * 1 * 9 * 16 + 4 * 4 * 9 * 16 + 3 * 4 * 16 + 3 * 2;
    double full_params = 4 * 9 + 8 + 4 * 4 * 9 + 8 + 3 * 4 + 6 + 3 * 2 + 2;
    assert_true(c.full_macs == full_macs);
    assert_true(c.macs == full_macs);
    assert_true(c.full_params == full_params);
    assert_true(c.params == full_params);
    assert_int_equal(c.channels, 4 + 3);
    assert_int_equal(c.channels_alive, 7);

    /* gamma 0 in one BN of the add's group only: the channel stays (the
     * other branch still carries it); a dead channel in c_bn goes. */
    gamma_of(m, layer(m, "a_bn"))[1] = 0.0f;
    gamma_of(m, layer(m, "c_bn"))[2] = 0.0f;
    expect_residual_cost(m, 4, 2, 6);

    /* gamma 0 in both BNs of channel 0: a, b and c each lose channel 0 on
     * their side. */
    gamma_of(m, layer(m, "a_bn"))[0] = 0.0f;
    gamma_of(m, layer(m, "b_bn"))[0] = 0.0f;
    expect_residual_cost(m, 3, 2, 5);

    /* The same with a latency table: its predicted latency too. */
    slim_latency_table t;
    bilinear_table(m, &t);
    test_table = &t;
    expect_residual_cost(m, 3, 2, 5);
    gamma_of(m, layer(m, "a_bn"))[2] = 0.0f;
    gamma_of(m, layer(m, "b_bn"))[2] = 0.0f;
    expect_residual_cost(m, 2, 2, 4);
    test_table = NULL;
    slim_latency_table_free(&t);
    slim_model_free(m);
}

/* The weights are the marginal costs, normalised to mean 1 over the gamma
 * entries of live channels: for a live channel, what its removal saves;
 * for a dead one, what its return would add. Checked against measured
 * totals with the channel's gammas zeroed (or restored) one at a time. */
static void check_marginal(slim_model *m, slim_cost kind) {
    float *w = malloc(m->param_floats * sizeof(float));
    assert_non_null(w);
    slim_pruned_cost base = measure(m, kind, w);
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    double sum = 0, scale = -1;
    size_t live = 0;
    int checked = 0;
    size_t entries = 0;
    for (int gi = 0; gi < g.n_groups; gi++) {
        const slim_prune_group *q = &g.groups[gi];
        for (int j = 0; j < q->channels; j++) {
            /* the gamma entries of group channel (gi, j), and whether all are 0 */
            float saved[16];
            float *entry[16];
            int n = 0, dead = 1;
            for (int b = 0; b < q->n_bn; b++) {
                const slim_layer *l = &m->layers[q->bn[b]];
                for (int c = 0; c < l->c; c++)
                    if (g.group_of_channel[q->bn[b]][c] == gi &&
                        g.index_of_channel[q->bn[b]][c] == j) {
                        assert_true(n < 16);
                        entry[n] = gamma_of(m, l) + c;
                        saved[n] = *entry[n];
                        dead &= saved[n] == 0.0f;
                        n++;
                    }
            }
            assert_true(n >= 1);
            for (int e = 0; e < n; e++)
                *entry[e] = dead ? 1.0f : 0.0f;
            slim_pruned_cost t = measure(m, kind, NULL);
            for (int e = 0; e < n; e++)
                *entry[e] = saved[e];
            double got = kind == SLIM_COST_PARAMS    ? base.params
                         : kind == SLIM_COST_LATENCY ? base.latency_us
                                                     : base.macs;
            double moved = kind == SLIM_COST_PARAMS    ? t.params
                           : kind == SLIM_COST_LATENCY ? t.latency_us
                                                       : t.macs;
            double marg = dead ? moved - got : got - moved;
            assert_true(marg > 0);
            float wj = w[entry[0] - m->param_block];
            for (int e = 1; e < n; e++)
                assert_true(w[entry[e] - m->param_block] == wj);
            /* one scale for every channel: weight = marginal * scale */
            if (scale < 0) scale = wj / marg;
            assert_true(fabs(wj - marg * scale) <= (kind == SLIM_COST_LATENCY ? 1e-4 : 1e-5) * wj);
            if (!dead) {
                sum += wj * n;
                live += (size_t)n;
            }
            checked++;
            entries += (size_t)n;
        }
    }
    /* mean 1 over live entries */
    assert_true(live > 0);
    assert_true(fabs(sum / (double)live - 1) < 1e-5);
    /* every parameter but the group gammas weighs nothing */
    size_t nonzero = 0;
    for (size_t i = 0; i < m->param_floats; i++)
        nonzero += w[i] != 0.0f;
    assert_int_equal(nonzero, entries);
    print_message("%s weights: %d group channels checked\n", slim_cost_name(kind), checked);
    slim_prune_groups_free(&g);
    free(w);
}

/* check_marginal for latency on a bilinear table of m. */
static void check_marginal_latency(slim_model *m) {
    slim_latency_table t;
    bilinear_table(m, &t);
    test_table = &t;
    check_marginal(m, SLIM_COST_LATENCY);
    test_table = NULL;
    slim_latency_table_free(&t);
}

static void test_marginal_weights_residual(void **state) {
    (void)state;
    slim_model *m = residual();
    gamma_of(m, layer(m, "a_bn"))[1] = 0.0f; /* half dead: kept */
    gamma_of(m, layer(m, "c_bn"))[2] = 0.0f; /* dead */
    check_marginal(m, SLIM_COST_MACS);
    check_marginal(m, SLIM_COST_PARAMS);
    check_marginal_latency(m);
    /* uniform: every group gamma weighs 1 */
    float *w = malloc(m->param_floats * sizeof(float));
    assert_non_null(w);
    measure(m, SLIM_COST_UNIFORM, w);
    const slim_layer *l = layer(m, "b_bn");
    assert_true(w[m->params[l->p_gamma].offset + 3] == 1.0f);
    assert_true(w[m->params[l->p_weight >= 0 ? l->p_weight : l->p_beta].offset] == 0.0f);
    free(w);
    slim_model_free(m);
}

/* Random zero gammas in every BN (in resnet-fm, each add-coupled channel
 * in both BNs or in one only), then: the measured costs equal those of
 * the model slim_prune builds, params apart from the biases its folds add
 * to consumers without one. */
static void check_against_prune(const char *file, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model *m;
    assert_true(load_sparse(file, &rng, 0, &m) > 0);
    slim_pruned_cost c = measure(m, SLIM_COST_MACS, NULL);
    slim_model *p = prune_ok(m, NULL, NULL);
    size_t added = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].p_bias < 0 && p->layers[i].p_bias >= 0)
            added += p->params[p->layers[i].p_bias].numel;
    print_message("%s: pruned MACs %.0f of %.0f (slim_prune: %.0f), params %.0f (%zu + %zu "
                  "added biases)\n",
                  file, c.macs, c.full_macs, slim_model_macs(p), c.params,
                  slim_model_param_count(p) - added, added);
    assert_true(c.macs < 0.9 * c.full_macs);
    assert_true(c.macs == slim_model_macs(p));
    assert_true(c.params == (double)(slim_model_param_count(p) - added));
    assert_true(c.full_macs == slim_model_macs(m));
    check_marginal(m, SLIM_COST_MACS);
    check_marginal_latency(m);
    slim_model_free(p);
    slim_model_free(m);
}

static void test_vgg_fm_against_prune(void **state) {
    (void)state;
    check_against_prune("models/vgg-fm.net", 3);
}

static void test_resnet_fm_against_prune(void **state) {
    (void)state;
    check_against_prune("models/resnet-fm.net", 4);
    check_against_prune("models/resnet-fm.net", 5);
}

static void test_cost_names(void **state) {
    (void)state;
    slim_cost c;
    assert_int_equal(slim_cost_parse("params", &c), SLIM_OK);
    assert_int_equal(c, SLIM_COST_PARAMS);
    assert_string_equal(slim_cost_name(SLIM_COST_MACS), "macs");
    assert_int_equal(slim_cost_parse("latency", &c), SLIM_OK);
    assert_int_equal(c, SLIM_COST_LATENCY);
    assert_string_equal(slim_cost_name(SLIM_COST_LATENCY), "latency");
    assert_int_equal(slim_cost_parse("flops", &c), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "flops"));
}

/* ---- the latency table ------------------------------------------------- */

/* input 4x2x2 -> conv c (1x1, 4 -> 8) -> gap. */
static const char *one_conv = "input shape=4x2x2\nconv c out=8 k=1\ngap\n";

/* A hand-made grid for the conv, times (a + 1)(b + 1)^2: not bilinear. */
static void hand_table(const slim_model *m, slim_latency_table *t) {
    enum { P = SLIM_LATENCY_POINTS };
    static const float in[P] = {1, 1, 2, 3, 4}, out[P] = {1, 2, 4, 6, 8};
    assert_int_equal(slim_latency_table_alloc(t, m->n_layers), SLIM_OK);
    memcpy(t->in + P, in, sizeof in);
    memcpy(t->out + P, out, sizeof out);
    for (int a = 0; a < P; a++)
        for (int b = 0; b < P; b++)
            t->us[(P + a) * P + b] = (float)((a + 1) * (b + 1) * (b + 1));
    t->rest_us = -2.5;
    t->threads = 3;
    snprintf(t->isa, sizeof t->isa, "avx2");
    snprintf(t->version, sizeof t->version, "9.8.7");
}

/* A table flat over its widths (a layer whose time does not change when
 * a channel goes: seen in measured tables) gives every channel a latency
 * weight of 0, never a rounding error below it: the bilinear weights sum
 * to 1 only within rounding, and a weight below 0 stopped a training run
 * (resnet-fm, --cost latency, "penalty weight ... got -7.46887e-16"). */
static void test_latency_flat_weights(void **state) {
    (void)state;
    slim_model *m = residual();
    slim_latency_table t;
    bilinear_table(m, &t);
    enum { P = SLIM_LATENCY_POINTS };
    for (int i = 0; i < m->n_layers; i++) {
        if (!(t.out[i * P + P - 1] > 0)) continue;
        /* Widths between the grid's two distinct points (1 and the
         * layer's): every lookup interpolates with weights 1/3, 2/3. */
        for (int k = 0; k + 1 < P; k++)
            t.in[i * P + k] = t.out[i * P + k] = 1;
        for (int k = 0; k < P * P; k++)
            t.us[(size_t)i * P * P + (size_t)k] = (float)(0.1 + 1.0 / 3.0 + 0.7 * i);
    }
    assert_int_equal(slim_latency_table_check(&t, m, "test"), SLIM_OK);
    float *w = malloc(m->param_floats * sizeof(float));
    assert_non_null(w);
    float *ga = gamma_of(m, layer(m, "a_bn")), *gb = gamma_of(m, layer(m, "b_bn"));
    float *gc = gamma_of(m, layer(m, "c_bn"));
    int negative = 0;
    for (int pattern = 0; pattern < 1 << 7; pattern++) {
        for (int j = 0; j < 4; j++)
            ga[j] = gb[j] = pattern >> j & 1 ? 0.0f : 0.5f;
        for (int j = 0; j < 3; j++)
            gc[j] = pattern >> (4 + j) & 1 ? 0.0f : 0.5f;
        slim_pruned_cost c;
        assert_int_equal(slim_pruned_cost_measure_table(m, SLIM_COST_LATENCY, &t, NULL, w, &c),
                         SLIM_OK);
        for (size_t e = 0; e < m->param_floats; e++) {
            assert_true(isfinite(w[e]));
            negative += w[e] < 0;
        }
    }
    assert_int_equal(negative, 0);
    free(w);
    slim_latency_table_free(&t);
    slim_model_free(m);
}

/* Bilinear between grid points, exact on them, a repeated width is one
 * point; the model's latency adds rest_us. */
static void test_latency_lookup(void **state) {
    (void)state;
    slim_model *m = parse(one_conv);
    slim_latency_table t;
    hand_table(m, &t);
    assert_int_equal(slim_latency_table_check(&t, m, "test"), SLIM_OK);
    /* in 2.5: halfway from 2 (a = 2) to 3; out 4.5: a quarter from 4 (b = 2) to 6 */
    double v = slim_latency_layer_us(&t, 1, 2.5, 4.5);
    assert_true(fabs(v - (0.375 * 27 + 0.375 * 36 + 0.125 * 48 + 0.125 * 64)) < 1e-9);
    assert_true(slim_latency_layer_us(&t, 1, 4, 8) == 125);
    assert_true(slim_latency_layer_us(&t, 1, 1, 1) == 1);
    assert_true(slim_latency_layer_us(&t, 1, 1, 2) == 4);
    assert_true(slim_latency_layer_us(&t, 2, 1, 2) == 0); /* the gap is not timed */
    assert_true(slim_latency_model_us(&t, m) == 125 - 2.5);
    slim_latency_table_free(&t);
    slim_model_free(m);
}

/* Each damage is an error naming the place and the tensor or setting. */
static void expect_bad_table(const slim_model *m, void (*damage)(slim_latency_table *),
                             const char *needle) {
    slim_latency_table t;
    hand_table(m, &t);
    damage(&t);
    assert_int_equal(slim_latency_table_check(&t, m, "t.ckpt"), SLIM_ERR_FORMAT);
    print_message("%s\n", slim_last_error());
    assert_non_null(strstr(slim_last_error(), "t.ckpt: "));
    assert_non_null(strstr(slim_last_error(), needle));
    slim_latency_table_free(&t);
}

static void negative_time(slim_latency_table *t) { t->us[SLIM_LATENCY_POINTS * 6] = -1; }
static void nan_time(slim_latency_table *t) { t->us[SLIM_LATENCY_POINTS * 7] = NAN; }
static void falling_time(slim_latency_table *t) { t->us[SLIM_LATENCY_POINTS * 9 - 1] = 2; }
static void wrong_width(slim_latency_table *t) { t->out[2 * SLIM_LATENCY_POINTS - 1] = 7; }
static void fractional_width(slim_latency_table *t) { t->in[SLIM_LATENCY_POINTS + 2] = 1.5f; }
static void untimed_layer(slim_latency_table *t) { t->us[2] = 1; }
static void infinite_rest(slim_latency_table *t) { t->rest_us = INFINITY; }

static void test_latency_check(void **state) {
    (void)state;
    slim_model *m = parse(one_conv);
    enum { P = SLIM_LATENCY_POINTS };
    char v[64];
    snprintf(v, sizeof v, "'latency.us' value %d is -1", P * 6);
    expect_bad_table(m, negative_time, v);
    snprintf(v, sizeof v, "'latency.us' value %d is nan", P * 7);
    expect_bad_table(m, nan_time, v);
    expect_bad_table(m, falling_time, "below the time at a smaller width");
    snprintf(v, sizeof v, "'latency.out' value %d is 7", 2 * P - 1);
    expect_bad_table(m, wrong_width, v);
    snprintf(v, sizeof v, "'latency.in' value %d is 1.5", P + 2);
    expect_bad_table(m, fractional_width, v);
    expect_bad_table(m, untimed_layer, "'latency.us' value 2 is 1, not 0 (layer");
    expect_bad_table(m, infinite_rest, "'latency.rest_us' is inf");
    slim_latency_table_free(NULL);
    slim_model_free(m);
}

/* Through a checkpoint file and back: the same table, bit for bit; a
 * damaged or missing part is an error naming the file and the key. */
static void test_latency_checkpoint(void **state) {
    (void)state;
    slim_model *m = parse(one_conv);
    slim_latency_table t, back;
    hand_table(m, &t);
    t.rest_us = 1.0 / 3; /* needs all 17 digits */
    char *dir = tu_make_tmpdir("latency"), path[1024];
    snprintf(path, sizeof path, "%s/t.ckpt", dir);
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_non_null(ck);
    assert_int_equal(slim_latency_table_store(&t, ck), SLIM_OK);
    assert_int_equal(slim_ckpt_write(ck, path), SLIM_OK);
    slim_ckpt_free(ck);
    assert_int_equal(slim_ckpt_read(path, &ck), SLIM_OK);
    assert_int_equal(slim_latency_table_load(ck, path, m, &back), SLIM_OK);
    size_t n = (size_t)m->n_layers * SLIM_LATENCY_POINTS;
    assert_memory_equal(back.in, t.in, n * sizeof(float));
    assert_memory_equal(back.out, t.out, n * sizeof(float));
    assert_memory_equal(back.us, t.us, n * SLIM_LATENCY_POINTS * sizeof(float));
    assert_true(back.rest_us == t.rest_us);
    assert_int_equal(back.threads, 3);
    assert_string_equal(back.isa, "avx2");
    assert_string_equal(back.version, "9.8.7");
    slim_latency_table_free(&back);

    /* a damaged time */
    slim_ckpt_tensor *us = (slim_ckpt_tensor *)slim_ckpt_find(ck, "latency.us");
    assert_non_null(us);
    float keep = us->data[SLIM_LATENCY_POINTS * 6];
    us->data[SLIM_LATENCY_POINTS * 6] = 1e12f;
    assert_int_equal(slim_latency_table_load(ck, path, m, &back), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), path));
    assert_non_null(strstr(slim_last_error(), "'latency.us' value 30 is 1e+12"));
    us->data[SLIM_LATENCY_POINTS * 6] = keep;
    /* a model narrower than the table's (live pruning): covered */
    slim_model *other = parse("input shape=4x2x2\nconv c out=6 k=1\ngap\n");
    assert_int_equal(slim_latency_table_load(ck, path, other, &back), SLIM_OK);
    assert_true(slim_latency_layer_us(&back, 1, 4, 6) < slim_latency_layer_us(&back, 1, 4, 8));
    slim_latency_table_free(&back);
    slim_model_free(other);
    /* a wider one: not covered */
    other = parse("input shape=4x2x2\nconv c out=10 k=1\ngap\n");
    assert_int_equal(slim_latency_table_load(ck, path, other, &back), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "'latency.out' value 9 is 8: layer c wants whole "
                                              "widths rising to at least its 10"));
    slim_model_free(other);
    other = parse("input shape=4x2x2\nconv c out=8 k=1\nrelu\ngap\n");
    assert_int_equal(slim_latency_table_load(ck, path, other, &back), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "'latency.in' is for 3 layers, the model has 4"));
    slim_model_free(other);
    /* a bad setting */
    assert_int_equal(slim_ckpt_set_meta(ck, "latency.rest_us", "x"), SLIM_OK);
    assert_int_equal(slim_latency_table_load(ck, path, m, &back), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "'latency.rest_us' is not a number"));
    slim_ckpt_free(ck);
    /* none at all */
    ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_int_equal(slim_latency_table_load(ck, path, m, &back), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "'latency.points' is missing"));
    slim_ckpt_free(ck);
    tu_rm_tree(dir);
    slim_latency_table_free(&t);
    slim_model_free(m);
}

/* Without a table, cost latency is an error; a table of another model too. */
static void test_latency_needs_table(void **state) {
    (void)state;
    slim_model *m = residual();
    slim_pruned_cost c;
    assert_int_equal(slim_pruned_cost_measure(m, SLIM_COST_LATENCY, NULL, NULL, &c), SLIM_ERR_ARG);
    slim_model *o = parse(one_conv);
    slim_latency_table t;
    hand_table(o, &t);
    assert_int_equal(slim_pruned_cost_measure_table(m, SLIM_COST_MACS, &t, NULL, NULL, &c),
                     SLIM_ERR_ARG);
    slim_latency_table_free(&t);
    slim_model_free(o);
    slim_model_free(m);
}

/* A measured table (timings vary: only its shape is checked): the grids
 * (a grouped conv's widths whole groups, a depthwise conv's time along
 * its channels alone), every time finite and non-negative, their sum at
 * full widths positive, non-decreasing (slim_latency_table_check), the
 * rest finite. */
static void test_latency_measured(void **state) {
    (void)state;
    enum { P = SLIM_LATENCY_POINTS };
    slim_model *m = parse("input shape=3x8x8\n"
                          "conv a out=8 k=3 pad=1\nbn\nrelu\n"
                          "conv dw out=8 k=3 pad=1 groups=8\nbn\nrelu\n"
                          "conv g out=12 k=1 groups=2\nbn\nrelu\n"
                          "gap\ndense fc out=4\n");
    slim_latency_table t;
    double t0 = slim_clock_s();
    slim_status st = slim_latency_table_measure(m, &t);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    print_message("measured in %.2f s, rest %.1f us, isa %s, %d threads\n", slim_clock_s() - t0,
                  t.rest_us, t.isa, t.threads);
    assert_int_equal(slim_latency_table_check(&t, m, "measured"), SLIM_OK);
    assert_true(isfinite(t.rest_us));
    assert_true(t.threads >= 1);
    assert_true(strlen(t.isa) > 0 && strlen(t.version) > 0);
    int timed = 0;
    double full = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_CONV && l->kind != SLIM_LAYER_DENSE) continue;
        const float *u = t.us + (size_t)i * P * P;
        print_message("%s: %.2f us at %g -> %g, %.2f us at %g -> %g\n", l->name, (double)u[0],
                      (double)t.in[i * P], (double)t.out[i * P], (double)u[P * P - 1],
                      (double)t.in[i * P + P - 1], (double)t.out[i * P + P - 1]);
        assert_true(u[P * P - 1] >= 0 && isfinite(u[P * P - 1]));
        full += u[P * P - 1];
        timed++;
    }
    assert_int_equal(timed, 4);
    assert_true(full > 0);
    const slim_layer *dw = layer(m, "dw"), *g = layer(m, "g");
    int i = (int)(dw - m->layers), j = (int)(g - m->layers);
    for (int k = 0; k < P; k++) {
        assert_true(t.in[i * P + k] == t.out[i * P + k]);
        for (int a = 1; a < P; a++)
            assert_true(t.us[(i * P + a) * P + k] == t.us[i * P * P + k]);
        assert_true(fmodf(t.in[j * P + k], 2) == 0 && fmodf(t.out[j * P + k], 2) == 0);
    }
    assert_true(t.in[j * P] == 2 && t.out[j * P] == 2);
    slim_latency_table_free(&t);
    slim_model_free(m);
}

/* ---- pruning to a budget (slim_prune_for_budget) ----------------------- */

static double cost_of(const slim_model *m, slim_cost kind) {
    return kind == SLIM_COST_PARAMS ? (double)slim_model_param_count(m) : slim_model_macs(m);
}

/* Percent options that remove exactly k of n group channels. */
static slim_prune_options percent_k(size_t k, size_t n) {
    slim_prune_options o = slim_prune_default_options();
    o.mode = SLIM_PRUNE_PERCENT;
    o.percent = (float)(100.0 * ((double)k + 0.5) / (double)n);
    return o;
}

/* The options found prune m to at most budget, to what they report, and
 * one channel fewer would not fit: the largest model within the budget. */
static void check_for_budget(slim_model *m, slim_cost kind, double budget) {
    slim_prune_options o;
    double reached = -1;
    slim_status st = slim_prune_for_budget(m, kind, budget, &o, &reached);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    slim_prune_report r;
    slim_model *p = prune_ok(m, &o, &r);
    double got = cost_of(p, kind);
    print_message("%s budget %.0f (%.1f%%): reached %.0f, %d of %d channels removed\n",
                  slim_cost_name(kind), budget, 100 * budget / cost_of(m, kind), got,
                  r.channels_before - r.channels_after, r.channels_before);
    assert_true(got == reached);
    assert_true(got <= budget);
    assert_int_equal(o.mode, SLIM_PRUNE_PERCENT);
    size_t k = (size_t)(r.channels_before - r.channels_after), n = (size_t)r.channels_before;
    assert_true(k >= 1);
    slim_prune_options fewer = percent_k(k - 1, n);
    slim_model *q = prune_ok(m, &fewer, NULL);
    assert_true(cost_of(q, kind) > budget);
    slim_model_free(q);
    slim_prune_report_free(&r);
    slim_model_free(p);
}

static void test_prune_for_budget(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 8, 1);
    slim_model *m = load("models/resnet-fm.net");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng); /* no zero gamma: the subgradient baseline's case */
    double macs = slim_model_macs(m), params = (double)slim_model_param_count(m);
    check_for_budget(m, SLIM_COST_MACS, 0.5 * macs);
    check_for_budget(m, SLIM_COST_MACS, 0.125 * macs);
    check_for_budget(m, SLIM_COST_PARAMS, 0.25 * params);

    /* Below the model with one channel per group: an error naming both. */
    slim_prune_options o;
    double reached;
    assert_int_equal(slim_prune_for_budget(m, SLIM_COST_MACS, 1e-5 * macs, &o, &reached),
                     SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "below the smallest model"));
    assert_int_equal(slim_prune_for_budget(m, SLIM_COST_MACS, 0, &o, &reached), SLIM_ERR_ARG);
    assert_int_equal(slim_prune_for_budget(m, SLIM_COST_UNIFORM, macs, &o, &reached), SLIM_ERR_ARG);
    slim_model_free(m);

    /* With exact zeros and a budget the threshold-0 model meets: that model. */
    slim_rng_seed(&rng, 9, 1);
    assert_true(load_sparse("models/vgg-fm.net", &rng, 0, &m) > 0);
    slim_model *exact = prune_ok(m, NULL, NULL);
    double budget = 1.01 * slim_model_macs(exact);
    assert_int_equal(slim_prune_for_budget(m, SLIM_COST_MACS, budget, &o, &reached), SLIM_OK);
    assert_int_equal(o.mode, SLIM_PRUNE_THRESHOLD);
    assert_true(o.threshold == 0.0f);
    assert_true(reached == slim_model_macs(exact));
    /* Below it: percent mode, the largest model within. */
    check_for_budget(m, SLIM_COST_MACS, 0.9 * slim_model_macs(exact));
    slim_model_free(exact);
    slim_model_free(m);
}

/* ---- the controller --------------------------------------------------- */

static void test_budget_start(void **state) {
    (void)state;
    slim_budget b;
    slim_budget_init(&b, 100, 400, 0);
    assert_true(b.lambda > 0);
    slim_budget_init(&b, 100, 400, 2e-3);
    assert_true(b.lambda == 2e-3);
    assert_int_equal(b.updates, 0);
    assert_true(b.full == 400);
    /* the start scales with the cut asked for and inversely with the run */
    double s = slim_budget_start(1.0, 10.0, 0.5);
    assert_true(s > 0);
    assert_true(slim_budget_start(1.0, 20.0, 0.5) == s / 2);
    assert_true(slim_budget_start(1.0, 10.0, 0.75) == s / 2);
}

/* The plan: the unpruned cost at the start, falling geometrically to 95%
 * of the budget by 70% of the run, then 95% of the budget. */
static void test_budget_plan(void **state) {
    (void)state;
    slim_budget b;
    slim_budget_init(&b, 100, 400, 1e-3);
    assert_true(slim_budget_plan(&b, 0) == 400);
    assert_true(fabs(slim_budget_plan(&b, 0.35) - sqrt(400.0 * 95.0)) < 1e-9);
    assert_true(fabs(slim_budget_plan(&b, 0.7) - 95) < 1e-9);
    assert_true(fabs(slim_budget_plan(&b, 1.0) - 95) < 1e-9);
    double last = 401;
    for (int i = 0; i <= 100; i++) {
        double p = slim_budget_plan(&b, 0.01 * i);
        assert_true(p <= last);
        last = p;
    }
}

/* Without a projection: above the band lambda grows, by a bounded factor;
 * in the band it holds; below and not rising it shrinks. */
static void test_budget_directions(void **state) {
    (void)state;
    slim_budget b;
    slim_budget_init(&b, 100, 400, 1e-3);
    double lam = b.lambda, p = 0;
    for (int i = 0; i < 10; i++) {
        p += 0.01;
        double next = slim_budget_update(&b, 400, p, p + 0.01, NULL, NULL);
        assert_true(next > lam);
        assert_true(next <= lam * 2);
        lam = next;
    }
    /* in the band (early band [0.93, 0.99]): held */
    slim_budget_update(&b, 96, 0.11, 0.12, NULL, NULL);
    lam = b.lambda;
    assert_true(slim_budget_update(&b, 96, 0.12, 0.13, NULL, NULL) == lam);
    assert_true(slim_budget_update(&b, 95, 0.13, 0.14, NULL, NULL) == lam);
    /* below it and not rising: relaxed */
    slim_budget_update(&b, 50, 0.14, 0.15, NULL, NULL);
    assert_true(slim_budget_update(&b, 50, 0.15, 0.16, NULL, NULL) < lam);
    /* after 80% the band is [0.9, 1]: 91 holds there */
    slim_budget_update(&b, 91, 0.85, 0.86, NULL, NULL);
    lam = b.lambda;
    assert_true(slim_budget_update(&b, 91, 0.86, 0.87, NULL, NULL) == lam);
}

/* A projection falling as lambda grows: cost 400 below lambda = 1, then a
 * cliff to 10. */
static double cliff(void *ctx, double lambda) {
    (*(int *)ctx)++;
    return lambda < 1 ? 400 : 10;
}

/* The same cost whatever lambda (ctx: that cost). */
static double flat(void *ctx, double lambda) {
    (void)lambda;
    return *(double *)ctx;
}

/* With a projection lambda goes to the edge where the projection would
 * fall below the plan, never past it (a step into the cliff is cut), and
 * back from past it; it holds while the cost and the projection are within
 * [0.9, 1] of the budget's share of the plan; it moves at most 4x per
 * update. */
static void test_budget_projection(void **state) {
    (void)state;
    slim_budget b;
    int calls = 0;
    slim_budget_init(&b, 100, 400, 0.05);
    for (int i = 1; i <= 40; i++) {
        double before = b.lambda;
        double lam = slim_budget_update(&b, 400, 0.01 * i, 0.01 * (i + 1), cliff, &calls);
        assert_true(lam < 1);
        assert_true(lam <= 4 * before);
    }
    assert_true(b.lambda > 0.99); /* it did climb to the edge */
    assert_true(calls > 40);
    slim_budget_init(&b, 100, 400, 2.0); /* past the cliff already */
    double lam = slim_budget_update(&b, 400, 0.1, 0.11, cliff, &calls);
    assert_true(lam < 1 && lam > 0.99);

    /* landed (the plan is 95): 97 and 91 hold; 89, which no lambda's
     * projection lifts, halves lambda; 101 raises it by the bound */
    double cost = 97;
    slim_budget_init(&b, 100, 400, 0.1);
    assert_true(slim_budget_update(&b, cost, 0.8, 0.81, flat, &cost) == 0.1);
    cost = 91;
    assert_true(slim_budget_update(&b, cost, 0.81, 0.82, flat, &cost) == 0.1);
    cost = 89;
    assert_true(fabs(slim_budget_update(&b, cost, 0.82, 0.83, flat, &cost) - 0.05) < 1e-12);
    cost = 101;
    assert_true(fabs(slim_budget_update(&b, cost, 0.83, 0.84, flat, &cost) - 0.2) < 1e-12);
    assert_int_equal(b.updates, 4);

    /* landed and above the band while the projection promises the plan,
     * and the cost did not fall since the last update (the channels it
     * counts on do not go): lambda grows by the rule without a projection
     * (cost / 100 squared, within its bounds); had the cost fallen, the
     * projection is trusted */
    double hope = 50;
    slim_budget_init(&b, 100, 400, 0.1);
    b.last_progress = 0.8;
    b.last_cost = 106;
    b.updates = 1;
    assert_true(slim_budget_update(&b, 105, 0.85, 0.86, flat, &hope) < 0.1);
    slim_budget_init(&b, 100, 400, 0.1);
    b.last_progress = 0.8;
    b.last_cost = 105;
    b.updates = 1;
    double grown = slim_budget_update(&b, 105, 0.85, 0.86, flat, &hope);
    double hi = pow(2.5, 0.05 / 0.1), lo = pow(hi, 0.25); /* 1.05^2 is below lo */
    assert_true(pow(1.05, 2) < lo);
    assert_true(fabs(grown - 0.1 * lo) < 1e-12);
    /* at the very end lambda no longer grows, with or without a projection */
    slim_budget_init(&b, 100, 400, 0.1);
    b.last_progress = 0.975;
    b.last_cost = 150;
    b.updates = 1;
    assert_true(slim_budget_update(&b, 150, 0.985, 0.99, flat, &hope) == 0.1);
    assert_true(slim_budget_update(&b, 150, 0.99, 0.995, NULL, NULL) == 0.1);
    /* before landing the projection decides */
    slim_budget_init(&b, 100, 400, 0.1);
    assert_true(slim_budget_update(&b, 300, 0.3, 0.31, flat, &hope) < 0.1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_counted_residual),
        cmocka_unit_test(test_marginal_weights_residual),
        cmocka_unit_test(test_vgg_fm_against_prune),
        cmocka_unit_test(test_resnet_fm_against_prune),
        cmocka_unit_test(test_cost_names),
        cmocka_unit_test(test_latency_lookup),
        cmocka_unit_test(test_latency_flat_weights),
        cmocka_unit_test(test_latency_check),
        cmocka_unit_test(test_latency_checkpoint),
        cmocka_unit_test(test_latency_needs_table),
        cmocka_unit_test(test_latency_measured),
        cmocka_unit_test(test_prune_for_budget),
        cmocka_unit_test(test_budget_start),
        cmocka_unit_test(test_budget_plan),
        cmocka_unit_test(test_budget_directions),
        cmocka_unit_test(test_budget_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
