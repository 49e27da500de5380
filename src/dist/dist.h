/* Private to the library: the collectives data-parallel training uses.
 * Every rank calls them in the same order with the same sizes. Without MPI
 * (or with one rank) they return at once, leaving the values as they are. */
#ifndef SLIM_DIST_INTERNAL_H
#define SLIM_DIST_INTERNAL_H

#include "slim/dist.h"
#include "slim/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* v (n) becomes the elementwise sum over the ranks, bit for bit the same on
 * every rank and in every run with the same number of ranks: each rank sums
 * one n/size slice of everyone's values in rank order (in double), then the
 * slices are gathered (a reduce-scatter and an allgather, as a ring
 * allreduce moves). scratch: at least dist_scratch_floats(n) floats. */
slim_status dist_sum_floats(float *v, size_t n, float *scratch);
size_t dist_scratch_floats(size_t n);
/* The same for short vectors of doubles (statistics): every rank gathers
 * every rank's values (MPI_Allgather) and adds them in rank order. */
slim_status dist_sum_doubles(double *v, size_t n);
/* A slim_allreduce over dist_sum_doubles (batch-norm statistics). */
extern const slim_allreduce dist_allreduce;
/* Every rank learns whether any failed: returns SLIM_OK when all passed
 * SLIM_OK, else on every rank the lowest failing rank's status with its
 * message as "rank R: <message>" (and slim_dist_error_shared() is 1). */
slim_status dist_agree(slim_status st);
/* Seconds spent in this file's collectives since the start (waiting for
 * other ranks included). */
double dist_seconds(void);
/* SLIM_OK when every rank passed the same value; else an error naming the
 * first rank that differs from rank 0 and `what`. */
slim_status dist_same_u64(uint64_t v, const char *what);

#endif
