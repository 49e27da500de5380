/* The data layer: IDX (gz or plain), CIFAR-10 binary and image-folder
 * loaders on tiny files made here under /tmp, their error paths,
 * augmentation, batching, and (when installed) the real Fashion-MNIST.
 *
 * The test binary interposes malloc and friends to record the largest single
 * allocation (a loader must not allocate what a header merely declares) and
 * to count allocations in the per-step path (batcher + augmentation must not
 * allocate). Under AddressSanitizer, which owns malloc, those two checks are
 * skipped. */
#include "testutil.h"

#include "slim/data.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h> /* after stdio.h; test images are encoded with libjpeg */

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "malloc_count.h"
#define TRACK_MALLOC TU_COUNT_MALLOC

#if TRACK_MALLOC
static void track_start(void) {
    tu_allocs = 0;
    tu_largest_alloc = 0;
    tu_counting = 1;
}
static void track_stop(void) { tu_counting = 0; }
#endif

/* ---- temporary files ---------------------------------------------------- */

#define make_tmpdir tu_make_tmpdir
#define rm_tree tu_rm_tree

static void join(char *buf, size_t len, const char *dir, const char *name) {
    int k = snprintf(buf, len, "%s/%s", dir, name);
    assert_true(k > 0 && (size_t)k < len);
}

static void mkdir_in(char *buf, size_t len, const char *dir, const char *name) {
    join(buf, len, dir, name);
    assert_int_equal(mkdir(buf, 0700), 0);
}

/* Writes bytes to path, gzip-compressed when gz. */
static void write_bytes(const char *path, int gz, const void *data, size_t len) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (len) assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        if (len) assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
    }
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

#define has tu_error_has
#define assert_error tu_assert_error

/* ---- IDX ---------------------------------------------------------------- */

/* An IDX image file: magic, declared count, rows, cols, then `len` pixel
 * bytes and `extra` trailing bytes. */
static void write_idx_images(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t rows,
                             uint32_t cols, const unsigned char *pix, size_t len, size_t extra) {
    size_t total = 16 + len + extra;
    unsigned char *buf = calloc(total, 1);
    assert_non_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    if (len) memcpy(buf + 16, pix, len);
    for (size_t i = 0; i < extra; i++)
        buf[16 + len + i] = 0xab;
    write_bytes(path, gz, buf, total);
    free(buf);
}

static void write_idx_labels(const char *path, int gz, uint32_t magic, uint32_t n,
                             const unsigned char *lab, size_t len) {
    unsigned char *buf = calloc(8 + len, 1);
    assert_non_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    if (len) memcpy(buf + 8, lab, len);
    write_bytes(path, gz, buf, 8 + len);
    free(buf);
}

static float norm(unsigned p, float mean, float std) {
    return (float)(((double)p / 255.0 - (double)mean) / (double)std);
}

/* Every image of ds as a batch gets it (slim_dataset_read), in a new
 * buffer; a loaded data set must hold bytes, not floats. */
static float *read_all(const slim_dataset *ds) {
    assert_non_null(ds->pixels);
    assert_null(ds->images);
    size_t count = ds->n * (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    float *x = malloc((count ? count : 1) * sizeof *x);
    assert_non_null(x);
    assert_int_equal(slim_dataset_read(ds, 0, ds->n, x), SLIM_OK);
    return x;
}

/* 3 images of 2x4; pixel values cover 0, 255 and between. */
enum { T_N = 3, T_H = 2, T_W = 4 };
static const unsigned char t_pix[T_N * T_H * T_W] = {
    0, 255, 1, 128, 7, 9, 200, 254, 10, 20, 30, 40, 50, 60, 70, 80, 255, 0, 255, 0, 3, 33, 99, 199};
static const unsigned char t_lab[T_N] = {0, 9, 3};

static void test_idx_roundtrip(void **state) {
    (void)state;
    char *dir = make_tmpdir("idx");
    char img[512], lab[512];
    for (int gz = 0; gz < 2; gz++) {
        join(img, sizeof img, dir, gz ? "i.gz" : "i");
        join(lab, sizeof lab, dir, gz ? "l.gz" : "l");
        write_idx_images(img, gz, 0x803, T_N, T_H, T_W, t_pix, sizeof t_pix, 0);
        write_idx_labels(lab, gz, 0x801, T_N, t_lab, sizeof t_lab);
        slim_dataset *ds = NULL;
        assert_int_equal(slim_data_load_idx(img, lab, 0.25f, 0.5f, &ds), SLIM_OK);
        assert_int_equal(ds->n, T_N);
        assert_int_equal(ds->c, 1);
        assert_int_equal(ds->h, T_H);
        assert_int_equal(ds->w, T_W);
        assert_int_equal(ds->n_classes, 10);
        assert_string_equal(ds->kind, "idx");
        assert_true(ds->mean[0] == 0.25f && ds->std[0] == 0.5f);
        for (int i = 0; i < T_N; i++)
            assert_int_equal(ds->labels[i], t_lab[i]);
        /* Row-major: image i, row y, column x is byte i*8 + y*4 + x. */
        assert_memory_equal(ds->pixels, t_pix, sizeof t_pix);
        float *xs = read_all(ds);
        for (size_t i = 0; i < sizeof t_pix; i++)
            if (xs[i] != norm(t_pix[i], 0.25f, 0.5f))
                fail_msg("gz=%d pixel %zu: %g != %g", gz, i, (double)xs[i],
                         (double)norm(t_pix[i], 0.25f, 0.5f));
        assert_true(xs[0] == -0.5f && xs[1] == 1.5f);
        free(xs);
        slim_dataset_free(ds);
    }
    rm_tree(dir);
}

static void test_idx_malformed(void **state) {
    (void)state;
    char *dir = make_tmpdir("idxbad");
    char img[512], lab[512], lab2[512];
    join(img, sizeof img, dir, "img.gz");
    join(lab, sizeof lab, dir, "lab.gz");
    join(lab2, sizeof lab2, dir, "lab2.gz");
    write_idx_labels(lab, 1, 0x801, T_N, t_lab, sizeof t_lab);
    slim_dataset *ds = NULL;

    /* A label file given as the image file: wrong magic. */
    assert_error(slim_data_load_idx(lab, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "magic");
    assert_true(has(lab));
    write_idx_images(img, 1, 0x804, T_N, T_H, T_W, t_pix, sizeof t_pix, 0);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "0x00000804");
    assert_null(ds);

    /* One pixel byte short; then a header cut in the middle. */
    write_idx_images(img, 1, 0x803, T_N, T_H, T_W, t_pix, sizeof t_pix - 1, 0);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "truncated");
    assert_true(has("img.gz"));
    unsigned char hdr[10] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0};
    write_bytes(img, 1, hdr, sizeof hdr);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "header");

    /* Trailing bytes after the declared data, in either file. */
    write_idx_images(img, 1, 0x803, T_N, T_H, T_W, t_pix, sizeof t_pix, 1);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "unexpected data");
    write_idx_images(img, 1, 0x803, T_N, T_H, T_W, t_pix, sizeof t_pix, 0);
    unsigned char lab_extra[4] = {1, 2, 3, 4};
    write_idx_labels(lab2, 1, 0x801, T_N, lab_extra, sizeof lab_extra);
    assert_error(slim_data_load_idx(img, lab2, 0, 1, &ds), SLIM_ERR_FORMAT, "lab2.gz");

    /* Counts that disagree. */
    write_idx_labels(lab2, 1, 0x801, T_N - 1, t_lab, T_N - 1);
    assert_error(slim_data_load_idx(img, lab2, 0, 1, &ds), SLIM_ERR_FORMAT, "declares 3 images");
    assert_true(has("2 labels"));

    /* A label outside 0..9. */
    unsigned char bad_lab[T_N] = {0, 10, 1};
    write_idx_labels(lab2, 1, 0x801, T_N, bad_lab, T_N);
    assert_error(slim_data_load_idx(img, lab2, 0, 1, &ds), SLIM_ERR_FORMAT, "label 10 of image 1");

    /* Zero images, zero-sized images, a corrupt gzip stream, a missing file. */
    write_idx_images(img, 1, 0x803, 0, T_H, T_W, NULL, 0, 0);
    write_idx_labels(lab2, 1, 0x801, 0, NULL, 0);
    assert_error(slim_data_load_idx(img, lab2, 0, 1, &ds), SLIM_ERR_FORMAT, "no labels");
    write_idx_images(img, 1, 0x803, T_N, 0, T_W, NULL, 0, 0);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "image size 0x4");
    unsigned char junk[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff};
    write_bytes(img, 0, junk, sizeof junk);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "img.gz");
    join(img, sizeof img, dir, "nonexistent.gz");
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_IO, "nonexistent.gz");
    assert_null(ds);
    rm_tree(dir);
}

/* A tiny file that declares 9,999,999 images of 28x28 (7.8 GB) must fail on
 * its missing bytes, quickly and without allocating for the declaration;
 * more than SLIM_DATA_MAX_IMAGES is refused outright. */
static void test_idx_huge_declared_count(void **state) {
    (void)state;
    char *dir = make_tmpdir("idxhuge");
    char img[512], lab[512];
    join(img, sizeof img, dir, "img.gz");
    join(lab, sizeof lab, dir, "lab.gz");
    const uint32_t n = SLIM_DATA_MAX_IMAGES - 1;
    unsigned char *labels = calloc(n, 1);
    assert_non_null(labels);
    write_idx_labels(lab, 1, 0x801, n, labels, n); /* ~10 KB compressed */
    free(labels);
    write_idx_images(img, 1, 0x803, n, 28, 28, t_pix, sizeof t_pix, 0);
    slim_dataset *ds = NULL;
    clock_t t0 = clock();
#if TRACK_MALLOC
    track_start();
#endif
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "truncated");
#if TRACK_MALLOC
    track_stop();
    /* The labels legitimately need n bytes; the pixels' 7.8 GB must never be
     * asked for. */
    if (tu_largest_alloc > (size_t)64 << 20)
        fail_msg("largest allocation %zu bytes for a %u-byte file", (size_t)tu_largest_alloc,
                 (unsigned)sizeof t_pix);
#endif
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 10.0);
    assert_true(has("9999999 images of 28x28"));

    write_idx_images(img, 1, 0x803, 0xffffffffu, 28, 28, t_pix, sizeof t_pix, 0);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "more than");
    write_idx_labels(lab, 1, 0x801, 0xffffffffu, t_lab, sizeof t_lab);
    assert_error(slim_data_load_idx(img, lab, 0, 1, &ds), SLIM_ERR_FORMAT, "more than");
    rm_tree(dir);
}

/* A directory of standard IDX names through slim_data_load: statistics and
 * class names by folder name, limit, shape check, missing split. */
static void test_idx_directory(void **state) {
    (void)state;
    for (int fashion = 0; fashion < 2; fashion++) {
        char *dir = make_tmpdir(fashion ? "Fashion" : "digits");
        char img[512], lab[512];
        join(img, sizeof img, dir, "train-images-idx3-ubyte.gz");
        join(lab, sizeof lab, dir, "train-labels-idx1-ubyte.gz");
        write_idx_images(img, 1, 0x803, T_N, T_H, T_W, t_pix, sizeof t_pix, 0);
        write_idx_labels(lab, 1, 0x801, T_N, t_lab, sizeof t_lab);
        /* The test split uncompressed. */
        join(img, sizeof img, dir, "t10k-images-idx3-ubyte");
        join(lab, sizeof lab, dir, "t10k-labels-idx1-ubyte");
        write_idx_images(img, 0, 0x803, 1, T_H, T_W, t_pix, T_H * T_W, 0);
        write_idx_labels(lab, 0, 0x801, 1, t_lab + 1, 1);

        float mean = fashion ? 0.2860f : 0.1307f, std = fashion ? 0.3530f : 0.3081f;
        slim_dataset *ds = NULL;
        assert_int_equal(slim_data_load(dir, 1, NULL, &ds), SLIM_OK);
        assert_int_equal(ds->n, T_N);
        assert_true(ds->mean[0] == mean && ds->std[0] == std);
        float *xs = read_all(ds);
        assert_true(xs[1] == norm(255, mean, std));
        free(xs);
        assert_non_null(ds->class_names);
        assert_string_equal(ds->class_names[9], fashion ? "Ankle boot" : "9");
        assert_string_equal(ds->class_names[0], fashion ? "T-shirt/top" : "0");
        assert_string_equal(ds->source, dir);
        slim_dataset_free(ds);

        slim_data_options opts = {.c = 1, .h = T_H, .w = T_W, .limit = 2};
        assert_int_equal(slim_data_load(dir, 1, &opts, &ds), SLIM_OK);
        assert_int_equal(ds->n, 2);
        assert_int_equal(ds->labels[1], 9);
        xs = read_all(ds);
        assert_true(xs[8 + 7] == norm(t_pix[15], mean, std));
        free(xs);
        slim_dataset_free(ds);

        assert_int_equal(slim_data_load(dir, 0, NULL, &ds), SLIM_OK);
        assert_int_equal(ds->n, 1);
        assert_int_equal(ds->labels[0], 9);
        slim_dataset_free(ds);

        opts = (slim_data_options){.c = 3, .h = 32, .w = 32};
        assert_error(slim_data_load(dir, 1, &opts, &ds), SLIM_ERR_SHAPE, "1x2x4");
        assert_true(has("3x32x32"));

        assert_int_equal(remove(img), 0);
        assert_error(slim_data_load(dir, 0, NULL, &ds), SLIM_ERR_IO, "t10k-images-idx3-ubyte");
        rm_tree(dir);
    }
    slim_dataset *ds = NULL;
    assert_error(slim_data_load("/nonexistent/slim-data", 1, NULL, &ds), SLIM_ERR_IO,
                 "/nonexistent/slim-data");
}

/* ---- CIFAR-10 ----------------------------------------------------------- */

enum { CIFAR_REC = 3073, CIFAR_PLANE = 1024 };

static unsigned char cifar_px(int rec, int ch, int p) {
    return (unsigned char)((rec * 101 + ch * 37 + p * 7) & 0xff);
}

static void make_cifar_records(unsigned char *buf, int n, const unsigned char *labels) {
    for (int r = 0; r < n; r++) {
        buf[(size_t)r * CIFAR_REC] = labels[r];
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < CIFAR_PLANE; p++)
                buf[(size_t)r * CIFAR_REC + 1 + ch * CIFAR_PLANE + p] = cifar_px(r, ch, p);
    }
}

static void test_cifar10(void **state) {
    (void)state;
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f};
    char *dir = make_tmpdir("cifar");
    char path[512];
    unsigned char *buf = malloc(2 * CIFAR_REC);
    assert_non_null(buf);
    const unsigned char labels[2] = {7, 2};
    make_cifar_records(buf, 2, labels);
    join(path, sizeof path, dir, "test_batch.bin");
    write_bytes(path, 0, buf, 2 * CIFAR_REC);

    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load(dir, 0, NULL, &ds), SLIM_OK);
    assert_string_equal(ds->kind, "cifar10");
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->h, 32);
    assert_int_equal(ds->w, 32);
    assert_int_equal(ds->labels[0], 7);
    assert_int_equal(ds->labels[1], 2);
    assert_string_equal(ds->class_names[0], "airplane");
    assert_string_equal(ds->class_names[9], "truck");
    float *xs = read_all(ds);
    for (int r = 0; r < 2; r++)
        for (int ch = 0; ch < 3; ch++) {
            assert_true(ds->mean[ch] == mean[ch] && ds->std[ch] == std[ch]);
            for (int p = 0; p < CIFAR_PLANE; p++) {
                size_t at = ((size_t)r * 3 + ch) * CIFAR_PLANE + (size_t)p;
                float want = norm(cifar_px(r, ch, p), mean[ch], std[ch]);
                assert_int_equal(ds->pixels[at], cifar_px(r, ch, p));
                if (xs[at] != want)
                    fail_msg("record %d ch %d p %d: %g != %g", r, ch, p, xs[at], want);
            }
        }
    free(xs);
    slim_dataset_free(ds);

    /* Names from batches.meta.txt, a limit, the shape check. */
    join(path, sizeof path, dir, "batches.meta.txt");
    const char *meta = "c0\nc1\r\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n";
    write_bytes(path, 0, meta, strlen(meta));
    slim_data_options opts = {.c = 3, .h = 32, .w = 32, .limit = 1};
    assert_int_equal(slim_data_load(dir, 0, &opts, &ds), SLIM_OK);
    assert_int_equal(ds->n, 1);
    assert_string_equal(ds->class_names[1], "c1");
    assert_string_equal(ds->class_names[9], "c9");
    slim_dataset_free(ds);
    write_bytes(path, 0, "a\nb\n", 4);
    assert_error(slim_data_load(dir, 0, NULL, &ds), SLIM_ERR_FORMAT, "2 class names");
    assert_int_equal(remove(path), 0);
    opts = (slim_data_options){.c = 1, .h = 28, .w = 28};
    assert_error(slim_data_load(dir, 0, &opts, &ds), SLIM_ERR_SHAPE, "3x32x32");

    /* The train split needs all five batches. */
    join(path, sizeof path, dir, "data_batch_1.bin");
    write_bytes(path, 0, buf, CIFAR_REC);
    assert_error(slim_data_load(dir, 1, NULL, &ds), SLIM_ERR_IO, "data_batch_2.bin");
    for (int i = 2; i <= 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        join(path, sizeof path, dir, name);
        write_bytes(path, 0, buf + (i % 2) * CIFAR_REC, CIFAR_REC);
    }
    assert_int_equal(slim_data_load(dir, 1, NULL, &ds), SLIM_OK);
    assert_int_equal(ds->n, 5);
    const int want_labels[5] = {7, 7, 2, 7, 2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(ds->labels[i], want_labels[i]);
    slim_dataset_free(ds);

    /* Truncated, and an out-of-range label. */
    join(path, sizeof path, dir, "test_batch.bin");
    write_bytes(path, 0, buf, 2 * CIFAR_REC - 5);
    assert_error(slim_data_load(dir, 0, NULL, &ds), SLIM_ERR_FORMAT, "test_batch.bin");
    assert_true(has("6141 bytes"));
    buf[CIFAR_REC] = 10;
    write_bytes(path, 0, buf, 2 * CIFAR_REC);
    assert_error(slim_data_load(dir, 0, NULL, &ds), SLIM_ERR_FORMAT, "record 1 has label 10");
    assert_null(ds);
    free(buf);
    rm_tree(dir);
}

/* ---- image folders ------------------------------------------------------ */

enum { I_H = 3, I_W = 4 };

/* Pixel (y, x, ch) of test image `id`, interleaved as stb writes it. */
static unsigned char img_px(int id, int y, int x, int ch) {
    return (unsigned char)((id * 53 + y * 29 + x * 11 + ch * 71) & 0xff);
}

static void write_png(const char *path, int id, int comp, int h, int w) {
    unsigned char *px = malloc((size_t)h * w * comp);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < comp; ch++)
                px[(y * w + x) * comp + ch] = img_px(id, y, x, ch);
    assert_true(stbi_write_png(path, w, h, comp, px, w * comp) != 0);
    free(px);
}

static void png_in(const char *dir, const char *cls, const char *name, int id, int comp) {
    char d[512], p[512];
    join(d, sizeof d, dir, cls);
    mkdir(d, 0700); /* may exist */
    join(p, sizeof p, d, name);
    write_png(p, id, comp, I_H, I_W);
}

/* Checks image k of ds against test image id written with `comp` channels,
 * read back as ds->c channels (gray replicated into RGB; alpha dropped) and
 * normalised with ds's statistics. */
static void check_image(const slim_dataset *ds, size_t k, int id, int comp) {
    float *xs = read_all(ds);
    for (int ch = 0; ch < ds->c; ch++)
        for (int y = 0; y < I_H; y++)
            for (int x = 0; x < I_W; x++) {
                int src = comp <= 2 ? 0 : ch;
                float want = norm(img_px(id, y, x, src), ds->mean[ch], ds->std[ch]);
                float got = xs[((k * ds->c + ch) * I_H + y) * I_W + x];
                if (got != want)
                    fail_msg("image %zu ch %d (%d,%d): %g != %g", k, ch, y, x, got, want);
            }
    free(xs);
}

/* A hand-made baseline 8x8 gray JPEG (quantiser 1, one-symbol Huffman
 * tables) whose only coefficient is DC = 8 * (200 - 128), i.e. every pixel
 * 200: an absolute check of a decoder that owes nothing to an encoder. */
enum { GRAY200_LEN = 142 };
static void gray200_jpeg(unsigned char jpg[GRAY200_LEN]) {
    unsigned char *q = jpg;
    static const unsigned char sof[] = {0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0};
    static const unsigned char sos[] = {0xff, 0xda, 0, 8, 1, 1, 0, 0, 0x3f, 0};
    static const unsigned char scan[] = {0x48, 0x0f, 0xff, 0xd9}; /* 0 1001000000 0 1111 */
    *q++ = 0xff, *q++ = 0xd8, *q++ = 0xff, *q++ = 0xdb, *q++ = 0, *q++ = 67, *q++ = 0;
    memset(q, 1, 64), q += 64;
    memcpy(q, sof, sizeof sof), q += sizeof sof;
    for (int t = 0; t < 2; t++) { /* DC table: symbol 10; AC table: EOB */
        *q++ = 0xff, *q++ = 0xc4, *q++ = 0, *q++ = 20, *q++ = t ? 0x10 : 0x00, *q++ = 1;
        memset(q, 0, 15), q += 15;
        *q++ = t ? 0x00 : 0x0a;
    }
    memcpy(q, sos, sizeof sos), q += sizeof sos;
    memcpy(q, scan, sizeof scan), q += sizeof scan;
    assert_int_equal(q - jpg, GRAY200_LEN);
}

static void test_imagefolder(void **state) {
    (void)state;
    char *root = make_tmpdir("imgs");
    png_in(root, "dog", "c.png", 2, 4); /* RGBA: alpha dropped */
    png_in(root, "cat", "b.png", 1, 1); /* gray: replicated */
    png_in(root, "cat", "a.png", 0, 3);
    char path[512];
    join(path, sizeof path, root, "cat/notes.txt");
    write_bytes(path, 0, "x", 1);
    join(path, sizeof path, root, "README");
    write_bytes(path, 0, "x", 1);

    /* Statistics given (have_norm), as a checkpoint's would be. */
    slim_data_options opts = {.c = 3, .h = I_H, .w = I_W, .have_norm = 1};
    for (int k = 0; k < 3; k++)
        opts.mean[k] = opts.std[k] = 0.5f;
    slim_dataset *ds = NULL;
    slim_log_level lvl = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_ERROR); /* the "no train/test split" warning */
    assert_int_equal(slim_data_load(root, 1, &opts, &ds), SLIM_OK);
    slim_set_log_level(lvl);
    assert_string_equal(ds->kind, "imagefolder");
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->n_classes, 2);
    assert_string_equal(ds->class_names[0], "cat");
    assert_string_equal(ds->class_names[1], "dog");
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 0);
    assert_int_equal(ds->labels[2], 1);
    for (int k = 0; k < 3; k++)
        assert_true(ds->mean[k] == 0.5f && ds->std[k] == 0.5f);
    check_image(ds, 0, 0, 3); /* cat/a.png */
    check_image(ds, 1, 1, 1); /* cat/b.png */
    check_image(ds, 2, 2, 4); /* dog/c.png */
    slim_dataset_free(ds);

    /* Shape inferred from the first image (cat/a.png, RGB). */
    assert_int_equal(slim_data_load_imagefolder(root, NULL, 0, NULL, &ds), SLIM_OK);
    assert_true(ds->c == 3 && ds->h == I_H && ds->w == I_W);
    slim_dataset_free(ds);

    /* One channel from gray images only, through the single-image loader. */
    join(path, sizeof path, root, "cat/b.png");
    float x1[I_H * I_W], mean = 0.5f, std = 0.5f;
    assert_int_equal(slim_data_load_image(path, 1, I_H, I_W, &mean, &std, x1), SLIM_OK);
    for (int p = 0; p < I_H * I_W; p++)
        assert_true(x1[p] == norm(img_px(1, p / I_W, p % I_W, 0), 0.5f, 0.5f));
    assert_error(slim_data_load_image_ex(path, 1, I_W, I_H, SLIM_RESIZE_NONE, 0, &mean, &std, x1),
                 SLIM_ERR_SHAPE, "b.png");

    /* A limit keeps evenly spaced images, here one of each class. */
    png_in(root, "dog", "d.png", 3, 3);
    opts.limit = 2;
    assert_int_equal(slim_data_load_imagefolder(root, NULL, 0, &opts, &ds), SLIM_OK);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 1);
    check_image(ds, 0, 0, 3); /* k=0 -> item 0: cat/a.png */
    check_image(ds, 1, 2, 4); /* k=1 -> item 2: dog/c.png */
    slim_dataset_free(ds);
    opts.limit = 0;

    /* A JPEG decodes (see gray200_jpeg). */
    {
        unsigned char jpg[GRAY200_LEN];
        gray200_jpeg(jpg);
        join(path, sizeof path, root, "c.JPG");
        write_bytes(path, 0, jpg, sizeof jpg);
        float xj[3 * 8 * 8], m3[3] = {0, 0, 0}, s3[3] = {1, 1, 1};
        assert_int_equal(slim_data_load_image(path, 3, 8, 8, m3, s3, xj), SLIM_OK);
        for (int i = 0; i < 3 * 8 * 8; i++)
            assert_true(xj[i] == norm(200, 0, 1));
        assert_int_equal(remove(path), 0);
    }

    /* Wrong size without resizing: names the file and both sizes. */
    char d[512];
    join(d, sizeof d, root, "dog");
    join(path, sizeof path, d, "e.png");
    write_png(path, 4, 3, 5, 6);
    opts.resize = SLIM_RESIZE_NONE;
    assert_error(slim_data_load(root, 1, &opts, &ds), SLIM_ERR_SHAPE, "dog/e.png");
    assert_true(has("5x6") && has("3x4"));
    opts.resize = SLIM_RESIZE_CROP;
    /* Corrupt: a PNG signature followed by junk, and a truncated PNG. */
    unsigned char junk[40] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3};
    write_bytes(path, 0, junk, sizeof junk);
    assert_error(slim_data_load(root, 1, &opts, &ds), SLIM_ERR_FORMAT, "dog/e.png");
    {
        write_png(path, 4, 3, I_H, I_W);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char whole[4096];
        size_t len = fread(whole, 1, sizeof whole, f);
        fclose(f);
        assert_true(len > 60);
        write_bytes(path, 0, whole, len - 20);
        assert_error(slim_data_load(root, 1, &opts, &ds), SLIM_ERR_FORMAT, "dog/e.png");
        assert_true(has("truncated or corrupt PNG"));
    }
    assert_null(ds);
    rm_tree(root);

    /* Empty folder; one class; a class folder without pictures. */
    root = make_tmpdir("empty");
    slim_set_log_level(SLIM_LOG_QUIET);
    assert_error(slim_data_load(root, 1, &opts, &ds), SLIM_ERR_FORMAT, "no class subdirectories");
    assert_true(has(root));
    mkdir_in(d, sizeof d, root, "a");
    assert_error(slim_data_load(root, 1, &opts, &ds), SLIM_ERR_FORMAT, "at least 2 classes");
    assert_true(has(root) && has("'a'"));
    assert_error(slim_data_load_imagefolder(root, NULL, 0, &opts, &ds), SLIM_ERR_FORMAT,
                 "no images found in this class folder");
    png_in(root, "b", "1.png", 1, 3);
    assert_error(slim_data_load(root, 1, &opts, &ds), SLIM_ERR_FORMAT, "no images found");
    assert_true(has(d)); /* names root/a */
    slim_set_log_level(lvl);
    rm_tree(root);
}

/* root/train and root/test: the test split takes train's class list. */
static void test_imagefolder_split(void **state) {
    (void)state;
    char *root = make_tmpdir("split");
    char tr[512], te[512];
    mkdir_in(tr, sizeof tr, root, "train");
    png_in(tr, "ant", "1.png", 0, 3);
    png_in(tr, "bee", "1.png", 1, 3);
    png_in(tr, "cow", "1.png", 2, 3);
    slim_dataset *ds = NULL;
    assert_error(slim_data_load(root, 0, NULL, &ds), SLIM_ERR_IO, "no test/");
    mkdir_in(te, sizeof te, root, "test");
    png_in(te, "cow", "9.png", 5, 3);
    assert_int_equal(slim_data_load(root, 1, NULL, &ds), SLIM_OK);
    assert_int_equal(ds->n, 3);
    slim_dataset_free(ds);
    assert_int_equal(slim_data_load(root, 0, NULL, &ds), SLIM_OK);
    assert_int_equal(ds->n, 1);
    assert_int_equal(ds->n_classes, 3);
    assert_int_equal(ds->labels[0], 2); /* cow is train's class 2 */
    assert_string_equal(ds->class_names[2], "cow");
    check_image(ds, 0, 5, 3);
    slim_dataset_free(ds);
    png_in(te, "dog", "1.png", 6, 3);
    assert_error(slim_data_load(root, 0, NULL, &ds), SLIM_ERR_FORMAT, "'dog'");
    rm_tree(root);
}

/* Guards around stb_image's PNG decoder (docs/RELIABILITY.md): a PNG whose
 * IDAT data is preceded and followed by empty IDAT chunks (valid PNG; stb's
 * handling of the first one is undefined behaviour, which slim sidesteps)
 * decodes exactly as the plain file does; a chunk declaring more bytes than
 * the file holds is refused without stb allocating the declared size. */
/* The PNG at path is refused as corrupt (its message naming the file and
 * saying `why`) without an allocation over 1 MB (counted in builds that
 * count allocations). */
static void png_refused_small(const char *path, const char *why) {
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    float x[3 * I_H * I_W];
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
#if TRACK_MALLOC
    track_start();
#endif
    assert_error(slim_data_load_image(path, 3, I_H, I_W, mean, std, x), SLIM_ERR_FORMAT, name);
#if TRACK_MALLOC
    track_stop();
    if (tu_largest_alloc > (size_t)1 << 20)
        fail_msg("%s: largest allocation %zu bytes", path, (size_t)tu_largest_alloc);
#endif
    assert_true(has(why));
}

static void test_png_stb_guards(void **state) {
    (void)state;
    char *root = make_tmpdir("idat");
    char plain[512], padded[512];
    join(plain, sizeof plain, root, "plain.png");
    join(padded, sizeof padded, root, "padded.png");
    write_png(plain, 7, 3, I_H, I_W);
    unsigned char buf[4096], out[4096 + 24];
    FILE *f = fopen(plain, "rb");
    assert_non_null(f);
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t idat = 0; /* start of the IDAT chunk (its length field) */
    for (size_t i = 12; i + 4 <= len && !idat; i++)
        if (memcmp(buf + i, "IDAT", 4) == 0) idat = i - 4;
    assert_true(idat > 8);
    size_t idat_end = idat + 12 + ((size_t)buf[idat + 2] << 8 | buf[idat + 3]);
    assert_true(buf[idat] == 0 && buf[idat + 1] == 0 && idat_end < len);
    unsigned char empty[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
    put_be32(empty + 8, (uint32_t)crc32(0, empty + 4, 4));
    size_t n = 0;
    memcpy(out, buf, idat), n += idat;
    memcpy(out + n, empty, 12), n += 12;
    memcpy(out + n, buf + idat, idat_end - idat), n += idat_end - idat;
    memcpy(out + n, empty, 12), n += 12;
    memcpy(out + n, buf + idat_end, len - idat_end), n += len - idat_end;
    assert_int_equal(n, len + 24);
    write_bytes(padded, 0, out, n);
    float a[3 * I_H * I_W], b[3 * I_H * I_W];
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    assert_int_equal(slim_data_load_image(plain, 3, I_H, I_W, mean, std, a), SLIM_OK);
    assert_int_equal(slim_data_load_image(padded, 3, I_H, I_W, mean, std, b), SLIM_OK);
    assert_memory_equal(a, b, sizeof a);
    for (int p = 0; p < I_H * I_W; p++)
        assert_true(a[p] == norm(img_px(7, p / I_W, p % I_W, 0), 0.5f, 0.5f));

    /* IDAT declaring 2 GB in a small file, hand-made and as fuzzing found it
     * (stb grew its buffer to 2 GB before noticing). */
    char found[4096];
    tu_source_path("tests/fuzz/regressions/image/stb-png-idat-past-end.png", found, sizeof found);
    put_be32(buf + idat, 0x7ffffff0u);
    write_bytes(padded, 0, buf, len);
    png_refused_small(padded, "declares 2147483632 bytes");
    png_refused_small(found, "truncated or corrupt PNG");

    /* A well-formed PNG of the right size whose image data inflates to 8 MB
     * (an ~8 KB IDAT): stb would inflate all of it before using the first
     * I_H x (1 + 3 I_W) bytes (bug 10). */
    size_t bomb_raw = (size_t)8 << 20;
    unsigned char *zeros = calloc(bomb_raw, 1);
    uLongf zlen = compressBound(bomb_raw);
    unsigned char *bomb = malloc(33 + 12 + zlen + 12);
    assert_true(zeros && bomb);
    assert_int_equal(compress2(bomb + 33 + 8, &zlen, zeros, bomb_raw, 9), Z_OK);
    memcpy(bomb, buf, 33); /* signature and IHDR of the plain file */
    put_be32(bomb + 33, (uint32_t)zlen);
    memcpy(bomb + 33 + 4, "IDAT", 4);
    put_be32(bomb + 33 + 8 + zlen, (uint32_t)crc32(0, bomb + 33 + 4, (uInt)zlen + 4));
    size_t bn = 33 + 12 + zlen;
    memcpy(bomb + bn, buf + len - 12, 12), bn += 12; /* IEND */
    assert_true(memcmp(bomb + bn - 8, "IEND", 4) == 0);
    write_bytes(padded, 0, bomb, bn);
    png_refused_small(padded, "inflates past the");
    /* The same data cut to what the image needs decodes (the check counts
     * the bytes right). */
    zlen = compressBound(bomb_raw);
    size_t need = (size_t)I_H * (1 + 3 * I_W);
    assert_int_equal(compress2(bomb + 33 + 8, &zlen, zeros, need, 9), Z_OK);
    put_be32(bomb + 33, (uint32_t)zlen);
    put_be32(bomb + 33 + 8 + zlen, (uint32_t)crc32(0, bomb + 33 + 4, (uInt)zlen + 4));
    bn = 33 + 12 + zlen;
    memcpy(bomb + bn, buf + len - 12, 12), bn += 12;
    write_bytes(padded, 0, bomb, bn);
    assert_int_equal(slim_data_load_image(padded, 3, I_H, I_W, mean, std, b), SLIM_OK);
    assert_true(b[0] == norm(0, 0.5f, 0.5f));
    free(zeros);
    free(bomb);
    rm_tree(root);
}

/* ---- JPEG (libjpeg-turbo) ------------------------------------------------ */

enum { J_H = 16, J_W = 24 };

/* Pixel (y, x, ch) of the JPEG test image: smooth ramps, so that a
 * high-quality encoding stays within a few levels of them. */
static unsigned char jpg_px(int y, int x, int ch) {
    int v = 20 + y * 6 + x * 4 + ch * 50;
    return (unsigned char)(v > 255 ? 255 : v);
}

/* Encodes the test image (n = 1 gray, 3 RGB stored as YCbCr 4:4:4, 4 CMYK)
 * as a J_H x J_W JPEG at path: baseline, or progressive with libjpeg's
 * simple script, or with the scan script given. Returns the file's size. */
static size_t write_jpeg(const char *path, int n, int progressive, const jpeg_scan_info *script,
                         int n_scans) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&ci, &out, &len);
    ci.image_width = J_W;
    ci.image_height = J_H;
    ci.input_components = n;
    ci.in_color_space = n == 1 ? JCS_GRAYSCALE : n == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    for (int k = 0; k < ci.num_components; k++)
        ci.comp_info[k].h_samp_factor = ci.comp_info[k].v_samp_factor = 1;
    if (progressive) jpeg_simple_progression(&ci);
    if (script) {
        ci.scan_info = script;
        ci.num_scans = n_scans;
    }
    jpeg_start_compress(&ci, TRUE);
    unsigned char row[J_W * 4];
    while (ci.next_scanline < J_H) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < J_W; x++)
            for (int ch = 0; ch < n; ch++)
                row[x * n + ch] = jpg_px(y, x, ch);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&ci, rows, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    write_bytes(path, 0, out, len);
    free(out);
    return len;
}

/* The reference decoding of a gray or RGB JPEG, by libjpeg with its defaults
 * (what slim must reproduce exactly): (J_H, J_W, n) bytes. */
static unsigned char *ref_decode(const char *path, int n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_decompress(&ci);
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    jpeg_start_decompress(&ci);
    assert_true(ci.output_width == J_W && ci.output_height == J_H && ci.output_components == n);
    unsigned char *px = malloc((size_t)J_H * J_W * (size_t)n);
    assert_non_null(px);
    while (ci.output_scanline < J_H) {
        JSAMPROW rows[1] = {px + (size_t)ci.output_scanline * J_W * (size_t)n};
        jpeg_read_scanlines(&ci, rows, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    return px;
}

/* Loads path as c x J_H x J_W (mean 0, std 1) and checks every value against
 * ref: (J_H, J_W, n) converted to c channels by stb's rules: gray -> RGB
 * replicates, RGB -> gray is (77 r + 150 g + 29 b) >> 8, alpha reads 255. */
static void check_jpeg(const char *path, const unsigned char *ref, int n, int c) {
    static const float mean[4] = {0, 0, 0, 0}, std[4] = {1, 1, 1, 1};
    float x[4 * J_H * J_W];
    assert_int_equal(slim_data_load_image(path, c, J_H, J_W, mean, std, x), SLIM_OK);
    for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < J_H * J_W; p++) {
            const unsigned char *in = ref + p * n;
            unsigned want;
            if ((c == 2 && ch == 1) || (c == 4 && ch == 3))
                want = 255;
            else if (n == 1)
                want = in[0];
            else if (c <= 2)
                want = (77u * in[0] + 150u * in[1] + 29u * in[2]) >> 8;
            else
                want = in[ch];
            if (x[ch * J_H * J_W + p] != norm(want, 0, 1))
                fail_msg("%s as %d channels: ch %d pixel %d: %g != %u/255", path, c, ch, p,
                         x[ch * J_H * J_W + p] * 255, want);
        }
}

/* A scan script of 11 + 3 * 63 * 11 = 2090 scans: every coefficient of every
 * component sent bit plane by bit plane (the most a valid script can hold). */
static jpeg_scan_info *many_scans(int *n) {
    jpeg_scan_info *s = calloc(2100, sizeof *s);
    assert_non_null(s);
    int k = 0;
    for (int al = 10; al >= 0; al--, k++) { /* DC of all three, interleaved */
        s[k].comps_in_scan = 3;
        for (int ch = 0; ch < 3; ch++)
            s[k].component_index[ch] = ch;
        s[k].Ah = al == 10 ? 0 : al + 1;
        s[k].Al = al;
    }
    for (int ch = 0; ch < 3; ch++)
        for (int coef = 1; coef < 64; coef++)
            for (int al = 10; al >= 0; al--, k++) {
                s[k].comps_in_scan = 1;
                s[k].component_index[0] = ch;
                s[k].Ss = s[k].Se = coef;
                s[k].Ah = al == 10 ? 0 : al + 1;
                s[k].Al = al;
            }
    *n = k;
    return s;
}

/* Where stderr goes while a decoder runs (it must write nothing there). */
static int stderr_saved = -1, stderr_file = -1;
static void stderr_capture(void) {
    char name[] = "/tmp/slim-stderr-XXXXXX";
    fflush(stderr);
    stderr_file = mkstemp(name);
    assert_true(stderr_file >= 0);
    unlink(name);
    stderr_saved = dup(2);
    assert_true(stderr_saved >= 0);
    assert_int_equal(dup2(stderr_file, 2), 2);
}
/* Restores stderr; returns how many bytes were written to it meanwhile. */
static long stderr_release(void) {
    fflush(stderr);
    assert_int_equal(dup2(stderr_saved, 2), 2);
    close(stderr_saved);
    long written = (long)lseek(stderr_file, 0, SEEK_END);
    close(stderr_file);
    return written;
}

/* JPEG through libjpeg-turbo: exact agreement with libjpeg's own decoding
 * in every channel conversion, shape inference, and clean errors (naming the
 * file) for what slim refuses. */
static void test_imagefolder_jpeg(void **state) {
    (void)state;
    char *root = make_tmpdir("jpeg");
    char gray_dir[512], rgb_dir[512], gray[512], rgb[512], prog[512], path[512];
    mkdir_in(gray_dir, sizeof gray_dir, root, "g");
    mkdir_in(path, sizeof path, gray_dir, "cls");
    join(gray, sizeof gray, path, "a.jpg");
    mkdir_in(rgb_dir, sizeof rgb_dir, root, "c");
    mkdir_in(path, sizeof path, rgb_dir, "cls");
    join(rgb, sizeof rgb, path, "a.jpeg");
    join(prog, sizeof prog, path, "b.jpg");
    write_jpeg(gray, 1, 0, NULL, 0);
    size_t rgb_len = write_jpeg(rgb, 3, 0, NULL, 0);
    write_jpeg(prog, 3, 1, NULL, 0);

    unsigned char *ref_gray = ref_decode(gray, 1), *ref_rgb = ref_decode(rgb, 3);
    unsigned char *ref_prog = ref_decode(prog, 3);
    /* The reference is the picture (quality 95, 4:4:4, smooth ramps: a few
     * levels of error; 10 leaves room without admitting a wrong image). */
    for (int p = 0; p < J_H * J_W; p++)
        for (int ch = 0; ch < 3; ch++) {
            int want = jpg_px(p / J_W, p % J_W, ch);
            assert_true(abs(ref_rgb[p * 3 + ch] - want) <= 10);
            assert_true(abs(ref_prog[p * 3 + ch] - want) <= 10);
            if (ch == 0) assert_true(abs(ref_gray[p] - want) <= 10);
        }
    for (int c = 1; c <= 4; c++) {
        check_jpeg(gray, ref_gray, 1, c);
        check_jpeg(rgb, ref_rgb, 3, c);
        check_jpeg(prog, ref_prog, 3, c);
    }

    /* Shape inference: 1 channel from a gray JPEG, 3 from a colour one. */
    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load_imagefolder(gray_dir, NULL, 0, NULL, &ds), SLIM_OK);
    assert_true(ds->n == 1 && ds->c == 1 && ds->h == J_H && ds->w == J_W);
    slim_dataset_free(ds);
    assert_int_equal(slim_data_load_imagefolder(rgb_dir, NULL, 0, NULL, &ds), SLIM_OK);
    assert_true(ds->n == 2 && ds->c == 3 && ds->h == J_H && ds->w == J_W);
    float *xs = read_all(ds);
    assert_true(xs[0] == norm(ref_rgb[0], ds->mean[0], ds->std[0]));
    free(xs);
    slim_dataset_free(ds);
    free(ref_gray);
    free(ref_rgb);
    free(ref_prog);

    static const float mean[4] = {0, 0, 0, 0}, std[4] = {1, 1, 1, 1};
    float x[4 * J_H * J_W];
    /* Wrong size: names the file and both sizes. */
    assert_error(slim_data_load_image_ex(rgb, 3, J_W, J_H, SLIM_RESIZE_NONE, 0, mean, std, x),
                 SLIM_ERR_SHAPE, "a.jpeg");
    assert_true(has("16x24") && has("24x16"));
    /* Truncated inside the entropy-coded data: refused, not half grey. */
    {
        unsigned char whole[8192];
        FILE *f = fopen(rgb, "rb");
        assert_non_null(f);
        assert_int_equal(fread(whole, 1, sizeof whole, f), rgb_len);
        fclose(f);
        size_t sos = 0;
        for (size_t i = 0; i + 1 < rgb_len && !sos; i++)
            if (whole[i] == 0xff && whole[i + 1] == 0xda) sos = i;
        assert_true(sos > 0 && rgb_len - sos > 40); /* header + some data */
        join(path, sizeof path, root, "cut.jpg");
        write_bytes(path, 0, whole, sos + (rgb_len - sos) / 2);
        assert_error(slim_data_load_image(path, 3, J_H, J_W, mean, std, x), SLIM_ERR_FORMAT,
                     "cut.jpg");
        assert_true(has("Premature end"));
    }
    /* CMYK is not converted. */
    join(path, sizeof path, root, "cmyk.jpg");
    write_jpeg(path, 4, 0, NULL, 0);
    assert_error(slim_data_load_image(path, 3, J_H, J_W, mean, std, x), SLIM_ERR_FORMAT,
                 "cmyk.jpg");
    assert_true(has("CMYK"));
    /* More scans than allowed: a valid file, refused for the time it could
     * cost; a normal progressive file (10 scans) decoded above. */
    {
        int n_scans = 0;
        jpeg_scan_info *script = many_scans(&n_scans);
        join(path, sizeof path, root, "scans.jpg");
        write_jpeg(path, 3, 0, script, n_scans);
        free(script);
        assert_error(slim_data_load_image(path, 3, J_H, J_W, mean, std, x), SLIM_ERR_FORMAT,
                     "scans.jpg");
        assert_true(has("more than 1000 scans"));
    }
    /* Not an image by its first bytes, whatever its name says. */
    join(path, sizeof path, root, "gif.jpg");
    write_bytes(path, 0, "GIF89a\1\0\1\0\0\0\0", 13);
    assert_error(slim_data_load_image(path, 1, 1, 1, mean, std, x), SLIM_ERR_FORMAT, "gif.jpg");
    /* A FIFO is refused at once (opening it must not wait for a writer). */
    join(path, sizeof path, root, "fifo.png");
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_error(slim_data_load_image(path, 1, 1, 1, mean, std, x), SLIM_ERR_IO, "fifo.png");
    assert_true(has("not a regular file"));
    assert_int_equal(remove(path), 0);
    /* Larger than an image may be: refused before reading (a sparse file). */
    join(path, sizeof path, root, "huge.png");
    write_bytes(path, 0, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(truncate(path, ((off_t)64 << 20) + 1), 0);
    assert_error(slim_data_load_image(path, 1, 1, 1, mean, std, x), SLIM_ERR_FORMAT, "huge.png");
    assert_true(has("64 MiB"));
    assert_int_equal(remove(path), 0);

    /* libjpeg prints nothing: not for the fuzzers' reproducers of stb's bugs
     * (bugs 1 and 2 in docs/RELIABILITY.md), each refused with a message
     * naming the file, decoded at its own size where its header has one
     * (8x45), as a single image and as an image folder; nor for a harmless
     * warning (bytes before a marker), which still decodes. */
    static const char *const repro[] = {"stb-jpeg-dht-263-codes.jpg", "stb-jpeg-dht-fuzzed.jpg",
                                        "stb-jpeg-bitbuffer-shift.jpg"};
    char src[4096], rel[256], cls[512], msg[3][3][512];
    slim_status st[3][3];
    unsigned char jpg[GRAY200_LEN + 3];
    gray200_jpeg(jpg);
    memmove(jpg + 74, jpg + 71, GRAY200_LEN - 71); /* 3 zero bytes between DQT and SOF */
    memset(jpg + 71, 0, 3);
    assert_true(jpg[70] == 1 && jpg[74] == 0xff && jpg[75] == 0xc0);
    join(path, sizeof path, root, "pad.jpg");
    write_bytes(path, 0, jpg, sizeof jpg);
    float xp[8 * 8];
    stderr_capture();
    slim_status pad_st = slim_data_load_image(path, 1, 8, 8, mean, std, xp);
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "tests/fuzz/regressions/image/%s", repro[i]);
        tu_source_path(rel, src, sizeof src);
        st[i][0] = slim_data_load_image(src, 3, 8, 45, mean, std, x);
        snprintf(msg[i][0], sizeof msg[i][0], "%s", slim_last_error());
        st[i][1] = slim_data_load_image(src, 1, 8, 45, mean, std, x);
        snprintf(msg[i][1], sizeof msg[i][1], "%s", slim_last_error());
        /* As the only image of a folder, its shape inferred. */
        char dir[512];
        snprintf(dir, sizeof dir, "%s/repro%d", root, i);
        mkdir(dir, 0700);
        join(cls, sizeof cls, dir, "cls");
        mkdir(cls, 0700);
        char copy[1024];
        snprintf(copy, sizeof copy, "%s/%s", cls, repro[i]);
        unsigned char bytes[4096];
        FILE *f = fopen(src, "rb");
        size_t len = f ? fread(bytes, 1, sizeof bytes, f) : 0;
        if (f) fclose(f);
        write_bytes(copy, 0, bytes, len);
        ds = NULL;
        st[i][2] = slim_data_load_imagefolder(dir, NULL, 0, NULL, &ds);
        snprintf(msg[i][2], sizeof msg[i][2], "%s", slim_last_error());
        slim_dataset_free(ds);
    }
    long printed = stderr_release();
    assert_int_equal(pad_st, SLIM_OK);
    for (int p = 0; p < 8 * 8; p++)
        assert_true(xp[p] == norm(200, 0, 1));
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) {
            print_message("%s\n", msg[i][k]);
            assert_int_equal(st[i][k], SLIM_ERR_FORMAT);
            if (!strstr(msg[i][k], repro[i])) fail_msg("\"%s\" lacks the file name", msg[i][k]);
        }
    assert_int_equal(printed, 0);
    rm_tree(root);
}

/* ---- augmentation ------------------------------------------------------- */

/* out = crop of in padded by p with fill, at offset (oy, ox), computed the
 * obvious way: build the padded image, then copy the window. */
static void crop_reference(const float *in, float *out, int c, int h, int w, int p, int oy, int ox,
                           const float *fill) {
    int ph = h + 2 * p, pw = w + 2 * p;
    float *padded = malloc(sizeof(float) * (size_t)c * ph * pw);
    assert_non_null(padded);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                int sy = y - p, sx = x - p;
                padded[(k * ph + y) * pw + x] =
                    sy >= 0 && sy < h && sx >= 0 && sx < w ? in[(k * h + sy) * w + sx] : fill[k];
            }
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                out[(k * h + y) * w + x] = padded[(k * ph + y + oy) * pw + x + ox];
    free(padded);
}

static void test_augment_pieces(void **state) {
    (void)state;
    enum { C = 2, H = 5, W = 6, N = C * H * W };
    slim_rng rng;
    slim_rng_seed(&rng, 11, 1);
    float x[N], y[N], ref[N];
    tu_fill_uniform(&rng, x, N, -1, 1);
    const float fill[2] = {-7.0f, 9.0f};

    /* Flip: reversed rows; twice is the identity. */
    memcpy(y, x, sizeof x);
    slim_augment_flip(y, C, H, W);
    for (int r = 0; r < C * H; r++)
        for (int i = 0; i < W; i++)
            assert_true(y[r * W + i] == x[r * W + W - 1 - i]);
    slim_augment_flip(y, C, H, W);
    assert_memory_equal(x, y, sizeof x);

    /* Every crop offset against pad-then-crop, for pads up to beyond the
     * image (everything fill). */
    for (int p = 0; p <= 7; p++)
        for (int oy = 0; oy <= 2 * p; oy++)
            for (int ox = 0; ox <= 2 * p; ox++) {
                memcpy(y, x, sizeof x);
                slim_augment_crop(y, C, H, W, p, oy, ox, fill);
                crop_reference(x, ref, C, H, W, p, oy, ox, fill);
                if (memcmp(y, ref, sizeof y) != 0) fail_msg("pad %d offset (%d,%d)", p, oy, ox);
            }
    /* One case by hand: offset (0, 2p) with p = 1 moves every pixel one row
     * down and one column left. */
    memcpy(y, x, sizeof x);
    slim_augment_crop(y, C, H, W, 1, 0, 2, fill);
    for (int k = 0; k < C; k++)
        for (int r = 0; r < H; r++)
            for (int i = 0; i < W; i++) {
                float want = r == 0 || i == W - 1 ? fill[k] : x[(k * H + r - 1) * W + i + 1];
                assert_true(y[(k * H + r) * W + i] == want);
            }
}

static void test_augment_batch(void **state) {
    (void)state;
    enum { B = 64, C = 3, H = 4, W = 5, PER = C * H * W };
    slim_dataset *ds = NULL;
    assert_int_equal(slim_dataset_new(1, C, H, W, 2, &ds), SLIM_OK);
    ds->mean[0] = 0.5f, ds->std[0] = 0.25f;
    ds->mean[1] = 0.0f, ds->std[1] = 1.0f;
    ds->mean[2] = 0.4f, ds->std[2] = 0.2f;
    slim_augment aug;
    assert_int_equal(slim_augment_init(&aug, ds, 2, 1), SLIM_OK);
    assert_true(aug.fill[0] == -2.0f && aug.fill[1] == 0.0f && aug.fill[2] == -2.0f);
    assert_error(slim_augment_init(&aug, ds, -1, 0), SLIM_ERR_ARG, "padding");

    slim_rng rng, mirror;
    slim_rng_seed(&rng, 5, 3);
    static float x[B * PER], y[B * PER], orig[B * PER];
    tu_fill_uniform(&rng, orig, B * PER, -1, 1);

    /* pad 0, no flip: the identity, and no random numbers drawn. */
    slim_augment none;
    assert_int_equal(slim_augment_init(&none, ds, 0, 0), SLIM_OK);
    memcpy(x, orig, sizeof x);
    mirror = rng;
    assert_int_equal(slim_augment_batch(&none, x, B, C, H, W, &rng), SLIM_OK);
    assert_memory_equal(x, orig, sizeof x);
    assert_memory_equal(&rng, &mirror, sizeof rng);

    /* The batch equals the documented draws applied with the pieces. */
    assert_int_equal(slim_augment_init(&aug, ds, 2, 1), SLIM_OK);
    memcpy(x, orig, sizeof x);
    memcpy(y, orig, sizeof y);
    mirror = rng;
#if TRACK_MALLOC
    track_start();
#endif
    assert_int_equal(slim_augment_batch(&aug, x, B, C, H, W, &rng), SLIM_OK);
#if TRACK_MALLOC
    track_stop();
    assert_int_equal(tu_allocs, 0);
#endif
    int seen_off[5] = {0}, flips = 0;
    for (int i = 0; i < B; i++) {
        int oy = (int)slim_rng_below(&mirror, 5), ox = (int)slim_rng_below(&mirror, 5);
        seen_off[oy]++;
        seen_off[ox]++;
        slim_augment_crop(y + i * PER, C, H, W, 2, oy, ox, aug.fill);
        if (slim_rng_below(&mirror, 2)) {
            slim_augment_flip(y + i * PER, C, H, W);
            flips++;
        }
    }
    assert_memory_equal(x, y, sizeof x);
    assert_memory_equal(&rng, &mirror, sizeof rng);
    for (int o = 0; o < 5; o++)
        assert_true(seen_off[o] > 0);
    assert_true(flips > 10 && flips < B - 10);
    assert_error(slim_augment_batch(&aug, x, B, 0, H, W, &rng), SLIM_ERR_ARG, "shape");
    slim_dataset_free(ds);
}

/* ---- batching ----------------------------------------------------------- */

enum { BN = 103, BATCH = 10, BC = 1, BH = 2, BW = 3, BPER = BC * BH * BW };

/* Image i holds the value i everywhere and label i % 7. */
static slim_dataset *index_dataset(void) {
    slim_dataset *ds = NULL;
    assert_int_equal(slim_dataset_new(BN, BC, BH, BW, 7, &ds), SLIM_OK);
    for (size_t i = 0; i < BN; i++) {
        ds->labels[i] = (int32_t)(i % 7);
        for (int p = 0; p < BPER; p++)
            ds->images[i * BPER + p] = (float)i;
    }
    return ds;
}

/* Runs the rest of the current epoch, writing the sample order to seq. */
static size_t drain(slim_batcher *b, uint32_t *seq) {
    /* seq gets the samples of this call only; b may be mid-epoch. */
    static float x[BATCH * BPER];
    int32_t y[BATCH];
    size_t n = 0, k;
    while ((k = slim_batcher_next(b, x, y)) > 0) {
        assert_true(k == BATCH || (k == BN % BATCH && b->pos.index == BN));
        for (size_t i = 0; i < k; i++) {
            uint32_t id = (uint32_t)x[i * BPER];
            for (int p = 0; p < BPER; p++)
                assert_true(x[i * BPER + p] == (float)id);
            assert_int_equal(y[i], id % 7);
            seq[n++] = id;
        }
    }
    return n;
}

static void test_batcher(void **state) {
    (void)state;
    slim_dataset *ds = index_dataset();
    slim_batcher b, b2;
    assert_error(slim_batcher_init(&b, ds, 0, 1), SLIM_ERR_ARG, "batch");
    assert_int_equal(slim_batcher_init(&b, ds, BATCH, 1), SLIM_OK);
    assert_int_equal(slim_batcher_num_batches(&b), 11);
    uint32_t e1[BN], e2[BN], again[BN];
    float x[BATCH * BPER];
    int32_t y[BATCH];
    assert_int_equal(slim_batcher_next(&b, x, y), 0); /* no epoch begun */

    slim_rng rng;
    slim_rng_seed(&rng, 42, 0);
    slim_rng start = rng;
    slim_batcher_begin_epoch(&b, &rng);
    assert_int_equal(drain(&b, e1), BN);
    assert_int_equal(slim_batcher_next(&b, x, y), 0);
    slim_batcher_begin_epoch(&b, &rng);
    assert_int_equal(b.pos.epoch, 2);
    assert_int_equal(drain(&b, e2), BN);

    /* Each epoch a permutation; not the identity; epochs differ. */
    int count[BN] = {0}, ident = 1;
    for (int i = 0; i < BN; i++) {
        count[e1[i]]++;
        count[e2[i]] += 1000;
        if (e1[i] != (uint32_t)i) ident = 0;
    }
    for (int i = 0; i < BN; i++)
        assert_int_equal(count[i], 1001);
    assert_false(ident);
    assert_memory_not_equal(e1, e2, sizeof e1);

    /* Same seed, same orders. */
    assert_int_equal(slim_batcher_init(&b2, ds, BATCH, 1), SLIM_OK);
    slim_rng rng2 = start;
    slim_batcher_begin_epoch(&b2, &rng2);
    drain(&b2, again);
    assert_memory_equal(again, e1, sizeof e1);
    slim_batcher_begin_epoch(&b2, &rng2);
    drain(&b2, again);
    assert_memory_equal(again, e2, sizeof e2);
    assert_memory_equal(&rng, &rng2, sizeof rng);
    slim_batcher_free(&b2);

    /* Resume: stop mid-epoch 3, save (position, caller's rng), restore into
     * a fresh batcher, and the rest of the run is identical. The steady
     * state allocates nothing. */
    slim_batcher_begin_epoch(&b, &rng);
    assert_int_equal(slim_batcher_next(&b, x, y), BATCH);
    assert_int_equal(slim_batcher_next(&b, x, y), BATCH);
    slim_batcher_pos saved = b.pos;
    slim_rng saved_rng = rng;
    uint32_t rest[BN], rest2[BN], next_epoch[BN];
#if TRACK_MALLOC
    track_start();
#endif
    size_t n_rest = drain(&b, rest);
    slim_batcher_begin_epoch(&b, &rng);
#if TRACK_MALLOC
    track_stop();
    assert_int_equal(tu_allocs, 0);
#endif
    assert_int_equal(n_rest, BN - 2 * BATCH);
    drain(&b, next_epoch);

    assert_int_equal(slim_batcher_init(&b2, ds, BATCH, 1), SLIM_OK);
    assert_int_equal(slim_batcher_seek(&b2, &saved), SLIM_OK);
    rng2 = saved_rng;
    assert_int_equal(drain(&b2, rest2), n_rest);
    assert_memory_equal(rest, rest2, n_rest * sizeof *rest);
    slim_batcher_begin_epoch(&b2, &rng2);
    drain(&b2, rest2);
    assert_memory_equal(next_epoch, rest2, sizeof next_epoch);
    assert_int_equal(b2.pos.epoch, 4);
    saved.index = BN + 1;
    assert_error(slim_batcher_seek(&b2, &saved), SLIM_ERR_ARG, "past");
    slim_batcher_free(&b2);
    slim_batcher_free(&b);

    /* Without shuffling: 0..n-1 and the rng untouched. */
    assert_int_equal(slim_batcher_init(&b, ds, BATCH, 0), SLIM_OK);
    slim_rng before = rng;
    slim_batcher_begin_epoch(&b, &rng);
    assert_memory_equal(&rng, &before, sizeof rng);
    drain(&b, e1);
    for (int i = 0; i < BN; i++)
        assert_int_equal(e1[i], i);
    slim_batcher_free(&b);
    slim_dataset_free(ds);
}

static void test_dataset_basics(void **state) {
    (void)state;
    slim_dataset *ds = NULL;
    assert_error(slim_dataset_new(2, 5, 2, 2, 3, &ds), SLIM_ERR_ARG, "5x2x2");
    assert_int_equal(slim_dataset_new(0, 1, 2, 2, 3, &ds), SLIM_OK);
    assert_int_equal(ds->n, 0);
    slim_dataset_free(ds);
    slim_dataset_free(NULL);
    ds = index_dataset();
    uint32_t idx[2] = {5, 100};
    float x[2 * BPER];
    int32_t y[2];
    assert_int_equal(slim_dataset_gather(ds, idx, 2, x, y), SLIM_OK);
    assert_true(x[0] == 5.0f && x[BPER] == 100.0f && y[0] == 5 && y[1] == 2);
    idx[1] = BN;
    assert_error(slim_dataset_gather(ds, idx, 2, x, y), SLIM_ERR_ARG, "out of range");
    slim_dataset_free(ds);
}

/* ---- byte data sets: normalisation when copied out ---------------------- */

/* The float data set the loaders made before byte data sets existed: every
 * pixel through the double formula once, at load time. */
static slim_dataset *float_twin(const slim_dataset *bytes, size_t n) {
    slim_dataset *ds = NULL;
    assert_int_equal(slim_dataset_new(n, bytes->c, bytes->h, bytes->w, bytes->n_classes, &ds),
                     SLIM_OK);
    size_t plane = (size_t)bytes->h * (size_t)bytes->w;
    for (int k = 0; k < bytes->c; k++) {
        ds->mean[k] = bytes->mean[k];
        ds->std[k] = bytes->std[k];
    }
    for (size_t i = 0; i < n * (size_t)bytes->c * plane; i++) {
        int k = (int)(i / plane % (size_t)bytes->c);
        ds->images[i] = norm(bytes->pixels[i], bytes->mean[k], bytes->std[k]);
    }
    memcpy(ds->labels, bytes->labels, n * sizeof *ds->labels);
    return ds;
}

/* Two shuffled epochs over the first n images of a byte data set and over
 * its float twin, batcher against batcher: the same batches bit for bit. */
static void check_batches_match(const slim_dataset *bytes, size_t batch, size_t n) {
    if (n > bytes->n) n = bytes->n;
    slim_dataset view = *bytes; /* borrowed memory: never freed through view */
    view.n = n;
    slim_dataset *twin = float_twin(bytes, n);
    size_t per = (size_t)bytes->c * (size_t)bytes->h * (size_t)bytes->w;
    float *xb = malloc(batch * per * sizeof *xb), *xf = malloc(batch * per * sizeof *xf);
    int32_t *yb = malloc(batch * sizeof *yb), *yf = malloc(batch * sizeof *yf);
    assert_true(xb && xf && yb && yf);
    slim_batcher bb, bf;
    assert_int_equal(slim_batcher_init(&bb, &view, batch, 1), SLIM_OK);
    assert_int_equal(slim_batcher_init(&bf, twin, batch, 1), SLIM_OK);
    slim_rng rb, rf;
    slim_rng_seed(&rb, 77, 2);
    rf = rb;
    size_t batches = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        slim_batcher_begin_epoch(&bb, &rb);
        slim_batcher_begin_epoch(&bf, &rf);
        size_t kb, kf;
        do {
            kb = slim_batcher_next(&bb, xb, yb);
            kf = slim_batcher_next(&bf, xf, yf);
            assert_int_equal(kb, kf);
            assert_memory_equal(xb, xf, kb * per * sizeof *xb);
            assert_memory_equal(yb, yf, kb * sizeof *yb);
            batches += kb > 0;
        } while (kb > 0);
    }
    assert_int_equal(batches, 2 * ((n + batch - 1) / batch));
    slim_batcher_free(&bb);
    slim_batcher_free(&bf);
    slim_dataset_free(twin);
    free(xb), free(xf), free(yb), free(yf);
}

/* Every byte value of every channel, through the tables, against the
 * double formula rounded once (compared as bits), for the statistics of
 * every loader and a few others. */
static void test_normalise_every_byte(void **state) {
    (void)state;
    char *dir = make_tmpdir("bytes");
    char img[512], lab[512];
    join(img, sizeof img, dir, "i");
    join(lab, sizeof lab, dir, "l");
    unsigned char all[256], label = 3;
    for (int p = 0; p < 256; p++)
        all[p] = (unsigned char)p;
    write_idx_images(img, 0, 0x803, 1, 16, 16, all, sizeof all, 0);
    write_idx_labels(lab, 0, 0x801, 1, &label, 1);
    static const float stats[][2] = {{0.2860f, 0.3530f}, {0.1307f, 0.3081f}, {0.5f, 0.5f},
                                     {0.4914f, 0.2470f}, {0.0f, 1.0f},       {0.9f, 1e-3f},
                                     {0.25f, 0.5f}};
    for (size_t s = 0; s < sizeof stats / sizeof *stats; s++) {
        float mean = stats[s][0], std = stats[s][1];
        slim_dataset *ds = NULL;
        assert_int_equal(slim_data_load_idx(img, lab, mean, std, &ds), SLIM_OK);
        float x[256], lut[SLIM_DATA_MAX_CHANNELS][256];
        assert_int_equal(slim_dataset_read(ds, 0, 1, x), SLIM_OK);
        slim_dataset_lut(ds, lut);
        for (int p = 0; p < 256; p++) {
            float want = norm((unsigned)p, mean, std);
            if (memcmp(&x[p], &want, sizeof want) != 0 || memcmp(&lut[0][p], &want, sizeof want))
                fail_msg("mean %g std %g byte %d: %a != %a", (double)mean, (double)std, p,
                         (double)x[p], (double)want);
        }
        slim_dataset_free(ds);
    }

    /* Per channel: a CIFAR-10 record whose every plane holds every byte. */
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f};
    unsigned char *rec = malloc(CIFAR_REC);
    assert_non_null(rec);
    rec[0] = 4;
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < CIFAR_PLANE; p++)
            rec[1 + ch * CIFAR_PLANE + p] = (unsigned char)(p + 85 * ch);
    char path[512];
    join(path, sizeof path, dir, "test_batch.bin");
    write_bytes(path, 0, rec, CIFAR_REC);
    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load(dir, 0, NULL, &ds), SLIM_OK);
    float *xs = read_all(ds);
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < CIFAR_PLANE; p++) {
            float want = norm(rec[1 + ch * CIFAR_PLANE + p], mean[ch], std[ch]);
            if (memcmp(&xs[ch * CIFAR_PLANE + p], &want, sizeof want) != 0)
                fail_msg("channel %d pixel %d: %a != %a", ch, p, (double)xs[ch * CIFAR_PLANE + p],
                         (double)want);
        }
    free(xs);
    slim_dataset_free(ds);
    free(rec);
    rm_tree(dir);
}

/* Batches (and gather, read, to_floats) of byte data sets equal those of
 * the float data sets the loaders used to make, bit for bit: 1 channel from
 * IDX, 3 channels from CIFAR-10, random pixels. */
static void test_byte_batches_match_floats(void **state) {
    (void)state;
    char *dir = make_tmpdir("bytebatch");
    enum { N = 37, IH = 5, IW = 6, CN = 23 };
    slim_rng rng;
    slim_rng_seed(&rng, 99, 4);
    unsigned char pix[N * IH * IW], lab[N];
    for (size_t i = 0; i < sizeof pix; i++)
        pix[i] = (unsigned char)slim_rng_below(&rng, 256);
    for (int i = 0; i < N; i++)
        lab[i] = (unsigned char)slim_rng_below(&rng, 10);
    char img[512], lb[512];
    join(img, sizeof img, dir, "train-images-idx3-ubyte");
    join(lb, sizeof lb, dir, "train-labels-idx1-ubyte");
    write_idx_images(img, 0, 0x803, N, IH, IW, pix, sizeof pix, 0);
    write_idx_labels(lb, 0, 0x801, N, lab, sizeof lab);
    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load(dir, 1, NULL, &ds), SLIM_OK);
    check_batches_match(ds, 8, N);
    check_batches_match(ds, 5, 12); /* a prefix, another batch size */

    /* gather and read against the twin, and to_floats makes the twin. */
    slim_dataset *twin = float_twin(ds, N);
    uint32_t idx[3] = {36, 0, 17};
    float xb[3 * IH * IW], xf[3 * IH * IW];
    int32_t yb[3], yf[3];
    assert_int_equal(slim_dataset_gather(ds, idx, 3, xb, yb), SLIM_OK);
    assert_int_equal(slim_dataset_gather(twin, idx, 3, xf, yf), SLIM_OK);
    assert_memory_equal(xb, xf, sizeof xb);
    assert_memory_equal(yb, yf, sizeof yb);
    assert_int_equal(slim_dataset_read(ds, 34, 3, xb), SLIM_OK);
    assert_int_equal(slim_dataset_read(twin, 34, 3, xf), SLIM_OK);
    assert_memory_equal(xb, xf, sizeof xb);
    assert_error(slim_dataset_read(ds, 35, 3, xb), SLIM_ERR_ARG, "out of range");
    assert_error(slim_dataset_read(ds, N + 1, 0, xb), SLIM_ERR_ARG, "out of range");
    assert_int_equal(slim_dataset_read(ds, N, 0, xb), SLIM_OK);
    assert_int_equal(slim_dataset_to_floats(ds), SLIM_OK);
    assert_null(ds->pixels);
    assert_non_null(ds->images);
    assert_memory_equal(ds->images, twin->images, sizeof pix * sizeof(float));
    assert_int_equal(slim_dataset_to_floats(ds), SLIM_OK); /* floats already: nothing */
    assert_memory_equal(ds->images, twin->images, sizeof pix * sizeof(float));
    slim_dataset_free(twin);
    slim_dataset_free(ds);
    rm_tree(dir);

    /* Three channels, each with its own table. */
    dir = make_tmpdir("bytebatch3");
    unsigned char *recs = malloc((size_t)CN * CIFAR_REC);
    assert_non_null(recs);
    for (size_t i = 0; i < (size_t)CN * CIFAR_REC; i++)
        recs[i] = (unsigned char)slim_rng_below(&rng, 256);
    for (int r = 0; r < CN; r++)
        recs[(size_t)r * CIFAR_REC] = (unsigned char)(r % 10);
    char path[512];
    join(path, sizeof path, dir, "test_batch.bin");
    write_bytes(path, 0, recs, (size_t)CN * CIFAR_REC);
    assert_int_equal(slim_data_load(dir, 0, NULL, &ds), SLIM_OK);
    assert_int_equal(ds->c, 3);
    check_batches_match(ds, 4, CN);
    slim_dataset_free(ds);
    free(recs);
    rm_tree(dir);
}

/* ---- the real Fashion-MNIST --------------------------------------------- */

/* slim_data_normalisation: the kind a spec names, judged by the files of an
 * existing directory and by the name of one not on this machine. */
static void touch(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
}

static void test_normalisation_rule(void **state) {
    (void)state;
    float mean[3], std[3];
    assert_string_equal(slim_data_normalisation(NULL, 1, mean, std), "fashion-mnist");
    assert_true(mean[0] == 0.2860f && std[0] == 0.3530f);
    assert_string_equal(slim_data_normalisation("fashion-mnist", 3, mean, std), "image-folder");
    for (int k = 0; k < 3; k++)
        assert_true(mean[k] == 0.5f && std[k] == 0.5f);
    assert_string_equal(slim_data_normalisation("/nonexistent/MNIST", 1, mean, std), "mnist");
    assert_true(mean[0] == 0.1307f && std[0] == 0.3081f);
    assert_string_equal(slim_data_normalisation("/nonexistent/Fashion-Mnist", 1, mean, std),
                        "fashion-mnist");
    assert_string_equal(slim_data_normalisation("/nonexistent/CIFAR-10", 3, mean, std), "cifar-10");
    assert_true(mean[0] == 0.4914f && mean[1] == 0.4822f && mean[2] == 0.4465f);
    assert_true(std[0] == 0.2470f && std[1] == 0.2435f && std[2] == 0.2616f);
    assert_string_equal(slim_data_normalisation("/nonexistent/cifar", 1, mean, std),
                        "image-folder");
    assert_string_equal(slim_data_normalisation("/nonexistent/pets", 3, mean, std), "image-folder");

    /* An existing directory is judged by what it holds, not by its name. */
    char *dir = make_tmpdir("mnist");
    assert_string_equal(slim_data_normalisation(dir, 1, mean, std), "image-folder");
    touch(dir, "t10k-images-idx3-ubyte.gz");
    assert_string_equal(slim_data_normalisation(dir, 1, mean, std), "mnist");
    rm_tree(dir);
    dir = make_tmpdir("data");
    char sub[512];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    touch(sub, "test_batch.bin");
    assert_string_equal(slim_data_normalisation(dir, 3, mean, std), "cifar-10");
    rm_tree(dir);
}

static void test_fashion_mnist(void **state) {
    (void)state;
    if (!tu_have_fashion_mnist()) {
        print_message("Fashion-MNIST not installed: skipped\n");
        skip();
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load("fashion-mnist", 1, NULL, &ds), SLIM_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("Fashion-MNIST train loaded in %.3f s\n",
                  (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    assert_int_equal(ds->n, 60000);
    assert_true(ds->c == 1 && ds->h == 28 && ds->w == 28);
    assert_int_equal(ds->n_classes, 10);
    assert_string_equal(ds->class_names[0], "T-shirt/top");
    assert_string_equal(ds->class_names[9], "Ankle boot");
    int per_class[10] = {0};
    for (size_t i = 0; i < ds->n; i++)
        per_class[ds->labels[i]]++;
    for (int k = 0; k < 10; k++)
        assert_int_equal(per_class[k], 6000);
    assert_int_equal(ds->labels[0], 9); /* the data set's first image is an ankle boot */
    /* mean 0.2860 / std 0.3530 are the train set's rounded statistics, so
     * the normalised data is within rounding of mean 0, std 1. */
    assert_non_null(ds->pixels);
    assert_null(ds->images);
    float lut[SLIM_DATA_MAX_CHANNELS][256];
    slim_dataset_lut(ds, lut);
    double s = 0, s2 = 0;
    size_t total = ds->n * 784;
    for (size_t i = 0; i < total; i++) {
        double v = lut[0][ds->pixels[i]];
        s += v;
        s2 += v * v;
    }
    double mean = s / (double)total, std = sqrt(s2 / (double)total - mean * mean);
    assert_true(fabs(mean) < 0.005);
    assert_true(fabs(std - 1.0) < 0.005);
    float first[784];
    assert_int_equal(slim_dataset_read(ds, 0, 1, first), SLIM_OK);
    /* Batches of the byte set equal those of the float set the loader made
     * before (every pixel through the double formula at load time). */
    check_batches_match(ds, 128, 2000);
    slim_dataset_free(ds);

    slim_data_options opts = {.c = 1, .h = 28, .w = 28, .limit = 500};
    assert_int_equal(slim_data_load(NULL, 1, &opts, &ds), SLIM_OK);
    assert_int_equal(ds->n, 500);
    float again[784];
    assert_int_equal(slim_dataset_read(ds, 0, 1, again), SLIM_OK);
    assert_memory_equal(again, first, sizeof first);
    slim_dataset_free(ds);
    assert_int_equal(slim_data_load("", 0, NULL, &ds), SLIM_OK);
    assert_int_equal(ds->n, 10000);
    slim_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_roundtrip),
        cmocka_unit_test(test_idx_malformed),
        cmocka_unit_test(test_idx_huge_declared_count),
        cmocka_unit_test(test_idx_directory),
        cmocka_unit_test(test_cifar10),
        cmocka_unit_test(test_imagefolder),
        cmocka_unit_test(test_imagefolder_split),
        cmocka_unit_test(test_png_stb_guards),
        cmocka_unit_test(test_imagefolder_jpeg),
        cmocka_unit_test(test_augment_pieces),
        cmocka_unit_test(test_augment_batch),
        cmocka_unit_test(test_batcher),
        cmocka_unit_test(test_dataset_basics),
        cmocka_unit_test(test_normalise_every_byte),
        cmocka_unit_test(test_byte_batches_match_floats),
        cmocka_unit_test(test_normalisation_rule),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
