/* 2-D convolution on oneDNN: forward, backward data, backward weights.
 *
 * The caller's buffers are plain NCHW / OIHW. On plain layouts oneDNN 2.6
 * falls back to its GEMM-based implementation (x64:gemm:jit), whose
 * backward weights ran at ~4 GFLOPS on two threads. So every primitive is
 * built with dnnl_format_tag_any for its data and weights, which selects
 * the JIT kernels on blocked layouts (nChw16c activations, OIhw16i16o-like
 * weights), and each argument whose chosen layout differs from the plain
 * one gets a reorder slot in the cache: inputs are reordered into cache
 * buffers before the primitive runs, outputs back into the caller's buffer
 * after it. An argument whose chosen layout is the plain one (the
 * single-channel input of a first layer) is passed through untouched.
 * Backward outputs must be ADDED to the caller's gradients: dw goes back
 * through a reorder with a sum post-op; dx is reordered into a plain
 * temporary and then added, which is faster than the accumulating reorder.
 *
 * Choices per shape (each measured; figures in docs/PERFORMANCE.md,
 * "Training"):
 * - all directions on blocked layouts, also for the first layer (1 input
 *   channel), where they beat the plain GEMM;
 * - 3x3 stride-1 convolutions with at least 16 input and output channels
 *   and enough output positions run Winograd F(4x4, 3x3) (jit_wino_4x3),
 *   faster than the direct JIT kernels in all three directions. Its
 *   results differ from direct convolution by ~2e-6 of the output's
 *   magnitude (rounding in the transforms). Where oneDNN has no Winograd
 *   kernel for a shape, the direct algorithm is used;
 * - backward data with fewer than 8 input channels (a first layer asked
 *   for dx) runs on plain layouts: the blocked kernels pad the channels to
 *   16, which costs more than it saves there.
 * Grouped convolutions (groups > 1, depthwise included) take the same
 * path with oneDNN's grouped weights (g, cout/g, cin/g, kh, kw), whose plain
 * layout is the caller's (cout, cin/g, kh, kw); oneDNN has no grouped
 * Winograd, so they always run direct. */
#include "kernels/dnnl/dnnl_common.h"

enum { CONV_WITH_BIAS = 1u };

/* Winograd pays when there are channels to amortise its transforms over
 * and enough output tiles: at batch 1 on 7x7 maps it was slower. */
#define CONV_WINO_MIN_CHANNELS 16
#define CONV_WINO_MIN_POSITIONS 512
/* Below this many input channels backward data runs on plain layouts. */
#define CONV_BLOCKED_BWD_DATA_MIN_CIN 8

static int conv_winograd(const slim_conv_shape *s) {
    return slim_conv_groups(s) == 1 && s->kh == 3 && s->kw == 3 && s->stride == 1 &&
           s->cin >= CONV_WINO_MIN_CHANNELS && s->cout >= CONV_WINO_MIN_CHANNELS &&
           (double)s->n * s->oh * s->ow >= CONV_WINO_MIN_POSITIONS;
}

static int conv_plain_bwd_data(const slim_conv_shape *s) {
    return s->cin < CONV_BLOCKED_BWD_DATA_MIN_CIN;
}

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
    int key[SLIM_DNNL_KEY_LEN] = {s->n,  s->cin, s->h,      s->w,   s->cout,
                                  s->kh, s->kw,  s->stride, s->pad, slim_conv_groups(s)};
    return slim_dnnl_cache_prepare(cache, SLIM_DNNL_KIND_CONV, key);
}

/* Descriptors of the caller's buffers: x (n,cin,h,w) nchw, w
 * (cout,cin,kh,kw) oihw, or with G > 1 groups (G,cout/G,cin/G,kh,kw) goihw,
 * the same bytes as (cout,cin/G,kh,kw); b (cout), y (n,cout,oh,ow) nchw; the same dims
 * with format `any` for the primitives; and the spatial parameters.
 * oneDNN wants the right/bottom padding that makes its output size come
 * out exactly: the smallest non-negative one (never more than pad, because
 * oh is floored). */
typedef struct conv_descs {
    dnnl_memory_desc_t src, wei, bias, dst;       /* plain: the caller's */
    dnnl_memory_desc_t src_any, wei_any, dst_any; /* for the primitives */
    dnnl_dims_t strides, pad_l, pad_r;
} conv_descs;

static int conv_pad_r(int in, int k, int out, int stride, int pad) {
    int r = (out - 1) * stride + k - in - pad;
    return r < 0 ? 0 : r;
}

static slim_status conv_descs_init(const slim_conv_shape *s, conv_descs *d) {
    const int g = slim_conv_groups(s);
    dnnl_dims_t src = {s->n, s->cin, s->h, s->w}, dst = {s->n, s->cout, s->oh, s->ow};
    dnnl_dims_t wei = {s->cout, s->cin, s->kh, s->kw};
    dnnl_dims_t gwei = {g, s->cout / g, s->cin / g, s->kh, s->kw};
    const int wnd = g > 1 ? 5 : 4;
    const dnnl_dim_t *wdims = g > 1 ? gwei : wei;
    SLIM_TRY(slim_dnnl_md(&d->src, 4, src, dnnl_nchw));
    SLIM_TRY(slim_dnnl_md(&d->wei, wnd, wdims, g > 1 ? dnnl_goihw : dnnl_oihw));
    SLIM_TRY(slim_dnnl_md(&d->bias, 1, (dnnl_dims_t){s->cout}, dnnl_a));
    SLIM_TRY(slim_dnnl_md(&d->dst, 4, dst, dnnl_nchw));
    SLIM_TRY(slim_dnnl_md(&d->src_any, 4, src, dnnl_format_tag_any));
    SLIM_TRY(slim_dnnl_md(&d->wei_any, wnd, wdims, dnnl_format_tag_any));
    SLIM_TRY(slim_dnnl_md(&d->dst_any, 4, dst, dnnl_format_tag_any));
    d->strides[0] = d->strides[1] = s->stride;
    d->pad_l[0] = d->pad_l[1] = s->pad;
    d->pad_r[0] = conv_pad_r(s->h, s->kh, s->oh, s->stride, s->pad);
    d->pad_r[1] = conv_pad_r(s->w, s->kw, s->ow, s->stride, s->pad);
    return SLIM_OK;
}

/* After building primitive `id`: when its layout for `arg` is not the
 * caller's `plain` one, builds reorder slot `r` between the two (into the
 * primitive for an input, out of it for an output, adding when
 * `accumulate`). Otherwise slot r stays empty and the caller's buffer is
 * used directly. */
static slim_status conv_link(slim_dnnl_cache *c, int id, int arg, const dnnl_memory_desc_t *plain,
                             int r, int output, int accumulate) {
    const dnnl_memory_desc_t *md = slim_dnnl_arg_md(c, id, arg);
    if (!md) return slim_error(SLIM_ERR_BACKEND, "oneDNN kernel: conv takes no argument %d", arg);
    if (dnnl_memory_desc_equal(md, plain)) return SLIM_OK;
    if (output) return slim_dnnl_reorder_build(c, r, id, md, plain, accumulate);
    return slim_dnnl_reorder_build(c, r, id, plain, md, 0);
}

/* An input of primitive `id` for `arg`: the caller's buffer `user` itself
 * when no reorder slot `r` is built, else `user` reordered into cache
 * buffer `buf`. */
static slim_status conv_input(slim_dnnl_cache *c, int id, int arg, int r, int buf,
                              const float *user, const void **out) {
    if (!slim_dnnl_prim_ready(c, r)) {
        *out = user;
        return SLIM_OK;
    }
    void *p = slim_dnnl_buf(c, buf, slim_dnnl_arg_bytes(c, id, arg));
    if (!p) return SLIM_ERR_NOMEM;
    SLIM_TRY(slim_dnnl_reorder_run(c, r, user, p));
    *out = p;
    return SLIM_OK;
}

/* The three primitives of a convolution. */
typedef enum conv_dir { CONV_DIR_FWD, CONV_DIR_BWD_DATA, CONV_DIR_BWD_WEIGHTS } conv_dir;

static slim_status conv_desc_init(conv_dir dir, dnnl_alg_kind_t alg, const conv_descs *d, int plain,
                                  int with_bias, dnnl_convolution_desc_t *desc) {
    const dnnl_memory_desc_t *src = plain ? &d->src : &d->src_any;
    const dnnl_memory_desc_t *wei = plain ? &d->wei : &d->wei_any;
    const dnnl_memory_desc_t *dst = plain ? &d->dst : &d->dst_any;
    const dnnl_memory_desc_t *bias = with_bias ? &d->bias : NULL;
    switch (dir) {
    case CONV_DIR_FWD:
        SLIM_DNNL_CHECK(dnnl_convolution_forward_desc_init(
            desc, dnnl_forward_training, alg, src, wei, bias, dst, d->strides, d->pad_l, d->pad_r));
        break;
    case CONV_DIR_BWD_DATA:
        SLIM_DNNL_CHECK(dnnl_convolution_backward_data_desc_init(desc, alg, src, wei, dst,
                                                                 d->strides, d->pad_l, d->pad_r));
        break;
    case CONV_DIR_BWD_WEIGHTS:
        SLIM_DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(
            desc, alg, src, wei, bias, dst, d->strides, d->pad_l, d->pad_r));
        break;
    }
    return SLIM_OK;
}

/* Whether slot `id` is built, with bias or without as wanted. */
static int conv_ready(const slim_dnnl_cache *c, int id, int with_bias) {
    return slim_dnnl_prim_ready(c, id) && c->prim[id].variant == (with_bias ? CONV_WITH_BIAS : 0u);
}

/* Builds primitive slot `id` for direction `dir`: Winograd when the shape
 * calls for it and oneDNN has a kernel, else direct. */
static slim_status conv_build(slim_dnnl_cache *c, const slim_conv_shape *s, int id, conv_dir dir,
                              int with_bias, const conv_descs *d) {
    unsigned variant = with_bias ? CONV_WITH_BIAS : 0;
    int hint = dir == CONV_DIR_FWD ? SLIM_DNNL_NO_PRIM : SLIM_DNNL_CONV_FWD;
    int plain = dir == CONV_DIR_BWD_DATA && conv_plain_bwd_data(s);
    dnnl_convolution_desc_t desc;
    if (conv_winograd(s) && !plain) {
        slim_status st = conv_desc_init(dir, dnnl_convolution_winograd, d, plain, with_bias, &desc);
        if (st == SLIM_OK) st = slim_dnnl_prim_build(c, id, variant, &desc, hint);
        if (st == SLIM_OK) return SLIM_OK;
        /* No Winograd kernel for this shape here: fall back to direct. */
    }
    SLIM_TRY(conv_desc_init(dir, dnnl_convolution_direct, d, plain, with_bias, &desc));
    return slim_dnnl_prim_build(c, id, variant, &desc, hint);
}

static slim_status conv_build_fwd(slim_dnnl_cache *c, const slim_conv_shape *s, int with_bias) {
    const int id = SLIM_DNNL_CONV_FWD;
    if (conv_ready(c, id, with_bias)) return SLIM_OK;
    conv_descs d;
    SLIM_TRY(conv_descs_init(s, &d));
    SLIM_TRY(conv_build(c, s, id, CONV_DIR_FWD, with_bias, &d));
    SLIM_TRY(conv_link(c, id, DNNL_ARG_SRC, &d.src, SLIM_DNNL_CONV_FWD_SRC, 0, 0));
    SLIM_TRY(conv_link(c, id, DNNL_ARG_WEIGHTS, &d.wei, SLIM_DNNL_CONV_FWD_WEI, 0, 0));
    return conv_link(c, id, DNNL_ARG_DST, &d.dst, SLIM_DNNL_CONV_FWD_DST, 1, 0);
}

// x: (n,cin,h,w), w: (cout,cin/G,kh,kw), b: (cout) or NULL, y: (n,cout,oh,ow)
slim_status slim_dnnl_conv2d_forward(slim_dnnl_cache **cache, const slim_conv_shape *s,
                                     const float *x, const float *w, const float *b, float *y) {
    if (!x || !w || !y) return slim_error(SLIM_ERR_ARG, "conv: x, w and y must not be NULL");
    SLIM_TRY(conv_prepare(cache, s));
    slim_dnnl_cache *c = *cache;
    SLIM_TRY(conv_build_fwd(c, s, b != NULL));
    const int id = SLIM_DNNL_CONV_FWD;
    const void *src, *wei;
    SLIM_TRY(conv_input(c, id, DNNL_ARG_SRC, SLIM_DNNL_CONV_FWD_SRC, SLIM_DNNL_BUF_SRC, x, &src));
    SLIM_TRY(conv_input(c, id, DNNL_ARG_WEIGHTS, SLIM_DNNL_CONV_FWD_WEI, SLIM_DNNL_BUF_WEIGHTS, w,
                        &wei));
    int reorder_dst = slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_FWD_DST);
    void *dst = y;
    if (reorder_dst) {
        dst = slim_dnnl_buf(c, SLIM_DNNL_BUF_DST, slim_dnnl_arg_bytes(c, id, DNNL_ARG_DST));
        if (!dst) return SLIM_ERR_NOMEM;
    }
    slim_dnnl_arg args[] = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_BIAS, b}};
    SLIM_TRY(slim_dnnl_run(c, id, b ? 4 : 3, args));
    if (reorder_dst) SLIM_TRY(slim_dnnl_reorder_run(c, SLIM_DNNL_CONV_FWD_DST, dst, y));
    return SLIM_OK;
}

/* Backward data: dx (n,cin,h,w) += conv^T(dy, w). The diff_src comes out
 * in the primitive's layout into a temporary, is reordered to the plain
 * layout (into the forward's dst buffer, free during backward) when it is
 * not plain already, and is then added to dx. */
static slim_status conv_backward_data(slim_dnnl_cache *c, const slim_conv_shape *s, const float *w,
                                      const float *dy, float *dx) {
    const int id = SLIM_DNNL_CONV_BWD_DATA;
    if (!slim_dnnl_prim_ready(c, id)) {
        conv_descs d;
        SLIM_TRY(conv_descs_init(s, &d));
        SLIM_TRY(conv_build(c, s, id, CONV_DIR_BWD_DATA, 0, &d));
        SLIM_TRY(conv_link(c, id, DNNL_ARG_DIFF_DST, &d.dst, SLIM_DNNL_CONV_BWD_DIFF_DST, 0, 0));
        SLIM_TRY(conv_link(c, id, DNNL_ARG_WEIGHTS, &d.wei, SLIM_DNNL_CONV_BWD_WEI, 0, 0));
        SLIM_TRY(conv_link(c, id, DNNL_ARG_DIFF_SRC, &d.src, SLIM_DNNL_CONV_BWD_DIFF_SRC, 1, 0));
    }
    const void *ddst, *wei;
    SLIM_TRY(conv_input(c, id, DNNL_ARG_DIFF_DST, SLIM_DNNL_CONV_BWD_DIFF_DST,
                        SLIM_DNNL_BUF_DIFF_DST, dy, &ddst));
    SLIM_TRY(conv_input(c, id, DNNL_ARG_WEIGHTS, SLIM_DNNL_CONV_BWD_WEI, SLIM_DNNL_BUF_WEIGHTS, w,
                        &wei));
    float *tmp =
        slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_SRC, slim_dnnl_arg_bytes(c, id, DNNL_ARG_DIFF_SRC));
    if (!tmp) return SLIM_ERR_NOMEM;
    slim_dnnl_arg args[] = {
        {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, tmp}};
    SLIM_TRY(slim_dnnl_run(c, id, 3, args));
    size_t count = (size_t)s->n * s->cin * s->h * s->w;
    if (slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_BWD_DIFF_SRC)) {
        float *plain = slim_dnnl_buf(c, SLIM_DNNL_BUF_DST, count * sizeof *plain);
        if (!plain) return SLIM_ERR_NOMEM;
        SLIM_TRY(slim_dnnl_reorder_run(c, SLIM_DNNL_CONV_BWD_DIFF_SRC, tmp, plain));
        tmp = plain;
    }
    slim_dnnl_accumulate(dx, tmp, count);
    return SLIM_OK;
}

/* Backward weights: dw (cout,cin/G,kh,kw) and, when wanted, db (cout) += the
 * gradients, through temporaries as for backward data. `dy_data` is dy as
 * backward data consumed it (NULL if it did not run): when both primitives
 * want dy in the same layout, it is not reordered twice. */
static slim_status conv_backward_weights(slim_dnnl_cache *c, const slim_conv_shape *s,
                                         const float *x, const float *dy, const void *dy_data,
                                         float *dw, float *db) {
    const int id = SLIM_DNNL_CONV_BWD_WEIGHTS;
    if (!conv_ready(c, id, db != NULL)) {
        conv_descs d;
        SLIM_TRY(conv_descs_init(s, &d));
        SLIM_TRY(conv_build(c, s, id, CONV_DIR_BWD_WEIGHTS, db != NULL, &d));
        SLIM_TRY(conv_link(c, id, DNNL_ARG_SRC, &d.src, SLIM_DNNL_CONV_BWW_SRC, 0, 0));
        SLIM_TRY(conv_link(c, id, DNNL_ARG_DIFF_DST, &d.dst, SLIM_DNNL_CONV_BWW_DIFF_DST, 0, 0));
        SLIM_TRY(
            conv_link(c, id, DNNL_ARG_DIFF_WEIGHTS, &d.wei, SLIM_DNNL_CONV_BWW_DIFF_WEI, 1, 1));
    }
    const void *src, *ddst = NULL;
    SLIM_TRY(conv_input(c, id, DNNL_ARG_SRC, SLIM_DNNL_CONV_BWW_SRC, SLIM_DNNL_BUF_SRC, x, &src));
    if (dy_data) {
        const dnnl_memory_desc_t *want = slim_dnnl_arg_md(c, id, DNNL_ARG_DIFF_DST);
        const dnnl_memory_desc_t *have =
            slim_dnnl_arg_md(c, SLIM_DNNL_CONV_BWD_DATA, DNNL_ARG_DIFF_DST);
        if (want && have && dnnl_memory_desc_equal(want, have)) ddst = dy_data;
    }
    /* Otherwise dy in this primitive's layout goes into the same buffer:
     * backward data is done with it (or did not run). */
    if (!ddst)
        SLIM_TRY(conv_input(c, id, DNNL_ARG_DIFF_DST, SLIM_DNNL_CONV_BWW_DIFF_DST,
                            SLIM_DNNL_BUF_DIFF_DST, dy, &ddst));
    float *tw = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_WEIGHTS,
                              slim_dnnl_arg_bytes(c, id, DNNL_ARG_DIFF_WEIGHTS));
    float *tb = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_BIAS, (size_t)s->cout * sizeof *tb);
    if (!tw || !tb) return SLIM_ERR_NOMEM;
    slim_dnnl_arg args[] = {{DNNL_ARG_SRC, src},
                            {DNNL_ARG_DIFF_DST, ddst},
                            {DNNL_ARG_DIFF_WEIGHTS, tw},
                            {DNNL_ARG_DIFF_BIAS, tb}};
    SLIM_TRY(slim_dnnl_run(c, id, db ? 4 : 3, args));
    if (dw) {
        if (slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_BWW_DIFF_WEI))
            SLIM_TRY(slim_dnnl_reorder_run(c, SLIM_DNNL_CONV_BWW_DIFF_WEI, tw, dw));
        else
            slim_dnnl_accumulate(dw, tw,
                                 (size_t)s->cout * (s->cin / slim_conv_groups(s)) * s->kh * s->kw);
    }
    if (db) slim_dnnl_accumulate(db, tb, (size_t)s->cout);
    return SLIM_OK;
}

// x: (n,cin,h,w), w: (cout,cin/G,kh,kw), dy: (n,cout,oh,ow); dx, dw, db like x, w, (cout)
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
    const void *dy_data = NULL;
    if (dx) {
        SLIM_TRY(conv_backward_data(c, s, w, dy, dx));
        dy_data = slim_dnnl_prim_ready(c, SLIM_DNNL_CONV_BWD_DIFF_DST)
                      ? slim_dnnl_buf_ptr(c, SLIM_DNNL_BUF_DIFF_DST)
                      : NULL;
    }
    if (dw || db) SLIM_TRY(conv_backward_weights(c, s, x, dy, dy_data, dw, db));
    return SLIM_OK;
}
