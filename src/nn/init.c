/* Parameter initialisation, following PyTorch's defaults so that results
 * are comparable with the peer's. */
#include "slim/nn.h"

#include <math.h>
#include <string.h>

static void uniform(slim_rng *rng, float *x, size_t n, float bound) {
    for (size_t i = 0; i < n; i++)
        x[i] = bound * (2.0f * slim_rng_uniform(rng) - 1.0f);
}

void slim_model_init_params(slim_model *model, slim_rng *rng) {
    for (int i = 0; i < model->n_params; i++) {
        slim_param *p = &model->params[i];
        const slim_layer *l = &model->layers[p->layer];
        /* fan_in: (cin/groups)*k*k for conv (the inputs one output sees, as
         * PyTorch), in for dense. */
        size_t fan_in = l->kind == SLIM_LAYER_CONV
                            ? (size_t)(l->in_c / l->groups) * (size_t)l->k * (size_t)l->k
                            : (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
        float bound = fan_in ? 1.0f / sqrtf((float)fan_in) : 0.0f;
        switch (p->role) {
        /* kaiming_uniform(a = sqrt(5)) gives bound = sqrt(6 / ((1 + 5) fan_in))
         * = 1 / sqrt(fan_in), the same bound as the bias. */
        case SLIM_PARAM_WEIGHT:
        case SLIM_PARAM_BIAS: uniform(rng, p->data, p->numel, bound); break;
        case SLIM_PARAM_BIASMAP: memset(p->data, 0, p->numel * sizeof(float)); break;
        case SLIM_PARAM_GAMMA:
            for (size_t j = 0; j < p->numel; j++)
                p->data[j] = 1.0f;
            break;
        case SLIM_PARAM_BETA: memset(p->data, 0, p->numel * sizeof(float)); break;
        }
    }
    for (int i = 0; i < model->n_layers; i++) {
        slim_layer *l = &model->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        for (int j = 0; j < l->c; j++) {
            l->running_mean[j] = 0.0f;
            l->running_var[j] = 1.0f;
        }
    }
    memset(model->momentum_block, 0, model->param_floats * sizeof(float));
    slim_model_zero_grad(model);
}
