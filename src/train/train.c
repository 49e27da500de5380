/* The training loop: data, model, optimizer, progress, metrics, checkpoints
 * and exact resume. */
#include "slim/autograd.h"
#include "slim/model_io.h"
#include "slim/train.h"
#include "dist/dist.h"
#include "train/budget_hook.h"
#include "train/internal.h"
#include "train/replicas.h"
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
    cfg->bn_sync = 1;
    cfg->budget_trim = 1;
#ifndef NDEBUG
    cfg->dist_check = 1; /* debug builds compare the ranks after every step */
#endif
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
    train_budget budget; /* cost weights and the budget (cfg.cost, cfg.target) */
    train_replicas rep;  /* the ranks of a data-parallel run (one alone) */
    train_live live;     /* removing dead channels while training */
    double peak_mib;     /* peak RSS of the last epoch's training steps */
} run_state;

static slim_status store_settings(const run_state *rs, slim_ckpt *ck) {
    const slim_train_config *c = &rs->cfg;
    SLIM_TRY(slim_ckpt_set_meta(ck, "data", c->data ? c->data : "fashion-mnist"));
    if (c->model) SLIM_TRY(slim_ckpt_set_meta(ck, "model_file", c->model));
    SLIM_TRY(train_set_meta_num(ck, "epochs", "%.0f", c->epochs));
    SLIM_TRY(train_set_meta_num(ck, "batch", "%.0f", c->batch));
    SLIM_TRY(train_set_meta_num(ck, "lr", "%.9g", c->lr));
    SLIM_TRY(slim_ckpt_set_meta(ck, "schedule", slim_schedule_name(c->schedule)));
    SLIM_TRY(train_set_meta_num(ck, "momentum", "%.9g", c->momentum));
    SLIM_TRY(train_set_meta_num(ck, "weight_decay", "%.9g", c->weight_decay));
    SLIM_TRY(train_set_meta_num(ck, "limit", "%.0f", (double)c->limit));
    SLIM_TRY(train_set_meta_num(ck, "test_limit", "%.0f", (double)c->test_limit));
    SLIM_TRY(train_set_meta_num(ck, "augment", "%.0f", c->augment));
    SLIM_TRY(train_set_meta_num(ck, "flip", "%.0f", c->flip));
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    SLIM_TRY(slim_ckpt_set_meta(ck, "seed", seed));
    SLIM_TRY(slim_ckpt_set_meta(ck, "backend", c->backend == SLIM_BACKEND_REF ? "ref" : "fast"));
    SLIM_TRY(slim_ckpt_set_meta(ck, "penalty", slim_penalty_name(c->penalty)));
    SLIM_TRY(train_set_meta_num(ck, "lambda", "%.9g", c->lambda));
    SLIM_TRY(train_budget_store(&rs->budget, c, rs->model, ck));
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
        SLIM_TRY(train_meta_num(ck, path, "epochs", &v));
        c->epochs = (int)v;
    }
    SLIM_TRY(train_meta_num(ck, path, "batch", &v));
    c->batch = (int)v;
    SLIM_TRY(train_meta_num(ck, path, "lr", &v));
    c->lr = (float)v;
    if ((s = slim_ckpt_get_meta(ck, "schedule"))) SLIM_TRY(slim_schedule_parse(s, &c->schedule));
    SLIM_TRY(train_meta_num(ck, path, "momentum", &v));
    c->momentum = (float)v;
    SLIM_TRY(train_meta_num(ck, path, "weight_decay", &v));
    c->weight_decay = (float)v;
    SLIM_TRY(train_meta_num(ck, path, "limit", &v));
    c->limit = (size_t)v;
    SLIM_TRY(train_meta_num(ck, path, "test_limit", &v));
    c->test_limit = (size_t)v;
    SLIM_TRY(train_meta_num(ck, path, "augment", &v));
    c->augment = (int)v;
    /* Recorded since random-resized crop exists; before, every run with
     * augment used a padded crop. */
    s = slim_ckpt_get_meta(ck, "augment.rule");
    rs->aug_rule = rs->strings[3] = strdup(s ? s : legacy_rule(rs->model->layers[0].h));
    if (!rs->aug_rule) return SLIM_ERR_NOMEM;
    SLIM_TRY(train_meta_num(ck, path, "flip", &v));
    c->flip = (int)v;
    if ((s = slim_ckpt_get_meta(ck, "seed"))) c->seed = strtoull(s, NULL, 10);
    if ((s = slim_ckpt_get_meta(ck, "backend")))
        c->backend = strcmp(s, "ref") == 0 ? SLIM_BACKEND_REF : SLIM_BACKEND_FAST;
    if ((s = slim_ckpt_get_meta(ck, "penalty"))) SLIM_TRY(slim_penalty_parse(s, &c->penalty));
    SLIM_TRY(train_meta_num(ck, path, "lambda", &v));
    c->lambda = (float)v;
    SLIM_TRY(train_budget_restore(&rs->budget, c, rs->model, ck, path));
    if ((s = slim_ckpt_get_meta(ck, "model_file"))) c->model = rs->strings[1] = strdup(s);
    return SLIM_OK;
}

/* ---- checkpoints ------------------------------------------------------ */

static slim_status write_checkpoint(run_state *rs) {
    slim_ckpt *ck = NULL;
    slim_status st = slim_model_to_ckpt(rs->model, SLIM_CKPT_TRAIN, 1, &ck);
    if (st == SLIM_OK) st = store_settings(rs, ck);
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

/* Rank 0 writes; every rank learns whether it could. */
static slim_status save_checkpoint(run_state *rs) {
    return dist_agree(rs->rep.rank == 0 ? write_checkpoint(rs) : SLIM_OK);
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
                     "pruned_latency_us,budget,live_channels,removed_live,peak_rss_mib,gamma_"
                     "returns,longest_return");
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
    if (!rs->csv) return; /* not rank 0 */
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
    train_budget_csv(&rs->budget, &rs->cfg, (double)rs->opt.config.lambda, rs->csv);
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

static void progress(const run_state *rs, int epoch, size_t done, size_t total, double loss,
                     double ips, double *last_print, int final) {
    if (rs->cfg.quiet) return;
    double t = slim_clock_s();
    if (!final && t - *last_print < (rs->tty ? 0.2 : 5.0)) return;
    *last_print = t;
    char bt[96];
    train_budget_text(&rs->budget, &rs->cfg, (double)rs->opt.config.lambda, bt, sizeof bt);
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
    SLIM_TRY(train_budget_setup(&rs->budget, c, rs->model, &rs->opt,
                                slim_batcher_num_batches(&rs->batcher), c->resume != NULL));
    SLIM_TRY(train_replicas_init(&rs->rep, rs->model, rs->train->n, (size_t)c->batch, c->bn_sync,
                                 c->dist_check));
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
    if (rs->rep.rank != 0) { /* rank 0 speaks and writes */
        c->quiet = 1;
        return SLIM_OK;
    }
    return open_metrics(rs, c->resume != NULL);
}

static void teardown(run_state *rs) {
    if (rs->csv) fclose(rs->csv);
    if (rs->csv_tmp[0]) remove(rs->csv_tmp); /* no checkpoint was saved */
    free(rs->x);
    free(rs->y);
    free(rs->sparsity);
    train_budget_free(&rs->budget);
    train_replicas_free(&rs->rep);
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

/* Whether to stop after this step. With more than one rank, only a stop
 * every rank agreed on: a signal can reach one rank after the step's
 * agreement, and that rank alone must not stop. */
static int stop_now(const run_state *rs) {
    if (rs->rep.size > 1) return rs->rep.stop_agreed;
    return rs->cfg.stop && *rs->cfg.stop == SLIM_TRAIN_STOP;
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
            double ts = slim_clock_s();
            if (st == SLIM_OK && n > 0 && c->augment)
                st =
                    slim_augment_batch(&rs->aug, rs->x, (int)n, in->c, in->h, in->w, &rs->data_rng);
            /* A rank that cannot read its batch stops them all. */
            st = dist_agree(st);
            if (st != SLIM_OK || n == 0) break;
            slim_tape_reset(&tape);
            slim_model_zero_grad(rs->model);
            double loss;
            size_t step_hits;
            st = train_replicas_grads(&rs->rep, rs->model, &tape, rs->x, rs->y, n, in, &loss,
                                      &step_hits, c->stop);
            if (st != SLIM_OK) break;
            if (!isfinite(loss)) { /* the same on every rank */
                st = dist_agree(slim_error(SLIM_ERR_NUMERIC,
                                           "training diverged at step %" PRIu64
                                           " (epoch %d): the loss is %g; "
                                           "%s keeps the last good checkpoint (lower --lr?)",
                                           rs->pos.step + 1, epoch, loss, c->out));
                break;
            }
            lr = slim_schedule_lr(c->schedule, c->lr, rs->pos.step, total);
            rs->opt.hold_zeros = train_budget_holds(&rs->budget, c);
            if (st == SLIM_OK) st = slim_sgd_step(&rs->opt, rs->model, lr);
            if (st != SLIM_OK) break;
            rs->pos.step++;
            st = train_budget_step(&rs->budget, c, rs->model, &rs->opt, rs->pos.step, total);
            if (st != SLIM_OK) break;
            done++;
            loss_sum += loss * (double)n;
            hits += step_hits;
            seen += n;
            /* Last: a removal frees the tape, and with it loss and logits. */
            st = train_live_after_step(&rs->live, &rs->model, &tape, rs->pos.step, epoch);
            in = &rs->model->layers[0];
            if (st == SLIM_OK && rs->live.remap)
                st = train_budget_remap(&rs->budget, rs->model, rs->live.remap, &rs->opt);
            train_live_remap_done(&rs->live);
            if (st != SLIM_OK) break;
            timed += slim_clock_s() - ts;
            progress(rs, epoch, done, per_epoch, loss_sum / (double)seen,
                     (double)seen / (timed > 0 ? timed : 1), &last_print, 0);
            if (stop_now(rs)) break;
        }
        if (st != SLIM_OK) break;
        rs->peak_mib = train_rss_peak_mib();
        double ips = (double)seen / (timed > 0 ? timed : 1);
        if (stop_now(rs)) {
            if (!c->quiet) fputc('\n', stderr);
            st = save_checkpoint(rs);
            if (st == SLIM_OK) {
                if (rs->rep.rank == 0) /* one line for the job, not one per rank */
                    slim_log(SLIM_LOG_WARN,
                             "interrupted at step %" PRIu64
                             "; saved %s (continue with --resume %s)",
                             rs->pos.step, c->out, c->out);
                sum->interrupted = 1;
            }
            break;
        }
        progress(rs, epoch, done, per_epoch, seen ? loss_sum / (double)seen : 0, ips, &last_print,
                 1);
        if (rs->pos.step == total) { /* the run's end: meet the budget (a no-op within it) */
            budget_trim t;
            st = train_budget_trim(&rs->budget, c, rs->model, &t);
            if (st != SLIM_OK) break;
            sum->trim_channels = t.channels;
            sum->trim_gammas = t.gammas;
            sum->trim_unreachable = t.unreachable;
            sum->trim_mass = t.mass;
            sum->trim_score = t.score;
            sum->trim_before = t.before;
        }
        /* The BN running statistics can overflow while the loss and the
         * weights stay finite: check both before evaluating. */
        const int weights_ok = all_finite(rs->model->param_block, rs->model->param_floats);
        st = train_replicas_check(&rs->rep, rs->model);
        if (st != SLIM_OK) break;
        if (!weights_ok || !all_finite(rs->model->buffer_block, rs->model->buffer_floats)) {
            st = slim_error(SLIM_ERR_NUMERIC,
                            "training diverged in epoch %d: after step %" PRIu64
                            " the %s hold NaN or Inf; %s keeps the last good checkpoint "
                            "(lower --lr?)",
                            epoch, rs->pos.step,
                            weights_ok ? "batch-norm running statistics" : "weights", c->out);
        }
        st = dist_agree(st); /* per-rank statistics (--bn-sync off) may differ */
        if (st != SLIM_OK) break;
        rs->pos.epoch = (uint32_t)epoch;
        slim_eval_result test;
        st = slim_evaluate(rs->model, rs->test, 256, c->backend, NULL, 0, &test);
        if (st == SLIM_OK) st = train_budget_measure(&rs->budget, c, rs->model);
        if (st != SLIM_OK) break;
        write_metrics(rs, epoch, lr, seen ? loss_sum / (double)seen : 0,
                      seen ? (double)hits / (double)seen : 0, &test, ips);
        st = save_checkpoint(rs);
        if (st != SLIM_OK) break;
        int gtotal, gzero = gamma_totals(rs, &gtotal);
        char bt[192], lt[64] = "";
        train_budget_text(&rs->budget, &rs->cfg, (double)rs->opt.config.lambda, bt, sizeof bt);
        train_replicas_text(&rs->rep, timed, bt + strlen(bt), sizeof bt - strlen(bt));
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
        sum->pruned = rs->budget.pruned;
        sum->live_prune_after = rs->live.remove ? rs->live.after : 0;
        sum->live_removed = rs->live.removed;
        sum->live_channels = train_live_channels(rs->model);
        sum->live_seconds = rs->live.seconds;
    }
    sum->lambda = rs->opt.config.lambda;
    sum->guard_cuts = rs->budget.guard_cuts;
    sum->guard_channels = rs->budget.guard_channels;
    sum->budget = c->target ? rs->budget.budget.budget : 0;
    sum->target = c->target;
    sum->steps = rs->pos.step;
    slim_tape_free(&tape);
    return st;
}

slim_status slim_train(const slim_train_config *cfg, slim_train_summary *summary) {
    run_state rs;
    memset(&rs, 0, sizeof rs);
    memset(summary, 0, sizeof *summary);
    slim_train_config copy = *cfg;
    /* Every rank learns whether any could not start. */
    slim_status st = dist_agree(setup(&rs, &copy));
    if (st == SLIM_OK) {
        if (cfg->stop) *cfg->stop = SLIM_TRAIN_RUNNING;
        st = run_epochs(&rs, summary);
        if (cfg->stop) *cfg->stop = SLIM_TRAIN_IDLE;
    }
    teardown(&rs);
    return st;
}
