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

static slim_status load_image_root(const char *root, int train, const slim_data_options *opts,
                                   slim_dataset **out) {
    char train_dir[PATH_LEN], test_dir[PATH_LEN];
    SLIM_TRY(data_join(train_dir, sizeof train_dir, root, "train"));
    SLIM_TRY(data_join(test_dir, sizeof test_dir, root, "test"));
    if (!data_is_dir(train_dir)) {
        if (!train)
            slim_log(SLIM_LOG_WARN,
                     "%s has no train/ and test/ subfolders: the test split is the training "
                     "images",
                     root);
        return slim_data_load_imagefolder(root, NULL, 0, opts, out);
    }
    if (train) return slim_data_load_imagefolder(train_dir, NULL, 0, opts, out);
    if (!data_is_dir(test_dir))
        return slim_error(SLIM_ERR_IO, "%s has a train/ subfolder but no test/ subfolder", root);
    /* The test split's labels must index the train split's classes. */
    char **names = NULL;
    int n_names = 0;
    SLIM_TRY(data_list_classes(train_dir, &names, &n_names));
    slim_status st =
        slim_data_load_imagefolder(test_dir, (const char *const *)names, n_names, opts, out);
    data_free_names(names, n_names);
    return st;
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
        return load_idx_dir(SLIM_FASHION_MNIST_DIR, train, opts, out);
    }
    if (!data_is_dir(spec))
        return slim_error(SLIM_ERR_IO,
                          "data '%s' is neither a known data set (fashion-mnist) nor a directory",
                          spec);
    data_kind kind;
    char cifar_dir[PATH_LEN];
    SLIM_TRY(data_dir_kind(spec, &kind, cifar_dir, sizeof cifar_dir));
    if (kind == DATA_FASHION_MNIST || kind == DATA_MNIST)
        return load_idx_dir(spec, train, opts, out);
    if (kind == DATA_CIFAR10) return slim_data_load_cifar10(cifar_dir, train, opts, out);
    return load_image_root(spec, train, opts, out);
}
