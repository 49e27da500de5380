/* The normalisation rules of data.h in one table: the loaders record them
 * in the data sets they make, and slim_data_normalisation finds them for a
 * --data spec (the command line, for a model trained on that data). */
#include "internal.h"

#include <string.h>

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

/* The kind a spec names, or -1 for none of the kinds with statistics. An
 * existing directory is inspected as slim_data_load reads it; a directory
 * not on this machine is judged by its name. */
static int kind_of_spec(const char *spec) {
    if (!spec || !*spec || strcmp(spec, "fashion-mnist") == 0) return DATA_FASHION_MNIST;
    if (data_is_dir(spec)) {
        data_kind kind;
        char cifar_dir[4096];
        if (data_dir_kind(spec, &kind, cifar_dir, sizeof cifar_dir) != SLIM_OK) return -1;
        return kind == DATA_IMAGE_FOLDER ? -1 : (int)kind;
    }
    if (data_contains_nocase(spec, "mnist"))
        return data_contains_nocase(spec, "fashion") ? DATA_FASHION_MNIST : DATA_MNIST;
    return data_contains_nocase(spec, "cifar") ? DATA_CIFAR10 : -1;
}

const char *slim_data_normalisation(const char *spec, int c, float *mean, float *std) {
    int kind = kind_of_spec(spec);
    if (kind < 0 || !data_norm((data_kind)kind, c, mean, std)) {
        kind = DATA_IMAGE_FOLDER;
        data_norm(DATA_IMAGE_FOLDER, c, mean, std);
    }
    return rules[kind].name;
}
