/* Image folders, root/<class>/<image>.png|jpg|jpeg, decoded with stb_image.
 *
 * This file holds the one STB_IMAGE_IMPLEMENTATION of the library: no other
 * file of slim may define it. Only the PNG and JPEG decoders are compiled in
 * (less code exposed to untrusted files). Images are checked, never resized:
 * the size is read from the header (stbi_info) before decoding, so a file
 * that declares a huge size is refused without allocating for it. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

#define PATH_LEN 4096
#define FOLDER_MEAN 0.5
#define FOLDER_STD 0.5

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

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
           strcasecmp(dot, ".jpeg") == 0;
}

/* Sorted entries of dir (hidden ones skipped) that are directories
 * (want_dirs) or image files (!want_dirs). */
static slim_status list_dir(const char *dir, int want_dirs, name_list *out) {
    DIR *d = opendir(dir);
    if (!d) return slim_error(SLIM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    slim_status st = SLIM_OK;
    struct dirent *e;
    char path[PATH_LEN];
    while (st == SLIM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !is_image_name(e->d_name)) continue;
        st = slim_data_join(path, sizeof path, dir, e->d_name);
        if (st != SLIM_OK) break;
        if (want_dirs ? slim_data_is_dir(path) : slim_data_is_file(path))
            st = list_push(out, e->d_name);
    }
    closedir(d);
    if (st != SLIM_OK) {
        list_free(out);
        return st;
    }
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return SLIM_OK;
}

slim_status slim_data_list_classes(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    name_list l = {0};
    SLIM_TRY(list_dir(dir, 1, &l));
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

void slim_data_free_names(char **names, int n) {
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Decodes path into x: (c, h, w) through per-channel lookup tables. */
static slim_status decode(const char *path, int c, int h, int w, const float luts[][256],
                          float *x) {
    FILE *f = fopen(path, "rb");
    if (!f) return slim_error(SLIM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_file(f, &iw, &ih, &comp)) {
        fclose(f);
        return slim_error(SLIM_ERR_FORMAT, "%s: not a readable PNG or JPEG image (%s)", path,
                          stbi_failure_reason());
    }
    if (iw != w || ih != h) {
        fclose(f);
        return slim_error(SLIM_ERR_SHAPE,
                          "%s: image is %dx%d (height x width) but %dx%d is expected "
                          "(slim does not resize images)",
                          path, ih, iw, h, w);
    }
    unsigned char *px = stbi_load_from_file(f, &iw, &ih, &comp, c);
    fclose(f);
    if (!px)
        return slim_error(SLIM_ERR_FORMAT, "%s: cannot decode image: %s", path,
                          stbi_failure_reason());
    if (iw != w || ih != h) {
        stbi_image_free(px);
        return slim_error(SLIM_ERR_FORMAT, "%s: decoded size %dx%d differs from its header", path,
                          ih, iw);
    }
    /* stb gives interleaved HWC; slim wants planar CHW. */
    size_t plane = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++)
        for (size_t p = 0; p < plane; p++)
            x[k * plane + p] = luts[k][px[p * (size_t)c + k]];
    stbi_image_free(px);
    return SLIM_OK;
}

slim_status slim_data_load_image(const char *path, int c, int h, int w, const float *mean,
                                 const float *std, float *x) {
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", path, c, h, w);
    float luts[SLIM_DATA_MAX_CHANNELS][256];
    for (int k = 0; k < c; k++) {
        if (!(std[k] > 0.0f)) return slim_error(SLIM_ERR_ARG, "%s: std[%d] must be > 0", path, k);
        slim_data_lut(luts[k], mean[k], std[k]);
    }
    return decode(path, c, h, w, (const float(*)[256])luts, x);
}

/* One image file and its label. */
typedef struct folder_item {
    char *path;
    int32_t label;
} folder_item;

static void items_free(folder_item *items, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(items[i].path);
    free(items);
}

/* Every image of every class subdirectory of dir, in (class, name) order,
 * labelled by position in `classes`. */
static slim_status collect(const char *dir, char *const *classes, int n_classes,
                           folder_item **items_out, size_t *n_out) {
    name_list subdirs = {0};
    SLIM_TRY(list_dir(dir, 1, &subdirs));
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
        st = slim_data_join(class_dir, sizeof class_dir, dir, subdirs.v[s]);
        name_list files = {0};
        if (st == SLIM_OK) st = list_dir(class_dir, 0, &files);
        if (st == SLIM_OK && files.n == 0)
            slim_log(SLIM_LOG_WARN, "%s: no .png/.jpg/.jpeg images in this class", class_dir);
        for (size_t i = 0; i < files.n && st == SLIM_OK; i++) {
            st = slim_data_join(path, sizeof path, class_dir, files.v[i]);
            if (st != SLIM_OK) break;
            if (n == cap) {
                size_t next = cap ? cap * 2 : 256;
                folder_item *grown = realloc(items, next * sizeof *items);
                if (!grown) {
                    st = slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
                    break;
                }
                items = grown;
                cap = next;
            }
            size_t len = strlen(path) + 1;
            items[n].path = malloc(len);
            if (!items[n].path) {
                st = slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
                break;
            }
            memcpy(items[n].path, path, len);
            items[n].label = label;
            n++;
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

/* Fills in the shape entries that opts leaves at 0 from the first image. */
static slim_status infer_shape(const char *path, const slim_data_options *opts, int *c, int *h,
                               int *w) {
    *c = opts ? opts->c : 0;
    *h = opts ? opts->h : 0;
    *w = opts ? opts->w : 0;
    if (*c && *h && *w) return SLIM_OK;
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info(path, &iw, &ih, &comp))
        return slim_error(SLIM_ERR_FORMAT, "%s: not a readable PNG or JPEG image (%s)", path,
                          stbi_failure_reason());
    if (!*c) *c = comp <= 2 ? 1 : 3; /* drop alpha */
    if (!*h) *h = ih;
    if (!*w) *w = iw;
    return SLIM_OK;
}

slim_status slim_data_load_imagefolder(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts,
                                       slim_dataset **out) {
    *out = NULL;
    if (opts && (opts->c < 0 || opts->c > SLIM_DATA_MAX_CHANNELS || opts->h < 0 || opts->w < 0))
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", dir, opts->c,
                          opts->h, opts->w);
    char **own_names = NULL;
    int n_own = 0;
    if (!class_names) {
        SLIM_TRY(slim_data_list_classes(dir, &own_names, &n_own));
        class_names = (const char *const *)own_names;
        n_classes = n_own;
    } else if (n_classes < 1) {
        return slim_error(SLIM_ERR_ARG, "%s: %d class names given", dir, n_classes);
    }
    folder_item *items = NULL;
    size_t total = 0;
    slim_dataset *ds = NULL;
    int c = 0, h = 0, w = 0;
    slim_status st = collect(dir, (char *const *)class_names, n_classes, &items, &total);
    if (st == SLIM_OK) st = infer_shape(items[0].path, opts, &c, &h, &w);
    size_t keep = opts && opts->limit && opts->limit < total ? opts->limit : total;
    if (st == SLIM_OK) st = slim_dataset_new(keep, c, h, w, n_classes, &ds);
    if (st == SLIM_OK) st = slim_data_set_class_names(ds, class_names, n_classes);
    if (st == SLIM_OK) st = slim_data_set_source(ds, dir);
    if (st == SLIM_OK) {
        ds->kind = "imagefolder";
        float luts[SLIM_DATA_MAX_CHANNELS][256];
        for (int k = 0; k < c; k++) {
            ds->mean[k] = (float)FOLDER_MEAN;
            ds->std[k] = (float)FOLDER_STD;
            slim_data_lut(luts[k], FOLDER_MEAN, FOLDER_STD);
        }
        size_t per = (size_t)c * (size_t)h * (size_t)w;
        for (size_t k = 0; k < keep && st == SLIM_OK; k++) {
            /* Evenly spaced picks keep every class when limiting. */
            size_t i = keep == total ? k : (size_t)((unsigned long long)k * total / keep);
            st = decode(items[i].path, c, h, w, (const float(*)[256])luts, ds->images + k * per);
            ds->labels[k] = items[i].label;
        }
    }
    items_free(items, total);
    if (own_names) slim_data_free_names(own_names, n_own);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return SLIM_OK;
}
