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
    /* (scratch_floats) per-parameter penalty weights c_j, laid out like
     * model->param_block, or NULL: every c_j = 1. With weights, P becomes
     * sum_j c_j |theta_j| and the L1 prox threshold lr * lambda * c_j
     * (gamma-l1 and weight-l1; filter-l1 ignores them). */
    float *weight;
    /* 1: under gamma-l1, a gamma exactly 0 stays 0 and its momentum 0,
     * whatever its gradient (a budget run after its plan has landed:
     * slim_budget_landed); 0 (init): the prox decides. */
    int hold_zeros;
} slim_sgd;

slim_status slim_sgd_init(slim_sgd *opt, const slim_model *model, const slim_sgd_config *config);
/* One step with learning rate lr on the gradients in model->grad_block,
 * then the prox. Momentum buffers live in model->momentum_block. A model
 * with more values than at init (live pruning's folds add bias maps) gets
 * a larger scratch first (an error with penalty weights set). */
slim_status slim_sgd_step(slim_sgd *opt, slim_model *model, float lr);
void slim_sgd_free(slim_sgd *opt);
/* Copies w (opt->scratch_floats weights, each finite and >= 0) into the
 * optimizer's penalty weights; w = NULL returns to uniform weights. */
slim_status slim_sgd_set_weights(slim_sgd *opt, const float *w);
/* After model's parameters were laid out anew (live pruning): the scratch
 * follows model->param_floats and the weights return to uniform (set them
 * again, laid out like the new model). */
slim_status slim_sgd_resize(slim_sgd *opt, const slim_model *model);
/* Changes lambda (finite, >= 0) between steps, e.g. from a budget
 * controller. */
slim_status slim_sgd_set_lambda(slim_sgd *opt, double lambda);
/* Like slim_sgd_set_lambda and (w non-NULL) slim_sgd_set_weights, and
 * under gamma-l1 also moves the penalty's pull that the momentum buffers
 * hold (lambda * c_j * sign(gamma_j) / (1 - mu) per gamma once both have
 * held a while) from the old lambda and c_j to the new: the change acts at
 * once instead of over ~1 / (1 - mu) steps. On an error nothing changed. */
slim_status slim_sgd_retarget(slim_sgd *opt, slim_model *model, double lambda, const float *w);
/* sum_j c_j |theta_j| over the penalty's parameters with the optimizer's
 * weights (slim_penalty_value when they are uniform). */
double slim_sgd_penalty_value(const slim_sgd *opt, const slim_model *model);

/* ---- the lambda controller of a budget (src/optim/budget.c) ---------- */

/* Keeps the cost of the model that threshold-0 pruning would give (MACs or
 * params, the caller measures it) inside [0.9, 1] of a budget at the end
 * of training by adapting lambda, a few times per epoch. With a
 * projection (the caller's: the cost at the next update if lambda were the
 * given value), the cost follows a plan (slim_budget_plan): lambda becomes
 * the largest value whose projection is at or above the plan at the next
 * update, within a factor 4 per update. Without one, lambda grows by a
 * bounded factor while the cost is above a band of the budget, shrinks
 * while it is below (not rising into it), and holds inside; the band is
 * [0.93, 0.99] of the budget for the first 80% of training and [0.9, 1]
 * after. docs/SPARSITY.md explains the choices. Every field is state a
 * resumed run must restore exactly. */
typedef struct slim_budget {
    double budget;        /* the cost to stay within, > 0 */
    double full;          /* the cost at the start, >= budget */
    double lambda;        /* lambda now */
    double last_cost;     /* the cost at the previous update */
    double last_progress; /* and the progress then */
    int updates;          /* updates so far */
} slim_budget;

/* The cost projected at the next update if lambda were `lambda` from now. */
typedef double (*slim_budget_project)(void *ctx, double lambda);

/* A start for lambda from the run: the prox alone, at a constant lambda,
 * takes lambda * lr_sum off every |gamma| over the run (c_j = 1; the
 * caller folds momentum's gain into lr_sum); the start lets it take half
 * the mean |gamma| times the cut asked for (1 - fraction, fraction the
 * budget over the unpruned cost), so that a short run starts higher than
 * a long one.
 * Falls back to a fixed 1e-3 when an argument is not positive. */
double slim_budget_start(double mean_abs_gamma, double lr_sum, double fraction);
/* full: the unpruned cost; lambda <= 0: the fixed start 1e-3. */
void slim_budget_init(slim_budget *b, double budget, double full, double lambda);
/* The planned cost at progress p in [0, 1] (the fraction of the run's
 * summed learning rate spent): from full down to 95% of the budget,
 * geometrically, by p = 0.7, then 95% of the budget. */
double slim_budget_plan(const slim_budget *b, double p);
/* Whether the plan has landed at progress p: p >= 0.7. */
int slim_budget_landed(double progress);
/* Whether a landed run may freeze its structure now: landed, and the
 * cost (after any cut, slim_budget_guard) within [0.9, 1] of the budget.
 * Below the band the controller keeps steering, so that channels held at
 * zero by lambda * c_j can return. */
int slim_budget_freezes(const slim_budget *b, double cost, double progress);
/* The cut at landing: from progress 0.7 on (the plan's landing), a cost
 * above the budget is to be cut back to it by zeroing the channels that
 * count least (the caller's trim): returns that cost, or 0 when no cut is
 * due. */
double slim_budget_guard(const slim_budget *b, double cost, double progress);
/* One update with the current cost, the progress now and at the next
 * update (each in [0, 1]); project may be NULL (no projection: the band
 * rule on the cost now). Returns the new lambda. */
double slim_budget_update(slim_budget *b, double cost, double progress, double next,
                          slim_budget_project project, void *ctx);

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
