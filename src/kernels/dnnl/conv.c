/* 2-D convolution on oneDNN: forward, backward data, backward weights.
 *
 * The caller's buffers are plain NCHW / OIHW and the primitives are built
 * for exactly those layouts, so no reorders are needed (oneDNN then picks
 * its GEMM-based or plain-layout JIT implementations). Keeping activations
 * in blocked layouts is a later step: it would add reorder slots to the
 * cache and format_tag_any descriptors here. */
#include "kernels/dnnl/dnnl_common.h"

enum { CONV_WITH_BIAS = 1u };

/* Checks the caller's geometry: positive sizes and oh/ow as
 * slim_conv_shape_finish computes them. */
static slim_status conv_check(const slim_conv_shape *s) {
    if (!s) return slim_error(SLIM_ERR_ARG, "conv: shape is NULL");
    slim_conv_shape t = *s;
    SLIM_TRY(slim_conv_shape_finish(&t));
    if (t.oh != s->oh || t.ow != s->ow)
        return slim_error(SLIM_ERR_SHAPE, "conv: output %dx%d given, geometry gives %dx%d", s->oh,
                          s->ow, t.oh, t.ow);
    return SLIM_OK;
}

static slim_status conv_prepare(slim_dnnl_cache **cache, const slim_conv_shape *s) {
    SLIM_TRY(conv_check(s));
    int key[SLIM_DNNL_KEY_LEN] = {s->n,  s->cin, s->h,      s->w,  s->cout,
                                  s->kh, s->kw,  s->stride, s->pad};
    return slim_dnnl_cache_prepare(cache, SLIM_DNNL_KIND_CONV, key);
}

/* Plain descriptors: x (n,cin,h,w) nchw, w (cout,cin,kh,kw) oihw,
 * b (cout), y (n,cout,oh,ow) nchw; and the spatial parameters. oneDNN wants
 * the right/bottom padding that makes its output size come out exactly: the
 * smallest non-negative one (never more than pad, because oh is floored). */
typedef struct conv_descs {
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t strides, pad_l, pad_r;
} conv_descs;

static int conv_pad_r(int in, int k, int out, int stride, int pad) {
    int r = (out - 1) * stride + k - in - pad;
    return r < 0 ? 0 : r;
}

static slim_status conv_descs_init(const slim_conv_shape *s, conv_descs *d) {
    SLIM_TRY(slim_dnnl_md(&d->src, 4, (dnnl_dims_t){s->n, s->cin, s->h, s->w}, dnnl_nchw));
    SLIM_TRY(slim_dnnl_md(&d->wei, 4, (dnnl_dims_t){s->cout, s->cin, s->kh, s->kw}, dnnl_oihw));
    SLIM_TRY(slim_dnnl_md(&d->bias, 1, (dnnl_dims_t){s->cout}, dnnl_a));
    SLIM_TRY(slim_dnnl_md(&d->dst, 4, (dnnl_dims_t){s->n, s->cout, s->oh, s->ow}, dnnl_nchw));
    d->strides[0] = d->strides[1] = s->stride;
    d->pad_l[0] = d->pad_l[1] = s->pad;
    d->pad_r[0] = conv_pad_r(s->h, s->kh, s->oh, s->stride, s->pad);
    d->pad_r[1] = conv_pad_r(s->w, s->kw, s->ow, s->stride, s->pad);
    return SLIM_OK;
}

static slim_status conv_build_fwd(slim_dnnl_cache *c, const slim_conv_shape *s, int with_bias) {
    unsigned variant = with_bias ? CONV_WITH_BIAS : 0;
    if (slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_FWD) &&
        c->prim[SLIM_DNNL_CONV_FWD].variant == variant)
        return SLIM_OK;
    conv_descs d;
    dnnl_convolution_desc_t desc;
    SLIM_TRY(conv_descs_init(s, &d));
    SLIM_DNNL_CHECK(dnnl_convolution_forward_desc_init(
        &desc, dnnl_forward_training, dnnl_convolution_direct, &d.src, &d.wei,
        with_bias ? &d.bias : NULL, &d.dst, d.strides, d.pad_l, d.pad_r));
    return slim_dnnl_prim_build(c, SLIM_DNNL_CONV_FWD, variant, &desc, SLIM_DNNL_NO_PRIM);
}

slim_status slim_dnnl_conv2d_forward(slim_dnnl_cache **cache, const slim_conv_shape *s,
                                     const float *x, const float *w, const float *b, float *y) {
    if (!x || !w || !y) return slim_error(SLIM_ERR_ARG, "conv: x, w and y must not be NULL");
    SLIM_TRY(conv_prepare(cache, s));
    slim_dnnl_cache *c = *cache;
    SLIM_TRY(conv_build_fwd(c, s, b != NULL));
    slim_dnnl_arg args[] = {
        {DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}, {DNNL_ARG_BIAS, b}};
    return slim_dnnl_run(c, SLIM_DNNL_CONV_FWD, b ? 4 : 3, args);
}

/* Backward data: diff_src (n,cin,h,w) = conv^T(dy, w), into a temporary
 * that is then added to dx. */
static slim_status conv_backward_data(slim_dnnl_cache *c, const slim_conv_shape *s, const float *w,
                                      const float *dy, float *dx) {
    if (!slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_BWD_DATA)) {
        conv_descs d;
        dnnl_convolution_desc_t desc;
        SLIM_TRY(conv_descs_init(s, &d));
        SLIM_DNNL_CHECK(dnnl_convolution_backward_data_desc_init(
            &desc, dnnl_convolution_direct, &d.src, &d.wei, &d.dst, d.strides, d.pad_l, d.pad_r));
        SLIM_TRY(slim_dnnl_prim_build(c, SLIM_DNNL_CONV_BWD_DATA, 0, &desc, SLIM_DNNL_CONV_FWD));
    }
    size_t count = (size_t)s->n * s->cin * s->h * s->w;
    float *tmp = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_SRC, count * sizeof *tmp);
    if (!tmp) return SLIM_ERR_NOMEM;
    slim_dnnl_arg args[] = {
        {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, tmp}};
    SLIM_TRY(slim_dnnl_run(c, SLIM_DNNL_CONV_BWD_DATA, 3, args));
    slim_dnnl_accumulate(dx, tmp, count);
    return SLIM_OK;
}

/* Backward weights: diff_weights (cout,cin,kh,kw) and, when db is wanted,
 * diff_bias (cout), into temporaries that are then added. */
static slim_status conv_backward_weights(slim_dnnl_cache *c, const slim_conv_shape *s,
                                         const float *x, const float *dy, float *dw, float *db) {
    unsigned variant = db ? CONV_WITH_BIAS : 0;
    if (!slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_BWD_WEIGHTS) ||
        c->prim[SLIM_DNNL_CONV_BWD_WEIGHTS].variant != variant) {
        conv_descs d;
        dnnl_convolution_desc_t desc;
        SLIM_TRY(conv_descs_init(s, &d));
        SLIM_DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(
            &desc, dnnl_convolution_direct, &d.src, &d.wei, db ? &d.bias : NULL, &d.dst, d.strides,
            d.pad_l, d.pad_r));
        SLIM_TRY(slim_dnnl_prim_build(c, SLIM_DNNL_CONV_BWD_WEIGHTS, variant, &desc,
                                      SLIM_DNNL_CONV_FWD));
    }
    size_t wcount = (size_t)s->cout * s->cin * s->kh * s->kw;
    float *tw = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_WEIGHTS, wcount * sizeof *tw);
    float *tb = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_BIAS, (size_t)s->cout * sizeof *tb);
    if (!tw || !tb) return SLIM_ERR_NOMEM;
    slim_dnnl_arg args[] = {{DNNL_ARG_SRC, x},
                            {DNNL_ARG_DIFF_DST, dy},
                            {DNNL_ARG_DIFF_WEIGHTS, tw},
                            {DNNL_ARG_DIFF_BIAS, tb}};
    SLIM_TRY(slim_dnnl_run(c, SLIM_DNNL_CONV_BWD_WEIGHTS, db ? 4 : 3, args));
    if (dw) slim_dnnl_accumulate(dw, tw, wcount);
    if (db) slim_dnnl_accumulate(db, tb, (size_t)s->cout);
    return SLIM_OK;
}

slim_status slim_dnnl_conv2d_backward(slim_dnnl_cache **cache, const slim_conv_shape *s,
                                      const float *x, const float *w, const float *dy, float *dx,
                                      float *dw, float *db) {
    if (!dx && !dw && !db) return SLIM_OK;
    if (!dy || (dx && !w) || ((dw || db) && !x))
        return slim_error(SLIM_ERR_ARG, "conv backward: a needed input is NULL");
    SLIM_TRY(conv_prepare(cache, s));
    slim_dnnl_cache *c = *cache;
    /* Backward primitives are built against a forward one; when the
     * forward has not run on this cache (or shape), build it as a hint. */
    if (!slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_FWD)) SLIM_TRY(conv_build_fwd(c, s, db != NULL));
    if (dx) SLIM_TRY(conv_backward_data(c, s, w, dy, dx));
    if (dw || db) SLIM_TRY(conv_backward_weights(c, s, x, dy, dw, db));
    return SLIM_OK;
}
