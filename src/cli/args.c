/* The shared option parser and help printer of the `slim` commands.
 *
 * Each command describes its options in a table (cli_opt); the parser reads
 * the defaults from the same table, so that `--help` can never disagree with
 * what the command actually does. */
#include "cli/cli.h"

#include "slim/dist.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { HELP_WIDTH = 79, HELP_NAME_COL = 30, HELP_INDENT = 6 };

/* ---- messages --------------------------------------------------------- */

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("slim: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("slim: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("slim: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see slim %s --help)\n", command);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_fail(void) {
    const char *msg = slim_last_error();
    if (!msg || !*msg) msg = "failed (no message)";
    /* Under mpirun: an error every rank has is printed once, by rank 0; one
     * only this rank has names the rank. */
    if (slim_dist_size() <= 1)
        cli_error("%s", msg);
    else if (!slim_dist_error_shared())
        cli_error("rank %d: %s", slim_dist_rank(), msg);
    else if (slim_dist_rank() == 0)
        cli_error("%s", msg);
    return CLI_EXIT_FAIL;
}

/* ---- values ----------------------------------------------------------- */

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return 0;
    *out = (int64_t)v;
    return 1;
}

static int parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Whether value is one of the '|'-separated choices. */
static int is_choice(const char *choices, const char *value) {
    size_t n = strlen(value);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* Stores text into the option's value; 0 with a usage message on failure. */
static int set_value(const cli_spec *spec, cli_opt *o, const char *text) {
    switch (o->kind) {
    case CLI_INT:
        if (parse_int(text, (int64_t *)o->value)) return 1;
        cli_usage_error(spec->command, "--%s: '%s' is not an integer", o->name, text);
        return 0;
    case CLI_FLOAT:
        if (parse_float(text, (double *)o->value)) return 1;
        cli_usage_error(spec->command, "--%s: '%s' is not a finite number", o->name, text);
        return 0;
    case CLI_CHOICE:
        if (!is_choice(o->choices, text)) {
            cli_usage_error(spec->command, "--%s: unknown value '%s' (one of %s)", o->name, text,
                            o->choices);
            return 0;
        }
        *(const char **)o->value = text;
        return 1;
    case CLI_STRING: *(const char **)o->value = text; return 1;
    case CLI_FLAG: break;
    }
    return 0;
}

static void set_defaults(cli_spec *spec) {
    for (int i = 0; i < spec->n_opts; i++) {
        cli_opt *o = &spec->opts[i];
        o->given = 0;
        if (o->kind == CLI_FLAG) {
            *(int *)o->value = !o->def                       ? 0
                               : strcmp(o->def, "on") == 0   ? 1
                               : strcmp(o->def, "auto") == 0 ? -1
                                                             : 0;
        } else if (o->kind == CLI_STRING || o->kind == CLI_CHOICE) {
            *(const char **)o->value = o->def;
        } else if (o->def) {
            /* A table default that does not parse is a programming error,
             * caught by the first test that runs the command. */
            if (o->kind == CLI_INT) parse_int(o->def, (int64_t *)o->value);
            if (o->kind == CLI_FLOAT) parse_float(o->def, (double *)o->value);
        }
    }
}

cli_opt *cli_find(cli_spec *spec, const char *name) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strcmp(spec->opts[i].name, name) == 0) return &spec->opts[i];
    return NULL;
}

int cli_given(cli_spec *spec, const char *name) {
    cli_opt *o = cli_find(spec, name);
    return o && o->given;
}

/* ---- parsing ---------------------------------------------------------- */

int cli_parse(cli_spec *spec, int argc, char **argv, int *n_pos) {
    /* Positional arguments are compacted to the front of argv: the write
     * index never passes the read index. */
    char **pos = argv + 1;
    set_defaults(spec);
    *n_pos = 0;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_print_help(spec, stdout);
            return CLI_PARSE_HELP;
        }
        if (a[1] != '-') {
            cli_usage_error(spec->command, "unknown option '%s'", a);
            return CLI_PARSE_ERROR;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = '\0';
        cli_opt *o = cli_find(spec, name);
        int negated = 0;
        if (!o && strncmp(name, "no-", 3) == 0) {
            o = cli_find(spec, name + 3);
            if (o && !(o->kind == CLI_FLAG && o->negatable)) o = NULL;
            negated = o != NULL;
        }
        if (!o) {
            cli_usage_error(spec->command, "unknown option '--%s'", name);
            return CLI_PARSE_ERROR;
        }
        o->given = 1;
        if (o->kind == CLI_FLAG) {
            if (eq) {
                cli_usage_error(spec->command, "--%s takes no value", name);
                return CLI_PARSE_ERROR;
            }
            *(int *)o->value = !negated;
            continue;
        }
        const char *text = eq ? eq + 1 : NULL;
        if (!text) {
            if (i + 1 >= argc) {
                cli_usage_error(spec->command, "--%s needs a value (%s)", name,
                                o->metavar ? o->metavar : "VALUE");
                return CLI_PARSE_ERROR;
            }
            text = argv[++i];
        }
        if (!set_value(spec, o, text)) return CLI_PARSE_ERROR;
    }
    if (*n_pos < spec->min_positional) {
        cli_usage_error(spec->command, "missing argument: usage: %s", spec->usage);
        return CLI_PARSE_ERROR;
    }
    if (spec->max_positional >= 0 && *n_pos > spec->max_positional) {
        cli_usage_error(spec->command, "unexpected argument '%s'", pos[spec->max_positional]);
        return CLI_PARSE_ERROR;
    }
    return CLI_PARSE_OK;
}

/* ---- help ------------------------------------------------------------- */

/* Prints text word-wrapped at HELP_WIDTH, each line indented by indent;
 * an explicit '\n' in text starts a new line. */
static void print_wrapped(FILE *f, const char *text, int indent) {
    const char *p = text;
    int col = 0;
    while (*p) {
        if (*p == '\n') {
            fputc('\n', f);
            col = 0;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t word = strcspn(p, " \n");
        if (col > indent && col + 1 + (int)word > HELP_WIDTH) {
            fputc('\n', f);
            col = 0;
        }
        if (col == 0) {
            fprintf(f, "%*s", indent, "");
            col = indent;
        } else {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, word, f);
        col += (int)word;
        p += word;
    }
    if (col > 0) fputc('\n', f);
}

void cli_print_help(const cli_spec *spec, FILE *f) {
    fprintf(f, "usage: %s\n\n", spec->usage);
    if (spec->description) {
        print_wrapped(f, spec->description, 0);
        fputc('\n', f);
    }
    fprintf(f, "options:\n");
    for (int i = 0; i < spec->n_opts; i++) {
        const cli_opt *o = &spec->opts[i];
        char head[128];
        if (o->kind == CLI_FLAG)
            snprintf(head, sizeof head, "  --%s%s%s", o->name, o->negatable ? ", --no-" : "",
                     o->negatable ? o->name : "");
        else if (o->kind == CLI_CHOICE)
            snprintf(head, sizeof head, "  --%s %s", o->name, o->choices);
        else
            snprintf(head, sizeof head, "  --%s %s", o->name, o->metavar ? o->metavar : "VALUE");
        const char *def = o->def ? o->def : "none";
        if (o->kind == CLI_FLAG && !o->def) def = "off";
        int len = (int)strlen(head);
        if (len + 2 > HELP_NAME_COL)
            fprintf(f, "%s  (default: %s)\n", head, def);
        else
            fprintf(f, "%-*s(default: %s)\n", HELP_NAME_COL, head, def);
        print_wrapped(f, o->help, HELP_INDENT);
    }
    fprintf(f, "  --help\n");
    print_wrapped(f, "Print this help and exit.", HELP_INDENT);
    if (spec->notes) {
        fputc('\n', f);
        print_wrapped(f, spec->notes, 0);
    }
}
