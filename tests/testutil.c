#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tu_fill_uniform(slim_rng *rng, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * slim_rng_uniform(rng);
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

double tu_max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

void *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = '\0';
    if (len) *len = (size_t)n;
    return b;
}

double tu_gradcheck(tu_loss_fn loss, void *ctx, float *param, const float *analytic, size_t n,
                    float h, size_t samples, slim_rng *rng) {
    double worst = 0;
    size_t count = samples < n ? samples : n;
    for (size_t s = 0; s < count; s++) {
        size_t i = samples < n ? slim_rng_below(rng, (uint32_t)n) : s;
        float keep = param[i];
        param[i] = keep + h;
        double up = loss(ctx);
        param[i] = keep - h;
        double down = loss(ctx);
        param[i] = keep;
        /* The actual float step, so that rounding of keep +- h is honoured. */
        double step = (double)(keep + h) - (double)(keep - h);
        double num = (up - down) / step;
        double ana = analytic[i];
        double scale = fmax(1.0, fmax(fabs(num), fabs(ana)));
        double err = fabs(num - ana) / scale;
        if (err > worst || isnan(err)) worst = isnan(err) ? INFINITY : err;
    }
    return worst;
}

const char *tu_source_path(const char *rel, char *buf, size_t len) {
    const char *root = getenv("SLIM_SOURCE_DIR");
    snprintf(buf, len, "%s/%s", root ? root : ".", rel);
    return buf;
}

int tu_have_fashion_mnist(void) {
    return access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0;
}

char *tu_make_tmpdir(const char *tag) {
    static char dirs[8][256];
    static int next;
    char *d = dirs[next++ % 8];
    snprintf(d, 256, "/tmp/slim-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(d));
    return d;
}

void tu_rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode))
            tu_rm_tree(path);
        else
            assert_int_equal(remove(path), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

int tu_error_has(const char *needle) { return strstr(slim_last_error(), needle) != NULL; }
