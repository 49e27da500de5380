/* Folding inference-mode batch norm into the conv before it.
 *
 * In inference mode a bn is the affine map y = (x - mean) s + beta per
 * channel, s = gamma / sqrt(var + eps). When its input is a conv that feeds
 * nothing else, the map can be pushed into the conv's weights and bias:
 * conv(x; W, b) + biasmap goes to conv(x; W s, (b - mean) s + beta) +
 * biasmap s. The new structure is written as model text and parsed back, so
 * that the folded model is exactly what its text says. */
#include "slim/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Whether bn layer b can be folded: its input is a conv read only by b. */
static int foldable(const slim_model *m, int b) {
    const slim_layer *l = &m->layers[b];
    if (l->kind != SLIM_LAYER_BN || l->n_inputs != 1) return 0;
    int c = l->inputs[0];
    if (m->layers[c].kind != SLIM_LAYER_CONV) return 0;
    for (int j = c + 1; j < m->n_layers; j++)
        for (int k = 0; k < m->layers[j].n_inputs; k++)
            if (m->layers[j].inputs[k] == c && j != b) return 0;
    return 1;
}

/* The text of the folded structure: the layers without the folded bns, with
 * references to a folded bn redirected to its conv, and folded convs given a
 * bias. */
static slim_status folded_text(const slim_model *in, const int *fold, char **text) {
    int n = in->n_layers;
    slim_layer *layers = slim_calloc((size_t)n, sizeof *layers);
    int *map = slim_calloc((size_t)n, sizeof *map);
    slim_status st = SLIM_OK;
    if (!layers || !map) {
        st = SLIM_ERR_NOMEM;
        goto done;
    }
    int kept = 0;
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &in->layers[i];
        if (fold[i]) {
            map[i] = map[l->inputs[0]];
            layers[map[i]].has_bias = 1;
            continue;
        }
        slim_layer *c = &layers[kept];
        *c = *l;
        c->cache = NULL;
        c->running_mean = c->running_var = NULL;
        for (int k = 0; k < l->n_inputs; k++)
            c->inputs[k] = map[l->inputs[k]];
        map[i] = kept++;
    }
    /* to_text reads only the layers; a header over the edited copy will do. */
    slim_model view = {.layers = layers, .n_layers = kept};
    st = slim_model_to_text(&view, text);
done:
    free(layers);
    free(map);
    return st;
}

static slim_status copy_param(const slim_model *in, int from, slim_model *out, int to,
                              const char *layer) {
    if (from < 0 && to < 0) return SLIM_OK;
    if (from < 0 || to < 0 || in->params[from].numel != out->params[to].numel)
        return slim_error(SLIM_ERR_SHAPE, "fold_bn: parameters of layer '%s' do not match", layer);
    memcpy(out->params[to].data, in->params[from].data, in->params[from].numel * sizeof(float));
    return SLIM_OK;
}

/* Folds bn layer `b` of `in` into layer `to` (its conv) of `out`; the conv's
 * own parameters come from `in`'s layer `c`. */
static void fold_params(const slim_model *in, int c, int b, slim_model *out, int to) {
    const slim_layer *conv = &in->layers[c], *bn = &in->layers[b];
    const slim_layer *dst = &out->layers[to];
    const float *gamma = in->params[bn->p_gamma].data, *beta = in->params[bn->p_beta].data;
    const float *w = in->params[conv->p_weight].data;
    const float *bias = conv->p_bias >= 0 ? in->params[conv->p_bias].data : NULL;
    float *w2 = out->params[dst->p_weight].data, *b2 = out->params[dst->p_bias].data;
    size_t per_out = in->params[conv->p_weight].numel / (size_t)conv->c;
    size_t plane = (size_t)conv->h * (size_t)conv->w;
    for (int o = 0; o < conv->c; o++) {
        /* In double: s is the one number every folded weight depends on. */
        double s = gamma[o] / sqrt((double)bn->running_var[o] + (double)bn->eps);
        for (size_t k = 0; k < per_out; k++)
            w2[(size_t)o * per_out + k] = (float)(w[(size_t)o * per_out + k] * s);
        double b = bias ? bias[o] : 0.0;
        b2[o] = (float)((b - bn->running_mean[o]) * s + beta[o]);
        if (conv->p_biasmap >= 0) {
            const float *m = in->params[conv->p_biasmap].data + (size_t)o * plane;
            float *m2 = out->params[dst->p_biasmap].data + (size_t)o * plane;
            for (size_t k = 0; k < plane; k++)
                m2[k] = (float)(m[k] * s);
        }
    }
}

/* Fills the parameters and running statistics of `out` from `in`. */
static slim_status fill(const slim_model *in, const int *fold, slim_model *out) {
    for (int i = 0; i < in->n_layers; i++) {
        const slim_layer *l = &in->layers[i];
        if (fold[i]) continue;
        int to = slim_model_find_layer(out, l->name);
        if (to < 0 || out->layers[to].kind != l->kind)
            return slim_error(SLIM_ERR_FORMAT, "fold_bn: layer '%s' is lost in the folded model",
                              l->name);
        slim_layer *t = &out->layers[to];
        int folded_bn = -1;
        for (int j = i + 1; j < in->n_layers && folded_bn < 0; j++)
            if (fold[j] && in->layers[j].inputs[0] == i) folded_bn = j;
        if (folded_bn >= 0) {
            if (t->p_bias < 0 || (t->p_biasmap >= 0) != (l->p_biasmap >= 0) ||
                out->params[t->p_weight].numel != in->params[l->p_weight].numel)
                return slim_error(SLIM_ERR_SHAPE, "fold_bn: conv '%s' changed shape", l->name);
            fold_params(in, i, folded_bn, out, to);
            continue;
        }
        SLIM_TRY(copy_param(in, l->p_weight, out, t->p_weight, l->name));
        SLIM_TRY(copy_param(in, l->p_bias, out, t->p_bias, l->name));
        SLIM_TRY(copy_param(in, l->p_biasmap, out, t->p_biasmap, l->name));
        SLIM_TRY(copy_param(in, l->p_gamma, out, t->p_gamma, l->name));
        SLIM_TRY(copy_param(in, l->p_beta, out, t->p_beta, l->name));
        if (l->kind == SLIM_LAYER_BN) {
            memcpy(t->running_mean, l->running_mean, (size_t)l->c * sizeof(float));
            memcpy(t->running_var, l->running_var, (size_t)l->c * sizeof(float));
        }
    }
    return SLIM_OK;
}

slim_status slim_model_fold_bn(const slim_model *in, slim_model **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_model_fold_bn: out is NULL");
    *out = NULL;
    if (!in || !in->layers || in->n_layers < 2 || !in->params)
        return slim_error(SLIM_ERR_ARG, "slim_model_fold_bn: no model (or one not finished)");
    int *fold = slim_calloc((size_t)in->n_layers, sizeof *fold);
    if (!fold) return SLIM_ERR_NOMEM;
    for (int i = 0; i < in->n_layers; i++)
        fold[i] = foldable(in, i);
    char *text = NULL;
    slim_model *m = NULL;
    slim_status st = folded_text(in, fold, &text);
    if (st == SLIM_OK) st = slim_model_parse(text, in->source[0] ? in->source : NULL, &m);
    if (st == SLIM_OK) st = fill(in, fold, m);
    if (st != SLIM_OK) {
        slim_error_prefix(st, "folding batch norm");
        slim_model_free(m);
        m = NULL;
    }
    free(text);
    free(fold);
    *out = m;
    return st;
}
