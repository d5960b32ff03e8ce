#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include "util.h"

#include "ranks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int err_set(Err *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int stderr_line_open;

void die_err(const Err *e, int code) {
    fflush(stdout);
    if (stderr_line_open) fputc('\n', stderr);
    if (rank_count() > 1) fprintf(stderr, "mplc-run: error: rank %d of %d: %s\n", rank_id(), rank_count(), e->msg);
    else fprintf(stderr, "mplc-run: error: %s\n", e->msg);
    ranks_exit(code); /* under MPI: the whole job, so that no other rank waits for this one */
}

void die(int code, const char *fmt, ...) {
    Err e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    die_err(&e, code);
}

int size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die(EXIT_BAD_INPUT, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) die(EXIT_BAD_INPUT, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

float *arena_alloc(size_t floats) {
    size_t bytes;
    if (size_mul(floats ? floats : 1, sizeof(float), &bytes) != 0 || size_add(bytes, 63, &bytes) != 0)
        die(EXIT_BAD_INPUT, "arena of %zu floats is too large", floats);
    bytes &= ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    float *p = aligned_alloc(64, bytes);
    if (!p) die(EXIT_BAD_INPUT, "out of memory allocating an arena of %zu bytes", bytes);
    memset(p, 0, bytes);
    return p;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int make_dirs(const char *path, Err *e) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return err_set(e, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return err_set(e, "cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(e, "'%s' is not a directory", path);
    return 0;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int fsync_dir(const char *dir, Err *e) {
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return err_set(e, "cannot open directory '%s' to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    /* Some file systems refuse fsync on directories (EINVAL); the rename is then as durable as it gets. */
    if (rc != 0 && saved != EINVAL) return err_set(e, "cannot sync directory '%s': %s", dir, strerror(saved));
    return 0;
}

void dir_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

int flush_checked(FILE *fp, const char *path, int sync, Err *e) {
    errno = 0;
    int failed = fflush(fp) != 0 || ferror(fp) || (sync && fsync(fileno(fp)) != 0);
    if (!failed) return 0;
    /* errno is that of the failing call; a write that failed earlier and was not retried leaves only ferror. */
    return err_set(e, "%s: write failed: %s", path, errno ? strerror(errno) : "I/O error");
}

int close_checked(FILE *fp, const char *path, int sync, Err *e) {
    int rc = flush_checked(fp, path, sync, e);
    if (fclose(fp) != 0 && rc == 0) rc = err_set(e, "%s: write failed on close: %s", path, strerror(errno));
    return rc;
}

const char *open_error(int err) {
    return err == ELOOP ? "it is a symbolic link, which the runner does not follow" : strerror(err);
}

FILE *create_exclusive(const char *path, Err *e) {
    if (unlink(path) != 0 && errno != ENOENT) {
        err_set(e, "%s: cannot remove the stale file there: %s", path, strerror(errno));
        return NULL;
    }
    /* Should anyone recreate the name between the unlink and the open, O_EXCL makes the open fail. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_set(e, "%s: cannot create: %s", path, open_error(errno));
        return NULL;
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        err_set(e, "%s: cannot create: %s", path, strerror(errno));
        close(fd);
        unlink(path);
    }
    return fp;
}

int atomic_create(AtomicFile *f, const char *path, Err *e) {
    f->path = path;
    if (path_join(f->tmp, sizeof f->tmp, e, "%s.tmp", path) != 0) return -1;
    f->fp = create_exclusive(f->tmp, e);
    return f->fp ? 0 : -1;
}

int atomic_commit(AtomicFile *f, Err *e) {
    int rc = close_checked(f->fp, f->tmp, 1, e);
    f->fp = NULL;
    if (rc == 0 && rename(f->tmp, f->path) != 0)
        rc = err_set(e, "cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
    if (rc != 0) {
        unlink(f->tmp);
        return -1;
    }
    char dir[PATH_CAP];
    dir_of(f->path, dir, sizeof dir);
    return fsync_dir(dir, e);
}

void stdout_checked(void) {
    Err e;
    if (flush_checked(stdout, "standard output", 0, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
}

int resolve_path(const char *path, char *out, size_t cap, Err *e) {
    char *abs = realpath(path, NULL);
    int rc = path_join(out, cap, e, "%s", abs ? abs : path);
    free(abs);
    return rc;
}

int path_join(char *out, size_t cap, Err *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return err_set(e, "path too long: '%.200s...'", out);
    return 0;
}

uint64_t memory_limit(const char **source) {
    uint64_t limit;
    const char *env = getenv("MPLC_MEMORY_LIMIT");
    if (env && parse_u64(env, &limit) == 0 && limit > 0) {
        *source = "MPLC_MEMORY_LIMIT";
        return limit;
    }
    *source = "physical memory";
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (uint64_t)pages * (uint64_t)page;
}

int parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1; /* strtoull would accept "-1" */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

uint64_t fnv1a64(const void *data, size_t bytes) {
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
