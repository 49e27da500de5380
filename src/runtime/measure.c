/* The speed of a model's inference runtime, measured one way for every
 * caller (slim report, tools/slim_bench): see include/slim/runtime.h; and
 * the clock and median runtime.c's per-step profile shares with it. */
#include "runtime/runtime_internal.h"

#include <stdlib.h>
#include <time.h>

#define MEASURE_BATCH 256
#define MEASURE_LATENCY_RUNS 200

double slim_rt_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double slim_rt_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

slim_status slim_runtime_measure(const slim_model *model, const float *x, size_t n,
                                 slim_runtime_speed *out) {
    if (!model || !x || !out || n == 0)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_measure: no model, images or result");
    slim_runtime *rt = NULL;
    SLIM_TRY(slim_runtime_create(model, MEASURE_BATCH, &rt));
    size_t img = (size_t)model->layers[0].c * (size_t)model->layers[0].h * model->layers[0].w;
    float *logits = slim_calloc((size_t)MEASURE_BATCH * (size_t)model->n_classes, sizeof(float));
    double *lat = slim_calloc(MEASURE_LATENCY_RUNS, sizeof(double));
    slim_status st = logits && lat ? SLIM_OK : SLIM_ERR_NOMEM;
    int warm = n < MEASURE_BATCH ? (int)n : MEASURE_BATCH;
    for (int i = 0; st == SLIM_OK && i < 3; i++) /* builds the plans, warms the caches */
        st = slim_runtime_run(rt, x, warm, logits);
    double t0 = slim_rt_now_s();
    for (size_t s = 0; st == SLIM_OK && s < n; s += MEASURE_BATCH)
        st = slim_runtime_run(rt, x + s * img, (int)(n - s < MEASURE_BATCH ? n - s : MEASURE_BATCH),
                              logits);
    out->images_per_s = (double)n / (slim_rt_now_s() - t0);
    for (int i = -20; st == SLIM_OK && i < MEASURE_LATENCY_RUNS; i++) {
        double t = slim_rt_now_s();
        st = slim_runtime_run(rt, x + (size_t)(i + 20) % n * img, 1, logits);
        if (i >= 0) lat[i] = (slim_rt_now_s() - t) * 1e3;
    }
    if (st == SLIM_OK) out->latency_ms = slim_rt_median(lat, MEASURE_LATENCY_RUNS);
    free(logits);
    free(lat);
    slim_runtime_free(rt);
    return st;
}
