/* slim prune: pruning's analysis and checks around the pass itself
 * (slim_prune, in slim/passes.h, which explains the method): the
 * channel-dependency groups a pass removes channels by, the before -> after
 * report table, and a comparison of two models' outputs on real inputs that
 * proves a pruned model exact. docs/PRUNING.md has the algorithm.
 */
#ifndef SLIM_PRUNE_H
#define SLIM_PRUNE_H

#include <stdio.h>

#include "slim/core.h"
#include "slim/kernels.h"
#include "slim/nn.h"
#include "slim/passes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- channel-dependency groups (src/passes/groups.c) ------------------ */

/* One group: `channels` channels that live or die together. */
typedef struct slim_prune_group {
    int channels; /* channels in the group: c of each of its producers */
    int n_bn;
    int *bn; /* (n_bn) BN layers with a channel in the group, model order */
    int n_producers;
    int *producers; /* (n_producers) conv/dense layers whose output filters are the channels
                       (not depthwise convs: they are channel-wise members) */
    int n_consumers;
    int *consumers; /* (n_consumers) conv/dense layers that read the channels (an input slice) */
    int n_members;
    int *members;   /* (n_members) every layer whose output carries some of the channels:
                       producers, bn, relu, relu6, pools, gap, flatten, add, depthwise conv,
                       concat; model order */
    char label[96]; /* the BN names joined by '+', for messages ("stem_bn+b1_bn2") */
} slim_prune_group;

typedef struct slim_prune_groups {
    int n_groups;
    slim_prune_group *groups; /* (n_groups), in model order of their first layer */
    int n_layers;
    int *group_of_layer;    /* (n_layers) group whose channels a layer OUTPUTS, channel t being
                               the group's channel t, -1 if none (a concat of several groups
                               is -1: see group_of_channel) */
    int *rep_of_layer;      /* (n_layers) features per channel in a layer's output: 1, or H*W
                               (times the input's) after a flatten */
    int *channels_of_layer; /* (n_layers) output channels c / rep */
    int **group_of_channel; /* per layer: (channels_of_layer[i]) the group output channel t
                               belongs to, -1 if none */
    int **index_of_channel; /* per layer: (channels_of_layer[i]) its channel in that group */
} slim_prune_groups;

/* Finds the model's groups. Layers that cannot be pruned (the input, a conv
 * not followed by a BN, anything that reaches the logits, a branch meeting
 * a non-constant one at an add, a grouped conv's inputs and outputs) are in
 * no group. A depthwise conv ties its input channel t to its output channel
 * t; a concat maps its channels to its inputs' by offsets. Free with
 * slim_prune_groups_free (also after a failure). */
slim_status slim_prune_find_groups(const slim_model *model, slim_prune_groups *out);
void slim_prune_groups_free(slim_prune_groups *groups);

/* ---- report (src/passes/report.c) ------------------------------------- */

/* The aligned table: layer, kind, channels before -> after, params, MACs,
 * then totals with the % kept, then the notes. When zero filters removed
 * channels, a last column "removed because" gives each row's counts by
 * reason ("7 gamma=0, 9 zero filter"; the total row their sums); without
 * zero-filter removals the table prints exactly as it always has. */
void slim_prune_report_print(const slim_prune_report *report, FILE *f);
/* Runs both models on the same inputs x (n, c, h, w) in inference mode with
 * `backend`, in batches, and returns max |logit_a - logit_b|, max |logit_a|
 * and how many images' argmax differ. The models must take the same input
 * shape and give the same number of classes. */
slim_status slim_prune_compare(slim_model *a, slim_model *b, const float *x, int n,
                               slim_backend backend, double *max_delta, double *max_abs,
                               size_t *argmax_mismatches);

#ifdef __cplusplus
}
#endif
#endif
