/* Max, average and global average pooling: forward and backward. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

typedef struct pool_ctx {
    slim_pool_shape shape;
    int32_t *argmax; // (n,c,oh,ow) reference max pooling only
    slim_dnnl_cache **cache;
} pool_ctx;

static slim_status maxpool_backward(slim_tape *tape, slim_tape_node *node) {
    pool_ctx *ctx = node->ctx;
    if (tape->backend == SLIM_BACKEND_FAST)
        return slim_dnnl_maxpool_backward(ctx->cache, &ctx->shape, node->out->grad,
                                          node->in[0]->grad);
    slim_ref_maxpool_backward(&ctx->shape, ctx->argmax, node->out->grad, node->in[0]->grad);
    return SLIM_OK;
}

static slim_status avgpool_backward(slim_tape *tape, slim_tape_node *node) {
    pool_ctx *ctx = node->ctx;
    if (tape->backend == SLIM_BACKEND_FAST)
        return slim_dnnl_avgpool_backward(ctx->cache, &ctx->shape, node->out->grad,
                                          node->in[0]->grad);
    slim_ref_avgpool_backward(&ctx->shape, node->out->grad, node->in[0]->grad);
    return SLIM_OK;
}

static slim_status pool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                        slim_dnnl_cache **cache, int is_max, slim_tensor **y) {
    if (x->ndim != 4) return slim_error(SLIM_ERR_SHAPE, "pool: input must be 4-D");
    slim_pool_shape s = {.n = x->shape[0],
                         .c = x->shape[1],
                         .h = x->shape[2],
                         .w = x->shape[3],
                         .k = k,
                         .stride = stride,
                         .pad = pad};
    SLIM_TRY(slim_pool_shape_finish(&s));
    int grad = slim_tape_needs_grad(tape, x, NULL, NULL);
    int fast = tape->backend == SLIM_BACKEND_FAST;
    slim_tensor *t = slim_tape_tensor(tape, 4, (int[]){s.n, s.c, s.oh, s.ow}, grad);
    pool_ctx *ctx = slim_arena_alloc(&tape->arena, sizeof *ctx);
    if (!t || !ctx) return SLIM_ERR_NOMEM;
    ctx->shape = s;
    ctx->cache = cache;
    ctx->argmax = NULL;
    if (is_max) {
        if (fast) {
            SLIM_TRY(slim_dnnl_maxpool_forward(cache, &s, x->data, t->data));
        } else {
            ctx->argmax = slim_arena_alloc(&tape->arena, slim_tensor_numel(t) * sizeof(int32_t));
            if (!ctx->argmax) return SLIM_ERR_NOMEM;
            slim_ref_maxpool_forward(&s, x->data, t->data, ctx->argmax);
        }
    } else if (fast) {
        SLIM_TRY(slim_dnnl_avgpool_forward(cache, &s, x->data, t->data));
    } else {
        slim_ref_avgpool_forward(&s, x->data, t->data);
    }
    if (grad)
        SLIM_TRY(slim_tape_record(tape, is_max ? maxpool_backward : avgpool_backward, ctx, t, x,
                                  NULL, NULL));
    *y = t;
    return SLIM_OK;
}

slim_status slim_op_maxpool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                            slim_dnnl_cache **cache, slim_tensor **y) {
    return pool(tape, x, k, stride, pad, cache, 1, y);
}

slim_status slim_op_avgpool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                            slim_dnnl_cache **cache, slim_tensor **y) {
    return pool(tape, x, k, stride, pad, cache, 0, y);
}

static slim_status gap_backward(slim_tape *tape, slim_tape_node *node) {
    (void)tape;
    slim_tensor *x = node->in[0];
    slim_ref_gap_backward(x->shape[0], x->shape[1], x->shape[2] * x->shape[3], node->out->grad,
                          x->grad);
    return SLIM_OK;
}

// x: (n,c,h,w) -> y: (n,c)
slim_status slim_op_gap(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    if (x->ndim != 4) return slim_error(SLIM_ERR_SHAPE, "global average pool: input must be 4-D");
    int grad = slim_tape_needs_grad(tape, x, NULL, NULL);
    slim_tensor *t = slim_tape_tensor(tape, 2, (int[]){x->shape[0], x->shape[1]}, grad);
    if (!t) return SLIM_ERR_NOMEM;
    slim_ref_gap_forward(x->shape[0], x->shape[1], x->shape[2] * x->shape[3], x->data, t->data);
    if (grad) SLIM_TRY(slim_tape_record(tape, gap_backward, NULL, t, x, NULL, NULL));
    *y = t;
    return SLIM_OK;
}
