/* The λ controller of a cost budget (docs/SPARSITY.md, "Budgets"). */
#include "slim/optim.h"

#include <math.h>

/* The start of slim_budget_start: the fraction of the typical |gamma|
 * that the prox may take off over the run, per unit of the cut asked for. */
#define START_SHRINK 0.25
/* The start when nothing better is known. */
#define START_LAMBDA 1e-3
/* Per update, lambda moves by (cost / edge)^GAIN, at most by a factor
 * MAX_PER_TENTH per tenth of the training and at least by the fourth root
 * of that bound, so that a short run adapts as far as a long one. */
#define GAIN 2.0
#define MAX_PER_TENTH 2.5
/* The band lambda holds in, as fractions of the budget: before TAIL of the
 * training, a narrower band, so that the slow drift of the last epochs
 * (the remaining gammas still shrink by lr * lambda * c) stays inside the
 * final one, [0.9, 1]. */
#define TAIL 0.8
#define EARLY_LOW 0.93
#define EARLY_HIGH 0.99
#define LOW 0.9
#define HIGH 1.0
/* From LATE on, the cost above the band grows lambda whatever the
 * projection says: little shrink is left, and a cost above the budget at
 * the end is a miss. */
#define LATE 0.7

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

double slim_budget_start(double mean_abs_gamma, double lr_sum, double fraction) {
    if (!(mean_abs_gamma > 0) || !(lr_sum > 0) || !isfinite(mean_abs_gamma / lr_sum))
        return START_LAMBDA;
    return START_SHRINK * (1 - clamp(fraction, 0, 0.99)) * mean_abs_gamma / lr_sum;
}

void slim_budget_init(slim_budget *b, double budget, double lambda) {
    b->budget = budget;
    b->lambda = lambda > 0 ? lambda : START_LAMBDA;
    b->last_cost = 0;
    b->last_progress = 0;
    b->updates = 0;
}

double slim_budget_update(slim_budget *b, double cost, double progress, slim_budget_project project,
                          void *ctx) {
    double low = (progress < TAIL ? EARLY_LOW : LOW) * b->budget;
    double high = (progress < TAIL ? EARLY_HIGH : HIGH) * b->budget;
    double moved = b->updates > 0 ? cost - b->last_cost : 0;
    double span = progress - b->last_progress;
    double max_step = pow(MAX_PER_TENTH, clamp(span, 0, 1) / 0.1), min_step = pow(max_step, 0.25);
    double factor = 1;
    if (cost > high) {
        /* The largest step (halving it in the exponent) after which the
         * projection still stays at or above the band: gammas shrink
         * together, so a step that zeroes them all takes the cost far
         * below the budget before the next update can react. */
        double f = clamp(pow(cost / high, GAIN), min_step, max_step);
        if (progress >= LATE) project = NULL;
        for (int k = 0; k < 4 && project && project(ctx, b->lambda * f) < low; k++)
            f = sqrt(f);
        if (project && project(ctx, b->lambda * f) < low) f = 1;
        factor = f;
    } else if (cost < low && cost + moved < low) {
        /* Below, and not rising into the band within one more update. */
        factor = clamp(pow(cost / low, GAIN), 1 / max_step, 1 / min_step);
    }
    /* Channels on their way to zero would take the cost below the band:
     * ease off. */
    if (factor == 1 && project && project(ctx, b->lambda) < low) factor = 1 / min_step;
    b->lambda *= factor;
    b->last_cost = cost;
    b->last_progress = progress;
    b->updates++;
    return b->lambda;
}
