/* BN folding and the oneDNN inference runtime, held to the reference
 * forward (slim_model_forward, inference mode, SLIM_BACKEND_REF) of the
 * ORIGINAL, unfolded model.
 *
 * Models get PyTorch's random init, random gamma and beta, and running
 * statistics calibrated on random inputs (one training-mode forward with
 * momentum 1), so that every layer sees activations of order 1 and the
 * logits are of order 1-10: a tolerance relative to max(1, max|logit|) is
 * then a real test.
 *
 * Tolerances:
 * - fold_bn alone: 1e-5 * max(1, max|logit|). Folding only regroups one
 *   multiplication per weight and one affine map per channel (float
 *   rounding, ~1e-7 relative per operation, a few layers deep).
 * - runtime: 1e-4 * max(1, max|logit|). oneDNN sums the up to 1152 products
 *   of a conv output in another order (blocked over channels, vectorised),
 *   with BN folded; the rounding of an fp32 sum of K terms grows like
 *   sqrt(K) * 6e-8 relative to the sum of magnitudes, compounded over 6-12
 *   layers: ~1e-5 in practice. A wrong layout, bias, fusion or in-place
 *   reuse gives errors of order 1e-1 and more.
 *
 * On AVX-512 oneDNN keeps activations in nhwc, which never pads; on AVX2
 * and older it uses 8-channel blocks, which pad channel counts such as 20
 * and have their own kernels (and bugs: see binary_relu_fusable in
 * src/runtime/step_dnnl.c). The test therefore runs its small-model checks a
 * second time in a child process limited to AVX2 (ONEDNN_MAX_CPU_ISA).
 *
 * The allocation check interposes malloc (as test_nomalloc does) and is
 * skipped under AddressSanitizer. */
#include "runtime_check.h"

#include "slim/autograd.h"
#include "slim/nn.h"
#include "slim/prune.h"
#include "slim/measure.h"
#include "slim/runtime.h"

#include "runtime/runtime_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TU_FOREIGN_ALLOC() rt_in_execute()
#include "malloc_count.h"
#define COUNT_MALLOC TU_COUNT_MALLOC

/* ---- models ------------------------------------------------------------- */

/* The three model files, each loaded and randomized once for all tests
 * (the reference forward is slow in a Debug build); tests must not change
 * them. Freed by the group teardown. */
static const char *const model_files[] = {"models/vgg-fm.net", "models/resnet-fm.net",
                                          "models/lenet-bn.net"};
#define N_MODEL_FILES (sizeof model_files / sizeof model_files[0])
static slim_model *model_cache[N_MODEL_FILES];

static slim_model *model_file(size_t i) {
    if (!model_cache[i]) {
        slim_rng rng;
        slim_rng_seed(&rng, 11 + i, 1);
        model_cache[i] = rc_load(model_files[i]);
        rc_randomize(model_cache[i], &rng);
    }
    return model_cache[i];
}

static int free_models(void **state) {
    (void)state;
    for (size_t i = 0; i < N_MODEL_FILES; i++) {
        slim_model_free(model_cache[i]);
        model_cache[i] = NULL;
    }
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_fold_bn_models(void **state) {
    (void)state;
    for (size_t i = 0; i < N_MODEL_FILES; i++) {
        slim_rng rng;
        slim_rng_seed(&rng, 50 + i, 1);
        slim_model *m = model_file(i);
        /* The original must not change. */
        float *before = malloc(m->param_floats * sizeof(float));
        assert_non_null(before);
        memcpy(before, m->param_block, m->param_floats * sizeof(float));
        rc_check_fold(m, &rng, model_files[i]);
        assert_memory_equal(before, m->param_block, m->param_floats * sizeof(float));
        free(before);

        slim_model *f = NULL;
        assert_int_equal(slim_model_fold_bn(m, &f), SLIM_OK);
        /* Every bn of these models follows a conv read only by it. */
        assert_int_equal(rc_count_kind(f, SLIM_LAYER_BN), 0);
        assert_int_equal(f->n_layers, m->n_layers - rc_count_kind(m, SLIM_LAYER_BN));
        for (int l = 0; l < f->n_layers; l++)
            if (f->layers[l].kind == SLIM_LAYER_CONV) assert_true(f->layers[l].p_bias >= 0);
        slim_model_free(f);
    }
}

/* References to a folded bn name its conv; the folded text parses to the
 * same structure. */
static void test_fold_bn_references(void **state) {
    (void)state;
    slim_model *m = rc_load("models/resnet-fm.net");
    slim_model *f = NULL;
    assert_int_equal(slim_model_fold_bn(m, &f), SLIM_OK);
    assert_int_equal(slim_model_find_layer(f, "b1_bn2"), -1);
    int add = slim_model_find_layer(f, "b2_add");
    assert_true(add > 0);
    assert_int_equal(f->layers[add].inputs[0], slim_model_find_layer(f, "b2_conv2"));
    assert_int_equal(f->layers[add].inputs[1], slim_model_find_layer(f, "b2_proj"));
    int proj = slim_model_find_layer(f, "b3_proj");
    assert_int_equal(f->layers[proj].inputs[0], slim_model_find_layer(f, "b2_out"));
    slim_model *again = NULL;
    assert_int_equal(slim_model_parse(f->text, "<folded>", &again), SLIM_OK);
    assert_int_equal(again->n_layers, f->n_layers);
    assert_int_equal(again->param_floats, f->param_floats);
    slim_model_free(again);
    slim_model_free(f);
    slim_model_free(m);
}

/* A conv read by its bn and by something else keeps its bn; a bn after a
 * pool or a dense stays too; a biasmap is scaled with the weights. */
static const char *odd_text =
    "input shape=3x11x11\n"
    "conv a out=20 k=3 pad=1 biasmap=1\n" /* read by abn and by the add: abn stays */
    "bn abn\n"
    "relu ar\n"
    "conv b out=20 k=3 pad=1\n" /* read only by the add: sum post-op onto a */
    "add s from=b,a\n"
    "relu\n"
    "avgpool k=3 stride=2 pad=1\n"                        /* 20x6x6 */
    "bn pbn\n"                                            /* after a pool: stays */
    "maxpool k=2 stride=1\n"                              /* 20x5x5 */
    "conv c out=24 k=3 stride=2 pad=1 bias=1 biasmap=1\n" /* 24x3x3, folded with cbn */
    "bn cbn\n"
    "relu cr\n"
    "add t from=cr,cr\n" /* an add of a value with itself */
    "flatten\n"
    "relu fr\n" /* a relu on flattened data */
    "dense d1 out=7\n"
    "bn dbn\n" /* a bn on (n, 7) */
    "relu\n"
    "dense out=5 bias=0\n";

static void test_fold_bn_partial(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(odd_text, &rng, 5, 5);
    rc_check_fold(m, &rng, "odd");
    slim_model *f = NULL;
    assert_int_equal(slim_model_fold_bn(m, &f), SLIM_OK);
    assert_int_equal(rc_count_kind(f, SLIM_LAYER_BN), 3); /* abn, pbn, dbn */
    assert_int_equal(slim_model_find_layer(f, "cbn"), -1);
    int c = slim_model_find_layer(f, "c");
    assert_true(f->layers[c].has_biasmap && f->layers[c].has_bias);
    assert_true(slim_model_find_layer(f, "abn") > 0);
    slim_model_free(f);
    slim_model_free(m);
}

static void test_fold_bn_errors(void **state) {
    (void)state;
    slim_model *f = (slim_model *)&f;
    assert_int_equal(slim_model_fold_bn(NULL, &f), SLIM_ERR_ARG);
    assert_null(f);
    slim_model *m = rc_load("models/lenet-bn.net");
    assert_int_equal(slim_model_fold_bn(m, NULL), SLIM_ERR_ARG);
    slim_model_free(m);
}

static void test_runtime_models(void **state) {
    (void)state;
    for (size_t i = 0; i < N_MODEL_FILES; i++) {
        slim_rng rng;
        slim_rng_seed(&rng, 100 + i, 3);
        rc_check_runtime(model_file(i), &rng, model_files[i]);
    }
}

/* Whether conv `name` of m runs on one of our convs in the runtime. */
static int runs_own(const slim_model *m, const char *name) {
    return rt_own_conv(&m->layers[slim_model_find_layer(m, name)]);
}

/* In a plan description: conv `name`'s biasmap (one the rewrite left) is
 * added inside our conv (" +biasmap" on its line) when it runs there, else
 * by a binary step of its own. */
static void expect_biasmap(const char *plan, const slim_model *m, const char *name) {
    char conv[64], add[64];
    snprintf(conv, sizeof conv, "conv %s ", name);
    snprintf(add, sizeof add, "add %s.biasmap", name);
    const char *line = strstr(plan, conv);
    assert_non_null(line);
    const char *end = strchr(line, '\n'), *own = strstr(line, "slim:");
    int in_own = own && own < end;
    assert_int_equal(in_own, runs_own(m, name));
    if (in_own) {
        const char *fused = strstr(line, " +biasmap ");
        assert_true(fused && fused < end);
        assert_null(strstr(plan, add));
    } else {
        assert_non_null(strstr(plan, add));
    }
}

/* A pruned-style model: biasmap convs (binary post-op), channel counts that
 * are not multiples of the 16-channel blocks (padded layouts), a stride-2
 * conv, and a bn that must be folded with its biasmap. */
static void test_runtime_biasmap(void **state) {
    (void)state;
    const char *text = "input shape=3x12x12\n"
                       "conv c1 out=20 k=3 pad=1 biasmap=1\n"
                       "relu\n"
                       "conv c2 out=24 k=3 stride=2 pad=1 bias=1 biasmap=1\n"
                       "bn\n"
                       "relu\n"
                       "conv c3 out=10 k=3 pad=1 biasmap=1\n" /* no relu after it */
                       "maxpool k=2\n"
                       "flatten\n"
                       "dense out=10\n";
    slim_rng rng;
    slim_model *m = rc_parse_random(text, &rng, 21, 2);
    rc_check_fold(m, &rng, "biasmap fold");
    rc_check_runtime(m, &rng, "biasmap");
    /* Random biasmaps are not what a fold makes (see test_runtime_pruned):
     * c2 and c3 have producers with a free channel, but their biasmaps
     * stay binary adds (c1's producer is the input). */
    char *plan = rc_plan_of(m, 4);
    expect_biasmap(plan, m, "c1"); /* 3 input channels: oneDNN's conv */
    expect_biasmap(plan, m, "c2"); /* stride 2: oneDNN's conv */
    expect_biasmap(plan, m, "c3"); /* ours where the CPU has it */
    assert_null(strstr(plan, "ones"));
    free(plan);
    slim_model_free(m);
}

/* A model pruned by slim_prune, whose biasmaps are what the exact fold
 * makes: where the producing conv keeps a channel count that is not a
 * multiple of 16, the runtime turns the biasmap into the weights of a
 * channel of ones (through relu, avgpool and maxpool, with stride 2 and a
 * 2x2 input whose masks are rank-deficient); where it keeps 16, the
 * biasmap stays a binary add. The runtime on the pruned model must give
 * the reference logits of the ORIGINAL model. */
static void test_runtime_pruned(void **state) {
    (void)state;
    const char *text = "input shape=2x12x12\n"
                       "conv a out=24 k=3 pad=1\n"
                       "bn abn\n"
                       "relu\n"
                       "conv b out=40 k=3 pad=1\n" /* a keeps 16: a binary add */
                       "bn bbn\n"
                       "relu\n"
                       "avgpool k=3 stride=2 pad=1\n"       /* 40x6x6 */
                       "conv c out=20 k=3 stride=2 pad=1\n" /* b keeps 35; 20x3x3 */
                       "bn cbn\n"
                       "relu\n"
                       "conv d out=12 k=3 pad=1\n" /* c keeps 17 */
                       "bn dbn\n"
                       "relu\n"
                       "maxpool k=2 stride=1\n"    /* 12x2x2 */
                       "conv e out=10 k=3 pad=1\n" /* d keeps 9; 10x2x2 */
                       "bn ebn\n"
                       "relu\n"
                       "gap\n"
                       "dense out=5\n";
    static const struct {
        const char *bn;
        int removed;
    } zero[] = {{"abn", 8}, {"bbn", 5}, {"cbn", 3}, {"dbn", 3}, {"ebn", 2}};
    slim_rng rng;
    slim_model *m = rc_parse_random(text, &rng, 17, 3);
    for (size_t z = 0; z < sizeof zero / sizeof zero[0]; z++) {
        const slim_layer *l = &m->layers[slim_model_find_layer(m, zero[z].bn)];
        float *g = m->params[l->p_gamma].data, *b = m->params[l->p_beta].data;
        for (int j = 0; j < zero[z].removed; j++) {
            int ch = (3 * j + 1) % l->c; /* spread over the channels, borders included */
            g[ch] = 0.0f;
            b[ch] = 0.1f + 0.5f * slim_rng_uniform(&rng); /* > 0: a constant after relu */
        }
    }
    slim_model *p = NULL;
    assert_int_equal(slim_prune(m, NULL, &p, NULL), SLIM_OK);
    assert_int_equal(p->layers[slim_model_find_layer(p, "a")].c, 16);
    assert_int_equal(p->layers[slim_model_find_layer(p, "b")].c, 35);
    assert_true(p->layers[slim_model_find_layer(p, "e")].has_biasmap);

    float *x = rc_random_input(m, REF_BATCH, &rng);
    size_t k = (size_t)m->n_classes;
    float want[REF_BATCH * 5], got[REF_BATCH * 5];
    rc_forward_ref(m, x, REF_BATCH, 0, want);
    assert_true(tu_max_abs(want, REF_BATCH * k) > 0.2);
    slim_runtime *rt = NULL;
    assert_int_equal(slim_runtime_create(p, REF_BATCH, &rt), SLIM_OK);
    const int sizes[] = {1, 3, REF_BATCH};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int n = sizes[i];
        assert_int_equal(slim_runtime_run(rt, x, n, got), SLIM_OK);
        char what[32];
        snprintf(what, sizeof what, "pruned n=%d", n);
        rc_expect_close(what, got, want, (size_t)n * k, TOL_RUNTIME);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *plan = NULL;
        assert_int_equal(slim_runtime_describe(rt, sizes[i], &plan), SLIM_OK);
        /* b's biasmap (the rewrite leaves it: b's producer keeps exactly
         * 16 channels) is a binary add after the conv, or fused in our
         * Winograd. The other biasmaps ride in a channel of ones made by
         * their producer, except where their conv runs on our Winograd,
         * which adds them itself. */
        expect_biasmap(plan, p, "b");
        int ones = !runs_own(p, "c") + !runs_own(p, "d") + !runs_own(p, "e");
        assert_int_equal(rc_count_str(plan, "+biasmap(ones)"), ones);
        assert_int_equal(rc_count_str(plan, " +ones"), ones);
        assert_int_equal(rc_count_str(plan, ".biasmap"), !runs_own(p, "b"));
        free(plan);
    }
    slim_runtime_free(rt);
    free(x);
    slim_model_free(p);
    slim_model_free(m);
}

/* Every kind of step and fallback: unfoldable bn (with fused relu), sum
 * post-op onto a value read elsewhere, add(x, x), pools in blocked
 * layouts, relu on flattened data, bn on (n, c), dense without bias. */
static void test_runtime_odd_graph(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(odd_text, &rng, 33, 4);
    rc_check_runtime(m, &rng, "odd");
    slim_model_free(m);

    /* A residual net whose adds are not preceded by convs, ending in a gap
     * without a dense, and an unused branch. */
    const char *text = "input shape=2x8x8\n"
                       "conv c0 out=16 k=3 pad=1\n"
                       "relu r0\n"
                       "maxpool p0 k=2 from=r0\n"
                       "avgpool q0 k=2 from=r0\n"
                       "add a0 from=p0,q0\n"
                       "relu\n"
                       "conv unused out=4 k=1\n" /* nobody reads it */
                       "conv c1 from=relu2 out=6 k=1\n"
                       "gap\n";
    slim_model *g = rc_parse(text);
    rc_randomize(g, &rng);
    rc_check_runtime(g, &rng, "residual-pools");
    slim_model_free(g);
}

/* Pools taken into our Winograd and padded planes between our convs,
 * where they may be and only there: c2 + relu + pool and c3 + pool (odd
 * sizes: 13 -> 6 -> 3) are one step each; the stride-1 pool ps is not
 * (and r1, which it reads besides c2, stays unpadded); c2's output, read by
 * c3 alone, is padded, c3's, read by a 1x1 conv (oneDNN's), is not, nor
 * is what oneDNN's pool ps gives c5; c5's output, read by c6 alone, is. */
static void test_runtime_pools_padded(void **state) {
    (void)state;
    const char *text = "input shape=2x13x13\n"
                       "conv c1 out=18 k=3 pad=1\n"
                       "relu r1\n"
                       "conv c2 out=20 k=3 pad=1\n"
                       "relu r2\n"
                       "maxpool k=2\n"
                       "conv c3 out=17 k=3 pad=1 biasmap=1\n"
                       "maxpool k=2\n"
                       "conv c4 out=12 k=1\n"
                       "gap g1\n"
                       "maxpool ps k=2 stride=1 from=r1\n"
                       "conv c5 out=12 k=3 pad=1\n"
                       "relu r5\n"
                       "conv c6 out=12 k=3 pad=1\n"
                       "gap g2\n"
                       "add a from=g1,g2\n"
                       "dense out=10\n";
    slim_rng rng;
    slim_model *m = rc_parse_random(text, &rng, 51, 2);
    rc_check_runtime(m, &rng, "pools-padded");
    if (runs_own(m, "c2")) {
        for (int n = 1; n <= 8; n += 7) { /* threads sharing a step; a tile of its own */
            char *plan = rc_plan_of(m, n);
            assert_non_null(strstr(plan, "conv c2 +bias +relu(r2) +maxpool(maxpool1)"));
            assert_non_null(strstr(plan, "conv c3 +bias +biasmap +maxpool(maxpool2)"));
            assert_int_equal(rc_count_str(plan, "+maxpool("), 2);
            assert_non_null(strstr(plan, "maxpool ps"));
            assert_int_equal(rc_count_str(plan, "(padded)"), 4);
            free(plan);
        }
    }
    slim_model_free(m);
}

/* The stem's last block of at most 8 channels narrow (8 floats a pixel)
 * for the Winograd convs that alone read it (c1 -> c2, c3, d1: written
 * once, read three times); not when a pool reads it too. */
static void test_runtime_narrow(void **state) {
    (void)state;
    const char *text = "input shape=1x12x12\n"
                       "conv c1 out=20 k=3 pad=1\n"
                       "relu r1\n"
                       "conv c2 out=12 k=3 pad=1\n"
                       "conv c3 out=12 k=3 pad=1 from=r1\n"
                       "add a from=c2,c3\n"
                       "conv d1 out=6 k=3 pad=1 from=r1\n"
                       "conv d2 out=12 k=3 pad=1\n"
                       "gap g1\n"
                       "gap g2 from=a\n"
                       "add b from=g1,g2\n"
                       "dense out=5\n";
    const char *pooled = "input shape=1x12x12\n"
                         "conv c1 out=20 k=3 pad=1\n"
                         "relu r1\n"
                         "conv c2 out=12 k=3 pad=1\n"
                         "maxpool p k=2 from=r1\n"
                         "conv c3 out=12 k=3 pad=1\n"
                         "gap g1 from=c2\n"
                         "gap g2 from=c3\n"
                         "add b from=g1,g2\n"
                         "dense out=5\n";
    slim_rng rng;
    for (int k = 0; k < 2; k++) {
        slim_model *m = rc_parse_random(k ? pooled : text, &rng, 91 + k, 2);
        rc_check_runtime(m, &rng, k ? "narrow-pooled" : "narrow");
        if (runs_own(m, "c1")) {
            char *plan = rc_plan_of(m, 8);
            assert_int_equal(rc_count_str(plan, "narrow last block"), k ? 0 : 4);
            free(plan);
        }
        slim_model_free(m);
    }
}

/* A first conv pruned to 3 channels (vgg-fm's half model): the stem
 * reads the input only; c2, with 3 channels in from c1's blocks, runs on
 * our Winograd with its pool, not on the stem after a reorder to plain
 * and before oneDNN's pool. */
static void test_runtime_few_channels_deep(void **state) {
    (void)state;
    const char *text = "input shape=1x12x12\n"
                       "conv c1 out=3 k=3 pad=1\n"
                       "relu r1\n"
                       "conv c2 out=20 k=3 pad=1\n"
                       "relu r2\n"
                       "maxpool k=2\n"
                       "conv c3 out=2 k=3 pad=1\n"
                       "conv c4 out=12 k=3 pad=1\n"
                       "gap g1\n"
                       "dense out=5\n";
    slim_rng rng;
    slim_model *m = rc_parse_random(text, &rng, 95, 2);
    rc_check_runtime(m, &rng, "few-channels-deep");
    if (runs_own(m, "c1")) {
        for (int n = 1; n <= 8; n += 7) {
            char *plan = rc_plan_of(m, n);
            assert_non_null(strstr(plan, "stem: 3x3 s1 p1, 1-3 channels in from the input"));
            assert_int_equal(rc_count_str(plan, "[stem: "), 1);
            assert_int_equal(rc_count_str(plan, "1-3 channels in, blocked"), 2);
            assert_non_null(strstr(plan, "conv c2 +bias +relu(r2) +maxpool(maxpool1)"));
            assert_non_null(strstr(plan, "(0 reorders)"));
            assert_null(strstr(plan, "\n  2  maxpool"));
            free(plan);
        }
    }
    slim_model_free(m);
}

/* Global average pool + dense (+ relu) as one step on our head kernel,
 * where the gap's output is the dense's alone; logits against the
 * reference either way. */
static void test_runtime_head(void **state) {
    (void)state;
    const char *text = "input shape=3x9x9\n"
                       "conv c1 out=20 k=3 pad=1\n"
                       "relu\n"
                       "conv c2 out=24 k=3 pad=1\n"
                       "relu r2\n"
                       "gap g1\n"
                       "dense d1 out=18\n"
                       "relu rd\n"
                       "dense d2 out=5\n";
    slim_rng rng;
    slim_model *m = rc_parse_random(text, &rng, 81, 3);
    rc_check_runtime(m, &rng, "head");
    if (runs_own(m, "c2")) {
        for (int n = 1; n <= 8; n += 7) {
            char *plan = rc_plan_of(m, n);
            assert_non_null(strstr(plan, "gap+dense g1 d1 +bias +relu(rd)"));
            char impl[48];
            snprintf(impl, sizeof impl, "[slim:head:%s]", own_impl_name(rt_own_impl()));
            assert_non_null(strstr(plan, impl));
            assert_non_null(strstr(plan, "dense d2 +bias"));
            free(plan);
        }
    }
    slim_model_free(m);
    /* The gap's output read twice: a pool and two denses, as before. */
    const char *twice = "input shape=2x6x6\n"
                        "conv c1 out=20 k=3 pad=1\n"
                        "gap g1\n"
                        "dense d1 out=4\n"
                        "dense d2 out=4 from=g1\n"
                        "add a from=d1,d2\n";
    m = rc_parse_random(twice, &rng, 82, 3);
    rc_check_runtime(m, &rng, "head-twice");
    char *plan = rc_plan_of(m, 2);
    assert_null(strstr(plan, "gap+dense"));
    free(plan);
    slim_model_free(m);
}

/* The one speed measurement report and slim_bench share: positive figures
 * for a batch that is not a multiple of 256 nor above it, and errors for
 * what it cannot measure. */
static void test_runtime_measure(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 61, 1);
    slim_model *m = rc_load("models/lenet-bn.net");
    float *x = rc_random_input(m, 5, &rng);
    slim_runtime_speed sp = {0, 0};
    assert_int_equal(slim_runtime_measure(m, x, 5, &sp), SLIM_OK);
    assert_true(sp.images_per_s > 0 && sp.latency_ms > 0);
    assert_int_equal(slim_runtime_measure(m, x, 0, &sp), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_measure(NULL, x, 5, &sp), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_measure(m, NULL, 5, &sp), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_measure(m, x, 5, NULL), SLIM_ERR_ARG);
    free(x);
    slim_model_free(m);
}

/* Per-step times: a line per step of the plan the batch runs (a tile's
 * above the tile size), named as describe names it, and their sum; the
 * runtime still gives the reference logits afterwards. */
static void test_runtime_profile(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 62, 1);
    slim_model *m = rc_load("models/lenet-bn.net");
    float *x = rc_random_input(m, 16, &rng);
    slim_runtime *rt = NULL;
    assert_int_equal(slim_runtime_create(m, 16, &rt), SLIM_OK);
    for (int n = 1; n <= 16; n += 15) {
        char *prof = NULL, *plan = NULL;
        assert_int_equal(slim_runtime_profile(rt, x, n, 3, &prof), SLIM_OK);
        assert_int_equal(slim_runtime_describe(rt, n, &plan), SLIM_OK);
        int steps = rc_count_str(prof, " ms\n") - 1; /* the last line is the sum */
        assert_true(steps >= 1);
        assert_int_equal(rc_count_str(plan, "\n") - rc_count_str(plan, "our kernels:") -
                             rc_count_str(plan, "plan for") - rc_count_str(plan, "tiles:") -
                             rc_count_str(plan, "logits copied"),
                         steps);
        assert_non_null(strstr(prof, "all steps"));
        free(prof);
        free(plan);
    }
    size_t k = (size_t)m->n_classes;
    float want[16 * 10], got[16 * 10];
    assert_true(k <= 10);
    rc_forward_ref(m, x, 16, 0, want);
    assert_int_equal(slim_runtime_run(rt, x, 16, got), SLIM_OK);
    rc_expect_close("after profile", got, want, 16 * k,
                    TOL_RUNTIME * fmax(1.0, tu_max_abs(want, 16 * k)));
    char *none = NULL;
    assert_int_equal(slim_runtime_profile(rt, x, 17, 3, &none), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_profile(rt, x, 1, 0, &none), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_profile(rt, NULL, 1, 3, &none), SLIM_ERR_ARG);
    assert_null(none);
    slim_runtime_free(rt);
    free(x);
    slim_model_free(m);
}

/* The fusions the plan is built around: on vgg-fm every relu rides on its
 * conv, and on resnet-fm every add is a sum post-op. */
static void test_runtime_fusions(void **state) {
    (void)state;
    slim_model *m = rc_load("models/vgg-fm.net");
    slim_runtime *rt = NULL;
    assert_int_equal(slim_runtime_create(m, 4, &rt), SLIM_OK);
    char *plan = NULL;
    assert_int_equal(slim_runtime_describe(rt, 4, &plan), SLIM_OK);
    int convs = 0, relus = 0;
    for (const char *p = plan; (p = strstr(p, "conv conv")); p++) {
        convs++;
        const char *eol = strchr(p, '\n');
        const char *r = strstr(p, "+relu(");
        if (r && r < eol) relus++;
    }
    assert_int_equal(convs, 6);
    assert_int_equal(relus, 6);
    if (runs_own(m, "conv2")) { /* both pools in the convs before them, gap in the dense */
        assert_int_equal(rc_count_str(plan, "+maxpool("), 2);
        assert_null(strstr(plan, "\n  2  maxpool"));
        assert_non_null(strstr(plan, "gap+dense gap1 dense1 +bias"));
    }
    assert_null(strstr(plan, "\n relu"));   /* no standalone relu step... */
    assert_null(strstr(plan, "batchnorm")); /* ...and no bn left */
    slim_runtime_stats st;
    slim_runtime_get_stats(rt, &st);
    assert_int_equal(st.plans_built, 1); /* max_batch, at create */
    /* Activations stay in the convs' layout: the first conv reads plain
     * NCHW, the dense reads the pooled blocked data as it is. */
    assert_int_equal(st.reorders, 0);
    assert_true(st.arena_bytes > 0 && st.weight_bytes > 0);
    /* Activations share memory: less than the sum of all layer outputs. */
    size_t all = 0;
    for (int i = 1; i < m->n_layers; i++)
        all += 4 * (size_t)m->layers[i].c * m->layers[i].h * m->layers[i].w * sizeof(float);
    assert_true(st.arena_bytes < all);
    free(plan);
    slim_runtime_free(rt);
    slim_model_free(m);

    m = rc_load("models/resnet-fm.net");
    assert_int_equal(slim_runtime_create(m, 2, &rt), SLIM_OK);
    assert_int_equal(slim_runtime_describe(rt, 2, &plan), SLIM_OK);
    int sums = 0;
    for (const char *p = plan; (p = strstr(p, "+sum(")); p++)
        sums++;
    assert_int_equal(sums, 3);
    free(plan);
    slim_runtime_free(rt);
    slim_model_free(m);
}

/* describe names each conv's path and why: our Winograd and stem where our
 * kernels run, else a oneDNN path whose reason says that our kernels are
 * off (as under ONEDNN_MAX_CPU_ISA=AVX2, where oneDNN has no Winograd
 * either) or why they do not take the conv. */
static void test_runtime_conv_paths(void **state) {
    (void)state;
    slim_model *m = rc_load("models/vgg-fm.net");
    char *plan = rc_plan_of(m, 8);
    int convs = 0, own = runs_own(m, "conv2");
    for (const char *p = plan; (p = strstr(p, "conv conv")); p++) {
        const char *eol = strchr(p, '\n');
        const char *path = strstr(p, "] [");
        assert_true(path && path < eol);
        path += 3;
        if (own) {
            int first = strncmp(p, "conv conv1 ", 11) == 0;
            assert_int_equal(strncmp(path, first ? "stem: " : "wino: ", 6), 0);
            assert_non_null(strstr(path, own_isa_active() == OWN_ISA_AVX512 ? "AVX-512" : "AVX2"));
        } else {
            assert_int_equal(strncmp(path, "dnnl-", 5), 0);
            const char *off = strstr(path, "own kernels off (");
            assert_true(off && off < eol);
        }
        if (getenv(CHILD_ENV))
            assert_int_equal(strncmp(path, "dnnl-direct: own kernels off (", 30), 0);
        convs++;
    }
    assert_int_equal(convs, 6);
    free(plan);
    slim_model_free(m);
}

/* Repeated runs give identical logits, also after running other batch
 * sizes in between (which reuse the same arena), and do not rebuild. */
static void test_runtime_repeat(void **state) {
    (void)state;
    const char *text = "input shape=3x12x12\n"
                       "conv c1 out=20 k=3 pad=1 biasmap=1\n"
                       "bn\n"
                       "relu\n"
                       "conv c2 out=40 k=3 pad=1\n"
                       "bn\n"
                       "relu\n"
                       "gap\n"
                       "dense out=10\n";
    slim_rng rng;
    slim_model *m = rc_parse_random(text, &rng, 7, 7);
    slim_runtime *rt = NULL;
    assert_int_equal(slim_runtime_create(m, 8, &rt), SLIM_OK);
    float *x = rc_random_input(m, 8, &rng);
    float a[80], b[80], c[80];
    assert_int_equal(slim_runtime_run(rt, x, 8, a), SLIM_OK);
    assert_int_equal(slim_runtime_run(rt, x, 8, b), SLIM_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(slim_runtime_run(rt, x + 3 * rc_input_numel(m), 2, c), SLIM_OK);
    assert_int_equal(slim_runtime_run(rt, x, 8, b), SLIM_OK);
    assert_memory_equal(a, b, sizeof a);
    /* Images are independent: batch 2 matches images 3 and 4 of batch 8. */
    rc_expect_close("batch 2 vs batch 8", c, a + 30, 20, TOL_RUNTIME);
    slim_runtime_stats st;
    slim_runtime_get_stats(rt, &st);
    assert_int_equal(st.plans_built, 2);
    /* The model the runtime was made from may go away. */
    assert_int_equal(slim_runtime_run(rt, x, 2, c), SLIM_OK);
    slim_model_free(m);
    assert_int_equal(slim_runtime_run(rt, x, 2, b), SLIM_OK);
    assert_memory_equal(b, c, 20 * sizeof(float));
    slim_runtime_get_stats(rt, &st);
    assert_int_equal(st.plans_built, 2); /* batch 2 was seen: not rebuilt */
    free(x);
    slim_runtime_free(rt);
}

/* Batches above the tile size run as tiles through the plans of the tile
 * sizes: on one thread one tile after another, on more threads in
 * parallel, one worker per thread with its own one-thread primitives. The
 * logits are those of the untiled run. */
static void test_runtime_tiles(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 8, 8);
    slim_model *m = model_file(0); /* vgg-fm */
    float *x = rc_random_input(m, REF_BATCH, &rng);
    size_t k = (size_t)m->n_classes;
    float whole[REF_BATCH * 10], tiled[REF_BATCH * 10];
    assert_true(k <= 10);
    int saved = slim_get_threads();
    for (int threads = 1; threads <= 2; threads++) {
        slim_set_threads(threads);
        slim_runtime *rt = NULL;
        assert_int_equal(slim_runtime_create(m, REF_BATCH, &rt), SLIM_OK);
        slim_runtime_stats st;
        slim_runtime_get_stats(rt, &st);
        /* vgg-fm's largest activation is 32x28x28 floats (100 KB) per image. */
        assert_true(st.tile_batch >= 8 && st.tile_batch <= 64 && st.tile_batch % 8 == 0);
        assert_int_equal(st.workers, threads > 1 ? threads : 0);
        rt_set_tile(rt, REF_BATCH);
        assert_int_equal(slim_runtime_run(rt, x, REF_BATCH, whole), SLIM_OK);
        slim_runtime_get_stats(rt, &st);
        int built = st.plans_built;
        rt_set_tile(rt, 6); /* 6 + 5 + 5 */
        memset(tiled, 0xff, sizeof tiled);
        assert_int_equal(slim_runtime_run(rt, x, REF_BATCH, tiled), SLIM_OK);
        rc_expect_close("tiles of 6", tiled, whole, REF_BATCH * k, TOL_RUNTIME);
        char *plan = NULL;
        assert_int_equal(slim_runtime_describe(rt, REF_BATCH, &plan), SLIM_OK);
        assert_non_null(strstr(plan, "tiles: 1 x batch 6 and 2 x batch 5"));
        assert_true((strstr(plan, "in parallel on 2 threads") != NULL) == (threads == 2));
        assert_non_null(strstr(plan, "plan for batch 6:"));
        free(plan);
        slim_runtime_get_stats(rt, &st);
        /* 6 and 5 on each worker (or as main plans) */
        assert_int_equal(st.plans_built - built, threads > 1 ? 2 * threads : 2);
        rt_set_tile(rt, 8); /* 8 + 8 */
        memset(tiled, 0xff, sizeof tiled);
        assert_int_equal(slim_runtime_run(rt, x, REF_BATCH, tiled), SLIM_OK);
        rc_expect_close("tiles of 8", tiled, whole, REF_BATCH * k, TOL_RUNTIME);
        /* Again: the same numbers, whichever worker ran which tile. */
        float again[REF_BATCH * 10];
        assert_int_equal(slim_runtime_run(rt, x, REF_BATCH, again), SLIM_OK);
        assert_memory_equal(again, tiled, REF_BATCH * k * sizeof(float));
        slim_runtime_free(rt);
    }
    slim_set_threads(saved);
    free(x);
}

static void test_runtime_errors(void **state) {
    (void)state;
    slim_model *m = rc_load("models/lenet-bn.net");
    slim_runtime *rt = (slim_runtime *)&rt;
    assert_int_equal(slim_runtime_create(m, 0, &rt), SLIM_ERR_ARG);
    assert_null(rt);
    assert_int_equal(slim_runtime_create(NULL, 4, &rt), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_create(m, 4, NULL), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_create(m, 4, &rt), SLIM_OK);
    float x[5 * 784] = {0}, y[5 * 10];
    assert_int_equal(slim_runtime_run(rt, x, 5, y), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "batch 5"));
    assert_int_equal(slim_runtime_run(rt, x, 0, y), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_run(rt, NULL, 1, y), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_run(rt, x, 1, NULL), SLIM_ERR_ARG);
    assert_int_equal(slim_runtime_run(rt, x, 4, y), SLIM_OK);
    char *plan = NULL;
    assert_int_equal(slim_runtime_describe(rt, 5, &plan), SLIM_ERR_ARG);
    assert_null(plan);
    slim_runtime_free(rt);
    slim_runtime_free(NULL);
    slim_model_free(m);
}

/* After the first run at a batch size, runs allocate nothing of their own
 * and build nothing, also when batch sizes alternate. (oneDNN 2.6's
 * dnnl_primitive_execute allocates its argument map on every call; those
 * allocations are counted apart and reported.) */
static void test_runtime_no_malloc(void **state) {
    (void)state;
#if COUNT_MALLOC
    slim_rng rng;
    slim_rng_seed(&rng, 9, 9);
    slim_model *m = model_file(1); /* resnet-fm */
    slim_runtime *rt = NULL;
    int saved = slim_get_threads();
    slim_set_threads(2); /* tiles in parallel (below) */
    assert_int_equal(slim_runtime_create(m, 6, &rt), SLIM_OK);
    slim_set_threads(saved);
    float *x = rc_random_input(m, 6, &rng);
    float y[60];
    assert_int_equal(slim_runtime_run(rt, x, 6, y), SLIM_OK);
    assert_int_equal(slim_runtime_run(rt, x, 1, y), SLIM_OK);
    tu_allocs = tu_foreign_allocs = 0;
    tu_counting = 1;
    slim_status a = slim_runtime_run(rt, x, 6, y);
    slim_status b = slim_runtime_run(rt, x, 6, y);
    slim_status c = slim_runtime_run(rt, x, 1, y);
    slim_status d = slim_runtime_run(rt, x, 6, y);
    tu_counting = 0;
    rt_set_tile(rt, 4); /* 3 + 3 on two workers, built here */
    assert_int_equal(slim_runtime_run(rt, x, 6, y), SLIM_OK);
    tu_counting = 1;
    slim_status e = slim_runtime_run(rt, x, 6, y);
    tu_counting = 0;
    assert_int_equal(e, SLIM_OK);
    assert_int_equal(a, SLIM_OK);
    assert_int_equal(b, SLIM_OK);
    assert_int_equal(c, SLIM_OK);
    assert_int_equal(d, SLIM_OK);
    print_message("%zu allocations by the runtime, %zu inside oneDNN's execute, in 5 runs\n",
                  (size_t)tu_allocs, (size_t)tu_foreign_allocs);
    assert_int_equal(tu_allocs, 0);
    slim_runtime_stats st;
    slim_runtime_get_stats(rt, &st);
    assert_int_equal(st.plans_built, 4); /* 6, 1, then 3 on each worker: nothing rebuilt */
    free(x);
    slim_runtime_free(rt);
#else
    skip();
#endif
}

/* The checks whose models have padded channel counts, again with oneDNN
 * limited to AVX2 (blocked nChw8c layouts), in a child process: oneDNN
 * reads ONEDNN_MAX_CPU_ISA once, when it starts. */
/* This program's path: argv[0] when it has a directory (as under ctest, and
 * still right under valgrind), else /proc/self/exe. */
static const char *self_path = "/proc/self/exe";

static void test_runtime_blocked_layouts(void **state) {
    (void)state;
    rc_run_avx2_child(self_path);
}

int main(int argc, char **argv) {
    if (argc > 0 && argv[0] && strchr(argv[0], '/')) self_path = argv[0];
    if (getenv(CHILD_ENV)) {
        const struct CMUnitTest child[] = {
            cmocka_unit_test(test_runtime_biasmap),    cmocka_unit_test(test_runtime_pruned),
            cmocka_unit_test(test_runtime_odd_graph),  cmocka_unit_test(test_runtime_repeat),
            cmocka_unit_test(test_runtime_conv_paths),
        };
        return cmocka_run_group_tests_name("runtime, AVX2 layouts", child, NULL, free_models);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_bn_models),
        cmocka_unit_test(test_fold_bn_references),
        cmocka_unit_test(test_fold_bn_partial),
        cmocka_unit_test(test_fold_bn_errors),
        cmocka_unit_test(test_runtime_models),
        cmocka_unit_test(test_runtime_biasmap),
        cmocka_unit_test(test_runtime_odd_graph),
        cmocka_unit_test(test_runtime_fusions),
        cmocka_unit_test(test_runtime_repeat),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_runtime_no_malloc),
        cmocka_unit_test(test_runtime_blocked_layouts),
        cmocka_unit_test(test_runtime_pruned),
        cmocka_unit_test(test_runtime_tiles),
        cmocka_unit_test(test_runtime_pools_padded),
        cmocka_unit_test(test_runtime_head),
        cmocka_unit_test(test_runtime_narrow),
        cmocka_unit_test(test_runtime_few_channels_deep),
        cmocka_unit_test(test_runtime_measure),
        cmocka_unit_test(test_runtime_profile),
        cmocka_unit_test(test_runtime_conv_paths),
    };
    return cmocka_run_group_tests(tests, NULL, free_models);
}
