/* The run directory (docs/RUNNER.md, "Run directory"): one run at a time, never mixed with another run's files.
 *
 * A run locks RUN_DIR/.lock for as long as the process lives (an fcntl lock, which the kernel releases when the
 * process ends, however it ends). The lock file itself stays: removing it would let a run that opened it just
 * before lock a file that no longer has a name, next to a run that locks a new one. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "ranks.h"
#include "trainer.h"

/* The files that make up a run. A new run refuses a directory that holds any of them, unless --overwrite. */
/* The copy of the model file keeps the file's name, which is the model's name (docs/DSL.md): compiled again, the
 * copy is the same model. */
#define MODEL_COPY MPLC_MODEL_NAME ".swiftdsl"
static const char *const RUN_FILES[] = {"checkpoint.safetensors", "metrics.jsonl", "summary.json", "boundary.svg",
                                        MODEL_COPY, "recipe.txt", "best.safetensors", "options.json"};
enum { NUM_RUN_FILES = sizeof RUN_FILES / sizeof RUN_FILES[0] };

/* How many of -2, -3, ... a run without --out tries before it asks for --out. */
#define MAX_DEFAULT_SUFFIX 1000

enum { BUSY = -2 }; /* take(): another run holds the directory */

/* Locks dir and checks that it is writable (a run finds out before its first step, not at its first
 * checkpoint). Returns the lock's descriptor, which stays open for the process's life; BUSY (e names the
 * other run's pid) or -1 (e set). */
static int take(const char *dir, Err *e) {
    char path[PATH_CAP];
    if (path_join(path, sizeof path, e, "%s/.lock", dir) != 0) return -1;
    /* O_NONBLOCK: a FIFO planted there must not hang the open. */
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd < 0) return err_set(e, "%s: cannot create the run directory's lock file: %s", path, open_error(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: the run directory's lock file is not a regular file", path);
    }
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lock) != 0) {
        int err = errno;
        struct flock holder = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        long pid = fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK ? (long)holder.l_pid : 0;
        close(fd);
        if (err != EACCES && err != EAGAIN) return err_set(e, "%s: cannot lock: %s", path, strerror(err));
        if (pid > 0) err_set(e, "%s is used by another run (pid %ld)", dir, pid);
        else err_set(e, "%s is used by another run", dir);
        return BUSY;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        int err = errno;
        close(fd);
        return err_set(e, "%s: the run directory is not writable: %s", dir, strerror(err));
    }
    return fd;
}

/* Lists the run files present in dir (a symlink counts: nothing is written through one) into list[cap];
 * returns how many there are. */
static int run_files(const char *dir, char *list, size_t cap) {
    int found = 0;
    size_t n = 0;
    list[0] = '\0';
    for (int i = 0; i < NUM_RUN_FILES; i++) {
        char path[PATH_CAP];
        struct stat st;
        Err e;
        if (path_join(path, sizeof path, &e, "%s/%s", dir, RUN_FILES[i]) != 0 || lstat(path, &st) != 0) continue;
        if (n < cap) n += (size_t)snprintf(list + n, cap - n, "%s%s", found ? ", " : "", RUN_FILES[i]);
        found++;
    }
    return found;
}

/* --overwrite: removes the old run's files, so that nothing of it (an old summary.json) sits beside the new run. */
static int remove_run(const char *dir, Err *e) {
    for (int i = 0; i < NUM_RUN_FILES; i++) {
        char path[PATH_CAP];
        if (path_join(path, sizeof path, e, "%s/%s", dir, RUN_FILES[i]) != 0) return -1;
        if (unlink(path) != 0 && errno != ENOENT)
            return err_set(e, "%s: cannot remove the old run's file: %s", path, strerror(errno));
    }
    return fsync_dir(dir, e);
}

static int set_paths(Trainer *T, Err *e) {
    const char *dir = T->cfg.out_dir;
    if (path_join(T->ckpt_path, PATH_CAP, e, "%s/checkpoint.safetensors", dir) != 0 ||
        path_join(T->metrics_path, PATH_CAP, e, "%s/metrics.jsonl", dir) != 0 ||
        path_join(T->summary_path, PATH_CAP, e, "%s/summary.json", dir) != 0 ||
        path_join(T->best_path, PATH_CAP, e, "%s/best.safetensors", dir) != 0)
        return -1;
    return 0;
}

/* A new run: out_dir, or with the default name the first of it, -2, -3, ... that no other run holds or uses. */
static int claim_new(Trainer *T, Err *e) {
    TrainConfig *c = &T->cfg;
    const int search = c->default_out && !c->overwrite;
    char base[PATH_CAP];
    snprintf(base, sizeof base, "%s", c->out_dir);
    for (int suffix = 1; suffix <= MAX_DEFAULT_SUFFIX; suffix++) {
        if (suffix > 1 && path_join(c->out_dir, sizeof c->out_dir, e, "%s-%d", base, suffix) != 0) return -1;
        if (make_dirs(c->out_dir, e) != 0) return -1;
        int fd = take(c->out_dir, e);
        if (fd == BUSY && search) continue;
        if (fd < 0) return -1;
        char held[256];
        if (run_files(c->out_dir, held, sizeof held) == 0 || c->overwrite) {
            if (c->overwrite && remove_run(c->out_dir, e) != 0) {
                close(fd);
                return -1;
            }
            T->lock_fd = fd;
            if (suffix > 1 && !c->quiet)
                fprintf(stderr, "mplc-run: %s is taken by another run; this run goes to %s\n", base, c->out_dir);
            return set_paths(T, e);
        }
        close(fd);
        if (search) continue;
        char ckpt[PATH_CAP + 32];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", c->out_dir);
        int resumable = file_exists(ckpt);
        return err_set(e, "%s holds another run (%s%s); %s, or give another --out", c->out_dir, held,
                       resumable ? "" : ", no checkpoint",
                       resumable ? "continue it with --resume, replace it with --overwrite"
                                 : "replace it with --overwrite");
    }
    return err_set(e, "%s and %s-2 ... %s-%d all hold other runs; give --out", base, base, base, MAX_DEFAULT_SUFFIX);
}

int run_dir_claim(Trainer *T, Err *e) {
    TrainConfig *c = &T->cfg;
    /* Under MPI rank 0 alone claims, locks and writes the directory; the others only read its checkpoint. */
    if (!rank_leader()) {
        T->lock_fd = -1;
        return set_paths(T, e);
    }
    if (!c->resume) return claim_new(T, e);
    /* --resume: the directory must exist (it holds the checkpoint); nothing is created. */
    struct stat st;
    if (stat(c->out_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(e, "--resume: no checkpoint %s/checkpoint.safetensors to resume from", c->out_dir);
    T->lock_fd = take(c->out_dir, e);
    return T->lock_fd < 0 ? -1 : set_paths(T, e);
}

/* The run describes itself: the model file that was compiled, the recipe as mplc resolved it (defaults and
 * overrides included) and the options it runs with (options.c), so that the run directory alone says what trained
 * and --resume needs nothing else. Rewritten on --resume (the checkpoint
 * has already been checked to belong to this model). */
int run_dir_describe(Trainer *T, Err *e) {
    const struct {
        const char *name;
        const void *bytes;
        size_t len;
    } files[] = {{MODEL_COPY, T->model_source, T->model_source_len},
                 {"recipe.txt", T->cfg.recipe, T->cfg.recipe ? strlen(T->cfg.recipe) : 0}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!files[i].bytes) continue;
        char path[PATH_CAP];
        AtomicFile out;
        if (path_join(path, sizeof path, e, "%s/%s", T->cfg.out_dir, files[i].name) != 0 ||
            atomic_create(&out, path, e) != 0)
            return -1;
        fwrite(files[i].bytes, 1, files[i].len, out.fp);
        if (atomic_commit(&out, e) != 0) return -1;
    }
    return run_options_write(T, e);
}
