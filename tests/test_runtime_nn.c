/* The runtime on the layers of the small deployed CNNs (issue 22): grouped
 * and depthwise convs, relu6, concat, biasmaps the channel-of-ones rewrite
 * cannot take, small MobileNet/DenseNet-style nets and the files
 * models/mobilenet-fm.net and models/densenet-fm.net, each also pruned
 * (slim_prune), held to the reference forward (slim_model_forward,
 * inference mode, SLIM_BACKEND_REF) of the ORIGINAL model within the
 * tolerance of test_runtime.c (TOL_RUNTIME, relative to max(1, max|logit|)),
 * at batch 1, 3 and 16 and as parallel tiles. The plan descriptions show
 * which path each layer took.
 *
 * relu6 only clips where values pass 6, which calibrated random models
 * seldom reach: the models here shift some bn betas up (boost) so that a
 * good part of each relu6's input is above 6.
 *
 * As in test_runtime.c the checks run again in a child process with oneDNN
 * limited to AVX2 (blocked nChw8c layouts, padded channel counts). */
#include "runtime_check.h"

#include "slim/passes.h"
#include "slim/prune.h"

#include "runtime/runtime_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------- */

/* Adds `by` to the beta of bn layer `name` in every other channel, so that
 * a relu6 after it clips (its input has unit variance). */
static void boost(slim_model *m, const char *name, float by) {
    int i = slim_model_find_layer(m, name);
    assert_true(i > 0 && m->layers[i].kind == SLIM_LAYER_BN);
    float *beta = m->params[m->layers[i].p_beta].data;
    for (int c = 0; c < m->layers[i].c; c += 2)
        beta[c] += by;
}

/* Sets conv `name`'s biasmap to one the channel-of-ones rewrite can
 * represent: the conv applied, with its zero padding, to one more input
 * channel of ones with random k x k weights. */
static void separable_biasmap(slim_model *m, const char *name, slim_rng *rng) {
    int i = slim_model_find_layer(m, name);
    assert_true(i > 0);
    const slim_layer *l = &m->layers[i];
    assert_true(l->p_biasmap >= 0);
    float *map = m->params[l->p_biasmap].data;
    for (int o = 0; o < l->c; o++) {
        float w[7 * 7];
        assert_true(l->k <= 7);
        tu_fill_uniform(rng, w, (size_t)l->k * l->k, -0.5f, 0.5f);
        for (int y = 0; y < l->h; y++)
            for (int x = 0; x < l->w; x++) {
                double v = 0;
                for (int r = 0; r < l->k; r++)
                    for (int s = 0; s < l->k; s++) {
                        int iy = y * l->stride - l->pad + r, ix = x * l->stride - l->pad + s;
                        if (iy >= 0 && iy < l->in_h && ix >= 0 && ix < l->in_w)
                            v += w[r * l->k + s];
                    }
                map[((size_t)o * l->h + y) * l->w + x] = (float)v;
            }
    }
}

/* The line of `plan` that describes step `what` ("conv dw1 "), or fails. */
static const char *plan_line(const char *plan, const char *what, char *line, size_t len) {
    const char *p = strstr(plan, what);
    if (!p) fail_msg("no '%s' in the plan:\n%s", what, plan);
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= len) n = len - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    return line;
}

/* Whether the step line of `what` in plan contains `has`. */
static int line_has(const char *plan, const char *what, const char *has) {
    char line[512];
    return strstr(plan_line(plan, what, line, sizeof line), has) != NULL;
}

static void expect_line(const char *plan, const char *what, const char *has) {
    if (!line_has(plan, what, has)) fail_msg("step '%s' lacks '%s' in:\n%s", what, has, plan);
}

/* Both checks of a model: batches of 1, 3, 16, and 16 as tiles. */
static void check_both(slim_model *m, slim_rng *rng, const char *name) {
    rc_check_runtime(m, rng, name);
    rc_check_runtime_tiled(m, rng, name);
}

/* ---- depthwise and grouped convs ------------------------------------------ */

/* Depthwise 3x3 at stride 1 and 2, a 5x5 one with pad 2 and stride 2, a
 * grouped 3x3 (2 groups) and a grouped 1x1 (4 groups), each with its bn
 * folded and its activation fused; a depthwise conv with a bias, no bn. */
static const char *grouped_text = "input shape=3x13x13\n"
                                  "conv c1 out=16 k=3 pad=1\n"
                                  "bn\n"
                                  "relu6 r1\n"
                                  "conv dw1 out=16 k=3 pad=1 groups=16\n"
                                  "bn b_dw1\n"
                                  "relu6 r_dw1\n"
                                  "conv dw2 out=16 k=3 stride=2 pad=1 groups=16\n" /* 7x7 */
                                  "bn\n"
                                  "relu\n"
                                  "conv g2 out=24 k=3 pad=1 groups=2\n"
                                  "bn b_g2\n"
                                  "relu6 r_g2\n"
                                  "conv g4 out=20 k=1 groups=4\n"
                                  "bn\n"
                                  "conv dw3 out=20 k=5 stride=2 pad=2 groups=20 bias=1\n" /* 4x4 */
                                  "relu\n"
                                  "gap\n"
                                  "dense out=10\n";

static void test_grouped(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(grouped_text, &rng, 201, 1);
    boost(m, "b_dw1", 5.0f);
    boost(m, "b_g2", 5.0f);
    rc_check_fold(m, &rng, "grouped fold");
    check_both(m, &rng, "grouped");
    char *plan = rc_plan_of(m, 4);
    expect_line(plan, "conv dw1 ", "[dnnl-direct: not ours: depthwise 3x3 s1]");
    expect_line(plan, "conv dw1 ", "+relu6(r_dw1)");
    expect_line(plan, "conv dw2 ", "not ours: depthwise 3x3 s2");
    expect_line(plan, "conv dw3 ", "not ours: depthwise 5x5 s2");
    expect_line(plan, "conv g2 ", "not ours: grouped (2 groups) 3x3 s1");
    expect_line(plan, "conv g2 ", "+relu6(r_g2)");
    expect_line(plan, "conv g4 ", "not ours: grouped (4 groups) 1x1 s1");
    assert_int_equal(rc_count_str(plan, "batchnorm"), 0); /* every bn folded */
    free(plan);
    slim_model_free(m);
}

/* ---- relu6 ---------------------------------------------------------------- */

/* relu6 fused after a conv, after a conv with a sum (a residual add), after
 * an add no conv took, after a dense; standalone after the input, after a
 * concat, after a bn that stays (after a pool) and after a maxpool. */
static const char *relu6_text = "input shape=2x10x10\n"
                                "relu6 r_in\n" /* the caller's input: not in place */
                                "conv c1 out=16 k=3 pad=1\n"
                                "bn b1\n"
                                "relu6 r1\n"
                                "conv c2 out=16 k=3 pad=1\n"
                                "bn b2\n"
                                "add a2 from=b2,r1\n"
                                "relu6 r2\n"
                                "maxpool p2 k=2 from=r1\n"
                                "relu6 r_p2\n"
                                "maxpool p3 k=2 from=r2\n"
                                "add a3 from=p3,r_p2\n"
                                "relu6 r3\n"
                                "avgpool p4 k=3 stride=1 pad=1\n"
                                "bn b4\n"
                                "relu6 r4\n"
                                "concat cc from=r4,p3\n"
                                "relu6 r_cc\n"
                                "flatten\n"
                                "dense d1 out=16\n"
                                "relu6 r_d1\n"
                                "dense out=6\n";

static void test_relu6(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(relu6_text, &rng, 202, 1);
    boost(m, "b1", 5.0f);
    boost(m, "b2", 5.0f);
    boost(m, "b4", 5.0f);
    check_both(m, &rng, "relu6");
    char *plan = rc_plan_of(m, 4);
    if (line_has(plan, "conv c1 ", "[slim:")) { /* ours fuse a relu only */
        expect_line(plan, "relu6 r1", "(in place)");
        expect_line(plan, "conv c2 ", "+sum(r1)");
        expect_line(plan, "relu6 r2", "(in place)");
    } else {
        expect_line(plan, "conv c1 ", "+relu6(r1)");
        expect_line(plan, "conv c2 ", "+sum(r1) +relu6(r2)");
    }
    expect_line(plan, "add a3", "+relu6(r3)");
    expect_line(plan, "dense d1 ", "+relu6(r_d1)");
    expect_line(plan, "relu6 r_in", "relu6 r_in");
    expect_line(plan, "relu6 r_p2", "(in place)");
    expect_line(plan, "relu6 r4", "(in place)");
    expect_line(plan, "relu6 r_cc", "(in place)");
    expect_line(plan, "batchnorm b4", "batchnorm b4"); /* not fused: bn fuses relu only */
    assert_false(line_has(plan, "batchnorm b4", "relu"));
    free(plan);
    slim_model_free(m);
}

/* ---- concat ----------------------------------------------------------------- */

/* Concats of 2 and 3 inputs at channel offsets on and off the 16-channel
 * blocks, one of a value with itself, one feeding
 * another (as in DenseNet), inputs read by other layers too, a concat
 * feeding a sum post-op, and the folded bns before them (fold_bn must keep
 * every input of a concat). */
static const char *concat_text = "input shape=3x10x10\n"
                                 "conv a out=12 k=3 pad=1\n"
                                 "bn\n"
                                 "relu ra\n"
                                 "conv b out=20 k=3 pad=1\n"
                                 "bn\n"
                                 "relu rb\n"
                                 "concat c1 from=ra,rb\n" /* 32 */
                                 "conv d out=10 k=1\n"
                                 "bn bd\n"
                                 "concat c2 from=c1,bd,ra\n" /* 54: a concat in a concat */
                                 "concat c3 from=bd,bd\n"    /* 20: one input twice */
                                 "conv e out=20 k=3 pad=1 from=c2\n"
                                 "add s from=e,c3\n" /* a sum post-op onto a concat */
                                 "relu rs\n"
                                 "maxpool k=2 from=ra\n" /* ra: read by b, c1, c2 and this */
                                 "conv f out=20 k=3 stride=2 pad=1 from=rs\n"
                                 "concat c4 from=maxpool1,f\n"
                                 "gap\n"
                                 "dense out=10\n";

static void test_concat(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(concat_text, &rng, 203, 1);
    rc_check_fold(m, &rng, "concat fold");
    check_both(m, &rng, "concat");
    char *plan = rc_plan_of(m, 4);
    expect_line(plan, "concat c1 ", "(ra,rb)");
    expect_line(plan, "concat c2 ", "(c1,d,ra)"); /* bd folded into d */
    expect_line(plan, "concat c3 ", "(d,d)");
    expect_line(plan, "conv e ", "+sum(c3)");
    assert_int_equal(rc_count_str(plan, "concat c"), 4);
    /* Where our convs run, in our blocks, every concat on our blocked
     * concat (oneDNN's reference kernel would take the unaligned ones). */
    int ours = strstr(plan, "[slim:wino_4x3") != NULL;
    assert_int_equal(rc_count_str(plan, "[slim:concat]"), ours ? 4 : 0);
    free(plan);
    slim_model_free(m);
}

/* ---- biasmaps on the general path ------------------------------------------ */

/* The rewrite to a channel of ones takes a separable biasmap in a plain
 * chain (through relu6 too) and leaves it when a conv of the chain is
 * grouped or a concat lies between; the runtime gives the reference logits
 * either way, and so for a random (non-separable) biasmap on a depthwise,
 * a grouped and a 1x1 conv after a depthwise one. */
static const char *biasmap_text =
    "input shape=3x12x12\n"
    "conv p1 out=10 k=3 pad=1\n"
    "relu6\n"
    "conv q1 out=12 k=3 pad=1 biasmap=1\n" /* taken: p1 -> relu6 -> q1 */
    "relu\n"
    "conv dw out=12 k=3 pad=1 groups=12 biasmap=1\n" /* a grouped consumer */
    "bn\n"
    "relu6 r_dw\n"
    "conv pj out=10 k=1 biasmap=1\n" /* a grouped producer (dw) */
    "relu rp\n"
    "conv g out=12 k=3 stride=2 pad=1 groups=2 biasmap=1\n" /* a grouped consumer */
    "relu rg\n"
    "conv h out=6 k=1\n"
    "concat cc from=h,rg\n"              /* h: read by cc only */
    "conv k out=8 k=3 pad=1 biasmap=1\n" /* a concat between */
    "maxpool k=2\n"
    "gap\n"
    "dense out=7\n";

static void test_biasmap_general(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(biasmap_text, &rng, 204, 1);
    /* Separable maps everywhere: the rewrite refuses only by structure. */
    const char *convs[] = {"q1", "dw", "pj", "g", "k"};
    for (size_t c = 0; c < sizeof convs / sizeof convs[0]; c++)
        separable_biasmap(m, convs[c], &rng);
    slim_model *f = NULL, *r = NULL;
    assert_int_equal(slim_model_fold_bn(m, &f), SLIM_OK);
    int n = f->n_layers, *ones = calloc((size_t)n, sizeof *ones);
    int *fold = calloc((size_t)n, sizeof *fold);
    assert_non_null(ones);
    assert_non_null(fold);
    assert_int_equal(slim_model_biasmap_as_channel(f, NULL, &r, ones, fold), SLIM_OK);
    assert_non_null(r);
    assert_true(fold[slim_model_find_layer(f, "q1")]);
    assert_true(ones[slim_model_find_layer(f, "p1")]);
    assert_false(fold[slim_model_find_layer(f, "dw")]); /* grouped consumer */
    assert_false(fold[slim_model_find_layer(f, "pj")]); /* grouped producer */
    assert_false(fold[slim_model_find_layer(f, "g")]);  /* grouped consumer */
    assert_false(fold[slim_model_find_layer(f, "k")]);  /* a concat between */
    int folds = 0;
    for (int i = 0; i < n; i++)
        folds += fold[i];
    assert_int_equal(folds, 1);
    slim_model_free(r);
    slim_model_free(f);
    free(ones);
    free(fold);
    check_both(m, &rng, "biasmap separable");
    char *plan = rc_plan_of(m, 4);
    /* (on our conv, the map itself: the rewrite leaves our convs alone) */
    expect_line(plan, "conv q1 ",
                line_has(plan, "conv q1 ", "[slim:") ? " +biasmap " : "+biasmap(ones)");
    const char *general[] = {"dw", "pj", "g", "k"};
    for (size_t c = 0; c < sizeof general / sizeof general[0]; c++) {
        char conv[32], add[32];
        snprintf(conv, sizeof conv, "conv %s ", general[c]);
        snprintf(add, sizeof add, "add %s.biasmap", general[c]);
        if (!line_has(plan, conv, " +biasmap ") && !strstr(plan, add))
            fail_msg("%s: its biasmap is neither fused nor a step:\n%s", conv, plan);
    }
    free(plan);
    slim_model_free(m);

    /* Random maps: of no form the rewrite knows. */
    m = rc_parse_random(biasmap_text, &rng, 205, 1);
    check_both(m, &rng, "biasmap random");
    plan = rc_plan_of(m, 4);
    assert_null(strstr(plan, "ones"));
    free(plan);
    slim_model_free(m);
}

/* ---- whole models ------------------------------------------------------------ */

/* A MobileNetV2-style net (inverted residuals: 1x1 expand, 3x3 depthwise,
 * 1x1 project, residual adds, stride-2 depthwise downsampling) and a
 * DenseNet-style one (dense blocks of concatenations, transitions), small
 * enough for the reference forward. */
static const char *mobile_text = "input shape=1x16x16\n"
                                 "conv stem out=8 k=3 stride=2 pad=1\n"
                                 "bn b_stem\n"
                                 "relu6 s6\n"
                                 "conv e1 out=24 k=1\n"
                                 "bn b_e1\n"
                                 "relu6\n"
                                 "conv d1 out=24 k=3 pad=1 groups=24\n"
                                 "bn bd1\n"
                                 "relu6\n"
                                 "conv p1 out=8 k=1\n"
                                 "bn bp1\n"
                                 "add a1 from=bp1,s6\n"
                                 "conv e2 out=24 k=1\n"
                                 "bn b_e2\n"
                                 "relu6\n"
                                 "conv d2 out=24 k=3 stride=2 pad=1 groups=24\n"
                                 "bn bd2\n"
                                 "relu6\n"
                                 "conv p2 out=12 k=1\n"
                                 "bn bp2\n"
                                 "conv e3 out=36 k=1\n"
                                 "bn b_e3\n"
                                 "relu6\n"
                                 "conv d3 out=36 k=3 pad=1 groups=36\n"
                                 "bn bd3\n"
                                 "relu6\n"
                                 "conv p3 out=12 k=1\n"
                                 "bn bp3\n"
                                 "add a3 from=bp3,bp2\n"
                                 "conv head out=32 k=1\n"
                                 "bn b_head\n"
                                 "relu6\n"
                                 "gap\n"
                                 "dense out=10\n";

static const char *dense_text = "input shape=1x12x12\n"
                                "conv stem out=8 k=3 pad=1\n"
                                "concat x0 from=stem,stem\n" /* 16 */
                                "bn\n"
                                "relu\n"
                                "conv l1 out=6 k=3 pad=1\n"
                                "concat x1 from=x0,l1\n" /* 22 */
                                "bn\n"
                                "relu\n"
                                "conv l2 out=6 k=3 pad=1\n"
                                "concat x2 from=x1,l2\n" /* 28 */
                                "bn\n"
                                "relu\n"
                                "conv t1 out=14 k=1\n"
                                "avgpool k=2\n" /* 14x6x6 */
                                "bn\n"
                                "relu\n"
                                "conv l3 out=6 k=3 pad=1\n"
                                "concat x3 from=avgpool1,l3\n" /* 20 */
                                "bn\n"
                                "relu\n"
                                "conv l4 out=6 k=3 pad=1\n"
                                "concat x4 from=x3,l4,l3\n" /* 32 */
                                "bn\n"
                                "relu\n"
                                "gap\n"
                                "dense out=10\n";

static void test_small_models(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(mobile_text, &rng, 206, 1);
    boost(m, "bd1", 5.0f);
    boost(m, "bd2", 5.0f);
    boost(m, "bd3", 5.0f);
    rc_check_fold(m, &rng, "mobile fold");
    check_both(m, &rng, "mobile");
    char *plan = rc_plan_of(m, 2);
    assert_int_equal(rc_count_str(plan, "not ours: depthwise"), 3);
    assert_int_equal(rc_count_str(plan, "+sum("), 2);
    assert_int_equal(rc_count_str(plan, "batchnorm"), 0);
    assert_int_equal(rc_count_str(plan, "+relu6("), 8); /* every relu6 fused */
    assert_int_equal(rc_count_str(plan, "  relu6 "), 0);
    free(plan);
    slim_model_free(m);

    m = rc_parse_random(dense_text, &rng, 207, 1);
    rc_check_fold(m, &rng, "dense fold");
    check_both(m, &rng, "dense");
    plan = rc_plan_of(m, 2);
    assert_int_equal(rc_count_str(plan, "concat x"), 5);
    free(plan);
    slim_model_free(m);
}

/* ---- pruned models ------------------------------------------------------------ */

/* gamma = 0 and beta > 0 in channel j of bn `name`: the channel is a
 * constant (a positive one after relu and relu6), which pruning removes
 * and folds into its readers. */
static void silence(slim_model *m, const char *name, int j, slim_rng *rng) {
    int i = slim_model_find_layer(m, name);
    assert_true(i > 0 && m->layers[i].kind == SLIM_LAYER_BN && j < m->layers[i].c);
    m->params[m->layers[i].p_gamma].data[j] = 0.0f;
    m->params[m->layers[i].p_beta].data[j] = 0.2f + slim_rng_uniform(rng);
}

/* The runtime on the pruned model gives the reference logits of the
 * original, and the maps pruning folds (per-position, after depthwise
 * convs and concats) run on the general path. */
static void check_pruned(slim_model *m, slim_rng *rng, const char *name) {
    slim_model *p = NULL;
    if (slim_prune(m, NULL, &p, NULL) != SLIM_OK)
        fail_msg("%s: prune: %s", name, slim_last_error());
    assert_true(slim_model_macs(p) < slim_model_macs(m));
    int maps = 0;
    for (int i = 0; i < p->n_layers; i++)
        maps += p->layers[i].kind == SLIM_LAYER_CONV && p->layers[i].has_biasmap;
    print_message("%s: MACs %.0f -> %.0f, %d convs with a biasmap\n", name, slim_model_macs(m),
                  slim_model_macs(p), maps);
    assert_true(maps > 0);
    rc_check_runtime_of(m, p, rng, name, 0);
    rc_check_runtime_of(m, p, rng, name, 1);
    slim_model_free(p);
}

/* MobileNet-style: the case (gamma = 0 in an expand BN only, the
 * depthwise BN untouched: a per-position map on the project conv), a
 * constant after a depthwise BN, and before the gap. DenseNet-style:
 * channels of the layers that feed concats, removed at their offsets. */
static void test_pruned(void **state) {
    (void)state;
    slim_rng rng;
    slim_model *m = rc_parse_random(mobile_text, &rng, 210, 1);
    silence(m, "b_e1", 1, &rng);
    silence(m, "b_e1", 5, &rng);
    silence(m, "bd2", 3, &rng);
    silence(m, "b_e3", 0, &rng);
    silence(m, "b_e3", 20, &rng);
    silence(m, "bd3", 7, &rng);
    silence(m, "b_head", 4, &rng);
    check_pruned(m, &rng, "mobile pruned");
    slim_model_free(m);

    m = rc_parse_random(dense_text, &rng, 211, 1);
    /* A channel of a concat is removed where every BN that reads it has
     * gamma = 0 there: t1's channel 5 (through avgpool1 at 5 in x3 and in
     * x4), l3's channel 2 (at 14 + 2 in x3 and x4, and at 26 + 2 in x4),
     * l4's channel 2 (at 20 + 2 in x4). */
    const struct {
        const char *bn;
        int ch;
    } zero[] = {{"bn4", 5},  {"bn5", 5},  {"bn6", 5}, {"bn5", 16},
                {"bn6", 16}, {"bn6", 28}, {"bn6", 22}};
    for (size_t z = 0; z < sizeof zero / sizeof zero[0]; z++)
        silence(m, zero[z].bn, zero[z].ch, &rng);
    check_pruned(m, &rng, "dense pruned");
    slim_model_free(m);
}

/* ---- the models/ files ---------------------------------------------------- */

/* Scales the last layer (a dense) so that the largest logit of a few
 * random images is about 4: the tolerance is relative to max(1, max
 * |logit|), and random deep models give logits well below 1. */
static void logits_to_order_4(slim_model *m, slim_rng *rng) {
    const slim_layer *d = &m->layers[m->n_layers - 1];
    assert_true(d->kind == SLIM_LAYER_DENSE);
    int n = 4;
    float *x = rc_random_input(m, n, rng), *y = malloc((size_t)n * m->n_classes * sizeof *y);
    assert_non_null(y);
    rc_forward_ref(m, x, n, 0, y);
    double big = 0;
    for (int k = 0; k < n * m->n_classes; k++)
        big = fmax(big, fabs(y[k]));
    assert_true(big > 0);
    float by = (float)(4.0 / big);
    slim_param *w = &m->params[d->p_weight];
    for (size_t k = 0; k < w->numel; k++)
        w->data[k] *= by;
    if (d->p_bias >= 0)
        for (size_t k = 0; k < m->params[d->p_bias].numel; k++)
            m->params[d->p_bias].data[k] *= by;
    free(x);
    free(y);
}

/* A model file with random parameters and random BN statistics, on the
 * runtime; then with 40% of each bn's channels silenced, pruned, against
 * the reference of the unpruned model. */
static void check_model_file(const char *rel, uint64_t seed) {
    char path[1024];
    FILE *f = fopen(tu_source_path(rel, path, sizeof path), "r");
    if (!f) fail_msg("%s is missing", rel);
    fclose(f);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model *m = rc_load(rel);
    rc_randomize(m, &rng);
    logits_to_order_4(m, &rng);
    check_both(m, &rng, rel);
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        uint32_t perm[1024];
        assert_true(l->c <= 1024);
        for (int j = 0; j < l->c; j++)
            perm[j] = (uint32_t)j;
        slim_rng_shuffle(&rng, perm, (size_t)l->c);
        for (int j = 0; j < l->c * 2 / 5; j++)
            silence(m, l->name, (int)perm[j], &rng);
    }
    char pruned[64];
    snprintf(pruned, sizeof pruned, "%s pruned", rel);
    check_pruned(m, &rng, pruned);
    slim_model_free(m);
}

static void test_mobilenet_fm(void **state) {
    (void)state;
    check_model_file("models/mobilenet-fm.net", 208);
}

static void test_densenet_fm(void **state) {
    (void)state;
    check_model_file("models/densenet-fm.net", 209);
}

/* ---- main ------------------------------------------------------------------- */

static const char *self_path = "/proc/self/exe";

static void test_blocked_layouts(void **state) {
    (void)state;
    rc_run_avx2_child(self_path);
}

int main(int argc, char **argv) {
    if (argc > 0 && argv[0] && strchr(argv[0], '/')) self_path = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped),      cmocka_unit_test(test_relu6),
        cmocka_unit_test(test_concat),       cmocka_unit_test(test_biasmap_general),
        cmocka_unit_test(test_small_models),
    };
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_grouped),         cmocka_unit_test(test_relu6),
        cmocka_unit_test(test_concat),          cmocka_unit_test(test_biasmap_general),
        cmocka_unit_test(test_small_models),    cmocka_unit_test(test_pruned),
        cmocka_unit_test(test_mobilenet_fm),    cmocka_unit_test(test_densenet_fm),
        cmocka_unit_test(test_blocked_layouts),
    };
    if (getenv(CHILD_ENV)) /* the checks of small models, not the child again */
        return cmocka_run_group_tests_name("runtime nn, AVX2 layouts", tests, NULL, NULL);
    return cmocka_run_group_tests(all, NULL, NULL);
}
