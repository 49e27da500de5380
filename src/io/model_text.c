/* The model text format (docs/MODEL_FORMAT.md): parsing and writing.
 *
 * One layer per line, `<kind> [<name>] [key=value ...]`, '#' comments. The
 * parser is a single pass: a layer can only name layers above it in from=,
 * so the graph is topologically ordered by construction and a cycle cannot
 * be written down. Every error cites "<source>:<line>:" and says what was
 * expected; shapes are then checked by slim_model_finish (src/nn/model.c),
 * whose messages cite the same lines. */
#include "slim/nn.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest line needs kind + name + 7 keys; more fields are an error
 * rather than silently ignored. */
#define MAX_FIELDS 24
/* Tokens quoted in messages are cut to this many characters. */
#define SHOW_MAX 40

enum key {
    KEY_SHAPE,
    KEY_FROM,
    KEY_OUT,
    KEY_IN,
    KEY_K,
    KEY_STRIDE,
    KEY_PAD,
    KEY_BIAS,
    KEY_BIASMAP,
    KEY_EPS,
    KEY_MOMENTUM,
    KEY_GROUPS,
    KEY_COUNT
};

static const char *const key_names[KEY_COUNT] = {
    "shape", "from", "out",     "in",  "k",        "stride",
    "pad",   "bias", "biasmap", "eps", "momentum", "groups",
};

/* The keys each kind accepts, in the order messages list them; -1 ends. */
static const int kind_keys[SLIM_LAYER_KIND_COUNT][9] = {
    [SLIM_LAYER_INPUT] = {KEY_SHAPE, -1},
    [SLIM_LAYER_CONV] = {KEY_OUT, KEY_K, KEY_STRIDE, KEY_PAD, KEY_GROUPS, KEY_BIAS, KEY_BIASMAP,
                         KEY_FROM, -1},
    [SLIM_LAYER_BN] = {KEY_EPS, KEY_MOMENTUM, KEY_FROM, -1},
    [SLIM_LAYER_RELU] = {KEY_FROM, -1},
    [SLIM_LAYER_MAXPOOL] = {KEY_K, KEY_STRIDE, KEY_PAD, KEY_FROM, -1},
    [SLIM_LAYER_AVGPOOL] = {KEY_K, KEY_STRIDE, KEY_PAD, KEY_FROM, -1},
    [SLIM_LAYER_GAP] = {KEY_FROM, -1},
    [SLIM_LAYER_FLATTEN] = {KEY_FROM, -1},
    [SLIM_LAYER_DENSE] = {KEY_OUT, KEY_IN, KEY_BIAS, KEY_FROM, -1},
    [SLIM_LAYER_ADD] = {KEY_FROM, -1},
    [SLIM_LAYER_CONCAT] = {KEY_FROM, -1},
    [SLIM_LAYER_RELU6] = {KEY_FROM, -1},
};

static const float default_eps = 1e-5f;
static const float default_momentum = 0.1f;

/* ---- parser state and messages ----------------------------------------- */

typedef struct layer_info {
    int bias_given; /* conv: bias= was written (else the bn rule decides) */
    int auto_named; /* the name was made up, not written */
} layer_info;

typedef struct parser {
    const char *source;
    int line; /* current line, 1-based */
    slim_layer *layers;
    layer_info *info;
    int n, cap;
    int kind_count[SLIM_LAYER_KIND_COUNT];
} parser;

/* A printable, shortened copy of a token for messages (input may be any
 * bytes). */
static const char *show(const char *s, char *buf, size_t len) {
    size_t n = 0;
    for (; s[n] && n < SHOW_MAX && n + 4 < len; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
    if (s[n] && n + 4 <= len) memcpy(buf + n, "...", 4);
    return buf;
}
#define SHOW(s) show((s), (char[SHOW_MAX + 8]){0}, SHOW_MAX + 8)

/* "<source>:<line>: <what>" */
static slim_status line_error(const parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static slim_status line_error(const parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    slim_errorv(SLIM_ERR_FORMAT, fmt, ap);
    va_end(ap);
    return slim_error_prefix(SLIM_ERR_FORMAT, "%s:%d", p->source, p->line);
}

/* "<source>:<line>: <kind> '<name>': <what>" for the layer being parsed. */
static slim_status layer_error(const parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static slim_status layer_error(const parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    slim_errorv(SLIM_ERR_FORMAT, fmt, ap);
    va_end(ap);
    const slim_layer *l = &p->layers[p->n];
    return slim_error_prefix(SLIM_ERR_FORMAT, "%s:%d: %s '%s'", p->source, p->line,
                             slim_layer_kind_name(l->kind), l->name);
}

/* ", "-separated list of a kind's keys into buf. */
static const char *key_list(slim_layer_kind kind, char *buf, size_t len) {
    buf[0] = '\0';
    size_t used = 0;
    for (int j = 0; kind_keys[kind][j] >= 0; j++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", j ? ", " : "",
                                 key_names[kind_keys[kind][j]]);
    return buf;
}

static int kind_key_count(slim_layer_kind kind) {
    int n = 0;
    while (kind_keys[kind][n] >= 0)
        n++;
    return n;
}

/* ---- values ------------------------------------------------------------ */

/* Strict decimal integer: optional '-', digits, nothing else. Returns 1 on
 * success, 0 when not an integer, -1 when it overflows a long. */
static int parse_long(const char *v, long *out) {
    const char *d = v[0] == '-' ? v + 1 : v;
    if (*d < '0' || *d > '9') return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end) return 0;
    if (errno == ERANGE) return -1;
    *out = x;
    return 1;
}

static slim_status get_int(const parser *p, int key, const char *v, long lo, long hi, int *out) {
    long x = 0;
    int ok = parse_long(v, &x);
    const char *what = lo >= 1 ? "a positive integer" : "a non-negative integer";
    if (ok == 0 || (ok == 1 && x < lo))
        return layer_error(p, "'%s' must be %s, got '%s'", key_names[key], what, SHOW(v));
    if (ok < 0 || x > hi)
        return layer_error(p, "'%s' is out of range: %s > %ld", key_names[key], SHOW(v), hi);
    *out = (int)x;
    return SLIM_OK;
}

static slim_status get_bool(const parser *p, int key, const char *v, int *out) {
    if (strcmp(v, "0") && strcmp(v, "1"))
        return layer_error(p, "'%s' must be 0 or 1, got '%s'", key_names[key], SHOW(v));
    *out = v[0] == '1';
    return SLIM_OK;
}

static int parse_float(const char *v, float *out) {
    if (!*v) return 0;
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (*end || errno == ERANGE || !isfinite(x)) return 0;
    *out = x;
    return 1;
}

/* "CxHxW", each a positive integer. */
static slim_status get_shape(const parser *p, const char *v, slim_layer *l) {
    int dims[3];
    const char *s = v;
    for (int d = 0; d < 3; d++) {
        long x = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9')
            s++;
        if (s == start || s - start > 9) goto bad;
        x = strtol(start, NULL, 10);
        if (x < 1 || x > SLIM_MODEL_MAX_DIM)
            return layer_error(p,
                               "'shape' sizes must be in [1, %d] (channels x height x width), "
                               "got '%s'",
                               SLIM_MODEL_MAX_DIM, SHOW(v));
        dims[d] = (int)x;
        if (d < 2 && *s++ != 'x') goto bad;
    }
    if (*s) goto bad;
    l->c = dims[0];
    l->h = dims[1];
    l->w = dims[2];
    return SLIM_OK;
bad:
    return layer_error(p, "'shape' must be CxHxW with positive integers (e.g. 1x28x28), got '%s'",
                       SHOW(v));
}

static int find_layer(const parser *p, const char *name) {
    for (int j = 0; j < p->n; j++)
        if (strcmp(p->layers[j].name, name) == 0) return j;
    return -1;
}

/* The index of an earlier layer named `name`. */
static slim_status resolve(const parser *p, const char *name, int *out) {
    int j = find_layer(p, name);
    if (j < 0) {
        const char *self = p->layers[p->n].name;
        return layer_error(p,
                           "unknown layer '%s' (layers can only refer to layers defined above "
                           "them, so cycles are impossible)%s",
                           SHOW(name), strcmp(name, self) == 0 ? "; it is this layer itself" : "");
    }
    *out = j;
    return SLIM_OK;
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* from=a,b[,c...] of an add (exactly two) or a concat (2..SLIM_LAYER_MAX_INPUTS). */
static slim_status apply_from_list(parser *p, slim_layer *l, const char *v) {
    int add = l->kind == SLIM_LAYER_ADD;
    const char *usage = add ? "'from' of an add must name two layers, from=a,b"
                            : "'from' of a concat must name 2 to " STR(
                                  SLIM_LAYER_MAX_INPUTS) " layers, from=a,b[,c...]";
    if (!v) return layer_error(p, "missing required key 'from' (%s)", usage);
    int n = 0;
    for (const char *s = v;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char name[64];
        if (len == 0 || len >= sizeof name || n == (add ? 2 : SLIM_LAYER_MAX_INPUTS))
            return layer_error(p, "%s; got '%s'", usage, SHOW(v));
        memcpy(name, s, len);
        name[len] = '\0';
        SLIM_TRY(resolve(p, name, &l->inputs[n]));
        n++;
        if (!comma) break;
        s = comma + 1;
    }
    if (n < 2) return layer_error(p, "%s; got '%s'", usage, SHOW(v));
    l->n_inputs = n;
    return SLIM_OK;
}

static slim_status apply_from(parser *p, slim_layer *l, const char *v) {
    if (l->kind == SLIM_LAYER_ADD || l->kind == SLIM_LAYER_CONCAT) return apply_from_list(p, l, v);
    l->n_inputs = 1;
    if (!v) {
        l->inputs[0] = p->n - 1;
        return SLIM_OK;
    }
    if (strchr(v, ','))
        return layer_error(
            p, "'from' takes one layer name (only add and concat take more), got '%s'", SHOW(v));
    return resolve(p, v, &l->inputs[0]);
}

static slim_status require(const parser *p, const char *const *vals, int key) {
    if (!vals[key]) return layer_error(p, "missing required key '%s'", key_names[key]);
    return SLIM_OK;
}

/* Window keys of conv and pooling; stride defaults to `stride_default` (0:
 * to k). */
static slim_status apply_window(const parser *p, slim_layer *l, const char *const *vals,
                                int stride_default) {
    SLIM_TRY(require(p, vals, KEY_K));
    SLIM_TRY(get_int(p, KEY_K, vals[KEY_K], 1, SLIM_MODEL_MAX_DIM, &l->k));
    l->stride = stride_default ? stride_default : l->k;
    if (vals[KEY_STRIDE])
        SLIM_TRY(get_int(p, KEY_STRIDE, vals[KEY_STRIDE], 1, SLIM_MODEL_MAX_DIM, &l->stride));
    l->pad = 0;
    if (vals[KEY_PAD]) SLIM_TRY(get_int(p, KEY_PAD, vals[KEY_PAD], 0, SLIM_MODEL_MAX_DIM, &l->pad));
    if (l->pad >= l->k)
        return layer_error(p, "'pad' must be smaller than 'k' (pad=%d, k=%d)", l->pad, l->k);
    return SLIM_OK;
}

static slim_status apply_keys(parser *p, slim_layer *l, const char *const *vals) {
    layer_info *info = &p->info[p->n];
    if (l->kind != SLIM_LAYER_INPUT) SLIM_TRY(apply_from(p, l, vals[KEY_FROM]));
    switch (l->kind) {
    case SLIM_LAYER_INPUT:
        SLIM_TRY(require(p, vals, KEY_SHAPE));
        return get_shape(p, vals[KEY_SHAPE], l);
    case SLIM_LAYER_CONV:
        SLIM_TRY(require(p, vals, KEY_OUT));
        SLIM_TRY(get_int(p, KEY_OUT, vals[KEY_OUT], 1, SLIM_MODEL_MAX_CHANNELS, &l->out_channels));
        SLIM_TRY(apply_window(p, l, vals, 1));
        l->has_bias = 1; /* may become 0 by the bn rule once consumers are known */
        if (vals[KEY_BIAS]) {
            SLIM_TRY(get_bool(p, KEY_BIAS, vals[KEY_BIAS], &l->has_bias));
            info->bias_given = 1;
        }
        if (vals[KEY_BIASMAP])
            SLIM_TRY(get_bool(p, KEY_BIASMAP, vals[KEY_BIASMAP], &l->has_biasmap));
        l->groups = 1;
        if (vals[KEY_GROUPS])
            SLIM_TRY(
                get_int(p, KEY_GROUPS, vals[KEY_GROUPS], 1, SLIM_MODEL_MAX_CHANNELS, &l->groups));
        if (l->out_channels % l->groups)
            return layer_error(p, "'out' must be divisible by 'groups' (out=%d, groups=%d)",
                               l->out_channels, l->groups);
        return SLIM_OK;
    case SLIM_LAYER_BN:
        l->eps = default_eps;
        l->momentum = default_momentum;
        if (vals[KEY_EPS] && (!parse_float(vals[KEY_EPS], &l->eps) || !(l->eps > 0)))
            return layer_error(p, "'eps' must be a positive number, got '%s'", SHOW(vals[KEY_EPS]));
        if (vals[KEY_MOMENTUM] && (!parse_float(vals[KEY_MOMENTUM], &l->momentum) ||
                                   !(l->momentum > 0 && l->momentum <= 1)))
            return layer_error(p, "'momentum' must be a number in (0, 1], got '%s'",
                               SHOW(vals[KEY_MOMENTUM]));
        return SLIM_OK;
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL: return apply_window(p, l, vals, 0);
    case SLIM_LAYER_DENSE:
        SLIM_TRY(require(p, vals, KEY_OUT));
        SLIM_TRY(get_int(p, KEY_OUT, vals[KEY_OUT], 1, SLIM_MODEL_MAX_CHANNELS, &l->out_channels));
        if (vals[KEY_IN])
            SLIM_TRY(
                get_int(p, KEY_IN, vals[KEY_IN], 1, SLIM_MODEL_MAX_ACTIVATION, &l->declared_in));
        l->has_bias = 1;
        if (vals[KEY_BIAS]) SLIM_TRY(get_bool(p, KEY_BIAS, vals[KEY_BIAS], &l->has_bias));
        return SLIM_OK;
    default: return SLIM_OK;
    }
}

/* ---- lines ------------------------------------------------------------- */

static int kind_from_token(const char *tok) {
    for (int k = 0; k < SLIM_LAYER_KIND_COUNT; k++)
        if (strcmp(tok, slim_layer_kind_name((slim_layer_kind)k)) == 0) return k;
    return -1;
}

static slim_status grow(parser *p) {
    if (p->n < p->cap) return SLIM_OK;
    int cap = p->cap ? 2 * p->cap : 32;
    slim_layer *layers = realloc(p->layers, (size_t)cap * sizeof *layers);
    if (!layers) return slim_error(SLIM_ERR_NOMEM, "out of memory parsing %s", p->source);
    p->layers = layers;
    layer_info *info = realloc(p->info, (size_t)cap * sizeof *info);
    if (!info) return slim_error(SLIM_ERR_NOMEM, "out of memory parsing %s", p->source);
    p->info = info;
    p->cap = cap;
    return SLIM_OK;
}

/* Sets the layer's name: the written one, or "<kind><k>". Both must be new. */
static slim_status set_name(parser *p, slim_layer *l, const char *written) {
    layer_info *info = &p->info[p->n];
    const char *kind = slim_layer_kind_name(l->kind);
    int count = ++p->kind_count[l->kind];
    if (written) {
        if (!slim_layer_name_valid(written))
            return line_error(p,
                              "%s: invalid name '%s' (a name starts with a letter or '_', "
                              "continues with letters, digits, '_' or '-', and has at most %d "
                              "characters; or did you mean key=value?)",
                              kind, SHOW(written), SLIM_NAME_MAX - 1);
        snprintf(l->name, sizeof l->name, "%s", written);
    } else if (l->kind == SLIM_LAYER_INPUT) {
        snprintf(l->name, sizeof l->name, "input");
        info->auto_named = 1;
    } else {
        snprintf(l->name, sizeof l->name, "%s%d", kind, count);
        info->auto_named = 1;
    }
    int j = find_layer(p, l->name);
    if (j < 0) return SLIM_OK;
    const slim_layer *o = &p->layers[j];
    if (info->auto_named)
        return layer_error(p,
                           "this layer's automatic name collides with the %s named '%s' at line "
                           "%d; give one of them another name",
                           slim_layer_kind_name(o->kind), o->name, o->line);
    return layer_error(p, "name already used by the %s at line %d%s", slim_layer_kind_name(o->kind),
                       o->line, p->info[j].auto_named ? " (its automatic name)" : "");
}

static slim_status parse_line(parser *p, char *line) {
    for (const char *c = line; *c; c++) {
        unsigned char b = (unsigned char)*c;
        if ((b < 0x20 && !strchr("\t\r\v\f", b)) || b == 0x7f)
            return line_error(p, "unexpected control character 0x%02x in column %d", b,
                              (int)(c - line) + 1);
    }
    char *tok[MAX_FIELDS];
    int ntok = 0;
    char *save = NULL;
    for (char *s = strtok_r(line, " \t\r\v\f", &save); s; s = strtok_r(NULL, " \t\r\v\f", &save)) {
        if (ntok == MAX_FIELDS)
            return line_error(p, "too many fields on one line (at most %d)", MAX_FIELDS);
        tok[ntok++] = s;
    }
    if (ntok == 0) return SLIM_OK;

    int kind = kind_from_token(tok[0]);
    if (kind < 0) {
        char kinds[128] = "";
        for (int k = 0; k < SLIM_LAYER_KIND_COUNT; k++) {
            strcat(kinds, k ? ", " : "");
            strcat(kinds, slim_layer_kind_name((slim_layer_kind)k));
        }
        return line_error(p, "unknown layer kind '%s' (expected one of: %s)", SHOW(tok[0]), kinds);
    }
    if (p->n == 0 && kind != SLIM_LAYER_INPUT)
        return line_error(p, "the first layer must be 'input shape=CxHxW', got '%s'", tok[0]);
    if (p->n > 0 && kind == SLIM_LAYER_INPUT)
        return line_error(p, "'input' may only be the first layer (the input is at line %d)",
                          p->layers[0].line);
    if (p->n >= SLIM_MODEL_MAX_LAYERS)
        return line_error(p, "too many layers (at most %d)", SLIM_MODEL_MAX_LAYERS);
    SLIM_TRY(grow(p));

    slim_layer *l = &p->layers[p->n];
    memset(l, 0, sizeof *l);
    memset(&p->info[p->n], 0, sizeof p->info[p->n]);
    l->kind = (slim_layer_kind)kind;
    l->line = p->line;
    l->p_weight = l->p_bias = l->p_biasmap = l->p_gamma = l->p_beta = -1;
    int t = 1;
    const char *written = NULL;
    if (t < ntok && !strchr(tok[t], '=')) written = tok[t++];
    SLIM_TRY(set_name(p, l, written));

    const char *vals[KEY_COUNT] = {0};
    char keys[128];
    for (; t < ntok; t++) {
        char *eq = strchr(tok[t], '=');
        if (!eq)
            return layer_error(p,
                               "unexpected '%s' (expected key=value; a layer's name, if any, "
                               "comes right after its kind)",
                               SHOW(tok[t]));
        *eq = '\0';
        int key = -1;
        for (int j = 0; kind_keys[kind][j] >= 0; j++)
            if (strcmp(tok[t], key_names[kind_keys[kind][j]]) == 0) key = kind_keys[kind][j];
        if (key < 0)
            return layer_error(p, "unknown key '%s' (expected %s%s)", SHOW(tok[t]),
                               kind_key_count(l->kind) > 1 ? "one of: " : "",
                               key_list(l->kind, keys, sizeof keys));
        if (vals[key]) return layer_error(p, "key '%s' given twice", key_names[key]);
        vals[key] = eq + 1;
    }
    SLIM_TRY(apply_keys(p, l, vals));
    p->n++;
    return SLIM_OK;
}

/* "A conv followed by bn has no bias": a conv without bias= gets one unless
 * its only consumer is a bn layer (whose beta makes a bias redundant). */
static int conv_default_bias(const slim_layer *layers, int n, int i) {
    int consumers = 0, bn_consumer = 0;
    for (int j = i + 1; j < n; j++)
        for (int k = 0; k < layers[j].n_inputs; k++)
            if (layers[j].inputs[k] == i) {
                consumers++;
                bn_consumer = layers[j].kind == SLIM_LAYER_BN;
            }
    return !(consumers == 1 && bn_consumer);
}

slim_status slim_model_parse(const char *text, const char *source, slim_model **out) {
    return slim_model_parse_capped(text, source, 0, out);
}

slim_status slim_model_parse_capped(const char *text, const char *source, size_t max_param_floats,
                                    slim_model **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_model_parse: out is NULL");
    *out = NULL;
    if (!source) source = "<text>";
    if (!text) return slim_error(SLIM_ERR_ARG, "%s: no model text", source);
    parser p = {.source = source};
    slim_model *m = NULL;
    slim_status st = SLIM_OK;
    char *buf = strdup(text);
    if (!buf) return slim_error(SLIM_ERR_NOMEM, "out of memory parsing %s", source);

    int last_line = 1;
    char *line = buf;
    for (p.line = 1; line; p.line++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (*line || nl) last_line = p.line;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        st = parse_line(&p, line);
        if (st != SLIM_OK) goto fail;
        line = nl ? nl + 1 : NULL;
    }
    if (p.n == 0) {
        p.line = last_line;
        st = line_error(&p, "empty model (expected 'input shape=CxHxW' as the first layer)");
        goto fail;
    }
    if (p.n == 1) {
        p.line = p.layers[0].line;
        st = line_error(&p, "the model has no layers after 'input'");
        goto fail;
    }
    for (int i = 0; i < p.n; i++)
        if (p.layers[i].kind == SLIM_LAYER_CONV && !p.info[i].bias_given)
            p.layers[i].has_bias = conv_default_bias(p.layers, p.n, i);

    m = slim_calloc(1, sizeof *m);
    if (!m) {
        st = SLIM_ERR_NOMEM;
        goto fail;
    }
    m->layers = p.layers;
    m->n_layers = p.n;
    p.layers = NULL;
    snprintf(m->source, sizeof m->source, "%s", source);
    m->max_param_floats = max_param_floats;
    m->text = strdup(text);
    if (!m->text) {
        st = slim_error(SLIM_ERR_NOMEM, "out of memory parsing %s", source);
        goto fail;
    }
    st = slim_model_finish(m);
    if (st != SLIM_OK) goto fail;
    free(p.info);
    free(buf);
    *out = m;
    return SLIM_OK;
fail:
    slim_model_free(m);
    free(p.layers);
    free(p.info);
    free(buf);
    return st;
}

slim_status slim_model_load_file(const char *path, slim_model **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_model_load_file: out is NULL");
    *out = NULL;
    if (!path) return slim_error(SLIM_ERR_ARG, "slim_model_load_file: no path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return slim_error(SLIM_ERR_IO, "cannot open model file '%s': %s", path, strerror(errno));
    char *text = malloc((size_t)SLIM_MODEL_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        return slim_error(SLIM_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    size_t n = fread(text, 1, (size_t)SLIM_MODEL_FILE_MAX + 1, f);
    int read_failed = ferror(f);
    fclose(f);
    slim_status st;
    if (read_failed)
        st = slim_error(SLIM_ERR_IO, "cannot read model file '%s'", path);
    else if (n > SLIM_MODEL_FILE_MAX)
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: larger than %d bytes; a model file is a short text, is this the "
                        "right file?",
                        path, SLIM_MODEL_FILE_MAX);
    else if (memchr(text, '\0', n))
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: contains a NUL byte at offset %zu; a model file is plain text", path,
                        (size_t)((char *)memchr(text, '\0', n) - text));
    else {
        text[n] = '\0';
        st = slim_model_parse(text, path, out);
    }
    free(text);
    return st;
}

/* ---- writing ----------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

slim_status slim_model_to_text(const slim_model *model, char **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_model_to_text: out is NULL");
    *out = NULL;
    if (!model || !model->layers || model->n_layers < 1)
        return slim_error(SLIM_ERR_ARG, "slim_model_to_text: empty model");
    const slim_layer *L = model->layers;
    int n = model->n_layers;
    int name_width = 0;
    for (int i = 0; i < n; i++) {
        if (!slim_layer_name_valid(L[i].name))
            return slim_error(SLIM_ERR_ARG,
                              "slim_model_to_text: layer %d has no valid name (finish the model "
                              "first)",
                              i);
        if ((unsigned)L[i].kind >= SLIM_LAYER_KIND_COUNT)
            return slim_error(SLIM_ERR_ARG, "slim_model_to_text: layer %d has an invalid kind", i);
        if (L[i].n_inputs < 0 || L[i].n_inputs > SLIM_LAYER_MAX_INPUTS)
            return slim_error(SLIM_ERR_ARG, "slim_model_to_text: layer '%s' has %d inputs",
                              L[i].name, L[i].n_inputs);
        for (int k = 0; k < L[i].n_inputs; k++)
            if (L[i].inputs[k] < 0 || L[i].inputs[k] >= i)
                return slim_error(SLIM_ERR_ARG,
                                  "slim_model_to_text: layer '%s' refers to layer %d, not above it",
                                  L[i].name, L[i].inputs[k]);
        int len = (int)strlen(L[i].name);
        if (len > name_width) name_width = len;
    }

    sbuf b = {0};
    sb_printf(&b, "# slim model, %d layers (written by slim_model_to_text)\n", n);
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &L[i];
        sb_printf(&b, "%-7s %-*s", slim_layer_kind_name(l->kind), name_width, l->name);
        if (l->kind == SLIM_LAYER_ADD || l->kind == SLIM_LAYER_CONCAT)
            for (int k = 0; k < l->n_inputs; k++)
                sb_printf(&b, "%s%s", k ? "," : " from=", L[l->inputs[k]].name);
        else if (l->kind != SLIM_LAYER_INPUT && l->n_inputs == 1 && l->inputs[0] != i - 1)
            sb_printf(&b, " from=%s", L[l->inputs[0]].name);
        switch (l->kind) {
        case SLIM_LAYER_INPUT: sb_printf(&b, " shape=%dx%dx%d", l->c, l->h, l->w); break;
        case SLIM_LAYER_CONV:
            sb_printf(&b, " out=%d k=%d", l->out_channels, l->k);
            if (l->stride > 1) sb_printf(&b, " stride=%d", l->stride);
            if (l->pad) sb_printf(&b, " pad=%d", l->pad);
            if (l->groups > 1) sb_printf(&b, " groups=%d", l->groups);
            if ((l->has_bias != 0) != conv_default_bias(L, n, i))
                sb_printf(&b, " bias=%d", l->has_bias != 0);
            if (l->has_biasmap) sb_printf(&b, " biasmap=1");
            break;
        case SLIM_LAYER_BN:
            if (l->eps != 0 && l->eps != default_eps) sb_printf(&b, " eps=%.9g", (double)l->eps);
            if (l->momentum != 0 && l->momentum != default_momentum)
                sb_printf(&b, " momentum=%.9g", (double)l->momentum);
            break;
        case SLIM_LAYER_MAXPOOL:
        case SLIM_LAYER_AVGPOOL:
            sb_printf(&b, " k=%d", l->k);
            if (l->stride && l->stride != l->k) sb_printf(&b, " stride=%d", l->stride);
            if (l->pad) sb_printf(&b, " pad=%d", l->pad);
            break;
        case SLIM_LAYER_DENSE:
            sb_printf(&b, " out=%d", l->out_channels);
            if (!l->has_bias) sb_printf(&b, " bias=0");
            break;
        default: break;
        }
        /* Names are padded for alignment; drop the padding when no key follows. */
        while (b.s && b.len > 0 && b.s[b.len - 1] == ' ')
            b.s[--b.len] = '\0';
        sb_printf(&b, "\n");
    }
    if (b.failed) {
        free(b.s);
        return slim_error(SLIM_ERR_NOMEM, "out of memory writing the model text");
    }
    *out = b.s;
    return SLIM_OK;
}
