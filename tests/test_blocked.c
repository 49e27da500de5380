/* Tests of the channel concatenation in 16-channel blocks (blocked_concat,
 * src/kernels/blocked.c) against a plain concatenation: bit for bit, every
 * lane of the output written (it starts as NaN), the padding channels
 * zero whatever the inputs' padding lanes hold; offsets on and off block
 * boundaries, in blocks before and after, planes of 1, 2 and more pixels
 * (the first and last pixels take the lane-by-lane path). */
#include "testutil.h"

#include "kernels/blocked.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x (n, c, hw) plain -> (n, ceil(c/16), hw, 16), padding lanes `pad`. */
static float *to_blocked(const float *x, int n, int c, size_t hw, float pad) {
    size_t blocks = (size_t)round16(c) / 16, size = (size_t)n * blocks * hw * 16;
    float *y = malloc(size * sizeof(float));
    assert_non_null(y);
    for (size_t e = 0; e < size; e++)
        y[e] = pad;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++)
                y[(((size_t)i * blocks + (size_t)ch / 16) * hw + p) * 16 + (size_t)ch % 16] =
                    x[((size_t)i * (size_t)c + (size_t)ch) * hw + p];
    return y;
}

static void concat_case(int n, size_t hw, int k, const int *cin, slim_rng *rng) {
    int cout = 0;
    for (int i = 0; i < k; i++)
        cout += cin[i];
    float *plain = malloc((size_t)n * (size_t)cout * hw * sizeof(float));
    assert_non_null(plain);
    const float *srcs[16];
    float *blocked[16];
    int off = 0;
    for (int i = 0; i < k; i++) {
        float *x = malloc((size_t)n * (size_t)cin[i] * hw * sizeof(float));
        assert_non_null(x);
        for (size_t e = 0; e < (size_t)n * (size_t)cin[i] * hw; e++)
            x[e] = slim_rng_normal(rng);
        for (int img = 0; img < n; img++)
            memcpy(plain + ((size_t)img * (size_t)cout + (size_t)off) * hw,
                   x + (size_t)img * (size_t)cin[i] * hw, (size_t)cin[i] * hw * sizeof(float));
        blocked[i] = to_blocked(x, n, cin[i], hw, 1e30f); /* padding lanes: garbage */
        srcs[i] = blocked[i];
        off += cin[i];
        free(x);
    }
    float *want = to_blocked(plain, n, cout, hw, 0.0f);
    size_t size = (size_t)n * (size_t)round16(cout) * hw;
    float *got = malloc(size * sizeof(float));
    assert_non_null(got);
    for (size_t e = 0; e < size; e++)
        got[e] = NAN;
    blocked_concat(n, hw, k, srcs, cin, got);
    for (size_t e = 0; e < size; e++)
        if (memcmp(&got[e], &want[e], sizeof(float)) != 0)
            fail_msg("n %d, hw %zu, %d inputs (first %d channels, out %d): float %zu is %g, want "
                     "%g",
                     n, hw, k, cin[0], cout, e, got[e], want[e]);
    for (int i = 0; i < k; i++)
        free(blocked[i]);
    free(plain);
    free(want);
    free(got);
}

static void test_concat_cases(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 31, 1);
    const int aligned[] = {16, 32}, odd[] = {12, 20}, three[] = {32, 10, 12}, one[] = {5},
              straddle[] = {7, 30, 1, 16, 9}, tail[] = {3, 3};
    const size_t hws[] = {1, 2, 3, 49};
    for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++) {
        concat_case(2, hws[h], 2, aligned, &rng);
        concat_case(3, hws[h], 2, odd, &rng);
        concat_case(1, hws[h], 3, three, &rng);
        concat_case(2, hws[h], 1, one, &rng);
        concat_case(2, hws[h], 5, straddle, &rng);
        concat_case(1, hws[h], 2, tail, &rng);
    }
    /* Random channel counts. */
    for (int t = 0; t < 40; t++) {
        int k = 1 + (int)(slim_rng_u32(&rng) % 6), cin[6];
        for (int i = 0; i < k; i++)
            cin[i] = 1 + (int)(slim_rng_u32(&rng) % 40);
        concat_case(1 + t % 3, 1 + slim_rng_u32(&rng) % 30, k, cin, &rng);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
