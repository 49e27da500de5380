/* The protocol-buffers writer of pb.h. */
#include "io/pb.h"

#include <stdlib.h>
#include <string.h>

#include "slim/core.h"

void slim_pb_init(slim_pb_buf *b) { memset(b, 0, sizeof *b); }

void slim_pb_free(slim_pb_buf *b) {
    free(b->data);
    slim_pb_init(b);
}

/* Makes room for n more bytes; 0 (and the sticky flag) on failure. */
static int reserve(slim_pb_buf *b, size_t n) {
    if (b->failed) return 0;
    if (n <= b->cap - b->len) return 1;
    size_t need = b->len + n;
    if (need < b->len) goto fail; /* overflow */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) goto fail;
    b->data = p;
    b->cap = cap;
    return 1;
fail:
    b->failed = 1;
    slim_error(SLIM_ERR_NOMEM, "out of memory encoding %zu bytes of protobuf", b->len);
    return 0;
}

/* Encodes v as a varint into out (at most 10 bytes); returns the length. */
static size_t varint_bytes(uint64_t v, uint8_t *out) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void put(slim_pb_buf *b, const void *data, size_t n) {
    if (!n || !reserve(b, n)) return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void put_varint(slim_pb_buf *b, uint64_t v) {
    uint8_t tmp[10];
    put(b, tmp, varint_bytes(v, tmp));
}

static void put_tag(slim_pb_buf *b, int field, int wire) {
    put_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

void slim_pb_int(slim_pb_buf *b, int field, int64_t v) {
    put_tag(b, field, SLIM_PB_VARINT);
    put_varint(b, (uint64_t)v);
}

static void put_u32_le(uint8_t *p, uint32_t u) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

void slim_pb_float(slim_pb_buf *b, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    uint8_t le[4];
    put_u32_le(le, u);
    put_tag(b, field, SLIM_PB_FIXED32);
    put(b, le, sizeof le);
}

size_t slim_pb_len_header(int field, size_t n, uint8_t *out) {
    size_t k = varint_bytes((uint64_t)field << 3 | SLIM_PB_LEN, out);
    return k + varint_bytes((uint64_t)n, out + k);
}

void slim_pb_bytes(slim_pb_buf *b, int field, const void *data, size_t n) {
    uint8_t hdr[20];
    put(b, hdr, slim_pb_len_header(field, n, hdr));
    put(b, data, n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0] does not
 * start one (stray continuation byte, overlong form, surrogate, > U+10FFFF,
 * truncated sequence). */
static size_t utf8_seq(const uint8_t *s) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xC2 && c <= 0xDF   ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (!n) return 0;
    /* the second byte's range excludes overlong forms and surrogates */
    uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

void slim_pb_string(slim_pb_buf *b, int field, const char *s) {
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s), i = 0, k;
    while (i < n && (k = utf8_seq(u + i)) != 0)
        i += k;
    if (i == n) {
        slim_pb_bytes(b, field, s, n);
        return;
    }
    /* Protobuf declares strings UTF-8 and strict decoders (Go, Java, any
     * proto3 reader) reject anything else: replace each byte outside a
     * valid sequence by '?'. */
    uint8_t hdr[20];
    put(b, hdr, slim_pb_len_header(field, n, hdr));
    if (!reserve(b, n)) return;
    for (i = 0; i < n;) {
        k = utf8_seq(u + i);
        if (k) {
            memcpy(b->data + b->len, u + i, k);
            b->len += k;
            i += k;
        } else {
            b->data[b->len++] = '?';
            i++;
        }
    }
}

void slim_pb_message(slim_pb_buf *b, int field, const slim_pb_buf *sub) {
    if (sub->failed) {
        b->failed = 1;
        return;
    }
    slim_pb_bytes(b, field, sub->data, sub->len);
}

void slim_pb_floats_le(slim_pb_buf *b, int field, const float *x, size_t n) {
    if (n > SIZE_MAX / 4) {
        b->failed = 1;
        slim_error(SLIM_ERR_NOMEM, "protobuf: %zu floats do not fit in memory", n);
        return;
    }
    uint8_t hdr[20];
    put(b, hdr, slim_pb_len_header(field, 4 * n, hdr));
    if (!n || !reserve(b, 4 * n)) return;
    uint8_t *p = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        put_u32_le(p + 4 * i, u);
    }
    b->len += 4 * n;
}
