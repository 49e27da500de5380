/* The slim side of tools/bench: measures vgg-fm (or any model file or
 * checkpoint) the way tools/peer_torch.py measures PyTorch, and prints one
 * JSON object.
 *
 *   build/tools/slim_bench train MODEL [--batches N (100)] [--threads T (2)]
 *       training images/s over N batches of 128 after 5 warm-up batches
 *       (forward, loss, backward, SGD lr 0.05 momentum 0.9 wd 5e-4), peak RSS
 *   build/tools/slim_bench infer MODEL [--threads T] [--prune-fraction F]
 *                              [--passes N (3)] [--images N (all)] [--pruned-only] [--plan]
 *                              [--profile]
 *       inference images/s at batch 256 over the test set (its first N
 *       images with --images: under a sanitizer, say; below 256 a single
 *       partial batch, not comparable with batch-256 figures) and the median
 *       batch-1 latency of 200 runs, with the fused inference runtime, the
 *       best of N passes (and the worst pass's median: the spread); with
 *       F > 0 also the same for a copy pruned at threshold 0 after zeroing
 *       gamma in a fraction F of every BN's channels, with both MAC counts,
 *       the two models' passes alternating;
 *       --pruned-only measures the pruned copy alone (to profile it);
 *       --plan prints each model's inference plan to stderr, --profile the
 *       time of each of its steps (slim_runtime_profile: the plan a batch of
 *       256 runs per tile, each step alone, median of 200 runs).
 *   build/tools/slim_bench prune MODEL --prune-fraction F --out OUT.ckpt
 *       writes that pruned copy (the synthetic pruned model tools/bench
 *       --zoo exports for its peers) as a checkpoint, with MODEL's metadata
 *       when MODEL is one; times nothing.
 */
#include "slim/autograd.h"
#include "slim/data.h"
#include "slim/model_io.h"
#include "slim/nn.h"
#include "slim/optim.h"
#include "slim/prune.h"
#include "slim/measure.h"
#include "slim/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int fail(const char *what) {
    fprintf(stderr, "slim_bench: error: %s: %s\n", what, slim_last_error());
    return 1;
}

/* A .net file (parameters initialised with a fixed seed) or a checkpoint;
 * *ck (if not NULL) receives a checkpoint's container, NULL for a .net. */
static slim_status load_model_ckpt(const char *path, slim_model **m, slim_ckpt **ck) {
    size_t n = strlen(path);
    if (ck) *ck = NULL;
    if (n > 4 && strcmp(path + n - 4, ".net") == 0) {
        SLIM_TRY(slim_model_load_file(path, m));
        slim_rng rng;
        slim_rng_seed(&rng, 0, 1);
        slim_model_init_params(*m, &rng);
        return SLIM_OK;
    }
    return slim_model_load_ckpt(path, 0, m, ck);
}

static slim_status load_model(const char *path, slim_model **m) {
    return load_model_ckpt(path, m, NULL);
}

static int bench_train(const char *path, int batches) {
    slim_model *m;
    if (load_model(path, &m) != SLIM_OK) return fail(path);
    const slim_layer *in = &m->layers[0];
    slim_data_options opts = {.c = in->c, .h = in->h, .w = in->w};
    slim_dataset *ds;
    if (slim_data_load("fashion-mnist", 1, &opts, &ds) != SLIM_OK) return fail("data");
    slim_sgd opt;
    slim_sgd_config cfg = {.momentum = 0.9f, .weight_decay = 5e-4f, .bn_weight_decay = 5e-4f};
    if (slim_sgd_init(&opt, m, &cfg) != SLIM_OK) return fail("sgd");
    slim_batcher b;
    if (slim_batcher_init(&b, ds, 128, 1) != SLIM_OK) return fail("batcher");
    slim_rng rng;
    slim_rng_seed(&rng, 0, 2);
    slim_batcher_begin_epoch(&b, &rng);
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    float *x = malloc(128 * img * sizeof(float));
    int32_t *y = malloc(128 * sizeof(int32_t));
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_FAST);
    double timed = 0;
    size_t images = 0;
    for (int step = 0; step < 5 + batches; step++) {
        double t0 = slim_clock_s();
        size_t n = slim_batcher_next(&b, x, y);
        if (n == 0) {
            slim_batcher_begin_epoch(&b, &rng);
            n = slim_batcher_next(&b, x, y);
        }
        slim_tape_reset(&tape);
        slim_model_zero_grad(m);
        slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){(int)n, in->c, in->h, in->w});
        slim_tensor *logits, *loss;
        if (slim_model_forward(m, &tape, xt, 1, &logits) != SLIM_OK ||
            slim_op_softmax_xent(&tape, logits, y, &loss) != SLIM_OK ||
            slim_tape_backward(&tape, loss) != SLIM_OK || slim_sgd_step(&opt, m, 0.05f) != SLIM_OK)
            return fail("training step");
        if (step >= 5) {
            timed += slim_clock_s() - t0;
            images += n;
        }
    }
    printf("{\"train_images_per_s\": %.1f, \"peak_rss_mib\": %.1f, \"batches\": %d}\n",
           (double)images / timed, peak_rss_mib(), batches);
    slim_tape_free(&tape);
    free(x);
    free(y);
    slim_batcher_free(&b);
    slim_sgd_free(&opt);
    slim_dataset_free(ds);
    slim_model_free(m);
    return 0;
}

/* One model under measurement and its best figures so far. */
typedef struct bench_model {
    const slim_model *m;
    double ips, latency_ms;  /* best pass, lowest median */
    double latency_worst_ms; /* the highest pass median: the measurement's spread */
} bench_model;

enum { SHOW_PLAN = 1, SHOW_PROFILE = 2 };

/* The text a runtime call just made in *text (its plan or its profile),
 * to stderr; read through the pointer, after the call has set it. */
static int show_text(slim_status st, char **text, const char *what) {
    if (st != SLIM_OK) return fail(what);
    fprintf(stderr, "%s\n", *text);
    free(*text);
    *text = NULL;
    return 0;
}

/* One pass (slim_runtime_measure, on a runtime of its own: another runtime
 * alive slows batch-1 latency): images/s at batch 256 over the data set, and the median
 * batch-1 latency of 200 runs; the best of each is kept. With show, first
 * the model's plan and/or per-step profile for batch 256. */
static int bench_pass(bench_model *b, const slim_dataset *ds, size_t count, int show) {
    if (show) {
        slim_runtime *rt;
        char *text = NULL;
        if (slim_runtime_create(b->m, 256, &rt) != SLIM_OK) return fail("runtime");
        if ((show & SHOW_PLAN) &&
            show_text(slim_runtime_describe(rt, 256, &text), &text, "describe"))
            return 1;
        int n = count < 256 ? (int)count : 256;
        if ((show & SHOW_PROFILE) &&
            show_text(slim_runtime_profile(rt, ds->images, n, 200, &text), &text, "profile"))
            return 1;
        slim_runtime_free(rt);
    }
    slim_runtime_speed sp;
    if (slim_runtime_measure(b->m, ds->images, count, &sp) != SLIM_OK) return fail("run");
    if (sp.images_per_s > b->ips) b->ips = sp.images_per_s;
    if (b->latency_ms == 0 || sp.latency_ms < b->latency_ms) b->latency_ms = sp.latency_ms;
    if (sp.latency_ms > b->latency_worst_ms) b->latency_worst_ms = sp.latency_ms;
    return 0;
}

/* Zeroes gamma in a fraction of each BN's channels (with random beta, so the
 * fold has work to do) and prunes at threshold 0. */
static int make_pruned(slim_model *m, double fraction, slim_model **out) {
    slim_rng rng;
    slim_rng_seed(&rng, 5, 5);
    for (int i = 0; i < m->n_layers; i++) {
        slim_layer *l = &m->layers[i];
        if (l->kind != SLIM_LAYER_BN) continue;
        float *g = m->params[l->p_gamma].data, *b = m->params[l->p_beta].data;
        for (int j = 0; j < l->c; j++)
            if (slim_rng_uniform(&rng) < fraction) {
                g[j] = 0.0f;
                b[j] = slim_rng_uniform(&rng) - 0.5f;
            }
    }
    slim_prune_options po = slim_prune_default_options();
    slim_prune_report rep;
    if (slim_prune(m, &po, out, &rep) != SLIM_OK) return fail("prune");
    slim_prune_report_free(&rep);
    return 0;
}

/* Writes MODEL's pruned copy (make_pruned) to out, with MODEL's metadata. */
static int bench_save_pruned(const char *path, double fraction, const char *out) {
    slim_model *m, *p = NULL;
    slim_ckpt *src, *ck = NULL;
    if (load_model_ckpt(path, &m, &src) != SLIM_OK) return fail(path);
    if (make_pruned(m, fraction, &p)) return 1;
    slim_status st = slim_model_to_ckpt(p, SLIM_CKPT_TRAIN, 0, &ck);
    for (int i = 0; st == SLIM_OK && src && i < src->n_meta; i++)
        st = slim_ckpt_set_meta(ck, src->meta_keys[i], src->meta_values[i]);
    if (st == SLIM_OK) st = slim_ckpt_write(ck, out);
    double ratio = slim_model_macs(p) / slim_model_macs(m);
    slim_ckpt_free(ck);
    slim_ckpt_free(src);
    slim_model_free(p);
    slim_model_free(m);
    if (st != SLIM_OK) return fail(out);
    printf("{\"prune_fraction\": %.4f, \"pruned_mac_ratio\": %.4f}\n", fraction, ratio);
    return 0;
}

/* The unpruned model (unless pruned_only) and, with prune_fraction > 0, its
 * pruned copy, measured in alternating passes: a moment of load on this
 * shared machine then costs one pass, not one model's figure. */
static int bench_infer(const char *path, double prune_fraction, int passes, long images,
                       int pruned_only, int show) {
    slim_model *m, *p = NULL;
    if (load_model(path, &m) != SLIM_OK) return fail(path);
    const slim_layer *in = &m->layers[0];
    slim_data_options opts = {.c = in->c, .h = in->h, .w = in->w};
    slim_dataset *ds;
    /* The test split as floats once, so that the timed runs read them
     * directly. */
    if (slim_data_load("fashion-mnist", 0, &opts, &ds) != SLIM_OK ||
        slim_dataset_to_floats(ds) != SLIM_OK)
        return fail("data");
    size_t count = images > 0 && (size_t)images < ds->n ? (size_t)images : ds->n;
    bench_model full = {pruned_only ? NULL : m, 0, 0, 0}, pruned = {NULL, 0, 0, 0};
    if (prune_fraction > 0) {
        if (make_pruned(m, prune_fraction, &p)) return 1;
        pruned.m = p;
    }
    for (int i = 0; i < passes; i++)
        if ((full.m && bench_pass(&full, ds, count, i == 0 ? show : 0)) ||
            (pruned.m && bench_pass(&pruned, ds, count, i == 0 ? show : 0)))
            return 1;
    const char *sep = "{";
    if (full.m) {
        printf("%s\"infer_images_per_s\": %.1f, \"latency_ms\": %.4f, "
               "\"latency_worst_ms\": %.4f, \"macs\": %.0f",
               sep, full.ips, full.latency_ms, full.latency_worst_ms, slim_model_macs(m));
        sep = ", ";
    }
    if (pruned.m) {
        printf("%s\"pruned_infer_images_per_s\": %.1f, \"pruned_latency_ms\": %.4f, "
               "\"pruned_latency_worst_ms\": %.4f, \"pruned_macs\": %.0f, "
               "\"pruned_mac_ratio\": %.4f",
               sep, pruned.ips, pruned.latency_ms, pruned.latency_worst_ms, slim_model_macs(p),
               slim_model_macs(p) / slim_model_macs(m));
        if (full.m) printf(", \"pruned_time_ratio\": %.4f", full.ips / pruned.ips);
    }
    printf(", \"peak_rss_mib\": %.1f}\n", peak_rss_mib());
    slim_model_free(p);
    slim_dataset_free(ds);
    slim_model_free(m);
    return 0;
}

/* value as a whole number or a number (strtol/strtod taking all of it); 0
 * when it is something else. */
static int whole(const char *value, long *out) {
    char *end;
    *out = strtol(value, &end, 10);
    return end != value && *end == '\0';
}
static int number(const char *value, double *out) {
    char *end;
    *out = strtod(value, &end);
    return end != value && *end == '\0';
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "train") != 0 && strcmp(argv[1], "infer") != 0 &&
                     strcmp(argv[1], "prune") != 0)) {
        fprintf(stderr, "usage: slim_bench train|infer MODEL [--batches N (100)] [--threads T (2)] "
                        "[--prune-fraction F (0)] [--passes N (3)] [--images N (all)] "
                        "[--pruned-only] [--plan] [--profile]\n"
                        "       slim_bench prune MODEL --prune-fraction F --out OUT.ckpt\n");
        return 2;
    }
    const char *out = NULL;
    long batches = 100, threads = 2, passes = 3, images = 0;
    double fraction = 0;
    int show = 0, pruned_only = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--plan") == 0 || strcmp(argv[i], "--profile") == 0) {
            show |= strcmp(argv[i], "--plan") == 0 ? SHOW_PLAN : SHOW_PROFILE;
            continue;
        }
        if (strcmp(argv[i], "--pruned-only") == 0) {
            pruned_only = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "slim_bench: error: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *value = argv[++i], *name = argv[i - 1];
        int ok;
        if (strcmp(name, "--batches") == 0)
            ok = whole(value, &batches);
        else if (strcmp(name, "--threads") == 0)
            ok = whole(value, &threads);
        else if (strcmp(name, "--prune-fraction") == 0)
            ok = number(value, &fraction);
        else if (strcmp(name, "--passes") == 0)
            ok = whole(value, &passes);
        else if (strcmp(name, "--images") == 0)
            ok = whole(value, &images);
        else if (strcmp(name, "--out") == 0)
            ok = *(out = value) != '\0';
        else {
            fprintf(stderr, "slim_bench: error: unknown option %s\n", name);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "slim_bench: error: %s takes a %s, not '%s'\n", name,
                    out == value ? "file name" : "number", value);
            return 2;
        }
    }
    if (batches < 1 || threads < 1 || threads > 1024 || passes < 1 || passes > 1000 ||
        batches > 1000000 || images < 0 || !(fraction >= 0 && fraction < 1) ||
        (pruned_only && fraction <= 0)) {
        fprintf(stderr, "slim_bench: error: --batches (up to 1000000), --threads (up to "
                        "1024) and --passes (up to 1000) take a positive count, --images a "
                        "count (0: all), --prune-fraction a fraction in [0, 1), and "
                        "--pruned-only needs --prune-fraction\n");
        return 2;
    }
    int prune = strcmp(argv[1], "prune") == 0;
    if (prune != (out != NULL) || (prune && fraction <= 0)) {
        fprintf(stderr, "slim_bench: error: prune needs --prune-fraction and --out; --out is "
                        "for prune only\n");
        return 2;
    }
    slim_set_threads((int)threads);
    if (prune) return bench_save_pruned(argv[2], fraction, out);
    return strcmp(argv[1], "train") == 0
               ? bench_train(argv[2], (int)batches)
               : bench_infer(argv[2], fraction, (int)passes, images, pruned_only, show);
}
