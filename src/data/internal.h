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

#endif
