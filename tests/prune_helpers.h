/* Helpers shared by the pruning tests (test_prune.c, test_prune_graph.c):
 * model loading and editing, calibration, and the exactness check (see
 * test_prune.c's top comment). */
#ifndef SLIM_TESTS_PRUNE_HELPERS_H
#define SLIM_TESTS_PRUNE_HELPERS_H

#include "testutil.h"

#include "slim/prune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXACT_TOL 1e-4
#define N_COMPARE 64

static inline slim_model *load(const char *rel) {
    char path[1024];
    slim_model *m = NULL;
    slim_status st = slim_model_load_file(tu_source_path(rel, path, sizeof path), &m);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    return m;
}

/* conv a (1->4) - bn - relu - conv b (4->4) - bn, added to a's relu (one
 * group of 4 coupled channels, two gammas each), conv c (1x1, 4->3) - bn,
 * gap, dense 3->2; 4x4 pictures. */
static inline const char *residual_net(void) {
    return "input shape=1x4x4\n"
           "conv a out=4 k=3 pad=1\n"
           "bn a_bn\n"
           "relu a_r\n"
           "conv b out=4 k=3 pad=1\n"
           "bn b_bn\n"
           "add s from=b_bn,a_r\n"
           "relu s_r\n"
           "conv c out=3 k=1\n"
           "bn c_bn\n"
           "relu c_r\n"
           "gap\n"
           "dense fc out=2\n";
}

static inline slim_model *parse(const char *text) {
    slim_model *m = NULL;
    slim_status st = slim_model_parse(text, "<test>", &m);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    return m;
}

static inline slim_param *param(slim_model *m, const char *name) {
    int i = slim_model_find_param(m, name);
    assert_true(i >= 0);
    return &m->params[i];
}

static inline slim_layer *layer(slim_model *m, const char *name) {
    int i = slim_model_find_layer(m, name);
    assert_true(i >= 0);
    return &m->layers[i];
}

static inline float *gamma_of(slim_model *m, const slim_layer *l) {
    return m->params[l->p_gamma].data;
}
static inline float *beta_of(slim_model *m, const slim_layer *l) {
    return m->params[l->p_beta].data;
}

static inline float *random_inputs(slim_model *m, int n, slim_rng *rng) {
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
static inline void calibrate(slim_model *m, slim_backend backend, slim_rng *rng) {
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
static inline void randomize_bn(slim_model *m, slim_rng *rng) {
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
/* perm := a random permutation of 0..n-1 (perm holds `cap` entries). */
static inline void shuffled(uint32_t *perm, int n, int cap, slim_rng *rng) {
    assert_true(n <= cap);
    for (int j = 0; j < n; j++)
        perm[j] = (uint32_t)j;
    slim_rng_shuffle(rng, perm, (size_t)n);
}

/* Every member of group gi of g has expect[gi] channels in the pruned p. */
static inline void assert_group_widths(const slim_model *p, const slim_prune_groups *g,
                                       const int *expect) {
    for (int gi = 0; gi < g->n_groups; gi++) {
        const slim_prune_group *q = &g->groups[gi];
        for (int k = 0; k < q->n_members; k++)
            assert_int_equal(p->layers[q->members[k]].c, expect[gi]);
    }
}

static inline int zero_some(slim_model *m, slim_layer *l, double frac, slim_rng *rng) {
    uint32_t perm[1024];
    shuffled(perm, l->c, 1024, rng);
    int k = (int)(frac * l->c);
    for (int t = 0; t < k; t++)
        gamma_of(m, l)[perm[t]] = 0.0f;
    return k;
}

/* Checks that b computes a's function on random inputs (see the top) and
 * returns max |delta logit| / max |logit|; `what` non-NULL prints both. */
static inline double assert_exact_as(slim_model *a, slim_model *b, slim_backend backend,
                                     slim_rng *rng, const char *what) {
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
    if (what) print_message("%s: max |delta logit| %.3g, max |logit| %.3g\n", what, delta, big);
    return delta / big;
}

static inline void assert_exact(slim_model *a, slim_model *b, slim_backend backend, slim_rng *rng) {
    assert_exact_as(a, b, backend, rng, NULL);
}

/* max |delta logit| between a and b on random inputs (no assertion). */
static inline double logit_gap(slim_model *a, slim_model *b, slim_backend backend, slim_rng *rng) {
    float *x = random_inputs(a, N_COMPARE, rng);
    double delta = -1, big = -1;
    size_t mism;
    assert_int_equal(slim_prune_compare(a, b, x, N_COMPARE, backend, &delta, &big, &mism), SLIM_OK);
    free(x);
    return delta;
}

/* Logits of a training-mode forward (batch statistics) on x (n images). */
static inline float *train_logits(slim_model *m, const float *x, int n, slim_backend backend) {
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

static inline slim_model *prune_ok(slim_model *m, const slim_prune_options *opt,
                                   slim_prune_report *r) {
    slim_model *out = NULL;
    slim_status st = slim_prune(m, opt, &out, r);
    if (st != SLIM_OK) fprintf(stderr, "%s\n", slim_last_error());
    assert_int_equal(st, SLIM_OK);
    assert_non_null(out);
    return out;
}

static inline int has_note(const slim_prune_report *r, const char *needle) {
    for (int i = 0; i < r->n_notes; i++)
        if (strstr(r->notes[i], needle)) return 1;
    return 0;
}

/* Whether the printed report contains needle. */
static inline int table_has(const slim_prune_report *r, const char *needle) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    slim_prune_report_print(r, f);
    fclose(f);
    int found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

static inline void check_report_totals(const slim_prune_report *r, const slim_model *in,
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
    /* Every removed channel has exactly one reason. */
    assert_int_equal(r->removed_gamma_zero + r->removed_zero_filter + r->removed_fixed_input +
                         r->removed_nonzero,
                     r->channels_before - r->channels_after);
    for (int i = 0; i < r->n_rows; i++) {
        const slim_prune_layer_report *row = &r->rows[i];
        assert_int_equal(row->removed_gamma_zero + row->removed_zero_filter +
                             row->removed_fixed_input + row->removed_approx,
                         row->channels_before - row->channels_after);
    }
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

static inline void zero_filter(slim_model *m, const slim_layer *l, int j) {
    size_t row = (size_t)l->in_c * (l->kind == SLIM_LAYER_CONV ? (size_t)l->k * (size_t)l->k : 1);
    memset(m->params[l->p_weight].data + (size_t)j * row, 0, row * sizeof(float));
}

/* Moves BN l's running statistics of channel j far from (0, 1), so that a
 * zero filter's constant gamma (b - mean) / sqrt(var + eps) + beta is far
 * from beta (what the gamma = 0 rule would fold): a fold of the wrong
 * constant shows in the logits. */
static inline void stir_stats(slim_layer *l, int j, slim_rng *rng) {
    float u = slim_rng_uniform(rng);
    l->running_mean[j] = u < 0.5f ? -0.5f - u : u; /* in +-[0.5, 1] */
    l->running_var[j] = 0.25f + 1.75f * slim_rng_uniform(rng);
}

/* Every BN's running statistics random: mean in [-0.5, 0.5], variance in
 * [0.25, 2] (as after training, without running a forward). */
static inline void random_stats(slim_model *m, slim_rng *rng) {
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        for (int j = 0; j < l->c; j++) {
            l->running_mean[j] = slim_rng_uniform(rng) - 0.5f;
            l->running_var[j] = 0.25f + 1.75f * slim_rng_uniform(rng);
        }
    }
}

/* Model `file` with random parameters and BN values (and BN running
 * statistics when `stats`) and 40% of every BN's gammas 0 at random, all
 * drawn from rng in that order; returns how many gammas it zeroed. */
static inline int load_sparse(const char *file, slim_rng *rng, int stats, slim_model **out) {
    slim_model *m = load(file);
    slim_model_init_params(m, rng);
    randomize_bn(m, rng);
    if (stats) random_stats(m, rng);
    int zeroed = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) zeroed += zero_some(m, &m->layers[i], 0.4, rng);
    *out = m;
    return zeroed;
}

#endif
