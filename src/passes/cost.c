/* What the model threshold-0 pruning would give costs, from pruning's own
 * analysis (prune_plan_choose: the groups and which channels go), without
 * building that model: per layer the features that stay, then MACs and
 * params by the formulas of slim_layer_macs / slim_layer_params. A group
 * channel's cost is its marginal cost: what the layers it touches (its
 * producers' filters, its BNs, a depthwise conv carrying it, its consumers'
 * input slices) lose when it goes, counted with the other channels as they
 * are now (a dead channel: what it would add back). */
#include "passes/budget_trim.h"
#include "passes/prune_plan.h"
#include "slim/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const cost_names[] = {"uniform", "macs", "params", "latency"};

const char *slim_cost_name(slim_cost cost) {
    if ((unsigned)cost < sizeof cost_names / sizeof *cost_names) return cost_names[cost];
    return "?";
}

slim_status slim_cost_parse(const char *name, slim_cost *out) {
    for (size_t i = 0; i < sizeof cost_names / sizeof *cost_names; i++)
        if (strcmp(name, cost_names[i]) == 0) {
            *out = (slim_cost)i;
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_ARG, "unknown cost '%s' (expected uniform, macs, params or latency)",
                      name);
}

/* MACs, params and (with a table) latency of conv, dense or bn layer i
 * reading `in` features and writing `out` (a depthwise conv keeps one
 * group per channel). */
static void layer_cost(const slim_model *m, const slim_latency_table *lat, int i, double in,
                       double out, double c[3]) {
    const slim_layer *l = &m->layers[i];
    double *macs = &c[0], *params = &c[1];
    c[0] = c[1] = c[2] = 0;
    if (in <= 0 || out <= 0) return;
    if (lat) c[2] = slim_latency_layer_us(lat, i, in, out);
    if (l->kind == SLIM_LAYER_CONV) {
        double groups = prune_is_depthwise(l) ? out : (l->groups > 0 ? l->groups : 1);
        double w = out * (in / groups) * l->k * l->k;
        *macs = w * l->h * l->w;
        *params = w + (l->p_bias >= 0 ? out : 0);
    } else if (l->kind == SLIM_LAYER_DENSE) {
        *macs = in * out;
        *params = in * out + (l->p_bias >= 0 ? out : 0);
    } else if (l->kind == SLIM_LAYER_BN) {
        *params = 2 * out;
    }
}

typedef struct tally {
    const prune_plan *p;
    const slim_latency_table *lat; /* or NULL */
    int *base;                     /* (n_groups) first flat index of each group's channels */
    double *d[2]; /* (flat) features of a channel in the layer's input [0] and output [1] */
    int *touched, n_touched;
    unsigned char *mark;
} tally;

/* Adds layer x's channels (rep features each) to side s of the tally. */
static void add_side(tally *t, int x, int s) {
    const slim_prune_groups *g = &t->p->g;
    if (!g->group_of_channel[x]) return;
    for (int c = 0; c < g->channels_of_layer[x]; c++) {
        int gi = g->group_of_channel[x][c];
        if (gi < 0) continue;
        int u = t->base[gi] + g->index_of_channel[x][c];
        if (!t->mark[u]) {
            t->mark[u] = 1;
            t->touched[t->n_touched++] = u;
        }
        t->d[s][u] += g->rep_of_layer[x];
    }
}

static int kept_features(const prune_plan *p, int i) {
    const slim_prune_groups *g = &p->g;
    int n = 0;
    for (int c = 0; c < g->channels_of_layer[i]; c++) {
        int gi = g->group_of_channel[i] ? g->group_of_channel[i][c] : -1;
        n += gi < 0 || !p->removed[gi][g->index_of_channel[i][c]];
    }
    return n * g->rep_of_layer[i];
}

/* Totals and, when marg is not NULL, each group channel's marginal cost
 * (marg[0] MACs, marg[1] params, marg[2] latency; flat (total channels)). */
static slim_status count(const prune_plan *p, tally *t, slim_pruned_cost *out, double *marg[3]) {
    const slim_model *m = p->m;
    int n = m->n_layers;
    double *feat = slim_calloc((size_t)n, sizeof(double));
    if (!feat) return SLIM_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        feat[i] = kept_features(p, i);
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_CONV && l->kind != SLIM_LAYER_DENSE && l->kind != SLIM_LAYER_BN)
            continue;
        int a = l->inputs[0];
        double c[3];
        layer_cost(m, t->lat, i, feat[a], feat[i], c);
        out->macs += c[0];
        out->params += c[1];
        out->latency_us += c[2];
        if (!marg) continue;
        t->n_touched = 0;
        add_side(t, i, 1);
        if (l->kind != SLIM_LAYER_BN) add_side(t, a, 0);
        for (int k = 0; k < t->n_touched; k++) {
            int u = t->touched[k], gi = 0;
            while (gi + 1 < p->g.n_groups && t->base[gi + 1] <= u)
                gi++;
            double sign = p->removed[gi][u - t->base[gi]] ? -1 : 1, c2[3];
            layer_cost(m, t->lat, i, feat[a] - sign * t->d[0][u], feat[i] - sign * t->d[1][u], c2);
            for (int k = 0; k < 3; k++)
                marg[k][u] += sign * (c[k] - c2[k]);
            t->d[0][u] = t->d[1][u] = 0;
            t->mark[u] = 0;
        }
    }
    free(feat);
    if (t->lat) out->latency_us = fmax(out->latency_us + t->lat->rest_us, 0);
    return SLIM_OK;
}

/* Normalises marg (flat, one entry per group channel) in place to mean 1
 * over the gamma entries of live channels (a group channel counts once per
 * BN carrying it); no live cost: every entry 1. */
static void normalise(const prune_plan *p, const tally *t, double *marg) {
    const slim_model *m = p->m;
    const slim_prune_groups *g = &p->g;
    double sum = 0;
    size_t live = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN || l->p_gamma < 0 || !g->group_of_channel[i]) continue;
        for (int c = 0; c < l->c; c++) {
            int gi = g->group_of_channel[i][c];
            if (gi < 0) continue;
            int j = g->index_of_channel[i][c];
            if (p->removed[gi][j]) continue;
            sum += marg[t->base[gi] + j];
            live++;
        }
    }
    int total = t->base[g->n_groups];
    for (int u = 0; u < total; u++)
        marg[u] = sum > 0 ? marg[u] * (double)live / sum : 1.0;
}

/* weights[gamma entry] = the weight of its group channel; 0 elsewhere. */
static void fill_weights(const prune_plan *p, const tally *t, const double *cj, float *weights) {
    const slim_model *m = p->m;
    const slim_prune_groups *g = &p->g;
    memset(weights, 0, m->param_floats * sizeof(float));
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN || l->p_gamma < 0 || !g->group_of_channel[i]) continue;
        float *w = weights + m->params[l->p_gamma].offset;
        for (int c = 0; c < l->c; c++) {
            int gi = g->group_of_channel[i][c];
            if (gi >= 0) w[c] = (float)cj[t->base[gi] + g->index_of_channel[i][c]];
        }
    }
}

/* Also removes the channels each of whose gammas has |gamma| <= reach at
 * its entry, keeping one per group (the largest score) as slim_prune does.
 * gone: (total channels) scratch. */
static void project(prune_plan *p, const tally *t, const float *reach, unsigned char *gone) {
    const slim_model *m = p->m;
    const slim_prune_groups *g = &p->g;
    memset(gone, 1, (size_t)t->base[g->n_groups]);
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN || l->p_gamma < 0 || !g->group_of_channel[i]) continue;
        const slim_param *gp = &m->params[l->p_gamma];
        for (int c = 0; c < l->c; c++) {
            int gi = g->group_of_channel[i][c];
            if (gi < 0) continue;
            int u = t->base[gi] + g->index_of_channel[i][c];
            gone[u] &= fabsf(gp->data[c]) <= reach[gp->offset + (size_t)c];
        }
    }
    for (int gi = 0; gi < g->n_groups; gi++) {
        int n = g->groups[gi].channels, kept = 0, best = 0;
        for (int j = 0; j < n; j++) {
            if (gone[t->base[gi] + j]) p->removed[gi][j] = 1;
            kept += !p->removed[gi][j];
            if (p->score[gi][j] > p->score[gi][best]) best = j;
        }
        if (kept == 0) p->removed[gi][best] = 0;
    }
}

slim_status slim_pruned_cost_measure(const slim_model *model, slim_cost kind, const float *reach,
                                     float *weights, slim_pruned_cost *out) {
    return slim_pruned_cost_measure_table(model, kind, NULL, reach, weights, out);
}

slim_status slim_pruned_cost_measure_table(const slim_model *model, slim_cost kind,
                                           const slim_latency_table *table, const float *reach,
                                           float *weights, slim_pruned_cost *out) {
    memset(out, 0, sizeof *out);
    if (!model || model->n_layers < 2)
        return slim_error(SLIM_ERR_ARG, "slim_pruned_cost_measure: no model");
    if (kind == SLIM_COST_LATENCY && !table)
        return slim_error(SLIM_ERR_ARG, "slim_pruned_cost_measure: cost latency needs a table");
    if (table && table->n_layers != model->n_layers)
        return slim_error(SLIM_ERR_ARG,
                          "slim_pruned_cost_measure: a latency table of %d layers for a model "
                          "of %d",
                          table->n_layers, model->n_layers);
    if (table) out->full_latency_us = slim_latency_model_us(table, model);
    out->full_macs = slim_model_macs(model);
    out->full_params = (double)slim_model_param_count(model);
    prune_plan p = {.m = model};
    slim_prune_options opt = slim_prune_default_options();
    slim_status st = prune_plan_choose(&p, &opt, NULL);
    tally t = {.p = &p, .lat = table};
    int ng = p.g.n_groups, total = 0;
    int need = weights != NULL;
    double *marg[3] = {NULL, NULL, NULL};
    if (st == SLIM_OK) {
        t.base = slim_calloc((size_t)ng + 1, sizeof(int));
        if (!t.base) st = SLIM_ERR_NOMEM;
        for (int gi = 0; st == SLIM_OK && gi < ng; gi++) {
            t.base[gi] = total;
            total += p.g.groups[gi].channels;
            for (int j = 0; j < p.g.groups[gi].channels; j++)
                out->channels_alive += !p.removed[gi][j];
        }
        if (t.base) t.base[ng] = total;
        out->channels = total;
    }
    if (st == SLIM_OK && need) {
        size_t n = (size_t)total + 1;
        t.d[0] = slim_calloc(n, sizeof(double));
        t.d[1] = slim_calloc(n, sizeof(double));
        t.touched = slim_calloc(n, sizeof(int));
        t.mark = slim_calloc(n, 1);
        marg[0] = slim_calloc(n, sizeof(double));
        marg[1] = slim_calloc(n, sizeof(double));
        marg[2] = slim_calloc(n, sizeof(double));
        if (!t.d[0] || !t.d[1] || !t.touched || !t.mark || !marg[0] || !marg[1] || !marg[2])
            st = SLIM_ERR_NOMEM;
    }
    if (st == SLIM_OK) st = count(&p, &t, out, need ? marg : NULL);
    out->projected_macs = out->macs;
    out->projected_params = out->params;
    out->projected_latency_us = out->latency_us;
    if (st == SLIM_OK && need) {
        double *cj = kind == SLIM_COST_PARAMS    ? marg[1]
                     : kind == SLIM_COST_LATENCY ? marg[2]
                                                 : marg[0];
        /* A cost is never below 0: where a layer's time does not change
         * with its width, the difference of two interpolations is a
         * rounding error of either sign. */
        for (int k = 0; k < total; k++)
            cj[k] = kind == SLIM_COST_UNIFORM ? 1 : cj[k] > 0 ? cj[k] : 0;
        normalise(&p, &t, cj);
        if (weights) fill_weights(&p, &t, cj, weights);
    }
    if (st == SLIM_OK && reach) {
        slim_pruned_cost later = {0};
        unsigned char *gone = slim_calloc((size_t)total + 1, 1);
        if (!gone) st = SLIM_ERR_NOMEM;
        if (st == SLIM_OK) {
            project(&p, &t, reach, gone);
            st = count(&p, &t, &later, NULL);
        }
        free(gone);
        out->projected_macs = later.macs;
        out->projected_params = later.params;
        out->projected_latency_us = later.latency_us;
    }
    free(t.base);
    free(t.d[0]);
    free(t.d[1]);
    free(t.touched);
    free(t.mark);
    free(marg[0]);
    free(marg[1]);
    free(marg[2]);
    prune_plan_free(&p);
    return st;
}

/* ---- trimming to the budget (budget_trim.h) ---------------------------- */

static double target_of(const slim_pruned_cost *pc, slim_cost target, int projected) {
    if (target == SLIM_COST_PARAMS) return projected ? pc->projected_params : pc->params;
    if (target == SLIM_COST_LATENCY) return projected ? pc->projected_latency_us : pc->latency_us;
    return projected ? pc->projected_macs : pc->macs;
}

/* reach[e] := t * c_e at each gamma entry with c_e > 0, -1 elsewhere. */
static void fill_reach(const slim_model *m, const float *weights, double t, float *reach) {
    for (size_t e = 0; e < m->param_floats; e++)
        reach[e] = -1.0f;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        for (size_t j = 0; j < p->numel; j++) {
            double w = weights ? weights[p->offset + j] : 1.0;
            if (w > 0) reach[p->offset + j] = (float)(t * w);
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Zeroes every gamma of the channels the projection with reach removes. */
static slim_status zero_reached(slim_model *m, const float *reach, budget_trim *out) {
    prune_plan p = {.m = m};
    slim_prune_options opt = slim_prune_default_options();
    tally t = {.p = &p};
    unsigned char *gone = NULL, *was = NULL;
    slim_status st = prune_plan_choose(&p, &opt, NULL);
    int ng = p.g.n_groups, total = 0;
    if (st == SLIM_OK && !(t.base = slim_calloc((size_t)ng + 1, sizeof(int)))) st = SLIM_ERR_NOMEM;
    for (int gi = 0; st == SLIM_OK && gi <= ng; gi++) {
        t.base[gi] = total;
        if (gi < ng) total += p.g.groups[gi].channels;
    }
    if (st == SLIM_OK &&
        (!(gone = slim_calloc((size_t)total + 1, 1)) || !(was = slim_calloc((size_t)total + 1, 1))))
        st = SLIM_ERR_NOMEM;
    if (st == SLIM_OK) {
        for (int gi = 0; gi < ng; gi++)
            for (int j = 0; j < p.g.groups[gi].channels; j++)
                was[t.base[gi] + j] = p.removed[gi][j];
        project(&p, &t, reach, gone);
        for (int i = 0; i < m->n_layers; i++) {
            const slim_layer *l = &m->layers[i];
            if (l->kind != SLIM_LAYER_BN || l->p_gamma < 0 || !p.g.group_of_channel[i]) continue;
            slim_param *gp = &m->params[l->p_gamma];
            for (int c = 0; c < l->c; c++) {
                int gi = p.g.group_of_channel[i][c];
                if (gi < 0) continue;
                int j = p.g.index_of_channel[i][c], u = t.base[gi] + j;
                if (!p.removed[gi][j] || was[u] || gp->data[c] == 0.0f) continue;
                double a = fabs((double)gp->data[c]);
                out->mass += a;
                out->gammas++;
                gp->data[c] = 0.0f;
                if (gp->momentum) gp->momentum[c] = 0.0f;
            }
        }
        for (int gi = 0; gi < ng; gi++)
            for (int j = 0; j < p.g.groups[gi].channels; j++)
                out->channels += p.removed[gi][j] && !was[t.base[gi] + j];
    }
    free(gone);
    free(was);
    free(t.base);
    prune_plan_free(&p);
    return st;
}

slim_status budget_trim_run(slim_model *m, slim_cost target, const slim_latency_table *table,
                            const float *weights, double budget, budget_trim *out) {
    memset(out, 0, sizeof *out);
    if (target != SLIM_COST_MACS && target != SLIM_COST_PARAMS && target != SLIM_COST_LATENCY)
        return slim_error(SLIM_ERR_ARG, "a budget trim counts macs, params or latency");
    slim_pruned_cost pc;
    SLIM_TRY(slim_pruned_cost_measure_table(m, SLIM_COST_UNIFORM, table, NULL, NULL, &pc));
    out->before = out->after = target_of(&pc, target, 0);
    if (out->before <= budget) return SLIM_OK;
    /* The candidate thresholds: every live gamma's |gamma| / c_j. */
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA) n += m->params[i].numel;
    double *score = slim_calloc(n + 1, sizeof(double));
    float *reach = slim_calloc(m->param_floats + 1, sizeof(float));
    slim_status st = score && reach ? SLIM_OK : SLIM_ERR_NOMEM;
    size_t k = 0;
    for (int i = 0; st == SLIM_OK && i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        for (size_t j = 0; j < p->numel; j++) {
            double w = weights ? weights[p->offset + j] : 1.0;
            if (w > 0 && p->data[j] != 0.0f) score[k++] = fabs((double)p->data[j]) / w;
        }
    }
    if (st == SLIM_OK) qsort(score, k, sizeof *score, cmp_double);
    /* The projected cost falls as the threshold grows: the smallest one
     * within the budget, by bisection over the sorted scores. */
    double at = 0;
    if (st == SLIM_OK && k > 0) {
        fill_reach(m, weights, score[k - 1], reach);
        st = slim_pruned_cost_measure_table(m, SLIM_COST_UNIFORM, table, reach, NULL, &pc);
        at = target_of(&pc, target, 1);
    }
    if (st == SLIM_OK && (k == 0 || at > budget)) {
        out->unreachable = 1;
    } else if (st == SLIM_OK) {
        size_t lo = 0, hi = k - 1; /* hi fits; lo is the first that might */
        while (st == SLIM_OK && lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            fill_reach(m, weights, score[mid], reach);
            st = slim_pruned_cost_measure_table(m, SLIM_COST_UNIFORM, table, reach, NULL, &pc);
            if (target_of(&pc, target, 1) <= budget)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (st == SLIM_OK) {
            out->score = score[hi];
            fill_reach(m, weights, score[hi], reach);
            st = zero_reached(m, reach, out);
        }
        if (st == SLIM_OK)
            st = slim_pruned_cost_measure_table(m, SLIM_COST_UNIFORM, table, NULL, NULL, &pc);
        if (st == SLIM_OK) out->after = target_of(&pc, target, 0);
    }
    free(score);
    free(reach);
    return st;
}
