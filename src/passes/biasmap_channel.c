/* A model -> model pass: biasmaps as the weights of a channel of ones
 * (declared in slim/passes.h).
 *
 * A biasmap (cout, oh, ow) comes from pruning's exact fold: it is the conv
 * applied to an input holding a constant in each removed channel, with the
 * conv's own zero padding, so that the border positions see fewer taps.
 * The same numbers come out of the conv when its input gets ONE more
 * channel that holds 1 inside the image (0 in the padding, as any channel)
 * and whose 3x3 (k x k) weights W1[o] satisfy
 *
 *   biasmap[o, y, x] = sum_{ky,kx} W1[o, ky, kx] * in(y*s - p + ky) * in(x*s - p + kx)
 *
 * with in(i) = 1 when 0 <= i < the input size, else 0. Per output channel
 * that is B = My W1 Mx^T with two 0/1 matrices (oh x k, ow x k), solved
 * here by least squares in double and then checked: a biasmap that is not
 * of this form (any other (cout, oh, ow) tensor a model file may hold) is
 * left alone and added by a binary step as before.
 *
 * The channel of ones is made by the conv that produces the input: one more
 * output filter, all weights 0 and bias 1 (relu(1) = 1, and max or average
 * pooling of ones is one). Where that producer's channel count is not a
 * multiple of 16, the extra channel lands in the padding of oneDNN's
 * 16-channel blocks, so it costs nothing; the biasmap then rides inside the
 * conv (and its relu with it) instead of a binary add and often a relu step
 * of their own over the whole output.
 *
 * Only producer -> [relu | relu6 | maxpool | avgpool]* -> consumer chains
 * whose every layer is read by the next one only, and in which neither
 * conv is grouped, are rewritten: anything else would see the extra
 * channel (a concat, a second reader), or could not take it (a grouped
 * conv's channel counts must divide into its groups). Those biasmaps stay
 * as they are, for the runtime's general path. A consumer the caller keeps (the runtime:
 * one of its own convs, which add the biasmap themselves at no cost) is
 * not. */
#include "slim/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A kernel larger than this keeps its biasmap (the solve is k^3). */
#define RW_MAX_K 15
/* A rewritten biasmap must come back within this fraction of its largest
 * value: float rounding of the fold is ~1e-7 relative, while a biasmap of
 * another form misses by the order of its values. */
#define RW_TOL 1e-5
/* Channels per block in the blocked layouts the channel should hide in. */
#define RW_BLOCK 16

/* The number of layers reading layer i's output (an input edge each). */
static int readers(const slim_model *m, int i) {
    int count = 0;
    for (int j = i + 1; j < m->n_layers; j++)
        for (int k = 0; k < m->layers[j].n_inputs; k++)
            count += m->layers[j].inputs[k] == i;
    return count;
}

/* The conv whose output reaches conv c through pass-through layers only
 * (relu, relu6 and pools keep ones ones), each read by nothing else, or -1.
 * A grouped producer is none: one more filter would break its groups. */
static int producer_of(const slim_model *m, int c) {
    int u = m->layers[c].inputs[0];
    while (u > 0 && readers(m, u) == 1) {
        slim_layer_kind kind = m->layers[u].kind;
        if (kind == SLIM_LAYER_CONV) return m->layers[u].groups > 1 ? -1 : u;
        if (kind != SLIM_LAYER_RELU && kind != SLIM_LAYER_RELU6 && kind != SLIM_LAYER_MAXPOOL &&
            kind != SLIM_LAYER_AVGPOOL)
            return -1;
        u = m->layers[u].inputs[0];
    }
    return -1;
}

/* m[y][t] = 1 when input index y*stride - pad + t is inside [0, in). */
static void axis_mask(int out, int in, int k, int stride, int pad, double *m) {
    for (int y = 0; y < out; y++)
        for (int t = 0; t < k; t++) {
            int i = y * stride - pad + t;
            m[y * k + t] = i >= 0 && i < in ? 1.0 : 0.0;
        }
}

/* p = (M^T M + eps I)^-1 M^T (k x out): the least-squares inverse of the
 * 0/1 mask M (out x k); eps keeps a rank-deficient M (no padding) solvable
 * and gives the smallest solution there. Gauss-Jordan on a k x k system. */
static void mask_pinv(const double *m, int out, int k, double *p) {
    double a[RW_MAX_K][2 * RW_MAX_K];
    for (int r = 0; r < k; r++)
        for (int c = 0; c < 2 * k; c++) {
            double v = 0;
            if (c < k)
                for (int y = 0; y < out; y++)
                    v += m[y * k + r] * m[y * k + c];
            else
                v = c - k == r;
            a[r][c] = v + (c == r ? 1e-9 * out : 0.0);
        }
    for (int col = 0; col < k; col++) {
        int piv = col;
        for (int r = col + 1; r < k; r++)
            if (fabs(a[r][col]) > fabs(a[piv][col])) piv = r;
        for (int c = 0; c < 2 * k; c++) {
            double t = a[col][c];
            a[col][c] = a[piv][c];
            a[piv][c] = t;
        }
        double d = a[col][col];
        for (int c = 0; c < 2 * k; c++)
            a[col][c] /= d;
        for (int r = 0; r < k; r++)
            if (r != col) {
                double f = a[r][col];
                for (int c = 0; c < 2 * k; c++)
                    a[r][c] -= f * a[col][c];
            }
    }
    for (int r = 0; r < k; r++)
        for (int y = 0; y < out; y++) {
            double v = 0;
            for (int c = 0; c < k; c++)
                v += a[r][k + c] * m[y * k + c];
            p[r * out + y] = v;
        }
}

/* Sets w1 (cout, k, k) to the weights of a channel of ones that give conv
 * c's biasmap (cout, oh, ow) and returns 1, or returns 0 when the biasmap
 * is of another form (or memory ran out: the binary add stays either way). */
static int biasmap_weights(const slim_model *m, int c, float *w1) {
    const slim_layer *l = &m->layers[c];
    int k = l->k, oh = l->h, ow = l->w;
    if (k > RW_MAX_K || l->p_biasmap < 0) return 0;
    /* my (oh, k), mx (ow, k), py (k, oh), px (k, ow), t (k, ow), w (k, k) */
    size_t nd = (size_t)k * ((size_t)oh * 2 + (size_t)ow * 3 + (size_t)k);
    double *buf = malloc(nd * sizeof *buf);
    if (!buf) return 0;
    double *my = buf, *mx = my + (size_t)oh * k, *py = mx + (size_t)ow * k;
    double *px = py + (size_t)k * oh, *t = px + (size_t)k * ow, *w = t + (size_t)k * ow;
    axis_mask(oh, l->in_h, k, l->stride, l->pad, my);
    axis_mask(ow, l->in_w, k, l->stride, l->pad, mx);
    mask_pinv(my, oh, k, py);
    mask_pinv(mx, ow, k, px);
    const float *bm = m->params[l->p_biasmap].data;
    double big = 0;
    for (size_t i = 0; i < (size_t)l->c * oh * ow; i++)
        big = fmax(big, fabs(bm[i]));
    int ok = 1;
    for (int o = 0; o < l->c && ok; o++) {
        const float *b = bm + (size_t)o * oh * ow;
        /* w = py B px^T, through t = py B (k x ow). */
        for (int r = 0; r < k; r++)
            for (int x = 0; x < ow; x++) {
                double v = 0;
                for (int y = 0; y < oh; y++)
                    v += py[r * oh + y] * b[y * ow + x];
                t[r * ow + x] = v;
            }
        for (int r = 0; r < k; r++)
            for (int s = 0; s < k; s++) {
                double v = 0;
                for (int x = 0; x < ow; x++)
                    v += t[r * ow + x] * px[s * ow + x];
                w[r * k + s] = v;
            }
        /* Back through the masks: it must give the biasmap again. */
        for (int y = 0; y < oh && ok; y++)
            for (int x = 0; x < ow && ok; x++) {
                double v = 0;
                for (int r = 0; r < k; r++)
                    for (int s = 0; s < k; s++)
                        v += my[y * k + r] * w[r * k + s] * mx[x * k + s];
                ok = fabs(v - b[y * ow + x]) <= RW_TOL * big;
            }
        for (int r = 0; r < k * k; r++)
            w1[(size_t)o * k * k + r] = (float)w[r];
    }
    free(buf);
    return ok;
}

/* The rewritten structure as text: one more output channel (and a bias)
 * for each producer, no biasmap for each consumer. */
static slim_status rewritten_text(const slim_model *m, const int *ones, const int *fold,
                                  char **text) {
    slim_layer *layers = slim_calloc((size_t)m->n_layers, sizeof *layers);
    if (!layers) return SLIM_ERR_NOMEM;
    for (int i = 0; i < m->n_layers; i++) {
        layers[i] = m->layers[i];
        layers[i].cache = NULL;
        if (ones[i]) {
            layers[i].out_channels++;
            layers[i].has_bias = 1;
        }
        if (fold[i]) layers[i].has_biasmap = 0;
    }
    slim_model view = {.layers = layers, .n_layers = m->n_layers};
    slim_status st = slim_model_to_text(&view, text);
    free(layers);
    return st;
}

/* Conv parameters of `out` from those of `in`: old filters and input
 * channels in place, the biasmap's weights as the last input channel
 * (w1, when folded), a filter of zeros with bias 1 as the last output
 * channel (when it makes ones). */
static void fill_conv(const slim_layer *a, const slim_model *in, const slim_layer *b,
                      slim_model *out, const float *w1) {
    size_t kk = (size_t)a->k * a->k, in_c = (size_t)a->in_c, in_c2 = (size_t)b->in_c;
    const float *w = in->params[a->p_weight].data;
    float *w2 = out->params[b->p_weight].data;
    for (int o = 0; o < a->c; o++) {
        memcpy(w2 + (size_t)o * in_c2 * kk, w + (size_t)o * in_c * kk, in_c * kk * sizeof(float));
        if (w1)
            memcpy(w2 + ((size_t)o * in_c2 + in_c) * kk, w1 + (size_t)o * kk, kk * sizeof(float));
    }
    if (b->p_bias >= 0) {
        float *bias = out->params[b->p_bias].data;
        if (a->p_bias >= 0) memcpy(bias, in->params[a->p_bias].data, (size_t)a->c * sizeof(float));
        if (b->c > a->c) bias[a->c] = 1.0f;
    }
    if (b->p_biasmap >= 0)
        memcpy(out->params[b->p_biasmap].data, in->params[a->p_biasmap].data,
               in->params[a->p_biasmap].numel * sizeof(float));
}

static slim_status copy_param(const slim_model *in, int from, slim_model *out, int to) {
    if (from < 0 && to < 0) return SLIM_OK;
    if (from < 0 || to < 0 || in->params[from].numel != out->params[to].numel)
        return slim_error(SLIM_ERR_SHAPE, "biasmap channel: a rewritten layer changed shape");
    memcpy(out->params[to].data, in->params[from].data, in->params[from].numel * sizeof(float));
    return SLIM_OK;
}

static slim_status fill(const slim_model *in, const int *ones, const int *fold, float *const *w1,
                        slim_model *out) {
    if (out->n_layers != in->n_layers)
        return slim_error(SLIM_ERR_SHAPE, "biasmap channel: the rewritten model lost layers");
    for (int i = 0; i < in->n_layers; i++) {
        const slim_layer *a = &in->layers[i];
        slim_layer *b = &out->layers[i];
        if (b->kind != a->kind || strcmp(a->name, b->name) != 0)
            return slim_error(SLIM_ERR_SHAPE, "biasmap channel: layer '%s' moved in the rewrite",
                              a->name);
        if (ones[i] || fold[i]) {
            fill_conv(a, in, b, out, fold[i] ? w1[i] : NULL);
            continue;
        }
        SLIM_TRY(copy_param(in, a->p_weight, out, b->p_weight));
        SLIM_TRY(copy_param(in, a->p_bias, out, b->p_bias));
        SLIM_TRY(copy_param(in, a->p_biasmap, out, b->p_biasmap));
        SLIM_TRY(copy_param(in, a->p_gamma, out, b->p_gamma));
        SLIM_TRY(copy_param(in, a->p_beta, out, b->p_beta));
        if (a->kind == SLIM_LAYER_BN) {
            memcpy(b->running_mean, a->running_mean, (size_t)a->c * sizeof(float));
            memcpy(b->running_var, a->running_var, (size_t)a->c * sizeof(float));
        }
    }
    return SLIM_OK;
}

slim_status slim_model_biasmap_as_channel(const slim_model *m, const int *keep, slim_model **out,
                                          int *ones, int *fold) {
    if (!m || !out || !ones || !fold)
        return slim_error(SLIM_ERR_ARG, "slim_model_biasmap_as_channel: missing argument");
    *out = NULL;
    int n = m->n_layers;
    memset(ones, 0, (size_t)n * sizeof *ones);
    memset(fold, 0, (size_t)n * sizeof *fold);
    float **w1 = slim_calloc((size_t)n, sizeof *w1);
    if (!w1) return SLIM_ERR_NOMEM;
    int any = 0;
    slim_status st = SLIM_OK;
    for (int c = 1; c < n && st == SLIM_OK; c++) {
        const slim_layer *l = &m->layers[c];
        /* A grouped conv keeps its biasmap: one more input channel would
         * not divide into its groups. */
        if (l->kind != SLIM_LAYER_CONV || l->p_biasmap < 0 || l->groups > 1 || (keep && keep[c]))
            continue;
        int p = producer_of(m, c);
        if (p < 0 || m->layers[p].c % RW_BLOCK == 0) continue;
        w1[c] = malloc((size_t)l->c * l->k * l->k * sizeof(float));
        if (!w1[c]) {
            st = SLIM_ERR_NOMEM;
            break;
        }
        if (!biasmap_weights(m, c, w1[c])) continue;
        ones[p] = fold[c] = any = 1;
    }
    char *text = NULL;
    slim_model *r = NULL;
    if (st == SLIM_OK && any) st = rewritten_text(m, ones, fold, &text);
    if (st == SLIM_OK && any) st = slim_model_parse(text, m->source[0] ? m->source : NULL, &r);
    if (st == SLIM_OK && any) st = fill(m, ones, fold, w1, r);
    if (st == SLIM_OK) {
        *out = r;
        r = NULL;
    } else {
        memset(ones, 0, (size_t)n * sizeof *ones);
        memset(fold, 0, (size_t)n * sizeof *fold);
    }
    slim_model_free(r);
    free(text);
    for (int i = 0; i < n; i++)
        free(w1[i]);
    free(w1);
    return st;
}
