/* Reference batch normalisation over (n, c, hw) data, per channel, with the
 * PyTorch conventions: the batch is normalised with its biased variance and
 * running_var tracks the unbiased one. Sums run in double so that this
 * kernel can serve as the truth for the fast one. */
#include "kernels/kernels.h"

#include <math.h>

/* Element j of channel ch in sample i: x[(i * c + ch) * hw + j]. */
static size_t bn_at(int c, int hw, int i, int ch) { return ((size_t)i * c + ch) * (size_t)hw; }

/* x, y: (n, c, hw); gamma, beta, running_*, save_*: (c). running_mean and
 * running_var may be NULL (no update). The running variance gets
 * var * m / (m - 1), m = n * hw; with m == 1 the unbiased estimate does not
 * exist and the biased one (0) is used instead. With sync, the sums and m
 * are over every replica's batch (one reduction per sum and channel). */
slim_status slim_ref_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma,
                                      const float *beta, float eps, float momentum,
                                      float *running_mean, float *running_var, float *y,
                                      float *save_mean, float *save_var,
                                      const slim_allreduce *sync) {
    for (int ch = 0; ch < c; ch++) {
        double sum[2] = {0.0, (double)n * hw}; /* sum of x, count */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                sum[0] += x[bn_at(c, hw, i, ch) + j];
        if (sync) SLIM_TRY(sync->sum(sync->ctx, sum, 2));
        const double m = sum[1], mean = sum[0] / m;
        double sq = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[bn_at(c, hw, i, ch) + j] - mean;
                sq += d * d;
            }
        if (sync) SLIM_TRY(sync->sum(sync->ctx, &sq, 1));
        double var = sq / m;
        double invstd = 1.0 / sqrt(var + eps);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = bn_at(c, hw, i, ch) + j;
                y[at] = (float)(gamma[ch] * (x[at] - mean) * invstd + beta[ch]);
            }
        save_mean[ch] = (float)mean;
        save_var[ch] = (float)var;
        double unbiased = m > 1 ? var * m / (m - 1) : var;
        if (running_mean)
            running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        if (running_var)
            running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
    return SLIM_OK;
}

/* x, y: (n, c, hw); gamma, beta, running_mean, running_var: (c). */
void slim_ref_bn_forward_eval(int n, int c, int hw, const float *x, const float *gamma,
                              const float *beta, float eps, const float *running_mean,
                              const float *running_var, float *y) {
    for (int ch = 0; ch < c; ch++) {
        double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = bn_at(c, hw, i, ch) + j;
                y[at] = (float)(gamma[ch] * (x[at] - (double)running_mean[ch]) * invstd + beta[ch]);
            }
    }
}

/* x, dy, dx: (n, c, hw); gamma, save_mean, save_var, dgamma, dbeta: (c).
 * With xhat = (x - mean) / sqrt(var + eps) and m = n * hw:
 *   dbeta  += sum dy,  dgamma += sum dy xhat,
 *   dx     += gamma / sqrt(var + eps) * (dy - sum(dy) / m - xhat sum(dy xhat) / m),
 * the last two terms being the paths through the batch mean and variance.
 * With sync, dx takes the sums and m over every replica (dgamma and dbeta
 * stay this replica's share, summed with the other gradients). */
slim_status slim_ref_bn_backward(int n, int c, int hw, const float *x, const float *gamma,
                                 float eps, const float *save_mean, const float *save_var,
                                 const float *dy, float *dx, float *dgamma, float *dbeta,
                                 const slim_allreduce *sync) {
    for (int ch = 0; ch < c; ch++) {
        double mean = save_mean[ch];
        double invstd = 1.0 / sqrt((double)save_var[ch] + eps);
        double sum[3] = {0.0, 0.0, (double)n * hw}; /* sum dy, sum dy xhat, count */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = bn_at(c, hw, i, ch) + j;
                sum[0] += dy[at];
                sum[1] += dy[at] * (x[at] - mean) * invstd;
            }
        if (dbeta) dbeta[ch] += (float)sum[0];
        if (dgamma) dgamma[ch] += (float)sum[1];
        if (!dx) continue;
        if (sync) SLIM_TRY(sync->sum(sync->ctx, sum, 3));
        const double sum_dy = sum[0], sum_dy_xhat = sum[1], m = sum[2];
        double k = gamma[ch] * invstd;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t at = bn_at(c, hw, i, ch) + j;
                double xhat = (x[at] - mean) * invstd;
                dx[at] += (float)(k * (dy[at] - sum_dy / m - xhat * sum_dy_xhat / m));
            }
    }
    return SLIM_OK;
}
