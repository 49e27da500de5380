/* Our Winograd's compute (wino.c) for AVX-512F/VL. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/own_impl.h"

#define WINO_TARGET __attribute__((target("avx512f,avx512vl,fma")))

/* The input transform, unlike the rest, is built by macros: one body
 * serves 16 lanes (__m512, _mm512_*) and 8 (__m256, _mm256_*), which C
 * functions could only do by writing it twice.
 *
 * B^T x of one row or column of 6 points: the first three outputs
 * (WINO_IN_LO) or the last three (WINO_IN_HI), on vectors of type VT with
 * intrinsics P##_add_ps etc. */
#define WINO_IN_LO(VT, P, x0, x1, x2, x3, x4, t0, t1, t2)                                          \
    do {                                                                                           \
        VT four = P##_set1_ps(4.0f);                                                               \
        t0 = P##_fmadd_ps(four, P##_sub_ps(x0, x2), P##_sub_ps(x4, x2)); /* 4x0 - 5x2 + x4 */      \
        t1 = P##_fnmadd_ps(four, P##_add_ps(x1, x2), P##_add_ps(x3, x4));                          \
        t2 = P##_fmadd_ps(four, P##_sub_ps(x1, x2), P##_sub_ps(x4, x3));                           \
    } while (0)
#define WINO_IN_HI(VT, P, x1, x2, x3, x4, x5, t3, t4, t5)                                          \
    do {                                                                                           \
        VT d42 = P##_sub_ps(x4, x2), d31 = P##_sub_ps(x3, x1);                                     \
        t3 = P##_fmadd_ps(P##_set1_ps(2.0f), d31, d42);                                            \
        t4 = P##_fnmadd_ps(P##_set1_ps(2.0f), d31, d42);                                           \
        t5 = P##_fnmadd_ps(P##_set1_ps(4.0f), d31, P##_sub_ps(x5, x3)); /* 4x1 - 5x3 + x5 */       \
    } while (0)

/* The input transform of one tile and one block of channels: the 6x6 patch
 * at x (rows `stride` floats apart, pixels STEP: 16, or 8 in a narrow
 * block), to v[p * vstride] for the 36 points p. The 16-lane version
 * transforms a whole block; the 8-lane one its first 8 channels (a last
 * block with no more real ones); the pair version the first 8 channels of
 * two tiles at once, patches at x and x2, one in each half of the 16-lane
 * vectors (half the operations and stores of two 8-lane ones where 8-lane
 * operations cost what 16-lane ones do).
 *
 * B^T d B in two halves, rows 0-2 of the result and then rows 3-5, each
 * reading the patch again: a half's 18 intermediate vectors stay in
 * registers, where all 36 would spill (the loads hit the cache; stores and
 * spills are what this step waits on).
 *
 * LD(j, r, STEP): the patch's pixel at column j, row r. */
#define WINO_LD16(j, r, STEP) _mm512_loadu_ps(x + (size_t)(j) * (STEP) + (size_t)(r)*stride)
#define WINO_LD8(j, r, STEP) _mm256_loadu_ps(x + (size_t)(j) * (STEP) + (size_t)(r)*stride)
#define WINO_LD_PAIR(j, r, STEP)                                                                   \
    _mm512_castpd_ps(_mm512_insertf64x4(                                                           \
        _mm512_castps_pd(_mm512_castps256_ps512(WINO_LD8(j, r, STEP))),                            \
        _mm256_castps_pd(_mm256_loadu_ps(x2 + (size_t)(j) * (STEP) + (size_t)(r)*stride)), 1))
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
        P##_store_ps(vp, o0);                                                                      \
        P##_store_ps(vp + vstride, o1);                                                            \
        P##_store_ps(vp + 2 * vstride, o2);                                                        \
        P##_store_ps(vp + 3 * vstride, o3);                                                        \
        P##_store_ps(vp + 4 * vstride, o4);                                                        \
        P##_store_ps(vp + 5 * vstride, o5);                                                        \
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
#define WINO_INPUT_TILE(NAME, VT, P, LD, STEP)                                                     \
    WINO_TARGET static void NAME(const float *x, size_t stride, float *v, size_t vstride) {        \
        WINO_HALF(VT, P, LD, STEP, LO, 0);                                                         \
        WINO_HALF(VT, P, LD, STEP, HI, 3);                                                         \
    }
#define WINO_INPUT_PAIR(NAME, STEP)                                                                \
    WINO_TARGET static void NAME(const float *x, const float *x2, size_t stride, float *v,         \
                                 size_t vstride) {                                                 \
        WINO_HALF(__m512, _mm512, WINO_LD_PAIR, STEP, LO, 0);                                      \
        WINO_HALF(__m512, _mm512, WINO_LD_PAIR, STEP, HI, 3);                                      \
    }

WINO_INPUT_TILE(input_tile, __m512, _mm512, WINO_LD16, 16)
WINO_INPUT_TILE(input_tile8, __m256, _mm256, WINO_LD8, 16)
WINO_INPUT_TILE(input_tile8_narrow, __m256, _mm256, WINO_LD8, 8)
WINO_INPUT_PAIR(input_pair8, 16)
WINO_INPUT_PAIR(input_pair8_narrow, 8)

/* The 36 GEMMs of one group of g tiles for 1-5 vectors of output channels
 * from o: m[t][p][o..] (coutp floats per point) = sum_c v[p][t][c]
 * u[p][c][o..]. Each value of v read serves a multiply per vector (the
 * vectors x g sums, the weights and the broadcast within the 32 vector
 * registers).
 *
 * The last vector may be paired (paired_last): it takes two input channels
 * per step. A lone vector of output channels would otherwise need a
 * broadcast of v per multiply-add, and the broadcasts, not the
 * multiply-adds, would set the pace; a last vector of at most 8 real
 * channels would spend a multiply-add per input channel on mostly zeros.
 * Paired, a 64-bit broadcast carries channels c and c + 1 of a tile,
 * alternating across the lanes, into one multiply-add per 8 outputs (each
 * output in two lanes: its weight for c in the even one, for c + 1 in the
 * odd one), and each tile's two lanes are added at the end. A last channel
 * of an odd count goes alone, against weights whose odd lanes are zero: the
 * next value of v may be anything (NaN in padding), so it is never read.
 *
 * gemm is specialised by its constant arguments (full, pv, g) into the 12
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

WINO_TARGET WINO_INLINE __m512 broadcast_pair(const float *x) {
    double d;
    memcpy(&d, x, sizeof d);
    return _mm512_castpd_ps(_mm512_set1_pd(d));
}

/* Input channel c (and c + 1 with pair) into the sums a of g tiles: full
 * plain vectors, then pv paired ones (a[t][full..], 0-2 halves of 8
 * outputs). up: the point's weights; xs: tile 0's value of channel c in v,
 * each next tile's ts floats on. */
WINO_TARGET WINO_INLINE void gemm_step(__m512 a[][WINO_VECS_MAX], const float *up, int coutp, int c,
                                       const float *xs, size_t ts, int full, int pv, int g,
                                       int pair) {
    const float *uc = up + (size_t)c * coutp;
    __m512 w[WINO_VECS_MAX], w2[WINO_VECS_MAX], wp[2];
    for (int k = 0; k < full; k++) {
        w[k] = _mm512_load_ps(uc + 16 * k);
        if (pair) w2[k] = _mm512_load_ps(uc + coutp + 16 * k);
    }
    for (int k = 0; k < pv; k++)
        wp[k] = _mm512_load_ps(uc + (size_t)k * coutp + 16 * full);
    for (int t = 0; t < g; t++) {
        const float *xt = xs + (size_t)t * ts;
        const __m512 x1 = _mm512_set1_ps(xt[0]);
        for (int k = 0; k < full; k++)
            a[t][k] = _mm512_fmadd_ps(x1, w[k], a[t][k]);
        if (pair) {
            const __m512 x2 = _mm512_set1_ps(xt[1]);
            for (int k = 0; k < full; k++)
                a[t][k] = _mm512_fmadd_ps(x2, w2[k], a[t][k]);
        }
        const __m512 xp = pair ? broadcast_pair(xt) : x1;
        for (int k = 0; k < pv; k++)
            a[t][full + k] = _mm512_fmadd_ps(xp, wp[k], a[t][full + k]);
    }
}

/* full plain vectors and pv (0-2) paired halves of 8 outputs, g tiles; with
 * pv 1 the paired vector's other 8 lanes of m are zeroed. */
WINO_TARGET WINO_INLINE void gemm(const gemm_args *args, int full, int pv, int g) {
    const float *v = args->v, *u = args->u;
    const size_t vpoint = args->vpoint;
    const int c16 = args->c16, cin = args->cin, coutp = args->coutp, o = args->o;
    float *m = args->m;
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const int blocked = cin < c16 ? cin : c16;
    for (int p = 0; p < 36; p++) {
        const float *vp = v + (size_t)p * vpoint, *vn = vp + (size_t)g * c16;
        const float *up = u + (size_t)p * even_cin(cin) * coutp + o;
        __m512 a[WINO_GROUP_MAX][WINO_VECS_MAX];
        for (int t = 0; t < g; t++)
            for (int k = 0; k < full + pv; k++)
                a[t][k] = _mm512_setzero_ps();
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
                _mm512_store_ps(mt + 16 * k, a[t][k]);
            if (pv == 0) continue;
            /* The paired halves: a[t][full] (outputs 0-7) and, with two,
             * a[t][full + 1] (8-15). */
            const __m512 lo = a[t][full], hi = a[t][full + pv - 1];
            const __m512 sum = _mm512_add_ps(_mm512_permutex2var_ps(lo, even, hi),
                                             _mm512_permutex2var_ps(lo, odd, hi));
            _mm512_store_ps(mt + 16 * full,
                            pv == 2 ? sum : _mm512_maskz_mov_ps((__mmask16)0x00ff, sum));
        }
    }
}

/* gemm<full vectors, paired halves, tiles> */
WINO_TARGET static void gemm_pairs_g8(const gemm_args *a) { gemm(a, 0, 2, 8); } /* 9-16 outputs */
WINO_TARGET static void gemm_pairs_half_g8(const gemm_args *a) { gemm(a, 0, 1, 8); } /* 1-8 */
WINO_TARGET static void gemm2_g8(const gemm_args *a) { gemm(a, 2, 0, 8); }
WINO_TARGET static void gemm2p_g8(const gemm_args *a) { gemm(a, 1, 1, 8); }
WINO_TARGET static void gemm2_g4(const gemm_args *a) { gemm(a, 2, 0, 4); }
WINO_TARGET static void gemm2p_g4(const gemm_args *a) { gemm(a, 1, 1, 4); }
WINO_TARGET static void gemm3_g4(const gemm_args *a) { gemm(a, 3, 0, 4); }
WINO_TARGET static void gemm3p_g4(const gemm_args *a) { gemm(a, 2, 1, 4); }
WINO_TARGET static void gemm4_g4(const gemm_args *a) { gemm(a, 4, 0, 4); }
WINO_TARGET static void gemm4p_g4(const gemm_args *a) { gemm(a, 3, 1, 4); }
WINO_TARGET static void gemm5_g4(const gemm_args *a) { gemm(a, 5, 0, 4); }
WINO_TARGET static void gemm5p_g4(const gemm_args *a) { gemm(a, 4, 1, 4); }

/* The 6-point output transform A^T x, 4 values. */
WINO_TARGET WINO_INLINE void out_1d(const __m512 x[6], __m512 *o0, __m512 *o1, __m512 *o2,
                                    __m512 *o3) {
    const __m512 s12 = _mm512_add_ps(x[1], x[2]), d12 = _mm512_sub_ps(x[1], x[2]);
    const __m512 s34 = _mm512_add_ps(x[3], x[4]), d34 = _mm512_sub_ps(x[3], x[4]);
    *o0 = _mm512_add_ps(_mm512_add_ps(x[0], s12), s34);
    *o1 = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
    *o2 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
    *o3 = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), x[5]);
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
WINO_TARGET static inline __m512 epilogue(__m512 o, __m512 b, const out_block *ob, int bm, int sum,
                                          int relu, int r, int c) {
    __m512 e = _mm512_add_ps(o, b);
    if (bm) e = _mm512_add_ps(e, _mm512_load_ps(ob->bm + ((size_t)r * ob->w + c) * 16));
    if (sum) e = _mm512_add_ps(e, _mm512_loadu_ps(ob->y + (size_t)r * ob->ystride + c * 16));
    return relu ? _mm512_max_ps(e, _mm512_setzero_ps()) : e;
}

/* The output transform of one tile and one block of 16 output channels:
 * m[p * mstride] for the 36 points to the 4x4 pixels from (r0, c0) that lie
 * inside the output, with the bias, the biasmap, with sum what y holds there
 * and the ReLU; with pool, the 2x2 maxima of those pixels instead (the 4x4
 * tile holds whole 2x2 windows: r0 and c0 are multiples of 4). */
WINO_TARGET static void output_tile(const float *m, size_t mstride, const float *bias,
                                    const out_block *ob, int sum, int relu, int pool, int r0,
                                    int c0) {
    __m512 t[4][6];
    for (int j = 0; j < 6; j++) { /* columns: A^T M */
        const float *mp = m + (size_t)j * mstride;
        const __m512 x[6] = {_mm512_load_ps(mp),
                             _mm512_load_ps(mp + 6 * mstride),
                             _mm512_load_ps(mp + 12 * mstride),
                             _mm512_load_ps(mp + 18 * mstride),
                             _mm512_load_ps(mp + 24 * mstride),
                             _mm512_load_ps(mp + 30 * mstride)};
        out_1d(x, &t[0][j], &t[1][j], &t[2][j], &t[3][j]);
    }
    const __m512 b = _mm512_load_ps(bias);
    if (!pool) {
        /* The map at every pixel, or at the border ones: rows 0 and h - 1
         * whole, columns first and last (j0 and j1 within the tile). */
        const int h = ob->h, w = ob->w, map = ob->bm != NULL, all = map && !ob->edge_only;
        const int j0 = map && c0 == 0 ? 0 : -1, j1 = map ? w - 1 - c0 : -1;
        for (int i = 0; i < 4 && r0 + i < h; i++) { /* rows: (A^T M) A */
            __m512 o[4];
            out_1d(t[i], &o[0], &o[1], &o[2], &o[3]);
            const int row = all || (map && (r0 + i == 0 || r0 + i == h - 1));
            for (int j = 0; j < 4 && c0 + j < w; j++)
                _mm512_storeu_ps(
                    ob->y + (size_t)(r0 + i) * ob->ystride + (c0 + j) * 16,
                    epilogue(o[j], b, ob, row || j == j0 || j == j1, sum, relu, r0 + i, c0 + j));
        }
        return;
    }
    const int h = ob->h, w = ob->w, ph = h / 2, pw = w / 2; /* pw, ph: the pooled output */
    const int all = ob->bm && !ob->edge_only;
    for (int i = 0; i < 4 && (r0 + i) / 2 < ph; i += 2) {
        __m512 o[4], u[4];
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
                o[j] = _mm512_add_ps(o[j], _mm512_load_ps(bm));
                o[j + 1] = _mm512_add_ps(o[j + 1], _mm512_load_ps(bm + 16));
                u[j] = _mm512_add_ps(u[j], _mm512_load_ps(bm + down));
                u[j + 1] = _mm512_add_ps(u[j + 1], _mm512_load_ps(bm + down + 16));
            }
            __m512 r = _mm512_add_ps(
                _mm512_max_ps(_mm512_max_ps(o[j], o[j + 1]), _mm512_max_ps(u[j], u[j + 1])), b);
            if (relu) r = _mm512_max_ps(r, _mm512_setzero_ps());
            _mm512_storeu_ps(ob->y + (size_t)((r0 + i) / 2) * ob->ystride + (c0 + j) / 2 * 16, r);
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
WINO_TARGET void wino_forward_avx512(const wino_conv *c, int n, const float *x, float *y,
                                     void *scratch, int first, int last) {
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
                            int r = r0 - 1 + i, col = c0 - 1 + j;
                            __m512 d = r >= 0 && r < h && col >= 0 && col < w
                                           ? _mm512_loadu_ps(pixel(xb, in, r, col))
                                           : _mm512_setzero_ps();
                            _mm512_store_ps(patch + (i * 6 + j) * 16, d);
                        }
                }
                if (cb * 16 < c16)
                    input_tile(at, stride, v + (size_t)t * c16 + cb * 16, vpoint);
                else
                    input_tile8(at, stride, v + (size_t)c16 * G + t * 8, vpoint);
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
                (tail.step == 8 ? input_tile8_narrow : input_tile8)(at[0], tail.stride, vt, vpoint);
        }
        /* Output vectors four at a time, the last 1-5 in one call, the
         * last paired (paired_last) or not: a value of v broadcast once
         * serves every vector of a call. */
        int left = coutp / 16, done = 0; /* vectors done */
        const int paired = paired_last(c->d.cout);
        gemm_args ga = {v, vpoint, c16, c->u, cin, coutp, 0, m};
        if (G == 8 && left == 2)
            (paired ? gemm2p_g8 : gemm2_g8)(&ga);
        else if (G == 8)
            (c->d.cout <= 8 ? gemm_pairs_half_g8 : gemm_pairs_g8)(&ga);
        else {
            for (; left > 5 || left == 4; left -= 4, done += 4, ga.o = done * 16)
                (paired && left == 4 ? gemm4p_g4 : gemm4_g4)(&ga);
            if (left == 5) (paired ? gemm5p_g4 : gemm5_g4)(&ga);
            if (left == 3) (paired ? gemm3p_g4 : gemm3_g4)(&ga);
            if (left == 2) (paired ? gemm2p_g4 : gemm2_g4)(&ga);
        }
        for (int t = 0; t < count; t++) {
            int img, r0, c0;
            tile_origin(g0 + t, th, tw, &img, &r0, &c0);
            /* With c->inner, the biasmap is a bias away from the border,
             * and a tile there needs no map at all. */
            int inside = r0 >= 1 && c0 >= 1 && r0 + 3 <= h - 2 && c0 + 3 <= w - 2;
            const float *map = c->inner ? (inside ? NULL : c->edge) : c->biasmap;
            for (int b = 0; b < coutp / 16; b++) {
                out_block ob = {y + ((size_t)img * (coutp / 16) + b) * out.plane + out.origin,
                                out.stride,
                                map ? map + b * plane : NULL,
                                h,
                                w,
                                c->inner != NULL};
                output_tile(m + (size_t)t * 36 * coutp + b * 16, (size_t)coutp,
                            (c->inner ? c->inner : c->bias) + b * 16, &ob, c->d.sum, c->d.relu,
                            c->d.pool, r0, c0);
            }
        }
    }
}
