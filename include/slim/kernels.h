/* slim kernels: what a library user chooses about them.
 *
 * The ops (slim/autograd.h) run either plain C reference kernels, the truth
 * in tests, or fast ones (oneDNN, OpenBLAS, and our own for inference). The
 * fast kernels share one OpenMP pool, sized with slim_set_threads, and keep
 * their oneDNN primitives in a cache handle per layer (`slim_dnnl_cache **`,
 * initially NULL) owned by the caller: a call with a different shape
 * rebuilds them; free it with slim_dnnl_cache_free(). The kernels
 * themselves are internal (src/kernels/kernels.h).
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

typedef struct slim_dnnl_cache slim_dnnl_cache;

/* A sum over the replicas of a data-parallel run (slim/dist.h): sum(ctx, v,
 * n) replaces v[0..n) by the elementwise sum of every replica's v, the same
 * bits on each. Batch norm takes one to compute its statistics over the
 * replicas' batches together (slim_tape.bn_sync). */
typedef struct slim_allreduce {
    slim_status (*sum)(void *ctx, double *v, size_t n);
    void *ctx;
} slim_allreduce;
void slim_dnnl_cache_free(slim_dnnl_cache *cache);

/* Sets the number of threads used by oneDNN (OpenMP) and OpenBLAS, which
 * share one OpenMP pool; threads <= 0 means one per processor. */
void slim_set_threads(int threads);
int slim_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
