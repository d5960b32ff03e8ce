/* The state of a training run, shared by the files that implement it:
 * train.c (the loop), batch.c (data order and batches), report.c (progress, metrics, summary),
 * checkpoint.c (save/resume), evaluate.c (test accuracy). */
#ifndef RUNNER_TRAINER_H
#define RUNNER_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "augment.h"
#include "dataset.h"
#include "mode.h"
#include "teacher_cache.h"
#include "tensors.h"

#define MAX_OUTPUTS 32

typedef struct {
    const char *data_dir;
    char out_dir[PATH_CAP];
    Mode mode;
    Objective objective; /* the teacher's objective and feedback (mode mpl and uda); main.c resolves them */
    Feedback feedback;
    uint64_t seed;
    long labels, steps, finetune_steps, eval_every, checkpoint_every;
    long stop_at; /* stop (after a checkpoint) once this many steps of main + finetune are done; 0 = never */
    double ema_decay; /* decay of the student's EMA (ema.h); 0 disables it */
    const char *teacher_cache; /* --teacher-cache (Reduced MPL, teacher_cache.h); NULL for an image teacher */
    const char *init_from;     /* --init-from: a new run starting from a checkpoint's parameters; NULL none */
    /* --model-file, --recipe (given by mplc train): the model file and its resolved recipe, copied into the run
     * directory as <model name>.swiftdsl and recipe.txt; NULL none */
    const char *model_file, *recipe;
    /* --pseudo-labels, --pseudo-labels-from and the --feedback text (given by mplc train): the recipe overrides the
     * runner was compiled with, recorded in options.json so that `mplc train --resume RUN_DIR` compiles the same
     * model again; NULL none. (--feedback is also the run-time choice `feedback` above, which main.c parses from
     * the same text.) */
    const char *pseudo_labels, *pseudo_labels_from, *feedback_text;
    /* --validation: labeled examples held out (class-balanced) for monitoring, best.safetensors and --patience
     * (evaluations without a better validation accuracy before the main phase stops); 0 none */
    long validation, patience;
    int threads, quiet, resume;
    int overwrite;   /* --overwrite: a new run replaces the run in out_dir */
    int default_out; /* out_dir is the default name (no --out): a new run takes the first free of it, -2, -3, ... */
    int flip; /* random horizontal flips: 1 on, 0 off, -1 auto (on for CIFAR-10), resolved once the data is loaded */
    int resize; /* --resize: image files of another size than the model's are resized, not refused */
    /* --strong-magnitude: the strong view's ops draw their magnitude from [0, strong_magnitude] (augment.h; 1 the full
     * ranges, the default) */
    double strong_magnitude;
    /* Which settings came from the command line: on --resume they must agree with the checkpoint. */
    int given_data, given_labels, given_steps, given_finetune, given_eval, given_checkpoint, given_ema_decay, given_flip;
    int given_validation, given_patience, given_mode, given_seed, given_threads, given_objective, given_feedback;
    int given_resize, given_strong_magnitude;
    /* The feedback variants (docs/RUNNER.md, "Feedback variants"), all off by default (the paper's rule):
     * --feedback-weight W multiplies the feedback part (1); --feedback-baseline D subtracts a moving average of h
     * with decay D from h (0: none); --feedback-normalise D divides the coefficient by a moving average of its
     * magnitude with decay D (0: none); --feedback-wait N gives the teacher no feedback before main-phase step N
     * (0: none). */
    double feedback_weight, feedback_baseline, feedback_normalise;
    long feedback_wait;
    int given_feedback_weight, given_feedback_baseline, given_feedback_normalise, given_feedback_wait;
} TrainConfig;

/* A seeded data order: epoch e of a set of n items is a Fisher-Yates permutation drawn from
 * (seed, stream, e), so position p of the endless stream is a pure function of p. */
typedef struct {
    size_t n;
    uint64_t seed;
    int stream;
    int have;
    uint64_t epoch;
    uint32_t *perm;
} Order;

#define HISTORY_MAX 8    /* extensions a run records (they fit one checkpoint metadata value) */
#define HISTORY_FIELDS 8

/* Everything about progress that a checkpoint must restore. */
typedef struct {
    Phase phase;
    long step;               /* steps completed in this phase */
    long acc_last[2];        /* correct test predictions of the last evaluation (teacher, student); -1 none */
    long acc_last_step;
    long acc_before[2];      /* after the main phase, before finetuning */
    long acc_after[2];       /* after finetuning */
    double sums[MAX_OUTPUTS]; /* sums of the step outputs since the last metrics line */
    long sum_n;
    double main_sums[MAX_OUTPUTS]; /* sums of the step outputs over the main phase, for summary.json */
    long metrics_bytes;      /* length of metrics.jsonl at this point */
    long ema_updates;        /* EMA updates so far (steps in which the student learned); 0: the EMA is empty */
    long acc_ema_last, acc_ema_before, acc_ema_after; /* correct predictions of the student's EMA; -1 none */
    /* With --validation: the student's best count of correct validation predictions (-1 none yet), the global
     * step it was reached at (best.safetensors holds that step), the validation evaluations since, and the main
     * phase's step where --patience stopped it (0: not stopped). */
    long best_correct, best_step, evals_since_best, stopped_at;
    /* The results a run had before each extension past its main phase (--resume --steps N), oldest first: its steps
     * and finetuning steps, then the correct test predictions before and after finetuning (teacher, student), of
     * the EMA before and after (-1: none). */
    long history[HISTORY_MAX][HISTORY_FIELDS];
    int n_history;
    /* The feedback variants' moving averages, updated in the steps where the student learns: fb_mean of h
     * (--feedback-baseline), fb_abs of |h - baseline| (--feedback-normalise) and fb_updates, its count (for the
     * bias correction of an average that starts at 0). */
    double fb_mean, fb_abs;
    long fb_updates;
} RunState;

/* The recent step rate, for the ETA: a few (time, global step) samples at least a second apart, so that a slow
 * start (or a resume's loading) weighs only until it leaves the window, not for the whole run. */
#define RATE_WINDOW 8
typedef struct {
    double t[RATE_WINDOW];
    long step[RATE_WINDOW];
    int n, next; /* samples held; the slot the next one replaces (the oldest, once the window is full) */
} RateWindow;

/* One field of the progress line: fields of one group are joined by a space, groups by " | "; a narrow
 * terminal drops the fields with the largest priority first (the later one among equals). */
typedef struct {
    const char *text;
    int group, priority;
} ProgressField;

typedef struct {
    TrainConfig cfg;
    Dataset data;
    uint32_t *labeled; /* indices into data.train of the labeled subset */
    size_t n_labeled;
    const DataSplit *unl; /* the unlabeled images: data.unlabeled when the data has them apart, else data.train */
    AugSpec aug;
    float *state, *step_io, *sup_io, *scratch;
    float *ema;        /* the student's EMA, laid out like state (ema.h); NULL when cfg.ema_decay is 0 */
    TeacherCache cache; /* Reduced MPL: the large teacher's distributions (rows NULL for an image teacher) */
    float *img;        /* augmentation scratch: 2 x MPLC_INPUT_SIZE */
    float *eval_x, *eval_logits;
    Order order_l, order_u, order_sup, order_ft;
    StepInputs in;
    SupInputs sup;
    RunState rs;
    FILE *metrics;
    int lock_fd; /* the run directory's lock (rundir.c), held until every file of the run is written */
    char metrics_path[PATH_CAP], ckpt_path[PATH_CAP], summary_path[PATH_CAP], best_path[PATH_CAP];
    DataSplit val; /* --validation: the held-out labeled examples (n 0: none) */
    float *val_teacher_x; /* Reduced MPL: the cached rows of val's images (val.n x MPLC_CLASSES); else NULL */
    char init_from[PATH_CAP]; /* the --init-from file the run started from ("" none), kept in its checkpoints */
    char data_dir[PATH_CAP];  /* the data directory as the checkpoint records it (absolute when it is a path) */
    unsigned char *model_source; /* cfg.model_file's bytes, read before the run directory is touched */
    size_t model_source_len;
    char cache_path[PATH_CAP]; /* the teacher cache, absolute (as given, or as the run records it) */
    char opt_pseudo_labels[64], opt_pseudo_labels_from[64], opt_feedback[64]; /* --resume: options.json's overrides */
    int tty;
    double t_start, last_draw;
    RateWindow rate; /* since this process started (a resume's earlier steps do not count) */
    long start_global; /* global step (main + finetune) when this process started */
    /* values of the schedules at the last step, for the metrics lines */
    double lr_teacher, lr_student, uda_weight;
    double feedback_scale, feedback_baseline; /* the step inputs of the last step (feedback variants) */
    const mplc_tensor *out_h;                 /* the step output h, which the feedback variants follow */
} Trainer;

/* rundir.c: writes RUN_DIR/<model name>.swiftdsl and RUN_DIR/recipe.txt (atomically) when mplc train gave them,
 * and RUN_DIR/options.json. */
int run_dir_describe(Trainer *T, Err *e);

/* options.c: RUN_DIR/options.json, the run's resolved options. run_options_write writes it (atomically);
 * run_options_adopt, on --resume, takes every option the command did not give from it, and refuses a given one
 * that differs unless it may change on resume. A run without the file (an older mplc-run) adopts nothing. */
int run_options_write(const Trainer *T, Err *e);
int run_options_adopt(Trainer *T, Err *e);

/* train.c: the augmentation of a data set (shift by format, flips as resolved, the strong view's magnitude). */
AugSpec aug_spec(const Dataset *d, int flip, double magnitude);

/* train.c: loads cfg.data_dir (and the teacher cache), resolves --flip auto and sets data_dir. */
int trainer_load_data(Trainer *T, Err *e);
/* The labeled set and, with --validation, the validation set held out of the labeled examples (after
 * trainer_load_data: with a teacher cache, val_teacher_x holds the validation images' cached rows). */
int trainer_pick_labeled(Trainer *T, Err *e);

/* batch.c */
void order_init(Order *o, size_t n, uint64_t seed, int stream);
void order_free(Order *o);
uint32_t order_at(Order *o, uint64_t pos);
/* Fills the mplc_step arena for step t of the main phase (x, y, uniform, dropout, scalars). */
/* 1 if a feedback variant is on (train.c), i.e. not the paper's rule. */
int feedback_variant(const TrainConfig *c);
/* Step t's feedback_scale and feedback_baseline from the variants' averages (train.c). */
void feedback_inputs(const Trainer *T, long t, double *scale, double *baseline);
/* After a step in which the student learned: the averages take the step's output h (io: the step's I/O arena). */
void feedback_follow(Trainer *T, const float *io);
/* feedback: the step's feedback_scale; baseline: its feedback_baseline (0 unless --feedback-baseline). */
void batch_fill_step(Trainer *T, long t, double lr_teacher, double lr_student, double uda_weight, double feedback,
                     double baseline);
/* The random streams of a labeled stream (rng.h): per step, and per row and per rank with ranks. */
typedef struct {
    int augment, dropout, augment_row, dropout_rank;
} SupStreams;
/* Fills the mplc_supervised_step arena with step t of a labeled stream (baseline or finetuning). */
void batch_fill_supervised(Trainer *T, long t, Order *o, const SupStreams *s, double lr);

/* evaluate.c: correct[0] teacher, correct[1] student, over the whole test set; correct[2] the student
 * with the weights of the ema arena, or -1 when ema is NULL. teacher_x: for a teacher that reads
 * predictions (Reduced MPL), the cached rows of the test images (test->n x K), its inputs; else NULL.
 * x holds EVAL_INPUT_FLOATS. confusion: NULL, or 3 x K x K counts (teacher, student, EMA; row: true class,
 * column: predicted), filled for the networks evaluated. */
void evaluate(const float *state, const float *ema, const DataSplit *test, const float *teacher_x, float *x,
              float *logits, float *scratch, long correct[3], long *confusion);

/* report.c */
int metrics_open(Trainer *T, long keep_bytes, Err *e);
/* metrics_sync flushes and fsyncs metrics.jsonl (before a checkpoint counts its lines), metrics_close closes it;
 * like every metrics line, they stop the run with exit 1 if a write failed. */
void metrics_sync(Trainer *T);
void metrics_close(Trainer *T);
void metrics_log(Trainer *T, const TensorTable *outs);
void metrics_eval(Trainer *T);
/* correct: teacher, student, EMA (-1: none) on the validation set */
void metrics_eval_validation(Trainer *T, const long correct[3]);
void progress_draw(Trainer *T, const TensorTable *outs, long phase_total, int final_line);
/* Adds the sample (t, step) unless the newest one is less than a second old. */
void rate_window_add(RateWindow *w, double t, long step);
/* Steps per second from the window's oldest sample to (t, step); 0 when there is no such span. */
double rate_window_rate(const RateWindow *w, double t, long step);
/* Writes the fields that fit in width columns (width <= 0: all) into out, in their order; the most important
 * field alone is cut to the width. Returns the length written. */
size_t progress_layout(char *out, size_t cap, const ProgressField *fields, int n, int width);
int summary_write(Trainer *T, double wall, Err *e);
void print_result(const Trainer *T);

/* rundir.c: claims cfg.out_dir for this run and sets the paths of its files. It locks the directory (exit 1 at
 * once if another run uses it) and checks that it is writable. A resumed run needs the directory to exist; a
 * new one creates it and refuses one that holds another run (checkpoint, metrics.jsonl, summary.json...) unless
 * --overwrite, which removes that run's files; without --out it takes the first free of the default name, -2,
 * -3, ... instead. */
int run_dir_claim(Trainer *T, Err *e);

/* checkpoint.c */
/* The value of key in a recipe "k=v;k=v;..." (MPLC_RECIPE), or NULL; *len is its length. */
const char *recipe_value(const char *recipe, const char *key, size_t key_len, size_t *len);
void checkpoint_save(Trainer *T); /* exits 3 if the state is not finite, 1 on I/O errors */
void checkpoint_save_to(Trainer *T, const char *path); /* the same, to path (best.safetensors) */
/* Refuses a checkpoint of a runner built from another model or recipe (MPLC_MODEL_HASH), saying which
 * recipe settings differ, and every stored value outside what the run can have reached. The data is loaded. */
int checkpoint_resume(Trainer *T, Err *e);
/* Before the data is loaded: the run's data directory (metadata "data") becomes cfg.data_dir, unless the
 * checkpoint has none (an older one: cfg.data_dir stays); a --data that resolves elsewhere is refused; so does
 * its "resize" become cfg.resize (a --resize given to a run without it is refused). Without
 * --teacher-cache, a Reduced MPL run's cache (metadata "teacher_cache") becomes cfg.teacher_cache. */
int checkpoint_data_dir(Trainer *T, Err *e);
/* --init-from: teacher/ and student/ tensors from cfg.init_from, by name and shape; the rest as init_state. */
int checkpoint_init_from(Trainer *T, Err *e);
/* "batch_labeled 32 -> 64, teacher_lr 0.05 -> 0.1": the settings of two recipes "k=v;..." that differ, into
 * out (empty if none; "(none)" for a key only one has). */
void recipe_diff(const char *was, const char *now, char *out, size_t cap);

#endif
