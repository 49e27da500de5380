/* Steps of our own kernels: a conv on our Winograd (kernels/wino.c) or on
 * our stem conv (kernels/stem.c), global average pool + dense on our
 * head (kernels/head.c), and a channel concatenation in our blocks
 * (kernels/blocked.c). Their weights are prepared once per runtime, for
 * every plan; the step carries its layouts and the kernel it runs. */
#include "runtime/build.h"

#include <omp.h>

#include <stdio.h>

/* Appends a step of one of our kernels, with `bytes` of scratchpad. */
static slim_status push_own_step(rt_builder *b, rt_step_kind kind, size_t bytes, rt_step **out) {
    rt_plan *p = b->plan;
    rt_step *s = NULL;
    SLIM_TRY(rt_new_step(p, &s));
    s->kind = kind;
    dnnl_memory_desc_t md;
    SLIM_DNNL_CHECK(
        dnnl_memory_desc_init_by_tag(&md, 1, (dnnl_dims_t){(dnnl_dim_t)bytes}, dnnl_u8, dnnl_a));
    SLIM_TRY(rt_step_scratch(p, s, &md));
    *out = s;
    return SLIM_OK;
}

/* conv [+bias] [+biasmap] [+sum] [+relu] [+maxpool] on path RT_CONV_WINO
 * or RT_CONV_STEM (policy.c). The stem reads plain (n, c, h, w) input;
 * both write 16-channel blocks. */
slim_status rt_build_own_conv(rt_builder *b, int i, rt_conv_path path, const char *why) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    const float *w = m->params[l->p_weight].data;
    const float *bias = l->p_bias >= 0 ? m->params[l->p_bias].data : NULL;
    const float *map = l->p_biasmap >= 0 ? m->params[l->p_biasmap].data : NULL;
    const int stem = path == RT_CONV_STEM, sum = b->g->sum_with[i] >= 0,
              threads = omp_get_max_threads(); /* the plan's context's (runtime.c) */
    const size_t coutp = (size_t)round16(l->c);
    /* Padded planes in and out, and the pool, as the graph says (the same
     * in every plan, like sum). */
    const int in_root = b->g->root[l->inputs[0]];
    const int in_padded = !stem && b->g->padded[in_root], out_padded = b->g->padded[i];
    const int in_narrow = in_padded && b->g->narrow[in_root], out_narrow = b->g->narrow[i];
    const slim_layer *end = &m->layers[b->g->chain_end[i]]; /* the pool's dims, if any */
    stem_conv **sc = &b->rt->stem[i];
    wino_conv **wc = &b->rt->wino[i];
    size_t weights = 0, scratch;
    if (stem && !*sc) {
        const stem_desc d = {.cin = l->in_c,
                             .cout = l->c,
                             .h = l->h,
                             .w = l->w,
                             .weights = w,
                             .bias = bias,
                             .biasmap = map,
                             .relu = b->g->act[i] == RT_ACT_RELU,
                             .sum = sum,
                             .out_padded = out_padded,
                             .out_narrow = out_narrow,
                             .impl = rt_own_impl()};
        SLIM_TRY(stem_create(&d, sc));
        weights = 9 * (size_t)l->in_c * coutp;
    } else if (!stem && !*wc) {
        const wino_desc d = {.cin = l->in_c,
                             .cout = l->c,
                             .h = l->h,
                             .w = l->w,
                             .weights = w,
                             .bias = bias,
                             .biasmap = map,
                             .relu = b->g->act[i] == RT_ACT_RELU,
                             .sum = sum,
                             .pool = b->g->pool[i],
                             .in_padded = in_padded,
                             .in_narrow = in_narrow,
                             .out_padded = out_padded,
                             .impl = rt_own_impl()};
        SLIM_TRY(wino_create(&d, wc));
        weights = 36 * (size_t)l->in_c * coutp;
    }
    if (weights) /* + the bias and the blocked biasmap */
        b->rt->weight_bytes += (weights + coutp + (map ? coutp * l->h * l->w : 0)) * sizeof(float);
    scratch = stem ? stem_scratch_bytes(*sc, threads) : wino_scratch_bytes(*wc, threads);
    dnnl_memory_desc_t src_md, dst_md;
    SLIM_TRY(rt_md_tag(&src_md, 4,
                       (dnnl_dims_t){b->n, l->in_c, in_padded ? padded_size(l->in_h) : l->in_h,
                                     in_padded ? padded_size(l->in_w) : l->in_w},
                       stem ? dnnl_nchw : dnnl_aBcd16b));
    SLIM_TRY(rt_md_tag(&dst_md, 4,
                       (dnnl_dims_t){b->n, l->c, out_padded ? padded_size(end->h) : end->h,
                                     out_padded ? padded_size(end->w) : end->w},
                       dnnl_aBcd16b));
    rt_loc src, dst;
    SLIM_TRY(rt_value_in(b, l->inputs[0], &src_md, &src));
    SLIM_TRY(rt_conv_dst(b, i, &src, &dst_md, &dst));
    if (out_padded) /* its border must stay zero: shared with nothing */
        b->plan->storages[dst.storage].exclusive = b->plan->storages[dst.storage].zeroed = 1;
    rt_step *s = NULL;
    SLIM_TRY(push_own_step(b, stem ? RT_STEP_STEM : RT_STEP_WINO, scratch, &s));
    if (stem) {
        s->u.stem.conv = *sc;
        s->u.stem.threads = threads;
    } else {
        s->u.wino.conv = *wc;
        s->u.wino.threads = threads;
    }
    s->path = path;
    snprintf(s->why, sizeof s->why, "%s", why);
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC, &src));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, &dst));
    rt_conv_what(b, i, 0, s);
    rt_set_value(b, i, &dst);
    return SLIM_OK;
}

/* Global average pool i, its dense and a relu after it (the graph's
 * head[i]) on our head kernel: 16-channel blocks in, plain (n, k) out. */
slim_status rt_build_head(rt_builder *b, int i) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    const slim_layer *dense = &m->layers[b->g->head[i]];
    head_kernel **hd = &b->rt->head[i];
    if (!*hd) {
        const head_desc d = {.c = l->in_c,
                             .k = dense->c,
                             .h = l->in_h,
                             .w = l->in_w,
                             .weights = m->params[dense->p_weight].data,
                             .bias = dense->p_bias >= 0 ? m->params[dense->p_bias].data : NULL,
                             .relu = b->g->act[i] == RT_ACT_RELU,
                             .impl = rt_own_impl()};
        SLIM_TRY(head_create(&d, hd));
        b->rt->weight_bytes += ((size_t)l->in_c + 1) * (size_t)round16(dense->c) * sizeof(float);
    }
    dnnl_memory_desc_t src_md, dst_md;
    SLIM_TRY(rt_md_tag(&src_md, 4, (dnnl_dims_t){b->n, l->in_c, l->in_h, l->in_w}, dnnl_aBcd16b));
    SLIM_TRY(rt_md_plain(&dst_md, 2, (dnnl_dims_t){b->n, dense->c}));
    rt_loc src, dst;
    SLIM_TRY(rt_value_in(b, l->inputs[0], &src_md, &src));
    SLIM_TRY(rt_new_storage(b, &dst_md, b->g->last_read[b->g->chain_end[i]], &dst));
    rt_step *s = NULL;
    SLIM_TRY(push_own_step(b, RT_STEP_HEAD, 0, &s));
    s->u.head.head = *hd;
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC, &src));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, &dst));
    snprintf(s->what, sizeof s->what, "gap+dense %s %s", l->name, dense->name);
    if (dense->p_bias >= 0) rt_append(s->what, sizeof s->what, "%s", " +bias");
    if (b->g->act[i])
        rt_append(s->what, sizeof s->what, " +relu(%s)", m->layers[b->g->chain_end[i]].name);
    rt_set_value(b, i, &dst);
    return SLIM_OK;
}

/* Concat i in 16-channel blocks: every input read in that layout
 * (unpadded; a reorder before it where an input is in another), its
 * channels copied to their offset, lanes shifted as needed (oneDNN 2.6
 * runs such a concat on its reference kernel). */
slim_status rt_build_own_concat(rt_builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    rt_loc in[SLIM_LAYER_MAX_INPUTS], dst;
    for (int k = 0; k < l->n_inputs; k++) {
        const slim_layer *u = &b->m->layers[l->inputs[k]];
        dnnl_memory_desc_t md;
        SLIM_TRY(rt_md_tag(&md, 4, (dnnl_dims_t){b->n, u->c, l->h, l->w}, dnnl_aBcd16b));
        SLIM_TRY(rt_value_in(b, l->inputs[k], &md, &in[k]));
    }
    dnnl_memory_desc_t dst_md;
    SLIM_TRY(rt_md_tag(&dst_md, 4, (dnnl_dims_t){b->n, l->c, l->h, l->w}, dnnl_aBcd16b));
    SLIM_TRY(rt_new_storage(b, &dst_md, b->g->last_read[b->g->chain_end[i]], &dst));
    rt_step *s = NULL;
    SLIM_TRY(push_own_step(b, RT_STEP_CONCAT, 0, &s));
    s->u.concat.k = l->n_inputs;
    s->u.concat.hw = (size_t)l->h * (size_t)l->w;
    for (int k = 0; k < l->n_inputs; k++) {
        s->u.concat.cin[k] = b->m->layers[l->inputs[k]].c;
        SLIM_TRY(rt_step_loc(s, DNNL_ARG_MULTIPLE_SRC + k, &in[k]));
    }
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, &dst));
    rt_concat_what(b, i, s);
    rt_set_value(b, i, &dst);
    return SLIM_OK;
}
