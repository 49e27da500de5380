/* 2-D convolution with optional bias and per-position bias map. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

#include <string.h>

typedef struct conv_ctx {
    slim_conv_shape shape;
    slim_dnnl_cache **cache;
} conv_ctx;

// x: (n,cin,h,w), w: (cout,cin/groups,k,k), b: (cout), biasmap: (cout,oh,ow), y: (n,cout,oh,ow)
static slim_status conv_backward(slim_tape *tape, slim_tape_node *node) {
    conv_ctx *ctx = node->ctx;
    const slim_conv_shape *s = &ctx->shape;
    slim_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2], *y = node->out;
    float *db = b ? b->grad : NULL;
    if (tape->backend == SLIM_BACKEND_FAST) {
        SLIM_TRY(slim_dnnl_conv2d_backward(ctx->cache, s, x->data, w->data, y->grad, x->grad,
                                           w->grad, db));
    } else {
        slim_ref_conv2d_backward(s, x->data, w->data, y->grad, x->grad, w->grad, db);
    }
    return SLIM_OK;
}

/* The bias map is a constant of folding; it has no gradient, so its add
 * needs no node. */
static void add_biasmap(const slim_conv_shape *s, const float *map, float *y) {
    size_t plane = (size_t)s->cout * (size_t)s->oh * (size_t)s->ow;
    for (int i = 0; i < s->n; i++) {
        float *yi = y + (size_t)i * plane;
        for (size_t j = 0; j < plane; j++)
            yi[j] += map[j];
    }
}

slim_status slim_op_conv2d(slim_tape *tape, slim_tensor *x, slim_tensor *w, slim_tensor *b,
                           slim_tensor *biasmap, int stride, int pad, int groups,
                           slim_dnnl_cache **cache, slim_tensor **y) {
    if (groups < 1) return slim_error(SLIM_ERR_ARG, "conv: groups=%d must be at least 1", groups);
    if (x->ndim != 4 || w->ndim != 4 || (long)w->shape[1] * groups != x->shape[1])
        return slim_error(SLIM_ERR_SHAPE,
                          "conv: input channels (%d) do not match the weight's (%d per group, "
                          "%d groups)",
                          x->ndim == 4 ? x->shape[1] : -1, w->ndim == 4 ? w->shape[1] : -1, groups);
    slim_conv_shape s = {.n = x->shape[0],
                         .cin = x->shape[1],
                         .h = x->shape[2],
                         .w = x->shape[3],
                         .cout = w->shape[0],
                         .kh = w->shape[2],
                         .kw = w->shape[3],
                         .stride = stride,
                         .pad = pad,
                         .groups = groups};
    SLIM_TRY(slim_conv_shape_finish(&s));
    if (biasmap && slim_tensor_numel(biasmap) != (size_t)s.cout * (size_t)s.oh * (size_t)s.ow)
        return slim_error(SLIM_ERR_SHAPE, "conv: bias map does not match the output %dx%dx%d",
                          s.cout, s.oh, s.ow);
    int grad = slim_tape_needs_grad(tape, x, w, b);
    slim_tensor *t = slim_tape_tensor(tape, 4, (int[]){s.n, s.cout, s.oh, s.ow}, grad);
    if (!t) return SLIM_ERR_NOMEM;
    const float *bias = b ? b->data : NULL;
    if (tape->backend == SLIM_BACKEND_FAST)
        SLIM_TRY(slim_dnnl_conv2d_forward(cache, &s, x->data, w->data, bias, t->data));
    else
        slim_ref_conv2d_forward(&s, x->data, w->data, bias, t->data);
    if (biasmap) add_biasmap(&s, biasmap->data, t->data);
    if (grad) {
        conv_ctx *ctx = slim_arena_alloc(&tape->arena, sizeof *ctx);
        if (!ctx) return SLIM_ERR_NOMEM;
        ctx->shape = s;
        ctx->cache = cache;
        SLIM_TRY(slim_tape_record(tape, conv_backward, ctx, t, x, w, b));
    }
    *y = t;
    return SLIM_OK;
}
