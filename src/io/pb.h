/* A tiny protocol-buffers writer (encoding only), enough for the ONNX
 * exporter: varint, fixed32 and length-delimited fields into a growable byte
 * buffer. A nested message is encoded into its own buffer first and then
 * appended with slim_pb_message, since its length must precede it.
 *
 * Errors are sticky: once an allocation fails, `failed` is set, every later
 * call does nothing, and the owner checks the flag once at the end. This
 * keeps the encoders free of per-field error handling.
 *
 * Wire format: https://protobuf.dev/programming-guides/encoding/ . Repeated
 * scalars are written unpacked (one tag per element), which is what proto2
 * (ONNX's syntax) means by default and what every parser accepts.
 */
#ifndef SLIM_IO_PB_H
#define SLIM_IO_PB_H

#include <stddef.h>
#include <stdint.h>

typedef struct slim_pb_buf {
    uint8_t *data; /* len bytes of encoded fields (cap allocated) */
    size_t len, cap;
    int failed; /* an allocation failed; the content is incomplete */
} slim_pb_buf;

/* Wire types (the low 3 bits of a field's tag). */
enum { SLIM_PB_VARINT = 0, SLIM_PB_FIXED64 = 1, SLIM_PB_LEN = 2, SLIM_PB_FIXED32 = 5 };

void slim_pb_init(slim_pb_buf *b);
void slim_pb_free(slim_pb_buf *b);

/* A varint field: int32/int64/enum/bool (negative values as 10-byte
 * two's complement, as protobuf's int64 does). */
void slim_pb_int(slim_pb_buf *b, int field, int64_t v);
/* A float field (fixed32, IEEE-754 little-endian). */
void slim_pb_float(slim_pb_buf *b, int field, float v);
/* A length-delimited field: bytes, a string (without its NUL) or a nested
 * message already encoded in `sub`. A failed `sub` fails `b`. Strings are
 * written as valid UTF-8, as protobuf requires: each byte that does not
 * belong to a valid UTF-8 sequence becomes '?' (the length is unchanged). */
void slim_pb_bytes(slim_pb_buf *b, int field, const void *data, size_t n);
void slim_pb_string(slim_pb_buf *b, int field, const char *s);
void slim_pb_message(slim_pb_buf *b, int field, const slim_pb_buf *sub);
/* A bytes field holding n floats as little-endian IEEE-754 (ONNX raw_data),
 * independent of the host's byte order. */
void slim_pb_floats_le(slim_pb_buf *b, int field, const float *x, size_t n);
/* The bytes of a field's tag and length prefix (for writing a large nested
 * message straight to a file after its header). Returns the header length;
 * out must hold 20 bytes. */
size_t slim_pb_len_header(int field, size_t n, uint8_t *out);

#endif
