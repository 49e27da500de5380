/* slim ckpt: the one versioned binary container for training checkpoints and
 * exported inference models.
 *
 * The container knows nothing of models: it stores the model text, a table of
 * key/value metadata, the training position (epoch, step, RNG states) and
 * named float32 tensors, some of which may be flagged as optimizer state. A
 * higher layer maps a model's parameters to tensor names and back, and checks
 * that their shapes fit the model.
 *
 * The byte layout, the checksum, the atomic write protocol and everything the
 * reader validates are described in docs/CHECKPOINT_FORMAT.md. In short: all
 * fields are fixed-width little-endian; a 128-byte header with a directory of
 * five sections (model text, metadata, position, tensor table, tensor data);
 * tensor data at 64-byte aligned file offsets; a CRC-32 (zlib's crc32(), the
 * IEEE 802.3 polynomial) of every preceding byte as the last 4 bytes.
 *
 * Conventions the higher layers follow (the container does not enforce them):
 *   - metadata keys such as "data" = "fashion-mnist", "penalty" = "gamma-l1",
 *     "lambda" = "0.02"; class names one key per class, "class.0",
 *     "class.1", ... in label order;
 *   - optimizer-state tensors are flagged is_optim = 1 and named after the
 *     parameter they belong to with a prefix ("momentum.conv1.weight",
 *     "adam.m.conv1.weight"), since tensor names are unique in a file.
 *
 * Ownership: a slim_ckpt owns all of its strings and tensor data; every
 * setter copies its arguments; slim_ckpt_free releases everything.
 */
#ifndef SLIM_CKPT_H
#define SLIM_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLIM_CKPT_VERSION 1u  /* the format version this slim writes and reads */
#define SLIM_CKPT_NAME_MAX 64 /* bytes of a tensor name, including its NUL */
#define SLIM_CKPT_KEY_MAX 255 /* bytes of a metadata key (no NUL) */
#define SLIM_CKPT_MAX_TENSORS 65536
#define SLIM_CKPT_MAX_META 65536
#define SLIM_CKPT_MAX_RNG 4 /* RNG states saved in the position */

/* What a file holds (the header's kind field). */
enum {
    SLIM_CKPT_TRAIN = 1,  /* a training checkpoint: may hold optimizer state */
    SLIM_CKPT_EXPORT = 2, /* an exported inference model: no optimizer state */
};

typedef struct slim_ckpt_tensor {
    /* 1..63 bytes of printable ASCII without spaces (0x21..0x7e), NUL-padded;
     * unique within a file. */
    char name[SLIM_CKPT_NAME_MAX];
    int ndim;                 /* 1..4 */
    int shape[SLIM_MAX_DIMS]; /* shape[0..ndim) >= 1; the rest 0 */
    size_t numel;             /* product of shape[0..ndim) */
    float *data;              /* (shape...) row-major, numel floats, 64-byte aligned, owned */
    int is_optim;             /* 1: optimizer state (never in an SLIM_CKPT_EXPORT file) */
} slim_ckpt_tensor;

/* Where training stands, for an exact resume. An exported model stores
 * zeros here. */
typedef struct slim_ckpt_position {
    uint32_t epoch;                  /* epochs completed */
    uint64_t step;                   /* optimizer steps taken */
    int n_rng;                       /* 0..SLIM_CKPT_MAX_RNG states in rng[] */
    slim_rng rng[SLIM_CKPT_MAX_RNG]; /* PCG32 states; each inc must be odd */
} slim_ckpt_position;

typedef struct slim_ckpt {
    uint32_t kind;          /* SLIM_CKPT_TRAIN or SLIM_CKPT_EXPORT */
    char *model_text;       /* UTF-8, NUL-terminated, never NULL ("" if none) */
    int n_meta;             /* metadata pairs, in insertion (file) order */
    char **meta_keys;       /* (n_meta) keys: 1..255 bytes, 0x21..0x7e; unique */
    char **meta_values;     /* (n_meta) values: UTF-8, may be empty */
    slim_ckpt_position pos; /* set the fields directly; checked by write */
    int n_tensors;
    slim_ckpt_tensor *tensors; /* (n_tensors), in insertion (file) order */
} slim_ckpt;

/* An empty container of the given kind, for writing. NULL with a message if
 * kind is unknown or memory runs out. */
slim_ckpt *slim_ckpt_new(uint32_t kind);
void slim_ckpt_free(slim_ckpt *ck);

/* Replaces the model text (a copy). Must be valid UTF-8. */
slim_status slim_ckpt_set_text(slim_ckpt *ck, const char *text);
/* Sets key to a copy of value, replacing an existing value in place. Keys are
 * 1..255 bytes of 0x21..0x7e; values are UTF-8. */
slim_status slim_ckpt_set_meta(slim_ckpt *ck, const char *key, const char *value);
/* The value of key, or NULL if absent. */
const char *slim_ckpt_get_meta(const slim_ckpt *ck, const char *key);

/* Appends a tensor, copying data: (shape[0], ..., shape[ndim-1]) floats, or
 * zeros when data is NULL. SLIM_ERR_ARG for a bad or duplicate name, ndim
 * outside 1..4, a dim < 1, optimizer state in an export, or too many tensors. */
slim_status slim_ckpt_add_tensor(slim_ckpt *ck, const char *name, int ndim, const int *shape,
                                 const float *data, int is_optim);
/* The tensor called name, or NULL. */
const slim_ckpt_tensor *slim_ckpt_find(const slim_ckpt *ck, const char *name);

/* 1 if every value of every tensor is finite; otherwise 0, and *bad_name (if
 * bad_name is not NULL) points at the first offending tensor's name. A
 * higher layer decides whether non-finite values are an error. */
int slim_ckpt_all_finite(const slim_ckpt *ck, const char **bad_name);

/* Writes ck to path atomically: the bytes go to "<path>.tmp.<pid>" in the
 * same directory, which is flushed, fsync'ed and renamed over path; then the
 * directory is fsync'ed. On failure the temporary file is removed, a previous
 * file at path is left untouched, and the status is SLIM_ERR_IO with a message
 * naming the path and the system's reason (SLIM_ERR_ARG if ck itself is
 * invalid, checked before any file is touched). */
slim_status slim_ckpt_write(const slim_ckpt *ck, const char *path);
/* The exact bytes slim_ckpt_write would write, in a malloc'ed buffer the
 * caller frees. */
slim_status slim_ckpt_encode(const slim_ckpt *ck, void **out, size_t *out_len);

/* Reads and fully validates a file. On success *out is a new container; on
 * failure *out is NULL and the message reads "<path>: <what is wrong>", with
 * SLIM_ERR_IO when the file cannot be opened or read and SLIM_ERR_FORMAT when
 * its content is malformed, truncated, corrupt or from a newer slim. */
slim_status slim_ckpt_read(const char *path, slim_ckpt **out);
/* The same from len bytes at buf (NULL allowed when len is 0); messages are
 * prefixed with name (e.g. the file name). Never reads outside buf and never
 * allocates more than a small multiple of len. */
slim_status slim_ckpt_read_memory(const void *buf, size_t len, const char *name, slim_ckpt **out);

#ifdef __cplusplus
}
#endif
#endif
