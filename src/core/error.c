/* Thread-local error messages and logging. */
#include "slim/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SLIM_ERROR_LEN 1024

static _Thread_local char error_message[SLIM_ERROR_LEN];
static slim_log_level log_level = SLIM_LOG_INFO;

const char *slim_last_error(void) { return error_message; }

void slim_clear_error(void) { error_message[0] = '\0'; }

slim_status slim_errorv(slim_status status, const char *fmt, va_list ap) {
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    return status;
}

slim_status slim_error(slim_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    slim_errorv(status, fmt, ap);
    va_end(ap);
    return status;
}

slim_status slim_error_prefix(slim_status status, const char *fmt, ...) {
    char prefix[SLIM_ERROR_LEN];
    char old[SLIM_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    /* Truncation is acceptable for a message; compose it piecewise. */
    size_t len = strlen(prefix);
    if (len > SLIM_ERROR_LEN - 3) len = SLIM_ERROR_LEN - 3;
    memcpy(error_message, prefix, len);
    memcpy(error_message + len, ": ", 2);
    size_t rest = SLIM_ERROR_LEN - len - 3;
    size_t olen = strnlen(old, rest);
    memcpy(error_message + len + 2, old, olen);
    error_message[len + 2 + olen] = '\0';
    return status;
}

const char *slim_status_name(slim_status status) {
    switch (status) {
    case SLIM_OK: return "ok";
    case SLIM_ERR_ARG: return "invalid argument";
    case SLIM_ERR_IO: return "i/o error";
    case SLIM_ERR_FORMAT: return "bad format";
    case SLIM_ERR_NOMEM: return "out of memory";
    case SLIM_ERR_SHAPE: return "shape mismatch";
    case SLIM_ERR_BACKEND: return "backend failure";
    case SLIM_ERR_NUMERIC: return "numeric failure";
    }
    return "unknown status";
}

void slim_set_log_level(slim_log_level level) { log_level = level; }
slim_log_level slim_get_log_level(void) { return log_level; }

void slim_log(slim_log_level level, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (level < log_level || level >= SLIM_LOG_QUIET) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "slim: %s: ", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
