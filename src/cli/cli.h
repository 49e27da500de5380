/* The `slim` command line: the command table, the shared option parser and
 * small helpers every command uses.
 *
 * Each command lives in its own file (cmd_<name>.c) and is one function
 * int cmd_<name>(int argc, char **argv) that returns the process exit status:
 *   0   success
 *   1   the work failed (the library's message is printed)
 *   2   usage error (unknown option, bad number, missing argument, ...)
 *   130 interrupted by SIGINT after saving (train)
 * argv[0] is the command name. Options are described by a table of cli_opt
 * and parsed by cli_parse, which also prints `slim <cmd> --help`.
 */
#ifndef SLIM_CLI_H
#define SLIM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "slim/ckpt.h"
#include "slim/data.h"
#include "slim/infer.h"
#include "slim/kernels.h"
#include "slim/nn.h"
#include "slim/train.h"

#define SLIM_CLI_VERSION SLIM_VERSION /* slim/version.h */

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_INTERRUPTED = 130 };

/* ---- options ---------------------------------------------------------- */

typedef enum cli_kind {
    CLI_INT,    /* value: int64_t*; decimal integer */
    CLI_FLOAT,  /* value: double*; finite number */
    CLI_STRING, /* value: const char** (points into argv or at def) */
    CLI_FLAG,   /* value: int*; --name sets 1, --no-name (if negatable) sets 0 */
    CLI_CHOICE, /* value: const char**; one of the '|'-separated choices */
} cli_kind;

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    cli_kind kind;
    const char *metavar; /* shown after the name in help ("N", "FILE"); unused for flags */
    /* The default as text. It is parsed into *value before the arguments
     * (except for flags: "on" -> 1, "auto" -> -1, anything else -> 0) and
     * shown as "(default: ...)". NULL: no value ("(default: none)"). */
    const char *def;
    const char *help;    /* one or more sentences; wrapped when printed */
    const char *choices; /* CLI_CHOICE: "a|b|c" */
    int negatable;       /* CLI_FLAG: also accept --no-<name> */
    void *value;         /* where the parsed value goes (see cli_kind) */
    int given;           /* set by cli_parse: the option appeared on the line */
} cli_opt;

typedef struct cli_spec {
    const char *command;     /* "train" */
    const char *usage;       /* "slim train --model M.net --out RUN.ckpt [options]" */
    const char *description; /* paragraphs printed under the usage line */
    cli_opt *opts;
    int n_opts;
    int min_positional, max_positional; /* max -1: unlimited */
    const char *notes;                  /* printed after the option list (may be NULL) */
} cli_spec;

enum { CLI_PARSE_OK = 0, CLI_PARSE_HELP = 1, CLI_PARSE_ERROR = 2 };

/* Parses argv[1..argc) against spec: "--opt value", "--opt=value", flags,
 * "--" ending the options, everything else positional (options and
 * positional arguments may be mixed). The positional arguments are moved,
 * in order, to argv[1 .. *n_pos].
 * Returns CLI_PARSE_OK, CLI_PARSE_HELP (after printing the help to stdout)
 * or CLI_PARSE_ERROR (after printing a `slim: error:` line to stderr). */
int cli_parse(cli_spec *spec, int argc, char **argv, int *n_pos);
/* The help text of a command: usage, description, every option with its
 * default, notes. */
void cli_print_help(const cli_spec *spec, FILE *f);
/* The option called name in spec (must exist). */
cli_opt *cli_find(cli_spec *spec, const char *name);
/* Whether the option called name appeared on the command line. */
int cli_given(cli_spec *spec, const char *name);

/* ---- messages --------------------------------------------------------- */

/* "slim: error: <message>\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "slim: warning: <message>\n" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: prints the message and a hint to `slim <cmd> --help`,
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the library's last error message and returns CLI_EXIT_FAIL. */
int cli_fail(void);

/* ---- shared helpers (src/cli/common.c) -------------------------------- */

/* --target-macs MACS / --target-params PARAMS / --target-latency TIME (NULL
 * when not given) of command cmd: *kind := SLIM_COST_MACS, SLIM_COST_PARAMS,
 * SLIM_COST_LATENCY or 0 (none), and the budget: "15%" (a fraction of the
 * unpruned model: *fraction = 1, *value = 0.15, at most 100%), a count with
 * an optional k, M or G ("4.5M", "120k", "800": *fraction = 0), or for
 * latency a time with a unit ns, us, ms or s ("40us", "1.5ms": *value in
 * microseconds). Returns CLI_EXIT_OK, or a usage error when more than one
 * is given or the value is not such a budget. */
int cli_parse_target(const char *cmd, const char *macs, const char *params, const char *latency,
                     int *kind, double *value, int *fraction);
/* "ref" or "fast" -> backend (the choice was validated by the parser). */
slim_backend cli_backend(const char *name);
/* Whether the path names a model text file (ends in ".net"). */
int cli_is_model_text(const char *path);
/* Whether a string ends with suffix. */
int cli_ends_with(const char *s, const char *suffix);
/* Loads a checkpoint or export file (*ck receives its container) or, when
 * allow_text and the path ends in ".net", a model file (*ck = NULL). */
int cli_load_model(const char *path, int allow_text, slim_model **model, slim_ckpt **ck);
/* The name of class k: the checkpoint's "class.<k>" metadata, else the data
 * set's name (names may be NULL), else the number, written into buf. */
const char *cli_class_name(const slim_ckpt *ck, char *const *names, int n_names, int k, char *buf,
                           size_t len);
/* Copies every metadata pair of src into dst (keeping dst's existing ones
 * for keys src lacks). Returns a slim_status. */
int cli_copy_meta(slim_ckpt *dst, const slim_ckpt *src);
/* "12,345" into buf. */
const char *cli_group(uint64_t v, char *buf, size_t len);
/* Human-readable MACs/params: "503.0K", "12.3M". */
const char *cli_si(double v, char *buf, size_t len);
/* Size of a file in bytes, -1 if it cannot be read. */
long long cli_file_size(const char *path);

/* Writes len bytes to path atomically: a temporary file "<path>.tmp.<pid>"
 * in the same directory, flushed, fsync'ed and renamed over path; removed
 * on any failure so that no half-written file is left. Returns a
 * slim_status with a message naming the path. */
int cli_write_file_atomic(const char *path, const void *data, size_t len);

/* How pictures become a model's input: the library's rule
 * (slim_preprocessing_from_ckpt, slim/infer.h). */
typedef slim_preprocessing cli_preprocessing;
slim_status cli_model_preprocessing(const slim_ckpt *ck, const char *path, int c,
                                    cli_preprocessing *pre);
/* The test data for a model (eval, prune's check, report): *data = given,
 * else the checkpoint's 'data', else fashion-mnist; o = the model's input
 * shape and the checkpoint's data settings (slim_train_data_options; its
 * split only when *data is the data the checkpoint was trained on). */
slim_status cli_data_options(const slim_ckpt *ck, const char *path, const slim_model *model,
                             const char *given, const char **data, slim_data_options *o);
/* --resize of eval and infer: the choices, and the help of an option that
 * overrides the mode a model records. */
#define CLI_RESIZE_CHOICES "crop|stretch|pad|none"
extern const char cli_resize_override_help[];
/* key = "%.9g" of v. */
slim_status cli_set_meta_double(slim_ckpt *ck, const char *key, double v);
/* "a,b,c": n floats with %.9g into buf. */
void cli_format_floats(const float *x, int n, char *buf, size_t len);

/* ---- commands --------------------------------------------------------- */

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_report(int argc, char **argv); /* src/cli/cmd_report.c */

#endif
