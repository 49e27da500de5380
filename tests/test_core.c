/* Core: PCG32, the arena's no-malloc steady state, error messages, large buffers. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_pcg32_reference(void **state) {
    (void)state;
    /* First outputs of pcg32 with seed 42, stream 54: the reference values
     * from the PCG paper's demo program (pcg32-demo.c). */
    static const uint32_t expect[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
                                       0x83d2f293, 0xbfa4784b, 0xcbed606e};
    slim_rng rng;
    slim_rng_seed(&rng, 42, 54);
    for (int i = 0; i < 6; i++)
        assert_int_equal(slim_rng_u32(&rng), expect[i]);
}

static void test_rng_ranges(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 7, 1);
    double sum = 0, sq = 0;
    int hist[5] = {0};
    for (int i = 0; i < 20000; i++) {
        float u = slim_rng_uniform(&rng);
        assert_true(u >= 0.0f && u < 1.0f);
        hist[slim_rng_below(&rng, 5)]++;
        float z = slim_rng_normal(&rng);
        sum += z;
        sq += (double)z * z;
    }
    for (int i = 0; i < 5; i++)
        assert_true(hist[i] > 3700 && hist[i] < 4300);
    assert_true(fabs(sum / 20000) < 0.05);
    assert_true(fabs(sq / 20000 - 1) < 0.05);
    uint32_t perm[10];
    for (uint32_t i = 0; i < 10; i++)
        perm[i] = i;
    slim_rng_shuffle(&rng, perm, 10);
    int seen[10] = {0};
    for (int i = 0; i < 10; i++)
        seen[perm[i]]++;
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
}

static void test_arena_steady_state(void **state) {
    (void)state;
    slim_arena a;
    slim_arena_init(&a);
    /* A "step" that needs more than one block... */
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 40; i++) {
            char *p = slim_arena_alloc(&a, 100000);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 64, 0);
            memset(p, i, 100000);
        }
        size_t before = a.n_mallocs;
        slim_arena_reset(&a);
        /* ...consolidates once, after which steps of the same size reuse it. */
        if (step >= 1) assert_int_equal(a.n_mallocs, before);
    }
    slim_arena_free(&a);
}

/* A located error the way model_text.c makes one, through slim_errorv. */
static slim_status error_at(slim_status st, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static slim_status error_at(slim_status st, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    slim_errorv(st, fmt, ap);
    va_end(ap);
    return slim_error_prefix(st, "%s:%d", file, line);
}

static void test_errors(void **state) {
    (void)state;
    slim_clear_error();
    assert_string_equal(slim_last_error(), "");
    assert_int_equal(slim_error(SLIM_ERR_FORMAT, "bad %s at %d", "thing", 3), SLIM_ERR_FORMAT);
    assert_string_equal(slim_last_error(), "bad thing at 3");
    slim_error_prefix(SLIM_ERR_FORMAT, "file.ckpt");
    assert_string_equal(slim_last_error(), "file.ckpt: bad thing at 3");
    assert_int_equal(error_at(SLIM_ERR_ARG, "x.net", 7, "bad %s", "key"), SLIM_ERR_ARG);
    assert_string_equal(slim_last_error(), "x.net:7: bad key");
    assert_null(slim_calloc(SIZE_MAX / 2, 4));
    assert_non_null(strstr(slim_last_error(), "overflow"));
}

/* Large buffers: zeroed like calloc, 2 MiB-aligned from 4 MiB on (where
 * huge pages can back them), freed with free(); overflow refused. */
static void test_calloc_large(void **state) {
    (void)state;
    const size_t sizes[] = {1, 1000, (size_t)4 << 20, ((size_t)9 << 20) + 12};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = slim_calloc_large(sizes[i], 1);
        assert_non_null(p);
        size_t nonzero = 0;
        for (size_t j = 0; j < sizes[i]; j++)
            nonzero += p[j] != 0;
        assert_int_equal(nonzero, 0);
        if (sizes[i] >= ((size_t)4 << 20)) assert_int_equal((uintptr_t)p % ((size_t)2 << 20), 0);
        memset(p, 0xab, sizes[i]);
        free(p);
    }
    slim_clear_error();
    assert_null(slim_calloc_large(SIZE_MAX / 2, 4));
    assert_non_null(strstr(slim_last_error(), "overflow"));
}

/* slim_median sorts in place and averages the two middle values of an even
 * count; slim_clock_s never goes back. */
static void test_clock_median(void **state) {
    (void)state;
    double odd[] = {3.0, -1.0, 2.0, 9.0, 0.5};
    assert_true(slim_median(odd, 5) == 2.0);
    assert_true(odd[0] == -1.0 && odd[4] == 9.0);
    double even[] = {4.0, 1.0, 3.0, 2.0};
    assert_true(slim_median(even, 4) == 2.5);
    double one[] = {7.0};
    assert_true(slim_median(one, 1) == 7.0);
    assert_true(slim_median(NULL, 0) == 0.0);
    double t0 = slim_clock_s(), t1 = t0;
    for (int i = 0; i < 1000; i++) {
        double t = slim_clock_s();
        assert_true(t >= t1);
        t1 = t;
    }
    assert_true(t0 > 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcg32_reference),    cmocka_unit_test(test_rng_ranges),
        cmocka_unit_test(test_arena_steady_state), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_calloc_large),       cmocka_unit_test(test_clock_median),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
