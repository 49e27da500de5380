/* slim: the command-line program. A table of commands and a dispatcher;
 * each command lives in its own cmd_<name>.c. */
#include "cli/cli.h"

#include <string.h>

#include "slim/dist.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"train", cmd_train, "train a model (optionally with a sparsity penalty), or resume a run"},
    {"eval", cmd_eval, "accuracy, loss, per-class accuracy and confusion matrix on test data"},
    {"info", cmd_info, "layers, shapes, parameters, MACs, sparsity and settings of a model"},
    {"prune", cmd_prune, "remove channels whose BN scale is zero, and prove the result exact"},
    {"export", cmd_export, "fold BN into convolutions and write a compact model or ONNX"},
    {"infer", cmd_infer, "classify image files with a trained or exported model"},
    {"report", cmd_report, "compare models: accuracy, channels, parameters, MACs, speed"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static const command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_usage(FILE *f) {
    fprintf(f, "usage: slim <command> [options]\n\n"
               "slim trains small convolutional networks with an L1 penalty on the batch-norm\n"
               "scales, prunes the channels it silences, and exports compact models.\n\n"
               "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "  slim <command> --help    options of a command, with their defaults\n"
               "  slim help <command>      the same\n"
               "  slim --version           print the version\n\n"
               "A typical session: train -> info -> eval -> prune -> train --init -> export ->\n"
               "infer -> report (docs/USAGE.md).\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("slim %s\n%s\n", SLIM_CLI_VERSION, slim_dist_describe());
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return CLI_EXIT_OK;
        }
        const command *c = find_command(argv[2]);
        if (!c) {
            cli_error("unknown command '%s' (see slim --help)", argv[2]);
            return CLI_EXIT_USAGE;
        }
        char *help_argv[] = {argv[2], "--help", NULL};
        return c->run(2, help_argv);
    }
    const command *c = find_command(name);
    if (!c) {
        cli_error("unknown command '%s' (see slim --help)", name);
        return CLI_EXIT_USAGE;
    }
    /* Under mpirun, each rank runs the command (docs/SCALE.md). */
    if (slim_dist_init(&argc, &argv) != SLIM_OK) return cli_fail();
    int r = c->run(argc - 1, argv + 1);
    /* A failure only this rank knows of: end every rank, so none waits
     * (usage errors and an agreed stop happen on every rank alike). */
    if (r == CLI_EXIT_FAIL && slim_dist_size() > 1 && !slim_dist_error_shared()) slim_dist_abort(r);
    slim_dist_finalize();
    return r;
}
