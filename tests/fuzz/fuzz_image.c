/* Fuzz target: the picture loader (slim_data_load_image_ex: stb_image's PNG
 * and libjpeg-turbo's JPEG decoders, then the resize to the model's input
 * with stb_image_resize) and the image-folder loader.
 *
 * The input is written once per run to a file under a directory made once
 * per process under $TMPDIR (else /tmp) (removed at exit) and loaded with
 * several requested shapes, each in one of the resize modes: fixed ones
 * (1x28x28 crop, 3x32x32 pad, 4x2x2 stretch, 1x1x1 crop, 3x7x5 crop at
 * crop_scale 1.5, 1x9x3 none) and, when the header can be read, its own size
 * with 1 to 4 channels (up to 256x256, so that a header cannot make one run
 * slow). The same file is then loaded as the only image of a one-class image
 * folder with every shape inferred. The bytes are also taken for decoded
 * pixels (slim_data_pixels_to_input).
 *
 * Known bug (docs/RELIABILITY.md, bug 1): stb_image 2.27 (Debian's
 * libstb-dev 0.0~git20220908) does not check that a JPEG Huffman table (DHT)
 * declares at most 256 codes and writes past its arrays inside the decoder's
 * heap object. Until slim guards against it, SLIM_FUZZ_SKIP_KNOWN=1
 * (tools/fuzz --skip-known) skips such inputs so that a long run can look
 * for other bugs; the reproducers are replayed by
 * tests/test_fuzz_regressions.c, which never skips.
 *
 * Also compiled into tests/test_fuzz_regressions.c (see fuzz_model.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h> /* declarations only: the decoder lives in the library */

#include "slim/data.h"

#ifndef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define IM_MAX_SIDE 256

static char im_dir[256];

static void im_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_image: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void im_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", im_dir, name);
}

/* 1 if a DHT segment of a JPEG declares a table of more than 256 codes.
 * Every FF C4 pair is taken for a DHT marker (in entropy-coded data 0xFF is
 * always stuffed, so this errs only on payloads of other segments); the
 * tables are walked as stb_image walks them, reading zeros past the end. */
static int im_jpeg_dht_overflows(const uint8_t *d, size_t n) {
    size_t soi = 0; /* stb_image skips 0xFF fill bytes before the SOI marker */
    while (soi < n && d[soi] == 0xFF)
        soi++;
    if (soi == 0 || soi == n || d[soi] != 0xD8) return 0;
    for (size_t i = soi + 1; i + 3 < n; i++) {
        if (d[i] != 0xFF || d[i + 1] != 0xC4) continue;
        size_t end = i + 2 + ((size_t)d[i + 2] << 8 | d[i + 3]), p = i + 4;
        while (p < end && p < n) {
            size_t codes = 0;
            for (size_t k = 1; k <= 16; k++)
                codes += p + k < n ? d[p + k] : 0;
            if (codes > 256) return 1;
            p += 17 + codes;
        }
    }
    return 0;
}

static void im_cleanup(void) {
    char path[512];
    im_path(path, sizeof path, "root/a/x.png");
    unlink(path);
    im_path(path, sizeof path, "root/a");
    rmdir(path);
    im_path(path, sizeof path, "root");
    rmdir(path);
    rmdir(im_dir);
}

/* Loads path as c x h x w resized by mode; a success must give finite
 * values in [-1, 1]. */
static void im_load(const char *path, int c, int h, int w, slim_resize_mode mode,
                    double crop_scale) {
    static const float mean[4] = {0.5f, 0.5f, 0.5f, 0.5f}, std[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    float *x = malloc(n * sizeof *x);
    if (!x) return;
    slim_status st = slim_data_load_image_ex(path, c, h, w, mode, crop_scale, mean, std, x);
    if (st == SLIM_OK) {
        for (size_t i = 0; i < n; i++)
            if (!(x[i] >= -1.0f && x[i] <= 1.0f)) im_fail("pixel out of range", path);
    } else if (!slim_last_error()[0]) {
        im_fail("failed load left no message", path);
    }
    free(x);
}

/* The bytes themselves as decoded pixels (slim_data_pixels_to_input): a
 * gray picture for an odd size, RGB for an even one, rows as wide as fit
 * up to IM_MAX_SIDE; every resize mode into a few shapes. */
static void im_pixels(const uint8_t *data, size_t size) {
    static const float mean[4] = {0.5f, 0.5f, 0.5f, 0.5f}, std[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    int src_c = size % 2 ? 1 : 3;
    size_t n_px = size / (size_t)src_c;
    if (n_px == 0) return;
    int sw = n_px < IM_MAX_SIDE ? (int)n_px : IM_MAX_SIDE;
    int sh = n_px / (size_t)sw < IM_MAX_SIDE ? (int)(n_px / (size_t)sw) : IM_MAX_SIDE;
    float x[3 * 9 * 7];
    for (int m = 0; m <= SLIM_RESIZE_NONE; m++)
        for (int c = 1; c <= 3; c += 2) {
            int h = m == SLIM_RESIZE_NONE ? sh : 9, w = m == SLIM_RESIZE_NONE ? sw : 7;
            float *out = m == SLIM_RESIZE_NONE ? malloc((size_t)c * h * w * sizeof *out) : x;
            if (!out) return;
            slim_status st = slim_data_pixels_to_input(data, sh, sw, src_c, c, h, w,
                                                       (slim_resize_mode)m, 1.0, mean, std, out);
            for (size_t i = 0; st == SLIM_OK && i < (size_t)c * h * w; i++)
                if (!(out[i] >= -1.0f && out[i] <= 1.0f)) im_fail("pixel out of range", "pixels");
            if (st != SLIM_OK && !slim_last_error()[0])
                im_fail("failed pixels left no message", NULL);
            if (out != x) free(out);
        }
}

static void im_run(const uint8_t *data, size_t size) {
    im_pixels(data, size);
    char path[512];
    im_path(path, sizeof path, "root/a/x.png");
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        im_fail("cannot write the input file", path);

    static const struct {
        int c, h, w;
        slim_resize_mode mode;
        double crop_scale;
    } shapes[] = {
        {1, 28, 28, SLIM_RESIZE_CROP, 1.0},  {3, 32, 32, SLIM_RESIZE_PAD, 1.0},
        {4, 2, 2, SLIM_RESIZE_STRETCH, 1.0}, {1, 1, 1, SLIM_RESIZE_CROP, 1.0},
        {3, 7, 5, SLIM_RESIZE_CROP, 1.5},    {1, 9, 3, SLIM_RESIZE_NONE, 1.0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        im_load(path, shapes[i].c, shapes[i].h, shapes[i].w, shapes[i].mode, shapes[i].crop_scale);
    int w = 0, h = 0, comp = 0;
    int known = size <= INT32_MAX && stbi_info_from_memory(data, (int)size, &w, &h, &comp);
    if (!known || w < 1 || h < 1 || w > IM_MAX_SIDE || h > IM_MAX_SIDE) return;
    for (int c = 1; c <= 4; c++)
        im_load(path, c, h, w, (slim_resize_mode)(c % 4), 1.0);

    char root[512];
    im_path(root, sizeof root, "root");
    slim_dataset *ds = NULL;
    slim_status st = slim_data_load_imagefolder(root, NULL, 0, NULL, &ds);
    if (st == SLIM_OK) {
        if (ds->n != 1 || ds->n_classes != 1 || ds->h != h || ds->w != w ||
            (ds->c != 1 && ds->c != 3) || ds->labels[0] != 0)
            im_fail("a loaded image folder breaks its invariants", NULL);
        slim_dataset_free(ds);
    } else if (ds || !slim_last_error()[0]) {
        im_fail("failed image folder load", NULL);
    }
}

int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size);
int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size) {
    if (!im_dir[0]) {
        char sub[512];
        slim_set_log_level(SLIM_LOG_QUIET);
        const char *tmp = getenv("TMPDIR");
        snprintf(im_dir, sizeof im_dir, "%s/slim_fuzz_image.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(im_dir)) im_fail("cannot make a temporary directory", im_dir);
        im_path(sub, sizeof sub, "root");
        if (mkdir(sub, 0700) != 0) im_fail("cannot make a directory", sub);
        im_path(sub, sizeof sub, "root/a");
        if (mkdir(sub, 0700) != 0) im_fail("cannot make a directory", sub);
        atexit(im_cleanup);
    }
    static int skip_known = -1;
    if (skip_known < 0) {
        const char *e = getenv("SLIM_FUZZ_SKIP_KNOWN");
        skip_known = e && e[0] == '1';
    }
    if (skip_known && im_jpeg_dht_overflows(data, size)) return 0;
    im_run(data, size);
    return 0;
}
