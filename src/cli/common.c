/* Helpers shared by the `slim` commands: loading models, class names,
 * metadata, number formatting, atomic file writes and the normalisation of
 * the data a model was trained on. */
#include "cli/cli.h"

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

void cli_model_normalisation(const slim_ckpt *ck, int c, float *mean, float *std, char *how,
                             size_t how_len) {
    const char *m = ck ? slim_ckpt_get_meta(ck, "data.mean") : NULL;
    const char *s = ck ? slim_ckpt_get_meta(ck, "data.std") : NULL;
    if (m && s && parse_floats(m, c, mean) && parse_floats(s, c, std)) {
        snprintf(how, how_len, "stored in the model");
        return;
    }
    const char *spec = ck ? slim_ckpt_get_meta(ck, "data") : NULL;
    const char *kind = slim_data_normalisation(spec, c, mean, std);
    if (strcmp(kind, "image-folder") != 0)
        snprintf(how, how_len, "%s statistics (data '%s')", kind, spec ? spec : "fashion-mnist");
    else
        snprintf(how, how_len, "image-folder rule 0.5/0.5 (data '%s')", spec ? spec : "unknown");
}
