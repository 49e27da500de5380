/* Channel-dependency groups: which layers' channels must be removed together.
 *
 * Every layer output lives in a "channel space". A producer (the input, a
 * conv, a dense layer) starts a new space; a channel-wise op (bn, relu,
 * maxpool, avgpool, gap, flatten) outputs into its input's space; an `add`
 * merges the spaces of its two inputs (union-find). Channel j of a space is
 * one unit: output filter j of every producer, channel j of every BN and op,
 * input slice j of every consumer (a conv or dense layer that reads a layer of
 * the space). After a flatten, channel j of a (C, H, W) input covers the
 * H*W features j*H*W .. (j+1)*H*W - 1: `rep` counts features per channel.
 *
 * A space is a prunable GROUP when removing channel j (once every BN of the
 * space is constant at j: gamma_j = 0, or zero filters before it, see
 * prune.c) leaves a CONSTANT wherever a consumer reads it, so the constant
 * can be folded into the consumer. Structurally: a BN's output can be
 * constant at a channel whatever feeds it; a producer's is not counted on
 * (a zero filter makes it constant, but a consumer reading a producer
 * directly, with no BN between, stays out of every group: docs/PRUNING.md
 * says why); a channel-wise op passes constancy on; an add is constant
 * when both inputs are. So a space is a group when it
 *   - has at least one BN,
 *   - is read by conv/dense consumers only, each reading a constant layer,
 *   - does not contain the input layer or the last layer (the logits), and
 *   - has consistent shapes (every member has channels * rep features; a
 *     BN or add whose input has rep != 1 would mix features of a channel,
 *     so it makes its spaces unprunable).
 * docs/PRUNING.md explains this in prose. */
#include "slim/prune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int uf_find(int *parent, int x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void uf_union(int *parent, int a, int b) {
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    /* The smaller index stays the root, so a space's root is its first layer. */
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

static int is_producer(slim_layer_kind k) {
    return k == SLIM_LAYER_INPUT || k == SLIM_LAYER_CONV || k == SLIM_LAYER_DENSE;
}

void slim_prune_groups_free(slim_prune_groups *g) {
    if (!g) return;
    for (int i = 0; i < g->n_groups && g->groups; i++) {
        slim_prune_group *q = &g->groups[i];
        free(q->bn);
        free(q->producers);
        free(q->consumers);
        free(q->members);
    }
    free(g->groups);
    free(g->group_of_layer);
    free(g->rep_of_layer);
    memset(g, 0, sizeof *g);
}

/* Fills the group of space `root` (already known to be prunable). */
static slim_status fill_group(const slim_model *m, const int *root_of, int root, int channels,
                              slim_prune_group *q) {
    int n = m->n_layers;
    q->channels = channels;
    q->bn = slim_calloc((size_t)n, sizeof(int));
    q->producers = slim_calloc((size_t)n, sizeof(int));
    q->consumers = slim_calloc((size_t)n, sizeof(int));
    q->members = slim_calloc((size_t)n, sizeof(int));
    if (!q->bn || !q->producers || !q->consumers || !q->members) return SLIM_ERR_NOMEM;
    size_t label_len = 0;
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &m->layers[i];
        if (root_of[i] == root) {
            q->members[q->n_members++] = i;
            if (is_producer(l->kind)) q->producers[q->n_producers++] = i;
            if (l->kind == SLIM_LAYER_BN) {
                q->bn[q->n_bn++] = i;
                int w = snprintf(q->label + label_len, sizeof q->label - label_len, "%s%s",
                                 label_len ? "+" : "", l->name);
                if (w > 0) label_len += (size_t)w;
                if (label_len >= sizeof q->label) {
                    label_len = sizeof q->label - 1;
                    memcpy(q->label + sizeof q->label - 4, "...", 4);
                }
            }
        } else if (is_producer(l->kind) && l->n_inputs == 1 && root_of[l->inputs[0]] == root) {
            q->consumers[q->n_consumers++] = i;
        }
    }
    return SLIM_OK;
}

slim_status slim_prune_find_groups(const slim_model *m, slim_prune_groups *out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_prune_find_groups: out is NULL");
    memset(out, 0, sizeof *out);
    if (!m || !m->layers || m->n_layers < 1)
        return slim_error(SLIM_ERR_ARG, "slim_prune_find_groups: empty model");
    int n = m->n_layers;
    slim_status st = SLIM_OK;
    int *parent = slim_calloc((size_t)n, sizeof(int));
    int *space = slim_calloc((size_t)n, sizeof(int)); /* the layer that started the space */
    int *pin = slim_calloc((size_t)n, sizeof(int));   /* per layer: its space is unprunable */
    int *cflag = slim_calloc((size_t)n, sizeof(int)); /* constant at a zeroed channel */
    int *root_of = slim_calloc((size_t)n, sizeof(int));
    int *root_ok = slim_calloc((size_t)n, sizeof(int));
    int *root_nbn = slim_calloc((size_t)n, sizeof(int));
    out->group_of_layer = slim_calloc((size_t)n, sizeof(int));
    out->rep_of_layer = slim_calloc((size_t)n, sizeof(int));
    out->groups = slim_calloc((size_t)n, sizeof(slim_prune_group));
    out->n_layers = n;
    if (!parent || !space || !pin || !cflag || !root_of || !root_ok || !root_nbn ||
        !out->group_of_layer || !out->rep_of_layer || !out->groups) {
        st = SLIM_ERR_NOMEM;
        goto done;
    }
    int *rep = out->rep_of_layer;

    /* Spaces, reps and structural constancy, in model (topological) order. */
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &m->layers[i];
        parent[i] = i;
        space[i] = i;
        rep[i] = 1;
        if (is_producer(l->kind) || l->n_inputs < 1) {
            cflag[i] = 0;
            if (l->kind == SLIM_LAYER_INPUT) pin[i] = 1;
            continue;
        }
        int a = l->inputs[0];
        switch (l->kind) {
        case SLIM_LAYER_BN:
            if (rep[a] != 1) {
                /* Per-feature BN over flattened channels: its features are not
                 * the space's channels. Leave both spaces alone. */
                pin[i] = pin[a] = 1;
                cflag[i] = 0;
            } else {
                space[i] = space[a];
                cflag[i] = 1;
            }
            break;
        case SLIM_LAYER_RELU:
        case SLIM_LAYER_MAXPOOL:
        case SLIM_LAYER_AVGPOOL:
        case SLIM_LAYER_GAP:
            space[i] = space[a];
            rep[i] = rep[a];
            cflag[i] = cflag[a];
            break;
        case SLIM_LAYER_FLATTEN:
            space[i] = space[a];
            rep[i] = rep[a] * l->in_h * l->in_w;
            cflag[i] = cflag[a];
            break;
        case SLIM_LAYER_ADD: {
            int b = l->inputs[1];
            if (rep[a] != rep[b]) {
                pin[i] = pin[a] = pin[b] = 1;
                cflag[i] = 0;
            } else {
                uf_union(parent, space[a], space[b]);
                space[i] = space[a];
                rep[i] = rep[a];
                cflag[i] = cflag[a] && cflag[b];
            }
            break;
        }
        default:
            pin[i] = 1;
            cflag[i] = 0;
            break;
        }
    }
    pin[n - 1] = 1; /* the logits keep every class */

    for (int i = 0; i < n; i++) {
        root_of[i] = uf_find(parent, space[i]);
        root_ok[root_of[i]] = 1;
    }
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &m->layers[i];
        int r = root_of[i];
        if (pin[i]) root_ok[r] = 0;
        if (l->kind == SLIM_LAYER_BN && !pin[i]) root_nbn[r]++;
        /* Every member carries channels * rep features, channels being the
         * root producer's c. */
        const slim_layer *p = &m->layers[r];
        if ((long)l->c != (long)p->c * rep[i]) root_ok[r] = 0;
        /* Readers from outside the space must be conv/dense consumers that
         * read a constant. */
        for (int k = 0; k < l->n_inputs; k++) {
            int a = l->inputs[k];
            int ra = root_of[a];
            if (ra == r) continue;
            if (!(l->kind == SLIM_LAYER_CONV || l->kind == SLIM_LAYER_DENSE) || !cflag[a])
                root_ok[ra] = 0;
        }
    }

    for (int i = 0; i < n; i++)
        out->group_of_layer[i] = -1;
    for (int i = 0; i < n; i++) {
        int r = root_of[i];
        if (r != i || !root_ok[r] || root_nbn[r] < 1) continue;
        slim_prune_group *q = &out->groups[out->n_groups];
        st = fill_group(m, root_of, r, m->layers[r].c, q);
        out->n_groups++;
        if (st != SLIM_OK) goto done;
        for (int k = 0; k < q->n_members; k++)
            out->group_of_layer[q->members[k]] = out->n_groups - 1;
    }

done:
    free(parent);
    free(space);
    free(pin);
    free(cflag);
    free(root_of);
    free(root_ok);
    free(root_nbn);
    if (st != SLIM_OK) slim_prune_groups_free(out);
    return st;
}
