/* Turning a folded model into a oneDNN plan for one batch size.
 *
 * First, once per runtime, the graph is analysed (slim_rt_graph_init): which
 * layers are needed for the logits, and which layers are computed by the
 * step of an earlier one (a relu after a conv, dense, bn or add; an add
 * after a conv, as a sum post-op). Then, per batch size, every root layer
 * becomes one primitive, preceded by the reorders its inputs need, and
 * every activation gets a storage; storages are placed in one arena by
 * their lifetimes.
 *
 * Zero padding. A blocked layout of C channels pads C up to the block (16
 * on AVX-512) and oneDNN relies on the padding being zero; memory objects
 * zero it when their handle is set. A padded storage therefore never shares
 * arena memory with another storage of its plan ("exclusive"), and the
 * runtime sets the handles again whenever another plan has used the arena
 * in between (runtime.c). */
#include "runtime/runtime_internal.h"

#include <omp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the graph ---------------------------------------------------------- */

void slim_rt_graph_free(rt_graph *g) {
    free(g->needed);
    free(g->root);
    free(g->chain_end);
    free(g->relu);
    free(g->sum_with);
    free(g->pool);
    free(g->padded);
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
 * into i's step: a 2x2, stride 2, unpadded max pool after our Winograd. */
static int poolable(const slim_model *m, int i, int p) {
    const slim_layer *c = &m->layers[i], *l = &m->layers[p];
    return slim_rt_wino_fits(c) && l->kind == SLIM_LAYER_MAXPOOL && l->k == 2 && l->stride == 2 &&
           l->pad == 0 && c->h >= 2 && c->w >= 2 && l->h == c->h / 2 && l->w == c->w / 2;
}

/* Whether our kernels (wino, stem, head: all AVX-512F/VL) run on this CPU,
 * alongside oneDNN's AVX-512 primitives. */
static int own_kernels_usable(void) {
    return own_kernels_available() && dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core;
}

/* Whether dense layer d, the sole reader of global average pool g, can
 * run with it on our head kernel (kernels/head.c). */
static int headable(const slim_model *m, int g, int d) {
    const slim_layer *l = &m->layers[d];
    return l->kind == SLIM_LAYER_DENSE && m->layers[g].c == l->in_c && l->in_h == 1 &&
           l->in_w == 1 && own_kernels_usable();
}

slim_status slim_rt_graph_init(slim_runtime *rt) {
    const slim_model *m = rt->model;
    rt_graph *g = &rt->graph;
    size_t n = (size_t)m->n_layers;
    g->needed = slim_calloc(n, sizeof(int));
    g->root = slim_calloc(n, sizeof(int));
    g->chain_end = slim_calloc(n, sizeof(int));
    g->relu = slim_calloc(n, sizeof(int));
    g->sum_with = slim_calloc(n, sizeof(int));
    g->pool = slim_calloc(n, sizeof(int));
    g->padded = slim_calloc(n, sizeof(int));
    g->head = slim_calloc(n, sizeof(int));
    g->last_read = slim_calloc(n, sizeof(int));
    if (!g->needed || !g->root || !g->chain_end || !g->relu || !g->sum_with || !g->pool ||
        !g->padded || !g->head || !g->last_read)
        return SLIM_ERR_NOMEM;
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
    for (int i = 1; i <= last; i++) {
        const slim_layer *l = &m->layers[i];
        if (!g->needed[i] || g->root[i] != i) continue;
        int chain = i;
        if (l->kind == SLIM_LAYER_GAP) {
            /* gap + dense [+relu] on our head kernel: one pass, not two
             * primitives whose calls cost more than their work. */
            int d = sole_consumer(m, g, i);
            if (d < 0 || !headable(m, i, d)) continue;
            g->root[d] = i;
            g->head[i] = d;
            chain = d;
        } else if (l->kind != SLIM_LAYER_CONV && l->kind != SLIM_LAYER_DENSE &&
                   l->kind != SLIM_LAYER_BN && l->kind != SLIM_LAYER_ADD) {
            continue;
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
        if (r >= 0 && m->layers[r].kind == SLIM_LAYER_RELU) {
            g->root[r] = i;
            g->relu[i] = 1;
            chain = r;
        }
        /* conv [+relu] + 2x2/2 max pool on our Winograd: the pool is taken
         * in its output transform (a 4x4 tile holds whole 2x2 windows). */
        int p = sole_consumer(m, g, chain);
        if (p >= 0 && poolable(m, i, p) && g->sum_with[i] < 0) {
            g->root[p] = i;
            g->pool[i] = 1;
            chain = p;
        }
        g->chain_end[i] = chain;
    }
    /* The output of our conv goes to padded planes when our Winograd convs
     * are all that read it: they then read border tiles in place. */
    for (int i = 1; i <= last; i++) {
        if (!g->needed[i] || g->root[i] != i || !slim_rt_own_conv(&m->layers[i])) continue;
        int end = g->chain_end[i], readers = 0, all_wino = 1;
        for (int j = i + 1; j <= last; j++)
            for (int k = 0; g->needed[j] && k < m->layers[j].n_inputs; k++)
                if (m->layers[j].inputs[k] == end) {
                    readers++;
                    all_wino = all_wino && g->root[j] == j && slim_rt_wino_fits(&m->layers[j]);
                }
        g->padded[i] = end != last && readers > 0 && all_wino && g->sum_with[i] < 0;
    }
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

/* ---- memory descriptors ------------------------------------------------- */

static slim_status md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                          dnnl_format_tag_t tag) {
    SLIM_DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, tag));
    return SLIM_OK;
}

/* Plain row-major: a, ab, abc, abcd (= x, nc, -, nchw / oihw). */
static slim_status md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims) {
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd};
    if (nd < 1 || nd > 4) return slim_error(SLIM_ERR_BACKEND, "runtime: %d-D tensor", nd);
    return md_tag(md, nd, dims, tags[nd]);
}

static int md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
    return dnnl_memory_desc_equal(a, b) != 0;
}

static int md_padded(const dnnl_memory_desc_t *md) {
    for (int d = 0; d < md->ndims; d++)
        if (md->padded_dims[d] != md->dims[d]) return 1;
    return 0;
}

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, int arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

const char *slim_rt_md_str(const dnnl_memory_desc_t *md, char *buf, size_t len) {
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, len, "%s", dnnl_fmt_kind2str(md->format_kind));
        return buf;
    }
    /* Outer dimensions by decreasing stride, upper case when blocked, then
     * the inner blocks: nChw16c reads "aBcd16b". */
    const dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS], nd = md->ndims, used = 0;
    for (int d = 0; d < nd; d++)
        order[d] = d;
    for (int a = 0; a < nd; a++)
        for (int b = a + 1; b < nd; b++)
            if (bd->strides[order[b]] > bd->strides[order[a]]) {
                int t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    for (int a = 0; a < nd && used + 1 < (int)len; a++) {
        int d = order[a], blocked = 0;
        for (int k = 0; k < bd->inner_nblks; k++)
            blocked |= bd->inner_idxs[k] == d;
        buf[used++] = (char)((blocked ? 'A' : 'a') + d);
    }
    buf[used] = '\0';
    for (int k = 0; k < bd->inner_nblks && used + 1 < (int)len; k++) {
        int w = snprintf(buf + used, len - (size_t)used, "%d%c", (int)bd->inner_blks[k],
                         (char)('a' + bd->inner_idxs[k]));
        if (w < 0) break;
        used += w;
        if (used >= (int)len) used = (int)len - 1;
    }
    return buf;
}

/* ---- the plan under construction ---------------------------------------- */

/* Where an activation (or a copy of it) is, and in which layout. */
typedef struct rt_loc {
    rt_where where; /* RT_AT_ARENA or RT_AT_INPUT */
    int storage;
    dnnl_memory_desc_t md;
} rt_loc;

/* A layer's output, with copies of it in other layouts made for consumers
 * (shared by every consumer that wants the same layout). */
typedef struct rt_value {
    rt_loc loc;
    int n_copies;
    rt_loc copies[RT_MAX_CONVERSIONS];
} rt_value;

typedef struct builder {
    slim_runtime *rt;
    const slim_model *m;
    const rt_graph *g;
    rt_plan *plan;
    rt_value *vals; /* per layer */
    int n;          /* batch size */
    int now;        /* the root layer being built (plan time) */
    /* The layout convs write when the plan uses winograd (its blocked
     * layout, so that direct convs, pools and winograd convs need no
     * reorders between them); format_tag_any otherwise. */
    dnnl_format_tag_t act_tag;
} builder;

void slim_rt_plan_free(rt_plan *plan) {
    if (!plan) return;
    for (int s = 0; s < plan->n_steps; s++) {
        rt_step *st = &plan->steps[s];
        for (int a = 0; a < st->nargs; a++)
            if (st->args[a].mem) dnnl_memory_destroy(st->args[a].mem);
        if (st->prim) dnnl_primitive_destroy(st->prim);
        if (st->pd) dnnl_primitive_desc_destroy(st->pd);
    }
    free(plan->steps);
    free(plan->storages);
    free(plan);
}

/* A new storage for an activation written now in layout md and last read
 * at time `last`. */
static slim_status new_storage(builder *b, const dnnl_memory_desc_t *md, int last, rt_loc *out) {
    rt_plan *p = b->plan;
    if (p->n_storages == p->cap_storages) {
        int cap = p->cap_storages ? 2 * p->cap_storages : 32;
        rt_storage *s = realloc(p->storages, (size_t)cap * sizeof *s);
        if (!s) return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory building a plan");
        p->storages = s;
        p->cap_storages = cap;
    }
    rt_storage *s = &p->storages[p->n_storages];
    memset(s, 0, sizeof *s);
    s->bytes = dnnl_memory_desc_get_size(md);
    s->first = b->now;
    s->last = last > b->now ? last : b->now;
    s->exclusive = md_padded(md);
    out->where = RT_AT_ARENA;
    out->storage = p->n_storages++;
    out->md = *md;
    return SLIM_OK;
}

/* Whether a step running now may overwrite what loc holds: nothing reads
 * it after now. */
static int can_overwrite(const builder *b, const rt_loc *loc) {
    return loc->where == RT_AT_ARENA && b->plan->storages[loc->storage].last <= b->now;
}

static int same_storage(const rt_loc *a, const rt_loc *b) {
    return a->where == RT_AT_ARENA && b->where == RT_AT_ARENA && a->storage == b->storage;
}

/* Makes loc the output of layer i (and of every layer of its chain). */
static void set_value(builder *b, int root, const rt_loc *loc) {
    int end = b->g->chain_end[root];
    for (int i = root; i <= end; i++)
        if (i == root || b->g->root[i] == root) {
            b->vals[i].loc = *loc;
            b->vals[i].n_copies = 0;
        }
    if (loc->where == RT_AT_ARENA) {
        rt_storage *s = &b->plan->storages[loc->storage];
        if (b->g->last_read[end] > s->last) s->last = b->g->last_read[end];
    }
}

/* ---- steps ----------------------------------------------------------------- */

/* Scratchpad mode "user" and the post-ops: [binary add] [sum] [relu]. */
typedef struct post_spec {
    const dnnl_memory_desc_t *binary; /* src1 of a binary-add post-op, or NULL */
    int sum;
    int relu;
} post_spec;

typedef struct attr_box {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t ops;
} attr_box;

static void attr_box_free(attr_box *a) {
    if (a->ops) dnnl_post_ops_destroy(a->ops);
    if (a->attr) dnnl_primitive_attr_destroy(a->attr);
}

static slim_status attr_box_init(attr_box *a, const post_spec *ps) {
    SLIM_DNNL_CHECK(dnnl_primitive_attr_create(&a->attr));
    SLIM_DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(a->attr, dnnl_scratchpad_mode_user));
    if (!ps || (!ps->binary && !ps->sum && !ps->relu)) return SLIM_OK;
    SLIM_DNNL_CHECK(dnnl_post_ops_create(&a->ops));
    if (ps->binary)
        SLIM_DNNL_CHECK(dnnl_post_ops_append_binary(a->ops, dnnl_binary_add, ps->binary));
    if (ps->sum) SLIM_DNNL_CHECK(dnnl_post_ops_append_sum(a->ops, 1.0f));
    if (ps->relu)
        SLIM_DNNL_CHECK(dnnl_post_ops_append_eltwise(a->ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    SLIM_DNNL_CHECK(dnnl_primitive_attr_set_post_ops(a->attr, a->ops));
    return SLIM_OK;
}

/* Creates a primitive descriptor for desc with the post-ops of ps (NULL:
 * none). "No implementation" is SLIM_ERR_BACKEND like any failure; callers
 * with a fallback clear the message. */
static slim_status make_pd(builder *b, const_dnnl_op_desc_t desc, const post_spec *ps,
                           dnnl_primitive_desc_t *pd) {
    attr_box a = {0};
    slim_status st = attr_box_init(&a, ps);
    if (st == SLIM_OK) {
        dnnl_status_t s = dnnl_primitive_desc_create(pd, desc, a.attr, b->rt->engine, NULL);
        if (s != dnnl_success) {
            *pd = NULL;
            st = slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_primitive_desc_create failed: %s",
                            dnnl_status2str(s));
        }
    }
    attr_box_free(&a);
    return st;
}

/* Appends an empty step. */
static slim_status new_step(rt_plan *p, rt_step **out) {
    if (p->n_steps == p->cap_steps) {
        int cap = p->cap_steps ? 2 * p->cap_steps : 32;
        rt_step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        if (!s) return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory building a plan");
        p->steps = s;
        p->cap_steps = cap;
    }
    *out = &p->steps[p->n_steps++];
    memset(*out, 0, sizeof **out);
    return SLIM_OK;
}

/* Gives step s the context's scratchpad, as md, and grows the plan's need
 * to its size. */
static void step_scratch(rt_plan *p, rt_step *s, const dnnl_memory_desc_t *md) {
    s->args[s->nargs++] =
        (rt_arg){.arg = DNNL_ARG_SCRATCHPAD, .where = RT_AT_SCRATCH, .storage = -1, .md = *md};
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (bytes > p->scratch_bytes) p->scratch_bytes = bytes;
}

/* Appends a step that takes over *pd (set to NULL) and makes its
 * primitive; the scratchpad argument is added here. */
static slim_status push_step(builder *b, dnnl_primitive_desc_t *pd, int is_reorder, rt_step **out) {
    rt_plan *p = b->plan;
    rt_step *s = NULL;
    SLIM_TRY(new_step(p, &s));
    s->pd = *pd;
    *pd = NULL;
    s->is_reorder = is_reorder;
    p->reorders += is_reorder;
    *out = s;
    SLIM_DNNL_CHECK(dnnl_primitive_create(&s->prim, s->pd));
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(s->pd, dnnl_query_scratchpad_md, 0);
    if (smd && dnnl_memory_desc_get_size(smd) > 0) step_scratch(p, s, smd);
    return SLIM_OK;
}

static slim_status step_loc(rt_step *s, int arg, const rt_loc *loc) {
    if (s->nargs == RT_MAX_ARGS) return slim_error(SLIM_ERR_BACKEND, "runtime: too many arguments");
    s->args[s->nargs++] =
        (rt_arg){.arg = arg, .where = loc->where, .storage = loc->storage, .md = loc->md};
    return SLIM_OK;
}

static slim_status step_fixed(rt_step *s, int arg, const void *ptr) {
    const dnnl_memory_desc_t *md = pd_md(s->pd, arg);
    if (!md || dnnl_memory_desc_get_size(md) == 0)
        return slim_error(SLIM_ERR_BACKEND, "runtime: primitive takes no argument %d", arg);
    if (s->nargs == RT_MAX_ARGS) return slim_error(SLIM_ERR_BACKEND, "runtime: too many arguments");
    s->args[s->nargs++] =
        (rt_arg){.arg = arg, .where = RT_AT_FIXED, .storage = -1, .ptr = ptr, .md = *md};
    return SLIM_OK;
}

/* A reorder step from src to dst (same dims, any layouts). */
static slim_status push_reorder(builder *b, const rt_loc *src, const rt_loc *dst,
                                const char *what) {
    attr_box a = {0};
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = attr_box_init(&a, NULL);
    if (st == SLIM_OK) {
        dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, &src->md, b->rt->engine, &dst->md,
                                                             b->rt->engine, a.attr);
        if (s != dnnl_success)
            st =
                slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_reorder_primitive_desc_create failed: %s",
                           dnnl_status2str(s));
    }
    attr_box_free(&a);
    rt_step *step;
    if (st == SLIM_OK) st = push_step(b, &pd, 1, &step);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != SLIM_OK) return st;
    SLIM_TRY(step_loc(step, DNNL_ARG_FROM, src));
    SLIM_TRY(step_loc(step, DNNL_ARG_TO, dst));
    snprintf(step->what, sizeof step->what, "%s", what);
    return SLIM_OK;
}

/* ---- getting inputs in the wanted layout -------------------------------- */

/* Layer u's output in layout `want`: as it is, or a copy made by a reorder
 * (kept for other consumers). `want` may have other dims than the stored
 * value when they describe the same plain bytes (a flatten, or (n, c) vs
 * (n, c, 1, 1)): the value then goes through its plain layout and is viewed
 * in the wanted dims. */
static slim_status value_in(builder *b, int u, const dnnl_memory_desc_t *want, rt_loc *out) {
    rt_value *v = &b->vals[u];
    if (md_equal(&v->loc.md, want)) {
        *out = v->loc;
        return SLIM_OK;
    }
    for (int c = 0; c < v->n_copies; c++)
        if (md_equal(&v->copies[c].md, want)) {
            *out = v->copies[c];
            return SLIM_OK;
        }
    char what[RT_WHAT_LEN];
    snprintf(what, sizeof what, "reorder %s", b->m->layers[u].name);
    int same_dims = v->loc.md.ndims == want->ndims;
    for (int d = 0; same_dims && d < want->ndims; d++)
        same_dims = v->loc.md.dims[d] == want->dims[d];
    if (same_dims) {
        SLIM_TRY(new_storage(b, want, b->g->last_read[u], out));
        SLIM_TRY(push_reorder(b, &v->loc, out, what));
        if (v->n_copies < RT_MAX_CONVERSIONS) v->copies[v->n_copies++] = *out;
        return SLIM_OK;
    }
    dnnl_memory_desc_t plain, view;
    rt_loc p;
    SLIM_TRY(md_plain(&plain, v->loc.md.ndims, v->loc.md.dims));
    SLIM_TRY(value_in(b, u, &plain, &p));
    SLIM_DNNL_CHECK(dnnl_memory_desc_reshape(&view, &p.md, want->ndims, want->dims));
    p.md = view;
    if (md_equal(&view, want)) {
        *out = p;
        return SLIM_OK;
    }
    SLIM_TRY(new_storage(b, want, b->g->last_read[u], out));
    return push_reorder(b, &p, out, what);
}

/* Layer u's output in its own dims, (n, c, h, w) for nd 4 or (n, c*h*w)
 * for nd 2: as stored when the stored dims are those, else plain. */
static slim_status value_view(builder *b, int u, int nd, rt_loc *out) {
    const slim_layer *l = &b->m->layers[u];
    dnnl_dims_t dims = {b->n, l->c, l->h, l->w};
    if (nd == 2) dims[1] = (dnnl_dim_t)l->c * l->h * l->w;
    const dnnl_memory_desc_t *md = &b->vals[u].loc.md;
    int same = md->ndims == nd;
    for (int d = 0; same && d < nd; d++)
        same = md->dims[d] == dims[d];
    if (same) {
        *out = b->vals[u].loc;
        return SLIM_OK;
    }
    dnnl_memory_desc_t want;
    SLIM_TRY(md_plain(&want, nd, dims));
    return value_in(b, u, &want, out);
}

/* The dims a layer-wise op (bn, add) works in: (n, c) for data stored as
 * (n, c), else (n, c, h, w). */
static int natural_nd(const builder *b, int u) {
    const slim_layer *l = &b->m->layers[u];
    return b->vals[u].loc.md.ndims == 2 && l->h == 1 && l->w == 1 ? 2 : 4;
}

/* ---- weights ---------------------------------------------------------------- */

/* Runs one reorder right away (weights at build time). */
static slim_status reorder_now_(slim_runtime *rt, const dnnl_memory_desc_t *from_md,
                                const void *from, const dnnl_memory_desc_t *to_md, void *to,
                                dnnl_memory_t *a, dnnl_memory_t *c, dnnl_primitive_desc_t *pd,
                                dnnl_primitive_t *prim) {
    SLIM_DNNL_CHECK(dnnl_memory_create(a, from_md, rt->engine, (void *)(uintptr_t)from));
    SLIM_DNNL_CHECK(dnnl_memory_create(c, to_md, rt->engine, to));
    SLIM_DNNL_CHECK(
        dnnl_reorder_primitive_desc_create(pd, from_md, rt->engine, to_md, rt->engine, NULL));
    SLIM_DNNL_CHECK(dnnl_primitive_create(prim, *pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, *a}, {DNNL_ARG_TO, *c}};
    SLIM_DNNL_CHECK(dnnl_primitive_execute(*prim, rt->main.stream, 2, args));
    SLIM_DNNL_CHECK(dnnl_stream_wait(rt->main.stream));
    return SLIM_OK;
}

static slim_status reorder_now(slim_runtime *rt, const dnnl_memory_desc_t *from_md,
                               const void *from, const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_memory_t a = NULL, c = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    slim_status st = reorder_now_(rt, from_md, from, to_md, to, &a, &c, &pd, &prim);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (c) dnnl_memory_destroy(c);
    if (a) dnnl_memory_destroy(a);
    return st;
}

/* A constant tensor of layer i (weights or biasmap; plain layout `plain`,
 * data `src`) in layout `want`, reordered once and kept by the runtime. */
static slim_status fixed_in(builder *b, int i, const dnnl_memory_desc_t *plain, const float *src,
                            const dnnl_memory_desc_t *want, const float **out) {
    slim_runtime *rt = b->rt;
    for (rt_weights *w = rt->weights[i]; w; w = w->next)
        if (md_equal(&w->md, want)) {
            *out = w->data;
            return SLIM_OK;
        }
    size_t bytes = (dnnl_memory_desc_get_size(want) + 63) / 64 * 64;
    rt_weights *w = slim_calloc(1, sizeof *w);
    if (!w) return SLIM_ERR_NOMEM;
    w->md = *want;
    w->data = aligned_alloc(64, bytes ? bytes : 64);
    if (!w->data) {
        free(w);
        return slim_error(SLIM_ERR_NOMEM, "runtime: out of memory for %zu bytes of weights", bytes);
    }
    memset(w->data, 0, bytes);
    w->next = rt->weights[i];
    rt->weights[i] = w;
    rt->weight_bytes += bytes;
    *out = w->data;
    return reorder_now(rt, plain, src, want, w->data);
}

/* ---- one step per root layer -------------------------------------------- */

static int pad_right(int in, int k, int out, int stride, int pad) {
    int r = (out - 1) * stride + k - in - pad;
    return r < 0 ? 0 : r;
}

static void append(char *buf, size_t len, const char *fmt, const char *arg) {
    size_t used = strlen(buf);
    if (used < len) snprintf(buf + used, len - used, fmt, arg);
}

/* A relu in place on loc, as its own step. */
static slim_status relu_step(builder *b, int i, const rt_loc *loc) {
    dnnl_eltwise_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, dnnl_eltwise_relu,
                                                   &loc->md, 0.0f, 0.0f));
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = make_pd(b, &desc, NULL, &pd);
    if (st == SLIM_OK) st = push_step(b, &pd, 0, &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    SLIM_TRY(step_loc(s, DNNL_ARG_SRC, loc));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, loc));
    snprintf(s->what, sizeof s->what, "relu %s", b->m->layers[b->g->chain_end[i]].name);
    return SLIM_OK;
}

/* oneDNN 2.6's binary kernel (jit:uni) gets a fused relu wrong on a
 * blocked layout whose channels are padded (C not a multiple of the
 * block): there the relu is a step of its own. */
static int binary_relu_fusable(const dnnl_memory_desc_t *md) { return !md_padded(md); }

/* A biasmap (1, c, oh, ow) in the layout of the conv's output dst, for a
 * separate binary add: dst's layout with the batch dimension cut to 1,
 * valid when the batch is dst's outermost dimension (else plain). */
static slim_status biasmap_md(const dnnl_memory_desc_t *dst, dnnl_memory_desc_t *md) {
    int outer = dst->format_kind == dnnl_blocked;
    for (int d = 1; outer && d < dst->ndims; d++)
        outer = dst->format_desc.blocking.strides[0] >= dst->format_desc.blocking.strides[d];
    if (!outer) return md_plain(md, 4, (dnnl_dims_t){1, dst->dims[1], dst->dims[2], dst->dims[3]});
    *md = *dst;
    md->dims[0] = md->padded_dims[0] = 1;
    return SLIM_OK;
}

/* The biasmap as a binary add after the conv, in place on its output, with
 * the relu the conv would have fused. */
static slim_status biasmap_step(builder *b, int i, const rt_loc *dst) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    dnnl_memory_desc_t plain, want;
    const float *data;
    SLIM_TRY(md_plain(&plain, 4, (dnnl_dims_t){1, l->c, l->h, l->w}));
    SLIM_TRY(biasmap_md(&dst->md, &want));
    SLIM_TRY(fixed_in(b, i, &plain, m->params[l->p_biasmap].data, &want, &data));
    dnnl_binary_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_binary_desc_init(&desc, dnnl_binary_add, &dst->md, &want, &dst->md));
    int relu = b->g->relu[i], fuse = binary_relu_fusable(&dst->md);
    post_spec ps = {NULL, 0, relu && fuse};
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = make_pd(b, &desc, &ps, &pd);
    if (st == SLIM_OK) st = push_step(b, &pd, 0, &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    SLIM_TRY(step_loc(s, DNNL_ARG_SRC_0, dst));
    SLIM_TRY(step_fixed(s, DNNL_ARG_SRC_1, data));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, dst));
    snprintf(s->what, sizeof s->what, "add %s.biasmap", l->name);
    if (relu && fuse)
        append(s->what, sizeof s->what, " +relu(%s)", m->layers[b->g->chain_end[i]].name);
    return relu && !fuse ? relu_step(b, i, dst) : SLIM_OK;
}

/* The destination of conv i, which reads src, in layout dst_md: new, or
 * with a fused sum, what the sum adds onto: k's output, in place when
 * nothing reads it later, else a copy of it. */
static slim_status conv_dst(builder *b, int i, const rt_loc *src, const dnnl_memory_desc_t *dst_md,
                            rt_loc *dst) {
    int k = b->g->sum_with[i], end = b->g->chain_end[i];
    if (k < 0) return new_storage(b, dst_md, b->g->last_read[end], dst);
    rt_loc *vk = &b->vals[k].loc;
    if (md_equal(&vk->md, dst_md) && can_overwrite(b, vk) && !same_storage(vk, src)) {
        *dst = *vk;
        return SLIM_OK;
    }
    rt_loc from;
    char what[RT_WHAT_LEN];
    snprintf(what, sizeof what, "reorder %s (copy for the sum)", b->m->layers[k].name);
    SLIM_TRY(new_storage(b, dst_md, b->g->last_read[end], dst));
    SLIM_TRY(value_view(b, k, 4, &from));
    return push_reorder(b, &from, dst, what);
}

/* Step s's description for conv i: "conv NAME" and what it fuses; with
 * split_biasmap, a binary step after it adds the biasmap and does the relu. */
static void conv_what(const builder *b, int i, int split_biasmap, rt_step *s) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    int k = b->g->sum_with[i];
    snprintf(s->what, sizeof s->what, "conv %s", l->name);
    if (l->p_bias >= 0) append(s->what, sizeof s->what, "%s", " +bias");
    if (b->rt->ones_channel[i]) append(s->what, sizeof s->what, "%s", " +ones");
    if (b->rt->biasmap_channel[i]) append(s->what, sizeof s->what, "%s", " +biasmap(ones)");
    if (l->p_biasmap >= 0 && !split_biasmap) append(s->what, sizeof s->what, "%s", " +biasmap");
    if (k >= 0) append(s->what, sizeof s->what, " +sum(%s)", m->layers[k].name);
    for (int r = i + 1; b->g->relu[i] && !split_biasmap && r <= b->g->chain_end[i]; r++)
        if (b->g->root[r] == i && m->layers[r].kind == SLIM_LAYER_RELU)
            append(s->what, sizeof s->what, " +relu(%s)", m->layers[r].name);
    if (b->g->pool[i])
        append(s->what, sizeof s->what, " +maxpool(%s)", m->layers[b->g->chain_end[i]].name);
}

/* conv [+bias] [+biasmap] [+sum] [+relu]: src, weights and dst in the
 * layouts the primitive prefers. With split_biasmap, the conv does
 * [+bias] [+sum] and a binary step adds the biasmap and does the relu. */
static slim_status conv_wire(builder *b, int i, dnnl_primitive_desc_t *pd, int split_biasmap) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    rt_loc src, dst;
    SLIM_TRY(value_in(b, l->inputs[0], pd_md(*pd, DNNL_ARG_SRC), &src));
    SLIM_TRY(conv_dst(b, i, &src, pd_md(*pd, DNNL_ARG_DST), &dst));
    dnnl_memory_desc_t wplain;
    const float *w;
    SLIM_TRY(md_plain(&wplain, 4, (dnnl_dims_t){l->c, l->in_c, l->k, l->k}));
    SLIM_TRY(
        fixed_in(b, i, &wplain, m->params[l->p_weight].data, pd_md(*pd, DNNL_ARG_WEIGHTS), &w));
    rt_step *s;
    SLIM_TRY(push_step(b, pd, 0, &s));
    SLIM_TRY(step_loc(s, DNNL_ARG_SRC, &src));
    SLIM_TRY(step_fixed(s, DNNL_ARG_WEIGHTS, w));
    if (l->p_bias >= 0) SLIM_TRY(step_fixed(s, DNNL_ARG_BIAS, m->params[l->p_bias].data));
    if (l->p_biasmap >= 0 && !split_biasmap)
        SLIM_TRY(step_fixed(s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                            m->params[l->p_biasmap].data));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, &dst));
    conv_what(b, i, split_biasmap, s);
    if (split_biasmap) SLIM_TRY(biasmap_step(b, i, &dst));
    set_value(b, i, &dst);
    return SLIM_OK;
}

static int same_impl(const_dnnl_primitive_desc_t a, const_dnnl_primitive_desc_t b) {
    const char *x = NULL, *y = NULL;
    if (dnnl_primitive_desc_query(a, dnnl_query_impl_info_str, 0, &x) != dnnl_success ||
        dnnl_primitive_desc_query(b, dnnl_query_impl_info_str, 0, &y) != dnnl_success)
        return 0;
    return x && y && strcmp(x, y) == 0;
}

/* A conv primitive descriptor for algorithm alg and destination layout
 * dst_tag (src and weights as the primitive likes them).
 *
 * A biasmap is best a binary post-op of the conv, but the fastest convs
 * (brgconv, winograd on AVX-512) take no (1, c, oh, ow) operand and oneDNN
 * would fall back to a slow GEMM conv in plain layouts. So with a biasmap
 * the conv is built both ways, and the post-op kept only when it does not
 * change the implementation; else *split is set. */
static slim_status conv_pd(builder *b, int i, dnnl_alg_kind_t alg, dnnl_format_tag_t dst_tag,
                           dnnl_primitive_desc_t *out, int *split) {
    const slim_layer *l = &b->m->layers[i];
    int n = b->n;
    *out = NULL;
    *split = 0;
    dnnl_memory_desc_t src, wei, bias, dst, bmap;
    SLIM_TRY(md_tag(&src, 4, (dnnl_dims_t){n, l->in_c, l->in_h, l->in_w}, dnnl_format_tag_any));
    SLIM_TRY(md_tag(&wei, 4, (dnnl_dims_t){l->c, l->in_c, l->k, l->k}, dnnl_format_tag_any));
    SLIM_TRY(md_plain(&bias, 1, (dnnl_dims_t){l->c}));
    SLIM_TRY(md_tag(&dst, 4, (dnnl_dims_t){n, l->c, l->h, l->w}, dst_tag));
    SLIM_TRY(md_plain(&bmap, 4, (dnnl_dims_t){1, l->c, l->h, l->w}));
    dnnl_dims_t strides = {l->stride, l->stride}, pad_l = {l->pad, l->pad};
    dnnl_dims_t pad_r = {pad_right(l->in_h, l->k, l->h, l->stride, l->pad),
                         pad_right(l->in_w, l->k, l->w, l->stride, l->pad)};
    dnnl_convolution_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, alg, &src,
                                                       &wei, l->p_bias >= 0 ? &bias : NULL, &dst,
                                                       strides, pad_l, pad_r));
    int sum = b->g->sum_with[i] >= 0, relu = b->g->relu[i];
    post_spec fused = {l->p_biasmap >= 0 ? &bmap : NULL, sum, relu};
    dnnl_primitive_desc_t pd = NULL, plain_pd = NULL;
    slim_status st = make_pd(b, &desc, &fused, &pd);
    if (l->p_biasmap >= 0) {
        post_spec without = {NULL, sum, 0};
        slim_status st2 = make_pd(b, &desc, &without, &plain_pd);
        if (st2 == SLIM_OK && (st != SLIM_OK || !same_impl(pd, plain_pd))) {
            if (pd) dnnl_primitive_desc_destroy(pd);
            pd = plain_pd;
            plain_pd = NULL;
            *split = 1;
            st = SLIM_OK;
        }
    }
    if (plain_pd) dnnl_primitive_desc_destroy(plain_pd);
    if (st == SLIM_OK) *out = pd;
    return st;
}

/* Whether an implementation name is one of oneDNN's fallbacks (reference
 * loops, or im2col + GEMM), which a layout request should not force. */
static int slow_impl(const_dnnl_primitive_desc_t pd) {
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name)
        return 1;
    return strstr(name, "ref") != NULL || strstr(name, "gemm") != NULL;
}

/* oneDNN's Winograd for a conv: 3x3, stride 1, at least 16 channels in and
 * out, and a plan batch of WINO_MIN_BATCH or more (see plan_policy). */
#define WINO_MIN_BATCH 8
static int wants_winograd(const builder *b, const slim_layer *l) {
    return b->act_tag != dnnl_format_tag_any && b->n >= WINO_MIN_BATCH && l->k == 3 &&
           l->stride == 1 && l->in_c >= 16 && l->c >= 16;
}

/* Our Winograd (kernels/wino.c) for a conv, at any batch: 3x3, stride 1,
 * pad 1, WINO_OWN_MIN_CIN or more input channels, in a plan whose
 * activations are in 16-channel blocks (the layout it reads and writes), on
 * a CPU with AVX-512F/VL where oneDNN may use AVX-512 too
 * (ONEDNN_MAX_CPU_ISA below it turns both off). It is faster than oneDNN
 * 2.6's Winograd on every vgg-fm conv, ~2x on the few channels pruned convs
 * keep, and than its direct conv down to a few channels: per 16 output
 * pixels and 16 output channels a direct conv does 9 multiply-adds per
 * input channel, ours 2.25 plus transforms worth ~10 (docs/RUNTIME.md). On
 * Γ-L1-pruned vgg-fm models with 13-17 channels in the middle layers, taking
 * them too (they had needed 16) raised throughput from ~27,000 to
 * ~35,000-42,000 images/s. */
#define WINO_OWN_MIN_CIN 4

int slim_rt_wino_fits(const slim_layer *l) {
    return l->kind == SLIM_LAYER_CONV && l->k == 3 && l->stride == 1 && l->pad == 1 &&
           l->in_c >= WINO_OWN_MIN_CIN && own_kernels_usable();
}

/* Our stem conv (kernels/stem.c) for the 3x3, stride 1, pad 1 convs with
 * fewer input channels than our Winograd takes: a network's first conv.
 * oneDNN 2.6's direct conv gives a last block of output channels a whole
 * 16-lane vector, ours 8 lanes when at most 8 are real; on vgg-fm's first
 * conv (8 images, one thread) 0.041 -> 0.028 ms at 18 output channels (a
 * pruned model's), 0.041 -> 0.034 at 32. */
int slim_rt_stem_fits(const slim_layer *l) {
    return l->kind == SLIM_LAYER_CONV && l->k == 3 && l->stride == 1 && l->pad == 1 &&
           l->in_c < WINO_OWN_MIN_CIN && own_kernels_usable();
}

int slim_rt_own_conv(const slim_layer *l) { return slim_rt_wino_fits(l) || slim_rt_stem_fits(l); }

static int wants_own_conv(const builder *b, int i) {
    return b->act_tag == dnnl_aBcd16b && slim_rt_own_conv(&b->m->layers[i]);
}

/* Appends a step of one of our convs, with `bytes` of scratchpad. */
int slim_rt_own_step(const rt_step *st) { return st->wino || st->stem || st->head; }

static slim_status push_own_step(builder *b, size_t bytes, rt_step **out) {
    rt_plan *p = b->plan;
    rt_step *s = NULL;
    SLIM_TRY(new_step(p, &s));
    s->threads = omp_get_max_threads(); /* the plan's context's (see plan_get) */
    dnnl_memory_desc_t md;
    SLIM_DNNL_CHECK(
        dnnl_memory_desc_init_by_tag(&md, 1, (dnnl_dims_t){(dnnl_dim_t)bytes}, dnnl_u8, dnnl_a));
    step_scratch(p, s, &md);
    *out = s;
    return SLIM_OK;
}

/* Whether root i's output has a narrow last block (kernels/blocked.h):
 * our stem's, in padded planes (read by our Winograd alone), when its last
 * block holds at most 8 channels. */
static int narrow_out(const builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    return b->g->padded[i] && slim_rt_stem_fits(l) && l->c % 16 != 0 && l->c % 16 <= 8;
}

/* conv [+bias] [+biasmap] [+sum] [+relu] on our Winograd, or on our stem
 * conv (which reads plain (n, c, h, w) input); both write 16-channel
 * blocks. Their weights are prepared once per runtime, for every plan. */
static slim_status build_own_conv(builder *b, int i) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    const float *w = m->params[l->p_weight].data;
    const float *bias = l->p_bias >= 0 ? m->params[l->p_bias].data : NULL;
    const float *map = l->p_biasmap >= 0 ? m->params[l->p_biasmap].data : NULL;
    const int stem = slim_rt_stem_fits(l), sum = b->g->sum_with[i] >= 0,
              threads = omp_get_max_threads();
    const size_t coutp = (size_t)(l->c + 15) / 16 * 16;
    /* Padded planes in and out, and the pool, as the graph says (the same
     * in every plan, like sum). */
    const int in_root = b->g->root[l->inputs[0]];
    const int in_padded = !stem && b->g->padded[in_root], out_padded = b->g->padded[i];
    const slim_layer *end = &m->layers[b->g->chain_end[i]]; /* the pool's dims, if any */
    stem_conv **sc = &b->rt->stem[i];
    wino_conv **wc = &b->rt->wino[i];
    size_t weights = 0, scratch;
    if (stem && !*sc) {
        const stem_desc d = {.cin = l->in_c,
                             .cout = l->c,
                             .h = l->h,
                             .w = l->w,
                             .weights = w,
                             .bias = bias,
                             .biasmap = map,
                             .relu = b->g->relu[i],
                             .sum = sum,
                             .out_padded = out_padded,
                             .out_narrow = narrow_out(b, i)};
        SLIM_TRY(stem_create(&d, sc));
        weights = 9 * (size_t)l->in_c * coutp;
    } else if (!stem && !*wc) {
        const wino_desc d = {.cin = l->in_c,
                             .cout = l->c,
                             .h = l->h,
                             .w = l->w,
                             .weights = w,
                             .bias = bias,
                             .biasmap = map,
                             .relu = b->g->relu[i],
                             .sum = sum,
                             .pool = b->g->pool[i],
                             .in_padded = in_padded,
                             .in_narrow = in_padded && narrow_out(b, in_root),
                             .out_padded = out_padded};
        SLIM_TRY(wino_create(&d, wc));
        weights = 36 * (size_t)l->in_c * coutp;
    }
    if (weights) /* + the bias and the blocked biasmap */
        b->rt->weight_bytes += (weights + coutp + (map ? coutp * l->h * l->w : 0)) * sizeof(float);
    scratch = stem ? stem_scratch_bytes(*sc, threads) : wino_scratch_bytes(*wc, threads);
    dnnl_memory_desc_t src_md, dst_md;
    SLIM_TRY(md_tag(&src_md, 4,
                    (dnnl_dims_t){b->n, l->in_c, in_padded ? padded_size(l->in_h) : l->in_h,
                                  in_padded ? padded_size(l->in_w) : l->in_w},
                    stem ? dnnl_nchw : dnnl_aBcd16b));
    SLIM_TRY(md_tag(&dst_md, 4,
                    (dnnl_dims_t){b->n, l->c, out_padded ? padded_size(end->h) : end->h,
                                  out_padded ? padded_size(end->w) : end->w},
                    dnnl_aBcd16b));
    rt_loc src, dst;
    SLIM_TRY(value_in(b, l->inputs[0], &src_md, &src));
    SLIM_TRY(conv_dst(b, i, &src, &dst_md, &dst));
    if (out_padded) /* its border must stay zero: shared with nothing */
        b->plan->storages[dst.storage].exclusive = b->plan->storages[dst.storage].zeroed = 1;
    rt_step *s = NULL;
    SLIM_TRY(push_own_step(b, scratch, &s));
    if (stem)
        s->stem = *sc;
    else
        s->wino = *wc;
    SLIM_TRY(step_loc(s, DNNL_ARG_SRC, &src));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, &dst));
    conv_what(b, i, 0, s);
    set_value(b, i, &dst);
    return SLIM_OK;
}

/* Tries, in order: our winograd, oneDNN's winograd (when the plan uses
 * it), direct in the plan's activation layout, direct in the layouts
 * oneDNN prefers. */
static slim_status build_conv(builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    dnnl_primitive_desc_t pd = NULL;
    int split = 0;
    if (wants_own_conv(b, i)) return build_own_conv(b, i);
    slim_status st = SLIM_ERR_BACKEND;
    if (wants_winograd(b, l))
        st = conv_pd(b, i, dnnl_convolution_winograd, dnnl_format_tag_any, &pd, &split);
    if (st != SLIM_OK && b->act_tag != dnnl_format_tag_any) {
        st = conv_pd(b, i, dnnl_convolution_direct, b->act_tag, &pd, &split);
        if (st == SLIM_OK && slow_impl(pd)) {
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            st = SLIM_ERR_BACKEND;
        }
    }
    if (st != SLIM_OK) {
        slim_clear_error();
        st = conv_pd(b, i, dnnl_convolution_direct, dnnl_format_tag_any, &pd, &split);
    }
    if (st == SLIM_OK) st = conv_wire(b, i, &pd, split);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Dense on oneDNN's inner product, which takes (n, C, H, W) data in the
 * layout it is in when the weights are given as (out, C, H, W): that is
 * exactly the channel-major flatten, so no reorder is needed before it. */
static slim_status dense_pd(builder *b, int i, const rt_loc *src, dnnl_primitive_desc_t *pd) {
    const slim_layer *l = &b->m->layers[i];
    dnnl_memory_desc_t wei, bias, dst;
    dnnl_dims_t wdims = {l->c, 0, 0, 0};
    for (int d = 1; d < src->md.ndims; d++)
        wdims[d] = src->md.dims[d];
    SLIM_TRY(md_tag(&wei, src->md.ndims, wdims, dnnl_format_tag_any));
    SLIM_TRY(md_plain(&bias, 1, (dnnl_dims_t){l->c}));
    SLIM_TRY(md_tag(&dst, 2, (dnnl_dims_t){b->n, l->c}, dnnl_format_tag_any));
    dnnl_inner_product_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_inner_product_forward_desc_init(
        &desc, dnnl_forward_inference, &src->md, &wei, l->p_bias >= 0 ? &bias : NULL, &dst));
    post_spec ps = {NULL, 0, b->g->relu[i]};
    return make_pd(b, &desc, &ps, pd);
}

static slim_status dense_wire(builder *b, int i, const rt_loc *src, dnnl_primitive_desc_t *pd) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    dnnl_memory_desc_t wplain;
    dnnl_dims_t wdims = {l->c, 0, 0, 0};
    for (int d = 1; d < src->md.ndims; d++)
        wdims[d] = src->md.dims[d];
    SLIM_TRY(md_plain(&wplain, src->md.ndims, wdims));
    const float *w;
    SLIM_TRY(
        fixed_in(b, i, &wplain, m->params[l->p_weight].data, pd_md(*pd, DNNL_ARG_WEIGHTS), &w));
    rt_loc dst;
    SLIM_TRY(new_storage(b, pd_md(*pd, DNNL_ARG_DST), b->g->last_read[b->g->chain_end[i]], &dst));
    rt_step *s;
    SLIM_TRY(push_step(b, pd, 0, &s));
    SLIM_TRY(step_loc(s, DNNL_ARG_SRC, src));
    SLIM_TRY(step_fixed(s, DNNL_ARG_WEIGHTS, w));
    if (l->p_bias >= 0) SLIM_TRY(step_fixed(s, DNNL_ARG_BIAS, m->params[l->p_bias].data));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, &dst));
    snprintf(s->what, sizeof s->what, "dense %s", l->name);
    if (l->p_bias >= 0) append(s->what, sizeof s->what, "%s", " +bias");
    if (b->g->relu[i])
        append(s->what, sizeof s->what, " +relu(%s)", m->layers[b->g->chain_end[i]].name);
    set_value(b, i, &dst);
    return SLIM_OK;
}

static slim_status build_dense(builder *b, int i) {
    int in = b->m->layers[i].inputs[0];
    rt_loc src = b->vals[in].loc;
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = dense_pd(b, i, &src, &pd);
    if (st != SLIM_OK) {
        /* Not in this layout: the plain (n, features) matrix always works. */
        slim_clear_error();
        st = value_view(b, in, 2, &src);
        if (st == SLIM_OK) st = dense_pd(b, i, &src, &pd);
    }
    if (st == SLIM_OK) st = dense_wire(b, i, &src, &pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The output of a shape-keeping op (relu, bn, add) on src: in place when
 * nothing reads src later, else a new storage in src's layout. */
static slim_status keep_shape_dst(builder *b, int i, const rt_loc *src, const rt_loc *other,
                                  rt_loc *dst) {
    if (can_overwrite(b, src) && (!other || !same_storage(src, other))) {
        *dst = *src;
        return SLIM_OK;
    }
    return new_storage(b, &src->md, b->g->last_read[b->g->chain_end[i]], dst);
}

/* Finishes a step whose pd is made: src (and src1) to dst. */
static slim_status simple_wire(builder *b, int i, dnnl_primitive_desc_t *pd, const rt_loc *src,
                               const rt_loc *src1, const rt_loc *dst, const char *what,
                               rt_step **out) {
    rt_step *s;
    SLIM_TRY(push_step(b, pd, 0, &s));
    SLIM_TRY(step_loc(s, src1 ? DNNL_ARG_SRC_0 : DNNL_ARG_SRC, src));
    if (src1) SLIM_TRY(step_loc(s, DNNL_ARG_SRC_1, src1));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, dst));
    snprintf(s->what, sizeof s->what, "%s %s", what, b->m->layers[i].name);
    if (b->g->relu[i])
        append(s->what, sizeof s->what, " +relu(%s)", b->m->layers[b->g->chain_end[i]].name);
    set_value(b, i, dst);
    if (out) *out = s;
    return SLIM_OK;
}

static slim_status build_relu(builder *b, int i) {
    rt_loc src = b->vals[b->m->layers[i].inputs[0]].loc, dst;
    dnnl_eltwise_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, dnnl_eltwise_relu,
                                                   &src.md, 0.0f, 0.0f));
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = make_pd(b, &desc, NULL, &pd);
    if (st == SLIM_OK) st = keep_shape_dst(b, i, &src, NULL, &dst);
    if (st == SLIM_OK) st = simple_wire(b, i, &pd, &src, NULL, &dst, "relu", NULL);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* A bn that could not be folded: oneDNN batch norm with the running
 * statistics, gamma and beta, and a fused relu when one follows. */
static slim_status build_bn(builder *b, int i) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    rt_loc src, dst;
    SLIM_TRY(value_view(b, l->inputs[0], natural_nd(b, l->inputs[0]), &src));
    unsigned flags = dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift;
    if (b->g->relu[i]) flags |= dnnl_fuse_norm_relu;
    dnnl_batch_normalization_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(&desc, dnnl_forward_inference,
                                                               &src.md, l->eps, flags));
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = make_pd(b, &desc, NULL, &pd);
    if (st == SLIM_OK) st = keep_shape_dst(b, i, &src, NULL, &dst);
    if (st == SLIM_OK) st = simple_wire(b, i, &pd, &src, NULL, &dst, "batchnorm", &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    SLIM_TRY(step_fixed(s, DNNL_ARG_MEAN, l->running_mean));
    SLIM_TRY(step_fixed(s, DNNL_ARG_VARIANCE, l->running_var));
    SLIM_TRY(step_fixed(s, DNNL_ARG_SCALE, m->params[l->p_gamma].data));
    return step_fixed(s, DNNL_ARG_SHIFT, m->params[l->p_beta].data);
}

/* An add that no conv took as a sum post-op: binary add, in place into one
 * operand when possible, with a fused relu when one follows. */
static slim_status build_add(builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    rt_loc a, c, dst;
    SLIM_TRY(value_view(b, l->inputs[0], natural_nd(b, l->inputs[0]), &a));
    SLIM_TRY(value_in(b, l->inputs[1], &a.md, &c));
    if (!(can_overwrite(b, &a) && !same_storage(&a, &c)) && can_overwrite(b, &c) &&
        !same_storage(&a, &c)) {
        rt_loc t = a; /* addition commutes: write into the one that may go */
        a = c;
        c = t;
    }
    SLIM_TRY(keep_shape_dst(b, i, &a, &c, &dst));
    dnnl_binary_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_binary_desc_init(&desc, dnnl_binary_add, &a.md, &c.md, &dst.md));
    int fuse = binary_relu_fusable(&dst.md);
    post_spec ps = {NULL, 0, b->g->relu[i] && fuse};
    dnnl_primitive_desc_t pd = NULL;
    rt_step *s = NULL;
    slim_status st = make_pd(b, &desc, &ps, &pd);
    if (st == SLIM_OK) st = simple_wire(b, i, &pd, &a, &c, &dst, "add", &s);
    if (pd) dnnl_primitive_desc_destroy(pd);
    SLIM_TRY(st);
    if (!b->g->relu[i] || fuse) return SLIM_OK;
    char *plus = strstr(s->what, " +relu(");
    if (plus) *plus = '\0';
    return relu_step(b, i, &dst);
}

/* Global average pool i, its dense and a relu after it (the graph's
 * head[i]) on our head kernel: 16-channel blocks in, plain (n, k) out. The
 * dense's weights are prepared once per runtime, for every plan. */
static slim_status build_head(builder *b, int i) {
    const slim_model *m = b->m;
    const slim_layer *l = &m->layers[i];
    const slim_layer *dense = &m->layers[b->g->head[i]];
    head_kernel **hd = &b->rt->head[i];
    if (!*hd) {
        const head_desc d = {.c = l->in_c,
                             .k = dense->c,
                             .h = l->in_h,
                             .w = l->in_w,
                             .weights = m->params[dense->p_weight].data,
                             .bias = dense->p_bias >= 0 ? m->params[dense->p_bias].data : NULL,
                             .relu = b->g->relu[i]};
        SLIM_TRY(head_create(&d, hd));
        b->rt->weight_bytes += ((size_t)l->in_c + 1) * ((dense->c + 15) / 16 * 16) * sizeof(float);
    }
    dnnl_memory_desc_t src_md, dst_md;
    SLIM_TRY(md_tag(&src_md, 4, (dnnl_dims_t){b->n, l->in_c, l->in_h, l->in_w}, dnnl_aBcd16b));
    SLIM_TRY(md_plain(&dst_md, 2, (dnnl_dims_t){b->n, dense->c}));
    rt_loc src, dst;
    SLIM_TRY(value_in(b, l->inputs[0], &src_md, &src));
    SLIM_TRY(new_storage(b, &dst_md, b->g->last_read[b->g->chain_end[i]], &dst));
    rt_step *s = NULL;
    SLIM_TRY(push_own_step(b, 0, &s));
    s->head = *hd;
    SLIM_TRY(step_loc(s, DNNL_ARG_SRC, &src));
    SLIM_TRY(step_loc(s, DNNL_ARG_DST, &dst));
    snprintf(s->what, sizeof s->what, "gap+dense %s %s", l->name, dense->name);
    if (dense->p_bias >= 0) append(s->what, sizeof s->what, "%s", " +bias");
    if (b->g->relu[i])
        append(s->what, sizeof s->what, " +relu(%s)", m->layers[b->g->chain_end[i]].name);
    set_value(b, i, &dst);
    return SLIM_OK;
}

/* maxpool, avgpool (padding excluded from the divisor) and global average
 * pooling (a window of the whole plane), in the input's layout. */
static slim_status build_pool(builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    int in = l->inputs[0];
    if (l->kind == SLIM_LAYER_GAP && l->in_h == 1 && l->in_w == 1) {
        set_value(b, i, &b->vals[in].loc); /* averaging one value per plane */
        return SLIM_OK;
    }
    rt_loc src, dst;
    SLIM_TRY(value_view(b, in, 4, &src));
    dnnl_memory_desc_t dst_md;
    SLIM_TRY(md_tag(&dst_md, 4, (dnnl_dims_t){b->n, l->c, l->h, l->w}, dnnl_format_tag_any));
    dnnl_dims_t kernel, strides, pad_l, pad_r;
    if (l->kind == SLIM_LAYER_GAP) {
        kernel[0] = l->in_h, kernel[1] = l->in_w;
        strides[0] = strides[1] = 1;
        pad_l[0] = pad_l[1] = pad_r[0] = pad_r[1] = 0;
    } else {
        kernel[0] = kernel[1] = l->k;
        strides[0] = strides[1] = l->stride;
        pad_l[0] = pad_l[1] = l->pad;
        pad_r[0] = pad_right(l->in_h, l->k, l->h, l->stride, l->pad);
        pad_r[1] = pad_right(l->in_w, l->k, l->w, l->stride, l->pad);
    }
    dnnl_alg_kind_t alg =
        l->kind == SLIM_LAYER_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_desc_t desc;
    SLIM_DNNL_CHECK(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, alg, &src.md,
                                                   &dst_md, strides, kernel, pad_l, pad_r));
    dnnl_primitive_desc_t pd = NULL;
    slim_status st = make_pd(b, &desc, NULL, &pd);
    if (st == SLIM_OK) st = new_storage(b, pd_md(pd, DNNL_ARG_DST), b->g->last_read[i], &dst);
    if (st == SLIM_OK)
        st = simple_wire(b, i, &pd, &src, NULL, &dst, slim_layer_kind_name(l->kind), NULL);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

static slim_status build_layer(builder *b, int i) {
    const slim_layer *l = &b->m->layers[i];
    switch (l->kind) {
    case SLIM_LAYER_CONV: return build_conv(b, i);
    case SLIM_LAYER_DENSE: return build_dense(b, i);
    case SLIM_LAYER_BN: return build_bn(b, i);
    case SLIM_LAYER_RELU: return build_relu(b, i);
    case SLIM_LAYER_ADD: return build_add(b, i);
    case SLIM_LAYER_MAXPOOL:
    case SLIM_LAYER_AVGPOOL:
    case SLIM_LAYER_GAP: return b->g->head[i] ? build_head(b, i) : build_pool(b, i);
    case SLIM_LAYER_FLATTEN:
        /* Only the dims change: consumers view the data as they need it. */
        set_value(b, i, &b->vals[l->inputs[0]].loc);
        return SLIM_OK;
    default: break;
    }
    return slim_error(SLIM_ERR_ARG, "runtime: layer '%s' has an unexpected kind", l->name);
}

/* The logits in plain (n, classes): copied from the arena after the run
 * when they are plain there already, else a reorder into the caller's
 * buffer. */
static slim_status build_output(builder *b) {
    int last = b->m->n_layers - 1;
    const rt_loc *v = &b->vals[last].loc;
    rt_loc out = {.where = RT_AT_OUTPUT, .storage = -1};
    SLIM_TRY(md_plain(&out.md, v->md.ndims, v->md.dims));
    if (v->where == RT_AT_ARENA && md_equal(&v->md, &out.md)) {
        b->plan->out_storage = v->storage;
        b->plan->out_bytes = dnnl_memory_desc_get_size(&out.md);
        return SLIM_OK;
    }
    b->plan->out_storage = -1;
    return push_reorder(b, v, &out, "reorder logits");
}

/* ---- placing storages in the arena ---------------------------------------- */

static int conflict(const rt_storage *a, const rt_storage *b) {
    return a->exclusive || b->exclusive || !(a->last < b->first || b->last < a->first);
}

/* Greedy by size: each storage (largest first) goes to the lowest offset
 * where it overlaps no placed storage it is alive with. */
static slim_status place_storages(rt_plan *p) {
    int ns = p->n_storages;
    int *order = slim_calloc((size_t)(ns ? ns : 1), sizeof *order);
    int *placed = slim_calloc((size_t)(ns ? ns : 1), sizeof *placed);
    int *busy = slim_calloc((size_t)(ns ? ns : 1), sizeof *busy);
    if (!order || !placed || !busy) {
        free(order);
        free(placed);
        free(busy);
        return SLIM_ERR_NOMEM;
    }
    for (int i = 0; i < ns; i++)
        order[i] = i;
    for (int i = 1; i < ns; i++) /* insertion sort, largest first */
        for (int j = i; j > 0 && p->storages[order[j]].bytes > p->storages[order[j - 1]].bytes;
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t total = 0;
    for (int oi = 0; oi < ns; oi++) {
        rt_storage *s = &p->storages[order[oi]];
        int nb = 0;
        for (int j = 0; j < ns; j++)
            if (placed[j] && conflict(s, &p->storages[j])) busy[nb++] = j;
        for (int a = 1; a < nb; a++) /* by offset */
            for (int c = a; c > 0 && p->storages[busy[c]].offset < p->storages[busy[c - 1]].offset;
                 c--) {
                int t = busy[c];
                busy[c] = busy[c - 1];
                busy[c - 1] = t;
            }
        size_t off = 0;
        for (int a = 0; a < nb; a++) {
            const rt_storage *t = &p->storages[busy[a]];
            if (t->offset >= off + s->bytes) break;
            size_t end = (t->offset + t->bytes + 63) / 64 * 64;
            if (end > off) off = end;
        }
        s->offset = off;
        placed[order[oi]] = 1;
        if (off + s->bytes > total) total = off + s->bytes;
    }
    p->arena_bytes = (total + 63) / 64 * 64;
    free(order);
    free(placed);
    free(busy);
    return SLIM_OK;
}

/* Memory objects for every argument (handles are set when bound). */
static slim_status make_memories(slim_runtime *rt, rt_plan *p) {
    for (int s = 0; s < p->n_steps; s++) {
        rt_step *st = &p->steps[s];
        for (int a = 0; a < st->nargs; a++) {
            rt_arg *arg = &st->args[a];
            SLIM_DNNL_CHECK(dnnl_memory_create(&arg->mem, &arg->md, rt->engine, DNNL_MEMORY_NONE));
            if (arg->where == RT_AT_FIXED)
                SLIM_DNNL_CHECK(dnnl_memory_set_data_handle_v2(
                    arg->mem, (void *)(uintptr_t)arg->ptr, rt->main.stream));
            st->exec[a] = (dnnl_exec_arg_t){arg->arg, arg->mem};
        }
    }
    return SLIM_OK;
}

/* ---- the plan ---------------------------------------------------------------- */

/* Whether this plan uses winograd convs, and then in which layout.
 *
 * Ours (kernels/wino.c) is faster than oneDNN's direct convs at every batch
 * (vgg-fm batch-1 latency 0.47 -> 0.21 ms on one thread) and than its
 * winograd. Where ours is off: oneDNN 2.6 has f32 winograd only on
 * AVX-512, where it is ~1.5-2x faster
 * than the direct conv for 3x3 stride-1 convs of 16+ channels at batch 8
 * and more (measured on vgg-fm: docs/RUNTIME.md). At small batches the
 * direct conv is as fast and its results closer to the reference. The
 * probe builds a winograd pd for the first conv that would use it; its
 * destination layout becomes the plan's activation layout. */
static void plan_policy(builder *b) {
    /* Ours, at any batch, in 16-channel blocks: when a conv will run on it,
     * every activation takes its layout. */
    b->act_tag = dnnl_aBcd16b;
    for (int i = 1; i < b->m->n_layers; i++)
        if (b->g->needed[i] && b->m->layers[i].kind == SLIM_LAYER_CONV && wants_own_conv(b, i))
            return;
    b->act_tag = dnnl_format_tag_any;
    if (b->n < WINO_MIN_BATCH) return;
    static const dnnl_format_tag_t tags[] = {dnnl_aBcd16b, dnnl_aBcd8b, dnnl_acdb};
    for (int i = 1; i < b->m->n_layers; i++) {
        const slim_layer *l = &b->m->layers[i];
        if (!b->g->needed[i] || l->kind != SLIM_LAYER_CONV) continue;
        b->act_tag = dnnl_aBcd16b; /* so that wants_winograd says yes */
        int wanted = wants_winograd(b, l), split;
        b->act_tag = dnnl_format_tag_any;
        if (!wanted) continue;
        dnnl_primitive_desc_t pd = NULL;
        if (conv_pd(b, i, dnnl_convolution_winograd, dnnl_format_tag_any, &pd, &split) == SLIM_OK) {
            const dnnl_memory_desc_t *dst = pd_md(pd, DNNL_ARG_DST);
            for (size_t t = 0; t < sizeof tags / sizeof tags[0]; t++) {
                dnnl_memory_desc_t md;
                if (md_tag(&md, 4, dst->dims, tags[t]) == SLIM_OK && md_equal(&md, dst))
                    b->act_tag = tags[t];
            }
            dnnl_primitive_desc_destroy(pd);
        }
        slim_clear_error();
        return;
    }
}

static slim_status plan_layers(builder *b) {
    const slim_model *m = b->m;
    plan_policy(b);
    const slim_layer *in = &m->layers[0];
    rt_value *v0 = &b->vals[0];
    v0->loc.where = RT_AT_INPUT;
    v0->loc.storage = -1;
    SLIM_TRY(md_plain(&v0->loc.md, 4, (dnnl_dims_t){b->n, in->c, in->h, in->w}));
    for (int i = 1; i < m->n_layers; i++) {
        if (!b->g->needed[i] || b->g->root[i] != i) continue;
        b->now = i;
        slim_status st = build_layer(b, i);
        if (st != SLIM_OK)
            return slim_error_prefix(st, "runtime: %s '%s'",
                                     slim_layer_kind_name(m->layers[i].kind), m->layers[i].name);
    }
    b->now = m->n_layers;
    return build_output(b);
}

slim_status slim_rt_plan_build(slim_runtime *rt, int n, rt_plan **out) {
    *out = NULL;
    rt_plan *p = slim_calloc(1, sizeof *p);
    builder b = {.rt = rt, .m = rt->model, .g = &rt->graph, .plan = p, .n = n};
    if (!p) return SLIM_ERR_NOMEM;
    p->n = n;
    p->out_storage = -1;
    b.vals = slim_calloc((size_t)rt->model->n_layers, sizeof *b.vals);
    slim_status st = b.vals ? SLIM_OK : SLIM_ERR_NOMEM;
    if (st == SLIM_OK) st = plan_layers(&b);
    if (st == SLIM_OK) st = place_storages(p);
    if (st == SLIM_OK) st = make_memories(rt, p);
    free(b.vals);
    if (st != SLIM_OK) {
        slim_rt_plan_free(p);
        return st;
    }
    *out = p;
    return SLIM_OK;
}
