/* The latency table (include/slim/passes.h) measured on slim's runtime:
 * each conv and dense layer alone, batch 1, at a grid of widths. */
#include "kernels/own.h"
#include "slim/kernels.h"
#include "slim/measure.h"
#include "slim/nn.h"
#include "slim/passes.h"
#include "slim/runtime.h"
#include "slim/version.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P SLIM_LATENCY_POINTS
/* Runs before the timed ones (the first builds the plan), and timed runs
 * per point: the least counts, as the least disturbed on a busy machine. */
#define WARM 3
#define RUNS 20
#define HEAD "gap\ndense out=1\n"

/* The least time in microseconds of RUNS batch-1 runs of model m. */
static slim_status time_model(const slim_model *m, double *us) {
    slim_runtime *rt = NULL;
    SLIM_TRY(slim_runtime_create(m, 1, &rt));
    const slim_layer *in = &m->layers[0];
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    float *x = slim_calloc(img, sizeof(float));
    float *logits = slim_calloc((size_t)m->n_classes, sizeof(float));
    slim_status st = x && logits ? SLIM_OK : SLIM_ERR_NOMEM;
    for (size_t k = 0; x && k < img; k++)
        x[k] = 0.5f;
    double best = INFINITY;
    for (int r = 0; st == SLIM_OK && r < WARM + RUNS; r++) {
        double t0 = slim_clock_s();
        st = slim_runtime_run(rt, x, 1, logits);
        double t = slim_clock_s() - t0;
        if (r >= WARM && t < best) best = t;
    }
    *us = 1e6 * best;
    free(x);
    free(logits);
    slim_runtime_free(rt);
    return st;
}

/* time_model of the model the text describes. */
static slim_status time_text(const char *text, double *us) {
    slim_model *m = NULL;
    SLIM_TRY(slim_model_parse(text, "latency probe", &m));
    slim_status st = time_model(m, us);
    slim_model_free(m);
    return st;
}

/* time_text of an input of c x h x w features and the head every probe
 * ends with (a gap and a dense layer of one output, which the runtime
 * fuses into one fast step): a run's own cost, the input's and the head's. */
static slim_status time_base(int c, int h, int w, double *us) {
    char text[96];
    snprintf(text, sizeof text, "input shape=%dx%dx%d\n" HEAD, c, h, w);
    return time_text(text, us);
}

/* Layer l alone at in -> out features (a depthwise conv: in = out =
 * groups), after an input of its input's shape and before the head (a
 * conv with a bias and relu, which the runtime fuses). */
static slim_status time_probe(const slim_layer *l, int depthwise, int in, int out, double *us) {
    char probe[256];
    if (l->kind == SLIM_LAYER_DENSE) {
        snprintf(probe, sizeof probe, "input shape=%dx1x1\ndense probe out=%d\n" HEAD, in, out);
    } else {
        int groups = depthwise ? out : l->groups > 0 ? l->groups : 1;
        snprintf(probe, sizeof probe,
                 "input shape=%dx%dx%d\nconv probe out=%d k=%d stride=%d pad=%d groups=%d "
                 "bias=1\nrelu\n" HEAD,
                 in, l->in_h, l->in_w, out, l->k, l->stride > 0 ? l->stride : 1, l->pad, groups);
    }
    return time_text(probe, us);
}

/* P widths from one unit (a group) to full in steps of a quarter, whole
 * multiples of unit. */
static void grid(int full, int unit, float *w) {
    for (int k = 0; k < P; k++) {
        double f = (double)k / (P - 1);
        int n = (int)lround(f * full / unit);
        w[k] = (float)(unit * (n < 1 ? 1 : n));
    }
    w[P - 1] = (float)full;
}

/* Layer i's grid and times: each probe less what its input and output
 * cost alone (a base at the input's shape and one at the output's, plus
 * `empty`, a run's own cost, which both bases count): what the layer
 * adds. Repeated widths are timed once. */
static slim_status measure_layer(const slim_layer *l, int i, double empty, slim_latency_table *t) {
    int groups = l->kind == SLIM_LAYER_CONV && l->groups > 1 ? l->groups : 1;
    int depthwise = groups > 1 && groups == l->in_c && groups == l->c;
    float *win = t->in + (size_t)i * P, *wout = t->out + (size_t)i * P;
    float *u = t->us + (size_t)i * P * P;
    grid(l->c, depthwise ? 1 : groups, wout);
    if (depthwise)
        memcpy(win, wout, P * sizeof(float));
    else
        grid(l->in_c, groups, win);
    double base_in[P], base_out[P];
    int dense = l->kind == SLIM_LAYER_DENSE;
    for (int k = 0; k < P; k++) {
        SLIM_TRY(time_base((int)win[k], dense ? 1 : l->in_h, dense ? 1 : l->in_w, &base_in[k]));
        SLIM_TRY(time_base((int)wout[k], l->h, l->w, &base_out[k]));
    }
    for (int a = 0; a < P; a++)
        for (int b = 0; b < P; b++) {
            double us;
            if (a > 0 && (depthwise || win[a] == win[a - 1]))
                us = u[(a - 1) * P + b]; /* a depthwise time depends on out alone */
            else if (b > 0 && wout[b] == wout[b - 1])
                us = u[a * P + b - 1];
            else {
                int in = depthwise ? b : a;
                SLIM_TRY(time_probe(l, depthwise, (int)win[in], (int)wout[b], &us));
                us -= base_in[in] + base_out[b] - empty;
                if (us < 0) us = 0;
            }
            u[a * P + b] = (float)us;
        }
    /* Never more at a smaller width, so that no channel's marginal latency
     * is negative: each time becomes the least at its widths or larger.
     * Timing noise only adds (a thread descheduled, a cache cold), so the
     * least is the better estimate. */
    for (int a = P - 1; a >= 0; a--)
        for (int b = P - 1; b >= 0; b--) {
            float *v = &u[a * P + b];
            if (a < P - 1 && u[(a + 1) * P + b] < *v) *v = u[(a + 1) * P + b];
            if (b < P - 1 && u[a * P + b + 1] < *v) *v = u[a * P + b + 1];
        }
    return SLIM_OK;
}

slim_status slim_latency_table_measure(const slim_model *m, slim_latency_table *out) {
    if (!m || !out) return slim_error(SLIM_ERR_ARG, "slim_latency_table_measure: no model");
    SLIM_TRY(slim_latency_table_alloc(out, m->n_layers));
    /* A run's own cost is subtracted from every time: the least of a few
     * tries, since noise only adds. */
    double empty = INFINITY, e;
    slim_status st = SLIM_OK;
    for (int k = 0; st == SLIM_OK && k < 5; k++)
        if ((st = time_base(1, 1, 1, &e)) == SLIM_OK && e < empty) empty = e;
    for (int i = 0; st == SLIM_OK && i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE)
            st = measure_layer(l, i, empty, out);
    }
    double whole = 0;
    if (st == SLIM_OK) st = time_model(m, &whole);
    if (st == SLIM_OK) {
        out->rest_us = 0;
        out->rest_us = whole - slim_latency_model_us(out, m);
        out->threads = slim_get_threads();
        snprintf(out->isa, sizeof out->isa, "%s", own_isa_name(own_isa_active()));
        snprintf(out->version, sizeof out->version, "%s", SLIM_VERSION);
        st = slim_latency_table_check(out, m, "the measured latency table");
    }
    if (st != SLIM_OK) slim_latency_table_free(out);
    return st;
}
