/* slim report: a before/after comparison of several models (a trained
 * checkpoint, its pruned and fine-tuned versions, exported models) as one
 * Markdown table: test accuracy, channels, parameters, MACs and measured
 * inference speed, each also relative to the first model. */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim/data.h"
#include "slim/model_io.h"
#include "slim/measure.h"
#include "slim/runtime.h"

static struct {
    const char *data;
    int64_t threads, limit, repeats;
} a;

static cli_opt opts[] = {
    {"data", CLI_STRING, "D", "from the first model",
     "Test data (the test split of any --data spec of slim train). Default: the data the first "
     "model was trained on (its 'data' setting), else fashion-mnist. The split, resizing and "
     "normalisation are those the first model records (docs/CHECKPOINT_FORMAT.md).",
     NULL, 0, &a.data, 0},
    {"limit", CLI_INT, "N", "0", "Evaluate on the first N test images (0 = all).", NULL, 0,
     &a.limit, 0},
    {"threads", CLI_INT, "T", "2", "Threads for oneDNN and OpenBLAS (0 = one per processor).", NULL,
     0, &a.threads, 0},
    {"repeats", CLI_INT, "R", "3",
     "Timed rounds: in each, every model in turn makes one pass over the test set and 200 "
     "batch-1 runs, on a runtime of its own; the fastest pass and the lowest median latency "
     "are reported (the other rounds absorb noise from the machine).",
     NULL, 0, &a.repeats, 0},
};

static cli_spec spec = {
    "report",
    "slim report MODEL [MODEL ...] [options]",
    "Compares models (training checkpoints, pruned checkpoints, exported .slim models) on "
    "the same test data: test accuracy, BN channels (conv output channels for a model "
    "without BN), parameters, forward MACs per image, and inference speed measured with the "
    "fused inference runtime (images/s at batch 256 over the test set, the best of the "
    "timed passes, and the batch-1 latency, the lowest of as many medians of 200 runs; the "
    "models take turns, so that a moment of load on the machine costs one model one round). "
    "The models must share one input shape. Every figure is also given relative to the "
    "first model. "
    "Prints a Markdown table.",
    opts,
    sizeof opts / sizeof opts[0],
    1,
    -1,
    "Speeds are measured on this machine now: compare rows of one report, not figures "
    "across machines or runs.",
};

typedef struct row {
    const char *path;
    slim_model *m;
    slim_ckpt *ck;
    double accuracy, ips, latency_ms, macs; /* ips and latency: the best round's */
    size_t params;
    int channels;
} row;

enum { BATCH = 256 };

static int channels_of(const slim_model *m) {
    int bn = 0, conv = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].kind == SLIM_LAYER_BN) bn += m->layers[i].c;
        if (m->layers[i].kind == SLIM_LAYER_CONV) conv += m->layers[i].c;
    }
    return bn ? bn : conv;
}

/* One pass over the test set in batches of BATCH; with correct, counts the
 * images whose top logit is their label. */
static slim_status test_pass(slim_runtime *rt, const slim_dataset *ds, int classes, float *logits,
                             size_t *correct) {
    size_t img = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w, k = (size_t)classes;
    for (size_t s = 0; s < ds->n; s += BATCH) {
        int n = (int)(ds->n - s < BATCH ? ds->n - s : BATCH);
        SLIM_TRY(slim_runtime_run(rt, ds->images + s * img, n, logits));
        for (int i = 0; correct && i < n; i++) {
            const float *z = logits + (size_t)i * k;
            size_t arg = 0;
            for (size_t j = 1; j < k; j++)
                if (z[j] > z[arg]) arg = j;
            *correct += (int32_t)arg == ds->labels[s + (size_t)i];
        }
    }
    return SLIM_OK;
}

/* The model's sizes and its accuracy on the test set, through the runtime. */
static slim_status accuracy_pass(row *r, const slim_dataset *ds, float *logits) {
    slim_runtime *rt = NULL;
    SLIM_TRY(slim_runtime_create(r->m, BATCH, &rt));
    size_t correct = 0;
    slim_status st = test_pass(rt, ds, r->m->n_classes, logits, &correct);
    slim_runtime_free(rt);
    r->accuracy = (double)correct / (double)ds->n;
    r->macs = slim_model_macs(r->m);
    r->params = slim_model_param_count(r->m);
    r->channels = channels_of(r->m);
    return st;
}

/* One timed round of one model, on a runtime of its own (another model's
 * runtime alive slows batch-1 latency): images/s at batch 256 over the test
 * set and the median batch-1 latency of 200 runs, each kept when it beats
 * the model's earlier rounds. The caller alternates the models round by
 * round, so that a moment of another process's load costs one round of one
 * model, not all of a model's figures. */
static slim_status timed_round(row *r, const slim_dataset *ds) {
    slim_runtime_speed sp;
    SLIM_TRY(slim_runtime_measure(r->m, ds->images, ds->n, &sp));
    if (sp.images_per_s > r->ips) r->ips = sp.images_per_s;
    if (r->latency_ms == 0 || sp.latency_ms < r->latency_ms) r->latency_ms = sp.latency_ms;
    return SLIM_OK;
}

/* "(v / base)" as a percentage or a factor, into buf (16 bytes); "(-)"
 * when the first model has none of it (a model without convs has no
 * channels to count). */
static const char *relative(double v, double base, int percent, char *buf) {
    if (!(base > 0))
        snprintf(buf, 16, "(-)");
    else if (percent)
        snprintf(buf, 16, "(%.1f%%)", 100.0 * v / base);
    else
        snprintf(buf, 16, "(%.2fx)", v / base);
    return buf;
}

/* The test set is prepared as the first model records; a model recording
 * another resize mode or normalisation is measured on it all the same, with
 * a warning. */
static void warn_preprocessing(const row *first, const row *r) {
    cli_preprocessing p0, p;
    int c = first->m->layers[0].c;
    if (cli_model_preprocessing(first->ck, first->path, c, &p0) != SLIM_OK ||
        cli_model_preprocessing(r->ck, r->path, c, &p) != SLIM_OK) {
        cli_warn("%s", slim_last_error());
        return;
    }
    int same = p.resize == p0.resize && p.crop_scale == p0.crop_scale;
    for (int k = 0; k < c; k++)
        same = same && p.mean[k] == p0.mean[k] && p.std[k] == p0.std[k];
    if (!same)
        cli_warn("%s records another resizing or normalisation than %s; the test pictures are "
                 "prepared as %s records",
                 r->path, first->path, first->path);
}

int cmd_report(int argc, char **argv) {
    int n_pos = 0;
    int pr = cli_parse(&spec, argc, argv, &n_pos);
    if (pr == CLI_PARSE_HELP) return CLI_EXIT_OK;
    if (pr != CLI_PARSE_OK) return CLI_EXIT_USAGE;
    if (a.repeats < 1 || a.repeats > 1000)
        return cli_usage_error("report", "--repeats must be between 1 and 1000, got %" PRId64,
                               a.repeats);
    if (a.threads < 0 || a.threads > 4096)
        return cli_usage_error("report", "--threads must be between 0 and 4096, got %" PRId64,
                               a.threads);
    if (a.limit < 0) return cli_usage_error("report", "--limit must be >= 0");
    slim_set_threads((int)a.threads);
    row *rows = slim_calloc((size_t)n_pos, sizeof *rows);
    slim_dataset *ds = NULL;
    float *logits = NULL;
    int status = rows ? CLI_EXIT_OK : cli_fail();
    /* Every model first, so that a bad file is reported before minutes of
     * measuring the others. */
    for (int i = 0; i < n_pos && status == CLI_EXIT_OK; i++) {
        rows[i].path = argv[1 + i];
        if (cli_load_model(argv[1 + i], 0, &rows[i].m, &rows[i].ck) != SLIM_OK) {
            status = cli_fail();
            break;
        }
        const slim_layer *in = &rows[i].m->layers[0], *in0 = &rows[0].m->layers[0];
        if (in->c != in0->c || in->h != in0->h || in->w != in0->w) {
            cli_error("%s: its input is %dx%dx%d, %s's is %dx%dx%d: a report compares models "
                      "of one input shape on one test set",
                      argv[1 + i], in->c, in->h, in->w, argv[1], in0->c, in0->h, in0->w);
            status = CLI_EXIT_FAIL;
            break;
        }
        if (!ds) {
            slim_data_options o;
            if (cli_data_options(rows[0].ck, argv[1], rows[0].m,
                                 cli_given(&spec, "data") ? a.data : NULL, &a.data,
                                 &o) != SLIM_OK) {
                status = cli_fail();
                break;
            }
            o.limit = (size_t)a.limit;
            /* As floats once, so that the timed runs read them directly. */
            if (slim_data_load(a.data, 0, &o, &ds) != SLIM_OK ||
                slim_dataset_to_floats(ds) != SLIM_OK)
                status = cli_fail();
            else if (ds->n == 0) {
                cli_error("%s: the test split is empty", a.data);
                status = CLI_EXIT_FAIL;
            }
        }
        if (status == CLI_EXIT_OK && i > 0) warn_preprocessing(&rows[0], &rows[i]);
        if (status == CLI_EXIT_OK && ds->n_classes > rows[i].m->n_classes) {
            cli_error("%s: the data has %d classes but the model outputs %d", argv[1 + i],
                      ds->n_classes, rows[i].m->n_classes);
            status = CLI_EXIT_FAIL;
        }
    }
    if (status == CLI_EXIT_OK) {
        size_t most = 1; /* the widest model's logits */
        for (int i = 0; i < n_pos; i++)
            if ((size_t)rows[i].m->n_classes > most) most = (size_t)rows[i].m->n_classes;
        logits = slim_calloc(BATCH * most, sizeof(float));
        if (!logits) status = cli_fail();
    }
    /* Accuracy first, then the timed rounds, the models alternating. */
    for (int rep = -1; rep < (int)a.repeats && status == CLI_EXIT_OK; rep++)
        for (int i = 0; i < n_pos && status == CLI_EXIT_OK; i++) {
            slim_status st =
                rep < 0 ? accuracy_pass(&rows[i], ds, logits) : timed_round(&rows[i], ds);
            if (st != SLIM_OK) {
                slim_error_prefix(SLIM_ERR_ARG, "%s", argv[1 + i]);
                status = cli_fail();
            }
        }
    if (status == CLI_EXIT_OK) {
        const row *b = &rows[0];
        printf("Test set: %zu images of %s. Speed: fused inference runtime, %d threads.\n\n", ds->n,
               a.data, slim_get_threads());
        printf("| model | test acc | channels | params | MACs/image | images/s (batch 256) "
               "| batch-1 latency |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < n_pos; i++) {
            const row *r = &rows[i];
            char p[32], mc[32], rc[16], rp[16], rm[16], ri[16], rl[16];
            printf("| %s | %.2f%% | %d %s | %s %s | %s %s | %.0f %s | %.3f ms %s |\n", r->path,
                   100 * r->accuracy, r->channels, relative(r->channels, b->channels, 1, rc),
                   cli_si((double)r->params, p, sizeof p),
                   relative((double)r->params, (double)b->params, 1, rp),
                   cli_si(r->macs, mc, sizeof mc), relative(r->macs, b->macs, 1, rm), r->ips,
                   relative(r->ips, b->ips, 0, ri), r->latency_ms,
                   relative(r->latency_ms, b->latency_ms, 0, rl));
        }
    }
    for (int i = 0; rows && i < n_pos; i++) {
        slim_ckpt_free(rows[i].ck);
        slim_model_free(rows[i].m);
    }
    free(logits);
    slim_dataset_free(ds);
    free(rows);
    return status;
}
