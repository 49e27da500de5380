/* The checkpoint reader (slim_ckpt_read, slim_ckpt_read_memory).
 *
 * It takes the whole file into memory and checks every size against the
 * bytes actually present before it allocates or copies anything; the order of
 * the checks is docs/CHECKPOINT_FORMAT.md's "What loading validates".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/ckpt_format.h"

static const char *const section_name[N_SECTIONS] = {"model text", "metadata", "position",
                                                     "tensor table", "tensor data"};

/* A format error: "<name>: <what>". */
static slim_status bad(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static slim_status bad(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    slim_errorv(SLIM_ERR_FORMAT, fmt, ap);
    va_end(ap);
    return slim_error_prefix(SLIM_ERR_FORMAT, "%s", name);
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
        uint32_t version = ckpt_get_u32(b + HDR_VERSION);
        if (version > SLIM_CKPT_VERSION)
            return bad(name, "written by a newer slim (version %u); this slim reads version %u",
                       version, SLIM_CKPT_VERSION);
        if (version == 0) return bad(name, "unsupported format version 0");
    }
    if (len < HDR_SIZE + TRAILER)
        return bad(name, "truncated: header needs %d bytes, file has %zu", HDR_SIZE + TRAILER, len);
    uint64_t file_size = ckpt_get_u64(b + HDR_FILE_SIZE);
    if (file_size > len)
        return bad(name, "truncated: header declares %llu bytes, file has %zu", (ull)file_size,
                   len);
    if (file_size < len)
        return bad(name, "%llu unexpected bytes after the declared end (%llu bytes)",
                   (ull)(len - file_size), (ull)file_size);
    /* Nothing past this point is trusted until the checksum agrees. */
    uint32_t stored = ckpt_get_u32(b + len - TRAILER);
    uint32_t computed = ckpt_crc(0, b, len - TRAILER);
    if (stored != computed)
        return bad(name, "checksum mismatch (stored 0x%08x, computed 0x%08x): the file is corrupt",
                   stored, computed);

    *kind = ckpt_get_u32(b + HDR_KIND);
    if (*kind != SLIM_CKPT_TRAIN && *kind != SLIM_CKPT_EXPORT)
        return bad(name, "unknown kind %u (1 = training checkpoint, 2 = exported model)", *kind);
    uint32_t flags = ckpt_get_u32(b + HDR_FLAGS);
    if (flags != 0) return bad(name, "unknown header flags 0x%x", flags);
    int reserved_zero = ckpt_get_u32(b + HDR_RESERVED) == 0;
    for (int i = HDR_TAIL; i < HDR_SIZE; i++)
        reserved_zero &= b[i] == 0;
    if (!reserved_zero) return bad(name, "reserved header bytes are not zero");

    /* Sections in directory order, each after the previous one and before
     * the checksum. */
    uint64_t prev_end = HDR_SIZE, limit = len - TRAILER;
    for (int i = 0; i < N_SECTIONS; i++) {
        off[i] = ckpt_get_u64(b + HDR_DIR + 16 * i);
        slen[i] = ckpt_get_u64(b + HDR_DIR + 16 * i + 8);
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
    if (!ckpt_utf8_valid(p, (size_t)n, &at))
        return bad(name, "model text is not valid UTF-8 (or holds a NUL) at byte %zu", at);
    free(ck->model_text);
    ck->model_text = ckpt_dup_bytes(p, (size_t)n);
    return ck->model_text ? SLIM_OK : SLIM_ERR_NOMEM;
}

static slim_status read_meta(const uint8_t *p, uint64_t n, const char *name, slim_ckpt *ck) {
    if (n < META_HEAD)
        return bad(name, "metadata section is %llu bytes, needs at least %d", (ull)n, META_HEAD);
    uint32_t count = ckpt_get_u32(p);
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
        uint32_t klen = ckpt_get_u32(p + at);
        at += 4;
        if (klen == 0 || klen > SLIM_CKPT_KEY_MAX)
            return bad(name, "metadata entry %u: key length %u (1 to %d allowed)", i, klen,
                       SLIM_CKPT_KEY_MAX);
        if (n - at < (uint64_t)klen + 4)
            return bad(name, "metadata entry %u: key of %u bytes runs past the section", i, klen);
        for (uint32_t k = 0; k < klen; k++)
            if (!ckpt_name_char_ok(p[at + k]))
                return bad(name, "metadata entry %u: key has byte 0x%02x (0x21..0x7e allowed)", i,
                           p[at + k]);
        ck->meta_keys[i] = ckpt_dup_bytes(p + at, klen);
        if (!ck->meta_keys[i]) return SLIM_ERR_NOMEM;
        at += klen;
        uint32_t vlen = ckpt_get_u32(p + at);
        at += 4;
        if (n - at < vlen)
            return bad(name, "metadata \"%s\": value of %u bytes runs past the section",
                       ck->meta_keys[i], vlen);
        size_t where;
        if (!ckpt_utf8_valid(p + at, vlen, &where))
            return bad(name, "metadata \"%s\": value is not UTF-8 (or holds a NUL) at byte %zu",
                       ck->meta_keys[i], where);
        ck->meta_values[i] = ckpt_dup_bytes(p + at, vlen);
        if (!ck->meta_values[i]) return SLIM_ERR_NOMEM;
        at += vlen;
    }
    if (at != n) return bad(name, "metadata section has %llu unused bytes", (ull)(n - at));
    const char *dup;
    SLIM_TRY(ckpt_find_duplicate((const char *const *)ck->meta_keys, sizeof(char *), count, &dup));
    if (dup) return bad(name, "metadata key \"%s\" appears twice", dup);
    return SLIM_OK;
}

static slim_status read_pos(const uint8_t *p, uint64_t n, const char *name, slim_ckpt *ck) {
    if (n < POS_HEAD)
        return bad(name, "position section is %llu bytes, needs at least %d", (ull)n, POS_HEAD);
    uint32_t n_rng = ckpt_get_u32(p + 4);
    if (n_rng > SLIM_CKPT_MAX_RNG)
        return bad(name, "position declares %u RNG states (at most %d)", n_rng, SLIM_CKPT_MAX_RNG);
    if (n != POS_HEAD + (uint64_t)POS_RNG * n_rng)
        return bad(name, "position section is %llu bytes, %u RNG states need %llu", (ull)n, n_rng,
                   (ull)(POS_HEAD + (uint64_t)POS_RNG * n_rng));
    ck->pos.epoch = ckpt_get_u32(p);
    ck->pos.n_rng = (int)n_rng;
    ck->pos.step = ckpt_get_u64(p + 8);
    for (uint32_t i = 0; i < n_rng; i++) {
        ck->pos.rng[i].state = ckpt_get_u64(p + POS_HEAD + POS_RNG * i);
        ck->pos.rng[i].inc = ckpt_get_u64(p + POS_HEAD + POS_RNG * i + 8);
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
        if (!ckpt_name_char_ok(e[ENT_NAME + k]))
            return bad(name, "tensor %u: name has byte 0x%02x (0x21..0x7e allowed)", i,
                       e[ENT_NAME + k]);
    for (size_t k = nlen; k < SLIM_CKPT_NAME_MAX; k++)
        if (e[ENT_NAME + k] != 0)
            return bad(name, "tensor %u: bytes after its name are not zero", i);
    memcpy(t->name, e + ENT_NAME, SLIM_CKPT_NAME_MAX);
    const char *tn = t->name;

    uint32_t ndim = ckpt_get_u32(e + ENT_NDIM);
    if (ndim < 1 || ndim > SLIM_MAX_DIMS)
        return bad(name, "tensor \"%s\": %u dimensions (1 to %d allowed)", tn, ndim, SLIM_MAX_DIMS);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < SLIM_MAX_DIMS; d++) {
        uint32_t v = ckpt_get_u32(e + ENT_SHAPE + 4 * d);
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
    uint32_t flags = ckpt_get_u32(e + ENT_FLAGS);
    if (flags & ~ENT_FLAG_OPTIM) return bad(name, "tensor \"%s\": unknown flags 0x%x", tn, flags);
    t->is_optim = (flags & ENT_FLAG_OPTIM) != 0;
    if (t->is_optim && kind == SLIM_CKPT_EXPORT)
        return bad(name, "tensor \"%s\": optimizer state in an exported model", tn);
    uint32_t dtype = ckpt_get_u32(e + ENT_DTYPE);
    if (dtype != 0)
        return bad(name, "tensor \"%s\": unknown data type %u (0 = float32)", tn, dtype);

    uint64_t off = ckpt_get_u64(e + ENT_OFFSET), nbytes = ckpt_get_u64(e + ENT_NBYTES);
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
    uint32_t count = ckpt_get_u32(p);
    if (count > SLIM_CKPT_MAX_TENSORS)
        return bad(name, "tensor table declares %u tensors (at most %d)", count,
                   SLIM_CKPT_MAX_TENSORS);
    if (ckpt_get_u32(p + 4) != 0) return bad(name, "tensor table: reserved field is not zero");
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
        st = ckpt_find_duplicate(names, sizeof *names, count, &dup);
        if (st == SLIM_OK && dup) st = bad(name, "two tensors are named \"%s\"", dup);
    }
    /* Only now, with every span inside the file and disjoint, copy data. */
    for (int i = 0; i < ck->n_tensors && st == SLIM_OK; i++) {
        slim_ckpt_tensor *t = &ck->tensors[i];
        t->data = ckpt_alloc_floats(t->numel);
        if (!t->data) {
            st = SLIM_ERR_NOMEM;
            break;
        }
        const uint8_t *src = b + ckpt_get_u64(p + TABLE_HEAD + (uint64_t)ENT_SIZE * i + ENT_OFFSET);
        for (size_t j = 0; j < t->numel; j++) {
            uint32_t bits = ckpt_get_u32(src + 4 * j);
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
