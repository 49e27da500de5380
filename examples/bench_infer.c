/* Inference speed of a model: the oneDNN runtime (slim_runtime_*) against
 * the training-time forward (slim_model_forward, inference mode, fast
 * backend), on random Fashion-MNIST-sized inputs and random weights.
 *
 *   build/examples/bench_infer MODEL.net [--batch 256] [--iters N (20)]
 *                              [--threads T (2)] [--latency-runs R (200)]
 *                              [--plan]
 *
 * Prints images/s at the batch size (from the median of N timed runs after
 * 3 warm-up runs) and the median latency of R single-image runs (after 20
 * warm-up runs), for both paths, each with the fastest run in brackets;
 * --plan prints the runtime's plans first.
 */
#include "slim/autograd.h"
#include "slim/nn.h"
#include "slim/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "bench_infer: error: %s: %s\n", what, slim_last_error());
    return 1;
}

/* One way of running a batch: the runtime, or the forward on a tape. */
typedef struct runner {
    slim_runtime *rt; /* NULL: use the forward */
    slim_model *model;
    slim_tape tape;
    float *logits;
} runner;

static slim_status run_once(runner *r, const float *x, int n) {
    if (r->rt) return slim_runtime_run(r->rt, x, n, r->logits);
    const slim_layer *in = &r->model->layers[0];
    slim_tape_reset(&r->tape);
    slim_tensor *xt =
        slim_tape_wrap(&r->tape, (float *)x, NULL, 4, (int[]){n, in->c, in->h, in->w});
    slim_tensor *y;
    if (!xt) return SLIM_ERR_NOMEM;
    SLIM_TRY(slim_model_forward(r->model, &r->tape, xt, 0, &y));
    memcpy(r->logits, y->data, (size_t)n * r->model->n_classes * sizeof(float));
    return SLIM_OK;
}

/* Times `runs` runs at batch n after `warm` warm-up runs: the median and
 * the fastest, in seconds. The median resists the odd preempted run on a
 * busy machine; the fastest shows what the code does when left alone. */
static slim_status time_runs(runner *r, const float *x, int n, int warm, int runs, double *med,
                             double *best) {
    double *t = malloc((size_t)runs * sizeof *t);
    if (!t) return slim_error(SLIM_ERR_NOMEM, "out of memory");
    slim_status st = SLIM_OK;
    for (int i = 0; i < warm && st == SLIM_OK; i++)
        st = run_once(r, x, n);
    for (int i = 0; i < runs && st == SLIM_OK; i++) {
        double a = slim_clock_s();
        st = run_once(r, x, n);
        t[i] = slim_clock_s() - a;
    }
    if (st == SLIM_OK) {
        *med = slim_median(t, runs);
        *best = t[0];
    }
    free(t);
    return st;
}

static slim_status report(const char *what, runner *r, const float *x, int batch, int iters,
                          int lat_runs) {
    double med, best, lmed, lbest;
    SLIM_TRY(time_runs(r, x, batch, 3, iters, &med, &best));
    SLIM_TRY(time_runs(r, x, 1, 20, lat_runs, &lmed, &lbest));
    printf("%-28s %8.0f images/s (best %.0f)   batch-1 median %.3f ms (best %.3f)\n", what,
           batch / med, batch / best, 1e3 * lmed, 1e3 * lbest);
    return SLIM_OK;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int batch = 256, iters = 20, threads = 2, lat_runs = 200, show_plan = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--latency-runs") == 0 && i + 1 < argc)
            lat_runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--plan") == 0)
            show_plan = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_infer MODEL.net [--batch 256] [--iters 20] "
                            "[--threads 2] [--latency-runs 200] [--plan]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (!path || batch < 1 || iters < 1 || lat_runs < 1) {
        fprintf(stderr, "usage: bench_infer MODEL.net [--batch 256] [--iters 20] [--threads 2] "
                        "[--latency-runs 200] [--plan]\n");
        return 2;
    }
    slim_set_threads(threads);

    slim_model *model = NULL;
    if (slim_model_load_file(path, &model) != SLIM_OK) return fail("model");
    slim_rng rng;
    slim_rng_seed(&rng, 1, 1);
    slim_model_init_params(model, &rng);
    const slim_layer *in = &model->layers[0];
    size_t count = (size_t)batch * in->c * in->h * in->w;
    float *x = malloc(count * sizeof *x);
    float *logits = malloc((size_t)batch * model->n_classes * sizeof *logits);
    if (!x || !logits) {
        fprintf(stderr, "bench_infer: error: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < count; i++)
        x[i] = 2.0f * slim_rng_uniform(&rng) - 1.0f;

    runner rt = {.model = model, .logits = logits};
    if (slim_runtime_create(model, batch, &rt.rt) != SLIM_OK) return fail("runtime");
    if (show_plan) {
        char *plan = NULL;
        if (slim_runtime_describe(rt.rt, batch, &plan) != SLIM_OK) return fail("plan");
        printf("%s", plan);
        free(plan);
        if (slim_runtime_describe(rt.rt, 1, &plan) != SLIM_OK) return fail("plan");
        printf("%s", plan);
        free(plan);
    }
    runner fwd = {.model = model, .logits = logits};
    slim_tape_init(&fwd.tape, SLIM_BACKEND_FAST);

    printf("%s: %.1f M multiply-adds per image, %d threads, batch %d\n", path,
           slim_model_macs(model) / 1e6, slim_get_threads(), batch);
    if (report("runtime (oneDNN plan):", &rt, x, batch, iters, lat_runs) != SLIM_OK)
        return fail("runtime run");
    if (report("slim_model_forward (fast):", &fwd, x, batch, iters, lat_runs) != SLIM_OK)
        return fail("forward");

    slim_runtime_stats st;
    slim_runtime_get_stats(rt.rt, &st);
    printf("runtime memory: activations %.1f MiB, scratchpad %.1f KiB, weights %.1f KiB\n",
           st.arena_bytes / 1048576.0, st.scratchpad_bytes / 1024.0, st.weight_bytes / 1024.0);
    slim_tape_free(&fwd.tape);
    slim_runtime_free(rt.rt);
    slim_model_free(model);
    free(x);
    free(logits);
    return 0;
}
