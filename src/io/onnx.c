/* ONNX export (include/slim/onnx.h): plan the graph (tensor ranks, BN folds,
 * tensor names), encode it with the small protobuf writer of pb.h, and write
 * the file atomically.
 *
 * ONNX field numbers below are those of onnx/onnx.proto (IR version 7). */
#include "slim/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/pb.h"

/* ModelProto */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3 };
enum { MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8, MODEL_METADATA_PROPS = 14 };
/* StringStringEntryProto */
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
/* OperatorSetIdProto */
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
/* GraphProto */
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_DOC = 10 };
enum { GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
/* NodeProto */
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4 };
enum { NODE_ATTRIBUTE = 5, NODE_DOC = 6 };
/* AttributeProto and its AttributeType values */
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7 };
/* TensorProto and its DataType FLOAT */
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9 };
enum { DATA_TYPE_FLOAT = 1 };
/* ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto(.Dimension) */
enum { VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TTYPE_ELEM = 1, TTYPE_SHAPE = 2 };
enum { SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2 };

/* A tensor name: a layer name plus a short '.' suffix. */
#define TNAME_MAX (SLIM_NAME_MAX + 16)

typedef struct plan {
    const slim_model *m;
    const char *path;         /* for messages */
    int *rank;                /* per layer: ONNX rank of its output, 4 or 2 */
    int *bn_of;               /* per conv: the bn folded into it, else -1 */
    int *conv_of;             /* per bn: the conv it is folded into, else -1 */
    char (*tname)[TNAME_MAX]; /* per layer: name of its output tensor */
    int final_flatten;        /* the last layer is 4-D: Flatten it to "logits" */
} plan;

static void plan_free(plan *p) {
    free(p->rank);
    free(p->bn_of);
    free(p->conv_of);
    free(p->tname);
}

/* "<path>: <kind> '<name>': cannot export to ONNX: <what>" */
static slim_status layer_fail(const plan *p, int i, slim_status st, const char *what) {
    const slim_layer *l = &p->m->layers[i];
    return slim_error(st, "%s: %s '%.31s' (layer %d): cannot export to ONNX: %s", p->path,
                      slim_layer_kind_name(l->kind), l->name, i, what);
}

/* Whether layer parameter `index` exists and holds `numel` floats. */
static int param_ok(const slim_model *m, int index, size_t numel) {
    return index >= 0 && index < m->n_params && m->params[index].data &&
           m->params[index].numel == numel;
}

static slim_status check_params(const plan *p, int i) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    size_t c = (size_t)l->c;
    switch (l->kind) {
    case SLIM_LAYER_CONV:
        if (l->groups < 1 || l->in_c % l->groups || l->c % l->groups)
            return layer_fail(p, i, SLIM_ERR_ARG, "its groups do not divide its channels");
        if (!param_ok(m, l->p_weight,
                      c * (size_t)(l->in_c / l->groups) * (size_t)l->k * (size_t)l->k))
            return layer_fail(p, i, SLIM_ERR_ARG, "its weight is missing or misshapen");
        if (l->has_bias && !param_ok(m, l->p_bias, c))
            return layer_fail(p, i, SLIM_ERR_ARG, "its bias is missing or misshapen");
        if (l->has_biasmap && !param_ok(m, l->p_biasmap, c * (size_t)l->h * (size_t)l->w))
            return layer_fail(p, i, SLIM_ERR_ARG, "its biasmap is missing or misshapen");
        return SLIM_OK;
    case SLIM_LAYER_DENSE:
        if (!param_ok(m, l->p_weight, c * (size_t)l->in_c))
            return layer_fail(p, i, SLIM_ERR_ARG, "its weight is missing or misshapen");
        if (l->has_bias && !param_ok(m, l->p_bias, c))
            return layer_fail(p, i, SLIM_ERR_ARG, "its bias is missing or misshapen");
        return SLIM_OK;
    case SLIM_LAYER_BN:
        if (!param_ok(m, l->p_gamma, c) || !param_ok(m, l->p_beta, c) || !l->running_mean ||
            !l->running_var)
            return layer_fail(p, i, SLIM_ERR_ARG,
                              "its parameters or running statistics are missing");
        for (int j = 0; j < l->c; j++) {
            double v = (double)l->running_var[j] + (double)l->eps;
            if (!(v > 0) || !isfinite(v))
                return layer_fail(p, i, SLIM_ERR_NUMERIC,
                                  "running_var + eps is not a positive finite number");
        }
        return SLIM_OK;
    default: return SLIM_OK;
    }
}

/* Ranks, folds and names; every reason the model cannot be exported is
 * found here, before any file is touched. */
static slim_status make_plan(plan *p) {
    const slim_model *m = p->m;
    int n = m->n_layers;
    p->rank = calloc((size_t)n, sizeof *p->rank);
    p->bn_of = malloc((size_t)n * sizeof *p->bn_of);
    p->conv_of = malloc((size_t)n * sizeof *p->conv_of);
    p->tname = calloc((size_t)n, sizeof *p->tname);
    int *consumers = calloc((size_t)n, sizeof *consumers);
    if (!p->rank || !p->bn_of || !p->conv_of || !p->tname || !consumers) {
        free(consumers);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory planning the ONNX graph", p->path);
    }
    slim_status st = SLIM_OK;
    for (int i = 0; i < n; i++) {
        p->bn_of[i] = p->conv_of[i] = -1;
        const slim_layer *l = &m->layers[i];
        int want = l->kind == SLIM_LAYER_INPUT ? 0 : l->kind == SLIM_LAYER_ADD ? 2 : 1;
        if (l->kind == SLIM_LAYER_CONCAT)
            want = l->n_inputs >= 2 && l->n_inputs <= SLIM_LAYER_MAX_INPUTS ? l->n_inputs : -1;
        if ((i == 0) != (l->kind == SLIM_LAYER_INPUT) || l->n_inputs != want) {
            st = layer_fail(p, i, SLIM_ERR_ARG, "the layer graph is malformed");
            goto done;
        }
        for (int j = 0; j < l->n_inputs; j++) {
            if (l->inputs[j] < 0 || l->inputs[j] >= i) {
                st = layer_fail(p, i, SLIM_ERR_ARG, "an input refers to a later layer");
                goto done;
            }
            consumers[l->inputs[j]]++;
        }
    }
    for (int i = 0; i < n && st == SLIM_OK; i++) {
        const slim_layer *l = &m->layers[i];
        int in_rank = i > 0 ? p->rank[l->inputs[0]] : 4;
        switch (l->kind) {
        case SLIM_LAYER_INPUT: p->rank[i] = 4; break;
        case SLIM_LAYER_CONV:
        case SLIM_LAYER_MAXPOOL:
        case SLIM_LAYER_AVGPOOL:
        case SLIM_LAYER_GAP:
            if (in_rank != 4) {
                st = layer_fail(p, i, SLIM_ERR_ARG, "its input is 2-D (N, F), not (N, C, H, W)");
                break;
            }
            p->rank[i] = l->kind == SLIM_LAYER_GAP ? 2 : 4;
            break;
        case SLIM_LAYER_BN:
        case SLIM_LAYER_RELU:
        case SLIM_LAYER_RELU6: p->rank[i] = in_rank; break;
        case SLIM_LAYER_CONCAT: /* axis 1 is the channel or feature axis at either rank */
            for (int j = 1; j < l->n_inputs && st == SLIM_OK; j++)
                if (p->rank[l->inputs[j]] != in_rank)
                    st = layer_fail(p, i, SLIM_ERR_ARG, "its inputs differ in rank");
            p->rank[i] = in_rank;
            break;
        case SLIM_LAYER_FLATTEN:
        case SLIM_LAYER_DENSE: p->rank[i] = 2; break;
        case SLIM_LAYER_ADD:
            if (in_rank != p->rank[l->inputs[1]]) {
                st = layer_fail(p, i, SLIM_ERR_ARG, "its inputs differ in rank");
                break;
            }
            p->rank[i] = in_rank;
            break;
        default: st = layer_fail(p, i, SLIM_ERR_ARG, "this layer kind has no ONNX mapping");
        }
        if (st == SLIM_OK) st = check_params(p, i);
        if (st == SLIM_OK && l->kind == SLIM_LAYER_BN) {
            int c = l->inputs[0];
            if (m->layers[c].kind == SLIM_LAYER_CONV && consumers[c] == 1) {
                p->bn_of[c] = i;
                p->conv_of[i] = c;
            }
        }
    }
    if (st != SLIM_OK) goto done;

    int last = n - 1;
    p->final_flatten = p->rank[last] == 4;
    for (int i = 0; i < n; i++) {
        const char *name = m->layers[i].name;
        if (i == 0)
            snprintf(p->tname[i], TNAME_MAX, "input");
        else if (i == last && !p->final_flatten)
            snprintf(p->tname[i], TNAME_MAX, "logits");
        else if (strcmp(name, "input") == 0 || strcmp(name, "logits") == 0)
            snprintf(p->tname[i], TNAME_MAX, "%.31s.out", name); /* keep the roles' names */
        else
            snprintf(p->tname[i], TNAME_MAX, "%.31s", name);
    }
done:
    free(consumers);
    return st;
}

/* ---- encoding helpers --------------------------------------------------- */

static void attr_int(slim_pb_buf *node, const char *name, int64_t v) {
    slim_pb_buf a;
    slim_pb_init(&a);
    slim_pb_string(&a, ATTR_NAME, name);
    slim_pb_int(&a, ATTR_I, v);
    slim_pb_int(&a, ATTR_TYPE, ATTR_TYPE_INT);
    slim_pb_message(node, NODE_ATTRIBUTE, &a);
    slim_pb_free(&a);
}

static void attr_float(slim_pb_buf *node, const char *name, float v) {
    slim_pb_buf a;
    slim_pb_init(&a);
    slim_pb_string(&a, ATTR_NAME, name);
    slim_pb_float(&a, ATTR_F, v);
    slim_pb_int(&a, ATTR_TYPE, ATTR_TYPE_FLOAT);
    slim_pb_message(node, NODE_ATTRIBUTE, &a);
    slim_pb_free(&a);
}

static void attr_list(slim_pb_buf *node, const char *name, int n, const int64_t *v) {
    slim_pb_buf a;
    slim_pb_init(&a);
    slim_pb_string(&a, ATTR_NAME, name);
    for (int i = 0; i < n; i++)
        slim_pb_int(&a, ATTR_INTS, v[i]);
    slim_pb_int(&a, ATTR_TYPE, ATTR_TYPE_INTS);
    slim_pb_message(node, NODE_ATTRIBUTE, &a);
    slim_pb_free(&a);
}

/* n copies of v (n <= 4). */
static void attr_ints(slim_pb_buf *node, const char *name, int n, int64_t v) {
    attr_list(node, name, n, (const int64_t[]){v, v, v, v});
}

/* Starts a node: inputs (NULL entries end the list), one output, name,
 * op_type. The caller adds attributes and finishes with node_end. */
static void node_begin(slim_pb_buf *node, const char *op, const char *name, const char *in0,
                       const char *in1, const char *in2, const char *out) {
    slim_pb_init(node);
    const char *ins[3] = {in0, in1, in2};
    for (int i = 0; i < 3 && ins[i]; i++)
        slim_pb_string(node, NODE_INPUT, ins[i]);
    slim_pb_string(node, NODE_OUTPUT, out);
    slim_pb_string(node, NODE_NAME, name);
    slim_pb_string(node, NODE_OP_TYPE, op);
}

static void node_end(slim_pb_buf *nodes, slim_pb_buf *node) {
    slim_pb_message(nodes, GRAPH_NODE, node);
    slim_pb_free(node);
}

/* A FLOAT initializer with raw little-endian data. */
static void initializer(slim_pb_buf *inits, const char *name, int ndim, const int64_t *dims,
                        const float *data, size_t numel) {
    slim_pb_buf t;
    slim_pb_init(&t);
    for (int d = 0; d < ndim; d++)
        slim_pb_int(&t, TENSOR_DIMS, dims[d]);
    slim_pb_int(&t, TENSOR_DATA_TYPE, DATA_TYPE_FLOAT);
    slim_pb_string(&t, TENSOR_NAME, name);
    slim_pb_floats_le(&t, TENSOR_RAW_DATA, data, numel);
    slim_pb_message(inits, GRAPH_INITIALIZER, &t);
    slim_pb_free(&t);
}

/* An initializer with the shape of slim parameter `prm` and the given data. */
static void param_initializer(slim_pb_buf *inits, const slim_param *prm, const char *name,
                              const float *data) {
    int64_t dims[SLIM_MAX_DIMS];
    for (int d = 0; d < prm->ndim; d++)
        dims[d] = prm->shape[d];
    initializer(inits, name, prm->ndim, dims, data, prm->numel);
}

/* A float tensor value_info: [N, d1, ...] with N symbolic. */
static void value_info(slim_pb_buf *g, int field, const char *name, int ndim, const int64_t *dims) {
    slim_pb_buf shape, ttype, type, vi;
    slim_pb_init(&shape);
    slim_pb_init(&ttype);
    slim_pb_init(&type);
    slim_pb_init(&vi);
    slim_pb_buf dim;
    slim_pb_init(&dim);
    slim_pb_string(&dim, DIM_PARAM, "N");
    slim_pb_message(&shape, SHAPE_DIM, &dim);
    for (int d = 0; d < ndim; d++) {
        slim_pb_free(&dim);
        slim_pb_int(&dim, DIM_VALUE, dims[d]);
        slim_pb_message(&shape, SHAPE_DIM, &dim);
    }
    slim_pb_free(&dim);
    slim_pb_int(&ttype, TTYPE_ELEM, DATA_TYPE_FLOAT);
    slim_pb_message(&ttype, TTYPE_SHAPE, &shape);
    slim_pb_message(&type, TYPE_TENSOR, &ttype);
    slim_pb_string(&vi, VALUE_NAME, name);
    slim_pb_message(&vi, VALUE_TYPE, &type);
    slim_pb_message(g, field, &vi);
    slim_pb_free(&shape);
    slim_pb_free(&ttype);
    slim_pb_free(&type);
    slim_pb_free(&vi);
}

/* ---- layers -------------------------------------------------------------- */

typedef struct graph {
    slim_pb_buf nodes; /* NodeProto fields, in execution order */
    slim_pb_buf inits; /* initializer fields */
    int have_ones;     /* ONES_TENSOR is emitted */
} graph;

/* (N, 1, 1, 1) ones, the input of every biasmap's Conv. Two dots: no layer's
 * tensor or initializer ("<layer>.<suffix>") can have this name. */
#define ONES_TENSOR "input.ones"

/* ONES_TENSOR := Conv(input) with zero weights over the whole image and bias
 * 1: exactly 1 for any finite input, and batched like the input. */
static slim_status emit_ones(const plan *p, graph *g) {
    const slim_layer *in = &p->m->layers[0];
    size_t numel = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    float *zeros = calloc(numel, sizeof *zeros);
    if (!zeros) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", p->path);
    slim_pb_buf node;
    node_begin(&node, "Conv", "input/ones", "input", ONES_TENSOR ".weight", ONES_TENSOR ".bias",
               ONES_TENSOR);
    attr_list(&node, "kernel_shape", 2, (const int64_t[]){in->h, in->w});
    node_end(&g->nodes, &node);
    initializer(&g->inits, ONES_TENSOR ".weight", 4, (const int64_t[]){1, in->c, in->h, in->w},
                zeros, numel);
    const float one = 1.0f;
    initializer(&g->inits, ONES_TENSOR ".bias", 1, (const int64_t[]){1}, &one, 1);
    free(zeros);
    g->have_ones = 1;
    return SLIM_OK;
}

/* The biasmap md (c, h, w) of conv l, batched: a Conv of ONES_TENSOR with the
 * map, flipped, as its (c, 1, h, w) kernel and pads h - 1, w - 1, whose
 * output (N, c, h, w) is the map for every image; then Add. (An Add of the
 * (1, c, h, w) map itself broadcasts over the batch, which OpenCV's dnn
 * refuses.) */
static slim_status emit_biasmap(const plan *p, graph *g, const slim_layer *l, const float *md,
                                const char *conv_out, const char *out) {
    if (!g->have_ones) SLIM_TRY(emit_ones(p, g));
    int64_t c = l->c, h = l->h, w = l->w;
    float *flip = malloc((size_t)(c * h * w) * sizeof *flip);
    if (!flip) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", p->path);
    for (int64_t j = 0; j < c; j++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                flip[(j * h + h - 1 - y) * w + w - 1 - x] = md[(j * h + y) * w + x];
    char mname[TNAME_MAX], mout[TNAME_MAX], nname[TNAME_MAX];
    snprintf(mname, sizeof mname, "%.31s.biasmap", l->name);
    snprintf(mout, sizeof mout, "%.31s.biasmap_out", l->name);
    snprintf(nname, sizeof nname, "%.31s/biasmap_conv", l->name);
    slim_pb_buf node;
    node_begin(&node, "Conv", nname, ONES_TENSOR, mname, NULL, mout);
    attr_list(&node, "kernel_shape", 2, (const int64_t[]){h, w});
    attr_list(&node, "pads", 4, (const int64_t[]){h - 1, w - 1, h - 1, w - 1});
    node_end(&g->nodes, &node);
    initializer(&g->inits, mname, 4, (const int64_t[]){c, 1, h, w}, flip, (size_t)(c * h * w));
    free(flip);
    snprintf(nname, sizeof nname, "%.31s/biasmap", l->name);
    node_begin(&node, "Add", nname, conv_out, mout, NULL, out);
    node_end(&g->nodes, &node);
    return SLIM_OK;
}

/* conv (with its folded bn, if any) -> Conv [-> Add biasmap]. */
static slim_status emit_conv(const plan *p, graph *g, int i) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    const slim_param *w = &m->params[l->p_weight];
    const slim_param *b = l->has_bias ? &m->params[l->p_bias] : NULL;
    const slim_param *bm = l->has_biasmap ? &m->params[l->p_biasmap] : NULL;
    int fold = p->bn_of[i];
    int out_layer = fold >= 0 ? fold : i;
    char wname[TNAME_MAX], bname[TNAME_MAX], conv_out[TNAME_MAX];
    snprintf(wname, sizeof wname, "%.31s.weight", l->name);
    snprintf(bname, sizeof bname, "%.31s.bias", l->name);
    snprintf(conv_out, sizeof conv_out, "%.31s.conv", l->name);
    int has_bias = b != NULL || fold >= 0;

    /* Without a fold, the parameters go out as they are. */
    const float *wd = w->data, *bd = b ? b->data : NULL, *md = bm ? bm->data : NULL;
    float *scratch = NULL;
    if (fold >= 0) {
        const slim_layer *bn = &m->layers[fold];
        const float *gamma = m->params[bn->p_gamma].data, *beta = m->params[bn->p_beta].data;
        size_t per_w = w->numel / (size_t)l->c, per_m = bm ? bm->numel / (size_t)l->c : 0;
        scratch = malloc((w->numel + (size_t)l->c + (bm ? bm->numel : 0)) * sizeof *scratch);
        if (!scratch)
            return slim_error(SLIM_ERR_NOMEM, "%s: out of memory folding bn '%s' into conv '%s'",
                              p->path, bn->name, l->name);
        float *fw = scratch, *fb = fw + w->numel, *fm = fb + l->c;
        for (int j = 0; j < l->c; j++) {
            /* s = gamma / sqrt(var + eps) in double: one rounding per value. */
            double s = (double)gamma[j] / sqrt((double)bn->running_var[j] + (double)bn->eps);
            for (size_t k = 0; k < per_w; k++)
                fw[(size_t)j * per_w + k] = (float)((double)w->data[(size_t)j * per_w + k] * s);
            double bias = b ? (double)b->data[j] : 0.0;
            fb[j] = (float)((bias - (double)bn->running_mean[j]) * s + (double)beta[j]);
            for (size_t k = 0; k < per_m; k++)
                fm[(size_t)j * per_m + k] = (float)((double)bm->data[(size_t)j * per_m + k] * s);
        }
        wd = fw;
        bd = fb;
        md = bm ? fm : NULL;
    }

    slim_pb_buf node;
    node_begin(&node, "Conv", l->name, p->tname[l->inputs[0]], wname, has_bias ? bname : NULL,
               bm ? conv_out : p->tname[out_layer]);
    if (fold >= 0) {
        char doc[96];
        snprintf(doc, sizeof doc, "bn '%s' folded in", m->layers[fold].name);
        slim_pb_string(&node, NODE_DOC, doc);
    }
    attr_ints(&node, "kernel_shape", 2, l->k);
    attr_ints(&node, "strides", 2, l->stride);
    attr_ints(&node, "pads", 4, l->pad);
    if (l->groups > 1) attr_int(&node, "group", l->groups);
    node_end(&g->nodes, &node);
    param_initializer(&g->inits, w, wname, wd);
    if (has_bias) {
        int64_t dim = l->c;
        initializer(&g->inits, bname, 1, &dim, bd, (size_t)l->c);
    }
    slim_status st = bm ? emit_biasmap(p, g, l, md, conv_out, p->tname[out_layer]) : SLIM_OK;
    free(scratch);
    return st;
}

static void emit_bn(const plan *p, graph *g, int i) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    char n[4][TNAME_MAX];
    snprintf(n[0], TNAME_MAX, "%.31s.gamma", l->name);
    snprintf(n[1], TNAME_MAX, "%.31s.beta", l->name);
    snprintf(n[2], TNAME_MAX, "%.31s.running_mean", l->name);
    snprintf(n[3], TNAME_MAX, "%.31s.running_var", l->name);
    slim_pb_buf node;
    slim_pb_init(&node);
    slim_pb_string(&node, NODE_INPUT, p->tname[l->inputs[0]]);
    for (int k = 0; k < 4; k++)
        slim_pb_string(&node, NODE_INPUT, n[k]);
    slim_pb_string(&node, NODE_OUTPUT, p->tname[i]);
    slim_pb_string(&node, NODE_NAME, l->name);
    slim_pb_string(&node, NODE_OP_TYPE, "BatchNormalization");
    attr_float(&node, "epsilon", l->eps);
    /* ONNX weights the old running value by momentum; slim the new one. */
    attr_float(&node, "momentum", 1.0f - l->momentum);
    node_end(&g->nodes, &node);
    const float *data[4] = {m->params[l->p_gamma].data, m->params[l->p_beta].data, l->running_mean,
                            l->running_var};
    int64_t dim = l->c;
    for (int k = 0; k < 4; k++)
        initializer(&g->inits, n[k], 1, &dim, data[k], (size_t)l->c);
}

static void emit_pool(const plan *p, graph *g, int i, const char *op) {
    const slim_layer *l = &p->m->layers[i];
    slim_pb_buf node;
    node_begin(&node, op, l->name, p->tname[l->inputs[0]], NULL, NULL, p->tname[i]);
    attr_ints(&node, "kernel_shape", 2, l->k);
    attr_ints(&node, "strides", 2, l->stride);
    attr_ints(&node, "pads", 4, l->pad);
    if (l->kind == SLIM_LAYER_AVGPOOL) attr_int(&node, "count_include_pad", 0);
    node_end(&g->nodes, &node);
}

static void emit_flatten(graph *g, const char *node_name, const char *in, const char *out) {
    slim_pb_buf node;
    node_begin(&node, "Flatten", node_name, in, NULL, NULL, out);
    attr_int(&node, "axis", 1);
    node_end(&g->nodes, &node);
}

static void emit_dense(const plan *p, graph *g, int i) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    const char *in = p->tname[l->inputs[0]];
    char flat[TNAME_MAX], wname[TNAME_MAX], bname[TNAME_MAX], nname[TNAME_MAX];
    if (p->rank[l->inputs[0]] == 4) { /* (N, C, 1, 1): Gemm needs (N, C) */
        snprintf(flat, sizeof flat, "%.31s.flat", l->name);
        snprintf(nname, sizeof nname, "%.31s/flatten", l->name);
        emit_flatten(g, nname, in, flat);
        in = flat;
    }
    snprintf(wname, sizeof wname, "%.31s.weight", l->name);
    snprintf(bname, sizeof bname, "%.31s.bias", l->name);
    slim_pb_buf node;
    node_begin(&node, "Gemm", l->name, in, wname, l->has_bias ? bname : NULL, p->tname[i]);
    attr_int(&node, "transB", 1);
    node_end(&g->nodes, &node);
    const slim_param *w = &m->params[l->p_weight];
    param_initializer(&g->inits, w, wname, w->data);
    if (l->has_bias) {
        const slim_param *b = &m->params[l->p_bias];
        param_initializer(&g->inits, b, bname, b->data);
    }
}

/* concat -> Concat(axis 1) of all its inputs, in order (repeats allowed). */
static void emit_concat(const plan *p, graph *g, int i) {
    const slim_layer *l = &p->m->layers[i];
    slim_pb_buf node;
    slim_pb_init(&node);
    for (int j = 0; j < l->n_inputs; j++)
        slim_pb_string(&node, NODE_INPUT, p->tname[l->inputs[j]]);
    slim_pb_string(&node, NODE_OUTPUT, p->tname[i]);
    slim_pb_string(&node, NODE_NAME, l->name);
    slim_pb_string(&node, NODE_OP_TYPE, "Concat");
    attr_int(&node, "axis", 1);
    node_end(&g->nodes, &node);
}

/* relu6 -> min(relu(x), 6) as 6 - Relu(6 - Relu(x)) with the scalar
 * initializer "<relu6>.six": OpenCV's dnn takes Clip only with attribute
 * bounds (opset < 11), and neither Min nor Clip with input bounds. The
 * result is exact for relu(x) >= 6 and within half an ulp of 6 below. */
static void emit_relu6(const plan *p, graph *g, int i) {
    const slim_layer *l = &p->m->layers[i];
    char six[TNAME_MAX], t[3][TNAME_MAX], n[3][TNAME_MAX];
    const char *suffix[3] = {"relu", "headroom", "headroom_relu"};
    snprintf(six, sizeof six, "%.31s.six", l->name);
    for (int k = 0; k < 3; k++) {
        snprintf(t[k], TNAME_MAX, "%.31s.%s", l->name, suffix[k]);
        snprintf(n[k], TNAME_MAX, "%.31s/%s", l->name, suffix[k]);
    }
    slim_pb_buf node;
    node_begin(&node, "Relu", n[0], p->tname[l->inputs[0]], NULL, NULL, t[0]);
    node_end(&g->nodes, &node);
    node_begin(&node, "Sub", n[1], six, t[0], NULL, t[1]);
    node_end(&g->nodes, &node);
    node_begin(&node, "Relu", n[2], t[1], NULL, NULL, t[2]);
    node_end(&g->nodes, &node);
    node_begin(&node, "Sub", l->name, six, t[2], NULL, p->tname[i]);
    node_end(&g->nodes, &node);
    const float value = 6.0f;
    initializer(&g->inits, six, 0, NULL, &value, 1);
}

static slim_status emit_layer(const plan *p, graph *g, int i) {
    const slim_layer *l = &p->m->layers[i];
    const char *in = l->n_inputs > 0 ? p->tname[l->inputs[0]] : NULL;
    slim_pb_buf node;
    switch (l->kind) {
    case SLIM_LAYER_INPUT: return SLIM_OK;
    case SLIM_LAYER_CONV: return emit_conv(p, g, i);
    case SLIM_LAYER_BN:
        if (p->conv_of[i] < 0) emit_bn(p, g, i); /* else emitted with its conv */
        return SLIM_OK;
    case SLIM_LAYER_RELU:
        node_begin(&node, "Relu", l->name, in, NULL, NULL, p->tname[i]);
        node_end(&g->nodes, &node);
        return SLIM_OK;
    case SLIM_LAYER_MAXPOOL: emit_pool(p, g, i, "MaxPool"); return SLIM_OK;
    case SLIM_LAYER_AVGPOOL: emit_pool(p, g, i, "AveragePool"); return SLIM_OK;
    case SLIM_LAYER_GAP: {
        char pooled[TNAME_MAX], nname[TNAME_MAX];
        snprintf(pooled, sizeof pooled, "%.31s.gap", l->name);
        snprintf(nname, sizeof nname, "%.31s/flatten", l->name);
        node_begin(&node, "GlobalAveragePool", l->name, in, NULL, NULL, pooled);
        node_end(&g->nodes, &node);
        emit_flatten(g, nname, pooled, p->tname[i]);
        return SLIM_OK;
    }
    case SLIM_LAYER_FLATTEN: emit_flatten(g, l->name, in, p->tname[i]); return SLIM_OK;
    case SLIM_LAYER_DENSE: emit_dense(p, g, i); return SLIM_OK;
    case SLIM_LAYER_ADD:
        node_begin(&node, "Add", l->name, in, p->tname[l->inputs[1]], NULL, p->tname[i]);
        node_end(&g->nodes, &node);
        return SLIM_OK;
    case SLIM_LAYER_CONCAT: emit_concat(p, g, i); return SLIM_OK;
    case SLIM_LAYER_RELU6: emit_relu6(p, g, i); return SLIM_OK;
    default: return layer_fail(p, i, SLIM_ERR_ARG, "this layer kind has no ONNX mapping");
    }
}

/* The graph's name: the model file's base name without its extension. */
static void graph_name(const slim_model *m, char *out, size_t len) {
    const char *s = m->source;
    const char *slash = strrchr(s, '/');
    if (slash) s = slash + 1;
    if (!*s || *s == '<') s = "slim";
    snprintf(out, len, "%s", s);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

/* ---- writing ------------------------------------------------------------- */

typedef struct part {
    const uint8_t *data;
    size_t len;
} part;

/* Writes the parts to a temporary file next to path, then renames it over
 * path; on any failure the temporary file is removed. */
static slim_status write_atomic(const char *path, const part *parts, int n_parts) {
    slim_atomic_file af;
    SLIM_TRY(slim_atomic_open(path, &af));
    int err = 0;
    for (int i = 0; i < n_parts && !err; i++)
        if (parts[i].len && fwrite(parts[i].data, 1, parts[i].len, af.f) != parts[i].len)
            err = errno ? errno : EIO;
    return slim_atomic_commit(&af, err);
}

/* ModelProto.metadata_props: one StringStringEntryProto per pair. */
static void metadata_props(slim_pb_buf *b, const char *const *keys, const char *const *values,
                           int n) {
    for (int i = 0; i < n; i++) {
        slim_pb_buf entry;
        slim_pb_init(&entry);
        slim_pb_string(&entry, ENTRY_KEY, keys[i]);
        slim_pb_string(&entry, ENTRY_VALUE, values[i]);
        slim_pb_message(b, MODEL_METADATA_PROPS, &entry);
        slim_pb_free(&entry);
    }
}

slim_status slim_onnx_write(const slim_model *model, const char *path,
                            const char *producer_version) {
    return slim_onnx_write_ex(model, path, producer_version, NULL, NULL, 0);
}

slim_status slim_onnx_write_ex(const slim_model *model, const char *path,
                               const char *producer_version, const char *const *keys,
                               const char *const *values, int n_props) {
    if (!path || !*path) return slim_error(SLIM_ERR_ARG, "onnx: write: no path given");
    if (!model || !model->layers || model->n_layers < 1)
        return slim_error(SLIM_ERR_ARG, "%s: onnx: no model given", path);
    if (n_props < 0 || (n_props > 0 && (!keys || !values)))
        return slim_error(SLIM_ERR_ARG, "%s: onnx: metadata: %d pairs without keys or values", path,
                          n_props);
    for (int i = 0; i < n_props; i++)
        if (!keys[i] || !*keys[i] || !values[i])
            return slim_error(SLIM_ERR_ARG, "%s: onnx: metadata pair %d has no key or value", path,
                              i);
    plan p = {.m = model, .path = path};
    graph g = {.have_ones = 0};
    slim_pb_init(&g.nodes);
    slim_pb_init(&g.inits);
    slim_pb_buf head, tail, opset;
    slim_pb_init(&head);
    slim_pb_init(&tail);
    slim_pb_init(&opset);
    slim_status st = make_plan(&p);
    for (int i = 0; i < model->n_layers && st == SLIM_OK; i++)
        st = emit_layer(&p, &g, i);
    if (st != SLIM_OK) goto done;

    int last = model->n_layers - 1;
    if (p.final_flatten) {
        char nname[TNAME_MAX];
        snprintf(nname, sizeof nname, "%.31s/flatten", model->layers[last].name);
        emit_flatten(&g, nname, p.tname[last], "logits");
    }
    /* Graph fields after the nodes (name; then, after the initializers, doc,
     * input, output), so that the whole graph is nodes + tail-parts. */
    char gname[256];
    graph_name(model, gname, sizeof gname);
    slim_pb_string(&g.nodes, GRAPH_NAME, gname);
    if (model->text) slim_pb_string(&tail, GRAPH_DOC, model->text);
    const slim_layer *in = &model->layers[0];
    value_info(&tail, GRAPH_INPUT, "input", 3, (int64_t[]){in->c, in->h, in->w});
    value_info(&tail, GRAPH_OUTPUT, "logits", 1,
               (int64_t[]){(int64_t)model->layers[last].c * model->layers[last].h *
                           model->layers[last].w});

    slim_pb_int(&head, MODEL_IR_VERSION, SLIM_ONNX_IR_VERSION);
    slim_pb_string(&head, MODEL_PRODUCER_NAME, "slim");
    if (producer_version) slim_pb_string(&head, MODEL_PRODUCER_VERSION, producer_version);
    slim_pb_string(&opset, OPSET_DOMAIN, "");
    slim_pb_int(&opset, OPSET_VERSION, SLIM_ONNX_OPSET);
    slim_pb_buf opset_field;
    slim_pb_init(&opset_field);
    slim_pb_message(&opset_field, MODEL_OPSET_IMPORT, &opset);
    slim_pb_free(&opset);
    opset = opset_field;
    metadata_props(&opset, keys, values, n_props);
    if (g.nodes.failed || g.inits.failed || tail.failed || head.failed || opset.failed) {
        st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory encoding the ONNX graph", path);
        goto done;
    }
    uint8_t ghdr[20];
    size_t ghdr_len = slim_pb_len_header(MODEL_GRAPH, g.nodes.len + g.inits.len + tail.len, ghdr);
    part parts[] = {{head.data, head.len},       {ghdr, ghdr_len},      {g.nodes.data, g.nodes.len},
                    {g.inits.data, g.inits.len}, {tail.data, tail.len}, {opset.data, opset.len}};
    st = write_atomic(path, parts, (int)(sizeof parts / sizeof parts[0]));
done:
    slim_pb_free(&g.nodes);
    slim_pb_free(&g.inits);
    slim_pb_free(&head);
    slim_pb_free(&tail);
    slim_pb_free(&opset);
    plan_free(&p);
    return st;
}
