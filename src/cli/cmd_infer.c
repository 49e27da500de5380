/* slim infer: placeholder until its library part lands. */
#include "cli/cli.h"

int cmd_infer(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'infer' is not available yet");
    return CLI_EXIT_FAIL;
}
