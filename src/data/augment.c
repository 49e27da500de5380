/* Data augmentation in place on normalised NCHW batches: random crop with
 * padding (torchvision's RandomCrop(padding=p)) or random-resized crop
 * (RandomResizedCrop), then random horizontal flip (RandomHorizontalFlip).
 * The padded crop allocates nothing: it is a shift that moves rows with
 * memmove in an order that never reads a row already overwritten. The
 * resized crop resamples each channel's window into scratch memory and
 * copies it back. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* RRC's working memory: one resized plane (h w floats) and stb's own. */
typedef struct rrc_scratch {
    float *plane;
    size_t plane_cap; /* floats in plane */
    data_scratch stb;
} rrc_scratch;

/* Attempts at a window that fits before the whole image is taken. */
#define RRC_ATTEMPTS 10

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

slim_status slim_augment_init_rrc(slim_augment *aug, const slim_dataset *ds, double scale_min,
                                  int flip) {
    if (scale_min == 0) scale_min = SLIM_AUGMENT_RRC_SCALE_MIN;
    if (!(scale_min > 0 && scale_min <= 1))
        return slim_error(SLIM_ERR_ARG, "augment: smallest crop area %g is not in (0, 1]",
                          scale_min);
    SLIM_TRY(slim_augment_init(aug, ds, 0, flip));
    aug->mode = SLIM_AUGMENT_RRC;
    aug->scale_min = scale_min;
    aug->scale_max = 1.0;
    aug->aspect_min = SLIM_AUGMENT_RRC_ASPECT_MIN;
    aug->aspect_max = SLIM_AUGMENT_RRC_ASPECT_MAX;
    rrc_scratch *s = calloc(1, sizeof *s);
    if (s) s->plane_cap = (size_t)ds->h * (size_t)ds->w;
    if (s) s->plane = malloc(s->plane_cap * sizeof(float));
    if (!s || !s->plane) {
        free(s);
        return slim_error(SLIM_ERR_NOMEM, "augment: out of memory for a %dx%d plane", ds->h, ds->w);
    }
    aug->scratch = s;
    return SLIM_OK;
}

void slim_augment_free(slim_augment *aug) {
    rrc_scratch *s = aug->scratch;
    if (s) {
        free(s->plane);
        free(s->stb.buf);
        free(s);
    }
    aug->scratch = NULL;
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

slim_status slim_augment_resized_crop(const slim_augment *aug, float *x, int c, int h, int w,
                                      int top, int left, int ch, int cw) {
    rrc_scratch *s = aug->scratch;
    if (!s) return slim_error(SLIM_ERR_ARG, "augment: not set up for resized crops");
    if (ch < 1 || cw < 1 || top < 0 || left < 0 || top + ch > h || left + cw > w)
        return slim_error(SLIM_ERR_ARG, "augment: window %dx%d at (%d, %d) outside %dx%d", ch, cw,
                          top, left, h, w);
    if (ch == h && cw == w) return SLIM_OK;
    size_t plane = (size_t)h * (size_t)w;
    if (plane > s->plane_cap)
        return slim_error(SLIM_ERR_ARG, "augment: %dx%d images, set up for %zu pixels", h, w,
                          s->plane_cap);
    for (int k = 0; k < c; k++) {
        float *p = x + (size_t)k * plane;
        SLIM_TRY(data_resize_plane(p, w, top, left, ch, cw, s->plane, h, w, &s->stb));
        memcpy(p, s->plane, plane * sizeof(float));
    }
    return SLIM_OK;
}

/* RRC on one image: the window drawn as data.h says, then resized. */
static slim_status rrc_image(const slim_augment *aug, float *img, int c, int h, int w,
                             slim_rng *rng) {
    double area = (double)h * (double)w;
    double log_lo = log(aug->aspect_min), log_hi = log(aug->aspect_max);
    for (int attempt = 0; attempt < RRC_ATTEMPTS; attempt++) {
        double u = slim_rng_uniform(rng), v = slim_rng_uniform(rng);
        double target = area * (aug->scale_min + (aug->scale_max - aug->scale_min) * u);
        double aspect = exp(log_lo + (log_hi - log_lo) * v);
        long cw = lround(sqrt(target * aspect)), ch = lround(sqrt(target / aspect));
        if (cw < 1 || cw > w || ch < 1 || ch > h) continue;
        int top = (int)slim_rng_below(rng, (uint32_t)(h - ch + 1));
        int left = (int)slim_rng_below(rng, (uint32_t)(w - cw + 1));
        return slim_augment_resized_crop(aug, img, c, h, w, top, left, (int)ch, (int)cw);
    }
    return SLIM_OK; /* no window fitted: the whole image */
}

slim_status slim_augment_batch(const slim_augment *aug, float *x, int n, int c, int h, int w,
                               slim_rng *rng) {
    if (n < 0 || c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "augment: bad batch shape %dx%dx%dx%d", n, c, h, w);
    if (aug->pad < 0) return slim_error(SLIM_ERR_ARG, "augment: padding %d < 0", aug->pad);
    if (aug->mode == SLIM_AUGMENT_RRC) {
        if (!(aug->scale_min > 0 && aug->scale_min <= aug->scale_max && aug->scale_max <= 1 &&
              aug->aspect_min > 0 && aug->aspect_min <= aug->aspect_max))
            return slim_error(SLIM_ERR_ARG,
                              "augment: resized-crop ranges scale [%g, %g], aspect [%g, %g] are "
                              "not valid",
                              aug->scale_min, aug->scale_max, aug->aspect_min, aug->aspect_max);
        size_t per = (size_t)c * h * w;
        for (int i = 0; i < n; i++) {
            float *img = x + (size_t)i * per;
            SLIM_TRY(rrc_image(aug, img, c, h, w, rng));
            if (aug->flip && slim_rng_below(rng, 2)) slim_augment_flip(img, c, h, w);
        }
        return SLIM_OK;
    }
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
