/* The LASSO example: the classical L1-penalised least-squares problem, solved with
 * the same proximal operators (slim/prox.h) that training applies to the
 * batch-norm scales. It is both an example of the idea and a test of the
 * prox machinery: here the optimum is known to satisfy checkable KKT
 * conditions.
 *
 *   minimise over β:  (1/2n)‖y − Xβ‖² + λ‖β‖₁            (lasso)
 *                or:  (1/2n)‖y − Xβ‖² + λ Σ_g ‖β_g‖₂      (group lasso)
 *
 * with an unpenalised intercept. The intercept is handled by centring y and
 * standardising every column of X to mean 0 and variance 1 (1/n
 * convention); the fit happens on that standardised problem and the
 * coefficients are mapped back afterwards:
 *
 *   β_orig_j = β_std_j / sd_j,   intercept = ȳ − Σ_j β_orig_j·mean_j.
 *
 * λ is therefore on the scale of the standardised problem (as in glmnet);
 * λ_max = ‖Xᵀy‖∞/n (group: max_g ‖X_gᵀy‖₂/n) is the smallest λ with β = 0.
 *
 * Solvers: ISTA (β ← S_{λ/L}(β + Xᵀ(y − Xβ)/(nL))) and FISTA (the same step
 * taken from an extrapolated point, with optional adaptive restart); L is
 * the largest eigenvalue of XᵀX/n, found by power iteration. Both stop when
 * the KKT violation (lasso_kkt) falls below a tolerance.
 *
 * Everything is double: the solver is small and its tests want 1e-8
 * optimality. All arrays are row-major; shapes are given per field.
 *
 * Built beside its example (examples/lasso/: solver.c, data.c, main.c), not
 * into the library, which keeps only the proximal operators.
 */
#ifndef LASSO_H
#define LASSO_H

#include <stddef.h>
#include <stdint.h>

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data ------------------------------------------------------------- */

/* A regression data set on its original scale. */
typedef struct lasso_data {
    size_t n;          /* samples */
    size_t p;          /* features */
    double *x;         /* x: (n, p) */
    double *y;         /* y: (n) */
    char **names;      /* names: (p) feature names */
    char *target;      /* the target's name */
    double *beta_true; /* beta_true: (p) for synthetic data, else NULL */
    double intercept_true;
} lasso_data;

/* Reads a CSV file: a header row of column names, then one row of numbers
 * per sample; the column named `target` is y, every other column a feature.
 * Blank lines are skipped, CRLF line ends accepted, fields trimmed of
 * spaces. Errors (SLIM_ERR_IO / SLIM_ERR_FORMAT / SLIM_ERR_ARG) cite
 * "file:line" for a bad or non-finite number and for a row with the wrong
 * number of fields, and list the columns when `target` is unknown. */
slim_status lasso_read_csv(const char *path, const char *target, lasso_data *out);

/* A synthetic sparse problem: X (n, p) iid N(0,1); k coefficients, at
 * positions chosen uniformly at random, with random sign and magnitude in
 * [1, 3); the others 0; intercept 0.5; y = 0.5 + Xβ + noise·N(0,1).
 * Feature names x0..x{p−1}, target "y". Deterministic in `seed`. */
slim_status lasso_synthetic(size_t n, size_t p, size_t k, double noise, uint64_t seed,
                            lasso_data *out);

void lasso_data_free(lasso_data *data);

/* ---- the standardised problem ----------------------------------------- */

typedef struct lasso_problem {
    size_t n, p;
    double *xs;        /* xs: (n, p) standardised X (constant columns all 0) */
    double *yc;        /* yc: (n) centred y */
    double *mean;      /* mean: (p) column means of the original X */
    double *sd;        /* sd: (p) column standard deviations (1/n); 0 if constant */
    double y_mean;     /* ȳ */
    double lipschitz;  /* L = largest eigenvalue of xsᵀxs/n (1 if xs is 0) */
    size_t n_constant; /* how many columns are constant (kept at β = 0) */
} lasso_problem;

/* Copies and standardises x: (n, p), y: (n); computes L. A column is
 * constant when all its values are equal; its standardised column is 0, so
 * its coefficient stays exactly 0. n >= 2, p >= 1; non-finite input is
 * SLIM_ERR_NUMERIC. */
slim_status lasso_problem_init(lasso_problem *prob, const double *x, const double *y, size_t n,
                               size_t p);
void lasso_problem_free(lasso_problem *prob);

/* The smallest λ at which β = 0 is optimal: max_j |x_jᵀyc|/n, or for
 * group_size G > 1 max_g ‖X_gᵀyc‖₂/n over consecutive groups of G features
 * (the last group shorter when G does not divide p). */
double lasso_lambda_max(const lasso_problem *prob, size_t group_size);

/* ---- solving ---------------------------------------------------------- */

typedef enum lasso_method {
    LASSO_ISTA = 0,
    LASSO_FISTA,
} lasso_method;

typedef struct lasso_options {
    lasso_method method; /* default FISTA */
    double tol;          /* stop when the KKT violation < tol; default 1e-8 */
    size_t max_iter;     /* default 100000 */
    int restart;         /* FISTA adaptive (gradient) restart; default 1 */
    size_t group_size;   /* 1 = lasso (default); G > 1 = group lasso */
} lasso_options;

void lasso_options_default(lasso_options *opt);

typedef struct lasso_result {
    size_t iterations; /* prox steps taken */
    int converged;     /* kkt < tol */
    double kkt;        /* max KKT violation at the returned β */
    double objective;  /* of the standardised problem at the returned β */
    size_t nonzeros;   /* nonzero coefficients */
} lasso_result;

/* Solves the standardised problem at `lambda` (>= 0). beta: (p) on the
 * standardised scale, read as the starting point (warm start; zeros for a
 * cold start) and overwritten with the solution. Not converging within
 * max_iter is not an error: result->converged says so. */
slim_status lasso_fit(const lasso_problem *prob, double lambda, const lasso_options *opt,
                      double *beta, lasso_result *result);

/* Max KKT violation of beta: (p) on the standardised problem, with
 * g = xsᵀ(yc − xs·β)/n:
 *   lasso, β_j ≠ 0:  |g_j − λ·sign(β_j)|      β_j = 0:  max(|g_j| − λ, 0)
 *   group, β_g ≠ 0:  ‖g_g − λ·β_g/‖β_g‖‖      β_g = 0:  max(‖g_g‖ − λ, 0)
 * Returns NaN when memory for the residual cannot be had. */
double lasso_kkt(const lasso_problem *prob, const double *beta, double lambda, size_t group_size);

/* (1/2n)‖yc − xs·β‖² + λ·penalty(β) on the standardised problem. */
double lasso_objective(const lasso_problem *prob, const double *beta, double lambda,
                       size_t group_size);

/* Maps a standardised solution to the original scale:
 * beta_orig: (p) = β_std/sd (0 for constant columns), *intercept = ȳ −
 * Σ β_orig_j·mean_j. */
void lasso_to_original(const lasso_problem *prob, const double *beta_std, double *beta_orig,
                       double *intercept);

#ifdef __cplusplus
}
#endif
#endif
