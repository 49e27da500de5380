/* slim optim: SGD with momentum, weight decay, the sparsity penalties and
 * their proximal steps, and learning-rate schedules.
 *
 * The objective is  mean cross-entropy + lambda * P(theta).  The optimizer
 * steps on the smooth part (cross-entropy + weight decay); then the
 * penalty's proximal operator runs on its parameter group with threshold
 * lr * lambda (see docs/SPARSITY.md for the formulas):
 *   gamma-l1          P = sum |gamma| over all BN scales; soft-threshold.
 *   weight-l1         P = sum |w| over conv and dense weights; soft-threshold.
 *   filter-l1         P = sum over conv output filters of ||W_f||_2; block
 *                     soft-threshold, so whole filters reach zero.
 *   gamma-l1-subgrad  the Network Slimming baseline: lambda * sign(gamma)
 *                     added to the gradient before the step (no exact zeros).
 *
 * Weight decay is COUPLED (L2 added to the gradient, as PyTorch's SGD does),
 * set per parameter group: weights, biases, and BN (gamma, beta). Whenever a
 * gamma penalty is on, BN parameters get no weight decay, because decay on
 * gamma would change the proximal problem (the prox of lambda|g| + wd/2 g^2
 * is a scaled soft-threshold, not the one the penalty promises).
 *
 * Momentum and the prox: the momentum buffer holds the step actually taken
 * divided by lr, v' = (theta - theta') / lr, i.e. the proximal gradient
 * mapping. Without a penalty this is exactly heavy-ball SGD
 * (v' = mu v + g). With a penalty, a parameter held at zero has v = 0, so it
 * stays exactly zero while |g| <= lambda and leaves zero when |g| > lambda:
 * the fixed points of the iteration are exactly the KKT points.
 */
#ifndef SLIM_OPTIM_H
#define SLIM_OPTIM_H

#include "slim/core.h"
#include "slim/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slim_penalty {
    SLIM_PENALTY_NONE = 0,
    SLIM_PENALTY_GAMMA_L1,
    SLIM_PENALTY_WEIGHT_L1,
    SLIM_PENALTY_FILTER_L1,
    SLIM_PENALTY_GAMMA_L1_SUBGRAD,
} slim_penalty;

/* "none", "gamma-l1", "weight-l1", "filter-l1", "gamma-l1-subgrad" */
const char *slim_penalty_name(slim_penalty penalty);
slim_status slim_penalty_parse(const char *name, slim_penalty *out);
/* Whether the penalty acts on BN scales (and so BN gets no weight decay). */
int slim_penalty_is_gamma(slim_penalty penalty);
/* P(theta) of the model's current parameters (without lambda). */
double slim_penalty_value(const slim_model *model, slim_penalty penalty);
/* Whether parameter p belongs to the penalty's group. */
int slim_penalty_applies(const slim_model *model, const slim_param *p, slim_penalty penalty);

typedef struct slim_sgd_config {
    float momentum;        /* mu, e.g. 0.9 */
    float weight_decay;    /* coupled L2 on conv/dense weights and biases */
    float bn_weight_decay; /* coupled L2 on BN gamma/beta; forced to 0 with a gamma penalty */
    slim_penalty penalty;
    float lambda;
} slim_sgd_config;

typedef struct slim_sgd {
    slim_sgd_config config;
    float *scratch; /* one float per parameter, for the pre-prox iterate */
    size_t scratch_floats;
} slim_sgd;

slim_status slim_sgd_init(slim_sgd *opt, const slim_model *model, const slim_sgd_config *config);
/* One step with learning rate lr on the gradients in model->grad_block,
 * then the prox. Momentum buffers live in model->momentum_block. */
slim_status slim_sgd_step(slim_sgd *opt, slim_model *model, float lr);
void slim_sgd_free(slim_sgd *opt);

typedef enum slim_schedule {
    SLIM_SCHEDULE_CONSTANT = 0,
    SLIM_SCHEDULE_STEP,   /* x0.1 at 50% and 75% of training */
    SLIM_SCHEDULE_COSINE, /* lr * (1 + cos(pi * t / T)) / 2, stepped every batch */
} slim_schedule;

const char *slim_schedule_name(slim_schedule schedule);
slim_status slim_schedule_parse(const char *name, slim_schedule *out);
/* Learning rate at global step `step` of `total` steps. */
float slim_schedule_lr(slim_schedule schedule, float base_lr, uint64_t step, uint64_t total);

#ifdef __cplusplus
}
#endif
#endif
