/* Data-parallel steps (replicas.h). Each rank holds the whole model and
 * reads the whole global batch in the one-process order (the batcher and
 * the augmentation draw the same numbers on every rank), then trains on
 * its share. The loss of a step is the mean over the global batch, so a
 * share of n_r of n images seeds its backward with n_r / n; the summed
 * gradients are then the one-process ones up to rounding, and one SGD step
 * on them keeps every rank's parameters identical. Batch norm either sums
 * its statistics over the ranks (bn_sync: the same function as one process)
 * or keeps each share's own. Every sum runs in a fixed order (dist.h). */
#include "train/replicas.h"

#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

slim_status train_replicas_init(train_replicas *r, const slim_model *m, size_t n_train,
                                size_t batch, int bn_sync, int check_every) {
    memset(r, 0, sizeof *r);
    r->rank = slim_dist_rank();
    r->size = slim_dist_size();
    r->bn_sync = bn_sync;
    r->check_every = check_every;
    r->comm_seen = dist_seconds();
    if (r->size <= 1) return SLIM_OK;
    size_t last = n_train % batch, size = (size_t)r->size;
    if (batch < size || n_train < size || (last && last < size))
        return slim_error(SLIM_ERR_ARG,
                          "%d ranks need at least %d images in every batch: --batch %zu over "
                          "%zu images leaves %zu in the last (change --batch or --limit)",
                          r->size, r->size, batch, n_train, last ? last : batch);
    r->scratch = slim_calloc(dist_scratch_floats(m->param_floats), sizeof(float));
    return r->scratch ? SLIM_OK : SLIM_ERR_NOMEM;
}

void train_replicas_free(train_replicas *r) {
    free(r->scratch);
    r->scratch = NULL;
}

void train_replicas_shard(const train_replicas *r, size_t n, size_t *lo, size_t *count) {
    size_t size = (size_t)r->size, rank = (size_t)r->rank, q = n / size, rem = n % size;
    *lo = rank * q + (rank < rem ? rank : rem);
    *count = q + (rank < rem);
}

static size_t argmax_hits(const slim_tensor *logits, const int32_t *y, size_t n) {
    int k = logits->shape[1];
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        const float *row = logits->data + i * (size_t)k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        hits += best == y[i];
    }
    return hits;
}

/* FNV-1a over the bytes of n floats. */
static uint64_t hash_floats(uint64_t h, const float *v, size_t n) {
    const unsigned char *b = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof(float); i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

void train_replicas_text(train_replicas *r, double step_seconds, char *buf, size_t len) {
    if (len) buf[0] = '\0';
    if (r->size <= 1) return;
    double now = dist_seconds(), spent = now - r->comm_seen;
    r->comm_seen = now;
    snprintf(buf, len, "  %d ranks: sums %.2f s (%.0f%% of the steps)", r->size, spent,
             step_seconds > 0 ? 100 * spent / step_seconds : 0.0);
}

slim_status train_replicas_check(const train_replicas *r, const slim_model *m) {
    if (r->size <= 1) return SLIM_OK;
    uint64_t h = hash_floats(0xcbf29ce484222325ull, m->param_block, m->param_floats);
    if (r->bn_sync) h = hash_floats(h, m->buffer_block, m->buffer_floats);
    return dist_same_u64(h, r->bn_sync ? "parameters or batch-norm statistics" : "parameters");
}

slim_status train_replicas_grads(train_replicas *r, slim_model *m, slim_tape *tape, float *x,
                                 const int32_t *y, size_t n, const slim_layer *in, double *loss,
                                 size_t *hits, volatile sig_atomic_t *stop) {
    if (r->size > 1 && r->check_every > 0 && r->steps > 0 &&
        r->steps % (uint64_t)r->check_every == 0)
        SLIM_TRY(train_replicas_check(r, m));
    r->steps++;
    size_t lo = 0, count = n, img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    if (r->size > 1) train_replicas_shard(r, n, &lo, &count);
    tape->bn_sync = r->size > 1 && r->bn_sync ? &dist_allreduce : NULL;
    slim_tensor *xt =
        slim_tape_wrap(tape, x + lo * img, NULL, 4, (int[]){(int)count, in->c, in->h, in->w});
    slim_tensor *logits = NULL, *l = NULL;
    if (!xt) return SLIM_ERR_NOMEM;
    SLIM_TRY(slim_model_forward(m, tape, xt, 1, &logits));
    SLIM_TRY(slim_op_softmax_xent(tape, logits, y + lo, &l));
    *loss = l->data[0];
    *hits = argmax_hits(logits, y + lo, count);
    if (r->size > 1) {
        /* The loss and hits over the batch, and whether any rank was asked
         * to stop. */
        int asked = r->stop_pending || (stop && *stop == SLIM_TRAIN_STOP);
        double v[3] = {*loss * (double)count, (double)*hits, asked};
        SLIM_TRY(dist_sum_doubles(v, 3));
        *loss = v[0] / (double)n;
        *hits = (size_t)v[1];
        /* A stop asked after this point waits for the next step's sum, so
         * that every rank stops after the same step. */
        r->stop_pending = 0;
        r->stop_agreed = v[2] > 0;
        if (stop && v[2] > 0)
            *stop = SLIM_TRAIN_STOP;
        else if (stop && *stop == SLIM_TRAIN_STOP) {
            r->stop_pending = 1;
            *stop = SLIM_TRAIN_RUNNING;
        }
    }
    if (!isfinite(*loss)) return SLIM_OK;
    SLIM_TRY(slim_tape_backward_seed(tape, l, (float)((double)count / (double)n)));
    return r->size > 1 ? dist_sum_floats(m->grad_block, m->param_floats, r->scratch) : SLIM_OK;
}
