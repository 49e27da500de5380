/* slim runtime: fast inference of a (compact) model.
 *
 * The runtime is what a trained, pruned model is exported for. It never
 * records anything for backward and never touches the model it was made
 * from: slim_runtime_create folds every foldable batch norm into its conv
 * on a private copy, turns a biasmap into the weights of an extra input
 * channel of ones where that is free, and turns the graph into a plan:
 * one step per group of fused layers (conv + bias + biasmap + residual
 * add + relu [+ 2x2 max pool], global average pool + dense [+ relu], ...),
 * each a oneDNN primitive or one of slim's own AVX-512 kernels (a
 * Winograd 3x3 conv, a conv for the first few input channels, the
 * pool + dense head). Activations stay in blocked layouts between steps,
 * with reorders only where a layout must change.
 *
 * A plan is built for one batch size, the first time that batch size is
 * run, and kept: any n in [1, max_batch] works, and a batch size seen
 * before runs without building anything. A batch larger than the runtime's
 * tile size (a few images, so that activations stay in cache) runs as
 * tiles through the plan of the tile size; with more than one thread the
 * tiles run in parallel, one per thread, on single-thread steps, while
 * smaller batches (batch-1 latency) split each step over all threads (the
 * thread count is the one at slim_runtime_create). All activations of a
 * plan live in one arena, placed so that buffers whose lifetimes do not
 * overlap share memory. A run at a batch size seen before allocates no
 * memory of its own and builds nothing (oneDNN 2.6's
 * dnnl_primitive_execute still allocates its small argument map on every
 * call).
 *
 * The results equal slim_model_forward(model, tape, x, 0, ...) with the
 * reference backend within float rounding (the sums run in another order).
 * A runtime is not thread-safe: run it from one thread at a time (it uses
 * the OpenMP pool; see slim_set_threads).
 *
 * docs/RUNTIME.md describes the plan, the paths a conv can take, the
 * fusions, the layouts and the buffer placement.
 */
#ifndef SLIM_RUNTIME_H
#define SLIM_RUNTIME_H

#include <stddef.h>

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_model slim_model; /* slim/nn.h */

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
    int steps;               /* steps in the plan max_batch runs (of a tile) */
    int reorders;            /* of which reorders (layout changes, input, output) */
    size_t arena_bytes;      /* activations: the arenas of all threads */
    size_t scratchpad_bytes; /* the scratchpads of all threads */
    size_t weight_bytes;     /* weights in the layouts the steps chose */
    int tile_batch;          /* a larger batch runs as tiles of at most this many images */
    int workers;             /* threads that run tiles in parallel (0: one thread) */
} slim_runtime_stats;

void slim_runtime_get_stats(const slim_runtime *rt, slim_runtime_stats *stats);

/* A description of the plan for batch size n (built if needed), one step per
 * line: the layers it computes and its fusions, the layouts, the
 * implementation's name and, for a conv, the path it takes and why.
 * Malloc'd; the caller frees it. */
slim_status slim_runtime_describe(slim_runtime *rt, int n, char **out);

/* Where a run of batch n spends its time: the plan n runs (that of its
 * tile when n is above the tile size), run once whole on x (at least that
 * many images), then each step alone reps times; one line per step (as
 * describe names it) with its median time, and their sum. For profiling
 * (tools/slim_bench --profile): in-place steps then see their own output
 * again, so the run's results are not kept. Malloc'd; the caller frees
 * it. */
slim_status slim_runtime_profile(slim_runtime *rt, const float *x, int n, int reps, char **out);

#ifdef __cplusplus
}
#endif
#endif
