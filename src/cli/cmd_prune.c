/* slim prune: placeholder until its library part lands. */
#include "cli/cli.h"

int cmd_prune(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'prune' is not available yet");
    return CLI_EXIT_FAIL;
}
