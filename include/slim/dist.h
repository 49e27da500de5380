/* slim dist: running as one of several processes under MPI (mpirun).
 *
 * MPI is optional at build time; without it every function here is the
 * single-process identity (one rank, rank 0). With it, slim_dist_init
 * starts MPI only when the process was launched by an MPI launcher, so the
 * same program runs alone or under `mpirun -np N`. slim_train then trains
 * data-parallel over the ranks (train.h, docs/SCALE.md). Call from the main
 * thread only. */
#ifndef SLIM_DIST_H
#define SLIM_DIST_H

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when slim was built with MPI. */
int slim_dist_built(void);
/* "MPI: <library version>" or "MPI: not built in", for --version. */
const char *slim_dist_describe(void);
/* Starts MPI when launched by mpirun (Open MPI, PMIx or PMI environment);
 * alone, does nothing. Built without MPI but launched by mpirun, it is an
 * error (SLIM_ERR_ARG). Call once, before any other slim_dist_* call. */
slim_status slim_dist_init(int *argc, char ***argv);
/* This process's rank in [0, size) and the number of ranks (1 alone). */
int slim_dist_rank(void);
int slim_dist_size(void);
/* 1 when the last error came from a check every rank took part in (so each
 * rank has it and returns): the job can end normally. 0 for an error only
 * this rank knows of: end it with slim_dist_abort so that no rank waits. */
int slim_dist_error_shared(void);
/* Ends every rank of the job with exit status `code` (MPI_Abort) when more
 * than one runs; otherwise returns. For a program's error path only. */
void slim_dist_abort(int code);
/* Shuts MPI down when slim_dist_init started it. */
void slim_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
