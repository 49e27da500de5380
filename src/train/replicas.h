/* Private to src/train: data-parallel training over the ranks of an MPI
 * job (slim/dist.h; docs/SCALE.md). Alone (one rank) every function here
 * does exactly what the one-process loop did. */
#ifndef SLIM_TRAIN_REPLICAS_H
#define SLIM_TRAIN_REPLICAS_H

#include <signal.h>

#include "slim/autograd.h"
#include "slim/train.h"

typedef struct train_replicas {
    int rank, size;
    int bn_sync;      /* batch norm over the whole global batch */
    int check_every;  /* steps between parameter checksums across ranks (0: epoch ends) */
    uint64_t steps;   /* steps taken through train_replicas_grads */
    int stop_pending; /* a stop asked here after the last agreement */
    int stop_agreed;  /* every rank agreed at the last step to stop after it */
    float *scratch;   /* (dist_scratch_floats(param_floats)) the gradient reduction's */
    double comm_seen; /* dist_seconds() at the last train_replicas_text */
} train_replicas;

/* For a run of batches of `batch` over n_train images: every batch must
 * give each rank at least one image (SLIM_ERR_ARG otherwise). */
slim_status train_replicas_init(train_replicas *r, const slim_model *m, size_t n_train,
                                size_t batch, int bn_sync, int check_every);
void train_replicas_free(train_replicas *r);
/* This rank's share [*lo, *lo + *count) of a global batch of n images: n /
 * size each, the first n % size ranks one more. */
void train_replicas_shard(const train_replicas *r, size_t n, size_t *lo, size_t *count);
/* One step's gradients on the global batch x (n, c, h, w), y (n) into the
 * model's (zeroed) gradients: this rank's share forward, the loss and hits
 * summed over the ranks, then (when the mean loss *loss is finite) backward
 * weighted by the share's size and the gradients summed over the ranks, so
 * every rank holds the one-process gradient of the mean loss. *hits: top-1
 * hits over the batch. stop (may be NULL): a stop asked on any rank is
 * agreed here and set on every rank. */
slim_status train_replicas_grads(train_replicas *r, slim_model *m, slim_tape *tape, float *x,
                                 const int32_t *y, size_t n, const slim_layer *in, double *loss,
                                 size_t *hits, volatile sig_atomic_t *stop);
/* With more than one rank, "  N ranks: sums S s (P% of the steps)": the
 * time spent in collectives (waiting for the slowest rank included) since
 * the last call, against `step_seconds` of steps; else "". */
void train_replicas_text(train_replicas *r, double step_seconds, char *buf, size_t len);
/* SLIM_OK when every rank's parameters (and with bn_sync its running
 * statistics) are bit for bit rank 0's; else an error naming the rank. */
slim_status train_replicas_check(const train_replicas *r, const slim_model *m);

#endif
