/* slim measure: the speed of a model's inference runtime, measured one way
 * for every caller (slim report, tools/slim_bench), and the per-layer
 * latency table of a cost-weighted penalty. It sits on top of the runtime
 * (include/slim/runtime.h). */
#ifndef SLIM_MEASURE_H
#define SLIM_MEASURE_H

#include <stddef.h>

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_model slim_model;

/* The speed of model's inference, measured on a runtime of its own for
 * batches of 256 (made and freed here): three warm-up batches, then one
 * timed pass over the n images x (plain NCHW floats) in batches of 256
 * (images_per_s), then 20 warm-up and 200 timed batch-1 runs (their median,
 * latency_ms). On a shared machine one call is one sample: callers take the
 * best of several, alternating between models. */
typedef struct slim_runtime_speed {
    double images_per_s;
    double latency_ms;
} slim_runtime_speed;

slim_status slim_runtime_measure(const slim_model *model, const float *x, size_t n,
                                 slim_runtime_speed *out);

/* The latency table of model (slim/passes.h; src/measure/latency_table.c):
 * each conv and dense layer alone on a runtime of its own (an input of its
 * input's shape, the layer, a gap; for a conv a bias and relu, which the
 * runtime fuses), batch 1, at SLIM_LATENCY_POINTS input by as many output
 * widths (one group, then quarters of its channels; a depthwise conv along
 * its channels alone), each the least of a few runs less the same input
 * and gap alone, then the least of itself and the times at larger widths
 * (noise only adds; the table must not fall as widths grow); then the
 * whole model once for rest_us. With the thread count of this moment. *out is
 * allocated here (slim_latency_table_free). Seconds for vgg-fm. */
typedef struct slim_latency_table slim_latency_table;
slim_status slim_latency_table_measure(const slim_model *model, slim_latency_table *out);

#ifdef __cplusplus
}
#endif
#endif
