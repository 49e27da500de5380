/* Data-parallel training's pieces over MPI: run under `mpirun -np N` (the
 * ctest entries test_dist_np2 and test_dist_np3); alone (one rank) every
 * check holds trivially and the program checks the one-process identity.
 *
 * - dist_sum_floats/doubles: the rank-order sum, bit for bit the same on
 *   every rank and in a repeated call;
 * - dist_agree: one rank's error reaches every rank, naming it;
 * - train_replicas_grads on a small conv + BN + dense network, batch 11
 *   (uneven shards: 6 + 5, 4 + 4 + 3), both backends: with bn_sync the
 *   gradients, loss and BN running statistics are the one-process ones
 *   within 1e-5 relative; without, the gradients are the shares' own
 *   gradients weighted by their sizes;
 * - train_replicas_check: identical parameters pass, one rank's changed
 *   parameter is an error naming that rank. */
#include "testutil.h"

#include "dist/dist.h"
#include "slim/autograd.h"
#include "slim/nn.h"
#include "train/replicas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;

static void test_sum_floats(void **state) {
    (void)state;
    enum { N = 1001 };
    float *v = malloc(N * sizeof *v), *w = malloc(N * sizeof *w), *scratch;
    double *want = calloc(N, sizeof *want);
    scratch = malloc(dist_scratch_floats(N) * sizeof *scratch);
    assert_true(v && w && want && scratch);
    /* Every rank knows what every rank holds: rank r's values from seed r. */
    for (int r = 0; r < size; r++) {
        slim_rng rng;
        slim_rng_seed(&rng, 100 + (uint64_t)r, 1);
        tu_fill_uniform(&rng, w, N, -1, 1);
        for (int i = 0; i < N; i++)
            want[i] += w[i];
        if (r == rank) memcpy(v, w, N * sizeof *v);
    }
    memcpy(w, v, N * sizeof *v);
    assert_int_equal(dist_sum_floats(v, N, scratch), SLIM_OK);
    assert_int_equal(dist_sum_floats(w, N, scratch), SLIM_OK);
    assert_memory_equal(v, w, N * sizeof *v); /* the same bits again */
    for (int i = 0; i < N; i++)
        assert_true(v[i] == (float)want[i]); /* the rank-order sum in double */
    uint64_t h = 0xcbf29ce484222325ull;      /* FNV-1a of the sums' bytes: the same on every rank */
    for (size_t i = 0; i < sizeof(float) * N; i++)
        h = (h ^ ((const unsigned char *)v)[i]) * 0x100000001b3ull;
    assert_int_equal(dist_same_u64(h, "sums"), SLIM_OK);
    double d[3] = {rank, 1.0, 0.5 * rank};
    assert_int_equal(dist_sum_doubles(d, 3), SLIM_OK);
    assert_true(d[0] == size * (size - 1) / 2.0 && d[1] == size);
    free(v), free(w), free(want), free(scratch);
}

static void test_agree(void **state) {
    (void)state;
    assert_int_equal(dist_agree(SLIM_OK), SLIM_OK);
    slim_status mine =
        rank == size - 1 ? slim_error(SLIM_ERR_FORMAT, "bad data on this rank") : SLIM_OK;
    slim_status st = dist_agree(mine);
    assert_int_equal(st, SLIM_ERR_FORMAT);
    assert_true(tu_error_has("bad data on this rank"));
    if (size > 1) {
        char want[64];
        snprintf(want, sizeof want, "rank %d: ", size - 1);
        assert_true(tu_error_has(want));
        assert_int_equal(slim_dist_error_shared(), 1);
        tu_assert_error(dist_same_u64(rank == 1 ? 5 : 4, "checksums"), SLIM_ERR_NUMERIC,
                        "rank 1's checksums differ");
    }
}

static const char *net = "input shape=1x8x8\n"
                         "conv c1 out=4 k=3 pad=1\n"
                         "bn b1\n"
                         "relu\n"
                         "maxpool k=2\n"
                         "flatten\n"
                         "dense d1 out=12 bias=0\n" /* bn follows */
                         "bn b2\n"
                         "relu\n"
                         "dense fc out=5\n";

enum { BATCH = 11, IMG = 64 };

static slim_model *new_model(uint64_t seed) {
    slim_model *m = NULL;
    assert_int_equal(slim_model_parse(net, "test", &m), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model_init_params(m, &rng);
    return m;
}

typedef struct step_out {
    float *grad, *buffers;
    double loss;
    size_t hits;
} step_out;

/* One step's gradients through train_replicas_grads with `r`, from the
 * model's running statistics `buffers0`. */
static step_out one_step(train_replicas *r, slim_model *m, slim_backend backend,
                         const float *buffers0, float *x, const int32_t *y, size_t n) {
    step_out o = {0};
    slim_tape tape;
    slim_tape_init(&tape, backend);
    memcpy(m->buffer_block, buffers0, m->buffer_floats * sizeof(float));
    slim_model_zero_grad(m);
    assert_int_equal(
        train_replicas_grads(r, m, &tape, x, y, n, &m->layers[0], &o.loss, &o.hits, NULL), SLIM_OK);
    o.grad = malloc(m->param_floats * sizeof(float));
    o.buffers = malloc(m->buffer_floats * sizeof(float));
    assert_true(o.grad && o.buffers);
    memcpy(o.grad, m->grad_block, m->param_floats * sizeof(float));
    memcpy(o.buffers, m->buffer_block, m->buffer_floats * sizeof(float));
    slim_tape_free(&tape);
    return o;
}

/* Each parameter's values within tol of the largest magnitude of want's
 * values for that parameter. */
static void expect_params_close(const slim_model *m, const float *got, const float *want,
                                double tol, const char *what) {
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        double mag = tu_max_abs(want + p->offset, p->numel);
        double d = tu_max_abs_diff(got + p->offset, want + p->offset, p->numel);
        if (d > tol * mag)
            fail_msg("rank %d: %s of parameter %d: max difference %g, magnitude %g", rank, what, i,
                     d, mag);
    }
}

static void grads_case(slim_backend backend, int bn_sync) {
    slim_model *m = new_model(3);
    slim_rng rng;
    slim_rng_seed(&rng, 4, 1);
    float x[BATCH * IMG], *buffers0 = malloc(m->buffer_floats * sizeof(float));
    int32_t y[BATCH];
    assert_non_null(buffers0);
    memcpy(buffers0, m->buffer_block, m->buffer_floats * sizeof(float));
    tu_fill_uniform(&rng, x, BATCH * IMG, -1, 2);
    for (int i = 0; i < BATCH; i++)
        y[i] = (int32_t)slim_rng_below(&rng, 5);

    /* The data-parallel step: this rank's share, then the sums. */
    train_replicas dist;
    assert_int_equal(train_replicas_init(&dist, m, BATCH, BATCH, bn_sync, 0), SLIM_OK);
    step_out got = one_step(&dist, m, backend, buffers0, x, y, BATCH);
    /* What one process computes, here on every rank. */
    train_replicas alone = {.rank = 0, .size = 1, .bn_sync = bn_sync};
    if (bn_sync) {
        step_out want = one_step(&alone, m, backend, buffers0, x, y, BATCH);
        expect_params_close(m, got.grad, want.grad, 1e-5, "gradient");
        double mag = tu_max_abs(want.buffers, m->buffer_floats);
        assert_true(tu_max_abs_diff(got.buffers, want.buffers, m->buffer_floats) <= 1e-5 * mag);
        assert_true(fabs(got.loss - want.loss) <= 1e-5 * fabs(want.loss));
        assert_int_equal(got.hits, want.hits);
        free(want.grad), free(want.buffers);
    } else {
        /* Each share alone, weighted by its size. */
        float *sum = calloc(m->param_floats, sizeof(float));
        assert_non_null(sum);
        for (int r = 0; r < size; r++) {
            train_replicas who = {.rank = r, .size = size};
            size_t lo, count;
            train_replicas_shard(&who, BATCH, &lo, &count);
            step_out s = one_step(&alone, m, backend, buffers0, x + lo * IMG, y + lo, count);
            for (size_t e = 0; e < m->param_floats; e++)
                sum[e] += (float)((double)count / BATCH) * s.grad[e];
            free(s.grad), free(s.buffers);
        }
        expect_params_close(m, got.grad, sum, 1e-5, "gradient (shares' own statistics)");
        free(sum);
    }
    free(got.grad), free(got.buffers), free(buffers0);
    train_replicas_free(&dist);
    slim_model_free(m);
}

static void test_grads_ref(void **state) {
    (void)state;
    grads_case(SLIM_BACKEND_REF, 1);
}

static void test_grads_fast(void **state) {
    (void)state;
    grads_case(SLIM_BACKEND_FAST, 1);
}

static void test_grads_unsynced(void **state) {
    (void)state;
    grads_case(SLIM_BACKEND_REF, 0);
    grads_case(SLIM_BACKEND_FAST, 0);
}

static void test_check(void **state) {
    (void)state;
    slim_model *m = new_model(5);
    train_replicas r;
    assert_int_equal(train_replicas_init(&r, m, BATCH, BATCH, 1, 0), SLIM_OK);
    assert_int_equal(train_replicas_check(&r, m), SLIM_OK);
    if (size > 1) {
        if (rank == size - 1) m->param_block[7] = nextafterf(m->param_block[7], 2.0f);
        char want[64];
        snprintf(want, sizeof want, "rank %d's parameters", size - 1);
        tu_assert_error(train_replicas_check(&r, m), SLIM_ERR_NUMERIC, want);
    }
    train_replicas_free(&r);
    slim_model_free(m);
}

/* Fewer images than ranks in a batch cannot be shared out. */
static void test_too_few(void **state) {
    (void)state;
    slim_model *m = new_model(6);
    train_replicas r;
    if (size > 1)
        tu_assert_error(train_replicas_init(&r, m, 100, (size_t)size - 1, 1, 0), SLIM_ERR_ARG,
                        "ranks need at least");
    else
        assert_int_equal(train_replicas_init(&r, m, 1, 1, 1, 0), SLIM_OK);
    train_replicas_free(&r);
    slim_model_free(m);
}

int main(int argc, char **argv) {
    if (slim_dist_init(&argc, &argv) != SLIM_OK) {
        fprintf(stderr, "slim_dist_init: %s\n", slim_last_error());
        return 1;
    }
    rank = slim_dist_rank();
    size = slim_dist_size();
    slim_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_floats),     cmocka_unit_test(test_agree),
        cmocka_unit_test(test_grads_ref),      cmocka_unit_test(test_grads_fast),
        cmocka_unit_test(test_grads_unsynced), cmocka_unit_test(test_check),
        cmocka_unit_test(test_too_few),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    slim_dist_finalize();
    return failed;
}
