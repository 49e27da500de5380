/* Reference softmax cross-entropy, averaged over the batch. */
#include "kernels/kernels.h"

#include <math.h>

/* logits, prob: (n, k); labels: (n) in [0, k). Returns the mean of
 * -log softmax(logits)[label], computed as logsumexp - logit[label] so that
 * large logits neither overflow nor lose the loss to log(0). A label out of
 * range makes the loss NaN (the caller is meant to validate labels; NaN keeps
 * the mistake visible instead of reading out of bounds). */
float slim_ref_softmax_xent_forward(int n, int k, const float *logits, const int32_t *labels,
                                    float *prob) {
    double total = 0.0;
    int bad_label = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float *p = prob + (size_t)i * k;
        float zmax = z[0];
        for (int j = 1; j < k; j++)
            if (z[j] > zmax) zmax = z[j];
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp((double)z[j] - zmax);
        for (int j = 0; j < k; j++)
            p[j] = (float)(exp((double)z[j] - zmax) / sum);
        int32_t label = labels[i];
        if (label < 0 || label >= k)
            bad_label = 1;
        else
            total += log(sum) + zmax - z[label];
    }
    if (bad_label) return NAN;
    return n > 0 ? (float)(total / n) : 0.0f;
}

/* dlogits (n, k) += scale * (prob - onehot(label)) / n; rows with an
 * out-of-range label get only the prob term. */
void slim_ref_softmax_xent_backward(int n, int k, const float *prob, const int32_t *labels,
                                    float scale, float *dlogits) {
    if (n <= 0) return;
    float f = scale / (float)n;
    for (int i = 0; i < n; i++) {
        const float *p = prob + (size_t)i * k;
        float *d = dlogits + (size_t)i * k;
        for (int j = 0; j < k; j++)
            d[j] += f * p[j];
        int32_t label = labels[i];
        if (label >= 0 && label < k) d[label] -= f;
    }
}
