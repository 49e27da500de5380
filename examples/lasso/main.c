/* lasso: the classical LASSO / group lasso, solved by ISTA or FISTA with the
 * proximal operators that slim's training uses (slim/prox.h via lasso.h).
 *
 *   lasso                         regularisation path on a synthetic problem
 *   lasso --lambda 0.1            one fit: intercept and every coefficient
 *   lasso --csv d.csv --target y  the same on your own data
 *
 * Run `lasso --help` for every option. docs/LASSO.md explains the maths.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "lasso.h"

/* The synthetic problem: n samples, p features, k of them truly nonzero. */
#define SYN_N 200
#define SYN_P 500
#define SYN_K 10
#define SYN_NOISE 0.1
/* The path runs from λ_max down to λ_max · PATH_MIN_RATIO. */
#define PATH_MIN_RATIO 1e-3
#define PATH_POINTS 30
/* Path plot size in pixels. */
#define PNG_W 800
#define PNG_H 500
#define PNG_MARGIN 40

typedef struct config {
    double lambda;
    int have_lambda;
    lasso_options opt;
    size_t points;
    double min_ratio;
    uint64_t seed;
    const char *csv;
    const char *target;
    int true_support;
    const char *png;
    int help;
} config;

/* Every error: "lasso: error: ..." on stderr; the caller exits 1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lasso: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* ---- option parsing: one table, one setter per option -------------------- */

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > SIZE_MAX) return 0;
    *out = (size_t)v;
    return 1;
}

static int set_lambda(config *c, const char *v) {
    c->have_lambda = 1;
    return parse_double(v, &c->lambda) && c->lambda >= 0;
}
static int set_method(config *c, const char *v) {
    if (strcmp(v, "ista") == 0)
        c->opt.method = LASSO_ISTA;
    else if (strcmp(v, "fista") == 0)
        c->opt.method = LASSO_FISTA;
    else
        return 0;
    return 1;
}
static int set_points(config *c, const char *v) {
    return parse_size(v, &c->points) && c->points >= 2;
}
static int set_min_ratio(config *c, const char *v) {
    return parse_double(v, &c->min_ratio) && c->min_ratio > 0 && c->min_ratio < 1;
}
static int set_group(config *c, const char *v) {
    return parse_size(v, &c->opt.group_size) && c->opt.group_size >= 1;
}
static int set_seed(config *c, const char *v) {
    size_t s;
    if (!parse_size(v, &s)) return 0;
    c->seed = (uint64_t)s;
    return 1;
}
static int set_tol(config *c, const char *v) {
    return parse_double(v, &c->opt.tol) && c->opt.tol > 0;
}
static int set_max_iter(config *c, const char *v) { return parse_size(v, &c->opt.max_iter); }
static int set_csv(config *c, const char *v) {
    c->csv = v;
    return *v != '\0';
}
static int set_target(config *c, const char *v) {
    c->target = v;
    return *v != '\0';
}
static int set_png(config *c, const char *v) {
    c->png = v;
    return *v != '\0';
}
static int set_no_restart(config *c, const char *v) {
    (void)v;
    c->opt.restart = 0;
    return 1;
}
static int set_true_support(config *c, const char *v) {
    (void)v;
    c->true_support = 1;
    return 1;
}
static int set_help(config *c, const char *v) {
    (void)v;
    c->help = 1;
    return 1;
}

typedef struct option {
    const char *name;
    const char *arg; /* NULL for a flag */
    int (*set)(config *, const char *);
    const char *help;
} option;

static const option options[] = {
    {"--lambda", "X", set_lambda,
     "fit this one lambda (>= 0, standardised scale) and print the intercept,\n"
     "                        every coefficient (original scale) and kkt_violation\n"
     "                        (default: the whole path)"},
    {"--method", "ista|fista", set_method, "solver (default fista)"},
    {"--points", "N", set_points, "lambdas on the path, log-spaced, >= 2 (default 30)"},
    {"--min-ratio", "R", set_min_ratio, "path ends at lambda_max*R, 0 < R < 1 (default 0.001)"},
    {"--group-size", "G", set_group,
     "group lasso over consecutive features in groups of G (default 1 = lasso)"},
    {"--seed", "S", set_seed, "seed of the synthetic problem (default 1)"},
    {"--csv", "FILE", set_csv, "fit this CSV (header row of names, numeric columns)"},
    {"--target", "COLUMN", set_target, "the CSV column to predict (required with --csv)"},
    {"--tol", "T", set_tol, "stop when the KKT violation < T (default 1e-8)"},
    {"--max-iter", "N", set_max_iter, "iteration limit per lambda (default 100000)"},
    {"--no-restart", NULL, set_no_restart, "FISTA without adaptive restart"},
    {"--true-support", NULL, set_true_support,
     "print the synthetic problem's true support as a '#' line first"},
    {"--png", "FILE", set_png, "write a plot of the coefficient path (path mode only)"},
    {"--help", NULL, set_help, "this text"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static void print_help(void) {
    printf("usage: lasso [options]\n"
           "Fits min (1/2n)|y - Xb|^2 + lambda*|b|_1 (or the group lasso) with an unpenalised\n"
           "intercept, by ISTA/FISTA using slim's proximal operators. Without --csv the data\n"
           "is synthetic: n=%d, p=%d, %d true nonzero coefficients, noise sd %g.\n\n",
           SYN_N, SYN_P, SYN_K, SYN_NOISE);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char head[40];
        snprintf(head, sizeof head, "%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        printf("  %-22s%s\n", head, options[i].help);
    }
}

static int parse_args(int argc, char **argv, config *c) {
    for (int i = 1; i < argc; i++) {
        const option *o = NULL;
        for (size_t k = 0; k < N_OPTIONS; k++)
            if (strcmp(argv[i], options[k].name) == 0) o = &options[k];
        if (!o) return fail("unknown option '%s' (see --help)", argv[i]);
        const char *value = "";
        if (o->arg) {
            if (i + 1 >= argc) return fail("%s needs a value (%s)", o->name, o->arg);
            value = argv[++i];
        }
        if (!o->set(c, value)) return fail("bad value '%s' for %s", value, o->name);
    }
    if (c->help) return 0;
    if ((c->csv != NULL) != (c->target != NULL))
        return fail("%s", c->csv ? "--csv needs --target COLUMN" : "--target needs --csv FILE");
    if (c->true_support && c->csv) return fail("--true-support is for the synthetic data only");
    if (c->png && c->have_lambda) return fail("--png plots the path; drop --lambda");
    return 0;
}

/* ---- output -------------------------------------------------------------- */

static void print_true_support(const lasso_data *d) {
    size_t k = 0;
    for (size_t j = 0; j < d->p; j++)
        k += d->beta_true[j] != 0;
    printf("# true support (%zu of %zu):", k, d->p);
    for (size_t j = 0; j < d->p; j++)
        if (d->beta_true[j] != 0) printf(" %s", d->names[j]);
    printf("\n");
}

static void report_fit(const lasso_result *res, double lambda, const lasso_options *opt) {
    if (!res->converged)
        fprintf(stderr,
                "lasso: warning: lambda %.6g: not converged after %zu iterations "
                "(KKT violation %.3e >= tol %.1e)\n",
                lambda, res->iterations, res->kkt, opt->tol);
}

static int fit_one(const config *c, const lasso_data *d, const lasso_problem *prob) {
    double *beta = calloc(prob->p, sizeof(double));
    double *orig = calloc(prob->p, sizeof(double));
    if (!beta || !orig) {
        free(beta);
        free(orig);
        return fail("out of memory");
    }
    lasso_result res;
    slim_status s = lasso_fit(prob, c->lambda, &c->opt, beta, &res);
    if (s != SLIM_OK) {
        free(beta);
        free(orig);
        return fail("%s", slim_last_error());
    }
    report_fit(&res, c->lambda, &c->opt);
    fprintf(stderr, "lasso: lambda %.6g: %zu nonzeros, %zu iterations, objective %.10g\n",
            c->lambda, res.nonzeros, res.iterations, res.objective);
    double intercept;
    lasso_to_original(prob, beta, orig, &intercept);
    printf("(intercept) %.10g\n", intercept);
    for (size_t j = 0; j < prob->p; j++)
        printf("%s %.10g\n", d->names[j], orig[j]);
    printf("kkt_violation %.3e\n", res.kkt);
    free(beta);
    free(orig);
    return 0;
}

/* ---- path plot ------------------------------------------------------------ */

static void put_pixel(unsigned char *img, int x, int y, const unsigned char rgb[3]) {
    if (x < 0 || y < 0 || x >= PNG_W || y >= PNG_H) return;
    memcpy(img + 3 * ((size_t)y * PNG_W + (size_t)x), rgb, 3);
}

/* Bresenham's line. */
static void draw_line(unsigned char *img, int x0, int y0, int x1, int y1,
                      const unsigned char rgb[3]) {
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        put_pixel(img, x0, y0, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* Standardised coefficients (rows: points, cols: p) against log λ, λ
 * decreasing to the right as in glmnet's plots. */
static int write_path_png(const char *path, const double *lambdas, const double *betas,
                          size_t points, size_t p) {
    unsigned char *img = malloc((size_t)PNG_W * PNG_H * 3);
    if (!img) return fail("out of memory");
    memset(img, 255, (size_t)PNG_W * PNG_H * 3);
    double bmax = 0;
    for (size_t i = 0; i < points * p; i++)
        bmax = fmax(bmax, fabs(betas[i]));
    if (bmax == 0) bmax = 1;
    double l0 = log(lambdas[0]), l1 = log(lambdas[points - 1]);
    int w = PNG_W - 2 * PNG_MARGIN, h = PNG_H - 2 * PNG_MARGIN;
    const unsigned char grey[3] = {160, 160, 160};
    int zero_y = PNG_MARGIN + h / 2;
    draw_line(img, PNG_MARGIN, zero_y, PNG_MARGIN + w, zero_y, grey);
    draw_line(img, PNG_MARGIN, PNG_MARGIN, PNG_MARGIN, PNG_MARGIN + h, grey);
    for (size_t j = 0; j < p; j++) {
        int used = 0;
        for (size_t k = 0; k < points; k++)
            used |= betas[k * p + j] != 0;
        if (!used) continue;
        /* A fixed colour per feature from a cheap integer hash. */
        uint32_t hsh = (uint32_t)j * 2654435761u;
        unsigned char rgb[3] = {(unsigned char)(40 + (hsh >> 8) % 160),
                                (unsigned char)(40 + (hsh >> 16) % 160),
                                (unsigned char)(40 + (hsh >> 24) % 160)};
        for (size_t k = 0; k + 1 < points; k++) {
            int xa = PNG_MARGIN + (int)lround((log(lambdas[k]) - l0) / (l1 - l0) * w);
            int xb = PNG_MARGIN + (int)lround((log(lambdas[k + 1]) - l0) / (l1 - l0) * w);
            int ya = zero_y - (int)lround(betas[k * p + j] / bmax * (h / 2));
            int yb = zero_y - (int)lround(betas[(k + 1) * p + j] / bmax * (h / 2));
            draw_line(img, xa, ya, xb, yb, rgb);
        }
    }
    int ok = stbi_write_png(path, PNG_W, PNG_H, 3, img, PNG_W * 3);
    free(img);
    if (!ok) return fail("cannot write %s", path);
    fprintf(stderr, "lasso: wrote %s\n", path);
    return 0;
}

/* ---- the path -------------------------------------------------------------- */

static int fit_path(const config *c, const lasso_problem *prob) {
    size_t p = prob->p, points = c->points;
    double lmax = lasso_lambda_max(prob, c->opt.group_size);
    if (!isfinite(lmax)) return fail("out of memory");
    if (lmax == 0) {
        fprintf(stderr, "lasso: note: y is constant (or every feature is): lambda_max = 0\n");
        lmax = 1; /* an all-zero path over any λ */
    }
    fprintf(stderr, "lasso: lambda_max %.6g, L %.6g\n", lmax, prob->lipschitz);
    double *beta = calloc(p, sizeof(double));
    double *lambdas = calloc(points, sizeof(double));
    double *betas = c->png ? calloc(points, p * sizeof(double)) : NULL;
    if (!beta || !lambdas || (c->png && !betas)) {
        free(beta);
        free(lambdas);
        free(betas);
        return fail("out of memory");
    }
    printf("lambda nonzeros objective kkt_violation iterations\n");
    int rc = 0;
    for (size_t k = 0; k < points; k++) {
        /* λ_k = λ_max · R^(k/(points−1)): log-spaced; warm start from the
         * previous solution, which is close when the grid is fine. */
        lambdas[k] = lmax * pow(c->min_ratio, (double)k / (double)(points - 1));
        lasso_result res;
        if (lasso_fit(prob, lambdas[k], &c->opt, beta, &res) != SLIM_OK) {
            rc = fail("%s", slim_last_error());
            break;
        }
        report_fit(&res, lambdas[k], &c->opt);
        printf("%.6e %zu %.10e %.3e %zu\n", lambdas[k], res.nonzeros, res.objective, res.kkt,
               res.iterations);
        if (betas) memcpy(betas + k * p, beta, p * sizeof(double));
    }
    if (rc == 0 && c->png) rc = write_path_png(c->png, lambdas, betas, points, p);
    free(beta);
    free(lambdas);
    free(betas);
    return rc;
}

int main(int argc, char **argv) {
    config c;
    memset(&c, 0, sizeof c);
    lasso_options_default(&c.opt);
    c.points = PATH_POINTS;
    c.min_ratio = PATH_MIN_RATIO;
    c.seed = 1;
    if (parse_args(argc, argv, &c)) return 1;
    if (c.help) {
        print_help();
        return 0;
    }

    lasso_data data;
    slim_status s = c.csv ? lasso_read_csv(c.csv, c.target, &data)
                          : lasso_synthetic(SYN_N, SYN_P, SYN_K, SYN_NOISE, c.seed, &data);
    if (s != SLIM_OK) return fail("%s", slim_last_error());
    if (c.true_support) print_true_support(&data);

    lasso_problem prob;
    s = lasso_problem_init(&prob, data.x, data.y, data.n, data.p);
    if (s != SLIM_OK) {
        lasso_data_free(&data);
        return fail("%s", slim_last_error());
    }
    fprintf(stderr, "lasso: %s: n=%zu p=%zu, target '%s', %s%s\n", c.csv ? c.csv : "synthetic",
            data.n, data.p, data.target, c.opt.method == LASSO_ISTA ? "ista" : "fista",
            c.opt.group_size > 1 ? ", group lasso" : "");
    for (size_t j = 0; j < data.p; j++)
        if (prob.sd[j] == 0)
            fprintf(stderr, "lasso: note: column '%s' is constant; its coefficient is kept at 0\n",
                    data.names[j]);

    int rc = c.have_lambda ? fit_one(&c, &data, &prob) : fit_path(&c, &prob);
    lasso_problem_free(&prob);
    lasso_data_free(&data);
    if (rc == 0 && fflush(stdout) != 0) rc = fail("cannot write the output");
    return rc;
}
