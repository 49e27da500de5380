/* Our stem conv's compute (stem.c), written once for SIMD_W lanes
 * (kernels/simd.h) and built per target (kernels/isa_<target>.c).
 *
 * Output channels are the vector lanes. A run of STEM_RUN pixels of one
 * output row keeps its sums in registers while the 9 x cin taps stream
 * past, each tap's input pixel broadcast once for all its vectors: with 16
 * lanes (32 registers) two blocks of 16 channels at a time, 7 pixels (14
 * sums, 2 weights, 1 input); with 8 lanes (16 registers) one block, as two
 * vectors, 6 pixels (12, 2, 1). A last block of at most 8 real channels
 * takes one 8-lane vector. The input is first copied into a zero-bordered
 * plane per channel (stem_pad_row), so no pixel needs a border test. */
#ifndef SLIM_KERNELS_STEM_SIMD_H
#define SLIM_KERNELS_STEM_SIMD_H

#include <stdint.h>

#include "kernels/own_impl.h"
#include "kernels/simd.h"

#if SIMD_W == 16
#define STEM_RUN 7
#define STEM_PAIRS 1 /* runs take two blocks */
#else
#define STEM_RUN 6
#define STEM_PAIRS 0
#endif
_Static_assert(STEM_RUN <= STEM_RUN_MAX, "the padded rows hold a run");

/* Where one run's results go: STEM_RUN pixels from y (16 floats apart, or
 * 8 in a narrow block) of which the first `valid` are inside the row, the
 * matching biasmap pixels (or NULL), and the epilogue's switches. */
typedef struct run_out {
    float *y;
    const float *bm;
    int valid, sum, relu;
} run_out;

/* Biasmap, residual (both only when EXTRA: testing for them costs the
 * plain case dearly) and ReLU on one pixel's N vectors v of type VT (P:
 * the name prefix of its operations, kernels/simd.h), stored at pixel p of
 * o, STEP floats apart; a block of 8 channels in 16-float pixels gets
 * zeros in the other 8. */
#define STEM_STORE(VT, P, N, v, o, p, STEP, EXTRA)                                                 \
    do {                                                                                           \
        enum { L_ = sizeof(VT) / 4 };                                                              \
        float *y_ = (o)->y + (size_t)(p) * (STEP);                                                 \
        for (int q_ = 0; q_ < (N); q_++) {                                                         \
            VT r_ = (v)[q_];                                                                       \
            if (EXTRA && (o)->bm) r_ += P##loadu((o)->bm + (size_t)(p)*16 + q_ * L_);              \
            if (EXTRA && (o)->sum) r_ += P##loadu(y_ + q_ * L_);                                   \
            if ((o)->relu) r_ = P##relu(r_);                                                       \
            P##storeu(y_ + q_ * L_, r_);                                                           \
        }                                                                                          \
        if ((N)*L_ == 8 && (STEP) == 16) v8storeu(y_ + 8, v8zero());                               \
    } while (0)

/* One run for the block of channels o (NA vectors of type VA, prefix PA:
 * 16 or 8 channels, output STEPA floats a pixel) and, with NB >= 1, the
 * block o + 16 (NB of VB, PB, STEPB; XB(x): the input broadcast as VB from
 * x, VA's). in: the run's top-left input pixel in the padded planes. A
 * function of its own: GCC's choices move with the code around it, and
 * inlined, runs ran measurably slower. */
#define STEM_RUN_FN(NAME, VA, PA, NA, STEPA, VB, PB, NB, STEPB, XB, EXTRA)                         \
    static __attribute__((noinline)) void NAME(const stem_conv *c, const float *in, int o,         \
                                               const run_out *oa, const run_out *ob) {             \
        enum { LA = sizeof(VA) / 4, LB = sizeof(VB) / 4, NBX = (NB) ? (NB) : 1 };                  \
        const size_t row = stem_pad_row(c), plane = stem_pad_plane(c);                             \
        const size_t coutp = (size_t)round16(c->d.cout);                                           \
        VA a[STEM_RUN][NA];                                                                        \
        VB b[STEM_RUN][NBX];                                                                       \
        _Pragma("GCC unroll 2") for (int q = 0; q < (NA); q++) {                                   \
            const VA bias = PA##loadu(c->bias + o + q * LA);                                       \
            _Pragma("GCC unroll 8") for (int p = 0; p < STEM_RUN; p++) a[p][q] = bias;             \
        }                                                                                          \
        _Pragma("GCC unroll 2") for (int q = 0; q < (NB); q++) {                                   \
            const VB bias = PB##loadu(c->bias + o + 16 + q * LB);                                  \
            _Pragma("GCC unroll 8") for (int p = 0; p < STEM_RUN; p++) b[p][q] = bias;             \
        }                                                                                          \
        const float *wp = c->wt + o;                                                               \
        /* (taps one at a time: unrolled, their loads and broadcasts spill) */                     \
        _Pragma("GCC unroll 1") for (int ci = 0; ci < c->d.cin; ci++)                              \
            _Pragma("GCC unroll 1") for (int ky = 0; ky < 3; ky++)                                 \
                _Pragma("GCC unroll 1") for (int kx = 0; kx < 3; kx++, wp += coutp) {              \
            const float *ip = in + ci * plane + ky * row + kx;                                     \
            VA wa[NA];                                                                             \
            VB wb[NBX];                                                                            \
            _Pragma("GCC unroll 2") for (int q = 0; q < (NA); q++) wa[q] = PA##loadu(wp + q * LA); \
            _Pragma("GCC unroll 2") for (int q = 0; q < (NB); q++) wb[q] =                         \
                PB##loadu(wp + 16 + q * LB);                                                       \
            _Pragma("GCC unroll 8") for (int p = 0; p < STEM_RUN; p++) {                           \
                const VA x = PA##set1(ip[p]);                                                      \
                _Pragma("GCC unroll 2") for (int q = 0; q < (NA); q++) a[p][q] =                   \
                    PA##fma(x, wa[q], a[p][q]);                                                    \
                _Pragma("GCC unroll 2") for (int q = 0; q < (NB); q++) b[p][q] =                   \
                    PB##fma(XB(x), wb[q], b[p][q]);                                                \
            }                                                                                      \
        }                                                                                          \
        /* (unrolled: a[p] by a constant p keeps the sums out of memory) */                        \
        _Pragma("GCC unroll 8") for (int p = 0; p < STEM_RUN; p++) {                               \
            if (p >= oa->valid) break;                                                             \
            STEM_STORE(VA, PA, NA, a[p], oa, p, STEPA, EXTRA);                                     \
            if (NB) STEM_STORE(VB, PB, NB, b[p], ob, p, STEPB, EXTRA);                             \
        }                                                                                          \
    }

#define STEM_SAME(x) (x)
#if SIMD_W == 16
#define STEM_LOW8(x) __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7)
#else
#define STEM_LOW8(x) (x)
#endif

/* run_A[_B][_extra]: A, B the lanes of a block (16, 8, 8n: 8 in a narrow
 * block); extra: with biasmap and residual. */
#if STEM_PAIRS
STEM_RUN_FN(run_16_16, vf, v, 1, 16, vf, v, 1, 16, STEM_SAME, 0)
STEM_RUN_FN(run_16_8, vf, v, 1, 16, v8, v8, 1, 16, STEM_LOW8, 0)
STEM_RUN_FN(run_16_8n, vf, v, 1, 16, v8, v8, 1, 8, STEM_LOW8, 0)
STEM_RUN_FN(run_16_16_extra, vf, v, 1, 16, vf, v, 1, 16, STEM_SAME, 1)
STEM_RUN_FN(run_16_8_extra, vf, v, 1, 16, v8, v8, 1, 16, STEM_LOW8, 1)
STEM_RUN_FN(run_16_8n_extra, vf, v, 1, 16, v8, v8, 1, 8, STEM_LOW8, 1)
#endif
STEM_RUN_FN(run_16, vf, v, 16 / SIMD_W, 16, v8, v8, 0, 16, STEM_LOW8, 0)
STEM_RUN_FN(run_8, v8, v8, 1, 16, v8, v8, 0, 16, STEM_SAME, 0)
STEM_RUN_FN(run_8n, v8, v8, 1, 8, v8, v8, 0, 16, STEM_SAME, 0)
STEM_RUN_FN(run_16_extra, vf, v, 16 / SIMD_W, 16, v8, v8, 0, 16, STEM_LOW8, 1)
STEM_RUN_FN(run_8_extra, v8, v8, 1, 16, v8, v8, 0, 16, STEM_SAME, 1)
STEM_RUN_FN(run_8n_extra, v8, v8, 1, 8, v8, v8, 0, 16, STEM_SAME, 1)

typedef void (*stem_run_fn)(const stem_conv *, const float *, int, const run_out *,
                            const run_out *);

/* Copies image x (cin planes of h x w) into the padded planes at pad, whose
 * borders are already zero. */
static void stem_pad_image(const stem_conv *c, const float *x, float *pad) {
    size_t row = stem_pad_row(c), plane = stem_pad_plane(c);
    for (int ci = 0; ci < c->d.cin; ci++)
        for (int r = 0; r < c->d.h; r++)
            memcpy(pad + ci * plane + (size_t)(r + 1) * row + 1,
                   x + ((size_t)ci * c->d.h + r) * c->d.w, (size_t)c->d.w * sizeof(float));
}

/* Output rows [first, last) of the n images' n x h rows. */
static void stem_forward(const stem_conv *c, const float *x, float *y, void *scratch, int first,
                         int last) {
    const int h = c->d.h, w = c->d.w, blocks = round16(c->d.cout) / 16;
    const int half = c->d.cout - (blocks - 1) * 16 <= 8; /* the last block takes 8 lanes */
    const size_t plane = (size_t)h * w * 16, row = stem_pad_row(c); /* plane: the biasmap's */
    const block_planes out = planes_of(h, w, c->d.out_padded);      /* padded or not */
    /* The last block's: narrow, or as the others. */
    const block_planes last_out = half && c->d.out_narrow ? planes_narrow(out) : out;
    const int narrow = last_out.step == 8, extra = c->biasmap || c->d.sum;
    float *pad = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    memset(pad, 0, (size_t)c->d.cin * stem_pad_plane(c) * sizeof(float));
    /* The runs of a lone block: a whole one, and a last one of 8 lanes. */
    const stem_run_fn one = extra ? run_16_extra : run_16;
    const stem_run_fn last8 =
        extra ? (narrow ? run_8n_extra : run_8_extra) : (narrow ? run_8n : run_8);
    int img_in_pad = -1;
    for (int item = first; item < last; item++) {
        int img = item / h, r = item % h;
        if (img != img_in_pad) {
            stem_pad_image(c, x + (size_t)img * c->d.cin * h * w, pad);
            img_in_pad = img;
        }
        for (int x0 = 0; x0 < w; x0 += STEM_RUN) {
            const float *in = pad + (size_t)r * row + x0;
            size_t at = ((size_t)r * w + x0) * 16,
                   oat = out.origin + r * out.stride + (size_t)x0 * 16;
            int valid = w - x0 < STEM_RUN ? w - x0 : STEM_RUN;
            /* A narrow last block's run (it has 8 lanes: half). */
            float *narrow_y = y + ((size_t)img * blocks + blocks - 1) * out.plane +
                              last_out.origin + r * last_out.stride + (size_t)x0 * last_out.step;
            for (int b = 0; b < blocks;) {
                float *yb = y + ((size_t)img * blocks + b) * out.plane + oat;
                const float *bm = c->biasmap ? c->biasmap + (size_t)b * plane + at : NULL;
                run_out oa = {narrow && b + 1 == blocks ? narrow_y : yb, bm, valid, c->d.sum,
                              c->d.relu};
#if STEM_PAIRS
                if (b + 1 < blocks) {
                    run_out ob = {narrow && b + 2 == blocks ? narrow_y : yb + out.plane,
                                  bm ? bm + plane : NULL, valid, c->d.sum, c->d.relu};
                    int h8 = half && b + 2 == blocks;
                    if (extra)
                        (h8 ? (narrow ? run_16_8n_extra : run_16_8_extra)
                            : run_16_16_extra)(c, in, b * 16, &oa, &ob);
                    else if (h8)
                        (narrow ? run_16_8n : run_16_8)(c, in, b * 16, &oa, &ob);
                    else
                        run_16_16(c, in, b * 16, &oa, &ob);
                    b += 2;
                    continue;
                }
#endif
                (half && b + 1 == blocks ? last8 : one)(c, in, b * 16, &oa, NULL);
                b++;
            }
        }
    }
}

#endif
