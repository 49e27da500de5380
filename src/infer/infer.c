/* The inference library (include/slim/infer.h): a model opened from a file
 * with its class names and preprocessing, and runners over the fast
 * runtime. */
#include "slim/infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim/ckpt.h"
#include "slim/kernels.h"
#include "slim/model_io.h"
#include "slim/nn.h"
#include "slim/runtime.h"
#include "slim/train.h"

const char *slim_version(void) { return SLIM_VERSION; }

slim_status slim_preprocessing_from_ckpt(const slim_ckpt *ck, const char *path, int c,
                                         slim_preprocessing *pre) {
    memset(pre, 0, sizeof *pre);
    pre->resize = SLIM_RESIZE_CROP;
    pre->crop_scale = SLIM_DATA_CROP_SCALE;
    slim_data_options o = {0};
    if (ck) SLIM_TRY(slim_train_data_options(ck, path, c, 0, &o));
    if (o.crop_scale > 0) pre->crop_scale = o.crop_scale;
    pre->resize = o.resize;
    const char *spec = ck ? slim_ckpt_get_meta(ck, "data") : NULL;
    if (ck && slim_ckpt_get_meta(ck, "data.mean")) {
        memcpy(pre->mean, o.mean, sizeof pre->mean);
        memcpy(pre->std, o.std, sizeof pre->std);
        snprintf(pre->how, sizeof pre->how, "stored in the model");
        return SLIM_OK;
    }
    /* A model from before statistics were recorded: the fixed rule for the
     * data it names, which is what it was trained with. */
    const char *kind = slim_data_normalisation(spec, c, pre->mean, pre->std);
    if (strcmp(kind, "image-folder") != 0)
        snprintf(pre->how, sizeof pre->how, "%s statistics (data '%s')", kind,
                 spec ? spec : "fashion-mnist");
    else
        snprintf(pre->how, sizeof pre->how, "image-folder rule 0.5/0.5 (data '%s')",
                 spec ? spec : "unknown");
    return SLIM_OK;
}

/* ---- a model ---------------------------------------------------------- */

struct slim_infer_model {
    slim_model *model;
    int c, h, w, n_classes;
    char **names; /* (n_classes) */
    slim_preprocessing pre;
};

void slim_infer_close(slim_infer_model *m) {
    if (!m) return;
    if (m->names)
        for (int k = 0; k < m->n_classes; k++)
            free(m->names[k]);
    free(m->names);
    slim_model_free(m->model);
    free(m);
}

/* class.<k> of ck, else k in decimal. */
static slim_status read_names(slim_infer_model *m, const slim_ckpt *ck) {
    m->names = slim_calloc((size_t)m->n_classes, sizeof *m->names);
    if (!m->names) return SLIM_ERR_NOMEM;
    for (int k = 0; k < m->n_classes; k++) {
        char key[32], num[16];
        snprintf(key, sizeof key, "class.%d", k);
        const char *v = slim_ckpt_get_meta(ck, key);
        if (!v || !*v) snprintf(num, sizeof num, "%d", k);
        m->names[k] = strdup(v && *v ? v : num);
        if (!m->names[k]) return slim_error(SLIM_ERR_NOMEM, "out of memory for class names");
    }
    return SLIM_OK;
}

slim_status slim_infer_open(const char *path, slim_infer_model **out) {
    *out = NULL;
    if (!path) return slim_error(SLIM_ERR_ARG, "slim_infer_open: no path");
    slim_infer_model *m = slim_calloc(1, sizeof *m);
    if (!m) return SLIM_ERR_NOMEM;
    slim_ckpt *ck = NULL;
    slim_status st = slim_model_load_ckpt(path, 0, &m->model, &ck);
    if (st == SLIM_OK) {
        const slim_layer *in = &m->model->layers[0];
        m->c = in->c;
        m->h = in->h;
        m->w = in->w;
        m->n_classes = m->model->n_classes;
        st = read_names(m, ck);
    }
    /* A model of more channels than a picture has runs on tensors only. */
    if (st == SLIM_OK && m->c > SLIM_DATA_MAX_CHANNELS) {
        m->pre.crop_scale = SLIM_DATA_CROP_SCALE;
        snprintf(m->pre.how, sizeof m->pre.how, "none: %d input channels are not a picture", m->c);
    } else if (st == SLIM_OK) {
        st = slim_preprocessing_from_ckpt(ck, path, m->c, &m->pre);
    }
    slim_ckpt_free(ck);
    if (st != SLIM_OK) {
        slim_infer_close(m);
        return st;
    }
    *out = m;
    return SLIM_OK;
}

void slim_infer_input_shape(const slim_infer_model *m, int *c, int *h, int *w) {
    *c = m->c;
    *h = m->h;
    *w = m->w;
}

int slim_infer_class_count(const slim_infer_model *m) { return m->n_classes; }

const char *slim_infer_class_name(const slim_infer_model *m, int k) {
    return k >= 0 && k < m->n_classes ? m->names[k] : NULL;
}

const slim_preprocessing *slim_infer_preprocessing(const slim_infer_model *m) { return &m->pre; }

/* The shape and preprocessing a picture needs: shared by models and
 * runners, so that a runner outlives its model. */
typedef struct input_spec {
    int c, h, w;
    slim_preprocessing pre;
} input_spec;

static slim_status load_image(const input_spec *in, const char *path, float *x) {
    if (!path) return slim_error(SLIM_ERR_ARG, "no picture path");
    return slim_data_load_image_ex(path, in->c, in->h, in->w, in->pre.resize, in->pre.crop_scale,
                                   in->pre.mean, in->pre.std, x);
}

static slim_status load_pixels(const input_spec *in, const uint8_t *px, int src_h, int src_w,
                               int src_c, float *x) {
    return slim_data_pixels_to_input(px, src_h, src_w, src_c, in->c, in->h, in->w, in->pre.resize,
                                     in->pre.crop_scale, in->pre.mean, in->pre.std, x);
}

static input_spec spec_of(const slim_infer_model *m) {
    return (input_spec){m->c, m->h, m->w, m->pre};
}

slim_status slim_infer_load_image(const slim_infer_model *m, const char *path, float *x) {
    input_spec in = spec_of(m);
    return load_image(&in, path, x);
}

slim_status slim_infer_load_pixels(const slim_infer_model *m, const uint8_t *px, int src_h,
                                   int src_w, int src_c, float *x) {
    input_spec in = spec_of(m);
    return load_pixels(&in, px, src_h, src_w, src_c, x);
}

/* ---- a runner --------------------------------------------------------- */

struct slim_infer_runner {
    slim_runtime *rt;
    input_spec in;
    int max_batch;
    float *x; /* (c, h, w): one picture, for run_image and run_pixels */
};

slim_status slim_infer_runner_create(const slim_infer_model *m, int max_batch, int threads,
                                     slim_infer_runner **out) {
    *out = NULL;
    if (max_batch < 1)
        return slim_error(SLIM_ERR_ARG, "a runner's largest batch must be >= 1, got %d", max_batch);
    if (threads < 0)
        return slim_error(SLIM_ERR_ARG, "a runner's thread count must be >= 0, got %d", threads);
    slim_infer_runner *r = slim_calloc(1, sizeof *r);
    if (!r) return SLIM_ERR_NOMEM;
    r->in = spec_of(m);
    r->max_batch = max_batch;
    r->x = slim_calloc((size_t)m->c * (size_t)m->h * (size_t)m->w, sizeof(float));
    /* The runtime takes the thread count of the moment it is made; the
     * caller's setting is put back afterwards. */
    int before = slim_get_threads();
    slim_set_threads(threads);
    slim_status st = r->x ? slim_runtime_create(m->model, max_batch, &r->rt) : SLIM_ERR_NOMEM;
    slim_set_threads(before);
    if (st != SLIM_OK) {
        slim_infer_runner_free(r);
        return st;
    }
    *out = r;
    return SLIM_OK;
}

slim_status slim_infer_run(slim_infer_runner *r, const float *x, int n, float *logits) {
    if (!x || !logits) return slim_error(SLIM_ERR_ARG, "slim_infer_run: no input or output");
    if (n < 1 || n > r->max_batch)
        return slim_error(SLIM_ERR_ARG, "batch of %d images: the runner takes 1 to %d", n,
                          r->max_batch);
    return slim_runtime_run(r->rt, x, n, logits);
}

slim_status slim_infer_run_image(slim_infer_runner *r, const char *path, float *logits) {
    SLIM_TRY(load_image(&r->in, path, r->x));
    return slim_infer_run(r, r->x, 1, logits);
}

slim_status slim_infer_run_pixels(slim_infer_runner *r, const uint8_t *px, int src_h, int src_w,
                                  int src_c, float *logits) {
    SLIM_TRY(load_pixels(&r->in, px, src_h, src_w, src_c, r->x));
    return slim_infer_run(r, r->x, 1, logits);
}

void slim_infer_runner_free(slim_infer_runner *r) {
    if (!r) return;
    slim_runtime_free(r->rt);
    free(r->x);
    free(r);
}

int slim_infer_argmax(const float *logits, int n) {
    int best = 0;
    for (int k = 1; k < n; k++)
        if (logits[k] > logits[best]) best = k;
    return best;
}
