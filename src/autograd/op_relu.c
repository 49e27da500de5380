/* ReLU: forward and backward (backward reads the forward output).
 *
 * The fast backend runs the loops below, shared out over OpenMP threads and
 * written without branches so that they vectorise: the reference backward
 * (`if (y > 0) dx += dy`) mispredicts on about every other element of a
 * real activation. The
 * results are the same as the reference kernels' bit for bit, except that
 * a -0 in dx where y <= 0 may become +0. */
#include "slim/autograd.h"

#include "kernels/kernels.h"

#include <omp.h>
#include <stddef.h>

/* Below this many values one thread is quicker than waking the team. */
#define RELU_PARALLEL_MIN 65536

/* The loops are worksharing constructs without their own parallel region:
 * called inside one they are shared out, called outside they run on the
 * calling thread alone. Small inputs and a single thread get no region: a
 * region of one thread (or one with a false `if` clause) makes libgomp
 * allocate a team on every entry, which a training step must not do. */

// x, y: (n)
static void relu_forward_loop(ptrdiff_t n, const float *x, float *y) {
#pragma omp for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// y, dy, dx: (n); dx += dy where y > 0
static void relu_backward_loop(ptrdiff_t n, const float *y, const float *dy, float *dx) {
#pragma omp for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded unconditionally, so that the select vectorises */
        dx[i] += y[i] > 0.0f ? g : 0.0f;
    }
}

static void relu_forward_fast(size_t n, const float *x, float *y) {
    ptrdiff_t count = (ptrdiff_t)n;
    if (count < RELU_PARALLEL_MIN || omp_get_max_threads() < 2) {
        relu_forward_loop(count, x, y);
        return;
    }
#pragma omp parallel
    relu_forward_loop(count, x, y);
}

static void relu_backward_fast(size_t n, const float *y, const float *dy, float *dx) {
    ptrdiff_t count = (ptrdiff_t)n;
    if (count < RELU_PARALLEL_MIN || omp_get_max_threads() < 2) {
        relu_backward_loop(count, y, dy, dx);
        return;
    }
#pragma omp parallel
    relu_backward_loop(count, y, dy, dx);
}

static slim_status relu_backward(slim_tape *tape, slim_tape_node *node) {
    slim_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return SLIM_OK;
    if (tape->backend == SLIM_BACKEND_FAST)
        relu_backward_fast(slim_tensor_numel(y), y->data, y->grad, x->grad);
    else
        slim_ref_relu_backward(slim_tensor_numel(y), y->data, y->grad, x->grad);
    return SLIM_OK;
}

slim_status slim_op_relu(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    int grad = slim_tape_needs_grad(tape, x, NULL, NULL);
    slim_tensor *t = slim_tape_tensor(tape, x->ndim, x->shape, grad);
    if (!t) return SLIM_ERR_NOMEM;
    if (tape->backend == SLIM_BACKEND_FAST)
        relu_forward_fast(slim_tensor_numel(x), x->data, t->data);
    else
        slim_ref_relu_forward(slim_tensor_numel(x), x->data, t->data);
    if (grad) SLIM_TRY(slim_tape_record(tape, relu_backward, NULL, t, x, NULL, NULL));
    *y = t;
    return SLIM_OK;
}
