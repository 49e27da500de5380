/* slim infer: classify image files with a checkpoint or exported model and
 * print the top-k classes with their softmax probabilities. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slim/autograd.h"
#include "slim/data.h"
#include "slim/model_io.h"
#include "slim/runtime.h"

/* Images per forward pass: bounds the runtime's memory for long lists. */
#define INFER_MAX_BATCH 64

static struct {
    const char *backend, *resize;
    int64_t top, threads;
} a;

static cli_opt opts[] = {
    {"top", CLI_INT, "K", "3", "Classes to print per image, most probable first (>= 1).", NULL, 0,
     &a.top, 0},
    {"threads", CLI_INT, "N", "2", "Threads for oneDNN and OpenBLAS (0 = one per processor).", NULL,
     0, &a.threads, 0},
    {"backend", CLI_CHOICE, NULL, "fast",
     "fast: slim's inference runtime (oneDNN, BN folded, fused); ref: the model's forward pass "
     "with the plain C reference kernels (slow; for cross-checking).",
     "ref|fast", 0, &a.backend, 0},
    {"resize", CLI_CHOICE, NULL, "from the model", cli_resize_override_help, CLI_RESIZE_CHOICES, 0,
     &a.resize, 0},
};

static cli_spec spec = {
    "infer",
    "slim infer MODEL.slim|RUN.ckpt IMAGE.png|jpg ... [options]",
    "Reads each picture (PNG through stb_image, JPEG through libjpeg-turbo; any size; gray or "
    "colour converted to the model's channel count), resizes it to the model's input as "
    "recorded (see --resize), normalises it as the model's training data was, runs the model "
    "in inference mode and prints the top-k classes with their softmax probabilities, names "
    "from the model. A picture that cannot be read is reported (slim: error: naming it), the "
    "others are still classified, and the exit status is 1.\n\n"
    "Normalisation, x = (pixel/255 - mean) / std: the data.mean/data.std the model records "
    "(slim train stores the statistics of its training data, slim export keeps them); for a "
    "model from before they were recorded, the statistics of the data named by its 'data' "
    "setting (fashion-mnist 0.2860/0.3530, MNIST 0.1307/0.3081, CIFAR-10 per channel; a "
    "directory is inspected like slim train does, or judged by its name if it is not on this "
    "machine), else 0.5/0.5, the old image-folder rule. The choice is printed.",
    opts,
    sizeof opts / sizeof opts[0],
    2,
    -1,
    NULL,
};

/* logits (n, k) of images x (n, c, h, w), in batches. */
static slim_status run_model(slim_model *model, const float *x, int n, float *logits) {
    int k = model->n_classes, max_batch = n < INFER_MAX_BATCH ? n : INFER_MAX_BATCH;
    const slim_layer *in = &model->layers[0];
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    slim_status st = SLIM_OK;
    if (strcmp(a.backend, "fast") == 0) {
        slim_runtime *rt = NULL;
        SLIM_TRY(slim_runtime_create(model, max_batch, &rt));
        for (int s = 0; s < n && st == SLIM_OK; s += max_batch) {
            int m = n - s < max_batch ? n - s : max_batch;
            st = slim_runtime_run(rt, x + (size_t)s * img, m, logits + (size_t)s * (size_t)k);
        }
        slim_runtime_free(rt);
        return st;
    }
    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_REF);
    for (int s = 0; s < n && st == SLIM_OK; s += max_batch) {
        int m = n - s < max_batch ? n - s : max_batch;
        slim_tape_reset(&tape);
        slim_tensor *xt = slim_tape_wrap(&tape, (float *)x + (size_t)s * img, NULL, 4,
                                         (int[]){m, in->c, in->h, in->w});
        slim_tensor *out = NULL;
        st = xt ? slim_model_forward(model, &tape, xt, 0, &out) : SLIM_ERR_NOMEM;
        if (st == SLIM_OK)
            memcpy(logits + (size_t)s * (size_t)k, out->data,
                   (size_t)m * (size_t)k * sizeof(float));
    }
    slim_tape_free(&tape);
    return st;
}

/* Prints the top classes of one image's logits (k classes); order: (k)
 * scratch. */
static void print_top(const char *path, const float *logits, int k, int top, const slim_ckpt *ck,
                      int *order) {
    double mx = logits[0], z = 0;
    for (int j = 1; j < k; j++)
        if (logits[j] > mx) mx = logits[j];
    for (int j = 0; j < k; j++)
        z += exp((double)logits[j] - mx);
    for (int j = 0; j < k; j++)
        order[j] = j;
    /* Partial selection sort: top is small. Ties keep the lower index. */
    for (int i = 0; i < top; i++) {
        int best = i;
        for (int j = i + 1; j < k; j++)
            if (logits[order[j]] > logits[order[best]]) best = j;
        int t = order[i];
        order[i] = order[best];
        order[best] = t;
    }
    int name_w = 1;
    char num[32];
    for (int i = 0; i < top; i++) {
        int len = (int)strlen(cli_class_name(ck, NULL, 0, order[i], num, sizeof num));
        if (len > name_w) name_w = len;
    }
    printf("%s\n", path);
    for (int i = 0; i < top; i++) {
        double p = exp((double)logits[order[i]] - mx) / z;
        printf("  %d. %-*s  %6.2f%%  (class %d)\n", i + 1, name_w,
               cli_class_name(ck, NULL, 0, order[i], num, sizeof num), 100.0 * p, order[i]);
    }
}

int cmd_infer(int argc, char **argv) {
    int n_pos, r = cli_parse(&spec, argc, argv, &n_pos);
    if (r != CLI_PARSE_OK) return r == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (a.top < 1) return cli_usage_error(spec.command, "--top must be >= 1, got %" PRId64, a.top);
    if (a.threads < 0 || a.threads > 4096)
        return cli_usage_error(spec.command, "--threads must be between 0 and 4096, got %" PRId64,
                               a.threads);
    slim_set_threads((int)a.threads);
    const char *model_path = argv[1];
    char **images = argv + 2;
    int n = n_pos - 1;

    slim_model *model = NULL;
    slim_ckpt *ck = NULL;
    float *x = NULL, *logits = NULL;
    int *order = NULL, *ok = NULL, n_ok = 0;
    int rc = CLI_EXIT_FAIL;
    if (cli_load_model(model_path, 0, &model, &ck) != SLIM_OK) goto done;
    const slim_layer *in = &model->layers[0];
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    int k = model->n_classes;
    x = slim_calloc((size_t)n * img, sizeof(float));
    logits = slim_calloc((size_t)n * (size_t)k, sizeof(float));
    order = slim_calloc((size_t)k, sizeof(int));
    ok = slim_calloc((size_t)n, sizeof(int));
    if (!x || !logits || !order || !ok) goto done;
    cli_preprocessing pre;
    if (cli_model_preprocessing(ck, model_path, in->c, &pre) != SLIM_OK) goto done;
    if (cli_given(&spec, "resize")) slim_resize_mode_parse(a.resize, &pre.resize);
    /* The pictures that load are packed at the front of x; the others are
     * reported now and skipped. */
    for (int i = 0; i < n; i++) {
        slim_status st =
            slim_data_load_image_ex(images[i], in->c, in->h, in->w, pre.resize, pre.crop_scale,
                                    pre.mean, pre.std, x + (size_t)n_ok * img);
        if (st == SLIM_OK) {
            ok[n_ok++] = i;
            continue;
        }
        /* Name the file even if the loader's message does not. */
        if (!strstr(slim_last_error(), images[i])) slim_error_prefix(st, "%s", images[i]);
        cli_fail();
    }
    if (n_ok > 0 && run_model(model, x, n_ok, logits) != SLIM_OK) {
        cli_fail();
        goto done;
    }
    /* The unreadable pictures are reported already. */
    if (n_ok < n)
        fprintf(stderr, "slim: %d of %d pictures could not be read (reported above)\n", n - n_ok,
                n);
    rc = n_ok == n ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (n_ok == 0) goto out;
    printf("model: %s (input %dx%dx%d, %d classes)\nresize: %s", model_path, in->c, in->h, in->w, k,
           slim_resize_mode_name(pre.resize));
    if (pre.resize == SLIM_RESIZE_CROP) printf(" (crop scale %g)", pre.crop_scale);
    printf("%s\nnormalisation: mean",
           cli_given(&spec, "resize") ? " (--resize)" : " (as the model records)");
    for (int c = 0; c < in->c; c++)
        printf("%s%.4g", c ? "," : " ", (double)pre.mean[c]);
    printf(", std");
    for (int c = 0; c < in->c; c++)
        printf("%s%.4g", c ? "," : " ", (double)pre.std[c]);
    printf(" (%s)\n\n", pre.how);
    int top = a.top < k ? (int)a.top : k;
    for (int j = 0; j < n_ok; j++)
        print_top(images[ok[j]], logits + (size_t)j * (size_t)k, k, top, ck, order);
    goto out;
done:
    cli_fail();
out:
    free(x);
    free(logits);
    free(order);
    free(ok);
    slim_ckpt_free(ck);
    slim_model_free(model);
    return rc;
}
