/* Fuzz target: the checkpoint/export container and the model loaded from it
 * (slim_ckpt_read_memory, then slim_model_from_ckpt when the container
 * parses), and the data settings, augmentation rule and cost/budget state
 * the metadata records (slim_train_data_options, train_augment_from_rule,
 * train_budget_restore), and the live-pruning state (train_live_restore).
 *
 * Random mutations almost never keep the CRC-32 and the declared file size
 * right, so each input is tried twice: as given (exercising the early
 * checks), and with file_size and the trailing CRC patched to fit (so the
 * mutations reach the section, metadata and tensor-table validation and
 * the model behind it). A container that parses must re-encode, parse again
 * and re-encode to the same bytes; a model that loads must save again.
 *
 * Also compiled into tests/test_fuzz_regressions.c (see fuzz_model.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "slim/ckpt.h"
#include "slim/model_io.h"
#include "slim/train.h"
#include "train/budget_hook.h"
#include "train/internal.h"
#include "train/live_prune.h"

#ifndef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define CK_HEADER 128
#define CK_TRAILER 4

static void ck_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_ckpt: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void ck_put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The data.* keys and augment.rule: what parses is in range (and the rule
 * runs on a small image), what does not leaves a message. A checkpoint
 * without data.mean names its data for the old normalisation rule, which
 * inspects a directory: only fashion-mnist is let through, so the target
 * never reads the file system. */
static void ck_data_settings(const slim_ckpt *ck, int c) {
    const char *data = slim_ckpt_get_meta(ck, "data");
    if (c > SLIM_DATA_MAX_CHANNELS) return;
    if (!slim_ckpt_get_meta(ck, "data.mean") && data && strcmp(data, "fashion-mnist") != 0) return;
    slim_data_options o = {0};
    if (slim_train_data_options(ck, "fuzz.ckpt", c, 1, &o) != SLIM_OK) {
        if (!slim_last_error()[0]) ck_fail("failed data settings left no message", NULL);
        return;
    }
    if (!(o.val_split >= 0 && o.val_split < 1) ||
        !(o.crop_scale == 0 || (o.crop_scale >= 1 && o.crop_scale <= 16)) || !o.have_norm)
        ck_fail("data settings out of range", NULL);
    for (int k = 0; k < c; k++)
        if (!(o.std[k] > 0) || o.std[k] != o.std[k] || o.mean[k] != o.mean[k])
            ck_fail("normalisation out of range", NULL);
    const char *rule = slim_ckpt_get_meta(ck, "augment.rule");
    slim_dataset *ds = NULL;
    if (!rule || slim_dataset_new(2, c, 8, 8, 2, &ds) != SLIM_OK) return;
    slim_augment aug;
    memset(&aug, 0, sizeof aug);
    if (train_augment_from_rule(rule, "fuzz.ckpt", ds, 1, &aug) == SLIM_OK) {
        slim_rng rng;
        slim_rng_seed(&rng, 1, 1);
        if (slim_augment_batch(&aug, ds->images, 2, c, 8, 8, &rng) != SLIM_OK)
            ck_fail("a rule that parses does not run", slim_last_error());
    } else if (!slim_last_error()[0]) {
        ck_fail("a failed rule left no message", NULL);
    }
    slim_augment_free(&aug);
    slim_dataset_free(ds);
}

/* The cost and budget settings (cost, target, budget.*) and the per-gamma
 * state (optim.gamma_weight, optim.gamma_prev) a resumed run reads: what
 * reads back is in range, what does not leaves a message (and is the
 * result of ck_run: every seed must read back). */
static slim_status ck_budget_state(const slim_ckpt *ck, const slim_model *m) {
    slim_train_config c;
    slim_train_config_default(&c);
    train_budget b;
    memset(&b, 0, sizeof b);
    slim_status st = train_budget_restore(&b, &c, m, ck, "fuzz.ckpt");
    if (st == SLIM_OK) {
        if (c.target && !(b.budget.budget > 0 && b.budget.lambda >= 0 && b.budget.updates >= 0))
            ck_fail("budget state out of range", NULL);
        for (size_t i = 0; b.weights && i < m->param_floats; i++)
            if (!(b.weights[i] >= 0)) ck_fail("negative cost weight", NULL);
    } else if (!slim_last_error()[0]) {
        ck_fail("failed budget state left no message", NULL);
    }
    train_budget_free(&b);
    return st;
}

/* The live_prune.* keys and counters: in range, or a message. */
static void ck_live(const slim_ckpt *ck, const slim_model *m) {
    train_live lp;
    memset(&lp, 0, sizeof lp);
    if (train_live_restore(&lp, m, ck, "fuzz.ckpt") != SLIM_OK) {
        if (!slim_last_error()[0]) ck_fail("failed live-pruning state left no message", NULL);
    } else if (lp.after < 0 || lp.after > TRAIN_LIVE_AFTER_MAX || lp.removed < 0 ||
               (lp.after > 0 && !lp.zero_steps)) {
        ck_fail("live-pruning state out of range", NULL);
    }
    train_live_free(&lp);
}

static slim_status ck_run(const uint8_t *buf, size_t len) {
    slim_ckpt *ck = NULL;
    slim_status st = slim_ckpt_read_memory(buf, len, "fuzz.ckpt", &ck);
    if (st != SLIM_OK) {
        if (ck) ck_fail("failed read returned a container", NULL);
        if (!slim_last_error()[0]) ck_fail("failed read left no message", NULL);
        return st;
    }
    void *e1 = NULL, *e2 = NULL;
    size_t n1 = 0, n2 = 0;
    slim_ckpt *ck2 = NULL;
    if (slim_ckpt_encode(ck, &e1, &n1) != SLIM_OK)
        ck_fail("a container that reads does not encode", slim_last_error());
    if (slim_ckpt_read_memory(e1, n1, "reencoded", &ck2) != SLIM_OK)
        ck_fail("an encoded container does not read", slim_last_error());
    if (slim_ckpt_encode(ck2, &e2, &n2) != SLIM_OK)
        ck_fail("a re-read container does not encode", slim_last_error());
    if (n1 != n2 || memcmp(e1, e2, n1) != 0) ck_fail("encoding is not a fixed point", NULL);
    free(e1);
    free(e2);
    slim_ckpt_free(ck2);

    const char *bad = NULL;
    (void)slim_ckpt_all_finite(ck, &bad);
    slim_model *m = NULL;
    st = slim_model_from_ckpt(ck, "fuzz.ckpt", 1, &m);
    if (st == SLIM_OK) {
        slim_ckpt *out = NULL;
        if (slim_model_to_ckpt(m, ck->kind, ck->kind == SLIM_CKPT_TRAIN, &out) != SLIM_OK)
            ck_fail("a loaded model does not save", slim_last_error());
        slim_ckpt_free(out);
        ck_data_settings(ck, m->layers[0].c);
        st = ck_budget_state(ck, m);
        ck_live(ck, m);
        slim_model_free(m);
    } else {
        if (m) ck_fail("failed load returned a model", NULL);
        if (!slim_last_error()[0]) ck_fail("failed load left no message", NULL);
    }
    slim_ckpt_free(ck);
    return st;
}

int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size);
int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) {
        slim_set_log_level(SLIM_LOG_QUIET);
        quiet = 1;
    }
    (void)ck_run(data, size);
    if (size >= CK_HEADER + CK_TRAILER) {
        uint8_t *copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        ck_put_le(copy + 24, size, 8);
        uLong crc = crc32(0L, copy, (uInt)(size - CK_TRAILER));
        ck_put_le(copy + size - CK_TRAILER, crc, 4);
        (void)ck_run(copy, size);
        free(copy);
    }
    return 0;
}
