/* Batch normalisation on oneDNN, with slim's (PyTorch's) conventions.
 *
 * Data (n, c, hw) is described to oneDNN as NCHW with H = 1, W = hw. oneDNN
 * computes the batch mean and biased variance in training; the running
 * statistics, which oneDNN does not keep, are updated here from them with
 * the unbiased variance. Scale (gamma) and shift (beta) are separate
 * arguments (dnnl_use_scale | dnnl_use_shift), so the caller's arrays are
 * used as they are. */
#include "kernels/dnnl/dnnl_common.h"

#include <string.h>

static slim_status bn_prepare(slim_dnnl_cache **cache, int n, int c, int hw, float eps) {
    if (n <= 0 || c <= 0 || hw <= 0)
        return slim_error(SLIM_ERR_SHAPE, "batchnorm: sizes must be positive (n=%d c=%d hw=%d)", n,
                          c, hw);
    if (!(eps > 0.0f)) return slim_error(SLIM_ERR_ARG, "batchnorm: eps must be > 0");
    int key[SLIM_DNNL_KEY_LEN] = {n, c, hw};
    memcpy(&key[3], &eps, sizeof eps); /* eps is baked into the primitives */
    return slim_dnnl_cache_prepare(cache, SLIM_DNNL_KIND_BN, key);
}

static slim_status bn_data_md(dnnl_memory_desc_t *md, int n, int c, int hw) {
    return slim_dnnl_md(md, 4, (dnnl_dims_t){n, c, 1, hw}, dnnl_nchw);
}

static slim_status bn_build_fwd_train(slim_dnnl_cache *cache, int n, int c, int hw, float eps) {
    if (slim_dnnl_prim_ready(cache, SLIM_DNNL_BN_FWD_TRAIN)) return SLIM_OK;
    dnnl_memory_desc_t data;
    dnnl_batch_normalization_desc_t desc;
    SLIM_TRY(bn_data_md(&data, n, c, hw));
    SLIM_DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(
        &desc, dnnl_forward_training, &data, eps, dnnl_use_scale | dnnl_use_shift));
    return slim_dnnl_prim_build(cache, SLIM_DNNL_BN_FWD_TRAIN, 0, &desc, SLIM_DNNL_NO_PRIM);
}

/* x, y: (n, c, hw); gamma, beta, running_*, save_*: (c). */
slim_status slim_dnnl_bn_forward_train(slim_dnnl_cache **cache, int n, int c, int hw,
                                       const float *x, const float *gamma, const float *beta,
                                       float eps, float momentum, float *running_mean,
                                       float *running_var, float *y, float *save_mean,
                                       float *save_var) {
    if (!x || !gamma || !beta || !y || !save_mean || !save_var)
        return slim_error(SLIM_ERR_ARG, "batchnorm: a required buffer is NULL");
    SLIM_TRY(bn_prepare(cache, n, c, hw, eps));
    slim_dnnl_cache *ch = *cache;
    SLIM_TRY(bn_build_fwd_train(ch, n, c, hw, eps));
    slim_dnnl_arg args[] = {{DNNL_ARG_SRC, x},          {DNNL_ARG_DST, y},
                            {DNNL_ARG_SCALE, gamma},    {DNNL_ARG_SHIFT, beta},
                            {DNNL_ARG_MEAN, save_mean}, {DNNL_ARG_VARIANCE, save_var}};
    SLIM_TRY(slim_dnnl_run(ch, SLIM_DNNL_BN_FWD_TRAIN, 6, args));
    /* running = (1 - momentum) running + momentum batch, with the unbiased
     * variance var * m / (m - 1) (the biased one when m == 1). */
    double m = (double)n * hw;
    double unbias = m > 1 ? m / (m - 1) : 1.0;
    for (int j = 0; j < c; j++) {
        if (running_mean)
            running_mean[j] = (float)((1.0 - momentum) * running_mean[j] + momentum * save_mean[j]);
        if (running_var)
            running_var[j] =
                (float)((1.0 - momentum) * running_var[j] + momentum * save_var[j] * unbias);
    }
    return SLIM_OK;
}

/* x, y: (n, c, hw); gamma, beta, running_*: (c). */
slim_status slim_dnnl_bn_forward_eval(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      const float *running_mean, const float *running_var,
                                      float *y) {
    if (!x || !gamma || !beta || !running_mean || !running_var || !y)
        return slim_error(SLIM_ERR_ARG, "batchnorm: a required buffer is NULL");
    SLIM_TRY(bn_prepare(cache, n, c, hw, eps));
    slim_dnnl_cache *ch = *cache;
    if (!slim_dnnl_prim_ready(ch, SLIM_DNNL_BN_FWD_EVAL)) {
        dnnl_memory_desc_t data;
        dnnl_batch_normalization_desc_t desc;
        SLIM_TRY(bn_data_md(&data, n, c, hw));
        SLIM_DNNL_CHECK(dnnl_batch_normalization_forward_desc_init(
            &desc, dnnl_forward_inference, &data, eps,
            dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift));
        SLIM_TRY(slim_dnnl_prim_build(ch, SLIM_DNNL_BN_FWD_EVAL, 0, &desc, SLIM_DNNL_NO_PRIM));
    }
    slim_dnnl_arg args[] = {{DNNL_ARG_SRC, x},
                            {DNNL_ARG_DST, y},
                            {DNNL_ARG_SCALE, gamma},
                            {DNNL_ARG_SHIFT, beta},
                            {DNNL_ARG_MEAN, running_mean},
                            {DNNL_ARG_VARIANCE, running_var}};
    return slim_dnnl_run(ch, SLIM_DNNL_BN_FWD_EVAL, 6, args);
}

/* x, dy, dx: (n, c, hw); gamma, save_*, dgamma, dbeta: (c). oneDNN's full
 * backward (dnnl_backward) writes diff_src, diff_scale and diff_shift into
 * cache temporaries, which are then added to whichever gradients are
 * wanted. oneDNN 2.6 also insists on a shift input here, which no gradient
 * depends on: it gets a zeroed cache buffer. */
slim_status slim_dnnl_bn_backward(slim_dnnl_cache **cache, int n, int c, int hw, const float *x,
                                  const float *gamma, float eps, const float *save_mean,
                                  const float *save_var, const float *dy, float *dx, float *dgamma,
                                  float *dbeta) {
    if (!dx && !dgamma && !dbeta) return SLIM_OK;
    if (!x || !gamma || !save_mean || !save_var || !dy)
        return slim_error(SLIM_ERR_ARG, "batchnorm backward: a required buffer is NULL");
    SLIM_TRY(bn_prepare(cache, n, c, hw, eps));
    slim_dnnl_cache *ch = *cache;
    if (!slim_dnnl_prim_ready(ch, SLIM_DNNL_BN_BWD)) {
        SLIM_TRY(bn_build_fwd_train(ch, n, c, hw, eps)); /* the hint */
        dnnl_memory_desc_t data;
        dnnl_batch_normalization_desc_t desc;
        SLIM_TRY(bn_data_md(&data, n, c, hw));
        SLIM_DNNL_CHECK(dnnl_batch_normalization_backward_desc_init(
            &desc, dnnl_backward, &data, &data, eps, dnnl_use_scale | dnnl_use_shift));
        SLIM_TRY(slim_dnnl_prim_build(ch, SLIM_DNNL_BN_BWD, 0, &desc, SLIM_DNNL_BN_FWD_TRAIN));
    }
    size_t count = (size_t)n * c * hw;
    float *tdx = slim_dnnl_buf(ch, SLIM_DNNL_BUF_DIFF_SRC, count * sizeof *tdx);
    float *tdg = slim_dnnl_buf(ch, SLIM_DNNL_BUF_DIFF_WEIGHTS, (size_t)c * sizeof *tdg);
    float *tdb = slim_dnnl_buf(ch, SLIM_DNNL_BUF_DIFF_BIAS, (size_t)c * sizeof *tdb);
    float *shift = slim_dnnl_buf(ch, SLIM_DNNL_BUF_BN_SHIFT, (size_t)c * sizeof *shift);
    if (!tdx || !tdg || !tdb || !shift) return SLIM_ERR_NOMEM;
    memset(shift, 0, (size_t)c * sizeof *shift);
    slim_dnnl_arg args[] = {
        {DNNL_ARG_SRC, x},        {DNNL_ARG_MEAN, save_mean}, {DNNL_ARG_VARIANCE, save_var},
        {DNNL_ARG_DIFF_DST, dy},  {DNNL_ARG_SCALE, gamma},    {DNNL_ARG_SHIFT, shift},
        {DNNL_ARG_DIFF_SRC, tdx}, {DNNL_ARG_DIFF_SCALE, tdg}, {DNNL_ARG_DIFF_SHIFT, tdb}};
    SLIM_TRY(slim_dnnl_run(ch, SLIM_DNNL_BN_BWD, 9, args));
    if (dx) slim_dnnl_accumulate(dx, tdx, count);
    if (dgamma) slim_dnnl_accumulate(dgamma, tdg, (size_t)c);
    if (dbeta) slim_dnnl_accumulate(dbeta, tdb, (size_t)c);
    return SLIM_OK;
}
