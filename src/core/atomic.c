/* Atomic replacement of a file: write a temporary file beside it, flush and
 * fsync it, rename it over the target, fsync the directory. */
#include "slim/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

slim_status slim_atomic_open(const char *path, slim_atomic_file *af) {
    memset(af, 0, sizeof *af);
    af->path = path;
    size_t tmp_len = strlen(path) + 32;
    af->tmp = malloc(tmp_len);
    if (!af->tmp) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", path);
    snprintf(af->tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    slim_status st = SLIM_OK;
    if (fd < 0) {
        int err = errno;
        st = slim_error(SLIM_ERR_IO, "%s: cannot create temporary file %s: %s", path, af->tmp,
                        strerror(err));
    } else if (!(af->f = fdopen(fd, "wb"))) {
        int err = errno;
        close(fd);
        unlink(af->tmp);
        st = slim_error(SLIM_ERR_IO, "%s: cannot open temporary file %s: %s", path, af->tmp,
                        strerror(err));
    }
    if (st != SLIM_OK) {
        free(af->tmp);
        af->tmp = NULL;
    }
    return st;
}

/* fsync the directory holding path, so that the rename itself is durable.
 * File systems that cannot sync a directory (EINVAL) are not an error. */
static slim_status sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", path);
    memcpy(dir, !slash ? "." : slash == path ? "/" : path, n);
    dir[n] = '\0';
    slim_status st = SLIM_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) {
        int err = errno;
        st = slim_error(SLIM_ERR_IO, "%s: written, but syncing directory %s failed: %s", path, dir,
                        strerror(err));
    }
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

slim_status slim_atomic_commit(slim_atomic_file *af, int write_errno) {
    int err = write_errno;
    if (!err && fflush(af->f) != 0) err = errno ? errno : EIO;
    if (!err && fsync(fileno(af->f)) != 0) err = errno;
    if (fclose(af->f) != 0 && !err) err = errno ? errno : EIO;
    af->f = NULL;
    slim_status st;
    if (err) {
        unlink(af->tmp);
        st = slim_error(SLIM_ERR_IO, "%s: cannot write temporary file %s: %s", af->path, af->tmp,
                        strerror(err));
    } else if (rename(af->tmp, af->path) != 0) {
        err = errno;
        unlink(af->tmp);
        st = slim_error(SLIM_ERR_IO, "%s: cannot rename %s over it: %s", af->path, af->tmp,
                        strerror(err));
    } else {
        st = sync_parent_dir(af->path);
    }
    free(af->tmp);
    af->tmp = NULL;
    return st;
}
