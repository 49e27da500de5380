/* The LASSO example's data: a CSV reader and a synthetic sparse problem
 * (see lasso.h). */
#include "lasso.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- data ------------------------------------------------------------- */

void lasso_data_free(lasso_data *data) {
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

slim_status lasso_synthetic(size_t n, size_t p, size_t k, double noise, uint64_t seed,
                            lasso_data *out) {
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
        lasso_data_free(out);
        return SLIM_ERR_NOMEM;
    }
    for (size_t j = 0; j < p; j++) {
        char buf[32];
        snprintf(buf, sizeof buf, "x%zu", j);
        out->names[j] = dup_string(buf);
        if (!out->names[j]) {
            free(perm);
            lasso_data_free(out);
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

slim_status lasso_read_csv(const char *path, const char *target, lasso_data *out) {
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
        lasso_data_free(out);
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
