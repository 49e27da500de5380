/* The inference library (slim/infer.h): a model opened from an export or a
 * checkpoint reports its shape, class names and preprocessing as recorded;
 * a runner's logits equal the reference forward's; pictures (files and
 * decoded pixels) are preprocessed by the recorded rule, the same either
 * way; and bad files, bad pictures and bad arguments are errors naming what
 * is wrong. Files are made here under /tmp. */
#include "testutil.h"

#include "slim/autograd.h"
#include "slim/ckpt.h"
#include "slim/infer.h"
#include "slim/model_io.h"
#include "slim/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

/* 3 x 12 x 10 input (not square), 4 classes. */
static const char *MODEL_TEXT = "input shape=3x12x10\n"
                                "conv out=6 k=3 pad=1\n"
                                "bn\n"
                                "relu\n"
                                "maxpool k=2\n"
                                "conv out=8 k=3 pad=1\n"
                                "bn\n"
                                "relu\n"
                                "gap\n"
                                "dense out=4\n";
#define C 3
#define H 12
#define W 10
#define K 4

static char *tmp;
static char path_buf[4][512];

static const char *tmp_path(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tmp, name);
    return path_buf[slot];
}

/* The model of text with parameters drawn from seed. */
static slim_model *make_model(const char *text, uint64_t seed) {
    slim_model *m = NULL;
    assert_int_equal(slim_model_parse(text, "test", &m), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model_init_params(m, &rng);
    return m;
}

/* Writes m to path as kind with metadata pairs (key, value, ..., NULL). */
static void write_model(const slim_model *m, const char *path, uint32_t kind, ...) {
    slim_ckpt *ck = NULL;
    assert_int_equal(slim_model_to_ckpt(m, kind, 0, &ck), SLIM_OK);
    va_list ap;
    va_start(ap, kind);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;)
        assert_int_equal(slim_ckpt_set_meta(ck, k, va_arg(ap, const char *)), SLIM_OK);
    va_end(ap);
    assert_int_equal(slim_ckpt_write(ck, path), SLIM_OK);
    slim_ckpt_free(ck);
}

/* The recorded export most tests open. */
static const char *export_path(void) {
    static int done;
    const char *p = tmp_path(0, "model.slim");
    if (!done) {
        slim_model *m = make_model(MODEL_TEXT, 7);
        write_model(m, p, SLIM_CKPT_EXPORT, "class.0", "cat", "class.1", "dog", "class.2", "",
                    "data.mean", "0.5,0.25,0.125", "data.std", "0.2,0.4,0.5", "data.resize",
                    "stretch", NULL);
        slim_model_free(m);
        done = 1;
    }
    return p;
}

static void forward_ref(const char *path, const float *x, int n, float *logits) {
    slim_model *m = NULL;
    assert_int_equal(slim_model_load_ckpt(path, 0, &m, NULL), SLIM_OK);
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    slim_tensor *xt = slim_tape_wrap(&tape, (float *)x, NULL, 4, (int[]){n, C, H, W});
    assert_non_null(xt);
    slim_tensor *out = NULL;
    assert_int_equal(slim_model_forward(m, &tape, xt, 0, &out), SLIM_OK);
    memcpy(logits, out->data, (size_t)n * K * sizeof(float));
    slim_tape_free(&tape);
    slim_model_free(m);
}

static void test_version(void **state) {
    (void)state;
    assert_string_equal(slim_version(), SLIM_VERSION);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SLIM_VERSION_MAJOR, SLIM_VERSION_MINOR,
             SLIM_VERSION_PATCH);
    assert_string_equal(want, SLIM_VERSION);
    assert_int_equal(SLIM_VERSION_NUMBER,
                     SLIM_VERSION_MAJOR * 10000 + SLIM_VERSION_MINOR * 100 + SLIM_VERSION_PATCH);
}

static void test_open_and_ask(void **state) {
    (void)state;
    slim_infer_model *m = NULL;
    assert_int_equal(slim_infer_open(export_path(), &m), SLIM_OK);
    int c, h, w;
    slim_infer_input_shape(m, &c, &h, &w);
    assert_int_equal(c, C);
    assert_int_equal(h, H);
    assert_int_equal(w, W);
    assert_int_equal(slim_infer_class_count(m), K);
    assert_string_equal(slim_infer_class_name(m, 0), "cat");
    assert_string_equal(slim_infer_class_name(m, 1), "dog");
    assert_string_equal(slim_infer_class_name(m, 2), "2"); /* recorded empty */
    assert_string_equal(slim_infer_class_name(m, 3), "3"); /* not recorded */
    assert_null(slim_infer_class_name(m, -1));
    assert_null(slim_infer_class_name(m, K));
    const slim_preprocessing *p = slim_infer_preprocessing(m);
    assert_int_equal(p->resize, SLIM_RESIZE_STRETCH);
    assert_true(p->crop_scale == SLIM_DATA_CROP_SCALE);
    const float mean[C] = {0.5f, 0.25f, 0.125f}, std[C] = {0.2f, 0.4f, 0.5f};
    for (int k = 0; k < C; k++) {
        assert_true(p->mean[k] == mean[k]);
        assert_true(p->std[k] == std[k]);
    }
    assert_string_equal(p->how, "stored in the model");
    slim_infer_close(m);
    slim_infer_close(NULL);
}

/* A training checkpoint from before statistics were recorded: the fixed
 * rule of its data, Fashion-MNIST's for none named. */
static void test_open_checkpoint_defaults(void **state) {
    (void)state;
    slim_model *sm = make_model("input shape=1x8x8\nconv out=2 k=3\nrelu\ngap\ndense out=3\n", 3);
    const char *p = tmp_path(1, "old.ckpt");
    write_model(sm, p, SLIM_CKPT_TRAIN, NULL);
    slim_model_free(sm);
    slim_infer_model *m = NULL;
    assert_int_equal(slim_infer_open(p, &m), SLIM_OK);
    const slim_preprocessing *pre = slim_infer_preprocessing(m);
    assert_int_equal(pre->resize, SLIM_RESIZE_CROP);
    assert_true(fabsf(pre->mean[0] - 0.2860f) < 1e-6f && fabsf(pre->std[0] - 0.3530f) < 1e-6f);
    assert_non_null(strstr(pre->how, "fashion-mnist statistics"));
    assert_string_equal(slim_infer_class_name(m, 2), "2");
    slim_infer_close(m);
}

static void test_run_matches_reference(void **state) {
    (void)state;
    slim_infer_model *m = NULL;
    assert_int_equal(slim_infer_open(export_path(), &m), SLIM_OK);
    slim_infer_runner *r = NULL;
    assert_int_equal(slim_infer_runner_create(m, 3, 1, &r), SLIM_OK);
    /* The runner keeps what it needs: the model may go first. */
    slim_infer_close(m);
    slim_rng rng;
    slim_rng_seed(&rng, 11, 1);
    float x[3 * C * H * W], got[3 * K], want[3 * K];
    tu_fill_uniform(&rng, x, 3 * C * H * W, -2.0f, 2.0f);
    forward_ref(export_path(), x, 3, want);
    for (int n = 1; n <= 3; n++) {
        memset(got, 0, sizeof got);
        assert_int_equal(slim_infer_run(r, x, n, got), SLIM_OK);
        double tol = 1e-4 * fmax(1.0, tu_max_abs(want, (size_t)n * K));
        if (!(tu_max_abs_diff(got, want, (size_t)n * K) <= tol))
            fail_msg("batch %d: max |Δ| %g > %g", n, tu_max_abs_diff(got, want, (size_t)n * K),
                     tol);
    }
    assert_int_equal(slim_infer_argmax((const float[]){1, 3, 3, 2}, 4), 1);
    assert_int_equal(slim_infer_argmax(want, K), slim_infer_argmax(got, K));
    tu_assert_error(slim_infer_run(r, x, 4, got), SLIM_ERR_ARG, "the runner takes 1 to 3");
    tu_assert_error(slim_infer_run(r, x, 0, got), SLIM_ERR_ARG, "the runner takes 1 to 3");
    tu_assert_error(slim_infer_run(r, NULL, 1, got), SLIM_ERR_ARG, "no input or output");
    slim_infer_runner_free(r);
    slim_infer_runner_free(NULL);
}

/* px: (h, w, comp) bytes, a pattern that fills the range. */
static void pattern(uint8_t *px, int h, int w, int comp, int seed) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < comp; k++)
                px[(y * w + x) * comp + k] = (uint8_t)((y * 37 + x * 11 + k * 71 + seed) & 255);
}

static void test_pictures(void **state) {
    (void)state;
    slim_infer_model *m = NULL;
    assert_int_equal(slim_infer_open(export_path(), &m), SLIM_OK);
    const slim_preprocessing *pre = slim_infer_preprocessing(m);
    /* At the input size (stretch maps it onto itself): the formula exactly. */
    uint8_t px[H * W * 3];
    pattern(px, H, W, 3, 5);
    float x[C * H * W], y[C * H * W];
    assert_int_equal(slim_infer_load_pixels(m, px, H, W, 3, x), SLIM_OK);
    for (int k = 0; k < C; k++)
        for (int i = 0; i < H * W; i++) {
            float want = (float)(((double)px[i * 3 + k] / 255.0 - pre->mean[k]) / pre->std[k]);
            if (x[k * H * W + i] != want)
                fail_msg("channel %d pixel %d: %g, want %g", k, i, x[k * H * W + i], want);
        }
    /* Gray replicates into the model's three channels. */
    uint8_t gray[H * W], rgb[H * W * 3];
    pattern(gray, H, W, 1, 9);
    for (int i = 0; i < H * W; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
    assert_int_equal(slim_infer_load_pixels(m, gray, H, W, 1, x), SLIM_OK);
    assert_int_equal(slim_infer_load_pixels(m, rgb, H, W, 3, y), SLIM_OK);
    assert_memory_equal(x, y, sizeof x);
    /* A file and its decoded pixels give the same input and logits, at the
     * input size and at another (resized). */
    static const int sizes[2][2] = {{H, W}, {31, 17}};
    slim_infer_runner *r = NULL;
    assert_int_equal(slim_infer_runner_create(m, 1, 2, &r), SLIM_OK);
    for (int s = 0; s < 2; s++) {
        int sh = sizes[s][0], sw = sizes[s][1];
        uint8_t *big = malloc((size_t)sh * sw * 3);
        assert_non_null(big);
        pattern(big, sh, sw, 3, s);
        const char *p = tmp_path(2, "pic.png");
        assert_true(stbi_write_png(p, sw, sh, 3, big, sw * 3) != 0);
        assert_int_equal(slim_infer_load_image(m, p, x), SLIM_OK);
        assert_int_equal(slim_infer_load_pixels(m, big, sh, sw, 3, y), SLIM_OK);
        assert_memory_equal(x, y, sizeof x);
        float a[K], b[K], c[K];
        assert_int_equal(slim_infer_run_image(r, p, a), SLIM_OK);
        assert_int_equal(slim_infer_run_pixels(r, big, sh, sw, 3, b), SLIM_OK);
        assert_int_equal(slim_infer_run(r, x, 1, c), SLIM_OK);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(a, c, sizeof a);
        free(big);
    }
    slim_infer_runner_free(r);
    slim_infer_close(m);
}

static void test_bad_inputs(void **state) {
    (void)state;
    slim_infer_model *m = NULL;
    const char *missing = tmp_path(1, "missing.slim");
    tu_assert_error(slim_infer_open(missing, &m), SLIM_ERR_IO, "missing.slim");
    assert_null(m);
    tu_assert_error(slim_infer_open(NULL, &m), SLIM_ERR_ARG, "no path");
    /* A model text, not a container. */
    const char *text = tmp_path(2, "model.net");
    FILE *f = fopen(text, "w");
    assert_non_null(f);
    fputs(MODEL_TEXT, f);
    fclose(f);
    tu_assert_error(slim_infer_open(text, &m), SLIM_ERR_FORMAT, "model.net");
    /* Truncated and empty exports. */
    FILE *in = fopen(export_path(), "rb");
    assert_non_null(in);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(len > 64 && len < sizeof buf);
    const char *cut = tmp_path(3, "cut.slim");
    for (size_t keep = 0; keep < len; keep += len / 3 + 1) {
        f = fopen(cut, "wb");
        assert_non_null(f);
        if (keep) assert_int_equal(fwrite(buf, 1, keep, f), keep);
        fclose(f);
        tu_assert_error(slim_infer_open(cut, &m), SLIM_ERR_FORMAT, "cut.slim");
        assert_null(m);
    }
    /* A recorded setting that does not parse. */
    slim_model *sm = make_model(MODEL_TEXT, 1);
    const char *badmeta = tmp_path(3, "badmeta.slim");
    write_model(sm, badmeta, SLIM_CKPT_EXPORT, "data.mean", "0.5,x,0.5", "data.std", "1,1,1", NULL);
    slim_model_free(sm);
    tu_assert_error(slim_infer_open(badmeta, &m), SLIM_ERR_FORMAT, "data.mean");
    assert_true(tu_error_has("badmeta.slim"));

    assert_int_equal(slim_infer_open(export_path(), &m), SLIM_OK);
    slim_infer_runner *r = NULL;
    tu_assert_error(slim_infer_runner_create(m, 0, 1, &r), SLIM_ERR_ARG, "largest batch");
    tu_assert_error(slim_infer_runner_create(m, 1, -1, &r), SLIM_ERR_ARG, "thread count");
    assert_null(r);
    float x[C * H * W], logits[K];
    uint8_t px[4 * 4 * 4] = {0};
    tu_assert_error(slim_infer_load_pixels(m, px, 4, 4, 2, x), SLIM_ERR_ARG, "pixels (4x4x2)");
    tu_assert_error(slim_infer_load_pixels(m, px, 0, 4, 3, x), SLIM_ERR_ARG, "pixels (0x4x3)");
    tu_assert_error(slim_infer_load_pixels(m, NULL, 4, 4, 3, x), SLIM_ERR_ARG, "1 (gray) or 3");
    tu_assert_error(slim_infer_load_pixels(m, px, 1 << 14, 1 << 13, 3, x), SLIM_ERR_ARG,
                    "more than");
    assert_int_equal(slim_infer_runner_create(m, 1, 1, &r), SLIM_OK);
    tu_assert_error(slim_infer_run_image(r, missing, logits), SLIM_ERR_IO, "missing.slim");
    tu_assert_error(slim_infer_run_image(r, text, logits), SLIM_ERR_FORMAT, "model.net");
    tu_assert_error(slim_infer_run_image(r, NULL, logits), SLIM_ERR_ARG, "no picture path");
    slim_infer_runner_free(r);
    slim_infer_close(m);
}

/* A model of more input channels than a picture has: tensors only. */
static void test_many_channels(void **state) {
    (void)state;
    slim_model *sm = make_model("input shape=6x4x4\nconv out=2 k=3\nrelu\ngap\ndense out=2\n", 5);
    const char *p = tmp_path(1, "six.slim");
    write_model(sm, p, SLIM_CKPT_EXPORT, NULL);
    slim_model_free(sm);
    slim_infer_model *m = NULL;
    assert_int_equal(slim_infer_open(p, &m), SLIM_OK);
    assert_non_null(strstr(slim_infer_preprocessing(m)->how, "6 input channels"));
    float x[6 * 4 * 4] = {0}, logits[2];
    uint8_t px[4 * 4 * 3] = {0};
    tu_assert_error(slim_infer_load_pixels(m, px, 4, 4, 3, x), SLIM_ERR_ARG, "shape 6x4x4");
    slim_infer_runner *r = NULL;
    assert_int_equal(slim_infer_runner_create(m, 1, 1, &r), SLIM_OK);
    assert_int_equal(slim_infer_run(r, x, 1, logits), SLIM_OK);
    slim_infer_runner_free(r);
    slim_infer_close(m);
}

static int setup(void **state) {
    (void)state;
    tmp = tu_make_tmpdir("infer");
    return tmp ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tu_rm_tree(tmp);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_open_and_ask),
        cmocka_unit_test(test_open_checkpoint_defaults),
        cmocka_unit_test(test_run_matches_reference),
        cmocka_unit_test(test_pictures),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_many_channels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
