/* Batch normalisation, fast kernels, with slim's (PyTorch's) conventions.
 *
 * Written in C rather than on oneDNN: on the plain NCHW layout of slim's
 * buffers oneDNN 2.6 picks its generic ncsp_bnorm implementation, far
 * slower than the few passes over the data the work needs
 * (docs/PERFORMANCE.md, "Training").
 *
 * Every pass walks the data in memory order, one (image, channel) plane of
 * hw floats at a time, the planes shared out over OpenMP threads: walking
 * channel by channel instead (n short planes far apart) defeats the
 * hardware prefetcher. A pass that reduces writes one
 * partial sum per plane (float within a plane, with 16 vectorised partial
 * sums; stored as double) into a cache buffer, and a short loop then adds
 * each channel's n partials in double, in a fixed order: the result does
 * not depend on the thread count. The variance is taken about the mean (a
 * second pass), not as E[x^2] - E[x]^2, so there is no cancellation. */
#include "kernels/dnnl/dnnl_common.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Below this many values one thread is quicker than waking the team. */
#define BN_PARALLEL_MIN 32768

/* Reductions over a plane keep BN_LANES independent partial sums, so that
 * the compiler vectorises them into several registers and the adds do not
 * wait on each other. */
#define BN_LANES 16

static slim_status bn_prepare(slim_dnnl_cache **cache, int n, int c, int hw, float eps) {
    if (n <= 0 || c <= 0 || hw <= 0)
        return slim_error(SLIM_ERR_SHAPE, "batchnorm: sizes must be positive (n=%d c=%d hw=%d)", n,
                          c, hw);
    if (!(eps > 0.0f)) return slim_error(SLIM_ERR_ARG, "batchnorm: eps must be > 0");
    int key[SLIM_DNNL_KEY_LEN] = {n, c, hw};
    memcpy(&key[3], &eps, sizeof eps);
    return slim_dnnl_cache_prepare(cache, SLIM_DNNL_KIND_BN, key);
}

/* The cache's scratch for one call: `per_plane` doubles for each of the n c
 * planes, then `per_channel` doubles for each channel and one more. */
static double *bn_stats(slim_dnnl_cache *cache, int n, int c, int per_plane, int per_channel) {
    size_t count = (size_t)n * c * per_plane + (size_t)c * per_channel + 1;
    return slim_dnnl_buf(cache, SLIM_DNNL_BUF_BN_STATS, count * sizeof(double));
}

// p: (hw)
static inline float plane_sum(const float *p, int hw) {
    float acc[BN_LANES] = {0};
    int k = 0;
    for (; k + BN_LANES <= hw; k += BN_LANES)
        for (int l = 0; l < BN_LANES; l++)
            acc[l] += p[k + l];
    float s = 0.0f;
    for (; k < hw; k++)
        s += p[k];
    for (int l = 0; l < BN_LANES; l++)
        s += acc[l];
    return s;
}

// p: (hw); sum of (p - mean)^2
static inline float plane_sqdev(const float *p, int hw, float mean) {
    float acc[BN_LANES] = {0};
    int k = 0;
    for (; k + BN_LANES <= hw; k += BN_LANES)
        for (int l = 0; l < BN_LANES; l++) {
            float d = p[k + l] - mean;
            acc[l] += d * d;
        }
    float s = 0.0f;
    for (; k < hw; k++) {
        float d = p[k] - mean;
        s += d * d;
    }
    for (int l = 0; l < BN_LANES; l++)
        s += acc[l];
    return s;
}

// x, dy: (hw); sums of dy and of dy (x - mean)
static inline void plane_dsums(const float *x, const float *dy, int hw, float mean, float *sdy,
                               float *sdyx) {
    float a[BN_LANES] = {0}, b[BN_LANES] = {0};
    int k = 0;
    for (; k + BN_LANES <= hw; k += BN_LANES)
        for (int l = 0; l < BN_LANES; l++) {
            a[l] += dy[k + l];
            b[l] += dy[k + l] * (x[k + l] - mean);
        }
    float sa = 0.0f, sb = 0.0f;
    for (; k < hw; k++) {
        sa += dy[k];
        sb += dy[k] * (x[k] - mean);
    }
    for (int l = 0; l < BN_LANES; l++) {
        sa += a[l];
        sb += b[l];
    }
    *sdy = sa;
    *sdyx = sb;
}

// x, y: (hw); y = (x - mean) * scale + shift
static inline void plane_affine(const float *x, float *y, int hw, float mean, float scale,
                                float shift) {
#pragma omp simd
    for (int k = 0; k < hw; k++)
        y[k] = (x[k] - mean) * scale + shift;
}

/* Sum over the n images of channel j's per-plane values part[i c + j]
 * (stride `per_plane` doubles per plane, offset `at`), in image order. */
static inline double bn_channel_sum(const double *part, int n, int c, int j, int per_plane,
                                    int at) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += part[((size_t)i * c + j) * per_plane + at];
    return s;
}

/* The arguments of a call, for the bodies below. */
typedef struct bn_args {
    int n, c, hw;
    float eps, momentum;
    const float *x, *gamma, *beta, *dy;   // x, dy: (n, c, hw); gamma, beta: (c)
    const float *mean_in, *var_in;        // (c) save_* (backward) or running_* (eval)
    float *y, *save_mean, *save_var, *dx; // y, dx: (n, c, hw); save_*: (c)
    float *running_mean, *running_var;    // (c) or NULL
    float *dgamma, *dbeta;                // (c) or NULL
    double *part, *chan; // (n c per-plane values), (per-channel values), cache scratch
} bn_args;

/* The bodies are worksharing loops without their own parallel region:
 * called inside one they are shared out, called outside they run on the
 * calling thread alone (see slim_dnnl_go_parallel). */
static void bn_run(void (*body)(const bn_args *), const bn_args *a) {
    if (!slim_dnnl_go_parallel((double)a->n * a->c * a->hw, BN_PARALLEL_MIN)) {
        body(a);
        return;
    }
#pragma omp parallel
    body(a);
}

/* The training forward in three passes, each a worksharing loop over the
 * planes and one over the channels: part holds one value per plane; chan
 * the count m, the sums of x (then the mean) and the sums of squared
 * deviations (then gamma / sqrt(var + eps)). Alone they run back to back
 * in one parallel region; with sync the count and sums are reduced over
 * the replicas between them. */
static void bn_sum_body(const bn_args *a) {
    const int n = a->n, c = a->c, hw = a->hw;
    const ptrdiff_t planes = (ptrdiff_t)n * c;
    double *part = a->part, *sum = a->chan + 1;
#pragma omp for schedule(static)
    for (ptrdiff_t p = 0; p < planes; p++)
        part[p] = plane_sum(a->x + (size_t)p * hw, hw);
#pragma omp for schedule(static)
    for (int j = 0; j < c; j++)
        sum[j] = bn_channel_sum(part, n, c, j, 1, 0);
}

static void bn_sqdev_body(const bn_args *a) {
    const int n = a->n, c = a->c, hw = a->hw;
    const ptrdiff_t planes = (ptrdiff_t)n * c;
    double *part = a->part, *mean = a->chan + 1, *sq = a->chan + 1 + c;
    const double m = a->chan[0];
#pragma omp for schedule(static)
    for (int j = 0; j < c; j++)
        mean[j] /= m; /* mean[j] held the sum */
#pragma omp for schedule(static)
    for (ptrdiff_t p = 0; p < planes; p++)
        part[p] = plane_sqdev(a->x + (size_t)p * hw, hw, (float)mean[p % c]);
#pragma omp for schedule(static)
    for (int j = 0; j < c; j++)
        sq[j] = bn_channel_sum(part, n, c, j, 1, 0);
}

static void bn_apply_body(const bn_args *a) {
    const int c = a->c, hw = a->hw;
    const ptrdiff_t planes = (ptrdiff_t)a->n * c;
    const double m = a->chan[0];
    /* running = (1 - momentum) running + momentum batch, with the unbiased
     * variance var * m / (m - 1) (the biased one when m == 1). */
    const double unbias = m > 1 ? m / (m - 1) : 1.0, mom = a->momentum;
    double *mean = a->chan + 1, *scale = a->chan + 1 + c;
#pragma omp for schedule(static)
    for (int j = 0; j < c; j++) {
        double var = scale[j] / m; /* scale[j] held the squared deviations */
        scale[j] = a->gamma[j] / sqrt(var + a->eps);
        a->save_mean[j] = (float)mean[j];
        a->save_var[j] = (float)var;
        if (a->running_mean)
            a->running_mean[j] = (float)((1.0 - mom) * a->running_mean[j] + mom * mean[j]);
        if (a->running_var)
            a->running_var[j] = (float)((1.0 - mom) * a->running_var[j] + mom * var * unbias);
    }
#pragma omp for schedule(static)
    for (ptrdiff_t p = 0; p < planes; p++) {
        int j = (int)(p % c);
        size_t at = (size_t)p * hw;
        plane_affine(a->x + at, a->y + at, hw, (float)mean[j], (float)scale[j], a->beta[j]);
    }
}

static void bn_train_body(const bn_args *a) {
    bn_sum_body(a);
    bn_sqdev_body(a);
    bn_apply_body(a);
}

// x, y: (n, c, hw); gamma, beta, running_*, save_*: (c)
slim_status slim_dnnl_bn_forward_train(slim_dnnl_cache **cache, int n, int c, int hw,
                                       const float *x, const float *gamma, const float *beta,
                                       float eps, float momentum, float *running_mean,
                                       float *running_var, float *y, float *save_mean,
                                       float *save_var, const slim_allreduce *sync) {
    if (!x || !gamma || !beta || !y || !save_mean || !save_var)
        return slim_error(SLIM_ERR_ARG, "batchnorm: a required buffer is NULL");
    SLIM_TRY(bn_prepare(cache, n, c, hw, eps));
    double *part = bn_stats(*cache, n, c, 1, 2);
    if (!part) return SLIM_ERR_NOMEM;
    bn_args a = {.n = n,
                 .c = c,
                 .hw = hw,
                 .eps = eps,
                 .momentum = momentum,
                 .x = x,
                 .gamma = gamma,
                 .beta = beta,
                 .y = y,
                 .save_mean = save_mean,
                 .save_var = save_var,
                 .running_mean = running_mean,
                 .running_var = running_var,
                 .part = part,
                 .chan = part + (size_t)n * c};
    a.chan[0] = (double)n * hw;
    if (!sync) {
        bn_run(bn_train_body, &a);
        return SLIM_OK;
    }
    /* The count and the sums of x, then the squared deviations about the
     * common mean, each over every replica. */
    bn_run(bn_sum_body, &a);
    SLIM_TRY(sync->sum(sync->ctx, a.chan, (size_t)c + 1));
    bn_run(bn_sqdev_body, &a);
    SLIM_TRY(sync->sum(sync->ctx, a.chan + 1 + c, (size_t)c));
    bn_run(bn_apply_body, &a);
    return SLIM_OK;
}

static void bn_eval_body(const bn_args *a) {
    const int c = a->c, hw = a->hw;
    const ptrdiff_t planes = (ptrdiff_t)a->n * c;
#pragma omp for schedule(static)
    for (ptrdiff_t p = 0; p < planes; p++) {
        int j = (int)(p % c);
        float scale = (float)(a->gamma[j] / sqrt((double)a->var_in[j] + a->eps));
        size_t at = (size_t)p * hw;
        plane_affine(a->x + at, a->y + at, hw, a->mean_in[j], scale, a->beta[j]);
    }
}

// x, y: (n, c, hw); gamma, beta, running_*: (c)
slim_status slim_dnnl_bn_forward_eval(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      const float *running_mean, const float *running_var,
                                      float *y) {
    if (!x || !gamma || !beta || !running_mean || !running_var || !y)
        return slim_error(SLIM_ERR_ARG, "batchnorm: a required buffer is NULL");
    SLIM_TRY(bn_prepare(cache, n, c, hw, eps));
    bn_args a = {.n = n,
                 .c = c,
                 .hw = hw,
                 .eps = eps,
                 .x = x,
                 .gamma = gamma,
                 .beta = beta,
                 .mean_in = running_mean,
                 .var_in = running_var,
                 .y = y};
    bn_run(bn_eval_body, &a);
    return SLIM_OK;
}

/* The backward in two passes: part holds sum dy and sum dy (x - mean) per
 * plane; chan the count m, those sums per channel, then a, b, k per
 * channel (see slim_dnnl_bn_backward). With sync, the count and sums are
 * reduced over the replicas between the passes. */
static void bn_dsum_body(const bn_args *a) {
    const int n = a->n, c = a->c, hw = a->hw;
    const ptrdiff_t planes = (ptrdiff_t)n * c;
    double *part = a->part, *sum_dy = a->chan + 1, *sum_dyx = a->chan + 1 + c;
#pragma omp for schedule(static)
    for (ptrdiff_t p = 0; p < planes; p++) {
        size_t at = (size_t)p * hw;
        float sdy, sdyx;
        plane_dsums(a->x + at, a->dy + at, hw, a->mean_in[p % c], &sdy, &sdyx);
        part[2 * p] = sdy;
        part[2 * p + 1] = sdyx;
    }
#pragma omp for schedule(static)
    for (int j = 0; j < c; j++) {
        sum_dy[j] = bn_channel_sum(part, n, c, j, 2, 0);
        sum_dyx[j] = bn_channel_sum(part, n, c, j, 2, 1); /* sum dy (x - mean) */
        double invstd = 1.0 / sqrt((double)a->var_in[j] + a->eps);
        if (a->dbeta) a->dbeta[j] += (float)sum_dy[j];
        if (a->dgamma) a->dgamma[j] += (float)(sum_dyx[j] * invstd);
    }
}

static void bn_dx_body(const bn_args *a) {
    const int c = a->c, hw = a->hw;
    const ptrdiff_t planes = (ptrdiff_t)a->n * c;
    const double m = a->chan[0], *sum_dy = a->chan + 1, *sum_dyx = a->chan + 1 + c;
    const float *x = a->x, *dy = a->dy, *save_mean = a->mean_in;
    double *coef = a->chan + 1 + 2 * c;
#pragma omp for schedule(static)
    for (int j = 0; j < c; j++) {
        double invstd = 1.0 / sqrt((double)a->var_in[j] + a->eps);
        double g = a->gamma[j] * invstd;
        coef[3 * j] = g;
        coef[3 * j + 1] = -g * invstd * invstd * sum_dyx[j] / m;
        coef[3 * j + 2] = -g * sum_dy[j] / m;
    }
#pragma omp for schedule(static)
    for (ptrdiff_t p = 0; p < planes; p++) {
        int j = (int)(p % c);
        size_t at = (size_t)p * hw;
        const float *xp = x + at, *dyp = dy + at;
        float *dxp = a->dx + at;
        const float mean = save_mean[j], ka = (float)coef[3 * j];
        const float kb = (float)coef[3 * j + 1], kk = (float)coef[3 * j + 2];
#pragma omp simd
        for (int q = 0; q < hw; q++)
            dxp[q] += ka * dyp[q] + kb * (xp[q] - mean) + kk;
    }
}

static void bn_backward_body(const bn_args *a) {
    bn_dsum_body(a);
    if (a->dx) bn_dx_body(a);
}

/* x, dy, dx: (n, c, hw); gamma, save_*, dgamma, dbeta: (c). With
 * invstd = 1 / sqrt(var + eps) and xhat = (x - mean) invstd:
 *   dbeta += sum dy, dgamma += sum dy xhat,
 *   dx += gamma invstd (dy - sum(dy) / m - xhat sum(dy xhat) / m),
 * the last written as dx += a dy + b (x - mean) + k per channel. */
slim_status slim_dnnl_bn_backward(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                  const float *gamma, float eps, const float *save_mean,
                                  const float *save_var, const float *dy, float *dx, float *dgamma,
                                  float *dbeta, const slim_allreduce *sync) {
    if (!dx && !dgamma && !dbeta) return SLIM_OK;
    if (!x || !gamma || !save_mean || !save_var || !dy)
        return slim_error(SLIM_ERR_ARG, "batchnorm backward: a required buffer is NULL");
    SLIM_TRY(bn_prepare(cache, n, c, hw, eps));
    double *part = bn_stats(*cache, n, c, 2, 5);
    if (!part) return SLIM_ERR_NOMEM;
    bn_args a = {.n = n,
                 .c = c,
                 .hw = hw,
                 .eps = eps,
                 .x = x,
                 .gamma = gamma,
                 .dy = dy,
                 .mean_in = save_mean,
                 .var_in = save_var,
                 .dx = dx,
                 .dgamma = dgamma,
                 .dbeta = dbeta,
                 .part = part,
                 .chan = part + (size_t)n * c * 2};
    a.chan[0] = (double)n * hw;
    if (!sync || !dx) {
        bn_run(bn_backward_body, &a);
        return SLIM_OK;
    }
    bn_run(bn_dsum_body, &a);
    SLIM_TRY(sync->sum(sync->ctx, a.chan, 2 * (size_t)c + 1));
    bn_run(bn_dx_body, &a);
    return SLIM_OK;
}
