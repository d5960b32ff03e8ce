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
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "ranks.h"
#include "safetensors.h"
#include "trainer.h"

#define CHECKPOINT_FORMAT "mplc-run-checkpoint/1"

/* The recipe is stored whole in one metadata value, so that --resume can say which settings differ. */
_Static_assert(sizeof MPLC_RECIPE <= ST_VALUE_LEN, "MPLC_RECIPE is longer than a checkpoint metadata value");
_Static_assert(DATASET_CLASS_NAMES_MAX + 8 <= ST_VALUE_LEN, "class names longer than a checkpoint metadata value");

/* MAX_OUTPUTS sums of step outputs as hex floats: they come back bit-exactly. */
static void set_sums(StMeta *m, const char *key, const double *sums) {
    char text[ST_VALUE_LEN];
    size_t n = 0;
    text[0] = '\0';
    for (int i = 0; i < MAX_OUTPUTS && n < sizeof text; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, i ? ",%a" : "%a", sums[i]);
    meta_set(m, key, "%s", text);
}

static int get_sums(const StMeta *m, const char *path, const char *key, double *sums, Err *e) {
    const char *v = meta_get(m, key);
    for (int i = 0; i < MAX_OUTPUTS; i++) {
        char *end = NULL;
        sums[i] = v ? strtod(v, &end) : 0;
        if (!v || end == v || *end != (i + 1 < MAX_OUTPUTS ? ',' : '\0') || !isfinite(sums[i]))
            return err_set(e, "%s: metadata \"%s\" is missing, malformed or not finite", path, key);
        v = end + 1;
    }
    return 0;
}

static void fill_meta(const Trainer *T, StMeta *m) {
    const RunState *rs = &T->rs;
    meta_clear(m);
    meta_set(m, "format", CHECKPOINT_FORMAT);
    meta_set(m, "model", "%s", MPLC_MODEL_NAME);
    /* What the runner was built from: --resume refuses a runner built from anything else. */
    meta_set(m, "model_hash", "%s", MPLC_MODEL_HASH);
    /* The bytes of the model file (the run directory's copy of it): `mplc eval RUN_DIR` takes the copy for the
     * model the checkpoint was trained from only if it still has them, whatever mplc build compiles it. */
    if (T->model_source)
        meta_set(m, "model_file_hash", "fnv1a64:%016" PRIx64, fnv1a64(T->model_source, T->model_source_len));
    /* The rank count is compiled into the model (and its hash): `mplc eval RUN_DIR` compiles it back with it. */
    meta_set(m, "ranks", "%d", MPLC_RANKS);
    meta_set(m, "recipe", "%s", MPLC_RECIPE);
    if (T->init_from[0]) meta_set(m, "init_from", "%s", T->init_from);
    meta_set(m, "data", "%s", T->data_dir);
    meta_set(m, "mode", "%s", mode_name(T->cfg.mode));
    meta_set(m, "teacher_objective", "%s", objective_name(T->cfg.objective));
    meta_set(m, "feedback", "%s", feedback_name(T->cfg.feedback));
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
    const int mpl_main = rs->phase == PHASE_MAIN && T->cfg.mode != MODE_SUPERVISED;
    const uint64_t step = (uint64_t)rs->step; /* unsigned, as batch.c computes positions: no overflow */
    const uint64_t rows_l = (uint64_t)(mpl_main ? MPLC_BATCH_LABELED : MPLC_FINETUNE_BATCH);
    meta_set(m, "order_position_labeled", "%" PRIu64, step * rows_l);
    meta_set(m, "order_position_unlabeled", "%" PRIu64, mpl_main ? step * (uint64_t)MPLC_BATCH_UNLABELED : 0);
    meta_set(m, "order_seed", "%" PRIu64, T->cfg.seed);
    meta_set(m, "test_examples", "%zu", T->data.test.n);
    /* What an exported student's outputs mean, when the data names its classes (image folders). */
    char classes[DATASET_CLASS_NAMES_MAX + 8];
    dataset_classes_json(&T->data, classes, sizeof classes);
    if (classes[0]) meta_set(m, "classes", "%s", classes);
    char mean[DATASET_NORM_TEXT], std[DATASET_NORM_TEXT]; /* the inputs' x = (p/255 - mean)/std per channel */
    dataset_norm_text(&T->data, mean, std);
    if (mean[0]) {
        meta_set(m, "norm_mean", "%s", mean);
        meta_set(m, "norm_std", "%s", std);
    }
    meta_set(m, "acc_last", "%ld,%ld,%ld", rs->acc_last[0], rs->acc_last[1], rs->acc_last_step);
    meta_set(m, "acc_before_finetune", "%ld,%ld", rs->acc_before[0], rs->acc_before[1]);
    meta_set(m, "acc_after_finetune", "%ld,%ld", rs->acc_after[0], rs->acc_after[1]);
    set_sums(m, "log_sums", rs->sums);
    set_sums(m, "main_sums", rs->main_sums);
    meta_set(m, "log_count", "%ld", rs->sum_n);
    meta_set(m, "metrics_bytes", "%ld", rs->metrics_bytes);
    /* %.17g reads back as the same double, so a resumed run compares --ema-decay exactly. */
    meta_set(m, "flip", "%d", T->cfg.flip);
    meta_set(m, "strong_magnitude", "%.17g", T->cfg.strong_magnitude);
    meta_set(m, "resize", "%s", T->cfg.resize ? "yes" : "no");
    meta_set(m, "ema_decay", "%.17g", T->cfg.ema_decay);
    meta_set(m, "ema_updates", "%ld", rs->ema_updates);
    /* The feedback variants and their averages (hex floats: they come back bit-exactly). */
    meta_set(m, "feedback_variant", "%.17g,%.17g,%.17g", T->cfg.feedback_weight, T->cfg.feedback_baseline,
             T->cfg.feedback_normalise);
    meta_set(m, "feedback_wait", "%ld", T->cfg.feedback_wait);
    meta_set(m, "feedback_averages", "%a,%a,%ld", rs->fb_mean, rs->fb_abs, rs->fb_updates);
    meta_set(m, "acc_ema", "%ld,%ld,%ld", rs->acc_ema_last, rs->acc_ema_before, rs->acc_ema_after);
    if (T->cfg.validation > 0) {
        meta_set(m, "validation", "%ld", T->cfg.validation);
        meta_set(m, "patience", "%ld", T->cfg.patience);
        meta_set(m, "best", "%ld,%ld,%ld,%ld", rs->best_correct, rs->best_step, rs->evals_since_best, rs->stopped_at);
    }
    if (rs->n_history > 0) { /* the results before each extension: "steps,finetune,bt,bs,at,as,be,ae;..." */
        char text[ST_VALUE_LEN];
        size_t n = 0;
        text[0] = '\0';
        for (int i = 0; i < rs->n_history; i++)
            for (int k = 0; k < HISTORY_FIELDS && n < sizeof text; k++)
                n += (size_t)snprintf(text + n, sizeof text - n, "%s%ld", k ? "," : i ? ";" : "", rs->history[i][k]);
        meta_set(m, "history", "%s", text);
    }
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

void checkpoint_save(Trainer *T) { checkpoint_save_to(T, T->ckpt_path); }

void checkpoint_save_to(Trainer *T, const char *path) {
    if (!rank_leader()) return; /* every rank holds the same state; rank 0 writes it */
    check_finite(T, T->state, "");
    if (T->ema) check_finite(T, T->ema, "ema/"); /* the EMA arena is zero outside the student's tensors */
    /* metrics.jsonl must hold every line the checkpoint counts before the checkpoint exists. */
    metrics_sync(T);
    StMeta *m = xmalloc(sizeof *m);
    fill_meta(T, m);
    Err e;
    if (st_save_ema(path, T->state, T->ema, m, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    free(m);
}

/* ---- resume ---- */

/* An integer of the metadata in [lo, hi]. A checkpoint must not bring back a setting the command line would
 * refuse (an interval of 0 would divide by zero in the training loop), nor a counter the run cannot have
 * reached (LONG_MAX would overflow at the next increment). */
static int meta_long(const StMeta *m, const char *path, const char *key, long lo, long hi, long *out, Err *e) {
    const char *v = meta_get(m, key);
    if (!v) return err_set(e, "%s: metadata \"%s\" is missing", path, key);
    if (parse_long(v, lo, hi, out) != 0)
        return err_set(e, "%s: metadata \"%s\" is '%.40s', not an integer in [%ld, %ld]", path, key, v, lo, hi);
    return 0;
}

/* n comma-separated integers, each in [lo, hi]. */
static int meta_longs(const StMeta *m, const char *path, const char *key, long *out, int n, long lo, long hi, Err *e) {
    const char *v = meta_get(m, key);
    char *end = NULL;
    for (int i = 0; v && i < n; i++) {
        errno = 0;
        out[i] = strtol(v, &end, 10);
        if (errno || end == v || *end != (i + 1 < n ? ',' : '\0') || out[i] < lo || out[i] > hi) v = NULL;
        else v = end + 1;
    }
    if (!v) return err_set(e, "%s: metadata \"%s\" is missing or not %d integers in [%ld, %ld]", path, key, n, lo, hi);
    return 0;
}

/* --validation and --patience are settings of the run (a checkpoint without them: a run without a validation
 * set); the best-so-far counters come back with them. */
static int resume_validation(Trainer *T, const StMeta *m, const char *path, long global, Err *e) {
    TrainConfig *c = &T->cfg;
    long validation = 0, patience = 0, best[4] = {-1, 0, 0, 0};
    if (meta_get(m, "validation") &&
        (meta_long(m, path, "validation", 1, LONG_MAX, &validation, e) ||
         meta_long(m, path, "patience", 0, LONG_MAX, &patience, e) ||
         meta_longs(m, path, "best", best, 4, -1, LONG_MAX, e)))
        return -1;
    if (c->given_validation && c->validation != validation)
        return err_set(e, "%s was written with --validation %ld, but this command says --validation %ld (drop the "
                          "flag or start a new run)", path, validation, c->validation);
    if (c->given_patience && c->patience != patience)
        return err_set(e, "%s was written with --patience %ld, but this command says --patience %ld (drop the flag "
                          "or start a new run)", path, patience, c->patience);
    /* A stop by --patience writes a checkpoint at that step, so a run still in its main phase is there. */
    if (best[0] > validation || best[1] < 0 || best[1] > global || best[2] < 0 || best[3] < 0 || best[3] > c->steps ||
        (best[3] > 0 && T->rs.phase == PHASE_MAIN && best[3] != T->rs.step))
        return err_set(e, "%s: metadata \"best\" is not what the run can have reached", path);
    c->validation = validation;
    c->patience = patience;
    T->rs.best_correct = best[0];
    T->rs.best_step = best[1];
    T->rs.evals_since_best = best[2];
    T->rs.stopped_at = best[3];
    return 0;
}

/* The results before each extension (fill_meta's "history"), every number within what the run can have had. */
static int resume_history(Trainer *T, const StMeta *m, const char *path, Err *e) {
    const char *v = meta_get(m, "history");
    RunState *rs = &T->rs;
    rs->n_history = 0;
    if (!v) return 0;
    const long test_n = (long)T->data.test.n;
    while (*v) {
        if (rs->n_history == HISTORY_MAX) return err_set(e, "%s: metadata \"history\" has more than %d entries", path, HISTORY_MAX);
        long *h = rs->history[rs->n_history++];
        for (int k = 0; k < HISTORY_FIELDS; k++) {
            char *end = NULL;
            errno = 0;
            h[k] = strtol(v, &end, 10);
            const long lo = k == 0 ? 1 : k == 1 ? 0 : -1, hi = k < 2 ? T->cfg.steps : test_n;
            const char want = k + 1 < HISTORY_FIELDS ? ',' : (*end == ';' ? ';' : '\0');
            if (errno || end == v || *end != want || h[k] < lo || (k != 1 && h[k] > hi))
                return err_set(e, "%s: metadata \"history\" is malformed or holds values the run cannot have had", path);
            v = *end ? end + 1 : end;
        }
    }
    return 0;
}

/* --resume --steps N past the run's steps (docs/RUNNER.md, "Extending a run"): the main phase continues to N with
 * its schedules over the new total. A run past its main phase goes back into it, from the state it has (the
 * teacher as the main phase left it, the student as finetuning left it, its momentum reset as at the start of
 * finetuning); its results so far go into the history, and finetuning runs again after the extended main phase. */
static int extend_run(Trainer *T, long want, Err *e) {
    TrainConfig *c = &T->cfg;
    RunState *rs = &T->rs;
    if (want == c->steps && rs->phase != PHASE_DONE) return 0; /* the run's own steps, given again */
    if (want <= c->steps)
        return err_set(e, "--steps %ld: the run in %s has %ld steps%s; a run can only be extended, give more", want,
                       c->out_dir, c->steps, rs->phase == PHASE_DONE ? " and is finished" : "");
    if (want > LONG_MAX - c->finetune_steps)
        return err_set(e, "--steps %ld and the run's %ld finetuning steps overflow the step counter", want,
                       c->finetune_steps);
    if (rs->phase != PHASE_MAIN) {
        if (rs->n_history == HISTORY_MAX)
            return err_set(e, "--steps %ld: the run in %s has been extended %d times already, the most it records",
                           want, c->out_dir, HISTORY_MAX);
        long *h = rs->history[rs->n_history++];
        const long entry[HISTORY_FIELDS] = {c->steps,         c->finetune_steps,  rs->acc_before[0],  rs->acc_before[1],
                                            rs->acc_after[0], rs->acc_after[1],   rs->acc_ema_before, rs->acc_ema_after};
        memcpy(h, entry, sizeof entry);
        rs->phase = PHASE_MAIN;
        rs->step = c->steps;
        rs->sum_n = 0;
        memset(rs->sums, 0, sizeof rs->sums);
        rs->acc_before[0] = rs->acc_before[1] = rs->acc_after[0] = rs->acc_after[1] = -1;
        rs->acc_ema_before = rs->acc_ema_after = -1;
        zero_state_prefix(T->state, "student_momentum/");
    }
    rs->stopped_at = 0; /* a main phase that --patience ended continues too */
    rs->evals_since_best = 0;
    c->steps = want;
    return 0;
}

/* A setting stored in the checkpoint: used unless the command line gave a different value. */
static int adopt(const StMeta *m, const char *path, const char *key, const char *flag, int given, long lo, long *value,
                 Err *e) {
    long stored;
    if (meta_long(m, path, key, lo, LONG_MAX, &stored, e) != 0) return -1;
    if (given && stored != *value)
        return err_set(e, "%s was written with %s %ld, but this command says %s %ld (drop the flag or start a new run)",
                       path, flag, stored, flag, *value);
    *value = stored;
    return 0;
}

/* The data directory is a setting of the run like the others: --resume without --data uses the recorded one, and
 * a --data that resolves elsewhere is refused. Checkpoints written before it was recorded have none: the
 * command's --data (or the default) applies, as it did then. */
static int adopt_data_dir(Trainer *T, const StMeta *m, const char *path, Err *e) {
    const char *stored = meta_get(m, "data");
    TrainConfig *c = &T->cfg;
    if (!stored) return 0;
    if (!stored[0]) return err_set(e, "%s: metadata \"data\" is empty", path);
    if (c->given_data) {
        char now[PATH_CAP];
        if (resolve_path(c->data_dir, now, sizeof now, e) != 0) return -1;
        if (strcmp(now, stored) != 0)
            return err_set(e, "%s was written with --data %s, but this command says --data %s (drop the flag or "
                              "start a new run)",
                           path, stored, c->data_dir);
    }
    if (path_join(T->data_dir, sizeof T->data_dir, e, "%s", stored) != 0) return -1;
    c->data_dir = T->data_dir;
    return 0;
}

/* The most bytes metrics.jsonl can hold after `global` steps: per step a log line and an evaluation line, plus
 * the evaluation after finetuning, each at most a line of the longest output table (report.c writes the
 * phase, two step counters, and per output its name and a float; 256 bytes and 32 per output are generous). */
static long metrics_bytes_max(long global) {
    long line = 0;
    const TensorTable *tables[] = {&TABLE_STEP_OUT, &TABLE_SUP_OUT};
    for (int k = 0; k < 2; k++) {
        long n = 256;
        for (int i = 0; i < tables[k]->count; i++) n += (long)strlen(tables[k]->items[i].name) + 32;
        if (n > line) line = n;
    }
    return global < LONG_MAX / (2 * line) - 1 ? (2 * global + 2) * line : LONG_MAX;
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

/* The EMA's decay, update count (at most one per step so far) and accuracies; the EMA tensors were loaded
 * with the state. */
static int resume_ema(Trainer *T, const StMeta *m, const char *path, int has_ema, long global, Err *e) {
    const char *v = meta_get(m, "ema_decay");
    if (!v) return resume_without_ema(T, path, has_ema, e);
    char *end = NULL;
    double stored = strtod(v, &end);
    if (end == v || *end != '\0' || !(stored >= 0 && stored < 1)) /* the range of --ema-decay */
        return err_set(e, "%s: metadata \"ema_decay\" is not a number D with 0 <= D < 1: '%.40s'", path, v);
    TrainConfig *c = &T->cfg;
    if (c->given_ema_decay && stored != c->ema_decay)
        return err_set(e, "%s was written with --ema-decay %.17g, but this command says --ema-decay %.17g (drop the flag "
                          "or start a new run)",
                       path, stored, c->ema_decay);
    c->ema_decay = stored;
    if (stored > 0 && !has_ema)
        return err_set(e, "%s: metadata \"ema_decay\" is %.17g but the ema/ tensors are missing", path, stored);
    long acc[3];
    if (meta_long(m, path, "ema_updates", 0, global, &T->rs.ema_updates, e) ||
        meta_longs(m, path, "acc_ema", acc, 3, -1, (long)T->data.test.n, e))
        return -1;
    T->rs.acc_ema_last = acc[0];
    T->rs.acc_ema_before = acc[1];
    T->rs.acc_ema_after = acc[2];
    return 0;
}

/* The feedback variants: a flag given again must have the run's value. Checkpoints written before they existed
 * have none: their runs used the paper's rule, which a resume keeps. */
static int resume_feedback_variant(Trainer *T, const StMeta *m, const char *path, Err *e) {
    TrainConfig *c = &T->cfg;
    RunState *rs = &T->rs;
    const char *v = meta_get(m, "feedback_variant"), *a = meta_get(m, "feedback_averages");
    double stored[3] = {1, 0, 0};
    rs->fb_mean = rs->fb_abs = 0, rs->fb_updates = 0;
    if (v) {
        char *end = NULL;
        const char *p = v;
        for (int i = 0; i < 3; i++) {
            stored[i] = strtod(p, &end);
            if (end == p || *end != (i < 2 ? ',' : '\0') || !isfinite(stored[i]) ||
                !(i == 0 ? stored[i] > 0 : stored[i] >= 0 && stored[i] < 1))
                return err_set(e, "%s: metadata \"feedback_variant\" is not W,D,D (W > 0, 0 <= D < 1): '%.60s'", path, v);
            p = end + 1;
        }
        int used = 0; /* %n: the whole value must be the three fields, nothing after them */
        if (!a || sscanf(a, "%la,%la,%ld%n", &rs->fb_mean, &rs->fb_abs, &rs->fb_updates, &used) != 3 || a[used] ||
            !isfinite(rs->fb_mean) || !isfinite(rs->fb_abs) || rs->fb_abs < 0 || rs->fb_updates < 0)
            return err_set(e, "%s: metadata \"feedback_averages\" is missing or malformed", path);
    }
    const char *flags[3] = {"--feedback-weight", "--feedback-baseline", "--feedback-normalise"};
    double *values[3] = {&c->feedback_weight, &c->feedback_baseline, &c->feedback_normalise};
    const int given[3] = {c->given_feedback_weight, c->given_feedback_baseline, c->given_feedback_normalise};
    for (int i = 0; i < 3; i++) {
        if (given[i] && stored[i] != *values[i])
            return err_set(e, "%s was written with %s %.17g, but this command says %s %.17g (drop the flag or start a "
                              "new run)",
                           path, flags[i], stored[i], flags[i], *values[i]);
        *values[i] = stored[i];
    }
    /* --feedback-wait came later than the others: a checkpoint without it had none. */
    long wait = 0;
    if (meta_get(m, "feedback_wait") && meta_long(m, path, "feedback_wait", 0, LONG_MAX, &wait, e) != 0) return -1;
    if (c->given_feedback_wait && wait != c->feedback_wait)
        return err_set(e, "%s was written with --feedback-wait %ld, but this command says --feedback-wait %ld (drop the "
                          "flag or start a new run)",
                       path, wait, c->feedback_wait);
    c->feedback_wait = wait;
    return 0;
}

/* Flips and the strong view's magnitude change what the augmentation makes, so a resumed run keeps the run's
 * settings. Checkpoints written before --flip existed have no "flip": those runs had no flips, and --flip auto gave
 * none on their data; those written before --strong-magnitude have none: their magnitude was 1. */
static int resume_augmentation(Trainer *T, const StMeta *m, const char *path, Err *e) {
    TrainConfig *c = &T->cfg;
    const char *v = meta_get(m, "flip");
    if (v) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
            return err_set(e, "%s: metadata \"flip\" is not 0 or 1: '%s'", path, v);
        int stored = v[0] == '1';
        if (c->given_flip && stored != c->flip)
            return err_set(e, "%s was written with --flip %s, but this command says --flip %s (drop the flag or start a "
                              "new run)",
                           path, stored ? "yes" : "no", c->flip ? "yes" : "no");
        c->flip = stored;
    }
    double magnitude = 1;
    if ((v = meta_get(m, "strong_magnitude"))) {
        char *end = NULL;
        magnitude = strtod(v, &end);
        if (end == v || *end != '\0' || !(magnitude >= 0 && magnitude <= 1)) /* the range of --strong-magnitude */
            return err_set(e, "%s: metadata \"strong_magnitude\" is not a number M with 0 <= M <= 1: '%.40s'", path, v);
    }
    if (c->given_strong_magnitude && magnitude != c->strong_magnitude)
        return err_set(e, "%s was written with --strong-magnitude %.17g, but this command says --strong-magnitude %.17g "
                          "(drop the flag or start a new run)",
                       path, magnitude, c->strong_magnitude);
    c->strong_magnitude = magnitude;
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

const char *recipe_value(const char *recipe, const char *key, size_t key_len, size_t *len) {
    for (const char *p = recipe; *p;) {
        const char *end = strchr(p, ';'), *eq = strchr(p, '=');
        if (!end) end = p + strlen(p);
        if (eq && eq < end && (size_t)(eq - p) == key_len && strncmp(p, key, key_len) == 0) {
            *len = (size_t)(end - eq - 1);
            return eq + 1;
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}

/* Appends to out, for each entry of recipe a: if !only_new, "key a_value -> b_value" when b's value differs
 * (or "(none)" when b lacks the key); if only_new, "key (none) -> a_value" when b lacks the key. */
static void diff_entries(const char *a, const char *b, int only_new, char *out, size_t cap) {
    for (const char *p = a; *p;) {
        const char *end = strchr(p, ';'), *eq = strchr(p, '=');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end) eq = end; /* an entry without '=': a key with an empty value */
        const int key_len = (int)(eq - p), len_a = eq < end ? (int)(end - eq - 1) : 0;
        const char *va = eq < end ? eq + 1 : "";
        size_t len_b = 0, n = strlen(out);
        const char *vb = recipe_value(b, p, (size_t)key_len, &len_b);
        const char *sep = n ? ", " : "";
        if (only_new && !vb) snprintf(out + n, cap - n, "%s%.*s (none) -> %.*s", sep, key_len, p, len_a, va);
        if (!only_new && !vb) snprintf(out + n, cap - n, "%s%.*s %.*s -> (none)", sep, key_len, p, len_a, va);
        if (!only_new && vb && ((size_t)len_a != len_b || strncmp(va, vb, len_b) != 0))
            snprintf(out + n, cap - n, "%s%.*s %.*s -> %.*s", sep, key_len, p, len_a, va, (int)len_b, vb);
        p = *end ? end + 1 : end;
    }
}

void recipe_diff(const char *was, const char *now, char *out, size_t cap) {
    out[0] = '\0';
    diff_entries(was, now, 0, out, cap);
    diff_entries(now, was, 1, out, cap);
}

/* A run continues only with a runner built from the same model and recipe (the hash covers both): anything
 * else would make one run of two recipes. The message says which recipe settings differ. */
static int resume_identity(const StMeta *m, const char *path, Err *e) {
    const char *hash = meta_get(m, "model_hash"), *recipe = meta_get(m, "recipe");
    if (!hash || !recipe)
        return err_set(e,
                       "%s records no model hash and recipe (written by an older mplc-run), so --resume cannot check "
                       "that this runner was built from the same model and recipe; start a new run from its weights "
                       "with --init-from %s",
                       path, path);
    if (strcmp(hash, MPLC_MODEL_HASH) == 0) return 0;
    char diff[sizeof e->msg];
    recipe_diff(recipe, MPLC_RECIPE, diff, sizeof diff);
    return err_set(e,
                   "%s was trained by a runner built from another model or recipe (%s); resume it with that runner, "
                   "or start a new run from its weights with --init-from %s",
                   path, diff[0] ? diff : "same recipe, but the compiled model differs (layers or mplc version)", path);
}

/* --init-from FILE: a new run whose teacher and student start from FILE's parameters, by name. st_load checks
 * every tensor's name and shape against this model (and FILE's checksum and finite values); the optimiser's
 * momenta start at zero as in any new run, and the EMA, not copied, starts from the student at its first
 * learning step (ema_updates is 0). */
int checkpoint_init_from(Trainer *T, Err *e) {
    const char *path = T->cfg.init_from;
    Err why;
    if (st_load(path, T->state, NULL, &why) != 0) return err_set(e, "--init-from: %s", why.msg);
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (!starts_with(t->name, "teacher/") && !starts_with(t->name, "student/"))
            memset(T->state + t->offset, 0, sizeof(float) * t->count); /* as init_state leaves them */
    }
    return path_join(T->init_from, ST_VALUE_LEN, e, "%s", path); /* a path the checkpoint's metadata can hold */
}

/* Reads the run's checkpoint into the state (and EMA) arenas and its metadata into m. */
static int checkpoint_load(Trainer *T, StMeta *m, int *has_ema, Err *e) {
    const char *path = T->ckpt_path;
    struct stat st; /* only a missing file is "no checkpoint"; st_load names anything else (a directory, ...) */
    if (stat(path, &st) != 0 && errno == ENOENT) return err_set(e, "--resume: no checkpoint %s to resume from", path);
    return st_load_ema(path, T->state, T->ema, has_ema, m, e);
}

/* Reduced MPL: --resume without --teacher-cache takes the cache the run was trained with (its path as recorded;
 * resume_teacher_cache then checks its rows by hash, as for a --teacher-cache given). */
static int adopt_teacher_cache(Trainer *T, const StMeta *m, const char *path, Err *e) {
    const char *stored = meta_get(m, "teacher_cache");
    if (T->cfg.teacher_cache || !MPLC_TEACHER_READS_PREDICTIONS) return 0;
    if (!stored || !stored[0])
        return err_set(e, "%s records no teacher cache; give --teacher-cache FILE.npy", path);
    if (path_join(T->cache_path, sizeof T->cache_path, e, "%s", stored) != 0) return -1;
    T->cfg.teacher_cache = T->cache_path;
    return 0;
}

/* --teacher-objective and --feedback: as adopt() for a name. Checkpoints written before they were recorded have
 * neither: the command's values (the mode's combination unless given) apply, as they did then. */
static int adopt_name(const StMeta *m, const char *path, const char *key, const char *flag, int given, int *value,
                      const char *(*name)(int), int (*parse)(const char *, int *), Err *e) {
    const char *stored = meta_get(m, key);
    int v;
    if (!stored) return 0;
    if (parse(stored, &v) != 0) return err_set(e, "%s: metadata \"%s\" is '%s', not a value of %s", path, key, stored, flag);
    if (given && v != *value)
        return err_set(e, "%s was written with %s %s, but this command says %s %s (drop the flag or start a new run)",
                       path, flag, stored, flag, name(*value));
    *value = v;
    return 0;
}
static const char *objective_name_int(int v) { return objective_name((Objective)v); }
static const char *feedback_name_int(int v) { return feedback_name((Feedback)v); }
static int objective_parse_int(const char *s, int *v) {
    Objective o;
    return objective_parse(s, &o) != 0 ? -1 : (*v = (int)o, 0);
}
static int feedback_parse_int(const char *s, int *v) {
    Feedback f;
    return feedback_parse(s, &f) != 0 ? -1 : (*v = (int)f, 0);
}

/* --resize changes the images the run reads, so a resumed run keeps the run's setting. Checkpoints written before
 * --resize existed have no "resize": their runs refused images of another size. */
static int adopt_resize(Trainer *T, const StMeta *m, const char *path, Err *e) {
    const char *v = meta_get(m, "resize");
    if (!v) return 0;
    if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
        return err_set(e, "%s: metadata \"resize\" is not yes or no: '%.40s'", path, v);
    const int stored = v[0] == 'y';
    if (T->cfg.given_resize && !stored)
        return err_set(e, "%s was written without --resize, but this command says --resize (drop the flag or start a "
                          "new run)",
                       path);
    T->cfg.resize = stored;
    return 0;
}

int checkpoint_data_dir(Trainer *T, Err *e) {
    StMeta *m = xmalloc(sizeof *m);
    int has_ema, rc = checkpoint_load(T, m, &has_ema, e) != 0 || adopt_data_dir(T, m, T->ckpt_path, e) != 0 ||
                              adopt_resize(T, m, T->ckpt_path, e) != 0 ||
                              adopt_teacher_cache(T, m, T->ckpt_path, e) != 0
                          ? -1
                          : 0;
    free(m);
    return rc;
}

int checkpoint_resume(Trainer *T, Err *e) {
    const char *path = T->ckpt_path;
    StMeta *m = xmalloc(sizeof *m);
    int rc = -1, has_ema = 0;
    if (checkpoint_load(T, m, &has_ema, e) != 0) goto done;
    const char *fmt = meta_get(m, "format"), *model = meta_get(m, "model"), *mode = meta_get(m, "mode"),
               *seed = meta_get(m, "seed"), *phase = meta_get(m, "phase");
    if (!fmt || strcmp(fmt, CHECKPOINT_FORMAT) != 0) {
        err_set(e, "%s: not a training checkpoint of mplc-run (metadata \"format\" is not %s)", path, CHECKPOINT_FORMAT);
        goto done;
    }
    /* st_load verified the checksum if there is one; a training checkpoint must have one. */
    if (!meta_get(m, ST_CRC_KEY)) {
        err_set(e, "%s: has no checksum of its data (metadata \"" ST_CRC_KEY "\"), so its state cannot be trusted",
                path);
        goto done;
    }
    if (!model || strcmp(model, MPLC_MODEL_NAME) != 0) {
        err_set(e, "%s: written for model %s, this runner is built for %s", path, model ? model : "?", MPLC_MODEL_NAME);
        goto done;
    }
    if (resume_identity(m, path, e) != 0) goto done;
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
    /* --steps may extend the run: checked against the run's own steps once everything else is (extend_run). */
    const long want_steps = c->given_steps ? c->steps : 0;
    /* The same lower bounds as the flags (main.c). */
    if (adopt(m, path, "labels", "--labels", c->given_labels, 1, &c->labels, e) ||
        adopt(m, path, "steps", "--steps", 0, 1, &c->steps, e) ||
        adopt(m, path, "finetune_steps", "--finetune-steps", c->given_finetune, 0, &c->finetune_steps, e) ||
        adopt(m, path, "eval_every", "--eval-every", c->given_eval, 1, &c->eval_every, e) ||
        adopt(m, path, "checkpoint_every", "--checkpoint-every", c->given_checkpoint, 1, &c->checkpoint_every, e))
        goto done;
    int objective = (int)c->objective, feedback = (int)c->feedback;
    if (adopt_name(m, path, "teacher_objective", "--teacher-objective", c->given_objective, &objective,
                   objective_name_int, objective_parse_int, e) ||
        adopt_name(m, path, "feedback", "--feedback", c->given_feedback, &feedback, feedback_name_int,
                   feedback_parse_int, e))
        goto done;
    c->objective = (Objective)objective, c->feedback = (Feedback)feedback;
    /* The global step (main + finetune) must be a long. */
    if (c->steps > LONG_MAX - c->finetune_steps) {
        err_set(e, "%s: %ld steps and %ld finetuning steps overflow a step counter", path, c->steps, c->finetune_steps);
        goto done;
    }
    RunState *rs = &T->rs;
    int found = 0;
    for (int p = PHASE_MAIN; p <= PHASE_DONE; p++)
        if (phase && strcmp(phase, phase_name(c->mode, (Phase)p)) == 0) rs->phase = (Phase)p, found = 1;
    if (!found) {
        err_set(e, "%s: metadata \"phase\" is missing or unknown", path);
        goto done;
    }
    /* Every counter within what the run can have reached: a finished run stays at the end of finetuning. */
    long test_n, acc_last[3];
    if (meta_long(m, path, "step", 0, rs->phase == PHASE_MAIN ? c->steps : c->finetune_steps, &rs->step, e) ||
        meta_long(m, path, "test_examples", 0, LONG_MAX, &test_n, e))
        goto done;
    if ((size_t)test_n != T->data.test.n) {
        err_set(e, "%s: the run was evaluated on %ld test examples, the data has %zu (different --data?)", path, test_n,
                T->data.test.n);
        goto done;
    }
    char classes[DATASET_CLASS_NAMES_MAX + 8];
    dataset_classes_json(&T->data, classes, sizeof classes);
    const char *was = meta_get(m, "classes");
    if (strcmp(was ? was : "", classes) != 0) {
        err_set(e, "%s: the run was trained on the classes %s, but %s has %s (different --data?)", path,
                was ? was : "(unnamed)", T->data_dir, classes[0] ? classes : "(unnamed)");
        goto done;
    }
    const long global = rs->phase == PHASE_MAIN ? rs->step : c->steps + rs->step;
    if (meta_long(m, path, "log_count", 0, rs->step, &rs->sum_n, e) ||
        meta_long(m, path, "metrics_bytes", 0, metrics_bytes_max(global), &rs->metrics_bytes, e) ||
        meta_longs(m, path, "acc_last", acc_last, 3, -1, test_n, e) ||
        meta_longs(m, path, "acc_before_finetune", rs->acc_before, 2, -1, test_n, e) ||
        meta_longs(m, path, "acc_after_finetune", rs->acc_after, 2, -1, test_n, e))
        goto done;
    if (acc_last[2] > global) {
        err_set(e, "%s: metadata \"acc_last\" is of step %ld, after the run's step %ld", path, acc_last[2], global);
        goto done;
    }
    rs->acc_last[0] = acc_last[0];
    rs->acc_last[1] = acc_last[1];
    rs->acc_last_step = acc_last[2];
    if (get_sums(m, path, "log_sums", rs->sums, e) != 0 || get_sums(m, path, "main_sums", rs->main_sums, e) != 0)
        goto done;
    if (resume_ema(T, m, path, has_ema, global, e) != 0 || resume_augmentation(T, m, path, e) != 0 ||
        resume_feedback_variant(T, m, path, e) != 0 ||
        resume_teacher_cache(T, m, path, e) != 0 || resume_validation(T, m, path, global, e) != 0)
        goto done;
    if (resume_history(T, m, path, e) != 0 || (want_steps && extend_run(T, want_steps, e) != 0)) goto done;
    const char *init_from = meta_get(m, "init_from"); /* kept in the run's later checkpoints */
    snprintf(T->init_from, sizeof T->init_from, "%s", init_from ? init_from : "");
    rc = 0;
done:
    free(m);
    return rc;
}
