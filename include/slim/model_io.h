/* slim model_io: a model in a checkpoint container and back.
 *
 * Tensor names in the container: every parameter under its own name
 * ("conv1.weight", "bn1.gamma", ...), BN running statistics as
 * "<bn>.running_mean" / "<bn>.running_var", and optimizer momentum as
 * "momentum.<param>" (flagged is_optim). The model text travels with them,
 * so a checkpoint is self-contained.
 */
#ifndef SLIM_MODEL_IO_H
#define SLIM_MODEL_IO_H

#include "slim/ckpt.h"
#include "slim/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A container of `kind` (SLIM_CKPT_TRAIN or SLIM_CKPT_EXPORT) holding the
 * model text, parameters and running statistics, plus momentum when
 * with_optim (never for an export). Non-finite values are refused
 * (SLIM_ERR_NUMERIC naming the tensor), so a diverged model is never saved. */
slim_status slim_model_to_ckpt(const slim_model *model, uint32_t kind, int with_optim,
                               slim_ckpt **out);
/* Builds the model from the container's text and copies every tensor in,
 * checking that each exists with the right shape and finite values; momentum
 * is loaded when load_optim and present (else zero). `source` names the file
 * in messages. */
slim_status slim_model_from_ckpt(const slim_ckpt *ck, const char *source, int load_optim,
                                 slim_model **out);
/* Reads a checkpoint or export file into a model; *ck_out (if not NULL)
 * receives the container for its metadata (caller frees). */
slim_status slim_model_load_ckpt(const char *path, int load_optim, slim_model **out,
                                 slim_ckpt **ck_out);

/* Per-layer sparsity figures, for `slim info`, metrics and reports. */
typedef struct slim_layer_sparsity {
    int layer;
    int channels;                             /* conv: filters; bn: channels; dense: outputs */
    size_t weights;                           /* weight entries (conv/dense) */
    size_t weights_zero;                      /* of them exactly 0.0 */
    int filters_zero;                         /* conv: output filters entirely 0.0 */
    int gamma_zero;                           /* bn: gammas exactly 0.0 */
    float gamma_min, gamma_median, gamma_max; /* bn: of |gamma| */
} slim_layer_sparsity;

/* Fills rows (model->n_layers of them, one per layer; unused fields 0). */
void slim_model_sparsity(const slim_model *model, slim_layer_sparsity *rows);

#ifdef __cplusplus
}
#endif
#endif
