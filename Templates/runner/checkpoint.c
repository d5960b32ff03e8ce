/* Saving a run to RUN_DIR/checkpoint.safetensors and resuming it bit-exactly.
 *
 * The random state of a run is a pure function of (seed, step) (see rng.h), and the data order of
 * (seed, position) with position = step x batch (see Order in trainer.h). So the metadata below is all
 * a resumed run needs besides the state tensors: the settings, the phase and step counter, the pending
 * metric sums and the length of metrics.jsonl at the checkpoint. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "safetensors.h"
#include "trainer.h"

#define CHECKPOINT_FORMAT "mplc-run-checkpoint/1"

static void fill_meta(const Trainer *T, StMeta *m) {
    const RunState *rs = &T->rs;
    meta_clear(m);
    meta_set(m, "format", CHECKPOINT_FORMAT);
    meta_set(m, "model", "%s", MPLC_MODEL_NAME);
    meta_set(m, "mode", "%s", mode_name(T->cfg.mode));
    meta_set(m, "seed", "%" PRIu64, T->cfg.seed);
    meta_set(m, "labels", "%ld", T->cfg.labels);
    meta_set(m, "steps", "%ld", T->cfg.steps);
    meta_set(m, "finetune_steps", "%ld", T->cfg.finetune_steps);
    meta_set(m, "eval_every", "%ld", T->cfg.eval_every);
    meta_set(m, "checkpoint_every", "%ld", T->cfg.checkpoint_every);
    meta_set(m, "phase", "%s", phase_name(T->cfg.mode, rs->phase));
    meta_set(m, "step", "%ld", rs->step);
    meta_set(m, "rng", "xoshiro256** seeded by splitmix64(seed, stream, step or epoch); state = (seed, step)");
    /* The data order position of the next step (labeled and unlabeled streams); informational, as it
     * follows from the step. */
    long rows_l = rs->phase == PHASE_MAIN && T->cfg.mode != MODE_SUPERVISED ? MPLC_BATCH_LABELED : MPLC_FINETUNE_BATCH;
    meta_set(m, "order_position_labeled", "%ld", rs->step * rows_l);
    meta_set(m, "order_position_unlabeled", "%ld",
             rs->phase == PHASE_MAIN && T->cfg.mode != MODE_SUPERVISED ? rs->step * MPLC_BATCH_UNLABELED : 0);
    meta_set(m, "order_seed", "%" PRIu64, T->cfg.seed);
    meta_set(m, "test_examples", "%zu", T->data.test.n);
    meta_set(m, "acc_last", "%ld,%ld,%ld", rs->acc_last[0], rs->acc_last[1], rs->acc_last_step);
    meta_set(m, "acc_before_finetune", "%ld,%ld", rs->acc_before[0], rs->acc_before[1]);
    meta_set(m, "acc_after_finetune", "%ld,%ld", rs->acc_after[0], rs->acc_after[1]);
    /* Hex floats: the pending sums come back bit-exactly. */
    char sums[ST_VALUE_LEN];
    size_t n = 0;
    sums[0] = '\0';
    for (int i = 0; i < MAX_OUTPUTS && n < sizeof sums; i++)
        n += (size_t)snprintf(sums + n, sizeof sums - n, i ? ",%a" : "%a", rs->sums[i]);
    meta_set(m, "log_sums", "%s", sums);
    meta_set(m, "log_count", "%ld", rs->sum_n);
    meta_set(m, "metrics_bytes", "%ld", rs->metrics_bytes);
    /* %.17g reads back as the same double, so a resumed run compares --ema-decay exactly. */
    meta_set(m, "flip", "%d", T->cfg.flip);
    meta_set(m, "ema_decay", "%.17g", T->cfg.ema_decay);
    meta_set(m, "ema_updates", "%ld", rs->ema_updates);
    meta_set(m, "acc_ema", "%ld,%ld,%ld", rs->acc_ema_last, rs->acc_ema_before, rs->acc_ema_after);
    /* Reduced MPL: the cache the run was trained with (the path for people, the hash for --resume). */
    if (T->cache.rows) {
        meta_set(m, "teacher_cache", "%s", T->cache.path);
        meta_set(m, "teacher_cache_hash", "fnv1a64:%016" PRIx64, T->cache.hash);
    }
}

/* Exits 3 naming the tensor if an arena holds a NaN or Inf: the last good checkpoint must stay. */
static void check_finite(const Trainer *T, const float *arena, const char *prefix) {
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        long bad = first_nonfinite(arena, t);
        if (bad >= 0)
            die(EXIT_NONFINITE,
                "%s step %ld: state tensor '%s%s' is not finite (element %ld = %g); not writing a checkpoint, "
                "the last good one stays in %s",
                phase_name(T->cfg.mode, T->rs.phase), T->rs.step, prefix, t->name, bad,
                (double)arena[t->offset + (size_t)bad], T->ckpt_path);
    }
}

void checkpoint_save(Trainer *T) {
    check_finite(T, T->state, "");
    if (T->ema) check_finite(T, T->ema, "ema/"); /* the EMA arena is zero outside the student's tensors */
    /* metrics.jsonl must hold every line the checkpoint counts before the checkpoint exists. */
    metrics_sync(T);
    StMeta *m = xmalloc(sizeof *m);
    fill_meta(T, m);
    Err e;
    if (st_save_ema(T->ckpt_path, T->state, T->ema, m, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    free(m);
}

/* ---- resume ---- */

/* An integer of the metadata, at least lo: a checkpoint must not bring back a setting the command line would
 * refuse (an interval of 0 would divide by zero in the training loop). */
static int meta_long_min(const StMeta *m, const char *path, const char *key, long lo, long *out, Err *e) {
    const char *v = meta_get(m, key);
    if (!v || parse_long(v, lo, LONG_MAX, out) != 0)
        return err_set(e, "%s: metadata \"%s\" is missing or not an integer >= %ld", path, key, lo);
    return 0;
}

static int meta_long(const StMeta *m, const char *path, const char *key, long *out, Err *e) {
    return meta_long_min(m, path, key, -1, out, e);
}

static int meta_longs(const StMeta *m, const char *path, const char *key, long *out, int n, Err *e) {
    const char *v = meta_get(m, key);
    char *end = NULL;
    for (int i = 0; v && i < n; i++) {
        errno = 0;
        out[i] = strtol(v, &end, 10);
        if (errno || end == v || *end != (i + 1 < n ? ',' : '\0')) v = NULL;
        else v = end + 1;
    }
    if (!v) return err_set(e, "%s: metadata \"%s\" is missing or malformed", path, key);
    return 0;
}

/* A setting stored in the checkpoint: used unless the command line gave a different value. */
static int adopt(const StMeta *m, const char *path, const char *key, const char *flag, int given, long lo, long *value,
                 Err *e) {
    long stored;
    if (meta_long_min(m, path, key, lo, &stored, e) != 0) return -1;
    if (given && stored != *value)
        return err_set(e, "%s was written with %s %ld, but this command says %s %ld (drop the flag or start a new run)",
                       path, flag, stored, flag, *value);
    *value = stored;
    return 0;
}

/* Before the runner kept an EMA, checkpoints had neither its tensors nor its metadata. Such a run
 * continues with an empty EMA, which starts from the student's weights at its next learning step: the
 * student and teacher stay bit-exact, the EMA cannot be (it was never recorded). */
static int resume_without_ema(Trainer *T, const char *path, int has_ema, Err *e) {
    if (has_ema) return err_set(e, "%s: has ema/ tensors but no metadata \"ema_decay\"", path);
    T->rs.ema_updates = 0;
    T->rs.acc_ema_last = T->rs.acc_ema_before = T->rs.acc_ema_after = -1;
    if (T->cfg.ema_decay > 0 && !T->cfg.quiet && T->rs.phase != PHASE_DONE)
        fprintf(stderr,
                "mplc-run: note: %s has no EMA of the student (written by an older mplc-run); the EMA starts from the "
                "student's weights at its next learning step\n",
                path);
    return 0;
}

/* The EMA's decay, update count and accuracies; the EMA tensors were loaded with the state. */
static int resume_ema(Trainer *T, const StMeta *m, const char *path, int has_ema, Err *e) {
    const char *v = meta_get(m, "ema_decay");
    if (!v) return resume_without_ema(T, path, has_ema, e);
    char *end = NULL;
    double stored = strtod(v, &end);
    if (end == v || *end != '\0' || !(stored >= 0 && stored <= 1))
        return err_set(e, "%s: metadata \"ema_decay\" is not a number in [0, 1]: '%s'", path, v);
    TrainConfig *c = &T->cfg;
    if (c->given_ema_decay && stored != c->ema_decay)
        return err_set(e, "%s was written with --ema-decay %.17g, but this command says --ema-decay %.17g (drop the flag "
                          "or start a new run)",
                       path, stored, c->ema_decay);
    c->ema_decay = stored;
    if (stored > 0 && !has_ema)
        return err_set(e, "%s: metadata \"ema_decay\" is %.17g but the ema/ tensors are missing", path, stored);
    long acc[3];
    if (meta_long_min(m, path, "ema_updates", 0, &T->rs.ema_updates, e) || meta_longs(m, path, "acc_ema", acc, 3, e))
        return -1;
    T->rs.acc_ema_last = acc[0];
    T->rs.acc_ema_before = acc[1];
    T->rs.acc_ema_after = acc[2];
    return 0;
}

/* Flips change what the augmentation draws, so a resumed run keeps the run's setting. Checkpoints written
 * before --flip existed have no "flip": those runs had no flips, and --flip auto gave none on their data. */
static int resume_flip(Trainer *T, const StMeta *m, const char *path, Err *e) {
    const char *v = meta_get(m, "flip");
    if (!v) return 0;
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) return err_set(e, "%s: metadata \"flip\" is not 0 or 1: '%s'", path, v);
    int stored = v[0] == '1';
    if (T->cfg.given_flip && stored != T->cfg.flip)
        return err_set(e, "%s was written with --flip %s, but this command says --flip %s (drop the flag or start a new run)",
                       path, stored ? "yes" : "no", T->cfg.flip ? "yes" : "no");
    T->cfg.flip = stored;
    return 0;
}

/* Reduced MPL: the run continues only with the cache it was trained with (the same rows, wherever the file
 * now lives); a different cache would change the teacher's inputs mid-run. */
static int resume_teacher_cache(const Trainer *T, const StMeta *m, const char *path, Err *e) {
    const char *stored = meta_get(m, "teacher_cache_hash"), *was = meta_get(m, "teacher_cache");
    if (!T->cache.rows || !stored) return 0;
    char now[64];
    snprintf(now, sizeof now, "fnv1a64:%016" PRIx64, T->cache.hash);
    if (strcmp(stored, now) != 0)
        return err_set(e,
                       "%s was trained with the teacher cache %s (%s), but --teacher-cache %s holds different rows (%s); "
                       "give the same cache or start a new run",
                       path, was ? was : "?", stored, T->cache.path, now);
    return 0;
}

int checkpoint_resume(Trainer *T, Err *e) {
    const char *path = T->ckpt_path;
    if (!file_exists(path)) return err_set(e, "--resume: no checkpoint %s to resume from", path);
    StMeta *m = xmalloc(sizeof *m);
    int rc = -1, has_ema = 0;
    if (st_load_ema(path, T->state, T->ema, &has_ema, m, e) != 0) goto done;
    const char *fmt = meta_get(m, "format"), *model = meta_get(m, "model"), *mode = meta_get(m, "mode"),
               *seed = meta_get(m, "seed"), *phase = meta_get(m, "phase");
    if (!fmt || strcmp(fmt, CHECKPOINT_FORMAT) != 0) {
        err_set(e, "%s: not a training checkpoint of mplc-run (metadata \"format\" is not %s)", path, CHECKPOINT_FORMAT);
        goto done;
    }
    if (!model || strcmp(model, MPLC_MODEL_NAME) != 0) {
        err_set(e, "%s: written for model %s, this runner is built for %s", path, model ? model : "?", MPLC_MODEL_NAME);
        goto done;
    }
    if (!mode || strcmp(mode, mode_name(T->cfg.mode)) != 0) {
        err_set(e, "%s: written in mode %s, this command says --mode %s", path, mode ? mode : "?", mode_name(T->cfg.mode));
        goto done;
    }
    uint64_t s;
    if (!seed || parse_u64(seed, &s) != 0 || s != T->cfg.seed) {
        err_set(e, "%s: written with --seed %s, this command says --seed %" PRIu64, path, seed ? seed : "?", T->cfg.seed);
        goto done;
    }
    TrainConfig *c = &T->cfg;
    /* The same lower bounds as the flags (main.c). */
    if (adopt(m, path, "labels", "--labels", c->given_labels, 1, &c->labels, e) ||
        adopt(m, path, "steps", "--steps", c->given_steps, 1, &c->steps, e) ||
        adopt(m, path, "finetune_steps", "--finetune-steps", c->given_finetune, 0, &c->finetune_steps, e) ||
        adopt(m, path, "eval_every", "--eval-every", c->given_eval, 1, &c->eval_every, e) ||
        adopt(m, path, "checkpoint_every", "--checkpoint-every", c->given_checkpoint, 1, &c->checkpoint_every, e))
        goto done;
    RunState *rs = &T->rs;
    int found = 0;
    for (int p = PHASE_MAIN; p <= PHASE_DONE; p++)
        if (phase && strcmp(phase, phase_name(c->mode, (Phase)p)) == 0) rs->phase = (Phase)p, found = 1;
    if (!found) {
        err_set(e, "%s: metadata \"phase\" is missing or unknown", path);
        goto done;
    }
    long acc_last[3], test_n;
    if (meta_long_min(m, path, "step", 0, &rs->step, e) || meta_long_min(m, path, "log_count", 0, &rs->sum_n, e) ||
        meta_long_min(m, path, "metrics_bytes", 0, &rs->metrics_bytes, e) ||
        meta_long(m, path, "test_examples", &test_n, e) || meta_longs(m, path, "acc_last", acc_last, 3, e) ||
        meta_longs(m, path, "acc_before_finetune", rs->acc_before, 2, e) ||
        meta_longs(m, path, "acc_after_finetune", rs->acc_after, 2, e))
        goto done;
    long phase_total = rs->phase == PHASE_MAIN ? c->steps : c->finetune_steps;
    if (rs->step < 0 || (rs->phase != PHASE_DONE && rs->step > phase_total)) {
        err_set(e, "%s: step %ld is outside the run (%ld steps in phase %s)", path, rs->step, phase_total, phase);
        goto done;
    }
    if ((size_t)test_n != T->data.test.n) {
        err_set(e, "%s: the run was evaluated on %ld test examples, the data has %zu (different --data?)", path, test_n,
                T->data.test.n);
        goto done;
    }
    rs->acc_last[0] = acc_last[0];
    rs->acc_last[1] = acc_last[1];
    rs->acc_last_step = acc_last[2];
    const char *sums = meta_get(m, "log_sums");
    for (int i = 0; i < MAX_OUTPUTS; i++) {
        char *end = NULL;
        rs->sums[i] = sums ? strtod(sums, &end) : 0;
        if (!sums || end == sums || *end != (i + 1 < MAX_OUTPUTS ? ',' : '\0')) {
            err_set(e, "%s: metadata \"log_sums\" is missing or malformed", path);
            goto done;
        }
        sums = end + 1;
    }
    if (resume_ema(T, m, path, has_ema, e) != 0 || resume_flip(T, m, path, e) != 0 ||
        resume_teacher_cache(T, m, path, e) != 0)
        goto done;
    rc = 0;
done:
    free(m);
    return rc;
}
