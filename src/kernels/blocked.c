/* What our inference kernels (wino.c, stem.c, head.c) share: the layout of padded planes and of a
 * block's pixels (planes_of), and their bias and biasmap in the 16-channel blocks their outputs are
 * in, zero beyond the real channels, so that the padding channels they write stay zero; and the
 * channel concatenation in that layout. */
#include "kernels/blocked.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int padded_size(int n) { return (n + 3) / 4 * 4 + 2; }

block_planes planes_of(int h, int w, int padded) {
    size_t rows = (size_t)(padded ? padded_size(h) : h);
    size_t stride = (size_t)(padded ? padded_size(w) : w) * 16;
    return (block_planes){rows * stride, stride, padded ? stride + 16 : 0, 16};
}

block_planes planes_narrow(block_planes p) {
    return (block_planes){p.plane, p.stride / 2, p.origin / 2, 8};
}

float *floats64(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) return NULL;
    memset(p, 0, n * sizeof(float));
    return p;
}

int blocked_bias_init(int cout, int h, int w, const float *bias, const float *biasmap,
                      float **bias16, float **biasmap16) {
    size_t coutp = (size_t)round16(cout), plane = (size_t)h * w;
    *bias16 = floats64(coutp);
    *biasmap16 = biasmap ? floats64(coutp * plane) : NULL;
    if (!*bias16 || (biasmap && !*biasmap16)) {
        free(*bias16);
        free(*biasmap16);
        *bias16 = *biasmap16 = NULL;
        return 0;
    }
    for (int o = 0; o < cout; o++)
        (*bias16)[o] = bias ? bias[o] : 0.0f;
    if (biasmap)
        for (int o = 0; o < cout; o++)
            for (size_t p = 0; p < plane; p++)
                (*biasmap16)[((size_t)(o / 16) * plane + p) * 16 + o % 16] =
                    biasmap[(size_t)o * plane + p];
    return 1;
}

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Lanes [from, from + len) of each pixel of src's block to lanes
 * [to, to + len) of dst's, hw pixels; from lane 0 to lane 0, all 16 lanes
 * (blocked_concat writes the channels in order and zeroes the padding
 * channels last, so lanes past len are written again). A pixel inside the plane reads the
 * 16 floats that start `from - to` from its own (its neighbours' lanes are
 * within the plane) and keeps dst's lanes outside the range: two vector
 * loads, a blend and two stores, whatever the offsets; the first and last
 * pixels lane by lane. */
static void copy_lanes(const float *src, int from, float *dst, int to, int len, size_t hw) {
    if (from == 0 && to == 0) { /* lanes from len on: the next input's or zeroed after */
        memcpy(dst, src, hw * 16 * sizeof(float));
        return;
    }
    v8i m[2];
    for (int j = 0; j < 16; j++)
        m[j / 8][j % 8] = j >= to && j < to + len ? -1 : 0;
    const ptrdiff_t shift = from - to;
    for (size_t p = 0; p < hw; p++) {
        float *d = dst + p * 16;
        if (p == 0 || p + 1 == hw) {
            for (int c = 0; c < len; c++)
                d[to + c] = src[p * 16 + (size_t)(from + c)];
            continue;
        }
        const float *s = src + (ptrdiff_t)(p * 16) + shift;
        for (int h = 0; h < 2; h++) {
            v8f a, b;
            memcpy(&a, s + 8 * h, sizeof a);
            memcpy(&b, d + 8 * h, sizeof b);
            v8i r = ((v8i)a & m[h]) | ((v8i)b & ~m[h]);
            memcpy(d + 8 * h, &r, sizeof r);
        }
    }
}

void blocked_concat(int n, size_t hw, int k, const float *const *src, const int *cin, float *dst) {
    int cout = 0;
    for (int i = 0; i < k; i++)
        cout += cin[i];
    const size_t oplane = hw * 16, oimage = (size_t)(round16(cout) / 16) * oplane;
    for (int img = 0; img < n; img++) {
        float *d = dst + (size_t)img * oimage;
        int off = 0;
        for (int i = 0; i < k; i++) {
            const float *s = src[i] + (size_t)img * (size_t)(round16(cin[i]) / 16) * oplane;
            for (int c0 = 0; c0 < cin[i]; c0 += 16) {
                int len = cin[i] - c0 < 16 ? cin[i] - c0 : 16, at = off + c0;
                int first = 16 - at % 16 < len ? 16 - at % 16 : len;
                const float *sb = s + (size_t)(c0 / 16) * oplane;
                copy_lanes(sb, 0, d + (size_t)(at / 16) * oplane, at % 16, first, hw);
                if (first < len)
                    copy_lanes(sb, first, d + (size_t)(at / 16 + 1) * oplane, 0, len - first, hw);
            }
            off += cin[i];
        }
        if (cout % 16) {
            float *last = d + (size_t)(cout / 16) * oplane;
            for (size_t p = 0; p < hw; p++)
                memset(last + p * 16 + cout % 16, 0, (size_t)(16 - cout % 16) * sizeof(float));
        }
    }
}
