/* Tensors made in an arena, and long-lived allocation helpers. */
#include "slim/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t slim_shape_numel(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

slim_tensor *slim_tensor_new(slim_arena *arena, int ndim, const int *shape, int requires_grad) {
    if (ndim < 1 || ndim > SLIM_MAX_DIMS) {
        slim_error(SLIM_ERR_ARG, "tensor: %d dimensions (1 to %d allowed)", ndim, SLIM_MAX_DIMS);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            slim_error(SLIM_ERR_SHAPE, "tensor: dimension %d has size %d", i, shape[i]);
            return NULL;
        }
    }
    slim_tensor *t = slim_arena_alloc(arena, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    size_t n = slim_shape_numel(ndim, shape);
    t->data = slim_arena_alloc(arena, n * sizeof(float));
    if (!t->data) return NULL;
    t->requires_grad = requires_grad;
    if (requires_grad) {
        t->grad = slim_arena_calloc(arena, n * sizeof(float));
        if (!t->grad) return NULL;
    }
    return t;
}

const char *slim_shape_str(const slim_tensor *t, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? "x%d" : "%d", t->shape[i]);
    return buf;
}

void *slim_calloc_large(size_t n, size_t size) {
    const size_t huge = (size_t)2 << 20;
    if (size && n > SIZE_MAX / size) return slim_calloc(n, size); /* its message */
    size_t bytes = n * size;
    if (bytes < 2 * huge) return slim_calloc(n, size);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0) {
        slim_error(SLIM_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice: pages stay small where it is not taken */
#endif
    memset(p, 0, bytes);
    return p;
}

void *slim_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        slim_error(SLIM_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) slim_error(SLIM_ERR_NOMEM, "cannot allocate %zu bytes", n * size);
    return p;
}
