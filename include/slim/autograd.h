/* slim autograd: the define-by-run tape and the differentiable ops.
 *
 * Each op called with tape->recording set and an input that requires a
 * gradient appends a node {backward, inputs, output, context} to the tape.
 * slim_tape_backward() walks the nodes in reverse; each backward ADDS into
 * its inputs' gradient buffers. Every activation, node and context lives in
 * the tape's arena, which slim_tape_reset() empties for the next step.
 *
 * Gradients of the tape's own tensors (activation gradients) live in the
 * tape's gradient pool and only while they can matter, which is what keeps
 * a training step's memory near its activations alone (docs/ARCHITECTURE.md,
 * "Memory"):
 *   - an op's output gets a zeroed gradient buffer when it is made, so that
 *     a caller may seed it (the loss; a test's output);
 *   - once another recorded op consumes the tensor, that buffer goes back to
 *     the pool (nothing can have been added to it yet) and the tensor's grad
 *     is NULL while requires_grad stays 1;
 *   - slim_tape_backward() gives each node's inputs (and its output, if
 *     none of its consumers did) a zeroed buffer just before the node runs,
 *     and returns the output's buffer right after: every consumer of a
 *     tensor runs before its producer, so the output's gradient is complete
 *     and dead by then.
 * After backward only the gradients of tensors made outside the tape
 * (parameters, wrapped buffers) and of tensors without a producer remain;
 * set keep_grads to keep every gradient until the next reset (to inspect
 * activation gradients; the memory of the old scheme). Gradients of wrapped
 * tensors are the caller's buffers and never touched by the pool. Both the
 * arena and the pool grow during the first steps and then reuse one block
 * each: a steady-state step calls no malloc.
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
    slim_tensor **more; /* inputs after in[2] (n_more, in the arena): concat's */
    int n_more;
    slim_tensor *out;
    void *ctx; /* op-specific saved state, in the arena */
    int view;  /* out is a view of in[0] (flatten): backward hands out's gradient
                  buffer to in[0] when in[0] has none yet, instead of adding */
};

/* One block of the gradient pool's layout. */
typedef struct slim_grad_block {
    size_t offset, size; /* bytes, in the layout (64-byte multiples) */
    float *ptr;          /* its memory: base + offset, or a spill (see below) */
    int used;
    int spilled; /* ptr is an allocation of its own: the block lay beyond base */
} slim_grad_block;

/* A chunk of fresh memory (see slim_grad_pool). */
typedef struct slim_grad_chunk {
    char *ptr;  /* page-aligned, cap bytes */
    size_t cap; /* bytes */
    size_t used;
} slim_grad_chunk;

#define SLIM_GRAD_CHUNKS 24

/* The gradient pool.
 *
 * Buffers needed during backward are blocks laid out first-fit (best fit,
 * coalescing) over one buffer `base`, and zeroed when handed out. The
 * layout does not depend on the buffer's size, so a block that lies beyond
 * it gets memory of its own for now, and the next slim_tape_reset() grows
 * base to the step's high water: a step that repeats the last one's
 * sequence of sizes allocates nothing.
 *
 * Buffers handed out outside backward (an op's output) come from fresh
 * memory instead: anonymous pages that read as zero and cost nothing until
 * written, handed out in order and made fresh again at reset (the kernel
 * drops the few pages written, e.g. the loss's). A training step writes
 * none of them but the loss's, so they need neither memory nor a memset.
 * It grows by chunks during the first steps and is one chunk after a
 * reset. */
typedef struct slim_grad_pool {
    char *base; /* 64-byte aligned, cap bytes */
    size_t cap;
    slim_grad_block *blocks; /* (n_blocks) by offset, tiling [0, end) */
    int n_blocks, max_blocks;
    size_t end;                              /* bytes of layout in use (the last block's end) */
    size_t high_water;                       /* the largest `end` since the last reset */
    size_t live;                             /* bytes in used blocks */
    slim_grad_chunk fresh[SLIM_GRAD_CHUNKS]; /* (n_fresh) the newest last */
    int n_fresh;
    size_t fresh_used; /* bytes of fresh memory handed out since the last reset */
    size_t n_mallocs;  /* allocations so far (base, spills, chunks, block lists), for tests */
} slim_grad_pool;

struct slim_tape {
    slim_arena arena;
    slim_tape_node *last;
    int n_nodes;
    int recording;        /* record ops for backward (training) */
    int keep_grads;       /* 1: no gradient buffer goes back before the next reset */
    int in_backward;      /* set while slim_tape_backward runs */
    slim_backend backend; /* which kernels the ops use */
    slim_grad_pool grads; /* gradients of the tape's own tensors */
    /* Data-parallel training: batch norm's statistics over every replica's
     * batch (slim/kernels.h), or NULL for this batch alone. */
    const slim_allreduce *bn_sync;
};

void slim_tape_init(slim_tape *tape, slim_backend backend);
/* Forgets all nodes and empties the arena (tensors made in it die). */
void slim_tape_reset(slim_tape *tape);
void slim_tape_free(slim_tape *tape);

/* A tensor in the tape's arena; with requires_grad, its gradient is a
 * zeroed buffer of the pool (see the top of this file). */
slim_tensor *slim_tape_tensor(slim_tape *tape, int ndim, const int *shape, int requires_grad);
/* A tensor header over existing memory (e.g. a parameter and its gradient).
 * The gradient, if any, stays the caller's. */
slim_tensor *slim_tape_wrap(slim_tape *tape, float *data, float *grad, int ndim, const int *shape);
/* Gives t a zeroed gradient buffer from the pool when it requires a
 * gradient and has none (t may be NULL). */
slim_status slim_tape_ensure_grad(slim_tape *tape, slim_tensor *t);
/* Whether `grad` is a buffer of the tape's gradient pool (not the caller's). */
int slim_tape_owns_grad(const slim_tape *tape, const float *grad);
/* Whether an op on these inputs must be recorded (recording and any input
 * requires a gradient). NULL inputs are ignored. */
int slim_tape_needs_grad(const slim_tape *tape, const slim_tensor *a, const slim_tensor *b,
                         const slim_tensor *c);
/* Appends a node. ctx must live in the tape's arena (or be NULL). The
 * inputs' pool gradients go back to the pool (unless keep_grads). */
slim_status slim_tape_record(slim_tape *tape, slim_backward_fn backward, void *ctx,
                             slim_tensor *out, slim_tensor *in0, slim_tensor *in1,
                             slim_tensor *in2);
/* slim_tape_record for an op of n inputs (n >= 1; a tensor may appear more
 * than once): in[0..2] hold the first three (NULL past n), `more` the rest. */
slim_status slim_tape_record_n(slim_tape *tape, slim_backward_fn backward, void *ctx,
                               slim_tensor *out, int n, slim_tensor *const *ins);
/* Seeds d loss / d loss = 1 (loss must have one element and require a
 * gradient) and runs every node's backward, newest first, managing the
 * pool's gradient buffers as described at the top. */
slim_status slim_tape_backward(slim_tape *tape, slim_tensor *loss);
/* slim_tape_backward seeding d loss / d loss = seed: a replica of a
 * data-parallel step weights its share of the batch's mean loss (n_r / n). */
slim_status slim_tape_backward_seed(slim_tape *tape, slim_tensor *loss, float seed);

/* ---- ops (src/autograd/op_*.c) ---------------------------------------- */
/* Each writes its result to *y, a new tensor in the tape's arena. */

/* y = x W^T + b. x (n, in), w (out, in), b (out) or NULL. */
slim_status slim_op_dense(slim_tape *tape, slim_tensor *x, slim_tensor *w, slim_tensor *b,
                          slim_tensor **y);
slim_status slim_op_relu(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* (n, c, h, w) -> (n, c*h*w); shares x's data (no copy). A gradient of the
 * caller's is shared too. For a tensor of the tape, a view node hands y's
 * gradient buffer over to x in backward (added instead when x has other
 * consumers). */
slim_status slim_op_flatten(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* Mean softmax cross-entropy of logits (n, k) against labels; y has shape
 * (1). Labels outside [0, k) are an error. */
slim_status slim_op_softmax_xent(slim_tape *tape, slim_tensor *logits, const int32_t *labels,
                                 slim_tensor **y);
/* Conv2d, square kernel from w's shape; x (n, cin, h, w), w (cout,
 * cin/groups, k, k): the channels split into `groups` groups convolved on
 * their own (1: plain; cin = cout = groups: depthwise); b (cout) or NULL;
 * biasmap (cout, oh, ow) or NULL, added at every output position. */
slim_status slim_op_conv2d(slim_tape *tape, slim_tensor *x, slim_tensor *w, slim_tensor *b,
                           slim_tensor *biasmap, int stride, int pad, int groups,
                           slim_dnnl_cache **cache, slim_tensor **y);
/* Batch norm over (n, c, h, w) or (n, c). training: batch statistics and a
 * running-statistics update; otherwise running statistics. */
slim_status slim_op_batchnorm(slim_tape *tape, slim_tensor *x, slim_tensor *gamma,
                              slim_tensor *beta, float *running_mean, float *running_var, float eps,
                              float momentum, int training, slim_dnnl_cache **cache,
                              slim_tensor **y);
slim_status slim_op_maxpool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                            slim_dnnl_cache **cache, slim_tensor **y);
slim_status slim_op_avgpool(slim_tape *tape, slim_tensor *x, int k, int stride, int pad,
                            slim_dnnl_cache **cache, slim_tensor **y);
/* Global average pool: (n, c, h, w) -> (n, c). */
slim_status slim_op_gap(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* y = a + b, same shapes. */
slim_status slim_op_add(slim_tape *tape, slim_tensor *a, slim_tensor *b, slim_tensor **y);
/* y = min(max(x, 0), 6); the gradient passes where 0 < x < 6 only (0 at
 * both kinks, as PyTorch's hardtanh). */
slim_status slim_op_relu6(slim_tape *tape, slim_tensor *x, slim_tensor **y);
/* Most inputs of one concat. */
#define SLIM_CONCAT_MAX_INPUTS 16
/* Channel concatenation of k (1..SLIM_CONCAT_MAX_INPUTS) tensors (n, c_j, h, w)
 * of equal n, h, w into (n, sum c_j, h, w), in list order; a tensor may be
 * listed more than once (its gradients add). A 2-D (n, f) input counts as
 * (n, f, 1, 1); the output is 2-D (n, sum f) when every input is. */
slim_status slim_op_concat(slim_tape *tape, int k, slim_tensor *const *xs, slim_tensor **y);

#ifdef __cplusplus
}
#endif
#endif
