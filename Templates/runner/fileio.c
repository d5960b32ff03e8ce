#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int in_open(InFile *f, const char *path, Err *e) {
    f->path = path;
    f->offset = 0;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz) return err_set(e, "%s: cannot open: %s", path, errno ? strerror(errno) : "zlib failure");
    gzbuffer(f->gz, 1 << 17);
    return 0;
}

void in_close(InFile *f) {
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Reads up to n bytes; returns how many were read, or -1 after setting e on a zlib error. */
static long long read_some(InFile *f, void *buf, size_t n, Err *e) {
    size_t total = 0;
    while (total < n) {
        size_t chunk = n - total;
        if (chunk > (1u << 30)) chunk = 1u << 30; /* gzread takes an unsigned int */
        int got = gzread(f->gz, (char *)buf + total, (unsigned)chunk);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f->gz, &code);
            return err_set(e, "%s: corrupt or unreadable data at byte %zu: %s", f->path, f->offset + total,
                           msg ? msg : "zlib error");
        }
        if (got == 0) {
            int code;
            const char *msg = gzerror(f->gz, &code);
            if (code != Z_OK && code != Z_STREAM_END)
                return err_set(e, "%s: corrupt or truncated compressed data at byte %zu: %s", f->path,
                               f->offset + total, msg ? msg : "zlib error");
            break;
        }
        total += (size_t)got;
    }
    f->offset += total;
    return (long long)total;
}

int in_read(InFile *f, void *buf, size_t n, const char *what, Err *e) {
    size_t start = f->offset;
    long long got = read_some(f, buf, n, e);
    if (got < 0) return -1;
    if ((size_t)got < n)
        return err_set(e, "%s: truncated: %s needs %zu bytes at offset %zu, only %lld present", f->path, what, n,
                       start, got);
    return 0;
}

int in_expect_end(InFile *f, Err *e) {
    unsigned char extra;
    long long got = read_some(f, &extra, 1, e);
    if (got < 0) return -1;
    if (got > 0)
        return err_set(e, "%s: unexpected data after byte %zu (the header announces less data than the file has)",
                       f->path, f->offset - 1);
    return 0;
}

int in_read_array(InFile *f, size_t count, size_t elem, void **out, const char *what, Err *e) {
    size_t bytes;
    if (size_mul(count, elem, &bytes) != 0)
        return err_set(e, "%s: %s: size %zu x %zu bytes overflows", f->path, what, count, elem);
    /* Start at 1 MB at most: a 20-byte file whose header claims gigabytes must not cost a 64 MB allocation. */
    size_t cap = bytes < (1u << 20) ? bytes : (1u << 20);
    unsigned char *buf = xmalloc(cap);
    size_t have = 0;
    size_t start = f->offset;
    while (have < bytes) {
        if (have == cap) {
            cap = (cap > bytes / 2) ? bytes : cap * 2;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                return err_set(e, "%s: out of memory reading %s (%zu bytes)", f->path, what, bytes);
            }
            buf = grown;
        }
        long long got = read_some(f, buf + have, cap - have, e);
        if (got < 0) {
            free(buf);
            return -1;
        }
        if (got == 0) {
            free(buf);
            return err_set(e, "%s: truncated: %s needs %zu bytes at offset %zu, only %zu present", f->path, what,
                           bytes, start, have);
        }
        have += (size_t)got;
    }
    *out = buf;
    return 0;
}

static int in_read_rest(InFile *f, void **out, size_t *len, Err *e) {
    size_t cap = 1u << 16, have = 0;
    unsigned char *buf = xmalloc(cap);
    for (;;) {
        if (have == cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                return err_set(e, "%s: file too large", f->path);
            }
            unsigned char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                return err_set(e, "%s: out of memory reading the file (%zu bytes so far)", f->path, have);
            }
            buf = grown;
            cap *= 2;
        }
        long long got = read_some(f, buf + have, cap - have, e);
        if (got < 0) {
            free(buf);
            return -1;
        }
        if (got == 0) break;
        have += (size_t)got;
    }
    *out = buf;
    *len = have;
    return 0;
}

int in_read_file(const char *path, void **out, size_t *len, Err *e) {
    InFile f;
    if (in_open(&f, path, e) != 0) return -1;
    int rc = in_read_rest(&f, out, len, e);
    in_close(&f);
    return rc;
}

int read_regular_file(const char *path, size_t max_bytes, const char *what, unsigned char **out, size_t *len, Err *e) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        return err_set(e, "%s: %lld bytes, more than the %zu bytes %s may have", path, (long long)st.st_size,
                       max_bytes, what);
    }
    size_t n = (size_t)st.st_size, have = 0;
    unsigned char *buf = xmalloc(n ? n : 1);
    while (have < n) {
        ssize_t got = read(fd, buf + have, n - have);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            int err = got < 0 ? errno : 0;
            free(buf);
            close(fd);
            return err_set(e, "%s: cannot read: %s", path, err ? strerror(err) : "the file shrank while read");
        }
        have += (size_t)got;
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}
