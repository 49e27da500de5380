/* A plan under construction: its storages and steps, layer outputs in the
 * layouts their consumers want, and the constant tensors (weights) in the
 * layouts the primitives chose.
 *
 * Zero padding. A blocked layout of C channels pads C up to the block (16
 * on AVX-512) and oneDNN relies on the padding being zero; memory objects
 * zero it when their handle is set. A padded storage therefore never shares
 * arena memory with another storage of its plan ("exclusive"), and the
 * runtime sets the handles again whenever another plan has used the arena
 * in between (runtime.c). */
#include "runtime/build.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- storages and values ----------------------------------------------- */

slim_status rt_new_storage(rt_builder *b, const dnnl_memory_desc_t *md, int last, rt_loc *out) {
    rt_plan *p = b->plan;
    if (p->n_storages == p->cap_storages) {
        int cap = p->cap_storages ? 2 * p->cap_storages : 32;
        rt_storage *s = realloc(p->storages, (size_t)cap * sizeof *s);
        if (!s) return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory building a plan");
        p->storages = s;
        p->cap_storages = cap;
    }
    rt_storage *s = &p->storages[p->n_storages];
    memset(s, 0, sizeof *s);
    s->bytes = dnnl_memory_desc_get_size(md);
    s->first = b->now;
    s->last = last > b->now ? last : b->now;
    s->exclusive = rt_md_padded(md);
    out->where = RT_AT_ARENA;
    out->storage = p->n_storages++;
    out->md = *md;
    return SLIM_OK;
}

/* Nothing reads loc after now. */
int rt_can_overwrite(const rt_builder *b, const rt_loc *loc) {
    return loc->where == RT_AT_ARENA && b->plan->storages[loc->storage].last <= b->now;
}

int rt_same_storage(const rt_loc *a, const rt_loc *b) {
    return a->where == RT_AT_ARENA && b->where == RT_AT_ARENA && a->storage == b->storage;
}

void rt_set_value(rt_builder *b, int root, const rt_loc *loc) {
    int end = b->g->chain_end[root];
    for (int i = root; i <= end; i++)
        if (i == root || b->g->root[i] == root) {
            b->vals[i].loc = *loc;
            b->vals[i].n_copies = 0;
        }
    if (loc->where == RT_AT_ARENA) {
        rt_storage *s = &b->plan->storages[loc->storage];
        if (b->g->last_read[end] > s->last) s->last = b->g->last_read[end];
    }
}

/* ---- steps ------------------------------------------------------------- */

slim_status rt_new_step(rt_plan *p, rt_step **out) {
    if (p->n_steps == p->cap_steps) {
        int cap = p->cap_steps ? 2 * p->cap_steps : 32;
        rt_step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        if (!s) return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory building a plan");
        p->steps = s;
        p->cap_steps = cap;
    }
    *out = &p->steps[p->n_steps++];
    memset(*out, 0, sizeof **out);
    return SLIM_OK;
}

/* Appends an argument, growing the step's arrays (a concat takes up to
 * SLIM_LAYER_MAX_INPUTS sources; most steps 3 to 6 arguments). */
static slim_status add_arg(rt_step *s, const rt_arg *a) {
    if (s->nargs == s->cap_args) {
        int cap = s->cap_args ? 2 * s->cap_args : 8;
        rt_arg *args = realloc(s->args, (size_t)cap * sizeof *args);
        if (args) s->args = args;
        dnnl_exec_arg_t *exec = args ? realloc(s->exec, (size_t)cap * sizeof *exec) : NULL;
        if (!exec) return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory building a plan");
        s->exec = exec;
        s->cap_args = cap;
    }
    s->args[s->nargs++] = *a;
    return SLIM_OK;
}

slim_status rt_step_scratch(rt_plan *p, rt_step *s, const dnnl_memory_desc_t *md) {
    SLIM_TRY(add_arg(
        s,
        &(rt_arg){.arg = DNNL_ARG_SCRATCHPAD, .where = RT_AT_SCRATCH, .storage = -1, .md = *md}));
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (bytes > p->scratch_bytes) p->scratch_bytes = bytes;
    return SLIM_OK;
}

slim_status rt_push_dnnl_step(rt_builder *b, dnnl_primitive_desc_t *pd, int is_reorder,
                              rt_step **out) {
    rt_plan *p = b->plan;
    rt_step *s = NULL;
    SLIM_TRY(rt_new_step(p, &s));
    s->kind = RT_STEP_DNNL;
    s->u.dnnl.pd = *pd;
    *pd = NULL;
    s->u.dnnl.is_reorder = is_reorder;
    p->reorders += is_reorder;
    *out = s;
    SLIM_DNNL_CHECK(dnnl_primitive_create(&s->u.dnnl.prim, s->u.dnnl.pd));
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(s->u.dnnl.pd, dnnl_query_scratchpad_md, 0);
    if (smd && dnnl_memory_desc_get_size(smd) > 0) SLIM_TRY(rt_step_scratch(p, s, smd));
    return SLIM_OK;
}

slim_status rt_step_loc(rt_step *s, int arg, const rt_loc *loc) {
    return add_arg(
        s, &(rt_arg){.arg = arg, .where = loc->where, .storage = loc->storage, .md = loc->md});
}

slim_status rt_step_fixed(rt_step *s, int arg, const void *ptr) {
    const dnnl_memory_desc_t *md = rt_pd_md(s->u.dnnl.pd, arg);
    if (!md || dnnl_memory_desc_get_size(md) == 0)
        return slim_error(SLIM_ERR_BACKEND, "runtime: primitive takes no argument %d", arg);
    return add_arg(
        s, &(rt_arg){.arg = arg, .where = RT_AT_FIXED, .storage = -1, .ptr = ptr, .md = *md});
}

/* A reorder step from src to dst (same dims, any layouts). */
slim_status rt_push_reorder(rt_builder *b, const rt_loc *src, const rt_loc *dst, const char *what) {
    dnnl_primitive_desc_t pd = NULL;
    rt_step *step;
    slim_status st = rt_make_reorder_pd(b->rt->engine, &src->md, &dst->md, &pd);
    if (st == SLIM_OK) st = rt_push_dnnl_step(b, &pd, 1, &step);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != SLIM_OK) return st;
    SLIM_TRY(rt_step_loc(step, DNNL_ARG_FROM, src));
    SLIM_TRY(rt_step_loc(step, DNNL_ARG_TO, dst));
    snprintf(step->what, sizeof step->what, "%s", what);
    return SLIM_OK;
}

void rt_append(char *buf, size_t len, const char *fmt, const char *arg) {
    size_t used = strlen(buf);
    if (used < len) snprintf(buf + used, len - used, fmt, arg);
}

/* ---- getting inputs in the wanted layout ------------------------------- */

/* `want` may have other dims than the stored value when they describe the
 * same plain bytes (a flatten, or (n, c) vs (n, c, 1, 1)): the value then
 * goes through its plain layout and is viewed in the wanted dims. */
slim_status rt_value_in(rt_builder *b, int u, const dnnl_memory_desc_t *want, rt_loc *out) {
    rt_value *v = &b->vals[u];
    if (rt_md_equal(&v->loc.md, want)) {
        *out = v->loc;
        return SLIM_OK;
    }
    for (int c = 0; c < v->n_copies; c++)
        if (rt_md_equal(&v->copies[c].md, want)) {
            *out = v->copies[c];
            return SLIM_OK;
        }
    char what[RT_WHAT_LEN];
    snprintf(what, sizeof what, "reorder %s", b->m->layers[u].name);
    int same_dims = v->loc.md.ndims == want->ndims;
    for (int d = 0; same_dims && d < want->ndims; d++)
        same_dims = v->loc.md.dims[d] == want->dims[d];
    if (same_dims) {
        SLIM_TRY(rt_new_storage(b, want, b->g->last_read[u], out));
        SLIM_TRY(rt_push_reorder(b, &v->loc, out, what));
        if (v->n_copies < RT_MAX_CONVERSIONS) v->copies[v->n_copies++] = *out;
        return SLIM_OK;
    }
    dnnl_memory_desc_t plain, view;
    rt_loc p;
    SLIM_TRY(rt_md_plain(&plain, v->loc.md.ndims, v->loc.md.dims));
    SLIM_TRY(rt_value_in(b, u, &plain, &p));
    SLIM_DNNL_CHECK(dnnl_memory_desc_reshape(&view, &p.md, want->ndims, want->dims));
    p.md = view;
    if (rt_md_equal(&view, want)) {
        *out = p;
        return SLIM_OK;
    }
    SLIM_TRY(rt_new_storage(b, want, b->g->last_read[u], out));
    return rt_push_reorder(b, &p, out, what);
}

slim_status rt_value_view(rt_builder *b, int u, int nd, rt_loc *out) {
    const slim_layer *l = &b->m->layers[u];
    dnnl_dims_t dims = {b->n, l->c, l->h, l->w};
    if (nd == 2) dims[1] = (dnnl_dim_t)l->c * l->h * l->w;
    const dnnl_memory_desc_t *md = &b->vals[u].loc.md;
    int same = md->ndims == nd;
    for (int d = 0; same && d < nd; d++)
        same = md->dims[d] == dims[d];
    if (same) {
        *out = b->vals[u].loc;
        return SLIM_OK;
    }
    dnnl_memory_desc_t want;
    SLIM_TRY(rt_md_plain(&want, nd, dims));
    return rt_value_in(b, u, &want, out);
}

/* ---- weights ----------------------------------------------------------- */

/* Runs one reorder right away (weights at build time). */
static slim_status reorder_now_(slim_runtime *rt, const dnnl_memory_desc_t *from_md,
                                const void *from, const dnnl_memory_desc_t *to_md, void *to,
                                dnnl_memory_t *a, dnnl_memory_t *c, dnnl_primitive_desc_t *pd,
                                dnnl_primitive_t *prim) {
    SLIM_DNNL_CHECK(dnnl_memory_create(a, from_md, rt->engine, (void *)(uintptr_t)from));
    SLIM_DNNL_CHECK(dnnl_memory_create(c, to_md, rt->engine, to));
    SLIM_DNNL_CHECK(
        dnnl_reorder_primitive_desc_create(pd, from_md, rt->engine, to_md, rt->engine, NULL));
    SLIM_DNNL_CHECK(dnnl_primitive_create(prim, *pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, *a}, {DNNL_ARG_TO, *c}};
    SLIM_DNNL_CHECK(dnnl_primitive_execute(*prim, rt->main.stream, 2, args));
    SLIM_DNNL_CHECK(dnnl_stream_wait(rt->main.stream));
    return SLIM_OK;
}

static slim_status reorder_now(slim_runtime *rt, const dnnl_memory_desc_t *from_md,
                               const void *from, const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_memory_t a = NULL, c = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    slim_status st = reorder_now_(rt, from_md, from, to_md, to, &a, &c, &pd, &prim);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (c) dnnl_memory_destroy(c);
    if (a) dnnl_memory_destroy(a);
    return st;
}

slim_status rt_fixed_in(rt_builder *b, int i, const dnnl_memory_desc_t *plain, const float *src,
                        const dnnl_memory_desc_t *want, const float **out) {
    slim_runtime *rt = b->rt;
    for (rt_weights *w = rt->weights[i]; w; w = w->next)
        if (rt_md_equal(&w->md, want)) {
            *out = w->data;
            return SLIM_OK;
        }
    size_t bytes = (dnnl_memory_desc_get_size(want) + 63) / 64 * 64;
    rt_weights *w = slim_calloc(1, sizeof *w);
    if (!w) return SLIM_ERR_NOMEM;
    w->md = *want;
    w->data = aligned_alloc(64, bytes ? bytes : 64);
    if (!w->data) {
        free(w);
        return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory for %zu bytes of weights", bytes);
    }
    memset(w->data, 0, bytes);
    w->next = rt->weights[i];
    rt->weights[i] = w;
    rt->weight_bytes += bytes;
    *out = w->data;
    return reorder_now(rt, plain, src, want, w->data);
}

/* ---- what every conv step shares --------------------------------------- */

/* With a fused sum, the destination is k's output, in place when nothing
 * reads it later, else a copy of it. */
slim_status rt_conv_dst(rt_builder *b, int i, const rt_loc *src, const dnnl_memory_desc_t *dst_md,
                        rt_loc *dst) {
    int k = b->g->sum_with[i], end = b->g->chain_end[i];
    if (k < 0) return rt_new_storage(b, dst_md, b->g->last_read[end], dst);
    rt_loc *vk = &b->vals[k].loc;
    if (rt_md_equal(&vk->md, dst_md) && rt_can_overwrite(b, vk) && !rt_same_storage(vk, src)) {
        *dst = *vk;
        return SLIM_OK;
    }
    rt_loc from;
    char what[RT_WHAT_LEN];
    snprintf(what, sizeof what, "reorder %s (copy for the sum)", b->m->layers[k].name);
    SLIM_TRY(rt_new_storage(b, dst_md, b->g->last_read[end], dst));
    SLIM_TRY(rt_value_view(b, k, 4, &from));
    return rt_push_reorder(b, &from, dst, what);
}

void rt_conv_what(const rt_builder *b, int i, int split_biasmap, rt_step *s) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    int k = b->g->sum_with[i];
    snprintf(s->what, sizeof s->what, "conv %s", l->name);
    if (l->p_bias >= 0) rt_append(s->what, sizeof s->what, "%s", " +bias");
    if (b->rt->ones_channel[i]) rt_append(s->what, sizeof s->what, "%s", " +ones");
    if (b->rt->biasmap_channel[i]) rt_append(s->what, sizeof s->what, "%s", " +biasmap(ones)");
    if (l->p_biasmap >= 0 && !split_biasmap) rt_append(s->what, sizeof s->what, "%s", " +biasmap");
    if (k >= 0) rt_append(s->what, sizeof s->what, " +sum(%s)", m->layers[k].name);
    if (!split_biasmap) rt_act_what(b, i, s->what, sizeof s->what);
    if (b->g->pool[i])
        rt_append(s->what, sizeof s->what, " +maxpool(%s)", m->layers[b->g->chain_end[i]].name);
}

void rt_act_what(const rt_builder *b, int i, char *buf, size_t len) {
    const slim_model *m = b->m;
    for (int r = i + 1; b->g->act[i] && r <= b->g->chain_end[i]; r++)
        if (b->g->root[r] == i &&
            (m->layers[r].kind == SLIM_LAYER_RELU || m->layers[r].kind == SLIM_LAYER_RELU6)) {
            rt_append(buf, len, " +%s", slim_layer_kind_name(m->layers[r].kind));
            rt_append(buf, len, "(%s)", m->layers[r].name);
        }
}

void rt_concat_what(const rt_builder *b, int i, rt_step *s) {
    const slim_layer *l = &b->m->layers[i];
    snprintf(s->what, sizeof s->what, "concat %s", l->name);
    for (int k = 0; k < l->n_inputs; k++) {
        rt_append(s->what, sizeof s->what, "%s", k ? "," : " (");
        rt_append(s->what, sizeof s->what, "%s", b->m->layers[l->inputs[k]].name);
    }
    rt_append(s->what, sizeof s->what, "%s", ")");
}
