/* Buffer placement (src/runtime/placement.c): a pure function from sizes,
 * lifetimes and exclusive flags to arena offsets and the arena size. */
#include "testutil.h"

#include "runtime/placement.h"

#include <stdlib.h>

#define A RT_PLACE_ALIGN

static size_t arena_of(const rt_extent *b, int n, size_t *off) {
    size_t arena = 12345;
    assert_int_equal(rt_place(b, n, off, &arena), SLIM_OK);
    return arena;
}

static int overlap(size_t a, size_t na, size_t b, size_t nb) { return a < b + nb && b < a + na; }

static void test_place_empty(void **state) {
    (void)state;
    size_t off[1] = {7}, arena = 99;
    assert_int_equal(rt_place(NULL, 0, off, &arena), SLIM_OK);
    assert_int_equal(arena, 0);
}

/* Buffers alive at different times share memory. */
static void test_place_disjoint_share(void **state) {
    (void)state;
    rt_extent b[] = {{1000, 0, 1, 0}, {1000, 2, 3, 0}, {500, 4, 9, 0}};
    size_t off[3];
    size_t arena = arena_of(b, 3, off);
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 0);
    assert_int_equal(off[2], 0);
    assert_int_equal(arena, 1024);
}

/* Lifetimes are closed intervals: touching at one time is overlapping. */
static void test_place_overlap_apart(void **state) {
    (void)state;
    rt_extent b[] = {{1000, 0, 2, 0}, {1000, 2, 3, 0}};
    size_t off[2];
    size_t arena = arena_of(b, 2, off);
    assert_false(overlap(off[0], 1000, off[1], 1000));
    assert_int_equal(arena, 2048);
}

/* An exclusive buffer shares with nothing, whatever the lifetimes. */
static void test_place_exclusive(void **state) {
    (void)state;
    rt_extent b[] = {{256, 0, 1, 1}, {256, 5, 6, 0}, {128, 8, 9, 0}};
    size_t off[3];
    size_t arena = arena_of(b, 3, off);
    assert_false(overlap(off[0], 256, off[1], 256));
    assert_false(overlap(off[0], 256, off[2], 128));
    assert_int_equal(off[1], off[2]); /* the other two still share */
    assert_int_equal(arena, 512);
}

/* Offsets and the arena size are aligned whatever the sizes. */
static void test_place_alignment(void **state) {
    (void)state;
    rt_extent b[] = {{1, 0, 5, 0}, {63, 0, 5, 0}, {65, 0, 5, 0}, {100, 0, 5, 0}, {3, 6, 7, 0}};
    size_t off[5];
    size_t arena = arena_of(b, 5, off);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(off[i] % A, 0);
        assert_true(off[i] + b[i].bytes <= arena);
    }
    assert_int_equal(arena % A, 0);
    assert_int_equal(arena, 128 + 128 + 64 + 64); /* 65, 100 -> 128 each; 1, 63 -> 64 each */
}

/* Where greedy placement can reach it, the arena is the peak live size: a
 * chain of layers (each output read by the next), and a long-lived buffer
 * beside short-lived ones. */
static void test_place_peak(void **state) {
    (void)state;
    rt_extent chain[6];
    size_t off[6];
    for (int i = 0; i < 6; i++)
        chain[i] = (rt_extent){(size_t)(6 - i) * 1024, i, i + 1, 0};
    assert_int_equal(arena_of(chain, 6, off), 6 * 1024 + 5 * 1024);
    rt_extent mixed[] = {{4096, 0, 10, 0}, {1024, 1, 2, 0}, {2048, 3, 4, 0}, {512, 5, 9, 0}};
    assert_int_equal(arena_of(mixed, 4, off), 4096 + 2048);
}

/* Random lifetimes: no two buffers that are alive together (or either
 * exclusive) overlap, every buffer fits the arena, and the arena is at
 * least the peak live size and at most the sum of the aligned sizes. */
static void test_place_random(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 20, 1);
    rt_extent b[48];
    size_t off[48];
    for (int round = 0; round < 500; round++) {
        int n = 1 + (int)(slim_rng_uniform(&rng) * 47);
        size_t sum = 0;
        for (int i = 0; i < n; i++) {
            int first = (int)(slim_rng_uniform(&rng) * 30);
            b[i].bytes = 1 + (size_t)(slim_rng_uniform(&rng) * 5000);
            b[i].first = first;
            b[i].last = first + (int)(slim_rng_uniform(&rng) * 8);
            b[i].exclusive = slim_rng_uniform(&rng) < 0.1f;
            sum += (b[i].bytes + A - 1) / A * A;
        }
        size_t arena = arena_of(b, n, off);
        assert_true(arena <= sum);
        assert_int_equal(arena % A, 0);
        for (int i = 0; i < n; i++) {
            assert_int_equal(off[i] % A, 0);
            assert_true(off[i] + b[i].bytes <= arena);
            for (int j = i + 1; j < n; j++) {
                int live = !(b[i].last < b[j].first || b[j].last < b[i].first);
                if (live || b[i].exclusive || b[j].exclusive)
                    assert_false(overlap(off[i], b[i].bytes, off[j], b[j].bytes));
            }
        }
        for (int t = 0; t < 40; t++) {
            size_t live = 0;
            for (int i = 0; i < n; i++)
                if (b[i].first <= t && t <= b[i].last) live += b[i].bytes;
            assert_true(live <= arena);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_empty),         cmocka_unit_test(test_place_disjoint_share),
        cmocka_unit_test(test_place_overlap_apart), cmocka_unit_test(test_place_exclusive),
        cmocka_unit_test(test_place_alignment),     cmocka_unit_test(test_place_peak),
        cmocka_unit_test(test_place_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
