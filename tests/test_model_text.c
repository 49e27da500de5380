/* Model text format and model graph: parsing every shipped model, exact
 * parameter and MAC counts, defaults, the to_text round trip, every class of
 * error (with its file:line and layer name), models built in code, and
 * fuzz-ish robustness (random bytes, token soup, mutations). */
#include "testutil.h"

#include "slim/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const shipped[] = {"models/vgg-fm.net", "models/lenet-bn.net",
                                      "models/resnet-fm.net", "models/vgg11-cifar.net"};
#define N_SHIPPED (sizeof shipped / sizeof shipped[0])

static slim_model *load_shipped(const char *rel) {
    char path[1024];
    slim_model *m = NULL;
    slim_status st = slim_model_load_file(tu_source_path(rel, path, sizeof path), &m);
    if (st != SLIM_OK) fail_msg("%s: %s", rel, slim_last_error());
    assert_non_null(m);
    return m;
}

static slim_model *parse_ok(const char *text) {
    slim_model *m = NULL;
    slim_status st = slim_model_parse(text, "t.net", &m);
    if (st != SLIM_OK) fail_msg("unexpected failure: %s\n--- text:\n%s", slim_last_error(), text);
    assert_non_null(m);
    return m;
}

/* Parsing must fail with `want`, leave *out NULL, and the message must hold
 * every given fragment (NULL-terminated). */
static void expect_error(const char *text, slim_status want, ...) {
    slim_model *m = (slim_model *)&m; /* must be reset to NULL */
    slim_clear_error();
    slim_status st = slim_model_parse(text, "t.net", &m);
    const char *msg = slim_last_error();
    if (st != want)
        fail_msg("status %s, expected %s; message: %s\n--- text:\n%s", slim_status_name(st),
                 slim_status_name(want), msg, text);
    assert_null(m);
    va_list ap;
    va_start(ap, want);
    for (const char *frag = va_arg(ap, const char *); frag; frag = va_arg(ap, const char *))
        if (!strstr(msg, frag))
            fail_msg("message lacks \"%s\": %s\n--- text:\n%s", frag, msg, text);
    va_end(ap);
}

static size_t count_role(const slim_model *m, slim_param_role role) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == role) n += m->params[i].numel;
    return n;
}

static void assert_same_structure(const slim_model *a, const slim_model *b) {
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        const slim_layer *x = &a->layers[i], *y = &b->layers[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->n_inputs, y->n_inputs);
        for (int j = 0; j < x->n_inputs; j++)
            assert_int_equal(x->inputs[j], y->inputs[j]);
        assert_int_equal(x->out_channels, y->out_channels);
        assert_int_equal(x->k, y->k);
        assert_int_equal(x->stride, y->stride);
        assert_int_equal(x->pad, y->pad);
        assert_int_equal(x->has_bias, y->has_bias);
        assert_int_equal(x->has_biasmap, y->has_biasmap);
        assert_true(x->eps == y->eps);
        assert_true(x->momentum == y->momentum);
        assert_int_equal(x->in_c, y->in_c);
        assert_int_equal(x->in_h, y->in_h);
        assert_int_equal(x->in_w, y->in_w);
        assert_int_equal(x->c, y->c);
        assert_int_equal(x->h, y->h);
        assert_int_equal(x->w, y->w);
        assert_int_equal(x->p_weight, y->p_weight);
        assert_int_equal(x->p_bias, y->p_bias);
        assert_int_equal(x->p_biasmap, y->p_biasmap);
        assert_int_equal(x->p_gamma, y->p_gamma);
        assert_int_equal(x->p_beta, y->p_beta);
    }
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->param_floats, b->param_floats);
    assert_int_equal(a->buffer_floats, b->buffer_floats);
    for (int i = 0; i < a->n_params; i++) {
        const slim_param *p = &a->params[i], *q = &b->params[i];
        assert_string_equal(p->name, q->name);
        assert_int_equal(p->role, q->role);
        assert_int_equal(p->layer, q->layer);
        assert_int_equal(p->ndim, q->ndim);
        for (int d = 0; d < p->ndim; d++)
            assert_int_equal(p->shape[d], q->shape[d]);
        assert_int_equal(p->numel, q->numel);
        assert_int_equal(p->offset, q->offset);
        assert_int_equal(p->trainable, q->trainable);
    }
    assert_int_equal(a->n_classes, b->n_classes);
    assert_true(slim_model_macs(a) == slim_model_macs(b));
}

/* to_text, parse it back, compare; and to_text of that is the same text. */
static void check_round_trip(const slim_model *m) {
    char *text = NULL, *again = NULL;
    assert_int_equal(slim_model_to_text(m, &text), SLIM_OK);
    slim_model *back = NULL;
    if (slim_model_parse(text, "round-trip", &back) != SLIM_OK)
        fail_msg("re-parse failed: %s\n--- text:\n%s", slim_last_error(), text);
    assert_same_structure(m, back);
    assert_int_equal(slim_model_to_text(back, &again), SLIM_OK);
    assert_string_equal(text, again);
    free(text);
    free(again);
    slim_model_free(back);
}

/* The parameter blocks: each param sits at its offset, aligned, in order,
 * without overlap, and grad/momentum mirror it. */
static void check_blocks(const slim_model *m) {
    size_t end = 0;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        assert_true(p->offset % 16 == 0);
        assert_true(p->offset >= end);
        end = p->offset + p->numel;
        assert_ptr_equal(p->data, m->param_block + p->offset);
        assert_ptr_equal(p->grad, m->grad_block + p->offset);
        assert_ptr_equal(p->momentum, m->momentum_block + p->offset);
        assert_int_equal(p->trainable, p->role != SLIM_PARAM_BIASMAP);
        if (i > 0) assert_true(p->layer >= m->params[i - 1].layer);
    }
    assert_true(end <= m->param_floats);
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) {
            assert_null(l->running_mean);
            continue;
        }
        assert_true(l->running_mean >= m->buffer_block &&
                    l->running_var + l->c <= m->buffer_block + m->buffer_floats);
        for (int c = 0; c < l->c; c++) {
            assert_true(l->running_mean[c] == 0.0f);
            assert_true(l->running_var[c] == 1.0f);
        }
    }
}

/* ---- shipped models ---------------------------------------------------- */

static void test_shipped_models_parse_and_round_trip(void **state) {
    (void)state;
    for (size_t i = 0; i < N_SHIPPED; i++) {
        slim_model *m = load_shipped(shipped[i]);
        assert_int_equal(m->n_classes, 10);
        assert_non_null(strstr(m->source, shipped[i]));
        assert_non_null(m->text);
        assert_non_null(strstr(m->text, "input"));
        check_blocks(m);
        check_round_trip(m);
        /* Every conv in the shipped models feeds only a bn: none has a bias. */
        for (int j = 0; j < m->n_layers; j++)
            if (m->layers[j].kind == SLIM_LAYER_CONV) assert_int_equal(m->layers[j].p_bias, -1);
        slim_model_free(m);
    }
}

static void test_vgg_fm_exact(void **state) {
    (void)state;
    slim_model *m = load_shipped("models/vgg-fm.net");
    /* SPEC: conv weights 1*32*9 + 32*32*9 + 32*64*9 + 64*64*9 + 64*128*9 +
     * 128*128*9 = 288 + 9216 + 18432 + 36864 + 73728 + 147456 = 285,984,
     * + dense 128*10 = 1,280 -> 287,264 weights; 10 dense biases; BN
     * 2*(32+32+64+64+128+128) = 896. */
    assert_int_equal(count_role(m, SLIM_PARAM_WEIGHT), 287264);
    assert_int_equal(count_role(m, SLIM_PARAM_BIAS), 10);
    assert_int_equal(count_role(m, SLIM_PARAM_GAMMA) + count_role(m, SLIM_PARAM_BETA), 896);
    assert_int_equal(count_role(m, SLIM_PARAM_BIASMAP), 0);
    assert_int_equal(slim_model_param_count(m), 287264 + 10 + 896);
    /* MACs: weights times output positions: 288*784 + 9216*784 + 18432*196 +
     * 36864*196 + 73728*49 + 147456*49 + 1280 = 225,792 + 7,225,344 +
     * 3,612,672 + 7,225,344 + 3,612,672 + 7,225,344 + 1,280 = 29,128,448. */
    assert_true(slim_model_macs(m) == 29128448.0);
    int conv1 = slim_model_find_layer(m, "conv1");
    assert_int_equal(conv1, 1);
    assert_true(slim_layer_macs(m, conv1) == 225792.0);
    assert_int_equal(slim_layer_params(m, conv1), 288);
    assert_int_equal(slim_layer_params(m, slim_model_find_layer(m, "bn6")), 256);
    assert_true(slim_layer_macs(m, slim_model_find_layer(m, "bn6")) == 0.0);

    /* The SPEC's table: 23 layers (input + 6*(conv,bn,relu) + 2 pools + gap + dense). */
    assert_int_equal(m->n_layers, 23);
    static const struct {
        const char *name;
        int c, h, w;
    } shapes[] = {{"conv1", 32, 28, 28}, {"relu2", 32, 28, 28},  {"maxpool1", 32, 14, 14},
                  {"conv3", 64, 14, 14}, {"maxpool2", 64, 7, 7}, {"conv6", 128, 7, 7},
                  {"gap1", 128, 1, 1},   {"dense1", 10, 1, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int j = slim_model_find_layer(m, shapes[i].name);
        assert_true(j > 0);
        assert_int_equal(m->layers[j].c, shapes[i].c);
        assert_int_equal(m->layers[j].h, shapes[i].h);
        assert_int_equal(m->layers[j].w, shapes[i].w);
    }
    const slim_layer *c1 = &m->layers[conv1];
    assert_int_equal(c1->k, 3);
    assert_int_equal(c1->stride, 1);
    assert_int_equal(c1->pad, 1);
    assert_int_equal(c1->in_c, 1);
    const slim_layer *mp = &m->layers[slim_model_find_layer(m, "maxpool1")];
    assert_int_equal(mp->stride, 2);
    const slim_layer *bn = &m->layers[slim_model_find_layer(m, "bn1")];
    assert_true(bn->eps == 1e-5f);
    assert_true(bn->momentum == 0.1f);

    int w = slim_model_find_param(m, "conv1.weight");
    assert_true(w >= 0);
    assert_int_equal(m->params[w].ndim, 4);
    assert_int_equal(m->params[w].shape[0], 32);
    assert_int_equal(m->params[w].shape[1], 1);
    assert_int_equal(m->params[w].shape[2], 3);
    assert_int_equal(m->params[w].shape[3], 3);
    assert_int_equal(slim_model_find_param(m, "conv1.bias"), -1);
    int fw = slim_model_find_param(m, "dense1.weight");
    assert_int_equal(m->params[fw].shape[0], 10);
    assert_int_equal(m->params[fw].shape[1], 128);
    assert_true(slim_model_find_param(m, "dense1.bias") >= 0);
    assert_true(slim_model_find_param(m, "bn6.gamma") >= 0);
    assert_true(slim_model_find_param(m, "bn6.beta") >= 0);
    assert_int_equal(slim_model_find_layer(m, "nope"), -1);
    /* Params in layer order: conv1.weight, bn1.gamma, bn1.beta, conv2.weight ... */
    assert_string_equal(m->params[0].name, "conv1.weight");
    assert_string_equal(m->params[1].name, "bn1.gamma");
    assert_string_equal(m->params[2].name, "bn1.beta");
    assert_string_equal(m->params[m->n_params - 1].name, "dense1.bias");
    assert_int_equal(m->n_params, 6 * 3 + 2);

    for (size_t i = 0; i < m->param_floats; i++)
        m->grad_block[i] = 1.0f;
    slim_model_zero_grad(m);
    assert_true(tu_max_abs(m->grad_block, m->param_floats) == 0.0);
    slim_model_free(m);
}

static void test_other_models_exact(void **state) {
    (void)state;
    static const struct {
        const char *path;
        size_t weights, biases, bn;
        double macs;
    } want[] = {
        /* lenet-bn: conv 1*8*25 + 8*16*25 = 3,400, dense 400*64 + 64*10 =
         * 26,240; biases 64 + 10; BN 2*(8+16). MACs 200*784 + 3200*100 +
         * 25,600 + 640 = 503,040. */
        {"models/lenet-bn.net", 3400 + 26240, 74, 48, 503040.0},
        /* resnet-fm: conv 144 + 2*2304 + (4608 + 9216 + 512) + (18432 +
         * 36864 + 2048) = 76,432, dense 640; BN 2*(16 + 2*16 + 3*32 + 3*64)
         * = 672. MACs 144*784 + 4608*784 + (4608 + 9216 + 512)*196 +
         * (18432 + 36864 + 2048)*49 + 640 = 9,345,920. */
        {"models/resnet-fm.net", 76432 + 640, 10, 672, 9345920.0},
        /* vgg11-cifar: conv 1,728 + 73,728 + 294,912 + 589,824 + 1,179,648 +
         * 3*2,359,296 = 9,217,728, dense 5,120; BN 2*2,752. MACs 1728*1024 +
         * 73728*256 + (294912 + 589824)*64 + (1179648 + 2359296)*16 +
         * 2*2359296*4 + 5120 = 152,769,536. */
        {"models/vgg11-cifar.net", 9217728 + 5120, 10, 5504, 152769536.0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        slim_model *m = load_shipped(want[i].path);
        assert_int_equal(count_role(m, SLIM_PARAM_WEIGHT), want[i].weights);
        assert_int_equal(count_role(m, SLIM_PARAM_BIAS), want[i].biases);
        assert_int_equal(count_role(m, SLIM_PARAM_GAMMA) + count_role(m, SLIM_PARAM_BETA),
                         want[i].bn);
        assert_int_equal(slim_model_param_count(m), want[i].weights + want[i].biases + want[i].bn);
        if (slim_model_macs(m) != want[i].macs)
            fail_msg("%s: %.0f MACs, expected %.0f", want[i].path, slim_model_macs(m),
                     want[i].macs);
        slim_model_free(m);
    }
    /* resnet-fm's structure: three adds, two projections with stride 2. */
    slim_model *m = load_shipped("models/resnet-fm.net");
    int adds = 0;
    for (int i = 0; i < m->n_layers; i++)
        adds += m->layers[i].kind == SLIM_LAYER_ADD;
    assert_int_equal(adds, 3);
    const slim_layer *proj = &m->layers[slim_model_find_layer(m, "b2_proj")];
    assert_int_equal(proj->inputs[0], slim_model_find_layer(m, "b1_out"));
    assert_int_equal(proj->k, 1);
    assert_int_equal(proj->stride, 2);
    assert_int_equal(proj->c, 32);
    assert_int_equal(proj->h, 14);
    const slim_layer *add3 = &m->layers[slim_model_find_layer(m, "b3_add")];
    assert_int_equal(add3->c, 64);
    assert_int_equal(add3->h, 7);
    assert_int_equal(add3->inputs[1], slim_model_find_layer(m, "b3_proj_bn"));
    slim_model_free(m);
}

/* ---- defaults and round trip of non-default keys ------------------------ */

static void test_defaults(void **state) {
    (void)state;
    slim_model *m = parse_ok("input shape=3x16x16\n"
                             "conv out=8 k=3 pad=1\n" /* only consumer bn: no bias */
                             "bn\n"
                             "conv out=8 k=3 pad=1\n" /* consumer relu: bias */
                             "relu\n"
                             "conv c3 out=8 k=1\n" /* consumers bn and add: bias */
                             "bn b3\n"
                             "add s from=b3,c3\n"
                             "maxpool k=2\n"       /* stride defaults to k */
                             "avgpool k=3 pad=1\n" /* stride 3: (8+2-3)/3+1 = 3 */
                             "flatten\n"
                             "dense out=5 in=72\n" /* in checked, bias 1 */
                             "conv out=4 k=1\n");  /* last layer, no consumer: bias */
    const slim_layer *L = m->layers;
    assert_string_equal(L[0].name, "input");
    assert_string_equal(L[1].name, "conv1");
    assert_int_equal(L[1].has_bias, 0);
    assert_int_equal(L[1].p_bias, -1);
    assert_string_equal(L[2].name, "bn1");
    assert_true(L[2].eps == 1e-5f && L[2].momentum == 0.1f);
    assert_string_equal(L[3].name, "conv2");
    assert_int_equal(L[3].has_bias, 1);
    assert_true(L[3].p_bias >= 0);
    assert_int_equal(L[3].stride, 1);
    assert_int_equal(L[3].pad, 1);
    assert_int_equal(L[5].has_bias, 1);
    assert_int_equal(L[7].inputs[0], 6);
    assert_int_equal(L[7].inputs[1], 5);
    assert_string_equal(L[8].name, "maxpool1");
    assert_int_equal(L[8].stride, 2);
    assert_int_equal(L[8].h, 8);
    assert_int_equal(L[9].stride, 3);
    assert_int_equal(L[9].h, 3);
    assert_int_equal(L[10].c, 72);
    assert_int_equal(L[11].has_bias, 1);
    assert_int_equal(L[11].c, 5);
    assert_string_equal(L[12].name, "conv4");
    assert_int_equal(L[12].has_bias, 1);
    assert_int_equal(m->n_classes, 4);
    check_round_trip(m);
    slim_model_free(m);
}

static void test_round_trip_non_defaults(void **state) {
    (void)state;
    const char *text = "# every key away from its default\n"
                       "input data shape=2x20x18   # not the default name\n"
                       "conv a out=6 k=5 stride=2 pad=2 bias=1 biasmap=1\n"
                       "bn   b eps=0.001 momentum=0.25\n"
                       "relu\n"
                       "conv c from=data out=6 k=3 stride=2 pad=0 bias=0\n"
                       "relu\n"
                       "maxpool p1 from=relu1 k=3 stride=1 pad=1\n"
                       "avgpool p2 from=relu2 k=2 stride=1\n"
                       "add s from=p2,p2\n"
                       "gap\n"
                       "dense out=3 bias=0\n";
    slim_log_level keep = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_ERROR); /* p1 is unused: a warning */
    slim_model *m = parse_ok(text);
    const slim_layer *a = &m->layers[1];
    assert_string_equal(m->layers[0].name, "data");
    assert_int_equal(a->has_bias, 1);
    assert_int_equal(a->has_biasmap, 1);
    assert_int_equal(a->h, 10);
    assert_int_equal(a->w, 9);
    int bm = slim_model_find_param(m, "a.biasmap");
    assert_int_equal(bm, a->p_biasmap);
    assert_int_equal(m->params[bm].ndim, 3);
    assert_int_equal(m->params[bm].shape[0], 6);
    assert_int_equal(m->params[bm].shape[1], 10);
    assert_int_equal(m->params[bm].shape[2], 9);
    assert_int_equal(m->params[bm].trainable, 0);
    /* biasmap counts neither as a parameter nor as MACs. */
    assert_int_equal(slim_layer_params(m, 1), 6 * 2 * 25 + 6);
    assert_true(slim_layer_macs(m, 1) == 6.0 * 2 * 25 * 10 * 9);
    assert_true(m->layers[2].eps == 0.001f);
    assert_true(m->layers[2].momentum == 0.25f);
    assert_int_equal(m->layers[4].has_bias, 0);
    assert_int_equal(m->layers[4].h, 9); /* (20 - 3)/2 + 1 */
    assert_int_equal(m->layers[6].h, 10);
    assert_int_equal(m->layers[7].h, 8);
    assert_int_equal(m->n_layers, 11);
    assert_int_equal(m->layers[10].has_bias, 0);
    assert_int_equal(m->layers[10].p_bias, -1);
    check_blocks(m);
    check_round_trip(m);
    char *out = NULL;
    assert_int_equal(slim_model_to_text(m, &out), SLIM_OK);
    assert_non_null(strstr(out, "biasmap=1"));
    assert_non_null(strstr(out, "eps=0.001"));
    assert_non_null(strstr(out, "momentum=0.25"));
    assert_non_null(strstr(out, "from=p2,p2"));
    assert_non_null(strstr(out, "bias=0"));
    free(out);
    slim_model_free(m);
    slim_set_log_level(keep);
}

/* Pruning's use: narrow a conv's out, write the text, parse the narrower net. */
static void test_to_text_after_narrowing(void **state) {
    (void)state;
    slim_model *m = load_shipped("models/vgg-fm.net");
    int c2 = slim_model_find_layer(m, "conv2");
    m->layers[c2].out_channels = 5;
    m->layers[slim_model_find_layer(m, "conv6")].out_channels = 7;
    m->layers[slim_model_find_layer(m, "conv6")].has_bias = 1; /* a fold gave it a bias */
    char *text = NULL;
    assert_int_equal(slim_model_to_text(m, &text), SLIM_OK);
    slim_model *n = parse_ok(text);
    assert_int_equal(n->layers[c2].c, 5);
    assert_int_equal(n->layers[slim_model_find_layer(n, "bn2")].c, 5);
    assert_int_equal(n->layers[slim_model_find_layer(n, "conv3")].in_c, 5);
    assert_int_equal(n->layers[slim_model_find_layer(n, "dense1")].in_c, 7);
    assert_true(n->layers[slim_model_find_layer(n, "conv6")].p_bias >= 0);
    assert_int_equal(slim_model_find_param(n, "conv2.bias"), -1);
    assert_int_equal(count_role(n, SLIM_PARAM_WEIGHT),
                     288 + 32 * 5 * 9 + 5 * 64 * 9 + 36864 + 73728 + 128 * 7 * 9 + 70);
    free(text);
    slim_model_free(n);
    slim_model_free(m);
}

/* ---- errors ------------------------------------------------------------ */

#define IN "input shape=1x8x8\n"

static void test_syntax_errors(void **state) {
    (void)state;
    const slim_status F = SLIM_ERR_FORMAT;
    expect_error("", F, "t.net:1:", "empty model", NULL);
    expect_error("# nothing\n\n   # here\n", F, "t.net:3:", "empty model", NULL);
    expect_error(IN, F, "t.net:1:", "no layers after 'input'", NULL);
    expect_error("\n" IN "# only the input\n", F, "t.net:2:", "no layers after", NULL);
    expect_error("conv out=8 k=3\n", F, "t.net:1:", "first layer must be 'input shape=CxHxW'",
                 NULL);
    expect_error(IN "convv out=8\n", F,
                 "t.net:2: unknown layer kind 'convv' (expected one of: "
                 "input, conv, bn, relu, maxpool, avgpool, gap, flatten, "
                 "dense, add, concat, relu6)",
                 NULL);
    expect_error(IN "\n# comment\nconv c1 kernel=3 out=8 k=3\n", F,
                 "t.net:4: conv 'c1': unknown key 'kernel' (expected one of: out, k, stride, pad, "
                 "groups, bias, biasmap, from)",
                 NULL);
    expect_error(IN "conv out=4 k=3\nconv kernel=3\n", F, "t.net:3: conv 'conv2': unknown key",
                 NULL);
    expect_error(IN "relu r k=2\n", F, "t.net:2: relu 'r': unknown key 'k' (expected from)", NULL);
    expect_error(IN "add s k=2\n", F, "t.net:2: add 's': unknown key 'k'", NULL);
    expect_error("input x shape=1x8x8 from=x\nrelu\n", F,
                 "t.net:1: input 'x': unknown key "
                 "'from' (expected shape)",
                 NULL);
    expect_error(IN "conv c1 out=abc k=3\n", F,
                 "t.net:2: conv 'c1': 'out' must be a positive integer, got 'abc'", NULL);
    expect_error(IN "conv c1 out=8 k=3 =4\n", F, "t.net:2: conv 'c1': unknown key ''", NULL);
    expect_error(IN "conv c1 out=8 k=3 pad=\n", F,
                 "t.net:2: conv 'c1': 'pad' must be a non-"
                 "negative integer, got ''",
                 NULL);
    expect_error(IN "conv c1 out=8 k=3.5\n", F, "t.net:2:", "'k' must be a positive integer", NULL);
    expect_error(IN "conv c1 out=0x10 k=3\n", F, "t.net:2:", "'out' must be", NULL);
    /* missing, duplicate keys */
    expect_error("input\nrelu\n", F, "t.net:1: input 'input': missing required key 'shape'", NULL);
    expect_error(IN "conv c1 out=8\n", F, "t.net:2: conv 'c1': missing required key 'k'", NULL);
    expect_error(IN "conv c1 k=3\n", F, "t.net:2: conv 'c1': missing required key 'out'", NULL);
    expect_error(IN "maxpool\n", F, "t.net:2: maxpool 'maxpool1': missing required key 'k'", NULL);
    expect_error(IN "avgpool p stride=2\n", F, "t.net:2: avgpool 'p': missing required key 'k'",
                 NULL);
    expect_error(IN "flatten\ndense d\n", F, "t.net:3: dense 'd': missing required key 'out'",
                 NULL);
    expect_error(IN "conv c1 out=8 k=3 out=8\n", F, "t.net:2: conv 'c1': key 'out' given twice",
                 NULL);
    /* values out of range */
    static const struct {
        const char *line, *frag;
    } range[] = {
        {"conv c1 out=8 k=0", "'k' must be a positive integer, got '0'"},
        {"conv c1 out=8 k=-3", "'k' must be a positive integer"},
        {"conv c1 out=-1 k=3", "'out' must be a positive integer"},
        {"conv c1 out=65537 k=3", "'out' is out of range"},
        {"conv c1 out=99999999999999999999999 k=3", "'out' is out of range"},
        {"conv c1 out=8 k=3 pad=-1", "'pad' must be a non-negative integer, got '-1'"},
        {"conv c1 out=8 k=3 pad=3", "'pad' must be smaller than 'k' (pad=3, k=3)"},
        {"conv c1 out=8 k=3 stride=0", "'stride' must be a positive integer"},
        {"conv c1 out=8 k=5000", "'k' is out of range"},
        {"conv c1 out=8 k=3 bias=2", "'bias' must be 0 or 1, got '2'"},
        {"conv c1 out=8 k=3 biasmap=yes", "'biasmap' must be 0 or 1, got 'yes'"},
        {"bn c1 eps=0", "'eps' must be a positive number, got '0'"},
        {"bn c1 eps=-1e-5", "'eps' must be a positive number"},
        {"bn c1 eps=abc", "'eps' must be a positive number"},
        {"bn c1 eps=nan", "'eps' must be a positive number"},
        {"bn c1 eps=inf", "'eps' must be a positive number"},
        {"bn c1 eps=1e-60", "'eps' must be a positive number"},
        {"bn c1 momentum=0", "'momentum' must be a number in (0, 1], got '0'"},
        {"bn c1 momentum=1.5", "'momentum' must be a number in (0, 1]"},
        {"bn c1 momentum=0.1x", "'momentum' must be a number in (0, 1]"},
        {"maxpool c1 k=2 pad=2", "'pad' must be smaller than 'k'"},
        {"maxpool c1 k=2 stride=-2", "'stride' must be a positive integer"},
        {"avgpool c1 k=0", "'k' must be a positive integer"},
        {"dense c1 out=70000", "'out' is out of range"},
        {"dense c1 out=10 in=0", "'in' must be a positive integer"},
        {"dense c1 out=10 bias=true", "'bias' must be 0 or 1"},
    };
    char text[256];
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        snprintf(text, sizeof text, IN "relu\n%s\ngap\n", range[i].line);
        const char *kind = range[i].line;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "t.net:3: %.*s 'c1': ", (int)strcspn(kind, " "), kind);
        expect_error(text, F, prefix, range[i].frag, NULL);
    }
    static const char *const shapes[] = {"0x8x8", "1x5000x8", "1x8x4097", "5000x1x1",
                                         "1x8",   "1x8x8x8",  "abc",      "1x-8x8",
                                         "1xx8",  "",         "1x8x8x",   "99999999999999x8x8"};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        snprintf(text, sizeof text, "input in shape=%s\ngap\n", shapes[i]);
        expect_error(text, F, "t.net:1: input 'in': 'shape'", NULL);
    }
    /* names */
    expect_error(IN "conv 9c out=8 k=3\n", F, "t.net:2: conv: invalid name '9c'", NULL);
    expect_error(IN "relu a.b\n", F, "t.net:2: relu: invalid name 'a.b'", NULL);
    expect_error(IN "relu abcdefghijabcdefghijabcdefghij12\n", F, "t.net:2: relu: invalid name",
                 NULL);
    expect_error(IN "conv a out=8 k=3 pad=1\nconv a out=8 k=3 pad=1\n", F,
                 "t.net:3: conv 'a': name already used by the conv at line 2", NULL);
    expect_error(IN "conv out=4 k=1\nrelu conv1\n", F,
                 "t.net:3: relu 'conv1': name already used by the conv at line 2 (its automatic "
                 "name)",
                 NULL);
    expect_error(IN "conv conv2 out=4 k=1\nconv out=4 k=1\n", F,
                 "t.net:3: conv 'conv2': this layer's automatic name collides with the conv named "
                 "'conv2' at line 2",
                 NULL);
    expect_error(IN "relu input\n", F,
                 "t.net:2: relu 'input': name already used by the input at "
                 "line 1",
                 NULL);
    /* stray fields, second input, control characters */
    expect_error(IN "relu r extra\n", F,
                 "t.net:2: relu 'r': unexpected 'extra' (expected key=", NULL);
    expect_error(IN "conv c1 out=8 k=3 junk\n", F, "t.net:2: conv 'c1': unexpected 'junk'", NULL);
    expect_error(IN "conv out=8 c1 k=3\n", F, "t.net:2: conv 'conv1': unexpected 'c1'", NULL);
    expect_error(IN "relu\ninput shape=1x8x8\n", F, "t.net:3:", "'input' may only be the first",
                 NULL);
    expect_error(IN "relu\x01\n", F, "t.net:2:", "control character 0x01", NULL);
    slim_model_free(parse_ok(IN "relu # comments may hold anything: \x01\x7f\xff\ngap\n"));
    expect_error(IN "relu a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 k=11 l=12 m=13 n=14 o=15 p=16 "
                    "q=17 r=18 s=19 t=20 u=21 v=22 w=23 x=24\n",
                 F, "t.net:2:", "too many fields", NULL);
}

static void test_reference_errors(void **state) {
    (void)state;
    const slim_status F = SLIM_ERR_FORMAT;
    const char *why = "(layers can only refer to layers defined above them, so cycles are "
                      "impossible)";
    expect_error(IN "relu r from=r\n", F, "t.net:2: relu 'r': unknown layer 'r' ", why,
                 "this layer itself", NULL);
    expect_error(IN "relu a from=b\nrelu b\ngap\n", F, "t.net:2: relu 'a': unknown layer 'b'", why,
                 NULL);
    expect_error(IN "relu a from=b\nrelu b from=a\ngap\n", F,
                 "t.net:2: relu 'a': unknown layer "
                 "'b'",
                 NULL);
    expect_error(IN "conv c out=2 k=1 from=nowhere\n", F,
                 "t.net:2: conv 'c': unknown layer "
                 "'nowhere'",
                 NULL);
    expect_error(IN "relu a\nadd s from=a,s\n", F, "t.net:3: add 's': unknown layer 's'",
                 "this layer itself", NULL);
    expect_error(IN "relu a\nadd s from=a,later\nrelu later\n", F,
                 "t.net:3: add 's': unknown layer 'later'", NULL);
    expect_error(IN "relu a\nadd s\n", F, "t.net:3: add 's': missing required key 'from'", NULL);
    expect_error(IN "relu a\nadd s from=a\n", F,
                 "t.net:3: add 's': 'from' of an add must name "
                 "two layers",
                 NULL);
    expect_error(IN "relu a\nadd s from=a,\n", F, "t.net:3: add 's':", "two layers", NULL);
    expect_error(IN "relu a\nadd s from=,a\n", F, "t.net:3: add 's':", "two layers", NULL);
    expect_error(IN "relu a\nadd s from=a,a,a\n", F, "t.net:3: add 's':", "two layers", NULL);
    expect_error(IN "relu a\nrelu b\nconv c out=2 k=1 from=a,b\n", F,
                 "t.net:4: conv 'c': 'from' takes one layer name", NULL);
    expect_error(IN "relu a from=\n", F, "t.net:2: relu 'a': unknown layer ''", NULL);
}

static void test_shape_errors(void **state) {
    (void)state;
    const slim_status S = SLIM_ERR_SHAPE;
    expect_error(IN "conv a out=4 k=3 pad=1\n"
                    "conv b from=input out=8 k=3 pad=1\n"
                    "add s from=a,b\n"
                    "gap\ndense out=2\n",
                 S, "t.net:4: add 's': inputs 'a' (4x8x8) and 'b' (8x8x8) differ in shape", NULL);
    expect_error(IN "conv a out=4 k=3\n"
                    "add s from=a,input\n"
                    "gap\n",
                 S, "t.net:3: add 's':", "'a' (4x6x6)", "'input' (1x8x8)", NULL);
    expect_error(IN "conv c1 out=4 k=3 pad=1\nflatten flat\ndense fc out=10 in=100\n", S,
                 "t.net:4: dense 'fc': in=100, but its input 'flat' gives 256 features", NULL);
    expect_error(IN "conv c1 out=4 k=3 pad=1\ndense fc out=10\n", S,
                 "t.net:3: dense 'fc': input 'c1' is 4x8x8, not flat", "add a 'flatten' or 'gap'",
                 NULL);
    expect_error(IN "conv c1 out=4 k=9\ngap\n", S, "t.net:2: conv 'c1': output would be empty",
                 "input 'input' is 1x8x8", NULL);
    expect_error(IN "maxpool k=2\nmaxpool k=2\nmaxpool k=2\nmaxpool k=2\ngap\n", S,
                 "t.net:5: maxpool 'maxpool4': output would be empty", NULL);
    expect_error(IN "conv c1 out=2 k=3\n", S, "t.net:2: conv 'c1': the last layer", "2x6x6", NULL);
    expect_error(IN "dense d out=3\n", S, "t.net:2: dense 'd':", "not flat", NULL);
    /* absurd activations and parameter counts */
    expect_error("input shape=4096x4096x4096\ngap\n", S, "t.net:1: input 'input':", "absurd", NULL);
    expect_error("input shape=1x4096x4096\nflatten f\ndense d out=65536\n", SLIM_ERR_NOMEM,
                 "t.net:3: dense 'd':", "absurd", NULL);
}

/* Things that are legal: a 31-character name, an add of a layer with
 * itself, comments everywhere, CRLF line ends, tabs, an unused branch. */
static void test_legal_corners(void **state) {
    (void)state;
    slim_log_level keep = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_ERROR); /* the unused branch warns */
    slim_model *m = parse_ok("# header\r\n"
                             "\tinput   shape=1x8x8\t# trailing comment\r\n"
                             "relu abcdefghij_bcdefghij-bcdefghij1\r\n"
                             "conv unused out=2 k=1 from=input   # nobody reads it\n"
                             "add s from=abcdefghij_bcdefghij-bcdefghij1,abcdefghij_bcdefghij-"
                             "bcdefghij1\n"
                             "gap#no space before the comment\n"
                             "dense out=2 in=1");
    assert_int_equal(m->n_layers, 6);
    assert_int_equal(m->layers[1].line, 3);
    assert_int_equal(m->layers[4].line, 6);
    assert_int_equal(m->layers[4].c, 1);
    assert_int_equal(m->layers[5].declared_in, 1);
    check_round_trip(m);
    slim_model_free(m);
    slim_set_log_level(keep);
}

/* ---- files ------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state) {
    (void)state;
    char path[] = "/tmp/slim_model_text_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *text = IN "conv out=4 k=3\nbn\nrelu\ngap\ndense out=3\n";
    write_file(path, text, strlen(text));
    slim_model *m = NULL;
    assert_int_equal(slim_model_load_file(path, &m), SLIM_OK);
    assert_string_equal(m->source, path);
    assert_string_equal(m->text, text);
    assert_int_equal(m->n_classes, 3);
    slim_model_free(m);

    /* An error cites the path and line. */
    const char *bad = IN "conv out=4\n";
    write_file(path, bad, strlen(bad));
    m = (slim_model *)&m;
    assert_int_equal(slim_model_load_file(path, &m), SLIM_ERR_FORMAT);
    assert_null(m);
    char where[64];
    snprintf(where, sizeof where, "%s:2: conv 'conv1'", path);
    assert_non_null(strstr(slim_last_error(), where));

    /* NUL byte */
    write_file(path, IN "relu\0gap\n", sizeof(IN) - 1 + 9);
    assert_int_equal(slim_model_load_file(path, &m), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "NUL"));

    /* Too large: a model file is capped at 1 MiB. */
    size_t big = (size_t)SLIM_MODEL_FILE_MAX + 1;
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, '#', big);
    write_file(path, data, big);
    assert_int_equal(slim_model_load_file(path, &m), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "larger than"));
    /* Exactly the cap is read (it is all comment, so: empty model). */
    write_file(path, data, big - 1);
    assert_int_equal(slim_model_load_file(path, &m), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "empty model"));
    free(data);

    unlink(path);
    assert_int_equal(slim_model_load_file(path, &m), SLIM_ERR_IO);
    assert_non_null(strstr(slim_last_error(), path));
    assert_null(m);
}

/* ---- models built in code ---------------------------------------------- */

static void test_built_in_code(void **state) {
    (void)state;
    slim_model *m = NULL;
    assert_int_equal(slim_model_alloc(7, &m), SLIM_OK);
    slim_layer *L = m->layers;
    L[0].kind = SLIM_LAYER_INPUT;
    L[0].c = 1;
    L[0].h = 6;
    L[0].w = 6;
    L[1].kind = SLIM_LAYER_CONV;
    L[1].out_channels = 4;
    L[1].k = 3;
    L[1].pad = 1;
    L[2].kind = SLIM_LAYER_BN;
    L[3].kind = SLIM_LAYER_RELU;
    L[4].kind = SLIM_LAYER_MAXPOOL;
    L[4].k = 2;
    L[5].kind = SLIM_LAYER_GAP;
    L[6].kind = SLIM_LAYER_DENSE;
    L[6].out_channels = 3;
    L[6].has_bias = 1;
    snprintf(L[6].name, sizeof L[6].name, "fc");
    assert_int_equal(slim_model_finish(m), SLIM_OK);
    assert_string_equal(L[0].name, "input");
    assert_string_equal(L[1].name, "conv1");
    assert_string_equal(L[4].name, "maxpool1");
    assert_int_equal(L[1].stride, 1);
    assert_int_equal(L[1].has_bias, 0); /* as given: no parser default in code */
    assert_true(L[2].eps == 1e-5f && L[2].momentum == 0.1f);
    assert_int_equal(L[4].stride, 2);
    assert_int_equal(L[4].h, 3);
    assert_int_equal(L[3].n_inputs, 1);
    assert_int_equal(L[3].inputs[0], 2);
    assert_int_equal(m->n_classes, 3);
    assert_int_equal(slim_model_param_count(m), 36 + 8 + 12 + 3);
    check_blocks(m);
    check_round_trip(m);

    /* Narrow and finish again: blocks are rebuilt for the new shapes. */
    L[1].out_channels = 2;
    assert_int_equal(slim_model_finish(m), SLIM_OK);
    assert_int_equal(m->params[L[1].p_weight].shape[0], 2);
    assert_int_equal(L[2].c, 2);
    assert_int_equal(m->params[L[6].p_weight].shape[1], 2);
    assert_int_equal(slim_model_param_count(m), 18 + 4 + 6 + 3);
    check_blocks(m);
    check_round_trip(m);

    /* A forward reference is refused and the model stays freeable. */
    L[3].inputs[0] = 5;
    assert_int_equal(slim_model_finish(m), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "relu1"));
    assert_null(m->param_block);
    L[3].inputs[0] = 2;
    L[4].pad = 2;
    assert_int_equal(slim_model_finish(m), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "maxpool1"));
    L[4].pad = 0;
    L[5].kind = SLIM_LAYER_INPUT;
    assert_int_equal(slim_model_finish(m), SLIM_ERR_ARG);
    L[5].kind = SLIM_LAYER_GAP;
    snprintf(L[5].name, sizeof L[5].name, "fc");
    assert_int_equal(slim_model_finish(m), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "already used"));
    snprintf(L[5].name, sizeof L[5].name, "bad name");
    assert_int_equal(slim_model_finish(m), SLIM_ERR_ARG);
    L[5].name[0] = '\0';
    assert_int_equal(slim_model_finish(m), SLIM_OK);
    slim_model_free(m);
    slim_model_free(NULL);
    assert_int_equal(slim_model_alloc(0, &m), SLIM_ERR_ARG);
    assert_null(m);
}

/* ---- robustness -------------------------------------------------------- */

/* Parses untrusted text: either an error with a message, or a model that
 * survives the round trip. Returns 1 on success. */
static int parse_any(const char *text) {
    slim_model *m = (slim_model *)&m;
    slim_clear_error();
    slim_status st = slim_model_parse(text, "fuzz", &m);
    if (st != SLIM_OK) {
        assert_null(m);
        assert_true(st == SLIM_ERR_FORMAT || st == SLIM_ERR_SHAPE || st == SLIM_ERR_NOMEM);
        assert_true(strncmp(slim_last_error(), "fuzz:", 5) == 0);
        return 0;
    }
    check_round_trip(m);
    slim_model_free(m);
    return 1;
}

static void test_fuzz_random_bytes(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 1234, 1);
    char text[256];
    for (int it = 0; it < 3000; it++) {
        size_t pre = 0;
        if (it & 1) { /* half start with a valid input line, to reach deeper */
            strcpy(text, IN);
            pre = strlen(IN);
        }
        size_t n = slim_rng_below(&rng, 120);
        for (size_t i = 0; i < n; i++) {
            uint32_t r = slim_rng_below(&rng, 8);
            /* mostly printable, some newlines, '=', '#', and any byte */
            text[pre + i] = r == 0   ? '\n'
                            : r == 1 ? (char)(1 + slim_rng_below(&rng, 255))
                            : r == 2 ? "= ,#x"[slim_rng_below(&rng, 5)]
                                     : (char)(32 + slim_rng_below(&rng, 95));
        }
        text[pre + n] = '\0';
        parse_any(text);
    }
}

static void test_fuzz_token_soup(void **state) {
    (void)state;
    static const char *const words[] = {
        "input", "conv", "bn", "relu", "maxpool", "avgpool", "gap",   "flatten",
        "dense", "add",  "a",  "b",    "c",       "conv1",   "relu1", "input",
        "x-y",   "_z",   "9",  "=",    "from=",   "#",
    };
    static const char *const keys[] = {"shape",    "from",   "out",  "in",      "k",
                                       "stride",   "pad",    "bias", "biasmap", "eps",
                                       "momentum", "kernel", ""};
    static const char *const values[] = {"0",     "1",   "2",   "3",       "-1",          "16",
                                         "70000", "abc", "",    "1x8x8",   "2x5x5",       "0x1x1",
                                         "a",     "b",   "a,b", "conv1",   "relu1,relu1", "input",
                                         "1e-3",  "0.5", "nan", "1x9999x1"};
#define PICK(arr) arr[slim_rng_below(&rng, sizeof arr / sizeof arr[0])]
    slim_rng rng;
    slim_rng_seed(&rng, 99, 2);
    char text[2048];
    int ok = 0;
    slim_log_level keep = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_ERROR);
    for (int it = 0; it < 3000; it++) {
        size_t len = 0;
        if (slim_rng_below(&rng, 4))
            len += (size_t)snprintf(text + len, sizeof text - len, "input shape=%s\n",
                                    slim_rng_below(&rng, 2) ? "1x8x8" : "2x5x5");
        int lines = 1 + (int)slim_rng_below(&rng, 8);
        for (int l = 0; l < lines; l++) {
            len += (size_t)snprintf(text + len, sizeof text - len, "%s", PICK(words));
            int fields = (int)slim_rng_below(&rng, 5);
            for (int f = 0; f < fields; f++) {
                if (slim_rng_below(&rng, 6) == 0)
                    len += (size_t)snprintf(text + len, sizeof text - len, " %s", PICK(words));
                else
                    len += (size_t)snprintf(text + len, sizeof text - len, " %s=%s", PICK(keys),
                                            PICK(values));
            }
            len += (size_t)snprintf(text + len, sizeof text - len, "\n");
        }
        ok += parse_any(text);
    }
    /* Of lines built from valid words, a few form valid models (which then
     * survived the round trip inside parse_any). */
    print_message("token soup: %d of 3000 parsed\n", ok);
    slim_set_log_level(keep);
#undef PICK
}

/* Small random edits of a valid model: each either parses (and round-trips)
 * or fails with a message. */
static void test_fuzz_mutations(void **state) {
    (void)state;
    char path[1024];
    FILE *f = fopen(tu_source_path("models/lenet-bn.net", path, sizeof path), "rb");
    assert_non_null(f);
    char base[4096];
    size_t n = fread(base, 1, sizeof base - 1, f);
    fclose(f);
    base[n] = '\0';
    slim_rng rng;
    slim_rng_seed(&rng, 7, 3);
    char text[4200];
    int ok = 0;
    slim_log_level keep = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_ERROR);
    for (int it = 0; it < 1500; it++) {
        memcpy(text, base, n + 1);
        size_t len = n;
        int edits = 1 + (int)slim_rng_below(&rng, 3);
        for (int e = 0; e < edits && len > 1; e++) {
            size_t at = slim_rng_below(&rng, (uint32_t)len);
            switch (slim_rng_below(&rng, 3)) {
            case 0: text[at] = "0123456789=x,#\n abkz-"[slim_rng_below(&rng, 21)]; break;
            case 1:
                memmove(text + at, text + at + 1, len - at);
                len--;
                break;
            default:
                if (len + 1 < sizeof text) {
                    memmove(text + at + 1, text + at, len - at + 1);
                    text[at] = "0123456789=x,# \n"[slim_rng_below(&rng, 16)];
                    len++;
                }
            }
        }
        ok += parse_any(text);
    }
    print_message("mutations: %d of 1500 parsed\n", ok);
    assert_true(ok > 0);
    slim_set_log_level(keep);
}

/* The complete example of docs/MODEL_FORMAT.md parses, with the automatic
 * names and shapes its comments claim. */
static void test_doc_example(void **state) {
    (void)state;
    char path[1024];
    FILE *f = fopen(tu_source_path("docs/MODEL_FORMAT.md", path, sizeof path), "rb");
    assert_non_null(f);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    char *start = strstr(doc, "## A complete example");
    assert_non_null(start);
    start = strstr(start, "```\n");
    assert_non_null(start);
    start += 4;
    char *end = strstr(start, "```");
    assert_non_null(end);
    *end = '\0';
    slim_model *m = parse_ok(start);
    static const struct {
        const char *name;
        slim_layer_kind kind;
        int c, h, w;
    } want[] = {{"conv2", SLIM_LAYER_CONV, 16, 28, 28},     {"relu3", SLIM_LAYER_RELU, 16, 28, 28},
                {"down", SLIM_LAYER_CONV, 32, 14, 14},      {"add2", SLIM_LAYER_ADD, 32, 14, 14},
                {"maxpool1", SLIM_LAYER_MAXPOOL, 32, 7, 7}, {"fc", SLIM_LAYER_DENSE, 10, 1, 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int j = slim_model_find_layer(m, want[i].name);
        if (j < 0) fail_msg("no layer '%s' in the doc example", want[i].name);
        assert_int_equal(m->layers[j].kind, want[i].kind);
        assert_int_equal(m->layers[j].c, want[i].c);
        assert_int_equal(m->layers[j].h, want[i].h);
        assert_int_equal(m->layers[j].w, want[i].w);
    }
    assert_int_equal(m->layers[slim_model_find_layer(m, "proj")].inputs[0],
                     slim_model_find_layer(m, "relu3"));
    assert_int_equal(m->layers[slim_model_find_layer(m, "stem")].has_bias, 0);
    check_round_trip(m);
    slim_model_free(m);
}

/* Grouped and depthwise convs, concat and relu6: shapes, weight shapes, MACs,
 * round trip, and the errors that cite their line. */
static void test_groups_concat_relu6(void **state) {
    (void)state;
    slim_model *m = NULL;
    assert_int_equal(slim_model_parse("input shape=4x8x8\n"
                                      "conv e out=8 k=1\n"
                                      "bn eb\n"
                                      "relu6 r6\n"
                                      "conv dw out=8 k=3 pad=1 stride=2 groups=8\n"
                                      "conv g out=6 k=3 pad=1 groups=2 from=input\n"
                                      "maxpool p k=2\n"
                                      "concat cat from=dw,p,dw\n"
                                      "gap\n"
                                      "dense out=3\n",
                                      "t.net", &m),
                     SLIM_OK);
    const slim_layer *dw = &m->layers[slim_model_find_layer(m, "dw")];
    assert_int_equal(dw->groups, 8);
    assert_int_equal(m->params[dw->p_weight].shape[1], 1);
    assert_int_equal(dw->h, 4);
    assert_true(slim_layer_macs(m, slim_model_find_layer(m, "dw")) == 8.0 * 1 * 9 * 4 * 4);
    const slim_layer *g = &m->layers[slim_model_find_layer(m, "g")];
    assert_int_equal(m->params[g->p_weight].shape[1], 2);
    assert_true(slim_layer_macs(m, slim_model_find_layer(m, "g")) == 6.0 * 2 * 9 * 8 * 8);
    const slim_layer *cat = &m->layers[slim_model_find_layer(m, "cat")];
    assert_int_equal(cat->kind, SLIM_LAYER_CONCAT);
    assert_int_equal(cat->n_inputs, 3);
    assert_int_equal(cat->c, 8 + 6 + 8);
    assert_int_equal(cat->in_c, 22);
    assert_int_equal(cat->h, 4);
    assert_int_equal(m->layers[slim_model_find_layer(m, "r6")].kind, SLIM_LAYER_RELU6);
    check_round_trip(m);
    char *text = NULL;
    assert_int_equal(slim_model_to_text(m, &text), SLIM_OK);
    assert_non_null(strstr(text, "groups=8"));
    assert_non_null(strstr(text, "from=dw,p,dw"));
    free(text);
    slim_model_free(m);

    const slim_status F = SLIM_ERR_FORMAT, S = SLIM_ERR_SHAPE;
    expect_error(IN "conv c out=6 k=3 groups=4\ngap\n", F,
                 "t.net:2: conv 'c':", "'out' must be divisible by 'groups' (out=6, groups=4)",
                 NULL);
    expect_error("input shape=3x8x8\nconv c out=6 k=3 groups=2\ngap\n", S,
                 "t.net:2: conv 'c':", "3 channels, not divisible by groups=2", NULL);
    expect_error(IN "conv c out=4 k=3 groups=0\ngap\n", F, "t.net:2:", "groups", NULL);
    expect_error(IN "maxpool p k=2\nconcat c from=input,p\ngap\n", S,
                 "t.net:3: concat 'c':", "differ in height or width", NULL);
    expect_error(IN "concat c from=input\ngap\n", F,
                 "t.net:2:", "'from' of a concat must name 2 to 16 layers", NULL);
    expect_error(IN "concat c\ngap\n", F, "t.net:2:", "missing required key 'from'", NULL);
    expect_error(IN "concat c from=input,,input\ngap\n", F, "t.net:2:", "got 'input,,input'", NULL);
    expect_error(IN "concat c from=input,nope\ngap\n", F, "t.net:2:", "unknown layer 'nope'", NULL);
    expect_error(IN "add a from=input,input,input\ngap\n", F,
                 "t.net:2:", "'from' of an add must name two layers", NULL);
    expect_error(IN "relu6 r groups=2\ngap\n", F, "t.net:2:", "groups", NULL);
    expect_error(IN "concat c from=input,input,input,input,input,input,input,input,input,input,"
                    "input,input,input,input,input,input,input\ngap\n",
                 F, "t.net:2:", "2 to 16", NULL);
}

static void test_kind_names(void **state) {
    (void)state;
    static const char *const names[] = {"input", "conv",    "bn",    "relu", "maxpool", "avgpool",
                                        "gap",   "flatten", "dense", "add",  "concat",  "relu6"};
    for (int k = 0; k < SLIM_LAYER_KIND_COUNT; k++)
        assert_string_equal(slim_layer_kind_name((slim_layer_kind)k), names[k]);
    assert_non_null(slim_layer_kind_name(SLIM_LAYER_KIND_COUNT));
}

/* The one layer-name rule that the parser and slim_model_finish share. */
static void test_layer_name_rule(void **state) {
    (void)state;
    assert_true(slim_layer_name_valid("conv1"));
    assert_true(slim_layer_name_valid("_b1-bn2"));
    assert_false(slim_layer_name_valid(""));
    assert_false(slim_layer_name_valid("1conv"));
    assert_false(slim_layer_name_valid("-a"));
    assert_false(slim_layer_name_valid("a.b"));
    char name[SLIM_NAME_MAX + 1];
    memset(name, 'a', SLIM_NAME_MAX);
    name[SLIM_NAME_MAX - 1] = '\0';
    assert_true(slim_layer_name_valid(name));
    name[SLIM_NAME_MAX - 1] = 'a';
    name[SLIM_NAME_MAX] = '\0';
    assert_false(slim_layer_name_valid(name));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_layer_name_rule),
        cmocka_unit_test(test_shipped_models_parse_and_round_trip),
        cmocka_unit_test(test_vgg_fm_exact),
        cmocka_unit_test(test_other_models_exact),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_round_trip_non_defaults),
        cmocka_unit_test(test_to_text_after_narrowing),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_reference_errors),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_groups_concat_relu6),
        cmocka_unit_test(test_legal_corners),
        cmocka_unit_test(test_doc_example),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_built_in_code),
        cmocka_unit_test(test_fuzz_random_bytes),
        cmocka_unit_test(test_fuzz_token_soup),
        cmocka_unit_test(test_fuzz_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
