/* Tests of the LASSO / group lasso solver (examples/lasso/lasso.h): optimality (KKT and
 * an independent perturbation check), ISTA = FISTA, λ_max, support recovery,
 * standardisation, and the CSV reader. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lasso.h"

/* Tight solver tolerance for tests that compare solutions. */
#define TIGHT_TOL 1e-11

/* A small fixed problem: n = 40, p = 15, 4 true nonzeros. */
static void small_problem(lasso_data *d, lasso_problem *prob) {
    assert_int_equal(lasso_synthetic(40, 15, 4, 0.5, 3, d), SLIM_OK);
    assert_int_equal(lasso_problem_init(prob, d->x, d->y, d->n, d->p), SLIM_OK);
}

static void fit(const lasso_problem *prob, double lambda, lasso_method method, size_t group,
                double tol, double *beta, lasso_result *res) {
    lasso_options opt;
    lasso_options_default(&opt);
    opt.method = method;
    opt.group_size = group;
    opt.tol = tol;
    assert_int_equal(lasso_fit(prob, lambda, &opt, beta, res), SLIM_OK);
}

/* Independent of the KKT code: a minimiser of a convex function is not
 * beaten by any nearby point. Tries every coordinate ±eps and random
 * directions, including moves of zero coefficients off zero. */
static void assert_locally_optimal(const lasso_problem *prob, const double *beta, double lambda,
                                   size_t group) {
    size_t p = prob->p;
    double *q = malloc(p * sizeof(double));
    assert_non_null(q);
    double f0 = lasso_objective(prob, beta, lambda, group);
    slim_rng rng;
    slim_rng_seed(&rng, 99, 0);
    const double eps[] = {1e-3, 1e-5};
    for (int e = 0; e < 2; e++) {
        for (size_t j = 0; j < p; j++) {
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                memcpy(q, beta, p * sizeof(double));
                q[j] += sgn * eps[e];
                /* Slack: rounding of f (~1e-15·f) plus the solver's own
                 * distance from the optimum (KKT < 1e-11 → O(eps·1e-11)). */
                assert_true(lasso_objective(prob, q, lambda, group) >= f0 - 1e-12);
            }
        }
        for (int trial = 0; trial < 20; trial++) {
            for (size_t j = 0; j < p; j++)
                q[j] = beta[j] + eps[e] * slim_rng_normal(&rng);
            assert_true(lasso_objective(prob, q, lambda, group) >= f0 - 1e-12);
        }
    }
    free(q);
}

/* FISTA reaches KKT violation < 1e-6 (asked for 1e-10), and the result is
 * a true minimiser by the perturbation check. */
static void test_fista_converges(void **state) {
    (void)state;
    lasso_data d;
    lasso_problem prob;
    small_problem(&d, &prob);
    double lmax = lasso_lambda_max(&prob, 1);
    double lambda = 0.1 * lmax;
    double beta[15] = {0};
    lasso_result res;
    fit(&prob, lambda, LASSO_FISTA, 1, 1e-10, beta, &res);
    assert_true(res.converged);
    assert_true(res.kkt < 1e-6);
    /* The returned kkt is what lasso_kkt says of the returned β. */
    assert_true(fabs(lasso_kkt(&prob, beta, lambda, 1) - res.kkt) < 1e-13);
    assert_true(res.nonzeros > 0 && res.nonzeros < 15);
    assert_true(fabs(lasso_objective(&prob, beta, lambda, 1) - res.objective) < 1e-12);
    assert_locally_optimal(&prob, beta, lambda, 1);
    /* Without restart FISTA still converges. */
    double beta2[15] = {0};
    lasso_options opt;
    lasso_options_default(&opt);
    opt.restart = 0;
    opt.tol = 1e-9;
    assert_int_equal(lasso_fit(&prob, lambda, &opt, beta2, &res), SLIM_OK);
    assert_true(res.converged && res.kkt < 1e-9);
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

/* ISTA and FISTA solve the same problem: same support, coefficients within
 * 1e-5 (both run to KKT 1e-11; the problem is strongly convex on its
 * support, so the solutions agree far better than 1e-5). */
static void test_ista_fista_agree(void **state) {
    (void)state;
    lasso_data d;
    lasso_problem prob;
    small_problem(&d, &prob);
    double lmax = lasso_lambda_max(&prob, 1);
    const double fractions[] = {0.5, 0.1, 0.01};
    for (int k = 0; k < 3; k++) {
        double a[15] = {0}, b[15] = {0};
        lasso_result ra, rb;
        fit(&prob, fractions[k] * lmax, LASSO_ISTA, 1, TIGHT_TOL, a, &ra);
        fit(&prob, fractions[k] * lmax, LASSO_FISTA, 1, TIGHT_TOL, b, &rb);
        assert_true(ra.converged && rb.converged);
        assert_int_equal(ra.nonzeros, rb.nonzeros);
        for (int j = 0; j < 15; j++) {
            assert_true((a[j] == 0) == (b[j] == 0));
            assert_true(fabs(a[j] - b[j]) < 1e-5);
        }
        /* FISTA takes fewer steps than ISTA for the small λ. */
        if (k == 2) assert_true(rb.iterations < ra.iterations);
    }
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

/* λ >= λ_max gives β = 0 exactly; just below λ_max it does not. */
static void test_lambda_max(void **state) {
    (void)state;
    lasso_data d;
    lasso_problem prob;
    small_problem(&d, &prob);
    const size_t groups[] = {1, 3, 4}; /* 4 does not divide p = 15 */
    for (int gi = 0; gi < 3; gi++) {
        size_t g = groups[gi];
        double lmax = lasso_lambda_max(&prob, g);
        assert_true(lmax > 0);
        for (int m = 0; m < 2; m++) {
            lasso_method method = m ? LASSO_FISTA : LASSO_ISTA;
            double beta[15] = {0};
            lasso_result res;
            /* Cold start at exactly λ_max: already optimal, no step taken. */
            fit(&prob, lmax, method, g, 1e-10, beta, &res);
            assert_int_equal(res.iterations, 0);
            assert_int_equal(res.nonzeros, 0);
            assert_true(res.kkt == 0);
            /* Warm start from a dense solution, λ a bit above λ_max: the prox
             * must bring every coefficient to exactly 0. */
            fit(&prob, 0.05 * lmax, method, g, 1e-10, beta, &res);
            assert_true(res.nonzeros > 3);
            fit(&prob, 1.01 * lmax, method, g, 1e-10, beta, &res);
            assert_true(res.converged);
            for (int j = 0; j < 15; j++)
                assert_true(beta[j] == 0);
            /* Just below λ_max something enters. */
            fit(&prob, 0.99 * lmax, method, g, 1e-10, beta, &res);
            assert_true(res.nonzeros > 0);
        }
        /* At β = 0 the KKT violation is exactly λ_max − λ for λ < λ_max. */
        double zero[15] = {0};
        assert_true(fabs(lasso_kkt(&prob, zero, 0.25 * lmax, g) - 0.75 * lmax) < 1e-14 * lmax);
    }
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

/* A naive, BLAS-free KKT violation, written from the formulas, to hold the
 * library's to. */
static double naive_kkt(const lasso_problem *prob, const double *beta, double lambda,
                        size_t group) {
    size_t n = prob->n, p = prob->p;
    double *g = calloc(p, sizeof(double));
    assert_non_null(g);
    for (size_t i = 0; i < n; i++) {
        double r = prob->yc[i];
        for (size_t j = 0; j < p; j++)
            r -= prob->xs[i * p + j] * beta[j];
        for (size_t j = 0; j < p; j++)
            g[j] += prob->xs[i * p + j] * r / (double)n;
    }
    double worst = 0;
    for (size_t s = 0; s < p; s += group) {
        size_t m = s + group <= p ? group : p - s;
        double bn = 0, gn = 0, dn = 0;
        for (size_t i = 0; i < m; i++) {
            bn += beta[s + i] * beta[s + i];
            gn += g[s + i] * g[s + i];
        }
        bn = sqrt(bn);
        gn = sqrt(gn);
        double v;
        if (bn > 0) {
            for (size_t i = 0; i < m; i++) {
                double e = g[s + i] - lambda * beta[s + i] / bn;
                dn += e * e;
            }
            v = sqrt(dn);
        } else {
            v = gn > lambda ? gn - lambda : 0;
        }
        if (v > worst) worst = v;
    }
    free(g);
    return worst;
}

static void test_kkt_formula(void **state) {
    (void)state;
    lasso_data d;
    lasso_problem prob;
    small_problem(&d, &prob);
    slim_rng rng;
    slim_rng_seed(&rng, 4, 4);
    for (int trial = 0; trial < 10; trial++) {
        double beta[15];
        for (int j = 0; j < 15; j++)
            beta[j] = (j % 3 == trial % 3 || j < 3) ? 0 : slim_rng_normal(&rng);
        for (size_t g = 1; g <= 4; g++) {
            double lib = lasso_kkt(&prob, beta, 0.3, g);
            double ref = naive_kkt(&prob, beta, 0.3, g);
            assert_true(fabs(lib - ref) <= 1e-12 * (1 + ref));
        }
    }
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

/* One standardised feature: the solution is S_λ(xsᵀyc/n) in closed form
 * (xsᵀxs/n = 1), the intercept ȳ − β·mean. */
static void test_single_feature_closed_form(void **state) {
    (void)state;
    double x[6] = {1, 2, 4, 7, 11, 16}, y[6] = {3, 1, 4, 1, 5, 9};
    lasso_problem prob;
    assert_int_equal(lasso_problem_init(&prob, x, y, 6, 1), SLIM_OK);
    double c = 0, q = 0;
    for (int i = 0; i < 6; i++) {
        c += prob.xs[i] * prob.yc[i] / 6;
        q += prob.xs[i] * prob.xs[i] / 6;
    }
    assert_true(fabs(q - 1) < 1e-14);
    assert_true(fabs(prob.lipschitz - q) < 1e-12);
    for (int m = 0; m < 2; m++) {
        for (double lambda = 0; lambda < 3; lambda += 0.5) {
            double beta = 0;
            lasso_result res;
            fit(&prob, lambda, m ? LASSO_FISTA : LASSO_ISTA, 1, 1e-13, &beta, &res);
            double want = fabs(c) <= lambda ? 0 : (c > 0 ? c - lambda : c + lambda) / q;
            assert_true(fabs(beta - want) < 1e-12);
            if (want == 0) assert_true(beta == 0);
            double orig, b0;
            lasso_to_original(&prob, &beta, &orig, &b0);
            assert_true(fabs(orig - beta / prob.sd[0]) < 1e-15);
            assert_true(fabs(b0 - (23.0 / 6 - orig * (41.0 / 6))) < 1e-12);
        }
    }
    lasso_problem_free(&prob);
}

/* The documented synthetic problem (n = 200, p = 500, 10 true nonzeros,
 * noise 0.1, seed 1 — the example's defaults): at λ = 0.1 the lasso support
 * is exactly the true support, with the true signs. The path (see
 * docs/LASSO.md) has exactly these 10 nonzeros for λ from about 0.03 to 0.77;
 * 0.1 sits well inside that window. */
static void test_synthetic_support(void **state) {
    (void)state;
    lasso_data d;
    lasso_problem prob;
    assert_int_equal(lasso_synthetic(200, 500, 10, 0.1, 1, &d), SLIM_OK);
    assert_int_equal(lasso_problem_init(&prob, d.x, d.y, d.n, d.p), SLIM_OK);
    size_t k = 0;
    for (size_t j = 0; j < d.p; j++)
        k += d.beta_true[j] != 0;
    assert_int_equal(k, 10);
    double *beta = calloc(d.p, sizeof(double));
    double *orig = calloc(d.p, sizeof(double));
    assert_non_null(beta);
    assert_non_null(orig);
    lasso_result res;
    fit(&prob, 0.1, LASSO_FISTA, 1, 1e-8, beta, &res);
    assert_true(res.converged);
    assert_int_equal(res.nonzeros, 10);
    double b0;
    lasso_to_original(&prob, beta, orig, &b0);
    for (size_t j = 0; j < d.p; j++) {
        assert_true((orig[j] != 0) == (d.beta_true[j] != 0));
        if (orig[j] != 0) {
            assert_true(orig[j] * d.beta_true[j] > 0);
            /* Shrunk towards 0 by about λ, no more than 0.4 off. */
            assert_true(fabs(orig[j] - d.beta_true[j]) < 0.4);
        }
    }
    assert_true(fabs(b0 - d.intercept_true) < 0.2);
    /* A much larger λ loses part of the support; a much smaller one adds
     * false positives: the window is real, not an artefact. */
    fit(&prob, 2.0, LASSO_FISTA, 1, 1e-8, beta, &res);
    assert_true(res.nonzeros < 10);
    fit(&prob, 0.005, LASSO_FISTA, 1, 1e-8, beta, &res);
    assert_true(res.nonzeros > 10);
    free(beta);
    free(orig);
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

/* Group lasso on p = 24 in 6 groups of 4, groups 1 and 4 truly active. */
static void test_group_lasso(void **state) {
    (void)state;
    enum { N = 60, P = 24, G = 4 };
    lasso_data d;
    assert_int_equal(lasso_synthetic(N, P, 0, 0.0, 8, &d), SLIM_OK);
    double truth[P] = {0};
    for (int i = 0; i < G; i++) {
        truth[1 * G + i] = 1.0 + 0.5 * i;
        truth[4 * G + i] = -2.0 + 0.25 * i;
    }
    slim_rng rng;
    slim_rng_seed(&rng, 21, 0);
    for (int i = 0; i < N; i++) {
        double s = 1.0;
        for (int j = 0; j < P; j++)
            s += d.x[i * P + j] * truth[j];
        d.y[i] = s + 0.3 * slim_rng_normal(&rng);
    }
    lasso_problem prob;
    assert_int_equal(lasso_problem_init(&prob, d.x, d.y, N, P), SLIM_OK);
    double lmax = lasso_lambda_max(&prob, G);
    double lambda = 0.2 * lmax;
    double a[P] = {0}, b[P] = {0};
    lasso_result ra, rb;
    fit(&prob, lambda, LASSO_FISTA, G, TIGHT_TOL, a, &rb);
    fit(&prob, lambda, LASSO_ISTA, G, TIGHT_TOL, b, &ra);
    assert_true(rb.converged && rb.kkt < 1e-6);
    assert_true(ra.converged && ra.kkt < 1e-6);
    assert_locally_optimal(&prob, a, lambda, G);
    int zero_groups = 0;
    for (int g = 0; g < P / G; g++) {
        int nz = 0;
        for (int i = 0; i < G; i++)
            nz += a[g * G + i] != 0;
        /* Whole groups: all zero or all nonzero. */
        assert_true(nz == 0 || nz == G);
        zero_groups += nz == 0;
        /* The truly active groups are selected, the others not. */
        assert_int_equal(nz == G, g == 1 || g == 4);
        for (int i = 0; i < G; i++)
            assert_true(fabs(a[g * G + i] - b[g * G + i]) < 1e-5);
    }
    assert_int_equal(zero_groups, 4);
    /* With a ragged last group (G = 5: 4 groups of 5 and one of 4). */
    double c[P] = {0};
    fit(&prob, 0.2 * lasso_lambda_max(&prob, 5), LASSO_FISTA, 5, TIGHT_TOL, c, &rb);
    assert_true(rb.converged && rb.kkt < 1e-6);
    assert_locally_optimal(&prob, c, 0.2 * lasso_lambda_max(&prob, 5), 5);
    for (int s = 0; s < P; s += 5) {
        int m = s + 5 <= P ? 5 : P - s, nz = 0;
        for (int i = 0; i < m; i++)
            nz += c[s + i] != 0;
        assert_true(nz == 0 || nz == m);
    }
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

/* Fits d at λ and returns original-scale coefficients and intercept. */
static void fit_original(const double *x, const double *y, size_t n, size_t p, double lambda,
                         double *orig, double *b0) {
    lasso_problem prob;
    assert_int_equal(lasso_problem_init(&prob, x, y, n, p), SLIM_OK);
    double *beta = calloc(p, sizeof(double));
    assert_non_null(beta);
    lasso_result res;
    fit(&prob, lambda, LASSO_FISTA, 1, 1e-12, beta, &res);
    assert_true(res.converged);
    lasso_to_original(&prob, beta, orig, b0);
    free(beta);
    lasso_problem_free(&prob);
}

/* Standardisation makes the fit independent of a feature's units: scaling
 * feature 2 by c scales its coefficient by 1/c and leaves the others and the
 * intercept alone. With c = 1024 every step of the standardisation is exact
 * in binary floating point, so the result is bit-for-bit; with c = 1000 the
 * standardised column differs in the last bits and the coefficients agree to
 * the solver's accuracy (relative 1e-9). */
static void test_standardisation_scale(void **state) {
    (void)state;
    enum { N = 50, P = 6, J = 2 };
    lasso_data d;
    assert_int_equal(lasso_synthetic(N, P, 3, 0.5, 13, &d), SLIM_OK);
    /* Give feature J a true effect so its coefficient is nonzero. */
    for (int i = 0; i < N; i++)
        d.y[i] += 0.8 * d.x[i * P + J];
    double base[P], b0;
    fit_original(d.x, d.y, N, P, 0.05, base, &b0);
    assert_true(base[J] != 0);
    double *xs = malloc(sizeof(double) * N * P);
    assert_non_null(xs);
    const double factors[] = {1024.0, 1000.0};
    for (int f = 0; f < 2; f++) {
        memcpy(xs, d.x, sizeof(double) * N * P);
        for (int i = 0; i < N; i++)
            xs[i * P + J] *= factors[f];
        double scaled[P], s0;
        fit_original(xs, d.y, N, P, 0.05, scaled, &s0);
        for (int j = 0; j < P; j++) {
            double want = j == J ? base[j] / factors[f] : base[j];
            if (f == 0)
                assert_true(scaled[j] == want);
            else
                assert_true(fabs(scaled[j] - want) <= 1e-9 * fabs(want));
        }
        if (f == 0)
            assert_true(s0 == b0);
        else
            assert_true(fabs(s0 - b0) <= 1e-9 * (1 + fabs(b0)));
    }
    free(xs);
    lasso_data_free(&d);
}

/* A constant column keeps β = 0 and does not disturb the others. */
static void test_constant_column(void **state) {
    (void)state;
    enum { N = 40, P = 5 };
    lasso_data d;
    assert_int_equal(lasso_synthetic(N, P, 3, 0.3, 17, &d), SLIM_OK);
    /* Insert a constant column at index 1 (value 0.1: not exactly
     * representable, so a computed mean can differ from it by rounding). */
    double x6[N * (P + 1)];
    for (int i = 0; i < N; i++)
        for (int j = 0, k = 0; j < P + 1; j++)
            x6[i * (P + 1) + j] = j == 1 ? 0.1 : d.x[i * P + k++];
    lasso_problem prob;
    assert_int_equal(lasso_problem_init(&prob, x6, d.y, N, P + 1), SLIM_OK);
    assert_int_equal(prob.n_constant, 1);
    assert_true(prob.sd[1] == 0);
    double beta[P + 1] = {0, 5.0, 0, 0, 0, 0}; /* a silly start for the constant one */
    lasso_result res;
    fit(&prob, 0.05, LASSO_FISTA, 1, 1e-12, beta, &res);
    assert_true(res.converged);
    assert_true(beta[1] == 0);
    double orig[P + 1], b0;
    lasso_to_original(&prob, beta, orig, &b0);
    assert_true(orig[1] == 0);
    double ref[P], r0;
    fit_original(d.x, d.y, N, P, 0.05, ref, &r0);
    for (int j = 0, k = 0; j < P + 1; j++)
        if (j != 1) assert_true(fabs(orig[j] - ref[k++]) < 1e-9);
    assert_true(fabs(b0 - r0) < 1e-9);
    lasso_problem_free(&prob);
    lasso_data_free(&d);
}

static void test_bad_arguments(void **state) {
    (void)state;
    double x[4] = {1, 2, 3, NAN}, y[4] = {1, 2, 3, 4};
    lasso_problem prob;
    assert_int_equal(lasso_problem_init(&prob, x, y, 4, 1), SLIM_ERR_NUMERIC);
    assert_non_null(strstr(slim_last_error(), "not finite"));
    assert_int_equal(lasso_problem_init(&prob, x, y, 1, 1), SLIM_ERR_ARG);
    x[3] = 4;
    assert_int_equal(lasso_problem_init(&prob, x, y, 4, 1), SLIM_OK);
    double beta = 0;
    lasso_result res;
    assert_int_equal(lasso_fit(&prob, -1.0, NULL, &beta, &res), SLIM_ERR_ARG);
    assert_int_equal(lasso_fit(&prob, NAN, NULL, &beta, &res), SLIM_ERR_ARG);
    assert_int_equal(lasso_fit(&prob, 0.1, NULL, &beta, &res), SLIM_OK);
    lasso_problem_free(&prob);
    assert_int_equal(lasso_synthetic(10, 5, 6, 0.1, 1, &(lasso_data){0}), SLIM_ERR_ARG);
}

/* ---- CSV ---------------------------------------------------------------- */

static void write_temp(char *path, const char *text) {
    strcpy(path, "/tmp/lasso_csv_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void test_csv_read(void **state) {
    (void)state;
    char path[64];
    write_temp(path, "a, price ,\"c\"\r\n1,10,2.5\r\n\r\n2,20,-1e-3\r\n3 , 30,4\r\n\n");
    lasso_data d;
    assert_int_equal(lasso_read_csv(path, "price", &d), SLIM_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.p, 2);
    assert_string_equal(d.target, "price");
    assert_string_equal(d.names[0], "a");
    assert_string_equal(d.names[1], "c");
    assert_null(d.beta_true);
    const double wx[6] = {1, 2.5, 2, -1e-3, 3, 4}, wy[3] = {10, 20, 30};
    for (int i = 0; i < 6; i++)
        assert_true(d.x[i] == wx[i]);
    for (int i = 0; i < 3; i++)
        assert_true(d.y[i] == wy[i]);
    lasso_data_free(&d);
    unlink(path);
}

static void expect_csv_error(const char *text, const char *target, slim_status status,
                             const char *where, const char *what) {
    char path[64];
    write_temp(path, text);
    lasso_data d;
    assert_int_equal(lasso_read_csv(path, target, &d), status);
    char want[128];
    snprintf(want, sizeof want, "%s%s", path, where);
    assert_non_null(strstr(slim_last_error(), want));
    assert_non_null(strstr(slim_last_error(), what));
    unlink(path);
}

static void test_csv_errors(void **state) {
    (void)state;
    expect_csv_error("a,b,y\n1,2,3\n4,5\n", "y", SLIM_ERR_FORMAT, ":3:", "expected 3 fields");
    expect_csv_error("a,b,y\n1,2,3\n4,5,6,7\n", "y", SLIM_ERR_FORMAT, ":3:", "found 4");
    expect_csv_error("a,b,y\n1,2,3\n\n4,x5,6\n", "y", SLIM_ERR_FORMAT, ":4:", "bad number 'x5'");
    expect_csv_error("a,b,y\n1,,3\n", "y", SLIM_ERR_FORMAT, ":2:", "column 'b'");
    expect_csv_error("a,b,y\n1,nan,3\n4,5,6\n", "y", SLIM_ERR_FORMAT, ":2:", "bad number 'nan'");
    expect_csv_error("a,b,y\n1,2,3\n4,5,6\n", "z", SLIM_ERR_ARG, ": no column named 'z'",
                     "columns: a, b, y");
    expect_csv_error("", "y", SLIM_ERR_FORMAT, ": empty file", "header");
    expect_csv_error("a,b,y\n1,2,3\n", "y", SLIM_ERR_FORMAT, ": needs at least 2 data rows", "1");
    expect_csv_error("a,a,y\n1,2,3\n", "y", SLIM_ERR_FORMAT, ":1:", "appears twice");
    lasso_data d;
    assert_int_equal(lasso_read_csv("/nonexistent/dir/x.csv", "y", &d), SLIM_ERR_IO);
    assert_non_null(strstr(slim_last_error(), "/nonexistent/dir/x.csv"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fista_converges),
        cmocka_unit_test(test_ista_fista_agree),
        cmocka_unit_test(test_lambda_max),
        cmocka_unit_test(test_kkt_formula),
        cmocka_unit_test(test_single_feature_closed_form),
        cmocka_unit_test(test_synthetic_support),
        cmocka_unit_test(test_group_lasso),
        cmocka_unit_test(test_standardisation_scale),
        cmocka_unit_test(test_constant_column),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_csv_read),
        cmocka_unit_test(test_csv_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
