/* The C export (slim/export_c.h): for every model file but vgg11-cifar,
 * with random weights and BN statistics, as is and pruned with 40% of each
 * bn's channels silenced (so that biasmaps appear), the generated source is
 * compiled with gcc and with clang at -std=c99 -Wall -Wextra -Werror
 * -pedantic together with tests/export_c_driver.c, run on random images,
 * and held to slim's runtime within 1e-4 x max |logit|. Then the models it
 * must refuse, the identifier rule and the generated text's promises. */
#include "prune_helpers.h"

#include "slim/export_c.h"
#include "slim/passes.h"
#include "slim/runtime.h"

#include <dirent.h>
#include <sys/stat.h>

#define N_IMAGES 4
#define TOL 1e-4
#define CFLAGS "-std=c99 -Wall -Wextra -Werror -pedantic -O1"

static const char *const compilers[] = {"gcc", "clang"};

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Exports `m` (BN folded first, as slim export does) as dir/model.c,
 * compiles it with each compiler, runs it on N_IMAGES random images and
 * compares with slim's runtime. */
static void check_export(slim_model *m, slim_rng *rng, const char *what) {
    char *dir = tu_make_tmpdir("cexp");
    char c_path[512], in_path[512], out_path[512], exe[512], cmd[4096], driver[1024];
    snprintf(c_path, sizeof c_path, "%s/model.c", dir);
    snprintf(in_path, sizeof in_path, "%s/in.f32", dir);
    snprintf(out_path, sizeof out_path, "%s/out.f32", dir);
    tu_source_path("tests/export_c_driver.c", driver, sizeof driver);

    slim_model *folded = NULL;
    assert_int_equal(slim_model_fold_bn(m, &folded), SLIM_OK);
    slim_export_c_options opt = {.name = "model"};
    slim_status st = slim_export_c(folded, c_path, &opt);
    if (st != SLIM_OK) fail_msg("%s: %s", what, slim_last_error());

    const slim_layer *in = &m->layers[0];
    size_t image = (size_t)in->c * in->h * in->w, k = (size_t)m->n_classes;
    float *x = random_inputs(m, N_IMAGES, rng);
    float *want = malloc(N_IMAGES * k * sizeof(float));
    assert_non_null(want);
    slim_runtime *rt = NULL;
    assert_int_equal(slim_runtime_create(m, 1, &rt), SLIM_OK);
    for (int i = 0; i < N_IMAGES; i++)
        assert_int_equal(slim_runtime_run(rt, x + i * image, 1, want + i * k), SLIM_OK);
    slim_runtime_free(rt);
    spit(in_path, x, N_IMAGES * image * sizeof(float));

    double big = tu_max_abs(want, N_IMAGES * k);
    assert_true(big > 0.1); /* a meaningful comparison, not of zeros */
    for (size_t c = 0; c < sizeof compilers / sizeof compilers[0]; c++) {
        snprintf(exe, sizeof exe, "%s/run-%s", dir, compilers[c]);
        snprintf(cmd, sizeof cmd, "%s " CFLAGS " -I%s -o %s %s %s", compilers[c], dir, exe, driver,
                 c_path);
        if (system(cmd) != 0) fail_msg("%s: %s failed: %s", what, compilers[c], cmd);
        snprintf(cmd, sizeof cmd, "%s %s %s", exe, in_path, out_path);
        if (system(cmd) != 0) fail_msg("%s: the %s build failed to run", what, compilers[c]);
        size_t len;
        float *got = (float *)tu_read_file(out_path, &len);
        assert_int_equal(len, N_IMAGES * k * sizeof(float));
        double delta = tu_max_abs_diff(got, want, N_IMAGES * k);
        print_message("%s (%s): max |delta logit| %.3g, max |logit| %.3g\n", what, compilers[c],
                      delta, big);
        if (!(delta <= TOL * big))
            fail_msg("%s (%s): the C export's logits differ by %g > 1e-4 x %g", what, compilers[c],
                     delta, big);
        free(got);
    }
    free(x);
    free(want);
    slim_model_free(folded);
    tu_rm_tree(dir);
}

/* A model file with random weights and BN statistics, as is and pruned;
 * maps: whether the pruned model must have biasmaps (lenet-bn cannot: its
 * only conv after a bn has no padding, so a removed channel's constant
 * folds into the bias). */
static void check_model_file(const char *rel, uint64_t seed, int maps_expected) {
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model *m = load(rel);
    slim_model_init_params(m, &rng);
    calibrate(m, SLIM_BACKEND_REF, &rng);
    randomize_bn(m, &rng);
    check_export(m, &rng, rel);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) zero_some(m, &m->layers[i], 0.4, &rng);
    slim_model *p = prune_ok(m, NULL, NULL);
    int maps = 0;
    for (int i = 0; i < p->n_layers; i++)
        maps += p->layers[i].kind == SLIM_LAYER_CONV && p->layers[i].has_biasmap;
    print_message("%s pruned: %d convs with a biasmap\n", rel, maps);
    assert_int_equal(maps > 0, maps_expected);
    char what[128];
    snprintf(what, sizeof what, "%s pruned", rel);
    check_export(p, &rng, what);
    slim_model_free(p);
    slim_model_free(m);
}

/* Every model file but vgg11-cifar (9 M weights: too large a C file for
 * the suite), its seed, and whether its pruned form must have biasmaps. */
static const struct {
    const char *file;
    uint64_t seed;
    int maps;
} model_files[] = {
    {"models/lenet-bn.net", 303, 0},    {"models/vgg-fm.net", 301, 1},
    {"models/resnet-fm.net", 302, 1},   {"models/mobilenet-fm.net", 304, 1},
    {"models/densenet-fm.net", 305, 1},
};

/* Whether models/<name> is in the table (or is vgg11-cifar). */
static int covered(const char *name) {
    char rel[300];
    snprintf(rel, sizeof rel, "models/%s", name);
    for (size_t i = 0; i < sizeof model_files / sizeof model_files[0]; i++)
        if (strcmp(model_files[i].file, rel) == 0) return 1;
    return strcmp(name, "vgg11-cifar.net") == 0;
}

static void test_model_files(void **state) {
    (void)state;
    char dir[1024];
    DIR *d = opendir(tu_source_path("models", dir, sizeof dir));
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strlen(e->d_name) > 4 && strcmp(e->d_name + strlen(e->d_name) - 4, ".net") == 0 &&
            !covered(e->d_name))
            fail_msg("models/%s is not in the C export's test", e->d_name);
    closedir(d);
    for (size_t i = 0; i < sizeof model_files / sizeof model_files[0]; i++)
        check_model_file(model_files[i].file, model_files[i].seed, model_files[i].maps);
}

/* Every op on its own, unfolded bn and maxpool/avgpool with padding
 * included: the kinds and settings the model files lack. */
static void test_small_ops(void **state) {
    (void)state;
    slim_rng rng;
    slim_rng_seed(&rng, 306, 1);
    slim_model *m = parse("input shape=3x11x9\n"
                          "conv a out=6 k=3 stride=2 pad=1 groups=3 bias=1\n"
                          "maxpool mp k=3 stride=1 pad=1\n"
                          "relu6 r6\n"
                          "bn free from=r6\n"
                          "avgpool ap k=3 stride=2 pad=1\n"
                          "conv b out=6 k=1\n"
                          "add s from=b,ap\n"
                          "concat cc from=s,ap,s\n"
                          "relu r\n"
                          "flatten f\n"
                          "dense d out=5\n");
    slim_model_init_params(m, &rng);
    calibrate(m, SLIM_BACKEND_REF, &rng);
    randomize_bn(m, &rng);
    check_export(m, &rng, "small ops");
    slim_model_free(m);
}

/* ---- refusals -------------------------------------------------------------- */

static const char *tiny = "input shape=1x6x6\n"
                          "conv c out=2 k=3 pad=1\n"
                          "gap g\n"
                          "dense d out=3\n";

/* `m` is refused with a message containing needle, and no file is left. */
static void expect_refused(slim_model *m, const char *needle) {
    char *dir = tu_make_tmpdir("cexp-bad");
    char c_path[512], h_path[512];
    snprintf(c_path, sizeof c_path, "%s/m.c", dir);
    snprintf(h_path, sizeof h_path, "%s/m.h", dir);
    tu_assert_error(slim_export_c(m, c_path, NULL), SLIM_ERR_ARG, needle);
    assert_true(tu_error_has("cannot export to C"));
    assert_false(exists(c_path));
    assert_false(exists(h_path));
    tu_rm_tree(dir);
}

static void test_refused(void **state) {
    (void)state;
    slim_model *m = parse(tiny);
    m->layers[2].kind = SLIM_LAYER_KIND_COUNT; /* a kind without a C form */
    expect_refused(m, "layer of unknown kind 'g' (layer 2): cannot export to C: this layer kind");
    slim_model_free(m);

    m = parse(tiny);
    m->params[m->layers[1].p_weight].data[3] = NAN;
    expect_refused(m, "conv 'c' (layer 1): cannot export to C: its weight holds a value that is "
                      "not finite");
    slim_model_free(m);

    m = parse(tiny);
    m->params[m->layers[3].p_weight].numel--;
    expect_refused(m, "dense 'd' (layer 3): cannot export to C: its weight is missing");
    slim_model_free(m);

    m = parse(tiny);
    m->layers[1].h = 7; /* more rows than its window makes */
    expect_refused(m, "conv 'c' (layer 1): cannot export to C: its geometry does not fit");
    slim_model_free(m);

    m = parse(tiny);
    m->layers[3].inputs[0] = 3;
    expect_refused(m, "an input refers to a later layer");
    slim_model_free(m);

    m = parse(tiny);
    const char *long_names[3] = {"a", NULL, "c"};
    slim_export_c_options opt = {.class_names = long_names};
    tu_assert_error(slim_export_c(m, "/tmp/slim-cexp-never.c", &opt), SLIM_ERR_ARG,
                    "class name 1 is missing");
    slim_export_c_options bad_resize = {.resize = "squash"};
    tu_assert_error(slim_export_c(m, "/tmp/slim-cexp-never.c", &bad_resize), SLIM_ERR_ARG,
                    "unknown resize mode 'squash'");
    slim_export_c_options bad_scale = {.resize = "crop", .crop_scale = 1.5};
    tu_assert_error(slim_export_c(m, "/tmp/slim-cexp-never.c", &bad_scale), SLIM_ERR_ARG,
                    "crop scale 1.5 is not in [0, 1]");
    tu_assert_error(slim_export_c(m, "/tmp/slim-cexp-never.txt", NULL), SLIM_ERR_ARG,
                    "does not end in .c");
    assert_false(exists("/tmp/slim-cexp-never.c"));
    slim_model_free(m);
}

static void test_identifier(void **state) {
    (void)state;
    char id[16];
    slim_export_c_identifier("vgg-fm.pruned", id, sizeof id);
    assert_string_equal(id, "vgg_fm_pruned");
    slim_export_c_identifier("3net", id, sizeof id);
    assert_string_equal(id, "m3net");
    slim_export_c_identifier("_x", id, sizeof id);
    assert_string_equal(id, "m_x");
    slim_export_c_identifier("", id, sizeof id);
    assert_string_equal(id, "model");
    slim_export_c_identifier("a very long name indeed", id, sizeof id);
    assert_string_equal(id, "a_very_long_nam");
}

/* The header's constants and the source's promises: exact weights, class
 * names escaped, no include but the header, nothing dynamic. */
static void test_generated_text(void **state) {
    (void)state;
    slim_model *m = parse(tiny);
    slim_rng rng;
    slim_rng_seed(&rng, 307, 1);
    slim_model_init_params(m, &rng);
    m->params[m->layers[1].p_weight].data[0] = 1.0f; /* an integer-valued literal */
    m->params[m->layers[1].p_weight].data[1] = 0.1f;
    char *dir = tu_make_tmpdir("cexp-text");
    char c_path[512], h_path[512];
    snprintf(c_path, sizeof c_path, "%s/3-tiny.c", dir);
    snprintf(h_path, sizeof h_path, "%s/3-tiny.h", dir);
    const char *names[3] = {"T-shirt/top", "say \"hi\"\n", "caf\xc3\xa9?\?="};
    const float mean[1] = {0.286f}, std[1] = {0.353f};
    slim_export_c_options opt = {
        .class_names = names, .mean = mean, .std = std, .resize = "crop", .crop_scale = 0.875};
    assert_int_equal(slim_export_c(m, c_path, &opt), SLIM_OK);
    char *h = tu_read_file(h_path, NULL), *c = tu_read_file(c_path, NULL);
    assert_non_null(
        strstr(h, "#define M3_TINY_RESIZE \"crop\"\n#define M3_TINY_CROP_SCALE 0.875\n"));
    assert_non_null(strstr(h, "#define M3_TINY_INPUT_C 1\n"));
    assert_non_null(strstr(h, "#define M3_TINY_INPUT_H 6\n"));
    assert_non_null(strstr(h, "#define M3_TINY_CLASSES 3\n"));
    assert_non_null(strstr(h, "void m3_tiny_run(const float *input, float *logits);"));
    assert_non_null(strstr(c, "#include \"3-tiny.h\""));
    assert_non_null(strstr(c, "\"T-shirt/top\",\n    \"say \\042hi\\042\\012\",\n"
                              "    \"caf\\303\\251\\077\\077=\""));
    assert_non_null(strstr(c, "const float m3_tiny_mean[M3_TINY_INPUT_C] = {0.286000013f};"));
    assert_non_null(strstr(c, "{\n    1.0f, 0.100000001f, "));
    assert_null(strstr(c, "malloc"));
    assert_null(strstr(c, "#include <")); /* no system header */
    assert_null(strstr(c, "maxpool("));   /* only the helpers it uses */
    free(h);
    free(c);
    tu_rm_tree(dir);
    slim_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identifier),  cmocka_unit_test(test_generated_text),
        cmocka_unit_test(test_refused),     cmocka_unit_test(test_small_ops),
        cmocka_unit_test(test_model_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
