/* A 784-256-10 MLP trained for one epoch on Fashion-MNIST: the smallest
 * complete use of the library (model text, data, tape, SGD, evaluation).
 *
 *   build/examples/mlp_fmnist [--threads T] [--seed S] [--epochs E]
 *
 * Prints the loss as it trains and the final test accuracy (>= 84%).
 */
#include "slim/autograd.h"
#include "slim/data.h"
#include "slim/nn.h"
#include "slim/optim.h"
#include "slim/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mlp_text = "# 784-256-10 multilayer perceptron\n"
                                    "input shape=1x28x28\n"
                                    "flatten\n"
                                    "dense hidden out=256\n"
                                    "relu\n"
                                    "dense logits out=10\n";

static int fail(const char *what) {
    fprintf(stderr, "mlp_fmnist: error: %s: %s\n", what, slim_last_error());
    return 1;
}

int main(int argc, char **argv) {
    int threads = 2, epochs = 1, batch = 128;
    unsigned long seed = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc)
            epochs = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: mlp_fmnist [--threads T (2)] [--seed S (0)] [--epochs E (1)]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    slim_set_threads(threads);

    slim_dataset *train = NULL, *test = NULL;
    if (slim_data_load("fashion-mnist", 1, NULL, &train) != SLIM_OK) return fail("train data");
    if (slim_data_load("fashion-mnist", 0, NULL, &test) != SLIM_OK) return fail("test data");

    slim_model *model = NULL;
    if (slim_model_parse(mlp_text, "mlp", &model) != SLIM_OK) return fail("model");
    slim_rng rng;
    slim_rng_seed(&rng, seed, 1);
    slim_model_init_params(model, &rng);

    slim_sgd opt;
    slim_sgd_config cfg = {.momentum = 0.9f, .weight_decay = 5e-4f, .bn_weight_decay = 5e-4f};
    if (slim_sgd_init(&opt, model, &cfg) != SLIM_OK) return fail("optimizer");

    slim_batcher batcher;
    if (slim_batcher_init(&batcher, train, (size_t)batch, 1) != SLIM_OK) return fail("batcher");
    float *x = malloc((size_t)batch * 784 * sizeof(float));
    int32_t *y = malloc((size_t)batch * sizeof(int32_t));
    if (!x || !y) return fail("memory");

    slim_tape tape;
    slim_tape_init(&tape, SLIM_BACKEND_FAST);
    uint64_t step = 0, total = (uint64_t)epochs * slim_batcher_num_batches(&batcher);
    for (int epoch = 1; epoch <= epochs; epoch++) {
        slim_batcher_begin_epoch(&batcher, &rng);
        double running = 0;
        size_t n;
        while ((n = slim_batcher_next(&batcher, x, y)) > 0) {
            slim_tape_reset(&tape);
            slim_model_zero_grad(model);
            slim_tensor *xt = slim_tape_wrap(&tape, x, NULL, 4, (int[]){(int)n, 1, 28, 28});
            slim_tensor *logits, *loss;
            if (!xt || slim_model_forward(model, &tape, xt, 1, &logits) != SLIM_OK ||
                slim_op_softmax_xent(&tape, logits, y, &loss) != SLIM_OK ||
                slim_tape_backward(&tape, loss) != SLIM_OK)
                return fail("training step");
            float lr = slim_schedule_lr(SLIM_SCHEDULE_COSINE, 0.05f, step, total);
            if (slim_sgd_step(&opt, model, lr) != SLIM_OK) return fail("sgd");
            running = step % 50 == 0 ? loss->data[0] : 0.9 * running + 0.1 * loss->data[0];
            if (++step % 50 == 0)
                printf("epoch %d step %4llu  loss %.4f  lr %.4f\n", epoch, (unsigned long long)step,
                       running, lr);
        }
    }
    slim_eval_result res;
    if (slim_evaluate(model, test, 1000, SLIM_BACKEND_FAST, NULL, 0, &res) != SLIM_OK)
        return fail("evaluation");
    printf("test accuracy %.2f%% (%zu / %zu), test loss %.4f\n", 100.0 * res.accuracy, res.correct,
           res.n, res.loss);
    int ok = res.accuracy >= 0.84;
    slim_tape_free(&tape);
    free(x);
    free(y);
    slim_batcher_free(&batcher);
    slim_sgd_free(&opt);
    slim_model_free(model);
    slim_dataset_free(train);
    slim_dataset_free(test);
    if (!ok) fprintf(stderr, "mlp_fmnist: accuracy below the 84%% target\n");
    return ok ? 0 : 1;
}
