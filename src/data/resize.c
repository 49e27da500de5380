/* Resizing pictures to the model's input and the resize modes' geometry,
 * with stb_image_resize (v0.97, Debian's libstb-dev). This file holds the
 * one STB_IMAGE_RESIZE_IMPLEMENTATION of the library.
 *
 * Every resize uses the triangle filter (bilinear, widened when shrinking:
 * antialiased like PIL's and torchvision's bilinear), clamps at the edges
 * and resamples values as they are (no sRGB conversion). stb makes one
 * allocation per call: from the caller's data_scratch when one is given
 * (grown when too small, never shrunk), else malloc; no global state, so
 * concurrent calls on different buffers are safe. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *scratch_alloc(size_t size, void *ctx);
static void scratch_release(void *ptr, void *ctx);

#define STBIR_MALLOC(size, ctx) scratch_alloc(size, ctx)
#define STBIR_FREE(ptr, ctx) scratch_release(ptr, ctx)
/* stb's internal checks, off as in a release build: one of them
 * (total < 1.1f in stbir__normalize_downsample_coefficients, stb issue
 * 1449) fails on ordinary region resizes such as 79x89 -> 64x64, and the
 * library must not abort. */
#define STBIR_ASSERT(x) ((void)0)
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#include <stb/stb_image_resize.h>

static void *scratch_alloc(size_t size, void *ctx) {
    data_scratch *s = ctx;
    if (!s) return malloc(size);
    if (s->cap < size) {
        void *grown = realloc(s->buf, size);
        if (!grown) return NULL;
        s->buf = grown;
        s->cap = size;
    }
    return s->buf;
}

static void scratch_release(void *ptr, void *ctx) {
    if (!ctx) free(ptr);
}

const char *slim_resize_mode_name(slim_resize_mode m) {
    switch (m) {
    case SLIM_RESIZE_CROP: return "crop";
    case SLIM_RESIZE_STRETCH: return "stretch";
    case SLIM_RESIZE_PAD: return "pad";
    case SLIM_RESIZE_NONE: return "none";
    }
    return "?";
}

slim_status slim_resize_mode_parse(const char *s, slim_resize_mode *m) {
    static const slim_resize_mode all[] = {SLIM_RESIZE_CROP, SLIM_RESIZE_STRETCH, SLIM_RESIZE_PAD,
                                           SLIM_RESIZE_NONE};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, slim_resize_mode_name(all[i])) == 0) {
            *m = all[i];
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_ARG, "unknown resize mode '%s' (choose crop, stretch, pad or none)",
                      s ? s : "");
}

void data_resize_geometry(int src_h, int src_w, int h, int w, slim_resize_mode mode,
                          double crop_scale, data_resize_geom *g) {
    *g = (data_resize_geom){0, 0, src_h, src_w, 0, 0, h, w};
    /* Whether the height sets the scale: h / src_h >= w / src_w, compared
     * exactly in integers. */
    int by_height = (long long)h * src_w >= (long long)w * src_h;
    if (mode == SLIM_RESIZE_CROP) {
        /* Covering (crop_scale h) x (crop_scale w): the scale is the larger
         * ratio times crop_scale; the window is h x w over that scale. */
        double win_h, win_w;
        if (by_height) {
            win_h = src_h / crop_scale;
            win_w = (double)w * src_h / ((double)h * crop_scale);
        } else {
            win_w = src_w / crop_scale;
            win_h = (double)h * src_w / ((double)w * crop_scale);
        }
        g->y0 = (src_h - win_h) / 2;
        g->x0 = (src_w - win_w) / 2;
        g->y1 = g->y0 + win_h;
        g->x1 = g->x0 + win_w;
    } else if (mode == SLIM_RESIZE_PAD) {
        /* The longer side (relative to the output) fits exactly. */
        if (by_height) {
            g->ow = w;
            g->oh = (int)lround((double)src_h * w / src_w);
        } else {
            g->oh = h;
            g->ow = (int)lround((double)src_w * h / src_h);
        }
        if (g->oh < 1) g->oh = 1;
        if (g->ow < 1) g->ow = 1;
        g->oy = (h - g->oh) / 2;
        g->ox = (w - g->ow) / 2;
    }
}

static int geom_is_identity(const data_resize_geom *g, int src_h, int src_w, int h, int w) {
    return src_h == h && src_w == w && g->y0 == 0 && g->x0 == 0 && g->y1 == h && g->x1 == w &&
           g->oy == 0 && g->ox == 0 && g->oh == h && g->ow == w;
}

slim_status data_resize_bytes(const uint8_t *src, int src_h, int src_w, int c,
                              const data_resize_geom *g, uint8_t *dst, int h, int w) {
    size_t row = (size_t)w * (size_t)c;
    if (geom_is_identity(g, src_h, src_w, h, w)) {
        memcpy(dst, src, (size_t)h * row);
        return SLIM_OK;
    }
    if (g->oh != h || g->ow != w) memset(dst, 0, (size_t)h * row);
    uint8_t *out = dst + (size_t)g->oy * row + (size_t)g->ox * (size_t)c;
    int ok = stbir_resize_region(
        src, src_w, src_h, src_w * c, out, g->ow, g->oh, (int)row, STBIR_TYPE_UINT8, c,
        STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
        STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, NULL, (float)(g->x0 / src_w),
        (float)(g->y0 / src_h), (float)(g->x1 / src_w), (float)(g->y1 / src_h));
    if (!ok)
        return slim_error(SLIM_ERR_NOMEM, "out of memory resizing a %dx%d picture to %dx%d", src_h,
                          src_w, h, w);
    return SLIM_OK;
}

slim_status data_resize_plane(const float *src, int w, int top, int left, int ch, int cw,
                              float *dst, int oh, int ow, data_scratch *scratch) {
    const float *win = src + (size_t)top * (size_t)w + (size_t)left;
    int ok = stbir_resize_float_generic(win, cw, ch, w * (int)sizeof(float), dst, ow, oh,
                                        ow * (int)sizeof(float), 1, STBIR_ALPHA_CHANNEL_NONE, 0,
                                        STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
                                        STBIR_COLORSPACE_LINEAR, scratch);
    if (!ok)
        return slim_error(SLIM_ERR_NOMEM, "out of memory resizing a %dx%d window to %dx%d", ch, cw,
                          oh, ow);
    return SLIM_OK;
}
