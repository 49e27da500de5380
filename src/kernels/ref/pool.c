/* Reference pooling: max, average (padding excluded from the divisor) and
 * global average. */
#include "kernels/kernels.h"

/* x: (n, c, h, w), y and argmax: (n, c, oh, ow). argmax holds the flat
 * index r * w + col of the winner within its (n, c) plane; the first
 * maximum in row-major window order wins ties, and the padding never wins
 * (pad < k guarantees every window touches the input). */
void slim_ref_maxpool_forward(const slim_pool_shape *s, const float *x, float *y, int32_t *argmax) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    for (size_t plane = 0; plane < (size_t)s->n * s->c; plane++) {
        const float *xp = x + plane * in_plane;
        for (int p = 0; p < s->oh; p++) {
            for (int q = 0; q < s->ow; q++) {
                int32_t best = -1;
                for (int u = 0; u < s->k; u++) {
                    int r = p * s->stride - s->pad + u;
                    if (r < 0 || r >= s->h) continue;
                    for (int v = 0; v < s->k; v++) {
                        int col = q * s->stride - s->pad + v;
                        if (col < 0 || col >= s->w) continue;
                        int32_t at = r * s->w + col;
                        if (best < 0 || xp[at] > xp[best]) best = at;
                    }
                }
                size_t o = plane * out_plane + (size_t)p * s->ow + q;
                y[o] = best >= 0 ? xp[best] : 0.0f;
                if (argmax) argmax[o] = best;
            }
        }
    }
}

/* dy: (n, c, oh, ow); dx (n, c, h, w) += dy routed to each window's winner. */
void slim_ref_maxpool_backward(const slim_pool_shape *s, const int32_t *argmax, const float *dy,
                               float *dx) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    for (size_t plane = 0; plane < (size_t)s->n * s->c; plane++)
        for (size_t o = 0; o < out_plane; o++) {
            int32_t at = argmax[plane * out_plane + o];
            if (at >= 0) dx[plane * in_plane + (size_t)at] += dy[plane * out_plane + o];
        }
}

/* Clips a window [start, start + k) to [0, size). */
static void clip(int start, int k, int size, int *lo, int *hi) {
    *lo = start < 0 ? 0 : start;
    *hi = start + k > size ? size : start + k;
}

/* x: (n, c, h, w), y: (n, c, oh, ow); each output is the mean of the window's
 * taps that lie inside the input (PyTorch count_include_pad=False). */
void slim_ref_avgpool_forward(const slim_pool_shape *s, const float *x, float *y) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    for (size_t plane = 0; plane < (size_t)s->n * s->c; plane++) {
        const float *xp = x + plane * in_plane;
        for (int p = 0; p < s->oh; p++) {
            int r0, r1;
            clip(p * s->stride - s->pad, s->k, s->h, &r0, &r1);
            for (int q = 0; q < s->ow; q++) {
                int c0, c1;
                clip(q * s->stride - s->pad, s->k, s->w, &c0, &c1);
                float acc = 0.0f;
                for (int r = r0; r < r1; r++)
                    for (int col = c0; col < c1; col++)
                        acc += xp[(size_t)r * s->w + col];
                int count = (r1 - r0) * (c1 - c0);
                y[plane * out_plane + (size_t)p * s->ow + q] = count > 0 ? acc / count : 0.0f;
            }
        }
    }
}

/* dy: (n, c, oh, ow); dx (n, c, h, w) += dy / count over each window's taps. */
void slim_ref_avgpool_backward(const slim_pool_shape *s, const float *dy, float *dx) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    for (size_t plane = 0; plane < (size_t)s->n * s->c; plane++) {
        float *dxp = dx + plane * in_plane;
        for (int p = 0; p < s->oh; p++) {
            int r0, r1;
            clip(p * s->stride - s->pad, s->k, s->h, &r0, &r1);
            for (int q = 0; q < s->ow; q++) {
                int c0, c1;
                clip(q * s->stride - s->pad, s->k, s->w, &c0, &c1);
                int count = (r1 - r0) * (c1 - c0);
                if (count <= 0) continue;
                float g = dy[plane * out_plane + (size_t)p * s->ow + q] / count;
                for (int r = r0; r < r1; r++)
                    for (int col = c0; col < c1; col++)
                        dxp[(size_t)r * s->w + col] += g;
            }
        }
    }
}

/* x: (n, c, hw) -> y: (n, c), the mean over each plane. */
void slim_ref_gap_forward(int n, int c, int hw, const float *x, float *y) {
    for (size_t plane = 0; plane < (size_t)n * c; plane++) {
        float acc = 0.0f;
        for (int j = 0; j < hw; j++)
            acc += x[plane * hw + j];
        y[plane] = acc / hw;
    }
}

/* dy: (n, c); dx (n, c, hw) += dy / hw spread over each plane. */
void slim_ref_gap_backward(int n, int c, int hw, const float *dy, float *dx) {
    for (size_t plane = 0; plane < (size_t)n * c; plane++) {
        float g = dy[plane] / hw;
        for (int j = 0; j < hw; j++)
            dx[plane * hw + j] += g;
    }
}
