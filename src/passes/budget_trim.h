/* Private to passes and train: the end of a budget run that missed its
 * budget (slim train --target-*, src/train/budget_hook.c). */
#ifndef SLIM_PASSES_BUDGET_TRIM_H
#define SLIM_PASSES_BUDGET_TRIM_H

#include "slim/passes.h"

typedef struct budget_trim {
    int channels;    /* group channels it zeroed */
    int gammas;      /* gammas it set to 0 (a channel's in every BN of its group) */
    double mass;     /* their |gamma|, summed */
    double score;    /* the largest |gamma| / c_j it zeroed */
    double before;   /* the target's pruned cost before */
    double after;    /* and after */
    int unreachable; /* 1: no trim reaches the budget (nothing changed) */
} budget_trim;

/* When the model threshold-0 pruning gives from m costs more than budget
 * (target: SLIM_COST_MACS, _PARAMS or _LATENCY, the last with table),
 * zeroes the gammas (and their momentum) of the channels with the
 * smallest |gamma| / c_j (weights: the penalty's c_j, NULL = 1), the
 * fewest that bring that model within the budget, whole channels only (a
 * channel goes when all its gammas are within the threshold; one channel
 * per group stays, as slim_prune keeps it). The gammas at zero are then
 * what threshold-0 pruning removes, exactly. */
slim_status budget_trim_run(slim_model *m, slim_cost target, const slim_latency_table *table,
                            const float *weights, double budget, budget_trim *out);

#endif
