/* The data settings a checkpoint records (docs/CHECKPOINT_FORMAT.md,
 * conventional keys data.*): written by training, read back by resume,
 * evaluation, pruning's check, reports and exports, so that every one of
 * them loads the same split, resized and normalised as training did. */
#include "slim/train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim/ckpt.h"
#include "train/internal.h"

/* ---- writing ---------------------------------------------------------- */

static slim_status set_double(slim_ckpt *ck, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    return slim_ckpt_set_meta(ck, key, buf);
}

/* "a,b,c": n floats, each with %.9g (enough to read back the same float). */
static slim_status set_floats(slim_ckpt *ck, const char *key, const float *x, int n) {
    char buf[32 * SLIM_DATA_MAX_CHANNELS] = "";
    for (int k = 0; k < n; k++) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%s%.9g", k ? "," : "", (double)x[k]);
    }
    return slim_ckpt_set_meta(ck, key, buf);
}

slim_status slim_train_store_data_meta(slim_ckpt *ck, const slim_data_options *opts,
                                       const slim_dataset *train) {
    SLIM_TRY(slim_ckpt_set_meta(ck, "data.resize", slim_resize_mode_name(opts->resize)));
    SLIM_TRY(set_double(ck, "data.crop_scale",
                        opts->crop_scale > 0 ? opts->crop_scale : SLIM_DATA_CROP_SCALE));
    if (opts->val_split > 0) {
        char seed[32];
        snprintf(seed, sizeof seed, "%" PRIu64, opts->split_seed);
        SLIM_TRY(set_double(ck, "data.val_split", opts->val_split));
        SLIM_TRY(slim_ckpt_set_meta(ck, "data.split_seed", seed));
    }
    if (opts->val_dir) SLIM_TRY(slim_ckpt_set_meta(ck, "data.val", opts->val_dir));
    if (opts->skip_bad) SLIM_TRY(slim_ckpt_set_meta(ck, "data.skip_bad", "1"));
    SLIM_TRY(set_floats(ck, "data.mean", train->mean, train->c));
    return set_floats(ck, "data.std", train->std, train->c);
}

/* ---- reading ---------------------------------------------------------- */

static slim_status bad(const char *path, const char *key, const char *v, const char *want) {
    return slim_error(SLIM_ERR_FORMAT, "%s: setting '%s' is '%s': %s", path, key, v, want);
}

/* A whole string as a finite double. */
static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* "a,b,c" into exactly n finite floats. */
static int parse_floats(const char *s, int n, float *out) {
    for (int k = 0; k < n; k++) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || fabs(v) > 1e30) return 0;
        out[k] = (float)v;
        s = end;
        if (k + 1 < n && *s++ != ',') return 0;
    }
    return *s == '\0';
}

static slim_status read_norm(const slim_ckpt *ck, const char *path, int c,
                             slim_data_options *opts) {
    const char *m = slim_ckpt_get_meta(ck, "data.mean"), *s = slim_ckpt_get_meta(ck, "data.std");
    if (!m && !s) {
        /* Recorded before statistics were: what such a model was trained
         * with is the fixed rule for its data. */
        const char *spec = slim_ckpt_get_meta(ck, "data");
        slim_data_normalisation(spec, c, opts->mean, opts->std);
        opts->have_norm = 1;
        return SLIM_OK;
    }
    if (!m || !s)
        return slim_error(SLIM_ERR_FORMAT, "%s: setting '%s' is missing (it comes with '%s')", path,
                          m ? "data.std" : "data.mean", m ? "data.mean" : "data.std");
    char want[96];
    snprintf(want, sizeof want, "want %d comma-separated finite number%s", c, c > 1 ? "s" : "");
    if (!parse_floats(m, c, opts->mean)) return bad(path, "data.mean", m, want);
    snprintf(want, sizeof want, "want %d comma-separated positive finite number%s", c,
             c > 1 ? "s" : "");
    if (!parse_floats(s, c, opts->std)) return bad(path, "data.std", s, want);
    for (int k = 0; k < c; k++)
        if (!(opts->std[k] > 0)) return bad(path, "data.std", s, want);
    opts->have_norm = 1;
    return SLIM_OK;
}

slim_status slim_train_data_options(const slim_ckpt *ck, const char *path, int c, int split,
                                    slim_data_options *opts) {
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS)
        return slim_error(SLIM_ERR_ARG, "%s: a model of %d input channels (1..%d)", path, c,
                          SLIM_DATA_MAX_CHANNELS);
    const char *v;
    double d;
    if ((v = slim_ckpt_get_meta(ck, "data.resize")) &&
        slim_resize_mode_parse(v, &opts->resize) != SLIM_OK)
        return bad(path, "data.resize", v, "want crop, stretch, pad or none");
    if ((v = slim_ckpt_get_meta(ck, "data.crop_scale"))) {
        if (!parse_double(v, &d) || !(d >= 1 && d <= 16))
            return bad(path, "data.crop_scale", v, "want a number from 1 to 16");
        opts->crop_scale = d;
    }
    SLIM_TRY(read_norm(ck, path, c, opts));
    if (!split) return SLIM_OK;
    if ((v = slim_ckpt_get_meta(ck, "data.val_split"))) {
        if (!parse_double(v, &d) || !(d > 0 && d < 1))
            return bad(path, "data.val_split", v, "want a fraction between 0 and 1");
        opts->val_split = d;
        const char *s = slim_ckpt_get_meta(ck, "data.split_seed");
        char *end;
        if (!s)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: setting 'data.split_seed' is missing (it comes with "
                              "'data.val_split')",
                              path);
        errno = 0;
        unsigned long long seed = strtoull(s, &end, 10);
        if (errno || end == s || *end || *s == '-' || *s == '+' || *s == ' ')
            return bad(path, "data.split_seed", s, "want an unsigned decimal integer");
        opts->split_seed = (uint64_t)seed;
    }
    if ((v = slim_ckpt_get_meta(ck, "data.val"))) {
        if (!*v) return bad(path, "data.val", v, "want a directory");
        opts->val_dir = v;
    }
    if ((v = slim_ckpt_get_meta(ck, "data.skip_bad"))) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
            return bad(path, "data.skip_bad", v, "want 0 or 1");
        opts->skip_bad = v[0] == '1';
    }
    return SLIM_OK;
}

/* ---- numeric settings ------------------------------------------------- */

slim_status train_set_meta_num(slim_ckpt *ck, const char *key, const char *fmt, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return slim_ckpt_set_meta(ck, key, buf);
}

slim_status train_meta_num(const slim_ckpt *ck, const char *path, const char *key, double *out) {
    const char *v = slim_ckpt_get_meta(ck, key);
    char *end;
    if (!v) return slim_error(SLIM_ERR_FORMAT, "%s: setting '%s' is missing", path, key);
    errno = 0;
    *out = strtod(v, &end);
    if (errno || *end || end == v)
        return slim_error(SLIM_ERR_FORMAT, "%s: setting '%s' is not a number: '%s'", path, key, v);
    return SLIM_OK;
}

/* ---- augment.rule ----------------------------------------------------- */

/* The shortest %g form that reads back as exactly v. */
static void exact(double v, char *buf, size_t len) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

void train_augment_rule(const slim_augment *aug, char *buf, size_t len) {
    if (aug->mode != SLIM_AUGMENT_RRC) {
        snprintf(buf, len, "pad-crop %d", aug->pad);
        return;
    }
    char v[4][32];
    exact(aug->scale_min, v[0], sizeof v[0]);
    exact(aug->scale_max, v[1], sizeof v[1]);
    exact(aug->aspect_min, v[2], sizeof v[2]);
    exact(aug->aspect_max, v[3], sizeof v[3]);
    snprintf(buf, len, "rrc scale=%s-%s ratio=%s-%s", v[0], v[1], v[2], v[3]);
}

slim_status train_augment_from_rule(const char *rule, const char *path, const slim_dataset *ds,
                                    int flip, slim_augment *aug) {
    int pad, end = -1;
    double s0, s1, r0, r1;
    if (sscanf(rule, "pad-crop %d%n", &pad, &end) == 1 && end == (int)strlen(rule) && pad >= 0 &&
        pad <= ds->h && pad <= ds->w)
        return slim_augment_init(aug, ds, pad, flip);
    end = -1;
    if (sscanf(rule, "rrc scale=%lf-%lf ratio=%lf-%lf%n", &s0, &s1, &r0, &r1, &end) == 4 &&
        end == (int)strlen(rule) && s0 > 0 && s0 <= s1 && s1 <= 1 && r0 >= 1e-3 && r0 <= r1 &&
        r1 <= 1e3) {
        SLIM_TRY(slim_augment_init_rrc(aug, ds, s0, flip));
        aug->scale_max = s1;
        aug->aspect_min = r0;
        aug->aspect_max = r1;
        return SLIM_OK;
    }
    return bad(path, "augment.rule", rule,
               "want 'pad-crop N' or 'rrc scale=A-B ratio=C-D' (0 < A <= B <= 1, "
               "0.001 <= C <= D <= 1000)");
}
