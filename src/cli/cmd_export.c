/* slim export: placeholder until its library part lands. */
#include "cli/cli.h"

int cmd_export(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'export' is not available yet");
    return CLI_EXIT_FAIL;
}
