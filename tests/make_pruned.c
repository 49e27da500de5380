/* Test helper (not a test): a pruned model with bias maps, for the export
 * tests (tests/cli/onnx_opencv.sh, the C export's tests).
 *
 *   make_pruned MODEL.net SEED PRUNED.ckpt [UNPRUNED.ckpt [DUMP]]
 *
 * Initialises the model from SEED with random gamma, beta and biasmaps and
 * running statistics taken from a random batch (rc_randomize, as the
 * runtime's tests do), zeroes gamma in 40% of every BN's channels (those
 * with beta > 0 become constants, which pruning folds into bias maps), prunes
 * at threshold 0 (slim_prune) and writes the pruned model as a training
 * checkpoint, and the unpruned one too when asked. With DUMP, also writes
 * slim's logits for comparison: DUMP.input.bin, DUMP_IMAGES random inputs
 * (N, C, H, W), and DUMP.pruned.logits.bin, DUMP.unpruned.logits.bin, the
 * logits (N, classes) of each model's reference forward in inference mode;
 * raw little-endian float32. Both carry class names
 * and the preprocessing keys (data.resize, data.mean, data.std), so that
 * exports have metadata to carry.
 *
 * Prints "biasmaps: N" (convs of the pruned model with a biasmap) and
 * "macs: A -> B". Exits 0, or 1 with a message on stderr. */
#include "prune_helpers.h"
#include "runtime_check.h"

#include "slim/ckpt.h"
#include "slim/model_io.h"

#define ZERO_FRAC 0.4
#define DUMP_IMAGES 64

/* The metadata every written checkpoint carries. */
static slim_status set_meta(slim_ckpt *ck, const slim_model *m) {
    char key[32], value[64];
    for (int k = 0; k < m->n_classes; k++) {
        snprintf(key, sizeof key, "class.%d", k);
        snprintf(value, sizeof value, "class %d", k);
        SLIM_TRY(slim_ckpt_set_meta(ck, key, value));
    }
    SLIM_TRY(slim_ckpt_set_meta(ck, "data.resize", "none"));
    /* Per-channel values that differ, so a reader that takes one for all
     * is caught. */
    char mean[256] = "", std[256] = "";
    for (int c = 0; c < m->layers[0].c; c++) {
        size_t lm = strlen(mean), ls = strlen(std);
        snprintf(mean + lm, sizeof mean - lm, "%s%.3f", c ? "," : "", 0.25 + 0.125 * c);
        snprintf(std + ls, sizeof std - ls, "%s%.3f", c ? "," : "", 0.5 + 0.0625 * c);
    }
    SLIM_TRY(slim_ckpt_set_meta(ck, "data.mean", mean));
    return slim_ckpt_set_meta(ck, "data.std", std);
}

static int write_model(const slim_model *m, const char *path) {
    slim_ckpt *ck = NULL;
    slim_status st = slim_model_to_ckpt(m, SLIM_CKPT_TRAIN, 0, &ck);
    if (st == SLIM_OK) st = set_meta(ck, m);
    if (st == SLIM_OK) st = slim_ckpt_write(ck, path);
    slim_ckpt_free(ck);
    if (st != SLIM_OK) fprintf(stderr, "make_pruned: %s\n", slim_last_error());
    return st == SLIM_OK;
}

static int write_floats(const char *prefix, const char *what, const float *x, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.bin", prefix, what);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof *x, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "make_pruned: cannot write %s\n", path);
    return ok;
}

/* The inputs and both models' logits (see the top). */
static int dump(slim_model *m, slim_model *p, const char *prefix, slim_rng *rng) {
    float *x = rc_random_input(m, DUMP_IMAGES, rng);
    size_t nl = (size_t)DUMP_IMAGES * (size_t)m->n_classes;
    float *y = malloc(nl * sizeof *y);
    assert_non_null(y);
    int ok = write_floats(prefix, "input", x, DUMP_IMAGES * rc_input_numel(m));
    rc_forward_ref(p, x, DUMP_IMAGES, 0, y);
    ok = ok && write_floats(prefix, "pruned.logits", y, nl);
    rc_forward_ref(m, x, DUMP_IMAGES, 0, y);
    ok = ok && write_floats(prefix, "unpruned.logits", y, nl);
    free(x);
    free(y);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: make_pruned MODEL.net SEED PRUNED.ckpt [UNPRUNED.ckpt [DUMP]]\n");
        return 1;
    }
    char *end;
    unsigned long long seed = strtoull(argv[2], &end, 10);
    if (*end || end == argv[2]) {
        fprintf(stderr, "make_pruned: bad seed '%s'\n", argv[2]);
        return 1;
    }
    slim_model *m = NULL;
    if (slim_model_load_file(argv[1], &m) != SLIM_OK) {
        fprintf(stderr, "make_pruned: %s\n", slim_last_error());
        return 1;
    }
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    rc_randomize(m, &rng);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) zero_some(m, &m->layers[i], ZERO_FRAC, &rng);
    slim_prune_options opt = slim_prune_default_options(); /* threshold 0 */
    slim_model *p = NULL;
    if (slim_prune(m, &opt, &p, NULL) != SLIM_OK) {
        fprintf(stderr, "make_pruned: prune: %s\n", slim_last_error());
        slim_model_free(m);
        return 1;
    }
    int maps = 0;
    for (int i = 0; i < p->n_layers; i++)
        maps += p->layers[i].kind == SLIM_LAYER_CONV && p->layers[i].has_biasmap;
    printf("biasmaps: %d\n", maps);
    printf("macs: %.0f -> %.0f\n", slim_model_macs(m), slim_model_macs(p));
    int ok = write_model(p, argv[3]) && (argc < 5 || write_model(m, argv[4])) &&
             (argc < 6 || dump(m, p, argv[5], &rng));
    slim_model_free(p);
    slim_model_free(m);
    return ok ? 0 : 1;
}
