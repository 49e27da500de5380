/* Fuzz target: the model-file parser (slim_model_parse).
 *
 * The input bytes, NUL-terminated, are parsed as model text. A parse that
 * fails must leave a message; one that succeeds must survive a round trip:
 * slim_model_to_text writes the structure back, the text parses again, both
 * models agree layer by layer, and writing the second gives the same text
 * (a fixed point). Any disagreement aborts, so the fuzzer reports it.
 *
 * The format's limits allow 2^28 parameter floats, which the model holds
 * three times (values, gradients, momentum), zeroed: up to 3 GiB for a few
 * hundred bytes of text, by design. The round trip, which holds a second
 * model, is therefore done only for models under 2^22 parameter floats, and
 * tools/fuzz gives this target a higher memory limit.
 *
 * The file is also compiled into tests/test_fuzz_regressions.c, which
 * defines SLIM_FUZZ_ENTRY to a name of its own and replays saved inputs
 * through the same code in the normal test suite. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim/nn.h"

#ifndef SLIM_FUZZ_ENTRY
#define SLIM_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define MT_ROUND_TRIP_MAX_FLOATS ((size_t)1 << 22)

/* Aborts with a note: an invariant of the parser does not hold. */
static void mt_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_model: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void mt_same(const slim_model *a, const slim_model *b) {
    if (a->n_layers != b->n_layers || a->n_params != b->n_params ||
        a->param_floats != b->param_floats || a->buffer_floats != b->buffer_floats ||
        a->n_classes != b->n_classes)
        mt_fail("round trip changed the model's size", b->text);
    for (int i = 0; i < a->n_layers; i++) {
        const slim_layer *x = &a->layers[i], *y = &b->layers[i];
        if (x->kind != y->kind || strcmp(x->name, y->name) != 0 || x->n_inputs != y->n_inputs ||
            x->c != y->c || x->h != y->h || x->w != y->w || x->groups != y->groups ||
            x->has_bias != y->has_bias || x->has_biasmap != y->has_biasmap)
            mt_fail("round trip changed a layer", x->name);
        for (int j = 0; j < x->n_inputs; j++)
            if (x->inputs[j] != y->inputs[j]) mt_fail("round trip changed an input", x->name);
    }
}

/* Parses size bytes as model text; returns the status of the first parse. */
static slim_status mt_run(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return SLIM_ERR_NOMEM;
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    slim_model *m = NULL;
    slim_status st = slim_model_parse(text, "fuzz.net", &m);
    free(text);
    if (st != SLIM_OK) {
        if (m) mt_fail("failed parse returned a model", NULL);
        if (!slim_last_error()[0]) mt_fail("failed parse left no message", NULL);
        return st;
    }
    if (!m || m->n_layers < 2 || m->n_classes < 1)
        mt_fail("parse returned a degenerate model", NULL);
    if (m->param_floats > MT_ROUND_TRIP_MAX_FLOATS) {
        slim_model_free(m);
        return SLIM_OK;
    }
    char *t1 = NULL, *t2 = NULL;
    if (slim_model_to_text(m, &t1) != SLIM_OK) mt_fail("to_text failed", slim_last_error());
    slim_model *m2 = NULL;
    if (slim_model_parse(t1, "roundtrip.net", &m2) != SLIM_OK)
        mt_fail("the written text does not parse", slim_last_error());
    mt_same(m, m2);
    if (slim_model_to_text(m2, &t2) != SLIM_OK) mt_fail("to_text failed", slim_last_error());
    if (strcmp(t1, t2) != 0) mt_fail("to_text is not a fixed point", t2);
    free(t1);
    free(t2);
    slim_model_free(m2);
    slim_model_free(m);
    return SLIM_OK;
}

int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size);
int SLIM_FUZZ_ENTRY(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) {
        slim_set_log_level(SLIM_LOG_QUIET); /* unused-layer warnings would flood */
        quiet = 1;
    }
    (void)mt_run(data, size);
    return 0;
}
