/* Elementwise add (residual connections): forward and backward. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

static void accumulate(size_t n, const float *dy, float *dx) {
    if (!dx) return;
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i];
}

static slim_status add_backward(slim_tape *tape, slim_tape_node *node) {
    (void)tape;
    size_t n = slim_tensor_numel(node->out);
    accumulate(n, node->out->grad, node->in[0]->grad);
    accumulate(n, node->out->grad, node->in[1]->grad);
    return SLIM_OK;
}

slim_status slim_op_add(slim_tape *tape, slim_tensor *a, slim_tensor *b, slim_tensor **y) {
    size_t n = slim_tensor_numel(a);
    if (n != slim_tensor_numel(b) || a->ndim != b->ndim)
        return slim_error(SLIM_ERR_SHAPE, "add: operands differ in shape");
    int grad = slim_tape_needs_grad(tape, a, b, NULL);
    slim_tensor *t = slim_tape_tensor(tape, a->ndim, a->shape, grad);
    if (!t) return SLIM_ERR_NOMEM;
    slim_ref_add_forward(n, a->data, b->data, t->data);
    if (grad) SLIM_TRY(slim_tape_record(tape, add_backward, NULL, t, a, b, NULL));
    *y = t;
    return SLIM_OK;
}
