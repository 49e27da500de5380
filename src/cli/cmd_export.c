/* slim export: a trained (pruned) checkpoint -> a compact inference model
 * (BN folded into the convolutions, no optimizer state) or an ONNX file. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slim/data.h"
#include "slim/export_c.h"
#include "slim/model_io.h"
#include "slim/onnx.h"
#include "slim/prune.h"
#include "slim/runtime.h"

/* Folding BN into the conv weights only reorders float arithmetic, so the
 * folded model's logits stay within rounding of the original's; see
 * cmd_prune.c for the same bound. */
#define EXPORT_FOLD_RTOL 1e-4
/* Random inputs the fold is checked on (no data set needed). */
#define EXPORT_CHECK_IMAGES 8

static struct { const char *out, *format, *name; } a;

static cli_opt opts[] = {
    {"out", CLI_STRING, "FILE", NULL, "Where to write the model (required; written atomically).",
     NULL, 0, &a.out, 0},
    {"format", CLI_CHOICE, NULL, "slim",
     "slim: slim's own container (kind 'export'; read by slim eval, info, infer); onnx: an "
     "ONNX file (opset 13) for other runtimes; c: C99 source, --out NAME.c and NAME.h beside "
     "it. Without --format, an --out ending in .onnx means onnx, one ending in .c means c.",
     "slim|onnx|c", 0, &a.format, 0},
    {"name", CLI_STRING, "ID", NULL,
     "c: the prefix of the generated symbols (<ID>_run, <ID>_class_names, <ID>_INPUT_C, ...), "
     "made a C identifier; without it, the --out file's stem.",
     NULL, 0, &a.name, 0},
};

static cli_spec spec = {
    "export",
    "slim export IN.ckpt --out MODEL.slim|MODEL.onnx|MODEL.c [--format slim|onnx|c]",
    "Writes an inference model. slim format: every BN that follows a convolution is folded "
    "into it (W' = W s, b' = (b - mean) s + beta with s = gamma / sqrt(var + eps)), the "
    "optimizer state is dropped, and the class names, the data setting and how the data was "
    "read (data.resize, data.crop_scale, data.mean, data.std, and the split) are kept so that "
    "slim infer reads pictures for it as training did and slim eval tests it on the held-out "
    "ones; "
    "the folded model is checked against the original on random inputs. onnx format: the same "
    "fold, written as an ONNX graph with one input 'input' (N, C, H, W) and one output "
    "'logits', and the same metadata as the model's metadata_props (the input must be "
    "resized and normalised by the caller as they say). c format: the same fold, checked the "
    "same way, as one C99 source file and its header with no dependency (not even libm): "
    "`void NAME_run(const float *input, float *logits)` for one image, the weights as static "
    "const arrays, every buffer static, and the input shape, class count, class names and "
    "normalisation as constants (docs/DEPLOY.md). Prints parameters and file sizes before "
    "and after.",
    opts,
    sizeof opts / sizeof opts[0],
    1,
    1,
    NULL,
};

/* Metadata an inference model keeps: class names, the data it was trained
 * on and how it was read (every data.* key: the split too, so that slim eval
 * and report test an export on the pictures its training held out), where
 * it came from, and the preprocessing its inputs need (resize mode, crop
 * scale, normalisation; the effective ones when the checkpoint predates
 * them). The ONNX export writes the same pairs as metadata_props. */
static slim_status copy_export_meta(slim_ckpt *dst, const slim_ckpt *src, const char *in_path,
                                    int c) {
    for (int i = 0; i < src->n_meta; i++) {
        const char *k = src->meta_keys[i];
        if (strncmp(k, "class.", 6) == 0 || strcmp(k, "data") == 0 || strncmp(k, "data.", 5) == 0)
            SLIM_TRY(slim_ckpt_set_meta(dst, k, src->meta_values[i]));
    }
    SLIM_TRY(slim_ckpt_set_meta(dst, "exported_from", in_path));
    cli_preprocessing pre;
    SLIM_TRY(cli_model_preprocessing(src, NULL, c, &pre));
    if (!slim_ckpt_get_meta(dst, "data.resize"))
        SLIM_TRY(slim_ckpt_set_meta(dst, "data.resize", slim_resize_mode_name(pre.resize)));
    if (!slim_ckpt_get_meta(dst, "data.crop_scale"))
        SLIM_TRY(cli_set_meta_double(dst, "data.crop_scale", pre.crop_scale));
    char m[256], s[256];
    cli_format_floats(pre.mean, c, m, sizeof m);
    cli_format_floats(pre.std, c, s, sizeof s);
    SLIM_TRY(slim_ckpt_set_meta(dst, "data.mean", m));
    return slim_ckpt_set_meta(dst, "data.std", s);
}

/* Runs both models on the same random inputs: the fold must not change
 * the function beyond rounding. */
static slim_status check_fold(slim_model *model, slim_model *folded) {
    const slim_layer *in = &model->layers[0];
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    float *x = slim_calloc(EXPORT_CHECK_IMAGES * img, sizeof(float));
    if (!x) return SLIM_ERR_NOMEM;
    slim_rng rng;
    slim_rng_seed(&rng, 1, 1);
    for (size_t i = 0; i < EXPORT_CHECK_IMAGES * img; i++)
        x[i] = slim_rng_normal(&rng);
    double max_delta = 0, max_abs = 0;
    size_t mismatches = 0;
    slim_status st = slim_prune_compare(model, folded, x, EXPORT_CHECK_IMAGES, SLIM_BACKEND_REF,
                                        &max_delta, &max_abs, &mismatches);
    free(x);
    SLIM_TRY(st);
    printf("fold check on %d random inputs: max |Δlogit| = %.3g (max |logit| = %.4g)\n",
           EXPORT_CHECK_IMAGES, max_delta, max_abs);
    if (!(max_delta <= EXPORT_FOLD_RTOL * max_abs))
        return slim_error(SLIM_ERR_NUMERIC,
                          "folding BN changed the logits by %.3g > 1e-4 x max |logit| %.4g; "
                          "%s was not written",
                          max_delta, max_abs, a.out);
    return SLIM_OK;
}

static slim_status export_slim(slim_model *model, const slim_ckpt *in_ck, const char *in_path,
                               size_t *params_after) {
    slim_model *folded = NULL;
    slim_ckpt *ck = NULL;
    SLIM_TRY(slim_model_fold_bn(model, &folded));
    *params_after = slim_model_param_count(folded);
    slim_status st = check_fold(model, folded);
    if (st == SLIM_OK) st = slim_model_to_ckpt(folded, SLIM_CKPT_EXPORT, 0, &ck);
    if (st == SLIM_OK) st = copy_export_meta(ck, in_ck, in_path, model->layers[0].c);
    if (st == SLIM_OK) st = slim_ckpt_write(ck, a.out);
    slim_ckpt_free(ck);
    slim_model_free(folded);
    return st;
}

/* ONNX with the export's metadata as metadata_props, and the version of
 * slim that wrote it as "slim.version" (the project's version, from CMake). */
static slim_status export_onnx(const slim_model *model, const slim_ckpt *in_ck,
                               const char *in_path) {
    slim_ckpt *meta = slim_ckpt_new(SLIM_CKPT_EXPORT);
    if (!meta) return SLIM_ERR_NOMEM;
    slim_status st = copy_export_meta(meta, in_ck, in_path, model->layers[0].c);
    if (st == SLIM_OK) st = slim_ckpt_set_meta(meta, "slim.version", SLIM_VERSION);
    if (st == SLIM_OK)
        st = slim_onnx_write_ex(model, a.out, "slim " SLIM_VERSION,
                                (const char *const *)meta->meta_keys,
                                (const char *const *)meta->meta_values, meta->n_meta);
    slim_ckpt_free(meta);
    return st;
}

/* C source of the folded model, with its class names and normalisation. */
static slim_status export_c(slim_model *model, const slim_ckpt *in_ck, size_t *params_after) {
    slim_model *folded = NULL;
    SLIM_TRY(slim_model_fold_bn(model, &folded));
    *params_after = slim_model_param_count(folded);
    int c = model->layers[0].c, k = folded->n_classes;
    cli_preprocessing pre;
    const char **names = calloc((size_t)k, sizeof *names);
    char(*nums)[16] = calloc((size_t)k, sizeof *nums);
    slim_status st = names && nums ? check_fold(model, folded) : SLIM_ERR_NOMEM;
    if (st == SLIM_OK) st = cli_model_preprocessing(in_ck, NULL, c, &pre);
    for (int j = 0; j < k && st == SLIM_OK; j++)
        names[j] = cli_class_name(in_ck, NULL, 0, j, nums[j], sizeof nums[j]);
    slim_export_c_options opt = {.name = a.name,
                                 .class_names = names,
                                 .mean = pre.mean,
                                 .std = pre.std,
                                 .producer = "slim " SLIM_VERSION,
                                 .resize = slim_resize_mode_name(pre.resize),
                                 .crop_scale = pre.crop_scale};
    if (st == SLIM_OK) st = slim_export_c(folded, a.out, &opt);
    free(names);
    free(nums);
    slim_model_free(folded);
    return st;
}

int cmd_export(int argc, char **argv) {
    int n_pos, r = cli_parse(&spec, argc, argv, &n_pos);
    if (r != CLI_PARSE_OK) return r == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *in_path = argv[1];
    if (!a.out) return cli_usage_error(spec.command, "--out FILE is required");
    int onnx =
        cli_given(&spec, "format") ? strcmp(a.format, "onnx") == 0 : cli_ends_with(a.out, ".onnx");
    int c_src =
        cli_given(&spec, "format") ? strcmp(a.format, "c") == 0 : cli_ends_with(a.out, ".c");

    slim_model *model = NULL;
    slim_ckpt *ck = NULL;
    if (cli_load_model(in_path, 0, &model, &ck) != SLIM_OK) return cli_fail();
    size_t params_before = slim_model_param_count(model), params_after = params_before;
    slim_status st;
    if (onnx) {
        /* The ONNX writer folds BN itself; count what it will hold. */
        slim_model *folded = NULL;
        st = slim_model_fold_bn(model, &folded);
        if (st == SLIM_OK) params_after = slim_model_param_count(folded);
        slim_model_free(folded);
        if (st == SLIM_OK) st = export_onnx(model, ck, in_path);
    } else if (c_src) {
        st = export_c(model, ck, &params_after);
    } else {
        st = export_slim(model, ck, in_path, &params_after);
    }
    slim_model_free(model);
    slim_ckpt_free(ck);
    if (st != SLIM_OK) return cli_fail();
    char b1[32], b2[32], b3[32], b4[32];
    printf("exported %s -> %s (%s)\n", in_path, a.out, onnx ? "onnx" : c_src ? "c" : "slim");
    printf("parameters: %s -> %s (BN folded into its convolutions)\n",
           cli_group(params_before, b1, sizeof b1), cli_group(params_after, b2, sizeof b2));
    printf("bytes:      %s -> %s\n", cli_group((uint64_t)cli_file_size(in_path), b3, sizeof b3),
           cli_group((uint64_t)cli_file_size(a.out), b4, sizeof b4));
    return CLI_EXIT_OK;
}
