/* Flatten (n, c, h, w) -> (n, c*h*w): a view sharing data and gradient, so
 * it needs no backward node: gradients written to y land in x. */
#include "slim/autograd.h"

slim_status slim_op_flatten(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    int n = x->shape[0];
    int f = (int)(slim_tensor_numel(x) / (size_t)n);
    slim_tensor *t = slim_tape_wrap(tape, x->data, x->grad, 2, (int[]){n, f});
    if (!t) return SLIM_ERR_NOMEM;
    t->requires_grad = x->requires_grad;
    *y = t;
    return SLIM_OK;
}
