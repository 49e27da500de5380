/* The λ controller of a cost budget (docs/SPARSITY.md, "Budgets"). */
#include "slim/optim.h"

#include <math.h>

/* The start of slim_budget_start: the fraction of the typical |gamma|
 * that the prox may take off over the run, per unit of the cut asked for. */
#define START_SHRINK 0.5
/* The start when nothing better is known. */
#define START_LAMBDA 1e-3
/* Without a projection, per update, lambda moves by (cost / edge)^GAIN,
 * at most by a factor MAX_PER_TENTH per tenth of the training and at least
 * by the fourth root of that bound, so that a short run adapts as far as a
 * long one; it holds inside a band of the budget: before TAIL of the
 * training a narrower one, so that the slow drift of the last epochs stays
 * inside the final one, [0.9, 1]. */
#define GAIN 2.0
#define MAX_PER_TENTH 2.5
#define TAIL 0.8
#define EARLY_LOW 0.93
#define EARLY_HIGH 0.99
#define LOW 0.9
#define HIGH 1.0
/* With a projection: the cost planned at each progress falls from the
 * unpruned cost to AIM of the budget, geometrically, by progress LAND,
 * then holds. While the cost and the projection are within [LOW, HIGH]
 * of the budget's share of the plan lambda holds; else it becomes the
 * largest value whose projected cost at the horizon is at or above the
 * plan there, found by bisection in log lambda within a factor
 * SEARCH_RANGE and moved to by at most a factor MAX_STEP per update; when
 * no lambda in that range reaches the plan (the cost is below it already,
 * and the projection sees no return of channels), lambda falls by
 * BLIND_DOWN. From LAND on, unless the cost is below the band, it falls
 * by at most TAIL_DOWN per update, and above the band with no channel
 * gone since the last update it grows at least as without a projection. */
#define AIM 0.95
#define LAND 0.7
#define SEARCH_RANGE 64.0
#define SEARCH_STEPS 24
#define MAX_STEP 4.0
#define BLIND_DOWN 2.0
#define TAIL_DOWN 1.25
/* From this progress on lambda does not grow. */
#define LATE 0.98

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

double slim_budget_start(double mean_abs_gamma, double lr_sum, double fraction) {
    if (!(mean_abs_gamma > 0) || !(lr_sum > 0) || !isfinite(mean_abs_gamma / lr_sum))
        return START_LAMBDA;
    return START_SHRINK * (1 - clamp(fraction, 0, 0.99)) * mean_abs_gamma / lr_sum;
}

void slim_budget_init(slim_budget *b, double budget, double full, double lambda) {
    b->budget = budget;
    b->full = full > budget ? full : budget;
    b->lambda = lambda > 0 ? lambda : START_LAMBDA;
    b->last_cost = 0;
    b->last_progress = 0;
    b->updates = 0;
}

double slim_budget_plan(const slim_budget *b, double progress) {
    double aim = AIM * b->budget, t = clamp(progress / LAND, 0, 1);
    if (!(b->full > aim)) return aim;
    return b->full * pow(aim / b->full, t);
}

int slim_budget_landed(double progress) { return progress >= LAND; }

int slim_budget_freezes(const slim_budget *b, double cost, double progress) {
    return progress >= LAND && cost >= LOW * b->budget && cost <= HIGH * b->budget;
}

double slim_budget_guard(const slim_budget *b, double cost, double progress) {
    return progress >= LAND && cost > HIGH * b->budget ? HIGH * b->budget : 0;
}

/* The largest lambda' in [lambda / SEARCH_RANGE, lambda * SEARCH_RANGE]
 * (to a factor SEARCH_RANGE^(2 / 2^SEARCH_STEPS)) whose projection is at
 * least aim (the projection falls as lambda' grows); lambda / BLIND_DOWN
 * when there is none. */
static double edge(double lambda, double aim, slim_budget_project project, void *ctx) {
    double lo = log(lambda / SEARCH_RANGE), hi = log(lambda * SEARCH_RANGE);
    if (project(ctx, exp(lo)) < aim) return lambda / BLIND_DOWN;
    if (project(ctx, exp(hi)) >= aim) return exp(hi);
    for (int k = 0; k < SEARCH_STEPS; k++) {
        double mid = 0.5 * (lo + hi);
        if (project(ctx, exp(mid)) >= aim)
            lo = mid;
        else
            hi = mid;
    }
    return exp(lo);
}

/* The bounds of one update's factor without a projection: at most
 * MAX_PER_TENTH per tenth of the training since the last update (upper),
 * at least the fourth root of that (lower). */
static double step_bounds(const slim_budget *b, double progress, int upper) {
    double max_step = pow(MAX_PER_TENTH, clamp(progress - b->last_progress, 0, 1) / 0.1);
    return upper ? max_step : pow(max_step, 0.25);
}

double slim_budget_update(slim_budget *b, double cost, double progress, double next,
                          slim_budget_project project, void *ctx) {
    double factor = 1;
    if (project) {
        /* The projection is a step function of lambda (whole channels go):
         * its edge is where the next channel would go by the horizon.
         * Below the plan already, lambda falls, which lets channels held
         * at zero by lambda * c_j return. */
        double plan = slim_budget_plan(b, next), now = project(ctx, b->lambda);
        double lo = plan * LOW / AIM, hi = plan * HIGH / AIM;
        if (now < lo || now > hi || cost < lo || cost > hi) {
            double target = edge(b->lambda, plan, project, ctx);
            factor = clamp(target / b->lambda, 1 / MAX_STEP, MAX_STEP);
            /* Landed and not below the band: down gently, whatever the
             * projection fears, as channels held at zero return at once. */
            if (progress >= LAND && cost >= lo && factor < 1 / TAIL_DOWN) factor = 1 / TAIL_DOWN;
        }
        /* Landed, above the band, and no channel went since the last
         * update: whatever the projection hopes for, the channels it
         * counts on do not go, and the learning rate left keeps falling:
         * grow at least as the rule without a projection would. */
        if (progress >= LAND && cost > hi && b->updates > 0 && cost >= b->last_cost) {
            double grow = clamp(pow(cost / hi, GAIN), step_bounds(b, progress, 0),
                                step_bounds(b, progress, 1));
            if (factor < grow) factor = grow;
        }
    } else {
        double max_step = step_bounds(b, progress, 1), min_step = step_bounds(b, progress, 0);
        double low = (progress < TAIL ? EARLY_LOW : LOW) * b->budget;
        double high = (progress < TAIL ? EARLY_HIGH : HIGH) * b->budget;
        double moved = b->updates > 0 ? cost - b->last_cost : 0;
        if (cost > high)
            factor = clamp(pow(cost / high, GAIN), min_step, max_step);
        else if (cost < low && cost + moved < low)
            /* Below, and not rising into the band within one more update. */
            factor = clamp(pow(cost / low, GAIN), 1 / max_step, 1 / min_step);
    }
    /* So late the prox can no longer cut a channel: a larger lambda would
     * only shrink the gammas that stay (docs/SPARSITY.md, "Budgets"). */
    if (progress >= LATE && factor > 1) factor = 1;
    b->lambda *= factor;
    b->last_cost = cost;
    b->last_progress = progress;
    b->updates++;
    return b->lambda;
}
