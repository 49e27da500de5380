/* The CIFAR-10 binary version: files of 3073-byte records, one label byte
 * then a 32x32 image stored as 1024 R, 1024 G and 1024 B bytes, which is
 * already CHW and is kept as bytes (data.h). Sizes come from the file length (a whole number of
 * records), so nothing is allocated on a file's say-so. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_C 3
#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_C * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_FILES 5
#define CIFAR_BLOCK 1024 /* records per fread */
#define CIFAR_NAME_LEN 256
#define PATH_LEN 4096

static const char *const cifar_names[CIFAR_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

/* Class names: the first 10 non-empty lines of batches.meta.txt if it
 * exists, else the standard ones. */
static slim_status load_names(const char *dir, slim_dataset *ds) {
    char path[PATH_LEN];
    SLIM_TRY(data_join(path, sizeof path, dir, "batches.meta.txt"));
    FILE *f = fopen(path, "rb");
    if (!f) return data_set_class_names(ds, cifar_names, CIFAR_CLASSES);
    char names[CIFAR_CLASSES][CIFAR_NAME_LEN];
    const char *ptrs[CIFAR_CLASSES];
    int n = 0;
    char line[CIFAR_NAME_LEN];
    while (n < CIFAR_CLASSES && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                           line[len - 1] == '\t'))
            line[--len] = '\0';
        if (len == 0) continue;
        memcpy(names[n], line, len + 1);
        ptrs[n] = names[n];
        n++;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) return slim_error(SLIM_ERR_IO, "%s: read failed", path);
    if (n < CIFAR_CLASSES)
        return slim_error(SLIM_ERR_FORMAT, "%s: %d class names, expected %d", path, n,
                          CIFAR_CLASSES);
    return data_set_class_names(ds, ptrs, CIFAR_CLASSES);
}

/* Reads every record of one file; images with index < keep (counting from
 * `first`, the file's first record) are stored in ds. */
static slim_status read_file(const char *path, size_t records, size_t first, size_t keep,
                             unsigned char *block, slim_dataset *ds) {
    FILE *f = fopen(path, "rb");
    if (!f) return slim_error(SLIM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    slim_status st = SLIM_OK;
    for (size_t r = 0; r < records && st == SLIM_OK;) {
        size_t count = records - r < CIFAR_BLOCK ? records - r : CIFAR_BLOCK;
        if (fread(block, CIFAR_RECORD, count, f) != count) {
            st = slim_error(SLIM_ERR_IO, "%s: read failed or file shrank at record %zu", path, r);
            break;
        }
        for (size_t k = 0; k < count; k++, r++) {
            const unsigned char *rec = block + k * CIFAR_RECORD;
            if (rec[0] >= CIFAR_CLASSES) {
                st = slim_error(SLIM_ERR_FORMAT, "%s: record %zu has label %u (not in 0..%d)", path,
                                r, (unsigned)rec[0], CIFAR_CLASSES - 1);
                break;
            }
            size_t i = first + r;
            if (i >= keep) continue;
            ds->labels[i] = rec[0];
            memcpy(ds->pixels + i * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
    if (st == SLIM_OK && fgetc(f) != EOF)
        st = slim_error(SLIM_ERR_FORMAT, "%s: file grew while being read", path);
    fclose(f);
    return st;
}

slim_status slim_data_load_cifar10(const char *dir, int train, const slim_data_options *opts,
                                   slim_dataset **out) {
    *out = NULL;
    char paths[CIFAR_TRAIN_FILES][PATH_LEN];
    size_t records[CIFAR_TRAIN_FILES];
    int n_files = train ? CIFAR_TRAIN_FILES : 1;
    size_t total = 0;
    for (int i = 0; i < n_files; i++) {
        char name[32];
        if (train)
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        SLIM_TRY(data_join(paths[i], sizeof paths[i], dir, name));
        struct stat st;
        if (stat(paths[i], &st) != 0)
            return slim_error(SLIM_ERR_IO, "%s: %s (the CIFAR-10 %s split needs %s)", paths[i],
                              strerror(errno), train ? "train" : "test",
                              train ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin");
        if (!S_ISREG(st.st_mode))
            return slim_error(SLIM_ERR_IO, "%s: not a regular file", paths[i]);
        if (st.st_size <= 0 || st.st_size % CIFAR_RECORD != 0)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: %lld bytes is not a whole number of %d-byte CIFAR-10 records "
                              "(truncated or not CIFAR-10)",
                              paths[i], (long long)st.st_size, CIFAR_RECORD);
        records[i] = (size_t)(st.st_size / CIFAR_RECORD);
        total += records[i];
    }
    SLIM_TRY(data_check_shape(opts, CIFAR_C, CIFAR_SIDE, CIFAR_SIDE, dir));
    size_t keep = opts && opts->limit && opts->limit < total ? opts->limit : total;

    slim_dataset *ds = NULL;
    SLIM_TRY(data_new_bytes(keep, CIFAR_C, CIFAR_SIDE, CIFAR_SIDE, CIFAR_CLASSES, &ds));
    ds->kind = "cifar10";
    data_norm(DATA_CIFAR10, CIFAR_C, ds->mean, ds->std);
    unsigned char *block = malloc((size_t)CIFAR_BLOCK * CIFAR_RECORD);
    slim_status st = block ? SLIM_OK : slim_error(SLIM_ERR_NOMEM, "CIFAR-10: out of memory");
    size_t first = 0;
    for (int i = 0; i < n_files && st == SLIM_OK; i++) {
        st = read_file(paths[i], records[i], first, keep, block, ds);
        first += records[i];
    }
    free(block);
    if (st == SLIM_OK) st = load_names(dir, ds);
    if (st == SLIM_OK) st = data_set_source(ds, dir);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return SLIM_OK;
}
