/* Mini-batches over a data set. The order of an epoch is the identity
 * permutation shuffled from the rng state the epoch began with, so
 * (epoch, index, that rng state) pins down exactly where a run stands. On a
 * streamed data set each batch first asks the picture store to prefetch the
 * next ones (stream.c); the bytes do not depend on when they were decoded. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

slim_status slim_batcher_init(slim_batcher *b, const slim_dataset *ds, size_t batch, int shuffle) {
    memset(b, 0, sizeof *b);
    if (batch == 0) return slim_error(SLIM_ERR_ARG, "batcher: batch size must be > 0");
    if (ds->n > UINT32_MAX)
        return slim_error(SLIM_ERR_ARG, "batcher: %zu images (at most %u)", ds->n, UINT32_MAX);
    b->ds = ds;
    b->batch = batch;
    b->shuffle = shuffle ? 1 : 0;
    b->order = slim_calloc(ds->n ? ds->n : 1, sizeof *b->order);
    if (!b->order) return SLIM_ERR_NOMEM;
    /* Room to prefetch the batch being read and the two after it. */
    if (ds->store && ds->pixels) {
        slim_status st = data_store_reserve(ds->store, batch > SIZE_MAX / 3 ? SIZE_MAX : 3 * batch);
        if (st != SLIM_OK) {
            slim_batcher_free(b);
            return st;
        }
    }
    for (size_t i = 0; i < ds->n; i++)
        b->order[i] = (uint32_t)i;
    /* No epoch begun yet: next() hands out nothing until begin_epoch. */
    b->pos.index = ds->n;
    return SLIM_OK;
}

void slim_batcher_free(slim_batcher *b) {
    free(b->order);
    memset(b, 0, sizeof *b);
}

/* order = 0..n-1 shuffled from `rng` (advanced by the shuffle). */
static void make_order(slim_batcher *b, slim_rng *rng) {
    for (size_t i = 0; i < b->ds->n; i++)
        b->order[i] = (uint32_t)i;
    if (b->shuffle) slim_rng_shuffle(rng, b->order, b->ds->n);
}

void slim_batcher_begin_epoch(slim_batcher *b, slim_rng *rng) {
    b->pos.epoch++;
    b->pos.index = 0;
    if (b->shuffle) {
        b->pos.order_rng = *rng;
        make_order(b, rng);
    } else {
        memset(&b->pos.order_rng, 0, sizeof b->pos.order_rng);
        make_order(b, NULL);
    }
}

slim_status slim_batcher_next_checked(slim_batcher *b, float *x, int32_t *y, size_t *count) {
    *count = 0;
    b->error = SLIM_OK;
    size_t n = b->ds->n, at = b->pos.index;
    if (at >= n) return SLIM_OK;
    size_t k = n - at < b->batch ? n - at : b->batch;
    /* Streamed pictures: this batch and the next two, decoded by the
     * store's threads while this one is copied and trained on. */
    data_prefetch(b->ds, b->order, at, b->batch <= (n - at) / 3 ? 3 * b->batch : n - at);
    /* Indices are < n by construction: only a streamed decode can fail. */
    b->error = slim_dataset_gather(b->ds, b->order + at, k, x, y);
    if (b->error != SLIM_OK) return b->error;
    b->pos.index += k;
    *count = k;
    return SLIM_OK;
}

size_t slim_batcher_next(slim_batcher *b, float *x, int32_t *y) {
    size_t count;
    return slim_batcher_next_checked(b, x, y, &count) == SLIM_OK ? count : 0;
}

size_t slim_batcher_num_batches(const slim_batcher *b) {
    return (b->ds->n + b->batch - 1) / b->batch;
}

slim_status slim_batcher_seek(slim_batcher *b, const slim_batcher_pos *pos) {
    if (pos->index > b->ds->n)
        return slim_error(SLIM_ERR_ARG,
                          "batcher: saved position %llu is past the %zu images of the data set",
                          (unsigned long long)pos->index, b->ds->n);
    b->pos = *pos;
    slim_rng r = pos->order_rng;
    make_order(b, &r);
    if (pos->epoch == 0) b->pos.index = b->ds->n; /* no epoch begun */
    return SLIM_OK;
}
