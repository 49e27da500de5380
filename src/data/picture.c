/* One picture file: read, decoded (PNG with stb_image, JPEG with
 * libjpeg-turbo), converted to the model's channel count and resized to its
 * input (resize.c). Thread-safe: nothing here has global state or logs.
 *
 * Why two decoders: stb_image 2.27 (Debian 12) has memory-safety bugs in its
 * JPEG decoder that fuzzing found (an out-of-bounds write on a Huffman table
 * of more than 256 codes, an undefined shift on corrupt data;
 * docs/RELIABILITY.md). Only stb's PNG decoder is compiled in
 * (STBI_ONLY_PNG), so that code is not even present; JPEG goes to
 * libjpeg-turbo, which is itself fuzzed continuously upstream. This file
 * holds the one STB_IMAGE_IMPLEMENTATION of the library: no other file of
 * slim may define it. stb keeps its failure reason thread-local (C11).
 *
 * A file is read whole into memory first (regular files only, at most
 * IMAGE_MAX_FILE bytes) and its format is told by its first bytes, not its
 * name. The size is read from the header before decoding, so a file that
 * declares more than SLIM_DATA_MAX_PIXELS is refused without allocating for
 * it. Both decoders produce the same channel conversions (stb's rules):
 * gray -> RGB replicates, RGB -> gray is (77 r + 150 g + 29 b) >> 8, a
 * missing alpha channel reads 255, and an alpha channel not asked for is
 * dropped. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE and size_t */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <zlib.h>

#include <jerror.h> /* the JWRN_* message codes; after jpeglib.h */

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

/* The cap keeps a stray huge file from being read into memory whole; a
 * PNG or JPEG of SLIM_DATA_MAX_PIXELS is usually far smaller. */
#define IMAGE_MAX_FILE_MIB 64
#define IMAGE_MAX_FILE ((off_t)IMAGE_MAX_FILE_MIB << 20)
/* A progressive JPEG is decoded scan by scan, each pass touching the whole
 * image, so a small file of many tiny scans could cost a lot of time.
 * Encoders use about 10; libjpeg-turbo's own fuzz targets stop at 500. */
#define JPEG_MAX_SCANS 1000

int data_is_picture_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
           strcasecmp(dot, ".jpeg") == 0;
}

/* What a picture's header says. */
typedef struct image_header {
    int h, w;
    int comp; /* channels stored: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA */
} image_header;

/* The cap on declared pixels, checked from the header before decoding. */
static slim_status check_declared(const char *path, const image_header *hd) {
    if ((unsigned long long)hd->h * (unsigned long long)hd->w > SLIM_DATA_MAX_PIXELS)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: its header declares %dx%d pixels (height x width), more than the "
                          "%llu (8192x8192) a picture may have",
                          path, hd->h, hd->w, (unsigned long long)SLIM_DATA_MAX_PIXELS);
    return SLIM_OK;
}

/* Reads the whole of path into *buf (free() it): *len bytes. */
static slim_status read_image_file(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    /* O_NONBLOCK so that opening a FIFO does not wait for a writer; anything
     * but a regular file is refused below (and regular files ignore it). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return slim_error(SLIM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return slim_error(SLIM_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return slim_error(SLIM_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return slim_error(SLIM_ERR_FORMAT, "%s: empty file (0 bytes)", path);
    }
    if (sb.st_size > IMAGE_MAX_FILE) {
        close(fd);
        return slim_error(SLIM_ERR_FORMAT, "%s: %lld bytes, more than an image may have (%d MiB)",
                          path, (long long)sb.st_size, IMAGE_MAX_FILE_MIB);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    unsigned char *b = malloc(size);
    if (!b) {
        close(fd);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(b);
            return slim_error(SLIM_ERR_IO, "%s: read failed after %zu of %zu bytes: %s", path, got,
                              size, e ? strerror(e) : "file shrank while being read");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = size;
    return SLIM_OK;
}
/* One row of w pixels from n = 1 (gray) or 3 (RGB) channels to c (1..4),
 * by stb's rules (see the top of this file). */
static void convert_row(const unsigned char *in, int n, unsigned char *out, int c, int w) {
    for (int x = 0; x < w; x++, in += n, out += c) {
        unsigned r = in[0], g = in[n == 3], b = in[n == 3 ? 2 : 0];
        if (c <= 2)
            out[0] = n == 3 ? (unsigned char)((77 * r + 150 * g + 29 * b) >> 8) : in[0];
        else
            out[0] = (unsigned char)r, out[1] = (unsigned char)g, out[2] = (unsigned char)b;
        if (c == 2 || c == 4) out[c - 1] = 255;
    }
}

/* libjpeg reports a fatal error through err.error_exit, whose default prints
 * to stderr and calls exit(); slim's jumps back to jpeg_run instead, with
 * the message in msg. The whole context lives in jpeg_read's frame, not in
 * the frame that calls setjmp, so nothing it holds is clobbered by the
 * jump. */
typedef struct jpeg_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    unsigned char *px; /* the decoded picture (malloc), so that a jump cannot leak it */
} jpeg_ctx;

enum { JPEG_RUN_OK, JPEG_RUN_FAILED, JPEG_RUN_SIZE, JPEG_RUN_NOMEM };

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_ctx *ctx = cinfo->client_data;
    cinfo->err->format_message(cinfo, ctx->msg);
    longjmp(ctx->jump, 1);
}

/* The warnings that real, intact files cause. */
static int jpeg_warning_harmless(int code) {
    return code == JWRN_ADOBE_XFORM ||     /* an unknown Adobe transform code */
           code == JWRN_EXTRANEOUS_DATA || /* padding bytes before a marker */
           code == JWRN_JFIF_MAJOR ||      /* an unknown JFIF revision */
           code == JWRN_BOGUS_ICC;         /* a broken ICC profile, which slim does not use */
}

/* Replaces libjpeg's emit_message, which prints warnings to stderr. A
 * warning that means pixels were lost (bad entropy-coded data, a truncated
 * file, a broken progression) fails the decode: a damaged image must not
 * enter a data set as a half-grey picture. Harmless warnings and trace
 * messages (level >= 0) are dropped. */
static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    cinfo->err->num_warnings++;
    if (!jpeg_warning_harmless(cinfo->err->msg_code)) jpeg_fail(cinfo);
}

/* Called by libjpeg while it consumes input; bounds the number of scans. */
static void jpeg_progress(j_common_ptr cinfo) {
    jpeg_ctx *ctx = cinfo->client_data;
    if (ctx->cinfo.input_scan_number > JPEG_MAX_SCANS) {
        snprintf(ctx->msg, sizeof ctx->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(ctx->jump, 1);
    }
}

/* Reads the header of the JPEG in buf into hd and, when c > 0 and the
 * header is within the pixel cap, decodes it into ctx->px: (hd->h, hd->w, c)
 * interleaved. Returns a JPEG_RUN_* code (JPEG_RUN_SIZE: over the cap); on
 * JPEG_RUN_FAILED ctx->msg says why. After a longjmp only ctx is used. */
static int jpeg_run(jpeg_ctx *ctx, const unsigned char *buf, size_t len, int c, image_header *hd) {
    struct jpeg_decompress_struct *ci = &ctx->cinfo;
    if (setjmp(ctx->jump)) return JPEG_RUN_FAILED;
    jpeg_create_decompress(ci); /* keeps err and client_data */
    ci->progress = &ctx->progress;
    jpeg_mem_src(ci, buf, (unsigned long)len);
    jpeg_read_header(ci, TRUE);
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
        ci->out_color_space = JCS_GRAYSCALE;
        hd->comp = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        hd->comp = 3;
        break;
    default:
        snprintf(ctx->msg, sizeof ctx->msg,
                 "%s colour space (%d components) is not supported, only gray and RGB",
                 ci->jpeg_color_space == JCS_CMYK   ? "CMYK"
                 : ci->jpeg_color_space == JCS_YCCK ? "YCCK"
                                                    : "an unknown",
                 ci->num_components);
        return JPEG_RUN_FAILED;
    }
    /* libjpeg caps a side at 65500, so both fit an int. */
    hd->h = (int)ci->image_height;
    hd->w = (int)ci->image_width;
    if ((unsigned long long)hd->h * (unsigned long long)hd->w > SLIM_DATA_MAX_PIXELS)
        return JPEG_RUN_SIZE;
    if (c <= 0) return JPEG_RUN_OK;
    int h = hd->h, w = hd->w;
    ctx->px = malloc((size_t)h * (size_t)w * (size_t)c);
    if (!ctx->px) return JPEG_RUN_NOMEM;
    unsigned char *px = ctx->px;
    jpeg_start_decompress(ci); /* reads every scan of a progressive file */
    int n = ci->output_components;
    if ((int)ci->output_height != h || (int)ci->output_width != w || n != hd->comp) {
        snprintf(ctx->msg, sizeof ctx->msg, "decoded %dx%dx%d differs from its header",
                 (int)ci->output_height, (int)ci->output_width, n);
        return JPEG_RUN_FAILED;
    }
    /* Freed by jpeg_destroy_decompress, so a jump cannot leak it. */
    JSAMPARRAY row =
        ci->mem->alloc_sarray((j_common_ptr)ci, JPOOL_IMAGE, (JDIMENSION)w * (JDIMENSION)n, 1);
    while (ci->output_scanline < ci->output_height) {
        size_t y = ci->output_scanline;
        if (jpeg_read_scanlines(ci, row, 1) != 1) { /* a memory source never suspends */
            snprintf(ctx->msg, sizeof ctx->msg, "decoding stalled at row %zu", y);
            return JPEG_RUN_FAILED;
        }
        convert_row(row[0], n, px + y * (size_t)w * (size_t)c, c, w);
    }
    /* No jpeg_finish_decompress: every pixel is in, and what follows the
     * image (trailing bytes, a missing EOI) does not matter to slim. */
    return JPEG_RUN_OK;
}

/* Reads the JPEG's header into hd and, when px is given, decodes it into
 * *px (free() it): (hd->h, hd->w, c) interleaved. */
static slim_status jpeg_read(const char *path, const unsigned char *buf, size_t len, int c,
                             image_header *hd, unsigned char **px) {
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx); /* cinfo.mem = NULL: destroy is safe whatever fails */
    ctx.cinfo.err = jpeg_std_error(&ctx.err);
    ctx.err.error_exit = jpeg_fail;
    ctx.err.emit_message = jpeg_message;
    ctx.cinfo.client_data = &ctx;
    ctx.progress.progress_monitor = jpeg_progress;
    int r = jpeg_run(&ctx, buf, len, px ? c : 0, hd);
    jpeg_destroy_decompress(&ctx.cinfo);
    if (r != JPEG_RUN_OK) free(ctx.px);
    if (r == JPEG_RUN_SIZE) return check_declared(path, hd);
    if (r == JPEG_RUN_NOMEM)
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for %dx%dx%d pixels", path, hd->h,
                          hd->w, c);
    if (r != JPEG_RUN_OK)
        return slim_error(SLIM_ERR_FORMAT, "%s: corrupt or unsupported JPEG: %s", path, ctx.msg);
    if (px) *px = ctx.px;
    return SLIM_OK;
}

/* Prepares the in-memory copy of a PNG for stb_image 2.27, which mishandles
 * two kinds of file that fuzzing produced (docs/RELIABILITY.md):
 *   - a chunk whose declared length runs past the end of the file: stb grows
 *     its IDAT buffer to the declared size (up to 4 GB) before it finds the
 *     data missing. Such a file is truncated or corrupt and is refused here,
 *     as is one without IEND (which stb cannot decode either).
 *   - an empty IDAT chunk before any data: stb computes NULL + 0 and calls
 *     memcpy(NULL, src, 0), undefined behaviour. An empty IDAT carries
 *     nothing, so such chunks are cut out, in one pass.
 * Nothing after IEND is looked at (stb does not read it either). */
static slim_status png_prepare(const char *path, unsigned char *buf, size_t *len) {
    size_t n = *len, r = 8, w = 8; /* after the signature */
    for (;;) {
        if (n - r < 12)
            return slim_error(SLIM_ERR_FORMAT, "%s: truncated PNG (no IEND chunk)", path);
        size_t k =
            (size_t)buf[r] << 24 | (size_t)buf[r + 1] << 16 | (size_t)buf[r + 2] << 8 | buf[r + 3];
        if (k > n - r - 12)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: truncated or corrupt PNG (the chunk at byte %zu declares %zu "
                              "bytes; %zu remain)",
                              path, r, k, n - r - 12);
        int end = memcmp(buf + r + 4, "IEND", 4) == 0;
        if (k != 0 || memcmp(buf + r + 4, "IDAT", 4) != 0) {
            if (w != r) memmove(buf + w, buf + r, 12 + k);
            w += 12 + k;
        }
        r += 12 + k;
        if (end) break;
    }
    *len = w; /* the bytes after IEND are dropped */
    return SLIM_OK;
}

static uint32_t png_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The bytes a PNG's image data inflates to, by its IHDR (at byte 8 of a
 * file png_prepare accepted): per row of each pass (7 when interlaced),
 * one filter byte and the row's pixels; 0 for an IHDR that is not there or
 * not valid (stb refuses those itself). */
static uint64_t png_raw_bytes(const unsigned char *buf, size_t len) {
    if (len < 8 + 25 || png_be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0) return 0;
    uint64_t w = png_be32(buf + 16), h = png_be32(buf + 20);
    int depth = buf[24], type = buf[25], interlaced = buf[28];
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type */
    if (type > 6 || !channels[type] || depth < 1 || depth > 16) return 0;
    uint64_t bits = (uint64_t)channels[type] * (uint64_t)depth; /* per pixel */
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    if (!interlaced) return h * (1 + (w * bits + 7) / 8);
    uint64_t total = 0;
    for (int p = 0; p < 7; p++) {
        uint64_t pw = w > (uint64_t)x0[p] ? (w - x0[p] + dx[p] - 1) / dx[p] : 0;
        uint64_t ph = h > (uint64_t)y0[p] ? (h - y0[p] + dy[p] - 1) / dy[p] : 0;
        if (pw && ph) total += ph * (1 + (pw * bits + 7) / 8);
    }
    return total;
}

/* stb_image 2.27 inflates all of a PNG's image data into a buffer that
 * grows with it (deflate expands up to ~1030x; stb stops at 4 GB) and only
 * then uses what the image needs, so a few MB of crafted file could cost GBs
 * of memory (docs/RELIABILITY.md, bug 10). Inflated here first, through a
 * small window and counting, a stream that runs past what the IHDR's image
 * needs is refused before stb sees it. */
static slim_status png_check_inflate(const char *path, const unsigned char *buf, size_t len) {
    uint64_t need = png_raw_bytes(buf, len), got = 0;
    if (need == 0) return SLIM_OK;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return slim_error(SLIM_ERR_NOMEM, "%s: cannot start inflating the PNG's data", path);
    unsigned char window[16384];
    int zs = Z_OK;
    for (size_t r = 8; r + 12 <= len && zs != Z_STREAM_END && got <= need;) {
        size_t k = png_be32(buf + r);
        if (memcmp(buf + r + 4, "IDAT", 4) == 0) {
            z.next_in = (unsigned char *)(uintptr_t)(buf + r + 8);
            z.avail_in = (uInt)k;
            while (z.avail_in > 0 && zs == Z_OK && got <= need) {
                z.next_out = window;
                z.avail_out = sizeof window;
                zs = inflate(&z, Z_NO_FLUSH);
                got += sizeof window - z.avail_out;
                if (zs == Z_BUF_ERROR && z.avail_out > 0) zs = Z_OK; /* needs the next chunk */
            }
        }
        if (memcmp(buf + r + 4, "IEND", 4) == 0) break;
        r += 12 + k;
    }
    inflateEnd(&z);
    if (got > need)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: corrupt PNG: its image data inflates past the %llu bytes its "
                          "%ux%u image needs",
                          path, (unsigned long long)need, (unsigned)png_be32(buf + 16),
                          (unsigned)png_be32(buf + 20));
    /* Other faults (a damaged stream, too little data) are stb's to report. */
    return SLIM_OK;
}

/* As jpeg_read, for a PNG (buf is modified: png_prepare). */
static slim_status png_read(const char *path, unsigned char *buf, size_t len, int c,
                            image_header *hd, unsigned char **px) {
    SLIM_TRY(png_prepare(path, buf, &len));
    /* The cap before stb, which has a (larger) one of its own with a vaguer
     * message. */
    if (len >= 8 + 25 && png_be32(buf + 8) == 13 && memcmp(buf + 12, "IHDR", 4) == 0 &&
        png_be32(buf + 16) <= INT32_MAX && png_be32(buf + 20) <= INT32_MAX) {
        image_header declared = {(int)png_be32(buf + 20), (int)png_be32(buf + 16), 0};
        SLIM_TRY(check_declared(path, &declared));
    }
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp))
        return slim_error(SLIM_ERR_FORMAT, "%s: corrupt PNG: %s", path, stbi_failure_reason());
    hd->h = ih;
    hd->w = iw;
    hd->comp = comp;
    SLIM_TRY(check_declared(path, hd));
    if (!px) return SLIM_OK;
    SLIM_TRY(png_check_inflate(path, buf, len));
    unsigned char *dec = stbi_load_from_memory(buf, (int)len, &iw, &ih, &comp, c);
    if (!dec)
        return slim_error(SLIM_ERR_FORMAT, "%s: cannot decode PNG: %s", path,
                          stbi_failure_reason());
    if (iw != hd->w || ih != hd->h) {
        stbi_image_free(dec);
        return slim_error(SLIM_ERR_FORMAT, "%s: decoded size %dx%d differs from its header", path,
                          ih, iw);
    }
    *px = dec; /* stbi_image_free is free() */
    return SLIM_OK;
}

/* Reads path's header into hd and, when px is given, decodes the picture
 * into *px (free() it): (hd->h, hd->w, c) interleaved. */
static slim_status read_picture(const char *path, int c, image_header *hd, unsigned char **px) {
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char *buf = NULL;
    size_t len = 0;
    SLIM_TRY(read_image_file(path, &buf, &len));
    slim_status st;
    if (len >= sizeof png_sig && memcmp(buf, png_sig, sizeof png_sig) == 0)
        st = png_read(path, buf, len, c, hd, px);
    else if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        st = jpeg_read(path, buf, len, c, hd, px);
    else
        st = slim_error(SLIM_ERR_FORMAT, "%s: not a PNG or JPEG image (by its first bytes)", path);
    free(buf);
    return st;
}

slim_status data_picture_info(const char *path, int *h, int *w, int *comp) {
    image_header hd;
    SLIM_TRY(read_picture(path, 0, &hd, NULL));
    *h = hd.h;
    *w = hd.w;
    *comp = hd.comp;
    return SLIM_OK;
}

/* The settings of a picture made into a c x h x w input; what names the
 * picture in errors. */
static slim_status check_target(const char *what, int c, int h, int w, slim_resize_mode mode,
                                double crop_scale) {
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", what, c, h, w);
    if (!(crop_scale >= 1) || crop_scale > 1e6)
        return slim_error(SLIM_ERR_ARG, "%s: crop scale %g must be >= 1", what, crop_scale);
    if ((unsigned)mode > SLIM_RESIZE_NONE)
        return slim_error(SLIM_ERR_ARG, "%s: unknown resize mode %d", what, (int)mode);
    return SLIM_OK;
}

/* px: (src_h, src_w, c) interleaved, already of c channels, resized by mode
 * into out: (c, h, w) planar. */
static slim_status place_picture(const char *what, const unsigned char *px, int src_h, int src_w,
                                 int c, int h, int w, slim_resize_mode mode, double crop_scale,
                                 uint8_t *out) {
    unsigned char *sized = NULL;
    if (mode == SLIM_RESIZE_NONE && (src_h != h || src_w != w))
        return slim_error(SLIM_ERR_SHAPE,
                          "%s: image is %dx%d (height x width) but %dx%d is expected (resize "
                          "mode none)",
                          what, src_h, src_w, h, w);
    if (mode != SLIM_RESIZE_NONE) {
        data_resize_geom g;
        data_resize_geometry(src_h, src_w, h, w, mode, crop_scale, &g);
        sized = malloc((size_t)h * (size_t)w * (size_t)c);
        if (!sized)
            return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for a %dx%dx%d picture", what, c,
                              h, w);
        slim_status st = data_resize_bytes(px, src_h, src_w, c, &g, sized, h, w);
        if (st != SLIM_OK) {
            free(sized);
            return slim_error_prefix(st, "%s", what);
        }
    }
    /* The decoders give interleaved HWC; slim wants planar CHW. */
    const unsigned char *in = sized ? sized : px;
    size_t plane = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++)
        for (size_t p = 0; p < plane; p++)
            out[k * plane + p] = in[p * (size_t)c + k];
    free(sized);
    return SLIM_OK;
}

slim_status data_decode_picture(const char *path, int c, int h, int w, slim_resize_mode mode,
                                double crop_scale, uint8_t *out) {
    if (crop_scale == 0) crop_scale = SLIM_DATA_CROP_SCALE;
    SLIM_TRY(check_target(path, c, h, w, mode, crop_scale));
    image_header hd;
    unsigned char *px = NULL;
    SLIM_TRY(read_picture(path, c, &hd, &px));
    slim_status st = place_picture(path, px, hd.h, hd.w, c, h, w, mode, crop_scale, out);
    free(px);
    return st;
}

/* bytes: (c, h, w) -> x: (c, h, w) normalised, through data_lut's tables. */
static void normalise_bytes(const uint8_t *bytes, int c, size_t plane, const float *mean,
                            const float *std, float *x) {
    float lut[256];
    for (int k = 0; k < c; k++) {
        data_lut(lut, mean[k], std[k]);
        for (size_t p = 0; p < plane; p++)
            x[k * plane + p] = lut[bytes[k * plane + p]];
    }
}

static slim_status check_norm(const char *what, int c, const float *mean, const float *std) {
    for (int k = 0; k < c; k++)
        if (!(std[k] > 0.0f) || !(mean[k] == mean[k]))
            return slim_error(SLIM_ERR_ARG, "%s: std[%d] must be > 0 and mean[%d] a number", what,
                              k, k);
    return SLIM_OK;
}

slim_status slim_data_load_image_ex(const char *path, int c, int h, int w, slim_resize_mode resize,
                                    double crop_scale, const float *mean, const float *std,
                                    float *x) {
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", path, c, h, w);
    SLIM_TRY(check_norm(path, c, mean, std));
    size_t plane = (size_t)h * (size_t)w;
    uint8_t *bytes = malloc(plane * (size_t)c);
    if (!bytes)
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for a %dx%dx%d picture", path, c, h,
                          w);
    slim_status st = data_decode_picture(path, c, h, w, resize, crop_scale, bytes);
    if (st == SLIM_OK) normalise_bytes(bytes, c, plane, mean, std, x);
    free(bytes);
    return st;
}

slim_status slim_data_pixels_to_input(const uint8_t *px, int src_h, int src_w, int src_c, int c,
                                      int h, int w, slim_resize_mode resize, double crop_scale,
                                      const float *mean, const float *std, float *x) {
    char what[64];
    snprintf(what, sizeof what, "pixels (%dx%dx%d)", src_h, src_w, src_c);
    if (crop_scale == 0) crop_scale = SLIM_DATA_CROP_SCALE;
    SLIM_TRY(check_target(what, c, h, w, resize, crop_scale));
    SLIM_TRY(check_norm(what, c, mean, std));
    if (!px || src_h < 1 || src_w < 1 || (src_c != 1 && src_c != 3))
        return slim_error(SLIM_ERR_ARG,
                          "%s: want a picture of at least 1x1 pixels of 1 (gray) or 3 (RGB) "
                          "interleaved channels",
                          what);
    if ((uint64_t)src_h * (uint64_t)src_w > SLIM_DATA_MAX_PIXELS)
        return slim_error(SLIM_ERR_ARG, "%s: more than %llu pixels", what,
                          (unsigned long long)SLIM_DATA_MAX_PIXELS);
    size_t plane = (size_t)h * (size_t)w;
    unsigned char *conv = malloc((size_t)src_h * (size_t)src_w * (size_t)c);
    uint8_t *bytes = malloc(plane * (size_t)c);
    slim_status st = SLIM_OK;
    if (!conv || !bytes) {
        st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", what);
    } else {
        for (int y = 0; y < src_h; y++)
            convert_row(px + (size_t)y * (size_t)src_w * (size_t)src_c, src_c,
                        conv + (size_t)y * (size_t)src_w * (size_t)c, c, src_w);
        st = place_picture(what, conv, src_h, src_w, c, h, w, resize, crop_scale, bytes);
    }
    if (st == SLIM_OK) normalise_bytes(bytes, c, plane, mean, std, x);
    free(conv);
    free(bytes);
    return st;
}

slim_status slim_data_load_image(const char *path, int c, int h, int w, const float *mean,
                                 const float *std, float *x) {
    return slim_data_load_image_ex(path, c, h, w, SLIM_RESIZE_CROP, SLIM_DATA_CROP_SCALE, mean, std,
                                   x);
}
