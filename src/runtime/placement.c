/* Placing buffers in one arena by their lifetimes (see placement.h). */
#include "runtime/placement.h"

#include <stdlib.h>

static size_t align_up(size_t x) {
    return (x + RT_PLACE_ALIGN - 1) / RT_PLACE_ALIGN * RT_PLACE_ALIGN;
}

static int conflict(const rt_extent *a, const rt_extent *b) {
    return a->exclusive || b->exclusive || !(a->last < b->first || b->last < a->first);
}

slim_status rt_place(const rt_extent *bufs, int n, size_t *offsets, size_t *arena) {
    *arena = 0;
    if (n <= 0) return SLIM_OK;
    int *order = slim_calloc((size_t)n, sizeof *order);
    int *placed = slim_calloc((size_t)n, sizeof *placed);
    int *busy = slim_calloc((size_t)n, sizeof *busy);
    if (!order || !placed || !busy) {
        free(order);
        free(placed);
        free(busy);
        return SLIM_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort (stable), largest first */
        for (int j = i; j > 0 && bufs[order[j]].bytes > bufs[order[j - 1]].bytes; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t total = 0;
    for (int oi = 0; oi < n; oi++) {
        const rt_extent *s = &bufs[order[oi]];
        int nb = 0; /* the placed buffers it conflicts with, by offset */
        for (int j = 0; j < n; j++)
            if (placed[j] && conflict(s, &bufs[j])) busy[nb++] = j;
        for (int a = 1; a < nb; a++)
            for (int c = a; c > 0 && offsets[busy[c]] < offsets[busy[c - 1]]; c--) {
                int t = busy[c];
                busy[c] = busy[c - 1];
                busy[c - 1] = t;
            }
        size_t off = 0; /* the first gap that holds it */
        for (int a = 0; a < nb; a++) {
            size_t start = offsets[busy[a]];
            if (start >= off + s->bytes) break;
            size_t end = align_up(start + bufs[busy[a]].bytes);
            if (end > off) off = end;
        }
        offsets[order[oi]] = off;
        placed[order[oi]] = 1;
        if (off + s->bytes > total) total = off + s->bytes;
    }
    *arena = align_up(total);
    free(order);
    free(placed);
    free(busy);
    return SLIM_OK;
}
