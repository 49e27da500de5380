/* Fuzz target: the CIFAR-10 binary reader, through the --data resolver
 * (slim_data_load on a directory holding test_batch.bin or
 * data_batch_1..5.bin, directly or in cifar-10-batches-bin/).
 *
 * The reader needs paths, so the input is written to a directory made once
 * per process under $TMPDIR (else /tmp) and reused (removed at exit). Input layout:
 *   byte 0     flags: bit 0 train split (data_batch_1..5.bin, all five the
 *              same bytes) else the test split (test_batch.bin);
 *              bit 1 a batches.meta.txt follows;
 *              bit 2 zero-pad the records to a whole number of 3073-byte
 *              records (so a small input reaches the record checks; clear,
 *              the bytes are written as they are);
 *              bit 3 put the files in cifar-10-batches-bin/;
 *              bits 4..7 limit (0 = all images)
 *   if bit 1:  2 bytes M (little-endian), then M bytes of batches.meta.txt
 *   then       the batch file's bytes (at most 4 records are used)
 *
 * Also compiled into tests/test_fuzz_regressions.c (see fuzz_model.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slim/data.h"

#ifndef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define CF_RECORD 3073
#define CF_MAX_RECORDS 4

static char cf_dir[256];
static const char *const cf_files[7] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
                                        "batches.meta.txt"};
static const char *const cf_subs[2] = {"", "/cifar-10-batches-bin"};

static void cf_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_cifar: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Removes every file the target may have written (not the directories). */
static void cf_clear(void) {
    char path[512];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 7; i++) {
            snprintf(path, sizeof path, "%s%s/%s", cf_dir, cf_subs[s], cf_files[i]);
            unlink(path);
        }
}

static void cf_cleanup(void) {
    char path[512];
    cf_clear();
    snprintf(path, sizeof path, "%s%s", cf_dir, cf_subs[1]);
    rmdir(path);
    rmdir(cf_dir);
}

static void cf_write(const char *dir, const char *name, const uint8_t *data, size_t len,
                     size_t pad_to) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && (len == 0 || fwrite(data, 1, len, f) == len);
    for (size_t i = len; ok && i < pad_to; i++)
        ok = fputc(0, f) != EOF;
    if (!f || fclose(f) != 0 || !ok) cf_fail("cannot write the input file", path);
}

static slim_status cf_run(const uint8_t *data, size_t size) {
    if (size < 1) return SLIM_ERR_ARG;
    int flags = data[0];
    data++;
    size--;
    const uint8_t *meta = NULL;
    size_t meta_len = 0;
    if (flags & 2) {
        if (size < 2) return SLIM_ERR_ARG;
        meta_len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (meta_len > size) meta_len = size;
        meta = data;
        data += meta_len;
        size -= meta_len;
    }
    if (size > (size_t)CF_MAX_RECORDS * CF_RECORD) size = (size_t)CF_MAX_RECORDS * CF_RECORD;
    size_t pad_to = flags & 4 ? (size + CF_RECORD - 1) / CF_RECORD * CF_RECORD : size;

    cf_clear();
    char dir[512];
    snprintf(dir, sizeof dir, "%s%s", cf_dir, cf_subs[(flags >> 3) & 1]);
    int train = flags & 1;
    for (int i = train ? 0 : 5; i < (train ? 5 : 6); i++)
        cf_write(dir, cf_files[i], data, size, pad_to);
    if (meta) cf_write(dir, cf_files[6], meta, meta_len, meta_len);

    slim_data_options opts = {0};
    opts.limit = (size_t)(flags >> 4);
    slim_dataset *ds = NULL;
    slim_status st = slim_data_load(cf_dir, train, &opts, &ds);
    if (st != SLIM_OK) {
        if (ds) cf_fail("failed load returned a data set", NULL);
        if (!slim_last_error()[0]) cf_fail("failed load left no message", NULL);
        return st;
    }
    size_t records = pad_to / CF_RECORD * (train ? 5 : 1);
    size_t want = opts.limit && opts.limit < records ? opts.limit : records;
    if (!ds || ds->n != want || ds->c != 3 || ds->h != 32 || ds->w != 32 || ds->n_classes != 10 ||
        !ds->class_names)
        cf_fail("a loaded data set breaks its invariants", NULL);
    for (int k = 0; k < 10; k++)
        if (!ds->class_names[k] || !ds->class_names[k][0]) cf_fail("empty class name", NULL);
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= 10) cf_fail("label out of range", NULL);
    slim_dataset_free(ds);
    return SLIM_OK;
}

int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size);
int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size) {
    if (!cf_dir[0]) {
        char sub[512];
        slim_set_log_level(SLIM_LOG_QUIET);
        const char *tmp = getenv("TMPDIR");
        snprintf(cf_dir, sizeof cf_dir, "%s/slim_fuzz_cifar.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(cf_dir)) cf_fail("cannot make a temporary directory", cf_dir);
        snprintf(sub, sizeof sub, "%s%s", cf_dir, cf_subs[1]);
        if (mkdir(sub, 0700) != 0) cf_fail("cannot make a directory", sub);
        atexit(cf_cleanup);
    }
    (void)cf_run(data, size);
    return 0;
}
