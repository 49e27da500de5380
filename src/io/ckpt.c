/* The checkpoint / exported-model container in memory (include/slim/ckpt.h)
 * and the rules its reader and writer share: names, keys, shapes, UTF-8, the
 * CRC. The byte layout is ckpt_format.h; the writer ckpt_write.c, the reader
 * ckpt_read.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/ckpt_format.h"

const uint8_t ckpt_magic[8] = {'S', 'L', 'I', 'M', 'C', 'K', 'P', 'T'};

/* zlib's crc32 takes a uInt length; feed it in chunks. */
uint32_t ckpt_crc(uint32_t crc, const uint8_t *p, size_t n) {
    uLong c = crc;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

/* ---- rules shared by the container, the writer and the reader ---------- */

int ckpt_utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
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

const char *ckpt_tensor_name_problem(const char *name) {
    size_t n = strnlen(name, SLIM_CKPT_NAME_MAX);
    if (n == 0) return "is empty";
    if (n >= SLIM_CKPT_NAME_MAX) return "is longer than 63 bytes";
    for (size_t i = 0; i < n; i++)
        if (!ckpt_name_char_ok((unsigned char)name[i]))
            return "has a byte outside printable ASCII (0x21..0x7e)";
    return NULL;
}

const char *ckpt_key_problem(const char *key) {
    size_t n = strnlen(key, SLIM_CKPT_KEY_MAX + 1);
    if (n == 0) return "is empty";
    if (n > SLIM_CKPT_KEY_MAX) return "is longer than 255 bytes";
    for (size_t i = 0; i < n; i++)
        if (!ckpt_name_char_ok((unsigned char)key[i]))
            return "has a byte outside printable ASCII (0x21..0x7e)";
    return NULL;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts a copy of the pointers: n may be 65536. */
slim_status ckpt_find_duplicate(const char *const *strs, size_t stride, size_t n,
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

float *ckpt_alloc_floats(size_t numel) {
    size_t bytes = (size_t)ckpt_align_up((uint64_t)numel * 4, DATA_ALIGN);
    float *p = aligned_alloc(DATA_ALIGN, bytes);
    if (!p) slim_error(SLIM_ERR_NOMEM, "out of memory allocating %zu bytes of tensor data", bytes);
    return p;
}

const char *ckpt_shape_problem(int ndim, const int *shape, size_t *numel) {
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

char *ckpt_dup_bytes(const void *p, size_t n) {
    char *s = slim_calloc(n + 1, 1);
    if (s && n) memcpy(s, p, n);
    return s;
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

slim_status slim_ckpt_set_text(slim_ckpt *ck, const char *text) {
    if (!ck || !text) return slim_error(SLIM_ERR_ARG, "checkpoint: set_text: NULL argument");
    size_t n = strlen(text), bad;
    if (!ckpt_utf8_valid((const uint8_t *)text, n, &bad))
        return slim_error(SLIM_ERR_ARG, "checkpoint: model text is not valid UTF-8 at byte %zu",
                          bad);
    char *copy = ckpt_dup_bytes(text, n);
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
    const char *why = ckpt_key_problem(key);
    if (why) return slim_error(SLIM_ERR_ARG, "checkpoint: metadata key \"%.64s\" %s", key, why);
    size_t vlen = strlen(value), bad;
    if (vlen > UINT32_MAX)
        return slim_error(SLIM_ERR_ARG, "checkpoint: metadata \"%s\": value too long", key);
    if (!ckpt_utf8_valid((const uint8_t *)value, vlen, &bad))
        return slim_error(SLIM_ERR_ARG,
                          "checkpoint: metadata \"%s\": value is not UTF-8 at byte %zu", key, bad);
    char *v = ckpt_dup_bytes(value, vlen);
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
    char *k = ckpt_dup_bytes(key, strlen(key));
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

slim_status slim_ckpt_add_tensor(slim_ckpt *ck, const char *name, int ndim, const int *shape,
                                 const float *data, int is_optim) {
    if (!ck || !name || !shape)
        return slim_error(SLIM_ERR_ARG, "checkpoint: add_tensor: NULL argument");
    const char *why = ckpt_tensor_name_problem(name);
    if (why) return slim_error(SLIM_ERR_ARG, "checkpoint: tensor name \"%.64s\" %s", name, why);
    size_t numel;
    why = ckpt_shape_problem(ndim, shape, &numel);
    if (why) return slim_error(SLIM_ERR_ARG, "checkpoint: tensor \"%s\" %s", name, why);
    if (slim_ckpt_find(ck, name))
        return slim_error(SLIM_ERR_ARG, "checkpoint: a tensor named \"%s\" already exists", name);
    if (is_optim && ck->kind == SLIM_CKPT_EXPORT)
        return slim_error(SLIM_ERR_ARG, "checkpoint: optimizer tensor \"%s\" in an exported model",
                          name);
    if (ck->n_tensors >= SLIM_CKPT_MAX_TENSORS)
        return slim_error(SLIM_ERR_ARG, "checkpoint: more than %d tensors", SLIM_CKPT_MAX_TENSORS);
    float *copy = ckpt_alloc_floats(numel);
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
