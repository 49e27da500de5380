/* Helpers shared by the runtime's tests (see runtime_check.h). */
#include "runtime_check.h"

#include "slim/autograd.h"

#include "runtime/runtime_internal.h"

#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CALIB_BATCH 8 /* images whose statistics become the running ones */

slim_model *rc_load(const char *rel) {
    char path[1024];
    slim_model *m = NULL;
    slim_status st = slim_model_load_file(tu_source_path(rel, path, sizeof path), &m);
    if (st != SLIM_OK) fail_msg("%s: %s", rel, slim_last_error());
    return m;
}

slim_model *rc_parse(const char *text) {
    slim_model *m = NULL;
    if (slim_model_parse(text, "<test>", &m) != SLIM_OK) fail_msg("%s", slim_last_error());
    return m;
}

size_t rc_input_numel(const slim_model *m) {
    const slim_layer *in = &m->layers[0];
    return (size_t)in->c * (size_t)in->h * (size_t)in->w;
}

void rc_forward_ref(slim_model *m, const float *x, int n, int training, float *logits) {
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    const slim_layer *in = &m->layers[0];
    int shape[4] = {n, in->c, in->h, in->w};
    slim_tensor *xt = slim_tape_tensor(&tape, 4, shape, 0);
    assert_non_null(xt);
    memcpy(xt->data, x, (size_t)n * rc_input_numel(m) * sizeof(float));
    slim_tensor *y = NULL;
    if (slim_model_forward(m, &tape, xt, training, &y) != SLIM_OK)
        fail_msg("forward: %s", slim_last_error());
    if (logits) memcpy(logits, y->data, (size_t)n * m->n_classes * sizeof(float));
    slim_tape_free(&tape);
}

void rc_randomize(slim_model *m, slim_rng *rng) {
    slim_model_init_params(m, rng);
    for (int p = 0; p < m->n_params; p++) {
        slim_param *q = &m->params[p];
        if (q->role == SLIM_PARAM_GAMMA) {
            for (size_t j = 0; j < q->numel; j++) {
                float g = 0.5f + slim_rng_uniform(rng);
                q->data[j] = slim_rng_uniform(rng) < 0.2f ? -g : g;
            }
        } else if (q->role == SLIM_PARAM_BETA || q->role == SLIM_PARAM_BIASMAP) {
            tu_fill_uniform(rng, q->data, q->numel, -0.5f, 0.5f);
        }
    }
    float *x = malloc((size_t)CALIB_BATCH * rc_input_numel(m) * sizeof(float));
    assert_non_null(x);
    tu_fill_uniform(rng, x, (size_t)CALIB_BATCH * rc_input_numel(m), -1.5f, 1.5f);
    float saved[SLIM_MODEL_MAX_LAYERS / 16];
    int nb = 0;
    for (int i = 0; i < m->n_layers && nb < (int)(sizeof saved / sizeof saved[0]); i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) {
            saved[nb++] = m->layers[i].momentum;
            m->layers[i].momentum = 1.0f;
        }
    rc_forward_ref(m, x, CALIB_BATCH, 1, NULL);
    nb = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) m->layers[i].momentum = saved[nb++];
    free(x);
}

slim_model *rc_parse_random(const char *text, slim_rng *rng, uint64_t a, uint64_t b) {
    slim_rng_seed(rng, a, b);
    slim_model *m = rc_parse(text);
    rc_randomize(m, rng);
    return m;
}

float *rc_random_input(const slim_model *m, int n, slim_rng *rng) {
    size_t count = (size_t)n * rc_input_numel(m);
    float *x = malloc(count * sizeof(float));
    assert_non_null(x);
    tu_fill_uniform(rng, x, count, -1.5f, 1.5f);
    return x;
}

int rc_count_kind(const slim_model *m, slim_layer_kind kind) {
    int c = 0;
    for (int i = 0; i < m->n_layers; i++)
        c += m->layers[i].kind == kind;
    return c;
}

int rc_count_str(const char *text, const char *what) {
    int c = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        c++;
    return c;
}

void rc_expect_close(const char *what, const float *got, const float *want, size_t count,
                     double tol) {
    double scale = fmax(1.0, tu_max_abs(want, count));
    double err = tu_max_abs_diff(got, want, count);
    if (!(err <= tol * scale)) fail_msg("%s: max |diff| %.3g > %.1g * %.3g", what, err, tol, scale);
}

/* Runs batch n of x on rt into got and holds it to want. */
static void run_against(slim_runtime *rt, const float *x, int n, const float *want, float *got,
                        size_t k, const char *name) {
    memset(got, 0xff, (size_t)n * k * sizeof(float)); /* NaN: unwritten shows */
    if (slim_runtime_run(rt, x, n, got) != SLIM_OK)
        fail_msg("%s: run n=%d: %s", name, n, slim_last_error());
    double scale = fmax(1.0, tu_max_abs(want, (size_t)n * k));
    double err = tu_max_abs_diff(got, want, (size_t)n * k);
    print_message("%s n=%d: max |diff| %.2g, scale %.3g\n", name, n, err, scale);
    if (!(err <= TOL_RUNTIME * scale)) {
        char *plan = NULL;
        if (slim_runtime_describe(rt, n, &plan) == SLIM_OK) fprintf(stderr, "%s", plan);
        free(plan);
        fail_msg("%s n=%d: max |diff| %.3g > %.1g * %.3g", name, n, err, TOL_RUNTIME, scale);
    }
}

void rc_check_runtime_of(slim_model *ref, const slim_model *m, slim_rng *rng, const char *name,
                         int tiled) {
    float *x = rc_random_input(ref, REF_BATCH, rng);
    size_t k = (size_t)ref->n_classes;
    float *want = malloc(REF_BATCH * k * sizeof(float));
    float *got = malloc(REF_BATCH * k * sizeof(float));
    assert_non_null(want);
    assert_non_null(got);
    rc_forward_ref(ref, x, REF_BATCH, 0, want);
    /* The logits must not be trivially small, or the test would be weak. */
    assert_true(tu_max_abs(want, REF_BATCH * k) > 0.2);
    slim_runtime *rt = NULL;
    if (slim_runtime_create(m, REF_BATCH, &rt) != SLIM_OK)
        fail_msg("%s: create: %s", name, slim_last_error());
    if (tiled) {
        rt_set_tile(rt, 6);
        char what[96];
        snprintf(what, sizeof what, "%s (tiles of 6)", name);
        run_against(rt, x, REF_BATCH, want, got, k, what);
    } else {
        const int sizes[] = {1, 3, REF_BATCH};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            run_against(rt, x, sizes[s], want, got, k, name);
    }
    slim_runtime_free(rt);
    free(x);
    free(want);
    free(got);
}

void rc_check_runtime(slim_model *m, slim_rng *rng, const char *name) {
    rc_check_runtime_of(m, m, rng, name, 0);
}

void rc_check_runtime_tiled(slim_model *m, slim_rng *rng, const char *name) {
    rc_check_runtime_of(m, m, rng, name, 1);
}

void rc_check_fold(slim_model *m, slim_rng *rng, const char *name) {
    slim_model *f = NULL;
    if (slim_model_fold_bn(m, &f) != SLIM_OK) fail_msg("%s: fold: %s", name, slim_last_error());
    float *x = rc_random_input(m, 2, rng);
    size_t k = (size_t)m->n_classes;
    float want[2 * 64], got[2 * 64];
    assert_true(k <= 64);
    rc_forward_ref(m, x, 2, 0, want);
    rc_forward_ref(f, x, 2, 0, got);
    assert_true(tu_max_abs(want, 2 * k) > 0.2);
    rc_expect_close(name, got, want, 2 * k, TOL_FOLD);
    free(x);
    slim_model_free(f);
}

char *rc_plan_of(const slim_model *m, int n) {
    slim_runtime *rt = NULL;
    char *plan = NULL;
    assert_int_equal(slim_runtime_create(m, n, &rt), SLIM_OK);
    assert_int_equal(slim_runtime_describe(rt, n, &plan), SLIM_OK);
    slim_runtime_free(rt);
    return plan;
}

extern char **environ;

void rc_run_avx2_child(const char *self) {
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    assert_non_null(env);
    size_t k = 0; /* the caller's environment but its caps, which the child sets */
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ONEDNN_MAX_CPU_ISA=", 19) != 0 &&
            strncmp(environ[i], "SLIM_ISA=", 9) != 0)
            env[k++] = environ[i];
    env[k] = "ONEDNN_MAX_CPU_ISA=AVX2";
    env[k + 1] = "SLIM_ISA=generic"; /* oneDNN's layouts alone */
    env[k + 2] = CHILD_ENV "=1";
    char *argv[] = {"test_runtime", NULL};
    pid_t pid;
    int err = posix_spawn(&pid, self, NULL, NULL, argv, env);
    free(env);
    if (err != 0) fail_msg("posix_spawn: error %d", err);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}
