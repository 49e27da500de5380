/* Removing channels and folding their constant contribution, exactly.
 *
 * The steps of slim_prune:
 *   1. find the channel-dependency groups (groups.c);
 *   2. choose the channels to remove (threshold or percent mode; a BN
 *      whose output is exactly constant at a channel scores 0 there, like
 *      gamma = 0; never empty a group);
 *   3. find which channels are exactly constant and follow the constant
 *      through the group: a conv/dense filter of exact zeros outputs its
 *      bias b_j (0 without one); a BN with gamma_j = 0 outputs beta_j, and
 *      one whose input channel is a constant x outputs gamma_j (x - mean_j) /
 *      sqrt(var_j + eps) + beta_j in inference mode; relu takes max(., 0);
 *      pooling, gap and flatten keep it; an add sums its two inputs';
 *   4. fold that constant into every consumer: a dense layer's bias, or a
 *      convolution's bias or bias map (computed by running the consumer conv
 *      on an input holding only the constants, so zero padding at the borders
 *      is accounted for exactly);
 *   5. write the narrower structure as model text, parse it, and copy the
 *      kept slices of every parameter and BN running statistic.
 * Step 3's constancy is computed before step 2 (which reads it). docs/PRUNING.md
 * has the proof that step 4 is exact. */
#include "slim/prune.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FOLD_NONE = 0, FOLD_BIAS, FOLD_MAP };

/* Why a group channel goes (see slim_prune_layer_report). */
enum { WHY_KEPT = 0, WHY_GAMMA, WHY_FILTER, WHY_APPROX };

typedef struct plan {
    const slim_model *m;
    slim_prune_groups g;
    float **score;           /* per group: (channels) max over the group's BNs of |gamma_j|,
                                counting 0 for a BN whose output is exactly constant at j */
    unsigned char **removed; /* per group: (channels) 1 = removed */
    unsigned char **why;     /* per group: (channels) WHY_* */
    int **keep;              /* per group: (n_keep) kept channel indices, ascending */
    int *n_keep;             /* (n_groups) */
    float **value;           /* per layer in a group: (channels) its output at channel j once the
                                channel is removed: the exact constant where con[i][j], else the
                                value with gamma_j := 0 in the BNs that are not constant */
    unsigned char **con;     /* per layer in a group: (channels) 1 = output exactly constant */
    float **fold;            /* per conv/dense layer: (cout) or (cout, oh, ow); NULL = none */
    int *fold_kind;          /* (n_layers) FOLD_* */
} plan;

slim_prune_options slim_prune_default_options(void) {
    return (slim_prune_options){.mode = SLIM_PRUNE_THRESHOLD, .threshold = 0.0f, .percent = 0.0f};
}

static void free_rows(void **rows, int n) {
    for (int i = 0; rows && i < n; i++)
        free(rows[i]);
    free(rows);
}

static void plan_free(plan *p) {
    int ng = p->g.n_groups, nl = p->m ? p->m->n_layers : 0;
    free_rows((void **)p->score, ng);
    free_rows((void **)p->removed, ng);
    free_rows((void **)p->why, ng);
    free_rows((void **)p->keep, ng);
    free(p->n_keep);
    free_rows((void **)p->value, nl);
    free_rows((void **)p->con, nl);
    free_rows((void **)p->fold, nl);
    free(p->fold_kind);
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

static slim_status check_finite(const plan *p) {
    const slim_model *m = p->m;
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        for (int b = 0; b < q->n_bn; b++) {
            const slim_layer *l = &m->layers[q->bn[b]];
            const float *gam = param_data(m, l->p_gamma), *bet = param_data(m, l->p_beta);
            for (int j = 0; j < q->channels; j++)
                if (!isfinite(gam[j]) || !isfinite(bet[j]))
                    return slim_error(SLIM_ERR_NUMERIC,
                                      "bn '%s' channel %d: gamma %g, beta %g: cannot prune a "
                                      "model with non-finite BN parameters",
                                      l->name, j, (double)gam[j], (double)bet[j]);
        }
    }
    return SLIM_OK;
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
    const slim_model *m = p->m;
    int ng = p->g.n_groups;
    size_t total = 0;
    for (int gi = 0; gi < ng; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        p->score[gi] = slim_calloc((size_t)q->channels, sizeof(float));
        p->removed[gi] = slim_calloc((size_t)q->channels, 1);
        p->why[gi] = slim_calloc((size_t)q->channels, 1);
        p->keep[gi] = slim_calloc((size_t)q->channels, sizeof(int));
        if (!p->score[gi] || !p->removed[gi] || !p->why[gi] || !p->keep[gi]) return SLIM_ERR_NOMEM;
        /* A BN whose output is exactly constant at j (gamma_j = 0, or a
         * constant input: zero filters) scores 0 there: removing the
         * channel loses nothing, whatever its gamma. */
        for (int b = 0; b < q->n_bn; b++) {
            const float *gam = param_data(m, m->layers[q->bn[b]].p_gamma);
            const unsigned char *con = p->con[q->bn[b]];
            for (int j = 0; j < q->channels; j++)
                if (!con[j]) p->score[gi][j] = fmaxf(p->score[gi][j], fabsf(gam[j]));
        }
        total += (size_t)q->channels;
    }

    if (opt->mode == SLIM_PRUNE_THRESHOLD) {
        for (int gi = 0; gi < ng; gi++)
            for (int j = 0; j < p->g.groups[gi].channels; j++)
                p->removed[gi][j] = p->score[gi][j] <= opt->threshold;
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
            float g = 0;
            for (int b = 0; b < q->n_bn; b++)
                g = fmaxf(g, fabsf(param_data(m, m->layers[q->bn[b]].p_gamma)[best]));
            SLIM_TRY(note(r,
                          "kept 1 channel of %s to avoid an empty layer (channel %d, |gamma| %g%s)",
                          q->label, best, (double)g,
                          p->score[gi][best] == 0 && g != 0 ? ", constant: zero filters" : ""));
        }
        p->n_keep[gi] = 0;
        for (int j = 0; j < q->channels; j++)
            if (!p->removed[gi][j]) p->keep[gi][p->n_keep[gi]++] = j;
    }

    /* Why each removed channel goes: score 0 means every BN of the group
     * is exactly constant there; it is the classic gamma = 0 case when all
     * their gammas are 0, else some BN is constant through zero filters. */
    for (int gi = 0; gi < ng; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        for (int j = 0; j < q->channels; j++) {
            if (!p->removed[gi][j]) continue;
            if (p->score[gi][j] != 0.0f) {
                p->why[gi][j] = WHY_APPROX;
                continue;
            }
            int all_gamma = 1;
            for (int b = 0; b < q->n_bn; b++)
                if (param_data(m, m->layers[q->bn[b]].p_gamma)[j] != 0.0f) all_gamma = 0;
            p->why[gi][j] = all_gamma ? WHY_GAMMA : WHY_FILTER;
        }
    }
    return SLIM_OK;
}

/* ---- step 3: which channels are constant, and the constant ------------- */

/* Whether the n floats at w are all exactly 0 (-0 included). */
static int all_zero(const float *w, size_t n) {
    for (size_t t = 0; t < n; t++)
        if (w[t] != 0.0f) return 0;
    return 1;
}

/* Whether the n floats at q all equal q[0]. */
static int uniform(const float *q, size_t n) {
    for (size_t t = 1; t < n; t++)
        if (q[t] != q[0]) return 0;
    return 1;
}

/* A producer (conv/dense) of the group: filter j of exact zeros makes output
 * channel j the constant bias_j (0 without a bias) for every finite input,
 * padding or not. A bias map adds a per-position term: constant only when
 * its plane j is uniform. */
static void producer_constants(const slim_model *m, const slim_layer *l, float *v,
                               unsigned char *con) {
    size_t row = (size_t)l->in_c * (l->kind == SLIM_LAYER_CONV ? (size_t)l->k * (size_t)l->k : 1);
    size_t plane = (size_t)l->h * (size_t)l->w;
    const float *w = param_data(m, l->p_weight); /* (c, row) */
    const float *bias = param_data(m, l->p_bias), *bm = param_data(m, l->p_biasmap);
    for (int j = 0; j < l->c; j++) {
        if (!all_zero(w + (size_t)j * row, row)) continue;
        float c = bias ? bias[j] : 0.0f;
        if (bm) {
            const float *q = bm + (size_t)j * plane;
            if (!uniform(q, plane)) continue;
            c += q[0];
        }
        if (!isfinite(c)) continue;
        v[j] = c;
        con[j] = 1;
    }
}

/* For every member of a group, in model order: whether its output is
 * exactly constant at channel j (con) and its value at a removed channel
 * (value): the exact constant where con, else what it becomes with
 * gamma_j := 0 in the non-constant BNs (percent mode, threshold > 0).
 * Groups.c guarantees that every layer a consumer reads is built from BN
 * outputs by the ops below, so a channel that is constant in every BN is
 * constant wherever it is read.
 *
 * BN (inference mode): y = gamma (x - mean) / sqrt(var + eps) + beta. With
 * gamma_j = 0 it is beta_j for every finite x (in training mode too). With
 * a constant input x_j it is the constant gamma_j (x_j - mean_j) /
 * sqrt(var_j + eps) + beta_j, computed as the reference kernel does; in
 * training mode it would be beta_j instead (the batch variance of a
 * constant is 0), so a zero-filter fold is exact for inference only.
 *
 * Why pooling keeps a constant constant: max pooling's padding never wins
 * (the kernels ignore padded positions, and every window overlaps the input
 * since pad < k), so the max of equal values is that value; average pooling
 * excludes padding from the divisor, so it is the mean of equal values. Both
 * equal the constant up to float rounding of the sum (avg) or exactly (max). */
static slim_status propagate(plan *p) {
    const slim_model *m = p->m;
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        int nc = q->channels;
        for (int k = 0; k < q->n_members; k++) {
            int i = q->members[k];
            const slim_layer *l = &m->layers[i];
            float *v = p->value[i] = slim_calloc((size_t)nc, sizeof(float));
            unsigned char *con = p->con[i] = slim_calloc((size_t)nc, 1);
            if (!v || !con) return SLIM_ERR_NOMEM;
            int producer = l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE;
            const float *a = l->n_inputs > 0 ? p->value[l->inputs[0]] : NULL;
            const float *b = l->n_inputs > 1 ? p->value[l->inputs[1]] : NULL;
            const unsigned char *ca = l->n_inputs > 0 ? p->con[l->inputs[0]] : NULL;
            const unsigned char *cb = l->n_inputs > 1 ? p->con[l->inputs[1]] : NULL;
            /* groups.c puts a non-producer's inputs in its own group (an
             * add's both), so they were filled earlier in model order. */
            if (!producer && ((l->n_inputs > 0 && !a) || (l->n_inputs > 1 && !b)))
                return slim_error(SLIM_ERR_ARG, "pruning: layer '%s' reads outside its group",
                                  l->name);
            if (producer && l->c != nc)
                return slim_error(SLIM_ERR_SHAPE, "pruning: producer '%s' has %d channels, not %d",
                                  l->name, l->c, nc);
            switch (l->kind) {
            case SLIM_LAYER_CONV:
            case SLIM_LAYER_DENSE: producer_constants(m, l, v, con); break;
            case SLIM_LAYER_BN: {
                const float *gam = param_data(m, l->p_gamma), *bet = param_data(m, l->p_beta);
                for (int j = 0; j < nc; j++) {
                    v[j] = bet[j];
                    if (gam[j] == 0.0f) {
                        con[j] = 1;
                    } else if (ca[j]) {
                        double invstd = 1.0 / sqrt((double)l->running_var[j] + l->eps);
                        float c =
                            (float)(gam[j] * (a[j] - (double)l->running_mean[j]) * invstd + bet[j]);
                        if (isfinite(c)) {
                            v[j] = c;
                            con[j] = 1;
                        }
                    }
                }
                break;
            }
            case SLIM_LAYER_RELU:
                for (int j = 0; j < nc; j++) {
                    v[j] = a[j] > 0 ? a[j] : 0.0f;
                    con[j] = ca[j];
                }
                break;
            case SLIM_LAYER_MAXPOOL:
            case SLIM_LAYER_AVGPOOL:
            case SLIM_LAYER_GAP:
            case SLIM_LAYER_FLATTEN:
                memcpy(v, a, (size_t)nc * sizeof(float));
                memcpy(con, ca, (size_t)nc);
                break;
            case SLIM_LAYER_ADD:
                for (int j = 0; j < nc; j++) {
                    v[j] = a[j] + b[j];
                    con[j] = ca[j] && cb[j];
                }
                break;
            default: break; /* no other kind is a group member */
            }
        }
    }
    return SLIM_OK;
}

/* Counts the removed channels by reason and notes the inexact and the
 * zero-filter ones. */
static slim_status explain(const plan *p, slim_prune_report *r) {
    const slim_model *m = p->m;
    int count[WHY_APPROX + 1] = {0};
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        const slim_prune_group *q = &p->g.groups[gi];
        int n_filter = 0;
        for (int j = 0; j < q->channels; j++) {
            count[p->why[gi][j]]++;
            n_filter += p->why[gi][j] == WHY_FILTER;
        }
        if (n_filter == 0) continue;
        /* The producers whose zero filters made those channels constant. */
        char names[160] = "";
        size_t len = 0;
        for (int k = 0; k < q->n_producers; k++) {
            int i = q->producers[k], hit = 0;
            for (int j = 0; j < q->channels && !hit; j++)
                hit = p->why[gi][j] == WHY_FILTER && p->con[i][j];
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
    if (count[WHY_FILTER] > 0)
        SLIM_TRY(note(r, "a zero filter's channel outputs the constant gamma (bias - mean) / "
                         "sqrt(var + eps) + beta in inference mode, which is folded exactly; in "
                         "training mode (batch statistics) it would output beta"));
    int nonzero = count[WHY_APPROX];
    if (nonzero > 0)
        SLIM_TRY(note(r,
                      "%d removed channel%s had gamma != 0: treated as gamma = 0 (beta folded "
                      "exactly), so the pruned model approximates the input: fine-tune it",
                      nonzero, nonzero == 1 ? "" : "s"));
    if (r) {
        r->removed_gamma_zero = count[WHY_GAMMA];
        r->removed_zero_filter = count[WHY_FILTER];
        r->removed_nonzero = nonzero;
    }
    return SLIM_OK;
}

/* ---- step 4: folding into the consumers --------------------------------- */

/* Dense consumer: the removed features are constants, so their share of
 * y = x W^T + b is the constant vector W[:, removed] . c: a bias. */
static slim_status fold_dense(plan *p, int i, const int *feat, const float *val, int nf) {
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
    p->fold_kind[i] = FOLD_BIAS;
    return SLIM_OK;
}

/* Conv consumer: a constant input plane is NOT a constant to the conv where
 * its window overlaps the zero padding: a border output sees fewer taps of
 * it. The exact contribution is the conv itself applied to an input holding
 * the constants in the removed channels and 0 elsewhere (only the removed
 * channels' weight slices matter, so the conv runs on those alone). Its
 * output (cout, oh, ow) is a bias map; when it does not vary over positions
 * (no padding, or padding never reached) it is a plain bias. */
static slim_status fold_conv(plan *p, int i, const int *feat, const float *val, int nf) {
    const slim_layer *l = &p->m->layers[i];
    const float *w = param_data(p->m, l->p_weight); /* (cout, cin, k, k) */
    size_t kk = (size_t)l->k * (size_t)l->k;
    size_t plane = (size_t)l->in_h * (size_t)l->in_w;
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
    float *x = slim_calloc((size_t)nf * plane, sizeof(float));       /* (1, nf, h, w) */
    float *wr = slim_calloc((size_t)l->c * nf * kk, sizeof(float));  /* (cout, nf, k, k) */
    float *y = slim_calloc((size_t)l->c * out_plane, sizeof(float)); /* (1, cout, oh, ow) */
    if (!x || !wr || !y) {
        free(x);
        free(wr);
        free(y);
        return SLIM_ERR_NOMEM;
    }
    for (int t = 0; t < nf; t++)
        for (size_t q = 0; q < plane; q++)
            x[(size_t)t * plane + q] = val[t];
    for (int o = 0; o < l->c; o++)
        for (int t = 0; t < nf; t++)
            memcpy(wr + ((size_t)o * nf + t) * kk, w + ((size_t)o * l->in_c + feat[t]) * kk,
                   kk * sizeof(float));
    slim_ref_conv2d_forward(&s, x, wr, NULL, y);
    free(x);
    free(wr);

    int uniform = 1;
    for (int o = 0; o < l->c && uniform; o++)
        for (size_t q = 1; q < out_plane; q++)
            if (y[(size_t)o * out_plane + q] != y[(size_t)o * out_plane]) {
                uniform = 0;
                break;
            }
    if (uniform && !l->has_biasmap) {
        /* The same value at every position: a bias is exact and simpler. */
        for (int o = 0; o < l->c; o++)
            y[o] = y[(size_t)o * out_plane];
        p->fold_kind[i] = FOLD_BIAS;
    } else {
        p->fold_kind[i] = FOLD_MAP;
    }
    p->fold[i] = y;
    return SLIM_OK;
}

static slim_status fold_all(plan *p, slim_prune_report *r) {
    const slim_model *m = p->m;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if ((l->kind != SLIM_LAYER_CONV && l->kind != SLIM_LAYER_DENSE) || l->n_inputs != 1)
            continue;
        int a = l->inputs[0];
        int gi = p->g.group_of_layer[a];
        if (gi < 0) continue;
        const slim_prune_group *q = &p->g.groups[gi];
        int rep = p->g.rep_of_layer[a];
        const float *v = p->value[a];
        /* The removed features with a nonzero constant (a zero adds nothing). */
        int nf = 0, nch = 0;
        for (int j = 0; j < q->channels; j++)
            if (p->removed[gi][j] && v[j] != 0.0f) nf += rep, nch++;
        if (nf == 0) continue;
        int *feat = slim_calloc((size_t)nf, sizeof(int));
        float *val = slim_calloc((size_t)nf, sizeof(float));
        slim_status st = feat && val ? SLIM_OK : SLIM_ERR_NOMEM;
        int t = 0;
        for (int j = 0; j < q->channels && st == SLIM_OK; j++)
            if (p->removed[gi][j] && v[j] != 0.0f)
                for (int u = 0; u < rep; u++, t++) {
                    feat[t] = j * rep + u;
                    val[t] = v[j];
                }
        if (st == SLIM_OK)
            st = l->kind == SLIM_LAYER_DENSE ? fold_dense(p, i, feat, val, nf)
                                             : fold_conv(p, i, feat, val, nf);
        free(feat);
        free(val);
        SLIM_TRY(st);
        SLIM_TRY(note(r, "%s: folded %d removed constant channel%s of %s into its %s", l->name, nch,
                      nch == 1 ? "" : "s", q->label,
                      p->fold_kind[i] == FOLD_MAP ? "bias map (zero padding: the border differs)"
                                                  : "bias"));
    }
    return SLIM_OK;
}

/* ---- step 5: the narrower model ------------------------------------------ */

/* The kept output channels of layer i (expanded by rep), or NULL for all. */
static int *kept_features(const plan *p, int i, int *n_out) {
    int gi = p->g.group_of_layer[i];
    const slim_layer *l = &p->m->layers[i];
    int rep = p->g.rep_of_layer[i];
    int n = gi >= 0 ? p->n_keep[gi] * rep : l->c;
    int *f = slim_calloc((size_t)(n ? n : 1), sizeof(int));
    if (!f) return NULL;
    if (gi < 0)
        for (int j = 0; j < n; j++)
            f[j] = j;
    else
        for (int k = 0, t = 0; k < p->n_keep[gi]; k++)
            for (int u = 0; u < rep; u++)
                f[t++] = p->keep[gi][k] * rep + u;
    *n_out = n;
    return f;
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
        int gi = p->g.group_of_layer[i];
        if ((l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE) && gi >= 0)
            l->out_channels = p->n_keep[gi];
        if (p->fold_kind[i] == FOLD_BIAS) l->has_bias = 1;
        if (p->fold_kind[i] == FOLD_MAP) l->has_biasmap = 1;
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
        int gi = p->g.group_of_layer[i];
        int want = gi >= 0 ? p->n_keep[gi] * p->g.rep_of_layer[i] : m->layers[i].c;
        if (strcmp(n->layers[i].name, m->layers[i].name) != 0 || n->layers[i].c != want)
            return slim_error(SLIM_ERR_SHAPE,
                              "pruning: layer '%s' has %d channels after re-parsing, expected %d",
                              m->layers[i].name, n->layers[i].c, want);
    }
    return SLIM_OK;
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
    if (rows && lo->kind != SLIM_LAYER_BN) cols = kept_features(p, lo->inputs[0], &n_cols);
    if (!rows || (lo->kind != SLIM_LAYER_BN && !cols)) {
        free(rows);
        free(cols);
        return SLIM_ERR_NOMEM;
    }
    slim_status st = SLIM_OK;
    if (n_rows != ln->c || (lo->kind != SLIM_LAYER_BN && n_cols != ln->in_c)) {
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
        goto done;
    }
    size_t kk = lo->kind == SLIM_LAYER_CONV ? (size_t)lo->k * (size_t)lo->k : 1;
    const float *w0 = param_data(m, lo->p_weight);
    float *w = n->params[ln->p_weight].data;
    for (int o = 0; o < n_rows; o++)
        for (int c = 0; c < n_cols; c++)
            memcpy(w + ((size_t)o * n_cols + c) * kk,
                   w0 + ((size_t)rows[o] * lo->in_c + cols[c]) * kk, kk * sizeof(float));
    const float *f = p->fold[i];
    if (ln->p_bias >= 0) {
        float *b = n->params[ln->p_bias].data;
        const float *b0 = param_data(m, lo->p_bias);
        for (int o = 0; o < n_rows; o++)
            b[o] = (b0 ? b0[rows[o]] : 0.0f) + (p->fold_kind[i] == FOLD_BIAS ? f[rows[o]] : 0.0f);
    }
    if (ln->p_biasmap >= 0) {
        size_t plane = (size_t)lo->h * (size_t)lo->w;
        float *bm = n->params[ln->p_biasmap].data;
        const float *bm0 = param_data(m, lo->p_biasmap);
        for (int o = 0; o < n_rows; o++)
            for (size_t q = 0; q < plane; q++)
                bm[(size_t)o * plane + q] =
                    (bm0 ? bm0[(size_t)rows[o] * plane + q] : 0.0f) +
                    (p->fold_kind[i] == FOLD_MAP ? f[(size_t)rows[o] * plane + q] : 0.0f);
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
        int gi = p->g.group_of_layer[i];
        for (int j = 0; gi >= 0 && j < p->g.groups[gi].channels; j++) {
            row->removed_gamma_zero += p->why[gi][j] == WHY_GAMMA;
            row->removed_zero_filter += p->why[gi][j] == WHY_FILTER;
            row->removed_approx += p->why[gi][j] == WHY_APPROX;
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

static slim_status run(plan *p, const slim_prune_options *opt, slim_model **out,
                       slim_prune_report *r) {
    const slim_model *m = p->m;
    SLIM_TRY(slim_prune_find_groups(m, &p->g));
    int ng = p->g.n_groups, nl = m->n_layers;
    p->score = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->score);
    p->removed = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->removed);
    p->why = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->why);
    p->keep = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->keep);
    p->n_keep = slim_calloc((size_t)(ng ? ng : 1), sizeof *p->n_keep);
    p->value = slim_calloc((size_t)nl, sizeof *p->value);
    p->con = slim_calloc((size_t)nl, sizeof *p->con);
    p->fold = slim_calloc((size_t)nl, sizeof *p->fold);
    p->fold_kind = slim_calloc((size_t)nl, sizeof *p->fold_kind);
    if (!p->score || !p->removed || !p->why || !p->keep || !p->n_keep || !p->value || !p->con ||
        !p->fold || !p->fold_kind)
        return SLIM_ERR_NOMEM;
    SLIM_TRY(check_finite(p));
    if (ng == 0) SLIM_TRY(note(r, "no prunable channel groups (no conv/dense followed by bn)"));
    SLIM_TRY(propagate(p));
    SLIM_TRY(choose(p, opt, r));
    SLIM_TRY(explain(p, r));
    SLIM_TRY(fold_all(p, r));
    slim_model *n = NULL;
    slim_status st = build_structure(p, &n);
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
    slim_status st = run(&p, &o, out, report);
    plan_free(&p);
    return st;
}
