/* Private to src/train: what a training run does for cost weights (--cost)
 * and a budget (--target-*): set-up, the update every few steps, the
 * checkpoint's part (settings and per-gamma state), the progress text and
 * the CSV values (docs/SPARSITY.md, "Budgets"). */
#ifndef SLIM_TRAIN_BUDGET_HOOK_H
#define SLIM_TRAIN_BUDGET_HOOK_H

#include "passes/budget_trim.h"
#include "slim/ckpt.h"
#include "slim/optim.h"
#include "slim/passes.h"
#include "slim/train.h"

#include <stdint.h>
#include <stdio.h>

typedef struct train_budget {
    float *weights;    /* (param_floats) the penalty weights c_j, or NULL when uniform */
    float *gamma_prev; /* (param_floats) with a target: each |gamma| at the last update */
    float *reach;      /* (param_floats) scratch of the projection */
    float *resist;     /* (param_floats) scratch: each gamma's measured push per unit lr */
    slim_budget budget;
    slim_pruned_cost pruned; /* at the last update or epoch end */
    /* With cost or target latency: the table (n_layers 0 without one),
     * asked for on a fresh run, restored on resume. */
    slim_latency_table latency;
    uint64_t every; /* steps between updates, 0 = none */
    /* The cuts at landing and the channels they zeroed, in this
     * process (not in the checkpoint: a resumed run counts its own). */
    int guard_cuts, guard_channels;
} train_budget;

/* Checks c's cost and target against its penalty, measures the cost (a
 * fresh run: its weights too), sets opt's weights and lambda, and turns a
 * target into an absolute budget. Zero-initialised b; after
 * train_budget_restore on resume. */
slim_status train_budget_setup(train_budget *b, const slim_train_config *c, const slim_model *m,
                               slim_sgd *opt, size_t per_epoch, int resumed);
/* After step `step` of `total`: every b->every steps, re-measures the
 * cost and the weights and moves lambda; with c->budget_trim, once landed,
 * cuts a cost above the budget back to it (slim_budget_guard,
 * budget_trim_run) and, within the band, freezes the structure: lambda 0
 * from then on (slim_budget_freezes). */
slim_status train_budget_step(train_budget *b, const slim_train_config *c, slim_model *m,
                              slim_sgd *opt, uint64_t step, uint64_t total);
/* After live pruning replaced the model by m, narrower: the per-value
 * arrays follow (src[k]: value k's index in the old model, SIZE_MAX for a
 * new one, which gets 0), and opt takes the weights again. */
slim_status train_budget_remap(train_budget *b, const slim_model *m, const size_t *src,
                               slim_sgd *opt);
/* At the run's end, with a target and c->budget_trim: budget_trim_run on
 * m with the run's weights and budget (*t zeroed when it does not run). */
slim_status train_budget_trim(const train_budget *b, const slim_train_config *c, slim_model *m,
                              budget_trim *t);
/* Whether the next step holds gammas at 0 (slim_sgd.hold_zeros): a
 * target, c->budget_trim, and the structure frozen (lambda 0: the
 * controller never sets it otherwise, and it is in the checkpoint). */
int train_budget_holds(const train_budget *b, const slim_train_config *c);
/* b->pruned := the pruned cost of m now (at an epoch's end). */
slim_status train_budget_measure(train_budget *b, const slim_train_config *c, const slim_model *m);
/* Adds the settings cost, target, budget, budget.*, the gamma-state
 * tensors and the latency table (latency.*) to ck. */
slim_status train_budget_store(const train_budget *b, const slim_train_config *c,
                               const slim_model *m, slim_ckpt *ck);
/* Reads them back into c (cost, target) and b; a bad value is
 * SLIM_ERR_FORMAT naming path and the setting or tensor. */
slim_status train_budget_restore(train_budget *b, slim_train_config *c, const slim_model *m,
                                 const slim_ckpt *ck, const char *path);
/* "  lambda L  macs 12.3% (budget 10.0%)" while a budget runs, else "". */
void train_budget_text(const train_budget *b, const slim_train_config *c, double lambda, char *buf,
                       size_t len);
/* The CSV's columns lambda, pruned_macs, pruned_params, pruned_latency_us
 * (0 without a latency table), budget (each with a leading comma). */
void train_budget_csv(const train_budget *b, const slim_train_config *c, double lambda, FILE *f);
void train_budget_free(train_budget *b);

#endif
