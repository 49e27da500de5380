/* The picture store: which file each image of a data set comes from, how
 * it is decoded (a decode function, data_decode_picture for image folders:
 * bytes at the model's input size), and a pool of decode threads. It knows
 * nothing of data sets (dataset.c builds one around it).
 *
 * data_store_check has the threads decode every file once: the first
 * `cached` images into the caller's pixels, the others into scratch buffers
 * that are thrown away, only to find bad pictures at load rather than
 * mid-training. What stays on when not every image fits the cache: the
 * threads, the paths, and a set of prefetch slots, each holding one decoded
 * image keyed by its index. A reader (slim_dataset_gather,
 * slim_batcher_next) names the images it will want soon
 * (data_store_prefetch); the threads decode those in the order they were
 * first asked for (a batch before the ones after it, however often a reader
 * names it again);
 * data_store_get then copies a ready slot, waits for one a thread is on, or
 * decodes the image itself when no thread has started it. The bytes are
 * those of the decode function whichever thread made them and whenever, so
 * what a reader gets never depends on timing.
 *
 * One mutex guards the store's state; a thread decodes with it released,
 * into a slot it alone may touch while the slot is BUSY. A decode error in
 * a thread is kept in its slot (status and a copy of the thread-local
 * message) and returned by data_store_get. Freeing the store stops the
 * threads after the decode they are in and joins them. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_MIN_SLOTS 16
#define PROGRESS_SECONDS 5.0

enum { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_READY, SLOT_FAILED };

typedef struct store_slot {
    uint8_t *bytes; /* bytes: (c, h, w) */
    size_t index;   /* the image held or asked for, unless FREE */
    int state;
    uint64_t asked; /* when first asked for (QUEUED): decoded in this order */
    uint64_t seq;   /* when last asked for: reused oldest first */
    slim_status st; /* FAILED: the decode's status and message (or NULL) */
    char *msg;
} store_slot;

typedef struct store_worker {
    struct slim_data_store *s;
    int id;
} store_worker;

struct slim_data_store {
    char **paths; /* paths: (n) */
    size_t n, cached, per;
    int c, h, w;
    slim_resize_mode mode;
    double crop_scale;
    data_decode_fn decode;
    pthread_mutex_t mu;
    pthread_cond_t work; /* threads wait here for something to decode */
    pthread_cond_t done; /* readers wait here for a decode to end */
    pthread_t *threads;
    store_worker *args;
    int n_threads, stop;
    /* The load pass: files [0, load_limit) are decoded, those < cached into
     * pixels (the data set's), the others into scratch: (n_threads, per). */
    int loading, skip_bad;
    char first_bad[512]; /* skip_bad: the first skipped file's message */
    uint8_t *pixels, *scratch;
    size_t load_next, load_limit, load_active, load_done;
    slim_status *load_st; /* (n) */
    char **load_msg;      /* (n) message of a file that failed, else NULL */
    /* Prefetching, after the load pass. */
    store_slot *slots; /* (n_slots) */
    size_t n_slots;
    int32_t *slot_of; /* (n) the slot holding or decoding image i, or -1 */
    uint64_t seq;
};

/* A copy of this thread's error message (NULL when out of memory). */
static char *copy_message(void) {
    const char *m = slim_last_error();
    size_t len = strlen(m) + 1;
    char *d = malloc(len);
    if (d) memcpy(d, m, len);
    return d;
}

static slim_status decode(const slim_data_store *s, size_t i, uint8_t *out) {
    return s->decode(s->paths[i], s->c, s->h, s->w, s->mode, s->crop_scale, out);
}

/* The QUEUED slot asked for first, or -1. */
static long next_queued(const slim_data_store *s) {
    long best = -1;
    for (size_t k = 0; k < s->n_slots; k++)
        if (s->slots[k].state == SLOT_QUEUED &&
            (best < 0 || s->slots[k].asked < s->slots[best].asked))
            best = (long)k;
    return best;
}

/* Whether a failed file is left out (skip_bad) rather than reported: a bad
 * picture is, running out of memory is not. */
static int skippable(const slim_data_store *s, slim_status st) {
    return s->skip_bad && st != SLIM_ERR_NOMEM && st != SLIM_ERR_ARG;
}

/* One file of the load pass; called and returns with the mutex held. */
static void load_one(slim_data_store *s, int id) {
    size_t i = s->load_next++;
    s->load_active++;
    uint8_t *dst = i < s->cached ? s->pixels + i * s->per : s->scratch + (size_t)id * s->per;
    pthread_mutex_unlock(&s->mu);
    slim_status st = decode(s, i, dst);
    char *msg = st != SLIM_OK ? copy_message() : NULL;
    pthread_mutex_lock(&s->mu);
    s->load_st[i] = st;
    s->load_msg[i] = msg;
    /* After a failure that is reported only the files before it still
     * matter: they decide which failure that is. */
    if (st != SLIM_OK && !skippable(s, st) && i + 1 < s->load_limit) s->load_limit = i + 1;
    s->load_active--;
    s->load_done++;
    if (s->load_active == 0 && s->load_next >= s->load_limit) pthread_cond_broadcast(&s->done);
}

/* Decodes slot k; called and returns with the mutex held. */
static void decode_slot(slim_data_store *s, long k) {
    store_slot *sl = &s->slots[k];
    sl->state = SLOT_BUSY;
    size_t i = sl->index;
    uint8_t *bytes = sl->bytes;
    pthread_mutex_unlock(&s->mu);
    slim_status st = decode(s, i, bytes);
    char *msg = st != SLIM_OK ? copy_message() : NULL;
    pthread_mutex_lock(&s->mu);
    sl = &s->slots[k]; /* the array may have grown meanwhile */
    sl->state = st == SLIM_OK ? SLOT_READY : SLOT_FAILED;
    sl->st = st;
    sl->msg = msg;
    pthread_cond_broadcast(&s->done);
}

static void *worker_main(void *arg) {
    store_worker *wk = arg;
    slim_data_store *s = wk->s;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        long k;
        if (s->loading && s->load_next < s->load_limit)
            load_one(s, wk->id);
        else if ((k = next_queued(s)) >= 0)
            decode_slot(s, k);
        else
            pthread_cond_wait(&s->work, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

size_t data_store_cached(const slim_data_store *s) { return s->cached; }

static void free_load_state(slim_data_store *s) {
    if (s->load_msg)
        for (size_t i = 0; i < s->n; i++)
            free(s->load_msg[i]);
    free(s->load_msg);
    free(s->load_st);
    free(s->scratch);
    s->load_msg = NULL;
    s->load_st = NULL;
    s->scratch = NULL;
    s->pixels = NULL;
}

void data_store_free(slim_data_store *s) {
    if (!s) return;
    if (s->threads) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->mu);
        for (int t = 0; t < s->n_threads; t++)
            pthread_join(s->threads[t], NULL);
        pthread_cond_destroy(&s->done);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->mu);
    }
    free_load_state(s);
    for (size_t k = 0; k < s->n_slots; k++) {
        free(s->slots[k].bytes);
        free(s->slots[k].msg);
    }
    free(s->slots);
    free(s->slot_of);
    if (s->paths)
        for (size_t i = 0; i < s->n; i++)
            free(s->paths[i]);
    free(s->paths);
    free(s->threads);
    free(s->args);
    free(s);
}

static char *dup_path(const char *p) {
    size_t len = strlen(p) + 1;
    char *d = malloc(len);
    if (d) memcpy(d, p, len);
    return d;
}

slim_status data_store_new(const char *const *paths, size_t n, int c, int h, int w,
                           slim_resize_mode mode, double crop_scale, data_decode_fn decode,
                           int workers, slim_data_store **out) {
    *out = NULL;
    if (n == 0) return slim_error(SLIM_ERR_FORMAT, "no pictures to load");
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "pictures: bad shape %dx%dx%d", c, h, w);
    if (workers == 0) workers = SLIM_DATA_WORKERS;
    if (workers < 1 || workers > SLIM_DATA_MAX_WORKERS)
        return slim_error(SLIM_ERR_ARG, "decode threads: %d (1 to %d)", workers,
                          SLIM_DATA_MAX_WORKERS);
    if ((size_t)workers > n) workers = (int)n;
    slim_data_store *s = calloc(1, sizeof *s);
    if (!s) return slim_error(SLIM_ERR_NOMEM, "picture store: out of memory");
    s->n = n;
    s->c = c;
    s->h = h;
    s->w = w;
    s->per = (size_t)c * (size_t)h * (size_t)w;
    s->mode = mode;
    s->crop_scale = crop_scale;
    s->decode = decode;
    s->paths = calloc(n, sizeof *s->paths);
    s->load_st = calloc(n, sizeof *s->load_st);
    s->load_msg = calloc(n, sizeof *s->load_msg);
    s->scratch = malloc((size_t)workers * s->per);
    s->threads = calloc((size_t)workers, sizeof *s->threads);
    s->args = calloc((size_t)workers, sizeof *s->args);
    int ok = s->paths && s->load_st && s->load_msg && s->scratch && s->threads && s->args;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s->paths[i] = dup_path(paths[i])) != NULL;
    if (!ok) {
        free(s->threads); /* no thread yet: nothing to join */
        s->threads = NULL;
        data_store_free(s);
        return slim_error(SLIM_ERR_NOMEM, "picture store: out of memory for %zu pictures", n);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    for (int t = 0; t < workers; t++) {
        s->args[t] = (store_worker){s, t};
        if (pthread_create(&s->threads[t], NULL, worker_main, &s->args[t]) != 0) break;
        s->n_threads++;
    }
    if (s->n_threads == 0) {
        data_store_free(s);
        return slim_error(SLIM_ERR_BACKEND, "picture store: cannot start a decode thread");
    }
    *out = s;
    return SLIM_OK;
}

/* Decodes every file in the threads, logging progress on a long load. */
static void run_load(slim_data_store *s, size_t cached, uint8_t *pixels, int skip_bad) {
    double next_log = slim_clock_s() + PROGRESS_SECONDS;
    pthread_mutex_lock(&s->mu);
    s->cached = cached;
    s->pixels = pixels;
    s->skip_bad = skip_bad;
    s->load_limit = s->n;
    s->loading = 1;
    pthread_cond_broadcast(&s->work);
    while (s->load_next < s->load_limit || s->load_active > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->done, &s->mu, &ts);
        if (slim_clock_s() >= next_log) {
            slim_log(SLIM_LOG_INFO, "decoded %zu/%zu pictures", s->load_done, s->n);
            next_log += PROGRESS_SECONDS;
        }
    }
    s->loading = 0;
    pthread_mutex_unlock(&s->mu);
}

/* The load pass's error: the first failed file in path order that is not
 * skipped. */
static slim_status first_failure(const slim_data_store *s) {
    for (size_t i = 0; i < s->n; i++)
        if (s->load_st[i] != SLIM_OK && !skippable(s, s->load_st[i]))
            return s->load_msg[i] ? slim_error(s->load_st[i], "%s", s->load_msg[i])
                                  : slim_error(s->load_st[i], "%s: cannot decode", s->paths[i]);
    return SLIM_OK;
}

/* With skip_bad: drops the failed files from paths, labels and pixels (the
 * cache then takes the first `cached` good ones, decoded again when they
 * were past it) and returns how many there were. */
static slim_status drop_failures(slim_data_store *s, uint8_t *pixels, int32_t *labels,
                                 size_t cached, size_t *skipped) {
    size_t g = 0, fit = cached;
    for (size_t i = 0; i < s->n; i++) {
        if (s->load_st[i] != SLIM_OK) {
            const char *why = s->load_msg[i] ? s->load_msg[i] : s->paths[i];
            slim_log(SLIM_LOG_DEBUG, "skipped %s", why);
            if (!s->first_bad[0]) snprintf(s->first_bad, sizeof s->first_bad, "%s", why);
            free(s->paths[i]);
            continue;
        }
        s->paths[g] = s->paths[i];
        labels[g] = labels[i];
        if (g < fit && g != i) {
            uint8_t *dst = pixels + g * s->per;
            if (i < fit)
                memmove(dst, pixels + i * s->per, s->per);
            else
                SLIM_TRY(decode(s, g, dst));
        }
        g++;
    }
    *skipped = s->n - g;
    if (*skipped && g)
        slim_log(SLIM_LOG_WARN, "skipped %zu bad picture%s (the first: %s)", *skipped,
                 *skipped == 1 ? "" : "s", s->first_bad);
    /* free_load_state walks n messages: free them before n shrinks. */
    for (size_t i = 0; i < s->n; i++) {
        free(s->load_msg[i]);
        s->load_msg[i] = NULL;
    }
    s->n = g;
    s->cached = g < fit ? g : fit;
    return SLIM_OK;
}

slim_status data_store_check(slim_data_store *s, uint8_t *pixels, size_t cached, int32_t *labels,
                             int skip_bad, size_t *n_skipped) {
    if (n_skipped) *n_skipped = 0;
    if (cached > s->n) cached = s->n;
    size_t n = s->n, skipped = 0;
    run_load(s, cached, pixels, skip_bad);
    SLIM_TRY(first_failure(s));
    if (skip_bad) SLIM_TRY(drop_failures(s, pixels, labels, cached, &skipped));
    if (n_skipped) *n_skipped = skipped;
    if (s->n == 0)
        return slim_error(SLIM_ERR_FORMAT, "none of the %zu pictures could be read (the first: %s)",
                          n, s->first_bad);
    free_load_state(s);
    if (s->cached == s->n) return SLIM_OK;
    s->slot_of = malloc(s->n * sizeof *s->slot_of);
    if (!s->slot_of) return slim_error(SLIM_ERR_NOMEM, "picture store: out of memory");
    for (size_t i = 0; i < s->n; i++)
        s->slot_of[i] = -1;
    return data_store_reserve(s, STORE_MIN_SLOTS);
}

size_t data_store_count(const slim_data_store *s) { return s->n; }

slim_status data_store_reserve(slim_data_store *s, size_t slots) {
    size_t streamed = s->n - s->cached;
    if (slots > streamed) slots = streamed;
    if (slots > INT32_MAX) slots = INT32_MAX;
    slim_status st = SLIM_OK;
    pthread_mutex_lock(&s->mu);
    if (slots > s->n_slots) {
        store_slot *grown = realloc(s->slots, slots * sizeof *grown);
        if (!grown) {
            st = slim_error(SLIM_ERR_NOMEM, "picture store: out of memory for %zu slots", slots);
        } else {
            s->slots = grown;
            while (s->n_slots < slots) {
                store_slot *sl = &s->slots[s->n_slots];
                memset(sl, 0, sizeof *sl);
                sl->bytes = malloc(s->per);
                if (!sl->bytes) {
                    st = slim_error(SLIM_ERR_NOMEM, "picture store: out of memory for a slot");
                    break;
                }
                s->n_slots++;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* A slot for a new request: a free one, else the ready or failed one asked
 * for longest ago, but not since `since` (this request's own); -1 if none. */
static long free_slot(const slim_data_store *s, uint64_t since) {
    long best = -1;
    for (size_t k = 0; k < s->n_slots; k++) {
        const store_slot *sl = &s->slots[k];
        if (sl->state == SLOT_FREE) return (long)k;
        if ((sl->state == SLOT_READY || sl->state == SLOT_FAILED) && sl->seq < since &&
            (best < 0 || sl->seq < s->slots[best].seq))
            best = (long)k;
    }
    return best;
}

void data_store_prefetch(slim_data_store *s, const uint32_t *idx, size_t count) {
    pthread_mutex_lock(&s->mu);
    uint64_t since = s->seq + 1;
    int queued = 0;
    for (size_t j = 0; j < count; j++) {
        size_t i = idx[j];
        if (i < s->cached || i >= s->n) continue;
        if (s->slot_of[i] >= 0) {
            store_slot *sl = &s->slots[s->slot_of[i]];
            sl->seq = ++s->seq;
            if (sl->state == SLOT_FAILED) { /* asked again: try again */
                free(sl->msg);
                sl->msg = NULL;
                sl->state = SLOT_QUEUED;
                sl->asked = sl->seq;
                queued = 1;
            }
            continue;
        }
        long k = free_slot(s, since);
        if (k < 0) break;
        store_slot *sl = &s->slots[k];
        if (sl->state != SLOT_FREE) s->slot_of[sl->index] = -1;
        free(sl->msg);
        sl->msg = NULL;
        sl->index = i;
        sl->state = SLOT_QUEUED;
        sl->seq = sl->asked = ++s->seq;
        s->slot_of[i] = (int32_t)k;
        queued = 1;
    }
    if (queued) pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
}

slim_status data_store_get(slim_data_store *s, size_t i, uint8_t *out) {
    if (i < s->cached || i >= s->n)
        return slim_error(SLIM_ERR_ARG, "picture store: image %zu is not streamed (%zu..%zu are)",
                          i, s->cached, s->n);
    pthread_mutex_lock(&s->mu);
    int32_t k;
    while ((k = s->slot_of[i]) >= 0 && s->slots[k].state == SLOT_BUSY)
        pthread_cond_wait(&s->done, &s->mu);
    if (k < 0 || s->slots[k].state == SLOT_QUEUED) {
        /* Not started: decode it here rather than wait for a thread. */
        if (k >= 0) s->slots[k].state = SLOT_FREE;
        s->slot_of[i] = -1;
        pthread_mutex_unlock(&s->mu);
        return decode(s, i, out);
    }
    store_slot *sl = &s->slots[k];
    slim_status st = sl->state == SLOT_READY ? SLIM_OK : sl->st;
    char *msg = sl->msg;
    if (st == SLIM_OK) memcpy(out, sl->bytes, s->per);
    sl->msg = NULL;
    sl->state = SLOT_FREE; /* each image is read once an epoch: no reason to keep it */
    s->slot_of[i] = -1;
    pthread_mutex_unlock(&s->mu);
    if (st != SLIM_OK) {
        st = msg ? slim_error(st, "%s", msg) : slim_error(st, "%s: cannot decode", s->paths[i]);
        free(msg);
    }
    return st;
}
