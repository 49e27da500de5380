/* The sparsity penalties: names, which parameters each acts on, P(theta). */
#include "slim/optim.h"

#include <math.h>
#include <string.h>

static const char *const penalty_names[] = {"none", "gamma-l1", "weight-l1", "filter-l1",
                                            "gamma-l1-subgrad"};

const char *slim_penalty_name(slim_penalty penalty) {
    if ((unsigned)penalty < sizeof penalty_names / sizeof *penalty_names)
        return penalty_names[penalty];
    return "?";
}

slim_status slim_penalty_parse(const char *name, slim_penalty *out) {
    for (size_t i = 0; i < sizeof penalty_names / sizeof *penalty_names; i++)
        if (strcmp(name, penalty_names[i]) == 0) {
            *out = (slim_penalty)i;
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_ARG,
                      "unknown penalty '%s' (expected none, gamma-l1, weight-l1, filter-l1 or "
                      "gamma-l1-subgrad)",
                      name);
}

int slim_penalty_is_gamma(slim_penalty penalty) {
    return penalty == SLIM_PENALTY_GAMMA_L1 || penalty == SLIM_PENALTY_GAMMA_L1_SUBGRAD;
}

int slim_penalty_applies(const slim_model *model, const slim_param *p, slim_penalty penalty) {
    switch (penalty) {
    case SLIM_PENALTY_GAMMA_L1:
    case SLIM_PENALTY_GAMMA_L1_SUBGRAD: return p->role == SLIM_PARAM_GAMMA;
    case SLIM_PENALTY_WEIGHT_L1: return p->role == SLIM_PARAM_WEIGHT;
    case SLIM_PENALTY_FILTER_L1:
        return p->role == SLIM_PARAM_WEIGHT && model->layers[p->layer].kind == SLIM_LAYER_CONV;
    case SLIM_PENALTY_NONE: break;
    }
    return 0;
}

double slim_penalty_value(const slim_model *model, slim_penalty penalty) {
    double total = 0;
    for (int i = 0; i < model->n_params; i++) {
        const slim_param *p = &model->params[i];
        if (!slim_penalty_applies(model, p, penalty)) continue;
        if (penalty == SLIM_PENALTY_FILTER_L1) {
            int filters = model->layers[p->layer].out_channels;
            size_t per = p->numel / (size_t)filters;
            for (int f = 0; f < filters; f++) {
                double s = 0;
                for (size_t j = 0; j < per; j++) {
                    double x = p->data[(size_t)f * per + j];
                    s += x * x;
                }
                total += sqrt(s);
            }
        } else {
            for (size_t j = 0; j < p->numel; j++)
                total += fabs((double)p->data[j]);
        }
    }
    return total;
}
