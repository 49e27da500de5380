/* The runtime object: a private BN-folded (and rewritten) model, the plans
 * per batch size in their execution contexts, and the memory they share
 * (activation arenas, scratchpads, weights in the primitives' layouts).
 * See include/slim/runtime.h. */
#include "runtime/runtime_internal.h"

#include "slim/passes.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A bound on max_batch that keeps the plan table small and the arena
 * arithmetic far from overflow; far above any useful batch. */
#define RT_MAX_BATCH 65536
/* A bound on the workers (threads) of a runtime. */
#define RT_MAX_WORKERS 256

/* Batch tiling. A batch larger than the tile runs as tiles of at most
 * `tile` images, each through the whole plan, so that a layer's output is
 * still in cache when the next layer reads it: at large batches the
 * activations and the scratchpad spill out of the last-level cache and the
 * convs become memory-bound, most of all a pruned model's, whose few
 * channels do little arithmetic per byte. The tile is as many images as
 * keep the largest activation within RT_TILE_BYTES (the second-level cache
 * of one core), rounded down to a multiple of 8 and within [RT_TILE_MIN,
 * RT_TILE_MAX]; RT_TILE_MIN is where oneDNN's Winograd starts to pay
 * (policy.c). docs/RUNTIME.md has the measurements.
 *
 * With T > 1 threads the tiles run in parallel, one per thread, each
 * worker with primitives made for one thread and its own arena,
 * scratchpad and stream, instead of every primitive being split over the
 * threads: a tile's primitives are too small to share well (a barrier per
 * primitive, and on a busy machine every barrier waits for the slowest
 * thread). Batches up to the tile size (batch-1 latency) still split each
 * primitive over all threads. Both give the same logits within rounding;
 * a given batch size always takes the same path, and a tile's result does
 * not depend on which worker ran it. */
#define RT_TILE_BYTES (1u << 20)
#define RT_TILE_MIN 8
#define RT_TILE_MAX 64

static int tile_for(const slim_model *m) {
    size_t biggest = 1;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        size_t c = (size_t)round16(l->c); /* as padded to 16-channel blocks */
        size_t bytes = c * (size_t)l->h * (size_t)l->w * sizeof(float);
        if (bytes > biggest) biggest = bytes;
    }
    size_t t = RT_TILE_BYTES / biggest / 8 * 8;
    return t < RT_TILE_MIN ? RT_TILE_MIN : t > RT_TILE_MAX ? RT_TILE_MAX : (int)t;
}

void rt_set_tile(slim_runtime *rt, int tile) {
    if (tile >= 1) rt->tile = tile;
}

static void ctx_free(rt_ctx *c, int max_batch) {
    if (c->plans)
        for (int n = 0; n <= max_batch; n++)
            rt_plan_free(c->plans[n]);
    free(c->plans);
    free(c->arena);
    free(c->scratch);
    free(c->error);
    if (c->stream) dnnl_stream_destroy(c->stream);
    memset(c, 0, sizeof *c);
}

static slim_status ctx_init(slim_runtime *rt, rt_ctx *c, int threads) {
    c->threads = threads;
    c->generation = 1;
    c->plans = slim_calloc((size_t)rt->max_batch + 1, sizeof *c->plans);
    c->error = slim_calloc(RT_ERROR_LEN, 1);
    if (!c->plans || !c->error) return SLIM_ERR_NOMEM;
    dnnl_status_t s = dnnl_stream_create(&c->stream, rt->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        c->stream = NULL;
        return slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_stream_create failed: %s",
                          dnnl_status2str(s));
    }
    return SLIM_OK;
}

void slim_runtime_free(slim_runtime *rt) {
    if (!rt) return;
    for (int w = 0; w < rt->n_workers; w++)
        ctx_free(&rt->workers[w], rt->max_batch);
    free(rt->workers);
    ctx_free(&rt->main, rt->max_batch);
    if (rt->weights && rt->model)
        for (int i = 0; i < rt->model->n_layers; i++)
            for (rt_weights *w = rt->weights[i], *next; w; w = next) {
                next = w->next;
                free(w->data);
                free(w);
            }
    free(rt->weights);
    if (rt->wino && rt->model)
        for (int i = 0; i < rt->model->n_layers; i++)
            wino_destroy(rt->wino[i]);
    if (rt->stem && rt->model)
        for (int i = 0; i < rt->model->n_layers; i++)
            stem_destroy(rt->stem[i]);
    if (rt->head && rt->model)
        for (int i = 0; i < rt->model->n_layers; i++)
            head_destroy(rt->head[i]);
    free(rt->wino);
    free(rt->stem);
    free(rt->head);
    free(rt->ones_channel);
    free(rt->biasmap_channel);
    rt_graph_free(&rt->graph);
    slim_model_free(rt->model);
    free(rt);
}

/* Makes *buf at least `bytes` (64-byte aligned; contents not kept). */
static slim_status grow(void **buf, size_t *have, size_t bytes, const char *what) {
    if (bytes <= *have && *buf) return SLIM_OK;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p)
        return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory for a %zu-byte %s", rounded,
                          what);
    free(*buf);
    *buf = p;
    *have = rounded;
    return SLIM_OK;
}

/* The plan of context c for batch size n, built (with primitives for the
 * context's thread count, which oneDNN reads when it makes them) and the
 * context's buffers grown the first time. Never called from a worker
 * thread: plans share the runtime's weights. */
slim_status rt_plan_get(slim_runtime *rt, rt_ctx *c, int n, rt_plan **out) {
    if (c->plans[n]) {
        *out = c->plans[n];
        return SLIM_OK;
    }
    rt_plan *p;
    int threads = omp_get_max_threads();
    if (threads != c->threads) omp_set_num_threads(c->threads);
    slim_status st = rt_plan_build(rt, n, &p);
    if (threads != c->threads) omp_set_num_threads(threads);
    SLIM_TRY(st);
    void *arena = c->arena, *scratch = c->scratch;
    st = grow(&c->arena, &c->arena_bytes, p->arena_bytes, "activation arena");
    if (st == SLIM_OK) st = grow(&c->scratch, &c->scratch_bytes, p->scratch_bytes, "scratchpad");
    if (c->arena != arena || c->scratch != scratch) c->generation++;
    if (st != SLIM_OK) {
        rt_plan_free(p);
        return st;
    }
    c->plans[n] = p;
    rt->plans_built++;
    *out = p;
    return SLIM_OK;
}

/* Points the plan's arena and scratchpad arguments at its context's
 * buffers. Setting a handle also zeroes the padding of a blocked layout,
 * which another plan may have overwritten since this one last ran. */
static slim_status plan_bind(rt_ctx *c, rt_plan *p) {
    char *arena = c->arena;
    for (int s = 0; s < p->n_storages; s++) /* padded planes: their borders */
        if (p->storages[s].zeroed) memset(arena + p->storages[s].offset, 0, p->storages[s].bytes);
    for (int s = 0; s < p->n_steps; s++) {
        rt_step *st = &p->steps[s];
        for (int a = 0; a < st->nargs; a++) {
            rt_arg *arg = &st->args[a];
            void *h = arg->where == RT_AT_ARENA     ? arena + p->storages[arg->storage].offset
                      : arg->where == RT_AT_SCRATCH ? c->scratch
                                                    : NULL;
            if (h) SLIM_DNNL_CHECK(dnnl_memory_set_data_handle_v2(arg->mem, h, c->stream));
        }
    }
    p->generation = c->generation;
    return SLIM_OK;
}

/* oneDNN 2.6 allocates a few small blocks inside every
 * dnnl_primitive_execute (its map of arguments, freed before it returns);
 * the C API has no way around that. The count of executions in progress
 * lets a test tell those apart from allocations of the runtime's own. */
static int executing;

int rt_in_execute(void) { return __atomic_load_n(&executing, __ATOMIC_SEQ_CST) > 0; }

/* A step of one of our convs: its buffers are those its memory objects
 * point at (bound like any step's). */
slim_status rt_execute_own(rt_ctx *c, rt_step *st) {
    void *h[3] = {NULL, NULL, NULL}, *srcs[SLIM_LAYER_MAX_INPUTS] = {NULL};
    static const int which[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
    int n = 0;
    for (int a = 0; a < st->nargs; a++) {
        int arg = st->args[a].arg;
        for (int k = 0; k < 3; k++)
            if (arg == which[k]) {
                SLIM_DNNL_CHECK(dnnl_memory_get_data_handle(st->args[a].mem, &h[k]));
                if (k == 0) n = (int)st->args[a].md.dims[0];
            }
        if (arg >= DNNL_ARG_MULTIPLE_SRC && arg < DNNL_ARG_MULTIPLE_SRC + SLIM_LAYER_MAX_INPUTS) {
            SLIM_DNNL_CHECK(
                dnnl_memory_get_data_handle(st->args[a].mem, &srcs[arg - DNNL_ARG_MULTIPLE_SRC]));
            n = (int)st->args[a].md.dims[0];
        }
    }
    /* The primitives before it have finished (an in-order CPU stream
     * runs them synchronously; the wait makes that explicit). */
    SLIM_DNNL_CHECK(dnnl_stream_wait(c->stream));
    switch (st->kind) {
    case RT_STEP_HEAD: return head_run(st->u.head.head, n, h[0], h[1]);
    case RT_STEP_STEM: return stem_run(st->u.stem.conv, n, h[0], h[1], h[2], st->u.stem.threads);
    case RT_STEP_WINO: return wino_run(st->u.wino.conv, n, h[0], h[1], h[2], st->u.wino.threads);
    case RT_STEP_CONCAT:
        blocked_concat(n, st->u.concat.hw, st->u.concat.k, (const float *const *)srcs,
                       st->u.concat.cin, h[1]);
        return SLIM_OK;
    default: break;
    }
    return slim_error(SLIM_ERR_BACKEND, "runtime: step kind %d is not a kernel of ours", st->kind);
}

dnnl_status_t rt_execute_dnnl(rt_ctx *c, rt_step *st) {
    __atomic_add_fetch(&executing, 1, __ATOMIC_SEQ_CST);
    dnnl_status_t s = dnnl_primitive_execute(st->u.dnnl.prim, c->stream, st->nargs, st->exec);
    __atomic_sub_fetch(&executing, 1, __ATOMIC_SEQ_CST);
    return s;
}

/* Biasmaps as the weights of a channel of ones where that is free
 * (passes/biasmap_channel.c), except on convs our kernels take: they add
 * the biasmap themselves, and a channel of ones would only cost them one
 * more input channel in every multiply. */
static slim_status rewrite(slim_runtime *rt) {
    int n = rt->model->n_layers;
    int *keep = slim_calloc((size_t)n, sizeof *keep);
    if (!keep) return SLIM_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        keep[i] = rt_own_conv(&rt->model->layers[i]);
    slim_model *out = NULL;
    slim_status st =
        slim_model_biasmap_as_channel(rt->model, keep, &out, rt->ones_channel, rt->biasmap_channel);
    free(keep);
    if (st == SLIM_OK && out) {
        slim_model_free(rt->model);
        rt->model = out;
    }
    return st;
}

slim_status slim_runtime_create(const slim_model *model, int max_batch, slim_runtime **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_runtime_create: out is NULL");
    *out = NULL;
    if (!model || !model->layers || model->n_layers < 2)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_create: no model");
    if (max_batch < 1 || max_batch > RT_MAX_BATCH)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_create: max_batch %d is not in [1, %d]",
                          max_batch, RT_MAX_BATCH);
    SLIM_TRY(own_isa_env(NULL)); /* SLIM_ISA, checked before any plan uses it */
    slim_runtime *rt = slim_calloc(1, sizeof *rt);
    if (!rt) return SLIM_ERR_NOMEM;
    rt->max_batch = max_batch;
    int threads = omp_get_max_threads();
    if (threads > RT_MAX_WORKERS) threads = RT_MAX_WORKERS;
    slim_status st = slim_model_fold_bn(model, &rt->model);
    if (st == SLIM_OK) st = slim_dnnl_engine(&rt->engine);
    if (st == SLIM_OK) st = ctx_init(rt, &rt->main, threads);
    if (st == SLIM_OK && threads > 1) {
        rt->workers = slim_calloc((size_t)threads, sizeof *rt->workers);
        if (!rt->workers) st = SLIM_ERR_NOMEM;
        for (int w = 0; w < threads && st == SLIM_OK; w++) {
            rt->n_workers = w + 1;
            st = ctx_init(rt, &rt->workers[w], 1);
        }
    }
    if (st == SLIM_OK) {
        size_t nl = (size_t)rt->model->n_layers;
        rt->weights = slim_calloc(nl, sizeof *rt->weights);
        rt->wino = slim_calloc(nl, sizeof *rt->wino);
        rt->stem = slim_calloc(nl, sizeof *rt->stem);
        rt->head = slim_calloc(nl, sizeof *rt->head);
        rt->ones_channel = slim_calloc(nl, sizeof *rt->ones_channel);
        rt->biasmap_channel = slim_calloc(nl, sizeof *rt->biasmap_channel);
        if (!rt->weights || !rt->wino || !rt->stem || !rt->head || !rt->ones_channel ||
            !rt->biasmap_channel)
            st = SLIM_ERR_NOMEM;
    }
    if (st == SLIM_OK) st = rewrite(rt);
    if (st == SLIM_OK) st = rt_graph_init(&rt->graph, rt->model);
    if (st == SLIM_OK) rt->tile = tile_for(rt->model);
    /* The plans max_batch runs, so that memory is claimed and errors show
     * here: its own, or the tile's on each worker. */
    rt_plan *p;
    int tiled = st == SLIM_OK && max_batch > rt->tile && rt->n_workers > 0;
    if (st == SLIM_OK && !tiled)
        st = rt_plan_get(rt, &rt->main, max_batch < rt->tile ? max_batch : rt->tile, &p);
    for (int w = 0; tiled && w < rt->n_workers && st == SLIM_OK; w++)
        st = rt_plan_get(rt, &rt->workers[w], rt->tile, &p);
    if (st != SLIM_OK) {
        slim_runtime_free(rt);
        return st;
    }
    *out = rt;
    return SLIM_OK;
}

/* Runs context c's plan for batch n (built before). */
slim_status rt_run_plan(rt_ctx *c, const float *x, int n, float *logits) {
    rt_plan *p = c->plans[n];
    if (p->generation != c->generation || c->last_plan != p) {
        c->last_plan = NULL; /* a half-bound plan must be bound again */
        SLIM_TRY(plan_bind(c, p));
    }
    c->last_plan = p;
    for (int s = 0; s < p->n_steps; s++) {
        rt_step *st = &p->steps[s];
        for (int a = 0; a < st->nargs; a++) {
            rt_arg *arg = &st->args[a];
            /* oneDNN takes void *; x is only read. */
            if (arg->where == RT_AT_INPUT)
                SLIM_DNNL_CHECK(
                    dnnl_memory_set_data_handle_v2(arg->mem, (void *)(uintptr_t)x, c->stream));
            else if (arg->where == RT_AT_OUTPUT)
                SLIM_DNNL_CHECK(dnnl_memory_set_data_handle_v2(arg->mem, logits, c->stream));
        }
        if (st->kind != RT_STEP_DNNL)
            SLIM_TRY(rt_execute_own(c, st));
        else
            SLIM_DNNL_CHECK(rt_execute_dnnl(c, st));
    }
    SLIM_DNNL_CHECK(dnnl_stream_wait(c->stream));
    if (p->out_storage >= 0)
        memcpy(logits, (char *)c->arena + p->storages[p->out_storage].offset, p->out_bytes);
    return SLIM_OK;
}

/* n > tile: ceil(n / tile) tiles of near-equal size (n = 256, tile 16:
 * sixteen of 16), tile t of `size` images starting at image `first`. */
void rt_tile_at(int n, int tile, int t, int *first, int *size) {
    int tiles = (n + tile - 1) / tile, base = n / tiles, extra = n % tiles;
    *size = base + (t < extra);
    *first = t * base + (t < extra ? t : extra);
}

slim_status slim_runtime_run(slim_runtime *rt, const float *x, int n, float *logits) {
    if (!rt || !x || !logits)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_run: runtime, x and logits are required");
    if (n < 1 || n > rt->max_batch)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_run: batch %d is not in [1, %d]", n,
                          rt->max_batch);
    rt_plan *p;
    if (n <= rt->tile) {
        SLIM_TRY(rt_plan_get(rt, &rt->main, n, &p));
        return rt_run_plan(&rt->main, x, n, logits);
    }
    const slim_layer *in = &rt->model->layers[0];
    size_t image = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    size_t classes = (size_t)rt->model->n_classes;
    int tiles = (n + rt->tile - 1) / rt->tile, first, size;
    /* Every plan a tile needs is built first, here: building is not
     * thread-safe (plans share the weights). */
    int workers = rt->n_workers;
    for (int t = 0; t < tiles; t += tiles - 1) { /* the first (largest) and the last */
        rt_tile_at(n, rt->tile, t, &first, &size);
        if (!workers) SLIM_TRY(rt_plan_get(rt, &rt->main, size, &p));
        for (int w = 0; w < workers; w++)
            SLIM_TRY(rt_plan_get(rt, &rt->workers[w], size, &p));
    }
    if (!workers) {
        for (int t = 0; t < tiles; t++) {
            rt_tile_at(n, rt->tile, t, &first, &size);
            SLIM_TRY(rt_run_plan(&rt->main, x + (size_t)first * image, size,
                                 logits + (size_t)first * classes));
        }
        return SLIM_OK;
    }
    for (int w = 0; w < workers; w++)
        rt->workers[w].status = SLIM_OK;
    int next = 0; /* the next tile not taken */
#pragma omp parallel num_threads(workers)
    {
        /* The team may be smaller than asked (inside another parallel
         * region it is one thread): its threads share all the tiles. Each
         * takes the next tile when done with one, so that a thread the
         * system holds up does fewer, not all the others wait for it. */
        int w = omp_get_thread_num();
        rt_ctx *c = &rt->workers[w];
        for (int t; c->status == SLIM_OK &&
                    (t = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) < tiles;) {
            int first_, size_;
            rt_tile_at(n, rt->tile, t, &first_, &size_);
            c->status = rt_run_plan(c, x + (size_t)first_ * image, size_,
                                    logits + (size_t)first_ * classes);
            if (c->status != SLIM_OK) snprintf(c->error, RT_ERROR_LEN, "%s", slim_last_error());
        }
    }
    for (int w = 0; w < workers; w++)
        if (rt->workers[w].status != SLIM_OK)
            return slim_error(rt->workers[w].status, "%s", rt->workers[w].error);
    return SLIM_OK;
}

void slim_runtime_get_stats(const slim_runtime *rt, slim_runtime_stats *stats) {
    if (!stats) return;
    memset(stats, 0, sizeof *stats);
    if (!rt) return;
    /* The plan max_batch runs: the main one, or a worker's tile plan. */
    const rt_plan *p = rt->main.plans[rt->max_batch < rt->tile ? rt->max_batch : rt->tile];
    if (rt->max_batch > rt->tile && rt->n_workers > 0 && rt->workers[0].plans[rt->tile])
        p = rt->workers[0].plans[rt->tile];
    stats->max_batch = rt->max_batch;
    stats->tile_batch = rt->tile;
    stats->workers = rt->n_workers;
    stats->n_classes = rt->model->n_classes;
    stats->plans_built = rt->plans_built;
    stats->steps = p ? p->n_steps : 0;
    stats->reorders = p ? p->reorders : 0;
    stats->arena_bytes = rt->main.arena_bytes;
    stats->scratchpad_bytes = rt->main.scratch_bytes;
    for (int w = 0; w < rt->n_workers; w++) {
        stats->arena_bytes += rt->workers[w].arena_bytes;
        stats->scratchpad_bytes += rt->workers[w].scratch_bytes;
    }
    stats->weight_bytes = rt->weight_bytes;
}
