/* Mean softmax cross-entropy: forward and backward. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

#include <string.h>

typedef struct xent_ctx {
    float *prob;     // (n, k) softmax of the logits
    int32_t *labels; // (n) copied, so the caller's buffer may change
} xent_ctx;

static slim_status xent_backward(slim_tape *tape, slim_tape_node *node) {
    (void)tape;
    xent_ctx *ctx = node->ctx;
    slim_tensor *logits = node->in[0];
    slim_ref_softmax_xent_backward(logits->shape[0], logits->shape[1], ctx->prob, ctx->labels,
                                   node->out->grad[0], logits->grad);
    return SLIM_OK;
}

slim_status slim_op_softmax_xent(slim_tape *tape, slim_tensor *logits, const int32_t *labels,
                                 slim_tensor **y) {
    if (logits->ndim != 2) return slim_error(SLIM_ERR_SHAPE, "cross-entropy: logits must be 2-D");
    int n = logits->shape[0], k = logits->shape[1];
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return slim_error(SLIM_ERR_ARG, "cross-entropy: label %d of row %d is outside [0, %d)",
                              (int)labels[i], i, k);
    int grad = slim_tape_needs_grad(tape, logits, NULL, NULL);
    slim_tensor *t = slim_tape_tensor(tape, 1, (int[]){1}, grad);
    xent_ctx *ctx = slim_arena_alloc(&tape->arena, sizeof *ctx);
    float *prob = slim_arena_alloc(&tape->arena, (size_t)n * (size_t)k * sizeof(float));
    int32_t *lab = slim_arena_alloc(&tape->arena, (size_t)n * sizeof(int32_t));
    if (!t || !ctx || !prob || !lab) return SLIM_ERR_NOMEM;
    memcpy(lab, labels, (size_t)n * sizeof(int32_t));
    ctx->prob = prob;
    ctx->labels = lab;
    t->data[0] = slim_ref_softmax_xent_forward(n, k, logits->data, lab, prob);
    if (grad) SLIM_TRY(slim_tape_record(tape, xent_backward, ctx, t, logits, NULL, NULL));
    *y = t;
    return SLIM_OK;
}
