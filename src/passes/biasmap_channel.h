/* The bias-map-as-channel pass (biasmap_channel.c), a model -> model
 * rewrite the runtime runs on its BN-folded model. */
#ifndef SLIM_PASSES_BIASMAP_CHANNEL_H
#define SLIM_PASSES_BIASMAP_CHANNEL_H

#include "slim/core.h"
#include "slim/nn.h"

/* Turns the biasmap of a conv into the weights of one more input channel
 * holding ones, made by the conv that produces its input (one more filter,
 * weights 0, bias 1), where that is exact and free: the producer's channel
 * count is not a multiple of 16 and only relu/pools lie between them.
 * keep[i] (keep may be NULL) leaves conv i's biasmap alone. ones[i] and
 * fold[i] ([m->n_layers], set here) mark the producers that got a channel
 * of ones and the convs whose biasmap became its weights. *out is the
 * rewritten model (the caller's, slim_model_free), or NULL when nothing
 * was rewritten; m is not changed. Layer indices stay the same. */
slim_status slim_model_biasmap_as_channel(const slim_model *m, const int *keep, slim_model **out,
                                          int *ones, int *fold);

#endif
