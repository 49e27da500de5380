/* Flatten (n, c, h, w) -> (n, c*h*w): a view sharing x's data. A gradient
 * buffer of the caller's is shared as well, and no node is needed. A tape
 * tensor's gradient lives in the pool only while it is live (autograd.h),
 * so the view gets a buffer of its own and a view node: in backward the tape
 * hands y's buffer over to x (no copy), or adds y's gradient into x's when
 * another consumer of x has given it one already. */
#include "slim/autograd.h"

static slim_status view_backward(slim_tape *tape, slim_tape_node *node) {
    (void)tape;
    slim_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) {
        x->grad = y->grad; /* the buffer belongs to x from here */
        y->grad = NULL;
        return SLIM_OK;
    }
    size_t n = slim_tensor_numel(y);
    for (size_t i = 0; i < n; i++)
        x->grad[i] += y->grad[i];
    return SLIM_OK;
}

slim_status slim_op_flatten(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    int n = x->shape[0];
    int shape[2] = {n, (int)(slim_tensor_numel(x) / (size_t)n)};
    int pooled = slim_tape_needs_grad(tape, x, NULL, NULL) &&
                 (!x->grad || slim_tape_owns_grad(tape, x->grad));
    slim_tensor *t = slim_tape_wrap(tape, x->data, pooled ? NULL : x->grad, 2, shape);
    if (!t) return SLIM_ERR_NOMEM;
    t->requires_grad = x->requires_grad;
    if (pooled) {
        SLIM_TRY(slim_tape_ensure_grad(tape, t));
        SLIM_TRY(slim_tape_record(tape, view_backward, NULL, t, x, NULL, NULL));
        tape->last->view = 1;
    }
    *y = t;
    return SLIM_OK;
}
