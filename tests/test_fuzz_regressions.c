/* Replays saved inputs through the fuzz targets' own code, in the normal
 * test suite (and so under ASan + UBSan in the sanitizer pass):
 *   - tests/fuzz/regressions/<target>/ (every file): inputs that once crashed or broke an
 *     invariant; each must now give a clean error (or a valid result), never
 *     a crash, a sanitizer report or an abort from the target's checks;
 *   - tests/fuzz/corpus/<target>/ (every file): the seed corpora, which are valid files
 *     of each format made by slim's own code (tools/fuzz --make-corpus). They
 *     must load successfully, which proves that the targets still reach past
 *     the first checks of each parser (a format change that breaks the seeds
 *     fails here rather than silently making the fuzzing shallow).
 * Each tests/fuzz/fuzz_<target>.c is compiled in with its libFuzzer entry
 * point renamed through SLIM_FUZZ_ENTRY; their helpers have distinct
 * prefixes so that the five files live in one program. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#define SLIM_FUZZ_ENTRY fuzz_model_entry
#include "fuzz/fuzz_model.c"
#undef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY fuzz_ckpt_entry
#include "fuzz/fuzz_ckpt.c"
#undef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY fuzz_idx_entry
#include "fuzz/fuzz_idx.c"
#undef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY fuzz_cifar_entry
#include "fuzz/fuzz_cifar.c"
#undef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY fuzz_image_entry
#include "fuzz/fuzz_image.c"
#undef SLIM_FUZZ_ENTRY

#define REPLAY_MAX_INPUT (1u << 20)

typedef int (*entry_fn)(const uint8_t *data, size_t size);
/* The status of the parse an input stands for (SLIM_OK: a valid file). */
typedef slim_status (*check_fn)(const uint8_t *data, size_t size);

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    assert_non_null(buf);
    *len = fread(buf, 1, REPLAY_MAX_INPUT, f);
    assert_false(ferror(f));
    assert_int_equal(fgetc(f), EOF); /* saved inputs are small */
    fclose(f);
    return buf;
}

/* Feeds every file of tests/fuzz/<kind>/<target>/ (sorted, hidden files
 * skipped) to entry, then, when check is given, asserts that each one is
 * valid. Returns the number of files; a missing directory counts 0. */
static int replay(const char *kind, const char *target, entry_fn entry, check_fn check) {
    char rel[256], dir[4096], path[8192];
    snprintf(rel, sizeof rel, "tests/fuzz/%s/%s", kind, target);
    tu_source_path(rel, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        assert_true(n < 256);
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        uint8_t *buf = read_all(path, &len);
        /* Exactly the bytes, in a buffer of exactly that size, as libFuzzer
         * passes them (so ASan sees any read past the end). */
        uint8_t *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, buf, len);
        free(buf);
        print_message("%s/%s/%s (%zu bytes)\n", kind, target, names[i], len);
        assert_int_equal(entry(exact, len), 0);
        if (check) {
            slim_status st = check(exact, len);
            if (st != SLIM_OK) print_message("  not valid: %s\n", slim_last_error());
            assert_int_equal(st, SLIM_OK);
        }
        free(exact);
        free(names[i]);
    }
    return n;
}

/* The image target returns nothing: a valid seed is one that loads as a
 * one-class image folder with every shape inferred. */
static slim_status image_check(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    char root[512];
    im_path(root, sizeof root, "root"); /* holds the input fuzz_image_entry just wrote */
    slim_dataset *ds = NULL;
    slim_status st = slim_data_load_imagefolder(root, NULL, 0, NULL, &ds);
    slim_dataset_free(ds);
    return st;
}

static void test_model(void **state) {
    (void)state;
    replay("regressions", "model", fuzz_model_entry, NULL);
    assert_true(replay("corpus", "model", fuzz_model_entry, mt_run) >= 3);
}

static void test_ckpt(void **state) {
    (void)state;
    replay("regressions", "ckpt", fuzz_ckpt_entry, NULL);
    assert_true(replay("corpus", "ckpt", fuzz_ckpt_entry, ck_run) >= 3);
}

static void test_idx(void **state) {
    (void)state;
    replay("regressions", "idx", fuzz_idx_entry, NULL);
    assert_true(replay("corpus", "idx", fuzz_idx_entry, ix_run) >= 3);
}

static void test_cifar(void **state) {
    (void)state;
    replay("regressions", "cifar", fuzz_cifar_entry, NULL);
    assert_true(replay("corpus", "cifar", fuzz_cifar_entry, cf_run) >= 3);
}

static void test_image(void **state) {
    (void)state;
    replay("regressions", "image", fuzz_image_entry, NULL);
    assert_true(replay("corpus", "image", fuzz_image_entry, image_check) >= 4);
}

/* The harnesses' own checks must fire: a model text that is valid must
 * round-trip, a corrupt checkpoint must be refused with a message, and the
 * CRC fix-up must let a mutated checkpoint reach the deeper checks. */
static void test_harness_sanity(void **state) {
    (void)state;
    const char *bad = "input shape=1x4x4\nconv out=0 k=1\n";
    assert_int_not_equal(mt_run((const uint8_t *)bad, strlen(bad)), SLIM_OK);
    assert_non_null(strstr(slim_last_error(), "fuzz.net:2"));

    char path[4096];
    size_t len = 0;
    uint8_t *ck =
        read_all(tu_source_path("tests/fuzz/corpus/ckpt/train.ckpt", path, sizeof path), &len);
    assert_true(len > 200);
    assert_int_equal(ck_run(ck, len), SLIM_OK);
    ck[len / 2] ^= 0x40; /* a flipped bit: the CRC no longer fits */
    assert_int_equal(ck_run(ck, len), SLIM_ERR_FORMAT);
    assert_non_null(strstr(slim_last_error(), "checksum"));
    free(ck);

    /* The known stb_image bug's detector (used only with
     * SLIM_FUZZ_SKIP_KNOWN) recognises the saved reproducer and not a seed. */
    static const uint8_t dht[] = {0xFF, 0xD8, 0xFF, 0xC4, 0xA2, 0x01, 0x00, 0x08, 0xFF};
    static const uint8_t filled[] = {0xFF, 0xFF, 0xFF, 0xD8, 0xFF, 0xC4,
                                     0x00, 0x40, 0x00, 0xFF, 0x02};
    assert_true(im_jpeg_dht_overflows(dht, sizeof dht));
    assert_true(im_jpeg_dht_overflows(filled, sizeof filled)); /* fill bytes before SOI */
    uint8_t *jpg =
        read_all(tu_source_path("tests/fuzz/corpus/image/rgb-8x8.jpg", path, sizeof path), &len);
    assert_false(im_jpeg_dht_overflows(jpg, len));
    free(jpg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model), cmocka_unit_test(test_ckpt),
        cmocka_unit_test(test_idx),   cmocka_unit_test(test_cifar),
        cmocka_unit_test(test_image), cmocka_unit_test(test_harness_sanity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
