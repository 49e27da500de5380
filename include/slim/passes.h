/* slim passes: model -> model rewrites. Each takes a model and returns a NEW
 * one (the input is never modified) whose structure is written as model text
 * (slim_model_to_text) and parsed again, so the text is the truth:
 *   - batch-norm folding (slim_model_fold_bn), which the runtime applies;
 *   - biasmaps as the weights of a channel of ones
 *     (slim_model_biasmap_as_channel), which the runtime applies too;
 *   - pruning (slim_prune), below.
 * Pruning's analysis and checks (channel groups, the report table, output
 * comparison) are in slim/prune.h.
 *
 * Pruning removes batch-norm channels from a model, exactly.
 *
 * A channel whose BN scale gamma_j is exactly 0 outputs the constant beta_j
 * (in inference AND in training mode: the normalised term is multiplied by
 * 0). A channel whose producing filter is exactly zero (weight-L1 or
 * filter-L1 training) is constant too: the conv outputs its bias b_j (0
 * without one) at every position, and the BN after it, in inference mode,
 * the constant gamma_j (b_j - mean_j) / sqrt(var_j + eps) + beta_j.
 * Channel-wise ops keep such a value input-independent (relu: max(c, 0);
 * relu6: clipped to [0, 6]; pooling, gap, flatten, concat: moved or
 * averaged; add: the sum of two; a depthwise conv: the conv of the plane,
 * a fixed per-position map whose border differs), so the channel can be
 * removed and its fixed contribution added to the consumer: a dense
 * layer's bias, or, for a convolution, a per-(channel, position) bias map
 * (zero padding: the border outputs see fewer taps of a constant).
 * Pruning at threshold 0 is therefore lossless by construction (in inference
 * mode; for gamma = 0 in training mode too); slim_prune_compare proves it on
 * real inputs.
 *
 * Channels are removed in channel-dependency GROUPS (src/passes/groups.c):
 * the producing convs' (or dense layers') output filters, the BN channels,
 * every channel-wise op after them (a depthwise conv's filter too), its
 * place in every concat, and the consumers' input slices, with all
 * branches meeting at a residual `add` tied into one group; a grouped conv's
 * input and output channels stay. A group's channel j is removed at
 * threshold 0 only when it is input-independent wherever a consumer reads
 * it: gamma_j = 0 in the last BN before, or a fixed input to that BN
 * (filters feeding it exactly zero, or gamma_j = 0 in a BN before a
 * depthwise conv).
 * A conv/dense layer not followed by a BN is in no group, so its zero
 * filters stay. The pruned model keeps the layer names. docs/PRUNING.md has
 * the algorithm and the proof of exactness.
 */
#ifndef SLIM_PASSES_H
#define SLIM_PASSES_H

#include "slim/ckpt.h"
#include "slim/core.h"
#include "slim/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- batch-norm folding (src/passes/bn_fold.c) ------------------------ */

/* A new model in which every bn whose input is a conv read by nothing but
 * that bn is folded into the conv, in inference mode (running statistics):
 * with s = gamma / sqrt(running_var + eps),
 *   W' = W s (per output channel), b' = (b - running_mean) s + beta,
 *   biasmap' = biasmap s (when the conv has one),
 * and the conv gets has_bias = 1. The folded bn layers disappear: a from=
 * that named one now names its conv. Other bn layers stay as they are. The
 * structure goes through slim_model_to_text and slim_model_parse (the text
 * is the truth), then the parameters are copied or folded. `in` is not
 * changed; *out is the caller's (slim_model_free). */
slim_status slim_model_fold_bn(const slim_model *in, slim_model **out);

/* ---- biasmaps as a channel of ones (src/passes/biasmap_channel.c) ---- */

/* Turns the biasmap of a conv into the weights of one more input channel
 * holding ones, made by the conv that produces its input (one more filter,
 * weights 0, bias 1), where that is exact and free: the biasmap is of that
 * form (separable through the padding masks), the producer's channel count
 * is not a multiple of 16, only relu/relu6/pools lie between them, each
 * read by the next alone, and neither conv is grouped. Other biasmaps stay.
 * keep[i] (keep may be NULL) leaves conv i's biasmap alone. ones[i] and
 * fold[i] ([m->n_layers], set here) mark the producers that got a channel
 * of ones and the convs whose biasmap became its weights. *out is the
 * rewritten model (the caller's, slim_model_free), or NULL when nothing
 * was rewritten; m is not changed. Layer indices stay the same. */
slim_status slim_model_biasmap_as_channel(const slim_model *m, const int *keep, slim_model **out,
                                          int *ones, int *fold);

/* ---- pruning (src/passes/prune.c) ------------------------------------- */

typedef enum slim_prune_mode {
    SLIM_PRUNE_THRESHOLD = 0, /* the default, so that a zeroed options struct prunes exact zeros */
    SLIM_PRUNE_PERCENT,
} slim_prune_mode;

typedef struct slim_prune_options {
    slim_prune_mode mode;
    /* Threshold mode: remove channel j of a group when, in every BN of the
     * group, |gamma_j| <= threshold or the BN's output is exactly constant at
     * j (its input is: zero filters). 0 (the default) removes exactly
     * constant channels only, and is exact. */
    float threshold;
    /* Percent mode (0..100): Network Slimming's rule: of all N channels of
     * all groups (a group's channel scored by the largest |gamma_j| over its
     * BNs, a BN that is exactly constant at j counting 0, so zero-filter
     * channels go first), remove the floor(percent * N / 100) smallest, ties
     * broken by model order. Approximate: removed channels that are not
     * constant are treated as gamma_j := 0 (their beta is folded exactly),
     * so fine-tune after. */
    float percent;
} slim_prune_options;

/* Defaults: threshold mode, threshold 0 (the same as a zeroed struct). */
slim_prune_options slim_prune_default_options(void);

/* One row of the before -> after table: a layer with parameters or MACs. */
typedef struct slim_prune_layer_report {
    char name[SLIM_NAME_MAX];
    slim_layer_kind kind;
    int channels_before, channels_after; /* output channels (c) */
    size_t params_before, params_after;  /* slim_layer_params */
    double macs_before, macs_after;      /* slim_layer_macs, per image */
    /* Why output channels went, for a layer of a group (0 elsewhere); the
     * three add up to channels_before - channels_after. */
    int removed_gamma_zero;  /* gamma_j = 0 in every BN of the group: exact */
    int removed_zero_filter; /* every BN exactly constant at j, some only through zero
                                filters (gamma_j != 0): exact in inference mode */
    int removed_fixed_input; /* read fixed only because a BN with gamma_j != 0 normalises a
                                fixed input (gamma_j = 0 in a BN before a depthwise conv or
                                a concat; no zero filter): exact in inference mode */
    int removed_approx;      /* not constant (threshold > 0, percent): gamma_j := 0 */
} slim_prune_layer_report;

typedef struct slim_prune_report {
    slim_prune_options options;
    int n_rows;
    slim_prune_layer_report *rows; /* (n_rows) model order */
    int n_groups;
    int channels_before, channels_after; /* summed over all groups */
    int removed_nonzero; /* removed channels that were not exactly constant (approximate):
                            the rows' removed_approx, counted once per group channel */
    int removed_gamma_zero, removed_zero_filter, removed_fixed_input; /* the exact ones, by
                                                                         reason, likewise */
    size_t params_before, params_after; /* slim_model_param_count of input and output */
    double macs_before, macs_after;     /* slim_model_macs of input and output */
    int n_notes;
    char **notes; /* (n_notes) one sentence each: kept channels, folds, approximations */
} slim_prune_report;

/* Prunes `in` into a new model *out (free with slim_model_free). opt NULL
 * means the defaults. report may be NULL; otherwise it is filled (free with
 * slim_prune_report_free, also after a failure). Errors: SLIM_ERR_ARG for bad
 * options, SLIM_ERR_NUMERIC when a BN of a group has a non-finite gamma or
 * beta. */
slim_status slim_prune(const slim_model *in, const slim_prune_options *opt, slim_model **out,
                       slim_prune_report *report);

/* Frees what slim_prune filled in a report (src/passes/report.c). */
void slim_prune_report_free(slim_prune_report *report);

/* ---- the cost of the pruned model (src/passes/cost.c) ----------------- */

/* What a channel costs in a cost-weighted penalty (docs/SPARSITY.md). */
typedef enum slim_cost {
    SLIM_COST_UNIFORM = 0, /* every channel 1: the plain Γ-L1 */
    SLIM_COST_MACS,        /* the multiply-adds the channel accounts for */
    SLIM_COST_PARAMS,      /* the parameters it accounts for */
    SLIM_COST_LATENCY,     /* the batch-1 latency it accounts for (a slim_latency_table) */
} slim_cost;

/* "uniform", "macs", "params", "latency" */
const char *slim_cost_name(slim_cost cost);
slim_status slim_cost_parse(const char *name, slim_cost *out);

typedef struct slim_pruned_cost {
    double macs, params;           /* of the model slim_prune at threshold 0 gives now */
    double full_macs, full_params; /* of the model as it is */
    /* With reach: also without the channels each of whose gammas has
     * |gamma| <= reach at its entry (the ones expected to reach zero);
     * else equal to macs, params. */
    double projected_macs, projected_params;
    int channels, channels_alive; /* group channels: all, and those pruning keeps */
    /* With a latency table: the predicted batch-1 latency in microseconds
     * (slim_latency_model_us) of the pruned model, of the model as it is,
     * and projected as above; 0 without one. */
    double latency_us, full_latency_us, projected_latency_us;
} slim_pruned_cost;

/* ---- the latency table (src/passes/latency_table.c) ------------------- */

/* Grid points per axis of a layer's latency table. */
#define SLIM_LATENCY_POINTS 5

/* The batch-1 latency of each conv and dense layer of a model on slim's
 * runtime, measured at a grid of widths (slim_latency_table_measure, in
 * slim/measure.h), as plain data. Layer i's grid (P = SLIM_LATENCY_POINTS):
 * input widths in[i * P + a] and output widths out[i * P + b], in features
 * as slim_layer's in_c and c count them, non-decreasing, the last the
 * layer's own; us[(i * P + a) * P + b] its time in microseconds at
 * (in[a], out[b]), non-decreasing along both axes. A layer of another
 * kind has widths and times 0. Between grid points a time is bilinear,
 * beyond them linear from the nearest cell, at least 0. */
typedef struct slim_latency_table {
    int n_layers;    /* of the model it was measured on */
    float *in, *out; /* (n_layers * P) */
    float *us;       /* (n_layers * P * P) */
    /* What the table leaves out (input and output, pooling, reorders,
     * what fusion saves): the whole model's measured latency minus the
     * table's sum at full widths, added as a constant. */
    double rest_us;
    /* Where it was measured (slim_set_threads, the CPU's instruction set,
     * slim's version): recorded, not checked. */
    int threads;
    char isa[16], version[32];
} slim_latency_table;

/* t: zeroed arrays for n_layers; free with slim_latency_table_free. */
slim_status slim_latency_table_alloc(slim_latency_table *t, int n_layers);
void slim_latency_table_free(slim_latency_table *t); /* NULL is fine */
/* Layer i's time (microseconds) at `in` input and `out` output features. */
double slim_latency_layer_us(const slim_latency_table *t, int i, double in, double out);
/* The predicted latency of m: every layer at its widths, plus rest_us (at
 * least 0). */
double slim_latency_model_us(const slim_latency_table *t, const slim_model *m);
/* SLIM_ERR_FORMAT, naming `where` and the tensor and value, unless t covers
 * m (its layers timed, each grid rising to at least the layer's width: a
 * model live pruning narrowed keeps its table) and every value is in range. */
slim_status slim_latency_table_check(const slim_latency_table *t, const slim_model *m,
                                     const char *where);
/* Adds the settings latency.* and tensors latency.in, latency.out,
 * latency.us (docs/CHECKPOINT_FORMAT.md) to ck. */
slim_status slim_latency_table_store(const slim_latency_table *t, slim_ckpt *ck);
/* Reads them from ck (path for messages) into *t (allocated here), checked
 * against m; missing or bad: SLIM_ERR_FORMAT naming path and the key. */
slim_status slim_latency_table_load(const slim_ckpt *ck, const char *path, const slim_model *m,
                                    slim_latency_table *t);

/* The MACs and params (slim_model_macs, slim_model_param_count) of the
 * model slim_prune would give at threshold 0, from its analysis alone
 * (groups, scores, the never-empty rule), without building it. The params
 * leave out the biases that folding may add to a consumer without one.
 *
 * Each group channel's cost c_j (kind): for MACs (params), what it
 * accounts for now: its producers' filters, a depthwise conv carrying it,
 * its consumers' input slices (and its BN parameters), counted with the
 * channels still alive (for a removed channel, what it would add back),
 * normalised to mean 1 over the gamma entries of live channels; for
 * uniform, 1. weights, when not NULL, is (model->param_floats), laid out
 * like the parameters, and receives c_j at each gamma of the channel;
 * gammas in no group (they cannot be pruned) and every other parameter
 * get 0. reach, when not NULL, is (model->param_floats) like weights: see
 * projected_macs. */
slim_status slim_pruned_cost_measure(const slim_model *model, slim_cost kind, const float *reach,
                                     float *weights, slim_pruned_cost *out);
/* The same with a latency table (NULL: none) for the latency fields and
 * kind SLIM_COST_LATENCY (which needs one): a channel's latency cost is
 * what the layers it touches lose in the table (its producers at their
 * output width less one, its consumers at their input width less one),
 * counted with the channels still alive like its MACs. */
slim_status slim_pruned_cost_measure_table(const slim_model *model, slim_cost kind,
                                           const slim_latency_table *table, const float *reach,
                                           float *weights, slim_pruned_cost *out);

/* Pruning to a budget (src/passes/prune_budget.c), for models without
 * exact zeros: *opt := the options for slim_prune that give the largest
 * model whose MACs (kind SLIM_COST_MACS) or parameter count
 * (SLIM_COST_PARAMS, slim_model_param_count) is at most budget, and
 * *reached := that count. Threshold 0 (exact) when that model already fits;
 * else percent mode (Network Slimming's rule: the group channels of the
 * smallest |gamma| go first, a group keeps at least one) removing the
 * fewest channels that fit: approximate, fine-tune after. A budget below
 * the model with one channel per group is SLIM_ERR_ARG naming both. */
slim_status slim_prune_for_budget(const slim_model *m, slim_cost kind, double budget,
                                  slim_prune_options *opt, double *reached);

#ifdef __cplusplus
}
#endif
#endif
