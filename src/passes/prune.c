/* Removing channels and folding their constant contribution, exactly.
 *
 * The steps of slim_prune:
 *   1. find the channel-dependency groups (groups.c);
 *   2. choose the channels to remove (threshold or percent mode; a BN
 *      whose output is exactly constant at a channel scores 0 there, like
 *      gamma = 0; never empty a group);
 *   3. find which channels are input-independent where they are read, and
 *      their fixed value (a constant or a per-position map), followed
 *      through the network op by op (prune_fixed.c);
 *   4. fold that value into every consumer: a dense layer's bias, or a
 *      convolution's bias or bias map (the consumer conv applied, in double,
 *      to an input holding only the fixed values, so zero padding at the
 *      borders is accounted for exactly);
 *   5. write the narrower structure as model text, parse it, and copy the
 *      kept slices of every parameter and BN running statistic (a depthwise
 *      conv keeps its kept channels' filters, and groups = its width).
 * Step 3 runs before step 2 (which reads its scores). docs/PRUNING.md
 * has the proof that step 4 is exact. */
#include "passes/prune_plan.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef prune_plan plan;

slim_prune_options slim_prune_default_options(void) {
    return (slim_prune_options){.mode = SLIM_PRUNE_THRESHOLD, .threshold = 0.0f, .percent = 0.0f};
}

static void free_rows(void **rows, int n) {
    for (int i = 0; rows && i < n; i++)
        free(rows[i]);
    free(rows);
}

void prune_plan_free(plan *p) {
    int ng = p->g.n_groups, nl = p->m ? p->m->n_layers : 0;
    free_rows((void **)p->score, ng);
    free_rows((void **)p->removed, ng);
    free_rows((void **)p->why, ng);
    free_rows((void **)p->keep, ng);
    free(p->n_keep);
    free_rows((void **)p->via_filter, ng);
    free_rows((void **)p->read, ng);
    free_rows((void **)p->value, nl);
    free_rows((void **)p->fixed, nl);
    free_rows((void **)p->filter, nl);
    free_rows((void **)p->live, nl);
    free_rows((void **)p->fold, nl);
    free(p->fold_kind);
    free(p->src);
    slim_prune_groups_free(&p->g);
}

/* Appends a note to the report (if any). */
static slim_status note(slim_prune_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static slim_status note(slim_prune_report *r, const char *fmt, ...) {
    if (!r) return SLIM_OK;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **notes = realloc(r->notes, (size_t)(r->n_notes + 1) * sizeof *notes);
    if (!notes) return slim_error(SLIM_ERR_NOMEM, "out of memory for the prune report");
    r->notes = notes;
    notes[r->n_notes] = strdup(buf);
    if (!notes[r->n_notes]) return slim_error(SLIM_ERR_NOMEM, "out of memory for the prune report");
    r->n_notes++;
    return SLIM_OK;
}

static const float *param_data(const slim_model *m, int index) {
    return index >= 0 ? m->params[index].data : NULL;
}

/* ---- step 2: which channels go ------------------------------------------ */

/* Calls f(p, bn layer, channel t, group channel j, ctx) for every BN channel
 * that carries a channel of group gi. */
typedef void (*bn_visit)(const plan *p, int i, int t, int j, void *ctx);
static void each_bn_channel(const plan *p, int gi, bn_visit f, void *ctx) {
    const slim_prune_group *q = &p->g.groups[gi];
    for (int b = 0; b < q->n_bn; b++) {
        int i = q->bn[b];
        for (int t = 0; t < p->g.channels_of_layer[i]; t++)
            if (p->g.group_of_channel[i][t] == gi) f(p, i, t, p->g.index_of_channel[i][t], ctx);
    }
}

typedef struct finite_ctx {
    int bad_layer, bad_channel;
} finite_ctx;

static void finite_visit(const plan *p, int i, int t, int j, void *ctx) {
    (void)j;
    const slim_layer *l = &p->m->layers[i];
    finite_ctx *c = ctx;
    if (c->bad_layer < 0 &&
        (!isfinite(param_data(p->m, l->p_gamma)[t]) || !isfinite(param_data(p->m, l->p_beta)[t]))) {
        c->bad_layer = i;
        c->bad_channel = t;
    }
}

static slim_status check_finite(const plan *p) {
    const slim_model *m = p->m;
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        finite_ctx c = {-1, -1};
        each_bn_channel(p, gi, finite_visit, &c);
        if (c.bad_layer < 0) continue;
        const slim_layer *l = &m->layers[c.bad_layer];
        return slim_error(SLIM_ERR_NUMERIC,
                          "bn '%s' channel %d: gamma %g, beta %g: cannot prune a model with "
                          "non-finite BN parameters",
                          l->name, c.bad_channel, (double)param_data(m, l->p_gamma)[c.bad_channel],
                          (double)param_data(m, l->p_beta)[c.bad_channel]);
    }
    return SLIM_OK;
}

typedef struct gamma_ctx {
    int j;
    float max_abs;
    int all_zero;
} gamma_ctx;

static void gamma_visit(const plan *p, int i, int t, int j, void *ctx) {
    gamma_ctx *c = ctx;
    if (j != c->j) return;
    float g = param_data(p->m, p->m->layers[i].p_gamma)[t];
    c->max_abs = fmaxf(c->max_abs, fabsf(g));
    if (g != 0.0f) c->all_zero = 0;
}

/* max |gamma| of group channel (gi, j) over its BNs, and whether all are 0. */
static gamma_ctx gammas(const plan *p, int gi, int j) {
    gamma_ctx c = {j, 0.0f, 1};
    each_bn_channel(p, gi, gamma_visit, &c);
    return c;
}

typedef struct allow_ctx {
    int j, ok;
} allow_ctx;

static void allow_visit(const plan *p, int i, int t, int j, void *ctx) {
    allow_ctx *c = ctx;
    if (j != c->j) return;
    const slim_param *g = &p->m->params[p->m->layers[i].p_gamma];
    if (g->data[t] != 0.0f || !p->allow[g->offset + (size_t)t]) c->ok = 0;
}

/* Whether p->allow lets group channel (gi, j) go: gamma exactly 0 and
 * allowed in every BN of the group, so that it is exact in training mode. */
static int allowed(const plan *p, int gi, int j) {
    if (!p->allow) return 1;
    allow_ctx c = {j, p->via_filter[gi][j] == PRUNE_EXACT_ALWAYS};
    each_bn_channel(p, gi, allow_visit, &c);
    return c.ok;
}

typedef struct unit {
    float score;
    int group, channel;
} unit;

static int unit_cmp(const void *a, const void *b) {
    const unit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    return (x->channel > y->channel) - (x->channel < y->channel);
}

static slim_status choose(plan *p, const slim_prune_options *opt, slim_prune_report *r) {
    int ng = p->g.n_groups;
    size_t total = 0;
    for (int gi = 0; gi < ng; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        p->removed[gi] = slim_calloc((size_t)q->channels, 1);
        p->why[gi] = slim_calloc((size_t)q->channels, 1);
        p->keep[gi] = slim_calloc((size_t)q->channels, sizeof(int));
        if (!p->removed[gi] || !p->why[gi] || !p->keep[gi]) return SLIM_ERR_NOMEM;
        total += (size_t)q->channels;
    }

    if (opt->mode == SLIM_PRUNE_THRESHOLD) {
        for (int gi = 0; gi < ng; gi++)
            for (int j = 0; j < p->g.groups[gi].channels; j++)
                p->removed[gi][j] = p->score[gi][j] <= opt->threshold && allowed(p, gi, j);
    } else if (total > 0) {
        unit *u = slim_calloc(total, sizeof *u);
        if (!u) return SLIM_ERR_NOMEM;
        size_t k = 0;
        for (int gi = 0; gi < ng; gi++)
            for (int j = 0; j < p->g.groups[gi].channels; j++)
                u[k++] = (unit){p->score[gi][j], gi, j};
        qsort(u, total, sizeof *u, unit_cmp);
        size_t n_remove = (size_t)((double)opt->percent * (double)total / 100.0);
        if (n_remove > total) n_remove = total;
        for (size_t i = 0; i < n_remove; i++)
            p->removed[u[i].group][u[i].channel] = 1;
        free(u);
    }

    /* Never empty a group: a layer of width 0 is not a layer. Keep the
     * channel with the largest score (the lowest index among equals). */
    for (int gi = 0; gi < ng; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        int kept = 0, best = 0;
        for (int j = 0; j < q->channels; j++) {
            kept += !p->removed[gi][j];
            if (p->score[gi][j] > p->score[gi][best]) best = j;
        }
        if (kept == 0) {
            p->removed[gi][best] = 0;
            /* The score is 0 at a zero-filter channel whatever its gamma:
             * name the gamma, and the zero filters when they are why. */
            float g = gammas(p, gi, best).max_abs;
            SLIM_TRY(note(r,
                          "kept 1 channel of %s to avoid an empty layer (channel %d, |gamma| %g%s)",
                          q->label, best, (double)g,
                          p->score[gi][best] == 0 && g != 0 ? ", constant: zero filters" : ""));
        }
        p->n_keep[gi] = 0;
        for (int j = 0; j < q->channels; j++)
            if (!p->removed[gi][j]) p->keep[gi][p->n_keep[gi]++] = j;
    }

    /* Why each removed channel goes: score 0 means it is read fixed
     * everywhere; the classic gamma = 0 case when that holds in training
     * mode too, else some BN normalises a fixed input (prune_fixed.c). */
    for (int gi = 0; gi < ng; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        for (int j = 0; j < q->channels; j++) {
            if (!p->removed[gi][j]) continue;
            static const unsigned char why_of[] = {
                [PRUNE_EXACT_ALWAYS] = PRUNE_WHY_GAMMA,
                [PRUNE_EXACT_FILTER] = PRUNE_WHY_FILTER,
                [PRUNE_EXACT_FIXED_INPUT] = PRUNE_WHY_FIXED_INPUT,
            };
            p->why[gi][j] =
                p->score[gi][j] != 0.0f ? PRUNE_WHY_APPROX : why_of[p->via_filter[gi][j]];
        }
    }
    return SLIM_OK;
}

/* ---- step 3 is prune_fixed.c ------------------------------------------------ */

/* Counts the removed channels by reason and notes the inexact and the
 * zero-filter ones. */
static slim_status explain(const plan *p, slim_prune_report *r) {
    const slim_model *m = p->m;
    int count[PRUNE_WHY_APPROX + 1] = {0};
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        int n_filter = 0, n_fixed = 0;
        for (int j = 0; j < q->channels; j++) {
            count[p->why[gi][j]]++;
            n_filter += p->why[gi][j] == PRUNE_WHY_FILTER;
            n_fixed += p->why[gi][j] == PRUNE_WHY_FIXED_INPUT;
        }
        if (n_fixed > 0)
            SLIM_TRY(note(r,
                          "%s: removed %d channel%s read through a BN with gamma != 0 whose "
                          "input is fixed (gamma = 0 in a BN before it)",
                          q->label, n_fixed, n_fixed == 1 ? "" : "s"));
        if (n_filter == 0) continue;
        /* The producers whose zero filters made those channels constant. */
        char names[160] = "";
        size_t len = 0;
        for (int k = 0; k < q->n_producers; k++) {
            int i = q->producers[k], hit = 0;
            for (int j = 0; j < q->channels && !hit; j++)
                hit = p->why[gi][j] == PRUNE_WHY_FILTER && p->fixed[i][j];
            if (!hit || len + 1 >= sizeof names) continue;
            int w = snprintf(names + len, sizeof names - len, "%s%s", len ? "+" : "",
                             m->layers[i].name);
            if (w > 0) len += (size_t)w;
            if (len >= sizeof names) len = sizeof names - 1;
        }
        SLIM_TRY(
            note(r, "%s: removed %d channel%s with gamma != 0 whose filters in %s are exactly zero",
                 q->label, n_filter, n_filter == 1 ? "" : "s", names));
    }
    if (count[PRUNE_WHY_FILTER] > 0)
        SLIM_TRY(note(r, "a zero filter's channel outputs the constant gamma (bias - mean) / "
                         "sqrt(var + eps) + beta in inference mode, which is folded exactly; in "
                         "training mode (batch statistics) it would output beta"));
    if (count[PRUNE_WHY_FIXED_INPUT] > 0)
        SLIM_TRY(note(r, "a BN with gamma != 0 normalising a fixed input outputs a fixed value in "
                         "inference mode (running statistics), which is folded exactly; in "
                         "training mode its batch statistics would differ"));
    int nonzero = count[PRUNE_WHY_APPROX];
    if (nonzero > 0)
        SLIM_TRY(note(r,
                      "%d removed channel%s had gamma != 0: treated as gamma = 0 (beta folded "
                      "exactly), so the pruned model approximates the input: fine-tune it",
                      nonzero, nonzero == 1 ? "" : "s"));
    if (r) {
        r->removed_gamma_zero = count[PRUNE_WHY_GAMMA];
        r->removed_zero_filter = count[PRUNE_WHY_FILTER];
        r->removed_fixed_input = count[PRUNE_WHY_FIXED_INPUT];
        r->removed_nonzero = nonzero;
    }
    return SLIM_OK;
}

/* ---- step 4: folding into the consumers --------------------------------- */

/* Dense consumer: the removed features are fixed, so their share of
 * y = x W^T + b is the constant vector W[:, removed] . value: a bias. */
static slim_status fold_dense(plan *p, int i, const int *feat, const double *val, int nf) {
    const slim_layer *l = &p->m->layers[i];
    const float *w = param_data(p->m, l->p_weight); /* (out, in) */
    float *f = p->fold[i] = slim_calloc((size_t)l->c, sizeof(float));
    if (!f) return SLIM_ERR_NOMEM;
    for (int o = 0; o < l->c; o++) {
        double s = 0;
        for (int t = 0; t < nf; t++)
            s += (double)w[(size_t)o * l->in_c + feat[t]] * val[t];
        f[o] = (float)s;
    }
    p->fold_kind[i] = PRUNE_FOLD_BIAS;
    return SLIM_OK;
}

/* Conv consumer: a fixed input plane is NOT a constant to the conv where its
 * window overlaps the zero padding (a border output sees fewer taps of it),
 * nor where the plane itself varies (a fixed map). The exact contribution is
 * the conv itself applied, in double, to an input holding the fixed planes
 * in the removed channels and 0 elsewhere (only the removed channels' weight
 * slices matter, so the conv runs on those alone). Its output (cout, oh, ow)
 * is a bias map; when it does not vary over positions (no padding, or
 * padding never reached, and constant planes) it is a plain bias. */
static slim_status fold_conv(plan *p, int i, const int *chan, const double *x, int nf) {
    const slim_layer *l = &p->m->layers[i];
    const float *w = param_data(p->m, l->p_weight); /* (cout, cin, k, k) */
    size_t kk = (size_t)l->k * (size_t)l->k;
    slim_conv_shape s = {.n = 1,
                         .cin = nf,
                         .h = l->in_h,
                         .w = l->in_w,
                         .cout = l->c,
                         .kh = l->k,
                         .kw = l->k,
                         .stride = l->stride,
                         .pad = l->pad};
    SLIM_TRY(slim_conv_shape_finish(&s));
    if (s.oh != l->h || s.ow != l->w)
        return slim_error(SLIM_ERR_SHAPE, "conv '%s': fold output %dx%d, layer output %dx%d",
                          l->name, s.oh, s.ow, l->h, l->w);
    size_t out_plane = (size_t)s.oh * (size_t)s.ow;
    float *wr = slim_calloc((size_t)l->c * nf * kk, sizeof(float));    /* (cout, nf, k, k) */
    double *y = slim_calloc((size_t)l->c * out_plane, sizeof(double)); /* (cout, oh, ow) */
    float *f = slim_calloc((size_t)l->c * out_plane, sizeof(float));
    if (!wr || !y || !f) {
        free(wr);
        free(y);
        free(f);
        return SLIM_ERR_NOMEM;
    }
    for (int o = 0; o < l->c; o++)
        for (int t = 0; t < nf; t++)
            memcpy(wr + ((size_t)o * nf + t) * kk, w + ((size_t)o * l->in_c + chan[t]) * kk,
                   kk * sizeof(float));
    prune_conv_double(&s, 1, x, wr, y);
    free(wr);

    int uniform = 1;
    for (size_t q = 0; q < (size_t)l->c * out_plane; q++) {
        f[q] = (float)y[q];
        if (f[q] != f[q / out_plane * out_plane]) uniform = 0;
    }
    free(y);
    if (uniform && !l->has_biasmap) {
        /* The same value at every position: a bias is exact and simpler. */
        for (int o = 0; o < l->c; o++)
            f[o] = f[(size_t)o * out_plane];
        p->fold_kind[i] = PRUNE_FOLD_BIAS;
    } else {
        p->fold_kind[i] = PRUNE_FOLD_MAP;
    }
    p->fold[i] = f;
    return SLIM_OK;
}

/* Whether the n doubles at v are all 0 / all equal. */
static int all_zero_d(const double *v, size_t n) {
    for (size_t u = 0; u < n; u++)
        if (v[u] != 0) return 0;
    return 1;
}

static int uniform_d(const double *v, size_t n) {
    for (size_t u = 1; u < n; u++)
        if (v[u] != v[0]) return 0;
    return 1;
}

/* Consumer i reads layer a: folds a's removed channels with a nonzero fixed
 * value into it (none: nothing to do). */
static slim_status fold_one(plan *p, int i, slim_prune_report *r) {
    const slim_layer *l = &p->m->layers[i];
    int a = l->inputs[0];
    if (!p->value[a]) return SLIM_OK;
    int nch = p->g.channels_of_layer[a];
    size_t plane = prune_plane(p, a);
    int n = 0, constant = 1;
    char labels[160] = "";
    size_t len = 0;
    int *chan = slim_calloc((size_t)nch, sizeof(int));
    if (!chan) return SLIM_ERR_NOMEM;
    for (int t = 0; t < nch; t++) {
        int gi = p->g.group_of_channel[a][t], j = p->g.index_of_channel[a][t];
        const double *v = p->value[a] + (size_t)t * plane;
        if (gi < 0 || !p->removed[gi][j] || all_zero_d(v, plane)) continue;
        chan[n++] = t;
        constant = constant && uniform_d(v, plane);
        const char *lab = p->g.groups[gi].label;
        if (!strstr(labels, lab) && len + 3 + strlen(lab) < sizeof labels)
            len +=
                (size_t)snprintf(labels + len, sizeof labels - len, "%s%s", len ? ", " : "", lab);
    }
    slim_status st = SLIM_OK;
    if (n > 0 && l->kind == SLIM_LAYER_DENSE) {
        /* Channel-major: channel t is the features t*plane .. (t+1)*plane - 1
         * (after a flatten, plane = rep), its plane's positions in order. */
        int np = (int)plane;
        int *feat = slim_calloc((size_t)n * plane, sizeof(int));
        double *val = slim_calloc((size_t)n * plane, sizeof(double));
        st = feat && val ? SLIM_OK : SLIM_ERR_NOMEM;
        for (int k = 0; k < n && st == SLIM_OK; k++)
            for (int u = 0; u < np; u++) {
                feat[k * np + u] = chan[k] * np + u;
                val[k * np + u] = p->value[a][(size_t)chan[k] * plane + (size_t)u];
            }
        if (st == SLIM_OK) st = fold_dense(p, i, feat, val, n * np);
        free(feat);
        free(val);
    } else if (n > 0) {
        double *x = slim_calloc((size_t)n * plane, sizeof(double)); /* (n, h, w) */
        st = x ? SLIM_OK : SLIM_ERR_NOMEM;
        for (int k = 0; k < n && st == SLIM_OK; k++)
            memcpy(x + (size_t)k * plane, p->value[a] + (size_t)chan[k] * plane,
                   plane * sizeof(double));
        if (st == SLIM_OK) st = fold_conv(p, i, chan, x, n);
        free(x);
    }
    free(chan);
    if (st != SLIM_OK || n == 0) return st;
    return note(r, "%s: folded %d removed %s channel%s of %s into its %s", l->name, n,
                constant ? "constant" : "fixed", n == 1 ? "" : "s", labels,
                p->fold_kind[i] == PRUNE_FOLD_MAP ? "bias map (zero padding: the border differs)"
                                                  : "bias");
}

static slim_status fold_all(plan *p, slim_prune_report *r) {
    const slim_model *m = p->m;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        int consumer =
            l->kind == SLIM_LAYER_DENSE || (l->kind == SLIM_LAYER_CONV && l->groups <= 1);
        if (consumer && l->n_inputs == 1) SLIM_TRY(fold_one(p, i, r));
    }
    return SLIM_OK;
}

/* ---- step 5: the narrower model ------------------------------------------ */

/* The kept output features of layer i (channels expanded by rep), their
 * count in *n_out; NULL when out of memory. */
static int *kept_features(const plan *p, int i, int *n_out) {
    const slim_layer *l = &p->m->layers[i];
    int rep = p->g.rep_of_layer[i], nch = p->g.channels_of_layer[i];
    int *f = slim_calloc((size_t)(l->c ? l->c : 1), sizeof(int));
    if (!f) return NULL;
    int n = 0;
    for (int t = 0; t < nch; t++) {
        int gi = p->g.group_of_channel[i][t], j = p->g.index_of_channel[i][t];
        if (gi >= 0 && p->removed[gi][j]) continue;
        for (int u = 0; u < rep; u++)
            f[n++] = t * rep + u;
    }
    *n_out = n;
    return f;
}

/* Layer i's kept output channels (features / rep). */
static int kept_channels(const plan *p, int i) {
    int n = 0;
    for (int t = 0; t < p->g.channels_of_layer[i]; t++) {
        int gi = p->g.group_of_channel[i][t], j = p->g.index_of_channel[i][t];
        n += gi < 0 || !p->removed[gi][j];
    }
    return n;
}

static slim_status build_structure(const plan *p, slim_model **out) {
    const slim_model *m = p->m;
    slim_model tmp = {0};
    tmp.n_layers = m->n_layers;
    tmp.layers = slim_calloc((size_t)m->n_layers, sizeof *tmp.layers);
    if (!tmp.layers) return SLIM_ERR_NOMEM;
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &tmp.layers[i];
        *l = m->layers[i];
        l->cache = NULL;
        if (l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE)
            l->out_channels = kept_channels(p, i);
        if (prune_is_depthwise(&m->layers[i])) l->groups = l->out_channels;
        if (p->fold_kind[i] == PRUNE_FOLD_BIAS) l->has_bias = 1;
        if (p->fold_kind[i] == PRUNE_FOLD_MAP) l->has_biasmap = 1;
        if (l->kind == SLIM_LAYER_DENSE) l->declared_in = 0; /* re-inferred */
    }
    char *text = NULL;
    slim_status st = slim_model_to_text(&tmp, &text);
    free(tmp.layers);
    if (st != SLIM_OK) return st;
    char source[300];
    snprintf(source, sizeof source, "%s (pruned)", m->source);
    st = slim_model_parse(text, source, out);
    free(text);
    if (st != SLIM_OK) return slim_error_prefix(st, "pruning: the narrower model does not parse");
    slim_model *n = *out;
    if (n->n_layers != m->n_layers)
        return slim_error(SLIM_ERR_SHAPE, "pruning: layer count changed");
    for (int i = 0; i < m->n_layers; i++) {
        int want = kept_channels(p, i) * p->g.rep_of_layer[i];
        if (strcmp(n->layers[i].name, m->layers[i].name) != 0 || n->layers[i].c != want)
            return slim_error(SLIM_ERR_SHAPE,
                              "pruning: layer '%s' has %d channels after re-parsing, expected %d",
                              m->layers[i].name, n->layers[i].c, want);
    }
    return SLIM_OK;
}

/* Records (with p->src) that value k of new parameter pn comes from value
 * k_old of old parameter po. */
static void map_src(const plan *p, const slim_model *n, int pn, size_t k, int po, size_t k_old) {
    if (p->src && pn >= 0 && po >= 0)
        p->src[n->params[pn].offset + k] = p->m->params[po].offset + k_old;
}

/* Copies the kept slices of layer i's parameters (and running statistics),
 * adding the folds. */
static slim_status copy_layer(const plan *p, slim_model *n, int i) {
    const slim_model *m = p->m;
    const slim_layer *lo = &m->layers[i];
    slim_layer *ln = &n->layers[i];
    if (lo->kind != SLIM_LAYER_CONV && lo->kind != SLIM_LAYER_DENSE && lo->kind != SLIM_LAYER_BN)
        return SLIM_OK;
    int n_rows = 0, n_cols = 1;
    int *rows = kept_features(p, i, &n_rows);
    int *cols = NULL;
    /* A grouped or depthwise conv's filter reads in_c / groups channels of
     * its own group: all of them stay (groups.c). */
    int grouped = lo->kind == SLIM_LAYER_CONV && lo->groups > 1;
    int in_per = grouped ? lo->in_c / lo->groups : lo->in_c;
    if (rows && grouped) {
        cols = slim_calloc((size_t)in_per, sizeof(int));
        for (int c = 0; cols && c < in_per; c++)
            cols[c] = c;
        n_cols = in_per;
    } else if (rows && lo->kind != SLIM_LAYER_BN) {
        cols = kept_features(p, lo->inputs[0], &n_cols);
    }
    if (!rows || (lo->kind != SLIM_LAYER_BN && !cols)) {
        free(rows);
        free(cols);
        return SLIM_ERR_NOMEM;
    }
    slim_status st = SLIM_OK;
    if (n_rows != ln->c ||
        (lo->kind != SLIM_LAYER_BN && n_cols != (grouped ? ln->in_c / ln->groups : ln->in_c))) {
        st = slim_error(SLIM_ERR_SHAPE, "pruning: layer '%s' slices do not match", lo->name);
        goto done;
    }
    if (lo->kind == SLIM_LAYER_BN) {
        float *g = n->params[ln->p_gamma].data, *b = n->params[ln->p_beta].data;
        const float *g0 = param_data(m, lo->p_gamma), *b0 = param_data(m, lo->p_beta);
        for (int o = 0; o < n_rows; o++) {
            g[o] = g0[rows[o]];
            b[o] = b0[rows[o]];
            ln->running_mean[o] = lo->running_mean[rows[o]];
            ln->running_var[o] = lo->running_var[rows[o]];
        }
        for (int o = 0; o < n_rows; o++) {
            map_src(p, n, ln->p_gamma, (size_t)o, lo->p_gamma, (size_t)rows[o]);
            map_src(p, n, ln->p_beta, (size_t)o, lo->p_beta, (size_t)rows[o]);
        }
        goto done;
    }
    size_t kk = lo->kind == SLIM_LAYER_CONV ? (size_t)lo->k * (size_t)lo->k : 1;
    const float *w0 = param_data(m, lo->p_weight);
    float *w = n->params[ln->p_weight].data;
    for (int o = 0; o < n_rows; o++)
        for (int c = 0; c < n_cols; c++) {
            size_t to = ((size_t)o * n_cols + c) * kk,
                   from = ((size_t)rows[o] * in_per + cols[c]) * kk;
            memcpy(w + to, w0 + from, kk * sizeof(float));
            for (size_t q = 0; q < kk; q++)
                map_src(p, n, ln->p_weight, to + q, lo->p_weight, from + q);
        }
    const float *f = p->fold[i];
    if (ln->p_bias >= 0) {
        float *b = n->params[ln->p_bias].data;
        const float *b0 = param_data(m, lo->p_bias);
        for (int o = 0; o < n_rows; o++) {
            b[o] = (b0 ? b0[rows[o]] : 0.0f) +
                   (p->fold_kind[i] == PRUNE_FOLD_BIAS ? f[rows[o]] : 0.0f);
            map_src(p, n, ln->p_bias, (size_t)o, lo->p_bias, (size_t)rows[o]);
        }
    }
    if (ln->p_biasmap >= 0) {
        size_t plane = (size_t)lo->h * (size_t)lo->w;
        float *bm = n->params[ln->p_biasmap].data;
        const float *bm0 = param_data(m, lo->p_biasmap);
        for (int o = 0; o < n_rows; o++)
            for (size_t q = 0; q < plane; q++)
                bm[(size_t)o * plane + q] =
                    (bm0 ? bm0[(size_t)rows[o] * plane + q] : 0.0f) +
                    (p->fold_kind[i] == PRUNE_FOLD_MAP ? f[(size_t)rows[o] * plane + q] : 0.0f);
    }
done:
    free(rows);
    free(cols);
    return st;
}

/* ---- report rows ----------------------------------------------------------- */

static slim_status fill_report(const plan *p, const slim_model *n, slim_prune_report *r) {
    const slim_model *m = p->m;
    r->rows = slim_calloc((size_t)m->n_layers, sizeof *r->rows);
    if (!r->rows) return SLIM_ERR_NOMEM;
    for (int i = 0; i < m->n_layers; i++) {
        size_t pb = slim_layer_params(m, i);
        double mb = slim_layer_macs(m, i);
        if (pb == 0 && mb == 0) continue;
        slim_prune_layer_report *row = &r->rows[r->n_rows++];
        snprintf(row->name, sizeof row->name, "%s", m->layers[i].name);
        row->kind = m->layers[i].kind;
        row->channels_before = m->layers[i].c;
        row->channels_after = n->layers[i].c;
        row->params_before = pb;
        row->params_after = slim_layer_params(n, i);
        row->macs_before = mb;
        row->macs_after = slim_layer_macs(n, i);
        for (int t = 0; t < p->g.channels_of_layer[i]; t++) {
            int gi = p->g.group_of_channel[i][t], j = p->g.index_of_channel[i][t];
            if (gi < 0) continue;
            row->removed_gamma_zero += p->why[gi][j] == PRUNE_WHY_GAMMA;
            row->removed_zero_filter += p->why[gi][j] == PRUNE_WHY_FILTER;
            row->removed_fixed_input += p->why[gi][j] == PRUNE_WHY_FIXED_INPUT;
            row->removed_approx += p->why[gi][j] == PRUNE_WHY_APPROX;
        }
    }
    r->n_groups = p->g.n_groups;
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        r->channels_before += p->g.groups[gi].channels;
        r->channels_after += p->n_keep[gi];
    }
    r->params_before = slim_model_param_count(m);
    r->params_after = slim_model_param_count(n);
    r->macs_before = slim_model_macs(m);
    r->macs_after = slim_model_macs(n);
    return SLIM_OK;
}

/* ---- the whole pass ------------------------------------------------------------ */

static slim_status check_options(const slim_prune_options *o) {
    if (o->mode == SLIM_PRUNE_THRESHOLD) {
        if (!(o->threshold >= 0) || !isfinite(o->threshold))
            return slim_error(SLIM_ERR_ARG, "prune threshold %g must be a finite number >= 0",
                              (double)o->threshold);
        return SLIM_OK;
    }
    if (o->mode == SLIM_PRUNE_PERCENT) {
        if (!(o->percent >= 0 && o->percent <= 100))
            return slim_error(SLIM_ERR_ARG, "prune percent %g must be in [0, 100]",
                              (double)o->percent);
        return SLIM_OK;
    }
    return slim_error(SLIM_ERR_ARG, "unknown prune mode %d", (int)o->mode);
}

slim_status prune_plan_choose(plan *p, const slim_prune_options *opt, slim_prune_report *r) {
    const slim_model *m = p->m;
    SLIM_TRY(slim_prune_find_groups(m, &p->g));
    int ng = p->g.n_groups, nl = m->n_layers;
    p->score = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->score);
    p->removed = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->removed);
    p->why = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->why);
    p->keep = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->keep);
    p->n_keep = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->n_keep);
    p->via_filter = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->via_filter);
    p->read = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->read);
    p->value = slim_calloc((size_t)nl, sizeof *p->value);
    p->fixed = slim_calloc((size_t)nl, sizeof *p->fixed);
    p->filter = slim_calloc((size_t)nl, sizeof *p->filter);
    p->live = slim_calloc((size_t)nl, sizeof *p->live);
    p->fold = slim_calloc((size_t)nl, sizeof *p->fold);
    p->fold_kind = slim_calloc((size_t)nl, sizeof *p->fold_kind);
    if (!p->score || !p->removed || !p->why || !p->keep || !p->n_keep || !p->via_filter ||
        !p->read || !p->value || !p->fixed || !p->filter || !p->live || !p->fold || !p->fold_kind)
        return SLIM_ERR_NOMEM;
    SLIM_TRY(check_finite(p));
    if (ng == 0) SLIM_TRY(note(r, "no prunable channel groups (no conv/dense followed by bn)"));
    SLIM_TRY(prune_propagate(p));
    return choose(p, opt, r);
}

slim_status prune_plan_run(plan *p, const slim_prune_options *opt, slim_model **out,
                           slim_prune_report *r) {
    SLIM_TRY(prune_plan_choose(p, opt, r));
    int nl = p->m->n_layers;
    SLIM_TRY(explain(p, r));
    SLIM_TRY(fold_all(p, r));
    slim_model *n = NULL;
    slim_status st = build_structure(p, &n);
    if (st == SLIM_OK && p->want_src) {
        p->src = slim_calloc(n->param_floats ? n->param_floats : 1, sizeof *p->src);
        if (!p->src) st = SLIM_ERR_NOMEM;
        for (size_t k = 0; p->src && k < n->param_floats; k++)
            p->src[k] = SIZE_MAX;
    }
    for (int i = 0; i < nl && st == SLIM_OK; i++)
        st = copy_layer(p, n, i);
    if (st == SLIM_OK && r) st = fill_report(p, n, r);
    if (st != SLIM_OK) {
        slim_model_free(n);
        return st;
    }
    *out = n;
    return SLIM_OK;
}

slim_status slim_prune(const slim_model *in, const slim_prune_options *opt, slim_model **out,
                       slim_prune_report *report) {
    if (report) memset(report, 0, sizeof *report);
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_prune: out is NULL");
    *out = NULL;
    if (!in || !in->layers || in->n_layers < 2 || !in->params)
        return slim_error(SLIM_ERR_ARG, "slim_prune: no model (or a model without parameters)");
    slim_prune_options o = opt ? *opt : slim_prune_default_options();
    SLIM_TRY(check_options(&o));
    if (report) report->options = o;
    plan p = {.m = in};
    slim_status st = prune_plan_run(&p, &o, out, report);
    prune_plan_free(&p);
    return st;
}
