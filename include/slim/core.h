/* slim core: status codes and error messages, logging, the PCG32 RNG, the
 * per-step arena allocator and the tensor type.
 *
 * Every library function that can fail returns a slim_status and leaves a
 * human-readable message in a thread-local buffer readable with
 * slim_last_error(). Nothing in the library exits or aborts on bad input.
 *
 * Tensors are float32, up to 4-D, logical layout NCHW (dense: N x F). A
 * tensor does not own its memory: the arena or the model that made it does.
 */
#ifndef SLIM_CORE_H
#define SLIM_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and errors ------------------------------------------------ */

typedef enum slim_status {
    SLIM_OK = 0,
    SLIM_ERR_ARG,     /* a caller passed something invalid */
    SLIM_ERR_IO,      /* open/read/write/rename failed */
    SLIM_ERR_FORMAT,  /* a file's content is malformed, truncated or foreign */
    SLIM_ERR_NOMEM,   /* an allocation failed or a declared size is absurd */
    SLIM_ERR_SHAPE,   /* tensor shapes do not fit together */
    SLIM_ERR_BACKEND, /* oneDNN or BLAS reported a failure */
    SLIM_ERR_NUMERIC, /* NaN or Inf where a finite value is required */
} slim_status;

/* The message of the most recent failure in this thread ("" if none). */
const char *slim_last_error(void);
/* Sets the thread's message (printf format) and returns `status`, so that
 * a failure reads `return slim_error(SLIM_ERR_ARG, "batch must be > 0");`. */
slim_status slim_error(slim_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* slim_error taking a va_list, for a function of its own that formats a
 * message and then adds where it happened (slim_error_prefix). */
slim_status slim_errorv(slim_status status, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Prepends "<prefix>: " to the current message, for adding context (a file
 * name, a layer name) as an error travels up. Returns `status`. */
slim_status slim_error_prefix(slim_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void slim_clear_error(void);
const char *slim_status_name(slim_status status);

/* Propagate a failing status unchanged. */
#define SLIM_TRY(expr)                                                                             \
    do {                                                                                           \
        slim_status slim_try_status_ = (expr);                                                     \
        if (slim_try_status_ != SLIM_OK) return slim_try_status_;                                  \
    } while (0)

/* ---- logging ---------------------------------------------------------- */

typedef enum slim_log_level {
    SLIM_LOG_DEBUG = 0,
    SLIM_LOG_INFO,
    SLIM_LOG_WARN,
    SLIM_LOG_ERROR,
    SLIM_LOG_QUIET,
} slim_log_level;

void slim_set_log_level(slim_log_level level);
slim_log_level slim_get_log_level(void);
/* Writes "slim: <level>: <message>\n" to stderr when level >= the set level. */
void slim_log(slim_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- PCG32 random numbers --------------------------------------------- */

/* PCG-XSH-RR 64/32 (O'Neill 2014). Plain struct so that it can be saved in a
 * checkpoint and restored for an exact resume. */
typedef struct slim_rng {
    uint64_t state;
    uint64_t inc; /* always odd */
} slim_rng;

void slim_rng_seed(slim_rng *rng, uint64_t seed, uint64_t stream);
uint32_t slim_rng_u32(slim_rng *rng);
/* Uniform integer in [0, bound), without modulo bias. bound > 0. */
uint32_t slim_rng_below(slim_rng *rng, uint32_t bound);
/* Uniform float in [0, 1). */
float slim_rng_uniform(slim_rng *rng);
/* Standard normal (Box-Muller; uses two u32 per call, no cached state). */
float slim_rng_normal(slim_rng *rng);
/* Fisher-Yates shuffle of perm[0..n). */
void slim_rng_shuffle(slim_rng *rng, uint32_t *perm, size_t n);

/* ---- arena ------------------------------------------------------------ */

/* A bump allocator for everything that lives for one training step
 * (activations and tape nodes; activation gradients live in the tape's own
 * pool, autograd.h). It grows by chaining
 * blocks while a step is new; slim_arena_reset() then replaces the chain by a
 * single block of the high-water size, so from the second step on a step of
 * the same shape calls no malloc at all. */
typedef struct slim_arena_block slim_arena_block;
typedef struct slim_arena {
    slim_arena_block *head; /* current block (newest); older ones chain on */
    size_t used_total;      /* bytes handed out since the last reset */
    size_t high_water;      /* the largest used_total seen */
    size_t n_mallocs;       /* blocks allocated so far (for tests) */
} slim_arena;

void slim_arena_init(slim_arena *arena);
/* 64-byte aligned, uninitialised memory; NULL (with a message) when out of
 * memory. */
void *slim_arena_alloc(slim_arena *arena, size_t bytes);
/* Zero-initialised variant. */
void *slim_arena_calloc(slim_arena *arena, size_t bytes);
void slim_arena_reset(slim_arena *arena);
void slim_arena_free(slim_arena *arena);

/* ---- tensors ---------------------------------------------------------- */

#define SLIM_MAX_DIMS 4

typedef struct slim_tensor {
    float *data; /* numel floats, row-major over shape */
    float *grad; /* NULL unless the tensor takes part in backward */
    int ndim;    /* 1..4 */
    int shape[SLIM_MAX_DIMS];
    int requires_grad;
} slim_tensor;

size_t slim_shape_numel(int ndim, const int *shape);
static inline size_t slim_tensor_numel(const slim_tensor *t) {
    return slim_shape_numel(t->ndim, t->shape);
}
/* Makes a tensor in the arena (data uninitialised; grad zeroed when
 * requires_grad). Returns NULL with a message on failure. */
slim_tensor *slim_tensor_new(slim_arena *arena, int ndim, const int *shape, int requires_grad);
/* "2x3x4" form of the shape into buf (for messages). */
const char *slim_shape_str(const slim_tensor *t, char *buf, size_t len);

/* ---- atomic file replacement ------------------------------------------ */

/* Every file slim writes (checkpoints, exports, ONNX, logits) goes through
 * this: slim_atomic_open creates "<path>.tmp.<pid>" beside path and opens it
 * as af->f; the caller writes to af->f, then slim_atomic_commit flushes,
 * fsyncs and closes it, renames it over path and fsyncs the directory. On
 * any failure - including a write error the caller passes as write_errno
 * (an errno value, 0 if none) - the temporary file is removed and a previous
 * file at path is left untouched (SLIM_ERR_IO naming both files). */
typedef struct slim_atomic_file {
    FILE *f;
    char *tmp;        /* owned */
    const char *path; /* borrowed */
} slim_atomic_file;

slim_status slim_atomic_open(const char *path, slim_atomic_file *af);
slim_status slim_atomic_commit(slim_atomic_file *af, int write_errno);

/* ---- allocation helpers for long-lived memory ------------------------- */

/* calloc that sets a message and returns NULL on failure or on n*size
 * overflow. */
void *slim_calloc(size_t n, size_t size);
/* The same for a large buffer read all over (a data set): from 4 MiB on it
 * is aligned to 2 MiB and asks for transparent huge pages, so that reading
 * it image by image does not miss the TLB at every page (on these virtual
 * machines a miss walks two page tables). Freed with free(). */
void *slim_calloc_large(size_t n, size_t size);

/* ---- timing ----------------------------------------------------------- */

/* A monotonic clock in seconds (for differences only). */
double slim_clock_s(void);
/* The median of v[0..n-1]; sorts v in place (v[0] is then the smallest).
 * 0 for n < 1. */
double slim_median(double *v, int n);

#ifdef __cplusplus
}
#endif
#endif
