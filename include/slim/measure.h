/* slim measure: the speed of a model's inference runtime, measured one way
 * for every caller (slim report, tools/slim_bench). It sits on top of the
 * runtime (include/slim/runtime.h). */
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

#ifdef __cplusplus
}
#endif
#endif
