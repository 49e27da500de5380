/* slim infer: the inference library, for programs that classify with a
 * trained (and usually pruned and exported) model. It is the whole API an
 * embedding program needs: this header, slim/core.h (slim_status,
 * slim_last_error) and slim/data.h (the resize modes) -- nothing of training.
 *
 *   slim_infer_model *m;            // an export (.slim) or a checkpoint (.ckpt)
 *   slim_infer_open("model.slim", &m);
 *   slim_infer_runner *r;           // up to 8 images a run, 2 threads
 *   slim_infer_runner_create(m, 8, 2, &r);
 *   float *logits = malloc(slim_infer_class_count(m) * sizeof(float));
 *   slim_infer_run_image(r, "cat.jpg", logits); // decode, resize, normalise, run
 *   puts(slim_infer_class_name(m, slim_infer_argmax(logits, slim_infer_class_count(m))));
 *   slim_infer_runner_free(r);
 *   slim_infer_close(m);
 *
 * Every fallible call returns a slim_status; on failure slim_last_error()
 * holds a message naming the file and what is wrong. Nothing here exits or
 * prints.
 *
 * Preprocessing. A picture becomes the model's input as the model's
 * training data did (data.h's top): decoded (PNG, JPEG), converted to the
 * model's channel count, resized to its h x w by the resize mode and crop
 * scale it records (data.resize, data.crop_scale), and normalised,
 * x = (pixel/255 - mean[k]) / std[k], with the statistics it records
 * (data.mean, data.std; `slim export` always writes them). A model from
 * before these were recorded gets the crop mode and the fixed statistics of
 * the data its 'data' setting names (slim_data_normalisation); `how` says
 * which.
 *
 * A runner is slim's fast inference runtime (slim/runtime.h) for one
 * model, a largest batch and a thread count. It holds a copy of what it
 * needs: the model may be closed while runners made from it live. A runner
 * is not thread-safe (one thread at a time); two runners may run at once
 * from two threads.
 */
#ifndef SLIM_INFER_H
#define SLIM_INFER_H

#include <stdint.h>

#include "slim/core.h"
#include "slim/data.h"
#include "slim/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slim_ckpt slim_ckpt; /* slim/ckpt.h */

/* The version of the library linked: SLIM_VERSION when it was built. */
const char *slim_version(void);

/* ---- preprocessing ---------------------------------------------------- */

typedef struct slim_preprocessing {
    slim_resize_mode resize;                                         /* how a picture is sized */
    double crop_scale;                                               /* SLIM_RESIZE_CROP; >= 1 */
    float mean[SLIM_DATA_MAX_CHANNELS], std[SLIM_DATA_MAX_CHANNELS]; /* (c) */
    char how[160]; /* where mean/std came from, for people */
} slim_preprocessing;

/* The preprocessing a checkpoint or export records for a model of c input
 * channels (the top of this file); ck NULL gives the defaults. path names
 * the file in errors: a recorded value that does not parse is
 * SLIM_ERR_FORMAT naming the key and path. */
slim_status slim_preprocessing_from_ckpt(const slim_ckpt *ck, const char *path, int c,
                                         slim_preprocessing *pre);

/* ---- a model ---------------------------------------------------------- */

typedef struct slim_infer_model slim_infer_model;

/* Opens an export (`slim export`, BN folded) or a training checkpoint. */
slim_status slim_infer_open(const char *path, slim_infer_model **out);
/* NULL is fine. */
void slim_infer_close(slim_infer_model *m);

/* The input one image must have: c channels of h x w floats, planar. */
void slim_infer_input_shape(const slim_infer_model *m, int *c, int *h, int *w);
/* The number of logits per image. */
int slim_infer_class_count(const slim_infer_model *m);
/* The name of class k as the model records it (class.<k>), else its number
 * in decimal; NULL for k out of range. Owned by m. */
const char *slim_infer_class_name(const slim_infer_model *m, int k);
/* What the model's pictures go through (owned by m). */
const slim_preprocessing *slim_infer_preprocessing(const slim_infer_model *m);

/* Reads a PNG or JPEG file into x: (c, h, w), preprocessed for m. */
slim_status slim_infer_load_image(const slim_infer_model *m, const char *path, float *x);
/* The same for decoded pixels: px (src_h, src_w, src_c) interleaved bytes,
 * src_c 1 (gray) or 3 (RGB), any size. */
slim_status slim_infer_load_pixels(const slim_infer_model *m, const uint8_t *px, int src_h,
                                   int src_w, int src_c, float *x);

/* ---- a runner --------------------------------------------------------- */

typedef struct slim_infer_runner slim_infer_runner;

/* A runner for batches of 1..max_batch images on `threads` threads (0: one
 * per processor). Builds the plan of max_batch now, so that memory is
 * claimed and errors show here. */
slim_status slim_infer_runner_create(const slim_infer_model *m, int max_batch, int threads,
                                     slim_infer_runner **out);
/* x: (n, c, h, w) preprocessed floats -> logits: (n, classes);
 * 1 <= n <= max_batch. */
slim_status slim_infer_run(slim_infer_runner *r, const float *x, int n, float *logits);
/* One picture file -> logits: (classes). */
slim_status slim_infer_run_image(slim_infer_runner *r, const char *path, float *logits);
/* One decoded picture (as slim_infer_load_pixels) -> logits: (classes). */
slim_status slim_infer_run_pixels(slim_infer_runner *r, const uint8_t *px, int src_h, int src_w,
                                  int src_c, float *logits);
/* NULL is fine. */
void slim_infer_runner_free(slim_infer_runner *r);

/* The index of the largest of n logits (the first of equals). */
int slim_infer_argmax(const float *logits, int n);

#ifdef __cplusplus
}
#endif
#endif
