/* The --data resolver: what a spec names (data.h) and which loader reads it. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define PATH_LEN 4096

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static slim_status load_idx_dir(const char *dir, int train, const slim_data_options *opts,
                                slim_dataset **out) {
    const char *prefix = train ? "train" : "t10k";
    char base[64], images[PATH_LEN], labels[PATH_LEN];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if (!data_find_idx_file(images, sizeof images, dir, base))
        return slim_error(SLIM_ERR_IO, "%s: no %s[.gz] for the %s split", dir, base,
                          train ? "train" : "test");
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if (!data_find_idx_file(labels, sizeof labels, dir, base))
        return slim_error(SLIM_ERR_IO, "%s: no %s[.gz] for the %s split", dir, base,
                          train ? "train" : "test");
    int fashion = data_contains_nocase(dir, "fashion");
    float mean, std;
    data_norm(fashion ? DATA_FASHION_MNIST : DATA_MNIST, 1, &mean, &std);
    slim_dataset *ds = NULL;
    SLIM_TRY(data_load_idx_limit(images, labels, mean, std, opts ? opts->limit : 0, &ds));
    slim_status st = data_check_shape(opts, ds->c, ds->h, ds->w, images);
    if (st == SLIM_OK) st = data_set_class_names(ds, fashion ? fashion_names : digit_names, 10);
    if (st == SLIM_OK) st = data_set_source(ds, dir);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return SLIM_OK;
}

/* The test split of an image folder, normalised with the train split's
 * statistics unless opts has its own (data.h's top): the train split is
 * loaded whole for them. */
static slim_status load_image_test(const char *train_src, const char *test_src,
                                   const slim_data_options *opts, int part, char **names,
                                   int n_names, slim_dataset **out) {
    slim_data_options o = {0};
    if (opts) o = *opts;
    if (!o.have_norm) {
        slim_data_options t = o;
        t.limit = 0;
        slim_dataset *train = NULL;
        SLIM_TRY(data_load_imagefolder_part(train_src, NULL, 0, &t, part < 0 ? -1 : 1, &train));
        memcpy(o.mean, train->mean, sizeof o.mean);
        memcpy(o.std, train->std, sizeof o.std);
        o.have_norm = 1;
        slim_dataset_free(train);
    }
    return data_load_imagefolder_part(test_src, (const char *const *)names, n_names, &o, part, out);
}

/* The splits of an image folder (data.h's top). */
static slim_status load_image_root(const char *root, int train, const slim_data_options *opts,
                                   slim_dataset **out) {
    char train_dir[PATH_LEN], test_dir[PATH_LEN];
    SLIM_TRY(data_join(train_dir, sizeof train_dir, root, "train"));
    int has_train = data_is_dir(train_dir);
    const char *val_dir = opts && opts->val_dir && *opts->val_dir ? opts->val_dir : NULL;
    double val_split = opts ? opts->val_split : 0;
    if (val_split != 0 && val_dir)
        return slim_error(SLIM_ERR_ARG,
                          "%s: a validation split (%g) and a separate validation folder (%s) "
                          "exclude each other",
                          root, val_split, val_dir);
    if (val_split != 0 && has_train)
        return slim_error(SLIM_ERR_ARG,
                          "%s has a train/ subfolder, so it is split already: a validation split "
                          "applies only to a folder of class folders",
                          root);
    const char *train_src = has_train ? train_dir : root, *test_src = root;
    int part = -1;
    if (val_dir) {
        SLIM_TRY(data_join(test_dir, sizeof test_dir, val_dir, "test"));
        test_src = data_is_dir(test_dir) ? test_dir : val_dir;
        if (!data_is_dir(test_src))
            return slim_error(SLIM_ERR_IO, "validation folder %s is not a directory", val_dir);
    } else if (has_train) {
        SLIM_TRY(data_join(test_dir, sizeof test_dir, root, "test"));
        test_src = test_dir;
        if (!train && !data_is_dir(test_dir))
            return slim_error(SLIM_ERR_IO, "%s has a train/ subfolder but no test/ subfolder",
                              root);
    } else if (val_split > 0) {
        part = train ? 1 : 0;
    } else if (!train) {
        slim_log(SLIM_LOG_WARN,
                 "%s has no train/ and test/ subfolders: the test split is the training images "
                 "(split it with a validation fraction, or name a validation folder)",
                 root);
    }
    /* The train split's classes label both splits. */
    char **names = NULL;
    int n_names = 0;
    SLIM_TRY(data_list_classes(train_src, &names, &n_names));
    slim_status st = SLIM_OK;
    if (n_names < 2)
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: one class folder ('%s'); a classifier needs at least 2 classes "
                        "(%s/<class>/<picture>)",
                        train_src, names[0], train_src);
    else if (train)
        st = data_load_imagefolder_part(train_src, NULL, 0, opts, part, out);
    else
        st = load_image_test(train_src, test_src, opts, part, names, n_names, out);
    data_free_names(names, n_names);
    return st;
}

/* Applies opts' own statistics (have_norm) to any kind, then hands ds out
 * (or frees it). */
static slim_status finish(slim_dataset *ds, const slim_data_options *opts, slim_dataset **out) {
    if (opts && opts->have_norm) {
        slim_status st = data_set_norm(ds, opts->mean, opts->std);
        if (st != SLIM_OK) {
            slim_dataset_free(ds);
            return st;
        }
    }
    *out = ds;
    return SLIM_OK;
}

slim_status slim_data_load(const char *spec, int train, const slim_data_options *opts,
                           slim_dataset **out) {
    *out = NULL;
    if (!spec || !*spec || strcmp(spec, "fashion-mnist") == 0) {
        if (!data_is_dir(SLIM_FASHION_MNIST_DIR))
            return slim_error(SLIM_ERR_IO,
                              "Fashion-MNIST not found in %s (install the Debian package "
                              "dataset-fashion-mnist, or pass a data directory)",
                              SLIM_FASHION_MNIST_DIR);
        slim_dataset *ds = NULL;
        SLIM_TRY(load_idx_dir(SLIM_FASHION_MNIST_DIR, train, opts, &ds));
        return finish(ds, opts, out);
    }
    if (!data_is_dir(spec))
        return slim_error(SLIM_ERR_IO,
                          "data '%s' is neither a known data set (fashion-mnist) nor a directory",
                          spec);
    data_kind kind;
    char cifar_dir[PATH_LEN];
    SLIM_TRY(data_dir_kind(spec, &kind, cifar_dir, sizeof cifar_dir));
    slim_dataset *ds = NULL;
    if (kind == DATA_FASHION_MNIST || kind == DATA_MNIST)
        SLIM_TRY(load_idx_dir(spec, train, opts, &ds));
    else if (kind == DATA_CIFAR10)
        SLIM_TRY(slim_data_load_cifar10(cifar_dir, train, opts, &ds));
    else
        SLIM_TRY(load_image_root(spec, train, opts, &ds));
    return finish(ds, opts, out);
}
