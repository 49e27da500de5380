/* Winograd F(4x4, 3x3) convolution for inference (3x3, stride 1, pad 1),
 * with bias and, each optional, a biasmap (a bias per channel and
 * position), a residual sum (what the output already holds), a fused ReLU
 * and a fused 2x2 max pool.
 *   x: (n, ceil(cin/16), h, w, 16) -> y: (n, ceil(cout/16), h, w, 16)
 *   (h/2, w/2 pooled), either in padded planes, x's last block narrow or
 *   not (kernels/blocked.h)
 * Lifecycle: wino_create -> wino_scratch_bytes -> wino_run -> wino_destroy
 * (kernels/own.h); the weights are transformed once, at create.
 *
 * Why our own: oneDNN 2.6's AVX-512 Winograd pads both channel counts to
 * multiples of 16 in its transforms and in its GEMMs, so the few channels a
 * pruned conv keeps cost it as much as a conv nearly twice as wide. Here
 * the batched GEMM between the transforms runs over the real input
 * channels only (the output channels are the vector lanes, so they round up
 * to 16; with 16 lanes a last vector of at most 8 real ones, or a lone one,
 * takes input channels two at a time: 8 outputs per multiply-add, see
 * gemm_step), and the transforms cost one 16-lane operation per 16
 * channels (8 lanes for a last input block of at most 8 real ones). A last output block of few
 * channels shares its GEMM call, and so every broadcast of the input, with
 * the blocks before it (cheaper than an 8-lane GEMM of its own where 8-lane
 * operations cost what 16-lane ones do).
 *
 * The points are 0, 1, -1, 2, -2 and infinity (Lavin and Gray, 2016). Input
 * in padded planes is read in place; otherwise a border tile's patch is
 * first copied with its zeros. The compute, per group of tiles, is built per
 * target from one source: kernels/wino_simd.h; here, what does not depend
 * on the target: create (U = G g G^T laid out for the build's lanes) and
 * run. */
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/own_impl.h"

/* Where u holds the weight from input channel i to output o (of coutp):
 * at slot (input channel) *slot, lane *lane. In a paired vector from
 * o_v, output o_v + k for k < 8 lies in the slot of i's pair's first
 * channel, for k >= 8 in its second; lanes 2 (k % 8) for the pair's first
 * channel and 2 (k % 8) + 1 for its second. */
static void pair_slot(int cout, int lanes, int i, int o, int *slot, int *lane) {
    const int coutp = round16(cout), o_v = coutp - 16;
    if (!paired_last(cout, lanes) || o < o_v) {
        *slot = i, *lane = o;
        return;
    }
    int k = o - o_v;
    *slot = i - i % 2 + k / 8;
    *lane = o_v + k % 8 * 2 + i % 2;
}

/* U = G g G^T for one 3x3 kernel g, in double (the transform's fractions
 * would otherwise round twice). */
static void kernel_transform(const float *g, double u[6][6]) {
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double t[6][3];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++)
            t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            u[i][j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

/* c->inner and c->edge when the biasmap is the same at every pixel away
 * from the border, bit for bit (pruning's fold sums the same terms in the
 * same order there); left NULL otherwise. 0 when out of memory. Every tile
 * then takes inner as its bias, and a tile at the border adds edge, zero
 * but at the border pixels; without a pool, at those pixels only (more
 * than half of a 7 x 7 output's pixels are in tiles at the border, and
 * loading the map at each of them costs). */
static int inner_bias(wino_conv *c) {
    const int coutp = round16(c->d.cout), h = c->d.h, w = c->d.w;
    for (int b = 0; b < coutp / 16; b++) {
        const float *plane = c->biasmap + (size_t)b * h * w * 16, *first = plane + (w + 1) * 16;
        for (int r = 1; r < h - 1; r++)
            if (memcmp(plane + ((size_t)r * w + 1) * 16, first, 16 * sizeof(float)) != 0 ||
                (w > 3 && memcmp(plane + ((size_t)r * w + 1) * 16, plane + ((size_t)r * w + 2) * 16,
                                 (size_t)(w - 3) * 16 * sizeof(float)) != 0))
                return 1;
    }
    c->inner = floats64((size_t)coutp);
    c->edge = floats64((size_t)coutp * h * w);
    if (!c->inner || !c->edge) return 0;
    for (int o = 0; o < coutp; o++) {
        const size_t plane = (size_t)(o / 16) * h * w * 16;
        const float in = c->biasmap[plane + (w + 1) * 16 + o % 16];
        c->inner[o] = c->bias[o] + in;
        for (int r = 0; r < h; r++)
            for (int q = 0; q < w; q++)
                if (r == 0 || q == 0 || r == h - 1 || q == w - 1) {
                    size_t at = plane + ((size_t)r * w + q) * 16 + o % 16;
                    c->edge[at] = c->biasmap[at] - in;
                }
    }
    return 1;
}

/* The shape's and the settings' errors, or SLIM_OK. */
static slim_status check_desc(const wino_desc *d) {
    if (!d || !d->weights) return slim_error(SLIM_ERR_ARG, "winograd conv: no weights");
    if (d->cin < 1 || d->cout < 1 || d->h < 1 || d->w < 1)
        return slim_error(SLIM_ERR_SHAPE,
                          "winograd conv: %d -> %d channels at %dx%d is not a valid shape", d->cin,
                          d->cout, d->h, d->w);
    if (d->pool && (d->sum || d->h < 2 || d->w < 2))
        return slim_error(SLIM_ERR_ARG,
                          "winograd conv: a fused pool needs at least 2x2 outputs and no sum");
    if (d->in_narrow && !d->in_padded)
        return slim_error(SLIM_ERR_ARG, "winograd conv: a narrow input needs padded planes");
    if (d->in_narrow && (d->cin % 16 == 0 || d->cin % 16 > 8))
        return slim_error(SLIM_ERR_ARG,
                          "winograd conv: a narrow input needs a last block of at most 8 "
                          "channels, not %d",
                          d->cin % 16 ? d->cin % 16 : 16);
    return SLIM_OK;
}

slim_status wino_create(const wino_desc *d, wino_conv **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "winograd conv: no place for the kernel");
    *out = NULL;
    slim_status st = check_desc(d);
    if (st != SLIM_OK) return st;
    const int cin = d->cin, cout = d->cout, h = d->h, w = d->w, coutp = round16(cout);
    wino_conv *c = calloc(1, sizeof *c);
    if (c) c->u = floats64((size_t)36 * even_cin(cin) * coutp);
    if (!c || !c->u || !blocked_bias_init(cout, h, w, d->bias, d->biasmap, &c->bias, &c->biasmap)) {
        wino_destroy(c);
        return slim_error(SLIM_ERR_NOMEM, "winograd conv: no memory for %d x %d weights", cin,
                          cout);
    }
    c->d = *d;
    c->d.weights = c->d.bias = c->d.biasmap = NULL;
    c->d.relu = d->relu != 0;
    c->d.sum = d->sum != 0;
    c->d.pool = d->pool != 0;
    if (!d->impl) c->d.impl = own_impl_for(own_isa_active());
    if (c->biasmap && h >= 3 && w >= 3 && !inner_bias(c)) {
        wino_destroy(c);
        return slim_error(SLIM_ERR_NOMEM, "winograd conv: no memory for %d biases", cout);
    }
    for (int o = 0; o < cout; o++) {
        for (int i = 0; i < cin; i++) {
            double u[6][6];
            kernel_transform(d->weights + ((size_t)o * cin + i) * 9, u);
            int slot, lane;
            pair_slot(cout, c->d.impl ? c->d.impl->lanes : 16, i, o, &slot, &lane);
            for (int p = 0; p < 36; p++)
                c->u[((size_t)p * even_cin(cin) + slot) * coutp + lane] = (float)u[p / 6][p % 6];
        }
    }
    *out = c;
    return SLIM_OK;
}

void wino_destroy(wino_conv *c) {
    if (!c) return;
    free(c->u);
    free(c->bias);
    free(c->biasmap);
    free(c->inner);
    free(c->edge);
    free(c);
}

const wino_desc *wino_settings(const wino_conv *c) { return &c->d; }

/* One thread's scratch: V and M of one group and a 6x6 patch, 64-byte
 * aligned. */
static size_t thread_scratch(const wino_conv *c) {
    size_t v = (size_t)36 * (WINO_GROUP_MAX * round16(c->d.cin) + WINO_SKEW);
    size_t m = (size_t)36 * WINO_GROUP_MAX * round16(c->d.cout);
    return (v + m + 6 * 6 * 16) * sizeof(float) + 64;
}

size_t wino_scratch_bytes(const wino_conv *c, int threads) {
    return thread_scratch(c) * (size_t)(threads > 1 ? threads : 1);
}

slim_status wino_run(const wino_conv *c, int n, const float *x, float *y, void *scratch,
                     int threads) {
    if (!c || n < 1 || !x || !y || !scratch)
        return slim_error(SLIM_ERR_ARG, "winograd conv: missing kernel, data or scratch");
    SLIM_TRY(own_impl_check(c->d.impl, "winograd conv"));
    void (*forward)(const wino_conv *, int, const float *, float *, void *, int, int) =
        c->d.impl->wino;
    if (!forward)
        return slim_error(SLIM_ERR_BACKEND, "winograd conv: not in our %s build",
                          own_impl_name(c->d.impl));
    int G = group_size(c), groups = (n * ((c->d.h + 3) / 4) * ((c->d.w + 3) / 4) + G - 1) / G;
    if (threads <= 1 || groups < 2) {
        forward(c, n, x, y, scratch, 0, groups);
        return SLIM_OK;
    }
    size_t per = thread_scratch(c);
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        forward(c, n, x, y, (char *)scratch + (size_t)t * per, groups * t / nt,
                groups * (t + 1) / nt);
    }
    return SLIM_OK;
}
