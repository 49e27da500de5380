/* Evaluation: accuracy, loss, confusion matrix, raw logits. */
#include "slim/autograd.h"
#include "slim/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void slim_eval_result_free(slim_eval_result *result) {
    free(result->confusion);
    result->confusion = NULL;
}

slim_status slim_evaluate(slim_model *model, const slim_dataset *ds, int batch,
                          slim_backend backend, float *logits, int want_confusion,
                          slim_eval_result *result) {
    memset(result, 0, sizeof *result);
    if (batch <= 0) return slim_error(SLIM_ERR_ARG, "evaluation batch must be > 0");
    int k = model->n_classes;
    if (ds->n_classes > k)
        return slim_error(SLIM_ERR_SHAPE, "the data has %d classes but the model outputs %d",
                          ds->n_classes, k);
    result->n_classes = k;
    if (want_confusion) {
        result->confusion = slim_calloc((size_t)k * (size_t)k, sizeof(uint64_t));
        if (!result->confusion) return SLIM_ERR_NOMEM;
    }
    size_t img = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    /* A float data set serves as the input itself; a byte one is normalised
     * batch by batch into this buffer. */
    float *xbuf = NULL;
    if (!ds->images && ds->n > 0) {
        size_t rows = ds->n < (size_t)batch ? ds->n : (size_t)batch;
        xbuf = slim_calloc(rows * img, sizeof(float));
        if (!xbuf) {
            slim_eval_result_free(result);
            return SLIM_ERR_NOMEM;
        }
    }
    slim_tape tape;
    slim_tape_init(&tape, backend);
    double loss_sum = 0;
    slim_status st = SLIM_OK;
    for (size_t start = 0; start < ds->n && st == SLIM_OK; start += (size_t)batch) {
        int n = (int)(ds->n - start < (size_t)batch ? ds->n - start : (size_t)batch);
        slim_tape_reset(&tape);
        float *xd = ds->images ? ds->images + start * img : xbuf;
        if (!ds->images) {
            st = slim_dataset_read(ds, start, (size_t)n, xd);
            if (st != SLIM_OK) break;
        }
        slim_tensor *x = slim_tape_wrap(&tape, xd, NULL, 4, (int[]){n, ds->c, ds->h, ds->w});
        slim_tensor *out = NULL;
        if (!x) {
            st = SLIM_ERR_NOMEM;
            break;
        }
        st = slim_model_forward(model, &tape, x, 0, &out);
        if (st != SLIM_OK) break;
        for (int i = 0; i < n; i++) {
            const float *row = out->data + (size_t)i * (size_t)k;
            int best = 0;
            double mx = row[0];
            for (int j = 1; j < k; j++)
                if (row[j] > row[best]) best = j;
            mx = row[best];
            double z = 0;
            for (int j = 0; j < k; j++)
                z += exp((double)row[j] - mx);
            int y = ds->labels[start + (size_t)i];
            loss_sum += log(z) - ((double)row[y] - mx);
            result->correct += best == y;
            if (result->confusion) result->confusion[(size_t)y * (size_t)k + (size_t)best]++;
        }
        if (logits)
            memcpy(logits + start * (size_t)k, out->data, (size_t)n * (size_t)k * sizeof(float));
    }
    slim_tape_free(&tape);
    free(xbuf);
    if (st != SLIM_OK) {
        slim_eval_result_free(result);
        return st;
    }
    result->n = ds->n;
    result->loss = ds->n ? loss_sum / (double)ds->n : 0;
    result->accuracy = ds->n ? (double)result->correct / (double)ds->n : 0;
    return SLIM_OK;
}
