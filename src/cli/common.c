/* Helpers shared by the `slim` commands: loading models, class names,
 * metadata, number formatting, atomic file writes and the normalisation of
 * the data a model was trained on. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
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

/* ---- preprocessing ---------------------------------------------------- */

const char cli_resize_override_help[] =
    "How a picture of another size becomes the model's input, instead of the mode the model "
    "records (the default; crop for a model that recorded none): crop (scaled, keeping the "
    "aspect, to cover the input times the recorded crop scale, centre cut out), stretch "
    "(each side scaled, aspect not kept), pad (longer side scaled, centred on black), none "
    "(a picture of another size is an error).";

slim_status cli_set_meta_double(slim_ckpt *ck, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    return slim_ckpt_set_meta(ck, key, buf);
}

void cli_format_floats(const float *x, int n, char *buf, size_t len) {
    buf[0] = '\0';
    for (int k = 0; k < n; k++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%.9g", k ? "," : "", (double)x[k]);
    }
}

slim_status cli_model_preprocessing(const slim_ckpt *ck, const char *path, int c,
                                    cli_preprocessing *pre) {
    return slim_preprocessing_from_ckpt(ck, path, c, pre);
}

slim_status cli_data_options(const slim_ckpt *ck, const char *path, const slim_model *model,
                             const char *given, const char **data, slim_data_options *o) {
    const char *recorded = ck ? slim_ckpt_get_meta(ck, "data") : NULL;
    *data = given ? given : recorded ? recorded : "fashion-mnist";
    const slim_layer *in = &model->layers[0];
    memset(o, 0, sizeof *o);
    o->c = in->c;
    o->h = in->h;
    o->w = in->w;
    if (!ck) return SLIM_OK;
    /* The split is the checkpoint's only on the data it was trained on;
     * resizing and normalisation belong to the model whatever the data. */
    int same = strcmp(*data, recorded ? recorded : "fashion-mnist") == 0;
    return slim_train_data_options(ck, path, in->c, same, o);
}

/* A budget: a percentage, or a number and a unit from units (factor of
 * each; "" allowed when bare is set). */
typedef struct budget_unit {
    const char *name;
    double factor;
} budget_unit;

static const budget_unit count_units[] = {{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {NULL, 0}};
static const budget_unit time_units[] = {{"ns", 1e-3}, {"us", 1},  {"\xc2\xb5s", 1},
                                         {"ms", 1e3},  {"s", 1e6}, {NULL, 0}};

static int parse_budget(const char *s, const budget_unit *units, int bare, double *value,
                        int *fraction) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return 0;
    *fraction = 0;
    if (*end == '%') {
        *fraction = 1;
        v /= 100;
        end++;
    } else if (*end || !bare) {
        const budget_unit *u = units;
        while (u->name && strcmp(end, u->name) != 0)
            u++;
        if (!u->name) return 0;
        v *= u->factor;
        end += strlen(u->name);
    }
    if (*end || !(v > 0) || !isfinite(v) || (*fraction && v > 1)) return 0;
    *value = v;
    return 1;
}

int cli_parse_target(const char *cmd, const char *macs, const char *params, const char *latency,
                     int *kind, double *value, int *fraction) {
    *kind = 0;
    if (!!macs + !!params + !!latency > 1)
        return cli_usage_error(cmd, "--target-macs, --target-params and --target-latency cannot "
                                    "be combined");
    if (latency) {
        if (!parse_budget(latency, time_units, 0, value, fraction))
            return cli_usage_error(cmd,
                                   "--target-latency '%s': want a percentage in (0%%, 100%%] "
                                   "(25%%) or a time > 0 with a unit ns, us, ms or s (40us, "
                                   "1.5ms)",
                                   latency);
        *kind = SLIM_COST_LATENCY;
        return CLI_EXIT_OK;
    }
    const char *v = macs ? macs : params;
    if (!v) return CLI_EXIT_OK;
    if (!parse_budget(v, count_units, 1, value, fraction))
        return cli_usage_error(cmd,
                               "--%s '%s': want a percentage in (0%%, 100%%] (15%%) or a count > "
                               "0 with an optional k, M or G (4.5M, 120k)",
                               macs ? "target-macs" : "target-params", v);
    *kind = macs ? SLIM_COST_MACS : SLIM_COST_PARAMS;
    return CLI_EXIT_OK;
}
