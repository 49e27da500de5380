/* slim export_c: a model as dependency-free C99 source (one .c, one .h).
 *
 * The generated code runs one image: `void <name>_run(const float *input,
 * float *logits)`, input (C, H, W) already resized and normalised as the
 * header's constants say, logits (classes). It has no malloc, no stdio and
 * no library call at all (not even libm): the weights are `static const
 * float` arrays written exactly (9 significant digits round-trip a float),
 * every activation a `static float` array, each op a plain loop (a static
 * function per kind the model uses). It is not reentrant: one call at a
 * time. It compiles warning-free with `-std=c99 -Wall -Wextra -Werror
 * -pedantic` and has nothing platform-specific.
 *
 * The header <stem>.h (beside the .c) declares `<name>_run`, the macros
 * <NAME>_INPUT_C, _INPUT_H, _INPUT_W and _CLASSES, and the arrays
 * `<name>_class_names` (classes), `<name>_mean` and `<name>_std` (input
 * channels): input = (pixel / 255 - mean) / std per channel. With
 * opt->resize it also defines <NAME>_RESIZE (the resize mode's name as a
 * string) and, for "crop", <NAME>_CROP_SCALE: how the model's training
 * pictures reached the input size (docs/USAGE.md, resize modes).
 *
 * Every layer kind a (pruned, BN-folded) model holds has a C form: conv
 * (groups, stride, pad, bias, per-position biasmap), bn (as the per-channel
 * affine map of its running statistics, when it was not folded), relu,
 * relu6, maxpool, avgpool (padding excluded from the divisor), gap,
 * flatten (no code), dense, add, concat. The sums run in another order than
 * slim's, so logits agree within float rounding. A model the writer cannot
 * express (a kind without a C form, a malformed graph, missing or
 * misshapen parameters, a weight that is not finite) is refused with an
 * error naming the layer, before any file is touched.
 */
#ifndef SLIM_EXPORT_C_H
#define SLIM_EXPORT_C_H

#include <stddef.h>

#include "slim/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_export_c_options {
    const char *name;               /* prefix of every symbol; NULL: the .c file's stem; either
                                       way made a C identifier (slim_export_c_identifier) */
    const char *const *class_names; /* the model's class count, or NULL: "0", "1", ... */
    const float *mean, *std;        /* one per input channel, or NULL: 0 and 1 */
    const char *producer;           /* named in the files' first comment; NULL: "slim" */
    const char *resize;             /* how pictures reach the input size (slim_resize_mode_name:
                                       "crop", "stretch", "pad", "none"), or NULL: not stated */
    double crop_scale;              /* with resize "crop": the centre crop's share of the short
                                       side (0: 1) */
} slim_export_c_options;

/* Writes c_path (which must end in ".c") and the header beside it (".h"
 * instead), each atomically; opt may be NULL. */
slim_status slim_export_c(const slim_model *model, const char *c_path,
                          const slim_export_c_options *opt);

/* `src` as a C identifier in out (len > 1): every byte outside
 * [A-Za-z0-9_] becomes '_', an 'm' goes before a leading digit or '_', ""
 * becomes "model"; truncated to len - 1 bytes. */
void slim_export_c_identifier(const char *src, char *out, size_t len);

#ifdef __cplusplus
}
#endif
#endif
