/* Proximal operators of the L1 and group-L1 penalties (see slim/prox.h).
 *
 * One implementation per operator, stamped out for float and double by a
 * macro, so that the double LASSO example runs the very code that training
 * runs in float. */
#include "slim/prox.h"

#include <math.h>

/* Euclidean norm of x: (m), accumulated in double. A float block cannot
 * overflow a double sum of squares (FLT_MAX² ≈ 1e77); a double block can, and
 * then the sum is redone scaled by the largest magnitude. NaN propagates. */
#define SLIM_DEFINE_NORM2(T, SUFFIX)                                                               \
    static double norm2_##SUFFIX(const T *x, size_t m) {                                           \
        double sumsq = 0;                                                                          \
        for (size_t i = 0; i < m; i++)                                                             \
            sumsq += (double)x[i] * (double)x[i];                                                  \
        if (!isinf(sumsq)) return sqrt(sumsq);                                                     \
        double amax = 0;                                                                           \
        for (size_t i = 0; i < m; i++)                                                             \
            if (fabs((double)x[i]) > amax) amax = fabs((double)x[i]);                              \
        if (isinf(amax)) return amax;                                                              \
        double scaled = 0;                                                                         \
        for (size_t i = 0; i < m; i++) {                                                           \
            double s = (double)x[i] / amax;                                                        \
            scaled += s * s;                                                                       \
        }                                                                                          \
        return amax * sqrt(scaled);                                                                \
    }

/* S_t(x) = sign(x)·max(|x| − t, 0), and the weighted form with threshold
 * t·w[i] per entry. The test is written "|x| <= t" (not "!(|x| > t)") so
 * that a NaN falls through to the shrink branch and stays NaN. Zeroed
 * entries get a literal 0, i.e. +0.0. */
#define SLIM_DEFINE_SOFT_THRESHOLD(T, SUFFIX)                                                      \
    static T shrink_##SUFFIX(T v, T t) {                                                           \
        T a = v < 0 ? -v : v;                                                                      \
        if (a <= t) return 0;                                                                      \
        return v > 0 ? v - t : v + t;                                                              \
    }                                                                                              \
                                                                                                   \
    size_t slim_soft_threshold_##SUFFIX(T *x, size_t n, T t) {                                     \
        size_t zeros = 0;                                                                          \
        for (size_t i = 0; i < n; i++) {                                                           \
            x[i] = shrink_##SUFFIX(x[i], t);                                                       \
            zeros += x[i] == 0;                                                                    \
        }                                                                                          \
        return zeros;                                                                              \
    }                                                                                              \
                                                                                                   \
    size_t slim_soft_threshold_weighted_##SUFFIX(T *x, size_t n, T t, const T *w) {                \
        size_t zeros = 0;                                                                          \
        for (size_t i = 0; i < n; i++) {                                                           \
            x[i] = shrink_##SUFFIX(x[i], t * w[i]);                                                \
            zeros += x[i] == 0;                                                                    \
        }                                                                                          \
        return zeros;                                                                              \
    }

/* x <- x·max(1 − t/‖x‖, 0). The branch ‖x‖ <= t comes first, so a zero
 * block (‖x‖ = 0 <= t) is never divided by its norm. The factor is formed in
 * double and each entry rounded once to T. */
#define SLIM_DEFINE_BLOCK_SOFT_THRESHOLD(T, SUFFIX)                                                \
    int slim_block_soft_threshold_##SUFFIX(T *x, size_t m, T t) {                                  \
        double norm = norm2_##SUFFIX(x, m);                                                        \
        if (norm <= (double)t) {                                                                   \
            for (size_t i = 0; i < m; i++)                                                         \
                x[i] = 0;                                                                          \
            return 1;                                                                              \
        }                                                                                          \
        double scale = 1.0 - (double)t / norm;                                                     \
        int all_zero = 1;                                                                          \
        for (size_t i = 0; i < m; i++) {                                                           \
            x[i] = (T)((double)x[i] * scale);                                                      \
            if (x[i] != 0) all_zero = 0;                                                           \
        }                                                                                          \
        return all_zero;                                                                           \
    }                                                                                              \
                                                                                                   \
    size_t slim_group_soft_threshold_##SUFFIX(T *x, size_t groups, size_t m, T t) {                \
        size_t zero_groups = 0;                                                                    \
        for (size_t g = 0; g < groups; g++)                                                        \
            zero_groups += (size_t)slim_block_soft_threshold_##SUFFIX(x + g * m, m, t);            \
        return zero_groups;                                                                        \
    }

SLIM_DEFINE_NORM2(float, f32)
SLIM_DEFINE_NORM2(double, f64)
SLIM_DEFINE_SOFT_THRESHOLD(float, f32)
SLIM_DEFINE_SOFT_THRESHOLD(double, f64)
SLIM_DEFINE_BLOCK_SOFT_THRESHOLD(float, f32)
SLIM_DEFINE_BLOCK_SOFT_THRESHOLD(double, f64)
