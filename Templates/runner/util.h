/* Small helpers shared by every runner file: error messages, checked size arithmetic,
 * allocation, time, files. */
#ifndef RUNNER_UTIL_H
#define RUNNER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of mplc-run. A run stopped by SIGINT or SIGTERM exits 128 + the signal (130, 143). */
enum { EXIT_BAD_INPUT = 1, EXIT_USAGE = 2, EXIT_NONFINITE = 3 };

#define PATH_CAP 4096

/* An error message filled by the function that failed; the caller decides whether to exit.
 * Every message names the file (or flag) and the cause. */
typedef struct {
    char msg[1024];
} Err;

/* Formats the message into e and returns -1, so that `return err_set(e, ...)` reads naturally. */
int err_set(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "mplc-run: error: <msg>" on stderr and exits with code. */
void die_err(const Err *e, int code) __attribute__((noreturn));
/* Set while a live progress line (ending in \r, no newline) is on stderr, so that die() starts a new line. */
extern int stderr_line_open;
void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Checked arithmetic: return 0 and set *out, or -1 on overflow. */
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);

/* malloc/calloc that exit with a message when memory runs out (sizes are checked by callers). */
void *xmalloc(size_t bytes);
void *xcalloc(size_t count, size_t size);
/* A zeroed arena of `floats` floats on a 64-byte (cache line) boundary; release with free(). */
float *arena_alloc(size_t floats);

double now_seconds(void); /* monotonic clock */

/* mkdir -p; returns 0 or -1 with e set. */
int make_dirs(const char *path, Err *e);
int file_exists(const char *path);
/* fsync a directory so that a rename inside it is durable. */
int fsync_dir(const char *dir, Err *e);
/* The directory part of path ("." when there is none), into out[cap]. */
void dir_of(const char *path, char *out, size_t cap);

/* ---- writing files: every write, flush, sync and close is checked ---- */

/* Flushes fp (and with sync, fsyncs it), and checks that no earlier write failed (ferror): 0, or -1 with e
 * naming path and the cause. */
int flush_checked(FILE *fp, const char *path, int sync, Err *e);
/* flush_checked, then fclose (also checked); fp is closed in any case. */
int close_checked(FILE *fp, const char *path, int sync, Err *e);

/* strerror(err), but for an open with O_NOFOLLOW that met a symlink (ELOOP) a message that says so. */
const char *open_error(int err);

/* Creates path for writing, exclusively (O_EXCL) and never through a symlink (O_NOFOLLOW), mode 0644: a file
 * or symlink already there (a temporary file left by a crash, or one planted by someone else) is removed
 * first, not written through. For files whose name the runner chose, never for a path the user gave. */
FILE *create_exclusive(const char *path, Err *e);

/* A file replaced atomically: written to path.tmp (created by create_exclusive), then synced and renamed over
 * path, so that a crash leaves the old or the new content, never a mix. */
typedef struct {
    FILE *fp;
    const char *path;
    char tmp[PATH_CAP + 8];
} AtomicFile;
int atomic_create(AtomicFile *f, const char *path, Err *e);
/* Checks every write, fsyncs and closes the temporary file, renames it over path and fsyncs the directory.
 * On failure the temporary file is removed and path keeps its previous content. */
int atomic_commit(AtomicFile *f, Err *e);

/* Flushes stdout, where the commands print their results; exits 1 if anything written there was lost. */
void stdout_checked(void);

/* snprintf into a fixed buffer; returns -1 (and sets e) if the result would be truncated. */
int path_join(char *out, size_t cap, Err *e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* path made absolute, with symbolic links resolved (realpath), into out[cap]; as given if it does not resolve
 * (a missing file, or a name that is not a path such as two-moons). -1 if it does not fit. */
int resolve_path(const char *path, char *out, size_t cap, Err *e);

/* The memory a run may plan for, in bytes: MPLC_MEMORY_LIMIT if set (a positive integer; for containers
 * whose limit is below the machine's, and for tests), else the machine's physical memory (sysconf).
 * *source names which ("MPLC_MEMORY_LIMIT" or "physical memory"); 0 if unknown. */
uint64_t memory_limit(const char **source);

/* Parses a whole decimal integer in [lo, hi]; returns 0 or -1. */
int parse_long(const char *s, long lo, long hi, long *out);
int parse_u64(const char *s, uint64_t *out);

/* FNV-1a, 64 bits, of the bytes: names contents (a teacher cache's rows, a model file) to notice a change. */
uint64_t fnv1a64(const void *data, size_t bytes);

#endif
