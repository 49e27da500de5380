/* Batch norm over several replicas (the kernels' sync argument, which
 * data-parallel training fills with an MPI allreduce): a batch split into
 * shards (2 and 3, uneven), each shard's kernel on a thread of its own
 * with a sum over the threads standing in for MPI, must give what one call
 * on the whole batch gives (the reference kernels; the fast ones below): the output and saved
 * statistics of each sample, the running statistics, dx, and dgamma and dbeta summed over the
 * shards. For the reference and the fast kernels, each against the
 * one-batch reference. Without sync a shard's statistics are its own (the
 * test checks that they differ, so that the comparison can fail). */
#include "testutil.h"

#include "kernels/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-5f
#define MOMENTUM 0.1f
#define MAX_SHARDS 3
#define TOL 3e-5

/* The threads' meeting point: each sum() leaves its values in a slot,
 * waits for all, and adds the slots in shard order. */
typedef struct meeting {
    pthread_barrier_t barrier;
    int shards;
    double *slot[MAX_SHARDS];
} meeting;

typedef struct replica {
    meeting *m;
    int k; /* this shard */
    slim_allreduce sync;
    int fast;
    slim_dnnl_cache *cache;
    int n, c, hw;
    const float *x, *gamma, *beta, *dy;
    float *y, *save_mean, *save_var, *rm, *rv, *dx, *dgamma, *dbeta;
    slim_status st;
} replica;

static slim_status meet_sum(void *ctx, double *v, size_t n) {
    replica *r = ctx;
    meeting *m = r->m;
    m->slot[r->k] = malloc(n * sizeof(double));
    if (!m->slot[r->k]) return SLIM_ERR_NOMEM;
    memcpy(m->slot[r->k], v, n * sizeof(double));
    pthread_barrier_wait(&m->barrier);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < m->shards; k++)
            s += m->slot[k][i];
        v[i] = s;
    }
    pthread_barrier_wait(&m->barrier);
    free(m->slot[r->k]);
    m->slot[r->k] = NULL;
    return SLIM_OK;
}

static void *run_replica(void *arg) {
    replica *r = arg;
    if (r->fast) {
        r->st = slim_dnnl_bn_forward_train(&r->cache, r->n, r->c, r->hw, r->x, r->gamma, r->beta,
                                           EPS, MOMENTUM, r->rm, r->rv, r->y, r->save_mean,
                                           r->save_var, &r->sync);
        if (r->st == SLIM_OK)
            r->st = slim_dnnl_bn_backward(&r->cache, r->n, r->c, r->hw, r->x, r->gamma, EPS,
                                          r->save_mean, r->save_var, r->dy, r->dx, r->dgamma,
                                          r->dbeta, &r->sync);
    } else {
        r->st = slim_ref_bn_forward_train(r->n, r->c, r->hw, r->x, r->gamma, r->beta, EPS, MOMENTUM,
                                          r->rm, r->rv, r->y, r->save_mean, r->save_var, &r->sync);
        if (r->st == SLIM_OK)
            r->st = slim_ref_bn_backward(r->n, r->c, r->hw, r->x, r->gamma, EPS, r->save_mean,
                                         r->save_var, r->dy, r->dx, r->dgamma, r->dbeta, &r->sync);
    }
    return NULL;
}

static float *frand(slim_rng *rng, size_t n, float lo, float hi) {
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    tu_fill_uniform(rng, p, n, lo, hi);
    return p;
}

static void expect_close(const float *a, const float *b, size_t n, const char *what) {
    double m = tu_max_abs(b, n), d = tu_max_abs_diff(a, b, n);
    if (d > TOL * (m > 1 ? m : 1)) fail_msg("%s: max difference %g (magnitude %g)", what, d, m);
}

/* n samples of (c, hw) split over `shards` threads as data-parallel
 * training splits a batch: n / shards each, the first n % shards one more. */
static void sync_case(int fast, int n, int c, int hw, int shards, uint64_t seed) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 5);
    size_t nx = (size_t)n * c * hw, plane = (size_t)c * hw;
    float *x = frand(&rng, nx, -2, 3), *g = frand(&rng, c, 0.5f, 1.5f), *b = frand(&rng, c, -1, 1);
    float *dy = frand(&rng, nx, -1, 1);
    float *rm0 = frand(&rng, c, -1, 1), *rv0 = frand(&rng, c, 0.5f, 2);
    /* The truth: one reference call on the whole batch. */
    float *y1 = calloc(nx, sizeof(float)), *dx1 = calloc(nx, sizeof(float));
    float *sm1 = calloc(c, sizeof(float)), *sv1 = calloc(c, sizeof(float));
    float *rm1 = malloc(c * sizeof(float)), *rv1 = malloc(c * sizeof(float));
    float *dg1 = calloc(c, sizeof(float)), *db1 = calloc(c, sizeof(float));
    assert_true(y1 && dx1 && sm1 && sv1 && rm1 && rv1 && dg1 && db1);
    memcpy(rm1, rm0, c * sizeof(float));
    memcpy(rv1, rv0, c * sizeof(float));
    assert_int_equal(
        slim_ref_bn_forward_train(n, c, hw, x, g, b, EPS, MOMENTUM, rm1, rv1, y1, sm1, sv1, NULL),
        SLIM_OK);
    assert_int_equal(slim_ref_bn_backward(n, c, hw, x, g, EPS, sm1, sv1, dy, dx1, dg1, db1, NULL),
                     SLIM_OK);

    /* The shards, each with buffers of its own. */
    float *y = calloc(nx, sizeof(float)), *dx = calloc(nx, sizeof(float));
    float *sm = calloc((size_t)shards * c, sizeof(float)), *sv = calloc((size_t)shards * c, 4);
    float *rm = malloc((size_t)shards * c * sizeof(float)), *rv = malloc((size_t)shards * c * 4);
    float *dg = calloc((size_t)shards * c, sizeof(float)), *db = calloc((size_t)shards * c, 4);
    assert_true(y && dx && sm && sv && rm && rv && dg && db);
    meeting m = {.shards = shards};
    pthread_barrier_init(&m.barrier, NULL, (unsigned)shards);
    replica r[MAX_SHARDS];
    pthread_t t[MAX_SHARDS];
    int lo = 0;
    for (int k = 0; k < shards; k++) {
        int count = n / shards + (k < n % shards);
        size_t at = (size_t)lo * plane;
        memcpy(rm + (size_t)k * c, rm0, c * sizeof(float));
        memcpy(rv + (size_t)k * c, rv0, c * sizeof(float));
        r[k] = (replica){.m = &m,
                         .k = k,
                         .fast = fast,
                         .n = count,
                         .c = c,
                         .hw = hw,
                         .x = x + at,
                         .gamma = g,
                         .beta = b,
                         .dy = dy + at,
                         .y = y + at,
                         .save_mean = sm + (size_t)k * c,
                         .save_var = sv + (size_t)k * c,
                         .rm = rm + (size_t)k * c,
                         .rv = rv + (size_t)k * c,
                         .dx = dx + at,
                         .dgamma = dg + (size_t)k * c,
                         .dbeta = db + (size_t)k * c};
        r[k].sync = (slim_allreduce){meet_sum, &r[k]};
        lo += count;
    }
    if (fast) /* the cache (and oneDNN's context) made here, not on the thread */
        for (int k = 0; k < shards; k++) {
            float *ty = calloc((size_t)r[k].n * plane, sizeof(float));
            float *tdx = calloc((size_t)r[k].n * plane, sizeof(float));
            float tm[64], tv[64], td[64], te[64];
            assert_true(ty && tdx && c <= 64);
            assert_int_equal(slim_dnnl_bn_forward_train(&r[k].cache, r[k].n, c, hw, r[k].x, g, b,
                                                        EPS, MOMENTUM, NULL, NULL, ty, tm, tv,
                                                        NULL),
                             SLIM_OK);
            assert_int_equal(slim_dnnl_bn_backward(&r[k].cache, r[k].n, c, hw, r[k].x, g, EPS, tm,
                                                   tv, r[k].dy, tdx, td, te, NULL),
                             SLIM_OK);
            free(ty);
            free(tdx);
        }
    for (int k = 0; k < shards; k++)
        assert_int_equal(pthread_create(&t[k], NULL, run_replica, &r[k]), 0);
    for (int k = 0; k < shards; k++) {
        pthread_join(t[k], NULL);
        assert_int_equal(r[k].st, SLIM_OK);
        slim_dnnl_cache_free(r[k].cache);
    }
    pthread_barrier_destroy(&m.barrier);
    expect_close(y, y1, nx, "y");
    expect_close(dx, dx1, nx, "dx");
    for (int k = 0; k < shards; k++) {
        expect_close(sm + (size_t)k * c, sm1, c, "save_mean");
        expect_close(sv + (size_t)k * c, sv1, c, "save_var");
        expect_close(rm + (size_t)k * c, rm1, c, "running_mean");
        expect_close(rv + (size_t)k * c, rv1, c, "running_var");
    }
    /* Each shard's dgamma and dbeta are its share: their sum is the whole. */
    for (int k = 1; k < shards; k++)
        for (int j = 0; j < c; j++) {
            dg[j] += dg[(size_t)k * c + j];
            db[j] += db[(size_t)k * c + j];
        }
    expect_close(dg, dg1, c, "dgamma (summed)");
    expect_close(db, db1, c, "dbeta (summed)");
    free(x), free(g), free(b), free(dy), free(rm0), free(rv0), free(y1), free(dx1), free(sm1);
    free(sv1), free(rm1), free(rv1), free(dg1), free(db1), free(y), free(dx), free(sm), free(sv);
    free(rm), free(rv), free(dg), free(db);
}

static void test_ref_sync(void **state) {
    (void)state;
    sync_case(0, 7, 3, 5, 2, 1);  /* 4 + 3 */
    sync_case(0, 11, 4, 9, 3, 2); /* 4 + 4 + 3 */
    sync_case(0, 5, 6, 1, 3, 3);  /* (n, c) data: 2 + 2 + 1, one sample alone */
}

/* The fast kernels keep their scratch in buffers shared by every cache,
 * so their shards cannot run on threads of one process: here a single
 * shard takes the synchronised path (the passes apart, the sums through
 * sync); tests/test_dist.c runs them over MPI ranks. */
static void test_fast_sync(void **state) {
    (void)state;
    sync_case(1, 7, 3, 5, 1, 4);
    sync_case(1, 5, 6, 1, 1, 6);
    sync_case(1, 64, 16, 196, 1, 7); /* large enough for the kernels' parallel loops */
}

/* A shard alone has statistics of its own: the sync case above would fail
 * if the kernels ignored sync. */
static void test_unsynced_differs(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 9, 5);
    enum { N = 6, C = 2, HW = 4 };
    float *x = frand(&rng, N * C * HW, -2, 3), g[C] = {1, 1}, b[C] = {0, 0};
    float y[N * C * HW], ya[N * C * HW], sm[C], sv[C];
    assert_int_equal(
        slim_ref_bn_forward_train(N, C, HW, x, g, b, EPS, MOMENTUM, NULL, NULL, y, sm, sv, NULL),
        SLIM_OK);
    assert_int_equal(slim_ref_bn_forward_train(N / 2, C, HW, x, g, b, EPS, MOMENTUM, NULL, NULL, ya,
                                               sm, sv, NULL),
                     SLIM_OK);
    assert_true(tu_max_abs_diff(y, ya, N / 2 * C * HW) > 1e-3);
    free(x);
}

/* A failing sum is the kernel's failure. */
static slim_status broken_sum(void *ctx, double *v, size_t n) {
    (void)ctx;
    (void)v;
    (void)n;
    return slim_error(SLIM_ERR_IO, "the link is down");
}

static void test_sync_error(void **state) {
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, g[2] = {1, 1}, b[2] = {0, 0}, y[8], sm[2], sv[2];
    slim_allreduce broken = {broken_sum, NULL};
    tu_assert_error(
        slim_ref_bn_forward_train(2, 2, 2, x, g, b, EPS, MOMENTUM, NULL, NULL, y, sm, sv, &broken),
        SLIM_ERR_IO, "link is down");
    slim_dnnl_cache *cache = NULL;
    tu_assert_error(slim_dnnl_bn_forward_train(&cache, 2, 2, 2, x, g, b, EPS, MOMENTUM, NULL, NULL,
                                               y, sm, sv, &broken),
                    SLIM_ERR_IO, "link is down");
    slim_dnnl_cache_free(cache);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_sync),
        cmocka_unit_test(test_fast_sync),
        cmocka_unit_test(test_unsynced_differs),
        cmocka_unit_test(test_sync_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
