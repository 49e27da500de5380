/* Data augmentation in place on normalised NCHW batches: random crop with
 * padding and random horizontal flip (torchvision's RandomCrop(padding=p) +
 * RandomHorizontalFlip). No allocation: the crop is a shift that moves rows
 * with memmove in an order that never reads a row already overwritten. */
#include "internal.h"

#include <string.h>

slim_status slim_augment_init(slim_augment *aug, const slim_dataset *ds, int pad, int flip) {
    if (pad < 0) return slim_error(SLIM_ERR_ARG, "augment: padding %d < 0", pad);
    memset(aug, 0, sizeof *aug);
    aug->pad = pad;
    aug->flip = flip ? 1 : 0;
    /* A black pixel (raw 0) after normalisation, as torchvision pads the
     * raw image before Normalize. */
    for (int k = 0; k < ds->c && k < SLIM_DATA_MAX_CHANNELS; k++)
        aug->fill[k] = (float)((0.0 - ds->mean[k]) / ds->std[k]);
    return SLIM_OK;
}

static void fill_span(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        p[i] = v;
}

void slim_augment_crop(float *x, int c, int h, int w, int pad, int oy, int ox, const float *fill) {
    /* out[y][x] = in[y + dy][x + dx], with the shift (dy, dx) = offset - pad. */
    int dy = oy - pad, dx = ox - pad;
    if (dy == 0 && dx == 0) return;
    /* Columns of an output row that read inside the input: x0 <= x < x1. */
    int x0 = dx < 0 ? -dx : 0;
    int x1 = dx > 0 ? w - dx : w;
    if (x1 < x0) x1 = x0;
    for (int k = 0; k < c; k++) {
        float *plane = x + (size_t)k * h * w;
        /* dy > 0 reads rows below: go down; dy < 0 reads rows above: go up. */
        for (int i = 0; i < h; i++) {
            int y = dy > 0 ? i : h - 1 - i;
            float *row = plane + (size_t)y * w;
            int sy = y + dy;
            if (sy < 0 || sy >= h || x1 == x0) {
                fill_span(row, (size_t)w, fill[k]);
                continue;
            }
            memmove(row + x0, plane + (size_t)sy * w + x0 + dx, (size_t)(x1 - x0) * sizeof(float));
            fill_span(row, (size_t)x0, fill[k]);
            fill_span(row + x1, (size_t)(w - x1), fill[k]);
        }
    }
}

void slim_augment_flip(float *x, int c, int h, int w) {
    for (size_t r = 0; r < (size_t)c * h; r++) {
        float *row = x + r * w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = row[i];
            row[i] = row[j];
            row[j] = t;
        }
    }
}

slim_status slim_augment_batch(const slim_augment *aug, float *x, int n, int c, int h, int w,
                               slim_rng *rng) {
    if (n < 0 || c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "augment: bad batch shape %dx%dx%dx%d", n, c, h, w);
    if (aug->pad < 0) return slim_error(SLIM_ERR_ARG, "augment: padding %d < 0", aug->pad);
    size_t per = (size_t)c * h * w;
    uint32_t span = 2u * (uint32_t)aug->pad + 1u;
    for (int i = 0; i < n; i++) {
        float *img = x + (size_t)i * per;
        if (aug->pad > 0) {
            int oy = (int)slim_rng_below(rng, span);
            int ox = (int)slim_rng_below(rng, span);
            slim_augment_crop(img, c, h, w, aug->pad, oy, ox, aug->fill);
        }
        if (aug->flip && slim_rng_below(rng, 2)) slim_augment_flip(img, c, h, w);
    }
    return SLIM_OK;
}
