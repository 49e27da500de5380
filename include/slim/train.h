/* slim train: the training loop and evaluation, shared by the command line
 * and the examples. It sits above nn, optim, data and io. */
#ifndef SLIM_TRAIN_H
#define SLIM_TRAIN_H

#include <signal.h>

#include "slim/ckpt.h"
#include "slim/core.h"
#include "slim/data.h"
#include "slim/nn.h"
#include "slim/optim.h"
#include "slim/passes.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_eval_result {
    size_t n;        /* images evaluated */
    size_t correct;  /* top-1 hits */
    double loss;     /* mean cross-entropy */
    double accuracy; /* correct / n */
    int n_classes;
    uint64_t *confusion; /* (n_classes, n_classes) row = true, col = predicted; NULL unless asked */
} slim_eval_result;

/* Runs the model in inference mode over the whole data set in batches.
 * logits, when not NULL, receives (ds->n, n_classes) floats. want_confusion
 * allocates result->confusion (free with slim_eval_result_free). */
slim_status slim_evaluate(slim_model *model, const slim_dataset *ds, int batch,
                          slim_backend backend, float *logits, int want_confusion,
                          slim_eval_result *result);
void slim_eval_result_free(slim_eval_result *result);

/* ---- training (src/train/train.c) ------------------------------------- */

/* The states of slim_train_config.stop. */
enum { SLIM_TRAIN_IDLE = 0, SLIM_TRAIN_RUNNING = 1, SLIM_TRAIN_STOP = 2 };

typedef struct slim_train_config {
    const char *model; /* model file (.net); not used with resume or init */
    const char *data;  /* --data spec (see data.h); NULL = fashion-mnist */
    int epochs;        /* total epochs of the run */
    int batch;
    float lr; /* base learning rate */
    slim_schedule schedule;
    float momentum;
    float weight_decay; /* coupled L2 on weights and biases (and BN unless a gamma penalty) */
    size_t limit;       /* train on the first N images (0 = all) */
    size_t test_limit;  /* evaluate on the first N test images (0 = all) */
    /* Image folders (data.h); recorded in the checkpoint (data.* keys). */
    slim_resize_mode resize; /* how pictures become the model's input size */
    double crop_scale;       /* SLIM_RESIZE_CROP: 0 = SLIM_DATA_CROP_SCALE */
    double val_split;        /* hold out this fraction of each class (data.h) */
    uint64_t split_seed;     /* the split's seed when split_seed_given, else `seed` */
    int split_seed_given;
    const char *val_dir; /* a separate folder for the test split, or NULL */
    int skip_bad;        /* leave out (and count) unreadable pictures */
    /* Not recorded: they change memory and speed, never the results. */
    int streaming;    /* 1: keep at most cache_mib MiB of decoded pictures, decode the rest */
    size_t cache_mib; /* with streaming */
    int workers;      /* decoding threads with streaming (0 = the data library's default) */
    /* Augmentation: for image folders random-resized crop, else random crop
     * with padding (h/14 pixels: 2 for 28x28, 4 from 32x32 up); resume
     * keeps the rule a checkpoint recorded (augment.rule). */
    int augment;
    int flip; /* horizontal flips: 1 on, 0 off, -1 auto (on for colour data) */
    uint64_t seed;
    int threads;
    slim_backend backend;
    slim_penalty penalty;
    float lambda; /* with a target: the controller's start (0 = its own) */
    /* Cost-weighted penalty (gamma penalties): each gamma's weight c_j is
     * what its channel costs (slim_pruned_cost_measure), recomputed from the
     * channels alive at every update (below); uniform = the plain penalty. */
    slim_cost cost;
    /* A budget for the model threshold-0 pruning gives (gamma-l1 only):
     * SLIM_COST_MACS, SLIM_COST_PARAMS or SLIM_COST_LATENCY (the table's
     * predicted latency), 0 = none. target_value is an absolute count (for
     * latency microseconds), or with target_fraction a fraction in (0, 1] of the
     * unpruned model's. lambda then follows slim_budget_update, SLIM_TRAIN_UPDATES
     * times per epoch. */
    int target;
    double target_value;
    int target_fraction;
    /* With a target, once the plan has landed (slim_budget_landed): a
     * cost above the budget is cut back to it by zeroing the gammas of the
     * channels with the smallest |gamma| / c_j, the structure is frozen
     * (gammas at 0 stay 0) and lambda is 0; at the end a cost still above
     * is trimmed the same way (docs/SPARSITY.md, "Budgets"). 1 (default)
     * on, 0 off: the controller steers lambda to the end. */
    int budget_trim;
    /* The latency table that cost or target latency needs (slim/passes.h),
     * asked for once, at the start of a fresh run, for the model being
     * trained (the CLI measures it, slim_latency_table_measure, or reads
     * it from a checkpoint); a resumed run reuses the one its checkpoint
     * holds. NULL: latency is refused. */
    slim_status (*latency_table)(void *ctx, const slim_model *m, slim_latency_table *out);
    void *latency_ctx;
    /* Live pruning (docs/SPARSITY.md): remove, while training, each channel
     * whose gammas (all of its dependency group's) have been exactly 0 for
     * live_prune_after consecutive steps, by pruning's exact fold. 1 on
     * (needs a gamma penalty), 0 off, -1 auto: on with gamma-l1 without
     * --cost or --target. A resumed run keeps what its checkpoint recorded. */
    int live_prune;
    int live_prune_after; /* 0 = SLIM_LIVE_PRUNE_AFTER */
    const char *out;      /* checkpoint path; metrics go beside it as .csv */
    const char *resume;   /* continue the run saved here (its settings, except epochs > 0) */
    const char *init;     /* start from these weights, fresh optimizer state */
    int progress;         /* -1 auto (bar on a terminal), 0 plain log lines, 1 bar */
    int quiet;            /* no progress output at all */
    /* A way to ask training to stop, e.g. from a SIGINT handler; NULL =
     * never. slim_train sets *stop to SLIM_TRAIN_RUNNING when its loop begins
     * and to SLIM_TRAIN_IDLE when it ends, so a handler can tell whether the
     * loop runs; setting SLIM_TRAIN_STOP makes it save a checkpoint after the
     * current step and return with summary->interrupted set. */
    volatile sig_atomic_t *stop;
    /* Under MPI (slim/dist.h, more than one rank): each global batch is
     * split over the ranks and their gradients summed (docs/SCALE.md).
     * bn_sync: batch norm's statistics over the whole global batch (1, the
     * default: the same function as one process) or over each rank's share
     * (0; the checkpoint then holds rank 0's running statistics).
     * dist_check: steps between comparisons of every rank's parameters (a
     * mismatch is an error naming the rank); 0 = at epoch ends only. */
    int bn_sync;
    int dist_check;
} slim_train_config;

/* Steps a gamma stays exactly 0 before live pruning removes its channel
 * (docs/SPARSITY.md has the measurement it comes from). */
#define SLIM_LIVE_PRUNE_AFTER 100

/* Cost and lambda updates per epoch (every ceil(batches / this) steps). */
#define SLIM_TRAIN_UPDATES 8

typedef struct slim_train_summary {
    int epochs_done;
    uint64_t steps;
    double train_loss;    /* mean over the last epoch */
    double test_accuracy; /* after the last epoch */
    double images_per_s;  /* training throughput of the last epoch */
    int gamma_zero, gamma_total;
    int interrupted;         /* stopped through cfg->stop after saving */
    double lambda;           /* lambda at the end (a target's controller moves it) */
    double budget;           /* the target as an absolute count, 0 without one */
    int target;              /* what it counts (slim_train_config.target, as resumed) */
    slim_pruned_cost pruned; /* of the final model */
    int live_prune_after;    /* live pruning's K, 0 when off */
    int live_removed;        /* channels removed while training (all of the run) */
    int live_channels;       /* BN channels of the final model */
    double live_seconds;     /* spent removing channels (this process) */
    /* The end-of-run trim (budget_trim): channels and gammas it zeroed,
     * their |gamma| summed, the largest |gamma| / c_j among them, the
     * target's pruned cost before it; unreachable: no trim meets the
     * budget (nothing zeroed). All 0 when it did not run. */
    int trim_channels, trim_gammas, trim_unreachable;
    double trim_mass, trim_score, trim_before;
    /* The cut at landing (slim_budget_guard): cuts back to the budget and
     * the channels they zeroed, in this process. */
    int guard_cuts, guard_channels;
} slim_train_summary;

/* The defaults `slim train --help` shows. */
void slim_train_config_default(slim_train_config *cfg);
/* Runs (or resumes) a training run. Saves a checkpoint atomically at the end
 * of every epoch and when asked to stop (cfg->stop); stops with
 * SLIM_ERR_NUMERIC naming the step when the loss becomes NaN or Inf (the
 * last checkpoint stays intact). */
slim_status slim_train(const slim_train_config *cfg, slim_train_summary *summary);
/* ---- the data settings a checkpoint records (src/train/data_meta.c) --- */

/* Writes the data.* keys of docs/CHECKPOINT_FORMAT.md for a run loaded
 * with opts: data.resize, data.crop_scale, data.val_split and
 * data.split_seed (when splitting), data.val (when given), data.skip_bad
 * (when on), and data.mean/data.std from the train split `train`. */
slim_status slim_train_store_data_meta(slim_ckpt *ck, const slim_data_options *opts,
                                       const slim_dataset *train);
/* Reads them back into opts for a model of c input channels: resize and
 * crop_scale; have_norm with mean/std (a checkpoint without data.mean and
 * data.std gets the fixed rule of slim_data_normalisation for its 'data',
 * which is what it was trained with); and when `split` (the data is the
 * checkpoint's own), val_split, split_seed, val_dir (pointing into ck) and
 * skip_bad. Keys that are absent leave opts alone. A value that does not
 * parse is SLIM_ERR_FORMAT, "<path>: setting '<key>' is '<value>': want
 * ...". */
slim_status slim_train_data_options(const slim_ckpt *ck, const char *path, int c, int split,
                                    slim_data_options *opts);

/* Path of the metrics CSV for a checkpoint path (RUN.ckpt -> RUN.csv). */
void slim_train_metrics_path(const char *ckpt_path, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
