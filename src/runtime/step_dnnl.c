/* Steps of oneDNN primitives: conv (direct or Winograd, plain or grouped,
 * with its post-ops), dense (inner product), relu and relu6, unfoldable
 * bn, add, concat, and the pools. */
#include "runtime/build.h"

#include <stdio.h>
#include <string.h>

static int pad_right(int in, int k, int out, int stride, int pad) {
    int r = (out - 1) * stride + k - in - pad;
    return r < 0 ? 0 : r;
}

/* Root i's activation (relu or relu6) in place on loc, as its own step. */
static slim_status act_step(rt_builder *b, int i, const rt_loc *loc) {
    dnnl_eltwise_desc_t desc;
    dnnl_alg_kind_t alg;
    float alpha, beta;
    rt_act_eltwise(b->g->act[i], &alg, &alpha, &beta);
    SLIM_DNNL_CHECK(
        dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, alg, &loc->md, alpha, beta));
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, NULL, &pd);
    if (st == SLIM_OK) st = rt_push_dnnl_step(b, &pd, 0, &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC, loc));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, loc));
    const slim_layer *r = &b->m->layers[b->g->chain_end[i]];
    snprintf(s->what, sizeof s->what, "%s %s", slim_layer_kind_name(r->kind), r->name);
    return SLIM_OK;
}

/* oneDNN 2.6's binary kernel (jit:uni) gets a fused relu wrong on a
 * blocked layout whose channels are padded (C not a multiple of the
 * block): there the activation is a step of its own. */
static int binary_relu_fusable(const dnnl_memory_desc_t *md) { return !rt_md_padded(md); }

/* A biasmap (1, c, oh, ow) in the layout of the conv's output dst, for a
 * separate binary add: dst's layout with the batch dimension cut to 1,
 * valid when the batch is dst's outermost dimension (else plain). */
static slim_status biasmap_md(const dnnl_memory_desc_t *dst, dnnl_memory_desc_t *md) {
    int outer = dst->format_kind == dnnl_blocked;
    for (int d = 1; outer && d < dst->ndims; d++)
        outer = dst->format_desc.blocking.strides[0] >= dst->format_desc.blocking.strides[d];
    if (!outer)
        return rt_md_plain(md, 4, (dnnl_dims_t){1, dst->dims[1], dst->dims[2], dst->dims[3]});
    *md = *dst;
    md->dims[0] = md->padded_dims[0] = 1;
    return SLIM_OK;
}

/* The biasmap as a binary add after the conv, in place on its output, with
 * the activation the conv would have fused. */
static slim_status biasmap_step(rt_builder *b, int i, const rt_loc *dst) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    dnnl_memory_desc_t plain, want;
    const float *data;
    SLIM_TRY(rt_md_plain(&plain, 4, (dnnl_dims_t){1, l->c, l->h, l->w}));
    SLIM_TRY(biasmap_md(&dst->md, &want));
    SLIM_TRY(rt_fixed_in(b, i, &plain, m->params[l->p_biasmap].data, &want, &data));
    dnnl_binary_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_binary_desc_init(&desc, dnnl_binary_add, &dst->md, &want, &dst->md));
    rt_act act = b->g->act[i];
    int fuse = binary_relu_fusable(&dst->md);
    rt_post_spec ps = {NULL, 0, fuse ? act : RT_ACT_NONE};
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, &ps, &pd);
    if (st == SLIM_OK) st = rt_push_dnnl_step(b, &pd, 0, &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC_0, dst));
    SLIM_TRY(rt_step_fixed(s, DNNL_ARG_SRC_1, data));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, dst));
    snprintf(s->what, sizeof s->what, "add %s.biasmap", l->name);
    if (fuse) rt_act_what(b, i, s->what, sizeof s->what);
    return act && !fuse ? act_step(b, i, dst) : SLIM_OK;
}

/* ---- conv ---------------------------------------------------------------- */

/* The weights of conv l as oneDNN takes them: (cout, cin, k, k), or for
 * G > 1 groups (G, cout/G, cin/G, k, k), the same bytes as the model's
 * (cout, cin/G, k, k). Returns the number of dims. */
static int conv_weight_dims(const slim_layer *l, dnnl_dim_t *dims) {
    int g = l->groups > 1 ? l->groups : 1, d = 0;
    if (g > 1) dims[d++] = g;
    dims[d++] = l->c / g;
    dims[d++] = l->in_c / g;
    dims[d++] = l->k;
    dims[d++] = l->k;
    return d;
}

static slim_status conv_weight_md(const slim_layer *l, dnnl_format_tag_t tag,
                                  dnnl_memory_desc_t *md) {
    dnnl_dims_t dims;
    int nd = conv_weight_dims(l, dims);
    if (tag == dnnl_format_tag_any) return rt_md_tag(md, nd, dims, tag);
    return rt_md_tag(md, nd, dims, nd == 5 ? dnnl_abcde : dnnl_abcd);
}

/* conv [+bias] [+biasmap] [+sum] [+relu | relu6]: src, weights and dst in
 * the layouts the primitive prefers. With split_biasmap, the conv does
 * [+bias] [+sum] and a binary step adds the biasmap and does the
 * activation. */
static slim_status conv_wire(rt_builder *b, int i, dnnl_primitive_desc_t *pd, int split_biasmap,
                             rt_conv_path path, const char *why) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    rt_loc src, dst;
    SLIM_TRY(rt_value_in(b, l->inputs[0], rt_pd_md(*pd, DNNL_ARG_SRC), &src));
    SLIM_TRY(rt_conv_dst(b, i, &src, rt_pd_md(*pd, DNNL_ARG_DST), &dst));
    dnnl_memory_desc_t wplain;
    const float *w;
    SLIM_TRY(conv_weight_md(l, dnnl_abcd, &wplain));
    SLIM_TRY(rt_fixed_in(b, i, &wplain, m->params[l->p_weight].data,
                         rt_pd_md(*pd, DNNL_ARG_WEIGHTS), &w));
    rt_step *s;
    SLIM_TRY(rt_push_dnnl_step(b, pd, 0, &s));
    s->path = path;
    snprintf(s->why, sizeof s->why, "%s", why);
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC, &src));
    SLIM_TRY(rt_step_fixed(s, DNNL_ARG_WEIGHTS, w));
    if (l->p_bias >= 0) SLIM_TRY(rt_step_fixed(s, DNNL_ARG_BIAS, m->params[l->p_bias].data));
    if (l->p_biasmap >= 0 && !split_biasmap)
        SLIM_TRY(rt_step_fixed(s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                               m->params[l->p_biasmap].data));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, &dst));
    rt_conv_what(b, i, split_biasmap, s);
    if (split_biasmap) SLIM_TRY(biasmap_step(b, i, &dst));
    rt_set_value(b, i, &dst);
    return SLIM_OK;
}

/* A biasmap is best a binary post-op of the conv, but the fastest convs
 * (brgconv, Winograd on AVX-512) take no (1, c, oh, ow) operand and oneDNN
 * would fall back to a slow GEMM conv in plain layouts. So with a biasmap
 * the conv is built both ways, and the post-op kept only when it does not
 * change the implementation; else *split is set. */
slim_status rt_conv_pd(rt_builder *b, int i, dnnl_alg_kind_t alg, dnnl_format_tag_t dst_tag,
                       dnnl_primitive_desc_t *out, int *split) {
    const slim_layer *l = &b->m->layers[i];
    int n = b->n;
    *out = NULL;
    *split = 0;
    dnnl_memory_desc_t src, wei, bias, dst, bmap;
    SLIM_TRY(rt_md_tag(&src, 4, (dnnl_dims_t){n, l->in_c, l->in_h, l->in_w}, dnnl_format_tag_any));
    SLIM_TRY(conv_weight_md(l, dnnl_format_tag_any, &wei));
    SLIM_TRY(rt_md_plain(&bias, 1, (dnnl_dims_t){l->c}));
    SLIM_TRY(rt_md_tag(&dst, 4, (dnnl_dims_t){n, l->c, l->h, l->w}, dst_tag));
    SLIM_TRY(rt_md_plain(&bmap, 4, (dnnl_dims_t){1, l->c, l->h, l->w}));
    dnnl_dims_t strides = {l->stride, l->stride}, pad_l = {l->pad, l->pad};
    dnnl_dims_t pad_r = {pad_right(l->in_h, l->k, l->h, l->stride, l->pad),
                         pad_right(l->in_w, l->k, l->w, l->stride, l->pad)};
    dnnl_convolution_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, alg, &src,
                                                       &wei, l->p_bias >= 0 ? &bias : NULL, &dst,
                                                       strides, pad_l, pad_r));
    int sum = b->g->sum_with[i] >= 0;
    rt_post_spec fused = {l->p_biasmap >= 0 ? &bmap : NULL, sum, b->g->act[i]};
    dnnl_primitive_desc_t pd = NULL, plain_pd = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, &fused, &pd);
    if (l->p_biasmap >= 0) {
        rt_post_spec without = {NULL, sum, RT_ACT_NONE};
        slim_status st2 = rt_make_pd(b->rt->engine, &desc, &without, &plain_pd);
        if (st2 == SLIM_OK && (st != SLIM_OK || !rt_same_impl(pd, plain_pd))) {
            if (pd) dnnl_primitive_desc_destroy(pd);
            pd = plain_pd;
            plain_pd = NULL;
            *split = 1;
            st = SLIM_OK;
        }
    }
    if (plain_pd) dnnl_primitive_desc_destroy(plain_pd);
    if (st == SLIM_OK) *out = pd;
    return st;
}

/* Path RT_CONV_DNNL_WINO or RT_CONV_DNNL_DIRECT (policy.c). Tries, in
 * order: oneDNN's Winograd (on that path), direct in the plan's activation
 * layout (unless that forces a fallback implementation), direct in the
 * layouts oneDNN prefers. */
slim_status rt_build_dnnl_conv(rt_builder *b, int i, rt_conv_path path, const char *why) {
    dnnl_primitive_desc_t pd = NULL;
    int split = 0;
    rt_conv_path taken = RT_CONV_DNNL_DIRECT;
    char reason[RT_WHY_LEN];
    snprintf(reason, sizeof reason, "%s", why);
    slim_status st = SLIM_ERR_BACKEND;
    if (path == RT_CONV_DNNL_WINO) {
        st = rt_conv_pd(b, i, dnnl_convolution_winograd, dnnl_format_tag_any, &pd, &split);
        if (st == SLIM_OK)
            taken = RT_CONV_DNNL_WINO;
        else
            rt_append(reason, sizeof reason, "%s", "; oneDNN has no Winograd for it");
    }
    if (st != SLIM_OK && b->act_tag != dnnl_format_tag_any) {
        st = rt_conv_pd(b, i, dnnl_convolution_direct, b->act_tag, &pd, &split);
        if (st == SLIM_OK && rt_slow_impl(pd)) {
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            st = SLIM_ERR_BACKEND;
        }
    }
    if (st != SLIM_OK) {
        slim_clear_error();
        st = rt_conv_pd(b, i, dnnl_convolution_direct, dnnl_format_tag_any, &pd, &split);
    }
    if (st == SLIM_OK) st = conv_wire(b, i, &pd, split, taken, reason);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* ---- dense --------------------------------------------------------------- */

/* Dense on oneDNN's inner product, which takes (n, C, H, W) data in the
 * layout it is in when the weights are given as (out, C, H, W): that is
 * exactly the channel-major flatten, so no reorder is needed before it. */
static slim_status dense_pd(rt_builder *b, int i, const rt_loc *src, dnnl_primitive_desc_t *pd) {
    const slim_layer *l = &b->m->layers[i];
    dnnl_memory_desc_t wei, bias, dst;
    dnnl_dims_t wdims = {l->c, 0, 0, 0};
    for (int d = 1; d < src->md.ndims; d++)
        wdims[d] = src->md.dims[d];
    SLIM_TRY(rt_md_tag(&wei, src->md.ndims, wdims, dnnl_format_tag_any));
    SLIM_TRY(rt_md_plain(&bias, 1, (dnnl_dims_t){l->c}));
    SLIM_TRY(rt_md_tag(&dst, 2, (dnnl_dims_t){b->n, l->c}, dnnl_format_tag_any));
    dnnl_inner_product_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_inner_product_forward_desc_init(
        &desc, dnnl_forward_inference, &src->md, &wei, l->p_bias >= 0 ? &bias : NULL, &dst));
    rt_post_spec ps = {NULL, 0, b->g->act[i]};
    return rt_make_pd(b->rt->engine, &desc, &ps, pd);
}

static slim_status dense_wire(rt_builder *b, int i, const rt_loc *src, dnnl_primitive_desc_t *pd) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    dnnl_memory_desc_t wplain;
    dnnl_dims_t wdims = {l->c, 0, 0, 0};
    for (int d = 1; d < src->md.ndims; d++)
        wdims[d] = src->md.dims[d];
    SLIM_TRY(rt_md_plain(&wplain, src->md.ndims, wdims));
    const float *w;
    SLIM_TRY(rt_fixed_in(b, i, &wplain, m->params[l->p_weight].data,
                         rt_pd_md(*pd, DNNL_ARG_WEIGHTS), &w));
    rt_loc dst;
    SLIM_TRY(
        rt_new_storage(b, rt_pd_md(*pd, DNNL_ARG_DST), b->g->last_read[b->g->chain_end[i]], &dst));
    rt_step *s;
    SLIM_TRY(rt_push_dnnl_step(b, pd, 0, &s));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC, src));
    SLIM_TRY(rt_step_fixed(s, DNNL_ARG_WEIGHTS, w));
    if (l->p_bias >= 0) SLIM_TRY(rt_step_fixed(s, DNNL_ARG_BIAS, m->params[l->p_bias].data));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, &dst));
    snprintf(s->what, sizeof s->what, "dense %s", l->name);
    if (l->p_bias >= 0) rt_append(s->what, sizeof s->what, "%s", " +bias");
    rt_act_what(b, i, s->what, sizeof s->what);
    rt_set_value(b, i, &dst);
    return SLIM_OK;
}

slim_status rt_build_dense(rt_builder *b, int i) {
    int in = b->m->layers[i].inputs[0];
    rt_loc src = b->vals[in].loc;
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = dense_pd(b, i, &src, &pd);
    if (st != SLIM_OK) {
        /* Not in this layout: the plain (n, features) matrix always works. */
        slim_clear_error();
        st = rt_value_view(b, in, 2, &src);
        if (st == SLIM_OK) st = dense_pd(b, i, &src, &pd);
    }
    if (st == SLIM_OK) st = dense_wire(b, i, &src, &pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* ---- shape-keeping ops: relu, relu6, bn, add ------------------------------ */

/* The dims a layer-wise op (bn, add) works in: (n, c) for data stored as
 * (n, c), else (n, c, h, w). */
static int natural_nd(const rt_builder *b, int u) {
    const slim_layer *l = &b->m->layers[u];
    return b->vals[u].loc.md.ndims == 2 && l->h == 1 && l->w == 1 ? 2 : 4;
}

/* The output of a shape-keeping op (relu, relu6, bn, add) on src: in place when
 * nothing reads src later, else a new storage in src's layout. */
static slim_status keep_shape_dst(rt_builder *b, int i, const rt_loc *src, const rt_loc *other,
                                  rt_loc *dst) {
    if (rt_can_overwrite(b, src) && (!other || !rt_same_storage(src, other))) {
        *dst = *src;
        return SLIM_OK;
    }
    return rt_new_storage(b, &src->md, b->g->last_read[b->g->chain_end[i]], dst);
}

/* Finishes a step whose pd is made: src (and src1) to dst. */
static slim_status simple_wire(rt_builder *b, int i, dnnl_primitive_desc_t *pd, const rt_loc *src,
                               const rt_loc *src1, const rt_loc *dst, const char *what,
                               rt_step **out) {
    rt_step *s;
    SLIM_TRY(rt_push_dnnl_step(b, pd, 0, &s));
    SLIM_TRY(rt_step_loc(s, src1 ? DNNL_ARG_SRC_0 : DNNL_ARG_SRC, src));
    if (src1) SLIM_TRY(rt_step_loc(s, DNNL_ARG_SRC_1, src1));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, dst));
    snprintf(s->what, sizeof s->what, "%s %s", what, b->m->layers[i].name);
    rt_act_what(b, i, s->what, sizeof s->what);
    rt_set_value(b, i, dst);
    if (out) *out = s;
    return SLIM_OK;
}

/* A relu or relu6 no step took in: eltwise relu, or clip to [0, 6]. */
slim_status rt_build_act(rt_builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    rt_loc src = b->vals[l->inputs[0]].loc, dst;
    dnnl_eltwise_desc_t desc;
    dnnl_alg_kind_t alg;
    float alpha, beta;
    rt_act_eltwise(l->kind == SLIM_LAYER_RELU6 ? RT_ACT_RELU6 : RT_ACT_RELU, &alg, &alpha, &beta);
    SLIM_DNNL_CHECK(
        dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, alg, &src.md, alpha, beta));
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, NULL, &pd);
    if (st == SLIM_OK) st = keep_shape_dst(b, i, &src, NULL, &dst);
    if (st == SLIM_OK)
        st = simple_wire(b, i, &pd, &src, NULL, &dst, slim_layer_kind_name(l->kind), NULL);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* A bn that could not be folded: oneDNN batch norm with the running
 * statistics, gamma and beta, and a fused relu when one follows. */
slim_status rt_build_bn(rt_builder *b, int i) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    rt_loc src, dst;
    SLIM_TRY(rt_value_view(b, l->inputs[0], natural_nd(b, l->inputs[0]), &src));
    unsigned flags = dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift;
    if (b->g->act[i] == RT_ACT_RELU) flags |= dnnl_fuse_norm_relu; /* never relu6 (graph.c) */
    dnnl_batch_normalization_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&desc, dnnl_forward_inference,
                                                               &src.md, l->eps, flags));
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, NULL, &pd);
    if (st == SLIM_OK) st = keep_shape_dst(b, i, &src, NULL, &dst);
    if (st == SLIM_OK) st = simple_wire(b, i, &pd, &src, NULL, &dst, "batchnorm", &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    SLIM_TRY(rt_step_fixed(s, DNNL_ARG_MEAN, l->running_mean));
    SLIM_TRY(rt_step_fixed(s, DNNL_ARG_VARIANCE, l->running_var));
    SLIM_TRY(rt_step_fixed(s, DNNL_ARG_SCALE, m->params[l->p_gamma].data));
    return rt_step_fixed(s, DNNL_ARG_SHIFT, m->params[l->p_beta].data);
}

/* An add that no conv took as a sum post-op: binary add, in place into one
 * operand when possible, with a fused relu when one follows. */
slim_status rt_build_add(rt_builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    rt_loc a, c, dst;
    SLIM_TRY(rt_value_view(b, l->inputs[0], natural_nd(b, l->inputs[0]), &a));
    SLIM_TRY(rt_value_in(b, l->inputs[1], &a.md, &c));
    if (!(rt_can_overwrite(b, &a) && !rt_same_storage(&a, &c)) && rt_can_overwrite(b, &c) &&
        !rt_same_storage(&a, &c)) {
        rt_loc t = a; /* addition commutes: write into the one that may go */
        a = c;
        c = t;
    }
    SLIM_TRY(keep_shape_dst(b, i, &a, &c, &dst));
    dnnl_binary_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_binary_desc_init(&desc, dnnl_binary_add, &a.md, &c.md, &dst.md));
    int fuse = binary_relu_fusable(&dst.md);
    rt_post_spec ps = {NULL, 0, fuse ? b->g->act[i] : RT_ACT_NONE};
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, &ps, &pd);
    if (st == SLIM_OK) st = simple_wire(b, i, &pd, &a, &c, &dst, "add", &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    if (!b->g->act[i] || fuse) return SLIM_OK;
    char *plus = strstr(s->what, " +relu");
    if (plus) *plus = '\0';
    return act_step(b, i, &dst);
}

/* ---- concat -------------------------------------------------------------- */

/* A concat pd writing layout `tag` (format_tag_any: oneDNN's choice). */
static slim_status concat_pd(rt_builder *b, int i, const dnnl_memory_desc_t *srcs,
                             dnnl_format_tag_t tag, dnnl_primitive_desc_t *pd) {
    const slim_layer *l = &b->m->layers[i];
    dnnl_memory_desc_t dst;
    SLIM_TRY(rt_md_tag(&dst, 4, (dnnl_dims_t){b->n, l->c, l->h, l->w}, tag));
    return rt_make_concat_pd(b->rt->engine, &dst, l->n_inputs, srcs, pd);
}

/* A channel concatenation on oneDNN's concat: each input copied into its
 * channel slice of a new buffer. The output takes the plan's activation
 * layout when it has one, else the first input's (the layout the convs
 * around it chose: oneDNN's own choice is plain whenever an input's
 * channels are padded, and would cost a reorder after it), else oneDNN's
 * choice. Inputs are read as they are stored (a repeated input twice). */
slim_status rt_build_concat(rt_builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    dnnl_memory_desc_t srcs[SLIM_LAYER_MAX_INPUTS];
    rt_loc in[SLIM_LAYER_MAX_INPUTS], dst;
    for (int k = 0; k < l->n_inputs; k++) {
        SLIM_TRY(rt_value_view(b, l->inputs[k], 4, &in[k]));
        srcs[k] = in[k].md;
    }
    dnnl_format_tag_t tag = b->act_tag;
    if (tag == dnnl_format_tag_any) tag = rt_md_act_tag(&srcs[0]);
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = concat_pd(b, i, srcs, tag, &pd);
    if (st != SLIM_OK && tag != dnnl_format_tag_any) {
        slim_clear_error();
        st = concat_pd(b, i, srcs, dnnl_format_tag_any, &pd);
    }
    if (st == SLIM_OK)
        st = rt_new_storage(b, rt_pd_md(pd, DNNL_ARG_DST), b->g->last_read[b->g->chain_end[i]],
                            &dst);
    if (st == SLIM_OK) st = rt_push_dnnl_step(b, &pd, 0, &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    for (int k = 0; k < l->n_inputs; k++)
        SLIM_TRY(rt_step_loc(s, DNNL_ARG_MULTIPLE_SRC + k, &in[k]));
    SLIM_TRY(rt_step_loc(s, DNNL_ARG_DST, &dst));
    rt_concat_what(b, i, s);
    rt_set_value(b, i, &dst);
    return SLIM_OK;
}

/* ---- pools --------------------------------------------------------------- */

/* maxpool, avgpool (padding excluded from the divisor) and global average
 * pooling (a window of the whole plane), in the input's layout. */
slim_status rt_build_pool(rt_builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    int in = l->inputs[0];
    if (l->kind == SLIM_LAYER_GAP && l->in_h == 1 && l->in_w == 1) {
        rt_set_value(b, i, &b->vals[in].loc); /* averaging one value per plane */
        return SLIM_OK;
    }
    rt_loc src, dst;
    SLIM_TRY(rt_value_view(b, in, 4, &src));
    dnnl_memory_desc_t dst_md;
    SLIM_TRY(rt_md_tag(&dst_md, 4, (dnnl_dims_t){b->n, l->c, l->h, l->w}, dnnl_format_tag_any));
    dnnl_dims_t kernel, strides, pad_l, pad_r;
    if (l->kind == SLIM_LAYER_GAP) {
        kernel[0] = l->in_h, kernel[1] = l->in_w;
        strides[0] = strides[1] = 1;
        pad_l[0] = pad_l[1] = pad_r[0] = pad_r[1] = 0;
    } else {
        kernel[0] = kernel[1] = l->k;
        strides[0] = strides[1] = l->stride;
        pad_l[0] = pad_l[1] = l->pad;
        pad_r[0] = pad_right(l->in_h, l->k, l->h, l->stride, l->pad);
        pad_r[1] = pad_right(l->in_w, l->k, l->w, l->stride, l->pad);
    }
    dnnl_alg_kind_t alg =
        l->kind == SLIM_LAYER_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, alg, &src.md,
                                                   &dst_md, strides, kernel, pad_l, pad_r));
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = rt_make_pd(b->rt->engine, &desc, NULL, &pd);
    if (st == SLIM_OK) st = rt_new_storage(b, rt_pd_md(pd, DNNL_ARG_DST), b->g->last_read[i], &dst);
    if (st == SLIM_OK)
        st = simple_wire(b, i, &pd, &src, NULL, &dst, slim_layer_kind_name(l->kind), NULL);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}
