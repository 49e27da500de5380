/* Pruning's private plan, shared by prune.c (choosing, folding, building
 * the narrower model) and prune_fixed.c (the fixed values of removed
 * channels). */
#ifndef SLIM_PASSES_PRUNE_PLAN_H
#define SLIM_PASSES_PRUNE_PLAN_H

#include "kernels/kernels.h"
#include "slim/prune.h"

enum { PRUNE_FOLD_NONE = 0, PRUNE_FOLD_BIAS, PRUNE_FOLD_MAP };

/* Why a group channel goes (see slim_prune_layer_report). */
enum { PRUNE_KEPT = 0, PRUNE_WHY_GAMMA, PRUNE_WHY_FILTER, PRUNE_WHY_FIXED_INPUT, PRUNE_WHY_APPROX };

/* How a fixed value is exact (prune_plan.filter, .via_filter): in training
 * mode too (gamma = 0), or in inference mode only, through a zero filter or
 * through a BN with gamma != 0 normalising a fixed input. */
enum { PRUNE_EXACT_ALWAYS = 0, PRUNE_EXACT_FILTER, PRUNE_EXACT_FIXED_INPUT };

typedef struct prune_plan {
    const slim_model *m;
    slim_prune_groups g;
    float **score;              /* per group: (channels) how far channel j is from fixed where it
                                   is read (prune_fixed.c); 0 = input-independent everywhere */
    unsigned char **via_filter; /* per group: (channels) PRUNE_EXACT_* of where it is read */
    unsigned char **read;       /* per group: (channels) nonzero when a consumer reads it */
    unsigned char **removed;    /* per group: (channels) 1 = removed */
    unsigned char **why;        /* per group: (channels) PRUNE_WHY_* */
    int **keep;                 /* per group: (n_keep) kept channel indices, ascending */
    int *n_keep;                /* (n_groups) */
    /* Per layer with a channel in a group (NULL for others), per output
     * channel t (g.channels_of_layer[i] of them): */
    double **value;         /* (channels, plane) its output at t once its channel is removed:
                               the exact fixed value where fixed[i][t], else the value with
                               gamma := 0 in the BNs that are not fixed; plane = prune_plane */
    unsigned char **fixed;  /* (channels) 1 = output at t is input-independent */
    unsigned char **filter; /* (channels) PRUNE_EXACT_* of the fixed value */
    float **live;           /* (channels) 0 where fixed, else |gamma| of the last BN on its
                               path (+inf with none since its producer) */
    float **fold;           /* per conv/dense layer: (cout) or (cout, oh, ow); NULL = none */
    int *fold_kind;         /* (n_layers) PRUNE_FOLD_* */
    /* Live pruning (prune_live.c): when allow is set (param_floats, read at
     * the gamma offsets), threshold mode removes only channels with every
     * gamma of the group exactly 0 and allowed; src, when want_src, gets
     * (the new model's param_floats) each new value's index in the old
     * model, SIZE_MAX for none (a new bias, a biasmap). */
    const unsigned char *allow;
    int want_src;
    size_t *src;
} prune_plan;

/* Steps 1-3 of slim_prune on p (p->m set, the rest zero): the groups,
 * each channel's score and fixed values, and which channels opt removes
 * (p->removed, p->keep); r, when not NULL, gets the notes. Free with
 * prune_plan_free, also after a failure. */
slim_status prune_plan_choose(prune_plan *p, const slim_prune_options *opt, slim_prune_report *r);
void prune_plan_free(prune_plan *p);
/* Steps 1-5 of slim_prune on p (as prune_plan_choose): *out is the
 * narrower model. */
slim_status prune_plan_run(prune_plan *p, const slim_prune_options *opt, slim_model **out,
                           slim_prune_report *r);

/* Whether l is a depthwise conv: groups > 1 equal to both channel counts. */
int prune_is_depthwise(const slim_layer *l);

/* Positions per channel of layer i's value: rep * h * w. */
size_t prune_plane(const prune_plan *p, int i);

/* The fixed values, fixedness and liveness of every group layer, in model
 * order, then each group channel's score (prune_fixed.c). */
slim_status prune_propagate(prune_plan *p);

/* y (cout, oh, ow) = the zero-padded convolution of x (cin, h, w) with w
 * (cout, cin / groups, kh, kw), in double, no bias; s->n is ignored (one
 * image). */
void prune_conv_double(const slim_conv_shape *s, int groups, const double *x, const float *w,
                       double *y);

#endif
