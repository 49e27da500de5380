/* Removing dead channels while training: each gamma's steps at exactly 0,
 * the removal at a check, and what the checkpoint keeps of it. */
#include "train/live_prune.h"
#include "passes/prune_live.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNTS_TENSOR "optim.live_zero_steps"

void train_live_free(train_live *lp) {
    free(lp->zero_steps);
    free(lp->allow);
    free(lp->per_epoch);
    free(lp->remap);
    memset(lp, 0, sizeof *lp);
}

slim_status train_live_init(train_live *lp, const slim_model *m, int after, int remove) {
    train_live_free(lp);
    if (after < 1 || after > TRAIN_LIVE_AFTER_MAX)
        return slim_error(SLIM_ERR_ARG, "--live-prune-after must be in 1..%d, got %d",
                          TRAIN_LIVE_AFTER_MAX, after);
    lp->after = after;
    lp->remove = remove;
    size_t n = m->param_floats ? m->param_floats : 1;
    lp->zero_steps = slim_calloc(n, sizeof *lp->zero_steps);
    lp->allow = slim_calloc(n, 1);
    if (!lp->zero_steps || !lp->allow) return SLIM_ERR_NOMEM;
    return SLIM_OK;
}

slim_status train_live_setup(train_live *lp, const slim_model *m, const slim_train_config *c) {
    train_live_free(lp);
    int after = c->live_prune_after ? c->live_prune_after : SLIM_LIVE_PRUNE_AFTER;
    int plain = c->cost == SLIM_COST_UNIFORM && !c->target; /* auto's condition */
    if (after < 1 || after > TRAIN_LIVE_AFTER_MAX)
        return slim_error(SLIM_ERR_ARG, "--live-prune-after must be in 1..%d, got %d",
                          TRAIN_LIVE_AFTER_MAX, after);
    if (c->live_prune > 0) {
        if (!slim_penalty_is_gamma(c->penalty))
            return slim_error(SLIM_ERR_ARG, "--live-prune needs a gamma penalty (got %s)",
                              slim_penalty_name(c->penalty));
        return train_live_init(lp, m, after, 1);
    }
    if (c->live_prune < 0 && c->penalty == SLIM_PENALTY_GAMMA_L1 && plain && c->lambda > 0)
        return train_live_init(lp, m, after, 1);
    if (slim_penalty_is_gamma(c->penalty)) return train_live_init(lp, m, after, 0);
    return SLIM_OK;
}

void train_live_remap_done(train_live *lp) {
    free(lp->remap);
    lp->remap = NULL;
}

void train_live_epoch_done(train_live *lp) {
    lp->returns = 0;
    lp->longest_return = 0;
}

/* The counters' cap: K with removals (all a check needs), else as long as
 * a float stores exactly (the longest run at 0 is measured). */
static uint32_t cap_of(const train_live *lp) {
    return lp->remove ? (uint32_t)lp->after : (uint32_t)TRAIN_LIVE_AFTER_MAX;
}

int train_live_channels(const slim_model *m) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == SLIM_LAYER_BN) n += m->layers[i].c;
    return n;
}

static slim_status note_removal(train_live *lp, int epoch, int k, uint64_t step) {
    if (epoch > lp->n_epochs) {
        int *e = realloc(lp->per_epoch, (size_t)epoch * sizeof *e);
        if (!e) return SLIM_ERR_NOMEM;
        memset(e + lp->n_epochs, 0, (size_t)(epoch - lp->n_epochs) * sizeof *e);
        lp->per_epoch = e;
        lp->n_epochs = epoch;
    }
    lp->per_epoch[epoch - 1] += k;
    lp->removed += k;
    if (!lp->first_step) lp->first_step = step;
    return SLIM_OK;
}

/* Removes the dead channels of *model; nothing when none can go. */
static slim_status remove_dead(train_live *lp, slim_model **model, slim_tape *tape, uint64_t step,
                               int epoch) {
    slim_model *m = *model;
    /* Sized for this model: a fold's bias maps can make it larger than
     * the one before. */
    unsigned char *allow = realloc(lp->allow, m->param_floats ? m->param_floats : 1);
    if (!allow) return slim_error(SLIM_ERR_NOMEM, "out of memory for live pruning");
    lp->allow = allow;
    for (size_t k = 0; k < m->param_floats; k++)
        lp->allow[k] = lp->zero_steps[k] >= (uint32_t)lp->after;
    slim_model *n = NULL;
    size_t *src = NULL;
    int k = 0;
    SLIM_TRY(prune_live(m, lp->allow, &n, &src, &k));
    if (!n) return SLIM_OK;
    uint32_t *z = slim_calloc(n->param_floats ? n->param_floats : 1, sizeof *z);
    slim_status st = z ? note_removal(lp, epoch, k, step) : SLIM_ERR_NOMEM;
    if (st != SLIM_OK) {
        free(z);
        free(src);
        slim_model_free(n);
        return st;
    }
    for (size_t j = 0; j < n->param_floats; j++)
        z[j] = src[j] == SIZE_MAX ? 0 : lp->zero_steps[src[j]];
    free(lp->remap);
    lp->remap = src;
    free(lp->zero_steps);
    lp->zero_steps = z;
    slim_model_free(m);
    *model = n;
    /* The tape's arena and gradient pool were sized for the wider model:
     * start them again so that memory follows the narrower one. */
    slim_backend backend = tape->backend;
    slim_tape_free(tape);
    slim_tape_init(tape, backend);
    return SLIM_OK;
}

slim_status train_live_after_step(train_live *lp, slim_model **model, slim_tape *tape,
                                  uint64_t step, int epoch) {
    if (lp->after < 1) return SLIM_OK;
    const slim_model *m = *model;
    const uint32_t after = (uint32_t)lp->after, cap = cap_of(lp);
    for (int i = 0; i < m->n_params; i++) {
        const slim_param *p = &m->params[i];
        if (p->role != SLIM_PARAM_GAMMA) continue;
        uint32_t *z = lp->zero_steps + p->offset;
        for (size_t j = 0; j < p->numel; j++) {
            if (p->data[j] != 0.0f) {
                if (z[j] >= after) lp->returns++;
                if (z[j] > lp->longest_return) lp->longest_return = z[j];
                z[j] = 0;
            } else if (z[j] < cap && ++z[j] == after) {
                lp->due = 1;
            }
        }
    }
    if (!lp->remove) return SLIM_OK;
    uint64_t check = ((uint64_t)lp->after + 3) / 4;
    if (!lp->due || step % check != 0) return SLIM_OK;
    lp->due = 0;
    double t0 = slim_clock_s();
    slim_status st = remove_dead(lp, model, tape, step, epoch);
    lp->seconds += slim_clock_s() - t0;
    return st;
}

/* ---- checkpoint ---------------------------------------------------------- */

static slim_status set_num(slim_ckpt *ck, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return slim_ckpt_set_meta(ck, key, buf);
}

slim_status train_live_store(const train_live *lp, const slim_model *m, slim_ckpt *ck) {
    SLIM_TRY(set_num(ck, "live_prune.after", (uint64_t)lp->after));
    if (lp->after < 1) return SLIM_OK;
    SLIM_TRY(set_num(ck, "live_prune.remove", (uint64_t)lp->remove));
    SLIM_TRY(set_num(ck, "live_prune.returns", lp->returns));
    SLIM_TRY(set_num(ck, "live_prune.longest_return", lp->longest_return));
    SLIM_TRY(set_num(ck, "live_prune.removed", (uint64_t)lp->removed));
    SLIM_TRY(set_num(ck, "live_prune.first_step", lp->first_step));
    SLIM_TRY(set_num(ck, "live_prune.due", (uint64_t)lp->due));
    /* "epoch:channels" for each epoch that removed some. */
    size_t cap = 16 + (size_t)lp->n_epochs * 24, len = 0;
    char *hist = slim_calloc(cap, 1);
    if (!hist) return SLIM_ERR_NOMEM;
    for (int e = 0; e < lp->n_epochs; e++)
        if (lp->per_epoch[e])
            len += (size_t)snprintf(hist + len, cap - len, "%s%d:%d", len ? " " : "", e + 1,
                                    lp->per_epoch[e]);
    slim_status st = slim_ckpt_set_meta(ck, "live_prune.history", hist);
    free(hist);
    SLIM_TRY(st);
    /* The counters of the gammas, in parameter order (a resumed run
     * removes at the same steps). */
    size_t n = 0, k = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA) n += m->params[i].numel;
    if (n == 0) return SLIM_OK;
    float *buf = slim_calloc(n, sizeof(float));
    if (!buf) return SLIM_ERR_NOMEM;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA)
            for (size_t j = 0; j < m->params[i].numel; j++)
                buf[k++] = (float)lp->zero_steps[m->params[i].offset + j];
    st = slim_ckpt_add_tensor(ck, COUNTS_TENSOR, 1, (int[]){(int)n}, buf, 1);
    free(buf);
    return st;
}

/* A whole number in [0, max] from key, 0 when absent. */
static slim_status get_num(const slim_ckpt *ck, const char *path, const char *key, uint64_t max,
                           uint64_t *out) {
    const char *v = slim_ckpt_get_meta(ck, key);
    *out = 0;
    if (!v) return SLIM_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-' || x > max)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: setting '%s' is '%s': want a whole number 0..%" PRIu64, path, key, v,
                          max);
    *out = x;
    return SLIM_OK;
}

/* "epoch:channels ..." into lp->per_epoch. */
static slim_status parse_history(train_live *lp, const char *path, const char *s) {
    const char *q = s;
    while (*q) {
        char *end;
        errno = 0;
        long e = strtol(q, &end, 10);
        if (errno || end == q || *end != ':' || e < 1 || e > 1000000) goto bad;
        q = end + 1;
        long c = strtol(q, &end, 10);
        if (errno || end == q || c < 1 || c > SLIM_MODEL_MAX_CHANNELS * 64L ||
            (*end != ' ' && *end != '\0') || (int)e <= lp->n_epochs)
            goto bad;
        SLIM_TRY(note_removal(lp, (int)e, (int)c, 0));
        q = *end ? end + 1 : end;
    }
    return SLIM_OK;
bad:
    return slim_error(SLIM_ERR_FORMAT,
                      "%s: setting 'live_prune.history' is '%s': want 'epoch:channels' pairs, "
                      "epochs ascending",
                      path, s);
}

slim_status train_live_restore(train_live *lp, const slim_model *m, const slim_ckpt *ck,
                               const char *path) {
    train_live_free(lp);
    uint64_t after, removed, first, due, remove, returns, longest;
    SLIM_TRY(get_num(ck, path, "live_prune.after", TRAIN_LIVE_AFTER_MAX, &after));
    if (after == 0) return SLIM_OK;
    SLIM_TRY(get_num(ck, path, "live_prune.remove", 1, &remove));
    SLIM_TRY(get_num(ck, path, "live_prune.returns", UINT32_MAX, &returns));
    SLIM_TRY(get_num(ck, path, "live_prune.longest_return", TRAIN_LIVE_AFTER_MAX, &longest));
    SLIM_TRY(get_num(ck, path, "live_prune.removed", INT32_MAX, &removed));
    SLIM_TRY(get_num(ck, path, "live_prune.first_step", UINT64_MAX, &first));
    SLIM_TRY(get_num(ck, path, "live_prune.due", 1, &due));
    SLIM_TRY(train_live_init(lp, m, (int)after, (int)remove));
    lp->returns = (uint32_t)returns;
    lp->longest_return = (uint32_t)longest;
    const char *hist = slim_ckpt_get_meta(ck, "live_prune.history");
    if (hist) SLIM_TRY(parse_history(lp, path, hist));
    if ((uint64_t)lp->removed != removed)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: setting 'live_prune.removed' is %" PRIu64
                          " but 'live_prune.history' adds up to %d",
                          path, removed, lp->removed);
    lp->first_step = first;
    lp->due = (int)due;
    const slim_ckpt_tensor *t = slim_ckpt_find(ck, COUNTS_TENSOR);
    size_t n = 0, k = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA) n += m->params[i].numel;
    if (n == 0) return SLIM_OK;
    if (!t || t->numel != n)
        return slim_error(SLIM_ERR_FORMAT, "%s: tensor '%s' is %s (want %zu values)", path,
                          COUNTS_TENSOR, t ? "the wrong size" : "missing", n);
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].role == SLIM_PARAM_GAMMA)
            for (size_t j = 0; j < m->params[i].numel; j++, k++) {
                float v = t->data[k];
                if (!(v >= 0) || v > (float)cap_of(lp) || v != floorf(v))
                    return slim_error(SLIM_ERR_FORMAT,
                                      "%s: tensor '%s' value %zu is %g: want a whole number "
                                      "0..%" PRIu32,
                                      path, COUNTS_TENSOR, k, (double)v, cap_of(lp));
                lp->zero_steps[m->params[i].offset + j] = (uint32_t)v;
            }
    return SLIM_OK;
}
