/* A steady-state training step (forward, loss, backward, SGD with prox)
 * performs no heap allocation of slim's own, and keeps activation gradients
 * only while they are live.
 *
 * Allocations: oneDNN 2.6 itself allocates a few small blocks inside every
 * dnnl_primitive_execute (its argument map, freed before the call returns;
 * the C API offers no way around it); those are counted separately and
 * reported, not failed on. The test binary interposes malloc and its
 * relatives, so every allocation in the process (ours, oneDNN's,
 * OpenBLAS's, the OpenMP runtime's) is counted; under AddressSanitizer,
 * which owns malloc, that count is skipped. The buffers slim takes from
 * mmap (the tape's gradient pool, the oneDNN kernels' temporaries) are
 * checked through their own counters, also under AddressSanitizer.
 *
 * Gradients: a step with the tape's gradient pool releasing buffers gives
 * bit for bit the parameter gradients of a step that keeps every gradient
 * (keep_grads, which is what the tape did before the pool), while the
 * pool's layout stays near the two largest activations, and the gradients
 * handed out at forward time (fresh memory) are never even paged in. */
#include "testutil.h"

#include "kernels/kernels.h"
#include "slim/autograd.h"
#include "slim/nn.h"
#include "slim/optim.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TU_FOREIGN_ALLOC() slim_dnnl_in_execute()
#include "malloc_count.h"
#define SLIM_COUNT_MALLOC TU_COUNT_MALLOC

static void train_steps(slim_backend backend, slim_penalty penalty, int N) {
    char path[512];
    slim_model *m = NULL;
    assert_int_equal(
        slim_model_load_file(tu_source_path("models/vgg-fm.net", path, sizeof path), &m), SLIM_OK);
    slim_rng rng;
    slim_rng_seed(&rng, 1, 1);
    slim_model_init_params(m, &rng);
    slim_sgd opt;
    slim_sgd_config cfg = {
        .momentum = 0.9f, .weight_decay = 5e-4f, .penalty = penalty, .lambda = 1e-3f};
    assert_int_equal(slim_sgd_init(&opt, m, &cfg), SLIM_OK);
    static float x[8 * 28 * 28];
    int32_t y[8];
    tu_fill_uniform(&rng, x, N * 28 * 28, -1, 2);
    for (int i = 0; i < N; i++)
        y[i] = i % 10;
    slim_tape tape;
    slim_tape_init(&tape, backend);
    size_t pool_allocs = 0, arena_allocs = 0, dnnl_allocs = 0;
    for (int step = 0; step < 6; step++) {
        if (step == 3) {
            pool_allocs = tape.grads.n_mallocs;
            arena_allocs = tape.arena.n_mallocs;
            dnnl_allocs = slim_dnnl_buf_allocs();
#if SLIM_COUNT_MALLOC
            tu_allocs = 0;
            tu_foreign_allocs = 0;
            tu_counting = 1;
#endif
        }
        slim_tape_reset(&tape);
        slim_model_zero_grad(m);
        slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){N, 1, 28, 28});
        slim_tensor *logits, *loss;
        assert_non_null(xt);
        assert_int_equal(slim_model_forward(m, &tape, xt, 1, &logits), SLIM_OK);
        assert_int_equal(slim_op_softmax_xent(&tape, logits, y, &loss), SLIM_OK);
        assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
        assert_int_equal(slim_sgd_step(&opt, m, 0.01f), SLIM_OK);
    }
    assert_int_equal(tape.grads.n_mallocs, pool_allocs);
    assert_int_equal(tape.arena.n_mallocs, arena_allocs);
    assert_int_equal(slim_dnnl_buf_allocs(), dnnl_allocs);
#if SLIM_COUNT_MALLOC
    tu_counting = 0;
    size_t seen = tu_allocs;
    print_message("backend %d: %zu allocations by slim, %zu inside oneDNN's execute, in 3 steps\n",
                  backend, seen, (size_t)tu_foreign_allocs);
    if (seen != 0)
        fail_msg("%zu heap allocations in 3 steady-state steps (backend %d)", seen, backend);
#endif
    slim_tape_free(&tape);
    slim_sgd_free(&opt);
    slim_model_free(m);
}

static void test_fast_no_malloc(void **state) {
    (void)state;
    train_steps(SLIM_BACKEND_FAST, SLIM_PENALTY_GAMMA_L1, 8);
}

static void test_ref_no_malloc(void **state) {
    (void)state;
    /* The reference kernels are slow: two images suffice. */
    train_steps(SLIM_BACKEND_REF, SLIM_PENALTY_FILTER_L1, 2);
}

/* ---- activation gradients --------------------------------------------- */

/* The result of one training step. */
typedef struct step_result {
    float *grads;   /* copy of the model's grad_block */
    float *running; /* copy of the BN running statistics */
    float loss;
    size_t pool_high;   /* the gradient pool's layout high water */
    size_t fresh_used;  /* bytes of fresh memory handed out */
    size_t fresh_pages; /* of those, pages resident after backward */
    size_t largest;     /* bytes of the largest activation */
} step_result;

static size_t resident_pages(const slim_grad_pool *p) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0;
    for (int i = 0; i < p->n_fresh; i++) {
        size_t len = (p->fresh[i].used + page - 1) / page;
        if (len == 0) continue;
        unsigned char *vec = malloc(len);
        assert_non_null(vec);
        assert_int_equal(mincore(p->fresh[i].ptr, len * page, vec), 0);
        for (size_t k = 0; k < len; k++)
            n += vec[k] & 1;
        free(vec);
    }
    return n;
}

/* Model text `net`, or the model file `path` when given. */
static slim_model *load_net(const char *net, const char *path) {
    slim_model *m = NULL;
    char buf[512];
    if (path)
        assert_int_equal(slim_model_load_file(tu_source_path(path, buf, sizeof buf), &m), SLIM_OK);
    else
        assert_int_equal(slim_model_parse(net, "grads", &m), SLIM_OK);
    return m;
}

/* Two steps (forward, loss, backward; no update) of model text `net` (or
 * file `path`) on a fixed batch of n from a fixed initialisation: the
 * second runs on a pool the first has sized. */
static void grad_step(const char *net, const char *path, slim_backend backend, int n, int keep,
                      step_result *r) {
    slim_model *m = load_net(net, path);
    slim_rng rng;
    slim_rng_seed(&rng, 3, 1);
    slim_model_init_params(m, &rng);
    const slim_layer *in = &m->layers[0];
    size_t img = (size_t)in->c * (size_t)in->h * (size_t)in->w;
    float *x = malloc((size_t)n * img * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    assert_true(x && y);
    tu_fill_uniform(&rng, x, (size_t)n * img, -1, 2);
    for (int i = 0; i < n; i++)
        y[i] = i % m->n_classes;
    slim_tape tape;
    slim_tape_init(&tape, backend);
    tape.keep_grads = keep;
    for (int step = 0; step < 2; step++) {
        slim_tape_reset(&tape);
        slim_model_zero_grad(m);
        slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){n, in->c, in->h, in->w});
        slim_tensor *logits, *loss;
        assert_int_equal(slim_model_forward(m, &tape, xt, 1, &logits), SLIM_OK);
        assert_int_equal(slim_op_softmax_xent(&tape, logits, y, &loss), SLIM_OK);
        /* Consumed by the loss: the logits' gradient buffer went back. */
        if (!keep) assert_null(logits->grad);
        assert_non_null(loss->grad);
        assert_true(loss->grad[0] == 0.0f);
        assert_int_equal(slim_tape_backward(&tape, loss), SLIM_OK);
        r->largest = 0;
        for (slim_tape_node *nd = tape.last; nd; nd = nd->prev) {
            size_t bytes = slim_tensor_numel(nd->out) * sizeof(float);
            if (bytes > r->largest) r->largest = bytes;
            /* Released once their producer ran, or kept when asked to. */
            if (keep)
                assert_non_null(nd->out->grad);
            else
                assert_null(nd->out->grad);
        }
        r->loss = loss->data[0];
    }
    assert_int_equal(tape.grads.live, 0);
    r->pool_high = tape.grads.high_water;
    r->fresh_used = tape.grads.fresh_used;
    r->fresh_pages = resident_pages(&tape.grads);
    r->grads = malloc(m->param_floats * sizeof(float));
    assert_non_null(r->grads);
    memcpy(r->grads, m->grad_block, m->param_floats * sizeof(float));
    r->running = malloc(m->buffer_floats * sizeof(float));
    assert_non_null(r->running);
    memcpy(r->running, m->buffer_block, m->buffer_floats * sizeof(float));
    slim_tape_free(&tape);
    free(x);
    free(y);
    slim_model_free(m);
}

/* keep_grads 0 and 1 give the same step bit for bit; returns the first's
 * result (the caller frees it). */
static step_result compare_keep(const char *net, const char *path, slim_backend backend, int n) {
    step_result a = {0}, b = {0};
    grad_step(net, path, backend, n, 0, &a);
    grad_step(net, path, backend, n, 1, &b);
    slim_model *m = load_net(net, path);
    assert_memory_equal(a.grads, b.grads, m->param_floats * sizeof(float));
    assert_memory_equal(a.running, b.running, m->buffer_floats * sizeof(float));
    assert_true(a.loss == b.loss);
    /* Kept, every activation gradient stays in fresh memory; released, the
     * fresh pages are never written but the loss's one. */
    assert_true(b.fresh_pages > 1);
    assert_true(a.fresh_pages <= 1);
    slim_model_free(m);
    free(b.grads);
    free(b.running);
    return a;
}

static void test_vgg_grads_released(void **state) {
    (void)state;
    step_result r = compare_keep(NULL, "models/vgg-fm.net", SLIM_BACKEND_FAST, 8);
    /* All activation gradients of vgg-fm add up to ~11 of its largest; at
     * most ~2 of them are live at once (a conv's dy and dx). */
    print_message("vgg-fm: pool high water %zu bytes, largest activation %zu, all %zu\n",
                  r.pool_high, r.largest, r.fresh_used);
    assert_true(r.pool_high <= 5 * r.largest / 2);
    assert_true(r.fresh_used >= 10 * r.largest);
    free(r.grads);
    free(r.running);
}

/* A residual add (a tensor with two consumers), a flatten whose input has a
 * second consumer (its gradient is added), and LeNet's flatten whose input
 * has none (the view's buffer is handed over), on the reference kernels. */
static void test_graph_grads_released(void **state) {
    (void)state;
    static const char *net = "input shape=2x8x8\n"
                             "conv c1 out=4 k=3 pad=1\n"
                             "bn b1\n"
                             "relu r1\n"
                             "conv c2 out=4 k=3 pad=1\n"
                             "bn b2\n"
                             "add a1 from=b2,r1\n"
                             "relu r2\n"
                             "maxpool p k=2\n"
                             "flatten f\n"
                             "dense d1 out=5\n"
                             "gap g from=p\n"
                             "dense d2 from=g out=5\n"
                             "add out from=d1,d2\n";
    step_result r = compare_keep(net, NULL, SLIM_BACKEND_REF, 3);
    free(r.grads);
    free(r.running);
    r = compare_keep(NULL, "models/lenet-bn.net", SLIM_BACKEND_REF, 2);
    free(r.grads);
    free(r.running);
}

int main(void) {
    if (!SLIM_COUNT_MALLOC) print_message("malloc counting is off under AddressSanitizer\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_no_malloc),
        cmocka_unit_test(test_ref_no_malloc),
        cmocka_unit_test(test_vgg_grads_released),
        cmocka_unit_test(test_graph_grads_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
