/* What a training run does for cost weights (--cost) and a budget
 * (--target-*): the weights re-measured every few steps, the lambda
 * controller driven by the projected pruned cost, their state in the
 * checkpoint (docs/SPARSITY.md, "Budgets"). */
#include "train/budget_hook.h"

#include "train/internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The latency table, or NULL when the run has none. */
static const slim_latency_table *table(const train_budget *b) {
    return b->latency.n_layers ? &b->latency : NULL;
}

/* The target's measure of a pruned cost: now, projected, or unpruned. */
static double of_target(const slim_train_config *c, const slim_pruned_cost *pc, int which) {
    if (c->target == SLIM_COST_PARAMS)
        return which == 0 ? pc->params : which == 1 ? pc->projected_params : pc->full_params;
    if (c->target == SLIM_COST_LATENCY)
        return which == 0   ? pc->latency_us
               : which == 1 ? pc->projected_latency_us
                            : pc->full_latency_us;
    return which == 0 ? pc->macs : which == 1 ? pc->projected_macs : pc->full_macs;
}

static double target_cost(const train_budget *b, const slim_train_config *c) {
    return of_target(c, &b->pruned, 0);
}

/* b->pruned from m, with the target's unpruned cost that of the run's
 * start: live pruning narrows m, the budget stays a share of the model the
 * run began with. */
static slim_status measure(train_budget *b, const slim_train_config *c, const slim_model *m,
                           float *weights) {
    SLIM_TRY(slim_pruned_cost_measure_table(m, c->cost, table(b), NULL, weights, &b->pruned));
    if (!c->target || !(b->budget.full > 0)) return SLIM_OK;
    if (c->target == SLIM_COST_PARAMS)
        b->pruned.full_params = b->budget.full;
    else if (c->target == SLIM_COST_LATENCY)
        b->pruned.full_latency_us = b->budget.full;
    else
        b->pruned.full_macs = b->budget.full;
    return SLIM_OK;
}

/* ---- the controller --------------------------------------------------- */

/* The controller steers by the cost projected at the next update
 * (slim_pruned_cost.projected_*) were lambda held: a gamma is expected to
 * reach zero when its |gamma| is within what the steps until then take
 * off it: the prox's shrink lr * lambda' * c_j per step, times 1 / (1 - mu)
 * (the shrink also enters the momentum buffer), less the push its
 * gradient gave it per unit of learning rate since the last update
 * (measured: what the change of |gamma| leaves unexplained by the prox).
 * Gammas shrink together, and the gradient is what tells the channels
 * that stay from those that go; over one interval the push measured over
 * the last is a fair guess. */
/* The horizon of the projection, as a fraction of the run's steps (at
 * least one update interval). */
#define LOOKAHEAD 0.05

typedef struct projection {
    train_budget *b;
    const slim_train_config *c;
    const slim_model *m;
    double lr_window; /* the learning rates until the next update, summed */
    slim_status st;
} projection;

static double momentum_gain(const slim_train_config *c) { return 1.0 / (1.0 - c->momentum); }

/* slim_budget_project: the cost at the next update if lambda were `lambda`. */
static double project(void *ctx, double lambda) {
    projection *pj = ctx;
    train_budget *b = pj->b;
    const slim_model *m = pj->m;
    double k = momentum_gain(pj->c);
    for (size_t e = 0; e < m->param_floats; e++)
        b->reach[e] = -1.0f;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        for (size_t j = 0; j < p->numel; j++) {
            size_t e = p->offset + j;
            double w = b->weights ? b->weights[e] : 1.0;
            b->reach[e] = (float)(pj->lr_window * (lambda * w * k - b->resist[e]));
        }
    }
    slim_pruned_cost pc;
    slim_status st = slim_pruned_cost_measure_table(m, pj->c->cost, table(b), b->reach, NULL, &pc);
    if (st != SLIM_OK) {
        pj->st = st;
        return 0;
    }
    return of_target(pj->c, &pc, 1);
}

static double lr_between(const slim_train_config *c, uint64_t from, uint64_t to, uint64_t total) {
    double sum = 0;
    for (uint64_t t = from; t < to && t < total; t++)
        sum += slim_schedule_lr(c->schedule, c->lr, t, total);
    return sum;
}

/* Each gamma's push per unit of learning rate since the last update (the
 * `every` steps before `step`), from its |gamma| then and now; then now
 * becomes then. */
static void measure_resistance(train_budget *b, const slim_train_config *c, const slim_model *m,
                               double lambda, uint64_t step, uint64_t total) {
    uint64_t from = step >= b->every ? step - b->every : 0;
    double s = lr_between(c, from, step, total), k = momentum_gain(c);
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        for (size_t j = 0; j < p->numel; j++) {
            size_t e = p->offset + j;
            double now = fabs((double)p->data[j]), w = b->weights ? b->weights[e] : 1.0;
            b->resist[e] = s > 0 ? (float)((now - b->gamma_prev[e]) / s + lambda * w * k) : 0.0f;
            b->gamma_prev[e] = (float)now;
        }
    }
}

slim_status train_budget_step(train_budget *b, const slim_train_config *c, slim_model *m,
                              slim_sgd *opt, uint64_t step, uint64_t total) {
    if (!b->every || step % b->every != 0) return SLIM_OK;
    if (c->target) measure_resistance(b, c, m, opt->config.lambda, step, total);
    SLIM_TRY(measure(b, c, m, b->weights));
    if (b->weights) SLIM_TRY(slim_sgd_retarget(opt, m, opt->config.lambda, b->weights));
    if (!c->target) return SLIM_OK;
    if (step >= total) return SLIM_OK; /* nothing left to steer */
    /* Progress is the fraction of the run's summed learning rate spent:
     * what the prox can still do. */
    projection pj = {.b = b, .c = c, .m = m, .st = SLIM_OK};
    uint64_t ahead = (uint64_t)ceil(LOOKAHEAD * (double)total);
    if (ahead < b->every) ahead = b->every;
    uint64_t next = step + ahead < total ? step + ahead : total;
    double run = lr_between(c, 0, total, total), done = lr_between(c, 0, step, total);
    pj.lr_window = lr_between(c, step, next, total);
    double p = run > 0 ? done / run : 1, pn = run > 0 ? (done + pj.lr_window) / run : 1;
    /* Frozen (lambda 0 since the landing): nothing moves the structure. */
    if (c->budget_trim && b->budget.lambda == 0) return SLIM_OK;
    /* Landed and still above the budget: cut back to it now, while there
     * is learning rate left to recover (docs/SPARSITY.md, step 5). */
    double cut = slim_budget_guard(&b->budget, target_cost(b, c), p);
    if (cut > 0 && c->budget_trim) {
        budget_trim t;
        SLIM_TRY(budget_trim_run(m, (slim_cost)c->target, table(b), b->weights, cut, &t));
        if (t.channels > 0) {
            b->guard_channels += t.channels;
            b->guard_cuts++;
            SLIM_TRY(measure(b, c, m, b->weights));
            if (b->weights) SLIM_TRY(slim_sgd_retarget(opt, m, opt->config.lambda, b->weights));
        }
    }
    if (c->budget_trim && slim_budget_freezes(&b->budget, target_cost(b, c), p)) {
        /* Landed in the band: the structure is frozen (zeros held from the
         * next step on, so the cost stays), and the rest of the run
         * fine-tunes it, unpenalised. */
        b->budget.lambda = 0;
        return slim_sgd_retarget(opt, m, 0, NULL);
    }
    double lambda = slim_budget_update(&b->budget, target_cost(b, c), p, pn, project, &pj);
    SLIM_TRY(pj.st);
    /* The new lambda acts at once, momentum included: a cut that reached
     * the gammas only as the old pull decayed from the momentum went on
     * zeroing channels after the controller had stopped (docs/SPARSITY.md,
     * step 4). */
    return slim_sgd_retarget(opt, m, lambda, NULL);
}

/* The controller's start without --lambda (slim_budget_start): from the
 * mean |gamma| of the penalised gammas and the run's summed learning rate. */
static double start_lambda(const slim_train_config *c, const slim_model *m, size_t per_epoch,
                           double fraction) {
    double abs_sum = 0, lr_sum = 0;
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (!slim_penalty_applies(m, p, c->penalty)) continue;
        for (size_t j = 0; j < p->numel; j++)
            abs_sum += fabs((double)p->data[j]);
        n += p->numel;
    }
    uint64_t total = (uint64_t)c->epochs * per_epoch;
    for (uint64_t t = 0; t < total; t++)
        lr_sum += slim_schedule_lr(c->schedule, c->lr, t, total);
    /* The prox's shrink also enters the momentum buffer: per unit of
     * lambda it takes lr_sum / (1 - mu) off. */
    return slim_budget_start(n ? abs_sum / (double)n : 0, lr_sum * momentum_gain(c), fraction);
}

/* A latency budget below the smallest model pruning can give (one channel
 * per group: the table's fixed part stays) is an error, not a lambda that
 * grows without end. */
static slim_status check_reachable(train_budget *b, const slim_train_config *c, const slim_model *m,
                                   double budget) {
    for (size_t e = 0; e < m->param_floats; e++)
        b->reach[e] = INFINITY;
    slim_pruned_cost pc;
    SLIM_TRY(slim_pruned_cost_measure_table(m, c->cost, table(b), b->reach, NULL, &pc));
    if (budget < pc.projected_latency_us)
        return slim_error(SLIM_ERR_ARG,
                          "--target-latency %.4g us is below the smallest model's predicted %.4g "
                          "us (one channel per group; the unpruned model: %.4g us)",
                          budget, pc.projected_latency_us, pc.full_latency_us);
    return SLIM_OK;
}

slim_status train_budget_setup(train_budget *b, const slim_train_config *c, const slim_model *m,
                               slim_sgd *opt, size_t per_epoch, int resumed) {
    const char *what = slim_cost_name((slim_cost)c->target);
    if (c->target && c->penalty != SLIM_PENALTY_GAMMA_L1)
        return slim_error(SLIM_ERR_ARG, "--target-%s needs --penalty gamma-l1 (got %s)", what,
                          slim_penalty_name(c->penalty));
    if (c->cost != SLIM_COST_UNIFORM && !slim_penalty_is_gamma(c->penalty))
        return slim_error(SLIM_ERR_ARG, "--cost %s needs a gamma penalty (got %s)",
                          slim_cost_name(c->cost), slim_penalty_name(c->penalty));
    if (c->cost == SLIM_COST_UNIFORM && !c->target) return SLIM_OK;
    if ((c->cost == SLIM_COST_LATENCY || c->target == SLIM_COST_LATENCY) && !resumed) {
        if (!c->latency_table)
            return slim_error(SLIM_ERR_ARG, "%s latency needs a latency table (no way to get one)",
                              c->cost == SLIM_COST_LATENCY ? "--cost" : "--target");
        slim_latency_table_free(&b->latency);
        SLIM_TRY(c->latency_table(c->latency_ctx, m, &b->latency));
        SLIM_TRY(slim_latency_table_check(&b->latency, m, "the latency table"));
    }
    if (c->cost != SLIM_COST_UNIFORM && !b->weights &&
        !(b->weights = slim_calloc(m->param_floats, sizeof(float))))
        return SLIM_ERR_NOMEM;
    /* A resumed run keeps the weights of its last update. */
    SLIM_TRY(measure(b, c, m, resumed ? NULL : b->weights));
    if (b->weights) SLIM_TRY(slim_sgd_set_weights(opt, b->weights));
    b->every = (per_epoch + SLIM_TRAIN_UPDATES - 1) / SLIM_TRAIN_UPDATES;
    if (!c->target) return SLIM_OK;
    size_t nf = m->param_floats;
    b->reach = slim_calloc(nf, sizeof(float));
    b->resist = slim_calloc(nf, sizeof(float));
    if (!b->gamma_prev) b->gamma_prev = slim_calloc(nf, sizeof(float));
    if (!b->reach || !b->resist || !b->gamma_prev) return SLIM_ERR_NOMEM;
    if (!resumed)
        for (int i = 0; i < m->n_params; i++) {
            const slim_param *p = &m->params[i];
            if (p->role == SLIM_PARAM_GAMMA)
                for (size_t j = 0; j < p->numel; j++)
                    b->gamma_prev[p->offset + j] = fabsf(p->data[j]);
        }
    if (!resumed) {
        double full = of_target(c, &b->pruned, 2);
        double budget = c->target_fraction ? c->target_value * full : c->target_value;
        if (!(c->target_value > 0) || !isfinite(c->target_value) ||
            (c->target_fraction && c->target_value > 1))
            return slim_error(SLIM_ERR_ARG, "--target-%s %g%s: want a budget in (0, %s]", what,
                              c->target_fraction ? 100 * c->target_value : c->target_value,
                              c->target_fraction ? "%" : "",
                              c->target_fraction ? "100%" : "the model's");
        if (budget > full)
            return slim_error(SLIM_ERR_ARG,
                              "--target-%s %.4g%s is above the unpruned model's %.4g%s", what,
                              budget, c->target == SLIM_COST_LATENCY ? " us" : "", full,
                              c->target == SLIM_COST_LATENCY ? " us (predicted)" : "");
        if (c->target == SLIM_COST_LATENCY) SLIM_TRY(check_reachable(b, c, m, budget));
        double lambda = c->lambda;
        if (!(lambda > 0)) lambda = start_lambda(c, m, per_epoch, budget / full);
        slim_budget_init(&b->budget, budget, full, lambda);
    }
    return slim_sgd_set_lambda(opt, b->budget.lambda);
}

int train_budget_holds(const train_budget *b, const slim_train_config *c) {
    return c->target && c->budget_trim && b->budget.lambda == 0;
}

slim_status train_budget_trim(const train_budget *b, const slim_train_config *c, slim_model *m,
                              budget_trim *t) {
    memset(t, 0, sizeof *t);
    if (!c->target || !c->budget_trim) return SLIM_OK;
    return budget_trim_run(m, (slim_cost)c->target, table(b), b->weights, b->budget.budget, t);
}

slim_status train_budget_measure(train_budget *b, const slim_train_config *c, const slim_model *m) {
    return measure(b, c, m, NULL);
}

/* *a := a copy laid out for the new model (NULL stays NULL). */
static slim_status remap_one(float **a, const size_t *src, size_t n) {
    if (!*a) return SLIM_OK;
    float *x = slim_calloc(n ? n : 1, sizeof(float));
    if (!x) return SLIM_ERR_NOMEM;
    for (size_t k = 0; k < n; k++)
        x[k] = src[k] == SIZE_MAX ? 0.0f : (*a)[src[k]];
    free(*a);
    *a = x;
    return SLIM_OK;
}

slim_status train_budget_remap(train_budget *b, const slim_model *m, const size_t *src,
                               slim_sgd *opt) {
    size_t n = m->param_floats;
    SLIM_TRY(remap_one(&b->weights, src, n));
    SLIM_TRY(remap_one(&b->gamma_prev, src, n));
    SLIM_TRY(remap_one(&b->reach, src, n));
    SLIM_TRY(remap_one(&b->resist, src, n));
    if (!b->weights) return SLIM_OK;
    SLIM_TRY(slim_sgd_resize(opt, m));
    return slim_sgd_set_weights(opt, b->weights);
}

void train_budget_free(train_budget *b) {
    slim_latency_table_free(&b->latency);
    free(b->weights);
    free(b->gamma_prev);
    free(b->reach);
    free(b->resist);
    memset(b, 0, sizeof *b);
}

/* ---- checkpoint ------------------------------------------------------- */

/* Per-gamma optimizer state, kept in (param_floats) arrays laid out like
 * the parameters and stored as one tensor of the gammas in parameter
 * order: the penalty weights (a resumed run needs those of the last
 * update, not of its own start) and, with a budget, each |gamma| at the
 * last update (the controller's velocity estimate). */
#define WEIGHTS_TENSOR "optim.gamma_weight"
#define PREV_TENSOR "optim.gamma_prev"

static size_t gamma_floats(const slim_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA) n += m->params[i].numel;
    return n;
}

static slim_status store_gamma_state(const slim_model *m, slim_ckpt *ck, const char *name,
                                     const float *src) {
    size_t n = gamma_floats(m), k = 0;
    if (!src || n == 0) return SLIM_OK;
    float *buf = slim_calloc(n, sizeof(float));
    if (!buf) return SLIM_ERR_NOMEM;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA)
            for (size_t j = 0; j < m->params[i].numel; j++)
                buf[k++] = src[m->params[i].offset + j];
    slim_status st = slim_ckpt_add_tensor(ck, name, 1, (int[]){(int)n}, buf, 1);
    free(buf);
    return st;
}

/* *dst: allocated, filled from tensor `name` (every value finite, >= 0). */
static slim_status restore_gamma_state(const slim_model *m, const slim_ckpt *ck, const char *path,
                                       const char *name, float **dst) {
    const slim_ckpt_tensor *t = slim_ckpt_find(ck, name);
    size_t n = gamma_floats(m), k = 0;
    if (n == 0) return SLIM_OK;
    if (!t || t->numel != n)
        return slim_error(SLIM_ERR_FORMAT, "%s: tensor '%s' is %s (want %zu values)", path, name,
                          t ? "the wrong size" : "missing", n);
    *dst = slim_calloc(m->param_floats, sizeof(float));
    if (!*dst) return SLIM_ERR_NOMEM;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA)
            for (size_t j = 0; j < m->params[i].numel; j++, k++) {
                if (!(t->data[k] >= 0) || !isfinite(t->data[k]))
                    return slim_error(SLIM_ERR_FORMAT, "%s: tensor '%s' value %zu is %g", path,
                                      name, k, (double)t->data[k]);
                (*dst)[m->params[i].offset + j] = t->data[k];
            }
    return SLIM_OK;
}

slim_status train_budget_store(const train_budget *b, const slim_train_config *c,
                               const slim_model *m, slim_ckpt *ck) {
    SLIM_TRY(slim_ckpt_set_meta(ck, "cost", slim_cost_name(c->cost)));
    if (c->target) {
        /* The controller's state, each double in a form that reads back
         * exactly, so that a resumed run continues bit for bit. */
        SLIM_TRY(slim_ckpt_set_meta(ck, "target", slim_cost_name((slim_cost)c->target)));
        SLIM_TRY(train_set_meta_num(ck, "budget", "%.17g", b->budget.budget));
        SLIM_TRY(train_set_meta_num(ck, "budget.full", "%.17g", b->budget.full));
        SLIM_TRY(train_set_meta_num(ck, "budget.lambda", "%.17g", b->budget.lambda));
        SLIM_TRY(train_set_meta_num(ck, "budget.last_cost", "%.17g", b->budget.last_cost));
        SLIM_TRY(train_set_meta_num(ck, "budget.last_progress", "%.17g", b->budget.last_progress));
        SLIM_TRY(train_set_meta_num(ck, "budget.updates", "%.0f", b->budget.updates));
    }
    if (table(b)) SLIM_TRY(slim_latency_table_store(&b->latency, ck));
    SLIM_TRY(store_gamma_state(m, ck, WEIGHTS_TENSOR, b->weights));
    return store_gamma_state(m, ck, PREV_TENSOR, b->gamma_prev);
}

slim_status train_budget_restore(train_budget *b, slim_train_config *c, const slim_model *m,
                                 const slim_ckpt *ck, const char *path) {
    const char *s;
    double v;
    c->cost = SLIM_COST_UNIFORM;
    c->target = 0;
    if ((s = slim_ckpt_get_meta(ck, "cost"))) SLIM_TRY(slim_cost_parse(s, &c->cost));
    if ((s = slim_ckpt_get_meta(ck, "target"))) {
        slim_cost t;
        if (slim_cost_parse(s, &t) != SLIM_OK || t == SLIM_COST_UNIFORM)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: setting 'target' is '%s': want macs, params or latency", path,
                              s);
        c->target = (int)t;
        SLIM_TRY(train_meta_num(ck, path, "budget", &b->budget.budget));
        SLIM_TRY(train_meta_num(ck, path, "budget.full", &b->budget.full));
        SLIM_TRY(train_meta_num(ck, path, "budget.lambda", &b->budget.lambda));
        SLIM_TRY(train_meta_num(ck, path, "budget.last_cost", &b->budget.last_cost));
        SLIM_TRY(train_meta_num(ck, path, "budget.last_progress", &b->budget.last_progress));
        SLIM_TRY(train_meta_num(ck, path, "budget.updates", &v));
        const slim_budget *q = &b->budget;
        if (!(q->budget > 0) || !(q->lambda >= 0) || !isfinite(q->lambda) || !isfinite(q->budget) ||
            !(q->full >= q->budget) || !isfinite(q->full) || !(q->last_cost >= 0) ||
            !isfinite(q->last_cost) || !(q->last_progress >= 0) || !(q->last_progress <= 1) ||
            !(v >= 0 && v <= INT_MAX) || v != floor(v))
            return slim_error(SLIM_ERR_FORMAT, "%s: the budget settings are out of range", path);
        b->budget.updates = (int)v;
    }
    if (c->cost == SLIM_COST_LATENCY || c->target == SLIM_COST_LATENCY)
        SLIM_TRY(slim_latency_table_load(ck, path, m, &b->latency));
    if (c->cost != SLIM_COST_UNIFORM)
        SLIM_TRY(restore_gamma_state(m, ck, path, WEIGHTS_TENSOR, &b->weights));
    if (c->target) SLIM_TRY(restore_gamma_state(m, ck, path, PREV_TENSOR, &b->gamma_prev));
    return SLIM_OK;
}

/* ---- reporting -------------------------------------------------------- */

void train_budget_text(const train_budget *b, const slim_train_config *c, double lambda, char *buf,
                       size_t len) {
    buf[0] = '\0';
    if (!c->target) return;
    double full = of_target(c, &b->pruned, 2);
    if (!(full > 0)) return;
    if (c->target == SLIM_COST_LATENCY)
        snprintf(buf, len, "  lambda %.3g  latency %.1f us %.1f%% (budget %.1f us)", lambda,
                 target_cost(b, c), 100 * target_cost(b, c) / full, b->budget.budget);
    else
        snprintf(buf, len, "  lambda %.3g  %s %.1f%% (budget %.1f%%)", lambda,
                 slim_cost_name((slim_cost)c->target), 100 * target_cost(b, c) / full,
                 100 * b->budget.budget / full);
}

void train_budget_csv(const train_budget *b, const slim_train_config *c, double lambda, FILE *f) {
    fprintf(f, ",%.9g,%.17g,%.17g,%.9g,%.17g", lambda, b->pruned.macs, b->pruned.params,
            b->pruned.latency_us, c->target ? b->budget.budget : 0.0);
}
