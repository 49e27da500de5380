/* Tests of the ONNX exporter (include/slim/onnx.h).
 *
 * The written file is decoded back with a protobuf decoder written here from
 * the wire-format specification (varint, fixed64, length-delimited, fixed32),
 * independent of the writer in src/io/pb.c, and the ONNX messages are read
 * with the field numbers of onnx/onnx.proto, duplicated on purpose. The
 * decoded graph is then run by a small evaluator (naive loops, ONNX operator
 * semantics) and compared with slim_model_forward in inference mode on the
 * reference backend: that shows the file computes what slim computes.
 *
 * Tolerances: the folded conv weights W*gamma/sqrt(var+eps) are compared
 * with the same product computed here in double, within 1e-6 relative (one
 * float rounding is 6e-8). The logits of the evaluator and of slim differ by
 * float summation order and by BN folding (which reassociates
 * (W*x - mean)*s into (W*s)*x - mean*s); for these small nets that is a few
 * 1e-7 relative, so max |delta| <= 1e-4 * max |logit| leaves a wide margin
 * while still catching any wrong weight, layout or attribute.
 *
 * With SLIM_ONNX_OUT=<dir> set, every model of the numeric tests is also
 * written there as <tag>.onnx with <tag>.input.bin and <tag>.logits.bin
 * (raw little-endian float32) for tools/onnx_check.py (tests/cli/onnx_check.sh). */
#include "testutil.h"

#include "slim/nn.h"
#include "slim/onnx.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOGIT_TOL 1e-4
#define FOLD_TOL 1e-6

/* ---- a protobuf decoder ------------------------------------------------- */

typedef struct pbr {
    const uint8_t *p, *end;
} pbr;

typedef struct pbf {
    int num, wire;
    uint64_t v;          /* varint, fixed32 and fixed64 values */
    const uint8_t *data; /* length-delimited payload */
    size_t len;
} pbf;

static uint64_t rd_varint(pbr *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(r->p < r->end);
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    fail_msg("varint longer than 10 bytes");
    return 0;
}

static uint64_t rd_le(pbr *r, int n) {
    assert_true(r->end - r->p >= n);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

/* Reads the next field; 0 at the end of the message. */
static int pb_next(pbr *r, pbf *f) {
    if (r->p == r->end) return 0;
    uint64_t tag = rd_varint(r);
    f->num = (int)(tag >> 3);
    f->wire = (int)(tag & 7);
    assert_true(f->num > 0);
    switch (f->wire) {
    case 0: f->v = rd_varint(r); break;
    case 1: f->v = rd_le(r, 8); break;
    case 5: f->v = rd_le(r, 4); break;
    case 2:
        f->len = rd_varint(r);
        assert_true(f->len <= (size_t)(r->end - r->p));
        f->data = r->p;
        r->p += f->len;
        break;
    default: fail_msg("wire type %d", f->wire);
    }
    return 1;
}

static pbr sub(const pbf *f) {
    assert_int_equal(f->wire, 2);
    return (pbr){f->data, f->data + f->len};
}

static void str_copy(char *dst, size_t cap, const pbf *f) {
    assert_int_equal(f->wire, 2);
    assert_true(f->len < cap);
    memcpy(dst, f->data, f->len);
    dst[f->len] = '\0';
}

static int64_t int_of(const pbf *f) {
    assert_int_equal(f->wire, 0);
    return (int64_t)f->v;
}

static float float_of(const pbf *f) {
    assert_int_equal(f->wire, 5);
    uint32_t u = (uint32_t)f->v;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- the decoded ONNX model --------------------------------------------- */

#define NAME 96
#define MAX_NODES 128
#define MAX_INITS 160
#define MAX_NODE_INPUTS 17 /* a Concat of SLIM_LAYER_MAX_INPUTS, and one more to catch excess */

typedef struct dattr {
    char name[NAME];
    int type;
    int64_t i;
    float f;
    int64_t ints[8];
    int n_ints;
} dattr;

typedef struct dnode {
    char op[32], name[NAME], in[MAX_NODE_INPUTS][NAME], out[NAME];
    int n_in, n_out;
    dattr attr[6];
    int n_attr;
} dnode;

typedef struct dtensor {
    char name[NAME];
    int64_t dims[4];
    int ndim, dtype;
    const uint8_t *raw;
    size_t raw_len;
} dtensor;

typedef struct dvalue {
    char name[NAME];
    int elem, ndim;
    int64_t dims[5];
    char param[5][8]; /* dim_param, "" when the dim has a value */
} dvalue;

typedef struct dmodel {
    uint8_t *file;
    size_t file_len;
    int64_t ir_version;
    char producer[32], producer_version[32];
    int n_opset;
    char opset_domain[4][16];
    int64_t opset_version[4];
    char graph_name[NAME];
    const uint8_t *doc; /* graph doc_string (the model text) */
    size_t doc_len;
    dnode nodes[MAX_NODES];
    int n_nodes;
    dtensor inits[MAX_INITS];
    int n_inits;
    dvalue inputs[2], outputs[2];
    int n_inputs, n_outputs;
} dmodel;

static void decode_attr(pbr r, dattr *a) {
    pbf f;
    while (pb_next(&r, &f)) {
        if (f.num == 1)
            str_copy(a->name, sizeof a->name, &f);
        else if (f.num == 20)
            a->type = (int)int_of(&f);
        else if (f.num == 3)
            a->i = int_of(&f);
        else if (f.num == 2)
            a->f = float_of(&f);
        else if (f.num == 8) {
            if (f.wire == 2) { /* packed: also legal */
                pbr q = sub(&f);
                while (q.p < q.end) {
                    assert_true(a->n_ints < 8);
                    a->ints[a->n_ints++] = (int64_t)rd_varint(&q);
                }
            } else {
                assert_true(a->n_ints < 8);
                a->ints[a->n_ints++] = int_of(&f);
            }
        }
    }
}

static void decode_node(pbr r, dnode *n) {
    pbf f;
    while (pb_next(&r, &f)) {
        if (f.num == 1) {
            assert_true(n->n_in < MAX_NODE_INPUTS);
            str_copy(n->in[n->n_in++], NAME, &f);
        } else if (f.num == 2) {
            n->n_out++;
            str_copy(n->out, NAME, &f);
        } else if (f.num == 3)
            str_copy(n->name, NAME, &f);
        else if (f.num == 4)
            str_copy(n->op, sizeof n->op, &f);
        else if (f.num == 5) {
            assert_true(n->n_attr < 6);
            decode_attr(sub(&f), &n->attr[n->n_attr++]);
        }
    }
}

static void decode_tensor(pbr r, dtensor *t) {
    pbf f;
    while (pb_next(&r, &f)) {
        if (f.num == 1) {
            assert_true(t->ndim < 4);
            t->dims[t->ndim++] = int_of(&f);
        } else if (f.num == 2)
            t->dtype = (int)int_of(&f);
        else if (f.num == 8)
            str_copy(t->name, NAME, &f);
        else if (f.num == 9) {
            assert_int_equal(f.wire, 2);
            t->raw = f.data;
            t->raw_len = f.len;
        }
    }
}

/* ValueInfoProto{name 1, type 2: TypeProto{tensor_type 1: {elem_type 1,
 * shape 2: TensorShapeProto{dim 1: {dim_value 1, dim_param 2}}}}} */
static void decode_value(pbr r, dvalue *v) {
    pbf f, g, h, d, e;
    while (pb_next(&r, &f)) {
        if (f.num == 1) str_copy(v->name, NAME, &f);
        if (f.num != 2) continue;
        pbr type = sub(&f);
        while (pb_next(&type, &g)) {
            if (g.num != 1) continue;
            pbr tt = sub(&g);
            while (pb_next(&tt, &h)) {
                if (h.num == 1) v->elem = (int)int_of(&h);
                if (h.num != 2) continue;
                pbr shape = sub(&h);
                while (pb_next(&shape, &d)) {
                    assert_int_equal(d.num, 1);
                    assert_true(v->ndim < 5);
                    int k = v->ndim++;
                    pbr dim = sub(&d);
                    while (pb_next(&dim, &e)) {
                        if (e.num == 1) v->dims[k] = int_of(&e);
                        if (e.num == 2) str_copy(v->param[k], sizeof v->param[k], &e);
                    }
                }
            }
        }
    }
}

static void decode_graph(pbr r, dmodel *m) {
    pbf f;
    while (pb_next(&r, &f)) {
        switch (f.num) {
        case 1:
            assert_true(m->n_nodes < MAX_NODES);
            decode_node(sub(&f), &m->nodes[m->n_nodes++]);
            break;
        case 2: str_copy(m->graph_name, NAME, &f); break;
        case 10:
            assert_int_equal(f.wire, 2);
            m->doc = f.data;
            m->doc_len = f.len;
            break;
        case 5:
            assert_true(m->n_inits < MAX_INITS);
            decode_tensor(sub(&f), &m->inits[m->n_inits++]);
            break;
        case 11:
            assert_true(m->n_inputs < 2);
            decode_value(sub(&f), &m->inputs[m->n_inputs++]);
            break;
        case 12:
            assert_true(m->n_outputs < 2);
            decode_value(sub(&f), &m->outputs[m->n_outputs++]);
            break;
        default: break;
        }
    }
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    /* exactly n bytes, so that ASan catches any read past the end */
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static dmodel *decode_file(const char *path) {
    dmodel *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->file = read_all(path, &m->file_len);
    pbr r = {m->file, m->file + m->file_len};
    pbf f;
    int graphs = 0;
    while (pb_next(&r, &f)) {
        if (f.num == 1)
            m->ir_version = int_of(&f);
        else if (f.num == 2)
            str_copy(m->producer, sizeof m->producer, &f);
        else if (f.num == 3)
            str_copy(m->producer_version, sizeof m->producer_version, &f);
        else if (f.num == 7) {
            graphs++;
            decode_graph(sub(&f), m);
        } else if (f.num == 8) {
            assert_true(m->n_opset < 4);
            int k = m->n_opset++;
            pbr o = sub(&f);
            pbf g;
            while (pb_next(&o, &g)) {
                if (g.num == 1) str_copy(m->opset_domain[k], sizeof m->opset_domain[k], &g);
                if (g.num == 2) m->opset_version[k] = int_of(&g);
            }
        }
    }
    assert_int_equal(graphs, 1);
    return m;
}

static void dmodel_free(dmodel *m) {
    free(m->file);
    free(m);
}

static const dtensor *find_init(const dmodel *m, const char *name) {
    for (int i = 0; i < m->n_inits; i++)
        if (strcmp(m->inits[i].name, name) == 0) return &m->inits[i];
    return NULL;
}

static float le_float(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* An initializer's values (malloc'd), after checking it is FLOAT with raw
 * data of the size its dims say. */
static float *init_values(const dtensor *t) {
    assert_int_equal(t->dtype, 1);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->dims[d];
    assert_int_equal(t->raw_len, 4 * n);
    float *x = malloc(n * sizeof *x + 1);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = le_float(t->raw + 4 * i);
    return x;
}

static const dattr *find_attr(const dnode *n, const char *name) {
    for (int i = 0; i < n->n_attr; i++)
        if (strcmp(n->attr[i].name, name) == 0) return &n->attr[i];
    return NULL;
}

/* ints attribute into out[n]; fills `dflt` when absent. */
static void attr_ints(const dnode *n, const char *name, int count, int64_t dflt, int64_t *out) {
    const dattr *a = find_attr(n, name);
    for (int i = 0; i < count; i++)
        out[i] = dflt;
    if (!a) return;
    assert_int_equal(a->type, 7);
    assert_int_equal(a->n_ints, count);
    memcpy(out, a->ints, (size_t)count * sizeof *out);
}

static int64_t attr_int(const dnode *n, const char *name, int64_t dflt) {
    const dattr *a = find_attr(n, name);
    if (!a) return dflt;
    assert_int_equal(a->type, 2);
    return a->i;
}

static float attr_float(const dnode *n, const char *name, float dflt) {
    const dattr *a = find_attr(n, name);
    if (!a) return dflt;
    assert_int_equal(a->type, 1);
    return a->f;
}

/* ---- an evaluator for the decoded graph --------------------------------- */

typedef struct etensor {
    char name[NAME];
    int ndim;
    int64_t shape[4];
    float *data;
} etensor;

typedef struct env {
    etensor t[2 * MAX_NODES + MAX_INITS + 1];
    int n;
} env;

static int64_t numel(const etensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

static etensor *env_get(env *e, const char *name) {
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->t[i].name, name) == 0) return &e->t[i];
    fail_msg("tensor '%s' is used before it is defined", name);
    return NULL;
}

static etensor *env_new(env *e, const char *name, int ndim, const int64_t *shape) {
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->t[i].name, name) == 0) fail_msg("tensor '%s' defined twice", name);
    assert_true(e->n < (int)(sizeof e->t / sizeof e->t[0]));
    etensor *t = &e->t[e->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = calloc((size_t)numel(t) + 1, sizeof *t->data);
    assert_non_null(t->data);
    return t;
}

static void env_free(env *e) {
    for (int i = 0; i < e->n; i++)
        free(e->t[i].data);
}

/* Conv (dilation 1; group G: output m reads the input channels of its group
 * m / (M/G), C/G of them) and pooling share the window walk. kind: 0 conv,
 * 1 max pool, 2 average pool (count_include_pad from the node). */
static void eval_window(env *e, const dnode *n, int kind) {
    etensor *x = env_get(e, n->in[0]);
    assert_int_equal(x->ndim, 4);
    int64_t k[2], s[2], pads[4];
    etensor *w = kind == 0 ? env_get(e, n->in[1]) : NULL;
    etensor *b = kind == 0 && n->n_in > 2 ? env_get(e, n->in[2]) : NULL;
    attr_ints(n, "kernel_shape", 2, 0, k);
    int64_t groups = w ? attr_int(n, "group", 1) : 1;
    if (w) {
        int64_t dil[2];
        attr_ints(n, "dilations", 2, 1, dil);
        assert_true(dil[0] == 1 && dil[1] == 1);
        assert_true(groups >= 1 && x->shape[1] % groups == 0 && w->shape[0] % groups == 0);
        assert_true(w->ndim == 4 && w->shape[1] * groups == x->shape[1]);
        if (k[0] == 0) k[0] = w->shape[2], k[1] = w->shape[3];
        assert_true(k[0] == w->shape[2] && k[1] == w->shape[3]);
    }
    assert_true(k[0] > 0 && k[1] > 0);
    attr_ints(n, "strides", 2, 1, s);
    attr_ints(n, "pads", 4, 0, pads);
    int include_pad = (int)attr_int(n, "count_include_pad", 0);
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t M = w ? w->shape[0] : C;
    int64_t oh = (H + pads[0] + pads[2] - k[0]) / s[0] + 1;
    int64_t ow = (W + pads[1] + pads[3] - k[1]) / s[1] + 1;
    etensor *y = env_new(e, n->out, 4, (int64_t[]){N, M, oh, ow});
    for (int64_t i = 0; i < N; i++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double acc = kind == 1 ? -INFINITY : 0;
                    int count = 0;
                    for (int64_t ky = 0; ky < k[0]; ky++)
                        for (int64_t kx = 0; kx < k[1]; kx++) {
                            int64_t iy = oy * s[0] - pads[0] + ky, ix = ox * s[1] - pads[1] + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                                count += include_pad;
                                continue;
                            }
                            count++;
                            if (kind == 0) {
                                int64_t cg = C / groups, c0 = m / (M / groups) * cg;
                                for (int64_t c = 0; c < cg; c++)
                                    acc += (double)x->data[((i * C + c0 + c) * H + iy) * W + ix] *
                                           w->data[((m * cg + c) * k[0] + ky) * k[1] + kx];
                            } else {
                                double v = x->data[((i * C + m) * H + iy) * W + ix];
                                acc = kind == 1 ? fmax(acc, v) : acc + v;
                            }
                        }
                    if (kind == 0 && b) acc += b->data[m];
                    if (kind == 2) acc /= count;
                    y->data[((i * M + m) * oh + oy) * ow + ox] = (float)acc;
                }
}

static void eval_node(env *e, const dnode *n) {
    assert_int_equal(n->n_out, 1);
    if (strcmp(n->op, "Conv") == 0) return eval_window(e, n, 0);
    if (strcmp(n->op, "MaxPool") == 0) return eval_window(e, n, 1);
    if (strcmp(n->op, "AveragePool") == 0) return eval_window(e, n, 2);
    etensor *x = env_get(e, n->in[0]);
    if (strcmp(n->op, "Relu") == 0) {
        etensor *y = env_new(e, n->out, x->ndim, x->shape);
        for (int64_t i = 0; i < numel(x); i++)
            y->data[i] = x->data[i] > 0 ? x->data[i] : 0;
    } else if (strcmp(n->op, "GlobalAveragePool") == 0) {
        assert_int_equal(x->ndim, 4);
        int64_t nc = x->shape[0] * x->shape[1], hw = x->shape[2] * x->shape[3];
        etensor *y = env_new(e, n->out, 4, (int64_t[]){x->shape[0], x->shape[1], 1, 1});
        for (int64_t i = 0; i < nc; i++) {
            double acc = 0;
            for (int64_t j = 0; j < hw; j++)
                acc += x->data[i * hw + j];
            y->data[i] = (float)(acc / hw);
        }
    } else if (strcmp(n->op, "Flatten") == 0) {
        assert_int_equal(attr_int(n, "axis", 1), 1);
        etensor *y = env_new(e, n->out, 2, (int64_t[]){x->shape[0], numel(x) / x->shape[0]});
        memcpy(y->data, x->data, (size_t)numel(x) * sizeof *x->data);
    } else if (strcmp(n->op, "Gemm") == 0) {
        etensor *w = env_get(e, n->in[1]), *c = n->n_in > 2 ? env_get(e, n->in[2]) : NULL;
        assert_int_equal(attr_int(n, "transA", 0), 0);
        assert_int_equal(attr_int(n, "transB", 0), 1);
        float alpha = attr_float(n, "alpha", 1), beta = attr_float(n, "beta", 1);
        assert_true(x->ndim == 2 && w->ndim == 2 && w->shape[1] == x->shape[1]);
        int64_t N = x->shape[0], K = x->shape[1], M = w->shape[0];
        if (c) assert_true(c->ndim == 1 && c->shape[0] == M);
        etensor *y = env_new(e, n->out, 2, (int64_t[]){N, M});
        for (int64_t i = 0; i < N; i++)
            for (int64_t m = 0; m < M; m++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)x->data[i * K + k] * w->data[m * K + k];
                y->data[i * M + m] = (float)(alpha * acc + (c ? beta * c->data[m] : 0));
            }
    } else if (strcmp(n->op, "Add") == 0) {
        /* numpy broadcasting of b onto a's shape (b's dims equal or 1) */
        etensor *b = env_get(e, n->in[1]);
        assert_true(b->ndim <= x->ndim);
        int64_t bs[4] = {1, 1, 1, 1}, as[4] = {1, 1, 1, 1};
        for (int d = 0; d < x->ndim; d++)
            as[4 - x->ndim + d] = x->shape[d];
        for (int d = 0; d < b->ndim; d++)
            bs[4 - b->ndim + d] = b->shape[d];
        for (int d = 0; d < 4; d++)
            assert_true(bs[d] == as[d] || bs[d] == 1);
        etensor *y = env_new(e, n->out, x->ndim, x->shape);
        int64_t i = 0;
        for (int64_t a0 = 0; a0 < as[0]; a0++)
            for (int64_t a1 = 0; a1 < as[1]; a1++)
                for (int64_t a2 = 0; a2 < as[2]; a2++)
                    for (int64_t a3 = 0; a3 < as[3]; a3++, i++) {
                        int64_t j = (((bs[0] > 1 ? a0 : 0) * bs[1] + (bs[1] > 1 ? a1 : 0)) * bs[2] +
                                     (bs[2] > 1 ? a2 : 0)) *
                                        bs[3] +
                                    (bs[3] > 1 ? a3 : 0);
                        y->data[i] = x->data[i] + b->data[j];
                    }
    } else if (strcmp(n->op, "Sub") == 0) {
        /* a scalar minus a tensor (relu6), or tensors of one shape */
        etensor *b = env_get(e, n->in[1]);
        assert_true(x->ndim == 0 || (x->ndim == b->ndim && numel(x) == numel(b)));
        etensor *y = env_new(e, n->out, b->ndim, b->shape);
        for (int64_t i = 0; i < numel(b); i++)
            y->data[i] = x->data[x->ndim ? i : 0] - b->data[i];
    } else if (strcmp(n->op, "Concat") == 0) {
        assert_int_equal(attr_int(n, "axis", 0), 1);
        assert_true(x->ndim == 2 || x->ndim == 4);
        etensor *parts[MAX_NODE_INPUTS];
        int64_t c = 0, N = x->shape[0], hw = numel(x) / (N * x->shape[1]);
        for (int j = 0; j < n->n_in; j++) {
            parts[j] = env_get(e, n->in[j]);
            assert_int_equal(parts[j]->ndim, x->ndim);
            assert_true(parts[j]->shape[0] == N);
            for (int d = 2; d < x->ndim; d++)
                assert_true(parts[j]->shape[d] == x->shape[d]);
            c += parts[j]->shape[1];
        }
        int64_t shape[4] = {N, c, x->ndim == 4 ? x->shape[2] : 1, x->ndim == 4 ? x->shape[3] : 1};
        etensor *y = env_new(e, n->out, x->ndim, shape);
        float *out = y->data;
        for (int64_t i = 0; i < N; i++)
            for (int j = 0; j < n->n_in; j++) {
                int64_t block = parts[j]->shape[1] * hw;
                memcpy(out, parts[j]->data + i * block, (size_t)block * sizeof *out);
                out += block;
            }
    } else if (strcmp(n->op, "BatchNormalization") == 0) {
        assert_int_equal(n->n_in, 5);
        etensor *g = env_get(e, n->in[1]), *b = env_get(e, n->in[2]);
        etensor *mean = env_get(e, n->in[3]), *var = env_get(e, n->in[4]);
        double eps = attr_float(n, "epsilon", 1e-5f);
        int64_t N = x->shape[0], C = x->shape[1], hw = numel(x) / (N * C);
        etensor *y = env_new(e, n->out, x->ndim, x->shape);
        for (int64_t i = 0; i < N * C; i++) {
            int64_t c = i % C;
            double s = g->data[c] / sqrt((double)var->data[c] + eps);
            for (int64_t j = 0; j < hw; j++)
                y->data[i * hw + j] =
                    (float)((x->data[i * hw + j] - (double)mean->data[c]) * s + b->data[c]);
        }
    } else {
        fail_msg("the evaluator does not know op '%s'", n->op);
    }
}

/* Runs the decoded graph on x (n, c, h, w); returns the "logits" output
 * (malloc'd, n * classes). */
static float *eval_model(const dmodel *m, const float *x, int n, int c, int h, int w, int classes) {
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    for (int i = 0; i < m->n_inits; i++) {
        const dtensor *t = &m->inits[i];
        etensor *v = env_new(e, t->name, t->ndim, t->dims);
        float *vals = init_values(t);
        memcpy(v->data, vals, (size_t)numel(v) * sizeof *vals);
        free(vals);
    }
    etensor *in = env_new(e, "input", 4, (int64_t[]){n, c, h, w});
    memcpy(in->data, x, (size_t)numel(in) * sizeof *x);
    for (int i = 0; i < m->n_nodes; i++)
        eval_node(e, &m->nodes[i]);
    etensor *y = env_get(e, "logits");
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], n);
    assert_int_equal(y->shape[1], classes);
    float *out = malloc((size_t)n * (size_t)classes * sizeof *out);
    assert_non_null(out);
    memcpy(out, y->data, (size_t)n * (size_t)classes * sizeof *out);
    env_free(e);
    free(e);
    return out;
}

/* ---- helpers --------------------------------------------------------------- */

typedef struct tmpdir {
    char dir[64];
    char path[128];
} tmpdir;

static void tmp_open(tmpdir *t) {
    snprintf(t->dir, sizeof t->dir, "/tmp/slim_onnx_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/model.onnx", t->dir);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void tmp_close(tmpdir *t) {
    DIR *d = opendir(t->dir);
    assert_non_null(d);
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", t->dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(t->dir);
}

static slim_model *parse(const char *text) {
    slim_model *m = NULL;
    slim_status st = slim_model_parse(text, "test.net", &m);
    if (st != SLIM_OK) fail_msg("%s", slim_last_error());
    return m;
}

/* PyTorch-style init, then BN statistics far from the identity, so that a
 * wrong fold cannot pass, and random biasmaps. */
static void randomize(slim_model *m, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model_init_params(m, &rng);
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind == SLIM_LAYER_BN) {
            tu_fill_uniform(&rng, m->params[l->p_gamma].data, (size_t)l->c, 0.5f, 1.5f);
            tu_fill_uniform(&rng, m->params[l->p_beta].data, (size_t)l->c, -0.5f, 0.5f);
            tu_fill_uniform(&rng, l->running_mean, (size_t)l->c, -0.5f, 0.5f);
            tu_fill_uniform(&rng, l->running_var, (size_t)l->c, 0.5f, 2.0f);
        }
        if (l->kind == SLIM_LAYER_CONV && l->p_biasmap >= 0) {
            slim_param *p = &m->params[l->p_biasmap];
            tu_fill_uniform(&rng, p->data, p->numel, -0.5f, 0.5f);
        }
    }
}

static slim_model *make_model(const char *text, uint64_t seed) {
    slim_model *m = parse(text);
    randomize(m, seed);
    return m;
}

static void write_model(const slim_model *m, const char *path) {
    slim_status st = slim_onnx_write(m, path, "test-1.0");
    if (st != SLIM_OK) fail_msg("slim_onnx_write: %s", slim_last_error());
}

static void expect_ops(const dmodel *d, const char *const *ops, int n) {
    for (int i = 0; i < n && i < d->n_nodes; i++)
        if (strcmp(d->nodes[i].op, ops[i]) != 0)
            fail_msg("node %d: op '%s', expected '%s'", i, d->nodes[i].op, ops[i]);
    assert_int_equal(d->n_nodes, n);
}

/* Every node input is the graph input, an initializer or an earlier node's
 * output; outputs and node names are unique. */
static void check_wiring(const dmodel *d) {
    for (int i = 0; i < d->n_nodes; i++) {
        const dnode *n = &d->nodes[i];
        assert_true(n->name[0]);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(n->name, d->nodes[j].name);
            assert_string_not_equal(n->out, d->nodes[j].out);
        }
        assert_null(find_init(d, n->out));
        for (int k = 0; k < n->n_in; k++) {
            int ok = strcmp(n->in[k], "input") == 0 || find_init(d, n->in[k]);
            for (int j = 0; j < i && !ok; j++)
                ok = strcmp(n->in[k], d->nodes[j].out) == 0;
            if (!ok) fail_msg("node '%s': input '%s' is undefined", n->name, n->in[k]);
        }
    }
}

static void wr_floats(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        assert_int_equal(fwrite(b, 1, 4, f), 4);
    }
    assert_int_equal(fclose(f), 0);
}

/* Writes the model, decodes it, runs it on random inputs and compares with
 * slim's inference-mode logits. Returns the decoded model (caller frees). */
static dmodel *roundtrip(slim_model *m, const char *tag, int batch, uint64_t seed) {
    tmpdir t;
    tmp_open(&t);
    write_model(m, t.path);
    dmodel *d = decode_file(t.path);
    tmp_close(&t);
    check_wiring(d);

    const slim_layer *in = &m->layers[0];
    size_t nx = (size_t)batch * (size_t)in->c * (size_t)in->h * (size_t)in->w;
    float *x = malloc(nx * sizeof *x);
    assert_non_null(x);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 2);
    tu_fill_uniform(&rng, x, nx, -1.0f, 1.0f);

    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    slim_tensor *xt = slim_tape_tensor(&tape, 4, (int[]){batch, in->c, in->h, in->w}, 0);
    assert_non_null(xt);
    memcpy(xt->data, x, nx * sizeof *x);
    slim_tensor *logits = NULL;
    if (slim_model_forward(m, &tape, xt, 0, &logits) != SLIM_OK)
        fail_msg("forward: %s", slim_last_error());
    size_t ny = (size_t)batch * (size_t)m->n_classes;
    assert_int_equal(slim_tensor_numel(logits), ny);

    float *y = eval_model(d, x, batch, in->c, in->h, in->w, m->n_classes);
    double diff = tu_max_abs_diff(y, logits->data, ny), scale = tu_max_abs(logits->data, ny);
    assert_true(scale > 0);
    if (!(diff <= LOGIT_TOL * scale))
        fail_msg("%s: ONNX logits differ from slim's by %g (max |logit| %g)", tag, diff, scale);

    const char *out = getenv("SLIM_ONNX_OUT");
    if (out && *out) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s.onnx", out, tag);
        write_model(m, p);
        snprintf(p, sizeof p, "%s/%s.input.bin", out, tag);
        wr_floats(p, x, nx);
        snprintf(p, sizeof p, "%s/%s.logits.bin", out, tag);
        wr_floats(p, logits->data, ny);
    }
    free(y);
    free(x);
    slim_tape_free(&tape);
    return d;
}

/* ---- tests ------------------------------------------------------------- */

static const char *const plain_text = "input shape=1x8x8\n"
                                      "conv c1 out=4 k=3 pad=1\n"
                                      "bn b1\n"
                                      "relu\n"
                                      "maxpool k=2\n"
                                      "conv c2 out=4 k=3 pad=1\n"
                                      "bn b2\n"
                                      "relu\n"
                                      "gap\n"
                                      "dense fc out=3\n";

static void check_ints(const dnode *n, const char *name, int count, int64_t v) {
    const dattr *a = find_attr(n, name);
    if (!a) fail_msg("node '%s' has no attribute '%s'", n->name, name);
    assert_int_equal(a->type, 7);
    assert_int_equal(a->n_ints, count);
    for (int i = 0; i < count; i++)
        assert_int_equal(a->ints[i], v);
}

/* Checks a folded conv's weight and bias against the fold computed here. */
static void check_fold(const slim_model *m, const dmodel *d, const char *conv, const char *bn) {
    const slim_layer *c = &m->layers[slim_model_find_layer(m, conv)];
    const slim_layer *b = &m->layers[slim_model_find_layer(m, bn)];
    char name[64];
    snprintf(name, sizeof name, "%s.weight", conv);
    const dtensor *tw = find_init(d, name);
    snprintf(name, sizeof name, "%s.bias", conv);
    const dtensor *tb = find_init(d, name);
    assert_non_null(tw);
    assert_non_null(tb);
    assert_int_equal(tw->ndim, 4);
    assert_int_equal(tw->dims[0], c->c);
    assert_int_equal(tw->dims[1], c->in_c / c->groups);
    assert_int_equal(tw->dims[2], c->k);
    assert_int_equal(tw->dims[3], c->k);
    assert_int_equal(tb->ndim, 1);
    assert_int_equal(tb->dims[0], c->c);
    float *w = init_values(tw), *bias = init_values(tb);
    const float *w0 = m->params[c->p_weight].data, *g = m->params[b->p_gamma].data;
    const float *beta = m->params[b->p_beta].data;
    size_t per = (size_t)(c->in_c / c->groups) * (size_t)c->k * (size_t)c->k;
    for (int j = 0; j < c->c; j++) {
        double s = g[j] / sqrt((double)b->running_var[j] + b->eps);
        for (size_t k = 0; k < per; k++) {
            double want = w0[j * per + k] * s;
            assert_true(fabs(w[j * per + k] - want) <= FOLD_TOL * fabs(want) + 1e-30);
        }
        double b0 = c->p_bias >= 0 ? m->params[c->p_bias].data[j] : 0;
        double want = (b0 - b->running_mean[j]) * s + beta[j];
        assert_true(fabs(bias[j] - want) <= FOLD_TOL * fabs(want) + 1e-7);
    }
    free(w);
    free(bias);
}

static void test_structure(void **state) {
    (void)state;
    slim_model *m = make_model(plain_text, 11);
    tmpdir t;
    tmp_open(&t);
    write_model(m, t.path);
    dmodel *d = decode_file(t.path);
    tmp_close(&t);

    assert_int_equal(d->ir_version, 7);
    assert_string_equal(d->producer, "slim");
    assert_string_equal(d->producer_version, "test-1.0");
    assert_int_equal(d->n_opset, 1);
    assert_string_equal(d->opset_domain[0], "");
    assert_int_equal(d->opset_version[0], 13);
    assert_string_equal(d->graph_name, "test");

    assert_int_equal(d->n_inputs, 1);
    const dvalue *in = &d->inputs[0];
    assert_string_equal(in->name, "input");
    assert_int_equal(in->elem, 1);
    assert_int_equal(in->ndim, 4);
    assert_string_equal(in->param[0], "N");
    int64_t want_in[4] = {0, 1, 8, 8};
    for (int k = 1; k < 4; k++) {
        assert_string_equal(in->param[k], "");
        assert_int_equal(in->dims[k], want_in[k]);
    }
    assert_int_equal(d->n_outputs, 1);
    const dvalue *out = &d->outputs[0];
    assert_string_equal(out->name, "logits");
    assert_int_equal(out->elem, 1);
    assert_int_equal(out->ndim, 2);
    assert_string_equal(out->param[0], "N");
    assert_int_equal(out->dims[1], 3);

    const char *ops[] = {"Conv",    "Relu", "MaxPool", "Conv", "Relu", "GlobalAveragePool",
                         "Flatten", "Gemm"};
    expect_ops(d, ops, 8);
    check_wiring(d);
    assert_string_equal(d->nodes[7].out, "logits");
    assert_string_equal(d->nodes[0].in[0], "input");
    assert_string_equal(d->nodes[0].in[1], "c1.weight");
    assert_string_equal(d->nodes[0].in[2], "c1.bias");
    check_ints(&d->nodes[0], "kernel_shape", 2, 3);
    check_ints(&d->nodes[0], "strides", 2, 1);
    check_ints(&d->nodes[0], "pads", 4, 1);
    check_ints(&d->nodes[2], "kernel_shape", 2, 2);
    check_ints(&d->nodes[2], "strides", 2, 2);
    check_ints(&d->nodes[2], "pads", 4, 0);
    assert_int_equal(attr_int(&d->nodes[6], "axis", -1), 1);
    assert_int_equal(attr_int(&d->nodes[7], "transB", 0), 1);
    assert_int_equal(d->nodes[7].n_in, 3);

    /* c1.weight, c1.bias, c2.weight, c2.bias, fc.weight, fc.bias */
    assert_int_equal(d->n_inits, 6);
    for (int i = 0; i < d->n_inits; i++)
        free(init_values(&d->inits[i])); /* FLOAT, raw size matches dims */
    check_fold(m, d, "c1", "b1");
    check_fold(m, d, "c2", "b2");

    /* the dense layer's parameters go out bit for bit */
    const slim_param *fw = &m->params[slim_model_find_param(m, "fc.weight")];
    const slim_param *fb = &m->params[slim_model_find_param(m, "fc.bias")];
    const dtensor *tw = find_init(d, "fc.weight"), *tb = find_init(d, "fc.bias");
    assert_non_null(tw);
    assert_non_null(tb);
    assert_int_equal(tw->ndim, 2);
    assert_int_equal(tw->dims[0], 3);
    assert_int_equal(tw->dims[1], 4);
    assert_int_equal(tb->ndim, 1);
    assert_int_equal(tb->dims[0], 3);
    float *w = init_values(tw), *b = init_values(tb);
    assert_memory_equal(w, fw->data, fw->numel * sizeof(float));
    assert_memory_equal(b, fb->data, fb->numel * sizeof(float));
    free(w);
    free(b);

    dmodel_free(d);
    slim_model_free(m);
}

static void test_numeric_plain(void **state) {
    (void)state;
    slim_model *m = make_model(plain_text, 21);
    dmodel *d = roundtrip(m, "plain", 4, 22);
    dmodel_free(d);
    slim_model_free(m);
}

/* Residual adds, a conv with its own bias folded with a bn, a conv feeding
 * both a bn and an add (not foldable), a bn after an add (not foldable),
 * stride 2, average pooling with padding, flatten and dense. */
static void test_numeric_residual(void **state) {
    (void)state;
    slim_model *m = make_model("input shape=2x8x8\n"
                               "conv c1 out=4 k=3 pad=1\n"
                               "bn b1\n"
                               "relu r1\n"
                               "conv c2 out=4 k=3 pad=1 bias=1\n"
                               "bn b2\n"
                               "add a1 from=b2,r1\n"
                               "relu r2\n"
                               "conv c3 out=6 k=3 stride=2 pad=1\n"
                               "relu r3\n"
                               "conv c4 out=6 k=1\n"
                               "bn b4\n"
                               "add a2 from=b4,c4\n"
                               "bn b5\n"
                               "avgpool p1 k=3 stride=1 pad=1\n"
                               "flatten f1\n"
                               "dense fc out=5\n",
                               31);
    dmodel *d = roundtrip(m, "residual", 3, 32);
    const char *ops[] = {"Conv",
                         "Relu",
                         "Conv",
                         "Add",
                         "Relu",
                         "Conv",
                         "Relu",
                         "Conv",
                         "BatchNormalization",
                         "Add",
                         "BatchNormalization",
                         "AveragePool",
                         "Flatten",
                         "Gemm"};
    expect_ops(d, ops, 14);
    check_fold(m, d, "c2", "b2");
    assert_int_equal(attr_int(&d->nodes[11], "count_include_pad", 1), 0);
    check_ints(&d->nodes[5], "strides", 2, 2);
    assert_non_null(find_init(d, "b5.running_var"));
    dmodel_free(d);
    slim_model_free(m);
}

/* Grouped and depthwise convs (stride 1 and 2, padded; bn folded per output
 * channel), relu6 as 6 - Relu(6 - Relu(x)), concat with a repeated input (the model input
 * among them), a depthwise conv with a biasmap folded with its bn. */
static void test_numeric_groups(void **state) {
    (void)state;
    slim_model *m = make_model("input shape=2x8x8\n"
                               "conv e out=6 k=1 groups=2\n"
                               "bn be\n"
                               "relu6 r1\n"
                               "conv dw out=6 k=3 pad=1 groups=6\n"
                               "bn bd\n"
                               "relu6 r2\n"
                               "concat cat from=r1,input,r2,r1\n"
                               "conv g out=8 k=3 stride=2 pad=1 groups=2 bias=1\n"
                               "relu6 r3\n"
                               "conv dw2 out=8 k=3 stride=2 pad=1 groups=8 biasmap=1\n"
                               "bn b2\n"
                               "gap\n"
                               "dense fc out=4\n",
                               35);
    /* Pre-activations well past 6 somewhere, so that relu6's top matters. */
    slim_param *w = &m->params[slim_model_find_param(m, "e.weight")];
    for (size_t j = 0; j < w->numel; j++)
        w->data[j] *= 12.0f;
    dmodel *d = roundtrip(m, "groups", 3, 36);
#define RELU6 "Relu", "Sub", "Relu", "Sub"
    const char *ops[] = {"Conv",    RELU6,  "Conv", RELU6,  "Concat", "Conv",
                         RELU6,     "Conv", "Conv", "Conv", "Add",    "GlobalAveragePool",
                         "Flatten", "Gemm"};
    expect_ops(d, ops, 23);
    check_fold(m, d, "e", "be");
    check_fold(m, d, "dw", "bd");
    check_fold(m, d, "dw2", "b2");
    assert_int_equal(attr_int(&d->nodes[0], "group", 1), 2);
    assert_int_equal(attr_int(&d->nodes[5], "group", 1), 6);
    assert_int_equal(attr_int(&d->nodes[11], "group", 1), 2);
    assert_int_equal(attr_int(&d->nodes[16], "group", 1), 8);
    const dnode *cat = &d->nodes[10];
    assert_int_equal(attr_int(cat, "axis", 0), 1);
    assert_int_equal(cat->n_in, 4);
    const char *cat_in[] = {"r1", "input", "r2", "r1"};
    for (int j = 0; j < 4; j++)
        assert_string_equal(cat->in[j], cat_in[j]);
    /* relu6 r1: Relu -> r1.relu; Sub(r1.six, .) -> r1.headroom; Relu;
     * Sub(r1.six, .) -> r1 */
    const char *r6_in[4][2] = {
        {"be", NULL}, {"r1.six", "r1.relu"}, {"r1.headroom", NULL}, {"r1.six", "r1.headroom_relu"}};
    for (int k = 0; k < 4; k++) {
        const dnode *r6 = &d->nodes[1 + k];
        assert_int_equal(r6->n_in, r6_in[k][1] ? 2 : 1);
        assert_string_equal(r6->in[0], r6_in[k][0]);
        if (r6_in[k][1]) assert_string_equal(r6->in[1], r6_in[k][1]);
    }
    assert_string_equal(d->nodes[4].out, "r1");
    const dtensor *six = find_init(d, "r1.six");
    assert_non_null(six);
    assert_int_equal(six->ndim, 0);
    float *sv = init_values(six);
    assert_true(sv[0] == 6.0f);
    free(sv);
    dmodel_free(d);
    slim_model_free(m);
}

/* Biasmap convs (one folded with a bn), a dense on a 4-D (c,1,1) input. */
static void test_numeric_biasmap(void **state) {
    (void)state;
    slim_model *m = make_model("input shape=3x6x6\n"
                               "conv c1 out=5 k=3 pad=1 biasmap=1\n"
                               "bn b1\n"
                               "relu\n"
                               "conv c2 out=4 k=3 pad=1 biasmap=1\n"
                               "relu\n"
                               "maxpool k=6\n"
                               "dense fc out=3\n",
                               41);
    dmodel *d = roundtrip(m, "biasmap", 3, 42);
    /* The ones (once), then per map: its Conv of the ones, the Add. */
    const char *ops[] = {"Conv", "Conv", "Conv", "Add",     "Relu",    "Conv",
                         "Conv", "Add",  "Relu", "MaxPool", "Flatten", "Gemm"};
    expect_ops(d, ops, 12);
    assert_string_equal(d->nodes[1].in[0], "input");
    assert_string_equal(d->nodes[1].out, "input.ones");
    assert_string_equal(d->nodes[6].in[0], "input.ones");
    assert_string_equal(d->nodes[6].in[1], "c2.biasmap");
    assert_string_equal(d->nodes[7].in[1], "c2.biasmap_out");
    assert_string_equal(d->nodes[3].in[1], "c1.biasmap_out");
    /* The map is the kernel, flipped, of shape (c, 1, h, w). */
    const dtensor *t = find_init(d, "c2.biasmap");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    int64_t want[4] = {4, 1, 6, 6};
    for (int k = 0; k < 4; k++)
        assert_int_equal(t->dims[k], want[k]);
    float *v = init_values(t);
    const slim_param *p = &m->params[slim_model_find_param(m, "c2.biasmap")];
    for (int j = 0; j < 4; j++)
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                assert_true(v[(j * 6 + 5 - y) * 6 + 5 - x] == p->data[(j * 6 + y) * 6 + x]);
    free(v);
    check_fold(m, d, "c1", "b1");
    dmodel_free(d);
    slim_model_free(m);
}

/* A last layer that is still 4-D (c, 1, 1) is flattened to "logits". */
static void test_numeric_tail(void **state) {
    (void)state;
    slim_model *m = make_model("input shape=2x4x4\n"
                               "conv c1 out=3 k=3\n"
                               "maxpool k=2\n",
                               51);
    dmodel *d = roundtrip(m, "tail", 2, 52);
    const char *ops[] = {"Conv", "MaxPool", "Flatten"};
    expect_ops(d, ops, 3);
    assert_string_equal(d->nodes[2].out, "logits");
    dmodel_free(d);
    slim_model_free(m);
}

/* A concat of (N, F) features (gap and dense outputs, one repeated) is a
 * Concat on axis 1 of 2-D tensors. */
static void test_numeric_concat_features(void **state) {
    (void)state;
    slim_model *m = make_model("input shape=2x4x4\n"
                               "relu6 r\n"
                               "gap g\n"
                               "dense d out=3\n"
                               "concat cat from=g,d,g\n"
                               "dense fc out=2\n",
                               53);
    dmodel *d = roundtrip(m, "concat2d", 2, 54);
    const char *ops[] = {"Relu",    "Sub",  "Relu",   "Sub", "GlobalAveragePool",
                         "Flatten", "Gemm", "Concat", "Gemm"};
    expect_ops(d, ops, 9);
    assert_int_equal(attr_int(&d->nodes[7], "axis", 0), 1);
    assert_int_equal(d->nodes[7].n_in, 3);
    dmodel_free(d);
    slim_model_free(m);
}

/* The project's model files (random weights, non-trivial BN statistics). */
static void test_numeric_model_files(void **state) {
    (void)state;
    const char *files[] = {"lenet-bn", "resnet-fm", "vgg-fm", "mobilenet-fm", "densenet-fm"};
    for (int i = 0; i < (int)(sizeof files / sizeof files[0]); i++) {
        char rel[64], path[512];
        snprintf(rel, sizeof rel, "models/%s.net", files[i]);
        slim_model *m = NULL;
        if (slim_model_load_file(tu_source_path(rel, path, sizeof path), &m) != SLIM_OK)
            fail_msg("%s", slim_last_error());
        randomize(m, 70 + (uint64_t)i);
        dmodel *d = roundtrip(m, files[i], 2, 80 + (uint64_t)i);
        for (int j = 0; j < d->n_nodes; j++) /* every bn of these nets folds */
            assert_string_not_equal(d->nodes[j].op, "BatchNormalization");
        dmodel_free(d);
        slim_model_free(m);
    }
}

/* Layers named like the graph's input and output keep those names free;
 * a byte that is not UTF-8 in the model text's comments reaches the doc
 * string as '?' (protobuf strings must be UTF-8), valid UTF-8 unchanged. */
static void test_names_and_text(void **state) {
    (void)state;
    const char *text = "# \xc3\x97 is fine, \xff is not\n"
                       "input data shape=1x4x4\n"
                       "conv input out=2 k=3\n"
                       "relu logits\n"
                       "gap\n"
                       "dense fc out=2\n";
    slim_model *m = make_model(text, 91);
    dmodel *d = roundtrip(m, "names", 2, 92);
    const char *ops[] = {"Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"};
    expect_ops(d, ops, 5);
    assert_string_equal(d->nodes[0].in[0], "input");
    assert_string_equal(d->nodes[0].out, "input.out");
    assert_string_equal(d->nodes[1].out, "logits.out");
    assert_string_equal(d->nodes[4].out, "logits");
    assert_int_equal(d->doc_len, strlen(text));
    const char *want = "# \xc3\x97 is fine, ? is not\n";
    assert_memory_equal(d->doc, want, strlen(want));
    assert_memory_equal(d->doc + strlen(want), text + strlen(want), strlen(text) - strlen(want));
    dmodel_free(d);
    slim_model_free(m);
}

/* slim_onnx_write refuses m (SLIM_ERR_ARG) with a message naming the layer
 * and the reason; frees m. */
static void expect_refused(slim_model *m, const char *path, const char *layer, const char *why) {
    assert_int_equal(slim_onnx_write(m, path, NULL), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), layer));
    assert_non_null(strstr(slim_last_error(), why));
    slim_model_free(m);
}

static void test_errors(void **state) {
    (void)state;
    slim_model *m = make_model(plain_text, 61);
    tmpdir t;
    tmp_open(&t);
    assert_int_equal(slim_onnx_write(NULL, t.path, NULL), SLIM_ERR_ARG);
    assert_int_equal(slim_onnx_write(m, NULL, NULL), SLIM_ERR_ARG);

    char bad[192];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.onnx", t.dir);
    assert_int_equal(slim_onnx_write(m, bad, NULL), SLIM_ERR_IO);
    assert_non_null(strstr(slim_last_error(), bad));

    /* A good file, then a failing write over it: the old file stays whole and
     * no temporary file is left behind. */
    write_model(m, t.path);
    size_t len0, len1;
    uint8_t *before = read_all(t.path, &len0);
    int relu = slim_model_find_layer(m, "relu1");
    assert_true(relu > 0);
    m->layers[relu].kind = SLIM_LAYER_KIND_COUNT;
    assert_int_equal(slim_onnx_write(m, t.path, NULL), SLIM_ERR_ARG);
    assert_non_null(strstr(slim_last_error(), "relu1"));
    assert_non_null(strstr(slim_last_error(), t.path));
    m->layers[relu].kind = SLIM_LAYER_RELU;
    uint8_t *after = read_all(t.path, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    assert_int_equal(count_entries(t.dir), 1);
    free(before);
    free(after);

    /* A BN whose var + eps is negative cannot be folded or exported. */
    slim_layer *b1 = &m->layers[slim_model_find_layer(m, "b1")];
    float saved = b1->running_var[0];
    b1->running_var[0] = -1.0f;
    assert_int_equal(slim_onnx_write(m, t.path, NULL), SLIM_ERR_NUMERIC);
    assert_non_null(strstr(slim_last_error(), "b1"));
    b1->running_var[0] = saved;
    assert_int_equal(count_entries(t.dir), 1);
    slim_model_free(m);

    /* A conv on a 2-D (N, F) tensor has no ONNX Conv (slim cannot run it
     * either). */
    m = make_model("input shape=1x4x4\n"
                   "gap g\n"
                   "conv head out=2 k=1\n",
                   62);
    expect_refused(m, t.path, "head", "2-D");

    /* A concat of a (c, 1, 1) map and a gap's (N, F) has no single ONNX
     * Concat rank. */
    m = make_model("input shape=2x1x1\n"
                   "gap g\n"
                   "concat mix from=input,g\n",
                   63);
    expect_refused(m, t.path, "mix", "rank");

    /* A conv whose groups do not divide its channels (a corrupted model):
     * refused before any weight is read with the wrong shape. */
    m = make_model("input shape=4x4x4\n"
                   "conv gc out=4 k=1 groups=2\n"
                   "gap\n",
                   64);
    m->layers[slim_model_find_layer(m, "gc")].groups = 3;
    expect_refused(m, t.path, "gc", "groups");
    assert_int_equal(count_entries(t.dir), 1);
    tmp_close(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),        cmocka_unit_test(test_numeric_plain),
        cmocka_unit_test(test_numeric_residual), cmocka_unit_test(test_numeric_biasmap),
        cmocka_unit_test(test_numeric_tail),     cmocka_unit_test(test_numeric_model_files),
        cmocka_unit_test(test_names_and_text),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_numeric_groups),   cmocka_unit_test(test_numeric_concat_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
