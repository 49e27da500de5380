/* Per-step bump allocator; see core.h for the growth policy. */
#include "slim/core.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK ((size_t)1 << 20)

struct slim_arena_block {
    slim_arena_block *next; /* older block */
    size_t cap;
    size_t used;
    /* data follows, aligned */
};

static size_t align_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

static char *block_data(slim_arena_block *b) {
    return (char *)b + align_up(sizeof(slim_arena_block));
}

static slim_arena_block *block_new(slim_arena *arena, size_t cap) {
    slim_arena_block *b = aligned_alloc(ARENA_ALIGN, align_up(sizeof *b) + cap);
    if (!b) return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    arena->n_mallocs++;
    return b;
}

void slim_arena_init(slim_arena *arena) { memset(arena, 0, sizeof *arena); }

void *slim_arena_alloc(slim_arena *arena, size_t bytes) {
    size_t need = align_up(bytes ? bytes : 1);
    slim_arena_block *b = arena->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK;
        if (b && cap < b->cap * 2) cap = b->cap * 2;
        slim_arena_block *nb = block_new(arena, cap);
        if (!nb) {
            slim_error(SLIM_ERR_NOMEM, "arena: cannot allocate %zu bytes", cap);
            return NULL;
        }
        nb->next = b;
        arena->head = b = nb;
    }
    void *p = block_data(b) + b->used;
    b->used += need;
    arena->used_total += need;
    if (arena->used_total > arena->high_water) arena->high_water = arena->used_total;
    return p;
}

void *slim_arena_calloc(slim_arena *arena, size_t bytes) {
    void *p = slim_arena_alloc(arena, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void slim_arena_reset(slim_arena *arena) {
    slim_arena_block *b = arena->head;
    if (b && b->next) {
        /* Several blocks were needed: replace them by one that fits all. */
        size_t cap = align_up(arena->high_water);
        while (b) {
            slim_arena_block *next = b->next;
            free(b);
            b = next;
        }
        arena->head = block_new(arena, cap);
        /* On failure the next alloc simply tries again. */
    } else if (b) {
        b->used = 0;
    }
    arena->used_total = 0;
}

void slim_arena_free(slim_arena *arena) {
    slim_arena_block *b = arena->head;
    while (b) {
        slim_arena_block *next = b->next;
        free(b);
        b = next;
    }
    memset(arena, 0, sizeof *arena);
}
