/* Channel concatenation: forward and backward. The reference kernels are
 * block copies, memory-bound, and serve both backends. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

#include <limits.h>

typedef struct concat_ctx {
    int k;
    int *c; /* (k) channels of each input */
} concat_ctx;

/* Input j of a node recorded by slim_tape_record_n. */
static slim_tensor *node_input(const slim_tape_node *node, int j) {
    return j < 3 ? node->in[j] : node->more[j - 3];
}

/* Height times width of x, 1 for an (n, f) tensor. */
static size_t plane(const slim_tensor *x) {
    return x->ndim == 4 ? (size_t)x->shape[2] * (size_t)x->shape[3] : 1;
}

// xs[j]: (n,c[j],h,w) or (n,c[j]), y: (n,sum c,h,w), or (n,sum c) when every x is 2-D
static slim_status concat_backward(slim_tape *tape, slim_tape_node *node) {
    (void)tape;
    const concat_ctx *ctx = node->ctx;
    float *dx[SLIM_CONCAT_MAX_INPUTS];
    for (int j = 0; j < ctx->k; j++)
        dx[j] = node_input(node, j)->grad;
    const slim_tensor *y = node->out;
    slim_ref_concat_backward(y->shape[0], ctx->k, ctx->c, plane(y), y->grad, dx);
    return SLIM_OK;
}

slim_status slim_op_concat(slim_tape *tape, int k, slim_tensor *const *xs, slim_tensor **y) {
    if (k < 1 || k > SLIM_CONCAT_MAX_INPUTS)
        return slim_error(SLIM_ERR_ARG, "concat: %d inputs (1 to %d)", k, SLIM_CONCAT_MAX_INPUTS);
    /* A 2-D (n, f) input is an (n, f, 1, 1) map; the output is 2-D only
     * when every input is. */
    const slim_tensor *x0 = xs[0];
    int h = x0->ndim == 4 ? x0->shape[2] : 1, w = x0->ndim == 4 ? x0->shape[3] : 1, ndim = 2;
    int c[SLIM_CONCAT_MAX_INPUTS];
    const float *data[SLIM_CONCAT_MAX_INPUTS];
    long total = 0;
    int grad = 0;
    for (int j = 0; j < k; j++) {
        const slim_tensor *x = xs[j];
        if (x->ndim != 2 && x->ndim != 4)
            return slim_error(SLIM_ERR_SHAPE, "concat: input %d is neither (n, c, h, w) nor (n, f)",
                              j);
        if (x->ndim == 4) ndim = 4;
        if (x->shape[0] != x0->shape[0] || (x->ndim == 4 ? x->shape[2] : 1) != h ||
            (x->ndim == 4 ? x->shape[3] : 1) != w)
            return slim_error(SLIM_ERR_SHAPE,
                              "concat: input %d differs from input 0 in batch, height or width", j);
        c[j] = x->shape[1];
        data[j] = x->data;
        total += c[j];
        grad |= slim_tape_needs_grad(tape, x, NULL, NULL);
    }
    if (total > INT_MAX) return slim_error(SLIM_ERR_SHAPE, "concat: %ld channels in all", total);
    int shape[4] = {x0->shape[0], (int)total, h, w};
    slim_tensor *t = slim_tape_tensor(tape, ndim, shape, grad);
    if (!t) return SLIM_ERR_NOMEM;
    slim_ref_concat_forward(shape[0], k, c, (size_t)h * (size_t)w, data, t->data);
    if (grad) {
        concat_ctx *ctx = slim_arena_alloc(&tape->arena, sizeof *ctx);
        int *cs = slim_arena_alloc(&tape->arena, (size_t)k * sizeof *cs);
        if (!ctx || !cs) return SLIM_ERR_NOMEM;
        for (int j = 0; j < k; j++)
            cs[j] = c[j];
        *ctx = (concat_ctx){.k = k, .c = cs};
        SLIM_TRY(slim_tape_record_n(tape, concat_backward, ctx, t, k, xs));
    }
    *y = t;
    return SLIM_OK;
}
