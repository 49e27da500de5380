/* Private to the planner's files (plan.c, policy.c, build.c, dnnl_md.c,
 * step_dnnl.c, step_own.c): a plan under construction and the helpers the
 * step builders share. */
#ifndef SLIM_RUNTIME_BUILD_H
#define SLIM_RUNTIME_BUILD_H

#include "runtime/runtime_internal.h"

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

typedef struct rt_builder {
    slim_runtime *rt;
    const slim_model *m;
    const rt_graph *g;
    rt_plan *plan;
    rt_value *vals; /* per layer */
    int n;          /* batch size */
    int now;        /* the root layer being built (plan time) */
    /* The layout convs write when the plan uses a Winograd (its blocked
     * layout, so that direct convs, pools and Winograd convs need no
     * reorders between them); format_tag_any otherwise (policy.c). */
    dnnl_format_tag_t act_tag;
} rt_builder;

/* ---- dnnl_md.c: descriptors and attributes ---- */

slim_status rt_md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                      dnnl_format_tag_t tag);
/* Plain row-major: a, ab, abc, abcd (= x, nc, -, nchw / oihw). */
slim_status rt_md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims);
int rt_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);
/* Whether a layout pads a dimension (blocked channels). */
int rt_md_padded(const dnnl_memory_desc_t *md);
const dnnl_memory_desc_t *rt_pd_md(const_dnnl_primitive_desc_t pd, int arg);
/* The activation layout (nchw, nhwc, nChw8c, nChw16c) a 4-D md is in, or
 * format_tag_any when it is none of them. */
dnnl_format_tag_t rt_md_act_tag(const dnnl_memory_desc_t *md);

/* Scratchpad mode "user" and the post-ops: [binary add] [sum] [relu | relu6]. */
typedef struct rt_post_spec {
    const dnnl_memory_desc_t *binary; /* src1 of a binary-add post-op, or NULL */
    int sum;
    rt_act act;
} rt_post_spec;
/* The eltwise algorithm and its alpha, beta for an activation (relu6 is a
 * clip to [0, 6]). */
void rt_act_eltwise(rt_act act, dnnl_alg_kind_t *alg, float *alpha, float *beta);

/* A primitive descriptor for desc with the post-ops of ps (NULL: none).
 * "No implementation" is SLIM_ERR_BACKEND like any failure; callers with a
 * fallback clear the message. */
slim_status rt_make_pd(dnnl_engine_t engine, const_dnnl_op_desc_t desc, const rt_post_spec *ps,
                       dnnl_primitive_desc_t *pd);
/* A reorder descriptor from src to dst (scratchpad mode "user"). */
slim_status rt_make_reorder_pd(dnnl_engine_t engine, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst, dnnl_primitive_desc_t *pd);
/* A concat of n sources along channels into dst (scratchpad mode "user"). */
slim_status rt_make_concat_pd(dnnl_engine_t engine, const dnnl_memory_desc_t *dst, int n,
                              const dnnl_memory_desc_t *srcs, dnnl_primitive_desc_t *pd);
int rt_same_impl(const_dnnl_primitive_desc_t a, const_dnnl_primitive_desc_t b);
/* Whether an implementation is one of oneDNN's fallbacks (reference loops,
 * or im2col + GEMM), which a layout request should not force. */
int rt_slow_impl(const_dnnl_primitive_desc_t pd);

/* ---- build.c: storages, steps, values, weights ---- */

/* A new storage for an activation written now in layout md and last read
 * at time `last`. */
slim_status rt_new_storage(rt_builder *b, const dnnl_memory_desc_t *md, int last, rt_loc *out);
/* Whether a step running now may overwrite what loc holds. */
int rt_can_overwrite(const rt_builder *b, const rt_loc *loc);
int rt_same_storage(const rt_loc *a, const rt_loc *b);
/* Makes loc the output of root layer `root` (and of every layer of its
 * chain). */
void rt_set_value(rt_builder *b, int root, const rt_loc *loc);

/* Appends an empty step. */
slim_status rt_new_step(rt_plan *p, rt_step **out);
/* Gives step s the context's scratchpad, as md, and grows the plan's need. */
slim_status rt_step_scratch(rt_plan *p, rt_step *s, const dnnl_memory_desc_t *md);
/* Appends a oneDNN step that takes over *pd (set to NULL) and makes its
 * primitive; the scratchpad argument is added here. */
slim_status rt_push_dnnl_step(rt_builder *b, dnnl_primitive_desc_t *pd, int is_reorder,
                              rt_step **out);
slim_status rt_step_loc(rt_step *s, int arg, const rt_loc *loc);
/* A fixed argument (weights, bias, statistics) of a oneDNN step. */
slim_status rt_step_fixed(rt_step *s, int arg, const void *ptr);
slim_status rt_push_reorder(rt_builder *b, const rt_loc *src, const rt_loc *dst, const char *what);

/* Layer u's output in layout `want`: as it is, or a copy made by a reorder
 * (kept for other consumers); see build.c. */
slim_status rt_value_in(rt_builder *b, int u, const dnnl_memory_desc_t *want, rt_loc *out);
/* Layer u's output in its own dims, (n, c, h, w) for nd 4 or (n, c*h*w)
 * for nd 2: as stored when the stored dims are those, else plain. */
slim_status rt_value_view(rt_builder *b, int u, int nd, rt_loc *out);
/* A constant tensor of layer i (plain layout `plain`, data `src`) in layout
 * `want`, reordered once and kept by the runtime. */
slim_status rt_fixed_in(rt_builder *b, int i, const dnnl_memory_desc_t *plain, const float *src,
                        const dnnl_memory_desc_t *want, const float **out);
/* The destination of conv i, which reads src, in layout dst_md: new, or
 * with a fused sum, what the sum adds onto. */
slim_status rt_conv_dst(rt_builder *b, int i, const rt_loc *src, const dnnl_memory_desc_t *dst_md,
                        rt_loc *dst);
/* Step s's description for conv i: "conv NAME" and what it fuses; with
 * split_biasmap, a binary step after it adds the biasmap and does the
 * activation. */
void rt_conv_what(const rt_builder *b, int i, int split_biasmap, rt_step *s);
/* s->what for concat i: "concat NAME (IN1,IN2,...)", whichever kernel runs it. */
void rt_concat_what(const rt_builder *b, int i, rt_step *s);
/* Appends " +relu(NAME)" or " +relu6(NAME)" for the activation root i
 * fuses, if any. */
void rt_act_what(const rt_builder *b, int i, char *buf, size_t len);
/* Appends printf(fmt, arg) to buf. */
void rt_append(char *buf, size_t len, const char *fmt, const char *arg);

/* ---- policy.c ---- */

/* Sets b->act_tag for the plan (before any step is built). */
void rt_plan_policy(rt_builder *b);
/* The path conv i takes in this plan and why (into why[RT_WHY_LEN]). A
 * oneDNN Winograd that oneDNN cannot build falls back to its direct conv
 * (step_dnnl.c says so in the step's reason). */
rt_conv_path rt_conv_policy(const rt_builder *b, int i, char *why);

/* ---- step_dnnl.c: steps of oneDNN primitives ---- */

slim_status rt_conv_pd(rt_builder *b, int i, dnnl_alg_kind_t alg, dnnl_format_tag_t dst_tag,
                       dnnl_primitive_desc_t *out, int *split);
slim_status rt_build_dnnl_conv(rt_builder *b, int i, rt_conv_path path, const char *why);
slim_status rt_build_dense(rt_builder *b, int i);
slim_status rt_build_act(rt_builder *b, int i);
slim_status rt_build_concat(rt_builder *b, int i);
/* The same on our blocked concat (step_own.c), when the plan's activations
 * are our 16-channel blocks. */
slim_status rt_build_own_concat(rt_builder *b, int i);
slim_status rt_build_bn(rt_builder *b, int i);
slim_status rt_build_add(rt_builder *b, int i);
slim_status rt_build_pool(rt_builder *b, int i);

/* ---- step_own.c: steps of our kernels ---- */

slim_status rt_build_own_conv(rt_builder *b, int i, rt_conv_path path, const char *why);
slim_status rt_build_head(rt_builder *b, int i);

#endif
