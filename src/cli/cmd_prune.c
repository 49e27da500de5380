/* slim prune: remove the channels whose BN scale is zero (or small), print
 * the before -> after table, prove the result against the original on test
 * images, and save the smaller model as a training checkpoint. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slim/data.h"
#include "slim/model_io.h"
#include "slim/prune.h"

/* The exactness bound of threshold-0 pruning: removing a constant channel
 * and folding it into the consumer's bias changes only the order of float
 * sums, so the logits agree to a few ulps of their magnitude; 1e-4 relative
 * leaves room for deep models and the fast kernels' summation orders while
 * still catching any real change of the function (a wrong fold moves the
 * logits by O(1) relative). */
#define PRUNE_EXACT_RTOL 1e-4

static struct {
    const char *out, *data, *backend, *target_macs, *target_params;
    double threshold, percent;
    int64_t check, threads;
} a;

static cli_opt opts[] = {
    {"out", CLI_STRING, "OUT.ckpt", NULL,
     "Where to write the pruned model (required): a training checkpoint without optimizer "
     "state, carrying the input's settings and class names plus pruned_from, so that slim eval, "
     "slim export and slim train --init accept it.",
     NULL, 0, &a.out, 0},
    {"threshold", CLI_FLOAT, "T", "0",
     "Remove a channel when, in every BN of its group, |gamma| <= T or the BN's output is "
     "exactly constant (the conv filters feeding it are exactly zero). 0 removes exactly "
     "constant channels only and is exact: the check below must then pass or nothing is "
     "written.",
     NULL, 0, &a.threshold, 0},
    {"percent", CLI_FLOAT, "P", NULL,
     "Instead of --threshold: remove the P% of all prunable channels with the smallest |gamma| "
     "(Network Slimming's rule). Approximate: fine-tune afterwards with slim train --init.",
     NULL, 0, &a.percent, 0},
    {"target-macs", CLI_STRING, "X", NULL,
     "Instead of --threshold: prune to a MACs budget, a percentage of the input model's (15%) "
     "or a count (4.5M, 120k). The exact threshold-0 model when it fits; else Network "
     "Slimming's rule (--percent's order: the channels of smallest |gamma| first, by "
     "dependency group, never emptying a layer) with the fewest channels removed that bring "
     "the model within the budget. Prints the reached count next to the budget.",
     NULL, 0, &a.target_macs, 0},
    {"target-params", CLI_STRING, "X", NULL,
     "Like --target-macs, for the parameter count (slim info's params).", NULL, 0, &a.target_params,
     0},
    {"check", CLI_INT, "N", "256",
     "Compare the pruned model with the original on the first N test images in inference mode "
     "(0 = skip) and print max |delta logit|, max |logit| and the argmax mismatches.",
     NULL, 0, &a.check, 0},
    {"data", CLI_STRING, "SPEC", "from the model",
     "Data for the check (its test split). Default: the data the model was trained on (the "
     "checkpoint's 'data' setting, with the split, resizing and normalisation it records), "
     "else fashion-mnist.",
     NULL, 0, &a.data, 0},
    {"backend", CLI_CHOICE, NULL, "fast", "Kernels for the check: fast (oneDNN) or ref (plain C).",
     "ref|fast", 0, &a.backend, 0},
    {"threads", CLI_INT, "N", "2", "Threads for oneDNN and OpenBLAS (0 = one per processor).", NULL,
     0, &a.threads, 0},
};

static cli_spec spec = {
    "prune",
    "slim prune IN.ckpt --out OUT.ckpt [--threshold T | --percent P | --target-macs X | "
    "--target-params X] [options]",
    "Removes batch-norm channels from a trained model: a channel whose gamma is exactly 0 "
    "outputs a constant (as does one whose conv filter is exactly zero, in inference mode), so "
    "it is removed and its constant folded into the next layer's bias "
    "(a per-position bias map for a padded convolution). Channels tied together by residual "
    "adds are removed together. Prints the per-layer table (channels, parameters, MACs before "
    "-> after), then checks the pruned model against the original on test images:\n"
    "  max |Δlogit| = X (max |logit| = Y, bound 1e-4·max|logit|), argmax mismatches: K\n"
    "With --threshold 0 (the default) a violated bound is an error (exit 1) and OUT is not "
    "written.",
    opts,
    sizeof opts / sizeof opts[0],
    1,
    1,
    NULL,
};

/* Runs the check; in exact mode a violated bound is an error. */
static slim_status check_pruned(slim_model *before, slim_model *after, const slim_ckpt *ck,
                                const char *in_path, int exact) {
    const char *data;
    slim_data_options dopts;
    SLIM_TRY(cli_data_options(ck, in_path, before, cli_given(&spec, "data") ? a.data : NULL, &data,
                              &dopts));
    dopts.limit = (size_t)a.check;
    slim_dataset *ds = NULL;
    slim_status st = slim_data_load(data, 0, &dopts, &ds);
    if (st != SLIM_OK)
        return slim_error_prefix(st, "loading check images (skip the check with --check 0)");
    /* The comparison takes the images as one float array. */
    st = slim_dataset_to_floats(ds);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return slim_error_prefix(st, "loading check images");
    }
    double max_delta = 0, max_abs = 0;
    size_t mismatches = 0;
    st = slim_prune_compare(before, after, ds->images, (int)ds->n, cli_backend(a.backend),
                            &max_delta, &max_abs, &mismatches);
    size_t n = ds->n;
    slim_dataset_free(ds);
    SLIM_TRY(st);
    printf("\ncheck on %zu test images of %s (inference mode):\n", n, data);
    printf("max |Δlogit| = %.3g (max |logit| = %.4g, bound 1e-4·max|logit|), argmax mismatches: "
           "%zu\n",
           max_delta, max_abs, mismatches);
    if (!(max_delta <= PRUNE_EXACT_RTOL * max_abs)) {
        if (exact) {
            return slim_error(SLIM_ERR_NUMERIC,
                              "pruning at threshold 0 changed the logits by %.3g > %.3g "
                              "(1e-4 x max |logit| %.4g); %s was not written",
                              max_delta, PRUNE_EXACT_RTOL * max_abs, max_abs, a.out);
        }
        printf("(approximate pruning: fine-tune with slim train --init %s)\n", a.out);
    }
    return SLIM_OK;
}

static slim_status save_pruned(const slim_model *pruned, const slim_ckpt *in_ck,
                               const char *in_path, const slim_prune_options *po) {
    slim_ckpt *ck = NULL;
    SLIM_TRY(slim_model_to_ckpt(pruned, SLIM_CKPT_TRAIN, 0, &ck));
    char how[64];
    const char *target = a.target_macs ? a.target_macs : a.target_params;
    if (target)
        snprintf(how, sizeof how, "target-%s=%s %s=%g", a.target_macs ? "macs" : "params", target,
                 po->mode == SLIM_PRUNE_PERCENT ? "percent" : "threshold",
                 po->mode == SLIM_PRUNE_PERCENT ? (double)po->percent : (double)po->threshold);
    else if (po->mode == SLIM_PRUNE_PERCENT)
        snprintf(how, sizeof how, "percent=%g", (double)po->percent);
    else
        snprintf(how, sizeof how, "threshold=%g", (double)po->threshold);
    slim_status st = cli_copy_meta(ck, in_ck);
    if (st == SLIM_OK) st = slim_ckpt_set_meta(ck, "pruned_from", in_path);
    if (st == SLIM_OK) st = slim_ckpt_set_meta(ck, "prune", how);
    /* No training position: the pruned network is a new starting point
     * (slim train --init), not a run to --resume. */
    if (st == SLIM_OK) st = slim_ckpt_write(ck, a.out);
    slim_ckpt_free(ck);
    return st;
}

int cmd_prune(int argc, char **argv) {
    int n_pos, r = cli_parse(&spec, argc, argv, &n_pos);
    if (r != CLI_PARSE_OK) return r == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *cmd = spec.command, *in_path = argv[1];
    if (!a.out) return cli_usage_error(cmd, "--out OUT.ckpt is required");
    int modes = cli_given(&spec, "percent") + cli_given(&spec, "threshold") + !!a.target_macs +
                !!a.target_params;
    if (modes > 1)
        return cli_usage_error(cmd, "--threshold, --percent, --target-macs and --target-params "
                                    "cannot be combined");
    double target_value = 0;
    int target = 0, target_fraction = 0;
    if ((r = cli_parse_target(cmd, a.target_macs, a.target_params, NULL, &target, &target_value,
                              &target_fraction)) != CLI_EXIT_OK)
        return r;
    if (cli_given(&spec, "percent") && !(a.percent >= 0 && a.percent <= 100))
        return cli_usage_error(cmd, "--percent must be in [0, 100], got %g", a.percent);
    if (!(a.threshold >= 0))
        return cli_usage_error(cmd, "--threshold must be >= 0, got %g", a.threshold);
    if (a.check < 0 || a.check > 10000000)
        return cli_usage_error(cmd, "--check must be between 0 and 10000000, got %" PRId64,
                               a.check);
    if (a.threads < 0 || a.threads > 4096)
        return cli_usage_error(cmd, "--threads must be between 0 and 4096, got %" PRId64,
                               a.threads);
    slim_set_threads((int)a.threads);

    slim_prune_options po = slim_prune_default_options();
    po.threshold = (float)a.threshold;
    if (cli_given(&spec, "percent")) {
        po.mode = SLIM_PRUNE_PERCENT;
        po.percent = (float)a.percent;
    }
    int exact = po.mode == SLIM_PRUNE_THRESHOLD && po.threshold == 0;

    slim_model *model = NULL, *pruned = NULL;
    slim_ckpt *ck = NULL;
    slim_prune_report report;
    memset(&report, 0, sizeof report);
    int rc = CLI_EXIT_FAIL;
    if (cli_load_model(in_path, 0, &model, &ck) != SLIM_OK) goto done;
    double budget = 0, reached = 0;
    if (target) {
        slim_cost kind = (slim_cost)target;
        double full =
            kind == SLIM_COST_MACS ? slim_model_macs(model) : (double)slim_model_param_count(model);
        budget = target_fraction ? target_value * full : target_value;
        slim_status st = slim_prune_for_budget(model, kind, budget, &po, &reached);
        if (st != SLIM_OK) {
            slim_error_prefix(st, "%s", in_path);
            goto done;
        }
        exact = po.mode == SLIM_PRUNE_THRESHOLD;
    }
    if (slim_prune(model, &po, &pruned, &report) != SLIM_OK) goto done;
    printf("%s -> %s\n\n", in_path, a.out);
    slim_prune_report_print(&report, stdout);
    if (target) {
        int params = a.target_params != NULL;
        double full = params ? (double)report.params_before : report.macs_before;
        reached = params ? (double)report.params_after : report.macs_after;
        printf("\nbudget: the pruned model has %.4g %s, %.2f%% of the budget %.4g (%.2f%% of the "
               "input's %.4g); %s\n",
               reached, params ? "params" : "MACs", 100 * reached / budget, budget,
               100 * reached / full, full,
               exact ? "exact (threshold 0)"
                     : "Network Slimming's rule, approximate: fine-tune after");
    }
    fflush(stdout);
    if (a.check > 0) {
        if (check_pruned(model, pruned, ck, in_path, exact) != SLIM_OK) goto done;
    } else if (exact) {
        printf("\n(check skipped: --check 0)\n");
    }
    if (save_pruned(pruned, ck, in_path, &po) != SLIM_OK) goto done;
    char b1[32];
    printf("\nsaved %s (%s bytes); fine-tune with: slim train --init %s --out RUN.ckpt\n", a.out,
           cli_group((uint64_t)cli_file_size(a.out), b1, sizeof b1), a.out);
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_fail();
    slim_prune_report_free(&report);
    slim_model_free(pruned);
    slim_model_free(model);
    slim_ckpt_free(ck);
    return rc;
}
