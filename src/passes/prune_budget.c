/* Pruning to a cost budget without exact zeros (docs/SPARSITY.md,
 * "Budgets"): Network Slimming's rule (percent mode: the smallest-score
 * group channels first, never emptying a group) with the fewest channels
 * that bring the pruned model within the budget. Each candidate is the
 * model slim_prune builds, so the cost found is the cost of what is saved. */
#include "slim/passes.h"

#include <math.h>

/* Percent-mode options removing exactly k of n channels: slim_prune
 * removes floor(percent * n / 100), and k + 1/2 keeps that floor at k
 * whatever the rounding of a float percent. */
static slim_prune_options remove_k(size_t k, size_t n) {
    slim_prune_options o = slim_prune_default_options();
    o.mode = SLIM_PRUNE_PERCENT;
    o.percent = k >= n ? 100.0f : (float)(100.0 * ((double)k + 0.5) / (double)n);
    return o;
}

static double cost_of(const slim_model *m, slim_cost kind) {
    return kind == SLIM_COST_PARAMS ? (double)slim_model_param_count(m) : slim_model_macs(m);
}

/* *cost := the cost of the model slim_prune builds with o; *removed and
 * *total := the group channels it removes and all of them (when not
 * NULL). */
static slim_status try_prune(const slim_model *m, slim_cost kind, const slim_prune_options *o,
                             double *cost, size_t *removed, size_t *total) {
    slim_model *p = NULL;
    slim_prune_report r;
    slim_status st = slim_prune(m, o, &p, &r);
    if (st == SLIM_OK) {
        *cost = cost_of(p, kind);
        if (removed) *removed = (size_t)(r.channels_before - r.channels_after);
        if (total) *total = (size_t)r.channels_before;
    }
    slim_prune_report_free(&r);
    slim_model_free(p);
    return st;
}

slim_status slim_prune_for_budget(const slim_model *m, slim_cost kind, double budget,
                                  slim_prune_options *opt, double *reached) {
    const char *what = kind == SLIM_COST_PARAMS ? "parameters" : "MACs";
    if (kind != SLIM_COST_MACS && kind != SLIM_COST_PARAMS)
        return slim_error(SLIM_ERR_ARG, "a pruning budget counts macs or params");
    if (!(budget > 0) || !isfinite(budget))
        return slim_error(SLIM_ERR_ARG, "a pruning budget must be a finite count > 0, got %g",
                          budget);
    /* The exact model first: when it fits, nothing approximate is needed. */
    *opt = slim_prune_default_options();
    size_t k0 = 0, n = 0;
    SLIM_TRY(try_prune(m, kind, opt, reached, &k0, &n));
    if (*reached <= budget) return SLIM_OK;
    /* The cost falls as k grows (each set holds the one before; a group's
     * last channel, the one kept, is the same for every k): the smallest k
     * within the budget, between the exact model's k0 and all n. */
    size_t lo = k0, hi = n;
    double at_hi;
    slim_prune_options o = remove_k(hi, n);
    SLIM_TRY(try_prune(m, kind, &o, &at_hi, NULL, NULL));
    if (at_hi > budget)
        return slim_error(SLIM_ERR_ARG,
                          "a budget of %.4g %s is below the smallest model pruning can give "
                          "(one channel per group): %.4g %s",
                          budget, what, at_hi, what);
    *reached = at_hi;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        double c;
        o = remove_k(mid, n);
        SLIM_TRY(try_prune(m, kind, &o, &c, NULL, NULL));
        if (c <= budget) {
            hi = mid;
            *reached = c;
        } else {
            lo = mid;
        }
    }
    *opt = remove_k(hi, n);
    return SLIM_OK;
}
