/* Helpers shared by the `slim` commands: loading models, class names,
 * metadata, number formatting, atomic file writes and the normalisation of
 * the data a model was trained on. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slim/data.h"
#include "slim/model_io.h"

slim_backend cli_backend(const char *name) {
    return strcmp(name, "ref") == 0 ? SLIM_BACKEND_REF : SLIM_BACKEND_FAST;
}

int cli_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int cli_is_model_text(const char *path) { return cli_ends_with(path, ".net"); }

int cli_load_model(const char *path, int allow_text, slim_model **model, slim_ckpt **ck) {
    *model = NULL;
    *ck = NULL;
    if (cli_is_model_text(path)) {
        if (allow_text) return slim_model_load_file(path, model);
        return slim_error(SLIM_ERR_ARG,
                          "%s is a model file without weights; train it first "
                          "(slim train --model %s --out RUN.ckpt)",
                          path, path);
    }
    return slim_model_load_ckpt(path, 0, model, ck);
}

const char *cli_class_name(const slim_ckpt *ck, char *const *names, int n_names, int k, char *buf,
                           size_t len) {
    char key[32];
    snprintf(key, sizeof key, "class.%d", k);
    const char *v = ck ? slim_ckpt_get_meta(ck, key) : NULL;
    if (v && *v) return v;
    if (names && k < n_names && names[k]) return names[k];
    snprintf(buf, len, "%d", k);
    return buf;
}

int cli_copy_meta(slim_ckpt *dst, const slim_ckpt *src) {
    for (int i = 0; i < src->n_meta; i++)
        SLIM_TRY(slim_ckpt_set_meta(dst, src->meta_keys[i], src->meta_values[i]));
    return SLIM_OK;
}

const char *cli_group(uint64_t v, char *buf, size_t len) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < len) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *cli_si(double v, char *buf, size_t len) {
    if (v >= 1e9)
        snprintf(buf, len, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%.1fK", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
    return buf;
}

long long cli_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int cli_write_file_atomic(const char *path, const void *data, size_t len) {
    slim_atomic_file af;
    SLIM_TRY(slim_atomic_open(path, &af));
    int err = len && fwrite(data, 1, len, af.f) != len ? (errno ? errno : EIO) : 0;
    return slim_atomic_commit(&af, err);
}

/* ---- normalisation ---------------------------------------------------- */

/* Parses "a,b,c" into up to c floats; 1 when exactly c finite values. */
static int parse_floats(const char *s, int c, float *out) {
    for (int k = 0; k < c; k++) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || !(v == v)) return 0;
        out[k] = (float)v;
        s = end;
        if (k + 1 < c) {
            if (*s != ',') return 0;
            s++;
        }
    }
    return *s == '\0';
}

static int contains_nocase(const char *s, const char *word) {
    size_t m = strlen(word);
    for (; *s; s++) {
        size_t i = 0;
        while (i < m && s[i] && tolower((unsigned char)s[i]) == word[i])
            i++;
        if (i == m) return 1;
    }
    return 0;
}

/* The statistics data.h documents for each kind of data. */
static const float fm_mean[] = {0.2860f}, fm_std[] = {0.3530f};
static const float mnist_mean[] = {0.1307f}, mnist_std[] = {0.3081f};
static const float cifar_mean[] = {0.4914f, 0.4822f, 0.4465f};
static const float cifar_std[] = {0.2470f, 0.2435f, 0.2616f};

static int set_stats(const float *m, const float *s, int stats_c, int c, float *mean, float *std) {
    if (stats_c != c) return 0;
    for (int k = 0; k < c; k++) {
        mean[k] = m[k];
        std[k] = s[k];
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

/* The data.h rule for a --data spec: the kind of data it names decides the
 * statistics. An existing directory is inspected like slim_data_load does;
 * a directory that is not on this machine is judged by its name. */
static const char *rule_for_spec(const char *spec, int c, float *mean, float *std) {
    if (!spec || !*spec || strcmp(spec, "fashion-mnist") == 0)
        return set_stats(fm_mean, fm_std, 1, c, mean, std) ? "fashion-mnist" : NULL;
    struct stat st;
    int is_dir = stat(spec, &st) == 0 && S_ISDIR(st.st_mode);
    int idx, cifar;
    if (is_dir) {
        char sub[4096];
        int n = snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", spec);
        if (n < 0 || (size_t)n >= sizeof sub) sub[0] = '\0';
        idx = has_file(spec, "train-images-idx3-ubyte") || has_file(spec, "t10k-images-idx3-ubyte");
        cifar = has_file(spec, "data_batch_1.bin") || has_file(spec, "test_batch.bin") ||
                has_file(sub, "data_batch_1.bin") || has_file(sub, "test_batch.bin");
    } else {
        idx = contains_nocase(spec, "mnist");
        cifar = contains_nocase(spec, "cifar");
    }
    if (idx && contains_nocase(spec, "fashion"))
        return set_stats(fm_mean, fm_std, 1, c, mean, std) ? "fashion-mnist" : NULL;
    if (idx) return set_stats(mnist_mean, mnist_std, 1, c, mean, std) ? "mnist" : NULL;
    if (cifar) return set_stats(cifar_mean, cifar_std, 3, c, mean, std) ? "cifar-10" : NULL;
    return NULL;
}

void cli_model_normalisation(const slim_ckpt *ck, int c, float *mean, float *std, char *how,
                             size_t how_len) {
    const char *m = ck ? slim_ckpt_get_meta(ck, "data.mean") : NULL;
    const char *s = ck ? slim_ckpt_get_meta(ck, "data.std") : NULL;
    if (m && s && parse_floats(m, c, mean) && parse_floats(s, c, std)) {
        snprintf(how, how_len, "stored in the model");
        return;
    }
    const char *spec = ck ? slim_ckpt_get_meta(ck, "data") : NULL;
    const char *kind = rule_for_spec(spec, c, mean, std);
    if (kind) {
        snprintf(how, how_len, "%s statistics (data '%s')", kind, spec ? spec : "fashion-mnist");
        return;
    }
    for (int k = 0; k < c; k++) {
        mean[k] = 0.5f;
        std[k] = 0.5f;
    }
    snprintf(how, how_len, "image-folder rule 0.5/0.5 (data '%s')", spec ? spec : "unknown");
}
