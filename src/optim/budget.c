/* The λ controller of a cost budget (docs/SPARSITY.md, "Budgets"). */
#include "slim/optim.h"

#include <math.h>

/* The start when the caller gives no lambda: a fifth of the hand-tuned
 * lambda of vgg-fm (5e-3 for 13% of the MACs in 10 epochs); the bounded
 * steps reach the working value within an epoch or two. */
#define START_LAMBDA 1e-3
/* Per update, lambda moves by (cost / edge)^GAIN, within these factors. */
#define GAIN 2.0
#define MAX_STEP 1.2
#define MIN_STEP 1.05
/* Above the band, lambda holds while the cost falls fast enough to enter
 * it by HORIZON of the training (a gamma needs many steps to reach zero,
 * so the cost lags lambda: growing until the cost is in the band would
 * overshoot far below it). */
#define HORIZON 0.5
/* The band lambda holds in, as fractions of the budget: before TAIL of the
 * training, a narrower band, so that the slow drift of the last epochs
 * (the remaining gammas still shrink by lr * lambda * c) stays inside the
 * final one, [0.9, 1]. */
#define TAIL 0.8
#define EARLY_LOW 0.93
#define EARLY_HIGH 0.99
#define LOW 0.9
#define HIGH 1.0

void slim_budget_init(slim_budget *b, double budget, double lambda) {
    b->budget = budget;
    b->lambda = lambda > 0 ? lambda : START_LAMBDA;
    b->last_cost = 0;
    b->last_progress = 0;
    b->updates = 0;
}

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

double slim_budget_update(slim_budget *b, double cost, double progress) {
    double low = (progress < TAIL ? EARLY_LOW : LOW) * b->budget;
    double high = (progress < TAIL ? EARLY_HIGH : HIGH) * b->budget;
    double moved = b->updates > 0 ? cost - b->last_cost : 0;
    double factor = 1;
    if (cost > high) {
        /* Updates left before the horizon (1 once past it). */
        double per = b->updates > 0 ? progress - b->last_progress : 0;
        double left = per > 0 && progress < HORIZON ? (HORIZON - progress) / per : 1;
        if (left < 1) left = 1;
        if (-moved < (cost - high) / left)
            factor = clamp(pow(cost / high, GAIN), MIN_STEP, MAX_STEP);
    } else if (cost < low && cost + moved < low) {
        /* Below, and not rising into the band within one more update. */
        factor = clamp(pow(cost / low, GAIN), 1 / MAX_STEP, 1 / MIN_STEP);
    }
    b->lambda *= factor;
    b->last_cost = cost;
    b->last_progress = progress;
    b->updates++;
    return b->lambda;
}
