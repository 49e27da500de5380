/* Our own inference kernels (private): the runtime's fast path on AVX-512
 * and on AVX2 + FMA.
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
 * nothing.
 *
 * Builds: each kernel is written once (kernels/simd.h) and built per
 * target, an own_impl each: 16 lanes for AVX-512F/VL, 8 for AVX2 + FMA.
 * A descriptor names the build to run (impl); NULL takes the best one
 * this process may use (own_isa_active), and none (generic) is kept too:
 * runs then return SLIM_ERR_BACKEND, as they do when the CPU lacks what
 * the build needs. Creation needs no particular CPU.
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

/* The instruction sets our kernels are built for, in order. */
typedef enum own_isa { OWN_ISA_GENERIC = 0, OWN_ISA_AVX2 = 1, OWN_ISA_AVX512 = 2 } own_isa;

/* One build of our kernels (kernels/own_impl.h). */
typedef struct own_impl own_impl;

/* The best set this CPU runs: AVX-512 is F and VL, AVX2 is AVX2 and FMA. */
own_isa own_isa_cpu(void);
/* The cap SLIM_ISA sets (avx512, avx2 or generic, any case; unset or empty:
 * no cap, OWN_ISA_AVX512), read once, when first asked. A bad value: an
 * error naming it and SLIM_ERR_ARG (each time), *cap then generic. */
slim_status own_isa_env(own_isa *cap);
/* The lower of the CPU's and SLIM_ISA's: what our kernels run (generic
 * with a bad SLIM_ISA). */
own_isa own_isa_active(void);
/* "avx512", "avx2" or "generic". */
const char *own_isa_name(own_isa isa);
/* The build for isa (NULL for generic); the set a build needs of the CPU
 * and its name. */
const own_impl *own_impl_for(own_isa isa);
own_isa own_impl_isa(const own_impl *impl);
const char *own_impl_name(const own_impl *impl);
/* Whether the build has our Winograd. */
int own_impl_has_wino(const own_impl *impl);
/* SLIM_OK when impl runs on this CPU, else SLIM_ERR_BACKEND with a message
 * naming `kernel`. */
slim_status own_impl_check(const own_impl *impl, const char *kernel);

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
    const own_impl *impl; /* the build to run, NULL: own_impl_for(own_isa_active()) */
} wino_desc;
typedef struct wino_conv wino_conv;

slim_status wino_create(const wino_desc *d, wino_conv **out);
void wino_destroy(wino_conv *c);
/* The descriptor c was created from, its pointers NULL (not kept) but
 * impl, the build it runs (NULL: none). */
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
    const own_impl *impl; /* the build to run, NULL: own_impl_for(own_isa_active()) */
} stem_desc;
typedef struct stem_conv stem_conv;

slim_status stem_create(const stem_desc *d, stem_conv **out);
void stem_destroy(stem_conv *c);
/* The descriptor c was created from, its pointers NULL (not kept) but
 * impl, the build it runs (NULL: none). */
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
    const own_impl *impl; /* the build to run, NULL: own_impl_for(own_isa_active()) */
} head_desc;
typedef struct head_kernel head_kernel;

slim_status head_create(const head_desc *d, head_kernel **out);
void head_destroy(head_kernel *hd);
/* The descriptor hd was created from, its pointers NULL but impl. */
const head_desc *head_settings(const head_kernel *hd);
/* One thread (the work is a few microseconds); x's padding channels are
 * not read. */
slim_status head_run(const head_kernel *hd, int n, const float *x, float *y);

#endif
