/* The define-by-run tape: nodes appended by ops, replayed in reverse. */
#include "slim/autograd.h"

#include <string.h>

void slim_tape_init(slim_tape *tape, slim_backend backend) {
    memset(tape, 0, sizeof *tape);
    slim_arena_init(&tape->arena);
    tape->backend = backend;
}

void slim_tape_reset(slim_tape *tape) {
    tape->last = NULL;
    tape->n_nodes = 0;
    slim_arena_reset(&tape->arena);
}

void slim_tape_free(slim_tape *tape) {
    slim_arena_free(&tape->arena);
    tape->last = NULL;
    tape->n_nodes = 0;
}

slim_tensor *slim_tape_tensor(slim_tape *tape, int ndim, const int *shape, int requires_grad) {
    return slim_tensor_new(&tape->arena, ndim, shape, requires_grad);
}

slim_tensor *slim_tape_wrap(slim_tape *tape, float *data, float *grad, int ndim, const int *shape) {
    slim_tensor *t = slim_arena_alloc(&tape->arena, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->data = data;
    t->grad = grad;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->requires_grad = grad != NULL;
    return t;
}

int slim_tape_needs_grad(const slim_tape *tape, const slim_tensor *a, const slim_tensor *b,
                         const slim_tensor *c) {
    if (!tape->recording) return 0;
    return (a && a->requires_grad) || (b && b->requires_grad) || (c && c->requires_grad);
}

slim_status slim_tape_record(slim_tape *tape, slim_backward_fn backward, void *ctx,
                             slim_tensor *out, slim_tensor *in0, slim_tensor *in1,
                             slim_tensor *in2) {
    slim_tape_node *node = slim_arena_alloc(&tape->arena, sizeof *node);
    if (!node) return SLIM_ERR_NOMEM;
    node->prev = tape->last;
    node->backward = backward;
    node->in[0] = in0;
    node->in[1] = in1;
    node->in[2] = in2;
    node->out = out;
    node->ctx = ctx;
    tape->last = node;
    tape->n_nodes++;
    return SLIM_OK;
}

slim_status slim_tape_backward(slim_tape *tape, slim_tensor *loss) {
    if (!loss || slim_tensor_numel(loss) != 1 || !loss->grad)
        return slim_error(SLIM_ERR_ARG, "backward: the loss must be a scalar that requires grad");
    loss->grad[0] = 1.0f;
    for (slim_tape_node *node = tape->last; node; node = node->prev)
        SLIM_TRY(node->backward(tape, node));
    return SLIM_OK;
}
