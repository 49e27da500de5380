/* The policy: which path each conv takes, and why, and the activation
 * layout of a plan. A conv takes, in this order of preference:
 *
 *   wino         our Winograd F(4x4, 3x3) (kernels/wino.c): 3x3, stride 1,
 *                pad 1, at any batch, unless it is a stem conv;
 *   stem         our direct conv (kernels/stem.c) for the same convs with
 *                fewer than WINO_OWN_MIN_CIN channels that read the
 *                network's (plain) input;
 *   dnnl-wino    oneDNN's Winograd: 3x3, stride 1, 16+ channels in and out,
 *                at a plan batch of WINO_MIN_BATCH+, when the CPU has it;
 *   dnnl-direct  oneDNN's direct conv (or whatever it picks) otherwise,
 *                and always for grouped and depthwise convs.
 *
 * Our kernels run in the build for the best instruction set the CPU has
 * (AVX-512F/VL, else AVX2 + FMA), capped by SLIM_ISA (kernels/isa.c) and
 * independent of oneDNN's cap (ONEDNN_MAX_CPU_ISA); with none (generic),
 * every conv takes a oneDNN path. A build runs all three of our kernels
 * or none (the plan's 16-channel blocks are for our convs). Why ours are
 * preferred: per 16 output pixels and 16 output
 * channels a direct conv does 9 multiply-adds per input channel, our
 * Winograd 2.25 plus transforms, and unlike oneDNN 2.6's Winograd it keeps
 * that edge on the few channels pruned convs keep; the stem gives a last
 * block of at most 8 output channels 8 lanes, not 16 (docs/RUNTIME.md).
 * At small batches oneDNN's direct conv is as fast as its Winograd and
 * closer to the reference. */
#include "runtime/build.h"

#include <stdio.h>
#include <string.h>

#define WINO_OWN_MIN_CIN 4
#define WINO_MIN_BATCH 8

const own_impl *rt_own_impl(void) {
    const own_impl *impl = own_impl_for(own_isa_active());
    return impl && own_impl_has_wino(impl) ? impl : NULL;
}

int rt_own_kernels_usable(void) { return rt_own_impl() != NULL; }

/* The instruction set a plan print-out names. */
static const char *isa_label(own_isa isa) {
    return isa == OWN_ISA_AVX512 ? "AVX-512" : isa == OWN_ISA_AVX2 ? "AVX2" : "generic";
}

static int grouped(const slim_layer *l) { return l->groups > 1; }

/* Ours are dense 3x3 convs: every output channel reads every input one. */
static int own_shape(const slim_layer *l) {
    return l->kind == SLIM_LAYER_CONV && l->k == 3 && l->stride == 1 && l->pad == 1 && !grouped(l);
}

/* The stem reads the network's input (layer 0, plain); a conv with few
 * channels deeper in reads 16-channel blocks, and our Winograd takes them
 * as they are (and fuses the pool after it) where the stem would need a
 * reorder to plain and a pool of its own. */
static int stem_input(const slim_layer *l) {
    return l->in_c < WINO_OWN_MIN_CIN && l->n_inputs == 1 && l->inputs[0] == 0;
}

int rt_wino_fits(const slim_layer *l) {
    return own_shape(l) && !stem_input(l) && rt_own_kernels_usable();
}

int rt_stem_fits(const slim_layer *l) {
    return own_shape(l) && stem_input(l) && rt_own_kernels_usable();
}

int rt_own_conv(const slim_layer *l) { return rt_wino_fits(l) || rt_stem_fits(l); }

const char *rt_conv_path_name(rt_conv_path path) {
    switch (path) {
    case RT_CONV_WINO: return "wino";
    case RT_CONV_STEM: return "stem";
    case RT_CONV_DNNL_WINO: return "dnnl-wino";
    case RT_CONV_DNNL_DIRECT: return "dnnl-direct";
    default: return "-";
    }
}

static int wants_own_conv(const rt_builder *b, const slim_layer *l) {
    return b->act_tag == dnnl_aBcd16b && rt_own_conv(l);
}

static int wants_dnnl_winograd(const rt_builder *b, const slim_layer *l) {
    return b->act_tag != dnnl_format_tag_any && b->n >= WINO_MIN_BATCH && l->k == 3 &&
           l->stride == 1 && l->in_c >= 16 && l->c >= 16 && !grouped(l);
}

/* Ours, at any batch, in 16-channel blocks: when a conv will run on it,
 * every activation takes its layout. Else, at WINO_MIN_BATCH and more,
 * a probe builds oneDNN's Winograd for the first conv that would use it;
 * its destination layout becomes the plan's activation layout (none: no
 * oneDNN Winograd in this plan, e.g. oneDNN 2.6 has f32 Winograd only on
 * AVX-512). */
void rt_plan_policy(rt_builder *b) {
    b->act_tag = dnnl_aBcd16b;
    for (int i = 1; i < b->m->n_layers; i++)
        if (b->g->needed[i] && b->m->layers[i].kind == SLIM_LAYER_CONV &&
            wants_own_conv(b, &b->m->layers[i]))
            return;
    b->act_tag = dnnl_format_tag_any;
    if (b->n < WINO_MIN_BATCH) return;
    static const dnnl_format_tag_t tags[] = {dnnl_aBcd16b, dnnl_aBcd8b, dnnl_acdb};
    for (int i = 1; i < b->m->n_layers; i++) {
        const slim_layer *l = &b->m->layers[i];
        if (!b->g->needed[i] || l->kind != SLIM_LAYER_CONV) continue;
        b->act_tag = dnnl_aBcd16b; /* so that wants_dnnl_winograd says yes */
        int wanted = wants_dnnl_winograd(b, l), split;
        b->act_tag = dnnl_format_tag_any;
        if (!wanted) continue;
        dnnl_primitive_desc_t pd = NULL;
        if (rt_conv_pd(b, i, dnnl_convolution_winograd, dnnl_format_tag_any, &pd, &split) ==
            SLIM_OK) {
            const dnnl_memory_desc_t *dst = rt_pd_md(pd, DNNL_ARG_DST);
            for (size_t t = 0; t < sizeof tags / sizeof tags[0]; t++) {
                dnnl_memory_desc_t md;
                if (rt_md_tag(&md, 4, dst->dims, tags[t]) == SLIM_OK && rt_md_equal(&md, dst))
                    b->act_tag = tags[t];
            }
            dnnl_primitive_desc_destroy(pd);
        }
        slim_clear_error();
        return;
    }
}

rt_conv_path rt_conv_policy(const rt_builder *b, int i, char *why) {
    const slim_layer *l = &b->m->layers[i];
    const size_t len = RT_WHY_LEN;
    if (wants_own_conv(b, l)) {
        int wino = rt_wino_fits(l);
        snprintf(why, len, "3x3 s1 p1, %s, %s",
                 !wino                         ? "1-3 channels in from the input"
                 : l->in_c >= WINO_OWN_MIN_CIN ? "4+ channels in"
                                               : "1-3 channels in, blocked",
                 isa_label(own_impl_isa(rt_own_impl())));
        return wino ? RT_CONV_WINO : RT_CONV_STEM;
    }
    /* Why not ours, then why (not) oneDNN's Winograd. Grouped convs are
     * neither's (oneDNN has depthwise kernels of its own). */
    int shape = l->k == 3 && l->stride == 1;
    if (grouped(l)) {
        if (l->groups == l->c && l->groups == l->in_c)
            snprintf(why, len, "not ours: depthwise %dx%d s%d", l->k, l->k, l->stride);
        else
            snprintf(why, len, "not ours: grouped (%d groups) %dx%d s%d", l->groups, l->k, l->k,
                     l->stride);
        return RT_CONV_DNNL_DIRECT;
    }
    if (!rt_own_kernels_usable()) {
        own_isa cpu = own_isa_cpu(), active = own_isa_active();
        if (cpu == OWN_ISA_GENERIC)
            snprintf(why, len, "own kernels off (no AVX2)");
        else if (active == OWN_ISA_GENERIC)
            snprintf(why, len, "own kernels off (SLIM_ISA=generic)");
        else
            snprintf(why, len, "own kernels off (no Winograd in our %s build)", isa_label(active));
    } else if (!shape)
        snprintf(why, len, "not ours: %dx%d s%d", l->k, l->k, l->stride);
    else
        snprintf(why, len, "not ours: pad %d", l->pad);
    size_t used = strlen(why);
    if (wants_dnnl_winograd(b, l)) {
        snprintf(why + used, len - used, "; 3x3 s1, 16+ channels, batch %d+", WINO_MIN_BATCH);
        return RT_CONV_DNNL_WINO;
    }
    if (!shape && !rt_own_kernels_usable())
        snprintf(why + used, len - used, "; %dx%d s%d", l->k, l->k, l->stride);
    else if (shape && (l->in_c < 16 || l->c < 16))
        snprintf(why + used, len - used, "; under 16 channels");
    else if (shape && b->n < WINO_MIN_BATCH)
        snprintf(why + used, len - used, "; batch under %d", WINO_MIN_BATCH);
    else if (shape)
        snprintf(why + used, len - used, "; oneDNN has no Winograd here");
    return RT_CONV_DNNL_DIRECT;
}
