/* Helpers shared by the CMocka tests. */
#ifndef SLIM_TESTUTIL_H
#define SLIM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "slim/core.h"

/* Fill with uniform values in [lo, hi). */
void tu_fill_uniform(slim_rng *rng, float *x, size_t n, float lo, float hi);
/* max_i |a_i - b_i| */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* max_i |a_i| */
double tu_max_abs(const float *a, size_t n);

/* A scalar loss of the current parameter values, computed by the test. */
typedef double (*tu_loss_fn)(void *ctx);

/* Finite-difference gradient check: for each of the n entries of `param`
 * (or `samples` of them chosen at random when samples < n), compares the
 * central difference (L(p + h) - L(p - h)) / 2h, evaluated in double, with
 * `analytic[i]`. Returns the largest error, measured as
 * |num - ana| / max(1, |num|, |ana|) (absolute for small gradients,
 * relative for large ones). */
double tu_gradcheck(tu_loss_fn loss, void *ctx, float *param, const float *analytic, size_t n,
                    float h, size_t samples, slim_rng *rng);

/* Path of a file under the source tree (SLIM_SOURCE_DIR from ctest). */
const char *tu_source_path(const char *rel, char *buf, size_t len);
/* Whether the Fashion-MNIST files are present (tests that need them skip
 * when not: the README's commands install them). */
int tu_have_fashion_mnist(void);

/* A whole file, malloc'd, with a '\0' after its len bytes (len may be
 * NULL); fails the test if it cannot be read. */
void *tu_read_file(const char *path, size_t *len);
/* A new directory /tmp/slim-<tag>-XXXXXX (the name stays valid for the
 * next 7 calls). */
char *tu_make_tmpdir(const char *tag);
/* Removes dir and everything under it (symlinks are removed, not
 * followed). */
void tu_rm_tree(const char *dir);

/* Whether this thread's last error message contains needle. */
int tu_error_has(const char *needle);
/* expr returns `status` with a message that contains needle. */
#define tu_assert_error(expr, status, needle)                                                      \
    do {                                                                                           \
        slim_clear_error();                                                                        \
        assert_int_equal((expr), (status));                                                        \
        if (!tu_error_has(needle))                                                                 \
            fail_msg("message \"%s\" lacks \"%s\"", slim_last_error(), (needle));                  \
    } while (0)

#endif
