/* Image folders, root/<class>/<image>.png|jpg|jpeg: PNG decoded with
 * stb_image, JPEG with libjpeg-turbo.
 *
 * Why two decoders: stb_image 2.27 (Debian 12) has memory-safety bugs in its
 * JPEG decoder that fuzzing found (an out-of-bounds write on a Huffman table
 * of more than 256 codes, an undefined shift on corrupt data;
 * docs/RELIABILITY.md). Only stb's PNG decoder is compiled in
 * (STBI_ONLY_PNG), so that code is not even present; JPEG goes to
 * libjpeg-turbo, which is itself fuzzed continuously upstream. This file
 * holds the one STB_IMAGE_IMPLEMENTATION of the library: no other file of
 * slim may define it.
 *
 * A file is read whole into memory first (regular files only, at most
 * IMAGE_MAX_FILE bytes) and its format is told by its first bytes, not its
 * name. Images are checked, never resized: the size is read from the header
 * before decoding, so a file that declares a huge size is refused without
 * allocating for it. Both decoders produce the same channel conversions
 * (stb's rules): gray -> RGB replicates, RGB -> gray is
 * (77 r + 150 g + 29 b) >> 8, a missing alpha channel reads 255, and an alpha
 * channel not asked for is dropped. */
#include "internal.h"

#include <dirent.h>
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

#define PATH_LEN 4096
/* An image a network takes unresized is far smaller than this; the cap only
 * keeps a stray huge file from being read into memory whole. */
#define IMAGE_MAX_FILE_MIB 64
#define IMAGE_MAX_FILE ((off_t)IMAGE_MAX_FILE_MIB << 20)
/* A progressive JPEG is decoded scan by scan, each pass touching the whole
 * image, so a small file of many tiny scans could cost a lot of time.
 * Encoders use about 10; libjpeg-turbo's own fuzz targets stop at 500. */
#define JPEG_MAX_SCANS 1000

/* A growable list of strings. */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void list_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static slim_status list_push(name_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
        l->v = v;
        l->cap = cap;
    }
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (!copy) return slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
    memcpy(copy, s, len);
    l->v[l->n++] = copy;
    return SLIM_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
           strcasecmp(dot, ".jpeg") == 0;
}

/* Sorted entries of dir (hidden ones skipped) that are directories
 * (want_dirs) or image files (!want_dirs). */
static slim_status list_dir(const char *dir, int want_dirs, name_list *out) {
    DIR *d = opendir(dir);
    if (!d) return slim_error(SLIM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    slim_status st = SLIM_OK;
    struct dirent *e;
    char path[PATH_LEN];
    while (st == SLIM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !is_image_name(e->d_name)) continue;
        st = data_join(path, sizeof path, dir, e->d_name);
        if (st != SLIM_OK) break;
        if (want_dirs ? data_is_dir(path) : data_is_file(path)) st = list_push(out, e->d_name);
    }
    closedir(d);
    if (st != SLIM_OK) {
        list_free(out);
        return st;
    }
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return SLIM_OK;
}

slim_status data_list_classes(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    name_list l = {0};
    SLIM_TRY(list_dir(dir, 1, &l));
    if (l.n == 0)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: no class subdirectories (expected %s/<class>/<image>.png|jpg)", dir,
                          dir);
    if (l.n > INT32_MAX) {
        list_free(&l);
        return slim_error(SLIM_ERR_FORMAT, "%s: too many classes", dir);
    }
    *names = l.v;
    *n = (int)l.n;
    return SLIM_OK;
}

void data_free_names(char **names, int n) {
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- reading and decoding one image ------------------------------------ */

/* What an image's header says. */
typedef struct image_header {
    int h, w;
    int comp; /* channels stored: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA */
} image_header;

static slim_status size_mismatch(const char *path, const image_header *hd, int h, int w) {
    return slim_error(SLIM_ERR_SHAPE,
                      "%s: image is %dx%d (height x width) but %dx%d is expected "
                      "(slim does not resize images)",
                      path, hd->h, hd->w, h, w);
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
    if (sb.st_size > IMAGE_MAX_FILE) {
        close(fd);
        return slim_error(SLIM_ERR_FORMAT, "%s: %lld bytes, more than an image may have (%d MiB)",
                          path, (long long)sb.st_size, IMAGE_MAX_FILE_MIB);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    unsigned char *b = malloc(size ? size : 1);
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
} jpeg_ctx;

enum { JPEG_RUN_OK, JPEG_RUN_FAILED, JPEG_RUN_SIZE };

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

/* Reads the header of the JPEG in buf into hd and, when px is given and the
 * size is h x w, decodes it into px: (h, w, c) interleaved. Returns a
 * JPEG_RUN_* code; on JPEG_RUN_FAILED ctx->msg says why. After a longjmp
 * only ctx is used. */
static int jpeg_run(jpeg_ctx *ctx, const unsigned char *buf, size_t len, int c, int h, int w,
                    image_header *hd, unsigned char *px) {
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
    if (!px) return JPEG_RUN_OK;
    if (hd->h != h || hd->w != w) return JPEG_RUN_SIZE;
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

static slim_status jpeg_read(const char *path, const unsigned char *buf, size_t len, int c, int h,
                             int w, image_header *hd, unsigned char *px) {
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx); /* cinfo.mem = NULL: destroy is safe whatever fails */
    ctx.cinfo.err = jpeg_std_error(&ctx.err);
    ctx.err.error_exit = jpeg_fail;
    ctx.err.emit_message = jpeg_message;
    ctx.cinfo.client_data = &ctx;
    ctx.progress.progress_monitor = jpeg_progress;
    int r = jpeg_run(&ctx, buf, len, c, h, w, hd, px);
    jpeg_destroy_decompress(&ctx.cinfo);
    if (r == JPEG_RUN_SIZE) return size_mismatch(path, hd, h, w);
    if (r != JPEG_RUN_OK)
        return slim_error(SLIM_ERR_FORMAT, "%s: corrupt or unsupported JPEG: %s", path, ctx.msg);
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

static slim_status png_read(const char *path, unsigned char *buf, size_t len, int c, int h, int w,
                            image_header *hd, unsigned char *px) {
    SLIM_TRY(png_prepare(path, buf, &len));
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(buf, (int)len, &iw, &ih, &comp))
        return slim_error(SLIM_ERR_FORMAT, "%s: corrupt PNG: %s", path, stbi_failure_reason());
    hd->h = ih;
    hd->w = iw;
    hd->comp = comp;
    if (!px) return SLIM_OK;
    if (ih != h || iw != w) return size_mismatch(path, hd, h, w);
    SLIM_TRY(png_check_inflate(path, buf, len));
    unsigned char *dec = stbi_load_from_memory(buf, (int)len, &iw, &ih, &comp, c);
    if (!dec)
        return slim_error(SLIM_ERR_FORMAT, "%s: cannot decode PNG: %s", path,
                          stbi_failure_reason());
    if (iw != w || ih != h) {
        stbi_image_free(dec);
        return slim_error(SLIM_ERR_FORMAT, "%s: decoded size %dx%d differs from its header", path,
                          ih, iw);
    }
    memcpy(px, dec, (size_t)h * (size_t)w * (size_t)c);
    stbi_image_free(dec);
    return SLIM_OK;
}

/* Reads path's header into hd and, when px is given, decodes the image into
 * px: (h, w, c) interleaved, c channels; a size other than h x w is an
 * error (SLIM_ERR_SHAPE). */
static slim_status read_image(const char *path, int c, int h, int w, image_header *hd,
                              unsigned char *px) {
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char *buf = NULL;
    size_t len = 0;
    SLIM_TRY(read_image_file(path, &buf, &len));
    slim_status st;
    if (len >= sizeof png_sig && memcmp(buf, png_sig, sizeof png_sig) == 0)
        st = png_read(path, buf, len, c, h, w, hd, px);
    else if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        st = jpeg_read(path, buf, len, c, h, w, hd, px);
    else
        st = slim_error(SLIM_ERR_FORMAT, "%s: not a PNG or JPEG image (by its first bytes)", path);
    free(buf);
    return st;
}

/* Decodes path into x: (c, h, w), through per-channel lookup tables when
 * luts is given, else as the bytes themselves (into bytes: (c, h, w)). */
static slim_status decode(const char *path, int c, int h, int w, const float luts[][256], float *x,
                          uint8_t *bytes) {
    size_t plane = (size_t)h * (size_t)w;
    unsigned char *px = malloc(plane * (size_t)c);
    if (!px)
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for a %dx%dx%d image", path, c, h, w);
    image_header hd;
    slim_status st = read_image(path, c, h, w, &hd, px);
    /* The decoders give interleaved HWC; slim wants planar CHW. */
    if (st == SLIM_OK)
        for (int k = 0; k < c; k++)
            for (size_t p = 0; p < plane; p++) {
                unsigned char v = px[p * (size_t)c + k];
                if (luts)
                    x[k * plane + p] = luts[k][v];
                else
                    bytes[k * plane + p] = v;
            }
    free(px);
    return st;
}

/* STAND-IN for pic-data's data_decode_picture (no resizing): removed when
 * pic-data's branch is merged. */
slim_status data_decode_picture(const char *path, int c, int h, int w, slim_resize_mode mode,
                                double crop_scale, uint8_t *out) {
    (void)mode;
    (void)crop_scale;
    return decode(path, c, h, w, NULL, NULL, out);
}

slim_status slim_data_load_image(const char *path, int c, int h, int w, const float *mean,
                                 const float *std, float *x) {
    if (c < 1 || c > SLIM_DATA_MAX_CHANNELS || h < 1 || w < 1)
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", path, c, h, w);
    float luts[SLIM_DATA_MAX_CHANNELS][256];
    for (int k = 0; k < c; k++) {
        if (!(std[k] > 0.0f)) return slim_error(SLIM_ERR_ARG, "%s: std[%d] must be > 0", path, k);
        data_lut(luts[k], mean[k], std[k]);
    }
    return decode(path, c, h, w, (const float(*)[256])luts, x, NULL);
}

/* One image file and its label. */
typedef struct folder_item {
    char *path;
    int32_t label;
} folder_item;

static void items_free(folder_item *items, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(items[i].path);
    free(items);
}

/* Every image of every class subdirectory of dir, in (class, name) order,
 * labelled by position in `classes`. */
static slim_status collect(const char *dir, char *const *classes, int n_classes,
                           folder_item **items_out, size_t *n_out) {
    name_list subdirs = {0};
    SLIM_TRY(list_dir(dir, 1, &subdirs));
    folder_item *items = NULL;
    size_t n = 0, cap = 0;
    slim_status st = SLIM_OK;
    char class_dir[PATH_LEN], path[PATH_LEN];
    for (size_t s = 0; s < subdirs.n && st == SLIM_OK; s++) {
        int label = -1;
        for (int k = 0; k < n_classes; k++)
            if (strcmp(classes[k], subdirs.v[s]) == 0) label = k;
        if (label < 0) {
            st = slim_error(SLIM_ERR_FORMAT,
                            "%s: class '%s' is not one of the %d classes of the train split", dir,
                            subdirs.v[s], n_classes);
            break;
        }
        st = data_join(class_dir, sizeof class_dir, dir, subdirs.v[s]);
        name_list files = {0};
        if (st == SLIM_OK) st = list_dir(class_dir, 0, &files);
        if (st == SLIM_OK && files.n == 0)
            slim_log(SLIM_LOG_WARN, "%s: no .png/.jpg/.jpeg images in this class", class_dir);
        for (size_t i = 0; i < files.n && st == SLIM_OK; i++) {
            st = data_join(path, sizeof path, class_dir, files.v[i]);
            if (st != SLIM_OK) break;
            if (n == cap) {
                size_t next = cap ? cap * 2 : 256;
                folder_item *grown = realloc(items, next * sizeof *items);
                if (!grown) {
                    st = slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
                    break;
                }
                items = grown;
                cap = next;
            }
            size_t len = strlen(path) + 1;
            items[n].path = malloc(len);
            if (!items[n].path) {
                st = slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
                break;
            }
            memcpy(items[n].path, path, len);
            items[n].label = label;
            n++;
        }
        list_free(&files);
    }
    list_free(&subdirs);
    if (st == SLIM_OK && n == 0)
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: no images found (expected %s/<class>/<image>.png|jpg)", dir, dir);
    if (st != SLIM_OK) {
        items_free(items, n);
        return st;
    }
    *items_out = items;
    *n_out = n;
    return SLIM_OK;
}

/* Fills in the shape entries that opts leaves at 0 from the first image. */
static slim_status infer_shape(const char *path, const slim_data_options *opts, int *c, int *h,
                               int *w) {
    *c = opts ? opts->c : 0;
    *h = opts ? opts->h : 0;
    *w = opts ? opts->w : 0;
    if (*c && *h && *w) return SLIM_OK;
    image_header hd;
    SLIM_TRY(read_image(path, 0, 0, 0, &hd, NULL));
    if (!*c) *c = hd.comp <= 2 ? 1 : 3; /* drop alpha */
    if (!*h) *h = hd.h;
    if (!*w) *w = hd.w;
    return SLIM_OK;
}

slim_status slim_data_load_imagefolder(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts,
                                       slim_dataset **out) {
    *out = NULL;
    if (opts && (opts->c < 0 || opts->c > SLIM_DATA_MAX_CHANNELS || opts->h < 0 || opts->w < 0))
        return slim_error(SLIM_ERR_ARG, "%s: bad expected image shape %dx%dx%d", dir, opts->c,
                          opts->h, opts->w);
    char **own_names = NULL;
    int n_own = 0;
    if (!class_names) {
        SLIM_TRY(data_list_classes(dir, &own_names, &n_own));
        class_names = (const char *const *)own_names;
        n_classes = n_own;
    } else if (n_classes < 1) {
        return slim_error(SLIM_ERR_ARG, "%s: %d class names given", dir, n_classes);
    }
    folder_item *items = NULL;
    size_t total = 0;
    slim_dataset *ds = NULL;
    int c = 0, h = 0, w = 0;
    slim_status st = collect(dir, (char *const *)class_names, n_classes, &items, &total);
    if (st == SLIM_OK) st = infer_shape(items[0].path, opts, &c, &h, &w);
    size_t keep = opts && opts->limit && opts->limit < total ? opts->limit : total;
    const char **paths = st == SLIM_OK ? malloc(keep * sizeof *paths) : NULL;
    int32_t *labels = st == SLIM_OK ? malloc(keep * sizeof *labels) : NULL;
    if (st == SLIM_OK && (!paths || !labels))
        st = slim_error(SLIM_ERR_NOMEM, "image folder: out of memory");
    for (size_t k = 0; k < keep && st == SLIM_OK; k++) {
        /* Evenly spaced picks keep every class when limiting. */
        size_t i = keep == total ? k : (size_t)((unsigned long long)k * total / keep);
        paths[k] = items[i].path;
        labels[k] = items[i].label;
    }
    if (st == SLIM_OK)
        st = data_pictures_load(paths, labels, keep, c, h, w, n_classes, SLIM_RESIZE_NONE, 1.0,
                                data_decode_picture, 0, opts, &ds, NULL);
    if (st == SLIM_OK) st = data_set_class_names(ds, class_names, n_classes);
    if (st == SLIM_OK) st = data_set_source(ds, dir);
    if (st == SLIM_OK) {
        ds->kind = "imagefolder";
        data_norm(DATA_IMAGE_FOLDER, c, ds->mean, ds->std);
    }
    free(paths);
    free(labels);
    items_free(items, total);
    if (own_names) data_free_names(own_names, n_own);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return SLIM_OK;
}
