/* Our head's compute (head.c), written once for SIMD_W lanes
 * (kernels/simd.h) and built per target (kernels/isa_<target>.c).
 *
 * Per image and 16-channel block: the block's sums over the h x w pixels
 * (four chains of adds, not one long one), scaled by 1 / (h w), then for
 * each vector of outputs each channel's mean, broadcast, times that
 * channel's weights, added to the outputs (the bias first). */
#ifndef SLIM_KERNELS_HEAD_SIMD_H
#define SLIM_KERNELS_HEAD_SIMD_H

#include "kernels/own_impl.h"
#include "kernels/simd.h"

/* The means of one 16-channel block over its `pixels` pixels at x, to
 * mean[16]. */
static void head_block_mean(const float *x, int pixels, float scale, float *mean) {
    for (int s = 0; s < 16; s += SIMD_W) {
        vf a[4] = {vzero(), vzero(), vzero(), vzero()};
        int p = 0;
        for (; p + 4 <= pixels; p += 4)
            for (int j = 0; j < 4; j++)
                a[j] += vloadu(x + (size_t)(p + j) * 16 + s);
        for (; p < pixels; p++)
            a[0] += vloadu(x + (size_t)p * 16 + s);
        vstoreu(mean + s, ((a[0] + a[1]) + (a[2] + a[3])) * vset1(scale));
    }
}

/* Each image's outputs accumulate in y itself, block of channels by block
 * (each block's mean computed once, whatever the outputs); a last vector
 * of fewer than SIMD_W outputs in a copy of its own. */
static void head_forward(const head_kernel *hd, int n, const float *x, float *y) {
    const int c = hd->d.c, k = hd->d.k, kp = round16(k), blocks = round16(c) / 16;
    const int pixels = hd->d.h * hd->d.w;
    const float scale = 1.0f / (float)pixels;
    for (int img = 0; img < n; img++) {
        const float *xi = x + (size_t)img * blocks * pixels * 16;
        float *yi = y + (size_t)img * k;
        for (int b = 0; b < blocks; b++) {
            float mean[16];
            head_block_mean(xi + (size_t)b * pixels * 16, pixels, scale, mean);
            for (int o = 0; o < k; o += SIMD_W) {
                const int real = k - o < SIMD_W ? k - o : SIMD_W;
                float part[SIMD_W] = {0}; /* a last vector's outputs */
                float *at = real < SIMD_W ? part : yi + o;
                if (real < SIMD_W && b > 0) memcpy(part, yi + o, (size_t)real * sizeof(float));
                const float *wp = hd->wt + (size_t)b * 16 * kp + o;
                vf acc = b == 0 ? vload(hd->bias + o) : vloadu(at);
                for (int j = 0; j < 16 && b * 16 + j < c; j++)
                    acc = vfma(vset1(mean[j]), vload(wp + (size_t)j * kp), acc);
                if (hd->d.relu && b == blocks - 1) acc = vrelu(acc);
                vstoreu(at, acc);
                if (real < SIMD_W) memcpy(yi + o, part, (size_t)real * sizeof(float));
            }
        }
    }
}

#endif
