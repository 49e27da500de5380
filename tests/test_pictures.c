/* Pictures of any size (issue #21): the resize modes' geometry against
 * hand-computed cases and their pixels, the stratified split, the
 * statistics of an image folder, every bad input named in data.h's top, and
 * the random-resized crop. Files are made here under /tmp.
 *
 * The test binary counts allocations (malloc_count.h): a picture that
 * declares a huge size must be refused without allocating for it, and the
 * resized crop must stop allocating once warmed up. Under AddressSanitizer
 * those two counts are skipped. */
#include "testutil.h"

#include "data/internal.h"
#include "slim/data.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "malloc_count.h"

/* ---- helpers ------------------------------------------------------------ */

static void path_in(char *buf, size_t len, const char *dir, const char *name) {
    int k = snprintf(buf, len, "%s/%s", dir, name);
    assert_true(k > 0 && (size_t)k < len);
}

static void put_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A comp-channel h x w PNG at dir/name (dir made if missing) whose byte
 * (y, x, ch) is px(y, x, ch, arg). */
typedef unsigned (*pixel_fn)(int y, int x, int ch, int arg);
static void png_at(const char *dir, const char *name, int h, int w, int comp, pixel_fn px,
                   int arg) {
    char path[512];
    mkdir(dir, 0700); /* may exist */
    path_in(path, sizeof path, dir, name);
    unsigned char *buf = malloc((size_t)h * w * comp);
    assert_non_null(buf);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < comp; ch++)
                buf[(y * w + x) * comp + ch] = (unsigned char)px(y, x, ch, arg);
    assert_true(stbi_write_png(path, w, h, comp, buf, w * comp) != 0);
    free(buf);
}

static unsigned px_const(int y, int x, int ch, int v) {
    (void)y, (void)x, (void)ch;
    return (unsigned)v;
}

/* Rows 0-1 white, 2-5 grey 100, 6-7 black (an 8-row picture). */
static unsigned px_bands(int y, int x, int ch, int arg) {
    (void)x, (void)ch, (void)arg;
    return y < 2 ? 255 : y < 6 ? 100 : 0;
}

static unsigned px_pattern(int y, int x, int ch, int arg) {
    return (unsigned)((arg * 53 + y * 29 + x * 11 + ch * 71) & 0xff);
}

static slim_status load_image(const char *path, int c, int h, int w, slim_resize_mode m,
                              double crop_scale, float *x) {
    static const float mean[4] = {0, 0, 0, 0}, std[4] = {1, 1, 1, 1};
    return slim_data_load_image_ex(path, c, h, w, m, crop_scale, mean, std, x);
}

/* ---- resize ------------------------------------------------------------- */

static void check_geom(const data_resize_geom *g, double y0, double x0, double y1, double x1,
                       int oy, int ox, int oh, int ow) {
    if (fabs(g->y0 - y0) > 1e-9 || fabs(g->x0 - x0) > 1e-9 || fabs(g->y1 - y1) > 1e-9 ||
        fabs(g->x1 - x1) > 1e-9 || g->oy != oy || g->ox != ox || g->oh != oh || g->ow != ow)
        fail_msg("geometry [%g,%g)x[%g,%g) -> %dx%d at (%d,%d); expected [%g,%g)x[%g,%g) -> "
                 "%dx%d at (%d,%d)",
                 g->y0, g->y1, g->x0, g->x1, g->oh, g->ow, g->oy, g->ox, y0, y1, x0, x1, oh, ow, oy,
                 ox);
}

static void test_resize_geometry(void **state) {
    (void)state;
    /* { src_h, src_w, h, w, mode, crop_scale, expected y0, x0, y1, x1, oy, ox, oh, ow } */
    static const struct {
        int sh, sw, h, w, mode;
        double scale, y0, x0, y1, x1;
        int oy, ox, oh, ow;
    } cases[] = {
        /* 88x64 (height x width) onto 64x64: the centre 64 rows, 12..76;
         * padded, 64 x round(64 * 64 / 88) = 64x47 at columns 8..55. */
        {88, 64, 64, 64, SLIM_RESIZE_CROP, 1, 12, 0, 76, 64, 0, 0, 64, 64},
        {88, 64, 64, 64, SLIM_RESIZE_PAD, 1, 0, 0, 88, 64, 0, 8, 64, 47},
        {88, 64, 64, 64, SLIM_RESIZE_STRETCH, 1, 0, 0, 88, 64, 0, 0, 64, 64},
        /* 100x200 onto 50x60: the height binds (50/100 > 60/200), the
         * window is 100 x 120 at columns 40..160; padded, 200 columns
         * become 60 and 100 rows 30, at row 10. */
        {100, 200, 50, 60, SLIM_RESIZE_CROP, 1, 0, 40, 100, 160, 0, 0, 50, 60},
        {100, 200, 50, 60, SLIM_RESIZE_PAD, 1, 0, 0, 100, 200, 10, 0, 30, 60},
        /* 40x10 onto 20x20: the width binds; rows 15..25; padded 20x5. */
        {40, 10, 20, 20, SLIM_RESIZE_CROP, 1, 15, 0, 25, 10, 0, 0, 20, 20},
        {40, 10, 20, 20, SLIM_RESIZE_PAD, 1, 0, 0, 40, 10, 0, 7, 20, 5},
        /* crop_scale 2 keeps the centre half; 256/224 on a 256-side picture
         * is torchvision's Resize(256) + CenterCrop(224) of it. */
        {64, 64, 32, 32, SLIM_RESIZE_CROP, 2, 16, 16, 48, 48, 0, 0, 32, 32},
        {256, 256, 224, 224, SLIM_RESIZE_CROP, 256.0 / 224.0, 16, 16, 240, 240, 0, 0, 224, 224},
        /* A picture at the input's size maps onto itself. */
        {28, 28, 28, 28, SLIM_RESIZE_CROP, 1, 0, 0, 28, 28, 0, 0, 28, 28},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        data_resize_geom g;
        data_resize_geometry(cases[i].sh, cases[i].sw, cases[i].h, cases[i].w,
                             (slim_resize_mode)cases[i].mode, cases[i].scale, &g);
        check_geom(&g, cases[i].y0, cases[i].x0, cases[i].y1, cases[i].x1, cases[i].oy, cases[i].ox,
                   cases[i].oh, cases[i].ow);
    }

    /* Names. */
    static const char *const names[] = {"crop", "stretch", "pad", "none"};
    for (int m = 0; m < 4; m++) {
        slim_resize_mode back = SLIM_RESIZE_NONE;
        assert_string_equal(slim_resize_mode_name((slim_resize_mode)m), names[m]);
        assert_int_equal(slim_resize_mode_parse(names[m], &back), SLIM_OK);
        assert_int_equal(back, m);
    }
    slim_resize_mode m;
    tu_assert_error(slim_resize_mode_parse("fit", &m), SLIM_ERR_ARG, "crop, stretch, pad or none");
    assert_string_equal(slim_resize_mode_name((slim_resize_mode)9), "?");
}

/* Pixels through slim_data_load_image_ex (mean 0, std 1: x = p / 255). */
static void test_resize_pixels(void **state) {
    (void)state;
    char *dir = tu_make_tmpdir("resize");
    char bands[512], grey[512], pat[512], rgb[512];
    png_at(dir, "bands.png", 8, 4, 1, px_bands, 0);
    png_at(dir, "grey.png", 8, 4, 1, px_const, 100);
    png_at(dir, "pat.png", 5, 7, 3, px_pattern, 3);
    png_at(dir, "rgb.png", 6, 6, 3, px_pattern, 1);
    path_in(bands, sizeof bands, dir, "bands.png");
    path_in(grey, sizeof grey, dir, "grey.png");
    path_in(pat, sizeof pat, dir, "pat.png");
    path_in(rgb, sizeof rgb, dir, "rgb.png");
    float x[3 * 8 * 8];
    const float v100 = 100.0f / 255.0f;

    /* Crop: the centre 4 rows of 8 at scale 1 are the grey band exactly
     * (a wrong offset would take white or black rows). */
    assert_int_equal(load_image(bands, 1, 4, 4, SLIM_RESIZE_CROP, 0, x), SLIM_OK);
    for (int i = 0; i < 16; i++)
        assert_true(x[i] == v100);
    /* The default of slim_data_load_image is the same crop. */
    static const float zero = 0, one = 1;
    float y[16];
    assert_int_equal(slim_data_load_image(bands, 1, 4, 4, &zero, &one, y), SLIM_OK);
    assert_memory_equal(x, y, sizeof y);
    /* Pad: 8x4 onto 4x4 is 4x2 at columns 1..2, black elsewhere. */
    assert_int_equal(load_image(grey, 1, 4, 4, SLIM_RESIZE_PAD, 0, x), SLIM_OK);
    for (int r = 0; r < 4; r++)
        for (int cl = 0; cl < 4; cl++)
            assert_true(x[r * 4 + cl] == (cl == 1 || cl == 2 ? v100 : 0.0f));
    /* Stretch fills everything. */
    assert_int_equal(load_image(grey, 1, 4, 4, SLIM_RESIZE_STRETCH, 0, x), SLIM_OK);
    for (int i = 0; i < 16; i++)
        assert_true(x[i] == v100);
    /* Stretch of the bands to 4x4 halves the rows: white on top, black at
     * the bottom, values ordered and within the picture's. */
    assert_int_equal(load_image(bands, 1, 4, 4, SLIM_RESIZE_STRETCH, 0, x), SLIM_OK);
    for (int cl = 0; cl < 4; cl++) {
        for (int r = 1; r < 4; r++)
            assert_true(x[r * 4 + cl] <= x[(r - 1) * 4 + cl]);
        assert_true(x[cl] > v100 && x[12 + cl] < v100);
    }
    /* None: only the exact size. */
    tu_assert_error(load_image(bands, 1, 4, 4, SLIM_RESIZE_NONE, 0, x), SLIM_ERR_SHAPE,
                    "bands.png");
    assert_true(tu_error_has("8x4") && tu_error_has("4x4"));
    assert_int_equal(load_image(bands, 1, 8, 4, SLIM_RESIZE_NONE, 0, x), SLIM_OK);

    /* At its own size, every mode but none gives the bytes themselves. */
    for (int m = 0; m < 3; m++) {
        assert_int_equal(load_image(pat, 3, 5, 7, (slim_resize_mode)m, 1.0, x), SLIM_OK);
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 35; p++)
                assert_true(x[ch * 35 + p] == (float)(px_pattern(p / 7, p % 7, ch, 3) / 255.0));
    }
    /* crop_scale 2 on 8x8 from 4x4 ... the centre 3x3 of 6x6 upscaled 2x:
     * each value lies within the centre's range. */
    assert_int_equal(load_image(rgb, 3, 6, 6, SLIM_RESIZE_CROP, 2.0, x), SLIM_OK);
    for (int ch = 0; ch < 3; ch++) {
        unsigned lo = 255, hi = 0;
        for (int r = 1; r < 5; r++)
            for (int cl = 1; cl < 5; cl++) {
                unsigned v = px_pattern(r, cl, ch, 1);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        for (int p = 0; p < 36; p++)
            assert_true(x[ch * 36 + p] * 255.0f >= lo - 0.5f &&
                        x[ch * 36 + p] * 255.0f <= hi + 0.5f);
    }
    /* RGB to gray, resized: a grey RGB picture stays that grey. */
    png_at(dir, "grey3.png", 10, 6, 3, px_const, 100);
    path_in(rgb, sizeof rgb, dir, "grey3.png");
    assert_int_equal(load_image(rgb, 1, 3, 3, SLIM_RESIZE_CROP, 0, x), SLIM_OK);
    for (int i = 0; i < 9; i++)
        assert_true(fabsf(x[i] - 99.0f / 255.0f) < 1.5f / 255.0f); /* luma rounds down */
    /* 79x89 onto 64x64, a region resize on which one of stb's internal
     * checks fails (stb issue 1449): it must not abort a Debug or sanitizer
     * build, and the values stay within the picture's. */
    png_at(dir, "odd.png", 79, 89, 1, px_pattern, 5);
    path_in(rgb, sizeof rgb, dir, "odd.png");
    float *big = malloc(64 * 64 * sizeof *big);
    assert_non_null(big);
    assert_int_equal(load_image(rgb, 1, 64, 64, SLIM_RESIZE_CROP, 0, big), SLIM_OK);
    for (int i = 0; i < 64 * 64; i++)
        assert_true(big[i] >= 0.0f && big[i] <= 1.0f);
    free(big);
    /* Bad settings. */
    tu_assert_error(load_image(grey, 1, 4, 4, SLIM_RESIZE_CROP, 0.5, x), SLIM_ERR_ARG,
                    "crop scale");
    tu_assert_error(load_image(grey, 1, 4, 4, (slim_resize_mode)7, 0, x), SLIM_ERR_ARG,
                    "resize mode");
    tu_rm_tree(dir);
}

/* ---- splits ------------------------------------------------------------- */

/* Class folders a (10 pictures), b (7), c (1): picture k of the whole
 * folder is a 2x2 gray picture of value 10 k + 5 (so its value names it). */
static const int split_sizes[3] = {10, 7, 1};
static void make_split_folder(const char *root) {
    int id = 0;
    for (int cls = 0; cls < 3; cls++) {
        char d[512], name[32];
        char cname[2] = {(char)('a' + cls), 0};
        path_in(d, sizeof d, root, cname);
        for (int i = 0; i < split_sizes[cls]; i++, id++) {
            snprintf(name, sizeof name, "%02d.png", i);
            png_at(d, name, 2, 2, 1, px_const, 10 * id + 5);
        }
    }
}

/* The ids of ds's pictures into seen[] (counting), checking labels. */
static void note_ids(const slim_dataset *ds, int *seen, int *per_class) {
    for (size_t i = 0; i < ds->n; i++) {
        int id = (ds->pixels[i * 4] - 5) / 10;
        assert_true(id >= 0 && id < 18 && ds->pixels[i * 4] == 10 * id + 5);
        int cls = id < 10 ? 0 : id < 17 ? 1 : 2;
        assert_int_equal(ds->labels[i], cls);
        seen[id]++;
        per_class[cls]++;
    }
}

static void test_split(void **state) {
    (void)state;
    char *root = tu_make_tmpdir("valsplit");
    make_split_folder(root);
    slim_data_options o = {.c = 1, .h = 2, .w = 2, .val_split = 0.3, .split_seed = 5};
    slim_dataset *tr = NULL, *te = NULL, *again = NULL;
    assert_int_equal(slim_data_load(root, 1, &o, &tr), SLIM_OK);
    assert_int_equal(slim_data_load(root, 0, &o, &te), SLIM_OK);
    int seen[18] = {0}, train_n[3] = {0}, test_n[3] = {0};
    note_ids(tr, seen, train_n);
    note_ids(te, seen, test_n);
    /* Disjoint and complete. */
    for (int i = 0; i < 18; i++)
        assert_int_equal(seen[i], 1);
    /* Stratified: round(0.3 n) per class, none from a class of one. */
    assert_int_equal(test_n[0], 3);
    assert_int_equal(test_n[1], 2);
    assert_int_equal(test_n[2], 0);
    assert_int_equal(train_n[2], 1);
    /* Recorded; both splits carry the train split's classes. */
    assert_true(tr->val_split == 0.3 && tr->split_seed == 5 && te->val_split == 0.3);
    assert_int_equal(te->n_classes, 3);
    /* Normalised with the train split's statistics, not its own. */
    float own_mean, own_std;
    assert_int_equal(data_image_stats(te, 5, &own_mean, &own_std), SLIM_OK);
    assert_true(te->mean[0] == tr->mean[0] && te->std[0] == tr->std[0]);
    assert_true(own_mean != tr->mean[0]);
    /* Deterministic: the same options give the same pictures. */
    assert_int_equal(slim_data_load(root, 0, &o, &again), SLIM_OK);
    assert_int_equal(again->n, te->n);
    assert_memory_equal(again->pixels, te->pixels, te->n * 4);
    slim_dataset_free(again);
    /* Another seed, another split (of a's 120 possible test sets). */
    o.split_seed = 6;
    assert_int_equal(slim_data_load(root, 0, &o, &again), SLIM_OK);
    assert_int_equal(again->n, te->n);
    assert_true(memcmp(again->pixels, te->pixels, te->n * 4) != 0);
    slim_dataset_free(again);
    /* At least one test picture per class of two or more; at most n - 1. */
    o.val_split = 0.01;
    assert_int_equal(slim_data_load(root, 0, &o, &again), SLIM_OK);
    assert_int_equal(again->n, 2);
    slim_dataset_free(again);
    o.val_split = 0.99;
    assert_int_equal(slim_data_load(root, 1, &o, &again), SLIM_OK);
    assert_int_equal(again->n, 3); /* one of each class */
    slim_dataset_free(again);
    slim_dataset_free(tr);
    slim_dataset_free(te);

    /* Bad values and combinations. */
    o.val_split = 1.0;
    tu_assert_error(slim_data_load(root, 1, &o, &tr), SLIM_ERR_ARG, "(0, 1)");
    o.val_split = NAN;
    tu_assert_error(slim_data_load(root, 1, &o, &tr), SLIM_ERR_ARG, "(0, 1)");
    o.val_split = 0.2;
    o.val_dir = root;
    tu_assert_error(slim_data_load(root, 1, &o, &tr), SLIM_ERR_ARG, "exclude each other");

    /* A separate validation folder with some of the classes. */
    char *val = tu_make_tmpdir("valdir");
    char d[512];
    path_in(d, sizeof d, val, "b");
    png_at(d, "x.png", 2, 2, 1, px_const, 7);
    o.val_split = 0;
    o.val_dir = val;
    assert_int_equal(slim_data_load(root, 0, &o, &te), SLIM_OK);
    assert_true(te->n == 1 && te->labels[0] == 1 && te->n_classes == 3);
    assert_true(te->pixels[0] == 7);
    slim_dataset_free(te);
    assert_int_equal(slim_data_load(root, 1, &o, &tr), SLIM_OK);
    assert_int_equal(tr->n, 18);
    slim_dataset_free(tr);
    path_in(d, sizeof d, val, "z");
    png_at(d, "x.png", 2, 2, 1, px_const, 7);
    tu_assert_error(slim_data_load(root, 0, &o, &te), SLIM_ERR_FORMAT, "'z'");
    /* val_dir/test, when there, is the test split. */
    path_in(d, sizeof d, val, "test");
    assert_int_equal(mkdir(d, 0700), 0);
    path_in(d, sizeof d, val, "test/a");
    png_at(d, "x.png", 2, 2, 1, px_const, 9);
    assert_int_equal(slim_data_load(root, 0, &o, &te), SLIM_OK);
    assert_true(te->n == 1 && te->labels[0] == 0 && te->pixels[0] == 9);
    slim_dataset_free(te);
    o.val_dir = "/nonexistent/slim-val";
    tu_assert_error(slim_data_load(root, 0, &o, &te), SLIM_ERR_IO, "/nonexistent/slim-val");
    tu_rm_tree(val);

    /* A folder split already refuses a validation fraction. */
    o.val_dir = NULL;
    o.val_split = 0.2;
    path_in(d, sizeof d, root, "train");
    assert_int_equal(mkdir(d, 0700), 0);
    tu_assert_error(slim_data_load(root, 1, &o, &tr), SLIM_ERR_ARG, "split already");
    tu_rm_tree(root);
}

/* ---- statistics --------------------------------------------------------- */

static unsigned px_half(int y, int x, int ch, int arg) {
    (void)x, (void)ch, (void)arg;
    return y == 0 ? 0 : 255;
}

static unsigned px_rgb(int y, int x, int ch, int arg) {
    (void)y, (void)x;
    return ch == 0 ? 255 : ch == 1 ? (unsigned)arg : 51;
}

static void test_stats(void **state) {
    (void)state;
    char *root = tu_make_tmpdir("stats");
    char a[512], b[512];
    path_in(a, sizeof a, root, "a");
    path_in(b, sizeof b, root, "b");
    /* Gray: a/1 is rows 0 and 255, b/1 is 51 (0.2) everywhere. Over the 8
     * values: mean (2 + 4 * 0.2) / 8 = 0.35; variance (2 * 0.35^2 +
     * 2 * 0.65^2 + 4 * 0.15^2) / 8 = 0.1475. */
    png_at(a, "1.png", 2, 2, 1, px_half, 0);
    png_at(b, "1.png", 2, 2, 1, px_const, 51);
    slim_data_options o = {.c = 1, .h = 2, .w = 2};
    slim_dataset *ds = NULL;
    assert_int_equal(slim_data_load_imagefolder(root, NULL, 0, &o, &ds), SLIM_OK);
    assert_true(fabs(ds->mean[0] - 0.35) < 1e-7);
    assert_true(fabs(ds->std[0] - sqrt(0.1475)) < 1e-7);
    slim_dataset_free(ds);
    /* A constant channel gets std 1. */
    char *flat = tu_make_tmpdir("flat");
    char f[512];
    path_in(f, sizeof f, flat, "b");
    png_at(f, "1.png", 2, 2, 1, px_const, 51);
    assert_int_equal(slim_data_load_imagefolder(flat, NULL, 0, NULL, &ds), SLIM_OK);
    assert_true(fabs(ds->mean[0] - 0.2) < 1e-7 && ds->std[0] == 1.0f);
    slim_dataset_free(ds);
    tu_rm_tree(flat);
    /* Given statistics replace them; a bad std is refused. */
    o.have_norm = 1;
    o.mean[0] = 0.25f;
    o.std[0] = 0.125f;
    assert_int_equal(slim_data_load_imagefolder(root, NULL, 0, &o, &ds), SLIM_OK);
    assert_true(ds->mean[0] == 0.25f && ds->std[0] == 0.125f);
    slim_dataset_free(ds);
    o.std[0] = 0;
    tu_assert_error(slim_data_load_imagefolder(root, NULL, 0, &o, &ds), SLIM_ERR_ARG, "std");
    assert_null(ds);
    tu_rm_tree(root);

    /* have_norm replaces the published constants too (IDX here). */
    if (tu_have_fashion_mnist()) {
        slim_data_options idx = {.limit = 1, .have_norm = 1, .mean = {0.5f}, .std = {0.25f}};
        assert_int_equal(slim_data_load("fashion-mnist", 0, &idx, &ds), SLIM_OK);
        assert_true(ds->mean[0] == 0.5f && ds->std[0] == 0.25f);
        slim_dataset_free(ds);
        idx.have_norm = 0;
        assert_int_equal(slim_data_load("fashion-mnist", 0, &idx, &ds), SLIM_OK);
        assert_true(ds->mean[0] == 0.2860f && ds->std[0] == 0.3530f);
        slim_dataset_free(ds);
    }

    /* RGB per channel: r 255 in both, g 0 and 102, b 51. */
    root = tu_make_tmpdir("stats3");
    path_in(a, sizeof a, root, "a");
    path_in(b, sizeof b, root, "b");
    png_at(a, "1.png", 3, 2, 3, px_rgb, 0);
    png_at(b, "1.png", 3, 2, 3, px_rgb, 102);
    assert_int_equal(slim_data_load_imagefolder(root, NULL, 0, NULL, &ds), SLIM_OK);
    assert_true(ds->c == 3 && ds->mean[0] == 1.0f && ds->std[0] == 1.0f);
    assert_true(fabs(ds->mean[1] - 0.2) < 1e-7 && fabs(ds->std[1] - 0.2) < 1e-7);
    assert_true(fabs(ds->mean[2] - 0.2) < 1e-7 && ds->std[2] == 1.0f);
    slim_dataset_free(ds);
    tu_rm_tree(root);

    /* A sample of SLIM_DATA_STATS_SAMPLE pictures past that many: half the
     * pictures 0, half 255; a sample's mean is near 1/2, not exactly, and
     * is a function of the seed. */
    size_t n = 2 * SLIM_DATA_STATS_SAMPLE;
    assert_int_equal(data_new_bytes(n, 1, 1, 1, 2, &ds), SLIM_OK);
    memset(ds->pixels + n / 2, 255, n / 2);
    float m1, s1, m2, s2, m3, s3;
    assert_int_equal(data_image_stats(ds, 1, &m1, &s1), SLIM_OK);
    assert_int_equal(data_image_stats(ds, 2, &m2, &s2), SLIM_OK);
    assert_int_equal(data_image_stats(ds, 1, &m3, &s3), SLIM_OK);
    assert_true(m1 == m3 && s1 == s3 && m1 != m2);
    assert_true(fabs(m1 - 0.5) < 0.03 && fabs(m2 - 0.5) < 0.03 && m1 != 0.5f);
    /* At exactly the sample size every picture counts. */
    ds->n = SLIM_DATA_STATS_SAMPLE;
    memset(ds->pixels, 0, n);
    memset(ds->pixels, 255, SLIM_DATA_STATS_SAMPLE / 4);
    assert_int_equal(data_image_stats(ds, 1, &m1, &s1), SLIM_OK);
    assert_true(m1 == 0.25f && fabs(s1 - sqrt(0.1875)) < 1e-7);
    slim_dataset_free(ds);
}

/* ---- bad inputs --------------------------------------------------------- */

/* The file at path (in class folder a of root) makes slim_data_load fail
 * with status and a message naming it and saying `why`; with skip_bad the
 * folder loads without it, counted. The file is removed afterwards. */
static void bad_one(const char *root, const char *path, slim_status status, const char *why) {
    slim_data_options o = {.c = 1, .h = 4, .w = 4};
    slim_dataset *ds = NULL;
    const char *name = strrchr(path, '/') + 1;
    tu_assert_error(slim_data_load(root, 1, &o, &ds), status, name);
    assert_true(tu_error_has(why));
    assert_null(ds);
    o.skip_bad = 1;
    slim_log_level lvl = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_ERROR);
    assert_int_equal(slim_data_load(root, 1, &o, &ds), SLIM_OK);
    slim_set_log_level(lvl);
    assert_true(ds->n == 4 && ds->n_skipped == 1);
    slim_dataset_free(ds);
    assert_int_equal(remove(path), 0);
}

/* The picture at path is refused (SLIM_ERR_FORMAT, saying `needle`)
 * without an allocation over 1 MB (counted in builds that count). */
static void refused_small(const char *path, const char *needle) {
    float x[16];
#if TU_COUNT_MALLOC
    tu_largest_alloc = 0;
    tu_counting = 1;
#endif
    tu_assert_error(load_image(path, 1, 4, 4, SLIM_RESIZE_CROP, 0, x), SLIM_ERR_FORMAT, needle);
#if TU_COUNT_MALLOC
    tu_counting = 0;
    if (tu_largest_alloc >= ((size_t)1 << 20))
        fail_msg("%s: largest allocation %zu bytes", path, (size_t)tu_largest_alloc);
#endif
}

static void test_bad_pictures(void **state) {
    (void)state;
    char *root = tu_make_tmpdir("bad");
    char a[512], b[512], p[512];
    path_in(a, sizeof a, root, "a");
    path_in(b, sizeof b, root, "b");
    png_at(a, "1.png", 5, 6, 1, px_pattern, 1);
    png_at(a, "2.png", 9, 4, 3, px_pattern, 2);
    png_at(b, "1.png", 4, 4, 1, px_pattern, 3);
    png_at(b, "2.png", 30, 40, 3, px_pattern, 4);

    /* Zero bytes. */
    path_in(p, sizeof p, a, "empty.png");
    put_file(p, "", 0);
    bad_one(root, p, SLIM_ERR_FORMAT, "empty file");
    /* Not a picture by its first bytes. */
    path_in(p, sizeof p, a, "text.jpg");
    put_file(p, "hello, world", 12);
    bad_one(root, p, SLIM_ERR_FORMAT, "not a PNG or JPEG");
    /* Truncated. */
    unsigned char whole[4096];
    path_in(p, sizeof p, b, "2.png");
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t len = fread(whole, 1, sizeof whole, f);
    fclose(f);
    assert_true(len > 100 && len < sizeof whole);
    path_in(p, sizeof p, a, "cut.png");
    put_file(p, whole, len / 2);
    bad_one(root, p, SLIM_ERR_FORMAT, "truncated or corrupt PNG");
    /* Corrupt: a PNG whose IHDR says 0 columns. */
    whole[16] = whole[17] = whole[18] = whole[19] = 0;
    path_in(p, sizeof p, a, "zero.png");
    put_file(p, whole, len);
    bad_one(root, p, SLIM_ERR_FORMAT, "corrupt PNG");
    /* Absurd declared sizes, refused before allocating for them: a PNG of
     * 100000 x 100000 and a JPEG of 60000 x 60000 (small files). */
    whole[16] = 0, whole[17] = 0x01, whole[18] = 0x86, whole[19] = 0xa0; /* width 100000 */
    whole[20] = 0, whole[21] = 0x01, whole[22] = 0x86, whole[23] = 0xa0; /* height */
    path_in(p, sizeof p, a, "huge.png");
    put_file(p, whole, len);
    refused_small(p, "huge.png");
    bad_one(root, p, SLIM_ERR_FORMAT, "100000x100000");
    unsigned char jpg[1024];
    char src[4096];
    f = fopen(tu_source_path("tests/fuzz/corpus/image/gray-8x8.jpg", src, sizeof src), "rb");
    assert_non_null(f);
    size_t jlen = fread(jpg, 1, sizeof jpg, f);
    fclose(f);
    size_t sof = 0;
    for (size_t i = 0; i + 9 < jlen && !sof; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) sof = i;
    assert_true(sof > 0);
    jpg[sof + 5] = jpg[sof + 7] = 0xea, jpg[sof + 6] = jpg[sof + 8] = 0x60; /* 60000 */
    path_in(p, sizeof p, a, "huge.jpg");
    put_file(p, jpg, jlen);
    refused_small(p, "60000x60000");
    bad_one(root, p, SLIM_ERR_FORMAT, "8192x8192");
    /* Unreadable: a symlink loop, a dangling symlink, a directory named
     * like a picture, and (when not root, who may read anything) a file
     * without read permission. */
    path_in(p, sizeof p, a, "loop.png");
    assert_int_equal(symlink("loop.png", p), 0);
    bad_one(root, p, SLIM_ERR_IO, strerror(ELOOP));
    path_in(p, sizeof p, a, "gone.png");
    assert_int_equal(symlink("nowhere.png", p), 0);
    bad_one(root, p, SLIM_ERR_IO, strerror(ENOENT));
    path_in(p, sizeof p, a, "dir.png");
    assert_int_equal(mkdir(p, 0700), 0);
    bad_one(root, p, SLIM_ERR_IO, "not a regular file");
    if (geteuid() != 0) {
        path_in(p, sizeof p, a, "secret.png");
        put_file(p, whole, len);
        assert_int_equal(chmod(p, 0), 0);
        bad_one(root, p, SLIM_ERR_IO, strerror(EACCES));
    } else {
        print_message("running as root: the no-permission case is not tested\n");
    }

    /* Files that are not pictures are ignored and counted. */
    path_in(p, sizeof p, a, "notes.txt");
    put_file(p, "x", 1);
    path_in(p, sizeof p, b, "y.gif");
    put_file(p, "GIF89a", 6);
    path_in(p, sizeof p, root, "README");
    put_file(p, "x", 1);
    path_in(p, sizeof p, a, ".hidden.png"); /* hidden: skipped, not counted */
    put_file(p, "", 0);
    /* A directory symlink cycle: root/loop -> root. Only root/<class>/<file>
     * is read, so it is a class folder whose entries (a, b, loop, README)
     * are not pictures: an error naming it, not a hang. */
    path_in(p, sizeof p, root, "loop");
    assert_int_equal(symlink(".", p), 0);
    slim_data_options o = {.c = 1, .h = 4, .w = 4};
    slim_dataset *ds = NULL;
    tu_assert_error(slim_data_load(root, 1, &o, &ds), SLIM_ERR_FORMAT, "loop: no images found");
    assert_int_equal(remove(p), 0);
    slim_log_level lvl = slim_get_log_level();
    slim_set_log_level(SLIM_LOG_WARN); /* the count is an info line */
    assert_int_equal(slim_data_load(root, 1, &o, &ds), SLIM_OK);
    slim_set_log_level(lvl);
    assert_true(ds->n == 4 && ds->n_ignored == 3 && ds->n_skipped == 0);
    slim_dataset_free(ds);
    /* A class folder that is a dangling symlink. */
    path_in(p, sizeof p, root, "ghost");
    assert_int_equal(symlink("nowhere", p), 0);
    tu_assert_error(slim_data_load(root, 1, &o, &ds), SLIM_ERR_IO, "ghost");
    assert_int_equal(remove(p), 0);
    /* Every picture bad: an error even with skip_bad. */
    char *all_bad = tu_make_tmpdir("allbad");
    path_in(a, sizeof a, all_bad, "a");
    path_in(b, sizeof b, all_bad, "b");
    assert_int_equal(mkdir(a, 0700), 0);
    assert_int_equal(mkdir(b, 0700), 0);
    path_in(p, sizeof p, a, "1.png");
    put_file(p, "", 0);
    path_in(p, sizeof p, b, "1.png");
    put_file(p, "", 0);
    o.skip_bad = 1;
    slim_set_log_level(SLIM_LOG_ERROR);
    tu_assert_error(slim_data_load(all_bad, 1, &o, &ds), SLIM_ERR_FORMAT, "could be read");
    slim_set_log_level(lvl);
    tu_rm_tree(all_bad);
    tu_rm_tree(root);
}

/* ---- threads ------------------------------------------------------------ */

enum { T_FILES = 4, T_THREADS = 4, T_ROUNDS = 40, T_PER = 3 * 16 * 16 };

typedef struct decode_job {
    char paths[T_FILES + 1][512]; /* the last one is bad */
    uint8_t want[T_FILES][T_PER];
    int failures; /* runs that gave other bytes, or a bad message */
} decode_job;

/* Decodes every picture T_ROUNDS times, comparing with the sequential
 * result; the bad file's message must name it in this thread. */
static void *decode_thread(void *arg) {
    decode_job *job = arg;
    uint8_t got[T_PER];
    for (int r = 0; r < T_ROUNDS; r++)
        for (int i = 0; i <= T_FILES; i++) {
            slim_status st =
                data_decode_picture(job->paths[i], 3, 16, 16, (slim_resize_mode)(i % 3), 1.0, got);
            if (i == T_FILES) {
                if (st == SLIM_OK || !strstr(slim_last_error(), job->paths[i]))
                    __atomic_add_fetch(&job->failures, 1, __ATOMIC_RELAXED);
            } else if (st != SLIM_OK || memcmp(got, job->want[i], T_PER) != 0) {
                __atomic_add_fetch(&job->failures, 1, __ATOMIC_RELAXED);
            }
        }
    return NULL;
}

/* data_decode_picture from several threads at once (what the streaming
 * store does) gives the sequential bytes, and each thread its own error. */
static void test_decode_threads(void **state) {
    (void)state;
    char *dir = tu_make_tmpdir("threads");
    static decode_job job;
    memset(&job, 0, sizeof job);
    png_at(dir, "a.png", 40, 30, 3, px_pattern, 1);
    png_at(dir, "b.png", 17, 90, 1, px_pattern, 2);
    png_at(dir, "c.png", 64, 64, 4, px_pattern, 3);
    char src[4096];
    FILE *f = fopen(tu_source_path("tests/fuzz/corpus/image/rgb-8x8.jpg", src, sizeof src), "rb");
    assert_non_null(f);
    unsigned char jpg[4096];
    size_t jlen = fread(jpg, 1, sizeof jpg, f);
    fclose(f);
    static const char *const names[T_FILES + 1] = {"a.png", "b.png", "c.png", "d.jpg", "bad.png"};
    for (int i = 0; i <= T_FILES; i++)
        path_in(job.paths[i], sizeof job.paths[i], dir, names[i]);
    put_file(job.paths[3], jpg, jlen);
    put_file(job.paths[T_FILES], "\x89PNG\r\n\x1a\n", 8);
    for (int i = 0; i < T_FILES; i++)
        assert_int_equal(data_decode_picture(job.paths[i], 3, 16, 16, (slim_resize_mode)(i % 3),
                                             1.0, job.want[i]),
                         SLIM_OK);
    pthread_t t[T_THREADS];
    for (int i = 0; i < T_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, decode_thread, &job), 0);
    for (int i = 0; i < T_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(job.failures, 0);
    tu_rm_tree(dir);
}

/* ---- random-resized crop ------------------------------------------------ */

static void test_rrc(void **state) {
    (void)state;
    enum { N = 6, C = 3, H = 12, W = 10, PER = C * H * W };
    slim_dataset *ds = NULL;
    assert_int_equal(slim_dataset_new(0, C, H, W, 2, &ds), SLIM_OK);
    slim_augment aug;
    assert_int_equal(slim_augment_init_rrc(&aug, ds, 0, 1), SLIM_OK);
    assert_true(aug.mode == SLIM_AUGMENT_RRC && aug.scale_min == SLIM_AUGMENT_RRC_SCALE_MIN);
    slim_augment bad;
    tu_assert_error(slim_augment_init_rrc(&bad, ds, 1.5, 1), SLIM_ERR_ARG, "crop area");
    static float x[N * PER], y[N * PER], z[N * PER];
    slim_rng rng;
    slim_rng_seed(&rng, 42, 0);
    tu_fill_uniform(&rng, x, N * PER, -1.0f, 2.0f);

    /* Deterministic for a seed; another seed differs. */
    memcpy(y, x, sizeof x);
    memcpy(z, x, sizeof x);
    slim_rng r1, r2;
    slim_rng_seed(&r1, 7, 1);
    slim_rng_seed(&r2, 7, 1);
    assert_int_equal(slim_augment_batch(&aug, y, N, C, H, W, &r1), SLIM_OK);
    assert_int_equal(slim_augment_batch(&aug, z, N, C, H, W, &r2), SLIM_OK);
    assert_memory_equal(y, z, sizeof y);
    assert_true(memcmp(x, y, sizeof x) != 0);
    /* The filter's weights are >= 0 and sum to 1: every value stays within
     * its image channel's range. */
    for (int i = 0; i < N * C; i++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int p = 0; p < H * W; p++) {
            lo = fminf(lo, x[i * H * W + p]);
            hi = fmaxf(hi, x[i * H * W + p]);
        }
        for (int p = 0; p < H * W; p++)
            assert_true(y[i * H * W + p] >= lo - 1e-5f && y[i * H * W + p] <= hi + 1e-5f);
    }
    /* Warmed up, the same draws allocate nothing. */
    memcpy(z, x, sizeof x);
    slim_rng_seed(&r2, 7, 1);
#if TU_COUNT_MALLOC
    tu_allocs = 0;
    tu_counting = 1;
#endif
    assert_int_equal(slim_augment_batch(&aug, z, N, C, H, W, &r2), SLIM_OK);
#if TU_COUNT_MALLOC
    tu_counting = 0;
    assert_int_equal(tu_allocs, 0);
#endif
    assert_memory_equal(y, z, sizeof y);

    /* Scale and aspect forced to 1 on a square image: the identity, after
     * the draws data.h names (two uniforms, then top and left). */
    slim_dataset *sq = NULL;
    assert_int_equal(slim_dataset_new(0, C, W, W, 2, &sq), SLIM_OK);
    slim_augment one;
    assert_int_equal(slim_augment_init_rrc(&one, sq, 1.0, 0), SLIM_OK);
    one.aspect_min = one.aspect_max = 1.0;
    memcpy(y, x, sizeof x);
    slim_rng_seed(&r1, 3, 3);
    slim_rng_seed(&r2, 3, 3);
    assert_int_equal(slim_augment_batch(&one, y, N, C, W, W, &r1), SLIM_OK);
    assert_memory_equal(x, y, (size_t)N * C * W * W * sizeof(float));
    for (int i = 0; i < N; i++) {
        slim_rng_uniform(&r2);
        slim_rng_uniform(&r2);
        assert_int_equal(slim_rng_below(&r2, 1), 0);
        assert_int_equal(slim_rng_below(&r2, 1), 0);
    }
    assert_int_equal(slim_rng_u32(&r1), slim_rng_u32(&r2));
    /* A window resized: the left half of a ramp x[y][c] = c, doubled in
     * width, keeps the ramp's order and range. */
    float ramp[W * W];
    for (int p = 0; p < W * W; p++)
        ramp[p] = (float)(p % W);
    assert_int_equal(slim_augment_resized_crop(&one, ramp, 1, W, W, 0, 0, W, W / 2), SLIM_OK);
    for (int r = 0; r < W; r++)
        for (int cl = 0; cl < W; cl++) {
            float v = ramp[r * W + cl];
            assert_true(v >= 0 && v <= W / 2 - 1 + 1e-5f);
            if (cl) assert_true(v >= ramp[r * W + cl - 1]);
            assert_true(v == ramp[cl]); /* every row alike */
        }
    tu_assert_error(slim_augment_resized_crop(&one, ramp, 1, W, W, 5, 0, W, W), SLIM_ERR_ARG,
                    "outside");
    tu_assert_error(slim_augment_resized_crop(&one, x, 1, H * 2, W * 2, 0, 0, 4, 4), SLIM_ERR_ARG,
                    "set up for");
    one.scale_min = 0;
    tu_assert_error(slim_augment_batch(&one, y, N, C, W, W, &r1), SLIM_ERR_ARG, "not valid");
    slim_augment pad;
    assert_int_equal(slim_augment_init(&pad, ds, 2, 1), SLIM_OK);
    tu_assert_error(slim_augment_resized_crop(&pad, y, C, H, W, 0, 0, 4, 4), SLIM_ERR_ARG,
                    "not set up");
    slim_augment_free(&pad); /* nothing to free: allowed */
    slim_augment_free(&one);
    slim_augment_free(&aug);
    slim_dataset_free(sq);
    slim_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_geometry),
        cmocka_unit_test(test_resize_pixels),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_bad_pictures),
        cmocka_unit_test(test_decode_threads),
        cmocka_unit_test(test_rrc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
