/* A counting allocator for tests that prove "no heap allocation here".
 *
 * Include this header in exactly ONE source file of a test program: it
 * defines malloc, calloc, realloc, aligned_alloc, memalign and
 * posix_memalign with external linkage, which interposes them for the whole
 * process (slim, oneDNN, OpenBLAS and the OpenMP runtime alike), forwarding
 * to glibc's __libc_* functions. Under AddressSanitizer, which owns malloc,
 * TU_COUNT_MALLOC is 0 and nothing is defined: such tests skip their counts.
 *
 * Set tu_counting = 1 around the code under test and read tu_allocs (and the
 * largest request, tu_largest_alloc). A test may define TU_FOREIGN_ALLOC()
 * before including this file: an expression that is true while an
 * allocation belongs to a third-party library (e.g. inside oneDNN's
 * dnnl_primitive_execute, which allocates its argument map on every call);
 * those are counted in tu_foreign_allocs instead. */
#ifndef SLIM_TESTS_MALLOC_COUNT_H
#define SLIM_TESTS_MALLOC_COUNT_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define TU_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_COUNT_MALLOC 0
#endif
#endif
#ifndef TU_COUNT_MALLOC
#define TU_COUNT_MALLOC 1
#endif
#ifndef TU_FOREIGN_ALLOC
#define TU_FOREIGN_ALLOC() 0
#endif

#if TU_COUNT_MALLOC
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static volatile int tu_counting;
static volatile size_t tu_allocs, tu_foreign_allocs, tu_largest_alloc;

static void tu_note_alloc(size_t bytes) {
    if (!tu_counting) return;
    if (TU_FOREIGN_ALLOC()) {
        __atomic_add_fetch(&tu_foreign_allocs, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_add_fetch(&tu_allocs, 1, __ATOMIC_RELAXED);
    if (bytes > tu_largest_alloc) tu_largest_alloc = bytes;
}
void *malloc(size_t n) {
    tu_note_alloc(n);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t s) {
    tu_note_alloc(n * s);
    return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n) {
    tu_note_alloc(n);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    tu_note_alloc(n);
    return __libc_memalign(a, n);
}
void *memalign(size_t a, size_t n) {
    tu_note_alloc(n);
    return __libc_memalign(a, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
    tu_note_alloc(n);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12; /* ENOMEM */
}
#endif

#endif
