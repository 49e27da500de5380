/* Helpers shared by the data loaders (not part of the public API). */
#ifndef SLIM_DATA_INTERNAL_H
#define SLIM_DATA_INTERNAL_H

#include "slim/data.h"

#include <stdio.h>

/* lut[p] = (p / 255 - mean) / std, in double, rounded once to float. */
void data_lut(float lut[256], double mean, double std);
/* A zero-filled byte data set (pixels allocated, images NULL) of n images,
 * otherwise like slim_dataset_new. */
slim_status data_new_bytes(size_t n, int c, int h, int w, int n_classes, slim_dataset **out);
/* Copies names[0..n) into ds->class_names (sets ds->n_classes = n). */
slim_status data_set_class_names(slim_dataset *ds, const char *const *names, int n);
/* Sets ds->source to a copy of `source`. */
slim_status data_set_source(slim_dataset *ds, const char *source);
/* Checks an expected shape (0 = any) against the data's; the message names
 * `what` (the data set) and both shapes. */
slim_status data_check_shape(const slim_data_options *opts, int c, int h, int w, const char *what);
/* "<dir>/<name>" into buf; an error when it does not fit. */
slim_status data_join(char *buf, size_t len, const char *dir, const char *name);
/* slim_data_load_idx keeping only the first `limit` images (0 = all); the
 * whole files are still validated. */
slim_status data_load_idx_limit(const char *images_path, const char *labels_path, float mean,
                                float std, size_t limit, slim_dataset **out);
/* The sorted class subdirectories of an image folder (an error when there
 * are none). Free with data_free_names. */
slim_status data_list_classes(const char *dir, char ***names, int *n);
void data_free_names(char **names, int n);
int data_is_dir(const char *path);
int data_is_file(const char *path);
/* Whether s contains word (given in lower case), ignoring case. */
int data_contains_nocase(const char *s, const char *word);

/* The kinds of data slim reads, each with a normalisation rule (norm.c). */
typedef enum data_kind {
    DATA_FASHION_MNIST,
    DATA_MNIST,
    DATA_CIFAR10,
    DATA_IMAGE_FOLDER,
} data_kind;
/* dir/<base>.gz if it is a file, else dir/<base> if it is (the path into
 * buf); 0 if neither. */
int data_find_idx_file(char *buf, size_t len, const char *dir, const char *base);
/* What directory dir holds, as slim_data_load reads it: IDX files (Fashion-
 * MNIST when dir's name says fashion, else MNIST), CIFAR-10 binaries in dir
 * or in its cifar-10-batches-bin/ (that directory into cifar_dir), or else
 * an image folder. An error only for a path too long. */
slim_status data_dir_kind(const char *dir, data_kind *kind, char *cifar_dir, size_t len);
/* mean, std: (c) the data.h statistics of `kind`; 0 (nothing written) when
 * the kind's statistics have another channel count. */
int data_norm(data_kind kind, int c, float *mean, float *std);

/* ---- pictures (picture.c, resize.c) ------------------------------------ */

/* Decodes one picture file into out: (c, h, w) bytes at the model's input
 * size, converted to c channels and resized by mode (data.h's top).
 * crop_scale: 0 = SLIM_DATA_CROP_SCALE. Errors name the file (and for a
 * bad header, what is wrong). Thread-safe: no global state, no slim_log;
 * the error message is thread-local (src/core/error.c), so a worker thread
 * that fails must copy slim_last_error() for the thread that reports it. */
slim_status data_decode_picture(const char *path, int c, int h, int w, slim_resize_mode mode,
                                double crop_scale, uint8_t *out);
/* What a picture's header says: *h x *w pixels, *comp channels stored (1
 * gray, 2 gray + alpha, 3 RGB, 4 RGBA). Checks the SLIM_DATA_MAX_PIXELS cap.
 * Thread-safe as data_decode_picture. */
slim_status data_picture_info(const char *path, int *h, int *w, int *comp);
/* Whether name ends in .png, .jpg or .jpeg (any case). */
int data_is_picture_name(const char *name);

/* Where a resize takes its pixels from and puts them: the source rectangle
 * [y0, y1) x [x0, x1) in source pixels (edges, fractions allowed) lands on
 * the output rectangle of oh x ow pixels at (oy, ox); outside that the
 * output is black. */
typedef struct data_resize_geom {
    double y0, x0, y1, x1;
    int oy, ox, oh, ow;
} data_resize_geom;
/* The geometry of mode (not SLIM_RESIZE_NONE, which the caller handles) for
 * a src_h x src_w picture and an h x w output; crop_scale >= 1 (CROP). */
void data_resize_geometry(int src_h, int src_w, int h, int w, slim_resize_mode mode,
                          double crop_scale, data_resize_geom *g);
/* Resamples src: (src_h, src_w, c) interleaved bytes by g into dst:
 * (h, w, c) interleaved (data.h's filter). A geometry that maps the picture
 * onto itself is a copy. Only an allocation can fail (SLIM_ERR_NOMEM). */
slim_status data_resize_bytes(const uint8_t *src, int src_h, int src_w, int c,
                              const data_resize_geom *g, uint8_t *dst, int h, int w);
/* Memory stb_image_resize may reuse from call to call (NULL: malloc each
 * time). */
typedef struct data_scratch {
    void *buf;
    size_t cap;
} data_scratch;
/* Resamples the ch x cw window at (top, left) of src: (h, w) floats (one
 * plane, row stride w) into dst: (oh, ow) floats, edges clamped at the
 * window. */
slim_status data_resize_plane(const float *src, int w, int top, int left, int ch, int cw,
                              float *dst, int oh, int ow, data_scratch *scratch);

/* ---- statistics (stats.c) ---------------------------------------------- */

/* Image i of ds as bytes: out: (c, h, w). ds must hold bytes. */
slim_status data_image_bytes(const slim_dataset *ds, size_t i, uint8_t *out);
/* mean, std: (ds->c) the statistics of data.h's top for ds's images, the
 * sample (when ds->n > SLIM_DATA_STATS_SAMPLE) drawn from seed. */
slim_status data_image_stats(const slim_dataset *ds, uint64_t seed, float *mean, float *std);
/* ds->mean, ds->std = mean, std: (ds->c); an error unless every std is a
 * finite number > 0 and every mean finite. */
slim_status data_set_norm(slim_dataset *ds, const float *mean, const float *std);

/* ---- image folders (imagefolder.c) ------------------------------------- */

/* slim_data_load_imagefolder, and with part 1 (train) or 0 (test) only that
 * part of opts->val_split's stratified split (opts required then); -1: the
 * whole folder. */
slim_status data_load_imagefolder_part(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts, int part,
                                       slim_dataset **out);

/* ---- picture store: decode cache + streaming (stream.c) ---------------- */

typedef struct slim_data_store slim_data_store;

/* How the store decodes a file: into out: (c, h, w) bytes; thread-safe,
 * errors in the thread-local message (data_decode_picture). */
typedef slim_status (*data_decode_fn)(const char *path, int c, int h, int w, slim_resize_mode mode,
                                      double crop_scale, uint8_t *out);
/* A store of the files paths[0..n) (copied), decoded at (c, h, w) by
 * `decode`, with `workers` decode threads started (0 = SLIM_DATA_WORKERS). */
slim_status data_store_new(const char *const *paths, size_t n, int c, int h, int w,
                           slim_resize_mode mode, double crop_scale, data_decode_fn decode,
                           int workers, slim_data_store **out);
/* The load pass: decodes every file once in the threads, files [0, cached)
 * into pixels: (cached, c, h, w). A bad file is an error (the first in path
 * order, whatever the threads' timing), or with skip_bad it is left out:
 * the store, labels: (n) and pixels close up over it (the cache then holds
 * the first `cached` good files) and *n_skipped counts it. Afterwards the
 * store holds data_store_count() images, of which data_store_cached() in
 * pixels; the rest are streamed (data_store_get). */
slim_status data_store_check(slim_data_store *s, uint8_t *pixels, size_t cached, int32_t *labels,
                             int skip_bad, size_t *n_skipped);
size_t data_store_count(const slim_data_store *s);
/* A data set of the pictures paths[0..n) with labels, decoded at (c, h, w)
 * by `decode` (dataset.c): every file decoded once at load by the store's
 * threads (opts->workers) and kept in pixels, or with opts->streaming only
 * the first floor(cache_mib MiB / (c h w)), the store (ds->store) decoding
 * the rest when they are asked for. Bad pictures: data_store_check. Sets
 * labels, n_classes and the shape; class names, source, kind and
 * statistics are the caller's. */
slim_status data_pictures_load(const char *const *paths, const int32_t *labels, size_t n, int c,
                               int h, int w, int n_classes, slim_resize_mode mode,
                               double crop_scale, data_decode_fn decode, int skip_bad,
                               const slim_data_options *opts, slim_dataset **out,
                               size_t *n_skipped);
void data_store_free(slim_data_store *s);
/* Images [0, cached) live in the data set's pixels; the store decodes the
 * others. */
size_t data_store_cached(const slim_data_store *s);
/* Asks the decode threads to start on images idx[0..count) (those not
 * cached or already under way), in that order, as far as free slots go;
 * one whose decode failed is tried again. A hint only: nothing fails. */
void data_store_prefetch(slim_data_store *s, const uint32_t *idx, size_t count);
/* Image i (>= cached, < n) into out: (c, h, w) bytes: from a prefetch slot
 * when ready (waiting when a thread is on it), else decoded here. A decode
 * error (a thread's or this one's) is returned with the picture's message. */
slim_status data_store_get(slim_data_store *s, size_t i, uint8_t *out);
/* Keeps at least `slots` prefetch slots (a batcher asks for a few batches). */
slim_status data_store_reserve(slim_data_store *s, size_t slots);
/* For a streamed data set, asks the store to start decoding images
 * idx[first..first+count), or without idx images first..first+count-1 (as
 * far as n goes); nothing otherwise. A hint: nothing fails. */
void data_prefetch(const slim_dataset *ds, const uint32_t *idx, size_t first, size_t count);
/* A byte data set of n images with pixels for the first `cached` only. */
slim_status data_new_partial(size_t n, size_t cached, int c, int h, int w, int n_classes,
                             slim_dataset **out);

#endif
