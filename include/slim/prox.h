/* slim proximal operators: the step that makes an L1 (or group-L1) penalty
 * produce exact zeros.
 *
 * Training takes its optimizer step on the smooth loss only and then applies
 * the penalty's proximal operator to the penalised parameters:
 *
 *   L1 on Γ or on weights:   prox_{tλ‖·‖₁}(x)     = S_t(x), t = ηλ, elementwise
 *                            S_t(x) = sign(x) · max(|x| − t, 0)
 *   group L1 (per filter):   prox_{tλ Σ‖x_g‖₂}(x) = x_g · max(1 − t/‖x_g‖₂, 0)
 *
 * A subgradient step (adding λ·sign(x) to the gradient) makes a weight
 * oscillate around zero and almost never land on it; the proximal step sets
 * every entry with |x| ≤ t to exactly +0.0, which is what lets pruning at
 * threshold 0 be lossless.
 *
 * Each operator exists in float (training) and double (the LASSO example and
 * its tests), both stamped out by one macro in src/optim/prox.c, so the
 * classical LASSO solver exercises exactly the code that training runs.
 *
 * Conventions shared by every function here:
 *   - the threshold t is expected to be >= 0 (t = 0 is the identity, up to
 *     mapping -0.0 to +0.0);
 *   - an entry that becomes zero is written as +0.0 (signbit clear), never
 *     copysign(0, x), so that "== 0" tests and bit-level checks agree;
 *   - NaN inputs propagate (a NaN entry stays NaN; a block containing a NaN
 *     becomes NaN) instead of being silently zeroed, so a diverged run is
 *     noticed rather than pruned.
 */
#ifndef SLIM_PROX_H
#define SLIM_PROX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Soft-threshold in place: x[i] <- S_t(x[i]) for i in [0, n).
 * x: (n). Returns how many entries of x are exactly zero afterwards (the
 * ones just thresholded plus any that were already zero), for logs. */
size_t slim_soft_threshold_f32(float *x, size_t n, float t);
size_t slim_soft_threshold_f64(double *x, size_t n, double t);
/* The weighted L1 prox, prox of t·Σ w_i|x_i|: x[i] <- S_{t·w[i]}(x[i]).
 * x, w: (n); every w[i] >= 0 (w[i] = 0 leaves x[i] unchanged, -0.0 becoming +0.0).
 * Returns how many entries are exactly zero afterwards. */
size_t slim_soft_threshold_weighted_f32(float *x, size_t n, float t, const float *w);
size_t slim_soft_threshold_weighted_f64(double *x, size_t n, double t, const double *w);

/* Block soft-threshold of one group in place:
 * x <- x · max(1 − t/‖x‖₂, 0). x: (m), contiguous.
 * ‖x‖₂ ≤ t (including a zero block) sets the whole block to +0.0 without
 * dividing by the norm. The norm is accumulated in double for both
 * precisions. Returns 1 if the block is all zero afterwards, else 0. */
int slim_block_soft_threshold_f32(float *x, size_t m, float t);
int slim_block_soft_threshold_f64(double *x, size_t m, double t);

/* The block soft-threshold applied independently to `groups` consecutive
 * blocks of equal length m (one block per conv output filter: a weight of
 * shape (F, C, KH, KW) is groups = F blocks of m = C·KH·KW).
 * x: (groups, m). Returns how many blocks are all zero afterwards. */
size_t slim_group_soft_threshold_f32(float *x, size_t groups, size_t m, float t);
size_t slim_group_soft_threshold_f64(double *x, size_t groups, size_t m, double t);

#ifdef __cplusplus
}
#endif
#endif
