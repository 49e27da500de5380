/* Private to the runtime (src/runtime/): the plan, its steps and storages,
 * and the runtime object.
 *
 * Time in a plan is counted in layers: the step(s) of the layer that roots a
 * fused chain run at that layer's index, and a buffer is alive from the
 * layer that writes it to the last layer that reads it (closed interval).
 * Two storages may share arena memory only when their intervals are
 * disjoint, which is what lets the arena stay near the peak live size
 * (placement.c).
 *
 * The files: graph.c (which layers fuse, padded/narrow layouts, the head),
 * policy.c (which path each conv takes, and why), plan.c (the planner:
 * one step per root layer), build.c (the plan under construction: storages,
 * steps, layouts of values, weights), dnnl_md.c (oneDNN descriptors and
 * attributes), step_dnnl.c and step_own.c (the steps of oneDNN primitives
 * and of our kernels), placement.c (the arena), runtime.c (the runtime
 * object, tiles, run), describe.c (describe, profile). */
#ifndef SLIM_RUNTIME_INTERNAL_H
#define SLIM_RUNTIME_INTERNAL_H

#include <dnnl.h>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/own.h"
#include "slim/kernels.h"
#include "slim/nn.h"
#include "slim/passes.h"
#include "slim/runtime.h"

#define RT_MAX_CONVERSIONS 4
#define RT_WHAT_LEN 112
#define RT_WHY_LEN 128
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

/* An activation fused into a step (its last post-op). */
typedef enum rt_act {
    RT_ACT_NONE = 0,
    RT_ACT_RELU,  /* max(x, 0) */
    RT_ACT_RELU6, /* min(max(x, 0), 6): oneDNN's clip; not on our kernels */
} rt_act;

/* The paths a conv can take (policy.c chooses, with a reason). */
typedef enum rt_conv_path {
    RT_CONV_NONE = 0,    /* not a conv step */
    RT_CONV_WINO,        /* our Winograd F(4x4, 3x3) (kernels/wino.c) */
    RT_CONV_STEM,        /* our direct 3x3 conv for 1-3 input channels (kernels/stem.c) */
    RT_CONV_DNNL_WINO,   /* oneDNN's Winograd */
    RT_CONV_DNNL_DIRECT, /* oneDNN's direct conv (or whatever implementation it picks) */
} rt_conv_path;

/* What a step runs: a oneDNN primitive or one of our kernels. Our kernels
 * take args SRC, DST and (convs) SCRATCHPAD, whose handles are read from
 * the step's memory objects like a primitive's. */
typedef enum rt_step_kind {
    RT_STEP_DNNL = 0,
    RT_STEP_WINO,   /* kernels/wino.c */
    RT_STEP_STEM,   /* kernels/stem.c */
    RT_STEP_HEAD,   /* kernels/head.c: gap + dense [+ relu] */
    RT_STEP_CONCAT, /* kernels/blocked.c: channel concatenation in 16-channel blocks */
} rt_step_kind;

/* One step of a plan, with its arguments. */
typedef struct rt_step {
    rt_step_kind kind;
    union {
        struct {
            dnnl_primitive_desc_t pd;
            dnnl_primitive_t prim;
            int is_reorder;
        } dnnl;
        struct {
            const wino_conv *conv;
            int threads; /* the threads it runs on */
        } wino;
        struct {
            const stem_conv *conv;
            int threads;
        } stem;
        struct {
            const head_kernel *head;
        } head;
        struct {
            int cin[SLIM_LAYER_MAX_INPUTS], k;
            size_t hw;
        } concat;
    } u;
    rt_conv_path path;    /* a conv's path, RT_CONV_NONE for other steps */
    char why[RT_WHY_LEN]; /* and why it takes that path */
    int nargs, cap_args;
    rt_arg *args;           /* [cap_args], owned */
    dnnl_exec_arg_t *exec;  /* [cap_args], owned: args as dnnl_primitive_execute takes them */
    char what[RT_WHAT_LEN]; /* "conv conv1 +bias +relu" etc., for describe */
} rt_step;

/* An activation buffer of the plan. */
typedef struct rt_storage {
    size_t bytes;
    int first, last; /* layer times: written at first, last read at last */
    int exclusive;   /* padded layout: shares memory with nothing (see build.c) */
    int zeroed;      /* padded planes: all zero when bound, their producer writes inside */
    size_t offset;   /* into the arena, set when the plan is finished */
} rt_storage;

/* The steps for one batch size. */
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

/* The batch-independent analysis of the folded graph (graph.c). */
typedef struct rt_graph {
    int *needed;    /* the layer contributes to the logits */
    int *root;      /* the layer whose step computes this layer (itself if none) */
    int *chain_end; /* per root: the last layer its step computes */
    int *act;       /* per root: the activation fused as its last post-op (rt_act) */
    int *sum_with;  /* per conv root: the other operand of a fused add, -1 if none */
    int *pool;      /* per conv root on our Winograd: a 2x2/2 max pool ends its chain */
    int *padded;    /* per root of our convs: its output is stored in padded planes
                     * (padded_size), read only by our Winograd */
    int *narrow;    /* per padded root of our stem: the last block of its output is
                     * narrow (planes_narrow) */
    int *head;      /* per gap root: the dense that runs with it (and a relu after
                     * that) on our head kernel, or 0 */
    int *last_read; /* per layer: the last time its output is read */
} rt_graph;

/* Where plans run: their table by batch size, the activation arena and
 * scratchpad they share, and a stream. The runtime has a main context,
 * whose steps use all threads, and, with more than one thread, one
 * context per thread for tiles (runtime.c), whose steps use one. */
typedef struct rt_ctx {
    int threads;        /* the steps of its plans were made for this many threads */
    rt_plan **plans;    /* [max_batch + 1], NULL until built */
    rt_plan *last_plan; /* the plan that ran last (its pads are zero) */
    void *arena;        /* activations of whichever plan runs */
    size_t arena_bytes;
    void *scratch; /* scratchpad, shared by every step */
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
    /* The bias-map rewrite (passes/biasmap_channel.c), per layer of the model: */
    int *ones_channel;    /* the conv's last output channel is a channel of ones */
    int *biasmap_channel; /* the conv's biasmap is the weights of its last input channel */
    size_t weight_bytes;
    int plans_built;
};

/* runtime.c: the plan of context c for batch size n, built the first
 * time (never from a worker thread); runs context c's plan for batch n;
 * runs one step of ours or one oneDNN step; tile t of a batch of n
 * (n > tile) starts at image *first and holds *size images. */
slim_status rt_plan_get(slim_runtime *rt, rt_ctx *c, int n, rt_plan **out);
slim_status rt_run_plan(rt_ctx *c, const float *x, int n, float *logits);
slim_status rt_execute_own(rt_ctx *c, rt_step *st);
dnnl_status_t rt_execute_dnnl(rt_ctx *c, rt_step *st);
void rt_tile_at(int n, int tile, int t, int *first, int *size);

/* runtime.c: sets the tile size (for tests: to tile small batches). */
void rt_set_tile(slim_runtime *rt, int tile);

/* runtime.c: whether a dnnl_primitive_execute of a runtime is in progress
 * (for tests that count heap allocations). */
int rt_in_execute(void);

/* policy.c: the build of our kernels every plan runs (kernels/own.h: the
 * CPU's best, capped by SLIM_ISA; NULL: none); whether there is one;
 * whether conv l fits our Winograd, our stem conv, or either: every plan
 * then uses it for l. */
const own_impl *rt_own_impl(void);
int rt_own_kernels_usable(void);
int rt_wino_fits(const slim_layer *l);
int rt_stem_fits(const slim_layer *l);
int rt_own_conv(const slim_layer *l);
/* policy.c: "wino", "stem", "dnnl-wino", "dnnl-direct". */
const char *rt_conv_path_name(rt_conv_path path);

/* graph.c */
slim_status rt_graph_init(rt_graph *g, const slim_model *m);
void rt_graph_free(rt_graph *g);

/* plan.c: builds the plan for batch size n (not yet bound to buffers). */
slim_status rt_plan_build(slim_runtime *rt, int n, rt_plan **out);
void rt_plan_free(rt_plan *plan);

/* dnnl_md.c: "aBcd16b"-style name of a layout, for describe. */
const char *rt_md_str(const dnnl_memory_desc_t *md, char *buf, size_t len);

#endif
