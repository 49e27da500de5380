/* Private to src/train: removing dead channels while training (slim train
 * --live-prune; docs/SPARSITY.md). A gamma that has been exactly 0 for
 * `after` consecutive steps marks its channel dead; at the next check
 * (every ceil(after / 4) steps) every channel dead in all the BNs of its
 * group is removed by the exact fold (prune_live), the model replaced by
 * the narrower one and the tape rebuilt for the new shapes. */
#ifndef SLIM_TRAIN_LIVE_PRUNE_H
#define SLIM_TRAIN_LIVE_PRUNE_H

#include "slim/ckpt.h"
#include "slim/nn.h"
#include "slim/train.h"

#include <stdint.h>

/* Counters are stored as floats: whole numbers up to 2^24 are exact. */
#define TRAIN_LIVE_AFTER_MAX (1 << 24)

typedef struct train_live {
    int after;            /* K; 0 = no counting (no gamma penalty) */
    int remove;           /* 1 = live pruning on; else the counters only measure */
    uint32_t *zero_steps; /* (param_floats) consecutive steps each gamma has been 0: at most
                             after with remove, else at most TRAIN_LIVE_AFTER_MAX */
    unsigned char *allow; /* (param_floats of the model at the last check) scratch */
    int due;              /* a gamma reached `after` since the last check */
    int removed;          /* channels removed so far in the run */
    int n_epochs;         /* entries of per_epoch */
    int *per_epoch;       /* (n_epochs) channels removed in epoch e + 1 */
    uint64_t first_step;  /* the step of the first removal, 0 = none */
    double seconds;       /* spent removing (not stored) */
    /* This epoch so far: gammas that left 0 after at least `after` steps
     * there (what live pruning would have made impossible), and the longest
     * run of steps at 0 that any gamma left. */
    uint32_t returns, longest_return;
    /* After a removal, until train_live_remap_done: for each value of the
     * new model, its index in the old one (SIZE_MAX: new), so that the
     * caller's per-value state follows (train_budget_remap). */
    size_t *remap;
} train_live;

/* A new run's live pruning from its settings (c->live_prune: on needs a
 * gamma penalty; auto is on with gamma-l1 and lambda > 0, without --cost
 * or --target: with those it must be asked for).
 * With a gamma penalty and live pruning off, the counters still run, for
 * the returns they measure. */
slim_status train_live_setup(train_live *lp, const slim_model *m, const slim_train_config *c);
/* Live pruning off until train_live_init. */
void train_live_free(train_live *lp);
/* Counts for m with `after` steps (>= 1), removing when `remove`;
 * zero_steps start at 0. */
slim_status train_live_init(train_live *lp, const slim_model *m, int after, int remove);
/* The end of an epoch's metrics: returns and longest_return start again. */
void train_live_epoch_done(train_live *lp);
/* After optimizer step `step` (1-based) of epoch `epoch`: counts each gamma's
 * steps at 0 and, at a check with a gamma newly dead, removes the dead
 * channels: *model is freed and replaced, the tape re-initialised and
 * lp->remap set. */
slim_status train_live_after_step(train_live *lp, slim_model **model, slim_tape *tape,
                                  uint64_t step, int epoch);
/* Frees lp->remap. */
void train_live_remap_done(train_live *lp);
/* The checkpoint's live_prune.* keys and its counters tensor (see
 * docs/CHECKPOINT_FORMAT.md); live_prune.after 0 alone without counting. */
slim_status train_live_store(const train_live *lp, const slim_model *m, slim_ckpt *ck);
/* Reads them back for a resumed run (its model m): live pruning as the run
 * had it. A value out of range is SLIM_ERR_FORMAT naming path and key. */
slim_status train_live_restore(train_live *lp, const slim_model *m, const slim_ckpt *ck,
                               const char *path);
/* BN channels of m (the live channel count). */
int train_live_channels(const slim_model *m);

#endif
