/* Fuzz target: the IDX (MNIST-format) reader, through the --data resolver
 * (slim_data_load on a directory), so that the file naming rules, the gzip
 * layer (zlib passes plain files through and inflates gzip ones) and the
 * header and body checks are all reached.
 *
 * The reader needs paths, so the input is written to a directory made once
 * per process under $TMPDIR (else /tmp) and reused (removed at exit). Input layout:
 *   byte 0     flags: bit 0 files named train-* (else t10k-*);
 *              bit 1 load the train split (else the test split);
 *              bit 2 expect 1x28x28 images (else accept any shape);
 *              bits 3..7 limit (0 = all images)
 *   bytes 1-2  L, little-endian: the label file's length (cut to what follows)
 *   then       L bytes of label file, then the image file (the rest)
 * A data set that loads must satisfy the documented invariants.
 *
 * Also compiled into tests/test_fuzz_regressions.c (see fuzz_model.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slim/data.h"

#ifndef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

static char ix_dir[256];
static const char *const ix_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

static void ix_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_idx: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void ix_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", ix_dir, name);
}

static void ix_cleanup(void) {
    char path[512];
    for (int i = 0; i < 4; i++) {
        ix_path(path, sizeof path, ix_names[i]);
        unlink(path);
    }
    rmdir(ix_dir);
}

static void ix_write(const char *name, const uint8_t *data, size_t len) {
    char path[512];
    ix_path(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        ix_fail("cannot write the input file", path);
}

static slim_status ix_run(const uint8_t *data, size_t size) {
    if (size < 3) return SLIM_ERR_ARG;
    int flags = data[0];
    size_t lab_len = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (lab_len > size) lab_len = size;
    int names = flags & 1 ? 0 : 2, other = 2 - names;
    char path[512];
    for (int i = 0; i < 2; i++) {
        ix_path(path, sizeof path, ix_names[other + i]);
        unlink(path);
    }
    ix_write(ix_names[names + 1], data, lab_len);
    ix_write(ix_names[names], data + lab_len, size - lab_len);

    slim_data_options opts = {0};
    if (flags & 4) {
        opts.c = 1;
        opts.h = opts.w = 28;
    }
    opts.limit = (size_t)(flags >> 3);
    int train = (flags >> 1) & 1;
    slim_dataset *ds = NULL;
    slim_status st = slim_data_load(ix_dir, train, &opts, &ds);
    if (st != SLIM_OK) {
        if (ds) ix_fail("failed load returned a data set", NULL);
        if (!slim_last_error()[0]) ix_fail("failed load left no message", NULL);
        return st;
    }
    if (!ds || ds->n == 0 || ds->c != 1 || ds->h < 1 || ds->w < 1 || ds->n_classes != 10 ||
        !ds->class_names || (opts.limit && ds->n > opts.limit) || (opts.h && ds->h != opts.h))
        ix_fail("a loaded data set breaks its invariants", NULL);
    size_t per = (size_t)ds->h * (size_t)ds->w;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->n_classes)
            ix_fail("label out of range", NULL);
    if (!ds->pixels || ds->images) ix_fail("a loaded data set does not hold bytes", NULL);
    float lut[SLIM_DATA_MAX_CHANNELS][256], x[1 << 10];
    slim_dataset_lut(ds, lut);
    for (int p = 0; p < 256; p++)
        if (!(lut[0][p] > -1.0f && lut[0][p] < 3.0f)) ix_fail("pixel out of range", NULL);
    /* The first image read back through the table, as a batch gets it. */
    if (per <= sizeof x / sizeof *x) {
        if (slim_dataset_read(ds, 0, 1, x) != SLIM_OK) ix_fail("cannot read image 0", NULL);
        for (size_t i = 0; i < per; i++)
            if (x[i] != lut[0][ds->pixels[i]]) ix_fail("image 0 read back wrongly", NULL);
    }
    slim_dataset_free(ds);
    return SLIM_OK;
}

int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size);
int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size) {
    if (!ix_dir[0]) {
        slim_set_log_level(SLIM_LOG_QUIET);
        const char *tmp = getenv("TMPDIR");
        snprintf(ix_dir, sizeof ix_dir, "%s/slim_fuzz_idx.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(ix_dir)) ix_fail("cannot make a temporary directory", ix_dir);
        atexit(ix_cleanup);
    }
    (void)ix_run(data, size);
    return 0;
}
