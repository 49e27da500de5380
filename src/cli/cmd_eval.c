/* slim eval: accuracy, loss, per-class accuracy and the confusion matrix of
 * a checkpoint or exported model on a test split; optionally the raw logits. */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "slim/data.h"
#include "slim/model_io.h"
#include "slim/train.h"

static struct {
    const char *data, *backend, *logits, *resize;
    int64_t limit, batch, threads;
} a;

static cli_opt opts[] = {
    {"data", CLI_STRING, "SPEC", "from the model",
     "Test data (its test split): fashion-mnist, or a directory (see slim train --help). "
     "Default: the data the model was trained on (the checkpoint's 'data' setting), else "
     "fashion-mnist. On the model's own data the test split is the one training held out "
     "(its recorded --val-split and seed, or --val folder); on any data the pictures are "
     "resized and normalised as the model records (data.resize, data.crop_scale, data.mean, "
     "data.std).",
     NULL, 0, &a.data, 0},
    {"resize", CLI_CHOICE, NULL, "from the model", cli_resize_override_help, CLI_RESIZE_CHOICES, 0,
     &a.resize, 0},
    {"limit", CLI_INT, "N", "0", "Evaluate the first N test images only (0 = all).", NULL, 0,
     &a.limit, 0},
    {"batch", CLI_INT, "N", "256", "Images per forward pass (> 0); does not change the results.",
     NULL, 0, &a.batch, 0},
    {"backend", CLI_CHOICE, NULL, "fast", "Kernels: fast (oneDNN + OpenBLAS) or ref (plain C).",
     "ref|fast", 0, &a.backend, 0},
    {"threads", CLI_INT, "N", "2", "Threads for oneDNN and OpenBLAS (0 = one per processor).", NULL,
     0, &a.threads, 0},
    {"logits", CLI_STRING, "FILE.f32", NULL,
     "Also write the raw logits of every evaluated image: little-endian float32, row-major "
     "(images x classes), in data order, no header. Written atomically.",
     NULL, 0, &a.logits, 0},
};

static cli_spec spec = {
    "eval",
    "slim eval RUN.ckpt|MODEL.slim [options]",
    "Runs the model in inference mode (BN with running statistics) on the test split and "
    "prints accuracy, mean cross-entropy, per-class accuracy (class names from the model) and "
    "the confusion matrix (rows: true class, columns: predicted).",
    opts,
    sizeof opts / sizeof opts[0],
    1,
    1,
    NULL,
};

/* The logits as little-endian float32 bytes, independent of the host. */
static int write_logits(const char *path, const float *logits, size_t count) {
    unsigned char *buf = malloc(count * 4 + 1);
    if (!buf) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &logits[i], 4);
        for (int b = 0; b < 4; b++)
            buf[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
    slim_status st = cli_write_file_atomic(path, buf, count * 4);
    free(buf);
    return st;
}

static void print_report(const slim_eval_result *r, const slim_ckpt *ck, const slim_dataset *ds) {
    char num[64];
    int k = r->n_classes;
    printf("accuracy: %.2f%% (%zu/%zu)\n", 100.0 * r->accuracy, r->correct, r->n);
    printf("loss: %.4f (mean cross-entropy)\n\n", r->loss);

    /* Per-class rows, names aligned. */
    int name_w = 5;
    for (int c = 0; c < k; c++) {
        int len =
            (int)strlen(cli_class_name(ck, ds->class_names, ds->n_classes, c, num, sizeof num));
        if (len > name_w) name_w = len;
    }
    if (name_w > 24) name_w = 24;
    printf("%3s  %-*s  %8s  %11s\n", "#", name_w, "class", "accuracy", "correct");
    for (int c = 0; c < k; c++) {
        uint64_t total = 0, hit = r->confusion[(size_t)c * (size_t)k + (size_t)c];
        for (int j = 0; j < k; j++)
            total += r->confusion[(size_t)c * (size_t)k + (size_t)j];
        const char *name = cli_class_name(ck, ds->class_names, ds->n_classes, c, num, sizeof num);
        char acc[16], frac[48];
        if (total)
            snprintf(acc, sizeof acc, "%.1f%%", 100.0 * (double)hit / (double)total);
        else
            snprintf(acc, sizeof acc, "-");
        snprintf(frac, sizeof frac, "%" PRIu64 "/%" PRIu64, hit, total);
        printf("%3d  %-*.*s  %8s  %11s\n", c, name_w, name_w, name, acc, frac);
    }

    /* The confusion matrix: columns numbered, rows numbered and named. */
    uint64_t max = 0;
    for (size_t i = 0; i < (size_t)k * (size_t)k; i++)
        if (r->confusion[i] > max) max = r->confusion[i];
    int cw = snprintf(num, sizeof num, "%" PRIu64, max);
    if (cw < 3) cw = 3;
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n");
    printf("%3s  %-*s ", "", name_w, "");
    for (int j = 0; j < k; j++)
        printf(" %*d", cw, j);
    printf("\n");
    for (int c = 0; c < k; c++) {
        const char *name = cli_class_name(ck, ds->class_names, ds->n_classes, c, num, sizeof num);
        printf("%3d  %-*.*s ", c, name_w, name_w, name);
        for (int j = 0; j < k; j++)
            printf(" %*" PRIu64, cw, r->confusion[(size_t)c * (size_t)k + (size_t)j]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv) {
    int n_pos, r = cli_parse(&spec, argc, argv, &n_pos);
    if (r != CLI_PARSE_OK) return r == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (a.limit < 0) return cli_usage_error("eval", "--limit must be >= 0, got %" PRId64, a.limit);
    if (a.batch <= 0 || a.batch > 1 << 20)
        return cli_usage_error("eval", "--batch must be between 1 and 1048576, got %" PRId64,
                               a.batch);
    if (a.threads < 0 || a.threads > 4096)
        return cli_usage_error("eval", "--threads must be between 0 and 4096, got %" PRId64,
                               a.threads);
    const char *path = argv[1];
    slim_set_threads((int)a.threads);

    slim_model *model = NULL;
    slim_ckpt *ck = NULL;
    slim_dataset *ds = NULL;
    float *logits = NULL;
    slim_eval_result res = {0};
    int rc = CLI_EXIT_FAIL;
    if (cli_load_model(path, 0, &model, &ck) != SLIM_OK) goto done;
    const char *data;
    slim_data_options dopts;
    if (cli_data_options(ck, path, model, cli_given(&spec, "data") ? a.data : NULL, &data,
                         &dopts) != SLIM_OK)
        goto done;
    dopts.limit = (size_t)a.limit;
    if (cli_given(&spec, "resize")) slim_resize_mode_parse(a.resize, &dopts.resize);
    if (slim_data_load(data, 0, &dopts, &ds) != SLIM_OK) goto done;
    if (ds->n == 0) {
        slim_error(SLIM_ERR_ARG, "%s: the test split is empty", data);
        goto done;
    }
    size_t count = ds->n * (size_t)model->n_classes;
    if (a.logits && !(logits = slim_calloc(count, sizeof(float)))) goto done;
    if (slim_evaluate(model, ds, (int)a.batch, cli_backend(a.backend), logits, 1, &res) != SLIM_OK)
        goto done;
    char pbuf[32];
    printf("model: %s (%s parameters)\n", path,
           cli_group(slim_model_param_count(model), pbuf, sizeof pbuf));
    printf("data: %s, test split, %zu images", data, ds->n);
    if (dopts.val_split > 0)
        printf(" (held out: %g of each class, seed %" PRIu64 ")", dopts.val_split,
               dopts.split_seed);
    else if (dopts.val_dir)
        printf(" (from %s)", dopts.val_dir);
    printf("\n");
    print_report(&res, ck, ds);
    if (logits) {
        if (write_logits(a.logits, logits, count) != SLIM_OK) goto done;
        printf("\nlogits: %s (%zu x %d float32, little-endian)\n", a.logits, ds->n,
               model->n_classes);
    }
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_fail();
    slim_eval_result_free(&res);
    free(logits);
    slim_dataset_free(ds);
    slim_ckpt_free(ck);
    slim_model_free(model);
    return rc;
}
