/* ReLU: forward and backward (backward reads the forward output). */
#include "slim/autograd.h"

static slim_status relu_backward(slim_tape *tape, slim_tape_node *node) {
    (void)tape;
    slim_tensor *x = node->in[0], *y = node->out;
    slim_ref_relu_backward(slim_tensor_numel(y), y->data, y->grad, x->grad);
    return SLIM_OK;
}

slim_status slim_op_relu(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    int grad = slim_tape_needs_grad(tape, x, NULL, NULL);
    slim_tensor *t = slim_tape_tensor(tape, x->ndim, x->shape, grad);
    if (!t) return SLIM_ERR_NOMEM;
    slim_ref_relu_forward(slim_tensor_numel(x), x->data, t->data);
    if (grad) SLIM_TRY(slim_tape_record(tape, relu_backward, NULL, t, x, NULL, NULL));
    *y = t;
    return SLIM_OK;
}
