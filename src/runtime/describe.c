/* The runtime's text outputs: describe (the plan, one line per step) and
 * profile (each step timed alone). */
#include "runtime/runtime_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

slim_status slim_runtime_profile(slim_runtime *rt, const float *x, int n, int reps, char **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_runtime_profile: out is NULL");
    *out = NULL;
    if (!rt || !x || n < 1 || n > rt->max_batch || reps < 1 || reps > 100000)
        return slim_error(SLIM_ERR_ARG,
                          "slim_runtime_profile: no runtime or input, batch %d or %d repeats out "
                          "of range",
                          n, reps);
    /* The plan batch n runs: its own, or that of its (first, largest) tile,
     * on the context that runs it. */
    rt_ctx *c = &rt->main;
    if (n > rt->tile) {
        int first;
        rt_tile_at(n, rt->tile, 0, &first, &n);
        if (rt->n_workers) c = &rt->workers[0];
    }
    rt_plan *p;
    SLIM_TRY(rt_plan_get(rt, c, n, &p));
    float *logits = slim_calloc((size_t)n * (size_t)rt->model->n_classes, sizeof(float));
    double *t = slim_calloc((size_t)reps, sizeof(double)), total = 0;
    slim_status st = logits && t ? SLIM_OK : SLIM_ERR_NOMEM;
    /* One whole run fills every buffer (and binds the plan's handles, x and
     * logits included); then each step alone, reps times. In-place steps
     * see their own output again: the figures are times, not results. */
    if (st == SLIM_OK) st = rt_run_plan(c, x, n, logits);
    text txt = {0};
    text_add(&txt, "plan for batch %d, each step alone (median of %d runs):\n", n, reps);
    for (int s = 0; st == SLIM_OK && s < p->n_steps; s++) {
        rt_step *step = &p->steps[s];
        for (int r = 0; st == SLIM_OK && r < reps; r++) {
            double t0 = slim_clock_s();
            if (step->kind != RT_STEP_DNNL)
                st = rt_execute_own(c, step);
            else if (rt_execute_dnnl(c, step) != dnnl_success)
                st = slim_error(SLIM_ERR_BACKEND, "slim_runtime_profile: step %d failed", s);
            if (st == SLIM_OK && dnnl_stream_wait(c->stream) != dnnl_success)
                st = slim_error(SLIM_ERR_BACKEND, "slim_runtime_profile: step %d failed", s);
            t[r] = slim_clock_s() - t0;
        }
        double ms = 1e3 * slim_median(t, reps);
        total += ms;
        text_add(&txt, "%3d  %-48s %9.4f ms\n", s, step->what, ms);
    }
    text_add(&txt, "     %-48s %9.4f ms\n", "all steps", total);
    free(logits);
    free(t);
    if (st == SLIM_OK && (txt.failed || !txt.s))
        st = slim_error(SLIM_ERR_NOMEM, "slim_runtime_profile: out of memory");
    if (st != SLIM_OK) {
        free(txt.s);
        return st;
    }
    *out = txt.s;
    return SLIM_OK;
}

slim_status slim_runtime_describe(slim_runtime *rt, int n, char **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_runtime_describe: out is NULL");
    *out = NULL;
    if (!rt || n < 1 || n > rt->max_batch)
        return slim_error(SLIM_ERR_ARG,
                          "slim_runtime_describe: no runtime or batch %d out of range", n);
    rt_plan *p;
    text t = {0};
    /* Our kernels' build, and what chose it (kernels/isa.c). */
    own_isa cap = OWN_ISA_AVX512;
    (void)own_isa_env(&cap); /* a bad SLIM_ISA failed slim_runtime_create */
    const char *env = getenv("SLIM_ISA");
    text_add(&t, "our kernels: %s (CPU: %s; SLIM_ISA: %s)\n", own_impl_name(rt_own_impl()),
             own_isa_name(own_isa_cpu()), env && *env ? own_isa_name(cap) : "unset");
    if (n > rt->tile) {
        /* The tiles of the largest size (the first ones), as a worker runs
         * them. */
        int tiles = (n + rt->tile - 1) / rt->tile, first, size, small;
        rt_tile_at(n, rt->tile, 0, &first, &size);
        rt_tile_at(n, rt->tile, tiles - 1, &first, &small);
        if (small != size)
            text_add(&t, "tiles: %d x batch %d and %d x batch %d", n % tiles, size,
                     tiles - n % tiles, small);
        else
            text_add(&t, "tiles: %d x batch %d", tiles, size);
        if (rt->n_workers)
            text_add(&t, ", in parallel on %d threads (one-thread primitives)\n", rt->n_workers);
        else
            text_add(&t, "\n");
        n = size;
        SLIM_TRY(rt_plan_get(rt, rt->n_workers ? &rt->workers[0] : &rt->main, n, &p));
    } else {
        SLIM_TRY(rt_plan_get(rt, &rt->main, n, &p));
    }
    text_add(&t, "plan for batch %d: %d steps (%d reorders), arena %zu bytes, scratchpad %zu\n", n,
             p->n_steps, p->reorders, p->arena_bytes, p->scratch_bytes);
    for (int s = 0; s < p->n_steps; s++) {
        const rt_step *st = &p->steps[s];
        const char *impl = "?";
        char own[48];
        const own_impl *built = st->kind == RT_STEP_WINO   ? wino_settings(st->u.wino.conv)->impl
                                : st->kind == RT_STEP_STEM ? stem_settings(st->u.stem.conv)->impl
                                : st->kind == RT_STEP_HEAD ? head_settings(st->u.head.head)->impl
                                                           : NULL;
        if (built) {
            snprintf(own, sizeof own, "slim:%s:%s",
                     st->kind == RT_STEP_WINO   ? "wino_4x3"
                     : st->kind == RT_STEP_STEM ? "stem_3x3"
                                                : "head",
                     own_impl_name(built));
            impl = own;
        } else if (st->kind == RT_STEP_CONCAT) {
            impl = "slim:concat";
        } else if (dnnl_primitive_desc_query(st->u.dnnl.pd, dnnl_query_impl_info_str, 0, &impl) !=
                   dnnl_success)
            impl = "?";
        int reorder = st->kind == RT_STEP_DNNL && st->u.dnnl.is_reorder;
        const rt_arg *src = find_arg(st, reorder ? DNNL_ARG_FROM : DNNL_ARG_SRC);
        if (!src) src = find_arg(st, DNNL_ARG_SRC_0);
        if (!src) src = find_arg(st, DNNL_ARG_MULTIPLE_SRC); /* a concat's first */
        const rt_arg *dst = find_arg(st, reorder ? DNNL_ARG_TO : DNNL_ARG_DST);
        char a[48] = "-", b[48] = "-", path[RT_WHY_LEN + 32] = "";
        if (src) rt_md_str(&src->md, a, sizeof a);
        if (dst) rt_md_str(&dst->md, b, sizeof b);
        /* Our convs' layouts, as their kernels were created. */
        const wino_desc *wd = st->kind == RT_STEP_WINO ? wino_settings(st->u.wino.conv) : NULL;
        const stem_desc *sd = st->kind == RT_STEP_STEM ? stem_settings(st->u.stem.conv) : NULL;
        if (wd && wd->in_padded)
            snprintf(a + strlen(a), sizeof a - strlen(a), "(padded%s)",
                     wd->in_narrow ? ", narrow last block" : "");
        if ((wd && wd->out_padded) || (sd && sd->out_padded))
            snprintf(b + strlen(b), sizeof b - strlen(b), "(padded%s)",
                     sd && sd->out_narrow ? ", narrow last block" : "");
        if (st->path != RT_CONV_NONE)
            snprintf(path, sizeof path, " [%s: %s]", rt_conv_path_name(st->path), st->why);
        int inplace = src && dst && src->where == RT_AT_ARENA && dst->where == RT_AT_ARENA &&
                      src->storage == dst->storage;
        text_add(&t, "%3d  %-48s %s -> %s%s  [%s]%s\n", s, st->what, a, b,
                 inplace ? " (in place)" : "", impl, path);
    }
    if (p->out_storage >= 0) text_add(&t, "     logits copied out (plain)\n");
    if (t.failed || !t.s) {
        free(t.s);
        return slim_error(SLIM_ERR_NOMEM, "slim_runtime_describe: out of memory");
    }
    *out = t.s;
    return SLIM_OK;
}
