/* The speed of a model's inference runtime, measured one way for every
 * caller: see include/slim/measure.h. */
#include "slim/measure.h"

#include "slim/nn.h"
#include "slim/runtime.h"

#include <stdlib.h>

#define MEASURE_BATCH 256
#define MEASURE_LATENCY_RUNS 200

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
    double t0 = slim_clock_s();
    for (size_t s = 0; st == SLIM_OK && s < n; s += MEASURE_BATCH)
        st = slim_runtime_run(rt, x + s * img, (int)(n - s < MEASURE_BATCH ? n - s : MEASURE_BATCH),
                              logits);
    out->images_per_s = (double)n / (slim_clock_s() - t0);
    for (int i = -20; st == SLIM_OK && i < MEASURE_LATENCY_RUNS; i++) {
        double t = slim_clock_s();
        st = slim_runtime_run(rt, x + (size_t)(i + 20) % n * img, 1, logits);
        if (i >= 0) lat[i] = (slim_clock_s() - t) * 1e3;
    }
    if (st == SLIM_OK) out->latency_ms = slim_median(lat, MEASURE_LATENCY_RUNS);
    free(logits);
    free(lat);
    slim_runtime_free(rt);
    return st;
}
