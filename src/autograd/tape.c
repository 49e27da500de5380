/* The define-by-run tape: nodes appended by ops, replayed in reverse, and
 * the pool that holds activation gradients only while they are live (see
 * autograd.h for the rules). */
#include "slim/autograd.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GRAD_ALIGN 64

/* The pool's memory comes straight from mmap, and a returned spill goes
 * straight back. Through malloc, the first step's spills (tens of MB,
 * allocated and freed per tensor) raised glibc's dynamic mmap threshold, so
 * that later buffers of those sizes came from the heap, whose freed chunks
 * stay resident: dead memory in the peak RSS. */
static void *pages_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void pages_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes);
}

static size_t grad_round(size_t bytes) {
    size_t r = (bytes + GRAD_ALIGN - 1) & ~(size_t)(GRAD_ALIGN - 1);
    return r ? r : GRAD_ALIGN;
}

/* ---- fresh memory ----------------------------------------------------- */

#define FRESH_MIN_CHUNK ((size_t)1 << 20)

static size_t page_round(size_t bytes) {
    size_t page = 4096;
    return (bytes + page - 1) / page * page;
}

/* A zero buffer of `need` bytes (a GRAD_ALIGN multiple) from fresh memory,
 * or NULL when the chunk list is full or mmap fails (the caller falls back
 * to the pool). */
static float *fresh_alloc(slim_grad_pool *p, size_t need) {
    slim_grad_chunk *c = p->n_fresh ? &p->fresh[p->n_fresh - 1] : NULL;
    if (!c || c->cap - c->used < need) {
        if (p->n_fresh == SLIM_GRAD_CHUNKS) return NULL;
        size_t cap = need > FRESH_MIN_CHUNK ? need : FRESH_MIN_CHUNK;
        if (c && cap < 2 * c->cap) cap = 2 * c->cap;
        cap = page_round(cap);
        char *mem = pages_alloc(cap);
        if (!mem) return NULL;
        p->n_mallocs++;
        c = &p->fresh[p->n_fresh++];
        *c = (slim_grad_chunk){.ptr = mem, .cap = cap, .used = 0};
    }
    float *g = (float *)(void *)(c->ptr + c->used);
    c->used += need;
    p->fresh_used += need;
    return g;
}

static int fresh_owns(const slim_grad_pool *p, const float *g) {
    const char *q = (const char *)g;
    for (int i = 0; i < p->n_fresh; i++)
        if (q >= p->fresh[i].ptr && q < p->fresh[i].ptr + p->fresh[i].used) return 1;
    return 0;
}

/* Makes every handed-out byte fresh again; several chunks (a first step)
 * become one that holds them all. */
static void fresh_reset(slim_grad_pool *p) {
    if (p->n_fresh > 1) {
        for (int i = 0; i < p->n_fresh; i++)
            pages_free(p->fresh[i].ptr, p->fresh[i].cap);
        p->n_fresh = 0;
        size_t cap = page_round(p->fresh_used);
        char *mem = cap ? pages_alloc(cap) : NULL;
        if (mem) {
            p->fresh[0] = (slim_grad_chunk){.ptr = mem, .cap = cap, .used = 0};
            p->n_fresh = 1;
            p->n_mallocs++;
        }
    } else if (p->n_fresh == 1 && p->fresh[0].used > 0) {
        slim_grad_chunk *c = &p->fresh[0];
        /* Written pages go back to the kernel and read as zero again; pages
         * never written cost nothing here. */
        if (madvise(c->ptr, page_round(c->used), MADV_DONTNEED) != 0) memset(c->ptr, 0, c->used);
        c->used = 0;
    }
    p->fresh_used = 0;
}

static void fresh_free(slim_grad_pool *p) {
    for (int i = 0; i < p->n_fresh; i++)
        pages_free(p->fresh[i].ptr, p->fresh[i].cap);
    p->n_fresh = 0;
    p->fresh_used = 0;
}

/* ---- the gradient pool ------------------------------------------------ */

static void pool_init(slim_grad_pool *p) { memset(p, 0, sizeof *p); }

/* Returns every block (spills are freed); base stays. */
static void pool_clear(slim_grad_pool *p) {
    for (int i = 0; i < p->n_blocks; i++)
        if (p->blocks[i].spilled) pages_free(p->blocks[i].ptr, p->blocks[i].size);
    p->n_blocks = 0;
    p->end = 0;
    p->live = 0;
}

static void pool_free(slim_grad_pool *p) {
    pool_clear(p);
    fresh_free(p);
    pages_free(p->base, p->cap);
    free(p->blocks);
    memset(p, 0, sizeof *p);
}

/* Empties the pool and, when the last step's layout outgrew base, replaces
 * base by a buffer of the high-water size (failure is not fatal: blocks
 * simply spill again). */
static void pool_reset(slim_grad_pool *p) {
    pool_clear(p);
    fresh_reset(p);
    if (p->high_water > p->cap) {
        pages_free(p->base, p->cap);
        p->cap = 0;
        p->base = pages_alloc(p->high_water);
        if (p->base) {
            p->cap = p->high_water;
            p->n_mallocs++;
        }
    }
    p->high_water = 0;
}

/* Inserts a block at index i (blocks i.. move up). */
static int pool_insert(slim_grad_pool *p, int i, slim_grad_block b) {
    if (p->n_blocks == p->max_blocks) {
        int max = p->max_blocks ? 2 * p->max_blocks : 32;
        slim_grad_block *nb = realloc(p->blocks, (size_t)max * sizeof *nb);
        if (!nb) return 0;
        p->blocks = nb;
        p->max_blocks = max;
        p->n_mallocs++;
    }
    memmove(&p->blocks[i + 1], &p->blocks[i], (size_t)(p->n_blocks - i) * sizeof b);
    p->blocks[i] = b;
    p->n_blocks++;
    return 1;
}

static void pool_remove(slim_grad_pool *p, int i) {
    memmove(&p->blocks[i], &p->blocks[i + 1], (size_t)(p->n_blocks - i - 1) * sizeof *p->blocks);
    p->n_blocks--;
}

/* Gives block i its memory: inside base when it fits, else its own. */
static int pool_place(slim_grad_pool *p, slim_grad_block *b) {
    if (b->offset + b->size <= p->cap) {
        b->ptr = (float *)(void *)(p->base + b->offset);
        b->spilled = 0;
        return 1;
    }
    b->ptr = pages_alloc(b->size);
    if (!b->ptr) return 0;
    b->spilled = 1;
    p->n_mallocs++;
    return 1;
}

static void pool_release(slim_grad_pool *p, int i);

/* A zeroed buffer of `count` floats, or NULL (with a message). */
static float *pool_alloc(slim_grad_pool *p, size_t count) {
    if (count > SIZE_MAX / sizeof(float) - GRAD_ALIGN) {
        slim_error(SLIM_ERR_NOMEM, "gradient of %zu values does not fit in memory", count);
        return NULL;
    }
    size_t need = grad_round(count * sizeof(float));
    /* Best fit among the free blocks, the lowest offset on ties. */
    int best = -1;
    for (int i = 0; i < p->n_blocks; i++) {
        const slim_grad_block *b = &p->blocks[i];
        if (!b->used && b->size >= need && (best < 0 || b->size < p->blocks[best].size)) best = i;
    }
    int at;
    if (best >= 0) {
        at = best;
        slim_grad_block *b = &p->blocks[at];
        if (b->size > need) {
            slim_grad_block rest = {.offset = b->offset + need, .size = b->size - need};
            if (!pool_insert(p, at + 1, rest)) goto nomem;
            p->blocks[at].size = need;
        }
    } else {
        /* No free block fits (and none ends the layout: release drops it):
         * a new one at the end. */
        slim_grad_block b = {.offset = p->end, .size = need};
        at = p->n_blocks;
        if (!pool_insert(p, at, b)) goto nomem;
    }
    slim_grad_block *b = &p->blocks[at];
    b->used = 1;
    p->live += b->size;
    if (!pool_place(p, b)) {
        /* Undo: release merges the block back and keeps the layout tidy. */
        b->ptr = NULL;
        b->spilled = 0;
        pool_release(p, at);
        goto nomem;
    }
    p->end = p->blocks[p->n_blocks - 1].offset + p->blocks[p->n_blocks - 1].size;
    if (p->end > p->high_water) p->high_water = p->end;
    memset(b->ptr, 0, b->size);
    return b->ptr;
nomem:
    slim_error(SLIM_ERR_NOMEM, "cannot allocate a gradient of %zu bytes", need);
    return NULL;
}

/* The used block holding `g`, or -1 when g is not the pool's. */
static int pool_find(const slim_grad_pool *p, const float *g) {
    if (!g) return -1;
    for (int i = 0; i < p->n_blocks; i++)
        if (p->blocks[i].used && p->blocks[i].ptr == g) return i;
    return -1;
}

/* Returns block i, merging it with free neighbours; a free block at the end
 * of the layout is dropped. */
static void pool_release(slim_grad_pool *p, int i) {
    slim_grad_block *b = &p->blocks[i];
    if (b->spilled) pages_free(b->ptr, b->size);
    b->ptr = NULL;
    b->spilled = 0;
    b->used = 0;
    p->live -= b->size;
    if (i + 1 < p->n_blocks && !p->blocks[i + 1].used) {
        b->size += p->blocks[i + 1].size;
        pool_remove(p, i + 1);
    }
    if (i > 0 && !p->blocks[i - 1].used) {
        p->blocks[i - 1].size += p->blocks[i].size;
        pool_remove(p, i);
        i--;
    }
    if (i == p->n_blocks - 1) {
        pool_remove(p, i);
        p->end =
            p->n_blocks ? p->blocks[p->n_blocks - 1].offset + p->blocks[p->n_blocks - 1].size : 0;
    }
}

/* t's gradient goes back when it is the tape's (t->grad = NULL,
 * requires_grad stays); fresh memory is only made fresh again at reset. */
static void grad_drop(slim_tape *tape, slim_tensor *t) {
    int i = pool_find(&tape->grads, t->grad);
    if (i >= 0)
        pool_release(&tape->grads, i);
    else if (!fresh_owns(&tape->grads, t->grad))
        return;
    t->grad = NULL;
}

/* A zeroed gradient of `count` floats: fresh memory outside backward (it
 * will most likely never be written), the pool's blocks inside. */
static float *grad_alloc(slim_tape *tape, size_t count) {
    if (!tape->in_backward && count <= (SIZE_MAX - GRAD_ALIGN) / sizeof(float)) {
        float *g = fresh_alloc(&tape->grads, grad_round(count * sizeof(float)));
        if (g) return g;
    }
    return pool_alloc(&tape->grads, count);
}

slim_status slim_tape_ensure_grad(slim_tape *tape, slim_tensor *t) {
    if (!t || !t->requires_grad || t->grad) return SLIM_OK;
    t->grad = grad_alloc(tape, slim_tensor_numel(t));
    return t->grad ? SLIM_OK : SLIM_ERR_NOMEM;
}

int slim_tape_owns_grad(const slim_tape *tape, const float *grad) {
    return grad && (pool_find(&tape->grads, grad) >= 0 || fresh_owns(&tape->grads, grad));
}

/* ---- the tape --------------------------------------------------------- */

void slim_tape_init(slim_tape *tape, slim_backend backend) {
    memset(tape, 0, sizeof *tape);
    slim_arena_init(&tape->arena);
    pool_init(&tape->grads);
    tape->backend = backend;
}

void slim_tape_reset(slim_tape *tape) {
    tape->last = NULL;
    tape->n_nodes = 0;
    slim_arena_reset(&tape->arena);
    pool_reset(&tape->grads);
}

void slim_tape_free(slim_tape *tape) {
    slim_arena_free(&tape->arena);
    pool_free(&tape->grads);
    tape->last = NULL;
    tape->n_nodes = 0;
}

slim_tensor *slim_tape_tensor(slim_tape *tape, int ndim, const int *shape, int requires_grad) {
    slim_tensor *t = slim_tensor_new(&tape->arena, ndim, shape, 0);
    if (!t || !requires_grad) return t;
    t->requires_grad = 1;
    t->grad = grad_alloc(tape, slim_tensor_numel(t));
    return t->grad ? t : NULL;
}

slim_tensor *slim_tape_wrap(slim_tape *tape, float *data, float *grad, int ndim, const int *shape) {
    slim_tensor *t = slim_arena_alloc(&tape->arena, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->data = data;
    t->grad = grad;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->requires_grad = grad != NULL;
    return t;
}

int slim_tape_needs_grad(const slim_tape *tape, const slim_tensor *a, const slim_tensor *b,
                         const slim_tensor *c) {
    if (!tape->recording) return 0;
    return (a && a->requires_grad) || (b && b->requires_grad) || (c && c->requires_grad);
}

slim_status slim_tape_record(slim_tape *tape, slim_backward_fn backward, void *ctx,
                             slim_tensor *out, slim_tensor *in0, slim_tensor *in1,
                             slim_tensor *in2) {
    slim_tape_node *node = slim_arena_alloc(&tape->arena, sizeof *node);
    if (!node) return SLIM_ERR_NOMEM;
    node->prev = tape->last;
    node->backward = backward;
    node->in[0] = in0;
    node->in[1] = in1;
    node->in[2] = in2;
    node->more = NULL;
    node->n_more = 0;
    node->out = out;
    node->ctx = ctx;
    node->view = 0;
    tape->last = node;
    tape->n_nodes++;
    /* A consumed tensor's gradient is still all zeros (only backward adds to
     * it): its buffer is free until backward needs one again. */
    if (!tape->keep_grads)
        for (int i = 0; i < 3; i++)
            if (node->in[i]) grad_drop(tape, node->in[i]);
    return SLIM_OK;
}

slim_status slim_tape_record_n(slim_tape *tape, slim_backward_fn backward, void *ctx,
                               slim_tensor *out, int n, slim_tensor *const *ins) {
    if (n < 1) return slim_error(SLIM_ERR_ARG, "tape: a node needs at least one input");
    slim_tensor **more = NULL;
    if (n > 3) {
        more = slim_arena_alloc(&tape->arena, (size_t)(n - 3) * sizeof *more);
        if (!more) return SLIM_ERR_NOMEM;
        memcpy(more, ins + 3, (size_t)(n - 3) * sizeof *more);
    }
    SLIM_TRY(slim_tape_record(tape, backward, ctx, out, ins[0], n > 1 ? ins[1] : NULL,
                              n > 2 ? ins[2] : NULL));
    tape->last->more = more;
    tape->last->n_more = n > 3 ? n - 3 : 0;
    if (!tape->keep_grads)
        for (int i = 0; i < tape->last->n_more; i++)
            grad_drop(tape, more[i]);
    return SLIM_OK;
}

slim_status slim_tape_backward(slim_tape *tape, slim_tensor *loss) {
    return slim_tape_backward_seed(tape, loss, 1.0f);
}

slim_status slim_tape_backward_seed(slim_tape *tape, slim_tensor *loss, float seed) {
    if (!loss || slim_tensor_numel(loss) != 1 || !loss->requires_grad)
        return slim_error(SLIM_ERR_ARG, "backward: the loss must be a scalar that requires grad");
    tape->in_backward = 1;
    slim_status st = slim_tape_ensure_grad(tape, loss);
    if (st == SLIM_OK) loss->grad[0] = seed;
    for (slim_tape_node *node = tape->last; node && st == SLIM_OK; node = node->prev) {
        /* Every consumer of node->out has run (it was recorded later), so
         * out's gradient is complete; a view hands its buffer to in[0]
         * itself when in[0] has none. */
        st = slim_tape_ensure_grad(tape, node->out);
        for (int i = node->view ? 1 : 0; i < 3 && st == SLIM_OK; i++)
            st = slim_tape_ensure_grad(tape, node->in[i]);
        for (int i = 0; i < node->n_more && st == SLIM_OK; i++)
            st = slim_tape_ensure_grad(tape, node->more[i]);
        if (st == SLIM_OK) st = node->backward(tape, node);
        if (st == SLIM_OK && !tape->keep_grads) grad_drop(tape, node->out);
    }
    tape->in_backward = 0;
    return st;
}
