/* The training loop: the main phase (MPL, UDA or the supervised baseline), then finetuning, with
 * evaluation, metrics, checkpoints and resume. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "ema.h"
#include "fileio.h"
#include "model.h"
#include "moons_svg.h"
#include "ranks.h"
#include "schedule.h"
#include "train.h"
#include "trainer.h"

/* The metric sums live in a fixed array (and in the checkpoint metadata). */
_Static_assert(MPLC_NUM_STEP_OUTPUTS <= MAX_OUTPUTS && MPLC_NUM_SUPERVISED_OUTPUTS <= MAX_OUTPUTS,
               "more step outputs than the runner's MAX_OUTPUTS");

static long global_step(const Trainer *T) {
    return T->rs.phase == PHASE_MAIN ? T->rs.step : T->cfg.steps + T->rs.step;
}

/* A NaN or Inf in any output stops the run before anything is saved (exit 3). */
static void check_outputs(const Trainer *T, const TensorTable *outs, const float *io, long step) {
    for (int i = 0; i < outs->count; i++) {
        float v = io[outs->items[i].offset];
        if (isfinite(v)) continue;
        die(EXIT_NONFINITE,
            "%s step %ld: output %s is %s; stopping without writing a checkpoint (the last good one, if any, is %s)",
            phase_name(T->cfg.mode, T->rs.phase), step, outs->items[i].name, isnan(v) ? "NaN" : "Inf", T->ckpt_path);
    }
}

static void accumulate(Trainer *T, const TensorTable *outs, const float *io) {
    for (int i = 0; i < outs->count; i++) {
        T->rs.sums[i] += io[outs->items[i].offset];
        if (T->rs.phase == PHASE_MAIN) T->rs.main_sums[i] += io[outs->items[i].offset];
    }
    T->rs.sum_n++;
}

/* After a step in which the student learned, the EMA follows it: in the main phase once the student's
 * wait is over (from the first step in mode supervised), and in every finetuning step. */
static void update_ema(Trainer *T) {
    if (!T->ema) return;
    ema_update(T->ema, T->state, T->cfg.ema_decay, T->rs.ema_updates);
    T->rs.ema_updates++;
}

/* --validation: the held-out set, the best student so far into best.safetensors, the count toward --patience. */
static void run_validation(Trainer *T) {
    long correct[3];
    const float *ema = T->ema && T->rs.ema_updates > 0 ? T->ema : NULL;
    evaluate(T->state, ema, &T->val, T->val_teacher_x, T->eval_x, T->eval_logits, T->scratch, correct, NULL);
    metrics_eval_validation(T, correct);
    if (correct[1] > T->rs.best_correct) {
        T->rs.best_correct = correct[1];
        T->rs.best_step = global_step(T);
        T->rs.evals_since_best = 0;
        checkpoint_save_to(T, T->best_path);
    } else {
        T->rs.evals_since_best++;
    }
}

static void run_test(Trainer *T) {
    long correct[3];
    const float *ema = T->ema && T->rs.ema_updates > 0 ? T->ema : NULL; /* an empty EMA is not evaluated */
    const float *teacher_x = T->cache.rows ? teacher_cache_test_rows(&T->cache) : NULL;
    evaluate(T->state, ema, &T->data.test, teacher_x, T->eval_x, T->eval_logits, T->scratch, correct, NULL);
    T->rs.acc_last[0] = correct[0];
    T->rs.acc_last[1] = correct[1];
    T->rs.acc_ema_last = correct[2];
    T->rs.acc_last_step = global_step(T);
    metrics_eval(T);
}

/* The test set at every evaluation without a validation set; with one, the validation set, and the test set only
 * at the end of a phase (`end`). */
static void run_eval(Trainer *T, int end) {
    if (T->val.n) run_validation(T);
    if (!T->val.n || end) run_test(T);
}

/* SIGINT and SIGTERM only record the signal (all a handler may safely do); the loop finishes its step, writes a
 * checkpoint and exits 128 + the signal. SA_RESETHAND: a second signal takes its default action and ends the
 * process at once, losing at most the step in progress (a checkpoint is replaced atomically, never half written). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static void catch_stop_signals(void) {
    const int sigs[2] = {SIGINT, SIGTERM};
    sigset_t caught;
    sigemptyset(&caught);
    for (int i = 0; i < 2; i++) {
        struct sigaction sa, old;
        /* A signal the runner was started ignoring stays ignored (nohup, a script's background jobs). */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART | SA_RESETHAND;
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&caught, sigs[i]);
    }
    /* A blocked mask, unlike an ignored signal, is no one's choice: it is inherited from whichever thread of the
     * parent started us (a libdispatch worker blocks nearly every signal), and would hold the signal forever. */
    pthread_sigmask(SIG_UNBLOCK, &caught, NULL);
}

/* The flags that continue this run with --resume besides those of the command: the directory when it was picked
 * by default (a plain command would now start a new run beside it), and no --overwrite (it would replace it). */
static void resume_flags(const Trainer *T, char *out, size_t cap) {
    snprintf(out, cap, "--resume%s%s%s", T->cfg.default_out ? " --out " : "", T->cfg.default_out ? T->cfg.out_dir : "",
             T->cfg.overwrite ? ", without --overwrite" : "");
}

/* Logging, evaluation, checkpoints, --stop-at and signals after a step; rs.step already counts it. */
static void after_step(Trainer *T, const TensorTable *outs, long total) {
    long step = T->rs.step, log_every = total / 20 > 0 ? total / 20 : 1;
    int last = step == total;
    if (T->tty) progress_draw(T, outs, total, 0);
    if (step % log_every == 0 || last) {
        if (!T->tty || last) progress_draw(T, outs, total, last);
        metrics_log(T, outs);
    }
    int patience_ran_out = 0;
    if (T->rs.phase == PHASE_MAIN && (step % T->cfg.eval_every == 0 || last)) {
        run_eval(T, last);
        /* --patience: that many validation evaluations without a better student end the main phase here, with
         * the test evaluation and log line of a phase's end and a checkpoint that says so. */
        if (!last && T->val.n && T->cfg.patience > 0 && T->rs.evals_since_best >= T->cfg.patience) {
            patience_ran_out = 1;
            T->rs.stopped_at = step;
            if (step % log_every != 0) metrics_log(T, outs);
            run_test(T);
            if (!T->cfg.quiet)
                fprintf(stderr, "%smplc-run: no better validation accuracy in %ld evaluations (--patience): the main "
                                "phase stops at step %ld; best student at step %ld in %s\n",
                        stderr_line_open ? "\n" : "", T->cfg.patience, step, T->rs.best_step, T->best_path);
            stderr_line_open = 0;
        }
    }
    int stop = T->cfg.stop_at > 0 && global_step(T) == T->cfg.stop_at;
    int sig = ranks_max_int(stop_signal); /* all ranks stop after the same step, even if one alone was signalled */
    int save = (step % T->cfg.checkpoint_every == 0 && (T->rs.phase == PHASE_MAIN || !last)) || patience_ran_out;
    if (save || stop || sig) checkpoint_save(T);
    if (!stop && !sig) return;
    char resume[PATH_CAP + 64];
    resume_flags(T, resume, sizeof resume);
    if (stderr_line_open) fputc('\n', stderr);
    if (!rank_leader()) ranks_finish(sig ? 128 + sig : 0); /* rank 0 says why */
    if (sig) {
        fprintf(stderr, "mplc-run: interrupted by %s after step %ld; checkpoint in %s; continue with the same command "
                        "and %s\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", global_step(T), T->ckpt_path, resume);
        ranks_finish(128 + sig); /* every rank stops after this step (after_step agrees on the signal) */
    }
    fprintf(stderr, "mplc-run: stopped after step %ld as asked (--stop-at); continue with %s\n", global_step(T), resume);
    ranks_finish(0);
}

static void run_main_phase(Trainer *T) {
    const int supervised = T->cfg.mode == MODE_SUPERVISED;
    const TensorTable *outs = supervised ? &TABLE_SUP_OUT : &TABLE_STEP_OUT;
    const long total = T->cfg.steps;
    while (T->rs.step < total && !T->rs.stopped_at) {
        long t = T->rs.step;
        const float *io;
        if (supervised) {
            T->lr_student = sched_lr_student(t, total, 0); /* the student schedule without the wait */
            static const SupStreams streams = {RNG_AUGMENT_SUP, RNG_DROPOUT_SUP, RNG_AUGMENT_ROW_SUP, RNG_DROPOUT_RANK_SUP};
            batch_fill_supervised(T, t, &T->order_sup, &streams, T->lr_student);
            mplc_supervised_step(T->state, T->sup_io, T->scratch);
            io = T->sup_io;
        } else {
            T->lr_teacher = sched_lr_teacher(t, total);
            T->lr_student = sched_lr_student(t, total, MPLC_STUDENT_WAIT_STEPS);
            T->uda_weight = T->cfg.objective == OBJECTIVE_UDA ? sched_uda_weight(t) : 0.0;
            T->feedback_scale = 0, T->feedback_baseline = 0;
            if (T->cfg.feedback != FEEDBACK_OFF) feedback_inputs(T, t, &T->feedback_scale, &T->feedback_baseline);
            batch_fill_step(T, t, T->lr_teacher, T->lr_student, T->uda_weight, T->feedback_scale, T->feedback_baseline);
            mplc_step(T->state, T->step_io, T->scratch);
            io = T->step_io;
        }
        check_outputs(T, outs, io, t + 1);
        if (!supervised && T->cfg.feedback != FEEDBACK_OFF && t >= (long)(MPLC_STUDENT_WAIT_STEPS) &&
            feedback_variant(&T->cfg))
            feedback_follow(T, io);
        if (supervised || t >= (long)(MPLC_STUDENT_WAIT_STEPS)) update_ema(T);
        accumulate(T, outs, io);
        T->rs.step = t + 1;
        after_step(T, outs, total);
    }
}

/* The toy's decision regions, RUN_DIR/boundary.svg: a picture a user can open in a browser. */
static void write_boundary(Trainer *T) {
    char path[PATH_CAP];
    Err e;
    double accuracy[2]; /* the final evaluation's */
    for (int k = 0; k < 2; k++)
        accuracy[k] = T->rs.acc_after[k] < 0 ? -1 : (double)T->rs.acc_after[k] / (double)T->data.test.n;
    if (path_join(path, sizeof path, &e, "%s/boundary.svg", T->cfg.out_dir) != 0 ||
        moons_write_boundary(path, T->state, T->scratch, T->eval_x, T->eval_logits, &T->data, T->labeled,
                             T->n_labeled, accuracy, &e) != 0)
        die_err(&e, EXIT_BAD_INPUT);
    if (!T->cfg.quiet) fprintf(stderr, "mplc-run: decision regions in %s\n", path);
}

static void start_finetune(Trainer *T) {
    T->rs.acc_before[0] = T->rs.acc_last[0]; /* the main phase always ends with an evaluation */
    T->rs.acc_before[1] = T->rs.acc_last[1];
    T->rs.acc_ema_before = T->rs.acc_ema_last;
    T->rs.phase = PHASE_FINETUNE;
    T->rs.step = 0;
    T->rs.sum_n = 0;
    memset(T->rs.sums, 0, sizeof T->rs.sums);
    zero_state_prefix(T->state, "student_momentum/");
}

static void run_finetune_phase(Trainer *T) {
    const long total = T->cfg.finetune_steps;
    while (T->rs.step < total) {
        long t = T->rs.step;
        T->lr_student = (double)(MPLC_FINETUNE_LR);
        static const SupStreams streams = {RNG_AUGMENT_FT, RNG_DROPOUT_FT, RNG_AUGMENT_ROW_FT, RNG_DROPOUT_RANK_FT};
        batch_fill_supervised(T, t, &T->order_ft, &streams, T->lr_student);
        mplc_supervised_step(T->state, T->sup_io, T->scratch);
        check_outputs(T, &TABLE_SUP_OUT, T->sup_io, t + 1);
        update_ema(T);
        accumulate(T, &TABLE_SUP_OUT, T->sup_io);
        T->rs.step = t + 1;
        after_step(T, &TABLE_SUP_OUT, total);
    }
    if (total > 0) run_eval(T, 1);
    T->rs.acc_after[0] = T->rs.acc_last[0];
    T->rs.acc_after[1] = T->rs.acc_last[1];
    T->rs.acc_ema_after = T->rs.acc_ema_last;
    T->rs.phase = PHASE_DONE;
    checkpoint_save(T);
}

/* The rule the model file obeys (docs/DSL.md, checked by the front end in Recipe.swift), applied to --steps:
 * every warm-up fits in the steps and the student starts before the end. Otherwise an override would train a
 * student that never learns (its wait outlasts the run) or whose learning rate never peaks. Mode supervised
 * trains the student alone from its first step: the wait and the teacher's warm-up do not apply. */
int check_steps_fit_recipe(const TrainConfig *c, Err *e) {
    const int supervised = c->mode == MODE_SUPERVISED;
    const struct {
        const char *setting, *macro, *rule;
        long value, min_steps;
        int applies;
    } rules[] = {
        {"studentWaitSteps", "MPLC_STUDENT_WAIT_STEPS", "must be less than the steps, or the student never learns",
         (long)(MPLC_STUDENT_WAIT_STEPS), (long)(MPLC_STUDENT_WAIT_STEPS) + 1, !supervised},
        {"teacherOptimizer warmupSteps", "MPLC_TEACHER_WARMUP_STEPS",
         "must be at most the steps, or the teacher's learning rate never peaks", (long)(MPLC_TEACHER_WARMUP_STEPS),
         (long)(MPLC_TEACHER_WARMUP_STEPS), !supervised},
        {"studentOptimizer warmupSteps", "MPLC_STUDENT_WARMUP_STEPS",
         "must be at most the steps, or the student's learning rate never peaks", (long)(MPLC_STUDENT_WARMUP_STEPS),
         (long)(MPLC_STUDENT_WARMUP_STEPS), 1},
    };
    char broken[1024] = "";
    long need = 1;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        if (!rules[i].applies || c->steps >= rules[i].min_steps) continue;
        size_t n = strlen(broken);
        snprintf(broken + n, sizeof broken - n, "%s%s %ld (%s in model.h) %s", n ? "; " : "", rules[i].setting,
                 rules[i].value, rules[i].macro, rules[i].rule);
        if (rules[i].min_steps > need) need = rules[i].min_steps;
    }
    if (broken[0])
        return err_set(e, "--steps %ld does not fit model %s's recipe (the model file's MPL block, docs/DSL.md): %s; use "
                          "--steps %ld or more",
                       c->steps, MPLC_MODEL_NAME, broken, need);
    return 0;
}

/* The smallest class-balanced --labels that holds `batch` examples. */
static long labels_for(long batch) { return (batch + MPLC_CLASSES - 1) / MPLC_CLASSES * MPLC_CLASSES; }

/* Every batch must fit in the data it is drawn from: a batch larger than its set would repeat examples
 * within one step. Checked before the run directory is touched, with the numbers and a way out. */
static int check_batches(const Trainer *T, Err *e) {
    const TrainConfig *c = &T->cfg;
    const long BL = MPLC_BATCH_LABELED, BU = MPLC_BATCH_UNLABELED, F = MPLC_FINETUNE_BATCH;
    /* The labeled set is the --labels split, or the data's own (then only more labeled data helps). */
    char set[PATH_CAP + 32], more[64] = "";
    if (T->data.labeled_as_is) snprintf(set, sizeof set, "%s (its labeled set)", c->data_dir);
    else snprintf(set, sizeof set, "--labels %ld", c->labels);
    if (c->mode != MODE_SUPERVISED) {
        if (!T->data.labeled_as_is) snprintf(more, sizeof more, "; use --labels %ld or more", labels_for(BL));
        if (BL > c->labels)
            return err_set(e,
                           "%s: model %s draws %ld labeled examples per step (labeledBatch), more than the %ld "
                           "labeled examples%s",
                           set, MPLC_MODEL_NAME, BL, c->labels, more);
        if ((size_t)BU > T->unl->n)
            return err_set(e,
                           "%s: model %s draws %ld unlabeled images per step (labeledBatch x unlabeledRatio), more than the "
                           "%zu %s images",
                           c->data_dir, MPLC_MODEL_NAME, BU, T->unl->n, T->data.unlabeled.n ? "unlabeled" : "training");
    }
    const int sup = c->mode == MODE_SUPERVISED;
    if (T->data.labeled_as_is) snprintf(more, sizeof more, "%s", sup ? "" : "; use --finetune-steps 0");
    else snprintf(more, sizeof more, "; use --labels %ld or more%s", labels_for(F), sup ? "" : ", or --finetune-steps 0");
    if (F > c->labels && (sup || c->finetune_steps > 0))
        return err_set(e,
                       "%s: model %s %s %ld labeled examples per step (finetune batch), more than the %ld "
                       "labeled examples%s",
                       set, MPLC_MODEL_NAME, sup ? "trains the supervised baseline on" : "finetunes on", F, c->labels,
                       more);
    return 0;
}

/* Settings that train, but make little sense together: one line each on stderr (also with --quiet, which
 * silences progress, not doubts about the result). The hard limits are checked earlier (main.c). */
static void warn_settings(const TrainConfig *c) {
    const int supervised = c->mode == MODE_SUPERVISED;
    /* The steps in which the student learns: after its wait in the main phase, and every finetuning step. */
    const long student_main = supervised ? c->steps : c->steps - (long)(MPLC_STUDENT_WAIT_STEPS);
    const long student_steps = student_main + c->finetune_steps;
    /* Reduced MPL has no UDA loss (docs/DSL.md), whatever its recipe's uda settings. */
    const int uda = !supervised && !MPLC_TEACHER_READS_PREDICTIONS && (double)(MPLC_UDA_WEIGHT) > 0;
    if (uda && (long)(MPLC_UDA_RAMP_STEPS) > c->steps)
        fprintf(stderr,
                "mplc-run: warning: the UDA ramp (uda rampSteps %ld) is longer than the run's %ld steps: the UDA loss "
                "reaches only %.0f%% of its weight\n",
                (long)(MPLC_UDA_RAMP_STEPS), c->steps, 100.0 * (double)c->steps / (double)(MPLC_UDA_RAMP_STEPS));
    if (!supervised && 2 * (long)(MPLC_TEACHER_WARMUP_STEPS) > c->steps)
        fprintf(stderr,
                "mplc-run: warning: the teacher's warm-up (teacherOptimizer warmupSteps %ld) is more than half of the "
                "run's %ld steps\n",
                (long)(MPLC_TEACHER_WARMUP_STEPS), c->steps);
    if (2 * (long)(MPLC_STUDENT_WARMUP_STEPS) > student_main)
        fprintf(stderr,
                "mplc-run: warning: the student's warm-up (studentOptimizer warmupSteps %ld) is more than half of its "
                "%ld steps of %s\n",
                (long)(MPLC_STUDENT_WARMUP_STEPS), student_main, supervised ? "the run" : "the run after its wait");
    if (c->eval_every > c->steps)
        fprintf(stderr,
                "mplc-run: warning: --eval-every %ld is larger than the run's %ld steps: the test set is evaluated "
                "only at the end\n",
                c->eval_every, c->steps);
    if (c->ema_decay > 0 && 1.0 / (1.0 - c->ema_decay) > (double)student_steps)
        fprintf(stderr,
                "mplc-run: warning: the EMA of the student (decay %g) averages over about %.0f steps, more than the "
                "student's %ld learning steps: it stays close to the student's early weights\n",
                c->ema_decay, 1.0 / (1.0 - c->ema_decay), student_steps);
}

AugSpec aug_spec(const Dataset *d, int flip, double magnitude) {
    /* 32x32 RGB data sets translate by up to 4 pixels (the usual "pad 4 and crop"), Fashion-MNIST by 2. */
    int rgb32 = strcmp(d->format, "cifar10") == 0 || strcmp(d->format, "svhn") == 0;
    return (AugSpec){MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS, d->lo, d->hi, d->mean,
                     rgb32 ? AUG_WEAK_SHIFT_RGB : AUG_WEAK_SHIFT, flip, magnitude};
}

int trainer_load_data(Trainer *T, Err *e) {
    TrainConfig *c = &T->cfg;
    if (dataset_load(c->data_dir, 1, c->resize, &T->data, e) != 0) return -1;
    if (c->resize && strcmp(T->data.format, "images") != 0)
        return err_set(e, "--resize resizes the images of image folders; %s holds %s data, whose examples have the "
                          "model's size or are refused",
                       c->data_dir, T->data.format);
    if (T->data.resized && !c->quiet && rank_leader())
        fprintf(stderr, "mplc-run: %s: %zu images of another size resized to %dx%d (--resize)\n", c->data_dir,
                T->data.resized, MPLC_INPUT_WIDTH, MPLC_INPUT_HEIGHT);
    T->unl = T->data.unlabeled.n ? &T->data.unlabeled : &T->data.train;
    if (T->data.labeled_as_is && !c->given_labels) c->labels = (long)T->data.train.n; /* the whole labeled set */
    /* A cache holds rows for the training and test images only (teacher_cache.h). */
    if (c->teacher_cache && T->data.unlabeled.n)
        return err_set(e, "--teacher-cache: %s has its unlabeled images apart, and a teacher cache has rows only for "
                          "training and test images; give the unlabeled images within the training set",
                       c->data_dir);
    /* Absolute, as the data directory, so that --resume from another directory finds it. */
    if (c->teacher_cache && c->teacher_cache != T->cache_path) {
        if (resolve_path(c->teacher_cache, T->cache_path, sizeof T->cache_path, e) != 0) return -1;
        c->teacher_cache = T->cache_path;
    }
    if (c->teacher_cache && teacher_cache_load(c->teacher_cache, &T->data, &T->cache, e) != 0) return -1;
    /* --flip auto: CIFAR-10 objects look the same mirrored; SVHN digits and Fashion-MNIST items need not. */
    if (c->flip < 0) c->flip = strcmp(T->data.format, "cifar10") == 0;
    /* The checkpoint records the data directory absolute, so that --resume from anywhere finds it; a name that
     * is not a path (two-moons) as given. */
    if (c->data_dir == T->data_dir) return 0; /* --resume: the checkpoint's, recorded so */
    return resolve_path(c->data_dir, T->data_dir, sizeof T->data_dir, e);
}

/* The validation set: the n training examples at idx, copied. Every index stays an index of the training set, so
 * with a teacher cache (Reduced MPL), whose rows follow the training set (teacher_cache.h), the teacher's input for
 * validation example r is the cached row of training example idx[r], as it is for the labeled ones in training. */
static int take_validation(Trainer *T, const uint32_t *idx, size_t n, Err *e) {
    const size_t D = MPLC_INPUT_SIZE, K = MPLC_CLASSES;
    if (dataset_alloc_split(&T->val, n, "the validation set", e) != 0) return -1;
    if (T->cache.rows) T->val_teacher_x = xmalloc(n * K * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        memcpy(T->val.x + r * D, T->data.train.x + (size_t)idx[r] * D, D * sizeof(float));
        T->val.y[r] = T->data.train.y[idx[r]];
        if (T->cache.rows)
            memcpy(T->val_teacher_x + r * K, teacher_cache_train_row(&T->cache, idx[r]), K * sizeof(float));
    }
    return 0;
}

static int check_validation(const TrainConfig *c, Err *e) {
    if (c->validation % MPLC_CLASSES != 0)
        return err_set(e, "--validation %ld must be a multiple of the %d classes (a class-balanced split)",
                       c->validation, MPLC_CLASSES);
    return 0;
}

/* The data's own labeled set (image folders, NPY labeled_x.npy, CSV): all of it, in order, but with --validation N
 * for N examples drawn class-balanced (seeded) out of it as the validation set; --labels is then the rest's size. */
static int take_labeled_as_is(Trainer *T, Err *e) {
    TrainConfig *c = &T->cfg;
    const size_t n = T->data.train.n;
    if (n > UINT32_MAX) return err_set(e, "%s: too many labeled examples (%zu)", c->data_dir, n);
    if (check_validation(c, e) != 0) return -1;
    if (c->validation >= (long)n)
        return err_set(e, "--validation %ld: %s has only %zu labeled examples, and some must stay labeled",
                       c->validation, c->data_dir, n);
    const long kept = (long)n - c->validation;
    if (c->resume && c->labels != kept)
        return err_set(e, "%s: the run was trained on %ld labeled examples, but %s has %ld (different data?)",
                       T->ckpt_path, c->labels, c->data_dir, kept);
    if (!c->resume && c->labels != (long)n) /* a new run's --labels defaults to n (trainer_load_data) */
        return err_set(e, "--labels %ld: %s has a labeled set of its own (%zu examples), used as is; drop --labels",
                       c->labels, c->data_dir, n);
    uint8_t *held = xcalloc(n ? n : 1, 1);
    if (c->validation > 0) {
        uint32_t *picked;
        if (dataset_pick_labeled(&T->data.train, c->validation, c->seed, &picked, e) != 0) {
            size_t len = strlen(e->msg);
            snprintf(e->msg + len, sizeof e->msg - len, " (--validation %ld, out of %s's labeled set)", c->validation,
                     c->data_dir);
            free(held);
            return -1;
        }
        int rc = take_validation(T, picked, (size_t)c->validation, e);
        for (long r = 0; r < c->validation; r++) held[picked[r]] = 1;
        free(picked);
        if (rc != 0) {
            free(held);
            return -1;
        }
    }
    c->labels = kept;
    T->labeled = xmalloc((size_t)kept * sizeof *T->labeled);
    for (size_t i = 0, nl = 0; i < n; i++)
        if (!held[i]) T->labeled[nl++] = (uint32_t)i;
    free(held);
    return 0;
}

/* The labeled set: the data's own, or the class-balanced --labels split of the training set. With --validation
 * also the held-out set: --labels + --validation examples picked class-balanced in one seeded draw, of which each
 * class's first labels/K are the labeled ones (the very subset a run without --validation gets) and the others
 * the validation set. */
int trainer_pick_labeled(Trainer *T, Err *e) {
    const TrainConfig *c = &T->cfg;
    if (T->data.labeled_as_is) return take_labeled_as_is(T, e);
    if (c->validation == 0) return dataset_pick_labeled(&T->data.train, c->labels, c->seed, &T->labeled, e);
    if (check_validation(c, e) != 0) return -1;
    if (c->labels > LONG_MAX - c->validation)
        return err_set(e, "--labels %ld and --validation %ld overflow", c->labels, c->validation);
    uint32_t *picked;
    if (dataset_pick_labeled(&T->data.train, c->labels + c->validation, c->seed, &picked, e) != 0) {
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n, " (--labels %ld + --validation %ld)", c->labels, c->validation);
        return -1;
    }
    T->labeled = xmalloc((size_t)c->labels * sizeof *T->labeled);
    uint32_t *held = xmalloc((size_t)c->validation * sizeof *held);
    size_t taken[MPLC_CLASSES] = {0}, nl = 0, nv = 0;
    const size_t per_class = (size_t)c->labels / MPLC_CLASSES;
    for (long i = 0; i < c->labels + c->validation; i++) {
        uint32_t k = picked[i];
        if (taken[T->data.train.y[k]]++ < per_class) T->labeled[nl++] = k;
        else held[nv++] = k;
    }
    free(picked);
    int rc = take_validation(T, held, nv, e);
    free(held);
    return rc;
}

static void setup(Trainer *T) {
    Err e;
    TrainConfig *c = &T->cfg;
    if (locate_inputs(&T->in, &T->sup, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    T->out_h = table_find(&TABLE_STEP_OUT, "h");
    /* A step compiled before the baseline existed has no input for it (main.c refuses soft pseudo labels). */
    if (c->feedback_baseline > 0 && !T->in.feedback_baseline)
        die(EXIT_USAGE, "--feedback-baseline: model %s's step has no input feedback_baseline (compiled by an older "
                        "mplc, or with soft pseudo labels); compile it again with mplc train",
            MPLC_MODEL_NAME);
    if (feedback_variant(c) && !T->out_h)
        die(EXIT_USAGE, "--feedback-weight, --feedback-baseline, --feedback-normalise: model %s's step has no output h",
            MPLC_MODEL_NAME);
    /* On --resume the checkpoint decides whether there is an EMA; count its arena until then. */
    const int may_need_ema = c->ema_decay > 0 || c->resume;
    if (arenas_fit_in_memory(may_need_ema, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    /* One allocation per arena, once (docs/ABI.md). */
    T->state = arena_alloc(MPLC_STATE_FLOATS);
    T->step_io = arena_alloc(MPLC_STEP_IO_FLOATS);
    T->sup_io = arena_alloc(MPLC_SUPERVISED_IO_FLOATS);
    T->scratch = arena_alloc(MPLC_SCRATCH_FLOATS);
    T->ema = may_need_ema ? arena_alloc(MPLC_STATE_FLOATS) : NULL;
    T->img = xcalloc(2 * (size_t)MPLC_INPUT_SIZE, sizeof(float));
    T->eval_x = arena_alloc(EVAL_INPUT_FLOATS);
    T->eval_logits = arena_alloc((size_t)MPLC_EVAL_BATCH * MPLC_CLASSES);
    T->rs.phase = PHASE_MAIN;
    for (int i = 0; i < 2; i++) T->rs.acc_last[i] = T->rs.acc_before[i] = T->rs.acc_after[i] = -1;
    T->rs.acc_last_step = -1;
    T->rs.acc_ema_last = T->rs.acc_ema_before = T->rs.acc_ema_after = -1;
    T->rs.best_correct = -1;
    /* Everything that can fail on bad input happens before the run directory is touched. A resumed run locks
     * its directory before it reads the checkpoint (first for the run's data directory, then whole once the
     * data is loaded); a new run claims one after its last input check, so that bad input creates no directory. */
    /* 1 MiB: a model file is a few kilobytes; mplc has compiled this one already. */
    if (c->model_file &&
        read_regular_file(c->model_file, (size_t)1 << 20, "a model file", &T->model_source, &T->model_source_len, &e) != 0)
        die_err(&e, EXIT_BAD_INPUT);
    if (c->resume) {
        if (run_dir_claim(T, &e) != 0 || run_options_adopt(T, &e) != 0 || checkpoint_data_dir(T, &e) != 0 ||
            trainer_load_data(T, &e) != 0 || checkpoint_resume(T, &e) != 0)
            die_err(&e, EXIT_BAD_INPUT);
        /* Now that the run's mode is known: an extended run's --steps obeys the recipe like a new run's. */
        if (c->given_steps && check_steps_fit_recipe(c, &e) != 0) die_err(&e, EXIT_USAGE);
    } else {
        if (trainer_load_data(T, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
        init_state(T->state, c->seed);
        if (c->init_from && checkpoint_init_from(T, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    }
    mplc_set_threads(c->threads); /* given, or the run's (options.json) */
    if (c->ema_decay == 0) { /* disabled, possibly by the checkpoint */
        free(T->ema);
        T->ema = NULL;
    }
    if (trainer_pick_labeled(T, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    if (check_batches(T, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    if (T->rs.phase != PHASE_DONE && rank_leader()) warn_settings(c);
    if (!c->resume && run_dir_claim(T, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    /* Under MPI rank 0 alone writes the run's files; the other ranks have no metrics file (report.c skips it). */
    if (rank_leader() &&
        (metrics_open(T, c->resume ? T->rs.metrics_bytes : -1, &e) != 0 || run_dir_describe(T, &e) != 0))
        die_err(&e, EXIT_BAD_INPUT);
    T->n_labeled = (size_t)c->labels;
    order_init(&T->order_l, T->n_labeled, c->seed, RNG_ORDER_LABELED);
    order_init(&T->order_u, T->unl->n, c->seed, RNG_ORDER_UNLABELED);
    order_init(&T->order_sup, T->n_labeled, c->seed, RNG_ORDER_SUP);
    order_init(&T->order_ft, T->n_labeled, c->seed, RNG_ORDER_FT);
    T->aug = aug_spec(&T->data, c->flip, c->strong_magnitude);
    T->tty = isatty(STDERR_FILENO);
    T->start_global = T->rs.phase == PHASE_DONE ? c->steps + c->finetune_steps : global_step(T);
    if (c->stop_at > 0 && c->stop_at <= T->start_global && T->rs.phase != PHASE_DONE)
        die(EXIT_BAD_INPUT, "--stop-at %ld: the run is already at step %ld", c->stop_at, T->start_global);
}

static void teardown(Trainer *T) {
    close(T->lock_fd); /* every file of the run is written */
    order_free(&T->order_l);
    order_free(&T->order_u);
    order_free(&T->order_sup);
    order_free(&T->order_ft);
    free(T->labeled);
    free(T->model_source);
    free(T->state);
    free(T->step_io);
    free(T->sup_io);
    free(T->scratch);
    free(T->ema);
    free(T->img);
    free(T->eval_x);
    free(T->eval_logits);
    teacher_cache_free(&T->cache);
    dataset_free(&T->data);
    budget_return(T->val.planned);
    free(T->val.x);
    free(T->val_teacher_x);
    free(T->val.y);
    free(T);
}

int train_command(const TrainConfig *cfg) {
    Trainer *T = xcalloc(1, sizeof *T);
    T->cfg = *cfg;
    if (!rank_leader()) T->cfg.quiet = 1; /* rank 0 shows the progress of the whole job */
    setup(T);
    const TrainConfig *c = &T->cfg;
    if (!c->quiet)
        fprintf(stderr,
                "mplc-run: model %s, mode %s, seed %llu, %ld labels, %ld steps + %ld finetune; data %s (%zu train, "
                "%zu test); run dir %s%s\n",
                MPLC_MODEL_NAME, mode_name(c->mode), (unsigned long long)c->seed, c->labels, c->steps,
                c->finetune_steps, c->data_dir, T->data.train.n, T->data.test.n, c->out_dir,
                c->resume ? (T->rs.phase == PHASE_DONE ? " (already finished)" : " (resumed)") : "");
    if (!c->quiet && T->cache.rows)
        fprintf(stderr, "mplc-run: teacher cache %s: %zu rows, the large teacher's test accuracy %.2f%%\n",
                T->cache.path, T->cache.n_train + T->cache.n_test,
                T->cache.n_test ? 100.0 * (double)T->cache.test_correct / (double)T->cache.n_test : 0.0);
    T->t_start = now_seconds();
    rate_window_add(&T->rate, T->t_start, T->start_global);
    catch_stop_signals();
    if (T->rs.phase == PHASE_MAIN) {
        run_main_phase(T);
        start_finetune(T);
    }
    if (T->rs.phase == PHASE_FINETUNE) run_finetune_phase(T);
    /* Nothing is logged from here on; a signal from here on finds the run complete, and it writes its results. */
    metrics_close(T);
    if (rank_leader()) {
        Err e;
        if (summary_write(T, now_seconds() - T->t_start, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
        /* A teacher that reads predictions has no input at the grid's points, so no decision regions to draw. */
        if (strcmp(T->data.format, "moons") == 0 && !MPLC_TEACHER_READS_PREDICTIONS) write_boundary(T);
        print_result(T);
    }
    teardown(T);
    return 0;
}
