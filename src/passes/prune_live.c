/* Live pruning's removal: slim_prune restricted to channels dead in
 * training mode too, with the optimizer state carried over. */
#include "passes/prune_live.h"
#include "passes/prune_plan.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

slim_status prune_live(const slim_model *m, const unsigned char *allow, slim_model **out,
                       size_t **src, int *removed) {
    *out = NULL;
    *src = NULL;
    *removed = 0;
    if (!m || !allow || m->n_layers < 2 || !m->params)
        return slim_error(SLIM_ERR_ARG, "prune_live: no model or no allow flags");
    slim_prune_options opt = slim_prune_default_options();
    slim_prune_report r;
    memset(&r, 0, sizeof r);
    prune_plan p = {.m = m, .allow = allow, .want_src = 1};
    slim_model *n = NULL;
    slim_status st = prune_plan_run(&p, &opt, &n, &r);
    int gone = r.channels_before - r.channels_after;
    slim_prune_report_free(&r);
    if (st == SLIM_OK && gone > 0) {
        for (size_t k = 0; k < n->param_floats; k++) {
            size_t s = p.src[k];
            n->momentum_block[k] = s == SIZE_MAX ? 0.0f : m->momentum_block[s];
            n->grad_block[k] = s == SIZE_MAX ? 0.0f : m->grad_block[s];
        }
        /* The same model, narrower: keep its name for messages. */
        snprintf(n->source, sizeof n->source, "%s", m->source);
        n->max_param_floats = m->max_param_floats;
        *out = n;
        *src = p.src;
        *removed = gone;
        p.src = NULL;
        n = NULL;
    }
    slim_model_free(n);
    prune_plan_free(&p);
    return st;
}
