/* The thin layer over MPI (slim/dist.h, dist/dist.h). Built without MPI
 * (SLIM_HAVE_MPI undefined), every call is the one-process identity. With
 * it, MPI starts only when a launcher set up this process, errors come back
 * as statuses (MPI_ERRORS_RETURN), and every sum runs in a fixed order so
 * that a run is reproducible for a given number of ranks. */
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>

/* Whether an MPI launcher started this process. */
static int launched(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

#ifdef SLIM_HAVE_MPI
#include <limits.h>
#include <mpi.h>

static struct {
    int started; /* MPI_Init was ours */
    int rank, size;
    int shared;       /* the last error came from dist_agree */
    double seconds;   /* in collectives (dist_seconds) */
    double t0;        /* COLLECTIVE's start */
    int rc;           /* and result */
    double *dscratch; /* dist_sum_doubles' */
    size_t dscratch_n;
    int *counts; /* 4 size ints: the collectives' counts and displacements */
} g = {.size = 1};

static slim_status mpi_check(int rc, const char *call) {
    if (rc == MPI_SUCCESS) return SLIM_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    g.shared = 0;
    return slim_error(SLIM_ERR_IO, "%s failed: %s", call, text);
}

/* A collective `call`, its time added to g.seconds, its result checked
 * (the comma operator orders the clock, the call and the check). */
#define COLLECTIVE(call, name) (g.t0 = MPI_Wtime(), g.rc = (call), collective_done(name))

static slim_status collective_done(const char *name) {
    g.seconds += MPI_Wtime() - g.t0;
    return mpi_check(g.rc, name);
}

double dist_seconds(void) { return g.seconds; }

int slim_dist_built(void) { return 1; }

const char *slim_dist_describe(void) {
    static char text[MPI_MAX_LIBRARY_VERSION_STRING + 8];
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(lib, &len) != MPI_SUCCESS) return "MPI: built in";
    lib[strcspn(lib, ",\n")] = '\0'; /* the first line's name and version */
    snprintf(text, sizeof text, "MPI: %s", lib);
    return text;
}

slim_status slim_dist_init(int *argc, char ***argv) {
    int already = 0;
    if (g.started || !launched()) return SLIM_OK;
    MPI_Initialized(&already);
    if (!already) {
        int provided;
        /* Only the main thread calls MPI (OpenMP threads never do). */
        SLIM_TRY(mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided),
                           "MPI_Init_thread"));
        g.started = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    SLIM_TRY(mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &g.rank), "MPI_Comm_rank"));
    return mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &g.size), "MPI_Comm_size");
}

int slim_dist_rank(void) { return g.rank; }
int slim_dist_size(void) { return g.size; }
int slim_dist_error_shared(void) { return g.shared; }

void slim_dist_abort(int code) {
    if (g.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void slim_dist_finalize(void) {
    free(g.dscratch);
    free(g.counts);
    g.dscratch = NULL;
    g.counts = NULL;
    g.dscratch_n = 0;
    if (g.started) MPI_Finalize();
    g.started = 0;
    g.rank = 0;
    g.size = 1;
}

/* Rank r's slice of n values: [*off, *off + *len). */
static void slice(size_t n, int size, int r, size_t *off, size_t *len) {
    size_t q = n / (size_t)size, rem = n % (size_t)size, ur = (size_t)r;
    *off = ur * q + (ur < rem ? ur : rem);
    *len = q + (ur < rem);
}

size_t dist_scratch_floats(size_t n) { return (n / (size_t)g.size + 1) * (size_t)g.size; }

/* The reduce-scatter: rank r receives every rank's slice r into `in`
 * (size blocks of its slice's length, in rank order). */
static slim_status scatter(const void *v, size_t n, MPI_Datatype type, void *in, int *counts,
                           int *displs, int *rcounts, int *rdispls) {
    size_t off, len, mine_off, mine;
    slice(n, g.size, g.rank, &mine_off, &mine);
    for (int r = 0; r < g.size; r++) {
        slice(n, g.size, r, &off, &len);
        counts[r] = (int)len;
        displs[r] = (int)off;
        rcounts[r] = (int)mine;
        rdispls[r] = (int)((size_t)r * mine);
    }
    return COLLECTIVE(
        MPI_Alltoallv(v, counts, displs, type, in, rcounts, rdispls, type, MPI_COMM_WORLD),
        "MPI_Alltoallv");
}

/* The allgather: every rank's summed slice back into v. */
static slim_status gather(void *v, size_t n, MPI_Datatype type, int *counts, int *displs) {
    for (int r = 0; r < g.size; r++) {
        size_t off, len;
        slice(n, g.size, r, &off, &len);
        counts[r] = (int)len;
        displs[r] = (int)off;
    }
    return COLLECTIVE(
        MPI_Allgatherv(MPI_IN_PLACE, 0, type, v, counts, displs, type, MPI_COMM_WORLD),
        "MPI_Allgatherv");
}

/* g.counts, allocated for this many ranks on first use. */
static int *count_arrays(void) {
    if (!g.counts) g.counts = malloc((size_t)(4 * g.size) * sizeof *g.counts);
    return g.counts;
}

slim_status dist_sum_floats(float *v, size_t n, float *scratch) {
    if (g.size <= 1) return SLIM_OK;
    if (n > INT_MAX) return slim_error(SLIM_ERR_ARG, "allreduce of %zu values: too many", n);
    int *c = count_arrays();
    if (!c) return SLIM_ERR_NOMEM;
    SLIM_TRY(scatter(v, n, MPI_FLOAT, scratch, c, c + g.size, c + 2 * g.size, c + 3 * g.size));
    size_t off, len;
    slice(n, g.size, g.rank, &off, &len);
    for (size_t i = 0; i < len; i++) {
        double s = 0;
        for (int r = 0; r < g.size; r++)
            s += scratch[(size_t)r * len + i];
        v[off + i] = (float)s;
    }
    return gather(v, n, MPI_FLOAT, c, c + g.size);
}

slim_status dist_sum_doubles(double *v, size_t n) {
    if (g.size <= 1) return SLIM_OK;
    if (n > INT_MAX / (size_t)g.size)
        return slim_error(SLIM_ERR_ARG, "allreduce of %zu values: too many", n);
    /* Short vectors: everyone's values to everyone (log2 N steps rather
     * than the N - 1 of the slices), each rank adding them in rank order. */
    size_t need = n * (size_t)g.size;
    if (g.dscratch_n < need) {
        double *b = realloc(g.dscratch, need * sizeof *b);
        if (!b) return SLIM_ERR_NOMEM;
        g.dscratch = b;
        g.dscratch_n = need;
    }
    SLIM_TRY(COLLECTIVE(
        MPI_Allgather(v, (int)n, MPI_DOUBLE, g.dscratch, (int)n, MPI_DOUBLE, MPI_COMM_WORLD),
        "MPI_Allgather"));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int r = 0; r < g.size; r++)
            s += g.dscratch[(size_t)r * n + i];
        v[i] = s;
    }
    return SLIM_OK;
}

/* The longest message dist_agree passes on. */
#define AGREE_TEXT 1024

slim_status dist_agree(slim_status st) {
    if (g.size <= 1) return st;
    int mine = (int)st, *all = count_arrays();
    if (!all) return SLIM_ERR_NOMEM;
    SLIM_TRY(COLLECTIVE(MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD),
                        "MPI_Allgather"));
    int failed = -1;
    for (int r = 0; r < g.size && failed < 0; r++)
        if (all[r] != SLIM_OK) failed = r;
    if (failed < 0) return SLIM_OK;
    slim_status code = (slim_status)all[failed];
    char text[AGREE_TEXT] = "";
    if (g.rank == failed) {
        const char *m = slim_last_error();
        snprintf(text, sizeof text, "%s", m && *m ? m : slim_status_name(code));
    }
    SLIM_TRY(
        COLLECTIVE(MPI_Bcast(text, AGREE_TEXT, MPI_CHAR, failed, MPI_COMM_WORLD), "MPI_Bcast"));
    slim_status r = slim_error(code, "rank %d: %s", failed, text);
    g.shared = 1;
    return r;
}

slim_status dist_same_u64(uint64_t v, const char *what) {
    if (g.size <= 1) return SLIM_OK;
    uint64_t *all = malloc((size_t)g.size * sizeof *all);
    if (!all) return SLIM_ERR_NOMEM;
    slim_status st = COLLECTIVE(
        MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
    for (int r = 1; r < g.size && st == SLIM_OK; r++)
        if (all[r] != all[0]) {
            st = slim_error(SLIM_ERR_NUMERIC, "rank %d's %s differ from rank 0's", r, what);
            g.shared = 1;
        }
    free(all);
    return st;
}

#else /* without MPI: one process */

int slim_dist_built(void) { return 0; }
const char *slim_dist_describe(void) { return "MPI: not built in"; }
slim_status slim_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* N copies of a one-process run would each train the whole run and
     * write the same files. */
    if (launched())
        return slim_error(SLIM_ERR_ARG, "started by an MPI launcher (mpirun), but this slim is "
                                        "built without MPI (install libopenmpi-dev and rebuild: "
                                        "docs/SCALE.md)");
    return SLIM_OK;
}
int slim_dist_rank(void) { return 0; }
int slim_dist_size(void) { return 1; }
int slim_dist_error_shared(void) { return 0; }
void slim_dist_abort(int code) { (void)code; }
void slim_dist_finalize(void) {}
size_t dist_scratch_floats(size_t n) { return n; }
slim_status dist_sum_floats(float *v, size_t n, float *scratch) {
    (void)v;
    (void)n;
    (void)scratch;
    return SLIM_OK;
}
slim_status dist_sum_doubles(double *v, size_t n) {
    (void)v;
    (void)n;
    return SLIM_OK;
}
slim_status dist_agree(slim_status st) { return st; }
double dist_seconds(void) { return 0.0; }
slim_status dist_same_u64(uint64_t v, const char *what) {
    (void)v;
    (void)what;
    return SLIM_OK;
}

#endif

static slim_status allreduce_doubles(void *ctx, double *v, size_t n) {
    (void)ctx;
    return dist_sum_doubles(v, n);
}

const slim_allreduce dist_allreduce = {allreduce_doubles, NULL};
