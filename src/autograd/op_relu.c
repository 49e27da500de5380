/* ReLU and ReLU6: forward and backward (backward reads the forward output).
 *
 * The fast backend runs the loops below, shared out over OpenMP threads and
 * written without branches so that they vectorise: the reference backward
 * (`if (y > 0) dx += dy`) mispredicts on about every other element of a
 * real activation. The
 * results are the same as the reference kernels' bit for bit, except that
 * a -0 in dx where no gradient passes may become +0. */
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

// x, y: (n); y = min(max(x, 0), 6)
static void relu6_forward_loop(ptrdiff_t n, const float *x, float *y) {
#pragma omp for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = v < 6.0f ? v : 6.0f;
    }
}

// y, dy, dx: (n); dx += dy where 0 < y < 6 (no gradient at either kink)
static void relu6_backward_loop(ptrdiff_t n, const float *y, const float *dy, float *dx) {
#pragma omp for simd schedule(static)
    for (ptrdiff_t i = 0; i < n; i++) {
        float g = dy[i];
        dx[i] += y[i] > 0.0f && y[i] < 6.0f ? g : 0.0f;
    }
}

/* One clamp activation: its fast loops (above) and reference kernels. */
typedef struct activation {
    void (*forward_loop)(ptrdiff_t n, const float *x, float *y);
    void (*backward_loop)(ptrdiff_t n, const float *y, const float *dy, float *dx);
    void (*forward_ref)(size_t n, const float *x, float *y);
    void (*backward_ref)(size_t n, const float *y, const float *dy, float *dx);
} activation;

static const activation relu_fns = {relu_forward_loop, relu_backward_loop, slim_ref_relu_forward,
                                    slim_ref_relu_backward};
static const activation relu6_fns = {relu6_forward_loop, relu6_backward_loop,
                                     slim_ref_relu6_forward, slim_ref_relu6_backward};

static int go_parallel(size_t n) { return n >= RELU_PARALLEL_MIN && omp_get_max_threads() >= 2; }

static slim_status activation_backward(slim_tape *tape, slim_tape_node *node) {
    const activation *fns = node->ctx;
    slim_tensor *x = node->in[0], *y = node->out;
    if (!x->grad) return SLIM_OK;
    size_t n = slim_tensor_numel(y);
    if (tape->backend != SLIM_BACKEND_FAST) {
        fns->backward_ref(n, y->data, y->grad, x->grad);
    } else if (!go_parallel(n)) {
        fns->backward_loop((ptrdiff_t)n, y->data, y->grad, x->grad);
    } else {
#pragma omp parallel
        fns->backward_loop((ptrdiff_t)n, y->data, y->grad, x->grad);
    }
    return SLIM_OK;
}

static slim_status activation_op(const activation *fns, slim_tape *tape, slim_tensor *x,
                                 slim_tensor **y) {
    int grad = slim_tape_needs_grad(tape, x, NULL, NULL);
    slim_tensor *t = slim_tape_tensor(tape, x->ndim, x->shape, grad);
    if (!t) return SLIM_ERR_NOMEM;
    size_t n = slim_tensor_numel(x);
    if (tape->backend != SLIM_BACKEND_FAST) {
        fns->forward_ref(n, x->data, t->data);
    } else if (!go_parallel(n)) {
        fns->forward_loop((ptrdiff_t)n, x->data, t->data);
    } else {
#pragma omp parallel
        fns->forward_loop((ptrdiff_t)n, x->data, t->data);
    }
    /* The context is the static table, not arena memory: it outlives the tape. */
    if (grad) SLIM_TRY(slim_tape_record(tape, activation_backward, (void *)fns, t, x, NULL, NULL));
    *y = t;
    return SLIM_OK;
}

slim_status slim_op_relu(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    return activation_op(&relu_fns, tape, x, y);
}

slim_status slim_op_relu6(slim_tape *tape, slim_tensor *x, slim_tensor **y) {
    return activation_op(&relu6_fns, tape, x, y);
}
