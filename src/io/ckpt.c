/* The checkpoint / exported-model container (include/slim/ckpt.h).
 *
 * Every field is read and written one byte at a time through get_u32/put_u32
 * and friends, so nothing here depends on the host's endianness, on
 * sizeof(int) or on struct padding. docs/CHECKPOINT_FORMAT.md is the byte
 * layout; the constants below are its table.
 *
 * Writing runs the same emitter twice over: once into a file (atomically,
 * through a temporary file) and once into memory for slim_ckpt_encode, so the
 * two cannot disagree. Reading takes the whole file into memory and checks
 * every size against the bytes actually present before it allocates or
 * copies anything.
 */
#include "slim/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

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
static const char *const section_name[N_SECTIONS] = {"model text", "metadata", "position",
                                                     "tensor table", "tensor data"};

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

static const uint8_t ckpt_magic[8] = {'S', 'L', 'I', 'M', 'C', 'K', 'P', 'T'};

/* ---- little-endian fields ---------------------------------------------- */

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* zlib's crc32 takes a uInt length; feed it in chunks. */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
    uLong c = crc;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* ---- checks shared by the writer and the reader ------------------------- */

/* 1 if s[0..n) is well-formed UTF-8 without NUL (no overlongs, surrogates or
 * code points above U+10FFFF); otherwise 0 and *bad is the offending offset. */
static int utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c != 0 && c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1Fu, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0Fu, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07u, min = 0x10000;
        else
            break; /* NUL, a stray continuation byte or 0xF8..0xFF */
        if (n - i < len) break;
        size_t k = 1;
        for (; k < len && (s[i + k] & 0xC0) == 0x80; k++)
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) break;
        i += len;
    }
    *bad = i;
    return i == n;
}

/* Keys and tensor names: printable ASCII without spaces, so that they can be
 * listed and typed on a command line. */
static int name_char_ok(unsigned char c) { return c >= 0x21 && c <= 0x7E; }

/* NULL if name is a valid tensor name, else what is wrong with it. */
static const char *tensor_name_problem(const char *name) {
    size_t n = strnlen(name, SLIM_CKPT_NAME_MAX);
    if (n == 0) return "is empty";
    if (n >= SLIM_CKPT_NAME_MAX) return "is longer than 63 bytes";
    for (size_t i = 0; i < n; i++)
        if (!name_char_ok((unsigned char)name[i]))
            return "has a byte outside printable ASCII (0x21..0x7e)";
    return NULL;
}

static const char *key_problem(const char *key) {
    size_t n = strnlen(key, SLIM_CKPT_KEY_MAX + 1);
    if (n == 0) return "is empty";
    if (n > SLIM_CKPT_KEY_MAX) return "is longer than 255 bytes";
    for (size_t i = 0; i < n; i++)
        if (!name_char_ok((unsigned char)key[i]))
            return "has a byte outside printable ASCII (0x21..0x7e)";
    return NULL;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a string that occurs twice among n strings (sorting a copy of the
 * pointers: O(n log n), since n may be 65536). *dup is NULL if none. */
static slim_status find_duplicate(const char *const *strs, size_t stride, size_t n,
                                  const char **dup) {
    *dup = NULL;
    if (n < 2) return SLIM_OK;
    const char **sorted = slim_calloc(n, sizeof *sorted);
    if (!sorted) return SLIM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        sorted[i] = *(const char *const *)((const char *)strs + i * stride);
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    for (size_t i = 1; i < n && !*dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
    free(sorted);
    return SLIM_OK;
}

static float *alloc_floats(size_t numel) {
    size_t bytes = (size_t)align_up((uint64_t)numel * 4, DATA_ALIGN);
    float *p = aligned_alloc(DATA_ALIGN, bytes);
    if (!p) slim_error(SLIM_ERR_NOMEM, "out of memory allocating %zu bytes of tensor data", bytes);
    return p;
}

/* ---- building a container ----------------------------------------------- */

slim_ckpt *slim_ckpt_new(uint32_t kind) {
    if (kind != SLIM_CKPT_TRAIN && kind != SLIM_CKPT_EXPORT) {
        slim_error(SLIM_ERR_ARG, "checkpoint: unknown kind %u (1 = training, 2 = export)", kind);
        return NULL;
    }
    slim_ckpt *ck = slim_calloc(1, sizeof *ck);
    if (!ck) return NULL;
    ck->kind = kind;
    ck->model_text = slim_calloc(1, 1);
    if (!ck->model_text) {
        free(ck);
        return NULL;
    }
    return ck;
}

void slim_ckpt_free(slim_ckpt *ck) {
    if (!ck) return;
    free(ck->model_text);
    for (int i = 0; i < ck->n_meta; i++) {
        if (ck->meta_keys) free(ck->meta_keys[i]);
        if (ck->meta_values) free(ck->meta_values[i]);
    }
    free(ck->meta_keys);
    free(ck->meta_values);
    for (int i = 0; i < ck->n_tensors; i++)
        free(ck->tensors[i].data);
    free(ck->tensors);
    free(ck);
}

static char *dup_bytes(const void *p, size_t n) {
    char *s = slim_calloc(n + 1, 1);
    if (s && n) memcpy(s, p, n);
    return s;
}

slim_status slim_ckpt_set_text(slim_ckpt *ck, const char *text) {
    if (!ck || !text) return slim_error(SLIM_ERR_ARG, "checkpoint: set_text: NULL argument");
    size_t n = strlen(text), bad;
    if (!utf8_valid((const uint8_t *)text, n, &bad))
        return slim_error(SLIM_ERR_ARG, "checkpoint: model text is not valid UTF-8 at byte %zu",
                          bad);
    char *copy = dup_bytes(text, n);
    if (!copy) return SLIM_ERR_NOMEM;
    free(ck->model_text);
    ck->model_text = copy;
    return SLIM_OK;
}

static int meta_index(const slim_ckpt *ck, const char *key) {
    for (int i = 0; i < ck->n_meta; i++)
        if (strcmp(ck->meta_keys[i], key) == 0) return i;
    return -1;
}

slim_status slim_ckpt_set_meta(slim_ckpt *ck, const char *key, const char *value) {
    if (!ck || !key || !value)
        return slim_error(SLIM_ERR_ARG, "checkpoint: set_meta: NULL argument");
    const char *why = key_problem(key);
    if (why) return slim_error(SLIM_ERR_ARG, "checkpoint: metadata key \"%.64s\" %s", key, why);
    size_t vlen = strlen(value), bad;
    if (vlen > UINT32_MAX)
        return slim_error(SLIM_ERR_ARG, "checkpoint: metadata \"%s\": value too long", key);
    if (!utf8_valid((const uint8_t *)value, vlen, &bad))
        return slim_error(SLIM_ERR_ARG,
                          "checkpoint: metadata \"%s\": value is not UTF-8 at byte %zu", key, bad);
    char *v = dup_bytes(value, vlen);
    if (!v) return SLIM_ERR_NOMEM;
    int i = meta_index(ck, key);
    if (i >= 0) {
        free(ck->meta_values[i]);
        ck->meta_values[i] = v;
        return SLIM_OK;
    }
    if (ck->n_meta >= SLIM_CKPT_MAX_META) {
        free(v);
        return slim_error(SLIM_ERR_ARG, "checkpoint: more than %d metadata keys",
                          SLIM_CKPT_MAX_META);
    }
    char *k = dup_bytes(key, strlen(key));
    /* Grow both arrays to exactly n + 1; a failed second realloc leaves the
     * first one merely larger than needed. */
    char **keys = k ? realloc(ck->meta_keys, (size_t)(ck->n_meta + 1) * sizeof *keys) : NULL;
    if (keys) ck->meta_keys = keys;
    char **vals = keys ? realloc(ck->meta_values, (size_t)(ck->n_meta + 1) * sizeof *vals) : NULL;
    if (!vals) {
        free(k);
        free(v);
        return slim_error(SLIM_ERR_NOMEM, "checkpoint: out of memory adding metadata");
    }
    ck->meta_values = vals;
    ck->meta_keys[ck->n_meta] = k;
    ck->meta_values[ck->n_meta] = v;
    ck->n_meta++;
    return SLIM_OK;
}

const char *slim_ckpt_get_meta(const slim_ckpt *ck, const char *key) {
    if (!ck || !key) return NULL;
    int i = meta_index(ck, key);
    return i >= 0 ? ck->meta_values[i] : NULL;
}

/* Checks ndim and shape and returns numel in *numel (0 on failure); the
 * byte count 4 * numel is checked against overflow too. */
static const char *shape_problem(int ndim, const int *shape, size_t *numel) {
    *numel = 0;
    if (ndim < 1 || ndim > SLIM_MAX_DIMS) return "must have 1 to 4 dimensions";
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) return "has a dimension < 1";
        if ((uint64_t)shape[d] > UINT64_MAX / 4 / n) return "is too large";
        n *= (uint64_t)shape[d];
    }
    if (n > SIZE_MAX / 4) return "is too large";
    *numel = (size_t)n;
    return NULL;
}

slim_status slim_ckpt_add_tensor(slim_ckpt *ck, const char *name, int ndim, const int *shape,
                                 const float *data, int is_optim) {
    if (!ck || !name || !shape)
        return slim_error(SLIM_ERR_ARG, "checkpoint: add_tensor: NULL argument");
    const char *why = tensor_name_problem(name);
    if (why) return slim_error(SLIM_ERR_ARG, "checkpoint: tensor name \"%.64s\" %s", name, why);
    size_t numel;
    why = shape_problem(ndim, shape, &numel);
    if (why) return slim_error(SLIM_ERR_ARG, "checkpoint: tensor \"%s\" %s", name, why);
    if (slim_ckpt_find(ck, name))
        return slim_error(SLIM_ERR_ARG, "checkpoint: a tensor named \"%s\" already exists", name);
    if (is_optim && ck->kind == SLIM_CKPT_EXPORT)
        return slim_error(SLIM_ERR_ARG, "checkpoint: optimizer tensor \"%s\" in an exported model",
                          name);
    if (ck->n_tensors >= SLIM_CKPT_MAX_TENSORS)
        return slim_error(SLIM_ERR_ARG, "checkpoint: more than %d tensors", SLIM_CKPT_MAX_TENSORS);
    float *copy = alloc_floats(numel);
    if (!copy) return SLIM_ERR_NOMEM;
    if (data)
        memcpy(copy, data, numel * sizeof(float));
    else
        memset(copy, 0, numel * sizeof(float));
    slim_ckpt_tensor *ts = realloc(ck->tensors, (size_t)(ck->n_tensors + 1) * sizeof *ts);
    if (!ts) {
        free(copy);
        return slim_error(SLIM_ERR_NOMEM, "checkpoint: out of memory adding tensor \"%s\"", name);
    }
    ck->tensors = ts;
    slim_ckpt_tensor *t = &ts[ck->n_tensors++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, strlen(name) + 1);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->numel = numel;
    t->data = copy;
    t->is_optim = is_optim ? 1 : 0;
    return SLIM_OK;
}

const slim_ckpt_tensor *slim_ckpt_find(const slim_ckpt *ck, const char *name) {
    if (!ck || !name) return NULL;
    for (int i = 0; i < ck->n_tensors; i++)
        if (strncmp(ck->tensors[i].name, name, SLIM_CKPT_NAME_MAX) == 0) return &ck->tensors[i];
    return NULL;
}

int slim_ckpt_all_finite(const slim_ckpt *ck, const char **bad_name) {
    if (bad_name) *bad_name = NULL;
    if (!ck) return 1;
    for (int i = 0; i < ck->n_tensors; i++) {
        const slim_ckpt_tensor *t = &ck->tensors[i];
        for (size_t j = 0; j < t->numel; j++) {
            if (!isfinite(t->data[j])) {
                if (bad_name) *bad_name = t->name;
                return 0;
            }
        }
    }
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct layout {
    uint64_t off[N_SECTIONS], len[N_SECTIONS];
    uint64_t *tensor_off; /* (n_tensors) absolute file offsets */
    uint64_t file_size;
} layout;

/* Re-checks everything a caller could have set directly in the struct, then
 * places every section and tensor. Messages are prefixed with `name`. */
static slim_status plan(const slim_ckpt *ck, const char *name, layout *L) {
    memset(L, 0, sizeof *L);
    if (ck->kind != SLIM_CKPT_TRAIN && ck->kind != SLIM_CKPT_EXPORT)
        return slim_error(SLIM_ERR_ARG, "%s: unknown checkpoint kind %u", name, ck->kind);
    const char *text = ck->model_text ? ck->model_text : "";
    size_t text_len = strlen(text), bad;
    if (!utf8_valid((const uint8_t *)text, text_len, &bad))
        return slim_error(SLIM_ERR_ARG, "%s: model text is not valid UTF-8 at byte %zu", name, bad);

    if (ck->n_meta < 0 || ck->n_meta > SLIM_CKPT_MAX_META)
        return slim_error(SLIM_ERR_ARG, "%s: %d metadata keys", name, ck->n_meta);
    uint64_t meta_len = META_HEAD;
    for (int i = 0; i < ck->n_meta; i++) {
        const char *why = key_problem(ck->meta_keys[i]);
        if (why)
            return slim_error(SLIM_ERR_ARG, "%s: metadata key \"%.64s\" %s", name, ck->meta_keys[i],
                              why);
        size_t vlen = strlen(ck->meta_values[i]);
        if (vlen > UINT32_MAX || !utf8_valid((const uint8_t *)ck->meta_values[i], vlen, &bad))
            return slim_error(SLIM_ERR_ARG, "%s: metadata \"%s\": value is not UTF-8 or too long",
                              name, ck->meta_keys[i]);
        meta_len += 8 + strlen(ck->meta_keys[i]) + (uint64_t)vlen;
    }
    const char *dup;
    if (find_duplicate((const char *const *)ck->meta_keys, sizeof(char *), (size_t)ck->n_meta,
                       &dup) != SLIM_OK)
        return SLIM_ERR_NOMEM;
    if (dup) return slim_error(SLIM_ERR_ARG, "%s: metadata key \"%s\" appears twice", name, dup);

    const slim_ckpt_position *pos = &ck->pos;
    if (pos->n_rng < 0 || pos->n_rng > SLIM_CKPT_MAX_RNG)
        return slim_error(SLIM_ERR_ARG, "%s: %d RNG states (0 to %d allowed)", name, pos->n_rng,
                          SLIM_CKPT_MAX_RNG);
    for (int i = 0; i < pos->n_rng; i++)
        if (!(pos->rng[i].inc & 1))
            return slim_error(SLIM_ERR_ARG, "%s: RNG %d has an even increment (PCG32 needs odd)",
                              name, i);

    if (ck->n_tensors < 0 || ck->n_tensors > SLIM_CKPT_MAX_TENSORS)
        return slim_error(SLIM_ERR_ARG, "%s: %d tensors", name, ck->n_tensors);
    for (int i = 0; i < ck->n_tensors; i++) {
        const slim_ckpt_tensor *t = &ck->tensors[i];
        const char *why = tensor_name_problem(t->name);
        if (why) return slim_error(SLIM_ERR_ARG, "%s: tensor %d: name %s", name, i, why);
        size_t numel;
        why = shape_problem(t->ndim, t->shape, &numel);
        if (why) return slim_error(SLIM_ERR_ARG, "%s: tensor \"%s\" %s", name, t->name, why);
        if (numel != t->numel || !t->data)
            return slim_error(SLIM_ERR_ARG, "%s: tensor \"%s\": numel or data inconsistent", name,
                              t->name);
        if (t->is_optim && ck->kind == SLIM_CKPT_EXPORT)
            return slim_error(SLIM_ERR_ARG, "%s: optimizer tensor \"%s\" in an exported model",
                              name, t->name);
    }
    if (ck->n_tensors > 1) {
        const char **names = slim_calloc((size_t)ck->n_tensors, sizeof *names);
        if (!names) return SLIM_ERR_NOMEM;
        for (int i = 0; i < ck->n_tensors; i++)
            names[i] = ck->tensors[i].name;
        slim_status st = find_duplicate(names, sizeof *names, (size_t)ck->n_tensors, &dup);
        free(names);
        if (st != SLIM_OK) return st;
        if (dup) return slim_error(SLIM_ERR_ARG, "%s: two tensors are named \"%s\"", name, dup);
    }

    /* Every quantity below is bounded by memory that exists, so uint64_t
     * cannot overflow. */
    uint64_t off = HDR_SIZE;
    L->off[SEC_TEXT] = off;
    L->len[SEC_TEXT] = text_len;
    off = align_up(off + text_len, SECTION_ALIGN);
    L->off[SEC_META] = off;
    L->len[SEC_META] = meta_len;
    off = align_up(off + meta_len, SECTION_ALIGN);
    L->off[SEC_POS] = off;
    L->len[SEC_POS] = POS_HEAD + POS_RNG * (uint64_t)pos->n_rng;
    off = align_up(off + L->len[SEC_POS], SECTION_ALIGN);
    L->off[SEC_TABLE] = off;
    L->len[SEC_TABLE] = TABLE_HEAD + ENT_SIZE * (uint64_t)ck->n_tensors;
    off = align_up(off + L->len[SEC_TABLE], DATA_ALIGN);
    L->off[SEC_DATA] = off;
    if (ck->n_tensors > 0) {
        L->tensor_off = slim_calloc((size_t)ck->n_tensors, sizeof *L->tensor_off);
        if (!L->tensor_off) return SLIM_ERR_NOMEM;
    }
    uint64_t end = off;
    for (int i = 0; i < ck->n_tensors; i++) {
        L->tensor_off[i] = align_up(end, DATA_ALIGN);
        end = L->tensor_off[i] + 4 * (uint64_t)ck->tensors[i].numel;
    }
    L->len[SEC_DATA] = end - off;
    L->file_size = end + TRAILER;
    if (L->file_size > SIZE_MAX) {
        free(L->tensor_off);
        return slim_error(SLIM_ERR_ARG, "%s: checkpoint too large for this machine", name);
    }
    return SLIM_OK;
}

/* Where the bytes go: a FILE, or a buffer of exactly file_size bytes. The
 * CRC runs over everything put through sink_put. */
typedef struct sink {
    FILE *f;
    uint8_t *mem;
    uint64_t cap; /* bytes at mem */
    uint64_t pos;
    uint32_t crc;
    int err; /* errno of the first failed write; later writes are skipped */
} sink;

static void sink_raw(sink *s, const void *p, size_t n) {
    if (s->err || n == 0) return;
    if (s->f) {
        errno = 0;
        if (fwrite(p, 1, n, s->f) != n) {
            s->err = errno ? errno : EIO;
            return;
        }
    } else {
        if (n > s->cap - s->pos) { /* a layout bug; never write past the buffer */
            s->err = EOVERFLOW;
            return;
        }
        memcpy(s->mem + s->pos, p, n);
    }
    s->pos += n;
}

static void sink_put(sink *s, const void *p, size_t n) {
    if (s->err) return;
    s->crc = crc_update(s->crc, p, n);
    sink_raw(s, p, n);
}

static void sink_u32(sink *s, uint32_t v) {
    uint8_t b[4];
    put_u32(b, v);
    sink_put(s, b, 4);
}

static void sink_pad_to(sink *s, uint64_t target) {
    static const uint8_t zeros[DATA_ALIGN];
    while (!s->err && s->pos < target) {
        uint64_t n = target - s->pos;
        sink_put(s, zeros, n > sizeof zeros ? sizeof zeros : (size_t)n);
    }
}

static void emit(const slim_ckpt *ck, const layout *L, sink *s) {
    uint8_t h[HDR_SIZE] = {0};
    memcpy(h, ckpt_magic, sizeof ckpt_magic);
    put_u32(h + HDR_VERSION, SLIM_CKPT_VERSION);
    put_u32(h + HDR_KIND, ck->kind);
    put_u64(h + HDR_FILE_SIZE, L->file_size);
    for (int i = 0; i < N_SECTIONS; i++) {
        put_u64(h + HDR_DIR + 16 * i, L->off[i]);
        put_u64(h + HDR_DIR + 16 * i + 8, L->len[i]);
    }
    sink_put(s, h, sizeof h);

    sink_pad_to(s, L->off[SEC_TEXT]);
    sink_put(s, ck->model_text ? ck->model_text : "", (size_t)L->len[SEC_TEXT]);

    sink_pad_to(s, L->off[SEC_META]);
    sink_u32(s, (uint32_t)ck->n_meta);
    for (int i = 0; i < ck->n_meta; i++) {
        size_t klen = strlen(ck->meta_keys[i]), vlen = strlen(ck->meta_values[i]);
        sink_u32(s, (uint32_t)klen);
        sink_put(s, ck->meta_keys[i], klen);
        sink_u32(s, (uint32_t)vlen);
        sink_put(s, ck->meta_values[i], vlen);
    }

    sink_pad_to(s, L->off[SEC_POS]);
    uint8_t pos[POS_HEAD + POS_RNG * SLIM_CKPT_MAX_RNG];
    put_u32(pos, ck->pos.epoch);
    put_u32(pos + 4, (uint32_t)ck->pos.n_rng);
    put_u64(pos + 8, ck->pos.step);
    for (int i = 0; i < ck->pos.n_rng; i++) {
        put_u64(pos + POS_HEAD + POS_RNG * i, ck->pos.rng[i].state);
        put_u64(pos + POS_HEAD + POS_RNG * i + 8, ck->pos.rng[i].inc);
    }
    sink_put(s, pos, (size_t)L->len[SEC_POS]);

    sink_pad_to(s, L->off[SEC_TABLE]);
    sink_u32(s, (uint32_t)ck->n_tensors);
    sink_u32(s, 0);
    for (int i = 0; i < ck->n_tensors; i++) {
        const slim_ckpt_tensor *t = &ck->tensors[i];
        uint8_t e[ENT_SIZE] = {0};
        memcpy(e + ENT_NAME, t->name, strlen(t->name)); /* the rest stays NUL */
        put_u32(e + ENT_NDIM, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            put_u32(e + ENT_SHAPE + 4 * d, (uint32_t)t->shape[d]);
        put_u32(e + ENT_FLAGS, t->is_optim ? ENT_FLAG_OPTIM : 0);
        put_u32(e + ENT_DTYPE, 0);
        put_u64(e + ENT_OFFSET, L->tensor_off[i]);
        put_u64(e + ENT_NBYTES, 4 * (uint64_t)t->numel);
        sink_put(s, e, sizeof e);
    }

    uint8_t chunk[4096];
    for (int i = 0; i < ck->n_tensors; i++) {
        const slim_ckpt_tensor *t = &ck->tensors[i];
        sink_pad_to(s, L->tensor_off[i]);
        for (size_t j = 0; j < t->numel;) {
            size_t n = 0;
            for (; n < sizeof chunk / 4 && j < t->numel; n++, j++) {
                uint32_t bits;
                memcpy(&bits, &t->data[j], 4); /* the bit pattern, NaN payloads included */
                put_u32(chunk + 4 * n, bits);
            }
            sink_put(s, chunk, 4 * n);
        }
    }

    sink_pad_to(s, L->off[SEC_DATA] + L->len[SEC_DATA]); /* the data section may be empty */
    uint8_t crc[TRAILER];
    put_u32(crc, s->crc);
    sink_raw(s, crc, sizeof crc);
}

slim_status slim_ckpt_encode(const slim_ckpt *ck, void **out, size_t *out_len) {
    if (!ck || !out || !out_len)
        return slim_error(SLIM_ERR_ARG, "checkpoint: encode: NULL argument");
    *out = NULL;
    *out_len = 0;
    layout L;
    SLIM_TRY(plan(ck, "<memory>", &L));
    sink s = {0};
    s.mem = malloc((size_t)L.file_size);
    if (!s.mem) {
        free(L.tensor_off);
        return slim_error(SLIM_ERR_NOMEM, "checkpoint: out of memory encoding %llu bytes",
                          (unsigned long long)L.file_size);
    }
    s.cap = L.file_size;
    emit(ck, &L, &s);
    free(L.tensor_off);
    if (s.err || s.pos != L.file_size) {
        free(s.mem);
        return slim_error(SLIM_ERR_ARG, "checkpoint: internal error: encoded %llu of %llu bytes",
                          (unsigned long long)s.pos, (unsigned long long)L.file_size);
    }
    *out = s.mem;
    *out_len = (size_t)L.file_size;
    return SLIM_OK;
}

slim_status slim_ckpt_write(const slim_ckpt *ck, const char *path) {
    if (!ck || !path || !*path) return slim_error(SLIM_ERR_ARG, "checkpoint: write: no path given");
    layout L;
    SLIM_TRY(plan(ck, path, &L));

    slim_atomic_file af;
    slim_status st = slim_atomic_open(path, &af);
    if (st == SLIM_OK) {
        sink s = {0};
        s.f = af.f;
        emit(ck, &L, &s);
        if (!s.err && s.pos != L.file_size) s.err = EIO; /* a layout bug; keep the old file */
        st = slim_atomic_commit(&af, s.err);
    }
    free(L.tensor_off);
    return st;
}

/* ---- reading ------------------------------------------------------------ */

/* A format error: "<name>: <what>". */
static slim_status bad(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static slim_status bad(const char *name, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return slim_error(SLIM_ERR_FORMAT, "%s: %s", name, what);
}

typedef unsigned long long ull; /* for printf */

/* The fixed header: magic, version, declared size, checksum, then the rest
 * of the header fields. Fills the section directory. */
static slim_status read_header(const uint8_t *b, size_t len, const char *name, uint32_t *kind,
                               uint64_t off[N_SECTIONS], uint64_t slen[N_SECTIONS]) {
    if (len == 0) return bad(name, "empty file (not a slim checkpoint)");
    if (memcmp(b, ckpt_magic, len < sizeof ckpt_magic ? len : sizeof ckpt_magic) != 0)
        return bad(name, "not a slim checkpoint (bad magic bytes)");
    /* The version comes before any other check: a newer format may have a
     * different header, and "upgrade slim" is the useful message then. */
    if (len >= HDR_VERSION + 4) {
        uint32_t version = get_u32(b + HDR_VERSION);
        if (version > SLIM_CKPT_VERSION)
            return bad(name, "written by a newer slim (version %u); this slim reads version %u",
                       version, SLIM_CKPT_VERSION);
        if (version == 0) return bad(name, "unsupported format version 0");
    }
    if (len < HDR_SIZE + TRAILER)
        return bad(name, "truncated: header needs %d bytes, file has %zu", HDR_SIZE + TRAILER, len);
    uint64_t file_size = get_u64(b + HDR_FILE_SIZE);
    if (file_size > len)
        return bad(name, "truncated: header declares %llu bytes, file has %zu", (ull)file_size,
                   len);
    if (file_size < len)
        return bad(name, "%llu unexpected bytes after the declared end (%llu bytes)",
                   (ull)(len - file_size), (ull)file_size);
    /* Nothing past this point is trusted until the checksum agrees. */
    uint32_t stored = get_u32(b + len - TRAILER);
    uint32_t computed = crc_update(0, b, len - TRAILER);
    if (stored != computed)
        return bad(name, "checksum mismatch (stored 0x%08x, computed 0x%08x): the file is corrupt",
                   stored, computed);

    *kind = get_u32(b + HDR_KIND);
    if (*kind != SLIM_CKPT_TRAIN && *kind != SLIM_CKPT_EXPORT)
        return bad(name, "unknown kind %u (1 = training checkpoint, 2 = exported model)", *kind);
    uint32_t flags = get_u32(b + HDR_FLAGS);
    if (flags != 0) return bad(name, "unknown header flags 0x%x", flags);
    int reserved_zero = get_u32(b + HDR_RESERVED) == 0;
    for (int i = HDR_TAIL; i < HDR_SIZE; i++)
        reserved_zero &= b[i] == 0;
    if (!reserved_zero) return bad(name, "reserved header bytes are not zero");

    /* Sections in directory order, each after the previous one and before
     * the checksum. */
    uint64_t prev_end = HDR_SIZE, limit = len - TRAILER;
    for (int i = 0; i < N_SECTIONS; i++) {
        off[i] = get_u64(b + HDR_DIR + 16 * i);
        slen[i] = get_u64(b + HDR_DIR + 16 * i + 8);
        if (off[i] > limit || slen[i] > limit - off[i])
            return bad(name, "%s section needs %llu bytes at offset %llu, file has %zu",
                       section_name[i], (ull)slen[i], (ull)off[i], len);
        if (off[i] < prev_end)
            return bad(name, "%s section at offset %llu overlaps what precedes it (ends at %llu)",
                       section_name[i], (ull)off[i], (ull)prev_end);
        prev_end = off[i] + slen[i];
    }
    return SLIM_OK;
}

static slim_status read_text(const uint8_t *p, uint64_t n, const char *name, slim_ckpt *ck) {
    size_t at;
    if (!utf8_valid(p, (size_t)n, &at))
        return bad(name, "model text is not valid UTF-8 (or holds a NUL) at byte %zu", at);
    free(ck->model_text);
    ck->model_text = dup_bytes(p, (size_t)n);
    return ck->model_text ? SLIM_OK : SLIM_ERR_NOMEM;
}

static slim_status read_meta(const uint8_t *p, uint64_t n, const char *name, slim_ckpt *ck) {
    if (n < META_HEAD)
        return bad(name, "metadata section is %llu bytes, needs at least %d", (ull)n, META_HEAD);
    uint32_t count = get_u32(p);
    if (count > SLIM_CKPT_MAX_META)
        return bad(name, "metadata declares %u entries (at most %d)", count, SLIM_CKPT_MAX_META);
    if ((uint64_t)count * META_ENTRY_MIN > n - META_HEAD)
        return bad(name, "metadata declares %u entries but its section has only %llu bytes", count,
                   (ull)n);
    if (count > 0) {
        ck->meta_keys = slim_calloc(count, sizeof(char *));
        ck->meta_values = slim_calloc(count, sizeof(char *));
        if (!ck->meta_keys || !ck->meta_values) return SLIM_ERR_NOMEM;
    }
    ck->n_meta = (int)count; /* the NULL entries free as nothing on failure */
    uint64_t at = META_HEAD;
    for (uint32_t i = 0; i < count; i++) {
        if (n - at < 4) return bad(name, "metadata entry %u is truncated", i);
        uint32_t klen = get_u32(p + at);
        at += 4;
        if (klen == 0 || klen > SLIM_CKPT_KEY_MAX)
            return bad(name, "metadata entry %u: key length %u (1 to %d allowed)", i, klen,
                       SLIM_CKPT_KEY_MAX);
        if (n - at < (uint64_t)klen + 4)
            return bad(name, "metadata entry %u: key of %u bytes runs past the section", i, klen);
        for (uint32_t k = 0; k < klen; k++)
            if (!name_char_ok(p[at + k]))
                return bad(name, "metadata entry %u: key has byte 0x%02x (0x21..0x7e allowed)", i,
                           p[at + k]);
        ck->meta_keys[i] = dup_bytes(p + at, klen);
        if (!ck->meta_keys[i]) return SLIM_ERR_NOMEM;
        at += klen;
        uint32_t vlen = get_u32(p + at);
        at += 4;
        if (n - at < vlen)
            return bad(name, "metadata \"%s\": value of %u bytes runs past the section",
                       ck->meta_keys[i], vlen);
        size_t where;
        if (!utf8_valid(p + at, vlen, &where))
            return bad(name, "metadata \"%s\": value is not UTF-8 (or holds a NUL) at byte %zu",
                       ck->meta_keys[i], where);
        ck->meta_values[i] = dup_bytes(p + at, vlen);
        if (!ck->meta_values[i]) return SLIM_ERR_NOMEM;
        at += vlen;
    }
    if (at != n) return bad(name, "metadata section has %llu unused bytes", (ull)(n - at));
    const char *dup;
    SLIM_TRY(find_duplicate((const char *const *)ck->meta_keys, sizeof(char *), count, &dup));
    if (dup) return bad(name, "metadata key \"%s\" appears twice", dup);
    return SLIM_OK;
}

static slim_status read_pos(const uint8_t *p, uint64_t n, const char *name, slim_ckpt *ck) {
    if (n < POS_HEAD)
        return bad(name, "position section is %llu bytes, needs at least %d", (ull)n, POS_HEAD);
    uint32_t n_rng = get_u32(p + 4);
    if (n_rng > SLIM_CKPT_MAX_RNG)
        return bad(name, "position declares %u RNG states (at most %d)", n_rng, SLIM_CKPT_MAX_RNG);
    if (n != POS_HEAD + (uint64_t)POS_RNG * n_rng)
        return bad(name, "position section is %llu bytes, %u RNG states need %llu", (ull)n, n_rng,
                   (ull)(POS_HEAD + (uint64_t)POS_RNG * n_rng));
    ck->pos.epoch = get_u32(p);
    ck->pos.n_rng = (int)n_rng;
    ck->pos.step = get_u64(p + 8);
    for (uint32_t i = 0; i < n_rng; i++) {
        ck->pos.rng[i].state = get_u64(p + POS_HEAD + POS_RNG * i);
        ck->pos.rng[i].inc = get_u64(p + POS_HEAD + POS_RNG * i + 8);
        if (!(ck->pos.rng[i].inc & 1))
            return bad(name, "RNG state %u has an even increment (PCG32 needs odd)", i);
    }
    return SLIM_OK;
}

typedef struct span {
    uint64_t off, len;
    int index;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* One table entry into t, checked; its bytes in the file into *sp. */
static slim_status read_entry(const uint8_t *e, uint32_t i, const char *name, uint32_t kind,
                              uint64_t data_off, uint64_t data_len, slim_ckpt_tensor *t, span *sp) {
    const uint8_t *nul = memchr(e + ENT_NAME, 0, SLIM_CKPT_NAME_MAX);
    if (!nul) return bad(name, "tensor %u: name is not NUL-terminated within 64 bytes", i);
    size_t nlen = (size_t)(nul - (e + ENT_NAME));
    if (nlen == 0) return bad(name, "tensor %u: empty name", i);
    for (size_t k = 0; k < nlen; k++)
        if (!name_char_ok(e[ENT_NAME + k]))
            return bad(name, "tensor %u: name has byte 0x%02x (0x21..0x7e allowed)", i,
                       e[ENT_NAME + k]);
    for (size_t k = nlen; k < SLIM_CKPT_NAME_MAX; k++)
        if (e[ENT_NAME + k] != 0)
            return bad(name, "tensor %u: bytes after its name are not zero", i);
    memcpy(t->name, e + ENT_NAME, SLIM_CKPT_NAME_MAX);
    const char *tn = t->name;

    uint32_t ndim = get_u32(e + ENT_NDIM);
    if (ndim < 1 || ndim > SLIM_MAX_DIMS)
        return bad(name, "tensor \"%s\": %u dimensions (1 to %d allowed)", tn, ndim, SLIM_MAX_DIMS);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < SLIM_MAX_DIMS; d++) {
        uint32_t v = get_u32(e + ENT_SHAPE + 4 * d);
        if (d >= ndim) {
            if (v != 0)
                return bad(name, "tensor \"%s\": unused dimension %u is %u, not 0", tn, d, v);
            continue;
        }
        if (v < 1 || v > INT32_MAX)
            return bad(name, "tensor \"%s\": dimension %u is %u (1 to %d allowed)", tn, d, v,
                       INT32_MAX);
        if (v > UINT64_MAX / 4 / numel)
            return bad(name, "tensor \"%s\": shape overflows a 64-bit byte count", tn);
        numel *= v;
        t->shape[d] = (int)v;
    }
    t->ndim = (int)ndim;
    uint32_t flags = get_u32(e + ENT_FLAGS);
    if (flags & ~ENT_FLAG_OPTIM) return bad(name, "tensor \"%s\": unknown flags 0x%x", tn, flags);
    t->is_optim = (flags & ENT_FLAG_OPTIM) != 0;
    if (t->is_optim && kind == SLIM_CKPT_EXPORT)
        return bad(name, "tensor \"%s\": optimizer state in an exported model", tn);
    uint32_t dtype = get_u32(e + ENT_DTYPE);
    if (dtype != 0)
        return bad(name, "tensor \"%s\": unknown data type %u (0 = float32)", tn, dtype);

    uint64_t off = get_u64(e + ENT_OFFSET), nbytes = get_u64(e + ENT_NBYTES);
    if (nbytes != 4 * numel)
        return bad(name, "tensor \"%s\": %llu bytes declared, its shape needs %llu", tn,
                   (ull)nbytes, (ull)(4 * numel));
    if (off < data_off || off > data_off + data_len || nbytes > data_off + data_len - off)
        return bad(name,
                   "tensor \"%s\": %llu bytes at offset %llu lie outside the data section "
                   "(offsets %llu to %llu)",
                   tn, (ull)nbytes, (ull)off, (ull)data_off, (ull)(data_off + data_len));
    if (off % DATA_ALIGN != 0)
        return bad(name, "tensor \"%s\": offset %llu is not a multiple of %d", tn, (ull)off,
                   DATA_ALIGN);
    t->numel = (size_t)numel; /* <= data_len / 4, so it fits */
    sp->off = off;
    sp->len = nbytes;
    sp->index = (int)i;
    return SLIM_OK;
}

static slim_status read_tensors(const uint8_t *b, const uint64_t *off, const uint64_t *slen,
                                const char *name, slim_ckpt *ck) {
    const uint8_t *p = b + off[SEC_TABLE];
    uint64_t n = slen[SEC_TABLE];
    if (n < TABLE_HEAD)
        return bad(name, "tensor table is %llu bytes, needs at least %d", (ull)n, TABLE_HEAD);
    uint32_t count = get_u32(p);
    if (count > SLIM_CKPT_MAX_TENSORS)
        return bad(name, "tensor table declares %u tensors (at most %d)", count,
                   SLIM_CKPT_MAX_TENSORS);
    if (get_u32(p + 4) != 0) return bad(name, "tensor table: reserved field is not zero");
    if (n != TABLE_HEAD + (uint64_t)ENT_SIZE * count)
        return bad(name, "tensor table is %llu bytes, %u tensors need %llu", (ull)n, count,
                   (ull)(TABLE_HEAD + (uint64_t)ENT_SIZE * count));
    if (count == 0) return SLIM_OK;

    /* count <= n / ENT_SIZE, so these allocations are bounded by the file. */
    ck->tensors = slim_calloc(count, sizeof *ck->tensors);
    span *spans = slim_calloc(count, sizeof *spans);
    const char **names = slim_calloc(count, sizeof *names);
    slim_status st = (ck->tensors && spans && names) ? SLIM_OK : SLIM_ERR_NOMEM;
    if (ck->tensors) ck->n_tensors = (int)count; /* data pointers are NULL until filled */
    for (uint32_t i = 0; i < count && st == SLIM_OK; i++) {
        st = read_entry(p + TABLE_HEAD + (uint64_t)ENT_SIZE * i, i, name, ck->kind, off[SEC_DATA],
                        slen[SEC_DATA], &ck->tensors[i], &spans[i]);
        names[i] = ck->tensors[i].name;
    }
    if (st == SLIM_OK) {
        qsort(spans, count, sizeof *spans, cmp_span);
        for (uint32_t i = 1; i < count && st == SLIM_OK; i++)
            if (spans[i].off < spans[i - 1].off + spans[i - 1].len)
                st = bad(name, "tensors \"%s\" and \"%s\" overlap in the file",
                         ck->tensors[spans[i - 1].index].name, ck->tensors[spans[i].index].name);
    }
    if (st == SLIM_OK) {
        const char *dup;
        st = find_duplicate(names, sizeof *names, count, &dup);
        if (st == SLIM_OK && dup) st = bad(name, "two tensors are named \"%s\"", dup);
    }
    /* Only now, with every span inside the file and disjoint, copy data. */
    for (int i = 0; i < ck->n_tensors && st == SLIM_OK; i++) {
        slim_ckpt_tensor *t = &ck->tensors[i];
        t->data = alloc_floats(t->numel);
        if (!t->data) {
            st = SLIM_ERR_NOMEM;
            break;
        }
        const uint8_t *src = b + get_u64(p + TABLE_HEAD + (uint64_t)ENT_SIZE * i + ENT_OFFSET);
        for (size_t j = 0; j < t->numel; j++) {
            uint32_t bits = get_u32(src + 4 * j);
            memcpy(&t->data[j], &bits, 4);
        }
    }
    free(spans);
    free(names);
    return st;
}

slim_status slim_ckpt_read_memory(const void *buf, size_t len, const char *name, slim_ckpt **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "checkpoint: read: NULL output");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf && len > 0) return slim_error(SLIM_ERR_ARG, "%s: NULL buffer", name);
    const uint8_t *b = buf;
    uint32_t kind = 0;
    uint64_t off[N_SECTIONS], slen[N_SECTIONS];
    SLIM_TRY(read_header(b, len, name, &kind, off, slen));

    slim_ckpt *ck = slim_ckpt_new(kind);
    if (!ck) return SLIM_ERR_NOMEM;
    slim_status st = read_text(b + off[SEC_TEXT], slen[SEC_TEXT], name, ck);
    if (st == SLIM_OK) st = read_meta(b + off[SEC_META], slen[SEC_META], name, ck);
    if (st == SLIM_OK) st = read_pos(b + off[SEC_POS], slen[SEC_POS], name, ck);
    if (st == SLIM_OK) st = read_tensors(b, off, slen, name, ck);
    if (st != SLIM_OK) {
        slim_ckpt_free(ck);
        return st;
    }
    *out = ck;
    return SLIM_OK;
}

slim_status slim_ckpt_read(const char *path, slim_ckpt **out) {
    if (!out) return slim_error(SLIM_ERR_ARG, "checkpoint: read: NULL output");
    *out = NULL;
    if (!path || !*path) return slim_error(SLIM_ERR_ARG, "checkpoint: read: no path given");
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        return slim_error(SLIM_ERR_IO, "%s: cannot open: %s", path, strerror(err));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int err = errno;
        fclose(f);
        return slim_error(SLIM_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return slim_error(SLIM_ERR_IO, "%s: not a regular file", path);
    }
    /* The allocation is the file's real size, never a size the file declares. */
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (got != len) {
        free(buf);
        if (err) return slim_error(SLIM_ERR_IO, "%s: read failed: %s", path, strerror(err));
        return slim_error(SLIM_ERR_IO, "%s: file shrank while being read (%zu of %zu bytes)", path,
                          got, len);
    }
    slim_status st = slim_ckpt_read_memory(buf, len, path, out);
    free(buf);
    return st;
}
