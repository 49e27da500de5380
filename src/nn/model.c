/* The model graph: structure checks, shape inference, parameter and buffer
 * allocation, lookups and counts. The parser (src/io/model_text.c) fills the
 * layers and calls slim_model_finish; a model built in code gets the same
 * checks and the same allocation. */
#include "slim/nn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Offsets into the blocks are rounded up to this many floats (64 bytes), so
 * that every parameter starts on a cache line. */
#define ALIGN_FLOATS 16

static const char *const kind_names[SLIM_LAYER_KIND_COUNT] = {
    "input", "conv",    "bn",    "relu", "maxpool", "avgpool",
    "gap",   "flatten", "dense", "add",  "concat",  "relu6",
};

const char *slim_layer_kind_name(slim_layer_kind kind) {
    if ((unsigned)kind >= SLIM_LAYER_KIND_COUNT) return "unknown";
    return kind_names[kind];
}

/* ---- messages ---------------------------------------------------------- */

/* Sets "<source>:<line>: <kind> '<name>': <what>" (the line and source are
 * left out when unknown) and returns status. */
static slim_status layer_error(const slim_model *m, int i, slim_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static slim_status layer_error(const slim_model *m, int i, slim_status status, const char *fmt,
                               ...) {
    va_list ap;
    va_start(ap, fmt);
    slim_errorv(status, fmt, ap);
    va_end(ap);
    const slim_layer *l = &m->layers[i];
    char where[320];
    if (m->source[0] && l->line > 0)
        snprintf(where, sizeof where, "%s:%d: ", m->source, l->line);
    else if (m->source[0])
        snprintf(where, sizeof where, "%s: ", m->source);
    else
        where[0] = '\0';
    if (l->name[0])
        return slim_error_prefix(status, "%s%s '%.31s'", where, slim_layer_kind_name(l->kind),
                                 l->name);
    return slim_error_prefix(status, "%s%s (layer %d)", where, slim_layer_kind_name(l->kind), i);
}

/* ---- allocation helpers ----------------------------------------------- */

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Zeroed, 64-byte aligned floats; never NULL on success (even for n = 0). */
static float *alloc_floats(size_t n) {
    size_t bytes = round_up((n ? n : 1) * sizeof(float), 64);
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        slim_error(SLIM_ERR_NOMEM, "cannot allocate %zu bytes for the model", bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

/* Frees parameters and buffers (not layers): the state before finish. */
static void release_blocks(slim_model *m) {
    free(m->params);
    free(m->param_block);
    free(m->grad_block);
    free(m->momentum_block);
    free(m->buffer_block);
    m->params = NULL;
    m->param_block = m->grad_block = m->momentum_block = m->buffer_block = NULL;
    m->n_params = 0;
    m->param_floats = m->buffer_floats = 0;
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        l->p_weight = l->p_bias = l->p_biasmap = l->p_gamma = l->p_beta = -1;
        l->running_mean = l->running_var = NULL;
    }
}

slim_status slim_model_alloc(int n_layers, slim_model **out) {
    *out = NULL;
    if (n_layers < 1 || n_layers > SLIM_MODEL_MAX_LAYERS)
        return slim_error(SLIM_ERR_ARG, "a model needs 1..%d layers, not %d", SLIM_MODEL_MAX_LAYERS,
                          n_layers);
    slim_model *m = slim_calloc(1, sizeof *m);
    if (!m) return SLIM_ERR_NOMEM;
    m->layers = slim_calloc((size_t)n_layers, sizeof *m->layers);
    if (!m->layers) {
        free(m);
        return SLIM_ERR_NOMEM;
    }
    m->n_layers = n_layers;
    snprintf(m->source, sizeof m->source, "<code>");
    *out = m;
    return SLIM_OK;
}

void slim_model_free(slim_model *model) {
    if (!model) return;
    release_blocks(model);
    for (int i = 0; i < model->n_layers && model->layers; i++)
        if (model->layers[i].cache) slim_dnnl_cache_free(model->layers[i].cache);
    free(model->layers);
    free(model->text);
    free(model);
}

/* ---- structure --------------------------------------------------------- */

int slim_layer_name_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= SLIM_NAME_MAX) return 0;
    if (!(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        int ok = c == '_' || c == '-' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* The number of inputs a kind takes; -1 for concat (2..SLIM_LAYER_MAX_INPUTS). */
static int expected_inputs(slim_layer_kind kind) {
    return kind == SLIM_LAYER_INPUT    ? 0
           : kind == SLIM_LAYER_ADD    ? 2
           : kind == SLIM_LAYER_CONCAT ? -1
                                       : 1;
}

/* Checks one layer's hyper-parameters and applies the in-code defaults
 * (stride 0, eps 0, momentum 0). */
static slim_status check_hyper(slim_model *m, int i) {
    slim_layer *l = &m->layers[i];
    switch (l->kind) {
    case SLIM_LAYER_INPUT:
        if (l->c < 1 || l->h < 1 || l->w < 1 || l->c > SLIM_MODEL_MAX_DIM ||
            l->h > SLIM_MODEL_MAX_DIM || l->w > SLIM_MODEL_MAX_DIM)
            return layer_error(m, i, SLIM_ERR_ARG, "shape %dx%dx%d: each size must be in [1, %d]",
                               l->c, l->h, l->w, SLIM_MODEL_MAX_DIM);
        return SLIM_OK;
    case SLIM_LAYER_CONV:
    case SLIM_LAYER_DENSE:
        if (l->out_channels < 1 || l->out_channels > SLIM_MODEL_MAX_CHANNELS)
            return layer_error(m, i, SLIM_ERR_ARG, "out=%d must be in [1, %d]", l->out_channels,
                               SLIM_MODEL_MAX_CHANNELS);
        l->has_bias = l->has_bias != 0;
        if (l->kind == SLIM_LAYER_DENSE) {
            if (l->has_biasmap)
                return layer_error(m, i, SLIM_ERR_ARG, "a dense layer has no biasmap");
            if (l->declared_in < 0)
                return layer_error(m, i, SLIM_ERR_ARG, "in=%d must be positive", l->declared_in);
            return SLIM_OK;
        }
        l->has_biasmap = l->has_biasmap != 0;
        if (l->stride == 0) l->stride = 1;
        if (l->groups == 0) l->groups = 1;
        if (l->groups < 1 || l->groups > SLIM_MODEL_MAX_CHANNELS)
            return layer_error(m, i, SLIM_ERR_ARG, "groups=%d must be in [1, %d]", l->groups,
                               SLIM_MODEL_MAX_CHANNELS);
        if (l->out_channels % l->groups)
            return layer_error(m, i, SLIM_ERR_ARG,
                               "out=%d is not divisible by groups=%d (each group makes out/groups "
                               "channels)",
                               l->out_channels, l->groups);
        break;
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL:
        if (l->stride == 0) l->stride = l->k;
        break;
    case SLIM_LAYER_BN:
        if (l->eps == 0) l->eps = 1e-5f;
        if (l->momentum == 0) l->momentum = 0.1f;
        if (!(l->eps > 0) || !isfinite(l->eps))
            return layer_error(m, i, SLIM_ERR_ARG, "eps=%g must be a positive number",
                               (double)l->eps);
        if (!(l->momentum > 0 && l->momentum <= 1))
            return layer_error(m, i, SLIM_ERR_ARG, "momentum=%g must be in (0, 1]",
                               (double)l->momentum);
        return SLIM_OK;
    default: return SLIM_OK;
    }
    /* conv and pooling windows */
    if (l->k < 1 || l->k > SLIM_MODEL_MAX_DIM)
        return layer_error(m, i, SLIM_ERR_ARG, "k=%d must be in [1, %d]", l->k, SLIM_MODEL_MAX_DIM);
    if (l->stride < 1 || l->stride > SLIM_MODEL_MAX_DIM)
        return layer_error(m, i, SLIM_ERR_ARG, "stride=%d must be in [1, %d]", l->stride,
                           SLIM_MODEL_MAX_DIM);
    if (l->pad < 0 || l->pad >= l->k)
        return layer_error(m, i, SLIM_ERR_ARG, "pad=%d must be in [0, k-1] (k=%d)", l->pad, l->k);
    return SLIM_OK;
}

/* Kinds, names (auto-naming empty ones), input references, hyper-parameters. */
static slim_status check_structure(slim_model *m) {
    int count[SLIM_LAYER_KIND_COUNT] = {0};
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if ((unsigned)l->kind >= SLIM_LAYER_KIND_COUNT)
            return slim_error(SLIM_ERR_ARG, "%s: layer %d has an invalid kind %d", m->source, i,
                              (int)l->kind);
        count[l->kind]++;
        if (!memchr(l->name, '\0', sizeof l->name))
            return slim_error(SLIM_ERR_ARG, "%s: layer %d: name is not NUL-terminated", m->source,
                              i);
        if (!l->name[0]) {
            if (l->kind == SLIM_LAYER_INPUT)
                snprintf(l->name, sizeof l->name, "input");
            else
                snprintf(l->name, sizeof l->name, "%s%d", kind_names[l->kind], count[l->kind]);
        }
        if (!slim_layer_name_valid(l->name))
            return layer_error(m, i, SLIM_ERR_ARG,
                               "invalid name (names match [A-Za-z_][A-Za-z0-9_-]*, at most %d "
                               "characters)",
                               SLIM_NAME_MAX - 1);
        for (int j = 0; j < i; j++)
            if (strcmp(m->layers[j].name, l->name) == 0)
                return layer_error(m, i, SLIM_ERR_ARG, "name already used by layer %d (%s)", j,
                                   slim_layer_kind_name(m->layers[j].kind));
        if ((i == 0) != (l->kind == SLIM_LAYER_INPUT))
            return layer_error(m, i, SLIM_ERR_ARG,
                               i == 0 ? "the first layer must be an input layer"
                                      : "only the first layer may be an input layer");
        int want = expected_inputs(l->kind);
        if (l->n_inputs == 0 && want == 1) {
            l->n_inputs = 1;
            l->inputs[0] = i - 1;
        }
        if (want < 0 && (l->n_inputs < 2 || l->n_inputs > SLIM_LAYER_MAX_INPUTS))
            return layer_error(m, i, SLIM_ERR_ARG, "has %d inputs, expected 2 to %d", l->n_inputs,
                               SLIM_LAYER_MAX_INPUTS);
        if (want >= 0 && l->n_inputs != want)
            return layer_error(m, i, SLIM_ERR_ARG, "has %d inputs, expected %d", l->n_inputs, want);
        for (int j = 0; j < l->n_inputs; j++)
            if (l->inputs[j] < 0 || l->inputs[j] >= i)
                return layer_error(m, i, SLIM_ERR_ARG,
                                   "input %d refers to layer %d (layers can only refer to layers "
                                   "before them)",
                                   j, l->inputs[j]);
        SLIM_TRY(check_hyper(m, i));
    }
    return SLIM_OK;
}

/* ---- shape inference --------------------------------------------------- */

/* Output size of a window: floor((n + 2 pad - k) / stride) + 1, or -1 when
 * the window does not fit even once. */
static int window_out(int n, int k, int stride, int pad) {
    long span = (long)n + 2L * pad - k;
    return span < 0 ? -1 : (int)(span / stride + 1);
}

static slim_status infer_window(slim_model *m, int i, const slim_layer *src) {
    slim_layer *l = &m->layers[i];
    int oh = window_out(l->in_h, l->k, l->stride, l->pad);
    int ow = window_out(l->in_w, l->k, l->stride, l->pad);
    if (oh < 1 || ow < 1)
        return layer_error(m, i, SLIM_ERR_SHAPE,
                           "output would be empty: input '%s' is %dx%dx%d, and k=%d stride=%d "
                           "pad=%d need a height and width of at least %d (h + 2*pad >= k)",
                           src->name, l->in_c, l->in_h, l->in_w, l->k, l->stride, l->pad,
                           l->k - 2 * l->pad);
    l->c = l->kind == SLIM_LAYER_CONV ? l->out_channels : l->in_c;
    l->h = oh;
    l->w = ow;
    return SLIM_OK;
}

static slim_status infer_shapes(slim_model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        const slim_layer *src = l->kind == SLIM_LAYER_INPUT ? l : &m->layers[l->inputs[0]];
        l->in_c = src->c;
        l->in_h = src->h;
        l->in_w = src->w;
        switch (l->kind) {
        case SLIM_LAYER_CONV:
            if (l->in_c % l->groups)
                return layer_error(m, i, SLIM_ERR_SHAPE,
                                   "input '%s' has %d channels, not divisible by groups=%d",
                                   src->name, l->in_c, l->groups);
            SLIM_TRY(infer_window(m, i, src));
            break;
        case SLIM_LAYER_MAXPOOL:
        case SLIM_LAYER_AVGPOOL: SLIM_TRY(infer_window(m, i, src)); break;
        case SLIM_LAYER_BN:
        case SLIM_LAYER_RELU:
        case SLIM_LAYER_RELU6:
            l->c = l->in_c;
            l->h = l->in_h;
            l->w = l->in_w;
            break;
        case SLIM_LAYER_GAP:
            l->c = l->in_c;
            l->h = l->w = 1;
            break;
        case SLIM_LAYER_FLATTEN: {
            size_t f = (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
            if (f > SLIM_MODEL_MAX_ACTIVATION)
                return layer_error(m, i, SLIM_ERR_SHAPE, "%zu features is absurd (at most %d)", f,
                                   SLIM_MODEL_MAX_ACTIVATION);
            l->c = (int)f;
            l->h = l->w = 1;
            break;
        }
        case SLIM_LAYER_DENSE:
            if (l->in_h != 1 || l->in_w != 1)
                return layer_error(m, i, SLIM_ERR_SHAPE,
                                   "input '%s' is %dx%dx%d, not flat: a dense layer needs one "
                                   "feature vector per image (add a 'flatten' or 'gap' layer "
                                   "before it)",
                                   src->name, l->in_c, l->in_h, l->in_w);
            if (l->declared_in && l->declared_in != l->in_c)
                return layer_error(m, i, SLIM_ERR_SHAPE,
                                   "in=%d, but its input '%s' gives %d features", l->declared_in,
                                   src->name, l->in_c);
            l->c = l->out_channels;
            l->h = l->w = 1;
            break;
        case SLIM_LAYER_ADD: {
            const slim_layer *b = &m->layers[l->inputs[1]];
            if (b->c != src->c || b->h != src->h || b->w != src->w)
                return layer_error(m, i, SLIM_ERR_SHAPE,
                                   "inputs '%s' (%dx%dx%d) and '%s' (%dx%dx%d) differ in shape",
                                   src->name, src->c, src->h, src->w, b->name, b->c, b->h, b->w);
            l->c = src->c;
            l->h = src->h;
            l->w = src->w;
            break;
        }
        case SLIM_LAYER_CONCAT: {
            long c = 0;
            for (int j = 0; j < l->n_inputs; j++) {
                const slim_layer *b = &m->layers[l->inputs[j]];
                if (b->h != src->h || b->w != src->w)
                    return layer_error(
                        m, i, SLIM_ERR_SHAPE,
                        "inputs '%s' (%dx%dx%d) and '%s' (%dx%dx%d) differ in height "
                        "or width (concat joins channels of equal-sized maps)",
                        src->name, src->c, src->h, src->w, b->name, b->c, b->h, b->w);
                c += b->c;
            }
            if (c > SLIM_MODEL_MAX_CHANNELS)
                return layer_error(m, i, SLIM_ERR_SHAPE, "%ld channels in all (at most %d)", c,
                                   SLIM_MODEL_MAX_CHANNELS);
            l->in_c = l->c = (int)c;
            l->h = src->h;
            l->w = src->w;
            break;
        }
        default: break;
        }
        size_t numel = (size_t)l->c * (size_t)l->h * (size_t)l->w;
        if (numel > SLIM_MODEL_MAX_ACTIVATION)
            return layer_error(m, i, SLIM_ERR_SHAPE,
                               "output %dx%dx%d (%zu values per image) is absurd (at most %d)",
                               l->c, l->h, l->w, numel, SLIM_MODEL_MAX_ACTIVATION);
    }
    int last = m->n_layers - 1;
    const slim_layer *l = &m->layers[last];
    if (l->h != 1 || l->w != 1)
        return layer_error(m, last, SLIM_ERR_SHAPE,
                           "the last layer gives the logits and must output one value per class, "
                           "but it outputs %dx%dx%d (end with a 'dense' layer, or a 'gap' or "
                           "'flatten')",
                           l->c, l->h, l->w);
    m->n_classes = l->c;
    return SLIM_OK;
}

/* ---- parameters -------------------------------------------------------- */

typedef struct param_spec {
    int layer;
    slim_param_role role;
    int ndim;
    int shape[SLIM_MAX_DIMS];
} param_spec;

static const char *role_suffix(slim_param_role role) {
    switch (role) {
    case SLIM_PARAM_WEIGHT: return "weight";
    case SLIM_PARAM_BIAS: return "bias";
    case SLIM_PARAM_BIASMAP: return "biasmap";
    case SLIM_PARAM_GAMMA: return "gamma";
    case SLIM_PARAM_BETA: return "beta";
    }
    return "param";
}

/* Lists a layer's parameters into specs (at most 3); returns the count. */
static int layer_param_specs(const slim_layer *l, int i, param_spec *specs) {
    int n = 0;
#define ADD_SPEC(ROLE, ND, S0, S1, S2, S3)                                                         \
    specs[n++] = (param_spec) {                                                                    \
        i, ROLE, ND, { S0, S1, S2, S3 }                                                            \
    }
    switch (l->kind) {
    case SLIM_LAYER_CONV:
        ADD_SPEC(SLIM_PARAM_WEIGHT, 4, l->c, l->in_c / l->groups, l->k, l->k);
        if (l->has_bias) ADD_SPEC(SLIM_PARAM_BIAS, 1, l->c, 0, 0, 0);
        if (l->has_biasmap) ADD_SPEC(SLIM_PARAM_BIASMAP, 3, l->c, l->h, l->w, 0);
        break;
    case SLIM_LAYER_DENSE:
        ADD_SPEC(SLIM_PARAM_WEIGHT, 2, l->c, l->in_c, 0, 0);
        if (l->has_bias) ADD_SPEC(SLIM_PARAM_BIAS, 1, l->c, 0, 0, 0);
        break;
    case SLIM_LAYER_BN:
        ADD_SPEC(SLIM_PARAM_GAMMA, 1, l->c, 0, 0, 0);
        ADD_SPEC(SLIM_PARAM_BETA, 1, l->c, 0, 0, 0);
        break;
    default: break;
    }
#undef ADD_SPEC
    return n;
}

static slim_status allocate(slim_model *m) {
    /* First pass: count and size, in double so that absurd sizes cannot
     * overflow before they are rejected. */
    int n_params = 0;
    double floats = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        param_spec specs[3];
        int n = layer_param_specs(l, i, specs);
        for (int s = 0; s < n; s++) {
            double numel = 1;
            for (int d = 0; d < specs[s].ndim; d++)
                numel *= specs[s].shape[d];
            floats += numel + ALIGN_FLOATS;
        }
        n_params += n;
        if (m->max_param_floats &&
            floats > (double)m->max_param_floats + (n_params + 1.0) * ALIGN_FLOATS)
            return layer_error(m, i, SLIM_ERR_FORMAT,
                               "the model needs more parameters by here than the %zu values "
                               "that come with it",
                               m->max_param_floats);
        if (floats > SLIM_MODEL_MAX_PARAM_FLOATS)
            return layer_error(m, i, SLIM_ERR_NOMEM,
                               "the model would have more than %d parameters so far: absurd",
                               SLIM_MODEL_MAX_PARAM_FLOATS);
    }

    m->params = slim_calloc((size_t)(n_params ? n_params : 1), sizeof *m->params);
    if (!m->params) return SLIM_ERR_NOMEM;
    size_t offset = 0, buf_offset = 0;
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        param_spec specs[3];
        int n = layer_param_specs(l, i, specs);
        for (int s = 0; s < n; s++) {
            slim_param *p = &m->params[m->n_params];
            p->role = specs[s].role;
            p->layer = i;
            p->ndim = specs[s].ndim;
            p->numel = 1;
            for (int d = 0; d < p->ndim; d++) {
                p->shape[d] = specs[s].shape[d];
                p->numel *= (size_t)p->shape[d];
            }
            p->offset = offset;
            offset = round_up(offset + p->numel, ALIGN_FLOATS);
            p->trainable = p->role != SLIM_PARAM_BIASMAP;
            snprintf(p->name, sizeof p->name, "%s.%s", l->name, role_suffix(p->role));
            int *slot = p->role == SLIM_PARAM_WEIGHT    ? &l->p_weight
                        : p->role == SLIM_PARAM_BIAS    ? &l->p_bias
                        : p->role == SLIM_PARAM_BIASMAP ? &l->p_biasmap
                        : p->role == SLIM_PARAM_GAMMA   ? &l->p_gamma
                                                        : &l->p_beta;
            *slot = m->n_params++;
        }
        if (l->kind == SLIM_LAYER_BN) buf_offset += 2 * round_up((size_t)l->c, ALIGN_FLOATS);
    }
    m->param_floats = offset;
    m->buffer_floats = buf_offset;
    m->param_block = alloc_floats(offset);
    m->grad_block = alloc_floats(offset);
    m->momentum_block = alloc_floats(offset);
    m->buffer_block = alloc_floats(buf_offset);
    if (!m->param_block || !m->grad_block || !m->momentum_block || !m->buffer_block)
        return SLIM_ERR_NOMEM;
    for (int p = 0; p < m->n_params; p++) {
        slim_param *q = &m->params[p];
        q->data = m->param_block + q->offset;
        q->grad = m->grad_block + q->offset;
        q->momentum = m->momentum_block + q->offset;
    }
    /* Running statistics start as PyTorch's: mean 0, variance 1. */
    buf_offset = 0;
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        size_t step = round_up((size_t)l->c, ALIGN_FLOATS);
        l->running_mean = m->buffer_block + buf_offset;
        l->running_var = m->buffer_block + buf_offset + step;
        for (int c = 0; c < l->c; c++)
            l->running_var[c] = 1.0f;
        buf_offset += 2 * step;
    }
    return SLIM_OK;
}

/* A layer whose output nobody reads is almost always a mistake in the file
 * (a missing from=); it is legal, so it only warns. */
static void warn_unused(const slim_model *m) {
    if (slim_get_log_level() > SLIM_LOG_WARN) return;
    for (int i = 0; i + 1 < m->n_layers; i++) {
        int used = 0;
        for (int j = i + 1; j < m->n_layers && !used; j++)
            for (int k = 0; k < m->layers[j].n_inputs; k++)
                if (m->layers[j].inputs[k] == i) used = 1;
        if (used) continue;
        const slim_layer *l = &m->layers[i];
        if (l->line > 0)
            slim_log(SLIM_LOG_WARN,
                     "%s:%d: %s '%s': output is never used (only the last layer's output is the "
                     "model's output; missing from=?)",
                     m->source, l->line, slim_layer_kind_name(l->kind), l->name);
        else
            slim_log(SLIM_LOG_WARN, "%s: %s '%s': output is never used", m->source,
                     slim_layer_kind_name(l->kind), l->name);
    }
}

slim_status slim_model_finish(slim_model *model) {
    if (!model || !model->layers || model->n_layers < 1)
        return slim_error(SLIM_ERR_ARG, "slim_model_finish: empty model");
    if (model->n_layers > SLIM_MODEL_MAX_LAYERS)
        return slim_error(SLIM_ERR_ARG, "%s: %d layers is more than the limit of %d", model->source,
                          model->n_layers, SLIM_MODEL_MAX_LAYERS);
    if (!memchr(model->source, '\0', sizeof model->source))
        model->source[sizeof model->source - 1] = '\0';
    release_blocks(model);
    SLIM_TRY(check_structure(model));
    SLIM_TRY(infer_shapes(model));
    slim_status st = allocate(model);
    if (st != SLIM_OK) {
        release_blocks(model);
        return st;
    }
    warn_unused(model);
    return SLIM_OK;
}

/* ---- lookups and counts ------------------------------------------------ */

int slim_model_find_layer(const slim_model *model, const char *name) {
    if (!model || !name) return -1;
    for (int i = 0; i < model->n_layers; i++)
        if (strcmp(model->layers[i].name, name) == 0) return i;
    return -1;
}

int slim_model_find_param(const slim_model *model, const char *name) {
    if (!model || !name) return -1;
    for (int i = 0; i < model->n_params; i++)
        if (strcmp(model->params[i].name, name) == 0) return i;
    return -1;
}

void slim_model_zero_grad(slim_model *model) {
    if (model && model->grad_block)
        memset(model->grad_block, 0, model->param_floats * sizeof(float));
}

double slim_layer_macs(const slim_model *model, int layer) {
    if (!model || layer < 0 || layer >= model->n_layers) return 0;
    const slim_layer *l = &model->layers[layer];
    switch (l->kind) {
    case SLIM_LAYER_CONV:
        return (double)l->c * (l->in_c / l->groups) * l->k * l->k * (double)l->h * l->w;
    case SLIM_LAYER_DENSE: return (double)l->in_c * l->c;
    default: return 0;
    }
}

size_t slim_layer_params(const slim_model *model, int layer) {
    if (!model || layer < 0 || layer >= model->n_layers) return 0;
    const slim_layer *l = &model->layers[layer];
    const int idx[] = {l->p_weight, l->p_bias, l->p_gamma, l->p_beta};
    size_t n = 0;
    for (size_t j = 0; j < sizeof idx / sizeof idx[0]; j++)
        if (idx[j] >= 0 && idx[j] < model->n_params) n += model->params[idx[j]].numel;
    return n;
}

double slim_model_macs(const slim_model *model) {
    double total = 0;
    for (int i = 0; model && i < model->n_layers; i++)
        total += slim_layer_macs(model, i);
    return total;
}

size_t slim_model_param_count(const slim_model *model) {
    size_t total = 0;
    for (int i = 0; model && i < model->n_layers; i++)
        total += slim_layer_params(model, i);
    return total;
}
