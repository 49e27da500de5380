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
 * of order 1e-2 or more, as the border test shows. */
#include "testutil.h"

#include "slim/prune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXACT_TOL 1e-4
#define N_COMPARE 64

/* ---- helpers -------------------------------------------------------------- */

static slim_model *load(const char *rel) {
    char path[1024];
    slim_model *m = NULL;
    slim_status st = slim_model_load_file(tu_source_path(rel, path, sizeof path), &m);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    return m;
}

static slim_model *parse(const char *text) {
    slim_model *m = NULL;
    slim_status st = slim_model_parse(text, "<test>", &m);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    return m;
}

static slim_param *param(slim_model *m, const char *name) {
    int i = slim_model_find_param(m, name);
    assert_true(i >= 0);
    return &m->params[i];
}

static slim_layer *layer(slim_model *m, const char *name) {
    int i = slim_model_find_layer(m, name);
    assert_true(i >= 0);
    return &m->layers[i];
}

static float *gamma_of(slim_model *m, const slim_layer *l) { return m->params[l->p_gamma].data; }
static float *beta_of(slim_model *m, const slim_layer *l) { return m->params[l->p_beta].data; }

static float *random_inputs(slim_model *m, int n, slim_rng *rng) {
    const slim_layer *in = &m->layers[0];
    size_t numel = (size_t)n * in->c * in->h * in->w;
    float *x = malloc(numel * sizeof(float));
    assert_non_null(x);
    tu_fill_uniform(rng, x, numel, -1.0f, 1.0f);
    return x;
}

/* A few training-mode forwards on random data, so that the running
 * statistics match the network (as after training) and logits have a
 * sensible scale. */
static void calibrate(slim_model *m, slim_backend backend, slim_rng *rng) {
    slim_tape tape;
    slim_tape_init(&tape, backend);
    const slim_layer *in = &m->layers[0];
    for (int it = 0; it < 4; it++) {
        slim_tape_reset(&tape);
        slim_tensor *x = slim_tape_tensor(&tape, 4, (int[]){16, in->c, in->h, in->w}, 0);
        assert_non_null(x);
        tu_fill_uniform(rng, x->data, slim_tensor_numel(x), -1.0f, 1.0f);
        slim_tensor *logits;
        assert_int_equal(slim_model_forward(m, &tape, x, 1, &logits), SLIM_OK);
    }
    slim_tape_free(&tape);
}

/* Every BN: gamma uniform in +-[0.5, 1.5], beta uniform in [-1, 1] (so some
 * zeroed channels leave max(beta, 0) > 0 and some leave 0). */
static void randomize_bn(slim_model *m, slim_rng *rng) {
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        for (int j = 0; j < l->c; j++) {
            float g = 0.5f + slim_rng_uniform(rng);
            gamma_of(m, l)[j] = slim_rng_uniform(rng) < 0.5f ? -g : g;
            beta_of(m, l)[j] = -1.0f + 2.0f * slim_rng_uniform(rng);
        }
    }
}

/* Zeroes floor(frac * c) random gammas of BN layer l; returns the count. */
static int zero_some(slim_model *m, slim_layer *l, double frac, slim_rng *rng) {
    uint32_t perm[1024];
    assert_true(l->c <= 1024);
    for (int j = 0; j < l->c; j++)
        perm[j] = (uint32_t)j;
    slim_rng_shuffle(rng, perm, (size_t)l->c);
    int k = (int)(frac * l->c);
    for (int t = 0; t < k; t++)
        gamma_of(m, l)[perm[t]] = 0.0f;
    return k;
}

static void assert_exact(slim_model *a, slim_model *b, slim_backend backend, slim_rng *rng) {
    float *x = random_inputs(a, N_COMPARE, rng);
    double delta = -1, big = -1;
    size_t mism = 99;
    slim_status st = slim_prune_compare(a, b, x, N_COMPARE, backend, &delta, &big, &mism);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    free(x);
    if (!(delta <= EXACT_TOL * big))
        fprintf(stderr, "max |delta logit| %g, max |logit| %g\n", delta, big);
    assert_true(big > 0.1); /* a meaningful comparison, not of zeros */
    assert_true(delta <= EXACT_TOL * big);
    assert_int_equal(mism, 0);
}

/* Logits of a training-mode forward (batch statistics) on x (n images). */
static float *train_logits(slim_model *m, const float *x, int n, slim_backend backend) {
    slim_tape tape;
    slim_tape_init(&tape, backend);
    const slim_layer *in = &m->layers[0];
    slim_tensor *t = slim_tape_tensor(&tape, 4, (int[]){n, in->c, in->h, in->w}, 0);
    assert_non_null(t);
    memcpy(t->data, x, slim_tensor_numel(t) * sizeof(float));
    slim_tensor *logits;
    assert_int_equal(slim_model_forward(m, &tape, t, 1, &logits), SLIM_OK);
    size_t k = slim_tensor_numel(logits);
    float *out = malloc(k * sizeof(float));
    assert_non_null(out);
    memcpy(out, logits->data, k * sizeof(float));
    slim_tape_free(&tape);
    return out;
}

static slim_model *prune_ok(slim_model *m, const slim_prune_options *opt, slim_prune_report *r) {
    slim_model *out = NULL;
    slim_status st = slim_prune(m, opt, &out, r);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    assert_non_null(out);
    return out;
}

static int has_note(const slim_prune_report *r, const char *needle) {
    for (int i = 0; i < r->n_notes; i++)
        if (strstr(r->notes[i], needle)) return 1;
    return 0;
}

static void check_report_totals(const slim_prune_report *r, const slim_model *in,
                                const slim_model *out) {
    assert_true(r->params_before == slim_model_param_count(in));
    assert_true(r->params_after == slim_model_param_count(out));
    assert_true(r->macs_before == slim_model_macs(in));
    assert_true(r->macs_after == slim_model_macs(out));
    size_t pb = 0, pa = 0;
    double mb = 0, ma = 0;
    for (int i = 0; i < r->n_rows; i++) {
        pb += r->rows[i].params_before;
        pa += r->rows[i].params_after;
        mb += r->rows[i].macs_before;
        ma += r->rows[i].macs_after;
    }
    assert_true(pb == r->params_before && pa == r->params_after);
    assert_true(mb == r->macs_before && ma == r->macs_after);
    /* The printed table carries the totals. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    slim_prune_report_print(r, f);
    fclose(f);
    char expect[64];
    snprintf(expect, sizeof expect, "%d -> %d", r->channels_before, r->channels_after);
    assert_non_null(strstr(buf, "total"));
    assert_non_null(strstr(buf, expect));
    free(buf);
}

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
        for (int j = 0; j < q->channels; j++)
            perm[j] = (uint32_t)j;
        slim_rng_shuffle(&rng, perm, (size_t)q->channels);
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
    for (int gi = 0; gi < 6; gi++) {
        slim_prune_group *q = &g.groups[gi];
        for (int k = 0; k < q->n_members; k++)
            assert_int_equal(p->layers[q->members[k]].c, expect[gi]);
    }
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
        cmocka_unit_test(test_last_channel_kept),
        cmocka_unit_test(test_percent_mode),
        cmocka_unit_test(test_threshold_positive),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unprunable_structures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
