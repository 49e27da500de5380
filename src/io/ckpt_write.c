/* The checkpoint writer (slim_ckpt_write, slim_ckpt_encode).
 *
 * The same emitter runs over two sinks: a file (atomically, through a
 * temporary file) and a buffer for slim_ckpt_encode, so the two cannot
 * disagree. Everything is checked and placed (plan) before a byte is written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ckpt_format.h"

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
    if (!ckpt_utf8_valid((const uint8_t *)text, text_len, &bad))
        return slim_error(SLIM_ERR_ARG, "%s: model text is not valid UTF-8 at byte %zu", name, bad);

    if (ck->n_meta < 0 || ck->n_meta > SLIM_CKPT_MAX_META)
        return slim_error(SLIM_ERR_ARG, "%s: %d metadata keys", name, ck->n_meta);
    uint64_t meta_len = META_HEAD;
    for (int i = 0; i < ck->n_meta; i++) {
        const char *why = ckpt_key_problem(ck->meta_keys[i]);
        if (why)
            return slim_error(SLIM_ERR_ARG, "%s: metadata key \"%.64s\" %s", name, ck->meta_keys[i],
                              why);
        size_t vlen = strlen(ck->meta_values[i]);
        if (vlen > UINT32_MAX || !ckpt_utf8_valid((const uint8_t *)ck->meta_values[i], vlen, &bad))
            return slim_error(SLIM_ERR_ARG, "%s: metadata \"%s\": value is not UTF-8 or too long",
                              name, ck->meta_keys[i]);
        meta_len += 8 + strlen(ck->meta_keys[i]) + (uint64_t)vlen;
    }
    const char *dup;
    if (ckpt_find_duplicate((const char *const *)ck->meta_keys, sizeof(char *), (size_t)ck->n_meta,
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
        const char *why = ckpt_tensor_name_problem(t->name);
        if (why) return slim_error(SLIM_ERR_ARG, "%s: tensor %d: name %s", name, i, why);
        size_t numel;
        why = ckpt_shape_problem(t->ndim, t->shape, &numel);
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
        slim_status st = ckpt_find_duplicate(names, sizeof *names, (size_t)ck->n_tensors, &dup);
        free(names);
        if (st != SLIM_OK) return st;
        if (dup) return slim_error(SLIM_ERR_ARG, "%s: two tensors are named \"%s\"", name, dup);
    }

    /* Every quantity below is bounded by memory that exists, so uint64_t
     * cannot overflow. */
    uint64_t off = HDR_SIZE;
    L->off[SEC_TEXT] = off;
    L->len[SEC_TEXT] = text_len;
    off = ckpt_align_up(off + text_len, SECTION_ALIGN);
    L->off[SEC_META] = off;
    L->len[SEC_META] = meta_len;
    off = ckpt_align_up(off + meta_len, SECTION_ALIGN);
    L->off[SEC_POS] = off;
    L->len[SEC_POS] = POS_HEAD + POS_RNG * (uint64_t)pos->n_rng;
    off = ckpt_align_up(off + L->len[SEC_POS], SECTION_ALIGN);
    L->off[SEC_TABLE] = off;
    L->len[SEC_TABLE] = TABLE_HEAD + ENT_SIZE * (uint64_t)ck->n_tensors;
    off = ckpt_align_up(off + L->len[SEC_TABLE], DATA_ALIGN);
    L->off[SEC_DATA] = off;
    if (ck->n_tensors > 0) {
        L->tensor_off = slim_calloc((size_t)ck->n_tensors, sizeof *L->tensor_off);
        if (!L->tensor_off) return SLIM_ERR_NOMEM;
    }
    uint64_t end = off;
    for (int i = 0; i < ck->n_tensors; i++) {
        L->tensor_off[i] = ckpt_align_up(end, DATA_ALIGN);
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
    s->crc = ckpt_crc(s->crc, p, n);
    sink_raw(s, p, n);
}

static void sink_u32(sink *s, uint32_t v) {
    uint8_t b[4];
    ckpt_put_u32(b, v);
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
    ckpt_put_u32(h + HDR_VERSION, SLIM_CKPT_VERSION);
    ckpt_put_u32(h + HDR_KIND, ck->kind);
    ckpt_put_u64(h + HDR_FILE_SIZE, L->file_size);
    for (int i = 0; i < N_SECTIONS; i++) {
        ckpt_put_u64(h + HDR_DIR + 16 * i, L->off[i]);
        ckpt_put_u64(h + HDR_DIR + 16 * i + 8, L->len[i]);
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
    ckpt_put_u32(pos, ck->pos.epoch);
    ckpt_put_u32(pos + 4, (uint32_t)ck->pos.n_rng);
    ckpt_put_u64(pos + 8, ck->pos.step);
    for (int i = 0; i < ck->pos.n_rng; i++) {
        ckpt_put_u64(pos + POS_HEAD + POS_RNG * i, ck->pos.rng[i].state);
        ckpt_put_u64(pos + POS_HEAD + POS_RNG * i + 8, ck->pos.rng[i].inc);
    }
    sink_put(s, pos, (size_t)L->len[SEC_POS]);

    sink_pad_to(s, L->off[SEC_TABLE]);
    sink_u32(s, (uint32_t)ck->n_tensors);
    sink_u32(s, 0);
    for (int i = 0; i < ck->n_tensors; i++) {
        const slim_ckpt_tensor *t = &ck->tensors[i];
        uint8_t e[ENT_SIZE] = {0};
        memcpy(e + ENT_NAME, t->name, strlen(t->name)); /* the rest stays NUL */
        ckpt_put_u32(e + ENT_NDIM, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            ckpt_put_u32(e + ENT_SHAPE + 4 * d, (uint32_t)t->shape[d]);
        ckpt_put_u32(e + ENT_FLAGS, t->is_optim ? ENT_FLAG_OPTIM : 0);
        ckpt_put_u32(e + ENT_DTYPE, 0);
        ckpt_put_u64(e + ENT_OFFSET, L->tensor_off[i]);
        ckpt_put_u64(e + ENT_NBYTES, 4 * (uint64_t)t->numel);
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
                ckpt_put_u32(chunk + 4 * n, bits);
            }
            sink_put(s, chunk, 4 * n);
        }
    }

    sink_pad_to(s, L->off[SEC_DATA] + L->len[SEC_DATA]); /* the data section may be empty */
    uint8_t crc[TRAILER];
    ckpt_put_u32(crc, s->crc);
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
