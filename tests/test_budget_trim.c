/* Tests of the end-of-run trim of a budget run (budget_trim_run,
 * src/passes/cost.c): within the budget it changes nothing; above it, it
 * zeroes the gammas of whole channels only (a channel of a residual
 * group goes when all its gammas are within the threshold), the fewest in
 * |gamma| / c_j order that meet the budget, and slim_prune at threshold 0
 * then builds a model of exactly the cost it reports; a budget no trim
 * reaches leaves the model as it was. */
#include "prune_helpers.h"

#include "passes/budget_trim.h"
#include "slim/passes.h"

static double cost_of(const slim_model *m, slim_cost target) {
    slim_pruned_cost c;
    assert_int_equal(slim_pruned_cost_measure(m, SLIM_COST_UNIFORM, NULL, NULL, &c), SLIM_OK);
    return target == SLIM_COST_PARAMS ? c.params : c.macs;
}

/* The gammas of m, copied. */
static float *gammas(const slim_model *m) {
    float *g = malloc(m->param_floats * sizeof(float));
    assert_non_null(g);
    memcpy(g, m->param_block, m->param_floats * sizeof(float));
    return g;
}

/* Every value but gammas unchanged, each gamma unchanged or now 0. */
static int changed_gammas(const slim_model *m, const float *before) {
    int zeroed = 0;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            float was = before[p->offset + j], now = p->data[j];
            if (was == now) continue;
            assert_int_equal(p->role, SLIM_PARAM_GAMMA);
            assert_true(now == 0.0f);
            zeroed++;
        }
    }
    return zeroed;
}

/* Trims m to `share` of its cost and checks the result against
 * slim_prune and against the trim one score lower. */
static void check_trim(slim_model *m, slim_cost target, double share, const float *weights) {
    double full = cost_of(m, target), budget = share * full;
    float *before = gammas(m);
    budget_trim t;
    assert_int_equal(budget_trim_run(m, target, NULL, weights, budget, &t), SLIM_OK);
    assert_false(t.unreachable);
    assert_true(t.before == full);
    assert_true(t.after <= budget);
    assert_true(t.channels > 0);
    assert_int_equal(changed_gammas(m, before), t.gammas);
    assert_true(t.after == cost_of(m, target));
    slim_model *p = prune_ok(m, NULL, NULL);
    if (target == SLIM_COST_MACS) assert_true(slim_model_macs(p) == t.after);
    slim_model_free(p);
    /* The fewest: restore the zeroed gamma with the largest |gamma| / c_j
     * (its whole channel), and the model is above the budget again. */
    size_t top = SIZE_MAX;
    double best = -1;
    for (size_t e = 0; e < m->param_floats; e++)
        if (m->param_block[e] != before[e]) {
            double s = fabs((double)before[e]) / (weights ? weights[e] : 1.0);
            if (s > best) best = s, top = e;
        }
    assert_true(top != SIZE_MAX);
    assert_true(fabs(best - t.score) <= 1e-6 * t.score);
    for (size_t e = 0; e < m->param_floats; e++)
        if (m->param_block[e] != before[e] &&
            fabs((double)before[e]) / (weights ? weights[e] : 1.0) >= best)
            m->param_block[e] = before[e];
    assert_true(cost_of(m, target) > budget);
    free(before);
}

static void test_trim_whole_channels(void **state) {
    (void)state;
    slim_model *m = parse(residual_net());
    slim_rng rng;
    slim_rng_seed(&rng, 5, 5);
    slim_model_init_params(m, &rng);
    float *ga = gamma_of(m, layer(m, "a_bn")), *gb = gamma_of(m, layer(m, "b_bn"));
    float *gc = gamma_of(m, layer(m, "c_bn"));
    /* Group channel 0 has the smallest gamma in a_bn, but a large one in
     * b_bn; channel 1 is small in both. */
    const float a[4] = {0.01f, 0.02f, 0.9f, 0.8f}, b[4] = {0.95f, 0.03f, 0.7f, 0.6f},
                c[3] = {0.5f, 0.4f, 0.3f};
    memcpy(ga, a, sizeof a);
    memcpy(gb, b, sizeof b);
    memcpy(gc, c, sizeof c);
    double full = cost_of(m, SLIM_COST_MACS);
    /* Within the budget: nothing. */
    budget_trim t;
    float *before = gammas(m);
    assert_int_equal(budget_trim_run(m, SLIM_COST_MACS, NULL, NULL, full, &t), SLIM_OK);
    assert_int_equal(t.channels, 0);
    assert_int_equal(changed_gammas(m, before), 0);
    /* One channel of the group less: channel 1 (both its gammas), not
     * channel 0 (its b_bn gamma is large). */
    slim_model *once = parse(residual_net());
    memcpy(once->param_block, m->param_block, m->param_floats * sizeof(float));
    double three = 3 * 9 * 16 + 3 * 3 * 9 * 16 + 3 * 3 * 16 + 3 * 2; /* 4x4 */
    assert_true(three < full);
    assert_int_equal(budget_trim_run(once, SLIM_COST_MACS, NULL, NULL, three, &t), SLIM_OK);
    assert_int_equal(t.channels, 1);
    assert_int_equal(t.gammas, 2);
    assert_true(gamma_of(once, layer(once, "a_bn"))[1] == 0.0f);
    assert_true(gamma_of(once, layer(once, "b_bn"))[1] == 0.0f);
    assert_true(gamma_of(once, layer(once, "a_bn"))[0] == a[0]);
    assert_true(t.after == three);
    assert_true(fabs(t.mass - (a[1] + b[1])) < 1e-7);
    slim_model_free(once);
    /* Below the one-channel-per-group model: unreachable, nothing changed. */
    assert_int_equal(budget_trim_run(m, SLIM_COST_MACS, NULL, NULL, 1.0, &t), SLIM_OK);
    assert_true(t.unreachable);
    assert_int_equal(changed_gammas(m, before), 0);
    assert_int_equal(budget_trim_run(m, SLIM_COST_UNIFORM, NULL, NULL, 1.0, &t), SLIM_ERR_ARG);
    free(before);
    slim_model_free(m);
}

/* vgg-fm and resnet-fm with random gammas, some already 0: MACs and
 * params budgets, uniform and cost-weighted orders. */
static void test_trim_models(void **state) {
    (void)state;
    const char *files[] = {"models/vgg-fm.net", "models/resnet-fm.net"};
    for (int f = 0; f < 2; f++) {
        slim_rng rng;
        slim_rng_seed(&rng, 11 + (uint64_t)f, 1);
        slim_model *m;
        assert_true(load_sparse(files[f], &rng, 0, &m) > 0);
        float *w = malloc(m->param_floats * sizeof(float));
        assert_non_null(w);
        slim_pruned_cost c;
        assert_int_equal(slim_pruned_cost_measure(m, SLIM_COST_MACS, NULL, w, &c), SLIM_OK);
        float *start = gammas(m);
        check_trim(m, SLIM_COST_MACS, 0.5, NULL);
        memcpy(m->param_block, start, m->param_floats * sizeof(float));
        check_trim(m, SLIM_COST_MACS, 0.2, w);
        memcpy(m->param_block, start, m->param_floats * sizeof(float));
        check_trim(m, SLIM_COST_PARAMS, 0.3, w);
        free(start);
        free(w);
        slim_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_whole_channels),
        cmocka_unit_test(test_trim_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
