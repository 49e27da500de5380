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
 * Memory objects and the workspace live in the cache, temporaries and the
 * scratchpad in buffers shared by all caches (see slim_dnnl_buf_id), so a
 * steady-state call allocates nothing of its own. */
#ifndef SLIM_DNNL_COMMON_H
#define SLIM_DNNL_COMMON_H

#include <dnnl.h>
#include <dnnl_debug.h>

#include "kernels/kernels.h"

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

/* Slots for primitives; an op uses its own subset. Convolutions run in
 * the layouts oneDNN prefers (blocked), so each of their primitives comes
 * with reorders between the caller's plain buffers and those layouts; a
 * reorder slot is built only when the layouts differ. */
typedef enum slim_dnnl_prim_id {
    SLIM_DNNL_CONV_FWD = 0,
    SLIM_DNNL_CONV_BWD_DATA,
    SLIM_DNNL_CONV_BWD_WEIGHTS,
    SLIM_DNNL_CONV_FWD_SRC,      /* reorder x -> forward src layout */
    SLIM_DNNL_CONV_FWD_WEI,      /* reorder w -> forward weights layout */
    SLIM_DNNL_CONV_FWD_DST,      /* reorder forward dst layout -> y */
    SLIM_DNNL_CONV_BWD_DIFF_DST, /* reorder dy -> backward-data diff_dst layout */
    SLIM_DNNL_CONV_BWD_WEI,      /* reorder w -> backward-data weights layout */
    SLIM_DNNL_CONV_BWD_DIFF_SRC, /* reorder backward-data diff_src -> plain (then added to dx) */
    SLIM_DNNL_CONV_BWW_SRC,      /* reorder x -> backward-weights src layout */
    SLIM_DNNL_CONV_BWW_DIFF_DST, /* reorder dy -> backward-weights diff_dst layout */
    SLIM_DNNL_CONV_BWW_DIFF_WEI, /* reorder backward-weights diff_weights -> dw, adding */
    SLIM_DNNL_POOL_FWD,
    SLIM_DNNL_POOL_BWD,
    SLIM_DNNL_NPRIMS
} slim_dnnl_prim_id;

/* Slots for buffers. The workspace belongs to its cache: max pooling's
 * forward leaves it there for the backward. Every other slot holds data
 * that lives only during one kernel call, so all caches share one set of
 * them, process-wide, grown to the largest need and freed with the last
 * cache: the temporaries take the memory of the largest layer, not the sum
 * over all layers. Like the
 * shared stream, this needs the fast kernels to be called from one thread
 * at a time.
 *
 * oneDNN backward primitives overwrite their outputs while slim's contract
 * is to add, so they write into temporaries that are then added to the
 * caller's gradients (by an accumulating reorder, or by
 * slim_dnnl_accumulate after a plain reorder if needed). The SRC..DIFF_DST
 * slots hold the caller's data converted to the layouts of the convolution
 * primitives. Buffers come from mmap (dnnl_common.c says why). */
typedef enum slim_dnnl_buf_id {
    SLIM_DNNL_BUF_DIFF_SRC = 0, /* like x */
    SLIM_DNNL_BUF_DIFF_WEIGHTS, /* like w */
    SLIM_DNNL_BUF_DIFF_BIAS,    /* like b */
    SLIM_DNNL_BUF_WORKSPACE,    /* max pooling: forward -> backward; per cache */
    SLIM_DNNL_BUF_SCRATCHPAD,   /* oneDNN's scratchpad, for every primitive */
    SLIM_DNNL_BUF_SRC,          /* x in a primitive's layout */
    SLIM_DNNL_BUF_WEIGHTS,      /* w in a primitive's layout */
    SLIM_DNNL_BUF_DST,          /* y in the forward's layout; in backward, dx made plain */
    SLIM_DNNL_BUF_DIFF_DST,     /* dy in the backward-data layout, then (when it
                                   differs) in the backward-weights one */
    SLIM_DNNL_BUF_BN_STATS,     /* batch norm: per-plane partial sums, per-channel factors */
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
    int hint;              /* slot whose pd was the forward hint (for a reorder: the
                              primitive it serves), or SLIM_DNNL_NO_PRIM; rebuilding
                              that slot drops this one */
    dnnl_memory_t scratch; /* view of the cache scratchpad, NULL if none */
    int nmem;
    int mem_arg[SLIM_DNNL_MAX_ARGS]; /* DNNL_ARG_* of each memory object */
    dnnl_memory_t mem[SLIM_DNNL_MAX_ARGS];
} slim_dnnl_prim;

struct slim_dnnl_cache {
    slim_dnnl_kind kind;
    int key[SLIM_DNNL_KEY_LEN]; /* the op's shape (and settings), zero-padded */
    slim_dnnl_prim prim[SLIM_DNNL_NPRIMS];
    void *workspace; /* SLIM_DNNL_BUF_WORKSPACE: 64-byte aligned, owned */
    size_t workspace_bytes;
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
/* Builds slot `id` as a reorder from layout `from` to layout `to` (same
 * dims), serving slot `owner` (rebuilt with it). With `accumulate` the
 * reorder adds into its destination (dst += reorder(src)) instead of
 * overwriting it. */
slim_status slim_dnnl_reorder_build(slim_dnnl_cache *c, int id, int owner,
                                    const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                    int accumulate);
static inline int slim_dnnl_prim_ready(const slim_dnnl_cache *c, int id) {
    return c->prim[id].prim != NULL;
}

/* Buffer `id` (the cache's workspace, or a shared one) with at least
 * `bytes`, 64-byte aligned (grown, never shrunk; contents are not
 * preserved when it grows). NULL with a message when out of memory. */
void *slim_dnnl_buf(slim_dnnl_cache *c, int id, size_t bytes);
/* Buffer `id` as it is now (NULL if never allocated). */
void *slim_dnnl_buf_ptr(const slim_dnnl_cache *c, int id);

/* The memory descriptor a built primitive expects for execute argument
 * `arg` (NULL when it takes none). */
const dnnl_memory_desc_t *slim_dnnl_arg_md(const slim_dnnl_cache *c, int id, int arg);

/* Size in bytes of the memory a primitive expects for execute argument
 * `arg` (0 when it takes none). */
size_t slim_dnnl_arg_bytes(const slim_dnnl_cache *c, int id, int arg);

/* Executes slot `id` on the shared stream with these buffers (plus the
 * scratchpad) and waits for it. */
slim_status slim_dnnl_run(slim_dnnl_cache *c, int id, int nargs, const slim_dnnl_arg *args);

/* A plain-layout memory descriptor of float32 data. */
slim_status slim_dnnl_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims,
                         dnnl_format_tag_t tag);

/* Runs reorder slot `id`: to = reorder(from) (to += ..., if built accumulating). */
slim_status slim_dnnl_reorder_run(slim_dnnl_cache *c, int id, const void *from, void *to);

/* Whether a loop over `count` values gets its own OpenMP parallel region:
 * at least `min` values (below that one thread is quicker than waking the
 * team) and more than one thread. Loops that do not get one run as
 * orphaned worksharing constructs on the calling thread: a region of one
 * thread (or one with a false `if` clause) makes libgomp allocate a team
 * on every entry, which a steady-state training step must not do. */
int slim_dnnl_go_parallel(double count, double min);

/* dst[i] += src[i] (OpenMP-parallel for large n) */
void slim_dnnl_accumulate(float *dst, const float *src, size_t n);

#endif
