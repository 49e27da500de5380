/* Max and average pooling on oneDNN.
 *
 * Max pooling's forward runs in training mode so that it leaves oneDNN's
 * workspace (where each maximum came from) in the cache; the backward reads
 * it, so it must follow a forward on the same cache and shape. Average
 * pooling excludes the padding from the divisor, like the reference kernel
 * (PyTorch's count_include_pad=False). */
#include "kernels/dnnl/dnnl_common.h"

static slim_status pool_prepare(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                slim_dnnl_kind kind) {
    if (!s) return slim_error(SLIM_ERR_ARG, "pool: shape is NULL");
    slim_pool_shape t = *s;
    SLIM_TRY(slim_pool_shape_finish(&t));
    if (t.oh != s->oh || t.ow != s->ow)
        return slim_error(SLIM_ERR_SHAPE, "pool: output %dx%d given, geometry gives %dx%d", s->oh,
                          s->ow, t.oh, t.ow);
    int key[SLIM_DNNL_KEY_LEN] = {s->n, s->c, s->h, s->w, s->k, s->stride, s->pad};
    return slim_dnnl_cache_prepare(cache, kind, key);
}

/* Right/bottom padding that makes oneDNN's output size exactly oh/ow. */
static int pool_pad_r(int in, int k, int out, int stride, int pad) {
    int r = (out - 1) * stride + k - in - pad;
    return r < 0 ? 0 : r;
}

static slim_status pool_desc_init(const slim_pool_shape *s, dnnl_alg_kind_t alg, int backward,
                                  dnnl_pooling_desc_t *desc) {
    dnnl_memory_desc_t src, dst;
    SLIM_TRY(slim_dnnl_md(&src, 4, (dnnl_dims_t){s->n, s->c, s->h, s->w}, dnnl_nchw));
    SLIM_TRY(slim_dnnl_md(&dst, 4, (dnnl_dims_t){s->n, s->c, s->oh, s->ow}, dnnl_nchw));
    dnnl_dims_t strides = {s->stride, s->stride}, kernel = {s->k, s->k};
    dnnl_dims_t pad_l = {s->pad, s->pad};
    dnnl_dims_t pad_r = {pool_pad_r(s->h, s->k, s->oh, s->stride, s->pad),
                         pool_pad_r(s->w, s->k, s->ow, s->stride, s->pad)};
    if (backward)
        SLIM_DNNL_CHECK(
            dnnl_pooling_backward_desc_init(desc, alg, &src, &dst, strides, kernel, pad_l, pad_r));
    else
        SLIM_DNNL_CHECK(dnnl_pooling_forward_desc_init(desc, dnnl_forward_training, alg, &src, &dst,
                                                       strides, kernel, pad_l, pad_r));
    return SLIM_OK;
}

static slim_status pool_build(slim_dnnl_cache *c, const slim_pool_shape *s, dnnl_alg_kind_t alg,
                              int backward) {
    int id = backward ? SLIM_DNNL_POOL_BWD : SLIM_DNNL_POOL_FWD;
    if (slim_dnnl_prim_ready(c, id)) return SLIM_OK;
    dnnl_pooling_desc_t desc;
    SLIM_TRY(pool_desc_init(s, alg, backward, &desc));
    return slim_dnnl_prim_build(c, id, 0, &desc, backward ? SLIM_DNNL_POOL_FWD : SLIM_DNNL_NO_PRIM);
}

/* x: (n, c, h, w), y: (n, c, oh, ow). */
slim_status slim_dnnl_maxpool_forward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                      const float *x, float *y) {
    if (!x || !y) return slim_error(SLIM_ERR_ARG, "maxpool: x and y must not be NULL");
    SLIM_TRY(pool_prepare(cache, s, SLIM_DNNL_KIND_MAXPOOL));
    slim_dnnl_cache *c = *cache;
    SLIM_TRY(pool_build(c, s, dnnl_pooling_max, 0));
    size_t wbytes = slim_dnnl_arg_bytes(c, SLIM_DNNL_POOL_FWD, DNNL_ARG_WORKSPACE);
    void *ws = slim_dnnl_buf(c, SLIM_DNNL_BUF_WORKSPACE, wbytes);
    if (!ws) return SLIM_ERR_NOMEM;
    slim_dnnl_arg args[] = {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws}};
    c->workspace_valid = 0;
    SLIM_TRY(slim_dnnl_run(c, SLIM_DNNL_POOL_FWD, wbytes > 0 ? 3 : 2, args));
    c->workspace_valid = 1;
    return SLIM_OK;
}

/* dy: (n, c, oh, ow); dx (n, c, h, w) += the routed gradient. */
slim_status slim_dnnl_maxpool_backward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                       const float *dy, float *dx) {
    if (!dx) return SLIM_OK;
    if (!dy) return slim_error(SLIM_ERR_ARG, "maxpool backward: dy is NULL");
    SLIM_TRY(pool_prepare(cache, s, SLIM_DNNL_KIND_MAXPOOL));
    slim_dnnl_cache *c = *cache;
    if (!c->workspace_valid)
        return slim_error(SLIM_ERR_ARG,
                          "maxpool backward: no forward of this shape ran on this cache");
    SLIM_TRY(pool_build(c, s, dnnl_pooling_max, 1));
    size_t count = (size_t)s->n * s->c * s->h * s->w;
    float *tmp = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_SRC, count * sizeof *tmp);
    if (!tmp) return SLIM_ERR_NOMEM;
    int has_ws = slim_dnnl_arg_bytes(c, SLIM_DNNL_POOL_BWD, DNNL_ARG_WORKSPACE) > 0;
    slim_dnnl_arg args[] = {{DNNL_ARG_DIFF_DST, dy},
                            {DNNL_ARG_DIFF_SRC, tmp},
                            {DNNL_ARG_WORKSPACE, slim_dnnl_buf_ptr(c, SLIM_DNNL_BUF_WORKSPACE)}};
    SLIM_TRY(slim_dnnl_run(c, SLIM_DNNL_POOL_BWD, has_ws ? 3 : 2, args));
    slim_dnnl_accumulate(dx, tmp, count);
    return SLIM_OK;
}

/* x: (n, c, h, w), y: (n, c, oh, ow). */
slim_status slim_dnnl_avgpool_forward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                      const float *x, float *y) {
    if (!x || !y) return slim_error(SLIM_ERR_ARG, "avgpool: x and y must not be NULL");
    SLIM_TRY(pool_prepare(cache, s, SLIM_DNNL_KIND_AVGPOOL));
    slim_dnnl_cache *c = *cache;
    SLIM_TRY(pool_build(c, s, dnnl_pooling_avg_exclude_padding, 0));
    slim_dnnl_arg args[] = {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}};
    return slim_dnnl_run(c, SLIM_DNNL_POOL_FWD, 2, args);
}

/* dy: (n, c, oh, ow); dx (n, c, h, w) += dy spread over each window. The
 * average needs no workspace, so no forward is required first. */
slim_status slim_dnnl_avgpool_backward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                       const float *dy, float *dx) {
    if (!dx) return SLIM_OK;
    if (!dy) return slim_error(SLIM_ERR_ARG, "avgpool backward: dy is NULL");
    SLIM_TRY(pool_prepare(cache, s, SLIM_DNNL_KIND_AVGPOOL));
    slim_dnnl_cache *c = *cache;
    SLIM_TRY(pool_build(c, s, dnnl_pooling_avg_exclude_padding, 0)); /* the hint */
    SLIM_TRY(pool_build(c, s, dnnl_pooling_avg_exclude_padding, 1));
    size_t count = (size_t)s->n * s->c * s->h * s->w;
    float *tmp = slim_dnnl_buf(c, SLIM_DNNL_BUF_DIFF_SRC, count * sizeof *tmp);
    if (!tmp) return SLIM_ERR_NOMEM;
    slim_dnnl_arg args[] = {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, tmp}};
    SLIM_TRY(slim_dnnl_run(c, SLIM_DNNL_POOL_BWD, 2, args));
    slim_dnnl_accumulate(dx, tmp, count);
    return SLIM_OK;
}
