/* Tests of the proximal operators (slim/prox.h) on hand-worked values. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "slim/prox.h"

/* S_1 on hand-worked inputs, f32 and f64, including the exact threshold. */
static void test_soft_threshold_values(void **state) {
    (void)state;
    const double in[] = {3, -3, 1, -1, 0.5, -0.5, 0, -0.0, 1.25, -7.5};
    const double want[] = {2, -2, 0, 0, 0, 0, 0, 0, 0.25, -6.5};
    enum { N = sizeof in / sizeof in[0] };
    float xf[N];
    double xd[N];
    for (int i = 0; i < N; i++) {
        xf[i] = (float)in[i];
        xd[i] = in[i];
    }
    size_t zf = slim_soft_threshold_f32(xf, N, 1.0f);
    size_t zd = slim_soft_threshold_f64(xd, N, 1.0);
    for (int i = 0; i < N; i++) {
        /* All inputs and outputs are exact binary fractions: exact equality. */
        assert_true(xd[i] == want[i]);
        assert_true(xf[i] == (float)want[i]);
        if (want[i] == 0) {
            /* +0.0, not -0.0: the signbit must be clear, even for -1, -0.5
             * and the -0.0 input. */
            assert_false(signbit(xd[i]));
            assert_false(signbit(xf[i]));
        }
    }
    /* 1, -1, 0.5, -0.5, 0, -0.0 become zero. */
    assert_int_equal(zf, 6);
    assert_int_equal(zd, 6);
}

/* S_0 is the identity (apart from -0.0 -> +0.0). */
static void test_soft_threshold_zero_threshold(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 7, 1);
    enum { N = 257 };
    float xf[N], keep_f[N];
    double xd[N], keep_d[N];
    for (int i = 0; i < N; i++) {
        xf[i] = keep_f[i] = slim_rng_normal(&rng) * 3.0f;
        xd[i] = keep_d[i] = (double)slim_rng_normal(&rng) * 3.0;
    }
    assert_int_equal(slim_soft_threshold_f32(xf, N, 0.0f), 0);
    assert_int_equal(slim_soft_threshold_f64(xd, N, 0.0), 0);
    assert_memory_equal(xf, keep_f, sizeof xf);
    assert_memory_equal(xd, keep_d, sizeof xd);
}

/* The count includes entries that were zero before the step. */
static void test_soft_threshold_count(void **state) {
    (void)state;
    double x[] = {0, 0, 5, -0.1, 0.2, -9};
    assert_int_equal(slim_soft_threshold_f64(x, 6, 0.15), 3);
    assert_true(x[4] == 0.2 - 0.15);
    assert_true(x[5] == -9 + 0.15);
    assert_int_equal(slim_soft_threshold_f64(x, 0, 1.0), 0); /* empty array */
}

/* A NaN is not silently pruned. */
static void test_soft_threshold_nan(void **state) {
    (void)state;
    float x[] = {NAN, 0.5f};
    assert_int_equal(slim_soft_threshold_f32(x, 2, 1.0f), 1);
    assert_true(isnan(x[0]));
}

/* f32 and f64 give the same answer (the f64 one rounded) on random data. */
static void test_soft_threshold_f32_f64_agree(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 11, 3);
    enum { N = 1000 };
    float xf[N];
    double xd[N];
    for (int i = 0; i < N; i++) {
        xf[i] = slim_rng_normal(&rng);
        xd[i] = xf[i];
    }
    /* t = 0.75 is exact in both; x - t is then exact in double and rounded
     * once in float, so the float result is the rounded double result. */
    size_t zf = slim_soft_threshold_f32(xf, N, 0.75f);
    size_t zd = slim_soft_threshold_f64(xd, N, 0.75);
    assert_int_equal(zf, zd);
    assert_true(zf > 100 && zf < 900);
    for (int i = 0; i < N; i++)
        assert_true(xf[i] == (float)xd[i]);
}

/* The weighted form: entry i is thresholded at t * w[i] (hand-worked,
 * f32 and f64); w = 0 leaves x unchanged; unit weights are S_t. */
static void test_soft_threshold_weighted(void **state) {
    (void)state;
    const double in[] = {3, -3, 1, -1, 0.5, 2, -0.0, 1.25};
    const double w[] = {0.5, 2, 0, 1, 0.25, 4, 1, 0.5};
    /* t = 1: thresholds 0.5, 2, 0, 1, 0.25, 4, 1, 0.5 */
    const double want[] = {2.5, -1, 1, 0, 0.25, 0, 0, 0.75};
    enum { N = sizeof in / sizeof in[0] };
    float xf[N], wf[N];
    double xd[N];
    for (int i = 0; i < N; i++) {
        xf[i] = (float)in[i];
        wf[i] = (float)w[i];
        xd[i] = in[i];
    }
    assert_int_equal(slim_soft_threshold_weighted_f32(xf, N, 1.0f, wf), 3);
    assert_int_equal(slim_soft_threshold_weighted_f64(xd, N, 1.0, w), 3);
    for (int i = 0; i < N; i++) {
        assert_true(xd[i] == want[i]);
        assert_true(xf[i] == (float)want[i]);
        if (want[i] == 0) assert_false(signbit(xd[i]) || signbit(xf[i]));
    }
    slim_rng rng;
    slim_rng_seed(&rng, 5, 2);
    enum { M = 300 };
    float a[M], b[M], ones[M];
    for (int i = 0; i < M; i++) {
        a[i] = b[i] = slim_rng_normal(&rng);
        ones[i] = 1.0f;
    }
    assert_int_equal(slim_soft_threshold_weighted_f32(a, M, 0.6f, ones),
                     slim_soft_threshold_f32(b, M, 0.6f));
    assert_memory_equal(a, b, sizeof a);
}

/* x = (3, 4), ‖x‖ = 5. */
static void test_block_values(void **state) {
    (void)state;
    double d[2] = {3, 4};
    float f[2] = {3, 4};
    assert_int_equal(slim_block_soft_threshold_f64(d, 2, 1.0), 0);
    assert_int_equal(slim_block_soft_threshold_f32(f, 2, 1.0f), 0);
    /* (3,4)·(1 − 1/5) = (2.4, 3.2) */
    assert_true(fabs(d[0] - 2.4) <= 4 * DBL_EPSILON);
    assert_true(fabs(d[1] - 3.2) <= 4 * DBL_EPSILON);
    assert_true(fabsf(f[0] - 2.4f) <= 2.4f * FLT_EPSILON);
    assert_true(fabsf(f[1] - 3.2f) <= 3.2f * FLT_EPSILON);

    /* t = ‖x‖ exactly: the whole block is exactly +0. */
    double d5[2] = {3, 4};
    float f5[2] = {-3, 4};
    assert_int_equal(slim_block_soft_threshold_f64(d5, 2, 5.0), 1);
    assert_int_equal(slim_block_soft_threshold_f32(f5, 2, 5.0f), 1);
    for (int i = 0; i < 2; i++) {
        assert_true(d5[i] == 0 && !signbit(d5[i]));
        assert_true(f5[i] == 0 && !signbit(f5[i]));
    }
    /* t > ‖x‖ */
    double d6[2] = {-3, -4};
    assert_int_equal(slim_block_soft_threshold_f64(d6, 2, 6.0), 1);
    assert_true(d6[0] == 0 && d6[1] == 0 && !signbit(d6[0]) && !signbit(d6[1]));
    /* t = 0 leaves the block alone. */
    double d0[2] = {3, -4};
    assert_int_equal(slim_block_soft_threshold_f64(d0, 2, 0.0), 0);
    assert_true(d0[0] == 3 && d0[1] == -4);
}

/* A zero block stays zero and nothing divides by its zero norm (UBSan and
 * the NaN check would both notice), for t > 0 and t = 0. */
static void test_block_zero(void **state) {
    (void)state;
    double d[3] = {0, -0.0, 0};
    float f[3] = {0, 0, -0.0f};
    assert_int_equal(slim_block_soft_threshold_f64(d, 3, 0.5), 1);
    assert_int_equal(slim_block_soft_threshold_f32(f, 3, 0.0f), 1);
    for (int i = 0; i < 3; i++) {
        assert_true(d[i] == 0 && !signbit(d[i]));
        assert_true(f[i] == 0 && !signbit(f[i]));
    }
    /* An empty block is trivially zero. */
    assert_int_equal(slim_block_soft_threshold_f64(d, 0, 1.0), 1);
}

/* Huge double entries: the norm must not overflow to inf (which would leave
 * the block unshrunk). */
static void test_block_no_overflow(void **state) {
    (void)state;
    double d[2] = {3e200, 4e200};
    assert_int_equal(slim_block_soft_threshold_f64(d, 2, 1e200), 0);
    assert_true(fabs(d[0] / 2.4e200 - 1) < 1e-14);
    assert_true(fabs(d[1] / 3.2e200 - 1) < 1e-14);
    /* float entries near FLT_MAX: the double norm has no trouble. */
    float f[2] = {3e38f, 3e38f};
    assert_int_equal(slim_block_soft_threshold_f32(f, 2, 1e38f), 0);
    assert_true(isfinite(f[0]) && f[0] < 3e38f && f[0] > 2e38f);
}

/* The multi-group helper treats groups independently: each group must equal
 * the single-block result on its own copy. */
static void test_group_helper(void **state) {
    (void)state;
    /* 4 groups of m = 2: norms 5, 0, 1, 13. With t = 2: shrink, zero (already
     * zero), zero (norm 1 <= 2), shrink. */
    double d[8] = {3, 4, 0, 0, 0.6, -0.8, -5, 12};
    float f[8];
    for (int i = 0; i < 8; i++)
        f[i] = (float)d[i];
    assert_int_equal(slim_group_soft_threshold_f64(d, 4, 2, 2.0), 2);
    assert_int_equal(slim_group_soft_threshold_f32(f, 4, 2, 2.0f), 2);
    const double want[8] = {3 * 0.6, 4 * 0.6, 0, 0, 0, 0, -5 * (11.0 / 13), 12 * (11.0 / 13)};
    for (int i = 0; i < 8; i++) {
        assert_true(fabs(d[i] - want[i]) <= 1e-15 * 12);
        assert_true(fabs((double)f[i] - want[i]) <= 1e-6 * 12);
        if (want[i] == 0) assert_true(d[i] == 0 && f[i] == 0 && !signbit(d[i]));
    }

    /* Random data, 16 groups of 9 (a 16x1x3x3 conv): helper == per block. */
    slim_rng rng;
    slim_rng_seed(&rng, 5, 2);
    enum { G = 16, M = 9 };
    float all[G * M], one[G * M];
    double alld[G * M];
    for (int i = 0; i < G * M; i++) {
        /* Scale groups differently so that some are zeroed and some not. */
        all[i] = one[i] = slim_rng_normal(&rng) * (float)(i / M) * 0.1f;
        alld[i] = all[i];
    }
    size_t zeros = slim_group_soft_threshold_f32(all, G, M, 0.5f);
    size_t zeros_d = slim_group_soft_threshold_f64(alld, G, M, 0.5);
    size_t count = 0;
    for (int g = 0; g < G; g++)
        count += (size_t)slim_block_soft_threshold_f32(one + g * M, M, 0.5f);
    assert_int_equal(zeros, count);
    assert_int_equal(zeros, zeros_d);
    assert_true(zeros > 0 && zeros < G);
    assert_memory_equal(all, one, sizeof all);
    /* f32 and f64 agree to float rounding. */
    for (int i = 0; i < G * M; i++)
        assert_true(fabs((double)all[i] - alld[i]) <= 2 * FLT_EPSILON * fabs(alld[i]));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_threshold_values),
        cmocka_unit_test(test_soft_threshold_zero_threshold),
        cmocka_unit_test(test_soft_threshold_count),
        cmocka_unit_test(test_soft_threshold_nan),
        cmocka_unit_test(test_soft_threshold_f32_f64_agree),
        cmocka_unit_test(test_soft_threshold_weighted),
        cmocka_unit_test(test_block_values),
        cmocka_unit_test(test_block_zero),
        cmocka_unit_test(test_block_no_overflow),
        cmocka_unit_test(test_group_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
