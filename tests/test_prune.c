/* Tests of the pruning pass (include/slim/prune.h, docs/PRUNING.md).
 *
 * The central claim: pruning at threshold 0 is lossless by construction.
 * Every test that prunes exact zeros checks the pruned model's logits
 * against the original's on random inputs: max |delta logit| <=
 * EXACT_TOL * max |logit| with identical argmax. The tolerance is float
 * rounding only: the fold adds the removed channels' contribution as one
 * precomputed sum instead of inside the conv's own summation order, and
 * average pooling of a constant rounds; a missing or wrong fold (a bias
 * where a bias map is needed, a dropped beta, a wrong slice) gives errors
 * of order 1e-2 or more, as the border test shows.
 *
 * Zero filters (a conv/dense output filter of exact zeros, gamma != 0) make
 * a channel constant too; those tests move the BN's running statistics so
 * that the constant gamma (b - mean) / sqrt(var + eps) + beta is far from
 * beta, and print the measured max |delta logit|. */
#include "prune_helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- benchmark networks at threshold 0 ----------------------------------------- */

static void check_vgg_like(const char *file, slim_backend backend, int train_check) {
    slim_rng rng;
    slim_rng_seed(&rng, 42, 1);
    slim_model *m = load(file);
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    int zeroed[64] = {0};
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) zeroed[i] = zero_some(m, &m->layers[i], 0.4, &rng);
    calibrate(m, backend, &rng);

    float *before = malloc(m->param_floats * sizeof(float));
    assert_non_null(before);
    memcpy(before, m->param_block, m->param_floats * sizeof(float));

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    /* The input model is not touched. */
    assert_memory_equal(before, m->param_block, m->param_floats * sizeof(float));
    free(before);

    int total_zeroed = 0, total = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].kind != SLIM_LAYER_BN) continue;
        assert_true(zeroed[i] > 0 && zeroed[i] < m->layers[i].c);
        assert_int_equal(p->layers[i].c, m->layers[i].c - zeroed[i]);
        /* the producing conv shrinks with it */
        int prod = m->layers[i].inputs[0];
        assert_int_equal(p->layers[prod].c, p->layers[i].c);
        /* the kept gammas are the nonzero ones, in order */
        const float *g0 = gamma_of(m, &m->layers[i]), *g1 = gamma_of(p, &p->layers[i]);
        int k = 0;
        for (int j = 0; j < m->layers[i].c; j++)
            if (g0[j] != 0.0f) assert_true(g1[k++] == g0[j]);
        total_zeroed += zeroed[i];
        total += m->layers[i].c;
    }
    assert_int_equal(r.channels_before, total);
    assert_int_equal(r.channels_after, total - total_zeroed);
    assert_int_equal(r.removed_nonzero, 0);
    /* every removal is the classic gamma = 0 one, and the table prints as it
     * always has: no reasons column */
    assert_int_equal(r.removed_gamma_zero, total_zeroed);
    assert_int_equal(r.removed_zero_filter, 0);
    for (int i = 0; i < r.n_rows; i++)
        assert_int_equal(r.rows[i].removed_gamma_zero,
                         r.rows[i].channels_before - r.rows[i].channels_after);
    assert_false(table_has(&r, "removed because"));
    check_report_totals(&r, m, p);
    assert_true(slim_model_macs(p) < slim_model_macs(m));
    assert_exact(m, p, backend, &rng);

    if (train_check) {
        /* gamma = 0 silences the normalised term in training mode too: the
         * fold holds for batch statistics. */
        float *x = random_inputs(m, 16, &rng);
        float *la = train_logits(m, x, 16, backend), *lb = train_logits(p, x, 16, backend);
        size_t k = (size_t)16 * m->n_classes;
        assert_true(tu_max_abs_diff(la, lb, k) <= EXACT_TOL * tu_max_abs(la, k));
        free(x);
        free(la);
        free(lb);
    }
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

static void test_vgg_fm_threshold0_exact(void **state) {
    (void)state;
    check_vgg_like("models/vgg-fm.net", SLIM_BACKEND_FAST, 1);
}

/* lenet-bn: a conv's channels reach a dense layer through flatten, so each
 * removed channel is H*W = 25 dense columns. */
static void test_lenet_flatten_exact(void **state) {
    (void)state;
    check_vgg_like("models/lenet-bn.net", SLIM_BACKEND_REF, 0);
    slim_model *m = load("models/lenet-bn.net");
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    /* bn1 and bn2; dense1 -> relu -> dense2 has no bn and is no group */
    assert_int_equal(g.n_groups, 2);
    assert_int_equal(g.groups[1].n_consumers, 1);
    assert_string_equal(m->layers[g.groups[1].consumers[0]].name, "dense1");
    assert_int_equal(g.rep_of_layer[slim_model_find_layer(m, "flatten1")], 25);
    assert_int_equal(g.group_of_layer[slim_model_find_layer(m, "dense1")], -1);
    slim_prune_groups_free(&g);
    slim_model_free(m);
}

static void test_resnet_fm_groups_and_exact(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 7, 3);
    slim_model *m = load("models/resnet-fm.net");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);

    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    static const char *const labels[] = {"stem_bn+b1_bn2",    "b1_bn1", "b2_bn1",
                                         "b2_bn2+b2_proj_bn", "b3_bn1", "b3_bn2+b3_proj_bn"};
    assert_int_equal(g.n_groups, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(g.groups[i].label, labels[i]);
    /* the stem's channels feed block 1's conv and, through the identity add,
     * block 2's conv and projection */
    assert_int_equal(g.groups[0].n_consumers, 3);
    assert_int_equal(g.groups[0].n_producers, 2); /* stem, b1_conv2 */
    assert_int_equal(g.groups[5].n_consumers, 1); /* fc, through gap */

    /* Single-BN groups: 40% zeros. Coupled groups: 40% zeros in each BN,
     * half of them shared, so only the shared ones may go. */
    int expect[6];
    for (int gi = 0; gi < 6; gi++) {
        slim_prune_group *q = &g.groups[gi];
        if (q->n_bn == 1) {
            expect[gi] = q->channels - zero_some(m, &m->layers[q->bn[0]], 0.4, &rng);
            continue;
        }
        uint32_t perm[64];
        shuffled(perm, q->channels, 64, &rng);
        int k = (int)(0.4 * q->channels), shared = k / 2;
        float *ga = gamma_of(m, &m->layers[q->bn[0]]), *gb = gamma_of(m, &m->layers[q->bn[1]]);
        for (int t = 0; t < k; t++)
            ga[perm[t]] = 0.0f;
        for (int t = k - shared; t < 2 * k - shared; t++)
            gb[perm[t]] = 0.0f;
        expect[gi] = q->channels - shared;
    }
    calibrate(m, SLIM_BACKEND_FAST, &rng);

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_group_widths(p, &g, expect);
    check_report_totals(&r, m, p);
    assert_exact(m, p, SLIM_BACKEND_FAST, &rng);
    slim_prune_report_free(&r);
    slim_prune_groups_free(&g);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- folding at padded borders ------------------------------------------------ */

static const char *const tiny_net = "input shape=1x5x5\n"
                                    "conv c1 out=3 k=3 pad=1\n"
                                    "bn b1\n"
                                    "relu r1\n"
                                    "conv c2 out=2 k=3 pad=1\n"
                                    "bn b2\n"
                                    "relu r2\n"
                                    "gap g\n"
                                    "dense fc out=4\n";

static slim_model *tiny(slim_rng *rng) {
    slim_model *m = parse(tiny_net);
    slim_model_init_params(m, rng);
    randomize_bn(m, rng);
    /* b2 shifted up so relu r2 passes (almost) everything: a border error in
     * c2 must reach the logits. */
    for (int j = 0; j < 2; j++)
        beta_of(m, layer(m, "b2"))[j] = 3.0f;
    calibrate(m, SLIM_BACKEND_REF, rng);
    return m;
}

static void test_border_fold_needs_biasmap(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 11, 5);
    slim_model *m = tiny(&rng);
    gamma_of(m, layer(m, "b1"))[1] = 0.0f;
    beta_of(m, layer(m, "b1"))[1] = 0.7f;

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "c1")->c, 2);
    assert_int_equal(layer(p, "b1")->c, 2);
    assert_int_equal(layer(p, "c2")->in_c, 2);
    assert_true(layer(p, "c2")->has_biasmap);
    assert_true(has_note(&r, "bias map"));

    /* The construction itself: interior = 0.7 * sum of all 9 taps of
     * W2[o, 1]; corner (0, 0) sees only the 4 taps W2[o, 1, 1:3, 1:3]. */
    const float *w2 = param(m, "c2.weight")->data;  /* (2, 3, 3, 3) */
    const float *bm = param(p, "c2.biasmap")->data; /* (2, 5, 5) */
    for (int o = 0; o < 2; o++) {
        const float *k = w2 + (o * 3 + 1) * 9;
        double all = 0, corner = k[4] + k[5] + k[7] + k[8];
        for (int t = 0; t < 9; t++)
            all += k[t];
        assert_true(fabs(bm[o * 25 + 2 * 5 + 2] - 0.7 * all) < 1e-5);
        assert_true(fabs(bm[o * 25 + 0] - 0.7 * corner) < 1e-5);
    }
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);

    /* Teeth: a single-bias fold (the interior value everywhere) is wrong at
     * the border, visibly in the logits. */
    float *map = param(p, "c2.biasmap")->data;
    double border_gap = 0;
    for (int o = 0; o < 2; o++) {
        float centre = map[o * 25 + 12];
        for (int q = 0; q < 25; q++) {
            border_gap = fmax(border_gap, fabs(map[o * 25 + q] - centre));
            map[o * 25 + q] = centre;
        }
    }
    assert_true(border_gap > 1e-3);
    float *x = random_inputs(m, N_COMPARE, &rng);
    double delta, big;
    size_t mism;
    assert_int_equal(slim_prune_compare(m, p, x, N_COMPARE, SLIM_BACKEND_REF, &delta, &big, &mism),
                     SLIM_OK);
    assert_true(delta > 1e-3);
    free(x);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Without padding a constant input plane gives a constant conv output: the
 * fold is a plain bias (created, since c2 had none). */
static void test_unpadded_fold_is_bias(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 12, 5);
    slim_model *m = parse("input shape=2x6x6\n"
                          "conv c1 out=4 k=3 pad=1\n"
                          "bn b1\n"
                          "relu r1\n"
                          "maxpool k=2 pad=1\n"
                          "conv c2 out=3 k=2\n"
                          "bn b2\n"
                          "relu r2\n"
                          "avgpool k=2 pad=1\n"
                          "flatten\n"
                          "dense fc out=3\n");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    calibrate(m, SLIM_BACKEND_REF, &rng);
    assert_false(layer(m, "c2")->has_bias);
    gamma_of(m, layer(m, "b1"))[0] = 0.0f;
    beta_of(m, layer(m, "b1"))[0] = 0.5f;
    gamma_of(m, layer(m, "b1"))[3] = 0.0f;
    beta_of(m, layer(m, "b1"))[3] = -0.5f; /* relu: 0, nothing to fold */
    gamma_of(m, layer(m, "b2"))[2] = 0.0f;
    beta_of(m, layer(m, "b2"))[2] = 0.9f; /* through padded avgpool and flatten into fc */
    slim_model *p = prune_ok(m, NULL, NULL);
    assert_int_equal(layer(p, "c1")->c, 2);
    assert_int_equal(layer(p, "c2")->c, 2);
    assert_true(layer(p, "c2")->has_bias);
    assert_false(layer(p, "c2")->has_biasmap);
    assert_int_equal(layer(p, "fc")->in_c, 2 * 2 * 2);
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- residual coupling ------------------------------------------------------------ */

static const char *const toy_resnet = "input shape=2x6x6\n"
                                      "conv stem out=4 k=3 pad=1\n"
                                      "bn stem_bn\n"
                                      "relu stem_relu\n"
                                      "conv c1 out=4 k=3 pad=1\n"
                                      "bn bn1\n"
                                      "relu r1\n"
                                      "conv c2 out=4 k=3 pad=1\n"
                                      "bn bn2\n"
                                      "add a from=bn2,stem_relu\n"
                                      "relu out\n"
                                      "gap g\n"
                                      "dense fc out=3\n";

static void test_residual_coupling(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 13, 5);
    slim_model *m = parse(toy_resnet);
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    calibrate(m, SLIM_BACKEND_REF, &rng);
    float *gs = gamma_of(m, layer(m, "stem_bn")), *bs = beta_of(m, layer(m, "stem_bn"));
    float *g2 = gamma_of(m, layer(m, "bn2")), *b2 = beta_of(m, layer(m, "bn2"));

    /* Zero in one of the two BNs meeting at the add: nothing goes. */
    gs[1] = 0.0f;
    g2[0] = 0.0f;
    slim_model *p = prune_ok(m, NULL, NULL);
    assert_int_equal(layer(p, "stem")->c, 4);
    assert_int_equal(layer(p, "c2")->c, 4);
    assert_int_equal(layer(p, "a")->c, 4);
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);
    slim_model_free(p);

    /* Zero in both: it goes from stem, stem_bn, c2, bn2, the add, ...
     * Channel 2 leaves relu(0.3 + max(0.4, 0)) = 0.7 after the add; channel
     * 3 leaves 0.2 into c1 but relu(-0.5 + 0.2) = 0 after the add. */
    gs[2] = g2[2] = 0.0f;
    bs[2] = 0.4f;
    b2[2] = 0.3f;
    gs[3] = g2[3] = 0.0f;
    bs[3] = 0.2f;
    b2[3] = -0.5f;
    slim_prune_report r;
    p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "stem")->c, 2);
    assert_int_equal(layer(p, "stem_bn")->c, 2);
    assert_int_equal(layer(p, "c2")->c, 2);
    assert_int_equal(layer(p, "bn2")->c, 2);
    assert_int_equal(layer(p, "out")->c, 2);
    assert_int_equal(layer(p, "c1")->in_c, 2);
    assert_int_equal(layer(p, "c1")->c, 4); /* bn1 is its own group, untouched */
    assert_int_equal(layer(p, "fc")->in_c, 2);
    assert_true(has_note(&r, "fc: folded 1 removed"));
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- zero filters: constant channels with gamma != 0 ------------------------------ */

/* Zeroes output filter j of conv/dense layer l (its weight row). */
/* vgg-fm, every conv-bn pair: of a random order of its channels, 30% get a
 * zero filter (gamma kept nonzero, running statistics stirred), 15% gamma =
 * 0, 10% both; one more channel gets a filter that is zero except one weight
 * and must stay. */
static void test_vgg_fm_zero_filters_exact(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 21, 9);
    slim_model *m = load("models/vgg-fm.net");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    calibrate(m, SLIM_BACKEND_FAST, &rng);
    int want[64] = {0}, n_filter = 0, n_gamma = 0, total = 0;
    assert_true(m->n_layers <= 64);
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *bn = &m->layers[i];
        if (bn->kind != SLIM_LAYER_BN) continue;
        slim_layer *conv = &m->layers[bn->inputs[0]];
        assert_int_equal(conv->kind, SLIM_LAYER_CONV);
        uint32_t perm[1024];
        shuffled(perm, bn->c, 1024, &rng);
        int nf = (int)(0.30 * bn->c), ng = (int)(0.15 * bn->c), nb = (int)(0.10 * bn->c), t = 0;
        for (int e = 0; e < nf; e++, t++) {
            zero_filter(m, conv, (int)perm[t]);
            stir_stats(bn, (int)perm[t], &rng);
        }
        for (int e = 0; e < ng; e++, t++)
            gamma_of(m, bn)[perm[t]] = 0.0f;
        for (int e = 0; e < nb; e++, t++) {
            zero_filter(m, conv, (int)perm[t]);
            gamma_of(m, bn)[perm[t]] = 0.0f;
        }
        int almost = (int)perm[t];
        size_t row = (size_t)conv->in_c * (size_t)conv->k * (size_t)conv->k;
        zero_filter(m, conv, almost);
        m->params[conv->p_weight].data[(size_t)almost * row + row / 2] = 0.25f;
        stir_stats(bn, almost, &rng);
        want[i] = bn->c - nf - ng - nb;
        n_filter += nf;
        n_gamma += ng + nb;
        total += bn->c;
    }

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *bn = &m->layers[i];
        if (bn->kind != SLIM_LAYER_BN) continue;
        assert_int_equal(p->layers[i].c, want[i]);
        assert_int_equal(p->layers[bn->inputs[0]].c, want[i]);
        /* the kept channels are those with gamma != 0 and a nonzero filter,
         * in order (the almost-zero filter among them) */
        const slim_layer *conv = &m->layers[bn->inputs[0]];
        size_t row = (size_t)conv->in_c * (size_t)conv->k * (size_t)conv->k;
        const float *w = m->params[conv->p_weight].data;
        const float *g0 = gamma_of(m, bn), *g1 = gamma_of(p, &p->layers[i]);
        int k = 0;
        for (int j = 0; j < bn->c; j++) {
            int zero = 1;
            for (size_t q = 0; q < row && zero; q++)
                zero = w[(size_t)j * row + q] == 0.0f;
            if (g0[j] != 0.0f && !zero) assert_true(g1[k++] == g0[j]);
        }
        assert_int_equal(k, want[i]);
    }
    assert_int_equal(r.removed_zero_filter, n_filter);
    assert_int_equal(r.removed_gamma_zero, n_gamma);
    assert_int_equal(r.removed_nonzero, 0);
    assert_int_equal(r.channels_after, total - n_filter - n_gamma);
    const slim_prune_layer_report *row1 = &r.rows[0];
    assert_string_equal(row1->name, "conv1");
    assert_int_equal(row1->removed_zero_filter, (int)(0.30 * 32));
    assert_int_equal(row1->removed_gamma_zero, (int)(0.15 * 32) + (int)(0.10 * 32));
    assert_true(has_note(&r, "whose filters in conv1 are exactly zero"));
    assert_true(table_has(&r, "removed because"));
    assert_true(table_has(&r, "9 zero filter"));
    check_report_totals(&r, m, p);
    assert_exact_as(m, p, SLIM_BACKEND_FAST, &rng, "vgg-fm, zero filters + gamma = 0");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* resnet-fm: in a group coupled by an add, channel j goes only when BOTH
 * BNs are constant at j, each either way (gamma = 0 or zero filter); the
 * constant after the add is the sum of the two. Per channel, in a random
 * order: A zero filter in every producer; B gamma = 0 in the first BN, zero
 * filter before the second; C zero filter before the first BN only (kept);
 * D gamma = 0 in every BN; E gamma = 0 in the first BN only (kept); F an
 * almost-zero filter (kept). Single-BN groups get A, D and F. */
static void test_resnet_fm_zero_filters_exact(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 23, 9);
    slim_model *m = load("models/resnet-fm.net");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    calibrate(m, SLIM_BACKEND_FAST, &rng);
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    assert_int_equal(g.n_groups, 6);
    int expect[6], n_filter = 0, n_gamma = 0;
    for (int gi = 0; gi < 6; gi++) {
        slim_prune_group *q = &g.groups[gi];
        uint32_t perm[64];
        shuffled(perm, q->channels, 64, &rng);
        int per = q->channels / 8, t = 0; /* 2, 4 or 8 channels of each kind */
        slim_layer *bn0 = &m->layers[q->bn[0]];
        slim_layer *bn1 = q->n_bn > 1 ? &m->layers[q->bn[1]] : NULL;
        slim_layer *pr0 = &m->layers[bn0->inputs[0]];
        slim_layer *pr1 = bn1 ? &m->layers[bn1->inputs[0]] : NULL;
        assert_int_equal(q->n_producers, q->n_bn);
        for (int e = 0; e < per; e++, t++) { /* A */
            int j = (int)perm[t];
            zero_filter(m, pr0, j);
            stir_stats(bn0, j, &rng);
            if (bn1) {
                zero_filter(m, pr1, j);
                stir_stats(bn1, j, &rng);
            }
        }
        for (int e = 0; e < per; e++, t++) { /* D */
            gamma_of(m, bn0)[perm[t]] = 0.0f;
            if (bn1) gamma_of(m, bn1)[perm[t]] = 0.0f;
        }
        int j = (int)perm[t++]; /* F */
        zero_filter(m, pr0, j);
        m->params[pr0->p_weight].data[(size_t)j * pr0->in_c * pr0->k * pr0->k] = -0.125f;
        stir_stats(bn0, j, &rng);
        expect[gi] = q->channels - 2 * per;
        n_filter += per;
        n_gamma += per;
        if (!bn1) continue;
        for (int e = 0; e < per; e++, t++) { /* B */
            gamma_of(m, bn0)[perm[t]] = 0.0f;
            zero_filter(m, pr1, (int)perm[t]);
            stir_stats(bn1, (int)perm[t], &rng);
        }
        for (int e = 0; e < per; e++, t++) { /* C */
            zero_filter(m, pr0, (int)perm[t]);
            stir_stats(bn0, (int)perm[t], &rng);
        }
        for (int e = 0; e < per; e++, t++) /* E */
            gamma_of(m, bn0)[perm[t]] = 0.0f;
        expect[gi] -= per;
        n_filter += per;
    }

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_group_widths(p, &g, expect);
    assert_int_equal(r.removed_zero_filter, n_filter);
    assert_int_equal(r.removed_gamma_zero, n_gamma);
    assert_int_equal(r.removed_nonzero, 0);
    assert_true(has_note(&r, "stem_bn+b1_bn2: removed 4 channels with gamma != 0 whose filters "
                             "in stem+b1_conv2 are exactly zero"));
    check_report_totals(&r, m, p);
    assert_exact_as(m, p, SLIM_BACKEND_FAST, &rng, "resnet-fm, zero filters + gamma = 0");
    slim_prune_report_free(&r);
    slim_prune_groups_free(&g);
    slim_model_free(p);
    slim_model_free(m);
}

/* The constant of a zero filter is gamma (0 - mean) / sqrt(var + eps) +
 * beta, not beta: checked on the bias map it leaves in the next conv, and by
 * showing that the gamma = 0 constant (beta) would be visibly wrong. */
static void test_zero_filter_constant(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 25, 9);
    slim_model *m = tiny(&rng);
    slim_layer *c1 = layer(m, "c1"), *b1 = layer(m, "b1");
    zero_filter(m, c1, 1);
    gamma_of(m, b1)[1] = 0.8f;
    beta_of(m, b1)[1] = 0.1f;
    b1->running_mean[1] = -0.5f;
    b1->running_var[1] = 0.25f;
    double c = 0.8 * 0.5 / sqrt(0.25 + 1e-5) + 0.1; /* about 0.9 */
    /* filter 2 is zero except one weight: not constant, kept */
    zero_filter(m, c1, 2);
    param(m, "c1.weight")->data[2 * 9 + 4] = 1e-3f;

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "c1")->c, 2);
    assert_int_equal(layer(p, "b1")->c, 2);
    assert_true(gamma_of(p, layer(p, "b1"))[1] == gamma_of(m, b1)[2]);
    assert_int_equal(r.removed_zero_filter, 1);
    assert_int_equal(r.removed_gamma_zero, 0);
    assert_int_equal(r.rows[0].removed_zero_filter, 1); /* c1 */
    assert_true(has_note(&r, "b1: removed 1 channel with gamma != 0 whose filters in c1"));
    assert_true(table_has(&r, "1 zero filter"));
    const float *w2 = param(m, "c2.weight")->data;  /* (2, 3, 3, 3) */
    const float *bm = param(p, "c2.biasmap")->data; /* (2, 5, 5) */
    for (int o = 0; o < 2; o++) {
        const float *k = w2 + (o * 3 + 1) * 9;
        double all = 0, corner = k[4] + k[5] + k[7] + k[8];
        for (int t = 0; t < 9; t++)
            all += k[t];
        assert_true(fabs(bm[o * 25 + 12] - c * all) < 1e-5);
        assert_true(fabs(bm[o * 25 + 0] - c * corner) < 1e-5);
    }
    assert_exact_as(m, p, SLIM_BACKEND_REF, &rng, "tiny, zero filter");

    /* Teeth: the input with gamma := 0 on that channel (whose constant is
     * beta, the fold of the gamma = 0 rule) is a different function. */
    gamma_of(m, b1)[1] = 0.0f;
    assert_true(logit_gap(m, p, SLIM_BACKEND_REF, &rng) > 1e-3);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* A conv with a bias before a BN (bias=1): a zero filter outputs b_j, and
 * the BN's constant uses it. A conv with a bias map: a zero filter outputs
 * the map's plane, constant only when the plane is uniform. A dense layer
 * before a BN: a zero row outputs its bias. */
static void test_zero_filter_bias_biasmap_dense(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 27, 9);
    slim_model *m = parse("input shape=2x6x6\n"
                          "conv c1 out=4 k=3 pad=1 bias=1\n"
                          "bn b1\n"
                          "relu r1\n"
                          "conv c2 out=3 k=3 pad=1 biasmap=1\n"
                          "bn b2\n"
                          "relu r2\n"
                          "flatten\n"
                          "dense d1 out=5\n"
                          "bn bd\n"
                          "relu rd\n"
                          "dense fc out=3\n");
    assert_true(layer(m, "c1")->has_bias);
    assert_true(layer(m, "d1")->has_bias);
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    slim_param *map = param(m, "c2.biasmap"); /* (3, 6, 6) */
    tu_fill_uniform(&rng, map->data, map->numel, -0.5f, 0.5f);
    calibrate(m, SLIM_BACKEND_REF, &rng);
    slim_layer *b1 = layer(m, "b1"), *b2 = layer(m, "b2"), *bd = layer(m, "bd");

    /* c1 filter 0: the constant is gamma (bias - mean) / sqrt(var + eps) + beta */
    zero_filter(m, layer(m, "c1"), 0);
    param(m, "c1.bias")->data[0] = 0.6f;
    gamma_of(m, b1)[0] = 1.2f;
    beta_of(m, b1)[0] = 0.5f;
    b1->running_mean[0] = -0.4f;
    b1->running_var[0] = 0.5f; /* 1.2 * 1.0 / sqrt(0.5) + 0.5 = 2.2 (mean 0.6 would give 0.5) */
    /* c2 filter 0 over a non-uniform map plane: kept; filter 1 over a
     * uniform one: removed */
    zero_filter(m, layer(m, "c2"), 0);
    zero_filter(m, layer(m, "c2"), 1);
    for (int q = 0; q < 36; q++)
        map->data[36 + q] = 0.3f;
    stir_stats(b2, 0, &rng);
    stir_stats(b2, 1, &rng);
    /* d1 row 2 */
    zero_filter(m, layer(m, "d1"), 2);
    stir_stats(bd, 2, &rng);

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "c1")->c, 3);
    assert_int_equal(layer(p, "c2")->c, 2);
    assert_int_equal(layer(p, "c2")->in_c, 3);
    assert_int_equal(layer(p, "d1")->c, 4);
    assert_int_equal(layer(p, "d1")->in_c, 2 * 36);
    assert_int_equal(layer(p, "fc")->in_c, 4);
    assert_int_equal(r.removed_zero_filter, 3);
    /* the kept bias map planes are planes 0 and 2 */
    const float *bm0 = map->data, *bm1 = param(p, "c2.biasmap")->data;
    double fold = 0;
    for (int q = 0; q < 36; q++)
        fold = fmax(fold, fabs(bm1[36 + q] - bm0[72 + q]));
    assert_true(fold > 1e-3); /* c1's removed channel was folded into it */
    assert_exact_as(m, p, SLIM_BACKEND_REF, &rng, "bias, bias map, dense");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Residual coupling with zero filters on the toy network: a channel goes
 * when both BNs at the add are constant, each either way. */
static void test_residual_zero_filters(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 29, 9);
    slim_model *m = parse(toy_resnet);
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    calibrate(m, SLIM_BACKEND_REF, &rng);
    slim_layer *stem = layer(m, "stem"), *c2 = layer(m, "c2");
    slim_layer *sb = layer(m, "stem_bn"), *b2 = layer(m, "bn2");
    /* Channel 0: both filters zero; after the add relu(c_stem) + c_bn2 > 0,
     * read by fc through the relu and gap, and c_stem by c1. */
    zero_filter(m, stem, 0);
    zero_filter(m, c2, 0);
    gamma_of(m, sb)[0] = 1.0f;
    beta_of(m, sb)[0] = 0.2f;
    sb->running_mean[0] = -0.5f;
    sb->running_var[0] = 0.25f; /* c_stem = 1.2 */
    gamma_of(m, b2)[0] = -0.5f;
    beta_of(m, b2)[0] = 0.1f;
    b2->running_mean[0] = -1.0f;
    b2->running_var[0] = 1.0f; /* c_bn2 = -0.4 */
    /* Channel 1: only the stem's filter is zero: bn2 is not constant, kept. */
    zero_filter(m, stem, 1);
    stir_stats(sb, 1, &rng);
    /* Channel 2: gamma = 0 in stem_bn, c2's filter zero: removed. */
    gamma_of(m, sb)[2] = 0.0f;
    beta_of(m, sb)[2] = 0.6f;
    zero_filter(m, c2, 2);
    gamma_of(m, b2)[2] = 0.7f;
    beta_of(m, b2)[2] = 0.3f;
    b2->running_mean[2] = 0.2f;
    b2->running_var[2] = 1.0f; /* c_bn2 = 0.16; after the add 0.76 */

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "stem")->c, 2);
    assert_int_equal(layer(p, "c2")->c, 2);
    assert_int_equal(layer(p, "a")->c, 2);
    assert_int_equal(layer(p, "c1")->in_c, 2);
    assert_int_equal(r.removed_zero_filter, 2);
    assert_int_equal(r.removed_gamma_zero, 0);
    assert_true(has_note(&r, "stem_bn+bn2: removed 2 channels with gamma != 0 whose filters in "
                             "stem+c2 are exactly zero"));
    assert_true(has_note(&r, "fc: folded 2 removed"));
    assert_true(has_note(&r, "c1: folded 2 removed"));
    assert_exact_as(m, p, SLIM_BACKEND_REF, &rng, "toy resnet, zero filters");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Two convs added before one BN: the BN's input is constant at j only when
 * both filters j are zero, and the constant is the sum of their biases. */
static void test_zero_filters_summed_before_bn(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 33, 9);
    slim_model *m = parse("input shape=2x5x5\n"
                          "conv ca out=3 k=3 pad=1\n"
                          "conv cb out=3 k=3 pad=1 from=input\n"
                          "add s from=ca,cb\n"
                          "bn bs\n"
                          "relu rs\n"
                          "conv c2 out=2 k=3 pad=1\n"
                          "bn b2\n"
                          "relu r2\n"
                          "gap g\n"
                          "dense fc out=3\n");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    for (int j = 0; j < 2; j++)
        beta_of(m, layer(m, "b2"))[j] = 3.0f; /* so that c2's border reaches the logits */
    calibrate(m, SLIM_BACKEND_REF, &rng);
    assert_true(layer(m, "ca")->has_bias && layer(m, "cb")->has_bias);
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    assert_int_equal(g.n_groups, 2);
    assert_int_equal(g.groups[0].n_producers, 2);
    assert_int_equal(g.groups[0].n_bn, 1);
    slim_prune_groups_free(&g);
    slim_layer *bs = layer(m, "bs");
    /* channel 0: both filters zero: bs sees the constant 0.3 + 0.5 */
    zero_filter(m, layer(m, "ca"), 0);
    zero_filter(m, layer(m, "cb"), 0);
    param(m, "ca.bias")->data[0] = 0.3f;
    param(m, "cb.bias")->data[0] = 0.5f;
    gamma_of(m, bs)[0] = 0.9f;
    beta_of(m, bs)[0] = 0.2f;
    bs->running_mean[0] = 0.1f;
    bs->running_var[0] = 0.5f; /* 0.9 * 0.7 / sqrt(0.5) + 0.2 = 1.09 */
    /* channel 1: only ca's filter is zero: cb still varies, kept */
    zero_filter(m, layer(m, "ca"), 1);
    stir_stats(bs, 1, &rng);

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "ca")->c, 2);
    assert_int_equal(layer(p, "cb")->c, 2);
    assert_int_equal(layer(p, "c2")->in_c, 2);
    assert_int_equal(r.removed_zero_filter, 1);
    assert_true(has_note(&r, "bs: removed 1 channel with gamma != 0 whose filters in ca+cb"));
    assert_true(has_note(&r, "c2: folded 1 removed constant channel of bs into its bias map"));
    assert_exact_as(m, p, SLIM_BACKEND_REF, &rng, "two convs added before a bn");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Percent mode scores a zero-filter channel 0: it goes first, exactly. */
static void test_percent_zero_filter_first(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 31, 9);
    slim_model *m = tiny(&rng);
    slim_layer *b1 = layer(m, "b1");
    zero_filter(m, layer(m, "c1"), 0);
    gamma_of(m, b1)[0] = 5.0f; /* the largest |gamma| of all */
    stir_stats(b1, 0, &rng);
    slim_prune_options opt = {.mode = SLIM_PRUNE_PERCENT, .percent = 20.0f}; /* 1 of 5 */
    slim_prune_report r;
    slim_model *p = prune_ok(m, &opt, &r);
    assert_int_equal(layer(p, "c1")->c, 2);
    assert_true(gamma_of(p, layer(p, "b1"))[0] == gamma_of(m, b1)[1]);
    assert_int_equal(r.removed_zero_filter, 1);
    assert_int_equal(r.removed_nonzero, 0);
    assert_false(has_note(&r, "approximates"));
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);
    slim_prune_report_free(&r);
    slim_model_free(p);
    /* 40%: the zero filter and the smallest |gamma| (approximate). */
    opt.percent = 40.0f;
    p = prune_ok(m, &opt, &r);
    assert_int_equal(r.channels_after, 3);
    assert_int_equal(r.removed_zero_filter, 1);
    assert_int_equal(r.removed_nonzero, 1);
    assert_true(table_has(&r, "1 zero filter, 1 approx"));
    check_report_totals(&r, m, p);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- never an empty layer ----------------------------------------------------- */

static void test_last_channel_kept(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 14, 5);
    slim_model *m = tiny(&rng);
    float *g = gamma_of(m, layer(m, "b1")), *b = beta_of(m, layer(m, "b1"));
    for (int j = 0; j < 3; j++)
        g[j] = 0.0f;
    b[0] = 0.3f;
    b[1] = -0.2f;
    b[2] = 0.8f;
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "c1")->c, 1);
    assert_int_equal(layer(p, "b1")->c, 1);
    assert_true(has_note(&r, "kept 1 channel of b1"));
    assert_int_equal(r.channels_after, 1 + 2);
    /* the kept channel still has gamma 0: constant, and still exact */
    assert_true(gamma_of(p, layer(p, "b1"))[0] == 0.0f);
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);

    /* Every filter of c1 zero (gamma != 0): one channel stays, constant. */
    m = tiny(&rng);
    for (int j = 0; j < 3; j++) {
        zero_filter(m, layer(m, "c1"), j);
        stir_stats(layer(m, "b1"), j, &rng);
    }
    p = prune_ok(m, NULL, &r);
    assert_int_equal(layer(p, "c1")->c, 1);
    assert_true(has_note(&r, "kept 1 channel of b1"));
    assert_true(has_note(&r, "constant: zero filters"));
    assert_int_equal(r.removed_zero_filter, 2);
    assert_exact(m, p, SLIM_BACKEND_REF, &rng);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- percent mode --------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_percent_mode(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 15, 5);
    slim_model *m = load("models/vgg-fm.net");
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    /* bn1's 32 gammas are the smallest of all, so that removing 20% (89 of
     * 448) would empty it: one must stay. */
    slim_layer *bn1 = layer(m, "bn1");
    for (int j = 0; j < bn1->c; j++)
        gamma_of(m, bn1)[j] *= 1e-3f;
    calibrate(m, SLIM_BACKEND_FAST, &rng);

    float all[448];
    int n = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN)
            for (int j = 0; j < m->layers[i].c; j++)
                all[n++] = fabsf(gamma_of(m, &m->layers[i])[j]);
    assert_int_equal(n, 448);
    qsort(all, (size_t)n, sizeof(float), cmp_float);
    int n_remove = (int)(0.20 * 448); /* 89 */
    float cut = all[n_remove - 1];
    assert_true(all[n_remove] > cut); /* distinct values: the expected set is unambiguous */

    slim_prune_options opt = {.mode = SLIM_PRUNE_PERCENT, .percent = 20.0f};
    slim_prune_report r;
    slim_model *p = prune_ok(m, &opt, &r);
    assert_int_equal(r.channels_before, 448);
    assert_int_equal(r.channels_after, 448 - (n_remove - 1));
    assert_int_equal(layer(p, "bn1")->c, 1);
    assert_true(has_note(&r, "kept 1 channel of bn1"));
    assert_true(has_note(&r, "gamma != 0"));
    assert_int_equal(r.removed_nonzero, n_remove - 1);

    /* The pruned model is exactly the input with gamma := 0 on the removed
     * channels (beta folded, not dropped). */
    float best = 0;
    int best_j = 0;
    for (int j = 0; j < bn1->c; j++)
        if (fabsf(gamma_of(m, bn1)[j]) > best) best = fabsf(gamma_of(m, bn1)[j]), best_j = j;
    assert_true(gamma_of(p, layer(p, "bn1"))[0] == gamma_of(m, bn1)[best_j]);
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        assert_true(p->layers[i].c >= 1);
        for (int j = 0; j < l->c; j++)
            if (fabsf(gamma_of(m, l)[j]) <= cut && !(l == bn1 && j == best_j))
                gamma_of(m, l)[j] = 0.0f;
    }
    assert_exact(m, p, SLIM_BACKEND_FAST, &rng);
    check_report_totals(&r, m, p);
    slim_prune_report_free(&r);
    slim_model_free(p);

    /* 0% removes nothing; 100% leaves one channel per group. */
    opt.percent = 0.0f;
    p = prune_ok(m, &opt, &r);
    assert_int_equal(r.channels_after, 448);
    slim_prune_report_free(&r);
    slim_model_free(p);
    opt.percent = 100.0f;
    p = prune_ok(m, &opt, &r);
    assert_int_equal(r.channels_after, 6);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) assert_int_equal(p->layers[i].c, 1);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* A threshold above 0 removes the small gammas (approximate) and says so. */
static void test_threshold_positive(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 16, 5);
    slim_model *m = tiny(&rng);
    float *g = gamma_of(m, layer(m, "b1"));
    g[0] = 0.01f;
    g[1] = -0.02f;
    g[2] = 0.9f;
    slim_prune_options opt = {.mode = SLIM_PRUNE_THRESHOLD, .threshold = 0.05f};
    slim_prune_report r;
    slim_model *p = prune_ok(m, &opt, &r);
    assert_int_equal(layer(p, "b1")->c, 1);
    assert_int_equal(r.removed_nonzero, 2);
    assert_true(gamma_of(p, layer(p, "b1"))[0] == 0.9f);
    slim_prune_report_free(&r);
    slim_model_free(p);
    /* A small gamma over a zero filter is exact: the BN is constant. */
    zero_filter(m, layer(m, "c1"), 0);
    p = prune_ok(m, &opt, &r);
    assert_int_equal(layer(p, "b1")->c, 1);
    assert_int_equal(r.removed_nonzero, 1);
    assert_int_equal(r.removed_zero_filter, 1);
    check_report_totals(&r, m, p);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- errors and structure ---------------------------------------------------------- */

static void test_errors(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 17, 5);
    slim_model *m = tiny(&rng);
    slim_model *p = NULL;
    slim_prune_report r;
    slim_prune_options bad = {.mode = SLIM_PRUNE_THRESHOLD, .threshold = -1.0f};
    assert_int_equal(slim_prune(m, &bad, &p, &r), SLIM_ERR_ARG);
    bad = (slim_prune_options){.mode = SLIM_PRUNE_PERCENT, .percent = 101.0f};
    assert_int_equal(slim_prune(m, &bad, &p, &r), SLIM_ERR_ARG);
    bad.percent = NAN;
    assert_int_equal(slim_prune(m, &bad, &p, &r), SLIM_ERR_ARG);
    assert_null(p);
    gamma_of(m, layer(m, "b2"))[1] = NAN;
    assert_int_equal(slim_prune(m, NULL, &p, &r), SLIM_ERR_NUMERIC);
    assert_non_null(strstr(slim_last_error(), "b2"));
    assert_null(p);
    slim_prune_report_free(&r);
    slim_model_free(m);

    /* No BN: no groups, the model comes back unchanged (as a new model). */
    m = parse("input shape=1x4x4\nconv c out=2 k=3\nrelu\ngap\ndense fc out=2\n");
    slim_model_init_params(m, &rng);
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    assert_int_equal(g.n_groups, 0);
    slim_prune_groups_free(&g);
    p = prune_ok(m, NULL, &r);
    assert_true(has_note(&r, "no prunable"));
    assert_int_equal(p->param_floats, m->param_floats);
    assert_memory_equal(p->param_block, m->param_block, m->param_floats * sizeof(float));
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Spaces that must not be pruned: a BN whose channels reach the logits, an
 * add meeting a branch without BN. */
static void test_unprunable_structures(void **state) {
    (void)state;
    slim_model *m = parse("input shape=1x4x4\n"
                          "conv c1 out=3 k=3 pad=1\n"
                          "bn b1\n"
                          "conv c2 out=3 k=3 pad=1\n"
                          "add a from=b1,c2\n"
                          "conv c3 out=2 k=1\n"
                          "bn b3\n"
                          "gap g\n");
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    /* b1's channels meet c2's raw output at the add, which c3 reads: never
     * constant. b3's channels are the logits. Only c2's reading of b1
     * would be foldable, but the space is shared. */
    assert_int_equal(g.n_groups, 0);
    slim_prune_groups_free(&g);
    slim_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vgg_fm_threshold0_exact),
        cmocka_unit_test(test_lenet_flatten_exact),
        cmocka_unit_test(test_resnet_fm_groups_and_exact),
        cmocka_unit_test(test_border_fold_needs_biasmap),
        cmocka_unit_test(test_unpadded_fold_is_bias),
        cmocka_unit_test(test_residual_coupling),
        cmocka_unit_test(test_vgg_fm_zero_filters_exact),
        cmocka_unit_test(test_resnet_fm_zero_filters_exact),
        cmocka_unit_test(test_zero_filter_constant),
        cmocka_unit_test(test_zero_filter_bias_biasmap_dense),
        cmocka_unit_test(test_residual_zero_filters),
        cmocka_unit_test(test_zero_filters_summed_before_bn),
        cmocka_unit_test(test_percent_zero_filter_first),
        cmocka_unit_test(test_last_channel_kept),
        cmocka_unit_test(test_percent_mode),
        cmocka_unit_test(test_threshold_positive),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unprunable_structures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
