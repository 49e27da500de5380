/* slim kernels: the numeric work of every op, with no knowledge of autograd.
 *
 * Each op has a plain C reference kernel (slim_ref_*, src/kernels/ref/) that
 * is the truth in tests, and where it pays a fast kernel (slim_dnnl_*,
 * src/kernels/dnnl/): oneDNN for conv (layouts chosen by oneDNN, reordered
 * at the kernel's edges; Winograd where it wins) and pooling, OpenMP C for
 * batch norm (oneDNN 2.6's plain-layout BN measured 10-20x slower), and
 * OpenBLAS (slim_blas_*, src/kernels/blas.c) for dense layers.
 *
 * Conventions shared by all kernels:
 * - layouts are plain NCHW for 4-D data, N x F for dense data;
 * - conv weights are (Cout, Cin, KH, KW); dense weights are (Out, In), as in
 *   PyTorch, so y = x W^T + b;
 * - backward kernels ADD into gradient buffers (dx, dw, db, ...), never
 *   overwrite, and skip any gradient whose pointer is NULL;
 * - fast kernels take a cache handle (`slim_dnnl_cache **`, initially NULL)
 *   owned by the caller (one per layer). The cache holds primitives built for
 *   one shape; a call with a different shape rebuilds them. Free it with
 *   slim_dnnl_cache_free().
 */
#ifndef SLIM_KERNELS_H
#define SLIM_KERNELS_H

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slim_backend {
    SLIM_BACKEND_REF = 0, /* plain C reference kernels */
    SLIM_BACKEND_FAST,    /* oneDNN + OpenBLAS */
} slim_backend;

/* Geometry of a 2-D convolution (square padding and stride). */
typedef struct slim_conv_shape {
    int n, cin, h, w; /* input  x: (n, cin, h, w) */
    int cout, kh, kw; /* weight w: (cout, cin, kh, kw) */
    int stride, pad;  /* same in both spatial directions */
    int oh, ow;       /* output y: (n, cout, oh, ow), set by slim_conv_shape_finish:
                         oh = floor((h + 2 pad - kh) / stride) + 1, ow likewise */
} slim_conv_shape;

/* Fills oh/ow from the rest; SLIM_ERR_SHAPE when a size is not positive,
 * pad < 0, or the output would be empty. */
slim_status slim_conv_shape_finish(slim_conv_shape *s);

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

/* Softmax cross-entropy, mean over the batch. logits (n, k), labels in
 * [0, k). Returns the mean loss; prob (n, k) receives the softmax (kept for
 * backward). Backward: dlogits += scale * (prob - onehot) / n. */
float slim_ref_softmax_xent_forward(int n, int k, const float *logits, const int32_t *labels,
                                    float *prob);
void slim_ref_softmax_xent_backward(int n, int k, const float *prob, const int32_t *labels,
                                    float scale, float *dlogits);

/* Conv2d: x (n,cin,h,w), w (cout,cin,kh,kw), b (cout) or NULL, y (n,cout,oh,ow). */
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
 * Eval: normalise with running_mean/running_var. */
void slim_ref_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma,
                               const float *beta, float eps, float momentum, float *running_mean,
                               float *running_var, float *y, float *save_mean, float *save_var);
void slim_ref_bn_forward_eval(int n, int c, int hw, const float *x, const float *gamma,
                              const float *beta, float eps, const float *running_mean,
                              const float *running_var, float *y);
/* Backward of the training-mode forward. eps must be the forward's: the
 * normalisation 1/sqrt(save_var + eps) cannot be rebuilt without it. */
void slim_ref_bn_backward(int n, int c, int hw, const float *x, const float *gamma, float eps,
                          const float *save_mean, const float *save_var, const float *dy, float *dx,
                          float *dgamma, float *dbeta);

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

/* ---- Helpers of our inference convs (src/kernels/blocked.c) ---------- */

/* n floats, zeroed, 64-byte aligned (free with free); NULL when out of
 * memory. */
float *slim_floats64(size_t n);
/* bias (cout) or NULL (zeros) to *bias16 (round16(cout) floats) and biasmap
 * (cout, h, w) or NULL to *biasmap16 ((round16(cout) / 16, h, w, 16), or
 * NULL), both zero beyond cout. 0 when out of memory (both NULL then). */
int slim_blocked_bias_init(int cout, int h, int w, const float *bias, const float *biasmap,
                           float **bias16, float **biasmap16);

/* Padded planes: an h x w image in 16-channel blocks stored from row 1,
 * column 1 of a slim_padded_size(h) x slim_padded_size(w) plane whose other
 * pixels are zero, so that every 6x6 input patch of a Winograd tile (4x4
 * outputs, from row and column -1) lies inside it and no tile at the
 * border needs a zero-padded copy. Our convs can read (wino) and write
 * (wino, stem) them; the zeros are the caller's (written once). */
int slim_padded_size(int n);

/* Where an h x w image's pixels lie in one 16-channel block of its buffer,
 * in padded planes or not: `plane` floats per block, `stride` floats from
 * row to row, pixel (0, 0) at `origin`, `step` floats from pixel to pixel
 * (16). */
typedef struct slim_planes {
    size_t plane, stride, origin, step;
} slim_planes;
slim_planes slim_planes_of(int h, int w, int padded);
/* A narrow block: a last block of at most 8 real channels stored 8 floats
 * per pixel, in the first half of its plane (stride, origin and step
 * halved), between our stem and our Winograd in padded planes: their 8
 * lanes are all either reads or writes, and half the cache lines. */
slim_planes slim_narrow_planes(slim_planes p);

/* ---- Winograd F(4x4, 3x3) inference conv (src/kernels/wino.c) -------- */

/* A 3x3, stride 1, pad 1 conv with bias, biasmap, residual sum and ReLU
 * (each optional) on activations in 16-channel blocks (n, ceil(c/16), h, w,
 * 16): the input's padding channels do not reach the output, whose padding
 * channels are written as zeros (given a residual whose padding is zero).
 * The weights are transformed once, at init. */
typedef struct slim_wino_conv {
    int cin, cout, h, w, relu;
    int sum;        /* set after init: add what y holds (a residual) before the ReLU */
    int pool;       /* set after init: a 2x2, stride 2 max pool follows (not with sum):
                     * y is (n, ceil(cout/16), h/2, w/2, 16), rounded down */
    int in_padded;  /* set after init: x is in padded planes (slim_padded_size) */
    int in_narrow;  /* set after init, with in_padded and a last block of at most 8
                     * channels: that block of x is narrow (slim_narrow_planes) */
    int out_padded; /* set after init: y likewise (its border is left as it is) */
    float *u;       /* transformed weights: 36 points x cin (rounded up to even) x
                     * round16(cout), a last vector's by pairs of input channels (wino.c) */
    float *bias;    /* round16(cout), zero beyond cout */
    float *biasmap; /* NULL or (round16(cout) / 16, h, w, 16), zero beyond cout */
    float *inner;   /* NULL, or bias + the biasmap where that is the same at every pixel
                     * of rows and columns 1..h-2, 1..w-2 (as pruning's are): every
                     * tile's bias then, */
    float *edge;    /* and with it the biasmap minus that at the border pixels, zero
                     * elsewhere (the biasmap's layout): what a tile there adds */
} slim_wino_conv;

/* Nonzero when this CPU runs the kernel (it needs AVX-512F and VL). */
int slim_wino_available(void);
/* weights (cout, cin, 3, 3), bias (cout) or NULL, biasmap (cout, h, w) or
 * NULL (added before the ReLU). */
slim_status slim_wino_conv_init(slim_wino_conv *c, int cin, int cout, int h, int w,
                                const float *weights, const float *bias, const float *biasmap,
                                int relu);
void slim_wino_conv_free(slim_wino_conv *c);
/* Bytes of scratch a forward call on `threads` threads needs (whatever the
 * batch). */
size_t slim_wino_scratch_bytes(const slim_wino_conv *c, int threads);
/* x: (n, ceil(cin/16), h, w, 16), y: (n, ceil(cout/16), h, w, 16), each
 * in padded planes when in_padded, out_padded say so, and y pooled with
 * pool; the tiles are shared among `threads` OpenMP threads. */
slim_status slim_wino_conv_forward(const slim_wino_conv *c, int n, const float *x, float *y,
                                   void *scratch, int threads);

/* ---- Direct 3x3 inference conv for few input channels (src/kernels/stem.c) */

/* A 3x3, stride 1, pad 1 conv with bias, biasmap, residual sum and ReLU
 * (each optional) from plain (n, cin, h, w) input to 16-channel blocked
 * output (n, ceil(cout/16), h, w, 16), whose padding channels are written
 * as zeros (given a residual whose padding is zero). Meant for the first
 * conv of a network (1-3 input channels), where Winograd does not pay. */
typedef struct slim_stem_conv {
    int cin, cout, h, w, relu;
    int sum;        /* set after init: add what y holds (a residual) before the ReLU */
    int out_padded; /* set after init: y is in padded planes (slim_padded_size) */
    int out_narrow; /* set after init, with out_padded and a last block of at most 8
                     * channels: that block is narrow (slim_narrow_planes) */
    float *wt;      /* cin x 9 taps x round16(cout), zero beyond cout */
    float *bias;    /* round16(cout), zero beyond cout */
    float *biasmap; /* NULL or (round16(cout) / 16, h, w, 16), zero beyond cout */
} slim_stem_conv;

/* Nonzero when this CPU runs the kernel (it needs AVX-512F and VL). */
int slim_stem_available(void);
/* weights (cout, cin, 3, 3), bias (cout) or NULL, biasmap (cout, h, w) or
 * NULL (added before the ReLU). */
slim_status slim_stem_conv_init(slim_stem_conv *c, int cin, int cout, int h, int w,
                                const float *weights, const float *bias, const float *biasmap,
                                int relu);
void slim_stem_conv_free(slim_stem_conv *c);
/* Bytes of scratch a forward call on `threads` threads needs (whatever the
 * batch). */
size_t slim_stem_scratch_bytes(const slim_stem_conv *c, int threads);
/* x: (n, cin, h, w), y: (n, ceil(cout/16), h, w, 16); the n x h output rows
 * are shared among `threads` OpenMP threads. */
slim_status slim_stem_conv_forward(const slim_stem_conv *c, int n, const float *x, float *y,
                                   void *scratch, int threads);

/* ---- Global average pool + dense for inference (src/kernels/head.c) -- */

/* y = ReLU(W mean(x) + bias) (ReLU optional), the mean of each channel over
 * the h x w pixels of x in 16-channel blocks (n, ceil(c/16), h, w, 16),
 * y plain (n, k): a network's head, after its last conv. */
typedef struct slim_head {
    int c, k, h, w, relu;
    float *wt;   /* c x round16(k): the dense weights, transposed, zero beyond k */
    float *bias; /* round16(k), zero beyond k */
} slim_head;

/* Nonzero when this CPU runs the kernel (it needs AVX-512F and VL). */
int slim_head_available(void);
/* weights (k, c), bias (k) or NULL. */
slim_status slim_head_init(slim_head *hd, int c, int k, int h, int w, const float *weights,
                           const float *bias, int relu);
void slim_head_free(slim_head *hd);
/* x: (n, ceil(c/16), h, w, 16) (its padding channels are not read), y: (n, k);
 * one thread (the work is a few microseconds). */
slim_status slim_head_forward(const slim_head *hd, int n, const float *x, float *y);

/* ---- BLAS kernels (src/kernels/blas.c) -------------------------------- */

void slim_blas_dense_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                             float *y);
void slim_blas_dense_backward(int n, int in, int out, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db);

/* ---- oneDNN kernels (src/kernels/dnnl/) ------------------------------- */

typedef struct slim_dnnl_cache slim_dnnl_cache;
void slim_dnnl_cache_free(slim_dnnl_cache *cache);

/* Nonzero while a oneDNN primitive is executing (for allocation tests:
 * oneDNN 2.6 allocates small transient blocks inside every execute). */
int slim_dnnl_in_execute(void);
/* Buffers the oneDNN kernels have allocated so far (temporaries, scratchpad,
 * workspaces). They come from mmap, which a malloc counter does not see, so
 * allocation tests check that this stays put too. */
size_t slim_dnnl_buf_allocs(void);

/* Sets the number of threads used by oneDNN (OpenMP) and OpenBLAS, which
 * share one OpenMP pool; threads <= 0 means one per processor. */
void slim_set_threads(int threads);
int slim_get_threads(void);

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
                                       float *save_var);
slim_status slim_dnnl_bn_forward_eval(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      const float *running_mean, const float *running_var,
                                      float *y);
slim_status slim_dnnl_bn_backward(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                  const float *gamma, float eps, const float *save_mean,
                                  const float *save_var, const float *dy, float *dx, float *dgamma,
                                  float *dbeta);
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

#ifdef __cplusplus
}
#endif
#endif
