/* Runs a model exported by slim export --format c (symbols prefixed
 * "model") on the images of a file: driver IN.f32 OUT.f32, raw
 * native-endian floats, (n, C, H, W) in and (n, classes) out. Built by
 * test_export_c.c with the generated code, under the same strict C99 flags. */
#include <stdio.h>

#include "model.h"

#define IMAGE (MODEL_INPUT_C * MODEL_INPUT_H * MODEL_INPUT_W)

static float x[IMAGE], logits[MODEL_CLASSES];

int main(int argc, char **argv) {
    FILE *in, *out;
    int n = 0;
    if (argc != 3) return 2;
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (!in || !out) return 2;
    while (fread(x, sizeof x, 1, in) == 1) {
        model_run(x, logits);
        if (fwrite(logits, sizeof logits, 1, out) != 1) return 2;
        n++;
    }
    if (fclose(in) != 0 || fclose(out) != 0 || n == 0) return 2;
    return 0;
}
