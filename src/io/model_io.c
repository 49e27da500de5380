/* A model's parameters, BN statistics and momentum in a checkpoint. */
#include "slim/model_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int finite_all(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static slim_status add(slim_ckpt *ck, const char *name, int ndim, const int *shape,
                       const float *data, int is_optim) {
    if (!finite_all(data, slim_shape_numel(ndim, shape)))
        return slim_error(SLIM_ERR_NUMERIC, "tensor '%s' holds NaN or Inf; not saved", name);
    return slim_ckpt_add_tensor(ck, name, ndim, shape, data, is_optim);
}

slim_status slim_model_to_ckpt(const slim_model *model, uint32_t kind, int with_optim,
                               slim_ckpt **out) {
    *out = NULL;
    slim_ckpt *ck = slim_ckpt_new(kind);
    if (!ck) return SLIM_ERR_NOMEM;
    slim_status st = slim_ckpt_set_text(ck, model->text ? model->text : "");
    char name[SLIM_CKPT_NAME_MAX + 32];
    for (int i = 0; st == SLIM_OK && i < model->n_params; i++) {
        const slim_param *p = &model->params[i];
        st = add(ck, p->name, p->ndim, p->shape, p->data, 0);
    }
    for (int i = 0; st == SLIM_OK && i < model->n_layers; i++) {
        const slim_layer *l = &model->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        snprintf(name, sizeof name, "%s.running_mean", l->name);
        st = add(ck, name, 1, (int[]){l->c}, l->running_mean, 0);
        if (st != SLIM_OK) break;
        snprintf(name, sizeof name, "%s.running_var", l->name);
        st = add(ck, name, 1, (int[]){l->c}, l->running_var, 0);
    }
    for (int i = 0; st == SLIM_OK && with_optim && kind == SLIM_CKPT_TRAIN && i < model->n_params;
         i++) {
        const slim_param *p = &model->params[i];
        if (!p->trainable) continue;
        snprintf(name, sizeof name, "momentum.%s", p->name);
        st = add(ck, name, p->ndim, p->shape, p->momentum, 1);
    }
    if (st != SLIM_OK) {
        slim_ckpt_free(ck);
        return st;
    }
    *out = ck;
    return SLIM_OK;
}

static slim_status copy_in(const slim_ckpt *ck, const char *source, const char *name, int ndim,
                           const int *shape, float *dst, int required) {
    const slim_ckpt_tensor *t = slim_ckpt_find(ck, name);
    if (!t) {
        if (!required) return SLIM_OK;
        return slim_error(SLIM_ERR_FORMAT, "%s: tensor '%s' is missing", source, name);
    }
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: tensor '%s' has %zu values in a shape that does not match the "
                          "model's",
                          source, name, t->numel);
    if (!finite_all(t->data, t->numel))
        return slim_error(SLIM_ERR_NUMERIC, "%s: tensor '%s' holds NaN or Inf", source, name);
    memcpy(dst, t->data, t->numel * sizeof(float));
    return SLIM_OK;
}

slim_status slim_model_from_ckpt(const slim_ckpt *ck, const char *source, int load_optim,
                                 slim_model **out) {
    *out = NULL;
    slim_model *m = NULL;
    /* The parameters must come from the file: a model text asking for more
     * values than the file holds is refused before anything is allocated. */
    size_t held = 0;
    for (int i = 0; i < ck->n_tensors; i++)
        if (!ck->tensors[i].is_optim) held += ck->tensors[i].numel;
    slim_status st = slim_model_parse_capped(ck->model_text, source, held ? held : 1, &m);
    if (st != SLIM_OK) return slim_error_prefix(st, "%s: embedded model text", source);
    char name[SLIM_CKPT_NAME_MAX + 32];
    for (int i = 0; st == SLIM_OK && i < m->n_params; i++) {
        slim_param *p = &m->params[i];
        st = copy_in(ck, source, p->name, p->ndim, p->shape, p->data, 1);
        if (st == SLIM_OK && load_optim && p->trainable) {
            snprintf(name, sizeof name, "momentum.%s", p->name);
            st = copy_in(ck, source, name, p->ndim, p->shape, p->momentum, 0);
        }
    }
    for (int i = 0; st == SLIM_OK && i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        snprintf(name, sizeof name, "%s.running_mean", l->name);
        st = copy_in(ck, source, name, 1, (int[]){l->c}, l->running_mean, 1);
        if (st != SLIM_OK) break;
        snprintf(name, sizeof name, "%s.running_var", l->name);
        st = copy_in(ck, source, name, 1, (int[]){l->c}, l->running_var, 1);
        for (int j = 0; st == SLIM_OK && j < l->c; j++)
            if (l->running_var[j] < 0)
                st = slim_error(SLIM_ERR_FORMAT, "%s: '%s' has a negative running variance", source,
                                l->name);
    }
    if (st != SLIM_OK) {
        slim_model_free(m);
        return st;
    }
    *out = m;
    return SLIM_OK;
}

slim_status slim_model_load_ckpt(const char *path, int load_optim, slim_model **out,
                                 slim_ckpt **ck_out) {
    *out = NULL;
    if (ck_out) *ck_out = NULL;
    slim_ckpt *ck = NULL;
    SLIM_TRY(slim_ckpt_read(path, &ck));
    slim_status st = slim_model_from_ckpt(ck, path, load_optim, out);
    if (st == SLIM_OK && ck_out)
        *ck_out = ck;
    else
        slim_ckpt_free(ck);
    return st;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void slim_model_sparsity(const slim_model *model, slim_layer_sparsity *rows) {
    memset(rows, 0, (size_t)model->n_layers * sizeof *rows);
    for (int i = 0; i < model->n_layers; i++) {
        const slim_layer *l = &model->layers[i];
        slim_layer_sparsity *r = &rows[i];
        r->layer = i;
        r->channels = l->c;
        if ((l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE) && l->p_weight >= 0) {
            const slim_param *w = &model->params[l->p_weight];
            r->weights = w->numel;
            size_t per = w->numel / (size_t)w->shape[0];
            for (int f = 0; f < w->shape[0]; f++) {
                size_t z = 0;
                for (size_t j = 0; j < per; j++)
                    z += w->data[(size_t)f * per + j] == 0.0f;
                r->weights_zero += z;
                if (l->kind == SLIM_LAYER_CONV && z == per) r->filters_zero++;
            }
        }
        if (l->kind == SLIM_LAYER_BN && l->p_gamma >= 0) {
            const slim_param *g = &model->params[l->p_gamma];
            float *tmp = malloc(g->numel * sizeof(float));
            for (size_t j = 0; j < g->numel; j++) {
                r->gamma_zero += g->data[j] == 0.0f;
                if (tmp) tmp[j] = fabsf(g->data[j]);
            }
            if (tmp && g->numel) {
                qsort(tmp, g->numel, sizeof(float), cmp_float);
                r->gamma_min = tmp[0];
                r->gamma_median = g->numel % 2 ? tmp[g->numel / 2]
                                               : 0.5f * (tmp[g->numel / 2 - 1] + tmp[g->numel / 2]);
                r->gamma_max = tmp[g->numel - 1];
            }
            free(tmp);
        }
    }
}
