/* slim autograd: the define-by-run tape and the differentiable ops.
 *
 * Each op called with tape->recording set and an input that requires a
 * gradient appends a node {backward, inputs, output, context} to the tape.
 * slim_tape_backward() walks the nodes in reverse; each backward ADDS into
 * its inputs' gradient buffers. Every activation, activation gradient, node
 * and context lives in the tape's arena, which slim_tape_reset() empties for
 * the next step: a steady-state step calls no malloc.
 *
 * The ops know nothing of layers or models: they take tensors, settings and,
 * for fast kernels, a cache handle owned by the caller.
 */
#ifndef SLIM_AUTOGRAD_H
#define SLIM_AUTOGRAD_H

#include "slim/core.h"
#include "slim/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_tape slim_tape;
typedef struct slim_tape_node slim_tape_node;
typedef slim_status (*slim_backward_fn)(slim_tape *tape, slim_tape_node *node);

struct slim_tape_node {
    slim_tape_node *prev; /* the node recorded before this one */
    slim_backward_fn backward;
    slim_tensor *in[3];
    slim_tensor *out;
    void *ctx; /* op-specific saved state, in the arena */
};

struct slim_tape {
    slim_arena arena;
    slim_tape_node *last;
    int n_nodes;
    int recording;        /* record ops for backward (training) */
    slim_backend backend; /* which kernels the ops use */
};

void slim_tape_init(slim_tape *tape, slim_backend backend);
/* Forgets all nodes and empties the arena (tensors made in it die). */
void slim_tape_reset(slim_tape *tape);
void slim_tape_free(slim_tape *tape);

/* A tensor in the tape's arena. */
slim_tensor *slim_tape_tensor(slim_tape *tape, int ndim, const int *shape, int requires_grad);
/* A tensor header over existing memory (e.g. a parameter and its gradient). */
slim_tensor *slim_tape_wrap(slim_tape *tape, float *data, float *grad, int ndim,
                            const int *shape);
/* Whether an op on these inputs must be recorded (recording and any input
 * requires a gradient). NULL inputs are ignored. */
int slim_tape_needs_grad(const slim_tape *tape, const slim_tensor *a, const slim_tensor *b,
                         const slim_tensor *c);
/* Appends a node. ctx must live in the tape's arena (or be NULL). */
slim_status slim_tape_record(slim_tape *tape, slim_backward_fn backward, void *ctx,
                             slim_tensor *out, slim_tensor *in0, slim_tensor *in1,
                             slim_tensor *in2);
/* Seeds d loss / d loss = 1 (loss must have one element and a grad buffer)
 * and runs every node's backward, newest first. */
slim_status slim_tape_backward(slim_tape *tape, slim_tensor *loss);

/* ---- ops (src/autograd/op_*.c) ---------------------------------------- */
/* Each writes its result to *y, a new tensor in the tape's arena. */

/* y = x W^T + b. x (n, in), w (out, in), b (out) or NULL. */
slim_status slim_op_dense(slim_tape *tape, slim_tensor *x, slim_tensor *w, slim_tensor *b,
                          slim_tensor **y);
slim_status slim_op_relu(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* (n, c, h, w) -> (n, c*h*w); shares x's data and gradient (no copy). */
slim_status slim_op_flatten(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* Mean softmax cross-entropy of logits (n, k) against labels; y has shape
 * (1). Labels outside [0, k) are an error. */
slim_status slim_op_softmax_xent(slim_tape *tape, slim_tensor *logits, const int32_t *labels,
                                 slim_tensor **y);
/* Conv2d, square kernel from w's shape; b (cout) or NULL; biasmap
 * (cout, oh, ow) or NULL, added at every output position. */
slim_status slim_op_conv2d(slim_tape *tape, slim_tensor *x, slim_tensor *w, slim_tensor *b,
                           slim_tensor *biasmap, int stride, int pad, slim_dnnl_cache **cache,
                           slim_tensor **y);
/* Batch norm over (n, c, h, w) or (n, c). training: batch statistics and a
 * running-statistics update; otherwise running statistics. */
slim_status slim_op_batchnorm(slim_tape *tape, slim_tensor *x, slim_tensor *gamma,
                              slim_tensor *beta, float *running_mean, float *running_var,
                              float eps, float momentum, int training, slim_dnnl_cache **cache,
                              slim_tensor **y);
slim_status slim_op_maxpool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                            slim_dnnl_cache **cache, slim_tensor **y);
slim_status slim_op_avgpool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                            slim_dnnl_cache **cache, slim_tensor **y);
/* Global average pool: (n, c, h, w) -> (n, c). */
slim_status slim_op_gap(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* y = a + b, same shapes. */
slim_status slim_op_add(slim_tape *tape, slim_tensor *a, slim_tensor *b, slim_tensor **y);

#ifdef __cplusplus
}
#endif
#endif
