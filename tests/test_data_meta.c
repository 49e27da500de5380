/* The data settings a checkpoint records (src/train/data_meta.c): written
 * and read back unchanged (also through a file), absent keys meaning what
 * slim did before they existed, each corrupted value an error naming the
 * key and file, and augment.rule's round trip (exact numbers, so a resumed
 * run draws the same windows). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "slim/ckpt.h"
#include "slim/train.h"
#include "train/internal.h"

/* A train split of (n, c, 4, 4) with the given statistics. */
static slim_dataset *make_split(int c, const float *mean, const float *std) {
    slim_dataset *ds = NULL;
    assert_int_equal(slim_dataset_new(2, c, 4, 4, 2, &ds), SLIM_OK);
    memcpy(ds->mean, mean, (size_t)c * sizeof(float));
    memcpy(ds->std, std, (size_t)c * sizeof(float));
    return ds;
}

static slim_ckpt *recorded(void) {
    const float mean[3] = {0.1f, 0.2f, 0.30000001f}, std[3] = {0.25f, 1e-3f, 2.5f};
    slim_dataset *ds = make_split(3, mean, std);
    slim_data_options o = {.resize = SLIM_RESIZE_PAD,
                           .crop_scale = 256.0 / 224.0,
                           .val_split = 0.2,
                           .split_seed = 18446744073709551615ull,
                           .val_dir = "pics/val dir",
                           .skip_bad = 1};
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_non_null(ck);
    assert_int_equal(slim_train_store_data_meta(ck, &o, ds), SLIM_OK);
    slim_dataset_free(ds);
    return ck;
}

static void check_recorded(const slim_ckpt *ck) {
    slim_data_options o = {0};
    assert_int_equal(slim_train_data_options(ck, "r.ckpt", 3, 1, &o), SLIM_OK);
    assert_int_equal(o.resize, SLIM_RESIZE_PAD);
    assert_true(fabs(o.crop_scale - 256.0 / 224.0) < 1e-8);
    assert_true(o.val_split == 0.2);
    assert_true(o.split_seed == 18446744073709551615ull);
    assert_string_equal(o.val_dir, "pics/val dir");
    assert_int_equal(o.skip_bad, 1);
    assert_int_equal(o.have_norm, 1);
    /* %.9g reads back the very floats. */
    assert_true(o.mean[0] == 0.1f && o.mean[1] == 0.2f && o.mean[2] == 0.30000001f);
    assert_true(o.std[0] == 0.25f && o.std[1] == 1e-3f && o.std[2] == 2.5f);
}

static void test_round_trip(void **state) {
    (void)state;
    slim_ckpt *ck = recorded();
    check_recorded(ck);
    /* Through a file. */
    char *dir = tu_make_tmpdir("data_meta");
    char path[512];
    snprintf(path, sizeof path, "%s/r.ckpt", dir);
    assert_int_equal(slim_ckpt_write(ck, path), SLIM_OK);
    slim_ckpt *back = NULL;
    assert_int_equal(slim_ckpt_read(path, &back), SLIM_OK);
    check_recorded(back);
    /* Without split: the split keys are not taken. */
    slim_data_options o = {0};
    assert_int_equal(slim_train_data_options(back, "r.ckpt", 3, 0, &o), SLIM_OK);
    assert_true(o.val_split == 0 && o.val_dir == NULL && o.skip_bad == 0);
    assert_int_equal(o.resize, SLIM_RESIZE_PAD);
    slim_ckpt_free(back);
    slim_ckpt_free(ck);
    tu_rm_tree(dir);
}

/* No data.* keys: crop, crop scale untouched (0 = the default), no split,
 * and the fixed normalisation rule of the recorded data. */
static void test_absent_keys(void **state) {
    (void)state;
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_int_equal(slim_ckpt_set_meta(ck, "data", "fashion-mnist"), SLIM_OK);
    slim_data_options o = {0};
    assert_int_equal(slim_train_data_options(ck, "old.ckpt", 1, 1, &o), SLIM_OK);
    assert_int_equal(o.resize, SLIM_RESIZE_CROP);
    assert_true(o.crop_scale == 0 && o.val_split == 0 && o.val_dir == NULL);
    assert_int_equal(o.have_norm, 1);
    assert_true(fabsf(o.mean[0] - 0.2860f) < 1e-6f && fabsf(o.std[0] - 0.3530f) < 1e-6f);
    /* An image folder from before statistics were recorded: 0.5 / 0.5. */
    assert_int_equal(slim_ckpt_set_meta(ck, "data", "/nonexistent/my-pictures"), SLIM_OK);
    memset(&o, 0, sizeof o);
    assert_int_equal(slim_train_data_options(ck, "old.ckpt", 3, 1, &o), SLIM_OK);
    for (int k = 0; k < 3; k++)
        assert_true(o.mean[k] == 0.5f && o.std[k] == 0.5f);
    slim_ckpt_free(ck);
}

/* One key set to a bad value in an otherwise good checkpoint. */
static void expect_bad(const char *key, const char *value, const char *needle) {
    slim_ckpt *ck = recorded();
    assert_int_equal(slim_ckpt_set_meta(ck, key, value), SLIM_OK);
    slim_data_options o = {0};
    tu_assert_error(slim_train_data_options(ck, "run.ckpt", 3, 1, &o), SLIM_ERR_FORMAT, needle);
    char named[300];
    snprintf(named, sizeof named, "run.ckpt: setting '%s'", key);
    if (!tu_error_has(named)) fail_msg("\"%s\" does not name '%s'", slim_last_error(), named);
    slim_ckpt_free(ck);
}

static void test_corrupt_values(void **state) {
    (void)state;
    expect_bad("data.resize", "blob", "want crop, stretch, pad or none");
    expect_bad("data.resize", "", "want crop");
    expect_bad("data.crop_scale", "0.5", "from 1 to 16");
    expect_bad("data.crop_scale", "nan", "from 1 to 16");
    expect_bad("data.crop_scale", "1.2x", "from 1 to 16");
    expect_bad("data.val_split", "1.2", "between 0 and 1");
    expect_bad("data.val_split", "0", "between 0 and 1");
    expect_bad("data.val_split", "abc", "between 0 and 1");
    expect_bad("data.split_seed", "-1", "unsigned decimal");
    expect_bad("data.split_seed", "99999999999999999999999", "unsigned decimal");
    expect_bad("data.split_seed", "12 ", "unsigned decimal");
    expect_bad("data.val", "", "want a directory");
    expect_bad("data.skip_bad", "2", "want 0 or 1");
    expect_bad("data.mean", "0.1,0.2", "3 comma-separated");
    expect_bad("data.mean", "0.1,0.2,0.3,0.4", "3 comma-separated");
    expect_bad("data.mean", "0.1,,0.3", "3 comma-separated");
    expect_bad("data.mean", "0.1,inf,0.3", "3 comma-separated");
    expect_bad("data.std", "0.1,0,0.3", "positive");
    expect_bad("data.std", "0.1,-2,0.3", "positive");
    /* One of mean/std without the other. */
    slim_ckpt *ck = recorded();
    slim_ckpt *half = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_int_equal(slim_ckpt_set_meta(half, "data.std", slim_ckpt_get_meta(ck, "data.std")),
                     SLIM_OK);
    slim_data_options o = {0};
    tu_assert_error(slim_train_data_options(half, "h.ckpt", 3, 1, &o), SLIM_ERR_FORMAT,
                    "h.ckpt: setting 'data.mean' is missing");
    /* A split without its seed. */
    slim_ckpt *noseed = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_int_equal(slim_ckpt_set_meta(noseed, "data.val_split", "0.2"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(noseed, "data", "fashion-mnist"), SLIM_OK);
    tu_assert_error(slim_train_data_options(noseed, "s.ckpt", 1, 1, &o), SLIM_ERR_FORMAT,
                    "s.ckpt: setting 'data.split_seed' is missing");
    slim_ckpt_free(noseed);
    slim_ckpt_free(half);
    slim_ckpt_free(ck);
}

static void test_augment_rule(void **state) {
    (void)state;
    const float mean[1] = {0.5f}, std[1] = {0.5f};
    slim_dataset *ds = make_split(1, mean, std);
    slim_augment a, b;
    char rule[128], again[128];
    /* The default random-resized crop: shortest exact numbers. */
    assert_int_equal(slim_augment_init_rrc(&a, ds, 0, 1), SLIM_OK);
    train_augment_rule(&a, rule, sizeof rule);
    assert_string_equal(rule, "rrc scale=0.35-1 ratio=0.75-1.3333333333333333");
    assert_int_equal(train_augment_from_rule(rule, "r.ckpt", ds, 1, &b), SLIM_OK);
    assert_int_equal(b.mode, SLIM_AUGMENT_RRC);
    assert_true(b.scale_min == a.scale_min && b.scale_max == a.scale_max);
    assert_true(b.aspect_min == a.aspect_min && b.aspect_max == a.aspect_max);
    train_augment_rule(&b, again, sizeof again);
    assert_string_equal(again, rule);
    slim_augment_free(&a);
    slim_augment_free(&b);
    /* Padded crop. */
    assert_int_equal(train_augment_from_rule("pad-crop 2", "r.ckpt", ds, 0, &b), SLIM_OK);
    assert_int_equal(b.mode, SLIM_AUGMENT_PAD_CROP);
    assert_int_equal(b.pad, 2);
    train_augment_rule(&b, again, sizeof again);
    assert_string_equal(again, "pad-crop 2");
    slim_augment_free(&b);
    /* Rules that do not parse or are out of range. */
    const char *bad[] = {"",
                         "pad-crop",
                         "pad-crop -1",
                         "pad-crop 5", /* more than the 4x4 image */
                         "pad-crop 2 ",
                         "rrc scale=0-1 ratio=0.75-1.3",
                         "rrc scale=0.5-0.4 ratio=0.75-1.3",
                         "rrc scale=0.5-1.1 ratio=0.75-1.3",
                         "rrc scale=0.5-1 ratio=2-1",
                         "rrc scale=0.5-1 ratio=0.75-inf",
                         "rrc scale=0.5-1 ratio=0-1",
                         "rrc scale=0.5-1",
                         "flip"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&b, 0, sizeof b);
        tu_assert_error(train_augment_from_rule(bad[i], "r.ckpt", ds, 0, &b), SLIM_ERR_FORMAT,
                        "r.ckpt: setting 'augment.rule'");
    }
    slim_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_absent_keys),
        cmocka_unit_test(test_corrupt_values),
        cmocka_unit_test(test_augment_rule),
    };
    slim_set_log_level(SLIM_LOG_QUIET);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
