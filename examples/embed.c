/* Classifies picture files with an exported model through slim's inference
 * library, as a program of one's own would (docs/DEPLOY.md):
 *   embed MODEL.slim PICTURE.png|jpg ...
 * Built against the installed library by tests/cli/install.sh, through
 * pkg-config and through find_package(slim). */
#include <stdio.h>
#include <stdlib.h>

#include <slim/infer.h>

/* The library's messages name the file and what is wrong. */
static int fail(void) {
    fprintf(stderr, "embed: error: %s\n", slim_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: embed MODEL.slim PICTURE...\n");
        return 2;
    }
    slim_infer_model *model = NULL;
    if (slim_infer_open(argv[1], &model) != SLIM_OK) return fail();
    int c, h, w, k = slim_infer_class_count(model);
    slim_infer_input_shape(model, &c, &h, &w);
    const slim_preprocessing *pre = slim_infer_preprocessing(model);
    printf("slim %s (built with %s): input %dx%dx%d, %d classes, resize %s, mean %g, std %g\n",
           slim_version(), SLIM_VERSION, c, h, w, k, slim_resize_mode_name(pre->resize),
           (double)pre->mean[0], (double)pre->std[0]);

    /* One picture a run, on one thread. */
    slim_infer_runner *runner = NULL;
    float *logits = malloc((size_t)k * sizeof *logits);
    int rc = 0;
    if (!logits) slim_error(SLIM_ERR_NOMEM, "out of memory");
    if (!logits || slim_infer_runner_create(model, 1, 1, &runner) != SLIM_OK) rc = fail();
    for (int i = 2; i < argc && rc == 0; i++) {
        if (slim_infer_run_image(runner, argv[i], logits) != SLIM_OK) {
            rc = fail();
            break;
        }
        int best = slim_infer_argmax(logits, k);
        printf("%s: %s (class %d, logit %.4f)\n", argv[i], slim_infer_class_name(model, best), best,
               (double)logits[best]);
    }
    slim_infer_runner_free(runner);
    slim_infer_close(model);
    free(logits);
    return rc;
}
