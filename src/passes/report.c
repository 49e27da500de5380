/* The before -> after table of a prune, and the check that proves a prune
 * exact: both models on the same inputs, logits compared. */
#include "slim/prune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void slim_prune_report_free(slim_prune_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_notes && r->notes; i++)
        free(r->notes[i]);
    free(r->notes);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

/* "12,345,678" for counts: MACs and parameters are easier to compare when
 * the digits are grouped. */
static const char *grouped(double v, char *buf, size_t len) {
    char digits[64];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t n = strlen(digits), o = 0;
    for (size_t i = 0; i < n && o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0 && digits[i - 1] != '-') buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static double pct(double after, double before) {
    return before > 0 ? 100.0 * after / before : 100.0;
}

/* The "removed because" cell: the nonzero counts by reason, or "". */
static const char *why_cell(int gamma_zero, int zero_filter, int fixed_input, int approx, char *buf,
                            size_t len) {
    const int n[] = {gamma_zero, zero_filter, fixed_input, approx};
    const char *what[] = {"gamma=0", "zero filter", "fixed input", "approx"};
    size_t o = 0;
    buf[0] = '\0';
    for (int t = 0; t < 4; t++) {
        if (n[t] == 0 || o >= len) continue;
        int w = snprintf(buf + o, len - o, "%s%d %s", o ? ", " : "", n[t], what[t]);
        if (w > 0) o += (size_t)w;
    }
    return buf;
}

void slim_prune_report_print(const slim_prune_report *r, FILE *f) {
    if (!r || !f) return;
    char a[40], b[40], cell[96], why[96];
    /* The reasons column only when they differ from the classic gamma = 0
     * rule, so that such a prune prints exactly as it always has. */
    int show_why = r->removed_zero_filter > 0 || r->removed_fixed_input > 0;
    if (r->options.mode == SLIM_PRUNE_PERCENT)
        fprintf(f, "prune: percent mode, %g%% of %d group channels\n", (double)r->options.percent,
                r->channels_before);
    else
        fprintf(f, "prune: threshold mode, |gamma| <= %g\n", (double)r->options.threshold);
    int name_w = 5;
    for (int i = 0; i < r->n_rows; i++) {
        int len = (int)strlen(r->rows[i].name);
        if (len > name_w) name_w = len;
    }
    fprintf(f, "%-*s  %-5s  %13s  %23s  %29s%s\n", name_w, "layer", "kind", "channels", "params",
            "MACs", show_why ? "  removed because" : "");
    for (int i = 0; i < r->n_rows; i++) {
        const slim_prune_layer_report *row = &r->rows[i];
        fprintf(f, "%-*s  %-5s", name_w, row->name, slim_layer_kind_name(row->kind));
        snprintf(cell, sizeof cell, "%d -> %d", row->channels_before, row->channels_after);
        fprintf(f, "  %13s", cell);
        snprintf(cell, sizeof cell, "%s -> %s", grouped((double)row->params_before, a, sizeof a),
                 grouped((double)row->params_after, b, sizeof b));
        fprintf(f, "  %23s", cell);
        snprintf(cell, sizeof cell, "%s -> %s", grouped(row->macs_before, a, sizeof a),
                 grouped(row->macs_after, b, sizeof b));
        fprintf(f, "  %29s", cell);
        why_cell(row->removed_gamma_zero, row->removed_zero_filter, row->removed_fixed_input,
                 row->removed_approx, why, sizeof why);
        fprintf(f, "%s%s\n", show_why && why[0] ? "  " : "", show_why ? why : "");
    }
    fprintf(f, "%-*s  %-5s", name_w, "total", "");
    snprintf(cell, sizeof cell, "%d -> %d", r->channels_before, r->channels_after);
    fprintf(f, "  %13s", cell);
    snprintf(cell, sizeof cell, "%s -> %s", grouped((double)r->params_before, a, sizeof a),
             grouped((double)r->params_after, b, sizeof b));
    fprintf(f, "  %23s", cell);
    snprintf(cell, sizeof cell, "%s -> %s", grouped(r->macs_before, a, sizeof a),
             grouped(r->macs_after, b, sizeof b));
    fprintf(f, "  %29s", cell);
    why_cell(r->removed_gamma_zero, r->removed_zero_filter, r->removed_fixed_input,
             r->removed_nonzero, why, sizeof why);
    fprintf(f, "%s%s\n", show_why && why[0] ? "  " : "", show_why ? why : "");
    fprintf(f, "%-*s  %-5s  %12.1f%%  %22.1f%%  %28.1f%%\n", name_w, "kept", "",
            pct(r->channels_after, r->channels_before),
            pct((double)r->params_after, (double)r->params_before),
            pct(r->macs_after, r->macs_before));
    fprintf(f,
            "(channels: output channels per layer; the total counts the %d prunable group%s' "
            "channels once each)\n",
            r->n_groups, r->n_groups == 1 ? "" : "s");
    for (int i = 0; i < r->n_notes; i++)
        fprintf(f, "note: %s\n", r->notes[i]);
}

/* ---- comparing two models --------------------------------------------------- */

/* Images per forward: large enough for the fast kernels to pay, small enough
 * that two batches of activations of a benchmark network stay modest. */
#define COMPARE_BATCH 64

/* Runs one batch: logits (nb, classes) into out. */
static slim_status logits_of(slim_model *m, slim_tape *tape, const float *x, int nb, float *out) {
    const slim_layer *in = &m->layers[0];
    slim_tape_reset(tape);
    slim_tensor *t = slim_tape_tensor(tape, 4, (int[]){nb, in->c, in->h, in->w}, 0);
    if (!t) return SLIM_ERR_NOMEM;
    memcpy(t->data, x, slim_tensor_numel(t) * sizeof(float));
    slim_tensor *logits;
    SLIM_TRY(slim_model_forward(m, tape, t, 0, &logits));
    if (logits->ndim != 2 || logits->shape[0] != nb || logits->shape[1] != m->n_classes)
        return slim_error(SLIM_ERR_SHAPE, "compare: unexpected logits shape");
    memcpy(out, logits->data, (size_t)nb * (size_t)m->n_classes * sizeof(float));
    return SLIM_OK;
}

static int argmax(const float *v, int k) {
    int best = 0;
    for (int i = 1; i < k; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

slim_status slim_prune_compare(slim_model *a, slim_model *b, const float *x, int n,
                               slim_backend backend, double *max_delta, double *max_abs,
                               size_t *argmax_mismatches) {
    if (!a || !b || !x || n < 1)
        return slim_error(SLIM_ERR_ARG, "slim_prune_compare: need two models and n >= 1 inputs");
    const slim_layer *ia = &a->layers[0], *ib = &b->layers[0];
    if (ia->c != ib->c || ia->h != ib->h || ia->w != ib->w || a->n_classes != b->n_classes)
        return slim_error(SLIM_ERR_SHAPE,
                          "slim_prune_compare: models differ in input (%dx%dx%d vs %dx%dx%d) or "
                          "classes (%d vs %d)",
                          ia->c, ia->h, ia->w, ib->c, ib->h, ib->w, a->n_classes, b->n_classes);
    int k = a->n_classes;
    size_t image = (size_t)ia->c * (size_t)ia->h * (size_t)ia->w;
    float *la = slim_calloc((size_t)COMPARE_BATCH * (size_t)k, sizeof(float));
    float *lb = slim_calloc((size_t)COMPARE_BATCH * (size_t)k, sizeof(float));
    slim_tape tape;
    slim_tape_init(&tape, backend);
    slim_status st = la && lb ? SLIM_OK : SLIM_ERR_NOMEM;
    double delta = 0, big = 0;
    size_t mism = 0;
    for (int s = 0; s < n && st == SLIM_OK; s += COMPARE_BATCH) {
        int nb = n - s < COMPARE_BATCH ? n - s : COMPARE_BATCH;
        const float *xs = x + (size_t)s * image;
        st = logits_of(a, &tape, xs, nb, la);
        if (st == SLIM_OK) st = logits_of(b, &tape, xs, nb, lb);
        if (st != SLIM_OK) break;
        for (int i = 0; i < nb; i++) {
            const float *ra = la + (size_t)i * k, *rb = lb + (size_t)i * k;
            for (int c = 0; c < k; c++) {
                double d = fabs((double)ra[c] - (double)rb[c]);
                if (!(d <= delta)) delta = isnan(d) ? INFINITY : d;
                if (fabs((double)ra[c]) > big) big = fabs((double)ra[c]);
            }
            mism += argmax(ra, k) != argmax(rb, k);
        }
    }
    slim_tape_free(&tape);
    free(la);
    free(lb);
    if (st != SLIM_OK) return st;
    if (max_delta) *max_delta = delta;
    if (max_abs) *max_abs = big;
    if (argmax_mismatches) *argmax_mismatches = mism;
    return SLIM_OK;
}
