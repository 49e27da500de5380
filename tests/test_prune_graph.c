/* Pruning through depthwise and grouped convs, concat and relu6 (issue 22;
 * docs/PRUNING.md). Every prune here is of exact zeros at threshold 0 and is
 * held to the same exactness as test_prune.c: max |delta logit| <=
 * EXACT_TOL * max |logit| on random inputs, identical argmax, with the
 * reference kernels and with the fast ones (oneDNN). Parameters, BN gamma
 * and beta and BN running statistics are random; the removed channels are
 * set by hand. */
#include "prune_helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text and gives it random parameters, BN values and statistics;
 * the last (dense) layer's weights are scaled up so that the logits are of
 * order 1 and a wrong fold shows. */
static slim_model *setup(const char *text, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 3);
    slim_model *m = parse(text);
    slim_model_init_params(m, &rng);
    randomize_bn(m, &rng);
    random_stats(m, &rng);
    slim_param *w = &m->params[m->layers[m->n_layers - 1].p_weight];
    for (size_t k = 0; k < w->numel; k++)
        w->data[k] *= 4.0f;
    return m;
}

/* gamma_j = 0 and beta_j = beta in BN `name`. */
static void silence(slim_model *m, const char *name, int j, float beta) {
    slim_layer *l = layer(m, name);
    gamma_of(m, l)[j] = 0.0f;
    beta_of(m, l)[j] = beta;
}

/* Both backends: the pruned model computes the input's function. */
static void assert_exact_both(slim_model *m, slim_model *p, const char *what) {
    slim_rng rng;
    slim_rng_seed(&rng, 5, 5);
    char buf[96];
    snprintf(buf, sizeof buf, "%s (ref)", what);
    assert_exact_as(m, p, SLIM_BACKEND_REF, &rng, buf);
    snprintf(buf, sizeof buf, "%s (fast)", what);
    assert_exact_as(m, p, SLIM_BACKEND_FAST, &rng, buf);
}

static int width(slim_model *m, const char *name) { return layer(m, name)->c; }

/* ---- depthwise convs ------------------------------------------------------------ */

/* An inverted-residual body: 1x1 expand, 3x3 depthwise, 1x1 project. */
static const char *const mbconv = "input shape=2x8x8\n"
                                  "conv exp out=6 k=1\n"
                                  "bn exp_bn\n"
                                  "relu6 exp_r\n"
                                  "conv dw out=6 k=3 pad=1 groups=6\n"
                                  "bn dw_bn\n"
                                  "relu6 dw_r\n"
                                  "conv proj out=4 k=1\n"
                                  "bn proj_bn\n"
                                  "gap g\n"
                                  "dense fc out=3\n";

/* The test: gamma = 0 in the expand BN only, the depthwise conv's BN
 * untouched. The expand channel is the constant beta; the depthwise conv
 * of that constant plane with zero padding is a fixed map (its border
 * differs), which dw_bn and relu6 keep fixed: the channel goes from exp,
 * exp_bn, dw (groups 6 -> 5), dw_bn and proj's input, and its map is
 * folded into proj's bias map. */
static void test_expand_bn_before_depthwise(void **state) {
    (void)state;
    slim_model *m = setup(mbconv, 1);
    silence(m, "exp_bn", 1, 0.8f);
    /* dw_bn channel 1 inside (0, 6), so the map reaches proj through relu6 */
    slim_layer *dwbn = layer(m, "dw_bn");
    gamma_of(m, dwbn)[1] = 0.7f;
    beta_of(m, dwbn)[1] = 3.0f;

    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    int gi = g.group_of_layer[slim_model_find_layer(m, "dw")];
    assert_true(gi >= 0);
    assert_int_equal(g.group_of_layer[slim_model_find_layer(m, "exp")], gi);
    assert_string_equal(g.groups[gi].label, "exp_bn+dw_bn");
    assert_int_equal(g.groups[gi].n_producers, 1); /* exp; dw is channel-wise */
    assert_int_equal(g.groups[gi].n_consumers, 1); /* proj */
    slim_prune_groups_free(&g);

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "exp"), 5);
    assert_int_equal(width(p, "dw"), 5);
    assert_int_equal(layer(p, "dw")->groups, 5);
    assert_int_equal(width(p, "dw_bn"), 5);
    assert_int_equal(layer(p, "proj")->in_c, 5);
    assert_true(layer(p, "proj")->has_biasmap); /* a 1x1 conv of a map with borders */
    assert_int_equal(r.channels_before - r.channels_after, 1);
    assert_true(has_note(&r, "proj: folded 1 removed fixed channel of exp_bn+dw_bn"));
    assert_int_equal(r.removed_fixed_input, 1);
    assert_true(has_note(&r, "exp_bn+dw_bn: removed 1 channel read through a BN with gamma != 0 "
                             "whose input is fixed"));
    assert_true(table_has(&r, "1 fixed input"));
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "expand bn before depthwise");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* gamma = 0 in the BN after the depthwise conv (a constant) and in the BN
 * before it (a fixed map), at stride 1 and 2, with max and average pooling
 * (padding excluded from the divisor) of the map before a 3x3 pad-1
 * consumer. */
static void check_depthwise_stride(int stride) {
    char text[1024];
    snprintf(text, sizeof text,
             "input shape=2x9x9\n"
             "conv exp out=6 k=1\n"
             "bn exp_bn\n"
             "relu6 exp_r\n"
             "conv dw out=6 k=3 stride=%d pad=1 groups=6\n"
             "bn dw_bn\n"
             "relu6 dw_r\n"
             "maxpool mp k=3 stride=2 pad=1\n"
             "avgpool ap k=3 stride=1 pad=1\n"
             "conv proj out=4 k=3 pad=1\n"
             "bn proj_bn\n"
             "relu pr\n"
             "gap g\n"
             "dense fc out=3\n",
             stride);
    slim_model *m = setup(text, 10 + (uint64_t)stride);
    silence(m, "dw_bn", 2, 0.5f);         /* constant 0.5 */
    silence(m, "exp_bn", 4, 1.5f);        /* a map with borders */
    slim_layer *dwbn = layer(m, "dw_bn"); /* inside (0, 6): the map reaches proj */
    gamma_of(m, dwbn)[4] = 0.7f;
    beta_of(m, dwbn)[4] = 3.0f;
    silence(m, "dw_bn", 0, -0.3f); /* relu6: 0, nothing to fold */
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "dw"), 3);
    assert_int_equal(layer(p, "dw")->groups, 3);
    assert_int_equal(layer(p, "proj")->in_c, 3);
    assert_true(layer(p, "proj")->has_biasmap);
    assert_int_equal(r.removed_gamma_zero, 2);
    assert_int_equal(r.removed_fixed_input, 1); /* dw_bn normalises exp_bn's fixed map */
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, stride == 1 ? "depthwise stride 1" : "depthwise stride 2");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

static void test_depthwise_stride1(void **state) {
    (void)state;
    check_depthwise_stride(1);
}

static void test_depthwise_stride2(void **state) {
    (void)state;
    check_depthwise_stride(2);
}

/* relu6 clips the constants: beta 7.5 -> 6, beta -2 -> 0 (nothing folded),
 * and after the depthwise conv beta 6.5 -> 6. */
static void test_relu6_clipped_constants(void **state) {
    (void)state;
    slim_model *m = setup(mbconv, 2);
    silence(m, "exp_bn", 0, 7.5f);
    silence(m, "exp_bn", 1, -2.0f);
    silence(m, "dw_bn", 3, 6.5f);
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "dw"), 3);
    assert_true(layer(p, "proj")->has_biasmap);
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "relu6 clipped");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- concat ------------------------------------------------------------------- */

/* Two branches concatenated, read by a 1x1 conv and a 3x3 pad-1 conv. */
static void test_concat_branches(void **state) {
    (void)state;
    slim_model *m = setup("input shape=2x8x8\n"
                          "conv a out=4 k=3 pad=1\n"
                          "bn a_bn\n"
                          "relu a_r\n"
                          "conv b from=input out=3 k=3 pad=1\n"
                          "bn b_bn\n"
                          "relu6 b_r\n"
                          "concat cat from=a_r,b_r\n"
                          "conv c1 out=4 k=1\n"
                          "bn c1_bn\n"
                          "relu c1_r\n"
                          "conv c3 from=cat out=4 k=3 pad=1\n"
                          "bn c3_bn\n"
                          "relu c3_r\n"
                          "add s from=c1_r,c3_r\n"
                          "gap g\n"
                          "dense fc out=3\n",
                          3);
    silence(m, "a_bn", 1, 0.6f);
    silence(m, "a_bn", 3, 0.9f);
    silence(m, "b_bn", 0, 0.7f);

    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    int cat = slim_model_find_layer(m, "cat");
    int ga = g.group_of_layer[slim_model_find_layer(m, "a")];
    int gb = g.group_of_layer[slim_model_find_layer(m, "b")];
    assert_true(ga >= 0 && gb >= 0 && ga != gb);
    assert_int_equal(g.group_of_layer[cat], -1); /* two groups */
    assert_int_equal(g.group_of_channel[cat][2], ga);
    assert_int_equal(g.index_of_channel[cat][2], 2);
    assert_int_equal(g.group_of_channel[cat][5], gb);
    assert_int_equal(g.index_of_channel[cat][5], 1);
    assert_int_equal(g.groups[ga].n_consumers, 2); /* c1, c3 */
    slim_prune_groups_free(&g);

    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "a"), 2);
    assert_int_equal(width(p, "b"), 2);
    assert_int_equal(width(p, "cat"), 4);
    assert_int_equal(layer(p, "c1")->in_c, 4);
    assert_int_equal(layer(p, "c3")->in_c, 4);
    assert_true(layer(p, "c1")->has_bias && !layer(p, "c1")->has_biasmap);
    assert_true(layer(p, "c3")->has_biasmap); /* the border */
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "concat of two branches");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* DenseNet: a concat read by the next concat, a BN on a concat
 * (pre-activation), a transition with pooling. */
static const char *const dense_net = "input shape=1x8x8\n"
                                     "conv stem out=4 k=3 pad=1\n"
                                     "bn stem_bn\n"
                                     "relu stem_r\n"
                                     "conv c1 out=3 k=3 pad=1\n"
                                     "bn c1_bn\n"
                                     "relu c1_r\n"
                                     "concat cat1 from=stem_r,c1_r\n"
                                     "bn cat1_bn\n"
                                     "relu cat1_r\n"
                                     "conv c2 out=3 k=3 pad=1\n"
                                     "bn c2_bn\n"
                                     "relu c2_r\n"
                                     "concat cat2 from=cat1,c2_r\n"
                                     "conv t out=4 k=1\n"
                                     "bn t_bn\n"
                                     "relu t_r\n"
                                     "avgpool tp k=2\n"
                                     "gap g\n"
                                     "dense fc out=3\n";

static void test_concat_of_concat(void **state) {
    (void)state;
    slim_model *m = setup(dense_net, 4);
    silence(m, "stem_bn", 0, 0.7f); /* in cat1 (through cat1_bn: a fixed input) and cat2 */
    silence(m, "c1_bn", 2, 0.4f);
    silence(m, "c2_bn", 1, 0.3f);
    /* gamma = 0 in cat1_bn alone: stem_r's channel 1 is still read live by
     * c1 and through cat2 by t, so it stays. */
    silence(m, "cat1_bn", 1, 0.5f);
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "stem"), 3);
    assert_int_equal(width(p, "c1"), 2);
    assert_int_equal(width(p, "cat1"), 5);
    assert_int_equal(width(p, "cat1_bn"), 5);
    assert_int_equal(layer(p, "c2")->in_c, 5);
    assert_int_equal(width(p, "c2"), 2);
    assert_int_equal(width(p, "cat2"), 7);
    assert_int_equal(layer(p, "t")->in_c, 7);
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "concat of a concat");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- grouped convs, residual adds, empty layers ------------------------------------ */

/* A grouped conv (1 < groups < channels) keeps its input and output
 * channels (docs/PRUNING.md): gamma = 0 before or after it removes
 * nothing there; the rest of the network prunes as usual. */
static void test_grouped_conv_left_alone(void **state) {
    (void)state;
    slim_model *m = setup("input shape=2x8x8\n"
                          "conv c1 out=8 k=1\n"
                          "bn b1\n"
                          "relu r1\n"
                          "conv g out=8 k=3 pad=1 groups=2\n"
                          "bn gb\n"
                          "relu rg\n"
                          "conv c3 out=4 k=1\n"
                          "bn b3\n"
                          "relu r3\n"
                          "gap gp\n"
                          "dense fc out=3\n",
                          6);
    for (int j = 0; j < 3; j++)
        silence(m, "b1", j, 0.5f);
    silence(m, "gb", 1, 0.5f);
    silence(m, "b3", 0, 0.5f);
    slim_prune_groups g;
    assert_int_equal(slim_prune_find_groups(m, &g), SLIM_OK);
    assert_int_equal(g.n_groups, 1);
    assert_int_equal(g.group_of_layer[slim_model_find_layer(m, "c1")], -1);
    assert_int_equal(g.group_of_layer[slim_model_find_layer(m, "g")], -1);
    slim_prune_groups_free(&g);
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "c1"), 8);
    assert_int_equal(width(p, "g"), 8);
    assert_int_equal(layer(p, "g")->groups, 2);
    assert_int_equal(width(p, "c3"), 3);
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "grouped conv");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* An inverted-residual block with its add: the shortcut ties stem_bn and
 * p_bn; the expanded channels prune through the depthwise conv. */
static void test_inverted_residual_add(void **state) {
    (void)state;
    slim_model *m = setup("input shape=2x8x8\n"
                          "conv stem out=4 k=3 pad=1\n"
                          "bn stem_bn\n"
                          "relu6 stem_r\n"
                          "conv e out=8 k=1\n"
                          "bn e_bn\n"
                          "relu6 e_r\n"
                          "conv dw out=8 k=3 pad=1 groups=8\n"
                          "bn dw_bn\n"
                          "relu6 dw_r\n"
                          "conv p out=4 k=1\n"
                          "bn p_bn\n"
                          "add res from=p_bn,stem_r\n"
                          "conv head out=6 k=1\n"
                          "bn head_bn\n"
                          "relu6 head_r\n"
                          "gap g\n"
                          "dense fc out=3\n",
                          7);
    silence(m, "e_bn", 1, 0.9f);
    silence(m, "dw_bn", 5, 0.2f);
    silence(m, "stem_bn", 2, 0.6f);
    silence(m, "p_bn", 2, -0.4f);
    silence(m, "stem_bn", 3, 0.6f); /* p_bn's channel 3 is live: stays */
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "e"), 6);
    assert_int_equal(width(p, "dw"), 6);
    assert_int_equal(width(p, "stem"), 3);
    assert_int_equal(width(p, "p"), 3);
    assert_int_equal(layer(p, "head")->in_c, 3);
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "inverted residual");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Every gamma of the expand BN 0: one channel stays (the group's rule: the
 * largest score, lowest index among equals), so the depthwise conv keeps
 * one channel (groups = 1) and the model stays exact. */
static void test_no_layer_emptied(void **state) {
    (void)state;
    slim_model *m = setup(mbconv, 8);
    for (int j = 0; j < 6; j++)
        silence(m, "exp_bn", j, 0.1f * (float)(j + 1));
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    assert_int_equal(width(p, "exp"), 1);
    assert_int_equal(width(p, "dw"), 1);
    assert_int_equal(layer(p, "dw")->groups, 1);
    assert_true(has_note(&r, "kept 1 channel of exp_bn+dw_bn"));
    check_report_totals(&r, m, p);
    assert_exact_both(m, p, "no layer emptied");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* Threshold > 0 through a depthwise conv: a channel scores by the |gamma|
 * of the last BN before it is read (a BN renormalises whatever scale
 * reaches it), so dw_bn's small gamma removes channel 2 whatever exp_bn's,
 * and exp_bn's small gamma keeps channel 4 while dw_bn's is large. The
 * pruned model is the input with dw_bn's gamma_2 := 0, exactly. */
static void test_threshold_scores_last_bn(void **state) {
    (void)state;
    slim_model *m = setup(mbconv, 9);
    slim_layer *e = layer(m, "exp_bn"), *d = layer(m, "dw_bn");
    for (int j = 0; j < 6; j++) {
        gamma_of(m, e)[j] = 0.8f;
        gamma_of(m, d)[j] = 0.9f;
    }
    gamma_of(m, d)[2] = 0.05f;
    gamma_of(m, e)[4] = 0.05f;
    slim_prune_options o = slim_prune_default_options();
    o.threshold = 0.1f;
    slim_prune_report r;
    slim_model *p = prune_ok(m, &o, &r);
    assert_int_equal(width(p, "dw"), 5);
    assert_int_equal(r.removed_nonzero, 1);
    gamma_of(m, d)[2] = 0.0f;
    assert_exact_both(m, p, "threshold through a depthwise conv");
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

/* ---- the shipped MobileNet- and DenseNet-style models ------------------------------ */

/* Random parameters, BN values and statistics; 40% of every BN's gammas 0
 * at random. The prune is exact, removes channels and MACs. */
static void check_model(const char *file, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 11);
    slim_model *m;
    int zeroed = load_sparse(file, &rng, 1, &m);
    assert_true(zeroed > 0);
    slim_prune_report r;
    slim_model *p = prune_ok(m, NULL, &r);
    print_message("%s: %d gammas zeroed; group channels %d -> %d, MACs %.0f -> %.0f\n", file,
                  zeroed, r.channels_before, r.channels_after, r.macs_before, r.macs_after);
    assert_true(r.channels_after < r.channels_before);
    assert_true(r.macs_after < r.macs_before);
    check_report_totals(&r, m, p);
    assert_exact_as(m, p, SLIM_BACKEND_FAST, &rng, file);
    slim_prune_report_free(&r);
    slim_model_free(p);
    slim_model_free(m);
}

static void test_mobilenet_fm_exact(void **state) {
    (void)state;
    check_model("models/mobilenet-fm.net", 21);
}

static void test_densenet_fm_exact(void **state) {
    (void)state;
    check_model("models/densenet-fm.net", 22);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_bn_before_depthwise),
        cmocka_unit_test(test_depthwise_stride1),
        cmocka_unit_test(test_depthwise_stride2),
        cmocka_unit_test(test_relu6_clipped_constants),
        cmocka_unit_test(test_concat_branches),
        cmocka_unit_test(test_concat_of_concat),
        cmocka_unit_test(test_grouped_conv_left_alone),
        cmocka_unit_test(test_inverted_residual_add),
        cmocka_unit_test(test_no_layer_emptied),
        cmocka_unit_test(test_threshold_scores_last_bn),
        cmocka_unit_test(test_mobilenet_fm_exact),
        cmocka_unit_test(test_densenet_fm_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
