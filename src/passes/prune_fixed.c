/* The fixed value of a removed channel, followed through the network.
 *
 * A channel is removable when its value no longer depends on the input:
 * gamma_j = 0 makes a BN output the constant beta_j; a conv/dense filter of
 * exact zeros makes its output the constant bias_j. Every op after that
 * keeps it input-independent, but not always constant: a depthwise conv of
 * a constant plane with zero padding is a fixed per-position map (constant
 * inside, different at the borders), and pooling a map gives another map.
 * So a removed channel's value is a plane (rep * h * w positions, in
 * double), followed op by op exactly as the reference kernels compute it,
 * and prune.c folds it into the consumers (a bias, or a bias map).
 *
 * Per layer output channel t this file computes: fixed (the value is
 * input-independent), value (the fixed value; for a channel that is not
 * fixed, the value it takes with gamma := 0 in every BN that is not fixed,
 * which is what threshold > 0 and percent mode remove), filter (exact in
 * training mode too, or in inference mode only: PRUNE_EXACT_*) and live (how
 * far from fixed: 0 where fixed, else |gamma| of the last BN on its path, as
 * a BN renormalises whatever scale reaches it; +inf with no BN since the
 * last producer).
 * Then the score of group channel j is the largest live over the layers
 * consumers read (a channel read fixed everywhere scores 0, however alive
 * it is on the way: gamma = 0 in the BN before a depthwise conv silences
 * the depthwise conv's BN too). */
#include "passes/prune_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float *param_data(const slim_model *m, int index) {
    return index >= 0 ? m->params[index].data : NULL;
}

size_t prune_plane(const prune_plan *p, int i) {
    const slim_layer *l = &p->m->layers[i];
    return (size_t)p->g.rep_of_layer[i] * (size_t)l->h * (size_t)l->w;
}

void prune_conv_double(const slim_conv_shape *s, int groups, const double *x, const float *w,
                       double *y) {
    size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    size_t ksize = (size_t)s->kh * s->kw;
    int cin_g = s->cin / groups, cout_g = s->cout / groups;
    for (int o = 0; o < s->cout; o++) {
        int c0 = o / cout_g * cin_g;
        for (int r = 0; r < s->oh; r++)
            for (int q = 0; q < s->ow; q++) {
                double acc = 0;
                for (int c = 0; c < cin_g; c++) {
                    const double *xp = x + (size_t)(c0 + c) * in_plane;
                    const float *wp = w + ((size_t)o * cin_g + c) * ksize;
                    for (int u = 0; u < s->kh; u++) {
                        int ir = r * s->stride - s->pad + u;
                        if (ir < 0 || ir >= s->h) continue;
                        for (int v = 0; v < s->kw; v++) {
                            int ic = q * s->stride - s->pad + v;
                            if (ic < 0 || ic >= s->w) continue;
                            acc += xp[(size_t)ir * s->w + ic] * (double)wp[(size_t)u * s->kw + v];
                        }
                    }
                }
                y[(size_t)o * out_plane + (size_t)r * s->ow + q] = acc;
            }
    }
}

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

static int all_finite(const double *v, size_t n) {
    for (size_t t = 0; t < n; t++)
        if (!isfinite(v[t])) return 0;
    return 1;
}

/* A producer (conv/dense starting a space): filter t of exact zeros makes
 * output channel t the constant bias_t (0 without a bias) for every finite
 * input, padding or not. A bias map adds a per-position term: counted on
 * only when its plane t is uniform. */
static void producer(const prune_plan *p, int i) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    size_t row = (size_t)l->in_c * (l->kind == SLIM_LAYER_CONV ? (size_t)l->k * (size_t)l->k : 1);
    size_t plane = prune_plane(p, i), bplane = (size_t)l->h * (size_t)l->w;
    const float *w = param_data(m, l->p_weight); /* (c, row) */
    const float *bias = param_data(m, l->p_bias), *bm = param_data(m, l->p_biasmap);
    for (int t = 0; t < l->c; t++) {
        p->live[i][t] = INFINITY;
        if (!all_zero(w + (size_t)t * row, row)) continue;
        float c = bias ? bias[t] : 0.0f;
        if (bm) {
            const float *q = bm + (size_t)t * bplane;
            if (!uniform(q, bplane)) continue;
            c += q[0];
        }
        if (!isfinite(c)) continue;
        for (size_t u = 0; u < plane; u++)
            p->value[i][(size_t)t * plane + u] = c;
        p->fixed[i][t] = 1;
        p->filter[i][t] = PRUNE_EXACT_FILTER;
        p->live[i][t] = 0;
    }
}

/* A depthwise conv: output channel t is filter t over input channel t, plus
 * bias_t and bias-map plane t. A fixed input plane gives a fixed map (the
 * conv of it, borders included); a zero filter gives the bias (and map). */
static void depthwise(const prune_plan *p, int i, int t, const double *in, double *out) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    int a = l->inputs[0];
    size_t kk = (size_t)l->k * (size_t)l->k, plane = prune_plane(p, i);
    const float *w = param_data(m, l->p_weight) + (size_t)t * kk; /* (c, 1, k, k) */
    const float *bias = param_data(m, l->p_bias), *bm = param_data(m, l->p_biasmap);
    slim_conv_shape s = {.n = 1,
                         .cin = 1,
                         .h = l->in_h,
                         .w = l->in_w,
                         .cout = 1,
                         .kh = l->k,
                         .kw = l->k,
                         .stride = l->stride,
                         .pad = l->pad,
                         .oh = l->h,
                         .ow = l->w};
    int zero = all_zero(w, kk);
    if (zero)
        memset(out, 0, plane * sizeof(double));
    else
        prune_conv_double(&s, 1, in, w, out);
    for (size_t u = 0; u < plane; u++)
        out[u] += (bias ? bias[t] : 0.0) + (bm ? bm[(size_t)t * plane + u] : 0.0);
    int fx = (p->fixed[a][t] || zero) && all_finite(out, plane);
    p->fixed[i][t] = (unsigned char)fx;
    p->filter[i][t] = !fx ? 0 : p->fixed[a][t] ? p->filter[a][t] : PRUNE_EXACT_FILTER;
    p->live[i][t] = fx ? 0 : p->live[a][t];
}

/* BN (inference mode): y = gamma (x - mean) / sqrt(var + eps) + beta, as the
 * reference kernel computes it. gamma_t = 0 gives beta_t for every finite x
 * (in training mode too); a fixed input gives a fixed output in inference
 * mode only (in training mode the batch statistics of a fixed input are not
 * the running ones), so a zero-filter fold is exact for inference. */
static void batchnorm(const prune_plan *p, int i, int t, const double *in, double *out) {
    const slim_model *m = p->m;
    const slim_layer *l = &m->layers[i];
    int a = l->inputs[0];
    size_t plane = prune_plane(p, i);
    double g = param_data(m, l->p_gamma)[t], b = param_data(m, l->p_beta)[t];
    for (size_t u = 0; u < plane; u++)
        out[u] = b;
    if (g == 0) {
        p->fixed[i][t] = 1;
        p->live[i][t] = 0;
        return;
    }
    if (p->fixed[a][t]) {
        double invstd = 1.0 / sqrt((double)l->running_var[t] + l->eps);
        for (size_t u = 0; u < plane; u++)
            out[u] = g * (in[u] - (double)l->running_mean[t]) * invstd + b;
        if (all_finite(out, plane)) {
            p->fixed[i][t] = 1;
            p->filter[i][t] = p->filter[a][t] == PRUNE_EXACT_FILTER ? PRUNE_EXACT_FILTER
                                                                    : PRUNE_EXACT_FIXED_INPUT;
            p->live[i][t] = 0;
            return;
        }
        for (size_t u = 0; u < plane; u++)
            out[u] = b;
    }
    p->live[i][t] = fabsf((float)g);
}

/* Pooling of a fixed plane: max pooling never lets the padding win (pad <
 * k: every window overlaps the input) and average pooling leaves it out of
 * the divisor (count_include_pad = false), as the kernels do. gap is the
 * mean of the plane. */
static void pool(const slim_layer *l, const double *in, double *out) {
    if (l->kind == SLIM_LAYER_GAP) {
        double s = 0;
        for (size_t u = 0; u < (size_t)l->in_h * l->in_w; u++)
            s += in[u];
        out[0] = s / ((double)l->in_h * l->in_w);
        return;
    }
    for (int r = 0; r < l->h; r++)
        for (int q = 0; q < l->w; q++) {
            double best = -INFINITY, sum = 0;
            int count = 0;
            for (int u = 0; u < l->k; u++) {
                int ir = r * l->stride - l->pad + u;
                if (ir < 0 || ir >= l->in_h) continue;
                for (int v = 0; v < l->k; v++) {
                    int ic = q * l->stride - l->pad + v;
                    if (ic < 0 || ic >= l->in_w) continue;
                    double x = in[(size_t)ir * l->in_w + ic];
                    best = fmax(best, x);
                    sum += x;
                    count++;
                }
            }
            out[(size_t)r * l->w + q] = l->kind == SLIM_LAYER_MAXPOOL ? best
                                        : count > 0                   ? sum / count
                                                                      : 0;
        }
}

/* How a value made of two fixed values is exact: a zero filter names the
 * reason when one is involved. */
static unsigned char combine(unsigned char a, unsigned char b) {
    if (a == PRUNE_EXACT_FILTER || b == PRUNE_EXACT_FILTER) return PRUNE_EXACT_FILTER;
    return a > b ? a : b;
}

/* Channel t of layer i from its input(s). */
static void follow(prune_plan *p, int i, int t) {
    const slim_layer *l = &p->m->layers[i];
    size_t plane = prune_plane(p, i);
    double *out = p->value[i] + (size_t)t * plane;
    int a = l->inputs[0], ta = t;
    if (l->kind == SLIM_LAYER_CONCAT)
        for (int k = 0; k < l->n_inputs; k++) {
            a = l->inputs[k];
            if (ta < p->g.channels_of_layer[a]) break;
            ta -= p->g.channels_of_layer[a];
        }
    const double *in = p->value[a] + (size_t)ta * prune_plane(p, a);
    switch (l->kind) {
    case SLIM_LAYER_CONV: depthwise(p, i, t, in, out); return;
    case SLIM_LAYER_BN: batchnorm(p, i, t, in, out); return;
    case SLIM_LAYER_RELU:
    case SLIM_LAYER_RELU6:
        for (size_t u = 0; u < plane; u++) {
            out[u] = in[u] > 0 ? in[u] : 0;
            if (l->kind == SLIM_LAYER_RELU6 && out[u] > 6) out[u] = 6;
        }
        break;
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL:
    case SLIM_LAYER_GAP: pool(l, in, out); break;
    case SLIM_LAYER_FLATTEN:
    case SLIM_LAYER_CONCAT: memcpy(out, in, plane * sizeof(double)); break;
    case SLIM_LAYER_ADD: {
        int b = l->inputs[1];
        const double *in2 = p->value[b] + (size_t)t * plane;
        for (size_t u = 0; u < plane; u++)
            out[u] = in[u] + in2[u];
        p->fixed[i][t] = p->fixed[a][t] && p->fixed[b][t];
        p->filter[i][t] =
            combine(p->fixed[a][t] ? p->filter[a][t] : 0, p->fixed[b][t] ? p->filter[b][t] : 0);
        p->live[i][t] = fmaxf(p->live[a][t], p->live[b][t]);
        return;
    }
    default: return; /* no other kind carries group channels */
    }
    p->fixed[i][t] = p->fixed[a][ta];
    p->filter[i][t] = p->filter[a][ta];
    p->live[i][t] = p->live[a][ta];
}

/* Group channel (gi, j)'s score and why, from the layers consumers read:
 * channels nothing reads score by their BNs alone. */
static void score_channels(prune_plan *p) {
    const slim_model *m = p->m;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < m->n_layers; i++) {
            const slim_layer *l = &m->layers[i];
            int a = l->n_inputs == 1 ? l->inputs[0] : -1;
            int exit = a >= 0 && (l->kind == SLIM_LAYER_DENSE ||
                                  (l->kind == SLIM_LAYER_CONV && l->groups <= 1));
            if (pass == 1 && l->kind == SLIM_LAYER_BN)
                a = i;
            else if (!(pass == 0 && exit))
                continue;
            for (int t = 0; p->value[a] && t < p->g.channels_of_layer[a]; t++) {
                int gi = p->g.group_of_channel[a][t], j = p->g.index_of_channel[a][t];
                if (gi < 0 || (pass == 1 && p->read[gi][j])) continue;
                if (pass == 0) p->read[gi][j] = 2; /* marks this pass's readers */
                p->score[gi][j] = fmaxf(p->score[gi][j], p->live[a][t]);
                if (p->fixed[a][t])
                    p->via_filter[gi][j] = combine(p->via_filter[gi][j], p->filter[a][t]);
            }
        }
}

slim_status prune_propagate(prune_plan *p) {
    const slim_model *m = p->m;
    for (int gi = 0; gi < p->g.n_groups; gi++) {
        int nc = p->g.groups[gi].channels;
        p->score[gi] = slim_calloc((size_t)nc, sizeof(float));
        p->via_filter[gi] = slim_calloc((size_t)nc, 1);
        p->read[gi] = slim_calloc((size_t)nc, 1);
        if (!p->score[gi] || !p->via_filter[gi] || !p->read[gi]) return SLIM_ERR_NOMEM;
    }
    for (int i = 0; i < m->n_layers; i++) {
        int nc = p->g.channels_of_layer[i], any = 0;
        for (int t = 0; t < nc && !any; t++)
            any = p->g.group_of_channel[i][t] >= 0;
        if (!any) continue;
        size_t plane = prune_plane(p, i);
        p->value[i] = slim_calloc((size_t)nc * plane, sizeof(double));
        p->fixed[i] = slim_calloc((size_t)nc, 1);
        p->filter[i] = slim_calloc((size_t)nc, 1);
        p->live[i] = slim_calloc((size_t)nc, sizeof(float));
        if (!p->value[i] || !p->fixed[i] || !p->filter[i] || !p->live[i]) return SLIM_ERR_NOMEM;
        const slim_layer *l = &m->layers[i];
        if (l->kind == SLIM_LAYER_DENSE || (l->kind == SLIM_LAYER_CONV && !prune_is_depthwise(l))) {
            producer(p, i);
            continue;
        }
        for (int t = 0; t < nc; t++) {
            p->live[i][t] = INFINITY;
            if (p->g.group_of_channel[i][t] >= 0) follow(p, i, t);
        }
    }
    score_channels(p);
    return SLIM_OK;
}
