/* Dense layers on OpenBLAS, and the thread count shared by OpenBLAS and
 * oneDNN (both run on the one OpenMP pool). */
#include "kernels/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* x: (n, in), w: (out, in), b: (out) or NULL, y: (n, out).
 * y = x w^T + b: y starts as b broadcast over the rows (or 0) and the GEMM
 * adds onto it with beta = 1. */
void slim_blas_dense_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                             float *y) {
    if (n <= 0 || out <= 0) return;
    for (int i = 0; i < n; i++) {
        if (b)
            memcpy(y + (size_t)i * out, b, (size_t)out * sizeof *y);
        else
            memset(y + (size_t)i * out, 0, (size_t)out * sizeof *y);
    }
    if (in <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 1.0f, y,
                out);
}

/* dy: (n, out). Adds (beta = 1 in every GEMM):
 *   dx (n, in)   += dy w,
 *   dw (out, in) += dy^T x,
 *   db (out)     += column sums of dy. */
void slim_blas_dense_backward(int n, int in, int out, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db) {
    if (n <= 0 || out <= 0) return;
    if (db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(size_t)i * out + o];
    if (in <= 0) return;
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, w, in,
                    1.0f, dx, in);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f,
                    dw, in);
}

/* threads <= 0 means one per processor. */
void slim_set_threads(int threads) {
    if (threads <= 0) threads = omp_get_num_procs();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

int slim_get_threads(void) { return omp_get_max_threads(); }
