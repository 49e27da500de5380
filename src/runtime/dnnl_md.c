/* oneDNN memory descriptors, attributes and primitive descriptors, as the
 * planner asks for them. */
#include "runtime/build.h"

#include <stdio.h>
#include <string.h>

slim_status rt_md_tag(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims,
                      dnnl_format_tag_t tag) {
    SLIM_DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, tag));
    return SLIM_OK;
}

slim_status rt_md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims) {
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd};
    if (nd < 1 || nd > 4) return slim_error(SLIM_ERR_BACKEND, "runtime: %d-D tensor", nd);
    return rt_md_tag(md, nd, dims, tags[nd]);
}

int rt_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
    return dnnl_memory_desc_equal(a, b) != 0;
}

int rt_md_padded(const dnnl_memory_desc_t *md) {
    for (int d = 0; d < md->ndims; d++)
        if (md->padded_dims[d] != md->dims[d]) return 1;
    return 0;
}

dnnl_format_tag_t rt_md_act_tag(const dnnl_memory_desc_t *md) {
    static const dnnl_format_tag_t tags[] = {dnnl_abcd, dnnl_acdb, dnnl_aBcd8b, dnnl_aBcd16b};
    for (size_t t = 0; md->ndims == 4 && t < sizeof tags / sizeof tags[0]; t++) {
        dnnl_memory_desc_t like;
        if (dnnl_memory_desc_init_by_tag(&like, 4, md->dims, dnnl_f32, tags[t]) == dnnl_success &&
            rt_md_equal(&like, md))
            return tags[t];
    }
    return dnnl_format_tag_any;
}

const dnnl_memory_desc_t *rt_pd_md(const_dnnl_primitive_desc_t pd, int arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

const char *rt_md_str(const dnnl_memory_desc_t *md, char *buf, size_t len) {
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

void rt_act_eltwise(rt_act act, dnnl_alg_kind_t *alg, float *alpha, float *beta) {
    *alg = act == RT_ACT_RELU6 ? dnnl_eltwise_clip : dnnl_eltwise_relu;
    *alpha = 0.0f;
    *beta = act == RT_ACT_RELU6 ? 6.0f : 0.0f;
}

typedef struct attr_box {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t ops;
} attr_box;

static void attr_box_free(attr_box *a) {
    if (a->ops) dnnl_post_ops_destroy(a->ops);
    if (a->attr) dnnl_primitive_attr_destroy(a->attr);
}

static slim_status attr_box_init(attr_box *a, const rt_post_spec *ps) {
    SLIM_DNNL_CHECK(dnnl_primitive_attr_create(&a->attr));
    SLIM_DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(a->attr, dnnl_scratchpad_mode_user));
    if (!ps || (!ps->binary && !ps->sum && !ps->act)) return SLIM_OK;
    SLIM_DNNL_CHECK(dnnl_post_ops_create(&a->ops));
    if (ps->binary)
        SLIM_DNNL_CHECK(dnnl_post_ops_append_binary(a->ops, dnnl_binary_add, ps->binary));
    if (ps->sum) SLIM_DNNL_CHECK(dnnl_post_ops_append_sum(a->ops, 1.0f));
    if (ps->act) {
        dnnl_alg_kind_t alg;
        float alpha, beta;
        rt_act_eltwise(ps->act, &alg, &alpha, &beta);
        SLIM_DNNL_CHECK(dnnl_post_ops_append_eltwise(a->ops, 1.0f, alg, alpha, beta));
    }
    SLIM_DNNL_CHECK(dnnl_primitive_attr_set_post_ops(a->attr, a->ops));
    return SLIM_OK;
}

slim_status rt_make_pd(dnnl_engine_t engine, const_dnnl_op_desc_t desc, const rt_post_spec *ps,
                       dnnl_primitive_desc_t *pd) {
    attr_box a = {0};
    slim_status st = attr_box_init(&a, ps);
    if (st == SLIM_OK) {
        dnnl_status_t s = dnnl_primitive_desc_create(pd, desc, a.attr, engine, NULL);
        if (s != dnnl_success) {
            *pd = NULL;
            st = slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_primitive_desc_create failed: %s",
                            dnnl_status2str(s));
        }
    }
    attr_box_free(&a);
    return st;
}

slim_status rt_make_reorder_pd(dnnl_engine_t engine, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst, dnnl_primitive_desc_t *pd) {
    attr_box a = {0};
    *pd = NULL;
    slim_status st = attr_box_init(&a, NULL);
    if (st == SLIM_OK) {
        dnnl_status_t s = dnnl_reorder_primitive_desc_create(pd, src, engine, dst, engine, a.attr);
        if (s != dnnl_success) {
            *pd = NULL;
            st =
                slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_reorder_primitive_desc_create failed: %s",
                           dnnl_status2str(s));
        }
    }
    attr_box_free(&a);
    return st;
}

slim_status rt_make_concat_pd(dnnl_engine_t engine, const dnnl_memory_desc_t *dst, int n,
                              const dnnl_memory_desc_t *srcs, dnnl_primitive_desc_t *pd) {
    attr_box a = {0};
    *pd = NULL;
    slim_status st = attr_box_init(&a, NULL);
    if (st == SLIM_OK) {
        dnnl_status_t s = dnnl_concat_primitive_desc_create(pd, dst, n, 1, srcs, a.attr, engine);
        if (s != dnnl_success) {
            *pd = NULL;
            st = slim_error(SLIM_ERR_BACKEND, "oneDNN dnnl_concat_primitive_desc_create failed: %s",
                            dnnl_status2str(s));
        }
    }
    attr_box_free(&a);
    return st;
}

int rt_same_impl(const_dnnl_primitive_desc_t a, const_dnnl_primitive_desc_t b) {
    const char *x = NULL, *y = NULL;
    if (dnnl_primitive_desc_query(a, dnnl_query_impl_info_str, 0, &x) != dnnl_success ||
        dnnl_primitive_desc_query(b, dnnl_query_impl_info_str, 0, &y) != dnnl_success)
        return 0;
    return x && y && strcmp(x, y) == 0;
}

int rt_slow_impl(const_dnnl_primitive_desc_t pd) {
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name)
        return 1;
    return strstr(name, "ref") != NULL || strstr(name, "gemm") != NULL;
}
