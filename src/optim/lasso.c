/* LASSO and group lasso by ISTA / FISTA on a standardised problem (see
 * slim/lasso.h). The proximal steps are slim/prox.h's double versions, the
 * same code that training runs in float. */
#include "slim/lasso.h"

#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
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
/* Error messages list at most this many column names. */
#define CSV_LIST_MAX 600

/* ---- small helpers ------------------------------------------------------ */

static void *checked_realloc(void *ptr, size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) {
        slim_error(SLIM_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *q = realloc(ptr, n * size);
    if (!q) slim_error(SLIM_ERR_NOMEM, "out of memory (%zu bytes)", n * size);
    return q;
}

static char *dup_string(const char *s) {
    size_t len = strlen(s);
    char *d = slim_calloc(len + 1, 1);
    if (d) memcpy(d, s, len);
    return d;
}

static size_t effective_group(size_t group_size) { return group_size < 1 ? 1 : group_size; }

/* ---- data ------------------------------------------------------------- */

void slim_lasso_data_free(slim_lasso_data *data) {
    if (!data) return;
    if (data->names)
        for (size_t j = 0; j < data->p; j++)
            free(data->names[j]);
    free(data->names);
    free(data->target);
    free(data->x);
    free(data->y);
    free(data->beta_true);
    memset(data, 0, sizeof *data);
}

slim_status slim_lasso_synthetic(size_t n, size_t p, size_t k, double noise, uint64_t seed,
                                 slim_lasso_data *out) {
    memset(out, 0, sizeof *out);
    if (n < 2 || p < 1 || k > p || p > UINT32_MAX)
        return slim_error(SLIM_ERR_ARG,
                          "synthetic problem needs n >= 2, 1 <= p < 2^32, k <= p "
                          "(got n=%zu p=%zu k=%zu)",
                          n, p, k);
    if (!(noise >= 0) || !isfinite(noise))
        return slim_error(SLIM_ERR_ARG, "noise must be finite and >= 0");
    if (n > SIZE_MAX / p / sizeof(double))
        return slim_error(SLIM_ERR_NOMEM, "synthetic problem %zu x %zu is too large", n, p);
    out->n = n;
    out->p = p;
    out->x = slim_calloc(n * p, sizeof(double));
    out->y = slim_calloc(n, sizeof(double));
    out->beta_true = slim_calloc(p, sizeof(double));
    out->names = slim_calloc(p, sizeof(char *));
    out->target = dup_string("y");
    uint32_t *perm = slim_calloc(p, sizeof(uint32_t));
    if (!out->x || !out->y || !out->beta_true || !out->names || !out->target || !perm) {
        free(perm);
        slim_lasso_data_free(out);
        return SLIM_ERR_NOMEM;
    }
    for (size_t j = 0; j < p; j++) {
        char buf[32];
        snprintf(buf, sizeof buf, "x%zu", j);
        out->names[j] = dup_string(buf);
        if (!out->names[j]) {
            free(perm);
            slim_lasso_data_free(out);
            return SLIM_ERR_NOMEM;
        }
    }
    slim_rng rng;
    slim_rng_seed(&rng, seed, 0x1a550);
    /* The support: the first k of a random permutation. */
    for (size_t j = 0; j < p; j++)
        perm[j] = (uint32_t)j;
    slim_rng_shuffle(&rng, perm, p);
    for (size_t i = 0; i < k; i++) {
        double magnitude = 1.0 + 2.0 * (double)slim_rng_uniform(&rng);
        out->beta_true[perm[i]] = (slim_rng_u32(&rng) & 1u) ? magnitude : -magnitude;
    }
    free(perm);
    out->intercept_true = 0.5;
    for (size_t i = 0; i < n * p; i++)
        out->x[i] = (double)slim_rng_normal(&rng);
    for (size_t i = 0; i < n; i++) {
        double s = out->intercept_true;
        for (size_t j = 0; j < p; j++)
            s += out->x[i * p + j] * out->beta_true[j];
        out->y[i] = s + noise * (double)slim_rng_normal(&rng);
    }
    return SLIM_OK;
}

/* ---- CSV ---------------------------------------------------------------- */

/* Trims spaces/tabs at both ends in place; returns the start. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

static void strip_line_end(char *s) {
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

/* Splits `line` at commas in place into fields[0..cap); returns the number of
 * fields (which may exceed cap: then only the first cap are stored). */
static size_t split_fields(char *line, char **fields, size_t cap) {
    size_t count = 0;
    char *s = line;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        if (count < cap) fields[count] = trim(s);
        count++;
        if (!comma) break;
        s = comma + 1;
    }
    return count;
}

static size_t count_fields(const char *line) {
    size_t count = 1;
    for (; *line; line++)
        count += *line == ',';
    return count;
}

/* A header name without surrounding double quotes. */
static char *unquote(char *s) {
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s[len - 1] = '\0';
        return s + 1;
    }
    return s;
}

typedef struct csv_state {
    FILE *file;
    char *line;
    size_t line_cap;
    char **fields;   /* fields: (ncols) pointers into line */
    char **colnames; /* colnames: (ncols) */
    size_t ncols;
    double *x, *y;
    size_t rows, row_cap;
} csv_state;

static void csv_state_free(csv_state *st) {
    if (st->file) fclose(st->file);
    free(st->line);
    free(st->fields);
    if (st->colnames)
        for (size_t c = 0; c < st->ncols; c++)
            free(st->colnames[c]);
    free(st->colnames);
    free(st->x);
    free(st->y);
}

/* "a, b, c" (shortened with "..." past CSV_LIST_MAX characters). */
static void list_columns(const csv_state *st, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t c = 0; c < st->ncols && used + 8 < len; c++) {
        int w = snprintf(buf + used, len - used, "%s%s", c ? ", " : "", st->colnames[c]);
        if (w < 0 || (size_t)w >= len - used) {
            snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
            return;
        }
        used += (size_t)w;
    }
}

static slim_status csv_read_header(csv_state *st, const char *path, size_t *lineno) {
    ssize_t got;
    while ((got = getline(&st->line, &st->line_cap, st->file)) >= 0) {
        (*lineno)++;
        strip_line_end(st->line);
        if (!is_blank(st->line)) break;
    }
    if (got < 0) {
        if (ferror(st->file))
            return slim_error(SLIM_ERR_IO, "%s: read error: %s", path, strerror(errno));
        return slim_error(SLIM_ERR_FORMAT, "%s: empty file (expected a header row of column names)",
                          path);
    }
    st->ncols = count_fields(st->line);
    st->fields = slim_calloc(st->ncols, sizeof(char *));
    st->colnames = slim_calloc(st->ncols, sizeof(char *));
    if (!st->fields || !st->colnames) return SLIM_ERR_NOMEM;
    split_fields(st->line, st->fields, st->ncols);
    for (size_t c = 0; c < st->ncols; c++) {
        char *name = unquote(st->fields[c]);
        if (!*name)
            return slim_error(SLIM_ERR_FORMAT, "%s:%zu: column %zu of the header has no name", path,
                              *lineno, c + 1);
        for (size_t d = 0; d < c; d++)
            if (strcmp(st->colnames[d], name) == 0)
                return slim_error(SLIM_ERR_FORMAT, "%s:%zu: column name '%s' appears twice", path,
                                  *lineno, name);
        st->colnames[c] = dup_string(name);
        if (!st->colnames[c]) return SLIM_ERR_NOMEM;
    }
    return SLIM_OK;
}

static slim_status csv_read_rows(csv_state *st, const char *path, size_t target_col,
                                 size_t *lineno) {
    size_t p = st->ncols - 1;
    ssize_t got;
    while ((got = getline(&st->line, &st->line_cap, st->file)) >= 0) {
        (*lineno)++;
        strip_line_end(st->line);
        if (is_blank(st->line)) continue;
        size_t nf = split_fields(st->line, st->fields, st->ncols);
        if (nf != st->ncols)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s:%zu: expected %zu fields (as in the header), found %zu", path,
                              *lineno, st->ncols, nf);
        if (st->rows == st->row_cap) {
            size_t cap = st->row_cap ? 2 * st->row_cap : 64;
            if (cap > SIZE_MAX / sizeof(double) / (p ? p : 1))
                return slim_error(SLIM_ERR_NOMEM, "%s: too many rows", path);
            double *nx = checked_realloc(st->x, cap * p, sizeof(double));
            if (!nx) return SLIM_ERR_NOMEM;
            st->x = nx;
            double *ny = checked_realloc(st->y, cap, sizeof(double));
            if (!ny) return SLIM_ERR_NOMEM;
            st->y = ny;
            st->row_cap = cap;
        }
        size_t j = 0;
        for (size_t c = 0; c < st->ncols; c++) {
            const char *field = st->fields[c];
            char *end = NULL;
            errno = 0;
            double v = strtod(field, &end);
            if (!*field || *end != '\0' || !isfinite(v))
                return slim_error(SLIM_ERR_FORMAT, "%s:%zu: column '%s': bad number '%s'", path,
                                  *lineno, st->colnames[c], field);
            if (c == target_col)
                st->y[st->rows] = v;
            else
                st->x[st->rows * p + j++] = v;
        }
        st->rows++;
    }
    if (ferror(st->file))
        return slim_error(SLIM_ERR_IO, "%s: read error: %s", path, strerror(errno));
    return SLIM_OK;
}

slim_status slim_lasso_read_csv(const char *path, const char *target, slim_lasso_data *out) {
    memset(out, 0, sizeof *out);
    if (!path || !target) return slim_error(SLIM_ERR_ARG, "read_csv needs a path and a target");
    csv_state st;
    memset(&st, 0, sizeof st);
    st.file = fopen(path, "r");
    if (!st.file) return slim_error(SLIM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t lineno = 0;
    slim_status s = csv_read_header(&st, path, &lineno);
    size_t target_col = st.ncols;
    if (s == SLIM_OK) {
        for (size_t c = 0; c < st.ncols; c++)
            if (strcmp(st.colnames[c], target) == 0) target_col = c;
        if (target_col == st.ncols) {
            char cols[CSV_LIST_MAX];
            list_columns(&st, cols, sizeof cols);
            s = slim_error(SLIM_ERR_ARG, "%s: no column named '%s' (columns: %s)", path, target,
                           cols);
        } else if (st.ncols < 2) {
            s = slim_error(SLIM_ERR_FORMAT, "%s: needs at least one feature column besides '%s'",
                           path, target);
        }
    }
    if (s == SLIM_OK) s = csv_read_rows(&st, path, target_col, &lineno);
    if (s == SLIM_OK && st.rows < 2)
        s = slim_error(SLIM_ERR_FORMAT, "%s: needs at least 2 data rows, found %zu", path, st.rows);
    if (s != SLIM_OK) {
        csv_state_free(&st);
        return s;
    }
    /* Hand the arrays over to `out`. */
    out->n = st.rows;
    out->p = st.ncols - 1;
    out->x = st.x;
    out->y = st.y;
    st.x = st.y = NULL;
    out->target = st.colnames[target_col];
    out->names = slim_calloc(out->p, sizeof(char *));
    if (!out->names) {
        out->p = 0; /* names is NULL: nothing per feature to free */
        csv_state_free(&st);
        slim_lasso_data_free(out);
        return SLIM_ERR_NOMEM;
    }
    for (size_t c = 0, j = 0; c < st.ncols; c++)
        if (c != target_col) out->names[j++] = st.colnames[c];
    /* Every name now belongs to `out`. */
    free(st.colnames);
    st.colnames = NULL;
    csv_state_free(&st);
    return SLIM_OK;
}

/* ---- standardised problem -------------------------------------------- */

void slim_lasso_problem_free(slim_lasso_problem *prob) {
    if (!prob) return;
    free(prob->xs);
    free(prob->yc);
    free(prob->mean);
    free(prob->sd);
    memset(prob, 0, sizeof *prob);
}

/* u: (n) = xs·v; w: (p) = xsᵀu/n, i.e. w = (xsᵀxs/n)·v. */
static void gram_times(const slim_lasso_problem *prob, const double *v, double *u, double *w) {
    int n = (int)prob->n, p = (int)prob->p;
    cblas_dgemv(CblasRowMajor, CblasNoTrans, n, p, 1.0, prob->xs, p, v, 1, 0.0, u, 1);
    cblas_dgemv(CblasRowMajor, CblasTrans, n, p, 1.0 / (double)n, prob->xs, p, u, 1, 0.0, w, 1);
}

/* Largest eigenvalue of xsᵀxs/n by power iteration from a fixed
 * pseudo-random start (a fixed vector such as all ones could be orthogonal
 * to the top eigenvector). */
static slim_status largest_eigenvalue(const slim_lasso_problem *prob, double *out) {
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

slim_status slim_lasso_problem_init(slim_lasso_problem *prob, const double *x, const double *y,
                                    size_t n, size_t p) {
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
        slim_lasso_problem_free(prob);
        return SLIM_ERR_NOMEM;
    }
    /* Why standardise: the L1 penalty is not scale invariant. Measuring a
     * feature in smaller units (metres -> kilometres) multiplies the
     * coefficient it needs by the same factor, and λ|β_j| then penalises that
     * feature more, so which features survive would depend on the units.
     * With every column at mean 0 and variance 1 the penalty treats them
     * alike; centring y and X also removes the unpenalised intercept from
     * the problem (it is recovered in slim_lasso_to_original). */
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
    if (s != SLIM_OK) slim_lasso_problem_free(prob);
    return s;
}

/* ---- the pieces of the solver ------------------------------------------ */

/* r: (n) = yc − xs·β;  g: (p) = xsᵀr/n (the negative gradient of the smooth
 * part). Every gradient goes through here, so λ_max and the first step from
 * β = 0 see bit-identical values. */
static void residual_and_grad(const slim_lasso_problem *prob, const double *beta, double *r,
                              double *g) {
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

double slim_lasso_lambda_max(const slim_lasso_problem *prob, size_t group_size) {
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

double slim_lasso_kkt(const slim_lasso_problem *prob, const double *beta, double lambda,
                      size_t group_size) {
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

double slim_lasso_objective(const slim_lasso_problem *prob, const double *beta, double lambda,
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

void slim_lasso_to_original(const slim_lasso_problem *prob, const double *beta_std,
                            double *beta_orig, double *intercept) {
    double b0 = prob->y_mean;
    for (size_t j = 0; j < prob->p; j++) {
        /* A constant column's coefficient is 0: its effect, if any, is part
         * of the intercept. */
        beta_orig[j] = prob->sd[j] > 0 ? beta_std[j] / prob->sd[j] : 0.0;
        b0 -= beta_orig[j] * prob->mean[j];
    }
    *intercept = b0;
}

void slim_lasso_options_default(slim_lasso_options *opt) {
    opt->method = SLIM_LASSO_FISTA;
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
static void run_ista(const slim_lasso_problem *prob, double lambda, const slim_lasso_options *opt,
                     size_t group, double *beta, fit_work *w, slim_lasso_result *res) {
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
static void run_fista(const slim_lasso_problem *prob, double lambda, const slim_lasso_options *opt,
                      size_t group, double *beta, fit_work *w, slim_lasso_result *res) {
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

slim_status slim_lasso_fit(const slim_lasso_problem *prob, double lambda,
                           const slim_lasso_options *opt_in, double *beta,
                           slim_lasso_result *result) {
    slim_lasso_options opt;
    if (opt_in)
        opt = *opt_in;
    else
        slim_lasso_options_default(&opt);
    if (!(lambda >= 0) || !isfinite(lambda))
        return slim_error(SLIM_ERR_ARG, "lasso: lambda must be finite and >= 0 (got %g)", lambda);
    if (!(opt.tol > 0)) return slim_error(SLIM_ERR_ARG, "lasso: tol must be > 0 (got %g)", opt.tol);
    if (opt.method != SLIM_LASSO_ISTA && opt.method != SLIM_LASSO_FISTA)
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

    slim_lasso_result res = {0, 0, 0, 0, 0};
    residual_and_grad(prob, beta, w.r, w.g);
    res.kkt = kkt_from_grad(beta, w.g, p, lambda, group);
    /* The start may already be optimal (β = 0 for λ >= λ_max, or a warm
     * start): then no step is taken at all. */
    if (!(res.kkt < opt.tol)) {
        if (opt.method == SLIM_LASSO_ISTA)
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
