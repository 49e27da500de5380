/* The in-memory data set and the helpers its loaders share: the bottom of
 * the data layer (it calls no loader). */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A data set of n images of one form: floats (`bytes` 0) or pixel bytes,
 * with room for the first `held` images (the rest: a store's). */
static slim_status dataset_alloc(size_t n, size_t held, int c, int h, int w, int n_classes,
                                 int bytes, slim_dataset **out) {
    *out = NULL;
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1 || n_classes < 1)
        return slim_error(SLIM_ERR_ARG, "data set: bad shape %dx%dx%d or %d classes", c, h, w,
                          n_classes);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    size_t size = bytes ? 1 : sizeof(float);
    if (n > 0 && per > SIZE_MAX / size / n)
        return slim_error(SLIM_ERR_NOMEM, "data set: %zu images of %dx%dx%d do not fit in memory",
                          n, c, h, w);
    slim_dataset *ds = slim_calloc(1, sizeof *ds);
    if (!ds) return SLIM_ERR_NOMEM;
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->n_classes = n_classes;
    ds->kind = "memory";
    for (int k = 0; k < SLIM_DATA_MAX_CHANNELS; k++) {
        ds->mean[k] = 0.0f;
        ds->std[k] = 1.0f;
    }
    /* calloc(1, ...) when n == 0 so that the pointers are never NULL. */
    void *data = slim_calloc_large(held ? held * per : 1, size);
    if (bytes)
        ds->pixels = data;
    else
        ds->images = data;
    ds->labels = slim_calloc(n ? n : 1, sizeof(int32_t));
    if (!data || !ds->labels) {
        slim_dataset_free(ds);
        return slim_error(SLIM_ERR_NOMEM, "data set: cannot allocate %zu images of %dx%dx%d", n, c,
                          h, w);
    }
    *out = ds;
    return SLIM_OK;
}

slim_status slim_dataset_new(size_t n, int c, int h, int w, int n_classes, slim_dataset **out) {
    return dataset_alloc(n, n, c, h, w, n_classes, 0, out);
}

slim_status data_new_bytes(size_t n, int c, int h, int w, int n_classes, slim_dataset **out) {
    return dataset_alloc(n, n, c, h, w, n_classes, 1, out);
}

slim_status data_new_partial(size_t n, size_t cached, int c, int h, int w, int n_classes,
                             slim_dataset **out) {
    return dataset_alloc(n, cached < n ? cached : n, c, h, w, n_classes, 1, out);
}

void slim_dataset_free(slim_dataset *ds) {
    if (!ds) return;
    if (ds->class_names) {
        for (int i = 0; i < ds->n_classes; i++)
            free(ds->class_names[i]);
        free(ds->class_names);
    }
    data_store_free(ds->store);
    free(ds->pixels);
    free(ds->images);
    free(ds->labels);
    free(ds->source);
    free(ds);
}

void slim_dataset_lut(const slim_dataset *ds, float lut[SLIM_DATA_MAX_CHANNELS][256]) {
    for (int k = 0; k < ds->c && k < SLIM_DATA_MAX_CHANNELS; k++)
        data_lut(lut[k], ds->mean[k], ds->std[k]);
}

/* Whether image i of a byte data set lies in its pixels (not the store's). */
static int in_pixels(const slim_dataset *ds, size_t i) {
    return !ds->store || i < data_store_cached(ds->store);
}

slim_status data_image_bytes(const slim_dataset *ds, size_t i, uint8_t *out) {
    if (!ds->pixels) return slim_error(SLIM_ERR_ARG, "data set: holds floats, not bytes");
    if (i >= ds->n)
        return slim_error(SLIM_ERR_ARG, "data set: index %zu out of range (%zu images)", i, ds->n);
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    if (in_pixels(ds, i)) {
        memcpy(out, ds->pixels + i * per, per);
        return SLIM_OK;
    }
    return data_store_get(ds->store, i, out);
}

/* x: (c, h, w) = lut[k][p] of the bytes p: (c, h, w). */
static void expand(const uint8_t *p, int c, size_t plane, const float lut[][256], float *x) {
    for (int k = 0; k < c; k++) {
        const float *t = lut[k];
        for (size_t j = 0; j < plane; j++)
            x[j] = t[p[j]];
        x += plane;
        p += plane;
    }
}

/* expand() with the bytes at the start of x itself: backwards, so that no
 * float (bytes 4j..4j+3 for float j) is written over a byte not yet read. */
static void expand_in_place(float *x, int c, size_t plane, const float lut[][256]) {
    const uint8_t *p = (const uint8_t *)x;
    for (int k = c; k-- > 0;) {
        const float *t = lut[k];
        for (size_t j = plane; j-- > 0;)
            x[(size_t)k * plane + j] = t[p[(size_t)k * plane + j]];
    }
}

/* Image `i` of ds into x: (c, h, w), normalised through lut when ds holds
 * bytes. `per` = c h w, `plane` = h w. A streamed image's bytes are fetched
 * into x itself and expanded there, so nothing is allocated for them. */
static slim_status copy_image(const slim_dataset *ds, const float lut[][256], size_t per,
                              size_t plane, size_t i, float *x) {
    if (!ds->pixels) {
        memcpy(x, ds->images + i * per, per * sizeof(float));
        return SLIM_OK;
    }
    if (in_pixels(ds, i)) {
        expand(ds->pixels + i * per, ds->c, plane, lut, x);
        return SLIM_OK;
    }
    SLIM_TRY(data_store_get(ds->store, i, (uint8_t *)x));
    expand_in_place(x, ds->c, plane, lut);
    return SLIM_OK;
}

slim_status slim_dataset_gather(const slim_dataset *ds, const uint32_t *idx, size_t count, float *x,
                                int32_t *y) {
    size_t plane = (size_t)ds->h * (size_t)ds->w, per = (size_t)ds->c * plane;
    for (size_t i = 0; i < count; i++)
        if (idx[i] >= ds->n)
            return slim_error(SLIM_ERR_ARG, "data set: index %u out of range (%zu images)",
                              (unsigned)idx[i], ds->n);
    data_prefetch(ds, idx, 0, count);
    /* 256 divisions per channel per call: negligible next to a batch. */
    float lut[SLIM_DATA_MAX_CHANNELS][256];
    if (ds->pixels) slim_dataset_lut(ds, lut);
    for (size_t i = 0; i < count; i++) {
        SLIM_TRY(copy_image(ds, (const float(*)[256])lut, per, plane, idx[i], x + i * per));
        if (y) y[i] = ds->labels[idx[i]];
    }
    return SLIM_OK;
}

void data_prefetch(const slim_dataset *ds, const uint32_t *idx, size_t first, size_t count) {
    if (!ds->store || !ds->pixels) return;
    if (idx) {
        data_store_prefetch(ds->store, idx + first, count);
        return;
    }
    uint32_t range[256];
    if (first >= ds->n) return;
    if (count > ds->n - first) count = ds->n - first;
    for (size_t done = 0; done < count;) {
        size_t k = count - done < 256 ? count - done : 256;
        for (size_t j = 0; j < k; j++)
            range[j] = (uint32_t)(first + done + j);
        data_store_prefetch(ds->store, range, k);
        done += k;
    }
}

/* Images slim_dataset_read asks a store to decode ahead, at the most. */
#define DATA_READ_AHEAD 512

slim_status slim_dataset_read(const slim_dataset *ds, size_t first, size_t count, float *x) {
    if (first > ds->n || count > ds->n - first)
        return slim_error(SLIM_ERR_ARG, "data set: images %zu..%zu out of range (%zu images)",
                          first, first + count, ds->n);
    size_t plane = (size_t)ds->h * (size_t)ds->w, per = (size_t)ds->c * plane;
    /* This range, then the next one (a reader walks the set in order). */
    if (ds->store && ds->pixels) {
        size_t ahead = count <= DATA_READ_AHEAD / 2 ? 2 * count : DATA_READ_AHEAD;
        (void)data_store_reserve(ds->store, ahead); /* a hint: fewer slots still work */
        data_prefetch(ds, NULL, first, ahead);
    }
    float lut[SLIM_DATA_MAX_CHANNELS][256];
    if (ds->pixels) slim_dataset_lut(ds, lut);
    for (size_t i = 0; i < count; i++)
        SLIM_TRY(copy_image(ds, (const float(*)[256])lut, per, plane, first + i, x + i * per));
    return SLIM_OK;
}

slim_status slim_dataset_to_floats(slim_dataset *ds) {
    if (!ds->pixels) return SLIM_OK;
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    if (ds->n > 0 && per > SIZE_MAX / sizeof(float) / ds->n)
        return slim_error(SLIM_ERR_NOMEM, "data set: %zu images do not fit in memory as floats",
                          ds->n);
    float *images = slim_calloc_large(ds->n ? ds->n * per : 1, sizeof(float));
    if (!images)
        return slim_error(SLIM_ERR_NOMEM, "data set: cannot allocate %zu images as floats", ds->n);
    slim_status st = slim_dataset_read(ds, 0, ds->n, images); /* fails only when streamed */
    if (st != SLIM_OK) {
        free(images);
        return st;
    }
    free(ds->pixels);
    ds->pixels = NULL;
    ds->images = images;
    data_store_free(ds->store);
    ds->store = NULL;
    return SLIM_OK;
}

/* ---- helpers for the loaders ------------------------------------------ */

slim_status data_pictures_load(const char *const *paths, const int32_t *labels, size_t n, int c,
                               int h, int w, int n_classes, slim_resize_mode mode,
                               double crop_scale, data_decode_fn decode, int skip_bad,
                               const slim_data_options *opts, slim_dataset **out,
                               size_t *n_skipped) {
    *out = NULL;
    if (n_skipped) *n_skipped = 0;
    slim_data_store *s = NULL;
    SLIM_TRY(
        data_store_new(paths, n, c, h, w, mode, crop_scale, decode, opts ? opts->workers : 0, &s));
    size_t per = (size_t)c * (size_t)h * (size_t)w, cached = n;
    if (opts && opts->streaming) {
        size_t fit = opts->cache_mib > (SIZE_MAX >> 20) ? SIZE_MAX : (opts->cache_mib << 20) / per;
        if (fit < cached) cached = fit;
    }
    slim_dataset *ds = NULL;
    slim_status st = data_new_partial(n, cached, c, h, w, n_classes, &ds);
    if (st == SLIM_OK) {
        memcpy(ds->labels, labels, n * sizeof *labels);
        st = data_store_check(s, ds->pixels, cached, ds->labels, skip_bad, n_skipped);
    }
    if (st != SLIM_OK) {
        data_store_free(s);
        slim_dataset_free(ds);
        return st;
    }
    ds->n = data_store_count(s);
    if (data_store_cached(s) < ds->n)
        ds->store = s; /* the data set owns it from here */
    else
        data_store_free(s);
    *out = ds;
    return SLIM_OK;
}

void data_lut(float lut[256], double mean, double std) {
    for (int p = 0; p < 256; p++)
        lut[p] = (float)(((double)p / 255.0 - mean) / std);
}

static char *dup_string(const char *s) {
    size_t len = strlen(s) + 1;
    char *d = slim_calloc(len, 1);
    if (d) memcpy(d, s, len);
    return d;
}

slim_status data_set_class_names(slim_dataset *ds, const char *const *names, int n) {
    char **copy = slim_calloc((size_t)n, sizeof *copy);
    if (!copy) return SLIM_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        copy[i] = dup_string(names[i]);
        if (!copy[i]) {
            for (int j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return SLIM_ERR_NOMEM;
        }
    }
    if (ds->class_names) {
        for (int i = 0; i < ds->n_classes; i++)
            free(ds->class_names[i]);
        free(ds->class_names);
    }
    ds->class_names = copy;
    ds->n_classes = n;
    return SLIM_OK;
}

slim_status data_set_source(slim_dataset *ds, const char *source) {
    char *s = dup_string(source);
    if (!s) return SLIM_ERR_NOMEM;
    free(ds->source);
    ds->source = s;
    return SLIM_OK;
}

slim_status data_check_shape(const slim_data_options *opts, int c, int h, int w, const char *what) {
    if (!opts) return SLIM_OK;
    if ((opts->c && opts->c != c) || (opts->h && opts->h != h) || (opts->w && opts->w != w))
        return slim_error(SLIM_ERR_SHAPE, "%s holds %dx%dx%d images but %dx%dx%d are expected",
                          what, c, h, w, opts->c ? opts->c : c, opts->h ? opts->h : h,
                          opts->w ? opts->w : w);
    return SLIM_OK;
}

slim_status data_join(char *buf, size_t len, const char *dir, const char *name) {
    int k = snprintf(buf, len, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= len)
        return slim_error(SLIM_ERR_ARG, "path too long: %s/%s", dir, name);
    return SLIM_OK;
}

int data_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int data_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int data_contains_nocase(const char *s, const char *word) {
    size_t n = strlen(word);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && tolower((unsigned char)s[i]) == word[i])
            i++;
        if (i == n) return 1;
    }
    return 0;
}

int data_find_idx_file(char *buf, size_t len, const char *dir, const char *base) {
    char name[256];
    snprintf(name, sizeof name, "%s.gz", base);
    if (data_join(buf, len, dir, name) == SLIM_OK && data_is_file(buf)) return 1;
    if (data_join(buf, len, dir, base) == SLIM_OK && data_is_file(buf)) return 1;
    return 0;
}

slim_status data_dir_kind(const char *dir, data_kind *kind, char *cifar_dir, size_t len) {
    char path[4096], sub[4096];
    if (data_find_idx_file(path, sizeof path, dir, "train-images-idx3-ubyte") ||
        data_find_idx_file(path, sizeof path, dir, "t10k-images-idx3-ubyte")) {
        *kind = data_contains_nocase(dir, "fashion") ? DATA_FASHION_MNIST : DATA_MNIST;
        return SLIM_OK;
    }
    static const char *const cifar_markers[] = {"data_batch_1.bin", "test_batch.bin"};
    const char *where = dir;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            SLIM_TRY(data_join(sub, sizeof sub, dir, "cifar-10-batches-bin"));
            where = sub;
        }
        for (int i = 0; i < 2; i++) {
            SLIM_TRY(data_join(path, sizeof path, where, cifar_markers[i]));
            if (data_is_file(path)) {
                *kind = DATA_CIFAR10;
                int n = snprintf(cifar_dir, len, "%s", where);
                return n >= 0 && (size_t)n < len
                           ? SLIM_OK
                           : slim_error(SLIM_ERR_ARG, "path too long: %s", where);
            }
        }
    }
    *kind = DATA_IMAGE_FOLDER;
    return SLIM_OK;
}
