/* Batch normalisation: training (batch statistics) and inference modes. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

typedef struct bn_ctx {
    int n, c, hw;
    float eps;
    float *save_mean, *save_var; // (c) batch mean and biased variance
    slim_dnnl_cache **cache;
    const slim_allreduce *sync; // the tape's bn_sync, or NULL
} bn_ctx;

static slim_status bn_backward(slim_tape *tape, slim_tape_node *node) {
    bn_ctx *ctx = node->ctx;
    slim_tensor *x = node->in[0], *g = node->in[1], *b = node->in[2], *y = node->out;
    float *dgamma = g->grad, *dbeta = b->grad;
    if (tape->backend == SLIM_BACKEND_FAST)
        return slim_dnnl_bn_backward(ctx->cache, ctx->n, ctx->c, ctx->hw, x->data, g->data,
                                     ctx->eps, ctx->save_mean, ctx->save_var, y->grad, x->grad,
                                     dgamma, dbeta, ctx->sync);
    return slim_ref_bn_backward(ctx->n, ctx->c, ctx->hw, x->data, g->data, ctx->eps, ctx->save_mean,
                                ctx->save_var, y->grad, x->grad, dgamma, dbeta, ctx->sync);
}

// x: (n,c,h,w) or (n,c); gamma, beta, running stats: (c)
slim_status slim_op_batchnorm(slim_tape *tape, slim_tensor *x, slim_tensor *gamma,
                              slim_tensor *beta, float *running_mean, float *running_var, float eps,
                              float momentum, int training, slim_dnnl_cache **cache,
                              slim_tensor **y) {
    if (x->ndim != 4 && x->ndim != 2)
        return slim_error(SLIM_ERR_SHAPE, "batchnorm: input must be 2-D or 4-D");
    int n = x->shape[0], c = x->shape[1];
    int hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    if ((int)slim_tensor_numel(gamma) != c || (int)slim_tensor_numel(beta) != c)
        return slim_error(SLIM_ERR_SHAPE, "batchnorm: %d channels but %zu scales", c,
                          slim_tensor_numel(gamma));
    int fast = tape->backend == SLIM_BACKEND_FAST;
    int grad = training && slim_tape_needs_grad(tape, x, gamma, beta);
    slim_tensor *t = slim_tape_tensor(tape, x->ndim, x->shape, grad);
    if (!t) return SLIM_ERR_NOMEM;
    if (!training) {
        if (fast)
            SLIM_TRY(slim_dnnl_bn_forward_eval(cache, n, c, hw, x->data, gamma->data, beta->data,
                                               eps, running_mean, running_var, t->data));
        else
            slim_ref_bn_forward_eval(n, c, hw, x->data, gamma->data, beta->data, eps, running_mean,
                                     running_var, t->data);
        *y = t;
        return SLIM_OK;
    }
    if (n * hw < 2 && !tape->bn_sync)
        return slim_error(SLIM_ERR_SHAPE,
                          "batchnorm: training needs more than one value per channel "
                          "(batch %d x %d positions)",
                          n, hw);
    bn_ctx *ctx = slim_arena_alloc(&tape->arena, sizeof *ctx);
    float *mean = slim_arena_alloc(&tape->arena, (size_t)c * sizeof(float));
    float *var = slim_arena_alloc(&tape->arena, (size_t)c * sizeof(float));
    if (!ctx || !mean || !var) return SLIM_ERR_NOMEM;
    if (fast)
        SLIM_TRY(slim_dnnl_bn_forward_train(cache, n, c, hw, x->data, gamma->data, beta->data, eps,
                                            momentum, running_mean, running_var, t->data, mean, var,
                                            tape->bn_sync));
    else
        SLIM_TRY(slim_ref_bn_forward_train(n, c, hw, x->data, gamma->data, beta->data, eps,
                                           momentum, running_mean, running_var, t->data, mean, var,
                                           tape->bn_sync));
    if (grad) {
        *ctx = (bn_ctx){.n = n,
                        .c = c,
                        .hw = hw,
                        .eps = eps,
                        .save_mean = mean,
                        .save_var = var,
                        .cache = cache,
                        .sync = tape->bn_sync};
        SLIM_TRY(slim_tape_record(tape, bn_backward, ctx, t, x, gamma, beta));
    }
    *y = t;
    return SLIM_OK;
}
