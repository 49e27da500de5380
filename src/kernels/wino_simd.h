/* Our Winograd's compute (wino.c), written once for SIMD_W lanes
 * (kernels/simd.h) and built per target (kernels/isa_<target>.c).
 *
 * Per group of tiles (group_size):
 *   V[p][t][c] = (B^T d B)[p]  (input transform, 6x6 patch d of channel c)
 *   M[t][p][o] = sum_c V[p][t][c] U[p][c][o]  (36 small GEMMs, U = G g G^T)
 *   y = ReLU(A^T M A + bias + biasmap + y if summing), stored where the 4x4
 *       tile is inside the image, or with a fused pool the maxima of its
 *       2x2 windows.
 * A 16-channel block is 16 / SIMD_W vectors in each step; a last input
 * block of at most 8 real channels is transformed in 8 lanes (with 16
 * lanes, two tiles' at once). */
#ifndef SLIM_KERNELS_WINO_SIMD_H
#define SLIM_KERNELS_WINO_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/own_impl.h"
#include "kernels/simd.h"

/* B^T x of one row or column of 6 points: the first three outputs
 * (WINO_IN_LO) or the last three (WINO_IN_HI), on vectors of type VT with
 * operations P##set1 etc. (kernels/simd.h). A macro: one body serves vf
 * and v8. */
#define WINO_IN_LO(VT, P, x0, x1, x2, x3, x4, t0, t1, t2)                                          \
    do {                                                                                           \
        const VT four = P##set1(4.0f);                                                             \
        t0 = P##fma(four, (x0) - (x2), (x4) - (x2)); /* 4x0 - 5x2 + x4 */                          \
        t1 = P##fma(-four, (x1) + (x2), (x3) + (x4));                                              \
        t2 = P##fma(four, (x1) - (x2), (x4) - (x3));                                               \
    } while (0)
#define WINO_IN_HI(VT, P, x1, x2, x3, x4, x5, t3, t4, t5)                                          \
    do {                                                                                           \
        const VT d42 = (x4) - (x2), d31 = (x3) - (x1), two = P##set1(2.0f);                        \
        t3 = P##fma(two, d31, d42);                                                                \
        t4 = P##fma(-two, d31, d42);                                                               \
        t5 = P##fma(P##set1(-4.0f), d31, (x5) - (x3)); /* 4x1 - 5x3 + x5 */                        \
    } while (0)

/* The input transform of one tile: the 6x6 patch at x (rows `stride`
 * floats apart, pixels STEP: 16, or 8 in a narrow block), to v[p *
 * vstride] for the 36 points p, on vectors of type VT (LD(j, r, STEP): the
 * patch's pixel at column j, row r, as VT).
 *
 * B^T d B in two halves, rows 0-2 of the result and then rows 3-5, each
 * reading the patch again: a half's 18 intermediate vectors stay in
 * registers, where all 36 would spill (the loads hit the cache; stores and
 * spills are what this step waits on). */
#define WINO_LDV(j, r, STEP) vloadu(x + (size_t)(j) * (STEP) + (size_t)(r)*stride)
#define WINO_LD8(j, r, STEP) v8loadu(x + (size_t)(j) * (STEP) + (size_t)(r)*stride)
/* The first 8 channels of two tiles' patches, at x and x2, in one vector
 * of 16 lanes. */
#define WINO_LD_PAIR(j, r, STEP)                                                                   \
    __builtin_shufflevector(WINO_LD8(j, r, STEP),                                                  \
                            v8loadu(x2 + (size_t)(j) * (STEP) + (size_t)(r)*stride), 0, 1, 2, 3,   \
                            4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
/* Column j, rows 0-4 (LO) or 1-5 (HI), of the patch, to a##j, b##j, c##j. */
#define WINO_COL(VT, P, LD, STEP, HALF, j)                                                         \
    WINO_IN_##HALF(VT, P, LD(j, HALF##_ROW, STEP), LD(j, HALF##_ROW + 1, STEP),                    \
                   LD(j, HALF##_ROW + 2, STEP), LD(j, HALF##_ROW + 3, STEP),                       \
                   LD(j, HALF##_ROW + 4, STEP), a##j, b##j, c##j)
#define LO_ROW 0
#define HI_ROW 1
/* Row r of the half's result (its values e0..e5) to the 6 points r*6 + k. */
#define WINO_ROW(VT, P, r, e0, e1, e2, e3, e4, e5)                                                 \
    do {                                                                                           \
        VT o0, o1, o2, o3, o4, o5;                                                                 \
        WINO_IN_LO(VT, P, e0, e1, e2, e3, e4, o0, o1, o2);                                         \
        WINO_IN_HI(VT, P, e1, e2, e3, e4, e5, o3, o4, o5);                                         \
        float *vp = v + (size_t)((r)*6) * vstride;                                                 \
        P##store(vp, o0);                                                                          \
        P##store(vp + vstride, o1);                                                                \
        P##store(vp + 2 * vstride, o2);                                                            \
        P##store(vp + 3 * vstride, o3);                                                            \
        P##store(vp + 4 * vstride, o4);                                                            \
        P##store(vp + 5 * vstride, o5);                                                            \
    } while (0)
#define WINO_HALF(VT, P, LD, STEP, HALF, r0)                                                       \
    do {                                                                                           \
        VT a0, b0, c0, a1, b1, c1, a2, b2, c2, a3, b3, c3, a4, b4, c4, a5, b5, c5;                 \
        WINO_COL(VT, P, LD, STEP, HALF, 0);                                                        \
        WINO_COL(VT, P, LD, STEP, HALF, 1);                                                        \
        WINO_COL(VT, P, LD, STEP, HALF, 2);                                                        \
        WINO_COL(VT, P, LD, STEP, HALF, 3);                                                        \
        WINO_COL(VT, P, LD, STEP, HALF, 4);                                                        \
        WINO_COL(VT, P, LD, STEP, HALF, 5);                                                        \
        WINO_ROW(VT, P, r0, a0, a1, a2, a3, a4, a5);                                               \
        WINO_ROW(VT, P, r0 + 1, b0, b1, b2, b3, b4, b5);                                           \
        WINO_ROW(VT, P, r0 + 2, c0, c1, c2, c3, c4, c5);                                           \
    } while (0)
#define WINO_INPUT(NAME, VT, P, LD, STEP)                                                          \
    static void NAME(const float *x, const float *x2, size_t stride, float *v, size_t vstride) {   \
        (void)x2;                                                                                  \
        WINO_HALF(VT, P, LD, STEP, LO, 0);                                                         \
        WINO_HALF(VT, P, LD, STEP, HI, 3);                                                         \
    }

/* SIMD_W channels (of a whole block: input_tile below), and a last
 * block's first 8 channels, in 16-float pixels or narrow. */
WINO_INPUT(input_vec, vf, v, WINO_LDV, 16)
WINO_INPUT(input_tile8, v8, v8, WINO_LD8, 16)
WINO_INPUT(input_tile8_narrow, v8, v8, WINO_LD8, 8)

/* A whole 16-channel block of one tile, SIMD_W channels at a time. */
static void input_tile(const float *x, size_t stride, float *v, size_t vstride) {
    for (int s = 0; s < 16; s += SIMD_W)
        input_vec(x + s, NULL, stride, v + s, vstride);
}

/* The first 8 channels of two tiles (x, x2) to v and v + 8: with 16 lanes
 * one vector holds both (half the operations and stores of two 8-lane
 * transforms where 8-lane operations cost what 16-lane ones do). */
#if SIMD_W == 16
WINO_INPUT(input_pair8, vf, v, WINO_LD_PAIR, 16)
WINO_INPUT(input_pair8_narrow, vf, v, WINO_LD_PAIR, 8)
#else
static void input_pair8(const float *x, const float *x2, size_t stride, float *v, size_t vstride) {
    input_tile8(x, NULL, stride, v, vstride);
    input_tile8(x2, NULL, stride, v + 8, vstride);
}
static void input_pair8_narrow(const float *x, const float *x2, size_t stride, float *v,
                               size_t vstride) {
    input_tile8_narrow(x, NULL, stride, v, vstride);
    input_tile8_narrow(x2, NULL, stride, v + 8, vstride);
}
#endif

/* The 36 GEMMs of one group of g tiles for 1-5 vectors of output channels
 * from o: m[t][p][o..] (coutp floats per point) = sum_c v[p][t][c]
 * u[p][c][o..]. Each value of v read serves a multiply per vector (the
 * vectors x g sums, the weights and the broadcast within the vector
 * registers: 32 with AVX-512, 16 with AVX2).
 *
 * With 16 lanes the last vector may be paired (paired_last): it takes two
 * input channels per step. A lone vector of output channels would
 * otherwise need a broadcast of v per multiply-add, and the broadcasts,
 * not the multiply-adds, would set the pace; a last vector of at most 8
 * real channels would spend a multiply-add per input channel on mostly
 * zeros. Paired, a 64-bit broadcast carries channels c and c + 1 of a
 * tile, alternating across the lanes, into one multiply-add per 8 outputs
 * (each output in two lanes: its weight for c in the even one, for c + 1
 * in the odd one), and each tile's two lanes are added at the end. A last
 * channel of an odd count goes alone, against weights whose odd lanes are
 * zero: the next value of v may be anything (NaN in padding), so it is
 * never read.
 *
 * gemm is specialised by its constant arguments (full, pv, g) into the
 * functions below; the sums live in registers only when every loop bound
 * is a constant. */
#define WINO_INLINE static inline __attribute__((always_inline))
#define WINO_VECS_MAX 5 /* output vectors per call */

/* One call's operands: v (vpoint floats per point, c16 its blocked
 * channels), u, the input channels, the padded output channels, the first
 * output channel o, and m. */
typedef struct gemm_args {
    const float *v;
    size_t vpoint;
    int c16;
    const float *u;
    int cin, coutp, o;
    float *m;
} gemm_args;

/* Input channel c (and c + 1 with pair) into the sums a of g tiles: full
 * plain vectors, then pv paired ones (a[t][full..], 0-2 halves of 8
 * outputs). up: the point's weights; xs: tile 0's value of channel c in v,
 * each next tile's ts floats on. */
WINO_INLINE void gemm_step(vf a[][WINO_VECS_MAX], const float *up, int coutp, int c,
                           const float *xs, size_t ts, int full, int pv, int g, int pair) {
    const float *uc = up + (size_t)c * coutp;
    vf w[WINO_VECS_MAX], w2[WINO_VECS_MAX], wp[2];
    for (int k = 0; k < full; k++) {
        w[k] = vload(uc + SIMD_W * k);
        if (pair) w2[k] = vload(uc + coutp + SIMD_W * k);
    }
    for (int k = 0; k < pv; k++)
        wp[k] = vload(uc + (size_t)k * coutp + SIMD_W * full);
    for (int t = 0; t < g; t++) {
        const float *xt = xs + (size_t)t * ts;
        const vf x1 = vset1(xt[0]);
        for (int k = 0; k < full; k++)
            a[t][k] = vfma(x1, w[k], a[t][k]);
        if (pair) {
            const vf x2 = vset1(xt[1]);
            for (int k = 0; k < full; k++)
                a[t][k] = vfma(x2, w2[k], a[t][k]);
        }
        const vf xp = pair ? vset1_pair(xt) : x1;
        for (int k = 0; k < pv; k++)
            a[t][full + k] = vfma(xp, wp[k], a[t][full + k]);
    }
}

/* full plain vectors and pv (0-2, 16 lanes only) paired halves of 8
 * outputs, g tiles; with pv 1 the paired vector's other 8 lanes of m are
 * zeroed. */
WINO_INLINE void gemm(const gemm_args *args, int full, int pv, int g) {
    const float *v = args->v, *u = args->u;
    const size_t vpoint = args->vpoint;
    const int c16 = args->c16, cin = args->cin, coutp = args->coutp, o = args->o;
    float *m = args->m;
    const int blocked = cin < c16 ? cin : c16;
    for (int p = 0; p < 36; p++) {
        const float *vp = v + (size_t)p * vpoint, *vn = vp + (size_t)g * c16;
        const float *up = u + (size_t)p * even_cin(cin) * coutp + o;
        vf a[WINO_GROUP_MAX][WINO_VECS_MAX];
        for (int t = 0; t < g; t++)
            for (int k = 0; k < full + pv; k++)
                a[t][k] = vzero();
        int c = 0;
        if (pv) {
            for (; c + 1 < blocked; c += 2)
                gemm_step(a, up, coutp, c, vp + c, (size_t)c16, full, pv, g, 1);
            if (c < blocked) gemm_step(a, up, coutp, c, vp + c, (size_t)c16, full, pv, g, 0);
            for (c = c16; c + 1 < cin; c += 2) /* the last block, held apart */
                gemm_step(a, up, coutp, c, vn + (c - c16), 8, full, pv, g, 1);
            if (c16 < cin && c < cin) gemm_step(a, up, coutp, c, vn + (c - c16), 8, full, pv, g, 0);
        } else {
            for (; c < blocked; c++)
                gemm_step(a, up, coutp, c, vp + c, (size_t)c16, full, 0, g, 0);
            for (c = c16; c < cin; c++)
                gemm_step(a, up, coutp, c, vn + (c - c16), 8, full, 0, g, 0);
        }
        for (int t = 0; t < g; t++) {
            float *mt = m + ((size_t)t * 36 + p) * coutp + o;
            for (int k = 0; k < full; k++)
                vstore(mt + SIMD_W * k, a[t][k]);
#if SIMD_W == 16
            if (pv == 0) continue;
            /* The paired halves: a[t][full] (outputs 0-7) and, with two,
             * a[t][full + 1] (8-15); each output the sum of its two lanes. */
            const vf lo = a[t][full], hi = a[t][full + pv - 1];
            const vf sum = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
                                                   22, 24, 26, 28, 30) +
                           __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21,
                                                   23, 25, 27, 29, 31);
            vstore(mt + SIMD_W * full,
                   pv == 2 ? sum
                           : __builtin_shufflevector(sum, vzero(), 0, 1, 2, 3, 4, 5, 6, 7, 16, 17,
                                                     18, 19, 20, 21, 22, 23));
#endif
        }
    }
}

/* gemm<full vectors, paired halves, tiles> */
#if SIMD_W == 16
static void gemm_pairs_g8(const gemm_args *a) { gemm(a, 0, 2, 8); }      /* 9-16 outputs */
static void gemm_pairs_half_g8(const gemm_args *a) { gemm(a, 0, 1, 8); } /* 1-8 */
static void gemm2_g8(const gemm_args *a) { gemm(a, 2, 0, 8); }
static void gemm2p_g8(const gemm_args *a) { gemm(a, 1, 1, 8); }
static void gemm2_g4(const gemm_args *a) { gemm(a, 2, 0, 4); }
static void gemm2p_g4(const gemm_args *a) { gemm(a, 1, 1, 4); }
static void gemm3_g4(const gemm_args *a) { gemm(a, 3, 0, 4); }
static void gemm3p_g4(const gemm_args *a) { gemm(a, 2, 1, 4); }
static void gemm4_g4(const gemm_args *a) { gemm(a, 4, 0, 4); }
static void gemm4p_g4(const gemm_args *a) { gemm(a, 3, 1, 4); }
static void gemm5_g4(const gemm_args *a) { gemm(a, 5, 0, 4); }
static void gemm5p_g4(const gemm_args *a) { gemm(a, 4, 1, 4); }

/* Every output vector of one group: four at a time, the last 1-5 in one
 * call, the last paired (paired_last) or not: a value of v broadcast once
 * serves every vector of a call. */
static void gemm_group(const wino_conv *c, gemm_args *ga, int G) {
    int left = ga->coutp / 16, done = 0; /* vectors left, done */
    const int paired = paired_last(c->d.cout, SIMD_W);
    if (G == 8 && left == 2)
        (paired ? gemm2p_g8 : gemm2_g8)(ga);
    else if (G == 8)
        (c->d.cout <= 8 ? gemm_pairs_half_g8 : gemm_pairs_g8)(ga);
    else {
        for (; left > 5 || left == 4; left -= 4, done += 4, ga->o = done * 16)
            (paired && left == 4 ? gemm4p_g4 : gemm4_g4)(ga);
        if (left == 5) (paired ? gemm5p_g4 : gemm5_g4)(ga);
        if (left == 3) (paired ? gemm3p_g4 : gemm3_g4)(ga);
        if (left == 2) (paired ? gemm2p_g4 : gemm2_g4)(ga);
    }
}
#else
static void gemm2_g6(const gemm_args *a) { gemm(a, 2, 0, 6); }

/* Every output vector of one group, a block (two vectors) a call: 12 sums,
 * 2 weights and a broadcast in 16 registers. */
static void gemm_group(const wino_conv *c, gemm_args *ga, int G) {
    (void)c, (void)G;
    for (ga->o = 0; ga->o < ga->coutp; ga->o += 16)
        gemm2_g6(ga);
}
#endif

/* The 6-point output transform A^T x, 4 values. */
WINO_INLINE void out_1d(const vf x[6], vf *o0, vf *o1, vf *o2, vf *o3) {
    const vf s12 = vadd(x[1], x[2]), d12 = vsub(x[1], x[2]);
    const vf s34 = vadd(x[3], x[4]), d34 = vsub(x[3], x[4]);
    *o0 = vadd(vadd(x[0], s12), s34);
    *o1 = vfma(vset1(2.0f), d34, d12);
    *o2 = vfma(vset1(4.0f), s34, s12);
    *o3 = vadd(vfma(vset1(8.0f), d34, d12), x[5]);
}

/* Where one block of output channels of one image goes: y (its pixel
 * (0, 0)), ystride floats from row to row, the conv's h x w output, and
 * the block's biasmap (its (h, w, 16), or NULL); with edge_only that is a
 * map of c->edge, zero but at the border pixels. */
typedef struct out_block {
    float *y;
    size_t ystride;
    const float *bm;
    int h, w, edge_only;
} out_block;

/* Bias b, biasmap (when bm), residual and ReLU on value o of output pixel
 * (r, c). */
static inline vf epilogue(vf o, vf b, const out_block *ob, int bm, int sum, int relu, int r,
                          int c) {
    vf e = vadd(o, b);
    if (bm) e = vadd(e, vload(ob->bm + ((size_t)r * ob->w + c) * 16));
    if (sum) e = vadd(e, vloadu(ob->y + (size_t)r * ob->ystride + c * 16));
    return relu ? vmax(e, vzero()) : e;
}

/* The output transform of one tile and one block of 16 output channels:
 * m[p * mstride] for the 36 points to the 4x4 pixels from (r0, c0) that lie
 * inside the output, with the bias, the biasmap, with sum what y holds there
 * and the ReLU; with pool, the 2x2 maxima of those pixels instead (the 4x4
 * tile holds whole 2x2 windows: r0 and c0 are multiples of 4). */
static void output_tile(const float *m, size_t mstride, const float *bias, const out_block *ob,
                        int sum, int relu, int pool, int r0, int c0) {
    vf t[4][6];
    for (int j = 0; j < 6; j++) { /* columns: A^T M */
        const float *mp = m + (size_t)j * mstride;
        const vf x[6] = {vload(mp),
                         vload(mp + 6 * mstride),
                         vload(mp + 12 * mstride),
                         vload(mp + 18 * mstride),
                         vload(mp + 24 * mstride),
                         vload(mp + 30 * mstride)};
        out_1d(x, &t[0][j], &t[1][j], &t[2][j], &t[3][j]);
    }
    const vf b = vload(bias);
    if (!pool) {
        /* The map at every pixel, or at the border ones: rows 0 and h - 1
         * whole, columns first and last (j0 and j1 within the tile). */
        const int h = ob->h, w = ob->w, map = ob->bm != NULL, all = map && !ob->edge_only;
        const int j0 = map && c0 == 0 ? 0 : -1, j1 = map ? w - 1 - c0 : -1;
        for (int i = 0; i < 4 && r0 + i < h; i++) { /* rows: (A^T M) A */
            vf o[4];
            out_1d(t[i], &o[0], &o[1], &o[2], &o[3]);
            const int row = all || (map && (r0 + i == 0 || r0 + i == h - 1));
            for (int j = 0; j < 4 && c0 + j < w; j++)
                vstoreu(
                    ob->y + (size_t)(r0 + i) * ob->ystride + (c0 + j) * 16,
                    epilogue(o[j], b, ob, row || j == j0 || j == j1, sum, relu, r0 + i, c0 + j));
        }
        return;
    }
    const int h = ob->h, w = ob->w, ph = h / 2, pw = w / 2; /* pw, ph: the pooled output */
    const int all = ob->bm && !ob->edge_only;
    for (int i = 0; i < 4 && (r0 + i) / 2 < ph; i += 2) {
        vf o[4], u[4];
        out_1d(t[i], &o[0], &o[1], &o[2], &o[3]);
        out_1d(t[i + 1], &u[0], &u[1], &u[2], &u[3]);
        for (int j = 0; j < 4 && (c0 + j) / 2 < pw; j += 2) {
            /* The map at the window's 4 pixels (at every window, or at
             * those with a pixel on the border); the bias and the ReLU
             * commute with the maximum (a map, different per pixel, does
             * not): added once, after it. */
            if (all || (ob->bm && (r0 + i == 0 || r0 + i + 1 == h - 1 || c0 + j == 0 ||
                                   c0 + j + 1 == w - 1))) {
                const float *bm = ob->bm + ((size_t)(r0 + i) * w + c0 + j) * 16;
                const size_t down = (size_t)w * 16;
                o[j] = vadd(o[j], vload(bm));
                o[j + 1] = vadd(o[j + 1], vload(bm + 16));
                u[j] = vadd(u[j], vload(bm + down));
                u[j + 1] = vadd(u[j + 1], vload(bm + down + 16));
            }
            vf r = vadd(vmax(vmax(o[j], o[j + 1]), vmax(u[j], u[j + 1])), b);
            if (relu) r = vmax(r, vzero());
            vstoreu(ob->y + (size_t)((r0 + i) / 2) * ob->ystride + (c0 + j) / 2 * 16, r);
        }
    }
}

/* Pixel (r, c) of the block at `block` laid out as p (r and c may be -1 in
 * padded planes: the border), narrow or not. */
static const float *pixel(const float *block, block_planes p, int r, int c) {
    return block + p.origin + (ptrdiff_t)r * (ptrdiff_t)p.stride + (ptrdiff_t)c * (ptrdiff_t)p.step;
}

/* Tile g of a batch whose images have th x tw tiles: its image and the
 * top-left output pixel (r0, c0) of its 4x4 pixels. */
static void tile_origin(int g, int th, int tw, int *img, int *r0, int *c0) {
    int r = g % (th * tw);
    *img = g / (th * tw);
    *r0 = r / tw * 4;
    *c0 = r % tw * 4;
}

/* Groups [first, last) of the n images' tiles. */
static void wino_forward(const wino_conv *c, int n, const float *x, float *y, void *scratch,
                         int first, int last) {
    const int h = c->d.h, w = c->d.w, cin = c->d.cin;
    const int cinp = round16(cin), coutp = round16(c->d.cout);
    const int th = (h + 3) / 4, tw = (w + 3) / 4;
    const int G = group_size(c);
    const int tiles = n * th * tw < last * G ? n * th * tw : last * G;
    /* The input's planes, and the output's (h x w or pooled), either of
     * them padded or not. */
    const block_planes in = planes_of(h, w, c->d.in_padded);
    const block_planes out =
        planes_of(c->d.pool ? h / 2 : h, c->d.pool ? w / 2 : w, c->d.out_padded);
    const size_t plane = (size_t)h * w * 16; /* the biasmap's */
    float *v = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *m = v + (size_t)36 * (WINO_GROUP_MAX * cinp + WINO_SKEW);
    float *patch = m + (size_t)36 * WINO_GROUP_MAX * coutp; /* 6 x 6 x 16 */
    /* v, per point: the group's tiles one after the other, c16 floats each
     * (their 16-channel blocks), then a last block of at most 8 real
     * channels, if any, 8 floats per tile (two tiles' in one vector). */
    const int c16 = block_channels(cin);
    const size_t vpoint = (size_t)G * c16 + (c16 < cin ? (size_t)G * 8 : 0) + WINO_SKEW;
    /* Such a last block in padded planes is transformed two tiles at a
     * time, after the other blocks. */
    const int pair_tail = c->d.in_padded && c16 < cin;
    /* That block's planes: narrow, or as the others. */
    const block_planes tail = pair_tail && c->d.in_narrow ? planes_narrow(in) : in;
    for (int g0 = first * G; g0 < tiles; g0 += G) {
        int count = tiles - g0 < G ? tiles - g0 : G;
        for (int t = 0; t < G; t++) {
            if (t >= count) { /* the last group: tiles that are not there */
                for (int p = 0; p < 36; p++) {
                    float *vp = v + (size_t)p * vpoint;
                    memset(vp + (size_t)t * c16, 0, (size_t)c16 * sizeof(float));
                    if (c16 < cin) memset(vp + (size_t)c16 * G + t * 8, 0, 8 * sizeof(float));
                }
                continue;
            }
            int img, r0, c0;
            tile_origin(g0 + t, th, tw, &img, &r0, &c0);
            /* The 6x6 patch from (r0 - 1, c0 - 1): in place when inside the
             * image or its padded plane, else copied with its zero padding
             * into patch. */
            int inside = c->d.in_padded || (r0 >= 1 && c0 >= 1 && r0 + 5 <= h && c0 + 5 <= w);
            for (int cb = 0; cb < cinp / 16 - pair_tail; cb++) {
                const float *xb = x + ((size_t)img * (cinp / 16) + cb) * in.plane, *at = patch;
                size_t stride = 6 * 16;
                if (inside) {
                    at = pixel(xb, in, r0 - 1, c0 - 1);
                    stride = in.stride;
                } else {
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int r = r0 - 1 + i, col = c0 - 1 + j,
                                there = r >= 0 && r < h && col >= 0 && col < w;
                            for (int s = 0; s < 16; s += SIMD_W)
                                vstore(patch + (i * 6 + j) * 16 + s,
                                       there ? vloadu(pixel(xb, in, r, col) + s) : vzero());
                        }
                }
                if (cb * 16 < c16)
                    input_tile(at, stride, v + (size_t)t * c16 + cb * 16, vpoint);
                else
                    input_tile8(at, NULL, stride, v + (size_t)c16 * G + t * 8, vpoint);
            }
        }
        for (int t = 0; pair_tail && t < count; t += 2) {
            const float *at[2];
            for (int k = 0; k < 2; k++) {
                int img, r0, c0;
                tile_origin(g0 + (t + k < count ? t + k : t), th, tw, &img, &r0,
                            &c0); /* an odd last tile: itself */
                at[k] = pixel(x + ((size_t)img * (cinp / 16) + cinp / 16 - 1) * in.plane, tail,
                              r0 - 1, c0 - 1);
            }
            float *vt = v + (size_t)c16 * G + t * 8;
            if (t + 1 < count)
                (tail.step == 8 ? input_pair8_narrow : input_pair8)(at[0], at[1], tail.stride, vt,
                                                                    vpoint);
            else
                (tail.step == 8 ? input_tile8_narrow : input_tile8)(at[0], NULL, tail.stride, vt,
                                                                    vpoint);
        }
        gemm_args ga = {v, vpoint, c16, c->u, cin, coutp, 0, m};
        gemm_group(c, &ga, G);
        for (int t = 0; t < count; t++) {
            int img, r0, c0;
            tile_origin(g0 + t, th, tw, &img, &r0, &c0);
            /* With c->inner, the biasmap is a bias away from the border,
             * and a tile there needs no map at all. */
            int inside = r0 >= 1 && c0 >= 1 && r0 + 3 <= h - 2 && c0 + 3 <= w - 2;
            const float *map = c->inner ? (inside ? NULL : c->edge) : c->biasmap;
            for (int b = 0; b < coutp / 16; b++)
                for (int s = 0; s < 16; s += SIMD_W) { /* the block's vectors */
                    out_block ob = {y + ((size_t)img * (coutp / 16) + b) * out.plane + out.origin +
                                        s,
                                    out.stride,
                                    map ? map + b * plane + s : NULL,
                                    h,
                                    w,
                                    c->inner != NULL};
                    output_tile(m + (size_t)t * 36 * coutp + b * 16 + s, (size_t)coutp,
                                (c->inner ? c->inner : c->bias) + b * 16 + s, &ob, c->d.sum,
                                c->d.relu, c->d.pool, r0, c0);
                }
        }
    }
}

#endif
