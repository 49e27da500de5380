/* The runtime object: a private BN-folded model, one stream, the plans per
 * batch size and the memory they share (activation arena, scratchpad,
 * weights in the primitives' layouts). See include/slim/runtime.h. */
#include "runtime/runtime_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A bound on max_batch that keeps the plan table small and the arena
 * arithmetic far from overflow; far above any useful batch. */
#define RT_MAX_BATCH 65536

void slim_runtime_free(slim_runtime *rt) {
    if (!rt) return;
    if (rt->plans)
        for (int n = 0; n <= rt->max_batch; n++)
            slim_rt_plan_free(rt->plans[n]);
    free(rt->plans);
    if (rt->weights && rt->model)
        for (int i = 0; i < rt->model->n_layers; i++)
            for (rt_weights *w = rt->weights[i], *next; w; w = next) {
                next = w->next;
                free(w->data);
                free(w);
            }
    free(rt->weights);
    free(rt->arena);
    free(rt->scratch);
    if (rt->stream) dnnl_stream_destroy(rt->stream);
    slim_rt_graph_free(&rt->graph);
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

/* The plan for batch size n, built (and the shared buffers grown) the
 * first time. */
static slim_status plan_get(slim_runtime *rt, int n, rt_plan **out) {
    if (rt->plans[n]) {
        *out = rt->plans[n];
        return SLIM_OK;
    }
    rt_plan *p;
    SLIM_TRY(slim_rt_plan_build(rt, n, &p));
    void *arena = rt->arena, *scratch = rt->scratch;
    slim_status st = grow(&rt->arena, &rt->arena_bytes, p->arena_bytes, "activation arena");
    if (st == SLIM_OK) st = grow(&rt->scratch, &rt->scratch_bytes, p->scratch_bytes, "scratchpad");
    if (rt->arena != arena || rt->scratch != scratch) rt->generation++;
    if (st != SLIM_OK) {
        slim_rt_plan_free(p);
        return st;
    }
    rt->plans[n] = p;
    rt->plans_built++;
    *out = p;
    return SLIM_OK;
}

/* Points the plan's arena and scratchpad arguments at the current buffers.
 * Setting a handle also zeroes the padding of a blocked layout, which
 * another plan may have overwritten since this one last ran. */
static slim_status plan_bind(slim_runtime *rt, rt_plan *p) {
    char *arena = rt->arena;
    for (int s = 0; s < p->n_steps; s++) {
        rt_step *st = &p->steps[s];
        for (int a = 0; a < st->nargs; a++) {
            rt_arg *arg = &st->args[a];
            void *h = arg->where == RT_AT_ARENA     ? arena + p->storages[arg->storage].offset
                      : arg->where == RT_AT_SCRATCH ? rt->scratch
                                                    : NULL;
            if (h) SLIM_DNNL_CHECK(dnnl_memory_set_data_handle_v2(arg->mem, h, rt->stream));
        }
    }
    p->generation = rt->generation;
    return SLIM_OK;
}

/* oneDNN 2.6 allocates a few small blocks inside every
 * dnnl_primitive_execute (its map of arguments, freed before it returns);
 * the C API has no way around that. The count of executions in progress
 * lets a test tell those apart from allocations of the runtime's own. */
static int executing;

int slim_rt_in_execute(void) { return __atomic_load_n(&executing, __ATOMIC_SEQ_CST) > 0; }

static dnnl_status_t execute(slim_runtime *rt, rt_step *st) {
    __atomic_add_fetch(&executing, 1, __ATOMIC_SEQ_CST);
    dnnl_status_t s = dnnl_primitive_execute(st->prim, rt->stream, st->nargs, st->exec);
    __atomic_sub_fetch(&executing, 1, __ATOMIC_SEQ_CST);
    return s;
}

slim_status slim_runtime_create(const slim_model *model, int max_batch, slim_runtime **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_runtime_create: out is NULL");
    *out = NULL;
    if (!model || !model->layers || model->n_layers < 2)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_create: no model");
    if (max_batch < 1 || max_batch > RT_MAX_BATCH)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_create: max_batch %d is not in [1, %d]",
                          max_batch, RT_MAX_BATCH);
    slim_runtime *rt = slim_calloc(1, sizeof *rt);
    if (!rt) return SLIM_ERR_NOMEM;
    rt->max_batch = max_batch;
    rt->generation = 1;
    slim_status st = slim_model_fold_bn(model, &rt->model);
    if (st == SLIM_OK) st = slim_dnnl_engine(&rt->engine);
    if (st == SLIM_OK) {
        dnnl_status_t s = dnnl_stream_create(&rt->stream, rt->engine, dnnl_stream_default_flags);
        if (s != dnnl_success) {
            rt->stream = NULL;
            st = slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_stream_create failed: %s",
                            dnnl_status2str(s));
        }
    }
    if (st == SLIM_OK) {
        rt->plans = slim_calloc((size_t)max_batch + 1, sizeof *rt->plans);
        rt->weights = slim_calloc((size_t)rt->model->n_layers, sizeof *rt->weights);
        if (!rt->plans || !rt->weights) st = SLIM_ERR_NOMEM;
    }
    if (st == SLIM_OK) st = slim_rt_graph_init(rt);
    rt_plan *p;
    if (st == SLIM_OK) st = plan_get(rt, max_batch, &p);
    if (st != SLIM_OK) {
        slim_runtime_free(rt);
        return st;
    }
    *out = rt;
    return SLIM_OK;
}

slim_status slim_runtime_run(slim_runtime *rt, const float *x, int n, float *logits) {
    if (!rt || !x || !logits)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_run: runtime, x and logits are required");
    if (n < 1 || n > rt->max_batch)
        return slim_error(SLIM_ERR_ARG, "slim_runtime_run: batch %d is not in [1, %d]", n,
                          rt->max_batch);
    rt_plan *p;
    SLIM_TRY(plan_get(rt, n, &p));
    if (p->generation != rt->generation || rt->last_plan != p) {
        rt->last_plan = NULL; /* a half-bound plan must be bound again */
        SLIM_TRY(plan_bind(rt, p));
    }
    rt->last_plan = p;
    for (int s = 0; s < p->n_steps; s++) {
        rt_step *st = &p->steps[s];
        for (int a = 0; a < st->nargs; a++) {
            rt_arg *arg = &st->args[a];
            /* oneDNN takes void *; x is only read. */
            if (arg->where == RT_AT_INPUT)
                SLIM_DNNL_CHECK(
                    dnnl_memory_set_data_handle_v2(arg->mem, (void *)(uintptr_t)x, rt->stream));
            else if (arg->where == RT_AT_OUTPUT)
                SLIM_DNNL_CHECK(dnnl_memory_set_data_handle_v2(arg->mem, logits, rt->stream));
        }
        SLIM_DNNL_CHECK(execute(rt, st));
    }
    SLIM_DNNL_CHECK(dnnl_stream_wait(rt->stream));
    if (p->out_storage >= 0)
        memcpy(logits, (char *)rt->arena + p->storages[p->out_storage].offset, p->out_bytes);
    return SLIM_OK;
}

void slim_runtime_get_stats(const slim_runtime *rt, slim_runtime_stats *stats) {
    if (!stats) return;
    memset(stats, 0, sizeof *stats);
    if (!rt) return;
    const rt_plan *p = rt->plans[rt->max_batch];
    stats->max_batch = rt->max_batch;
    stats->n_classes = rt->model->n_classes;
    stats->plans_built = rt->plans_built;
    stats->steps = p ? p->n_steps : 0;
    stats->reorders = p ? p->reorders : 0;
    stats->arena_bytes = rt->arena_bytes;
    stats->scratchpad_bytes = rt->scratch_bytes;
    stats->weight_bytes = rt->weight_bytes;
}

/* ---- describe ------------------------------------------------------------ */

typedef struct text {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text *t, const char *fmt, ...) {
    if (t->failed) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = 1;
        return;
    }
    size_t add = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (t->len + add + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + add + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->len, line, add);
    t->len += add;
    t->s[t->len] = '\0';
}

static const rt_arg *find_arg(const rt_step *s, int arg) {
    for (int a = 0; a < s->nargs; a++)
        if (s->args[a].arg == arg) return &s->args[a];
    return NULL;
}

slim_status slim_runtime_describe(slim_runtime *rt, int n, char **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_runtime_describe: out is NULL");
    *out = NULL;
    if (!rt || n < 1 || n > rt->max_batch)
        return slim_error(SLIM_ERR_ARG,
                          "slim_runtime_describe: no runtime or batch %d out of range", n);
    rt_plan *p;
    SLIM_TRY(plan_get(rt, n, &p));
    text t = {0};
    text_add(&t, "plan for batch %d: %d steps (%d reorders), arena %zu bytes, scratchpad %zu\n", n,
             p->n_steps, p->reorders, p->arena_bytes, p->scratch_bytes);
    for (int s = 0; s < p->n_steps; s++) {
        const rt_step *st = &p->steps[s];
        const char *impl = "?";
        if (dnnl_primitive_desc_query(st->pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
            impl = "?";
        const rt_arg *src = find_arg(st, st->is_reorder ? DNNL_ARG_FROM : DNNL_ARG_SRC);
        if (!src) src = find_arg(st, DNNL_ARG_SRC_0);
        const rt_arg *dst = find_arg(st, st->is_reorder ? DNNL_ARG_TO : DNNL_ARG_DST);
        char a[48] = "-", b[48] = "-";
        if (src) slim_rt_md_str(&src->md, a, sizeof a);
        if (dst) slim_rt_md_str(&dst->md, b, sizeof b);
        int inplace = src && dst && src->where == RT_AT_ARENA && dst->where == RT_AT_ARENA &&
                      src->storage == dst->storage;
        text_add(&t, "%3d  %-48s %s -> %s%s  [%s]\n", s, st->what, a, b,
                 inplace ? " (in place)" : "", impl);
    }
    if (p->out_storage >= 0) text_add(&t, "     logits copied out (plain)\n");
    if (t.failed || !t.s) {
        free(t.s);
        return slim_error(SLIM_ERR_NOMEM, "slim_runtime_describe: out of memory");
    }
    *out = t.s;
    return SLIM_OK;
}
