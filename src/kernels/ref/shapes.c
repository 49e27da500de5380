/* Output geometry of convolution and pooling, shared by every backend. */
#include "kernels/kernels.h"

#include <limits.h>

/* floor((in + 2 pad - k) / stride) + 1 in 64-bit, so that absurd inputs
 * cannot overflow; -1 when the window does not fit even once. */
static int64_t out_extent(int in, int k, int stride, int pad) {
    int64_t span = (int64_t)in + 2 * (int64_t)pad - k;
    if (span < 0) return -1;
    return span / stride + 1;
}

slim_status slim_conv_shape_finish(slim_conv_shape *s) {
    if (!s) return slim_error(SLIM_ERR_ARG, "conv shape is NULL");
    if (s->n <= 0 || s->cin <= 0 || s->h <= 0 || s->w <= 0 || s->cout <= 0 || s->kh <= 0 ||
        s->kw <= 0)
        return slim_error(SLIM_ERR_SHAPE,
                          "conv: sizes must be positive (n=%d cin=%d h=%d w=%d cout=%d k=%dx%d)",
                          s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw);
    if (s->stride <= 0 || s->pad < 0)
        return slim_error(SLIM_ERR_SHAPE,
                          "conv: stride must be > 0 and pad >= 0 (stride=%d pad=%d)", s->stride,
                          s->pad);
    if (s->groups == 0) s->groups = 1;
    if (s->groups < 0 || s->cin % s->groups || s->cout % s->groups)
        return slim_error(SLIM_ERR_SHAPE,
                          "conv: groups=%d must divide the input (%d) and output (%d) channels",
                          s->groups, s->cin, s->cout);
    int64_t oh = out_extent(s->h, s->kh, s->stride, s->pad);
    int64_t ow = out_extent(s->w, s->kw, s->stride, s->pad);
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX)
        return slim_error(SLIM_ERR_SHAPE,
                          "conv: a %dx%d kernel does not fit a %dx%d input with pad %d", s->kh,
                          s->kw, s->h, s->w, s->pad);
    s->oh = (int)oh;
    s->ow = (int)ow;
    return SLIM_OK;
}

slim_status slim_pool_shape_finish(slim_pool_shape *s) {
    if (!s) return slim_error(SLIM_ERR_ARG, "pool shape is NULL");
    if (s->n <= 0 || s->c <= 0 || s->h <= 0 || s->w <= 0 || s->k <= 0)
        return slim_error(SLIM_ERR_SHAPE, "pool: sizes must be positive (n=%d c=%d h=%d w=%d k=%d)",
                          s->n, s->c, s->h, s->w, s->k);
    if (s->stride <= 0 || s->pad < 0)
        return slim_error(SLIM_ERR_SHAPE,
                          "pool: stride must be > 0 and pad >= 0 (stride=%d pad=%d)", s->stride,
                          s->pad);
    /* pad < k keeps every window at least partly inside the input, so max
     * pooling always has a winner and the average a nonzero divisor. */
    if (s->pad >= s->k)
        return slim_error(SLIM_ERR_SHAPE, "pool: pad (%d) must be smaller than the window (%d)",
                          s->pad, s->k);
    int64_t oh = out_extent(s->h, s->k, s->stride, s->pad);
    int64_t ow = out_extent(s->w, s->k, s->stride, s->pad);
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX)
        return slim_error(SLIM_ERR_SHAPE,
                          "pool: a %dx%d window does not fit a %dx%d input with pad %d", s->k, s->k,
                          s->h, s->w, s->pad);
    s->oh = (int)oh;
    s->ow = (int)ow;
    return SLIM_OK;
}
