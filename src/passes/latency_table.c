/* The latency table as plain data (include/slim/passes.h): lookup by
 * bilinear interpolation, its checks against a model, and its place in a
 * checkpoint. Measuring it needs the runtime: src/measure/latency_table.c. */
#include "slim/passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P SLIM_LATENCY_POINTS
/* Largest time or |rest| a table may hold: 1000 s, in microseconds. */
#define MAX_US 1e9

slim_status slim_latency_table_alloc(slim_latency_table *t, int n_layers) {
    memset(t, 0, sizeof *t);
    if (n_layers < 1) return slim_error(SLIM_ERR_ARG, "latency table: %d layers", n_layers);
    t->n_layers = n_layers;
    t->in = slim_calloc((size_t)n_layers * P, sizeof(float));
    t->out = slim_calloc((size_t)n_layers * P, sizeof(float));
    t->us = slim_calloc((size_t)n_layers * P * P, sizeof(float));
    if (t->in && t->out && t->us) return SLIM_OK;
    slim_latency_table_free(t);
    return SLIM_ERR_NOMEM;
}

void slim_latency_table_free(slim_latency_table *t) {
    if (!t) return;
    free(t->in);
    free(t->out);
    free(t->us);
    memset(t, 0, sizeof *t);
}

/* The cell of grid w (P widths) for x and x's place in it: w[*a] + s *
 * (w[*a + 1] - w[*a]) = x, s outside [0, 1] beyond the grid. */
static double locate(const float *w, double x, int *a) {
    int k = 0;
    while (k < P - 2 && x > w[k + 1])
        k++;
    *a = k;
    double span = (double)w[k + 1] - w[k];
    return span > 0 ? (x - w[k]) / span : 0;
}

double slim_latency_layer_us(const slim_latency_table *t, int i, double in, double out) {
    if (!t || i < 0 || i >= t->n_layers || !(t->out[i * P + P - 1] > 0)) return 0;
    int a, b;
    double s = locate(t->in + i * P, in, &a), r = locate(t->out + i * P, out, &b);
    const float *u = t->us + (size_t)i * P * P;
    double v = (1 - s) * (1 - r) * u[a * P + b] + s * (1 - r) * u[(a + 1) * P + b] +
               (1 - s) * r * u[a * P + b + 1] + s * r * u[(a + 1) * P + b + 1];
    return v > 0 ? v : 0;
}

static int timed(const slim_layer *l) {
    return l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE;
}

double slim_latency_model_us(const slim_latency_table *t, const slim_model *m) {
    double sum = t->rest_us;
    for (int i = 0; i < m->n_layers && i < t->n_layers; i++)
        if (timed(&m->layers[i]))
            sum += slim_latency_layer_us(t, i, m->layers[i].in_c, m->layers[i].c);
    return sum > 0 ? sum : 0;
}

/* Grid w (layer l, axis `name`): whole widths in [1, SLIM_MODEL_MAX_CHANNELS],
 * non-decreasing, the last at least `width` (the layer's now: live pruning
 * narrows a model after its table was measured). */
static slim_status check_widths(const float *w, int width, const slim_layer *l, const char *where,
                                const char *name, size_t at) {
    for (int k = 0; k < P; k++) {
        double v = w[k];
        if (!(v >= 1) || v > SLIM_MODEL_MAX_CHANNELS || v != floor(v) || (k > 0 && v < w[k - 1]) ||
            (k == P - 1 && v < width))
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: tensor '%s' value %zu is %g: layer %s wants whole widths "
                              "rising to at least its %d",
                              where, name, at + (size_t)k, v, l->name, width);
    }
    return SLIM_OK;
}

slim_status slim_latency_table_check(const slim_latency_table *t, const slim_model *m,
                                     const char *where) {
    if (t->n_layers != m->n_layers)
        return slim_error(SLIM_ERR_FORMAT, "%s: the latency table has %d layers, the model %d",
                          where, t->n_layers, m->n_layers);
    if (!isfinite(t->rest_us) || fabs(t->rest_us) > MAX_US)
        return slim_error(SLIM_ERR_FORMAT, "%s: setting 'latency.rest_us' is %g (want |x| <= %g)",
                          where, t->rest_us, MAX_US);
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        size_t at = (size_t)i * P, cell = at * P;
        if (!timed(l)) {
            for (int k = 0; k < P; k++)
                if (t->in[at + k] != 0 || t->out[at + k] != 0)
                    return slim_error(SLIM_ERR_FORMAT,
                                      "%s: tensor 'latency.in' or 'latency.out' value %zu is not 0 "
                                      "(layer %s is not timed)",
                                      where, at + (size_t)k, l->name);
            for (int k = 0; k < P * P; k++)
                if (t->us[cell + (size_t)k] != 0)
                    return slim_error(SLIM_ERR_FORMAT,
                                      "%s: tensor 'latency.us' value %zu is %g, not 0 (layer %s "
                                      "is not timed)",
                                      where, cell + (size_t)k, (double)t->us[cell + (size_t)k],
                                      l->name);
            continue;
        }
        SLIM_TRY(check_widths(t->in + at, l->in_c, l, where, "latency.in", at));
        SLIM_TRY(check_widths(t->out + at, l->c, l, where, "latency.out", at));
        for (int a = 0; a < P; a++)
            for (int b = 0; b < P; b++) {
                const float *u = t->us + cell;
                double v = u[a * P + b];
                const char *why = NULL;
                if (!(v >= 0) || !(v <= MAX_US))
                    why = "out of range";
                else if ((a > 0 && v < u[(a - 1) * P + b]) || (b > 0 && v < u[a * P + b - 1]))
                    why = "below the time at a smaller width";
                if (why)
                    return slim_error(SLIM_ERR_FORMAT,
                                      "%s: tensor 'latency.us' value %zu is %g (layer %s): %s",
                                      where, cell + (size_t)(a * P + b), v, l->name, why);
            }
    }
    return SLIM_OK;
}

/* ---- checkpoint ------------------------------------------------------- */

slim_status slim_latency_table_store(const slim_latency_table *t, slim_ckpt *ck) {
    char buf[64];
    int n = t->n_layers;
    snprintf(buf, sizeof buf, "%d", P);
    SLIM_TRY(slim_ckpt_set_meta(ck, "latency.points", buf));
    /* %.17g reads back exactly: a resumed run predicts the same. */
    snprintf(buf, sizeof buf, "%.17g", t->rest_us);
    SLIM_TRY(slim_ckpt_set_meta(ck, "latency.rest_us", buf));
    snprintf(buf, sizeof buf, "%d", t->threads);
    SLIM_TRY(slim_ckpt_set_meta(ck, "latency.threads", buf));
    SLIM_TRY(slim_ckpt_set_meta(ck, "latency.isa", t->isa));
    SLIM_TRY(slim_ckpt_set_meta(ck, "latency.version", t->version));
    SLIM_TRY(slim_ckpt_add_tensor(ck, "latency.in", 2, (int[]){n, P}, t->in, 1));
    SLIM_TRY(slim_ckpt_add_tensor(ck, "latency.out", 2, (int[]){n, P}, t->out, 1));
    return slim_ckpt_add_tensor(ck, "latency.us", 3, (int[]){n, P, P}, t->us, 1);
}

static slim_status load_tensor(const slim_ckpt *ck, const char *path, const char *name, int layers,
                               size_t numel, float *dst) {
    const slim_ckpt_tensor *x = slim_ckpt_find(ck, name);
    if (x && x->shape[0] != layers)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: tensor '%s' is for %d layers, the model has %d (a table of "
                          "another model?)",
                          path, name, x->shape[0], layers);
    if (!x || x->numel != numel)
        return slim_error(SLIM_ERR_FORMAT, "%s: tensor '%s' is %s (want %zu values)", path, name,
                          x ? "the wrong size" : "missing", numel);
    memcpy(dst, x->data, numel * sizeof(float));
    return SLIM_OK;
}

slim_status slim_latency_table_load(const slim_ckpt *ck, const char *path, const slim_model *m,
                                    slim_latency_table *t) {
    memset(t, 0, sizeof *t);
    const char *pts = slim_ckpt_get_meta(ck, "latency.points");
    const char *rest = slim_ckpt_get_meta(ck, "latency.rest_us");
    char *end;
    if (!pts)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: setting 'latency.points' is missing (no latency "
                          "table)",
                          path);
    if (strtol(pts, &end, 10) != P || *end)
        return slim_error(SLIM_ERR_FORMAT, "%s: setting 'latency.points' is '%s' (want %d)", path,
                          pts, P);
    double r = rest ? strtod(rest, &end) : 0;
    if (!rest || end == rest || *end)
        return slim_error(SLIM_ERR_FORMAT, "%s: setting 'latency.rest_us' is %s", path,
                          rest ? "not a number" : "missing");
    SLIM_TRY(slim_latency_table_alloc(t, m->n_layers));
    t->rest_us = r;
    const char *s = slim_ckpt_get_meta(ck, "latency.threads");
    t->threads = s ? atoi(s) : 0;
    s = slim_ckpt_get_meta(ck, "latency.isa");
    snprintf(t->isa, sizeof t->isa, "%s", s ? s : "");
    s = slim_ckpt_get_meta(ck, "latency.version");
    snprintf(t->version, sizeof t->version, "%s", s ? s : "");
    size_t n = (size_t)m->n_layers * P;
    int l = m->n_layers;
    slim_status st = load_tensor(ck, path, "latency.in", l, n, t->in);
    if (st == SLIM_OK) st = load_tensor(ck, path, "latency.out", l, n, t->out);
    if (st == SLIM_OK) st = load_tensor(ck, path, "latency.us", l, n * P, t->us);
    if (st == SLIM_OK) st = slim_latency_table_check(t, m, path);
    if (st != SLIM_OK) slim_latency_table_free(t);
    return st;
}
