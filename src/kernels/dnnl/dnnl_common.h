/* Private to the oneDNN kernels: the shared engine and stream, the checking
 * macro, and the per-layer cache of primitives built for one shape.
 *
 * Lifecycle of a fast kernel call (after XNNPACK's create/reshape/setup/run):
 *   slim_dnnl_cache_prepare  makes sure the cache describes this op and shape
 *                            (a different one destroys every primitive);
 *   slim_dnnl_prim_build     builds one primitive of the op unless it is
 *                            already there with the same variant;
 *   slim_dnnl_run            binds the caller's buffers to the primitive's
 *                            memory objects and executes it.
 * Memory objects, temporaries, the workspace and the scratchpad live in the
 * cache, so a steady-state call allocates nothing of its own. */
#ifndef SLIM_DNNL_COMMON_H
#define SLIM_DNNL_COMMON_H

#include <dnnl.h>
#include <dnnl_debug.h>

#include "slim/kernels.h"

/* Turns a failing oneDNN call into SLIM_ERR_BACKEND with a message naming
 * the call, and returns it from the enclosing function. */
#define SLIM_DNNL_CHECK(call)                                                                      \
    do {                                                                                           \
        dnnl_status_t slim_dnnl_status_ = (call);                                                  \
        if (slim_dnnl_status_ != dnnl_success)                                                     \
            return slim_error(SLIM_ERR_BACKEND, "oneDNN %s failed: %s", #call,                     \
                              dnnl_status2str(slim_dnnl_status_));                                 \
    } while (0)

/* Which op a cache currently serves. */
typedef enum slim_dnnl_kind {
    SLIM_DNNL_KIND_NONE = 0,
    SLIM_DNNL_KIND_CONV,
    SLIM_DNNL_KIND_BN,
    SLIM_DNNL_KIND_MAXPOOL,
    SLIM_DNNL_KIND_AVGPOOL,
} slim_dnnl_kind;

/* Slots for primitives; an op uses its own subset. New primitives (say a
 * fused conv + bias + ReLU for inference, or reorders to blocked layouts)
 * get new slots here. */
typedef enum slim_dnnl_prim_id {
    SLIM_DNNL_CONV_FWD = 0,
    SLIM_DNNL_CONV_BWD_DATA,
    SLIM_DNNL_CONV_BWD_WEIGHTS,
    SLIM_DNNL_BN_FWD_TRAIN,
    SLIM_DNNL_BN_FWD_EVAL,
    SLIM_DNNL_BN_BWD,
    SLIM_DNNL_POOL_FWD,
    SLIM_DNNL_POOL_BWD,
    SLIM_DNNL_NPRIMS
} slim_dnnl_prim_id;

/* Slots for cache-owned buffers. oneDNN backward primitives overwrite their
 * outputs while slim's contract is to add, so they write into these
 * temporaries, which are then added to the caller's gradients. */
typedef enum slim_dnnl_buf_id {
    SLIM_DNNL_BUF_DIFF_SRC = 0, /* like x */
    SLIM_DNNL_BUF_DIFF_WEIGHTS, /* like w, or gamma for BN */
    SLIM_DNNL_BUF_DIFF_BIAS,    /* like b, or beta for BN */
    SLIM_DNNL_BUF_WORKSPACE,    /* max pooling: forward -> backward */
    SLIM_DNNL_BUF_SCRATCHPAD,   /* shared by all primitives of the cache */
    SLIM_DNNL_BUF_BN_SHIFT,     /* BN backward: a shift input oneDNN demands but never
                                   reads (dx, dgamma, dbeta do not depend on beta) */
    SLIM_DNNL_NBUFS
} slim_dnnl_buf_id;

#define SLIM_DNNL_MAX_ARGS 12
#define SLIM_DNNL_KEY_LEN 16
#define SLIM_DNNL_NO_PRIM (-1)

/* One primitive with its memory objects (handles set at each run). */
typedef struct slim_dnnl_prim {
    dnnl_primitive_desc_t pd; /* NULL when not built */
    dnnl_primitive_t prim;
    unsigned variant;      /* build options, e.g. with or without bias */
    int hint;              /* slot whose pd was the forward hint, or SLIM_DNNL_NO_PRIM */
    dnnl_memory_t scratch; /* view of the cache scratchpad, NULL if none */
    int nmem;
    int mem_arg[SLIM_DNNL_MAX_ARGS]; /* DNNL_ARG_* of each memory object */
    dnnl_memory_t mem[SLIM_DNNL_MAX_ARGS];
} slim_dnnl_prim;

struct slim_dnnl_cache {
    slim_dnnl_kind kind;
    int key[SLIM_DNNL_KEY_LEN]; /* the op's shape (and settings), zero-padded */
    slim_dnnl_prim prim[SLIM_DNNL_NPRIMS];
    void *buf[SLIM_DNNL_NBUFS]; /* 64-byte aligned, owned */
    size_t buf_bytes[SLIM_DNNL_NBUFS];
    int workspace_valid; /* max pooling: a forward filled the workspace */
};

/* A caller buffer for one execute argument. */
typedef struct slim_dnnl_arg {
    int arg; /* DNNL_ARG_* */
    const void *ptr;
} slim_dnnl_arg;

/* The process-wide CPU engine (created on first use). */
slim_status slim_dnnl_engine(dnnl_engine_t *engine);

/* Makes *cache serve `kind` with `key` (SLIM_DNNL_KEY_LEN ints), allocating
 * it on first use and destroying its primitives when kind or key differ. */
slim_status slim_dnnl_cache_prepare(slim_dnnl_cache **cache, slim_dnnl_kind kind, const int *key);

/* Builds slot `id` from an op descriptor unless it is built with `variant`
 * already. `hint` is the slot of the forward primitive backward ones are
 * built against (SLIM_DNNL_NO_PRIM for none); rebuilding a slot also drops
 * the slots built with it as their hint. */
slim_status slim_dnnl_prim_build(slim_dnnl_cache *c, int id, unsigned variant,
                                 const_dnnl_op_desc_t desc, int hint);
static inline int slim_dnnl_prim_ready(const slim_dnnl_cache *c, int id) {
    return c->prim[id].prim != NULL;
}

/* A cache-owned buffer of at least `bytes` (grown, never shrunk; contents
 * are not preserved). NULL with a message when out of memory. */
void *slim_dnnl_buf(slim_dnnl_cache *c, int id, size_t bytes);

/* Size in bytes of the memory a primitive expects for execute argument
 * `arg` (0 when it takes none). */
size_t slim_dnnl_arg_bytes(const slim_dnnl_cache *c, int id, int arg);

/* Executes slot `id` on the shared stream with these buffers (plus the
 * scratchpad) and waits for it. */
slim_status slim_dnnl_run(slim_dnnl_cache *c, int id, int nargs, const slim_dnnl_arg *args);

/* A plain-layout memory descriptor of float32 data. */
slim_status slim_dnnl_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims,
                         dnnl_format_tag_t tag);

/* dst[i] += src[i] */
void slim_dnnl_accumulate(float *dst, const float *src, size_t n);

#endif
