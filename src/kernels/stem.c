/* Direct 3x3, stride 1, pad 1 convolution for inference on few input
 * channels (the first conv of an image network: 1 channel for
 * Fashion-MNIST, 3 for CIFAR), with bias and, each optional, a biasmap, a
 * residual sum and a fused ReLU.
 *   x: (n, cin, h, w) plain -> y: (n, ceil(cout/16), h, w, 16), or padded
 *   planes, the last block narrow or not (kernels/blocked.h)
 * Lifecycle: stem_create -> stem_scratch_bytes -> stem_run -> stem_destroy
 * (kernels/own.h).
 *
 * Why our own: with one input channel a conv is 9 multiply-adds per output
 * value, which Winograd cannot cut (its transforms cost more than that), and
 * oneDNN 2.6's direct kernel spends a whole 16-lane vector on a last block
 * of output channels however few of them are real. Here a last block of at
 * most 8 real channels takes 8-lane vectors, which cost half on CPUs that
 * split 16-lane operations in two.
 *
 * Layout of the work: output channels are the vector lanes, two blocks of
 * 16 at a time; a run of STEM_RUN pixels of one output row keeps its
 * 2 x STEM_RUN sums in registers while the 9 x cin taps stream past, each
 * tap's input pixel broadcast once for both blocks. The input is first
 * copied into a zero-bordered plane per channel, so no pixel needs a border
 * test. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/own.h"

#define STEM_RUN 7 /* pixels per run: 14 sums + 2 weights + 1 input in registers */
#define STEM_TARGET __attribute__((target("avx512f,avx512vl,fma")))
/* A pair's run as a function of its own: GCC's choice moves with the code
 * around it, and inlined into forward, run_16_16 ran measurably slower. */
#define STEM_RUN_FN __attribute__((noinline))

struct stem_conv {
    stem_desc d;    /* its pointers NULL */
    float *wt;      /* cin x 9 taps x round16(cout), zero beyond cout */
    float *bias;    /* round16(cout), zero beyond cout */
    float *biasmap; /* NULL or (round16(cout) / 16, h, w, 16), zero beyond cout */
};

/* The shape's and the settings' errors, or SLIM_OK. */
static slim_status check_desc(const stem_desc *d) {
    if (!d || !d->weights) return slim_error(SLIM_ERR_ARG, "stem conv: no weights");
    if (d->cin < 1 || d->cout < 1 || d->h < 1 || d->w < 1)
        return slim_error(SLIM_ERR_SHAPE,
                          "stem conv: %d -> %d channels at %dx%d is not a valid shape", d->cin,
                          d->cout, d->h, d->w);
    if (d->out_narrow && !d->out_padded)
        return slim_error(SLIM_ERR_ARG, "stem conv: a narrow output needs padded planes");
    if (d->out_narrow && (d->cout % 16 == 0 || d->cout % 16 > 8))
        return slim_error(SLIM_ERR_ARG,
                          "stem conv: a narrow output needs a last block of at most 8 channels, "
                          "not %d",
                          d->cout % 16 ? d->cout % 16 : 16);
    return SLIM_OK;
}

slim_status stem_create(const stem_desc *d, stem_conv **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "stem conv: no place for the kernel");
    *out = NULL;
    slim_status st = check_desc(d);
    if (st != SLIM_OK) return st;
    const int cin = d->cin, cout = d->cout, coutp = round16(cout);
    stem_conv *c = calloc(1, sizeof *c);
    if (c) c->wt = floats64((size_t)9 * cin * coutp);
    if (!c || !c->wt ||
        !blocked_bias_init(cout, d->h, d->w, d->bias, d->biasmap, &c->bias, &c->biasmap)) {
        stem_destroy(c);
        return slim_error(SLIM_ERR_NOMEM, "stem conv: no memory for %d x %d weights", cin, cout);
    }
    c->d = *d;
    c->d.weights = c->d.bias = c->d.biasmap = NULL;
    c->d.relu = d->relu != 0;
    c->d.sum = d->sum != 0;
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int k = 0; k < 9; k++)
                c->wt[((size_t)i * 9 + k) * coutp + o] = d->weights[((size_t)o * cin + i) * 9 + k];
    *out = c;
    return SLIM_OK;
}

void stem_destroy(stem_conv *c) {
    if (!c) return;
    free(c->wt);
    free(c->bias);
    free(c->biasmap);
    free(c);
}

const stem_desc *stem_settings(const stem_conv *c) { return &c->d; }

/* The zero-bordered copy of one image: cin planes of (h + 2) rows of
 * w + 2 + STEM_RUN floats (a run may read past the row's end; what it
 * computes there is not stored). */
static size_t pad_row(const stem_conv *c) { return (size_t)c->d.w + 2 + STEM_RUN; }
static size_t pad_plane(const stem_conv *c) { return (size_t)(c->d.h + 2) * pad_row(c); }

static size_t thread_scratch(const stem_conv *c) {
    return (size_t)c->d.cin * pad_plane(c) * sizeof(float) + 64;
}

size_t stem_scratch_bytes(const stem_conv *c, int threads) {
    return thread_scratch(c) * (size_t)(threads > 1 ? threads : 1);
}

/* Where one run's results go: STEM_RUN pixels from y (16 floats apart, or
 * 8 in a narrow block) of which the first `valid` are inside the row, the
 * matching biasmap pixels (or NULL), and the epilogue's switches. */
typedef struct run_out {
    float *y;
    const float *bm;
    int valid, sum, relu;
} run_out;

/* Biasmap, residual (both only when EXTRA: testing for them costs the
 * plain case dearly) and ReLU on one 16-lane result, stored. */
#define STEM_STORE16(r, o, p, EXTRA)                                                               \
    do {                                                                                           \
        __m512 v_ = (r);                                                                           \
        if (EXTRA && (o)->bm) v_ = _mm512_add_ps(v_, _mm512_loadu_ps((o)->bm + (p)*16));           \
        if (EXTRA && (o)->sum) v_ = _mm512_add_ps(v_, _mm512_loadu_ps((o)->y + (p)*16));           \
        if ((o)->relu) v_ = _mm512_max_ps(v_, _mm512_setzero_ps());                                \
        _mm512_storeu_ps((o)->y + (p)*16, v_);                                                     \
    } while (0)
/* The same for an 8-lane result: the block's other 8 lanes are zeros;
 * STEM_STORE8N for a narrow block (8 floats a pixel, no other lanes). */
#define STEM_STORE8_AT(r, o, p, EXTRA, STEP)                                                       \
    do {                                                                                           \
        __m256 v_ = (r);                                                                           \
        float *y_ = (o)->y + (size_t)(p) * (STEP);                                                 \
        if (EXTRA && (o)->bm) v_ = _mm256_add_ps(v_, _mm256_loadu_ps((o)->bm + (p)*16));           \
        if (EXTRA && (o)->sum) v_ = _mm256_add_ps(v_, _mm256_loadu_ps(y_));                        \
        if ((o)->relu) v_ = _mm256_max_ps(v_, _mm256_setzero_ps());                                \
        _mm256_storeu_ps(y_, v_);                                                                  \
        if ((STEP) == 16) _mm256_storeu_ps(y_ + 8, _mm256_setzero_ps());                           \
    } while (0)
#define STEM_STORE8(r, o, p, EXTRA) STEM_STORE8_AT(r, o, p, EXTRA, 16)
#define STEM_STORE8N(r, o, p, EXTRA) STEM_STORE8_AT(r, o, p, EXTRA, 8)

/* Tap k of pixel p: one broadcast of the input serves both blocks. */
#define STEM_TAP2(p, FMB)                                                                          \
    do {                                                                                           \
        __m512 x_ = _mm512_set1_ps(ip[p]);                                                         \
        a##p = _mm512_fmadd_ps(x_, wa, a##p);                                                      \
        b##p = FMB(x_, wb, b##p);                                                                  \
    } while (0)
#define STEM_FMB16(x, w, b) _mm512_fmadd_ps(x, w, b)
#define STEM_FMB8(x, w, b) _mm256_fmadd_ps(_mm512_castps512_ps256(x), w, b)

/* One run of STEM_RUN pixels for the blocks of channels o (16 lanes) and
 * o + 16 (VT2: 16 or 8 lanes): in is the run's top-left input pixel in the
 * padded planes, wt the weights, oa and ob the two blocks' outputs. */
#define STEM_RUN2(NAME, VT2, P2, FMB, STORE2, EXTRA)                                               \
    STEM_TARGET STEM_RUN_FN static void NAME(const stem_conv *c, const float *in, int o,           \
                                             const run_out *oa, const run_out *ob) {               \
        const size_t row = pad_row(c), plane = pad_plane(c), coutp = (size_t)round16(c->d.cout);   \
        const __m512 ba = _mm512_loadu_ps(c->bias + o);                                            \
        const VT2 bb = P2##_loadu_ps(c->bias + o + 16);                                            \
        __m512 a0 = ba, a1 = ba, a2 = ba, a3 = ba, a4 = ba, a5 = ba, a6 = ba;                      \
        VT2 b0 = bb, b1 = bb, b2 = bb, b3 = bb, b4 = bb, b5 = bb, b6 = bb;                         \
        const float *wp = c->wt + o;                                                               \
        for (int ci = 0; ci < c->d.cin; ci++)                                                      \
            for (int ky = 0; ky < 3; ky++)                                                         \
                for (int kx = 0; kx < 3; kx++, wp += coutp) {                                      \
                    const float *ip = in + ci * plane + ky * row + kx;                             \
                    const __m512 wa = _mm512_loadu_ps(wp);                                         \
                    const VT2 wb = P2##_loadu_ps(wp + 16);                                         \
                    STEM_TAP2(0, FMB);                                                             \
                    STEM_TAP2(1, FMB);                                                             \
                    STEM_TAP2(2, FMB);                                                             \
                    STEM_TAP2(3, FMB);                                                             \
                    STEM_TAP2(4, FMB);                                                             \
                    STEM_TAP2(5, FMB);                                                             \
                    STEM_TAP2(6, FMB);                                                             \
                }                                                                                  \
        const __m512 av[STEM_RUN] = {a0, a1, a2, a3, a4, a5, a6};                                  \
        const VT2 bv[STEM_RUN] = {b0, b1, b2, b3, b4, b5, b6};                                     \
        for (int p = 0; p < oa->valid; p++) {                                                      \
            STEM_STORE16(av[p], oa, p, EXTRA);                                                     \
            STORE2(bv[p], ob, p, EXTRA);                                                           \
        }                                                                                          \
    }

STEM_RUN2(run_16_16, __m512, _mm512, STEM_FMB16, STEM_STORE16, 0)
STEM_RUN2(run_16_8, __m256, _mm256, STEM_FMB8, STEM_STORE8, 0)
STEM_RUN2(run_16_16_extra, __m512, _mm512, STEM_FMB16, STEM_STORE16, 1)
STEM_RUN2(run_16_8_extra, __m256, _mm256, STEM_FMB8, STEM_STORE8, 1)
STEM_RUN2(run_16_8n, __m256, _mm256, STEM_FMB8, STEM_STORE8N, 0)
STEM_RUN2(run_16_8n_extra, __m256, _mm256, STEM_FMB8, STEM_STORE8N, 1)

/* One run for a single block of channels o (a last odd block), 16 or 8
 * lanes. */
#define STEM_TAP1(p, P)                                                                            \
    do {                                                                                           \
        a##p = P##_fmadd_ps(P##_set1_ps(ip[p]), wa, a##p);                                         \
    } while (0)
#define STEM_RUN1(NAME, VT, P, STORE, EXTRA)                                                       \
    STEM_TARGET static void NAME(const stem_conv *c, const float *in, int o, const run_out *oa) {  \
        const size_t row = pad_row(c), plane = pad_plane(c), coutp = (size_t)round16(c->d.cout);   \
        const VT ba = P##_loadu_ps(c->bias + o);                                                   \
        VT a0 = ba, a1 = ba, a2 = ba, a3 = ba, a4 = ba, a5 = ba, a6 = ba;                          \
        const float *wp = c->wt + o;                                                               \
        for (int ci = 0; ci < c->d.cin; ci++)                                                      \
            for (int ky = 0; ky < 3; ky++)                                                         \
                for (int kx = 0; kx < 3; kx++, wp += coutp) {                                      \
                    const float *ip = in + ci * plane + ky * row + kx;                             \
                    const VT wa = P##_loadu_ps(wp);                                                \
                    STEM_TAP1(0, P);                                                               \
                    STEM_TAP1(1, P);                                                               \
                    STEM_TAP1(2, P);                                                               \
                    STEM_TAP1(3, P);                                                               \
                    STEM_TAP1(4, P);                                                               \
                    STEM_TAP1(5, P);                                                               \
                    STEM_TAP1(6, P);                                                               \
                }                                                                                  \
        const VT av[STEM_RUN] = {a0, a1, a2, a3, a4, a5, a6};                                      \
        for (int p = 0; p < oa->valid; p++)                                                        \
            STORE(av[p], oa, p, EXTRA);                                                            \
    }

STEM_RUN1(run_16, __m512, _mm512, STEM_STORE16, 0)
STEM_RUN1(run_8, __m256, _mm256, STEM_STORE8, 0)
STEM_RUN1(run_16_extra, __m512, _mm512, STEM_STORE16, 1)
STEM_RUN1(run_8_extra, __m256, _mm256, STEM_STORE8, 1)
STEM_RUN1(run_8n, __m256, _mm256, STEM_STORE8N, 0)
STEM_RUN1(run_8n_extra, __m256, _mm256, STEM_STORE8N, 1)

/* Copies image x (cin planes of h x w) into the padded planes at pad, whose
 * borders are already zero. */
static void pad_image(const stem_conv *c, const float *x, float *pad) {
    size_t row = pad_row(c), plane = pad_plane(c);
    for (int ci = 0; ci < c->d.cin; ci++)
        for (int r = 0; r < c->d.h; r++)
            memcpy(pad + ci * plane + (size_t)(r + 1) * row + 1,
                   x + ((size_t)ci * c->d.h + r) * c->d.w, (size_t)c->d.w * sizeof(float));
}

/* Output rows [first, last) of the n images' n x h rows. */
STEM_TARGET static void forward(const stem_conv *c, const float *x, float *y, void *scratch,
                                int first, int last) {
    const int h = c->d.h, w = c->d.w, blocks = round16(c->d.cout) / 16;
    const int half = c->d.cout - (blocks - 1) * 16 <= 8;       /* the last block takes 8 lanes */
    const size_t plane = (size_t)h * w * 16, row = pad_row(c); /* plane: the biasmap's */
    const block_planes out = planes_of(h, w, c->d.out_padded); /* padded or not */
    /* The last block's: narrow, or as the others. */
    const block_planes last_out = half && c->d.out_narrow ? planes_narrow(out) : out;
    float *pad = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    memset(pad, 0, (size_t)c->d.cin * pad_plane(c) * sizeof(float));
    const int extra = c->biasmap || c->d.sum;
    int img_in_pad = -1;
    for (int item = first; item < last; item++) {
        int img = item / h, r = item % h;
        if (img != img_in_pad) {
            pad_image(c, x + (size_t)img * c->d.cin * h * w, pad);
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
            const int narrow = last_out.step == 8;
            for (int b = 0; b < blocks;) {
                float *yb = y + ((size_t)img * blocks + b) * out.plane + oat;
                const float *bm = c->biasmap ? c->biasmap + (size_t)b * plane + at : NULL;
                run_out oa = {narrow && b + 1 == blocks ? narrow_y : yb, bm, valid, c->d.sum,
                              c->d.relu};
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
                } else {
                    if (extra)
                        (half ? (narrow ? run_8n_extra : run_8_extra) : run_16_extra)(c, in, b * 16,
                                                                                      &oa);
                    else if (half)
                        (narrow ? run_8n : run_8)(c, in, b * 16, &oa);
                    else
                        run_16(c, in, b * 16, &oa);
                    b++;
                }
            }
        }
    }
}

slim_status stem_run(const stem_conv *c, int n, const float *x, float *y, void *scratch,
                     int threads) {
    if (!c || n < 1 || !x || !y || !scratch)
        return slim_error(SLIM_ERR_ARG, "stem conv: missing kernel, data or scratch");
    if (!own_kernels_available())
        return slim_error(SLIM_ERR_BACKEND, "stem conv: this CPU has no AVX-512F/VL");
    int rows = n * c->d.h;
    if (threads <= 1 || rows < 2) {
        forward(c, x, y, scratch, 0, rows);
        return SLIM_OK;
    }
    size_t per = thread_scratch(c);
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        forward(c, x, y, (char *)scratch + (size_t)t * per, rows * t / nt, rows * (t + 1) / nt);
    }
    return SLIM_OK;
}
