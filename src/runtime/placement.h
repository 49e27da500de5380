/* Placing a plan's buffers in one arena: a pure function of their sizes,
 * lifetimes and exclusive flags (no oneDNN, no runtime). */
#ifndef SLIM_RUNTIME_PLACEMENT_H
#define SLIM_RUNTIME_PLACEMENT_H

#include <stddef.h>

#include "slim/core.h"

/* Offsets and the arena size are multiples of this. */
#define RT_PLACE_ALIGN 64

/* A buffer: its size, and the closed interval [first, last] of times it is
 * alive in. An exclusive buffer shares memory with no other. */
typedef struct rt_extent {
    size_t bytes;
    int first, last;
    int exclusive;
} rt_extent;

/* Sets offsets[0..n-1] so that two buffers alive at a common time, or
 * either of them exclusive, never overlap, and *arena to the bytes the
 * arena needs (0 for n = 0). Greedy, largest first: each buffer goes to
 * the lowest aligned offset where it overlaps no placed buffer it
 * conflicts with. SLIM_ERR_NOMEM when out of memory. */
slim_status rt_place(const rt_extent *bufs, int n, size_t *offsets, size_t *arena);

#endif
