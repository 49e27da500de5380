/* slim runtime: fast inference of a (compact) model on oneDNN.
 *
 * The runtime is what a trained, pruned model is exported for. It never
 * records anything for backward and never touches the model it was made
 * from: slim_runtime_create folds every foldable batch norm into its conv
 * (slim_model_fold_bn) on a private copy and turns the graph into a plan of
 * oneDNN primitives:
 *
 *   - conv + bias in one primitive, with post-ops for what follows it: a
 *     biasmap (binary add of a (1, cout, oh, ow) tensor, or a binary step
 *     right after the conv where the fast conv kernels take no such
 *     operand), a residual add (sum post-op: the conv accumulates onto the
 *     other operand of the add) and a ReLU (eltwise), when the conv's
 *     output feeds nothing else; at batch >= 8 on AVX-512, 3x3 stride-1
 *     convs use oneDNN's Winograd algorithm;
 *   - a biasmap made by pruning's exact fold becomes, where that is free,
 *     the weights of one more input channel that holds ones (made by the
 *     producing conv as an extra filter with bias 1), so that it rides
 *     inside the conv;
 *   - activations kept in oneDNN's preferred (blocked) layouts between
 *     layers, with reorders only where a layout must change (the input, or
 *     a consumer that wants another layout);
 *   - pooling, global average pooling, ReLU, add, unfoldable batch norm and
 *     dense (inner product) as oneDNN primitives in those same layouts.
 *
 * A plan is built for one batch size, the first time that batch size is run,
 * and kept: any n in [1, max_batch] works, and a batch size seen before runs
 * without building anything. A batch larger than the runtime's tile size
 * (a few images, so that activations stay in cache; 8 on vgg-fm) runs as
 * tiles through the plan of the tile size; with more than one thread the
 * tiles run in parallel, one per thread, on primitives made for one
 * thread, while smaller batches (batch-1 latency) split each primitive
 * over all threads (the thread count is the one at slim_runtime_create).
 * All activations of a plan live in one arena, placed so that buffers
 * whose lifetimes do not overlap share memory; the arena and the
 * scratchpad are shared by the plans of one thread. A run at a batch size
 * seen before allocates no memory of its own and builds no primitive
 * (oneDNN 2.6's dnnl_primitive_execute still allocates its small argument
 * map on every call).
 *
 * The results equal slim_model_forward(model, tape, x, 0, ...) with the
 * reference backend within float rounding (oneDNN sums in another order).
 * A runtime is not thread-safe: run it from one thread at a time (oneDNN
 * itself uses the OpenMP pool; see slim_set_threads).
 *
 * See docs/RUNTIME.md for the plan, the fusions, the layouts and measured
 * speeds.
 */
#ifndef SLIM_RUNTIME_H
#define SLIM_RUNTIME_H

#include <stddef.h>

#include "slim/core.h"
#include "slim/nn.h"
#include "slim/passes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the runtime (src/runtime/) --------------------------------------- */

typedef struct slim_runtime slim_runtime;

/* Makes a runtime for `model` (copied: the model may be changed or freed
 * afterwards) that takes batches of 1..max_batch images, using the OpenMP
 * thread count of this moment (slim_set_threads). Builds the plans that
 * max_batch runs right away, so that the largest memory is claimed up front
 * and errors show here. */
slim_status slim_runtime_create(const slim_model *model, int max_batch, slim_runtime **out);

/* Runs n images x (n, c, h, w), plain NCHW floats, and writes the logits
 * (n, classes). 1 <= n <= max_batch (else SLIM_ERR_ARG). The first run at a
 * batch size builds its plan; later runs at that size only execute it. */
slim_status slim_runtime_run(slim_runtime *rt, const float *x, int n, float *logits);

/* NULL is fine. */
void slim_runtime_free(slim_runtime *rt);

/* What a runtime holds (for tests, benchmarks and `slim info`). */
typedef struct slim_runtime_stats {
    int max_batch;
    int n_classes;
    int plans_built;         /* so far: one per batch size (per thread for tiles) */
    int steps;               /* primitives in the plan max_batch runs (of a tile) */
    int reorders;            /* of which reorders (layout changes, input, output) */
    size_t arena_bytes;      /* activations: the arenas of all threads */
    size_t scratchpad_bytes; /* the scratchpads of all threads */
    size_t weight_bytes;     /* weights in the layouts the primitives chose */
    int tile_batch;          /* a larger batch runs as tiles of at most this many images */
    int workers;             /* threads that run tiles in parallel (0: one thread) */
} slim_runtime_stats;

void slim_runtime_get_stats(const slim_runtime *rt, slim_runtime_stats *stats);

/* A description of the plan for batch size n (built if needed), one step per
 * line: the primitive, the layers it computes, its fusions, the layouts and
 * oneDNN's implementation name. Malloc'd; the caller frees it. */
slim_status slim_runtime_describe(slim_runtime *rt, int n, char **out);

/* Where a run of batch n spends its time: the plan n runs (that of its
 * tile when n is above the tile size), run once whole on x (at least that
 * many images), then each step alone reps times; one line per step (as
 * describe names it) with its median time, and their sum. For profiling
 * (tools/slim_bench --profile): in-place steps then see their own output
 * again, so the run's results are not kept. Malloc'd; the caller frees
 * it. */
slim_status slim_runtime_profile(slim_runtime *rt, const float *x, int n, int reps, char **out);

/* The speed of model's inference, measured the one way slim report and
 * tools/slim_bench report it: on a runtime of its own for batches of 256
 * (made and freed here), three warm-up batches, then one timed pass over
 * the n images x (plain NCHW floats) in batches of 256 (images_per_s), then
 * 20 warm-up and 200 timed batch-1 runs (their median, latency_ms). On
 * these shared machines one call is one sample: callers take the best of
 * several, alternating between models. */
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
