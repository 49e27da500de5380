/* slim info: what a model file, checkpoint or export holds: layers, shapes,
 * parameters, MACs, sparsity, settings and training position, as a table or
 * as one JSON object. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slim/model_io.h"

static struct { int json; } a;

static cli_opt opts[] = {
    {"json", CLI_FLAG, NULL, NULL,
     "Print one JSON object instead of the table. Top-level keys: file, format "
     "(net|train|export), params, macs (forward multiply-adds per image), channels, "
     "channels_source (bn|conv), gamma_zero, gamma_total, weights_zero, weights_total, "
     "filters_zero, digest, position ({epoch, step} or null), preprocessing ({resize, crop_scale, "
     "mean, std, source}: how pictures become the model's input, or null for a .net file), "
     "layers (one object per layer "
     "with index, name, kind, inputs, shape [c,h,w], channels, params, macs, gamma_zero, "
     "gamma_total, gamma_min, gamma_median, gamma_max, weights_zero, weights_total, "
     "filters_zero) and meta (the checkpoint's settings, strings). Figures that need weights "
     "are null for a .net file.",
     NULL, 0, &a.json, 0},
};

static cli_spec spec = {
    "info",
    "slim info RUN.ckpt|MODEL.slim|M.net [--json]",
    "Describes a model: per layer its name, kind, output shape, channels, parameters and "
    "forward MACs; for BN layers the gammas exactly 0 and min/median/max |gamma|; for conv and "
    "dense layers the weights exactly 0 (and for conv the filters entirely 0). Then the "
    "totals, the checkpoint's settings and training position, and a digest of all weights "
    "(FNV-1a 64 over the parameters and BN statistics: equal digests mean bit-identical "
    "weights).\n\n"
    "A .net model file is only parsed (no weights): its structure, parameter and MAC counts "
    "are shown, its sparsity figures are not.\n\n"
    "'channels' in the totals is the number of BN channels (what pruning can remove), or the "
    "conv output channels when the model has no BN.",
    opts,
    sizeof opts / sizeof opts[0],
    1,
    1,
    NULL,
};

typedef struct totals {
    size_t params;
    double macs;
    int channels, channels_from_bn;
    int gamma_zero, gamma_total, filters_zero;
    size_t weights_zero, weights_total;
    uint64_t digest;
} totals;

/* FNV-1a 64 over the bytes of n floats, in little-endian order. */
static uint64_t fnv1a(uint64_t h, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int b = 0; b < 4; b++) {
            h ^= (u >> (8 * b)) & 0xffu;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static void compute_totals(const slim_model *m, const slim_layer_sparsity *rows, int has_weights,
                           totals *t) {
    memset(t, 0, sizeof *t);
    t->params = slim_model_param_count(m);
    t->macs = slim_model_macs(m);
    int conv_channels = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        if (l->kind == SLIM_LAYER_BN) {
            t->channels += l->c;
            t->gamma_total += l->c;
            t->gamma_zero += rows[i].gamma_zero;
        }
        if (l->kind == SLIM_LAYER_CONV) {
            conv_channels += l->c;
            t->filters_zero += rows[i].filters_zero;
        }
        if (l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE) {
            t->weights_total += rows[i].weights;
            t->weights_zero += rows[i].weights_zero;
        }
    }
    t->channels_from_bn = t->gamma_total > 0;
    if (!t->channels_from_bn) t->channels = conv_channels;
    if (!has_weights) return;
    t->digest = fnv1a(0xcbf29ce484222325ull, m->param_block, m->param_floats);
    t->digest = fnv1a(t->digest, m->buffer_block, m->buffer_floats);
}

static void shape_str(const slim_layer *l, char *buf, size_t len) {
    if (l->h == 1 && l->w == 1 && l->kind != SLIM_LAYER_INPUT && l->kind != SLIM_LAYER_CONV)
        snprintf(buf, len, "%d", l->c);
    else
        snprintf(buf, len, "%dx%dx%d", l->c, l->h, l->w);
}

/* ---- table ------------------------------------------------------------ */

static void print_table(const char *path, const slim_model *m, const slim_ckpt *ck,
                        const slim_layer_sparsity *rows, const totals *t,
                        const cli_preprocessing *pre) {
    char b1[32], b2[32], b3[32];
    const char *format = !ck                            ? "model file (structure only)"
                         : ck->kind == SLIM_CKPT_EXPORT ? "exported model"
                                                        : "training checkpoint";
    printf("%s: %s, %d layers, %d classes\n\n", path, format, m->n_layers, m->n_classes);
    int name_w = 5;
    for (int i = 0; i < m->n_layers; i++) {
        int len = (int)strlen(m->layers[i].name);
        if (len > name_w) name_w = len;
    }
    printf("%3s  %-*s  %-7s  %-10s  %8s  %9s  %9s%s\n", "#", name_w, "layer", "kind", "output",
           "channels", "params", "MACs", ck ? "  sparsity" : "");
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        const slim_layer_sparsity *r = &rows[i];
        char shape[48], sparsity[160] = "";
        shape_str(l, shape, sizeof shape);
        if (ck && l->kind == SLIM_LAYER_BN)
            snprintf(sparsity, sizeof sparsity,
                     "gamma 0: %d/%d, |gamma| min %.3g med %.3g max %.3g", r->gamma_zero, l->c,
                     (double)r->gamma_min, (double)r->gamma_median, (double)r->gamma_max);
        else if (ck && l->kind == SLIM_LAYER_CONV)
            snprintf(sparsity, sizeof sparsity, "weights 0: %.2f%%, filters 0: %d/%d",
                     r->weights ? 100.0 * (double)r->weights_zero / (double)r->weights : 0.0,
                     r->filters_zero, l->c);
        else if (ck && l->kind == SLIM_LAYER_DENSE)
            snprintf(sparsity, sizeof sparsity, "weights 0: %.2f%%",
                     r->weights ? 100.0 * (double)r->weights_zero / (double)r->weights : 0.0);
        printf("%3d  %-*s  %-7s  %-10s  %8d  %9s  %9s%s%s\n", i, name_w, l->name,
               slim_layer_kind_name(l->kind), shape, l->c,
               cli_group(slim_layer_params(m, i), b1, sizeof b1),
               cli_si(slim_layer_macs(m, i), b2, sizeof b2), *sparsity ? "  " : "", sparsity);
    }
    printf("\nparameters: %s\n", cli_group(t->params, b1, sizeof b1));
    printf("MACs per image: %s (%s)\n", cli_group((uint64_t)t->macs, b1, sizeof b1),
           cli_si(t->macs, b2, sizeof b2));
    printf("channels: %d (%s)\n", t->channels,
           t->channels_from_bn ? "BN channels" : "conv output channels; no BN");
    if (ck) {
        printf("gamma exactly 0: %d/%d\n", t->gamma_zero, t->gamma_total);
        printf("weights exactly 0: %s/%s (%.2f%%), conv filters entirely 0: %d\n",
               cli_group(t->weights_zero, b1, sizeof b1),
               cli_group(t->weights_total, b3, sizeof b3),
               t->weights_total ? 100.0 * (double)t->weights_zero / (double)t->weights_total : 0.0,
               t->filters_zero);
        printf("weights digest: %016" PRIx64 "\n", t->digest);
        if (ck->kind == SLIM_CKPT_TRAIN) {
            int optim = 0;
            for (int i = 0; i < ck->n_tensors; i++)
                optim |= ck->tensors[i].is_optim;
            printf("position: epoch %" PRIu32 ", step %" PRIu64 "%s\n", ck->pos.epoch, ck->pos.step,
                   optim ? ", optimizer state saved" : ", no optimizer state");
        }
        const char *after = slim_ckpt_get_meta(ck, "live_prune.after");
        const char *live = slim_ckpt_get_meta(ck, "live_prune.remove");
        if (after && live && strcmp(live, "1") == 0) {
            const char *h = slim_ckpt_get_meta(ck, "live_prune.history");
            const char *removed = slim_ckpt_get_meta(ck, "live_prune.removed");
            const char *first = slim_ckpt_get_meta(ck, "live_prune.first_step");
            printf("channels removed while training: %s (live pruning after %s steps at 0",
                   removed ? removed : "?", after);
            if (h && *h) printf("; epoch:channels %s; first at step %s", h, first ? first : "?");
            printf(")\n");
        }
        if (pre) {
            printf("preprocessing: resize %s", slim_resize_mode_name(pre->resize));
            if (pre->resize == SLIM_RESIZE_CROP) printf(" (crop scale %g)", pre->crop_scale);
            printf(", mean");
            for (int k = 0; k < m->layers[0].c; k++)
                printf("%s%.4g", k ? "," : " ", (double)pre->mean[k]);
            printf(", std");
            for (int k = 0; k < m->layers[0].c; k++)
                printf("%s%.4g", k ? "," : " ", (double)pre->std[k]);
            printf(" (%s)\n", pre->how);
        }
        if (ck->n_meta > 0) printf("\nsettings:\n");
        int classes = 0;
        for (int i = 0; i < ck->n_meta; i++) {
            if (strncmp(ck->meta_keys[i], "class.", 6) == 0) {
                classes++;
                continue;
            }
            printf("  %-16s %s\n", ck->meta_keys[i], ck->meta_values[i]);
        }
        if (classes) {
            printf("  %-16s ", "classes");
            for (int k = 0, first = 1; k < m->n_classes; k++) {
                char key[32], num[16];
                snprintf(key, sizeof key, "class.%d", k);
                if (!slim_ckpt_get_meta(ck, key)) continue;
                printf("%s%s", first ? "" : ", ", cli_class_name(ck, NULL, 0, k, num, sizeof num));
                first = 0;
            }
            printf("\n");
        }
    }
}

/* ---- JSON ------------------------------------------------------------- */

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

static void json_float(double v) {
    if (isfinite(v))
        printf("%.9g", v);
    else
        fputs("null", stdout);
}

/* A count that exists only when there are weights: null for a .net file. */
static void json_count(int has_weights, uint64_t v) {
    if (has_weights)
        printf("%" PRIu64, v);
    else
        fputs("null", stdout);
}

static void print_json(const char *path, const slim_model *m, const slim_ckpt *ck,
                       const slim_layer_sparsity *rows, const totals *t,
                       const cli_preprocessing *pre) {
    int w = ck != NULL;
    printf("{\n  \"file\": ");
    json_string(path);
    printf(",\n  \"format\": \"%s\"", !ck                            ? "net"
                                      : ck->kind == SLIM_CKPT_EXPORT ? "export"
                                                                     : "train");
    printf(",\n  \"params\": %zu,\n  \"macs\": %.0f", t->params, t->macs);
    printf(",\n  \"channels\": %d,\n  \"channels_source\": \"%s\"", t->channels,
           t->channels_from_bn ? "bn" : "conv");
    printf(",\n  \"gamma_zero\": ");
    json_count(w, (uint64_t)t->gamma_zero);
    printf(",\n  \"gamma_total\": %d,\n  \"weights_zero\": ", t->gamma_total);
    json_count(w, t->weights_zero);
    printf(",\n  \"weights_total\": %zu,\n  \"filters_zero\": ", t->weights_total);
    json_count(w, (uint64_t)t->filters_zero);
    if (w)
        printf(",\n  \"digest\": \"%016" PRIx64 "\"", t->digest);
    else
        printf(",\n  \"digest\": null");
    if (ck && ck->kind == SLIM_CKPT_TRAIN)
        printf(",\n  \"position\": {\"epoch\": %" PRIu32 ", \"step\": %" PRIu64 "}", ck->pos.epoch,
               ck->pos.step);
    else
        printf(",\n  \"position\": null");
    printf(",\n  \"preprocessing\": ");
    if (pre) {
        printf("{\"resize\": \"%s\", \"crop_scale\": ", slim_resize_mode_name(pre->resize));
        json_float(pre->crop_scale);
        const float *v[2] = {pre->mean, pre->std};
        for (int j = 0; j < 2; j++) {
            printf(", \"%s\": [", j ? "std" : "mean");
            for (int k = 0; k < m->layers[0].c; k++) {
                if (k) printf(", ");
                json_float(v[j][k]);
            }
            printf("]");
        }
        printf(", \"source\": ");
        json_string(pre->how);
        printf("}");
    } else {
        printf("null");
    }
    printf(",\n  \"layers\": [");
    for (int i = 0; i < m->n_layers; i++) {
        const slim_layer *l = &m->layers[i];
        const slim_layer_sparsity *r = &rows[i];
        int bn = l->kind == SLIM_LAYER_BN, conv = l->kind == SLIM_LAYER_CONV;
        int weighted = conv || l->kind == SLIM_LAYER_DENSE;
        printf("%s\n    {\"index\": %d, \"name\": ", i ? "," : "", i);
        json_string(l->name);
        printf(", \"kind\": \"%s\", \"inputs\": [", slim_layer_kind_name(l->kind));
        for (int j = 0; j < l->n_inputs; j++) {
            if (j) printf(", ");
            json_string(m->layers[l->inputs[j]].name);
        }
        printf("], \"shape\": [%d, %d, %d], \"channels\": %d, \"params\": %zu, \"macs\": %.0f",
               l->c, l->h, l->w, l->c, slim_layer_params(m, i), slim_layer_macs(m, i));
        printf(", \"gamma_zero\": ");
        json_count(w, bn ? (uint64_t)r->gamma_zero : 0);
        printf(", \"gamma_total\": %d", bn ? l->c : 0);
        const char *names[3] = {"gamma_min", "gamma_median", "gamma_max"};
        float vals[3] = {r->gamma_min, r->gamma_median, r->gamma_max};
        for (int k = 0; k < 3; k++) {
            printf(", \"%s\": ", names[k]);
            if (w && bn)
                json_float(vals[k]);
            else
                fputs("null", stdout);
        }
        printf(", \"weights_zero\": ");
        json_count(w, weighted ? r->weights_zero : 0);
        printf(", \"weights_total\": %zu, \"filters_zero\": ", weighted ? r->weights : 0);
        json_count(w, conv ? (uint64_t)r->filters_zero : 0);
        printf("}");
    }
    printf("\n  ],\n  \"meta\": {");
    for (int i = 0; ck && i < ck->n_meta; i++) {
        printf("%s\n    ", i ? "," : "");
        json_string(ck->meta_keys[i]);
        printf(": ");
        json_string(ck->meta_values[i]);
    }
    printf("%s}\n}\n", ck && ck->n_meta ? "\n  " : "");
}

int cmd_info(int argc, char **argv) {
    int n_pos, r = cli_parse(&spec, argc, argv, &n_pos);
    if (r != CLI_PARSE_OK) return r == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *path = argv[1];
    slim_model *m = NULL;
    slim_ckpt *ck = NULL;
    if (cli_load_model(path, 1, &m, &ck) != SLIM_OK) return cli_fail();
    slim_layer_sparsity *rows = slim_calloc((size_t)m->n_layers, sizeof *rows);
    if (!rows) {
        slim_ckpt_free(ck);
        slim_model_free(m);
        return cli_fail();
    }
    /* The weights of a .net file are unset: its weight-derived figures are
     * not computed (nor its weights touched, which for a big model would
     * fault in hundreds of MB of zero pages), only the structural counts. */
    if (ck) {
        slim_model_sparsity(m, rows);
    } else {
        for (int i = 0; i < m->n_layers; i++) {
            const slim_layer *l = &m->layers[i];
            rows[i].layer = i;
            rows[i].channels = l->c;
            if (l->p_weight >= 0) rows[i].weights = m->params[l->p_weight].numel;
        }
    }
    totals t;
    compute_totals(m, rows, ck != NULL, &t);
    /* A recorded setting that does not parse is worth a warning here, not
     * a refusal: info is how one looks at such a file. */
    cli_preprocessing pre;
    int have_pre = 0;
    if (ck) {
        have_pre = cli_model_preprocessing(ck, path, m->layers[0].c, &pre) == SLIM_OK;
        if (!have_pre) cli_warn("%s", slim_last_error());
    }
    if (a.json)
        print_json(path, m, ck, rows, &t, have_pre ? &pre : NULL);
    else
        print_table(path, m, ck, rows, &t, have_pre ? &pre : NULL);
    free(rows);
    slim_ckpt_free(ck);
    slim_model_free(m);
    return CLI_EXIT_OK;
}
