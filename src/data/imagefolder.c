/* Image folders, root/<class>/<picture>.png|jpg|jpeg: listing, the
 * stratified split, bad pictures, and the data set of the decoded pictures
 * (each through data_decode_picture, picture.c). data.h's top says what is
 * read and what is refused. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_LEN 4096
/* The split's shuffles use rng stream SPLIT_STREAM + class index, apart
 * from the streams training draws from the same seed. */
#define SPLIT_STREAM 0x73706c6974000000ull /* "split" */

/* A growable list of strings. */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static slim_status list_push(name_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
        l->v = v;
        l->cap = cap;
    }
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (!copy) return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
    memcpy(copy, s, len);
    l->v[l->n++] = copy;
    return SLIM_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir (names starting with '.' skipped). want_dirs: its
 * subdirectories; an entry that cannot be looked at (a symlink loop, a
 * dangling symlink) is an error naming it, and other files are counted in
 * *ignored. !want_dirs: the entries with a picture's name (whatever they
 * are: reading one reports what is wrong with it); the others are counted
 * in *ignored. */
static slim_status list_dir(const char *dir, int want_dirs, name_list *out, size_t *ignored) {
    DIR *d = opendir(dir);
    if (!d) return slim_error(SLIM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    slim_status st = SLIM_OK;
    struct dirent *e;
    char path[PATH_LEN];
    while (st == SLIM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs) {
            if (data_is_picture_name(e->d_name))
                st = list_push(out, e->d_name);
            else
                ++*ignored;
            continue;
        }
        st = data_join(path, sizeof path, dir, e->d_name);
        if (st != SLIM_OK) break;
        struct stat sb;
        if (stat(path, &sb) != 0)
            st = slim_error(SLIM_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        else if (S_ISDIR(sb.st_mode))
            st = list_push(out, e->d_name);
        else
            ++*ignored;
    }
    closedir(d);
    if (st != SLIM_OK) {
        list_free(out);
        return st;
    }
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return SLIM_OK;
}

slim_status data_list_classes(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    name_list l = {0};
    size_t ignored = 0;
    SLIM_TRY(list_dir(dir, 1, &l, &ignored));
    if (l.n == 0)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: no class subdirectories (expected %s/<class>/<image>.png|jpg)", dir,
                          dir);
    if (l.n > INT32_MAX) {
        list_free(&l);
        return slim_error(SLIM_ERR_FORMAT, "%s: too many classes", dir);
    }
    *names = l.v;
    *n = (int)l.n;
    return SLIM_OK;
}

void data_free_names(char **names, int n) {
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* One picture file and its label. */
typedef struct folder_item {
    char *path;
    int32_t label;
} folder_item;

static void items_free(folder_item *items, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(items[i].path);
    free(items);
}

static slim_status items_push(folder_item **items, size_t *n, size_t *cap, const char *path,
                              int32_t label) {
    if (*n == *cap) {
        size_t next = *cap ? *cap * 2 : 256;
        folder_item *grown = realloc(*items, next * sizeof **items);
        if (!grown) return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
        *items = grown;
        *cap = next;
    }
    size_t len = strlen(path) + 1;
    char *copy = malloc(len);
    if (!copy) return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
    memcpy(copy, path, len);
    (*items)[*n] = (folder_item){copy, label};
    ++*n;
    return SLIM_OK;
}

/* Every picture of every class subdirectory of dir, in (class, name) order,
 * labelled by position in `classes`. A class without pictures is an error
 * when `defines` (the folder's own classes), else a warning. */
static slim_status collect(const char *dir, char *const *classes, int n_classes, int defines,
                           folder_item **items_out, size_t *n_out, size_t *ignored) {
    name_list subdirs = {0};
    SLIM_TRY(list_dir(dir, 1, &subdirs, ignored));
    folder_item *items = NULL;
    size_t n = 0, cap = 0;
    slim_status st = SLIM_OK;
    char class_dir[PATH_LEN], path[PATH_LEN];
    for (size_t s = 0; s < subdirs.n && st == SLIM_OK; s++) {
        int label = -1;
        for (int k = 0; k < n_classes; k++)
            if (strcmp(classes[k], subdirs.v[s]) == 0) label = k;
        if (label < 0) {
            st = slim_error(SLIM_ERR_FORMAT,
                            "%s: class '%s' is not one of the %d classes of the train split", dir,
                            subdirs.v[s], n_classes);
            break;
        }
        st = data_join(class_dir, sizeof class_dir, dir, subdirs.v[s]);
        name_list files = {0};
        if (st == SLIM_OK) st = list_dir(class_dir, 0, &files, ignored);
        if (st == SLIM_OK && files.n == 0) {
            if (defines)
                st = slim_error(SLIM_ERR_FORMAT,
                                "%s: no images found in this class folder (no .png/.jpg/.jpeg "
                                "files; every class needs some: remove the folder or add "
                                "pictures)",
                                class_dir);
            else
                slim_log(SLIM_LOG_WARN, "%s: no .png/.jpg/.jpeg images in this class", class_dir);
        }
        for (size_t i = 0; i < files.n && st == SLIM_OK; i++) {
            st = data_join(path, sizeof path, class_dir, files.v[i]);
            if (st == SLIM_OK) st = items_push(&items, &n, &cap, path, label);
        }
        list_free(&files);
    }
    list_free(&subdirs);
    if (st == SLIM_OK && n == 0)
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: no images found (expected %s/<class>/<image>.png|jpg)", dir, dir);
    if (st != SLIM_OK) {
        items_free(items, n);
        return st;
    }
    *items_out = items;
    *n_out = n;
    return SLIM_OK;
}

/* The stratified split of data.h's top: keeps, in place and in order, the
 * items of part 1 (train) or 0 (test) of items (in class order). */
static slim_status split_items(folder_item *items, size_t *n, double val_split, uint64_t seed,
                               int part) {
    size_t total = *n, kept = 0;
    uint8_t *test = calloc(total ? total : 1, 1);
    uint32_t *perm = malloc((total ? total : 1) * sizeof *perm);
    if (!test || !perm) {
        free(test);
        free(perm);
        return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory for the split");
    }
    for (size_t first = 0, end; first < total; first = end) {
        for (end = first; end < total && items[end].label == items[first].label; end++)
            ;
        size_t count = end - first, n_test = 0;
        if (count >= 2) {
            n_test = (size_t)llround(val_split * (double)count);
            if (n_test < 1) n_test = 1;
            if (n_test > count - 1) n_test = count - 1;
        }
        for (size_t i = 0; i < count; i++)
            perm[i] = (uint32_t)i;
        slim_rng rng;
        slim_rng_seed(&rng, seed, SPLIT_STREAM + (uint64_t)items[first].label);
        slim_rng_shuffle(&rng, perm, count);
        for (size_t i = 0; i < n_test; i++)
            test[first + perm[i]] = 1;
    }
    for (size_t i = 0; i < total; i++) {
        if (test[i] == (part == 0))
            items[kept++] = items[i];
        else
            free(items[i].path);
    }
    free(test);
    free(perm);
    *n = kept;
    return SLIM_OK;
}

/* The shape entries opts leaves at 0, from the first picture whose header
 * reads (the first at all without skip_bad). */
static slim_status infer_shape(const folder_item *items, size_t n, const slim_data_options *opts,
                               int *c, int *h, int *w) {
    *c = opts ? opts->c : 0;
    *h = opts ? opts->h : 0;
    *w = opts ? opts->w : 0;
    if (*c && *h && *w) return SLIM_OK;
    int ih = 0, iw = 0, comp = 0;
    slim_status st = SLIM_ERR_FORMAT;
    for (size_t i = 0; i < n && st != SLIM_OK; i++) {
        st = data_picture_info(items[i].path, &ih, &iw, &comp);
        if (st != SLIM_OK && !(opts && opts->skip_bad)) return st;
    }
    if (st != SLIM_OK) return st;
    if (!*c) *c = comp <= 2 ? 1 : 3; /* drop alpha */
    if (!*h) *h = ih;
    if (!*w) *w = iw;
    return SLIM_OK;
}

/* The data set of the kept pictures (evenly spaced picks when limiting, so
 * that every class stays represented), decoded through the picture store
 * (stream.c; with skip_bad a bad picture is left out and counted). */
static slim_status decode_items(const folder_item *items, size_t total, size_t keep, int c, int h,
                                int w, int n_classes, const slim_data_options *opts,
                                slim_dataset **out) {
    const char **paths = malloc(keep * sizeof *paths);
    int32_t *labels = malloc(keep * sizeof *labels);
    slim_status st = SLIM_OK;
    if (!paths || !labels) st = slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
    for (size_t k = 0; k < keep && st == SLIM_OK; k++) {
        size_t i = keep == total ? k : (size_t)((unsigned long long)k * total / keep);
        paths[k] = items[i].path;
        labels[k] = items[i].label;
    }
    size_t skipped = 0;
    if (st == SLIM_OK)
        st = data_pictures_load(paths, labels, keep, c, h, w, n_classes,
                                opts ? opts->resize : SLIM_RESIZE_CROP, opts ? opts->crop_scale : 0,
                                data_decode_picture, opts && opts->skip_bad, opts, out, &skipped);
    if (st == SLIM_OK) (*out)->n_skipped = skipped;
    free(paths);
    free(labels);
    return st;
}

static slim_status check_options(const char *dir, const slim_data_options *opts) {
    if (!opts) return SLIM_OK;
    if (opts->c < 0 || opts->c > SLIM_DATA_MAX_CHANNELS || opts->h < 0 || opts->w < 0)
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", dir, opts->c,
                          opts->h, opts->w);
    if ((unsigned)opts->resize > SLIM_RESIZE_NONE)
        return slim_error(SLIM_ERR_ARG, "%s: unknown resize mode %d", dir, (int)opts->resize);
    if (opts->crop_scale != 0 && !(opts->crop_scale >= 1 && opts->crop_scale <= 1e6))
        return slim_error(SLIM_ERR_ARG, "%s: crop scale %g must be >= 1", dir, opts->crop_scale);
    if (opts->val_split != 0 && !(opts->val_split > 0 && opts->val_split < 1))
        return slim_error(SLIM_ERR_ARG, "%s: validation split %g must be in (0, 1)", dir,
                          opts->val_split);
    return SLIM_OK;
}

slim_status data_load_imagefolder_part(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts, int part,
                                       slim_dataset **out) {
    *out = NULL;
    SLIM_TRY(check_options(dir, opts));
    char **own_names = NULL;
    int n_own = 0;
    if (!class_names) {
        SLIM_TRY(data_list_classes(dir, &own_names, &n_own));
        class_names = (const char *const *)own_names;
        n_classes = n_own;
    } else if (n_classes < 1) {
        return slim_error(SLIM_ERR_ARG, "%s: %d class names given", dir, n_classes);
    }
    folder_item *items = NULL;
    size_t total = 0, ignored = 0;
    slim_dataset *ds = NULL;
    int c = 0, h = 0, w = 0;
    double val_split = part >= 0 ? opts->val_split : 0;
    uint64_t seed = opts ? opts->split_seed : 0;
    slim_status st = collect(dir, (char *const *)class_names, n_classes, own_names != NULL, &items,
                             &total, &ignored);
    if (st == SLIM_OK && part >= 0) st = split_items(items, &total, val_split, seed, part);
    if (st == SLIM_OK && total == 0)
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: the %s split of %g is empty (every class has a single picture)", dir,
                        part ? "train" : "test", val_split);
    if (st == SLIM_OK) st = infer_shape(items, total, opts, &c, &h, &w);
    size_t keep = opts && opts->limit && opts->limit < total ? opts->limit : total;
    if (st == SLIM_OK) st = decode_items(items, total, keep, c, h, w, n_classes, opts, &ds);
    if (st == SLIM_OK) st = data_set_class_names(ds, class_names, n_classes);
    if (st == SLIM_OK) st = data_set_source(ds, dir);
    if (st == SLIM_OK) {
        ds->kind = "imagefolder";
        ds->resize = opts ? opts->resize : SLIM_RESIZE_CROP;
        ds->crop_scale = opts && opts->crop_scale ? opts->crop_scale : SLIM_DATA_CROP_SCALE;
        ds->val_split = val_split;
        ds->split_seed = seed;
        ds->n_ignored = ignored;
        if (ignored)
            slim_log(SLIM_LOG_INFO, "%s: ignored %zu file%s that %s not .png/.jpg/.jpeg pictures",
                     dir, ignored, ignored == 1 ? "" : "s", ignored == 1 ? "is" : "are");
    }
    if (st == SLIM_OK) {
        if (opts && opts->have_norm)
            st = data_set_norm(ds, opts->mean, opts->std);
        else
            st = data_image_stats(ds, seed, ds->mean, ds->std);
    }
    items_free(items, total);
    if (own_names) data_free_names(own_names, n_own);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return SLIM_OK;
}

slim_status slim_data_load_imagefolder(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts,
                                       slim_dataset **out) {
    return data_load_imagefolder_part(dir, class_names, n_classes, opts, -1, out);
}
