/* C source export (include/slim/export_c.h): check the model, then write
 * the header and the source, each through an atomic file. */
#include "slim/export_c.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim/data.h"

/* C99 promises string literals of 4095 characters; a class name escapes
 * to at most 4 per byte. */
#define CEXP_CLASS_NAME_MAX 1000
/* Weights per line of a generated array. */
#define CEXP_PER_LINE 8

/* The helper functions the generated code can hold, one per op. */
enum {
    OP_CONV,
    OP_CONV1,
    OP_AFFINE,
    OP_RELU,
    OP_RELU6,
    OP_MAXPOOL,
    OP_AVGPOOL,
    OP_GAP,
    OP_DENSE,
    OP_ADD,
    OP_COPY,
    OP_COUNT
};

static const char *const op_source[OP_COUNT] = {
    [OP_CONV] =
        "/* The output positions [first, last) at which tap u of a window (stride,\n"
        " * pad) falls inside an input of size n; on outputs in all. */\n"
        "static int first_in(int u, int stride, int pad) {\n"
        "    return pad > u ? (pad - u + stride - 1) / stride : 0;\n"
        "}\n"
        "static int last_in(int u, int stride, int pad, int n, int on) {\n"
        "    int d = n - 1 + pad - u, last = d < 0 ? 0 : d / stride + 1;\n"
        "    return last < on ? last : on;\n"
        "}\n"
        "\n"
        "/* x: (cin, h, w) -> y: (cout, oh, ow); wt: (cout, cin / groups, k, k); b: (cout) and\n"
        " * m: (cout, oh, ow) may be 0. */\n"
        "static void conv(const float *restrict x, int cin, int h, int w, float *restrict y,\n"
        "                 int cout, int oh, int ow, int k, int stride, int pad, int groups,\n"
        "                 const float *restrict wt, const float *b, const float *m) {\n"
        "    int cig = cin / groups, cog = cout / groups, o, ci, u, v, p, q;\n"
        "    long plane = (long)oh * ow, i;\n"
        "    for (o = 0; o < cout; o++) {\n"
        "        float *yo = y + o * plane;\n"
        "        const float *xg = x + (long)(o / cog) * cig * h * w;\n"
        "        for (i = 0; i < plane; i++)\n"
        "            yo[i] = (b ? b[o] : 0.0f) + (m ? m[o * plane + i] : 0.0f);\n"
        "        for (ci = 0; ci < cig; ci++)\n"
        "            for (u = 0; u < k; u++) {\n"
        "                int p0 = first_in(u, stride, pad), p1 = last_in(u, stride, pad, h, oh);\n"
        "                for (v = 0; v < k; v++) {\n"
        "                    int q0 = first_in(v, stride, pad), q1 = last_in(v, stride, pad, w, "
        "ow);\n"
        "                    float wv = wt[(((long)o * cig + ci) * k + u) * k + v];\n"
        "                    for (p = p0; p < p1; p++) {\n"
        "                        const float *xr = xg + ((long)ci * h + p * stride - pad + u) * "
        "w;\n"
        "                        float *yr = yo + (long)p * ow;\n"
        "                        if (stride == 1) /* contiguous: vectorises */\n"
        "                            for (q = q0; q < q1; q++)\n"
        "                                yr[q] += wv * xr[q - pad + v];\n"
        "                        else\n"
        "                            for (q = q0; q < q1; q++)\n"
        "                                yr[q] += wv * xr[q * stride - pad + v];\n"
        "                    }\n"
        "                }\n"
        "            }\n"
        "    }\n"
        "}\n",
    [OP_CONV1] =
        "/* conv at stride 1: the input padded once into pad_x (cin, h + 2 pad, w + 2 pad),\n"
        " * each output plane summed at the padded width in acc, so that every tap is one\n"
        " * long contiguous loop (the columns past ow are scratch). */\n"
        "static void conv1(const float *restrict x, int cin, int h, int w, float *restrict y,\n"
        "                  int cout, int oh, int ow, int k, int pad, int groups,\n"
        "                  const float *restrict wt, const float *b, const float *m) {\n"
        "    int cig = cin / groups, cog = cout / groups, hp = h + 2 * pad, wp = w + 2 * pad;\n"
        "    int o, ci, u, v, p, q;\n"
        "    long n = (long)(oh - 1) * wp + ow, plane = (long)oh * ow, i;\n"
        "    for (ci = 0; ci < cin; ci++)\n"
        "        for (p = 0; p < hp; p++)\n"
        "            for (q = 0; q < wp; q++) {\n"
        "                int r = p - pad, c = q - pad;\n"
        "                pad_x[((long)ci * hp + p) * wp + q] =\n"
        "                    r >= 0 && r < h && c >= 0 && c < w ? x[((long)ci * h + r) * w + c] : "
        "0.0f;\n"
        "            }\n"
        "    for (o = 0; o < cout; o++) {\n"
        "        const float *xg = pad_x + (long)(o / cog) * cig * hp * wp;\n"
        "        for (i = 0; i < n; i++)\n"
        "            acc[i] = 0.0f;\n"
        "        for (ci = 0; ci < cig; ci++)\n"
        "            for (u = 0; u < k; u++)\n"
        "                for (v = 0; v < k; v++) {\n"
        "                    float wv = wt[(((long)o * cig + ci) * k + u) * k + v];\n"
        "                    const float *xs = xg + ((long)ci * hp + u) * wp + v;\n"
        "                    for (i = 0; i < n; i++)\n"
        "                        acc[i] += wv * xs[i];\n"
        "                }\n"
        "        for (p = 0; p < oh; p++)\n"
        "            for (q = 0; q < ow; q++)\n"
        "                y[o * plane + (long)p * ow + q] = acc[(long)p * wp + q] + (b ? b[o] : "
        "0.0f) +\n"
        "                                                  (m ? m[o * plane + (long)p * ow + q] : "
        "0.0f);\n"
        "    }\n"
        "}\n",
    [OP_AFFINE] = "/* y = x s + t per channel of (c, hw). */\n"
                  "static void affine(const float *x, int c, long hw, float *y, const float *s,\n"
                  "                   const float *t) {\n"
                  "    int j;\n"
                  "    long i;\n"
                  "    for (j = 0; j < c; j++)\n"
                  "        for (i = 0; i < hw; i++)\n"
                  "            y[j * hw + i] = x[j * hw + i] * s[j] + t[j];\n"
                  "}\n",
    [OP_RELU] = "static void relu(const float *x, long n, float *y) {\n"
                "    long i;\n"
                "    for (i = 0; i < n; i++)\n"
                "        y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n"
                "}\n",
    [OP_RELU6] = "static void relu6(const float *x, long n, float *y) {\n"
                 "    long i;\n"
                 "    for (i = 0; i < n; i++)\n"
                 "        y[i] = x[i] > 0.0f ? (x[i] < 6.0f ? x[i] : 6.0f) : 0.0f;\n"
                 "}\n",
    [OP_MAXPOOL] =
        "/* x: (c, h, w) -> y: (c, oh, ow); the padding never wins. */\n"
        "static void maxpool(const float *x, int c, int h, int w, float *y, int oh, int ow,\n"
        "                    int k, int stride, int pad) {\n"
        "    int j, p, q, u, v;\n"
        "    for (j = 0; j < c; j++)\n"
        "        for (p = 0; p < oh; p++)\n"
        "            for (q = 0; q < ow; q++) {\n"
        "                int found = 0;\n"
        "                float best = 0.0f;\n"
        "                for (u = 0; u < k; u++)\n"
        "                    for (v = 0; v < k; v++) {\n"
        "                        int r = p * stride - pad + u, col = q * stride - pad + v;\n"
        "                        float a;\n"
        "                        if (r < 0 || r >= h || col < 0 || col >= w) continue;\n"
        "                        a = x[((long)j * h + r) * w + col];\n"
        "                        if (!found || a > best) best = a;\n"
        "                        found = 1;\n"
        "                    }\n"
        "                y[((long)j * oh + p) * ow + q] = best;\n"
        "            }\n"
        "}\n",
    [OP_AVGPOOL] =
        "/* x: (c, h, w) -> y: (c, oh, ow); the mean of the taps inside the input. */\n"
        "static void avgpool(const float *x, int c, int h, int w, float *y, int oh, int ow,\n"
        "                    int k, int stride, int pad) {\n"
        "    int j, p, q, u, v;\n"
        "    for (j = 0; j < c; j++)\n"
        "        for (p = 0; p < oh; p++)\n"
        "            for (q = 0; q < ow; q++) {\n"
        "                int n = 0;\n"
        "                float acc = 0.0f;\n"
        "                for (u = 0; u < k; u++)\n"
        "                    for (v = 0; v < k; v++) {\n"
        "                        int r = p * stride - pad + u, col = q * stride - pad + v;\n"
        "                        if (r < 0 || r >= h || col < 0 || col >= w) continue;\n"
        "                        acc += x[((long)j * h + r) * w + col];\n"
        "                        n++;\n"
        "                    }\n"
        "                y[((long)j * oh + p) * ow + q] = n > 0 ? acc / (float)n : 0.0f;\n"
        "            }\n"
        "}\n",
    [OP_GAP] = "/* x: (c, hw) -> y: (c), the mean of each plane. */\n"
               "static void gap(const float *x, int c, long hw, float *y) {\n"
               "    int j;\n"
               "    long i;\n"
               "    for (j = 0; j < c; j++) {\n"
               "        float acc = 0.0f;\n"
               "        for (i = 0; i < hw; i++)\n"
               "            acc += x[j * hw + i];\n"
               "        y[j] = acc / (float)hw;\n"
               "    }\n"
               "}\n",
    [OP_DENSE] = "/* x: (in) -> y: (out); wt: (out, in), b: (out) or 0. */\n"
                 "static void dense(const float *x, long in, float *y, int out, const float *wt,\n"
                 "                  const float *b) {\n"
                 "    int o;\n"
                 "    long i;\n"
                 "    for (o = 0; o < out; o++) {\n"
                 "        float acc = b ? b[o] : 0.0f;\n"
                 "        for (i = 0; i < in; i++)\n"
                 "            acc += wt[o * in + i] * x[i];\n"
                 "        y[o] = acc;\n"
                 "    }\n"
                 "}\n",
    [OP_ADD] = "static void add(const float *a, const float *b, long n, float *y) {\n"
               "    long i;\n"
               "    for (i = 0; i < n; i++)\n"
               "        y[i] = a[i] + b[i];\n"
               "}\n",
    [OP_COPY] = "/* A concat part, or the logits. */\n"
                "static void copy(const float *x, long n, float *y) {\n"
                "    long i;\n"
                "    for (i = 0; i < n; i++)\n"
                "        y[i] = x[i];\n"
                "}\n",
};

typedef struct writer {
    const slim_model *m;
    const char *path; /* the .c file, for messages */
    char name[64];    /* symbol prefix */
    char upper[64];   /* macro prefix */
    int *alias;       /* per layer: the layer whose buffer holds its output (flatten: its input) */
    int uses[OP_COUNT];
    size_t pad_x, acc; /* sizes of conv1's scratch buffers */
} writer;

void slim_export_c_identifier(const char *src, char *out, size_t len) {
    if (!out || len < 2) return;
    size_t n = 0;
    if (!src || !*src) src = "model";
    if (isdigit((unsigned char)src[0]) || src[0] == '_') out[n++] = 'm';
    for (; *src && n + 1 < len; src++)
        out[n++] = isalnum((unsigned char)*src) ? *src : '_';
    out[n] = '\0';
}

/* "<path>: <kind> '<name>' (layer i): cannot export to C: <what>" */
static slim_status layer_fail(const writer *wr, int i, const char *what) {
    const slim_layer *l = &wr->m->layers[i];
    const char *kind = l->kind >= 0 && l->kind < SLIM_LAYER_KIND_COUNT
                           ? slim_layer_kind_name(l->kind)
                           : "layer of unknown kind";
    return slim_error(SLIM_ERR_ARG, "%s: %s '%.31s' (layer %d): cannot export to C: %s", wr->path,
                      kind, l->name, i, what);
}

/* Whether parameter `index` holds `numel` finite floats; which fault, else. */
static const char *param_fault(const slim_model *m, int index, size_t numel) {
    if (index < 0 || index >= m->n_params || !m->params[index].data ||
        m->params[index].numel != numel)
        return "is missing or misshapen";
    for (size_t k = 0; k < numel; k++)
        if (!isfinite(m->params[index].data[k])) return "holds a value that is not finite";
    return NULL;
}

static slim_status check_param(const writer *wr, int i, int index, size_t numel, const char *what) {
    const char *fault = param_fault(wr->m, index, numel);
    if (!fault) return SLIM_OK;
    char msg[96];
    snprintf(msg, sizeof msg, "its %s %s", what, fault);
    return layer_fail(wr, i, msg);
}

static size_t numel_of(const slim_layer *l) { return (size_t)l->c * (size_t)l->h * (size_t)l->w; }

/* Whether a window layer (conv, pooling) reads its input's whole shape and
 * has the output size its window implies: the generated loops index by
 * these numbers. */
static int window_fits(const slim_layer *l, const slim_layer *in) {
    if (l->k < 1 || l->stride < 1 || l->pad < 0 || in->h != l->in_h || in->w != l->in_w ||
        l->in_h + 2 * l->pad < l->k || l->in_w + 2 * l->pad < l->k)
        return 0;
    return l->h == (l->in_h + 2 * l->pad - l->k) / l->stride + 1 &&
           l->w == (l->in_w + 2 * l->pad - l->k) / l->stride + 1;
}

/* Everything the generated code relies on, per layer. */
static slim_status check_layer(const writer *wr, int i) {
    const slim_model *m = wr->m;
    const slim_layer *l = &m->layers[i];
    const slim_layer *in = l->n_inputs > 0 ? &m->layers[l->inputs[0]] : NULL;
    size_t c = (size_t)l->c;
    switch (l->kind) {
    case SLIM_LAYER_CONV:
        if (l->groups < 1 || l->in_c % l->groups || l->c % l->groups || in->c != l->in_c ||
            !window_fits(l, in))
            return layer_fail(wr, i, "its geometry does not fit its input");
        SLIM_TRY(check_param(wr, i, l->p_weight,
                             c * (size_t)(l->in_c / l->groups) * (size_t)l->k * (size_t)l->k,
                             "weight"));
        if (l->has_bias) SLIM_TRY(check_param(wr, i, l->p_bias, c, "bias"));
        if (l->has_biasmap) SLIM_TRY(check_param(wr, i, l->p_biasmap, numel_of(l), "biasmap"));
        return SLIM_OK;
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL:
        if (in->c != l->c || !window_fits(l, in))
            return layer_fail(wr, i, "its geometry does not fit its input");
        return SLIM_OK;
    case SLIM_LAYER_DENSE:
        if ((size_t)l->in_c != numel_of(in) || l->h != 1 || l->w != 1)
            return layer_fail(wr, i, "its input size is not its input's");
        SLIM_TRY(check_param(wr, i, l->p_weight, c * (size_t)l->in_c, "weight"));
        if (l->has_bias) SLIM_TRY(check_param(wr, i, l->p_bias, c, "bias"));
        return SLIM_OK;
    case SLIM_LAYER_BN:
        SLIM_TRY(check_param(wr, i, l->p_gamma, c, "gamma"));
        SLIM_TRY(check_param(wr, i, l->p_beta, c, "beta"));
        if (!l->running_mean || !l->running_var || numel_of(l) != numel_of(in))
            return layer_fail(wr, i, "its running statistics are missing");
        for (int j = 0; j < l->c; j++) {
            double v = (double)l->running_var[j] + (double)l->eps;
            if (!isfinite(l->running_mean[j]) || !(v > 0) || !isfinite(v))
                return layer_fail(wr, i, "its running statistics are not finite and positive");
        }
        return SLIM_OK;
    case SLIM_LAYER_GAP:
        if (in->c != l->c || l->h != 1 || l->w != 1)
            return layer_fail(wr, i, "its shape is not its input's channels");
        return SLIM_OK;
    case SLIM_LAYER_RELU:
    case SLIM_LAYER_RELU6:
    case SLIM_LAYER_FLATTEN:
        if (numel_of(in) != numel_of(l)) return layer_fail(wr, i, "its size is not its input's");
        return SLIM_OK;
    case SLIM_LAYER_ADD:
        if (numel_of(in) != numel_of(l) || numel_of(&m->layers[l->inputs[1]]) != numel_of(l))
            return layer_fail(wr, i, "its inputs differ in size");
        return SLIM_OK;
    case SLIM_LAYER_CONCAT: {
        size_t sum = 0;
        for (int j = 0; j < l->n_inputs; j++)
            sum += numel_of(&m->layers[l->inputs[j]]);
        if (sum != numel_of(l)) return layer_fail(wr, i, "its inputs do not add up to its size");
        return SLIM_OK;
    }
    default: return layer_fail(wr, i, "this layer kind has no C form");
    }
}

/* The graph's shape (inputs before use, the right input counts), then
 * each layer. */
static slim_status check_model(writer *wr) {
    const slim_model *m = wr->m;
    if (!m->layers || m->n_layers < 2 || !m->params)
        return slim_error(SLIM_ERR_ARG, "%s: cannot export to C: no model (or one not finished)",
                          wr->path);
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        int want = l->kind == SLIM_LAYER_INPUT ? 0 : l->kind == SLIM_LAYER_ADD ? 2 : 1;
        if (l->kind == SLIM_LAYER_CONCAT)
            want = l->n_inputs >= 2 && l->n_inputs <= SLIM_LAYER_MAX_INPUTS ? l->n_inputs : -1;
        if ((i == 0) != (l->kind == SLIM_LAYER_INPUT) || l->n_inputs != want)
            return layer_fail(wr, i, "the layer graph is malformed");
        for (int j = 0; j < l->n_inputs; j++)
            if (l->inputs[j] < 0 || l->inputs[j] >= i)
                return layer_fail(wr, i, "an input refers to a later layer");
        if (l->c < 1 || l->h < 1 || l->w < 1) return layer_fail(wr, i, "its shape is empty");
        if (i > 0) SLIM_TRY(check_layer(wr, i));
        wr->alias[i] = l->kind == SLIM_LAYER_FLATTEN ? wr->alias[l->inputs[0]] : i;
    }
    return SLIM_OK;
}

/* ---- writing -------------------------------------------------------------- */

/* A float literal that reads back as exactly v (finite). */
static void put_float(FILE *f, float v) {
    char s[32];
    snprintf(s, sizeof s, "%.9g", (double)v);
    fputs(s, f);
    if (!strpbrk(s, ".e")) fputs(".0", f);
    fputc('f', f);
}

static void put_array(FILE *f, const char *what, int layer, const char *role, const float *x,
                      size_t n) {
    fprintf(f, "/* %s */\nstatic const float l%d_%s[%zu] = {", what, layer, role, n);
    for (size_t k = 0; k < n; k++) {
        fputs(k == 0 ? "\n    " : k % CEXP_PER_LINE ? ", " : ",\n    ", f);
        put_float(f, x[k]);
    }
    fputs("\n};\n", f);
}

/* A string literal of s, every byte outside printable ASCII (and '"', '\\',
 * '?': no trigraphs) as a three-digit octal escape. */
static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '?')
            fputc(ch, f);
        else
            fprintf(f, "\\%03o", ch);
    }
    fputc('"', f);
}

/* The weights of layer i (a bn as its affine map s, t). */
static slim_status put_weights(writer *wr, FILE *f, int i) {
    const slim_model *m = wr->m;
    const slim_layer *l = &m->layers[i];
    char what[96];
    snprintf(what, sizeof what, "%s %s", slim_layer_kind_name(l->kind), l->name);
    if (l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE) {
        const slim_param *w = &m->params[l->p_weight];
        put_array(f, what, i, "w", w->data, w->numel);
        if (l->has_bias) put_array(f, what, i, "b", m->params[l->p_bias].data, (size_t)l->c);
        if (l->has_biasmap) put_array(f, what, i, "m", m->params[l->p_biasmap].data, numel_of(l));
    } else if (l->kind == SLIM_LAYER_BN) {
        float *st = malloc(2 * (size_t)l->c * sizeof *st);
        if (!st) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", wr->path);
        const float *gamma = m->params[l->p_gamma].data, *beta = m->params[l->p_beta].data;
        int finite = 1;
        for (int j = 0; j < l->c; j++) {
            /* (x - mean) s + beta = x s + (beta - mean s), s in double */
            double s = (double)gamma[j] / sqrt((double)l->running_var[j] + (double)l->eps);
            st[j] = (float)s;
            st[l->c + j] = (float)((double)beta[j] - (double)l->running_mean[j] * s);
            finite = finite && isfinite(st[j]) && isfinite(st[l->c + j]);
        }
        if (!finite) {
            free(st);
            return layer_fail(wr, i, "its scale or shift overflows a float");
        }
        put_array(f, what, i, "s", st, (size_t)l->c);
        put_array(f, what, i, "t", st + l->c, (size_t)l->c);
        free(st);
    }
    return SLIM_OK;
}

/* The C expression of layer i's output. */
static void buf(const writer *wr, int i, char *out, size_t len) {
    int a = wr->alias[i];
    if (a == 0)
        snprintf(out, len, "input");
    else
        snprintf(out, len, "b%d", a);
}

/* "l<i>_<role>" when the layer has that parameter, else "0". */
static const char *param_expr(int has, int i, const char *role, char *out, size_t len) {
    if (has)
        snprintf(out, len, "l%d_%s", i, role);
    else
        snprintf(out, len, "0");
    return out;
}

/* Which helper functions the calls of the model use. */
static void mark_uses(writer *wr) {
    static const int op_of[SLIM_LAYER_KIND_COUNT] = {
        [SLIM_LAYER_INPUT] = -1,           [SLIM_LAYER_CONV] = OP_CONV,
        [SLIM_LAYER_BN] = OP_AFFINE,       [SLIM_LAYER_RELU] = OP_RELU,
        [SLIM_LAYER_MAXPOOL] = OP_MAXPOOL, [SLIM_LAYER_AVGPOOL] = OP_AVGPOOL,
        [SLIM_LAYER_GAP] = OP_GAP,         [SLIM_LAYER_FLATTEN] = -1,
        [SLIM_LAYER_DENSE] = OP_DENSE,     [SLIM_LAYER_ADD] = OP_ADD,
        [SLIM_LAYER_CONCAT] = OP_COPY,     [SLIM_LAYER_RELU6] = OP_RELU6,
    };
    wr->uses[OP_COPY] = 1; /* the logits */
    for (int i = 1; i < wr->m->n_layers; i++) {
        const slim_layer *l = &wr->m->layers[i];
        int op = l->kind == SLIM_LAYER_CONV && l->stride == 1 ? OP_CONV1 : op_of[l->kind];
        if (op >= 0) wr->uses[op] = 1;
        if (op == OP_CONV1) {
            /* conv1's scratch: the padded input, a plane at the padded width */
            size_t hp = (size_t)l->in_h + 2 * (size_t)l->pad,
                   wp = (size_t)l->in_w + 2 * (size_t)l->pad;
            size_t xp = (size_t)l->in_c * hp * wp, acc = ((size_t)l->h - 1) * wp + (size_t)l->w;
            if (xp > wr->pad_x) wr->pad_x = xp;
            if (acc > wr->acc) wr->acc = acc;
        }
    }
}

/* The call that computes layer i (nothing for flatten). */
static void put_call(const writer *wr, FILE *f, int i) {
    const slim_model *m = wr->m;
    const slim_layer *l = &m->layers[i];
    char x[16], y[16], p1[24], p2[24];
    buf(wr, l->n_inputs > 0 ? l->inputs[0] : 0, x, sizeof x);
    buf(wr, i, y, sizeof y);
    long hw = (long)l->h * l->w, n = (long)numel_of(l);
    fprintf(f, "    /* %s %s */\n", slim_layer_kind_name(l->kind), l->name);
    switch (l->kind) {
    case SLIM_LAYER_CONV:
        if (l->stride == 1) {
            fprintf(f, "    conv1(%s, %d, %d, %d, %s, %d, %d, %d, %d, %d, %d, l%d_w, %s, %s);\n", x,
                    l->in_c, l->in_h, l->in_w, y, l->c, l->h, l->w, l->k, l->pad, l->groups, i,
                    param_expr(l->has_bias, i, "b", p1, sizeof p1),
                    param_expr(l->has_biasmap, i, "m", p2, sizeof p2));
            break;
        }
        fprintf(f, "    conv(%s, %d, %d, %d, %s, %d, %d, %d, %d, %d, %d, %d, l%d_w, %s, %s);\n", x,
                l->in_c, l->in_h, l->in_w, y, l->c, l->h, l->w, l->k, l->stride, l->pad, l->groups,
                i, param_expr(l->has_bias, i, "b", p1, sizeof p1),
                param_expr(l->has_biasmap, i, "m", p2, sizeof p2));
        break;
    case SLIM_LAYER_BN:
        fprintf(f, "    affine(%s, %d, %ld, %s, l%d_s, l%d_t);\n", x, l->c, hw, y, i, i);
        break;
    case SLIM_LAYER_RELU:
    case SLIM_LAYER_RELU6: {
        int six = l->kind == SLIM_LAYER_RELU6;
        fprintf(f, "    %s(%s, %ld, %s);\n", six ? "relu6" : "relu", x, n, y);
        break;
    }
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL: {
        int max = l->kind == SLIM_LAYER_MAXPOOL;
        fprintf(f, "    %s(%s, %d, %d, %d, %s, %d, %d, %d, %d, %d);\n", max ? "maxpool" : "avgpool",
                x, l->c, l->in_h, l->in_w, y, l->h, l->w, l->k, l->stride, l->pad);
        break;
    }
    case SLIM_LAYER_GAP: {
        const slim_layer *in = &m->layers[l->inputs[0]];
        fprintf(f, "    gap(%s, %d, %ld, %s);\n", x, l->c, (long)in->h * in->w, y);
        break;
    }
    case SLIM_LAYER_DENSE:
        fprintf(f, "    dense(%s, %d, %s, %d, l%d_w, %s);\n", x, l->in_c, y, l->c, i,
                param_expr(l->has_bias, i, "b", p1, sizeof p1));
        break;
    case SLIM_LAYER_ADD: {
        char x2[16];
        buf(wr, l->inputs[1], x2, sizeof x2);
        fprintf(f, "    add(%s, %s, %ld, %s);\n", x, x2, n, y);
        break;
    }
    case SLIM_LAYER_CONCAT: {
        long at = 0;
        for (int j = 0; j < l->n_inputs; j++) {
            long part = (long)numel_of(&m->layers[l->inputs[j]]);
            buf(wr, l->inputs[j], x, sizeof x);
            fprintf(f, "    copy(%s, %ld, %s + %ld);\n", x, part, y, at);
            at += part;
        }
        break;
    }
    default: break; /* flatten: its input's buffer */
    }
}

static void put_comment_head(const writer *wr, FILE *f, const char *producer, const char *what) {
    fprintf(f,
            "/* %s: %s, written by %s export --format c.\n"
            " * C99, no library calls; input (C, H, W) = (pixel / 255 - mean) / std. */\n",
            wr->name, what, producer);
}

static void put_header(const writer *wr, FILE *f, const char *producer,
                       const slim_export_c_options *opt) {
    const slim_layer *in = &wr->m->layers[0];
    const char *n = wr->name, *u = wr->upper;
    put_comment_head(wr, f, producer, "the model's declarations");
    fprintf(f, "#ifndef %s_H\n#define %s_H\n\n", u, u);
    fprintf(f, "#define %s_INPUT_C %d\n#define %s_INPUT_H %d\n#define %s_INPUT_W %d\n", u, in->c, u,
            in->h, u, in->w);
    fprintf(f, "#define %s_CLASSES %zu\n\n", u, numel_of(&wr->m->layers[wr->m->n_layers - 1]));
    if (opt->resize) {
        fprintf(f, "/* Pictures reach INPUT_H x INPUT_W as the training data did: */\n");
        fprintf(f, "#define %s_RESIZE ", u);
        put_string(f, opt->resize);
        fputc('\n', f);
        if (strcmp(opt->resize, "crop") == 0)
            fprintf(f, "#define %s_CROP_SCALE %.9g\n", u,
                    opt->crop_scale > 0 ? opt->crop_scale : 1.0);
        fputc('\n', f);
    }
    fprintf(f, "extern const char *const %s_class_names[%s_CLASSES];\n", n, u);
    fprintf(f, "extern const float %s_mean[%s_INPUT_C];\n", n, u);
    fprintf(f, "extern const float %s_std[%s_INPUT_C];\n\n", n, u);
    fprintf(f,
            "/* input: (%s_INPUT_C, %s_INPUT_H, %s_INPUT_W) floats, normalised;\n"
            " * logits: %s_CLASSES floats. Not reentrant: its buffers are static. */\n",
            u, u, u, u);
    fprintf(f, "void %s_run(const float *input, float *logits);\n\n#endif\n", n);
}

static slim_status put_source(writer *wr, FILE *f, const char *h_base, const char *producer,
                              const slim_export_c_options *opt) {
    const slim_model *m = wr->m;
    const slim_layer *in = &m->layers[0];
    int last = m->n_layers - 1;
    put_comment_head(wr, f, producer, "the model");
    fprintf(f, "#include \"%s\"\n\n", h_base);
    fprintf(f, "const char *const %s_class_names[%s_CLASSES] = {", wr->name, wr->upper);
    for (size_t k = 0; k < numel_of(&m->layers[last]); k++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", k);
        fputs(k ? ",\n    " : "\n    ", f);
        put_string(f, opt->class_names ? opt->class_names[k] : num);
    }
    fputs("\n};\n", f);
    const char *role[2] = {"mean", "std"};
    for (int r = 0; r < 2; r++) {
        const float *v = r ? opt->std : opt->mean;
        fprintf(f, "const float %s_%s[%s_INPUT_C] = {", wr->name, role[r], wr->upper);
        for (int j = 0; j < in->c; j++) {
            fputs(j ? ", " : "", f);
            put_float(f, v ? v[j] : (float)r);
        }
        fputs("};\n", f);
    }
    fputc('\n', f);
    for (int i = 1; i < m->n_layers; i++)
        SLIM_TRY(put_weights(wr, f, i));
    fputc('\n', f);
    for (int i = 1; i < m->n_layers; i++)
        if (wr->alias[i] == i)
            fprintf(f, "static float b%d[%zu]; /* %s */\n", i, numel_of(&m->layers[i]),
                    m->layers[i].name);
    mark_uses(wr);
    if (wr->uses[OP_CONV1])
        fprintf(f, "static float pad_x[%zu], acc[%zu]; /* conv1's scratch */\n", wr->pad_x,
                wr->acc);
    for (int op = 0; op < OP_COUNT; op++)
        if (wr->uses[op]) fprintf(f, "\n%s", op_source[op]);
    fprintf(f, "\nvoid %s_run(const float *input, float *logits) {\n", wr->name);
    for (int i = 1; i < m->n_layers; i++)
        put_call(wr, f, i);
    char y[16];
    buf(wr, last, y, sizeof y);
    fprintf(f, "    copy(%s, %s_CLASSES, logits);\n}\n", y, wr->upper);
    return SLIM_OK;
}

/* Removes an atomic file's temporary file, keeping the message of the
 * failure that made it necessary. */
static void discard(slim_atomic_file *af, slim_status st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", slim_last_error());
    slim_atomic_commit(af, ECANCELED);
    slim_error(st, "%s", msg);
}

static slim_status check_options(const writer *wr, const slim_export_c_options *opt) {
    slim_resize_mode mode;
    if (opt->resize && slim_resize_mode_parse(opt->resize, &mode) != SLIM_OK)
        return slim_error(SLIM_ERR_ARG, "%s: cannot export to C: unknown resize mode '%.40s'",
                          wr->path, opt->resize);
    if (!(opt->crop_scale >= 0 && opt->crop_scale <= 1))
        return slim_error(SLIM_ERR_ARG, "%s: cannot export to C: crop scale %g is not in [0, 1]",
                          wr->path, opt->crop_scale);
    if (!opt->class_names) return SLIM_OK;
    size_t n = numel_of(&wr->m->layers[wr->m->n_layers - 1]);
    for (size_t k = 0; k < n; k++)
        if (!opt->class_names[k] || strlen(opt->class_names[k]) > CEXP_CLASS_NAME_MAX)
            return slim_error(SLIM_ERR_ARG,
                              "%s: cannot export to C: class name %zu is missing or longer than "
                              "%d bytes",
                              wr->path, k, CEXP_CLASS_NAME_MAX);
    return SLIM_OK;
}

slim_status slim_export_c(const slim_model *model, const char *c_path,
                          const slim_export_c_options *opt) {
    static const slim_export_c_options none = {0};
    if (!opt) opt = &none;
    size_t len = c_path ? strlen(c_path) : 0;
    if (len < 3 || strcmp(c_path + len - 2, ".c") != 0)
        return slim_error(SLIM_ERR_ARG, "export to C: the output '%s' does not end in .c",
                          c_path ? c_path : "");
    if (!model) return slim_error(SLIM_ERR_ARG, "%s: cannot export to C: no model", c_path);
    writer wr = {.m = model, .path = c_path};
    const char *base = strrchr(c_path, '/');
    base = base ? base + 1 : c_path;
    char stem[64];
    snprintf(stem, sizeof stem, "%.*s", (int)(strlen(base) - 2), base);
    slim_export_c_identifier(opt->name ? opt->name : stem, wr.name, sizeof wr.name);
    for (size_t k = 0; k <= strlen(wr.name); k++)
        wr.upper[k] = (char)toupper((unsigned char)wr.name[k]);
    wr.alias = model->n_layers > 0 ? calloc((size_t)model->n_layers, sizeof *wr.alias) : NULL;
    char *h_path = malloc(len + 1);
    if (!h_path || (model->n_layers > 0 && !wr.alias)) {
        free(h_path);
        free(wr.alias);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", c_path);
    }
    memcpy(h_path, c_path, len + 1);
    h_path[len - 1] = 'h';
    const char *producer = opt->producer ? opt->producer : "slim";
    slim_status st = check_model(&wr);
    if (st == SLIM_OK) st = check_options(&wr, opt);
    slim_atomic_file hf = {0}, cf = {0};
    if (st == SLIM_OK) st = slim_atomic_open(h_path, &hf);
    if (st == SLIM_OK) {
        put_header(&wr, hf.f, producer, opt);
        st = slim_atomic_open(c_path, &cf);
        if (st != SLIM_OK) discard(&hf, st);
    }
    if (st == SLIM_OK) {
        st = put_source(&wr, cf.f, h_path + (base - c_path), producer, opt);
        if (st != SLIM_OK) {
            discard(&hf, st);
            discard(&cf, st);
        }
    }
    if (st == SLIM_OK) {
        st = slim_atomic_commit(&hf, ferror(hf.f) ? EIO : 0);
        if (st != SLIM_OK) discard(&cf, st);
    }
    if (st == SLIM_OK) st = slim_atomic_commit(&cf, ferror(cf.f) ? EIO : 0);
    free(h_path);
    free(wr.alias);
    return st;
}
