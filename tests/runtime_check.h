/* Helpers shared by the runtime's tests (test_runtime.c, test_runtime_nn.c):
 * models with random parameters and calibrated running statistics, the
 * reference forward, and the checks that hold the runtime and BN folding to
 * it. See test_runtime.c for the tolerances and why they are what they are. */
#ifndef SLIM_TESTS_RUNTIME_CHECK_H
#define SLIM_TESTS_RUNTIME_CHECK_H

#include "testutil.h"

#include "slim/nn.h"
#include "slim/runtime.h"

#define TOL_FOLD 1e-5
#define TOL_RUNTIME 1e-4
#define REF_BATCH 16
/* Set in the child process that runs with oneDNN limited to AVX2. */
#define CHILD_ENV "SLIM_TEST_RUNTIME_AVX2"

/* A model file under the source tree, or the model of `text`; the test
 * fails when it does not load. */
slim_model *rc_load(const char *rel);
slim_model *rc_parse(const char *text);
size_t rc_input_numel(const slim_model *m);
/* Logits of the reference forward (SLIM_BACKEND_REF) in inference mode, or
 * a training-mode forward (for calibration) when training is set. */
void rc_forward_ref(slim_model *m, const float *x, int n, int training, float *logits);
/* Random init, random gamma/beta/biasmaps, and running statistics set to
 * the statistics of a random batch. */
void rc_randomize(slim_model *m, slim_rng *rng);
/* rc_parse(text) with parameters drawn from rng, seeded (a, b) first. */
slim_model *rc_parse_random(const char *text, slim_rng *rng, uint64_t a, uint64_t b);
/* n random images (malloc'd). */
float *rc_random_input(const slim_model *m, int n, slim_rng *rng);
int rc_count_kind(const slim_model *m, slim_layer_kind kind);
int rc_count_str(const char *text, const char *what);

/* max |got - want| <= tol * max(1, max |want|), or the test fails. */
void rc_expect_close(const char *what, const float *got, const float *want, size_t count,
                     double tol);
/* The runtime at batch sizes 1, 3 and REF_BATCH against the reference
 * forward of the same images. */
void rc_check_runtime(slim_model *m, slim_rng *rng, const char *name);
/* The same with batches run as tiles: REF_BATCH images as tiles of 6, 5
 * and 5 (on as many workers as threads), against the reference. */
void rc_check_runtime_tiled(slim_model *m, slim_rng *rng, const char *name);
/* The runtime of m against the reference forward of ref (the model m was
 * pruned from, or m itself): at batch 1, 3 and REF_BATCH, or with tiled,
 * REF_BATCH as tiles of 6, 5 and 5. */
void rc_check_runtime_of(slim_model *ref, const slim_model *m, slim_rng *rng, const char *name,
                         int tiled);
/* slim_model_fold_bn against the reference on 2 images. */
void rc_check_fold(slim_model *m, slim_rng *rng, const char *name);
/* The description of m's plan for batch n, on a runtime of max_batch n. */
char *rc_plan_of(const slim_model *m, int n);
/* Runs this test program again in a child process with oneDNN limited to
 * AVX2 (blocked nChw8c layouts), our kernels off (SLIM_ISA=generic: those
 * layouts throughout) and CHILD_ENV set; the test fails unless
 * the child passes. `self` is the program's path. */
void rc_run_avx2_child(const char *self);

#endif
