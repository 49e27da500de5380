/* LASSO and group lasso by ISTA / FISTA on a standardised problem (see
 * lasso.h). The proximal steps are slim/prox.h's double versions, the same
 * code that training runs in float. */
#include "lasso.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slim/prox.h"

/* Power iteration stops when the Rayleigh quotient changes by less than this
 * (relative), or after POWER_MAX_ITER rounds. The quotient approaches the top
 * eigenvalue from below; an accurate L matters because a step 1/L with L too
 * small can make FISTA diverge. */
#define POWER_REL_TOL 1e-13
#define POWER_MAX_ITER 20000
/* FISTA's gradient is taken at the extrapolated point, so checking the KKT
 * conditions at β costs an extra pair of matrix-vector products; do it every
 * this many iterations. (ISTA gets the check for free every iteration.) */
#define FISTA_CHECK_EVERY 10

static size_t effective_group(size_t group_size) { return group_size < 1 ? 1 : group_size; }

/* ---- standardised problem -------------------------------------------- */

void lasso_problem_free(lasso_problem *prob) {
    if (!prob) return;
    free(prob->xs);
    free(prob->yc);
    free(prob->mean);
    free(prob->sd);
    memset(prob, 0, sizeof *prob);
}

/* u: (n) = xs·v; w: (p) = xsᵀu/n, i.e. w = (xsᵀxs/n)·v. */
static void gram_times(const lasso_problem *prob, const double *v, double *u, double *w) {
    int n = (int)prob->n, p = (int)prob->p;
    cblas_dgemv(CblasRowMajor, CblasNoTrans, n, p, 1.0, prob->xs, p, v, 1, 0.0, u, 1);
    cblas_dgemv(CblasRowMajor, CblasTrans, n, p, 1.0 / (double)n, prob->xs, p, u, 1, 0.0, w, 1);
}

/* Largest eigenvalue of xsᵀxs/n by power iteration from a fixed
 * pseudo-random start (a fixed vector such as all ones could be orthogonal
 * to the top eigenvector). */
static slim_status largest_eigenvalue(const lasso_problem *prob, double *out) {
    size_t n = prob->n, p = prob->p;
    double *v = slim_calloc(p, sizeof(double));
    double *w = slim_calloc(p, sizeof(double));
    double *u = slim_calloc(n, sizeof(double));
    if (!v || !w || !u) {
        free(v);
        free(w);
        free(u);
        return SLIM_ERR_NOMEM;
    }
    slim_rng rng;
    slim_rng_seed(&rng, 12345, 7);
    double norm = 0;
    for (size_t j = 0; j < p; j++) {
        v[j] = 0.5 + (double)slim_rng_uniform(&rng);
        norm += v[j] * v[j];
    }
    norm = sqrt(norm);
    for (size_t j = 0; j < p; j++)
        v[j] /= norm;
    double rq = 0;
    for (int it = 0; it < POWER_MAX_ITER; it++) {
        gram_times(prob, v, u, w);
        /* ‖v‖ = 1, so vᵀ(Av) is the Rayleigh quotient. */
        double next = cblas_ddot((int)p, v, 1, w, 1);
        double wn = cblas_dnrm2((int)p, w, 1);
        if (wn == 0) {
            rq = 0;
            break;
        }
        for (size_t j = 0; j < p; j++)
            v[j] = w[j] / wn;
        int done = it > 0 && fabs(next - rq) <= POWER_REL_TOL * fabs(next);
        rq = next;
        if (done) break;
    }
    free(v);
    free(w);
    free(u);
    /* All columns constant: xs = 0, any step works; 1 keeps it finite. */
    *out = rq > 0 ? rq : 1.0;
    return SLIM_OK;
}

slim_status lasso_problem_init(lasso_problem *prob, const double *x, const double *y, size_t n,
                               size_t p) {
    memset(prob, 0, sizeof *prob);
    if (!x || !y) return slim_error(SLIM_ERR_ARG, "lasso: x and y are required");
    if (n < 2 || p < 1)
        return slim_error(SLIM_ERR_ARG,
                          "lasso needs at least 2 samples and 1 feature (got n=%zu, p=%zu)", n, p);
    if (n > INT32_MAX || p > INT32_MAX || n > SIZE_MAX / p / sizeof(double))
        return slim_error(SLIM_ERR_NOMEM, "lasso problem %zu x %zu is too large", n, p);
    for (size_t i = 0; i < n * p; i++)
        if (!isfinite(x[i]))
            return slim_error(SLIM_ERR_NUMERIC, "lasso: x[%zu][%zu] is not finite", i / p, i % p);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return slim_error(SLIM_ERR_NUMERIC, "lasso: y[%zu] is not finite", i);

    prob->n = n;
    prob->p = p;
    prob->xs = slim_calloc(n * p, sizeof(double));
    prob->yc = slim_calloc(n, sizeof(double));
    prob->mean = slim_calloc(p, sizeof(double));
    prob->sd = slim_calloc(p, sizeof(double));
    if (!prob->xs || !prob->yc || !prob->mean || !prob->sd) {
        lasso_problem_free(prob);
        return SLIM_ERR_NOMEM;
    }
    /* Why standardise: the L1 penalty is not scale invariant. Measuring a
     * feature in smaller units (metres -> kilometres) multiplies the
     * coefficient it needs by the same factor, and λ|β_j| then penalises that
     * feature more, so which features survive would depend on the units.
     * With every column at mean 0 and variance 1 the penalty treats them
     * alike; centring y and X also removes the unpenalised intercept from
     * the problem (it is recovered in lasso_to_original). */
    for (size_t j = 0; j < p; j++) {
        double sum = 0, lo = x[j], hi = x[j];
        for (size_t i = 0; i < n; i++) {
            double v = x[i * p + j];
            sum += v;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        double m = sum / (double)n;
        double ss = 0;
        for (size_t i = 0; i < n; i++) {
            double d = x[i * p + j] - m;
            ss += d * d;
        }
        prob->mean[j] = m;
        /* Constant means exactly equal values: a rounding-level spread
         * around a computed mean must not be blown up to unit variance. */
        if (lo == hi) {
            prob->sd[j] = 0;
            prob->n_constant++;
            for (size_t i = 0; i < n; i++)
                prob->xs[i * p + j] = 0;
        } else {
            double sd = sqrt(ss / (double)n);
            prob->sd[j] = sd;
            for (size_t i = 0; i < n; i++)
                prob->xs[i * p + j] = (x[i * p + j] - m) / sd;
        }
    }
    double ysum = 0;
    for (size_t i = 0; i < n; i++)
        ysum += y[i];
    prob->y_mean = ysum / (double)n;
    for (size_t i = 0; i < n; i++)
        prob->yc[i] = y[i] - prob->y_mean;

    slim_status s = largest_eigenvalue(prob, &prob->lipschitz);
    if (s != SLIM_OK) lasso_problem_free(prob);
    return s;
}

/* ---- the pieces of the solver ------------------------------------------ */

/* r: (n) = yc − xs·β;  g: (p) = xsᵀr/n (the negative gradient of the smooth
 * part). Every gradient goes through here, so λ_max and the first step from
 * β = 0 see bit-identical values. */
static void residual_and_grad(const lasso_problem *prob, const double *beta, double *r, double *g) {
    int n = (int)prob->n, p = (int)prob->p;
    memcpy(r, prob->yc, prob->n * sizeof(double));
    cblas_dgemv(CblasRowMajor, CblasNoTrans, n, p, -1.0, prob->xs, p, beta, 1, 1.0, r, 1);
    cblas_dgemv(CblasRowMajor, CblasTrans, n, p, 1.0 / (double)n, prob->xs, p, r, 1, 0.0, g, 1);
}

static double norm2(const double *v, size_t m) {
    double s = 0;
    for (size_t i = 0; i < m; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

/* Groups are consecutive runs of G features; the last one is shorter when G
 * does not divide p. */
static void prox_step(double *beta, size_t p, size_t group, double thr) {
    if (group <= 1) {
        slim_soft_threshold_f64(beta, p, thr);
        return;
    }
    size_t full = p / group;
    slim_group_soft_threshold_f64(beta, full, group, thr);
    if (p % group) slim_block_soft_threshold_f64(beta + full * group, p % group, thr);
}

static double penalty(const double *beta, size_t p, size_t group) {
    double s = 0;
    if (group <= 1) {
        for (size_t j = 0; j < p; j++)
            s += fabs(beta[j]);
        return s;
    }
    for (size_t start = 0; start < p; start += group) {
        size_t m = p - start < group ? p - start : group;
        s += norm2(beta + start, m);
    }
    return s;
}

static double kkt_from_grad(const double *beta, const double *g, size_t p, double lambda,
                            size_t group) {
    double worst = 0;
    if (group <= 1) {
        for (size_t j = 0; j < p; j++) {
            double v;
            if (beta[j] != 0)
                v = fabs(g[j] - (beta[j] > 0 ? lambda : -lambda));
            else
                v = fmax(fabs(g[j]) - lambda, 0.0);
            if (v > worst || isnan(v)) worst = isnan(v) ? INFINITY : v;
        }
        return worst;
    }
    for (size_t start = 0; start < p; start += group) {
        size_t m = p - start < group ? p - start : group;
        double bn = norm2(beta + start, m);
        double v;
        if (bn != 0) {
            double s = 0;
            for (size_t i = 0; i < m; i++) {
                double d = g[start + i] - lambda * beta[start + i] / bn;
                s += d * d;
            }
            v = sqrt(s);
        } else {
            v = fmax(norm2(g + start, m) - lambda, 0.0);
        }
        if (v > worst || isnan(v)) worst = isnan(v) ? INFINITY : v;
    }
    return worst;
}

static double objective_from_residual(const double *r, size_t n, const double *beta, size_t p,
                                      double lambda, size_t group) {
    double rr = 0;
    for (size_t i = 0; i < n; i++)
        rr += r[i] * r[i];
    return rr / (2.0 * (double)n) + lambda * penalty(beta, p, group);
}

double lasso_lambda_max(const lasso_problem *prob, size_t group_size) {
    size_t group = effective_group(group_size);
    double *beta = slim_calloc(prob->p, sizeof(double));
    double *g = slim_calloc(prob->p, sizeof(double));
    double *r = slim_calloc(prob->n, sizeof(double));
    double lmax = NAN;
    if (beta && g && r) {
        residual_and_grad(prob, beta, r, g);
        /* At β = 0 the violation is max(‖g_g‖ − λ, 0): it vanishes exactly
         * for λ >= max ‖g_g‖, so that maximum is λ_max. */
        lmax = 0;
        for (size_t start = 0; start < prob->p; start += group) {
            size_t m = prob->p - start < group ? prob->p - start : group;
            double v = group <= 1 ? fabs(g[start]) : norm2(g + start, m);
            if (v > lmax) lmax = v;
        }
    }
    free(beta);
    free(g);
    free(r);
    return lmax;
}

double lasso_kkt(const lasso_problem *prob, const double *beta, double lambda, size_t group_size) {
    double *g = slim_calloc(prob->p, sizeof(double));
    double *r = slim_calloc(prob->n, sizeof(double));
    double v = NAN;
    if (g && r) {
        residual_and_grad(prob, beta, r, g);
        v = kkt_from_grad(beta, g, prob->p, lambda, effective_group(group_size));
    }
    free(g);
    free(r);
    return v;
}

double lasso_objective(const lasso_problem *prob, const double *beta, double lambda,
                       size_t group_size) {
    double *g = slim_calloc(prob->p, sizeof(double));
    double *r = slim_calloc(prob->n, sizeof(double));
    double v = NAN;
    if (g && r) {
        residual_and_grad(prob, beta, r, g);
        v = objective_from_residual(r, prob->n, beta, prob->p, lambda, effective_group(group_size));
    }
    free(g);
    free(r);
    return v;
}

void lasso_to_original(const lasso_problem *prob, const double *beta_std, double *beta_orig,
                       double *intercept) {
    double b0 = prob->y_mean;
    for (size_t j = 0; j < prob->p; j++) {
        /* A constant column's coefficient is 0: its effect, if any, is part
         * of the intercept. */
        beta_orig[j] = prob->sd[j] > 0 ? beta_std[j] / prob->sd[j] : 0.0;
        b0 -= beta_orig[j] * prob->mean[j];
    }
    *intercept = b0;
}

void lasso_options_default(lasso_options *opt) {
    opt->method = LASSO_FISTA;
    opt->tol = 1e-8;
    opt->max_iter = 100000;
    opt->restart = 1;
    opt->group_size = 1;
}

/* ---- ISTA and FISTA --------------------------------------------------- */

typedef struct fit_work {
    double *r;    /* r: (n) residual at β */
    double *g;    /* g: (p) xsᵀr/n at β */
    double *z;    /* z: (p) FISTA's extrapolated point */
    double *gz;   /* gz: (p) xsᵀ(yc − xs·z)/n */
    double *prev; /* prev: (p) the previous iterate β_{k−1} */
    double *rz;   /* rz: (n) residual at z */
} fit_work;

/* ISTA: β ← S_{λ/L}(β + g/L). The gradient at the new β is both the next
 * step's gradient and the KKT check's, so the check is free. */
static void run_ista(const lasso_problem *prob, double lambda, const lasso_options *opt,
                     size_t group, double *beta, fit_work *w, lasso_result *res) {
    size_t p = prob->p;
    double step = 1.0 / prob->lipschitz, thr = lambda * step;
    for (size_t it = 1; it <= opt->max_iter; it++) {
        for (size_t j = 0; j < p; j++)
            beta[j] += step * w->g[j];
        prox_step(beta, p, group, thr);
        residual_and_grad(prob, beta, w->r, w->g);
        res->iterations = it;
        res->kkt = kkt_from_grad(beta, w->g, p, lambda, group);
        if (res->kkt < opt->tol) return;
    }
}

/* FISTA (Beck & Teboulle 2009): β_k = prox(z_k + g(z_k)/L),
 * t_{k+1} = (1 + √(1 + 4t_k²))/2, z_{k+1} = β_k + ((t_k − 1)/t_{k+1})(β_k − β_{k−1}).
 * Adaptive restart (O'Donoghue & Candès 2015, gradient scheme): when the
 * step z_k → β_k points against the last move β_{k−1} → β_k, the momentum
 * is carrying the iterate uphill; t is reset to 1 so the next step is a plain
 * ISTA step. This turns FISTA's sublinear rate into a linear one near a
 * solution with a stable support. */
static void run_fista(const lasso_problem *prob, double lambda, const lasso_options *opt,
                      size_t group, double *beta, fit_work *w, lasso_result *res) {
    size_t p = prob->p;
    double step = 1.0 / prob->lipschitz, thr = lambda * step;
    double t = 1.0;
    memcpy(w->prev, beta, p * sizeof(double));
    memcpy(w->z, beta, p * sizeof(double));
    memcpy(w->gz, w->g, p * sizeof(double)); /* z = β: same gradient */
    for (size_t it = 1; it <= opt->max_iter; it++) {
        for (size_t j = 0; j < p; j++)
            beta[j] = w->z[j] + step * w->gz[j];
        prox_step(beta, p, group, thr);
        double dir = 0;
        for (size_t j = 0; j < p; j++)
            dir += (w->z[j] - beta[j]) * (beta[j] - w->prev[j]);
        if (opt->restart && dir > 0) t = 1.0;
        double t_next = 0.5 * (1.0 + sqrt(1.0 + 4.0 * t * t));
        double momentum = (t - 1.0) / t_next;
        t = t_next;
        for (size_t j = 0; j < p; j++) {
            w->z[j] = beta[j] + momentum * (beta[j] - w->prev[j]);
            w->prev[j] = beta[j];
        }
        residual_and_grad(prob, w->z, w->rz, w->gz);
        res->iterations = it;
        if (it % FISTA_CHECK_EVERY == 0 || it == opt->max_iter) {
            residual_and_grad(prob, beta, w->r, w->g);
            res->kkt = kkt_from_grad(beta, w->g, p, lambda, group);
            if (res->kkt < opt->tol) return;
        }
    }
}

slim_status lasso_fit(const lasso_problem *prob, double lambda, const lasso_options *opt_in,
                      double *beta, lasso_result *result) {
    lasso_options opt;
    if (opt_in)
        opt = *opt_in;
    else
        lasso_options_default(&opt);
    if (!(lambda >= 0) || !isfinite(lambda))
        return slim_error(SLIM_ERR_ARG, "lasso: lambda must be finite and >= 0 (got %g)", lambda);
    if (!(opt.tol > 0)) return slim_error(SLIM_ERR_ARG, "lasso: tol must be > 0 (got %g)", opt.tol);
    if (opt.method != LASSO_ISTA && opt.method != LASSO_FISTA)
        return slim_error(SLIM_ERR_ARG, "lasso: unknown method %d", (int)opt.method);
    for (size_t j = 0; j < prob->p; j++)
        if (!isfinite(beta[j]))
            return slim_error(SLIM_ERR_NUMERIC, "lasso: starting beta[%zu] is not finite", j);
    size_t group = effective_group(opt.group_size);
    size_t n = prob->n, p = prob->p;

    fit_work w;
    w.r = slim_calloc(n, sizeof(double));
    w.rz = slim_calloc(n, sizeof(double));
    w.g = slim_calloc(p, sizeof(double));
    w.z = slim_calloc(p, sizeof(double));
    w.gz = slim_calloc(p, sizeof(double));
    w.prev = slim_calloc(p, sizeof(double));
    slim_status status = SLIM_OK;
    if (!w.r || !w.rz || !w.g || !w.z || !w.gz || !w.prev) {
        status = SLIM_ERR_NOMEM;
        goto done;
    }
    /* A constant column has xs_j = 0 and so g_j = 0 forever; clearing its
     * start value keeps it exactly 0 whatever the caller passed. */
    for (size_t j = 0; j < p; j++)
        if (prob->sd[j] == 0) beta[j] = 0;

    lasso_result res = {0, 0, 0, 0, 0};
    residual_and_grad(prob, beta, w.r, w.g);
    res.kkt = kkt_from_grad(beta, w.g, p, lambda, group);
    /* The start may already be optimal (β = 0 for λ >= λ_max, or a warm
     * start): then no step is taken at all. */
    if (!(res.kkt < opt.tol)) {
        if (opt.method == LASSO_ISTA)
            run_ista(prob, lambda, &opt, group, beta, &w, &res);
        else
            run_fista(prob, lambda, &opt, group, beta, &w, &res);
    }
    /* w.r holds the residual at β after either solver's last check. */
    if (!isfinite(res.kkt)) {
        status = slim_error(SLIM_ERR_NUMERIC, "lasso: diverged (KKT violation %g)", res.kkt);
        goto done;
    }
    res.converged = res.kkt < opt.tol;
    res.objective = objective_from_residual(w.r, n, beta, p, lambda, group);
    for (size_t j = 0; j < p; j++)
        res.nonzeros += beta[j] != 0;
    if (result) *result = res;
done:
    free(w.r);
    free(w.rz);
    free(w.g);
    free(w.z);
    free(w.gz);
    free(w.prev);
    return status;
}
