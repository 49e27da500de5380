/* Private to passes and train: the exact removal of dead channels during
 * training (slim train --live-prune, src/train/live_prune.c). */
#ifndef SLIM_PASSES_PRUNE_LIVE_H
#define SLIM_PASSES_PRUNE_LIVE_H

#include "slim/nn.h"

#include <stddef.h>

/* Removes from m every group channel whose gamma is exactly 0 and allowed
 * (allow: m->param_floats flags, read at the gamma offsets) in every BN of
 * its group, by slim_prune's exact fold (threshold 0); never a whole group.
 * Such a channel outputs beta in training mode as in inference mode, so the
 * narrower model computes the same function in both. *out gets it with the
 * momentum and gradients of every kept value (a new bias starts at 0) and
 * the BN running statistics; *src (the caller frees it) maps each of its
 * values to the index in m it came from, SIZE_MAX for none; *removed counts
 * the channels removed. Nothing to remove: *out = NULL, *src = NULL,
 * *removed = 0. m is not changed. */
slim_status prune_live(const slim_model *m, const unsigned char *allow, slim_model **out,
                       size_t **src, int *removed);

#endif
