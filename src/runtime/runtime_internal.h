/* Private to the runtime (src/runtime/): the plan, its steps and storages,
 * and the runtime object.
 *
 * Time in a plan is counted in layers: the step(s) of the layer that roots a
 * fused chain run at that layer's index, and a buffer is alive from the
 * layer that writes it to the last layer that reads it (closed interval).
 * Two storages may share arena memory only when their intervals are
 * disjoint, which is what lets the arena stay near the peak live size. */
#ifndef SLIM_RUNTIME_INTERNAL_H
#define SLIM_RUNTIME_INTERNAL_H

#include <dnnl.h>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/own.h"
#include "slim/kernels.h"
#include "slim/runtime.h"

#define RT_MAX_ARGS 8
#define RT_MAX_CONVERSIONS 4
#define RT_WHAT_LEN 112
#define RT_ERROR_LEN 1024 /* a worker's copy of its error message */

/* Where an argument's memory lives. */
typedef enum rt_where {
    RT_AT_ARENA = 0, /* storage `storage` of the plan, in the runtime's arena */
    RT_AT_INPUT,     /* the caller's x, plain NCHW */
    RT_AT_OUTPUT,    /* the caller's logits, plain */
    RT_AT_SCRATCH,   /* the runtime's one scratchpad */
    RT_AT_FIXED,     /* a buffer that never moves: weights, bias, BN statistics */
} rt_where;

/* One execute argument of a step. */
typedef struct rt_arg {
    int arg; /* DNNL_ARG_* */
    rt_where where;
    int storage;     /* RT_AT_ARENA: index into plan->storages */
    const void *ptr; /* RT_AT_FIXED */
    dnnl_memory_desc_t md;
    dnnl_memory_t mem; /* created when the plan is finished */
} rt_arg;

/* One primitive with its arguments. */
typedef struct rt_step {
    dnnl_primitive_desc_t pd; /* NULL for a step of our own kernel (wino, stem, head) */
    dnnl_primitive_t prim;
    /* Our convs (kernels/wino.c, kernels/stem.c), args SRC, DST, SCRATCHPAD,
     * or our gap + dense (kernels/head.c), args SRC, DST; one of them: */
    const wino_conv *wino;
    const stem_conv *stem;
    const head_kernel *head;
    int threads; /* the threads our conv runs on */
    int is_reorder;
    int nargs;
    rt_arg args[RT_MAX_ARGS];
    dnnl_exec_arg_t exec[RT_MAX_ARGS];
    char what[RT_WHAT_LEN]; /* "conv conv1 +bias +relu" etc., for describe */
} rt_step;

/* An activation buffer of the plan. */
typedef struct rt_storage {
    size_t bytes;
    int first, last; /* layer times: written at first, last read at last */
    int exclusive;   /* padded layout: shares memory with nothing (see plan.c) */
    int zeroed;      /* padded planes: all zero when bound, their producer writes inside */
    size_t offset;   /* into the arena, set when the plan is finished */
} rt_storage;

/* The primitives for one batch size. */
typedef struct rt_plan {
    int n;
    rt_step *steps;
    int n_steps, cap_steps;
    rt_storage *storages;
    int n_storages, cap_storages;
    size_t arena_bytes, scratch_bytes; /* what this plan needs */
    int reorders;
    /* The logits: copied from this storage (plain layout) after the last
     * step, or written by the last step (RT_AT_OUTPUT) when out_storage < 0. */
    int out_storage;
    size_t out_bytes;
    unsigned generation; /* of the arena/scratchpad its memory objects point to */
    int bound;           /* memory objects point into the current buffers */
} rt_plan;

/* A layer's weights, reordered into a layout a primitive chose. Kept per
 * layer across plans: plans for different batch sizes usually choose the
 * same layout and then share one copy. */
typedef struct rt_weights {
    dnnl_memory_desc_t md;
    float *data;
    struct rt_weights *next;
} rt_weights;

/* The batch-independent analysis of the folded graph (plan.c). */
typedef struct rt_graph {
    int *needed;    /* the layer contributes to the logits */
    int *root;      /* the layer whose step computes this layer (itself if none) */
    int *chain_end; /* per root: the last layer its step computes */
    int *relu;      /* per root: a relu is fused as its last post-op */
    int *sum_with;  /* per conv root: the other operand of a fused add, -1 if none */
    int *pool;      /* per conv root on our Winograd: a 2x2/2 max pool ends its chain */
    int *padded;    /* per root of our convs: its output is stored in padded planes
                     * (padded_size), read only by our Winograd */
    int *head;      /* per gap root: the dense that runs with it (and a relu after
                     * that) on our head kernel, or 0 */
    int *last_read; /* per layer: the last time its output is read */
} rt_graph;

/* Where plans run: their table by batch size, the activation arena and
 * scratchpad they share, and a stream. The runtime has a main context,
 * whose primitives use all threads, and, with more than one thread, one
 * context per thread for tiles (runtime.c), whose primitives use one. */
typedef struct rt_ctx {
    int threads;        /* the primitives of its plans were made for this many threads */
    rt_plan **plans;    /* [max_batch + 1], NULL until built */
    rt_plan *last_plan; /* the plan that ran last (its pads are zero) */
    void *arena;        /* activations of whichever plan runs */
    size_t arena_bytes;
    void *scratch; /* oneDNN scratchpad, shared by every primitive */
    size_t scratch_bytes;
    unsigned generation;  /* bumped whenever arena or scratch move */
    dnnl_stream_t stream; /* owned */
    slim_status status;   /* of the tiles it ran in the last run */
    char *error;          /* [RT_ERROR_LEN]: their message (errors are per thread) */
} rt_ctx;

struct slim_runtime {
    slim_model *model; /* private, BN folded and rewritten */
    int max_batch;
    int tile; /* batches above this run as tiles of at most this many images (runtime.c) */
    dnnl_engine_t engine; /* the shared one (slim_dnnl_engine), not owned */
    rt_graph graph;
    rt_ctx main;     /* batches up to the tile size */
    rt_ctx *workers; /* [n_workers]: tiles, one worker per thread; none with one thread */
    int n_workers;
    rt_weights **weights; /* [n_layers] */
    wino_conv **wino;     /* [n_layers]: convs on our Winograd (NULL: none) */
    head_kernel **head;   /* [n_layers], per gap root: its dense on our head */
    stem_conv **stem;     /* [n_layers]: convs on our stem conv */
    /* The rewrite (rewrite.c), per layer of the model: */
    int *ones_channel;    /* the conv's last output channel is a channel of ones */
    int *biasmap_channel; /* the conv's biasmap is the weights of its last input channel */
    size_t weight_bytes;
    int plans_built;
};

/* measure.c: a monotonic clock in seconds; the median of n values (sorts
 * them). */
double slim_rt_now_s(void);
double slim_rt_median(double *v, int n);

/* runtime.c: sets the tile size (for tests: to tile small batches). */
void slim_rt_set_tile(slim_runtime *rt, int tile);

/* runtime.c: whether a dnnl_primitive_execute of a runtime is in progress
 * (for tests that count heap allocations). */
int slim_rt_in_execute(void);

/* plan.c: whether conv l fits our Winograd (kernels/wino.c), or our stem
 * conv (kernels/stem.c), or either: every plan then uses it for l. */
int slim_rt_wino_fits(const slim_layer *l);
int slim_rt_stem_fits(const slim_layer *l);
int slim_rt_own_conv(const slim_layer *l);
/* plan.c: whether a step runs one of our kernels rather than a primitive. */
int slim_rt_own_step(const rt_step *st);

/* rewrite.c: turns biasmaps into the weights of an extra input channel of
 * ones where that is free (rt->model is replaced; the flags are set). */
slim_status slim_rt_rewrite(slim_runtime *rt);

/* plan.c */
slim_status slim_rt_graph_init(slim_runtime *rt);
void slim_rt_graph_free(rt_graph *g);
/* Builds the plan for batch size n (not yet bound to buffers). */
slim_status slim_rt_plan_build(slim_runtime *rt, int n, rt_plan **out);
void slim_rt_plan_free(rt_plan *plan);
/* "aBcd16b"-style name of a layout, for describe. */
const char *slim_rt_md_str(const dnnl_memory_desc_t *md, char *buf, size_t len);

#endif
