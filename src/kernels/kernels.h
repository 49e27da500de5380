/* slim kernels (private): the numeric work of every op, with no knowledge of
 * autograd. The public part (backend choice, threads, the cache handle) is
 * slim/kernels.h; our own inference kernels are kernels/own.h.
 *
 * Each op has a plain C reference kernel (slim_ref_*, src/kernels/ref/) that
 * is the truth in tests, and where it pays a fast kernel (slim_dnnl_*,
 * src/kernels/dnnl/): oneDNN for conv (layouts chosen by oneDNN, reordered
 * at the kernel's edges; Winograd where it wins) and pooling, OpenMP C for
 * batch norm (oneDNN 2.6's plain-layout BN is many times slower),
 * and OpenBLAS (slim_blas_*, src/kernels/blas.c) for dense layers.
 *
 * Conventions shared by all kernels:
 * - layouts are plain NCHW for 4-D data, N x F for dense data;
 * - conv weights are (Cout, Cin / groups, KH, KW); dense weights are (Out, In),
 *   as in PyTorch, so y = x W^T + b;
 * - backward kernels ADD into gradient buffers (dx, dw, db, ...), never
 *   overwrite, and skip any gradient whose pointer is NULL;
 * - fast kernels take a cache handle (`slim_dnnl_cache **`, initially NULL)
 *   owned by the caller (one per layer). The cache holds primitives built for
 *   one shape; a call with a different shape rebuilds them. Free it with
 *   slim_dnnl_cache_free().
 */
#ifndef SLIM_KERNELS_KERNELS_H
#define SLIM_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "slim/core.h"
#include "slim/kernels.h"

/* Geometry of a 2-D convolution (square padding and stride). */
typedef struct slim_conv_shape {
    int n, cin, h, w; /* input  x: (n, cin, h, w) */
    int cout, kh, kw; /* weight w: (cout, cin / groups, kh, kw) */
    int stride, pad;  /* same in both spatial directions */
    int groups;       /* output channel o sees only the input channels of its group
                         o / (cout / groups); 0 is taken as 1 (a plain convolution) */
    int oh, ow;       /* output y: (n, cout, oh, ow), set by slim_conv_shape_finish:
                         oh = floor((h + 2 pad - kh) / stride) + 1, ow likewise */
} slim_conv_shape;

/* Fills oh/ow from the rest and sets groups 0 to 1; SLIM_ERR_SHAPE when a
 * size is not positive, pad < 0, groups does not divide cin and cout, or
 * the output would be empty. */
slim_status slim_conv_shape_finish(slim_conv_shape *s);

/* The number of groups (groups 0 is 1). */
static inline int slim_conv_groups(const slim_conv_shape *s) {
    return s->groups > 1 ? s->groups : 1;
}

/* Geometry of 2-D pooling (square window). */
typedef struct slim_pool_shape {
    int n, c, h, w; /* input (n, c, h, w) */
    int k, stride, pad;
    int oh, ow; /* floor((h + 2 pad - k) / stride) + 1 */
} slim_pool_shape;

/* Fills oh/ow; SLIM_ERR_SHAPE when a size is not positive, or pad >= k (so
 * that every window overlaps the input: max pooling always has a winner and
 * the average a nonzero divisor). */
slim_status slim_pool_shape_finish(slim_pool_shape *s);

/* ---- reference kernels (src/kernels/ref/) ----------------------------- */

/* Dense: x (n, in), w (out, in), b (out) or NULL, y (n, out). */
void slim_ref_dense_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                            float *y);
void slim_ref_dense_backward(int n, int in, int out, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db);

/* ReLU over n values; backward uses the forward OUTPUT y (y > 0 passes). */
void slim_ref_relu_forward(size_t n, const float *x, float *y);
void slim_ref_relu_backward(size_t n, const float *y, const float *dy, float *dx);
/* ReLU6 = min(max(x, 0), 6) over n values; backward uses the forward OUTPUT
 * y: the gradient passes where 0 < y < 6 (exactly where 0 < x < 6) and is 0
 * at both kinks, as PyTorch's hardtanh backward. */
void slim_ref_relu6_forward(size_t n, const float *x, float *y);
void slim_ref_relu6_backward(size_t n, const float *y, const float *dy, float *dx);

/* Channel concatenation of k inputs x[j] (n, c[j], hw) into y (n, sum c, hw),
 * in list order. Backward adds each slice of dy into dx[j] (NULL skipped);
 * an input listed twice (dx[i] == dx[j]) receives both slices. */
void slim_ref_concat_forward(int n, int k, const int *c, size_t hw, const float *const *x,
                             float *y);
void slim_ref_concat_backward(int n, int k, const int *c, size_t hw, const float *dy,
                              float *const *dx);

/* Softmax cross-entropy, mean over the batch. logits (n, k), labels in
 * [0, k). Returns the mean loss; prob (n, k) receives the softmax (kept for
 * backward). Backward: dlogits += scale * (prob - onehot) / n. */
float slim_ref_softmax_xent_forward(int n, int k, const float *logits, const int32_t *labels,
                                    float *prob);
void slim_ref_softmax_xent_backward(int n, int k, const float *prob, const int32_t *labels,
                                    float scale, float *dlogits);

/* Conv2d: x (n,cin,h,w), w (cout,cin/groups,kh,kw), b (cout) or NULL,
 * y (n,cout,oh,ow). */
void slim_ref_conv2d_forward(const slim_conv_shape *s, const float *x, const float *w,
                             const float *b, float *y);
void slim_ref_conv2d_backward(const slim_conv_shape *s, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db);

/* Batch norm over (n, c, hw) data, per channel c.
 * Training: normalise with the batch mean and the biased batch variance;
 *   save_mean/save_var (c) receive the batch mean and biased variance; the running
 *   statistics are updated as running = (1 - m) running + m batch, with the
 *   UNBIASED batch variance for running_var (PyTorch conventions); the
 *   running pointers may be NULL (no update).
 * Eval: normalise with running_mean/running_var.
 * sync (NULL: this batch alone): the statistics of the batches of every
 * replica together, sums exchanged through sync (slim/kernels.h); the
 * backward's dx likewise, its dgamma and dbeta this replica's share. The
 * only failure is sync's. */
slim_status slim_ref_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma,
                                      const float *beta, float eps, float momentum,
                                      float *running_mean, float *running_var, float *y,
                                      float *save_mean, float *save_var,
                                      const slim_allreduce *sync);
void slim_ref_bn_forward_eval(int n, int c, int hw, const float *x, const float *gamma,
                              const float *beta, float eps, const float *running_mean,
                              const float *running_var, float *y);
/* Backward of the training-mode forward. eps must be the forward's: the
 * normalisation 1/sqrt(save_var + eps) cannot be rebuilt without it. */
slim_status slim_ref_bn_backward(int n, int c, int hw, const float *x, const float *gamma,
                                 float eps, const float *save_mean, const float *save_var,
                                 const float *dy, float *dx, float *dgamma, float *dbeta,
                                 const slim_allreduce *sync);

/* Max pooling; argmax (n,c,oh,ow) receives the flat h*w index of each max
 * within its (n,c) plane (padding never wins). */
void slim_ref_maxpool_forward(const slim_pool_shape *s, const float *x, float *y, int32_t *argmax);
void slim_ref_maxpool_backward(const slim_pool_shape *s, const int32_t *argmax, const float *dy,
                               float *dx);
/* Average pooling, padding excluded from the divisor (count_include_pad=0). */
void slim_ref_avgpool_forward(const slim_pool_shape *s, const float *x, float *y);
void slim_ref_avgpool_backward(const slim_pool_shape *s, const float *dy, float *dx);
/* Global average pool: x (n,c,h,w) -> y (n,c). */
void slim_ref_gap_forward(int n, int c, int hw, const float *x, float *y);
void slim_ref_gap_backward(int n, int c, int hw, const float *dy, float *dx);
/* Elementwise add y = a + b (y may alias a or b); backward adds dy into
 * both da and db (either may be NULL). */
void slim_ref_add_forward(size_t n, const float *a, const float *b, float *y);
void slim_ref_add_backward(size_t n, const float *dy, float *da, float *db);

/* ---- BLAS kernels (src/kernels/blas.c) -------------------------------- */

void slim_blas_dense_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                             float *y);
void slim_blas_dense_backward(int n, int in, int out, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db);

/* ---- oneDNN kernels (src/kernels/dnnl/) ------------------------------- */

/* Same contracts as the reference kernels above. Backward kernels take the
 * forward's cache (they may build and cache their own primitives in it).
 * They return SLIM_ERR_SHAPE for inconsistent geometry, SLIM_ERR_ARG for a
 * missing buffer, SLIM_ERR_BACKEND when oneDNN fails. All fast kernels share
 * one oneDNN stream: call them from one thread at a time. */
slim_status slim_dnnl_conv2d_forward(slim_dnnl_cache **cache, const slim_conv_shape *s,
                                     const float *x, const float *w, const float *b, float *y);
slim_status slim_dnnl_conv2d_backward(slim_dnnl_cache **cache, const slim_conv_shape *s,
                                      const float *x, const float *w, const float *dy, float *dx,
                                      float *dw, float *db);
slim_status slim_dnnl_bn_forward_train(slim_dnnl_cache **cache, int n, int c, int hw,
                                       const float *x, const float *gamma, const float *beta,
                                       float eps, float momentum, float *running_mean,
                                       float *running_var, float *y, float *save_mean,
                                       float *save_var, const slim_allreduce *sync);
slim_status slim_dnnl_bn_forward_eval(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      const float *running_mean, const float *running_var,
                                      float *y);
slim_status slim_dnnl_bn_backward(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                  const float *gamma, float eps, const float *save_mean,
                                  const float *save_var, const float *dy, float *dx, float *dgamma,
                                  float *dbeta, const slim_allreduce *sync);
/* Max pooling: the fast kernel keeps oneDNN's workspace in its cache
 * instead of an argmax array, so backward must follow a forward of the same
 * shape on the same cache (SLIM_ERR_ARG otherwise). */
slim_status slim_dnnl_maxpool_forward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                      const float *x, float *y);
slim_status slim_dnnl_maxpool_backward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                       const float *dy, float *dx);
slim_status slim_dnnl_avgpool_forward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                      const float *x, float *y);
slim_status slim_dnnl_avgpool_backward(slim_dnnl_cache **cache, const slim_pool_shape *s,
                                       const float *dy, float *dx);

/* ---- test hooks ------------------------------------------------------- */

/* Nonzero while a oneDNN primitive is executing (for allocation tests:
 * oneDNN 2.6 allocates small transient blocks inside every execute). */
int slim_dnnl_in_execute(void);
/* Buffers the oneDNN kernels have allocated so far (temporaries, scratchpad,
 * workspaces). They come from mmap, which a malloc counter does not see, so
 * allocation tests check that this stays put too. */
size_t slim_dnnl_buf_allocs(void);

#endif
