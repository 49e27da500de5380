/* Channel-dependency groups: which layers' channels must be removed together.
 *
 * Every output channel of every layer is mapped to a channel of a "space".
 * A producer (the input, a conv with groups = 1, a dense layer) starts a new
 * space, its channel t being channel t of the space; a channel-wise op (bn,
 * relu, relu6, maxpool, avgpool, gap, flatten, and a depthwise conv: groups
 * equal to both channel counts, which ties input channel t to output channel
 * t) maps channel t to its input's channel t; a concat maps its channel t to
 * (input k, t - offset of k); an `add` merges the spaces its two inputs'
 * channels map to, channel by channel (union-find of spaces; two channels
 * that meet must have the same index in their spaces, else both spaces are
 * pinned). After a flatten, channel t of a (C, H, W) input covers the H*W
 * features t*H*W .. (t+1)*H*W - 1: `rep` counts features per channel.
 *
 * A space is a prunable GROUP when removing channel j (once the channel is
 * input-independent where it is read, see prune.c) leaves a FIXED value
 * (a constant or a fixed per-position map) wherever a consumer (a conv with
 * groups = 1 or a dense layer outside the chain) reads it, so that value can
 * be folded into the consumer. Structurally: a BN's output can be fixed at
 * a channel whatever feeds it (gamma = 0); a producer's is not counted on
 * (docs/PRUNING.md says why); channel-wise ops, depthwise convs and concat
 * pass fixedness on; an add is fixed when both inputs are. So a space is a
 * group when it
 *   - has at least one BN channel,
 *   - is read by conv/dense consumers only at fixable channels,
 *   - does not reach the input layer or the last layer (the logits), and
 *   - is not read or made by a grouped conv (1 < groups, not depthwise):
 *     its channel counts must stay divisible by its groups, so such a conv's
 *     input and output channels are left alone, and
 *   - is consistent (every producer in it has the space's channel count; a
 *     BN, depthwise conv, concat or add reading a flattened input (rep != 1)
 *     would mix features of one channel, so it pins what it touches).
 * docs/PRUNING.md explains this in prose. */
#include "passes/prune_plan.h"

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

int prune_is_depthwise(const slim_layer *l) {
    return l->kind == SLIM_LAYER_CONV && l->groups > 1 && l->groups == l->in_c && l->groups == l->c;
}

/* A layer that starts a new space. */
static int is_producer(const slim_layer *l) {
    return l->kind == SLIM_LAYER_INPUT || l->kind == SLIM_LAYER_DENSE ||
           (l->kind == SLIM_LAYER_CONV && !prune_is_depthwise(l));
}

/* A layer outside the spaces it reads, whose weights take input slices. */
static int is_consumer(const slim_layer *l) {
    return l->kind == SLIM_LAYER_DENSE || (l->kind == SLIM_LAYER_CONV && l->groups <= 1);
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
    for (int i = 0; i < g->n_layers; i++) {
        if (g->group_of_channel) free(g->group_of_channel[i]);
        if (g->index_of_channel) free(g->index_of_channel[i]);
    }
    free(g->group_of_channel);
    free(g->index_of_channel);
    free(g->channels_of_layer);
    free(g->groups);
    free(g->group_of_layer);
    free(g->rep_of_layer);
    memset(g, 0, sizeof *g);
}

/* Per layer, per output channel: the space (its producer's layer index,
 * -1 for none) and the channel in it, and whether it can be fixed. */
typedef struct chmap {
    int **sp, **ch;
    unsigned char **fx;
} chmap;

/* Whether layer i has a channel in group gi (channels already mapped to groups). */
static int touches(const slim_prune_groups *out, const chmap *cm, int i, int gi) {
    for (int t = 0; t < out->channels_of_layer[i]; t++)
        if (cm->sp[i][t] == gi) return 1;
    return 0;
}

/* Fills group gi (its channels already mapped to gi). */
static slim_status fill_group(const slim_model *m, const slim_prune_groups *out, const chmap *cm,
                              int gi, int channels, slim_prune_group *q) {
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
        if (touches(out, cm, i, gi)) {
            q->members[q->n_members++] = i;
            if (is_producer(l)) q->producers[q->n_producers++] = i;
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
        } else if (is_consumer(l) && l->n_inputs == 1 && touches(out, cm, l->inputs[0], gi)) {
            q->consumers[q->n_consumers++] = i;
        }
    }
    return SLIM_OK;
}

/* Pins every space that layer a's channels map to. */
static void pin_all(const chmap *cm, const int *nch, int *pin, int a) {
    for (int t = 0; t < nch[a]; t++)
        if (cm->sp[a][t] >= 0) pin[cm->sp[a][t]] = 1;
}

/* Makes layer i a new space of its own (a producer), pinned or not. */
static void new_space(const chmap *cm, const int *nch, int *pin, int i, int pinned) {
    for (int t = 0; t < nch[i]; t++) {
        cm->sp[i][t] = i;
        cm->ch[i][t] = t;
        cm->fx[i][t] = 0;
    }
    if (pinned) pin[i] = 1;
}

/* Layer i (channel-wise) maps channel t to its input a's channel t. */
static void same_as(const chmap *cm, int i, int a, int nc) {
    memcpy(cm->sp[i], cm->sp[a], (size_t)nc * sizeof(int));
    memcpy(cm->ch[i], cm->ch[a], (size_t)nc * sizeof(int));
    memcpy(cm->fx[i], cm->fx[a], (size_t)nc);
}

/* Maps layer i's channels, in model order (step 1 of find_groups). */
static void map_layer(const slim_model *m, const chmap *cm, int *nch, int *rep, int *pin,
                      int *parent, int i) {
    const slim_layer *l = &m->layers[i];
    int a = l->n_inputs > 0 ? l->inputs[0] : -1;
    if (is_producer(l) || a < 0) {
        /* A grouped conv keeps its channel counts divisible by groups:
         * its input and output channels stay. */
        int grouped = l->kind == SLIM_LAYER_CONV && l->groups > 1;
        if (grouped) pin_all(cm, nch, pin, a);
        new_space(cm, nch, pin, i, l->kind == SLIM_LAYER_INPUT || grouped);
        return;
    }
    switch (l->kind) {
    case SLIM_LAYER_BN:
    case SLIM_LAYER_CONV: /* depthwise */
        if (rep[a] != 1 || nch[a] != nch[i]) break;
        same_as(cm, i, a, nch[i]);
        if (l->kind == SLIM_LAYER_BN)
            for (int t = 0; t < nch[i]; t++)
                cm->fx[i][t] = 1;
        return;
    case SLIM_LAYER_RELU:
    case SLIM_LAYER_RELU6:
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL:
    case SLIM_LAYER_GAP:
    case SLIM_LAYER_FLATTEN:
        rep[i] = rep[a] * (l->kind == SLIM_LAYER_FLATTEN ? l->in_h * l->in_w : 1);
        if (rep[i] < 1 || l->c % rep[i] || l->c / rep[i] != nch[a]) break;
        nch[i] = l->c / rep[i];
        same_as(cm, i, a, nch[i]);
        return;
    case SLIM_LAYER_ADD: {
        int b = l->inputs[1], ok = rep[a] == rep[b] && nch[a] == nch[b] && nch[a] * rep[a] == l->c;
        for (int t = 0; ok && t < nch[a]; t++)
            ok = cm->sp[a][t] >= 0 && cm->sp[b][t] >= 0 && cm->ch[a][t] == cm->ch[b][t];
        if (!ok) {
            pin_all(cm, nch, pin, b);
            break;
        }
        rep[i] = rep[a];
        nch[i] = nch[a];
        same_as(cm, i, a, nch[i]);
        for (int t = 0; t < nch[i]; t++) {
            uf_union(parent, cm->sp[a][t], cm->sp[b][t]);
            cm->fx[i][t] = cm->fx[a][t] && cm->fx[b][t];
        }
        return;
    }
    case SLIM_LAYER_CONCAT: {
        int ok = 1, off = 0;
        for (int k = 0; k < l->n_inputs; k++)
            ok = ok && rep[l->inputs[k]] == 1;
        for (int k = 0; ok && k < l->n_inputs; k++) {
            int b = l->inputs[k];
            memcpy(cm->sp[i] + off, cm->sp[b], (size_t)nch[b] * sizeof(int));
            memcpy(cm->ch[i] + off, cm->ch[b], (size_t)nch[b] * sizeof(int));
            memcpy(cm->fx[i] + off, cm->fx[b], (size_t)nch[b]);
            off += nch[b];
        }
        if (ok && off == nch[i]) return;
        for (int k = 1; k < l->n_inputs; k++)
            pin_all(cm, nch, pin, l->inputs[k]);
        break;
    }
    default: break;
    }
    /* Anything else: its input's spaces stay whole, and it starts a pinned
     * space of its own. */
    pin_all(cm, nch, pin, a);
    rep[i] = 1;
    nch[i] = l->c;
    new_space(cm, nch, pin, i, 1);
}

/* Allocates the per-channel arrays of the output and of the map. */
static slim_status alloc_maps(const slim_model *m, slim_prune_groups *out, chmap *cm) {
    int n = m->n_layers;
    out->group_of_layer = slim_calloc((size_t)n, sizeof(int));
    out->rep_of_layer = slim_calloc((size_t)n, sizeof(int));
    out->channels_of_layer = slim_calloc((size_t)n, sizeof(int));
    out->group_of_channel = slim_calloc((size_t)n, sizeof(int *));
    out->index_of_channel = slim_calloc((size_t)n, sizeof(int *));
    out->groups = slim_calloc((size_t)n, sizeof(slim_prune_group));
    out->n_layers = n;
    cm->sp = out->group_of_channel; /* reused: resolved to groups at the end */
    cm->ch = out->index_of_channel;
    cm->fx = slim_calloc((size_t)n, sizeof(unsigned char *));
    if (!out->group_of_layer || !out->rep_of_layer || !out->channels_of_layer ||
        !out->group_of_channel || !out->index_of_channel || !out->groups || !cm->fx)
        return SLIM_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        int c = m->layers[i].c;
        cm->sp[i] = slim_calloc((size_t)(c ? c : 1), sizeof(int));
        cm->ch[i] = slim_calloc((size_t)(c ? c : 1), sizeof(int));
        cm->fx[i] = slim_calloc((size_t)(c ? c : 1), 1);
        if (!cm->sp[i] || !cm->ch[i] || !cm->fx[i]) return SLIM_ERR_NOMEM;
    }
    return SLIM_OK;
}

slim_status slim_prune_find_groups(const slim_model *m, slim_prune_groups *out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "slim_prune_find_groups: out is NULL");
    memset(out, 0, sizeof *out);
    if (!m || !m->layers || m->n_layers < 1)
        return slim_error(SLIM_ERR_ARG, "slim_prune_find_groups: empty model");
    int n = m->n_layers;
    chmap cm = {0};
    int *parent = slim_calloc((size_t)n, sizeof(int));
    int *pin = slim_calloc((size_t)n, sizeof(int)); /* per space (producer index): unprunable */
    int *root_ok = slim_calloc((size_t)n, sizeof(int));
    int *root_nbn = slim_calloc((size_t)n, sizeof(int));
    int *gid = slim_calloc((size_t)n, sizeof(int)); /* per root: its group, -1 if none */
    slim_status st =
        parent && pin && root_ok && root_nbn && gid ? alloc_maps(m, out, &cm) : SLIM_ERR_NOMEM;
    if (st != SLIM_OK) goto done;
    int *rep = out->rep_of_layer, *nch = out->channels_of_layer;

    /* 1. Channel maps, reps and structural fixedness, in model (topological) order. */
    for (int i = 0; i < n; i++) {
        parent[i] = i;
        rep[i] = 1;
        nch[i] = m->layers[i].c;
        map_layer(m, &cm, nch, rep, pin, parent, i);
        if (rep[i] * nch[i] != m->layers[i].c) {
            /* Inconsistent features per channel: leave it all alone. */
            if (m->layers[i].n_inputs > 0) pin_all(&cm, nch, pin, m->layers[i].inputs[0]);
            rep[i] = 1;
            nch[i] = m->layers[i].c;
            new_space(&cm, nch, pin, i, 1);
        }
    }
    pin_all(&cm, nch, pin, n - 1); /* the logits keep every class */

    /* 2. Resolve spaces to their roots; which roots are groups. */
    for (int i = 0; i < n; i++)
        root_ok[i] = 1;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < nch[i]; t++) {
            int s = cm.sp[i][t];
            if (s < 0) continue;
            int r = uf_find(parent, s);
            if (pin[s]) root_ok[r] = 0;
            cm.sp[i][t] = r;
        }
    for (int i = 0; i < n; i++) {
        const slim_layer *l = &m->layers[i];
        /* Every producer of a space has the space's channel count. */
        if (is_producer(l) && l->c != m->layers[uf_find(parent, i)].c)
            root_ok[uf_find(parent, i)] = 0;
        if (l->kind == SLIM_LAYER_BN)
            for (int t = 0; t < nch[i]; t++)
                if (cm.sp[i][t] >= 0) root_nbn[cm.sp[i][t]]++;
        /* Consumers read fixable channels only. */
        if (!is_consumer(l) || l->n_inputs != 1) continue;
        int a = l->inputs[0];
        for (int t = 0; t < nch[a]; t++)
            if (cm.sp[a][t] >= 0 && !cm.fx[a][t]) root_ok[cm.sp[a][t]] = 0;
    }

    /* 3. The groups, in model order of their roots. */
    for (int r = 0; r < n; r++) {
        gid[r] = -1;
        if (uf_find(parent, r) != r || !root_ok[r] || root_nbn[r] < 1) continue;
        gid[r] = out->n_groups++;
    }
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < nch[i]; t++) {
            int s = cm.sp[i][t];
            cm.sp[i][t] = s >= 0 ? gid[s] : -1;
            if (cm.sp[i][t] < 0) cm.ch[i][t] = -1;
        }
    }
    for (int r = 0; r < n; r++) {
        if (gid[r] < 0) continue;
        st = fill_group(m, out, &cm, gid[r], m->layers[r].c, &out->groups[gid[r]]);
        if (st != SLIM_OK) goto done;
    }
    /* group_of_layer: the group when channel t of the layer is channel t of
     * one group for every t, else -1. */
    for (int i = 0; i < n; i++) {
        int g0 = nch[i] > 0 ? cm.sp[i][0] : -1;
        for (int t = 0; t < nch[i] && g0 >= 0; t++)
            if (cm.sp[i][t] != g0 || cm.ch[i][t] != t) g0 = -1;
        if (g0 >= 0 && nch[i] != out->groups[g0].channels) g0 = -1;
        out->group_of_layer[i] = g0;
    }

done:
    if (cm.fx)
        for (int i = 0; i < n; i++)
            free(cm.fx[i]);
    free(cm.fx);
    free(parent);
    free(pin);
    free(root_ok);
    free(root_nbn);
    free(gid);
    if (st != SLIM_OK) slim_prune_groups_free(out);
    return st;
}
