/* The planner: a folded model into the steps of one batch size.
 *
 * Once per runtime the graph is analysed (graph.c). Then, per batch size,
 * the policy picks the plan's activation layout and each conv's path
 * (policy.c), every root layer becomes one step (step_dnnl.c, step_own.c),
 * preceded by the reorders its inputs need (build.c), every activation gets
 * a storage, and the storages are placed in one arena by their lifetimes
 * (placement.c). */
#include "runtime/build.h"
#include "runtime/placement.h"

#include <stdint.h>
#include <stdlib.h>

void rt_plan_free(rt_plan *plan) {
    if (!plan) return;
    for (int s = 0; s < plan->n_steps; s++) {
        rt_step *st = &plan->steps[s];
        for (int a = 0; a < st->nargs; a++)
            if (st->args[a].mem) dnnl_memory_destroy(st->args[a].mem);
        free(st->args);
        free(st->exec);
        if (st->kind != RT_STEP_DNNL) continue;
        if (st->u.dnnl.prim) dnnl_primitive_destroy(st->u.dnnl.prim);
        if (st->u.dnnl.pd) dnnl_primitive_desc_destroy(st->u.dnnl.pd);
    }
    free(plan->steps);
    free(plan->storages);
    free(plan);
}

static slim_status build_conv(rt_builder *b, int i) {
    char why[RT_WHY_LEN];
    rt_conv_path path = rt_conv_policy(b, i, why);
    if (path == RT_CONV_WINO || path == RT_CONV_STEM) return rt_build_own_conv(b, i, path, why);
    return rt_build_dnnl_conv(b, i, path, why);
}

static slim_status build_layer(rt_builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    switch (l->kind) {
    case SLIM_LAYER_CONV: return build_conv(b, i);
    case SLIM_LAYER_DENSE: return rt_build_dense(b, i);
    case SLIM_LAYER_BN: return rt_build_bn(b, i);
    case SLIM_LAYER_RELU:
    case SLIM_LAYER_RELU6: return rt_build_act(b, i);
    case SLIM_LAYER_ADD: return rt_build_add(b, i);
    case SLIM_LAYER_CONCAT:
        return b->act_tag == dnnl_aBcd16b ? rt_build_own_concat(b, i) : rt_build_concat(b, i);
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL:
    case SLIM_LAYER_GAP: return b->g->head[i] ? rt_build_head(b, i) : rt_build_pool(b, i);
    case SLIM_LAYER_FLATTEN:
        /* Only the dims change: consumers view the data as they need it. */
        rt_set_value(b, i, &b->vals[l->inputs[0]].loc);
        return SLIM_OK;
    default: break;
    }
    return slim_error(SLIM_ERR_ARG, "runtime: layer '%s' has an unexpected kind", l->name);
}

/* The logits in plain (n, classes): copied from the arena after the run
 * when they are plain there already, else a reorder into the caller's
 * buffer. */
static slim_status build_output(rt_builder *b) {
    int last = b->m->n_layers - 1;
    const rt_loc *v = &b->vals[last].loc;
    rt_loc out = {.where = RT_AT_OUTPUT, .storage = -1};
    SLIM_TRY(rt_md_plain(&out.md, v->md.ndims, v->md.dims));
    if (v->where == RT_AT_ARENA && rt_md_equal(&v->md, &out.md)) {
        b->plan->out_storage = v->storage;
        b->plan->out_bytes = dnnl_memory_desc_get_size(&out.md);
        return SLIM_OK;
    }
    b->plan->out_storage = -1;
    return rt_push_reorder(b, v, &out, "reorder logits");
}

static slim_status plan_layers(rt_builder *b) {
    const slim_model *m = b->m;
    rt_plan_policy(b);
    const slim_layer *in = &m->layers[0];
    rt_value *v0 = &b->vals[0];
    v0->loc.where = RT_AT_INPUT;
    v0->loc.storage = -1;
    SLIM_TRY(rt_md_plain(&v0->loc.md, 4, (dnnl_dims_t){b->n, in->c, in->h, in->w}));
    for (int i = 1; i < m->n_layers; i++) {
        if (!b->g->needed[i] || b->g->root[i] != i) continue;
        b->now = i;
        slim_status st = build_layer(b, i);
        if (st != SLIM_OK)
            return slim_error_prefix(st, "runtime: %s '%s'",
                                     slim_layer_kind_name(m->layers[i].kind), m->layers[i].name);
    }
    b->now = m->n_layers;
    return build_output(b);
}

/* Offsets of the storages in one arena (placement.c). */
static slim_status place_storages(rt_plan *p) {
    int ns = p->n_storages;
    rt_extent *ext = slim_calloc((size_t)(ns ? ns : 1), sizeof *ext);
    size_t *offsets = slim_calloc((size_t)(ns ? ns : 1), sizeof *offsets);
    slim_status st = ext && offsets ? SLIM_OK : SLIM_ERR_NOMEM;
    for (int s = 0; st == SLIM_OK && s < ns; s++)
        ext[s] = (rt_extent){.bytes = p->storages[s].bytes,
                             .first = p->storages[s].first,
                             .last = p->storages[s].last,
                             .exclusive = p->storages[s].exclusive};
    if (st == SLIM_OK) st = rt_place(ext, ns, offsets, &p->arena_bytes);
    for (int s = 0; st == SLIM_OK && s < ns; s++)
        p->storages[s].offset = offsets[s];
    free(ext);
    free(offsets);
    return st;
}

/* Memory objects for every argument (handles are set when bound). */
static slim_status make_memories(slim_runtime *rt, rt_plan *p) {
    for (int s = 0; s < p->n_steps; s++) {
        rt_step *st = &p->steps[s];
        for (int a = 0; a < st->nargs; a++) {
            rt_arg *arg = &st->args[a];
            SLIM_DNNL_CHECK(dnnl_memory_create(&arg->mem, &arg->md, rt->engine, DNNL_MEMORY_NONE));
            if (arg->where == RT_AT_FIXED)
                SLIM_DNNL_CHECK(dnnl_memory_set_data_handle_v2(
                    arg->mem, (void *)(uintptr_t)arg->ptr, rt->main.stream));
            st->exec[a] = (dnnl_exec_arg_t){arg->arg, arg->mem};
        }
    }
    return SLIM_OK;
}

slim_status rt_plan_build(slim_runtime *rt, int n, rt_plan **out) {
    *out = NULL;
    rt_plan *p = slim_calloc(1, sizeof *p);
    rt_builder b = {.rt = rt, .m = rt->model, .g = &rt->graph, .plan = p, .n = n};
    if (!p) return SLIM_ERR_NOMEM;
    p->n = n;
    p->out_storage = -1;
    b.vals = slim_calloc((size_t)rt->model->n_layers, sizeof *b.vals);
    slim_status st = b.vals ? SLIM_OK : SLIM_ERR_NOMEM;
    if (st == SLIM_OK) st = plan_layers(&b);
    if (st == SLIM_OK) st = place_storages(p);
    if (st == SLIM_OK) st = make_memories(rt, p);
    free(b.vals);
    if (st != SLIM_OK) {
        rt_plan_free(p);
        return st;
    }
    *out = p;
    return SLIM_OK;
}
