/* The checkpoint container's byte layout and the rules shared by its reader
 * (ckpt_read.c), its writer (ckpt_write.c) and the in-memory container
 * (ckpt.c). Private to src/io.
 *
 * Every field is read and written one byte at a time through ckpt_get_u32 /
 * ckpt_put_u32 and friends, so nothing depends on the host's endianness, on
 * sizeof(int) or on struct padding. docs/CHECKPOINT_FORMAT.md is the byte
 * layout; the constants below are its table.
 */
#ifndef SLIM_IO_CKPT_FORMAT_H
#define SLIM_IO_CKPT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "slim/ckpt.h"

/* ---- the layout (docs/CHECKPOINT_FORMAT.md) ---------------------------- */

#define HDR_SIZE 128     /* fixed header, including the section directory */
#define HDR_VERSION 8    /* u32 */
#define HDR_KIND 12      /* u32 */
#define HDR_FLAGS 16     /* u32, no flags defined in version 1: must be 0 */
#define HDR_RESERVED 20  /* u32, must be 0 */
#define HDR_FILE_SIZE 24 /* u64, total bytes including the checksum */
#define HDR_DIR 32       /* N_SECTIONS x (offset u64, length u64) */
#define HDR_TAIL 112     /* 16 reserved bytes up to HDR_SIZE, must be 0 */

enum { SEC_TEXT, SEC_META, SEC_POS, SEC_TABLE, SEC_DATA, N_SECTIONS };

#define META_HEAD 4      /* u32 count */
#define META_ENTRY_MIN 9 /* u32 key length, >= 1 key byte, u32 value length */
#define POS_HEAD 16      /* u32 epoch, u32 n_rng, u64 step */
#define POS_RNG 16       /* u64 state, u64 inc */
#define TABLE_HEAD 8     /* u32 count, u32 reserved (0) */
#define ENT_SIZE 108     /* one tensor-table entry: */
#define ENT_NAME 0       /*   char[64], NUL-terminated, NUL-padded */
#define ENT_NDIM 64      /*   u32 */
#define ENT_SHAPE 68     /*   u32 x 4, unused dims 0 */
#define ENT_FLAGS 84     /*   u32, bit 0: optimizer state */
#define ENT_DTYPE 88     /*   u32, 0 = float32 little-endian */
#define ENT_OFFSET 92    /*   u64, absolute file offset, multiple of 64 */
#define ENT_NBYTES 100   /*   u64, 4 * numel */
#define TRAILER 4        /* u32 CRC-32 of bytes [0, file_size - 4) */

#define ENT_FLAG_OPTIM 1u
#define DATA_ALIGN 64
#define SECTION_ALIGN 8

extern const uint8_t ckpt_magic[8]; /* "SLIMCKPT", no NUL */

/* ---- little-endian fields ---------------------------------------------- */

static inline uint32_t ckpt_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ckpt_get_u64(const uint8_t *p) {
    return (uint64_t)ckpt_get_u32(p) | (uint64_t)ckpt_get_u32(p + 4) << 32;
}
static inline void ckpt_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ckpt_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t ckpt_align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* zlib's crc32 continued over n bytes (any size). */
uint32_t ckpt_crc(uint32_t crc, const uint8_t *p, size_t n);

/* ---- rules shared by the container, the writer and the reader ----------- */

/* 1 if s[0..n) is well-formed UTF-8 without NUL (no overlongs, surrogates or
 * code points above U+10FFFF); otherwise 0 and *bad is the offending offset. */
int ckpt_utf8_valid(const uint8_t *s, size_t n, size_t *bad);

/* Keys and tensor names: printable ASCII without spaces, so that they can be
 * listed and typed on a command line. */
static inline int ckpt_name_char_ok(unsigned char c) { return c >= 0x21 && c <= 0x7E; }

/* NULL if the name / key / shape is valid, else what is wrong with it.
 * ckpt_shape_problem also returns numel in *numel (0 on failure), the byte
 * count 4 * numel checked against overflow too. */
const char *ckpt_tensor_name_problem(const char *name);
const char *ckpt_key_problem(const char *key);
const char *ckpt_shape_problem(int ndim, const int *shape, size_t *numel);

/* Finds a string that occurs twice among n strings, the i-th at
 * *(char **)((char *)strs + i * stride); *dup is NULL if none. O(n log n). */
slim_status ckpt_find_duplicate(const char *const *strs, size_t stride, size_t n, const char **dup);

/* numel floats, 64-byte aligned (free()); NULL with a message. */
float *ckpt_alloc_floats(size_t numel);
/* A NUL-terminated copy of n bytes (free()); NULL when out of memory. */
char *ckpt_dup_bytes(const void *p, size_t n);

#endif
