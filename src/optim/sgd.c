/* SGD with momentum and coupled weight decay, followed by the penalty's
 * proximal step; see optim.h for the momentum convention. */
#include "slim/optim.h"
#include "slim/prox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

slim_status slim_sgd_init(slim_sgd *opt, const slim_model *model, const slim_sgd_config *config) {
    memset(opt, 0, sizeof *opt);
    if (!(config->momentum >= 0 && config->momentum < 1))
        return slim_error(SLIM_ERR_ARG, "momentum must be in [0, 1), got %g", config->momentum);
    if (!(config->weight_decay >= 0) || !(config->bn_weight_decay >= 0))
        return slim_error(SLIM_ERR_ARG, "weight decay must be >= 0");
    if (!(config->lambda >= 0) || !isfinite(config->lambda))
        return slim_error(SLIM_ERR_ARG, "lambda must be a finite number >= 0, got %g",
                          config->lambda);
    opt->config = *config;
    if (slim_penalty_is_gamma(config->penalty)) opt->config.bn_weight_decay = 0;
    opt->scratch_floats = model->param_floats;
    opt->scratch = slim_calloc(model->param_floats, sizeof(float));
    return opt->scratch ? SLIM_OK : SLIM_ERR_NOMEM;
}

void slim_sgd_free(slim_sgd *opt) {
    free(opt->scratch);
    free(opt->weight);
    opt->scratch = NULL;
    opt->weight = NULL;
}

slim_status slim_sgd_resize(slim_sgd *opt, const slim_model *model) {
    float *scratch = slim_calloc(model->param_floats ? model->param_floats : 1, sizeof(float));
    if (!scratch) return SLIM_ERR_NOMEM;
    free(opt->scratch);
    free(opt->weight);
    opt->scratch = scratch;
    opt->weight = NULL;
    opt->scratch_floats = model->param_floats;
    return SLIM_OK;
}

static slim_status check_weights(const slim_sgd *opt, const float *w) {
    for (size_t i = 0; i < opt->scratch_floats; i++)
        if (!(w[i] >= 0) || !isfinite(w[i]))
            return slim_error(SLIM_ERR_ARG, "penalty weight %zu must be finite and >= 0, got %g", i,
                              (double)w[i]);
    return SLIM_OK;
}

static slim_status check_lambda(double lambda) {
    if (!(lambda >= 0) || !isfinite(lambda) || !isfinite((float)lambda))
        return slim_error(SLIM_ERR_ARG, "lambda must be a finite number >= 0, got %g", lambda);
    return SLIM_OK;
}

slim_status slim_sgd_set_weights(slim_sgd *opt, const float *w) {
    if (!w) {
        free(opt->weight);
        opt->weight = NULL;
        return SLIM_OK;
    }
    SLIM_TRY(check_weights(opt, w));
    if (!opt->weight && !(opt->weight = slim_calloc(opt->scratch_floats, sizeof(float))))
        return SLIM_ERR_NOMEM;
    memcpy(opt->weight, w, opt->scratch_floats * sizeof(float));
    return SLIM_OK;
}

slim_status slim_sgd_set_lambda(slim_sgd *opt, double lambda) {
    SLIM_TRY(check_lambda(lambda));
    opt->config.lambda = (float)lambda;
    return SLIM_OK;
}

/* Adds `sign` times the penalty's pull that each gamma's momentum buffer
 * holds once lambda and the current weights have held a while: each step
 * adds lambda * c_j * sign(gamma_j) (the prox's shrink, v' = d + (u -
 * theta') / lr), which decays by mu. */
static void add_pull(const slim_sgd *opt, slim_model *model, double lambda, float sign) {
    for (int i = 0; i < model->n_params; i++) {
        const slim_param *p = &model->params[i];
        if (p->role != SLIM_PARAM_GAMMA || !p->trainable) continue;
        for (size_t j = 0; j < p->numel; j++) {
            float c = opt->weight ? opt->weight[p->offset + j] : 1.0f;
            float theta = p->data[j];
            p->momentum[j] += sign * (float)(lambda * c / (1.0 - opt->config.momentum)) *
                              (float)((theta > 0) - (theta < 0));
        }
    }
}

slim_status slim_sgd_retarget(slim_sgd *opt, slim_model *model, double lambda, const float *w) {
    SLIM_TRY(check_lambda(lambda));
    if (w) SLIM_TRY(check_weights(opt, w));
    int moves =
        opt->config.penalty == SLIM_PENALTY_GAMMA_L1 && opt->scratch_floats == model->param_floats;
    if (moves) add_pull(opt, model, opt->config.lambda, -1.0f);
    /* Only NOMEM fails now, leaving lambda and the weights: the pull returns. */
    slim_status st = w ? slim_sgd_set_weights(opt, w) : SLIM_OK;
    if (st == SLIM_OK) opt->config.lambda = (float)lambda;
    if (moves) add_pull(opt, model, opt->config.lambda, 1.0f);
    return st;
}

double slim_sgd_penalty_value(const slim_sgd *opt, const slim_model *model) {
    const slim_penalty pen = opt->config.penalty;
    if (!opt->weight || pen == SLIM_PENALTY_FILTER_L1) return slim_penalty_value(model, pen);
    double total = 0;
    for (int i = 0; i < model->n_params; i++) {
        const slim_param *p = &model->params[i];
        if (!slim_penalty_applies(model, p, pen)) continue;
        for (size_t j = 0; j < p->numel; j++)
            total += (double)opt->weight[p->offset + j] * fabs((double)p->data[j]);
    }
    return total;
}

static float decay_of(const slim_sgd_config *c, slim_param_role role) {
    return role == SLIM_PARAM_GAMMA || role == SLIM_PARAM_BETA ? c->bn_weight_decay
                                                               : c->weight_decay;
}

/* The prox of lr*lambda*P (weighted when opt->weight is set) on one parameter, from u (the gradient
 * step's result, in theta) into theta; scratch keeps u. */
static void apply_prox(const slim_sgd *opt, const slim_model *model, const slim_param *p,
                       float *theta, float t) {
    const slim_sgd_config *c = &opt->config;
    if (c->penalty == SLIM_PENALTY_FILTER_L1) {
        const slim_layer *l = &model->layers[p->layer];
        size_t per_filter = p->numel / (size_t)l->out_channels;
        slim_group_soft_threshold_f32(theta, (size_t)l->out_channels, per_filter, t);
    } else if (opt->weight) {
        slim_soft_threshold_weighted_f32(theta, p->numel, t, opt->weight + p->offset);
    } else {
        slim_soft_threshold_f32(theta, p->numel, t);
    }
}

slim_status slim_sgd_step(slim_sgd *opt, slim_model *model, float lr) {
    const slim_sgd_config *c = &opt->config;
    if (!(lr > 0) || !isfinite(lr))
        return slim_error(SLIM_ERR_ARG, "learning rate must be a finite number > 0, got %g", lr);
    if (model->param_floats > opt->scratch_floats) {
        /* The model grew since init (live pruning's folds add bias maps):
         * per-value state must cover it. Weights cannot be stretched. */
        if (opt->weight)
            return slim_error(SLIM_ERR_ARG,
                              "penalty weights hold %zu values; the model now has %zu",
                              opt->scratch_floats, model->param_floats);
        SLIM_TRY(slim_sgd_resize(opt, model));
    }
    float mu = c->momentum;
    for (int i = 0; i < model->n_params; i++) {
        slim_param *p = &model->params[i];
        if (!p->trainable) continue;
        float wd = decay_of(c, p->role);
        float *theta = p->data, *g = p->grad, *v = p->momentum;
        size_t n = p->numel;
        int subgrad = c->penalty == SLIM_PENALTY_GAMMA_L1_SUBGRAD && p->role == SLIM_PARAM_GAMMA;
        /* A held zero moves by nothing: d = 0, so u = 0, prox(0) = 0, v' = 0. */
        int hold =
            opt->hold_zeros && c->penalty == SLIM_PENALTY_GAMMA_L1 && p->role == SLIM_PARAM_GAMMA;
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] + wd * theta[j];
            if (subgrad)
                gj += c->lambda * (opt->weight ? opt->weight[p->offset + j] : 1.0f) *
                      (float)((theta[j] > 0) - (theta[j] < 0));
            v[j] = hold && theta[j] == 0.0f ? 0.0f : mu * v[j] + gj; /* d: the step direction */
        }
        if (c->penalty == SLIM_PENALTY_GAMMA_L1_SUBGRAD || c->penalty == SLIM_PENALTY_NONE ||
            c->lambda == 0 || !slim_penalty_applies(model, p, c->penalty)) {
            for (size_t j = 0; j < n; j++)
                theta[j] -= lr * v[j];
            continue;
        }
        /* u = theta - lr d; theta' = prox(u); v' = d + (u - theta') / lr,
         * which is (theta - theta') / lr computed without cancellation. */
        float *u = opt->scratch + p->offset;
        for (size_t j = 0; j < n; j++) {
            u[j] = theta[j] - lr * v[j];
            theta[j] = u[j];
        }
        apply_prox(opt, model, p, theta, lr * c->lambda);
        for (size_t j = 0; j < n; j++)
            v[j] += (u[j] - theta[j]) / lr;
    }
    return SLIM_OK;
}
