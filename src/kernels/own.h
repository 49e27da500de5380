/* Our own inference kernels (private): the runtime's fast path on AVX-512.
 *
 *   wino (wino.c)  3x3, stride 1, pad 1 conv by Winograd F(4x4, 3x3):
 *                  x: (n, ceil(cin/16), h, w, 16) -> y: (n, ceil(cout/16), h, w, 16)
 *   stem (stem.c)  the same conv computed directly, for few input channels:
 *                  x: (n, cin, h, w) -> y: (n, ceil(cout/16), h, w, 16)
 *   head (head.c)  global average pool + dense:
 *                  x: (n, ceil(c/16), h, w, 16) -> y: (n, k)
 *
 * Layouts: kernels/blocked.h. Lifecycle of each, all settings given up
 * front in a descriptor (nothing is set afterwards):
 *   X_create(&desc, &k)           validates, copies and transforms the weights
 *   X_scratch_bytes(k, threads)   scratch a run needs (whatever the batch)
 *   X_run(k, n, x, y, ...)        any number of times, any batch n
 *   X_destroy(k)                  NULL is safe
 * A create that fails returns a clear error, leaves *out NULL and holds
 * nothing. Runs need AVX-512F and VL (X_available; SLIM_ERR_BACKEND
 * otherwise); creation does not.
 *
 * The convs add, each optional, a bias (cout), a biasmap (cout, h, w: a
 * bias per channel and position), a residual sum (what y already holds)
 * and a ReLU, in that order. The input's padding channels never reach the
 * output; the output's are written as zeros (given a residual whose padding
 * is zero).
 */
#ifndef SLIM_KERNELS_OWN_H
#define SLIM_KERNELS_OWN_H

#include <stddef.h>

#include "kernels/blocked.h"
#include "slim/core.h"

/* Nonzero when this CPU runs our kernels (AVX-512F and VL). */
int own_kernels_available(void);

/* ---- Winograd F(4x4, 3x3) conv (wino.c) ------------------------------ */

typedef struct wino_desc {
    int cin, cout, h, w;  /* all >= 1 */
    const float *weights; /* (cout, cin, 3, 3), required */
    const float *bias;    /* (cout) or NULL */
    const float *biasmap; /* (cout, h, w) or NULL */
    int relu;             /* a ReLU last */
    int sum;              /* add what y holds (a residual) before the ReLU */
    int pool;             /* a 2x2, stride 2 max pool follows (not with sum; h, w >= 2):
                           * y is (n, ceil(cout/16), h/2, w/2, 16), rounded down */
    int in_padded;        /* x is in padded planes */
    int in_narrow;        /* with in_padded, and cin % 16 in 1..8: x's last block is narrow */
    int out_padded;       /* y is in padded planes (its border is left as it is) */
} wino_desc;
typedef struct wino_conv wino_conv;

slim_status wino_create(const wino_desc *d, wino_conv **out);
void wino_destroy(wino_conv *c);
/* The descriptor c was created from, its pointers NULL (not kept). */
const wino_desc *wino_settings(const wino_conv *c);
size_t wino_scratch_bytes(const wino_conv *c, int threads);
/* The tiles are shared among `threads` OpenMP threads; scratch: at least
 * wino_scratch_bytes(c, threads) bytes. */
slim_status wino_run(const wino_conv *c, int n, const float *x, float *y, void *scratch,
                     int threads);

/* ---- Direct 3x3 conv for few input channels (stem.c) ----------------- */

typedef struct stem_desc {
    int cin, cout, h, w;  /* all >= 1 */
    const float *weights; /* (cout, cin, 3, 3), required */
    const float *bias;    /* (cout) or NULL */
    const float *biasmap; /* (cout, h, w) or NULL */
    int relu;             /* a ReLU last */
    int sum;              /* add what y holds (a residual) before the ReLU */
    int out_padded;       /* y is in padded planes (its border is left as it is) */
    int out_narrow;       /* with out_padded, and cout % 16 in 1..8: y's last block is narrow */
} stem_desc;
typedef struct stem_conv stem_conv;

slim_status stem_create(const stem_desc *d, stem_conv **out);
void stem_destroy(stem_conv *c);
/* The descriptor c was created from, its pointers NULL (not kept). */
const stem_desc *stem_settings(const stem_conv *c);
size_t stem_scratch_bytes(const stem_conv *c, int threads);
/* The n x h output rows are shared among `threads` OpenMP threads. */
slim_status stem_run(const stem_conv *c, int n, const float *x, float *y, void *scratch,
                     int threads);

/* ---- Global average pool + dense (head.c) ---------------------------- */

/* y = ReLU(W mean(x) + bias), the mean of each channel over its h x w
 * pixels: a network's head, after its last conv. */
typedef struct head_desc {
    int c, k, h, w;       /* all >= 1 */
    const float *weights; /* (k, c), required */
    const float *bias;    /* (k) or NULL */
    int relu;
} head_desc;
typedef struct head_kernel head_kernel;

slim_status head_create(const head_desc *d, head_kernel **out);
void head_destroy(head_kernel *hd);
/* One thread (the work is a few microseconds); x's padding channels are
 * not read. */
slim_status head_run(const head_kernel *hd, int n, const float *x, float *y);

#endif
