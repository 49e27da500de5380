/* Running a model: one op per layer, in layer order, on the tape. */
#include "slim/nn.h"

#include <math.h>

/* A tensor header over a parameter; it carries a gradient only when the
 * step trains it. */
static slim_tensor *param_tensor(slim_tape *tape, slim_model *model, int index, int training) {
    if (index < 0) return NULL;
    slim_param *p = &model->params[index];
    return slim_tape_wrap(tape, p->data, training && p->trainable ? p->grad : NULL, p->ndim,
                          p->shape);
}

static slim_status run_layer(slim_model *model, slim_tape *tape, int i, slim_tensor **outs,
                             int training) {
    slim_layer *l = &model->layers[i];
    slim_tensor *in = l->n_inputs > 0 ? outs[l->inputs[0]] : NULL;
    slim_tensor **y = &outs[i];
    switch (l->kind) {
    case SLIM_LAYER_INPUT: return SLIM_OK; /* set by the caller */
    case SLIM_LAYER_CONV: {
        slim_tensor *w = param_tensor(tape, model, l->p_weight, training);
        slim_tensor *b = param_tensor(tape, model, l->p_bias, training);
        slim_tensor *m = param_tensor(tape, model, l->p_biasmap, 0);
        if (!w || (l->p_bias >= 0 && !b) || (l->p_biasmap >= 0 && !m)) return SLIM_ERR_NOMEM;
        return slim_op_conv2d(tape, in, w, b, m, l->stride, l->pad, &l->cache, y);
    }
    case SLIM_LAYER_BN: {
        slim_tensor *g = param_tensor(tape, model, l->p_gamma, training);
        slim_tensor *b = param_tensor(tape, model, l->p_beta, training);
        if (!g || !b) return SLIM_ERR_NOMEM;
        return slim_op_batchnorm(tape, in, g, b, l->running_mean, l->running_var, l->eps,
                                 l->momentum, training, &l->cache, y);
    }
    case SLIM_LAYER_RELU: return slim_op_relu(tape, in, y);
    case SLIM_LAYER_MAXPOOL:
        return slim_op_maxpool(tape, in, l->k, l->stride, l->pad, &l->cache, y);
    case SLIM_LAYER_AVGPOOL:
        return slim_op_avgpool(tape, in, l->k, l->stride, l->pad, &l->cache, y);
    case SLIM_LAYER_GAP: return slim_op_gap(tape, in, y);
    case SLIM_LAYER_FLATTEN: return slim_op_flatten(tape, in, y);
    case SLIM_LAYER_DENSE: {
        slim_tensor *w = param_tensor(tape, model, l->p_weight, training);
        slim_tensor *b = param_tensor(tape, model, l->p_bias, training);
        if (!w || (l->p_bias >= 0 && !b)) return SLIM_ERR_NOMEM;
        return slim_op_dense(tape, in, w, b, y);
    }
    case SLIM_LAYER_ADD: return slim_op_add(tape, in, outs[l->inputs[1]], y);
    case SLIM_LAYER_CONCAT:
    case SLIM_LAYER_RELU6: break; /* the ops land with issue 22's ops branch */
    case SLIM_LAYER_KIND_COUNT: break;
    }
    return slim_error(SLIM_ERR_ARG, "layer '%s' has an unknown kind", l->name);
}

slim_status slim_model_forward(slim_model *model, slim_tape *tape, slim_tensor *x, int training,
                               slim_tensor **logits) {
    const slim_layer *in = &model->layers[0];
    if (x->ndim != 4 || x->shape[1] != in->c || x->shape[2] != in->h || x->shape[3] != in->w)
        return slim_error(SLIM_ERR_SHAPE, "model expects input %dx%dx%d", in->c, in->h, in->w);
    tape->recording = training;
    slim_tensor **outs =
        slim_arena_alloc(&tape->arena, (size_t)model->n_layers * sizeof(slim_tensor *));
    if (!outs) return SLIM_ERR_NOMEM;
    outs[0] = x;
    for (int i = 1; i < model->n_layers; i++) {
        slim_status st = run_layer(model, tape, i, outs, training);
        if (st != SLIM_OK)
            return slim_error_prefix(st, "%s '%s'", slim_layer_kind_name(model->layers[i].kind),
                                     model->layers[i].name);
    }
    slim_tensor *out = outs[model->n_layers - 1];
    if (out->ndim != 2) {
        /* A last layer of shape (c,1,1), e.g. a conv head followed by gap
         * already gives 2-D; reshape anything else that is flat per image. */
        slim_tensor *flat;
        SLIM_TRY(slim_op_flatten(tape, out, &flat));
        out = flat;
    }
    *logits = out;
    return SLIM_OK;
}
