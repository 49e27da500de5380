/* Reference 2-D convolution (cross-correlation, as in PyTorch): direct loops,
 * zero padding, square stride and padding, channel groups. */
#include "kernels/kernels.h"

/* x: (n, cin, h, w), w: (cout, cin/G, kh, kw), b: (cout) or NULL,
 * y: (n, cout, oh, ow) with G = groups, cg = cin/G, and for output channel o
 * of group g = o / (cout/G):
 * y[i,o,p,q] = b[o] + sum_{c<cg,u,v} x[i, g*cg + c, p*stride - pad + u, q*stride - pad + v]
 *                                    w[o,c,u,v],
 * taps that fall into the padding contributing 0. */
void slim_ref_conv2d_forward(const slim_conv_shape *s, const float *x, const float *w,
                             const float *b, float *y) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    const size_t ksize = (size_t)s->kh * s->kw;
    const int groups = slim_conv_groups(s);
    const int cg = s->cin / groups, og = s->cout / groups;
    for (int i = 0; i < s->n; i++) {
        for (int o = 0; o < s->cout; o++) {
            float *yp = y + ((size_t)i * s->cout + o) * out_plane;
            const int c0 = o / og * cg; /* the group's first input channel */
            for (int p = 0; p < s->oh; p++) {
                for (int q = 0; q < s->ow; q++) {
                    float acc = b ? b[o] : 0.0f;
                    for (int c = 0; c < cg; c++) {
                        const float *xp = x + ((size_t)i * s->cin + c0 + c) * in_plane;
                        const float *wp = w + ((size_t)o * cg + c) * ksize;
                        for (int u = 0; u < s->kh; u++) {
                            int r = p * s->stride - s->pad + u;
                            if (r < 0 || r >= s->h) continue;
                            for (int v = 0; v < s->kw; v++) {
                                int col = q * s->stride - s->pad + v;
                                if (col < 0 || col >= s->w) continue;
                                acc += xp[(size_t)r * s->w + col] * wp[(size_t)u * s->kw + v];
                            }
                        }
                    }
                    yp[(size_t)p * s->ow + q] = acc;
                }
            }
        }
    }
}

/* dy: (n, cout, oh, ow). Adds dx (n, cin, h, w), dw (cout, cin/G, kh, kw) and
 * db (cout) = sum of dy over n, oh, ow; each gradient may be NULL. Walks the
 * forward's loops and scatters each dy into the taps that produced it. */
void slim_ref_conv2d_backward(const slim_conv_shape *s, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    const size_t ksize = (size_t)s->kh * s->kw;
    const int groups = slim_conv_groups(s);
    const int cg = s->cin / groups, og = s->cout / groups;
    for (int i = 0; i < s->n; i++) {
        for (int o = 0; o < s->cout; o++) {
            const float *dyp = dy + ((size_t)i * s->cout + o) * out_plane;
            const int c0 = o / og * cg;
            for (int p = 0; p < s->oh; p++) {
                for (int q = 0; q < s->ow; q++) {
                    float g = dyp[(size_t)p * s->ow + q];
                    if (db) db[o] += g;
                    if (!dx && !dw) continue;
                    for (int c = 0; c < cg; c++) {
                        size_t xoff = ((size_t)i * s->cin + c0 + c) * in_plane;
                        size_t woff = ((size_t)o * cg + c) * ksize;
                        for (int u = 0; u < s->kh; u++) {
                            int r = p * s->stride - s->pad + u;
                            if (r < 0 || r >= s->h) continue;
                            for (int v = 0; v < s->kw; v++) {
                                int col = q * s->stride - s->pad + v;
                                if (col < 0 || col >= s->w) continue;
                                size_t xi = xoff + (size_t)r * s->w + col;
                                size_t wi = woff + (size_t)u * s->kw + v;
                                if (dx) dx[xi] += g * w[wi];
                                if (dw) dw[wi] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
}
