/* The normalisation rules of data.h in one table: the loaders record them
 * in the data sets they make, and slim_data_normalisation finds them for a
 * --data spec (the command line, for a model trained on that data). */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    const char *name;
    int c; /* channels the statistics are for; 0 = any (the same in each) */
    float mean[3], std[3];
} rules[] = {
    [DATA_FASHION_MNIST] = {"fashion-mnist", 1, {0.2860f}, {0.3530f}},
    [DATA_MNIST] = {"mnist", 1, {0.1307f}, {0.3081f}},
    [DATA_CIFAR10] = {"cifar-10", 3, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}},
    [DATA_IMAGE_FOLDER] = {"image-folder", 0, {0.5f}, {0.5f}},
};

int data_norm(data_kind kind, int c, float *mean, float *std) {
    int any = rules[kind].c == 0;
    if (!any && rules[kind].c != c) return 0;
    for (int k = 0; k < c; k++) {
        mean[k] = rules[kind].mean[any ? 0 : k];
        std[k] = rules[kind].std[any ? 0 : k];
    }
    return 1;
}

/* Whether dir holds a file called name or name.gz. */
static int has_file(const char *dir, const char *name) {
    char path[4096];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) return 0;
    if (stat(path, &st) == 0) return 1;
    n = snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    return n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0;
}

/* The kind a spec names, or -1 for none of the kinds with statistics. An
 * existing directory is inspected like slim_data_load does; a directory not
 * on this machine is judged by its name. */
static int kind_of_spec(const char *spec) {
    if (!spec || !*spec || strcmp(spec, "fashion-mnist") == 0) return DATA_FASHION_MNIST;
    int idx, cifar;
    if (data_is_dir(spec)) {
        char sub[4096];
        int n = snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", spec);
        if (n < 0 || (size_t)n >= sizeof sub) sub[0] = '\0';
        idx = has_file(spec, "train-images-idx3-ubyte") || has_file(spec, "t10k-images-idx3-ubyte");
        cifar = has_file(spec, "data_batch_1.bin") || has_file(spec, "test_batch.bin") ||
                has_file(sub, "data_batch_1.bin") || has_file(sub, "test_batch.bin");
    } else {
        idx = data_contains_nocase(spec, "mnist");
        cifar = data_contains_nocase(spec, "cifar");
    }
    if (idx) return data_contains_nocase(spec, "fashion") ? DATA_FASHION_MNIST : DATA_MNIST;
    return cifar ? DATA_CIFAR10 : -1;
}

const char *slim_data_normalisation(const char *spec, int c, float *mean, float *std) {
    int kind = kind_of_spec(spec);
    if (kind < 0 || !data_norm((data_kind)kind, c, mean, std)) {
        kind = DATA_IMAGE_FOLDER;
        data_norm(DATA_IMAGE_FOLDER, c, mean, std);
    }
    return rules[kind].name;
}
