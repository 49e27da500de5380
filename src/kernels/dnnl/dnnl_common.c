/* The shared oneDNN engine and stream, and the per-layer primitive cache. */
#include "kernels/dnnl/dnnl_common.h"

#include <omp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* One CPU engine and one in-order stream for the whole process, created on
 * first use. oneDNN on OpenMP parallelises inside each primitive, so one
 * stream is all the CPU needs. The attribute asks for user-managed
 * scratchpads, so that each cache owns one scratchpad buffer instead of
 * oneDNN allocating one per execution. A second attribute adds a sum
 * post-op, for reorders that add into the caller's gradients. */
static pthread_once_t context_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t context_engine;
static dnnl_stream_t context_stream;
static dnnl_primitive_attr_t context_attr;
static dnnl_primitive_attr_t context_attr_sum; /* context_attr + a sum post-op (dst += ...) */
static dnnl_post_ops_t context_sum_ops;
static char context_failure[256]; /* non-empty when creation failed */

static void context_create(void) {
    dnnl_status_t st = dnnl_engine_create(&context_engine, dnnl_cpu, 0);
    const char *what = "dnnl_engine_create";
    if (st == dnnl_success) {
        st = dnnl_stream_create(&context_stream, context_engine, dnnl_stream_default_flags);
        what = "dnnl_stream_create";
    }
    if (st == dnnl_success) {
        st = dnnl_primitive_attr_create(&context_attr);
        what = "dnnl_primitive_attr_create";
    }
    if (st == dnnl_success) {
        st = dnnl_primitive_attr_set_scratchpad_mode(context_attr, dnnl_scratchpad_mode_user);
        what = "dnnl_primitive_attr_set_scratchpad_mode";
    }
    if (st == dnnl_success) {
        st = dnnl_primitive_attr_clone(&context_attr_sum, context_attr);
        what = "dnnl_primitive_attr_clone";
    }
    if (st == dnnl_success) {
        st = dnnl_post_ops_create(&context_sum_ops);
        what = "dnnl_post_ops_create";
    }
    if (st == dnnl_success) {
        st = dnnl_post_ops_append_sum(context_sum_ops, 1.0f);
        what = "dnnl_post_ops_append_sum";
    }
    if (st == dnnl_success) {
        st = dnnl_primitive_attr_set_post_ops(context_attr_sum, context_sum_ops);
        what = "dnnl_primitive_attr_set_post_ops";
    }
    if (st != dnnl_success)
        snprintf(context_failure, sizeof context_failure, "oneDNN %s failed: %s", what,
                 dnnl_status2str(st));
}

static slim_status context_get(void) {
    if (pthread_once(&context_once, context_create) != 0)
        return slim_error(SLIM_ERR_BACKEND, "oneDNN: could not initialise the engine");
    if (context_failure[0]) return slim_error(SLIM_ERR_BACKEND, "%s", context_failure);
    return SLIM_OK;
}

slim_status slim_dnnl_engine(dnnl_engine_t *engine) {
    SLIM_TRY(context_get());
    *engine = context_engine;
    return SLIM_OK;
}

/* ---- primitives ------------------------------------------------------- */

static void prim_destroy(slim_dnnl_prim *p) {
    for (int i = 0; i < p->nmem; i++)
        dnnl_memory_destroy(p->mem[i]);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
    p->hint = SLIM_DNNL_NO_PRIM;
}

/* Drops slot `id` and, recursively, every slot built with it as hint: a
 * backward pd refers to its forward hint, which must outlive it. */
static void prim_drop(slim_dnnl_cache *c, int id) {
    for (int j = 0; j < SLIM_DNNL_NPRIMS; j++)
        if (c->prim[j].pd && c->prim[j].hint == id) prim_drop(c, j);
    prim_destroy(&c->prim[id]);
}

static void cache_clear(slim_dnnl_cache *c) {
    for (int i = 0; i < SLIM_DNNL_NPRIMS; i++)
        prim_destroy(&c->prim[i]);
    c->workspace_valid = 0;
}

/* The buffers shared by all caches (every slot but the workspace), and the
 * number of live caches: the last one to go frees them. Not locked: the
 * fast kernels run on one thread at a time (see slim_dnnl_buf_id). */
static void *shared_buf[SLIM_DNNL_NBUFS];
static size_t shared_bytes[SLIM_DNNL_NBUFS];
static int live_caches;
static size_t buf_allocs; /* buffers allocated so far, for slim_dnnl_buf_allocs */

/* Buffers come straight from mmap (page-aligned, so 64-byte aligned), and a
 * buffer that grows gives its old pages straight back. Through malloc, the
 * first training step's growing buffers (tens of MB) raised glibc's
 * dynamic mmap threshold, so that later buffers came from the heap, where
 * freed chunks stay resident: dead memory in the peak RSS. */
static void *pages_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    buf_allocs++;
    return p;
}

static void pages_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes);
}

size_t slim_dnnl_buf_allocs(void) { return buf_allocs; }

void slim_dnnl_cache_free(slim_dnnl_cache *cache) {
    if (!cache) return;
    cache_clear(cache);
    pages_free(cache->workspace, cache->workspace_bytes);
    free(cache);
    if (--live_caches == 0)
        for (int i = 0; i < SLIM_DNNL_NBUFS; i++) {
            pages_free(shared_buf[i], shared_bytes[i]);
            shared_buf[i] = NULL;
            shared_bytes[i] = 0;
        }
}

slim_status slim_dnnl_cache_prepare(slim_dnnl_cache **cache, slim_dnnl_kind kind, const int *key) {
    if (!cache) return slim_error(SLIM_ERR_ARG, "oneDNN kernel: cache handle is NULL");
    SLIM_TRY(context_get());
    slim_dnnl_cache *c = *cache;
    if (!c) {
        c = slim_calloc(1, sizeof *c);
        if (!c) return SLIM_ERR_NOMEM;
        for (int i = 0; i < SLIM_DNNL_NPRIMS; i++)
            c->prim[i].hint = SLIM_DNNL_NO_PRIM;
        live_caches++;
        *cache = c;
    }
    if (c->kind != kind || memcmp(c->key, key, sizeof c->key) != 0) {
        /* A new shape: the buffers are kept (they only grow), primitives go. */
        cache_clear(c);
        c->kind = kind;
        memcpy(c->key, key, sizeof c->key);
    }
    return SLIM_OK;
}

void *slim_dnnl_buf(slim_dnnl_cache *c, int id, size_t bytes) {
    int own = id == SLIM_DNNL_BUF_WORKSPACE;
    void **slot = own ? &c->workspace : &shared_buf[id];
    size_t *have = own ? &c->workspace_bytes : &shared_bytes[id];
    if (*slot && *have >= bytes) return *slot;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    /* The old buffer goes first: its contents need not survive, and the two
     * together would raise the peak. */
    pages_free(*slot, *have);
    *slot = NULL;
    *have = 0;
    void *p = pages_alloc(rounded);
    if (!p) {
        slim_error(SLIM_ERR_NOMEM, "oneDNN kernel: out of memory for a %zu-byte buffer", bytes);
        return NULL;
    }
    *slot = p;
    *have = rounded;
    return p;
}

void *slim_dnnl_buf_ptr(const slim_dnnl_cache *c, int id) {
    return id == SLIM_DNNL_BUF_WORKSPACE ? c->workspace : shared_buf[id];
}

/* Creates the primitive of slot p from its pd and a view of the shared
 * scratchpad (grown to what the primitive needs). */
static slim_status prim_finish(slim_dnnl_cache *c, slim_dnnl_prim *p) {
    SLIM_DNNL_CHECK(dnnl_primitive_create(&p->prim, p->pd));
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes > 0) {
        if (!slim_dnnl_buf(c, SLIM_DNNL_BUF_SCRATCHPAD, sbytes)) return SLIM_ERR_NOMEM;
        SLIM_DNNL_CHECK(dnnl_memory_create(&p->scratch, smd, context_engine, DNNL_MEMORY_NONE));
    }
    return SLIM_OK;
}

/* The pd of slot p; on failure p->pd stays NULL. */
static slim_status pd_create(slim_dnnl_prim *p, const_dnnl_op_desc_t desc,
                             const_dnnl_primitive_desc_t hint_pd) {
    dnnl_primitive_desc_t pd = NULL;
    SLIM_DNNL_CHECK(dnnl_primitive_desc_create(&pd, desc, context_attr, context_engine, hint_pd));
    p->pd = pd;
    return SLIM_OK;
}

static slim_status reorder_pd_create(slim_dnnl_prim *p, const dnnl_memory_desc_t *from,
                                     const dnnl_memory_desc_t *to, int accumulate) {
    dnnl_primitive_desc_t pd = NULL;
    SLIM_DNNL_CHECK(
        dnnl_reorder_primitive_desc_create(&pd, from, context_engine, to, context_engine,
                                           accumulate ? context_attr_sum : context_attr));
    p->pd = pd;
    return SLIM_OK;
}

slim_status slim_dnnl_prim_build(slim_dnnl_cache *c, int id, unsigned variant,
                                 const_dnnl_op_desc_t desc, int hint) {
    slim_dnnl_prim *p = &c->prim[id];
    if (p->prim && p->variant == variant) return SLIM_OK;
    prim_drop(c, id);
    const_dnnl_primitive_desc_t hint_pd = hint == SLIM_DNNL_NO_PRIM ? NULL : c->prim[hint].pd;
    if (hint != SLIM_DNNL_NO_PRIM && !hint_pd)
        return slim_error(SLIM_ERR_BACKEND, "oneDNN kernel: backward built before its forward");
    p->variant = variant;
    p->hint = hint;
    /* On failure the slot is left empty, so that a caller may try another
     * variant (conv falls back from Winograd to direct). */
    slim_status st = pd_create(p, desc, hint_pd);
    if (st == SLIM_OK) st = prim_finish(c, p);
    if (st != SLIM_OK) prim_destroy(p);
    return st;
}

slim_status slim_dnnl_reorder_build(slim_dnnl_cache *c, int id, int owner,
                                    const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                    int accumulate) {
    slim_dnnl_prim *p = &c->prim[id];
    prim_drop(c, id);
    p->hint = owner;
    slim_status st = reorder_pd_create(p, from, to, accumulate);
    if (st == SLIM_OK) st = prim_finish(c, p);
    if (st != SLIM_OK) prim_destroy(p);
    return st;
}

slim_status slim_dnnl_reorder_run(slim_dnnl_cache *c, int id, const void *from, void *to) {
    slim_dnnl_arg args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return slim_dnnl_run(c, id, 2, args);
}

static const dnnl_memory_desc_t *arg_md(const slim_dnnl_prim *p, int arg) {
    return dnnl_primitive_desc_query_md(p->pd, dnnl_query_exec_arg_md, arg);
}

const dnnl_memory_desc_t *slim_dnnl_arg_md(const slim_dnnl_cache *c, int id, int arg) {
    return c->prim[id].pd ? arg_md(&c->prim[id], arg) : NULL;
}

size_t slim_dnnl_arg_bytes(const slim_dnnl_cache *c, int id, int arg) {
    const dnnl_memory_desc_t *md = arg_md(&c->prim[id], arg);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* The memory object of `arg`, created on the first run from the
 * primitive's own descriptor of that argument. */
static slim_status arg_memory(slim_dnnl_prim *p, int arg, dnnl_memory_t *mem) {
    for (int i = 0; i < p->nmem; i++)
        if (p->mem_arg[i] == arg) {
            *mem = p->mem[i];
            return SLIM_OK;
        }
    if (p->nmem == SLIM_DNNL_MAX_ARGS)
        return slim_error(SLIM_ERR_BACKEND, "oneDNN kernel: too many arguments");
    const dnnl_memory_desc_t *md = arg_md(p, arg);
    if (!md || dnnl_memory_desc_get_size(md) == 0)
        return slim_error(SLIM_ERR_BACKEND, "oneDNN kernel: the primitive takes no argument %d",
                          arg);
    SLIM_DNNL_CHECK(dnnl_memory_create(&p->mem[p->nmem], md, context_engine, DNNL_MEMORY_NONE));
    p->mem_arg[p->nmem] = arg;
    *mem = p->mem[p->nmem++];
    return SLIM_OK;
}

/* Nonzero while a primitive executes: oneDNN 2.6 allocates its argument map
 * inside dnnl_primitive_execute (a few small blocks per call, freed before
 * it returns), which no C API call avoids; tests use this to tell those
 * apart from allocations of slim's own. */
static int executing;

slim_status slim_dnnl_run(slim_dnnl_cache *c, int id, int nargs, const slim_dnnl_arg *args) {
    slim_dnnl_prim *p = &c->prim[id];
    dnnl_exec_arg_t exec[SLIM_DNNL_MAX_ARGS + 1];
    if (!p->prim) return slim_error(SLIM_ERR_BACKEND, "oneDNN kernel: primitive not built");
    if (nargs > SLIM_DNNL_MAX_ARGS)
        return slim_error(SLIM_ERR_BACKEND, "oneDNN kernel: too many arguments");
    for (int i = 0; i < nargs; i++) {
        dnnl_memory_t mem = NULL;
        SLIM_TRY(arg_memory(p, args[i].arg, &mem));
        /* oneDNN takes void *; inputs are only read. */
        SLIM_DNNL_CHECK(dnnl_memory_set_data_handle(mem, (void *)(uintptr_t)args[i].ptr));
        exec[i] = (dnnl_exec_arg_t){args[i].arg, mem};
    }
    if (p->scratch) {
        /* The scratchpad may have grown (and moved) since this was built. */
        SLIM_DNNL_CHECK(dnnl_memory_set_data_handle(
            p->scratch, slim_dnnl_buf_ptr(c, SLIM_DNNL_BUF_SCRATCHPAD)));
        exec[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    }
    __atomic_add_fetch(&executing, 1, __ATOMIC_SEQ_CST);
    dnnl_status_t ds = dnnl_primitive_execute(p->prim, context_stream, nargs, exec);
    if (ds == dnnl_success) ds = dnnl_stream_wait(context_stream);
    __atomic_sub_fetch(&executing, 1, __ATOMIC_SEQ_CST);
    if (ds != dnnl_success)
        return slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_primitive_execute failed: %s",
                          dnnl_status2str(ds));
    return SLIM_OK;
}

int slim_dnnl_in_execute(void) { return __atomic_load_n(&executing, __ATOMIC_SEQ_CST) > 0; }

slim_status slim_dnnl_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims,
                         dnnl_format_tag_t tag) {
    SLIM_DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag));
    return SLIM_OK;
}

/* Below this many values one thread is quicker than waking the team. */
#define ACCUMULATE_PARALLEL_MIN 65536

int slim_dnnl_go_parallel(double count, double min) {
    return count >= min && omp_get_max_threads() > 1;
}

/* A worksharing loop without its own parallel region: shared out when
 * called inside one, run by the calling thread alone otherwise. */
static void accumulate_loop(float *dst, const float *src, ptrdiff_t n) {
#pragma omp for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] += src[i];
}

void slim_dnnl_accumulate(float *dst, const float *src, size_t n) {
    ptrdiff_t count = (ptrdiff_t)n;
    if (!slim_dnnl_go_parallel((double)count, ACCUMULATE_PARALLEL_MIN)) {
        accumulate_loop(dst, src, count);
        return;
    }
#pragma omp parallel
    accumulate_loop(dst, src, count);
}
