/* The batch-independent analysis of the folded graph (rt_graph): which
 * layers are needed for the logits, which layers the step of an earlier
 * one computes (its fused chain), which outputs of our convs go to padded
 * planes (and which of those have a narrow last block), and when each
 * output is last read. */
#include "runtime/runtime_internal.h"

#include <stdlib.h>
#include <string.h>

void rt_graph_free(rt_graph *g) {
    free(g->needed);
    free(g->root);
    free(g->chain_end);
    free(g->act);
    free(g->sum_with);
    free(g->pool);
    free(g->padded);
    free(g->narrow);
    free(g->head);
    free(g->last_read);
    memset(g, 0, sizeof *g);
}

/* The one consumer of layer i among the needed layers (an input edge, so
 * add(x, x) counts twice), or -1. */
static int sole_consumer(const slim_model *m, const rt_graph *g, int i) {
    int found = -1, count = 0;
    for (int j = i + 1; j < m->n_layers; j++) {
        if (!g->needed[j]) continue;
        for (int k = 0; k < m->layers[j].n_inputs; k++)
            if (m->layers[j].inputs[k] == i) {
                found = j;
                count++;
            }
    }
    return count == 1 ? found : -1;
}

/* Whether pool layer p, the sole reader of conv i's chain, can be taken
 * into i's step: a 2x2, stride 2, unpadded max pool after our Winograd
 * (its output transform: a 4x4 tile holds whole 2x2 windows). */
static int poolable(const slim_model *m, int i, int p) {
    const slim_layer *c = &m->layers[i], *l = &m->layers[p];
    return rt_wino_fits(c) && l->kind == SLIM_LAYER_MAXPOOL && l->k == 2 && l->stride == 2 &&
           l->pad == 0 && c->h >= 2 && c->w >= 2 && l->h == c->h / 2 && l->w == c->w / 2;
}

/* Whether dense layer d, the sole reader of global average pool g, can
 * run with it on our head kernel (kernels/head.c): one pass, not two
 * primitives whose calls cost more than their work. */
static int headable(const slim_model *m, int g, int d) {
    const slim_layer *l = &m->layers[d];
    return l->kind == SLIM_LAYER_DENSE && m->layers[g].c == l->in_c && l->in_h == 1 &&
           l->in_w == 1 && rt_own_kernels_usable();
}

/* The activation layer r (relu or relu6) as root i's last post-op, or
 * RT_ACT_NONE when i's step cannot take it: a relu rides on every step
 * that fuses one; a relu6 (oneDNN's clip) on oneDNN's conv, dense and
 * binary add only, not on our kernels (relu only) nor on oneDNN's bn
 * (fuse_norm_relu is a relu). */
static rt_act fusable_act(const slim_model *m, const rt_graph *g, int i, int r) {
    const slim_layer *l = &m->layers[i];
    if (m->layers[r].kind == SLIM_LAYER_RELU) return RT_ACT_RELU;
    if (m->layers[r].kind != SLIM_LAYER_RELU6) return RT_ACT_NONE;
    int ours = g->head[i] || (l->kind == SLIM_LAYER_CONV && rt_own_conv(l));
    return ours || l->kind == SLIM_LAYER_BN ? RT_ACT_NONE : RT_ACT_RELU6;
}

/* The chain root i's step computes: [gap + dense | conv [+ add] | dense |
 * bn | add] [+ relu | relu6] [+ 2x2/2 max pool on our Winograd]. */
static void fuse_chain(const slim_model *m, rt_graph *g, int i) {
    const slim_layer *l = &m->layers[i];
    int chain = i;
    if (l->kind == SLIM_LAYER_GAP) {
        int d = sole_consumer(m, g, i);
        if (d < 0 || !headable(m, i, d)) return;
        g->root[d] = i;
        g->head[i] = d;
        chain = d;
    } else if (l->kind != SLIM_LAYER_CONV && l->kind != SLIM_LAYER_DENSE &&
               l->kind != SLIM_LAYER_BN && l->kind != SLIM_LAYER_ADD) {
        return;
    }
    if (l->kind == SLIM_LAYER_CONV) {
        /* conv + add(conv, k): the conv accumulates onto k (sum post-op),
         * which must exist by the time the conv runs. */
        int a = sole_consumer(m, g, i);
        if (a >= 0 && m->layers[a].kind == SLIM_LAYER_ADD) {
            const slim_layer *add = &m->layers[a];
            int k = add->inputs[0] == i ? add->inputs[1] : add->inputs[0];
            if (k < i) {
                g->root[a] = i;
                g->sum_with[i] = k;
                chain = a;
            }
        }
    }
    int r = sole_consumer(m, g, chain);
    if (r >= 0 && (g->act[i] = fusable_act(m, g, i, r)) != RT_ACT_NONE) {
        g->root[r] = i;
        chain = r;
    }
    int p = sole_consumer(m, g, chain);
    if (p >= 0 && poolable(m, i, p) && g->sum_with[i] < 0) {
        g->root[p] = i;
        g->pool[i] = 1;
        chain = p;
    }
    g->chain_end[i] = chain;
}

/* The output of our conv goes to padded planes when our Winograd convs
 * are all that read it: they then read border tiles in place. The last
 * block of a padded stem output is narrow when it holds at most 8
 * channels. */
static void padded_outputs(const slim_model *m, rt_graph *g) {
    int last = m->n_layers - 1;
    for (int i = 1; i <= last; i++) {
        const slim_layer *l = &m->layers[i];
        if (!g->needed[i] || g->root[i] != i || !rt_own_conv(l)) continue;
        int end = g->chain_end[i], readers = 0, all_wino = 1;
        for (int j = i + 1; j <= last; j++)
            for (int k = 0; g->needed[j] && k < m->layers[j].n_inputs; k++)
                if (m->layers[j].inputs[k] == end) {
                    readers++;
                    all_wino = all_wino && g->root[j] == j && rt_wino_fits(&m->layers[j]);
                }
        g->padded[i] = end != last && readers > 0 && all_wino && g->sum_with[i] < 0;
        g->narrow[i] = g->padded[i] && rt_stem_fits(l) && l->c % 16 != 0 && l->c % 16 <= 8;
    }
}

slim_status rt_graph_init(rt_graph *g, const slim_model *m) {
    size_t n = (size_t)m->n_layers;
    int **arrays[] = {&g->needed, &g->root,   &g->chain_end, &g->act,  &g->sum_with,
                      &g->pool,   &g->padded, &g->narrow,    &g->head, &g->last_read};
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
        if (!(*arrays[a] = slim_calloc(n, sizeof(int)))) return SLIM_ERR_NOMEM;
    int last = m->n_layers - 1;
    g->needed[0] = g->needed[last] = 1;
    for (int i = last; i > 0; i--)
        if (g->needed[i])
            for (int k = 0; k < m->layers[i].n_inputs; k++)
                g->needed[m->layers[i].inputs[k]] = 1;
    for (int i = 0; i <= last; i++) {
        g->root[i] = g->chain_end[i] = i;
        g->sum_with[i] = -1;
        g->last_read[i] = i;
    }
    for (int i = 1; i <= last; i++)
        if (g->needed[i] && g->root[i] == i) fuse_chain(m, g, i);
    padded_outputs(m, g);
    /* A layer's output is read when the step of each consumer outside its
     * own chain runs; the logits are read after every step. */
    for (int i = 1; i <= last; i++) {
        if (!g->needed[i]) continue;
        for (int k = 0; k < m->layers[i].n_inputs; k++) {
            int u = m->layers[i].inputs[k];
            if (g->root[u] != g->root[i] && g->root[i] > g->last_read[u])
                g->last_read[u] = g->root[i];
        }
    }
    g->last_read[last] = last + 1;
    return SLIM_OK;
}
