/* Dense layer y = x W^T + b: forward and backward. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

// x: (n, in) or any (n, ...) with in features; w: (out, in); b: (out); y: (n, out)
static slim_status dense_backward(slim_tape *tape, slim_tape_node *node) {
    slim_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2], *y = node->out;
    int n = y->shape[0], out = w->shape[0], in = w->shape[1];
    float *db = b ? b->grad : NULL;
    if (tape->backend == SLIM_BACKEND_FAST)
        slim_blas_dense_backward(n, in, out, x->data, w->data, y->grad, x->grad, w->grad, db);
    else
        slim_ref_dense_backward(n, in, out, x->data, w->data, y->grad, x->grad, w->grad, db);
    return SLIM_OK;
}

slim_status slim_op_dense(slim_tape *tape, slim_tensor *x, slim_tensor *w, slim_tensor *b,
                          slim_tensor **y) {
    if (w->ndim != 2) return slim_error(SLIM_ERR_SHAPE, "dense: weight must be 2-D");
    int n = x->shape[0], out = w->shape[0], in = w->shape[1];
    if (slim_tensor_numel(x) != (size_t)n * (size_t)in)
        return slim_error(SLIM_ERR_SHAPE,
                          "dense: input has %zu features per row, weight expects %d",
                          slim_tensor_numel(x) / (size_t)n, in);
    if (b && (int)slim_tensor_numel(b) != out)
        return slim_error(SLIM_ERR_SHAPE, "dense: bias has %zu values, expected %d",
                          slim_tensor_numel(b), out);
    int grad = slim_tape_needs_grad(tape, x, w, b);
    slim_tensor *t = slim_tape_tensor(tape, 2, (int[]){n, out}, grad);
    if (!t) return SLIM_ERR_NOMEM;
    const float *bias = b ? b->data : NULL;
    if (tape->backend == SLIM_BACKEND_FAST)
        slim_blas_dense_forward(n, in, out, x->data, w->data, bias, t->data);
    else
        slim_ref_dense_forward(n, in, out, x->data, w->data, bias, t->data);
    if (grad) SLIM_TRY(slim_tape_record(tape, dense_backward, NULL, t, x, w, b));
    *y = t;
    return SLIM_OK;
}
