/* IDX (MNIST-format) files, read through zlib's gz* functions so that .gz
 * and uncompressed files both work (gzread passes plain files through).
 *
 * The header's sizes are not trusted for allocation: bytes stream through a
 * fixed 1 MB chunk into a buffer that grows by doubling as data actually
 * arrives (glibc's realloc of such large blocks remaps pages rather than
 * copying), so a tiny file that declares ten million images fails on its
 * missing bytes having allocated a few MB. The pixels are kept as bytes
 * (data.h: normalised when copied out). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned byte, 1 dimension */
#define IDX_MAX_SIDE 65535u
#define IDX_MAX_PIXELS (1u << 24)  /* per image */
#define IDX_CHUNK (1u << 20)       /* bytes read from zlib at a time */
#define IDX_GZ_BUFFER (256u << 10) /* zlib's input buffer: fewer syscalls */
#define IDX_MAX_READ (1u << 30)    /* gzread takes an unsigned, returns int */
#define IDX_N_CLASSES 10

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static slim_status gz_fail(gzFile f, const char *path) {
    int errnum = 0;
    const char *msg = gzerror(f, &errnum);
    if (errnum == Z_ERRNO)
        return slim_error(SLIM_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    return slim_error(SLIM_ERR_FORMAT, "%s: corrupt gzip data: %s", path, msg);
}

static slim_status gz_open(const char *path, gzFile *out) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return slim_error(SLIM_ERR_IO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(f, IDX_GZ_BUFFER);
    *out = f;
    return SLIM_OK;
}

/* Reads up to len bytes (fewer only at end of data) into buf. */
static slim_status gz_read_some(gzFile f, const char *path, unsigned char *buf, size_t len,
                                size_t *got) {
    *got = 0;
    while (*got < len) {
        size_t chunk = len - *got;
        if (chunk > IDX_MAX_READ) chunk = IDX_MAX_READ;
        int r = gzread(f, buf + *got, (unsigned)chunk);
        if (r < 0) return gz_fail(f, path);
        if (r == 0) break;
        *got += (size_t)r;
    }
    return SLIM_OK;
}

/* Grows *buf to hold at least `need` bytes, doubling, but never beyond
 * `max`. */
static slim_status grow(unsigned char **buf, size_t *cap, size_t need, size_t max,
                        const char *path) {
    if (need <= *cap) return SLIM_OK;
    size_t next = *cap ? *cap : 1;
    while (next < need)
        next = next > max / 2 ? max : next * 2;
    unsigned char *grown = realloc(*buf, next);
    if (!grown) return slim_error(SLIM_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, next);
    *buf = grown;
    *cap = next;
    return SLIM_OK;
}

/* Streams exactly `want` body bytes through a fixed chunk buffer, keeps the
 * first `keep` of them in *out, which grows with the data actually read, and
 * checks that nothing follows. `what` states the header's claim for the
 * messages. */
static slim_status read_body(gzFile f, const char *path, uint64_t want, size_t keep,
                             const char *what, unsigned char **out) {
    *out = NULL;
    size_t chunk_len = want < IDX_CHUNK ? (size_t)want : IDX_CHUNK;
    unsigned char *chunk = malloc(chunk_len ? chunk_len : 1); /* want >= 1 */
    if (!chunk) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", path);
    unsigned char *buf = NULL;
    size_t cap = 0;
    uint64_t got = 0;
    slim_status st = SLIM_OK;
    while (got < want) {
        size_t len = want - got < chunk_len ? (size_t)(want - got) : chunk_len;
        size_t n = 0;
        st = gz_read_some(f, path, chunk, len, &n);
        if (st != SLIM_OK || n == 0) break;
        if (got < keep) {
            size_t take = keep - (size_t)got < n ? keep - (size_t)got : n;
            st = grow(&buf, &cap, (size_t)got + take, keep, path);
            if (st != SLIM_OK) break;
            memcpy(buf + got, chunk, take);
        }
        got += n;
        if (n < len) break; /* end of data */
    }
    if (st == SLIM_OK && got < want)
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: truncated: the header declares %s (%llu bytes) but only %llu "
                        "bytes follow it",
                        path, what, (unsigned long long)want, (unsigned long long)got);
    if (st == SLIM_OK) {
        size_t more = 0;
        st = gz_read_some(f, path, chunk, 1, &more);
        if (st == SLIM_OK && more > 0)
            st = slim_error(SLIM_ERR_FORMAT,
                            "%s: unexpected data after the %llu bytes that the header declares "
                            "(%s)",
                            path, (unsigned long long)want, what);
    }
    free(chunk);
    if (st != SLIM_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return SLIM_OK;
}

static slim_status check_magic(const char *path, uint32_t magic, uint32_t expected) {
    if (magic == expected) return SLIM_OK;
    const char *hint = magic == IDX_IMAGES_MAGIC   ? " (an IDX image file, not a label file)"
                       : magic == IDX_LABELS_MAGIC ? " (an IDX label file, not an image file)"
                                                   : "";
    return slim_error(SLIM_ERR_FORMAT, "%s: magic number 0x%08x, expected 0x%08x%s", path,
                      (unsigned)magic, (unsigned)expected, hint);
}

/* Reads a `len`-byte header into hdr, checking the magic number as soon as
 * it is there (so a foreign file is named as such, not as truncated). */
static slim_status read_header(gzFile f, const char *path, uint32_t magic, unsigned char *hdr,
                               size_t len) {
    size_t got = 0, more = 0;
    SLIM_TRY(gz_read_some(f, path, hdr, 4, &got));
    if (got == 4) SLIM_TRY(check_magic(path, be32(hdr), magic));
    if (got == 4) SLIM_TRY(gz_read_some(f, path, hdr + 4, len - 4, &more));
    if (got + more < len)
        return slim_error(SLIM_ERR_FORMAT, "%s: truncated IDX header (%zu of %zu bytes)", path,
                          got + more, len);
    return SLIM_OK;
}

static slim_status check_count(const char *path, uint32_t n, const char *what) {
    if (n == 0) return slim_error(SLIM_ERR_FORMAT, "%s: holds no %s", path, what);
    if (n > SLIM_DATA_MAX_IMAGES)
        return slim_error(SLIM_ERR_FORMAT, "%s: declares %u %s (more than the %u allowed)", path,
                          (unsigned)n, what, SLIM_DATA_MAX_IMAGES);
    return SLIM_OK;
}

/* Labels: header (magic, n), then n bytes, each < 10. */
static slim_status read_labels(const char *path, uint32_t *n_out, unsigned char **out) {
    gzFile f = NULL;
    SLIM_TRY(gz_open(path, &f));
    unsigned char hdr[8];
    uint32_t n = 0;
    unsigned char *labels = NULL;
    slim_status st = read_header(f, path, IDX_LABELS_MAGIC, hdr, sizeof hdr);
    if (st == SLIM_OK) st = check_count(path, n = be32(hdr + 4), "labels");
    if (st == SLIM_OK) {
        char what[64];
        snprintf(what, sizeof what, "%u labels", (unsigned)n);
        st = read_body(f, path, n, n, what, &labels);
    }
    gzclose(f);
    if (st != SLIM_OK) return st;
    const unsigned char *lab = labels;
    for (uint32_t i = 0; i < n; i++) {
        if (lab[i] >= IDX_N_CLASSES) {
            st = slim_error(SLIM_ERR_FORMAT, "%s: label %u of image %u is not in 0..%d", path,
                            (unsigned)lab[i], (unsigned)i, IDX_N_CLASSES - 1);
            free(labels);
            return st;
        }
    }
    *n_out = n;
    *out = labels;
    return SLIM_OK;
}

slim_status data_load_idx_limit(const char *images_path, const char *labels_path, float mean,
                                float std, size_t limit, slim_dataset **out) {
    *out = NULL;
    if (!(std > 0.0f))
        return slim_error(SLIM_ERR_ARG, "IDX: std must be > 0 (got %g)", (double)std);
    uint32_t n_labels = 0;
    unsigned char *labels = NULL;
    SLIM_TRY(read_labels(labels_path, &n_labels, &labels));

    gzFile f = NULL;
    slim_status st = gz_open(images_path, &f);
    if (st != SLIM_OK) {
        free(labels);
        return st;
    }
    unsigned char hdr[16];
    unsigned char *images = NULL;
    uint32_t n = 0, rows = 0, cols = 0;
    size_t keep = 0;
    st = read_header(f, images_path, IDX_IMAGES_MAGIC, hdr, sizeof hdr);
    if (st == SLIM_OK) st = check_count(images_path, n = be32(hdr + 4), "images");
    if (st == SLIM_OK) {
        rows = be32(hdr + 8);
        cols = be32(hdr + 12);
        if (rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE ||
            (uint64_t)rows * cols > IDX_MAX_PIXELS)
            st = slim_error(SLIM_ERR_FORMAT, "%s: implausible image size %ux%u", images_path,
                            (unsigned)rows, (unsigned)cols);
    }
    /* Compare the counts before reading the pixels: fail fast. */
    if (st == SLIM_OK && n != n_labels)
        st = slim_error(SLIM_ERR_FORMAT, "%s declares %u images but %s declares %u labels",
                        images_path, (unsigned)n, labels_path, (unsigned)n_labels);
    if (st == SLIM_OK) {
        char what[96];
        snprintf(what, sizeof what, "%u images of %ux%u", (unsigned)n, (unsigned)rows,
                 (unsigned)cols);
        keep = limit && limit < n ? limit : n;
        st =
            read_body(f, images_path, (uint64_t)n * rows * cols, keep * rows * cols, what, &images);
    }
    gzclose(f);

    slim_dataset *ds = NULL;
    if (st == SLIM_OK) st = data_new_bytes(0, 1, (int)rows, (int)cols, IDX_N_CLASSES, &ds);
    if (st == SLIM_OK) st = data_set_source(ds, images_path);
    if (st == SLIM_OK) {
        int32_t *lab = realloc(ds->labels, keep * sizeof *lab);
        if (!lab) {
            st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", labels_path);
        } else {
            ds->labels = lab;
            for (size_t i = 0; i < keep; i++)
                lab[i] = labels[i];
            free(ds->pixels);
            ds->pixels = images; /* the dataset owns it from here */
            images = NULL;
            ds->n = keep;
            ds->mean[0] = mean;
            ds->std[0] = std;
            ds->kind = "idx";
        }
    }
    free(images);
    free(labels);
    if (st != SLIM_OK) {
        slim_dataset_free(ds);
        return st;
    }
    *out = ds;
    return SLIM_OK;
}

slim_status slim_data_load_idx(const char *images_path, const char *labels_path, float mean,
                               float std, slim_dataset **out) {
    return data_load_idx_limit(images_path, labels_path, mean, std, 0, out);
}
