/* The training loop: data, model, optimizer, progress, metrics, checkpoints
 * and exact resume. */
#include "slim/autograd.h"
#include "slim/model_io.h"
#include "slim/train.h"
#include "train/internal.h"
#include "train/live_prune.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* RNG streams: one seed, separate streams so that changing the model does
 * not change the data order. */
enum { STREAM_INIT = 1, STREAM_DATA = 2 };

void slim_train_config_default(slim_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->data = "fashion-mnist";
    cfg->epochs = 1;
    cfg->batch = 128;
    cfg->lr = 0.05f;
    cfg->schedule = SLIM_SCHEDULE_COSINE;
    cfg->momentum = 0.9f;
    cfg->weight_decay = 5e-4f;
    cfg->flip = -1;
    cfg->threads = 2;
    cfg->backend = SLIM_BACKEND_FAST;
    cfg->progress = -1;
}

void slim_train_metrics_path(const char *ckpt_path, char *buf, size_t len) {
    size_t n = strlen(ckpt_path);
    if (n > 5 && strcmp(ckpt_path + n - 5, ".ckpt") == 0)
        snprintf(buf, len, "%.*s.csv", (int)(n - 5), ckpt_path);
    else
        snprintf(buf, len, "%s.csv", ckpt_path);
}

/* ---- settings stored in the checkpoint -------------------------------- */

typedef struct run_state {
    slim_train_config cfg; /* effective settings */
    char *strings[4];      /* owned copies of strings taken from a checkpoint */
    slim_model *model;
    slim_data_options dopts; /* how both splits are loaded (recorded as data.*) */
    slim_dataset *train, *test;
    slim_sgd opt;
    slim_batcher batcher;
    slim_augment aug;
    const char *aug_rule; /* the resumed checkpoint's augment.rule, or NULL */
    slim_rng data_rng;
    slim_ckpt_position pos;
    float *x;
    int32_t *y;
    FILE *csv;
    /* A new run's CSV is written as csv_tmp and renamed to csv_path at its
     * first checkpoint, so that a run failing before it leaves the metrics
     * of an earlier run with the same --out as they were; "" once renamed. */
    char csv_path[4096], csv_tmp[4096 + 32];
    slim_layer_sparsity *sparsity;
    int tty;
    /* Cost weighting and the budget (cfg.cost, cfg.target). */
    float *weights;    /* (param_floats) the penalty weights c_j, or NULL when uniform */
    float *gamma_prev; /* (param_floats) with a target: each |gamma| at the last update */
    float *reach;      /* (param_floats) scratch of the projection */
    float *resist;     /* (param_floats) scratch: each gamma's measured push per unit lr */
    slim_budget budget;
    slim_pruned_cost pruned; /* at the last update or epoch end */
    uint64_t every;          /* steps between updates, 0 = none */
    train_live live;         /* removing dead channels while training */
    double peak_mib;         /* peak RSS of the last epoch's training steps */
} run_state;

static slim_status set_meta_f(slim_ckpt *ck, const char *key, const char *fmt, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return slim_ckpt_set_meta(ck, key, buf);
}

static slim_status store_settings(const run_state *rs, slim_ckpt *ck) {
    const slim_train_config *c = &rs->cfg;
    SLIM_TRY(slim_ckpt_set_meta(ck, "data", c->data ? c->data : "fashion-mnist"));
    if (c->model) SLIM_TRY(slim_ckpt_set_meta(ck, "model_file", c->model));
    SLIM_TRY(set_meta_f(ck, "epochs", "%.0f", c->epochs));
    SLIM_TRY(set_meta_f(ck, "batch", "%.0f", c->batch));
    SLIM_TRY(set_meta_f(ck, "lr", "%.9g", c->lr));
    SLIM_TRY(slim_ckpt_set_meta(ck, "schedule", slim_schedule_name(c->schedule)));
    SLIM_TRY(set_meta_f(ck, "momentum", "%.9g", c->momentum));
    SLIM_TRY(set_meta_f(ck, "weight_decay", "%.9g", c->weight_decay));
    SLIM_TRY(set_meta_f(ck, "limit", "%.0f", (double)c->limit));
    SLIM_TRY(set_meta_f(ck, "test_limit", "%.0f", (double)c->test_limit));
    SLIM_TRY(set_meta_f(ck, "augment", "%.0f", c->augment));
    SLIM_TRY(set_meta_f(ck, "flip", "%.0f", c->flip));
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    SLIM_TRY(slim_ckpt_set_meta(ck, "seed", seed));
    SLIM_TRY(slim_ckpt_set_meta(ck, "backend", c->backend == SLIM_BACKEND_REF ? "ref" : "fast"));
    SLIM_TRY(slim_ckpt_set_meta(ck, "penalty", slim_penalty_name(c->penalty)));
    SLIM_TRY(set_meta_f(ck, "lambda", "%.9g", c->lambda));
    SLIM_TRY(slim_ckpt_set_meta(ck, "cost", slim_cost_name(c->cost)));
    if (c->target) {
        /* The controller's state, each double in a form that reads back
         * exactly, so that a resumed run continues bit for bit. */
        SLIM_TRY(slim_ckpt_set_meta(ck, "target", slim_cost_name((slim_cost)c->target)));
        SLIM_TRY(set_meta_f(ck, "budget", "%.17g", rs->budget.budget));
        SLIM_TRY(set_meta_f(ck, "budget.lambda", "%.17g", rs->budget.lambda));
        SLIM_TRY(set_meta_f(ck, "budget.last_cost", "%.17g", rs->budget.last_cost));
        SLIM_TRY(set_meta_f(ck, "budget.last_progress", "%.17g", rs->budget.last_progress));
        SLIM_TRY(set_meta_f(ck, "budget.updates", "%.0f", rs->budget.updates));
    }
    SLIM_TRY(slim_train_store_data_meta(ck, &rs->dopts, rs->train));
    if (c->augment) {
        char rule[128];
        train_augment_rule(&rs->aug, rule, sizeof rule);
        SLIM_TRY(slim_ckpt_set_meta(ck, "augment.rule", rule));
    }
    const slim_dataset *ds = rs->train;
    for (int k = 0; ds->class_names && k < ds->n_classes; k++) {
        char key[32];
        snprintf(key, sizeof key, "class.%d", k);
        SLIM_TRY(slim_ckpt_set_meta(ck, key, ds->class_names[k]));
    }
    return SLIM_OK;
}

static slim_status meta_num(const slim_ckpt *ck, const char *path, const char *key, double *out) {
    const char *v = slim_ckpt_get_meta(ck, key);
    char *end;
    if (!v) return slim_error(SLIM_ERR_FORMAT, "%s: setting '%s' is missing", path, key);
    errno = 0;
    *out = strtod(v, &end);
    if (errno || *end || end == v)
        return slim_error(SLIM_ERR_FORMAT, "%s: setting '%s' is not a number: '%s'", path, key, v);
    return SLIM_OK;
}

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

static slim_status store_gamma_state(const run_state *rs, slim_ckpt *ck, const char *name,
                                     const float *src) {
    const slim_model *m = rs->model;
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
static slim_status restore_gamma_state(run_state *rs, const slim_ckpt *ck, const char *path,
                                       const char *name, float **dst) {
    const slim_model *m = rs->model;
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

/* The padded crop of a model input h pixels high: 2 pixels below 32, 4
 * from 32 up. */
static int pad_for(int h) { return h >= 32 ? 4 : 2; }

static const char *legacy_rule(int h) { return h >= 32 ? "pad-crop 4" : "pad-crop 2"; }

/* Takes every setting from a checkpoint being resumed, except the epoch
 * count when the caller gave one, and threads/out/progress. */
static slim_status restore_settings(run_state *rs, const slim_ckpt *ck, const char *path) {
    slim_train_config *c = &rs->cfg;
    double v;
    const char *s;
    if ((s = slim_ckpt_get_meta(ck, "data"))) c->data = rs->strings[0] = strdup(s);
    if (c->epochs <= 0) {
        SLIM_TRY(meta_num(ck, path, "epochs", &v));
        c->epochs = (int)v;
    }
    SLIM_TRY(meta_num(ck, path, "batch", &v));
    c->batch = (int)v;
    SLIM_TRY(meta_num(ck, path, "lr", &v));
    c->lr = (float)v;
    if ((s = slim_ckpt_get_meta(ck, "schedule"))) SLIM_TRY(slim_schedule_parse(s, &c->schedule));
    SLIM_TRY(meta_num(ck, path, "momentum", &v));
    c->momentum = (float)v;
    SLIM_TRY(meta_num(ck, path, "weight_decay", &v));
    c->weight_decay = (float)v;
    SLIM_TRY(meta_num(ck, path, "limit", &v));
    c->limit = (size_t)v;
    SLIM_TRY(meta_num(ck, path, "test_limit", &v));
    c->test_limit = (size_t)v;
    SLIM_TRY(meta_num(ck, path, "augment", &v));
    c->augment = (int)v;
    /* Recorded since random-resized crop exists; before, every run with
     * augment used a padded crop. */
    s = slim_ckpt_get_meta(ck, "augment.rule");
    rs->aug_rule = rs->strings[3] = strdup(s ? s : legacy_rule(rs->model->layers[0].h));
    if (!rs->aug_rule) return SLIM_ERR_NOMEM;
    SLIM_TRY(meta_num(ck, path, "flip", &v));
    c->flip = (int)v;
    if ((s = slim_ckpt_get_meta(ck, "seed"))) c->seed = strtoull(s, NULL, 10);
    if ((s = slim_ckpt_get_meta(ck, "backend")))
        c->backend = strcmp(s, "ref") == 0 ? SLIM_BACKEND_REF : SLIM_BACKEND_FAST;
    if ((s = slim_ckpt_get_meta(ck, "penalty"))) SLIM_TRY(slim_penalty_parse(s, &c->penalty));
    SLIM_TRY(meta_num(ck, path, "lambda", &v));
    c->lambda = (float)v;
    c->cost = SLIM_COST_UNIFORM;
    c->target = 0;
    if ((s = slim_ckpt_get_meta(ck, "cost"))) SLIM_TRY(slim_cost_parse(s, &c->cost));
    if ((s = slim_ckpt_get_meta(ck, "target"))) {
        slim_cost t;
        if (slim_cost_parse(s, &t) != SLIM_OK || t == SLIM_COST_UNIFORM)
            return slim_error(SLIM_ERR_FORMAT, "%s: setting 'target' is '%s': want macs or params",
                              path, s);
        c->target = (int)t;
        SLIM_TRY(meta_num(ck, path, "budget", &rs->budget.budget));
        SLIM_TRY(meta_num(ck, path, "budget.lambda", &rs->budget.lambda));
        SLIM_TRY(meta_num(ck, path, "budget.last_cost", &rs->budget.last_cost));
        SLIM_TRY(meta_num(ck, path, "budget.last_progress", &rs->budget.last_progress));
        SLIM_TRY(meta_num(ck, path, "budget.updates", &v));
        rs->budget.updates = (int)v;
        if (!(rs->budget.budget > 0) || !(rs->budget.lambda >= 0) || !isfinite(rs->budget.lambda) ||
            !isfinite(rs->budget.budget))
            return slim_error(SLIM_ERR_FORMAT, "%s: the budget settings are out of range", path);
    }
    if (c->cost != SLIM_COST_UNIFORM)
        SLIM_TRY(restore_gamma_state(rs, ck, path, WEIGHTS_TENSOR, &rs->weights));
    if (c->target) SLIM_TRY(restore_gamma_state(rs, ck, path, PREV_TENSOR, &rs->gamma_prev));
    if ((s = slim_ckpt_get_meta(ck, "model_file"))) c->model = rs->strings[1] = strdup(s);
    return SLIM_OK;
}

/* ---- checkpoints ------------------------------------------------------ */

static slim_status save_checkpoint(run_state *rs) {
    slim_ckpt *ck = NULL;
    slim_status st = slim_model_to_ckpt(rs->model, SLIM_CKPT_TRAIN, 1, &ck);
    if (st == SLIM_OK) st = store_settings(rs, ck);
    if (st == SLIM_OK) st = store_gamma_state(rs, ck, WEIGHTS_TENSOR, rs->weights);
    if (st == SLIM_OK) st = store_gamma_state(rs, ck, PREV_TENSOR, rs->gamma_prev);
    if (st == SLIM_OK) st = train_live_store(&rs->live, rs->model, ck);
    if (st == SLIM_OK) {
        ck->pos = rs->pos;
        ck->pos.n_rng = 2;
        ck->pos.rng[0] = rs->data_rng;
        ck->pos.rng[1] = rs->batcher.pos.order_rng;
        st = slim_ckpt_write(ck, rs->cfg.out);
    }
    slim_ckpt_free(ck);
    if (st == SLIM_OK && rs->csv_tmp[0]) {
        if (rename(rs->csv_tmp, rs->csv_path) != 0)
            return slim_error(SLIM_ERR_IO, "%s: cannot rename to %s: %s", rs->csv_tmp, rs->csv_path,
                              strerror(errno));
        rs->csv_tmp[0] = '\0';
    }
    return st == SLIM_OK ? st : slim_error_prefix(st, "saving checkpoint");
}

/* ---- metrics ---------------------------------------------------------- */

static int gamma_totals(const run_state *rs, int *total) {
    int zero = 0;
    *total = 0;
    for (int i = 0; i < rs->model->n_layers; i++)
        if (rs->model->layers[i].kind == SLIM_LAYER_BN) {
            zero += rs->sparsity[i].gamma_zero;
            *total += rs->model->layers[i].c;
        }
    return zero;
}

/* On resume, rows for epochs after the checkpoint's (written before a crash
 * that came before the checkpoint) are dropped, so the file has one row per
 * epoch of the run that continues. */
static slim_status trim_metrics(const char *path, uint32_t epochs_done) {
    FILE *f = fopen(path, "r");
    if (!f) return SLIM_OK; /* none yet: a fresh file is started */
    slim_atomic_file af;
    slim_status st = slim_atomic_open(path, &af);
    if (st != SLIM_OK) {
        fclose(f);
        return st;
    }
    char line[65536];
    int first = 1, err = 0;
    while (!err && fgets(line, sizeof line, f)) {
        if (!first && strtoul(line, NULL, 10) > epochs_done) continue;
        first = 0;
        if (fputs(line, af.f) == EOF) err = errno ? errno : EIO;
    }
    fclose(f);
    return slim_atomic_commit(&af, err);
}

static slim_status open_metrics(run_state *rs, int append) {
    char *path = rs->csv_path;
    slim_train_metrics_path(rs->cfg.out, path, sizeof rs->csv_path);
    /* A resumed run writing to a new --out starts a new file, header first. */
    if (append && access(path, F_OK) != 0) append = 0;
    if (append) SLIM_TRY(trim_metrics(path, rs->pos.epoch));
    if (!append) {
        snprintf(rs->csv_tmp, sizeof rs->csv_tmp, "%s.tmp.%ld", path, (long)getpid());
        path = rs->csv_tmp;
    }
    rs->csv = fopen(path, append ? "a" : "w");
    if (!rs->csv) {
        rs->csv_tmp[0] = '\0';
        return slim_error(SLIM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (append) return SLIM_OK;
    fprintf(rs->csv, "epoch,step,lr,train_loss,train_acc,test_loss,test_acc,images_per_s,"
                     "gamma_zero,gamma_total,weights_zero_pct,lambda,pruned_macs,pruned_params,"
                     "budget,live_channels,removed_live,peak_rss_mib,gamma_returns,longest_return");
    for (int i = 0; i < rs->model->n_layers; i++) {
        const slim_layer *l = &rs->model->layers[i];
        if (l->kind == SLIM_LAYER_BN) fprintf(rs->csv, ",%s.gamma_zero", l->name);
        if (l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE)
            fprintf(rs->csv, ",%s.weights_zero_pct", l->name);
        if (l->kind == SLIM_LAYER_CONV) fprintf(rs->csv, ",%s.filters_zero", l->name);
    }
    fputc('\n', rs->csv);
    return fflush(rs->csv) == 0 ? SLIM_OK : slim_error(SLIM_ERR_IO, "%s: write failed", path);
}

static void write_metrics(run_state *rs, int epoch, float lr, double loss, double acc,
                          const slim_eval_result *test, double ips) {
    slim_model_sparsity(rs->model, rs->sparsity);
    int total, zero = gamma_totals(rs, &total);
    size_t w = 0, wz = 0;
    for (int i = 0; i < rs->model->n_layers; i++) {
        w += rs->sparsity[i].weights;
        wz += rs->sparsity[i].weights_zero;
    }
    fprintf(rs->csv, "%d,%" PRIu64 ",%.6g,%.6f,%.6f,%.6f,%.6f,%.1f,%d,%d,%.4f", epoch, rs->pos.step,
            lr, loss, acc, test->loss, test->accuracy, ips, zero, total,
            w ? 100.0 * (double)wz / (double)w : 0.0);
    fprintf(rs->csv, ",%.9g,%.17g,%.17g,%.17g", (double)rs->opt.config.lambda, rs->pruned.macs,
            rs->pruned.params, rs->cfg.target ? rs->budget.budget : 0.0);
    fprintf(rs->csv, ",%d,%d,%.1f,%" PRIu32 ",%" PRIu32, train_live_channels(rs->model),
            rs->live.removed, rs->peak_mib, rs->live.returns, rs->live.longest_return);
    train_live_epoch_done(&rs->live);
    for (int i = 0; i < rs->model->n_layers; i++) {
        const slim_layer *l = &rs->model->layers[i];
        const slim_layer_sparsity *r = &rs->sparsity[i];
        if (l->kind == SLIM_LAYER_BN) fprintf(rs->csv, ",%d", r->gamma_zero);
        if (l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE)
            fprintf(rs->csv, ",%.4f",
                    r->weights ? 100.0 * (double)r->weights_zero / (double)r->weights : 0.0);
        if (l->kind == SLIM_LAYER_CONV) fprintf(rs->csv, ",%d", r->filters_zero);
    }
    fputc('\n', rs->csv);
    fflush(rs->csv);
}

/* ---- progress --------------------------------------------------------- */

static double target_cost(const run_state *rs) {
    return rs->cfg.target == SLIM_COST_PARAMS ? rs->pruned.params : rs->pruned.macs;
}

/* "  lambda L  macs 12.3% (budget 10.0%)" while a budget runs, else "". */
static void budget_text(const run_state *rs, char *buf, size_t len) {
    buf[0] = '\0';
    if (!rs->cfg.target) return;
    double full =
        rs->cfg.target == SLIM_COST_PARAMS ? rs->pruned.full_params : rs->pruned.full_macs;
    if (!(full > 0)) return;
    snprintf(buf, len, "  lambda %.3g  %s %.1f%% (budget %.1f%%)", (double)rs->opt.config.lambda,
             slim_cost_name((slim_cost)rs->cfg.target), 100 * target_cost(rs) / full,
             100 * rs->budget.budget / full);
}

static void progress(const run_state *rs, int epoch, size_t done, size_t total, double loss,
                     double ips, double *last_print, int final) {
    if (rs->cfg.quiet) return;
    double t = slim_clock_s();
    if (!final && t - *last_print < (rs->tty ? 0.2 : 5.0)) return;
    *last_print = t;
    char bt[96];
    budget_text(rs, bt, sizeof bt);
    double eta = ips > 0 ? (double)(total - done) * (double)rs->cfg.batch / ips : 0;
    if (rs->tty) {
        int width = 30, fill = total ? (int)((double)width * (double)done / (double)total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\repoch %d/%d [%s] %zu/%zu  loss %.4f  %.0f img/s  ETA %.0fs%s   ", epoch,
                rs->cfg.epochs, bar, done, total, loss, ips, eta, bt);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "epoch %d/%d  batch %zu/%zu  loss %.4f  %.0f img/s  ETA %.0fs%s\n", epoch,
                rs->cfg.epochs, done, total, loss, ips, eta, bt);
    }
    fflush(stderr);
}

/* ---- cost weights and the budget -------------------------------------- */

/* The controller steers by the cost projected LOOKAHEAD of the run ahead
 * (slim_pruned_cost.projected_*): a gamma is expected to reach zero when
 * its |gamma| is within what the window takes off it: the prox's shrink
 * lr * lambda' * c_j per step, times 1 / (1 - mu) (the shrink also enters
 * the momentum buffer), less the push its gradient gave it per unit of
 * learning rate since the last update (measured: what the change of
 * |gamma| leaves unexplained by the prox). Gammas shrink together, and
 * the gradient is what tells the channels that stay from those that go. */
#define LOOKAHEAD 0.2

typedef struct projection {
    run_state *rs;
    double lr_window; /* the learning rates of the window, summed */
    slim_status st;
} projection;

static double momentum_gain(const slim_train_config *c) { return 1.0 / (1.0 - c->momentum); }

/* slim_budget_project: the cost at the window's end if lambda were `lambda`. */
static double project(void *ctx, double lambda) {
    projection *pj = ctx;
    run_state *rs = pj->rs;
    const slim_model *m = rs->model;
    double k = momentum_gain(&rs->cfg);
    for (size_t e = 0; e < m->param_floats; e++)
        rs->reach[e] = -1.0f;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        for (size_t j = 0; j < p->numel; j++) {
            size_t e = p->offset + j;
            double w = rs->weights ? rs->weights[e] : 1.0;
            rs->reach[e] = (float)(pj->lr_window * (lambda * w * k - rs->resist[e]));
        }
    }
    slim_pruned_cost pc;
    slim_status st = slim_pruned_cost_measure(m, rs->cfg.cost, rs->reach, NULL, &pc);
    if (st != SLIM_OK) {
        pj->st = st;
        return 0;
    }
    return rs->cfg.target == SLIM_COST_PARAMS ? pc.projected_params : pc.projected_macs;
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
static void measure_resistance(run_state *rs, uint64_t step, uint64_t total) {
    const slim_train_config *c = &rs->cfg;
    const slim_model *m = rs->model;
    uint64_t from = step >= rs->every ? step - rs->every : 0;
    double s = lr_between(c, from, step, total), k = momentum_gain(c);
    double lambda = rs->opt.config.lambda;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        for (size_t j = 0; j < p->numel; j++) {
            size_t e = p->offset + j;
            double now = fabs((double)p->data[j]), w = rs->weights ? rs->weights[e] : 1.0;
            rs->resist[e] = s > 0 ? (float)((now - rs->gamma_prev[e]) / s + lambda * w * k) : 0.0f;
            rs->gamma_prev[e] = (float)now;
        }
    }
}

/* Measures the pruned cost (and the weights) at step `step` of `total`,
 * then moves lambda. */
static slim_status budget_update(run_state *rs, uint64_t step, uint64_t total) {
    const slim_train_config *c = &rs->cfg;
    if (c->target) measure_resistance(rs, step, total);
    SLIM_TRY(slim_pruned_cost_measure(rs->model, c->cost, NULL, rs->weights, &rs->pruned));
    if (rs->weights) SLIM_TRY(slim_sgd_set_weights(&rs->opt, rs->weights));
    if (!c->target) return SLIM_OK;
    projection pj = {.rs = rs, .st = SLIM_OK};
    pj.lr_window = lr_between(c, step, step + (uint64_t)ceil(LOOKAHEAD * (double)total), total);
    double lambda = slim_budget_update(&rs->budget, target_cost(rs), (double)step / (double)total,
                                       project, &pj);
    SLIM_TRY(pj.st);
    return slim_sgd_set_lambda(&rs->opt, lambda);
}

/* The controller's start without --lambda (slim_budget_start): from the
 * mean |gamma| of the penalised gammas and the run's summed learning rate. */
static double start_lambda(const run_state *rs, double fraction) {
    const slim_train_config *c = &rs->cfg;
    const slim_model *m = rs->model;
    double abs_sum = 0, lr_sum = 0;
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (!slim_penalty_applies(m, p, c->penalty)) continue;
        for (size_t j = 0; j < p->numel; j++)
            abs_sum += fabs((double)p->data[j]);
        n += p->numel;
    }
    uint64_t total = (uint64_t)c->epochs * slim_batcher_num_batches(&rs->batcher);
    for (uint64_t t = 0; t < total; t++)
        lr_sum += slim_schedule_lr(c->schedule, c->lr, t, total);
    return slim_budget_start(n ? abs_sum / (double)n : 0, lr_sum, fraction);
}

static slim_status budget_setup(run_state *rs, int resumed) {
    const slim_train_config *c = &rs->cfg;
    const char *what = slim_cost_name((slim_cost)c->target);
    if (c->target && c->penalty != SLIM_PENALTY_GAMMA_L1)
        return slim_error(SLIM_ERR_ARG, "--target-%s needs --penalty gamma-l1 (got %s)", what,
                          slim_penalty_name(c->penalty));
    if (c->cost != SLIM_COST_UNIFORM && !slim_penalty_is_gamma(c->penalty))
        return slim_error(SLIM_ERR_ARG, "--cost %s needs a gamma penalty (got %s)",
                          slim_cost_name(c->cost), slim_penalty_name(c->penalty));
    if (c->cost == SLIM_COST_UNIFORM && !c->target) return SLIM_OK;
    if (c->cost != SLIM_COST_UNIFORM && !rs->weights &&
        !(rs->weights = slim_calloc(rs->model->param_floats, sizeof(float))))
        return SLIM_ERR_NOMEM;
    /* A resumed run keeps the weights of its last update. */
    SLIM_TRY(slim_pruned_cost_measure(rs->model, c->cost, NULL, resumed ? NULL : rs->weights,
                                      &rs->pruned));
    if (rs->weights) SLIM_TRY(slim_sgd_set_weights(&rs->opt, rs->weights));
    size_t per_epoch = slim_batcher_num_batches(&rs->batcher);
    rs->every = (per_epoch + SLIM_TRAIN_UPDATES - 1) / SLIM_TRAIN_UPDATES;
    if (!c->target) return SLIM_OK;
    size_t nf = rs->model->param_floats;
    rs->reach = slim_calloc(nf, sizeof(float));
    rs->resist = slim_calloc(nf, sizeof(float));
    if (!rs->gamma_prev) rs->gamma_prev = slim_calloc(nf, sizeof(float));
    if (!rs->reach || !rs->resist || !rs->gamma_prev) return SLIM_ERR_NOMEM;
    if (!resumed)
        for (int i = 0; i < rs->model->n_params; i++) {
            const slim_param *p = &rs->model->params[i];
            if (p->role == SLIM_PARAM_GAMMA)
                for (size_t j = 0; j < p->numel; j++)
                    rs->gamma_prev[p->offset + j] = fabsf(p->data[j]);
        }
    if (!resumed) {
        double full = c->target == SLIM_COST_PARAMS ? rs->pruned.full_params : rs->pruned.full_macs;
        double budget = c->target_fraction ? c->target_value * full : c->target_value;
        if (!(c->target_value > 0) || !isfinite(c->target_value) ||
            (c->target_fraction && c->target_value > 1))
            return slim_error(SLIM_ERR_ARG, "--target-%s %g%s: want a budget in (0, %s]", what,
                              c->target_fraction ? 100 * c->target_value : c->target_value,
                              c->target_fraction ? "%" : "",
                              c->target_fraction ? "100%" : "the model's");
        if (budget > full)
            return slim_error(SLIM_ERR_ARG,
                              "--target-%s %.4g is above the unpruned model's %.4g %s", what,
                              budget, full, what);
        double lambda = c->lambda;
        if (!(lambda > 0)) lambda = start_lambda(rs, budget / full);
        slim_budget_init(&rs->budget, budget, lambda);
    }
    return slim_sgd_set_lambda(&rs->opt, rs->budget.lambda);
}

/* ---- the loop --------------------------------------------------------- */

static slim_status setup(run_state *rs, slim_train_config *cfg_in) {
    slim_train_config *c = &rs->cfg;
    *c = *cfg_in;
    slim_ckpt *ck = NULL;
    if (c->resume && c->init)
        return slim_error(SLIM_ERR_ARG, "--resume and --init cannot be used together");
    if (!c->out) return slim_error(SLIM_ERR_ARG, "an output checkpoint (--out) is required");
    slim_data_options *o = &rs->dopts;
    *o = (slim_data_options){.resize = c->resize,
                             .crop_scale = c->crop_scale,
                             .val_split = c->val_split,
                             .split_seed = c->split_seed_given ? c->split_seed : c->seed,
                             .val_dir = c->val_dir,
                             .skip_bad = c->skip_bad,
                             .streaming = c->streaming,
                             .cache_mib = c->cache_mib,
                             .workers = c->workers};
    if (c->resume) {
        SLIM_TRY(slim_model_load_ckpt(c->resume, 1, &rs->model, &ck));
        slim_status st = restore_settings(rs, ck, c->resume);
        /* The recorded data settings replace the caller's. */
        o->resize = SLIM_RESIZE_CROP;
        o->crop_scale = 0;
        o->val_split = 0;
        o->split_seed = c->seed;
        o->val_dir = NULL;
        o->skip_bad = 0;
        if (st == SLIM_OK)
            st = slim_train_data_options(ck, c->resume, rs->model->layers[0].c, 1, o);
        if (st == SLIM_OK) st = train_live_restore(&rs->live, rs->model, ck, c->resume);
        if (st == SLIM_OK && o->val_dir && !(o->val_dir = rs->strings[2] = strdup(o->val_dir)))
            st = SLIM_ERR_NOMEM;
        rs->pos = ck->pos;
        if (st == SLIM_OK && ck->pos.n_rng < 2)
            st = slim_error(SLIM_ERR_FORMAT, "%s: no training position saved", c->resume);
        slim_ckpt_free(ck);
        SLIM_TRY(st);
    } else if (c->init) {
        /* The weights expect the normalisation they were trained with. */
        SLIM_TRY(slim_model_load_ckpt(c->init, 0, &rs->model, &ck));
        slim_data_options recorded = {0};
        slim_status st = slim_train_data_options(ck, c->init, rs->model->layers[0].c, 0, &recorded);
        slim_ckpt_free(ck);
        SLIM_TRY(st);
        o->have_norm = 1;
        memcpy(o->mean, recorded.mean, sizeof o->mean);
        memcpy(o->std, recorded.std, sizeof o->std);
    } else {
        if (!c->model) return slim_error(SLIM_ERR_ARG, "a model file (--model) is required");
        SLIM_TRY(slim_model_load_file(c->model, &rs->model));
        slim_rng init;
        slim_rng_seed(&init, c->seed, STREAM_INIT);
        slim_model_init_params(rs->model, &init);
    }
    if (c->epochs <= 0) return slim_error(SLIM_ERR_ARG, "--epochs must be > 0");
    if (c->batch <= 0) return slim_error(SLIM_ERR_ARG, "--batch must be > 0, got %d", c->batch);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return slim_error(SLIM_ERR_ARG, "--lr must be a finite number > 0");
    if (!(c->lambda >= 0) || !isfinite(c->lambda))
        return slim_error(SLIM_ERR_ARG, "--lambda must be a finite number >= 0, got %g", c->lambda);
    if (c->threads > 0) slim_set_threads(c->threads);

    const slim_layer *in = &rs->model->layers[0];
    o->c = in->c;
    o->h = in->h;
    o->w = in->w;
    slim_data_options opts = *o;
    opts.limit = c->limit;
    SLIM_TRY(slim_data_load(c->data, 1, &opts, &rs->train));
    /* The test split is normalised with the train split's statistics. */
    opts.limit = c->test_limit;
    opts.have_norm = 1;
    memcpy(opts.mean, rs->train->mean, sizeof opts.mean);
    memcpy(opts.std, rs->train->std, sizeof opts.std);
    SLIM_TRY(slim_data_load(c->data, 0, &opts, &rs->test));
    if (rs->train->n == 0) return slim_error(SLIM_ERR_ARG, "the training set is empty");
    if (rs->train->n_classes > rs->model->n_classes)
        return slim_error(SLIM_ERR_SHAPE, "the data has %d classes but the model outputs %d",
                          rs->train->n_classes, rs->model->n_classes);

    /* Whatever the checkpoint will hold (settings, class names) must be
     * storable: find out now, not after an epoch of training. */
    slim_ckpt *probe = slim_ckpt_new(SLIM_CKPT_TRAIN);
    if (!probe) return SLIM_ERR_NOMEM;
    slim_status pst = store_settings(rs, probe);
    slim_ckpt_free(probe);
    if (pst != SLIM_OK) return slim_error_prefix(pst, "%s", c->data ? c->data : "fashion-mnist");

    slim_sgd_config oc = {.momentum = c->momentum,
                          .weight_decay = c->weight_decay,
                          .bn_weight_decay = c->weight_decay,
                          .penalty = c->penalty,
                          .lambda = c->lambda};
    SLIM_TRY(slim_sgd_init(&rs->opt, rs->model, &oc));
    SLIM_TRY(slim_batcher_init(&rs->batcher, rs->train, (size_t)c->batch, 1));
    SLIM_TRY(budget_setup(rs, c->resume != NULL));
    if (!c->resume) SLIM_TRY(train_live_setup(&rs->live, rs->model, c));
    int flip = c->flip < 0 ? rs->train->c == 3 : c->flip;
    /* Image folders get random-resized crop, IDX and CIFAR-10 a padded
     * crop; a resumed run keeps the rule it recorded. */
    if (!c->augment)
        SLIM_TRY(slim_augment_init(&rs->aug, rs->train, 0, 0));
    else if (rs->aug_rule)
        SLIM_TRY(train_augment_from_rule(rs->aug_rule, c->resume, rs->train, flip, &rs->aug));
    else if (strcmp(rs->train->kind, "imagefolder") == 0)
        SLIM_TRY(slim_augment_init_rrc(&rs->aug, rs->train, 0, flip));
    else
        SLIM_TRY(slim_augment_init(&rs->aug, rs->train, pad_for(in->h), flip));
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    rs->x = slim_calloc((size_t)c->batch * img, sizeof(float));
    rs->y = slim_calloc((size_t)c->batch, sizeof(int32_t));
    rs->sparsity = slim_calloc((size_t)rs->model->n_layers, sizeof *rs->sparsity);
    if (!rs->x || !rs->y || !rs->sparsity) return SLIM_ERR_NOMEM;
    if (c->resume) {
        rs->data_rng = rs->pos.rng[0];
    } else {
        slim_rng_seed(&rs->data_rng, c->seed, STREAM_DATA);
        memset(&rs->pos, 0, sizeof rs->pos);
    }
    rs->tty = c->progress < 0 ? isatty(STDERR_FILENO) : c->progress;
    return open_metrics(rs, c->resume != NULL);
}

static void teardown(run_state *rs) {
    if (rs->csv) fclose(rs->csv);
    if (rs->csv_tmp[0]) remove(rs->csv_tmp); /* no checkpoint was saved */
    free(rs->x);
    free(rs->y);
    free(rs->sparsity);
    free(rs->weights);
    free(rs->gamma_prev);
    free(rs->reach);
    free(rs->resist);
    slim_batcher_free(&rs->batcher);
    slim_augment_free(&rs->aug);
    slim_sgd_free(&rs->opt);
    train_live_free(&rs->live);
    slim_dataset_free(rs->train);
    slim_dataset_free(rs->test);
    slim_model_free(rs->model);
    for (int i = 0; i < 4; i++)
        free(rs->strings[i]);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int argmax_hits(const slim_tensor *logits, const int32_t *y, int n) {
    int k = logits->shape[1], hits = 0;
    for (int i = 0; i < n; i++) {
        const float *row = logits->data + (size_t)i * (size_t)k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        hits += best == y[i];
    }
    return hits;
}

static int stop_requested(const slim_train_config *c) {
    return c->stop && *c->stop == SLIM_TRAIN_STOP;
}

static slim_status run_epochs(run_state *rs, slim_train_summary *sum) {
    const slim_train_config *c = &rs->cfg;
    const slim_layer *in = &rs->model->layers[0]; /* again after a live removal */
    size_t per_epoch = slim_batcher_num_batches(&rs->batcher);
    uint64_t total = (uint64_t)c->epochs * per_epoch;
    slim_tape tape;
    slim_tape_init(&tape, c->backend);
    slim_status st = SLIM_OK;
    int resuming_mid_epoch = rs->pos.step > (uint64_t)rs->pos.epoch * per_epoch;
    for (int epoch = (int)rs->pos.epoch + 1; epoch <= c->epochs && st == SLIM_OK; epoch++) {
        if (resuming_mid_epoch) {
            slim_batcher_pos bp = {.epoch = (uint64_t)epoch,
                                   .index = (rs->pos.step - (uint64_t)rs->pos.epoch * per_epoch) *
                                            (uint64_t)c->batch,
                                   .order_rng = rs->pos.rng[1]};
            st = slim_batcher_seek(&rs->batcher, &bp);
            resuming_mid_epoch = 0;
            if (st != SLIM_OK) break;
        } else {
            slim_batcher_begin_epoch(&rs->batcher, &rs->data_rng);
        }
        double loss_sum = 0, t0 = slim_clock_s(), last_print = 0, timed = 0;
        size_t seen = 0, hits = 0, n,
               done = (size_t)(rs->pos.step - (uint64_t)(epoch - 1) * per_epoch);
        float lr = c->lr;
        train_rss_reset_peak();
        for (;;) {
            /* A streamed picture that cannot be decoded any more (removed
             * since loading) ends the run with its error. */
            st = slim_batcher_next_checked(&rs->batcher, rs->x, rs->y, &n);
            if (st != SLIM_OK || n == 0) break;
            double ts = slim_clock_s();
            if (c->augment)
                st =
                    slim_augment_batch(&rs->aug, rs->x, (int)n, in->c, in->h, in->w, &rs->data_rng);
            if (st != SLIM_OK) break;
            slim_tape_reset(&tape);
            slim_model_zero_grad(rs->model);
            slim_tensor *x =
                slim_tape_wrap(&tape, rs->x, NULL, 4, (int[]){(int)n, in->c, in->h, in->w});
            slim_tensor *logits = NULL, *loss = NULL;
            if (!x) st = SLIM_ERR_NOMEM;
            if (st == SLIM_OK) st = slim_model_forward(rs->model, &tape, x, 1, &logits);
            if (st == SLIM_OK) st = slim_op_softmax_xent(&tape, logits, rs->y, &loss);
            if (st != SLIM_OK) break;
            if (!isfinite(loss->data[0])) {
                st = slim_error(SLIM_ERR_NUMERIC,
                                "training diverged at step %" PRIu64 " (epoch %d): the loss is %g; "
                                "%s keeps the last good checkpoint (lower --lr?)",
                                rs->pos.step + 1, epoch, loss->data[0], c->out);
                break;
            }
            st = slim_tape_backward(&tape, loss);
            lr = slim_schedule_lr(c->schedule, c->lr, rs->pos.step, total);
            if (st == SLIM_OK) st = slim_sgd_step(&rs->opt, rs->model, lr);
            if (st != SLIM_OK) break;
            rs->pos.step++;
            if (rs->every && rs->pos.step % rs->every == 0)
                st = budget_update(rs, rs->pos.step, total);
            if (st != SLIM_OK) break;
            done++;
            loss_sum += loss->data[0] * (double)n;
            hits += (size_t)argmax_hits(logits, rs->y, (int)n);
            seen += n;
            /* Last: a removal frees the tape, and with it loss and logits. */
            st = train_live_after_step(&rs->live, &rs->model, &tape, rs->pos.step, epoch);
            in = &rs->model->layers[0];
            if (st != SLIM_OK) break;
            timed += slim_clock_s() - ts;
            progress(rs, epoch, done, per_epoch, loss_sum / (double)seen,
                     (double)seen / (timed > 0 ? timed : 1), &last_print, 0);
            if (stop_requested(c)) break;
        }
        if (st != SLIM_OK) break;
        rs->peak_mib = train_rss_peak_mib();
        double ips = (double)seen / (timed > 0 ? timed : 1);
        if (stop_requested(c)) {
            if (!c->quiet) fputc('\n', stderr);
            st = save_checkpoint(rs);
            if (st == SLIM_OK) {
                slim_log(SLIM_LOG_WARN,
                         "interrupted at step %" PRIu64 "; saved %s (continue with --resume %s)",
                         rs->pos.step, c->out, c->out);
                sum->interrupted = 1;
            }
            break;
        }
        progress(rs, epoch, done, per_epoch, seen ? loss_sum / (double)seen : 0, ips, &last_print,
                 1);
        /* The BN running statistics can overflow while the loss and the
         * weights stay finite: check both before evaluating. */
        const int weights_ok = all_finite(rs->model->param_block, rs->model->param_floats);
        if (!weights_ok || !all_finite(rs->model->buffer_block, rs->model->buffer_floats)) {
            st = slim_error(SLIM_ERR_NUMERIC,
                            "training diverged in epoch %d: after step %" PRIu64
                            " the %s hold NaN or Inf; %s keeps the last good checkpoint "
                            "(lower --lr?)",
                            epoch, rs->pos.step,
                            weights_ok ? "batch-norm running statistics" : "weights", c->out);
            break;
        }
        rs->pos.epoch = (uint32_t)epoch;
        slim_eval_result test;
        st = slim_evaluate(rs->model, rs->test, 256, c->backend, NULL, 0, &test);
        if (st == SLIM_OK)
            st = slim_pruned_cost_measure(rs->model, c->cost, NULL, NULL, &rs->pruned);
        if (st != SLIM_OK) break;
        write_metrics(rs, epoch, lr, seen ? loss_sum / (double)seen : 0,
                      seen ? (double)hits / (double)seen : 0, &test, ips);
        st = save_checkpoint(rs);
        if (st != SLIM_OK) break;
        int gtotal, gzero = gamma_totals(rs, &gtotal);
        char bt[96], lt[64] = "";
        budget_text(rs, bt, sizeof bt);
        if (rs->live.remove)
            snprintf(lt, sizeof lt, ", channels %d (%d removed live)", gtotal, rs->live.removed);
        if (!c->quiet)
            fprintf(stderr,
                    "epoch %d/%d: train loss %.4f, train acc %.2f%%, test acc %.2f%%, "
                    "gamma zero %d/%d%s, %.0f img/s, %.1fs%s\n",
                    epoch, c->epochs, seen ? loss_sum / (double)seen : 0,
                    seen ? 100.0 * (double)hits / (double)seen : 0, 100.0 * test.accuracy, gzero,
                    gtotal, lt, ips, slim_clock_s() - t0, bt);
        sum->epochs_done = epoch;
        sum->train_loss = seen ? loss_sum / (double)seen : 0;
        sum->test_accuracy = test.accuracy;
        sum->images_per_s = ips;
        sum->gamma_zero = gzero;
        sum->gamma_total = gtotal;
        sum->pruned = rs->pruned;
        sum->live_prune_after = rs->live.remove ? rs->live.after : 0;
        sum->live_removed = rs->live.removed;
        sum->live_channels = train_live_channels(rs->model);
        sum->live_seconds = rs->live.seconds;
    }
    sum->lambda = rs->opt.config.lambda;
    sum->budget = c->target ? rs->budget.budget : 0;
    sum->steps = rs->pos.step;
    slim_tape_free(&tape);
    return st;
}

slim_status slim_train(const slim_train_config *cfg, slim_train_summary *summary) {
    run_state rs;
    memset(&rs, 0, sizeof rs);
    memset(summary, 0, sizeof *summary);
    slim_train_config copy = *cfg;
    slim_status st = setup(&rs, &copy);
    if (st == SLIM_OK) {
        if (cfg->stop) *cfg->stop = SLIM_TRAIN_RUNNING;
        st = run_epochs(&rs, summary);
        if (cfg->stop) *cfg->stop = SLIM_TRAIN_IDLE;
    }
    teardown(&rs);
    return st;
}
