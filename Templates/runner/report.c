/* What a run tells the user: the progress line on stderr, metrics.jsonl, summary.json, the result on stdout. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "model.h"
#include "trainer.h"

static long global_step(const Trainer *T) {
    if (T->rs.phase == PHASE_MAIN) return T->rs.step;
    if (T->rs.phase == PHASE_FINETUNE) return T->cfg.steps + T->rs.step;
    return T->cfg.steps + T->cfg.finetune_steps;
}

static double accuracy(long correct, size_t n) { return n ? (double)correct / (double)n : 0.0; }

/* A resumed run (keep_bytes >= 0) appends after the lines its checkpoint counts; a new run creates the file (its
 * run directory holds no other run: run_dir_claim). Never through a symlink, so a link planted at metrics.jsonl
 * cannot make the run write into another file. */
int metrics_open(Trainer *T, long keep_bytes, Err *e) {
    const char *path = T->metrics_path;
    if (keep_bytes < 0) {
        T->metrics = create_exclusive(path, e);
        if (!T->metrics) return -1;
        T->rs.metrics_bytes = 0;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(e, "%s: cannot open for writing: %s", path, open_error(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file", path);
    }
    /* O_NOFOLLOW stops symlinks, not hard links: a second name for the file (planted, or another run's) would
     * let this run truncate and append to a file that is not only its own. */
    if (st.st_nlink != 1) {
        close(fd);
        return err_set(e, "%s: has %ld names (hard links); a run writes only a file of its own", path,
                       (long)st.st_nlink);
    }
    /* Drop the lines written after the checkpoint, so that the file ends up as if the run had never been
     * interrupted. */
    if (st.st_size < keep_bytes)
        fprintf(stderr, "mplc-run: warning: %s is shorter (%lld bytes) than at the checkpoint (%ld bytes)\n", path,
                (long long)st.st_size, keep_bytes);
    else if (ftruncate(fd, keep_bytes) != 0) {
        close(fd);
        return err_set(e, "%s: cannot truncate: %s", path, strerror(errno));
    }
    T->metrics = fdopen(fd, "ab");
    if (!T->metrics) {
        close(fd);
        return err_set(e, "%s: cannot open for writing: %s", path, strerror(errno));
    }
    fseek(T->metrics, 0, SEEK_END);
    T->rs.metrics_bytes = ftell(T->metrics);
    return 0;
}

/* A metrics line that cannot be written stops the run: a checkpoint would count lines that are not there. */
static void metrics_failed(const Trainer *T, const Err *e) {
    die(EXIT_BAD_INPUT, "%s; stopping the run (the last checkpoint, if any, stays in %s)", e->msg, T->ckpt_path);
}

void metrics_sync(Trainer *T) {
    Err e;
    if (T->metrics && flush_checked(T->metrics, T->metrics_path, 1, &e) != 0) metrics_failed(T, &e);
}

void metrics_close(Trainer *T) {
    Err e;
    if (T->metrics && close_checked(T->metrics, T->metrics_path, 0, &e) != 0) metrics_failed(T, &e);
    T->metrics = NULL;
}

/* Every line ends with the wall-clock time it was written, UTC to the millisecond ("time":"2026-12-05T17:30:00.123Z",
 * always 24 characters), so that curves can be drawn against time and runs dated; the last key, so that a
 * comparison of two runs' lines can drop it with one pattern (same_metrics in Tests/runner/run_tests.sh). */
static void metrics_end_line(Trainer *T) {
    struct timespec ts = {0, 0};
    struct tm utc;
    char stamp[32] = "1970-01-01T00:00:00";
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &utc))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    fprintf(T->metrics, ",\"time\":\"%s.%03ldZ\"}\n", stamp, ts.tv_nsec / 1000000);
    Err e;
    if (flush_checked(T->metrics, T->metrics_path, 0, &e) != 0) metrics_failed(T, &e);
    T->rs.metrics_bytes = ftell(T->metrics);
}

static void metrics_begin(Trainer *T) {
    fputs("{\"phase\":", T->metrics);
    json_write_string(T->metrics, phase_name(T->cfg.mode, T->rs.phase));
    fprintf(T->metrics, ",\"step\":%ld,\"global_step\":%ld", T->rs.step, global_step(T));
}

/* Without a metrics file (ranks other than 0, ranks.h) nothing is written and the sums still restart. */
void metrics_log(Trainer *T, const TensorTable *outs) {
    if (T->rs.sum_n == 0) return;
    if (!T->metrics) {
        T->rs.sum_n = 0;
        memset(T->rs.sums, 0, sizeof T->rs.sums);
        return;
    }
    metrics_begin(T);
    fprintf(T->metrics, ",\"mean_over_steps\":%ld", T->rs.sum_n);
    for (int i = 0; i < outs->count; i++) {
        fputc(',', T->metrics);
        json_write_string(T->metrics, outs->items[i].name);
        fputc(':', T->metrics);
        json_write_float(T->metrics, (float)(T->rs.sums[i] / (double)T->rs.sum_n));
    }
    if (T->rs.phase == PHASE_MAIN && T->cfg.mode != MODE_SUPERVISED) {
        fputs(",\"lr_teacher\":", T->metrics);
        json_write_float(T->metrics, (float)T->lr_teacher);
        fputs(",\"lr_student\":", T->metrics);
        json_write_float(T->metrics, (float)T->lr_student);
        fputs(",\"uda_weight\":", T->metrics);
        json_write_float(T->metrics, (float)T->uda_weight);
        if (feedback_variant(&T->cfg) && T->cfg.feedback != FEEDBACK_OFF) { /* the last step's, as the rates */
            fputs(",\"feedback_scale\":", T->metrics);
            json_write_float(T->metrics, (float)T->feedback_scale);
            fputs(",\"feedback_baseline\":", T->metrics);
            json_write_float(T->metrics, (float)T->feedback_baseline);
        }
    } else {
        fputs(",\"lr\":", T->metrics);
        json_write_float(T->metrics, (float)T->lr_student);
    }
    metrics_end_line(T);
    T->rs.sum_n = 0;
    memset(T->rs.sums, 0, sizeof T->rs.sums);
}

void metrics_eval(Trainer *T) {
    if (!T->metrics) return;
    metrics_begin(T);
    fprintf(T->metrics, ",\"eval\":\"test\",\"test_examples\":%zu,\"acc_teacher\":", T->data.test.n);
    json_write_double(T->metrics, accuracy(T->rs.acc_last[0], T->data.test.n));
    fputs(",\"acc_student\":", T->metrics);
    json_write_double(T->metrics, accuracy(T->rs.acc_last[1], T->data.test.n));
    if (T->rs.acc_ema_last >= 0) { /* absent while the EMA is empty or disabled */
        fputs(",\"acc_student_ema\":", T->metrics);
        json_write_double(T->metrics, accuracy(T->rs.acc_ema_last, T->data.test.n));
    }
    metrics_end_line(T);
}

void metrics_eval_validation(Trainer *T, const long correct[3]) {
    const size_t n = T->val.n;
    if (!T->metrics) return;
    metrics_begin(T);
    fprintf(T->metrics, ",\"eval\":\"validation\",\"validation_examples\":%zu,\"acc_teacher\":", n);
    json_write_double(T->metrics, accuracy(correct[0], n));
    fputs(",\"acc_student\":", T->metrics);
    json_write_double(T->metrics, accuracy(correct[1], n));
    if (correct[2] >= 0) {
        fputs(",\"acc_student_ema\":", T->metrics);
        json_write_double(T->metrics, accuracy(correct[2], n));
    }
    metrics_end_line(T);
}

static void format_duration(double s, char *out, size_t cap) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

void rate_window_add(RateWindow *w, double t, long step) {
    if (w->n && t - w->t[(w->next + RATE_WINDOW - 1) % RATE_WINDOW] < 1.0) return;
    w->t[w->next] = t;
    w->step[w->next] = step;
    w->next = (w->next + 1) % RATE_WINDOW;
    if (w->n < RATE_WINDOW) w->n++;
}

double rate_window_rate(const RateWindow *w, double t, long step) {
    if (!w->n) return 0;
    int oldest = w->n < RATE_WINDOW ? 0 : w->next;
    double dt = t - w->t[oldest];
    return dt > 0 && step > w->step[oldest] ? (double)(step - w->step[oldest]) / dt : 0;
}

size_t progress_layout(char *out, size_t cap, const ProgressField *fields, int n, int width) {
    if (!cap) return 0;
    int keep[64], count = n < 64 ? n : 64; /* progress_draw gives at most MAX_OUTPUTS + 6 */
    for (int i = 0; i < count; i++) keep[i] = 1;
    for (;;) { /* the line's length with the kept fields; drop the least important until it fits */
        int len = 0, prev = -1, drop = -1;
        for (int i = 0; i < count; i++) {
            if (!keep[i]) continue;
            if (prev >= 0) len += fields[i].group == fields[prev].group ? 1 : 3;
            len += (int)strlen(fields[i].text);
            prev = i;
            if (i > 0 && (drop < 0 || fields[i].priority >= fields[drop].priority)) drop = i;
        }
        if (width <= 0 || len <= width || drop < 0) break;
        keep[drop] = 0;
    }
    size_t m = 0;
    int prev = -1;
    for (int i = 0; i < count && m < cap - 1; i++) {
        if (!keep[i]) continue;
        const char *sep = prev < 0 ? "" : fields[i].group == fields[prev].group ? " " : " | ";
        int w = snprintf(out + m, cap - m, "%s%s", sep, fields[i].text);
        m = w < 0 ? m : m + (size_t)w < cap ? m + (size_t)w : cap - 1;
        prev = i;
    }
    out[m] = 0;
    if (width > 0 && m > (size_t)width) out[m = (size_t)width] = 0; /* the first field alone is wider */
    return m;
}

/* The columns of the terminal on stderr, less one (writing the last column makes some terminals wrap, and \r
 * would then redraw only the second half); 0 (no limit) when it is not a terminal or does not say. */
static int terminal_width(const Trainer *T) {
    struct winsize ws;
    if (!T->tty || ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col < 2) return 0;
    return ws.ws_col - 1;
}

void progress_draw(Trainer *T, const TensorTable *outs, long phase_total, int final_line) {
    if (T->cfg.quiet) return;
    double now = now_seconds();
    if (T->tty && !final_line && now - T->last_draw < 0.1) return;
    T->last_draw = now;
    /* Most important first: where the run is, how far and how long still, the last test, the step outputs. */
    enum { P_STEP, P_PERCENT, P_ETA, P_TEST, P_ELAPSED, P_RATE, P_OUTPUT };
    ProgressField f[MAX_OUTPUTS + 8];
    char text[MAX_OUTPUTS + 8][96];
    int n = 0;
#define FIELD(group, priority, ...) \
    (snprintf(text[n], sizeof text[n], __VA_ARGS__), f[n] = (ProgressField){text[n], group, priority}, n++)
    FIELD(0, P_STEP, "[%s] %ld/%ld", phase_name(T->cfg.mode, T->rs.phase), T->rs.step, phase_total);
    /* The gradient norms stay in metrics.jsonl: the line keeps what reads at a glance (h, the cosine, h > 0), and
     * the teacher's gradient part by part in one field, the first to go when the line is too wide. */
    static const char *const PARTS[3] = {"teacher_grad_sup_norm", "teacher_grad_uda_norm", "teacher_grad_feedback_norm"};
    int part[3] = {-1, -1, -1};
    for (int i = 0; i < outs->count && T->rs.sum_n > 0; i++) {
        if (!strstr(outs->items[i].name, "_norm"))
            FIELD(0, P_OUTPUT, "%s %.4g", outs->items[i].name, T->rs.sums[i] / (double)T->rs.sum_n);
        for (int k = 0; k < 3; k++)
            if (strcmp(outs->items[i].name, PARTS[k]) == 0) part[k] = i;
    }
    if (part[0] >= 0 && part[1] >= 0 && part[2] >= 0)
        FIELD(0, P_OUTPUT, "|g_T| sup %.2g uda %.2g fb %.2g", T->rs.sums[part[0]] / (double)T->rs.sum_n,
              T->rs.sums[part[1]] / (double)T->rs.sum_n, T->rs.sums[part[2]] / (double)T->rs.sum_n);
    if (T->rs.acc_last[0] >= 0) {
        char ema[32] = "";
        if (T->rs.acc_ema_last >= 0)
            snprintf(ema, sizeof ema, " EMA %.2f%%", 100 * accuracy(T->rs.acc_ema_last, T->data.test.n));
        FIELD(1, P_TEST, "test@%ld T %.2f%% S %.2f%%%s", T->rs.acc_last_step,
              100 * accuracy(T->rs.acc_last[0], T->data.test.n), 100 * accuracy(T->rs.acc_last[1], T->data.test.n),
              ema);
    }
    long total = T->cfg.steps + T->cfg.finetune_steps, at = global_step(T);
    FIELD(2, P_PERCENT, "%.0f%%", total > 0 ? 100.0 * (double)at / (double)total : 100.0);
    rate_window_add(&T->rate, now, at);
    double rate = rate_window_rate(&T->rate, now, at);
    char clock[32];
    if (rate > 0) {
        format_duration((double)(total - at) / rate, clock, sizeof clock);
        FIELD(2, P_ETA, "ETA %s", clock);
    }
    format_duration(now - T->t_start, clock, sizeof clock);
    FIELD(2, P_ELAPSED, "elapsed %s", clock);
    if (rate > 0) FIELD(2, P_RATE, "%.1f steps/s", rate);
#undef FIELD
    char line[4096];
    progress_layout(line, sizeof line, f, n, terminal_width(T));
    if (T->tty) {
        fprintf(stderr, "\r%s\033[K%s", line, final_line ? "\n" : "");
        stderr_line_open = !final_line;
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

/* The recipe and shapes model.h was compiled with. The run's own steps, seed, finetune steps and EMA decay (the
 * summary's top-level keys) may differ: command-line flags override MPLC_STEPS and the others. */
static void write_compiled_recipe(FILE *fp) {
#define NUM(m) fprintf(fp, "    \"%s\": ", #m), json_write_double(fp, (double)(m)), fputs(",\n", fp)
    NUM(MPLC_STEPS); NUM(MPLC_SEED); NUM(MPLC_STUDENT_WAIT_STEPS);
    NUM(MPLC_TEACHER_LR); NUM(MPLC_TEACHER_MOMENTUM); NUM(MPLC_TEACHER_NESTEROV); NUM(MPLC_TEACHER_WEIGHT_DECAY);
    NUM(MPLC_TEACHER_WARMUP_STEPS); NUM(MPLC_TEACHER_COSINE);
    NUM(MPLC_STUDENT_LR); NUM(MPLC_STUDENT_MOMENTUM); NUM(MPLC_STUDENT_NESTEROV); NUM(MPLC_STUDENT_WEIGHT_DECAY);
    NUM(MPLC_STUDENT_WARMUP_STEPS); NUM(MPLC_STUDENT_COSINE);
    NUM(MPLC_UDA_WEIGHT); NUM(MPLC_UDA_RAMP_STEPS); NUM(MPLC_FINETUNE_STEPS); NUM(MPLC_FINETUNE_LR);
    NUM(MPLC_EMA_DECAY); NUM(MPLC_INIT_UNIFORM); NUM(MPLC_INIT_BOUND);
    NUM(MPLC_INPUT_HEIGHT); NUM(MPLC_INPUT_WIDTH); NUM(MPLC_INPUT_CHANNELS); NUM(MPLC_CLASSES);
    NUM(MPLC_BATCH_LABELED); NUM(MPLC_BATCH_UNLABELED); NUM(MPLC_EVAL_BATCH); NUM(MPLC_FINETUNE_BATCH);
#undef NUM
    fputs("    \"MPLC_PSEUDO_LABELS\": ", fp);
    json_write_string(fp, MPLC_PSEUDO_LABELS);
    fputs(",\n    \"MPLC_FEEDBACK\": ", fp);
    json_write_string(fp, MPLC_FEEDBACK);
    fputs(",\n    \"MPLC_TEACHER_OBJECTIVE\": ", fp);
    json_write_string(fp, MPLC_TEACHER_OBJECTIVE);
    fputs("\n", fp);
}

/* The unlabeled images the run drew from; the classes and the normalisation when the data defines them (image
 * folders): what a user of the trained student needs to prepare its inputs and name its outputs. */
static void write_data_facts(const Trainer *T, FILE *fp) {
    fprintf(fp, ",\n  \"unlabeled_examples\": %zu", T->unl->n);
    char classes[DATASET_CLASS_NAMES_MAX + 8];
    dataset_classes_json(&T->data, classes, sizeof classes);
    if (classes[0]) fprintf(fp, ",\n  \"classes\": %s", classes);
    if (!T->data.norm_mean) return;
    const float *v[2] = {T->data.norm_mean, T->data.norm_std};
    for (int k = 0; k < 2; k++) {
        fputs(k ? "], \"std\": [" : ",\n  \"normalization\": {\"mean\": [", fp);
        for (int c = 0; c < MPLC_INPUT_CHANNELS; c++) {
            if (c) fputs(", ", fp);
            json_write_float(fp, v[k][c]);
        }
    }
    fputs("]}", fp);
}

int summary_write(Trainer *T, double wall, Err *e) {
    AtomicFile out;
    if (atomic_create(&out, T->summary_path, e) != 0) return -1;
    FILE *fp = out.fp;
    size_t n = T->data.test.n;
    const size_t state = sizeof(float) * (size_t)MPLC_STATE_FLOATS, step_io = sizeof(float) * (size_t)MPLC_STEP_IO_FLOATS,
                 sup_io = sizeof(float) * (size_t)MPLC_SUPERVISED_IO_FLOATS,
                 scratch = sizeof(float) * (size_t)MPLC_SCRATCH_FLOATS;
    fputs("{\n  \"model\": ", fp);
    json_write_string(fp, MPLC_MODEL_NAME);
    fprintf(fp, ",\n  \"mode\": \"%s\",\n  \"seed\": %llu,\n  \"labels\": %ld,\n  \"steps\": %ld,\n"
                "  \"finetune_steps\": %ld,\n  \"test_examples\": %zu,\n",
            mode_name(T->cfg.mode), (unsigned long long)T->cfg.seed, T->cfg.labels, T->cfg.steps,
            T->cfg.finetune_steps, n);
    if (T->cfg.mode != MODE_SUPERVISED)
        fprintf(fp, "  \"teacher_objective\": \"%s\",\n  \"feedback\": \"%s\",\n", objective_name(T->cfg.objective),
                feedback_name(T->cfg.feedback));
    if (T->cfg.mode == MODE_MPL && feedback_variant(&T->cfg)) { /* only then: the paper's rule writes what it did */
        fputs("  \"feedback_variant\": {\"weight\": ", fp);
        json_write_double(fp, T->cfg.feedback_weight);
        fputs(", \"baseline_decay\": ", fp);
        json_write_double(fp, T->cfg.feedback_baseline);
        fputs(", \"normalise_decay\": ", fp);
        json_write_double(fp, T->cfg.feedback_normalise);
        fprintf(fp, ", \"wait\": %ld, \"baseline\": ", T->cfg.feedback_wait);
        json_write_double(fp, T->rs.fb_mean);
        fputs("},\n", fp);
    }
    fputs("  \"data\": ", fp);
    json_write_string(fp, T->cfg.data_dir);
    fprintf(fp, ",\n  \"data_format\": \"%s\",\n  \"flip\": %s", T->data.format, T->cfg.flip ? "true" : "false");
    fputs(",\n  \"strong_magnitude\": ", fp);
    json_write_double(fp, T->cfg.strong_magnitude);
    write_data_facts(T, fp);
    fputs(",\n  \"model_hash\": ", fp); /* which compiled model and recipe trained (checkpoint.c compares it) */
    json_write_string(fp, MPLC_MODEL_HASH);
    if (T->init_from[0]) { /* --init-from: the run did not start from scratch */
        fputs(",\n  \"init_from\": ", fp);
        json_write_string(fp, T->init_from);
    }
    if (T->cache.rows) { /* Reduced MPL: the cache and the large teacher's own test accuracy, for comparison */
        fputs(",\n  \"teacher_cache\": {\"path\": ", fp);
        json_write_string(fp, T->cache.path);
        fprintf(fp, ", \"rows\": %zu, \"large_teacher_test_accuracy\": ", T->cache.n_train + T->cache.n_test);
        json_write_double(fp, accuracy(T->cache.test_correct, T->cache.n_test));
        fputs("}", fp);
    }
    const char *keys[6] = {"teacher_before_finetune", "student_before_finetune", "teacher_after_finetune",
                           "student_after_finetune", "student_ema_before_finetune", "student_ema_after_finetune"};
    const long vals[6] = {T->rs.acc_before[0], T->rs.acc_before[1], T->rs.acc_after[0],
                          T->rs.acc_after[1], T->rs.acc_ema_before, T->rs.acc_ema_after};
    fputs(",\n  \"test_accuracy\": {\n", fp);
    for (int i = 0; i < 6; i++) {
        fprintf(fp, "    \"%s\": ", keys[i]);
        if (i >= 4 && vals[i] < 0) fputs("null", fp); /* the EMA was disabled or empty at that point */
        else json_write_double(fp, accuracy(vals[i], n));
        fputs(i < 5 ? ",\n" : "\n", fp);
    }
    fputs("  },\n  \"history\": [", fp); /* the results before each extension (--resume --steps N), oldest first */
    for (int i = 0; i < T->rs.n_history; i++) {
        const long *h = T->rs.history[i];
        fprintf(fp, "%s\n    {\"steps\": %ld, \"finetune_steps\": %ld, \"test_accuracy\": {", i ? "," : "", h[0], h[1]);
        for (int k = 0; k < 6; k++) {
            fprintf(fp, "%s\"%s\": ", k ? ", " : "", keys[k]);
            if (h[k + 2] < 0) fputs("null", fp);
            else json_write_double(fp, accuracy(h[k + 2], n));
        }
        fputs("}}", fp);
    }
    fputs(T->rs.n_history ? "\n  ],\n  \"validation\": " : "],\n  \"validation\": ", fp);
    if (T->val.n == 0) {
        fputs("null", fp);
    } else { /* the student's best validation accuracy, where best.safetensors holds it, and any early stop */
        fprintf(fp, "{\"examples\": %zu, \"patience\": %ld, \"best_step\": %ld, \"best_acc_student\": ", T->val.n,
                T->cfg.patience, T->rs.best_step);
        json_write_double(fp, accuracy(T->rs.best_correct, T->val.n));
        fputs(", \"stopped_at_step\": ", fp);
        if (T->rs.stopped_at) fprintf(fp, "%ld}", T->rs.stopped_at);
        else fputs("null}", fp);
    }
    fputs(",\n  \"ema\": {\"decay\": ", fp);
    json_write_double(fp, T->cfg.ema_decay);
    fprintf(fp, ", \"updates\": %ld}", T->rs.ema_updates);
    fprintf(fp, ",\n  \"wall_seconds\": %.3f,\n  \"resumed_from_step\": %ld,\n  \"threads\": %d,\n", wall,
            T->start_global, T->cfg.threads);
    fprintf(fp, "  \"arena_bytes\": {\"state\": %zu, \"step_io\": %zu, \"supervised_io\": %zu, \"scratch\": %zu, "
                "\"total\": %zu},\n",
            state, step_io, sup_io, scratch, state + step_io + sup_io + scratch);
    if (T->cfg.mode != MODE_SUPERVISED && T->cfg.steps > 0) {
        /* Means of the step outputs over the main phase: of h_positive, the fraction of steps with h > 0. */
        fputs("  \"main_phase_means\": {", fp);
        for (int i = 0; i < TABLE_STEP_OUT.count; i++) {
            fprintf(fp, "%s\"%s\": ", i ? ", " : "", TABLE_STEP_OUT.items[i].name);
            json_write_double(fp, T->rs.main_sums[i] / (double)T->cfg.steps);
        }
        fputs("},\n", fp);
    }
    fputs("  \"compiled_recipe\": {\n", fp);
    write_compiled_recipe(fp);
    fputs("  }\n}\n", fp);
    return atomic_commit(&out, e);
}

void print_result(const Trainer *T) {
    size_t n = T->data.test.n;
    char ema[96] = "";
    if (T->rs.acc_ema_after >= 0 && T->rs.acc_ema_before >= 0)
        snprintf(ema, sizeof ema, ", student EMA %.2f%% (before finetuning %.2f%%)", 100 * accuracy(T->rs.acc_ema_after, n),
                 100 * accuracy(T->rs.acc_ema_before, n));
    else if (T->rs.acc_ema_after >= 0)
        snprintf(ema, sizeof ema, ", student EMA %.2f%%", 100 * accuracy(T->rs.acc_ema_after, n));
    printf("%s %s seed %llu, %ld labels, %ld steps + %ld finetune: student %.2f%% (before finetuning %.2f%%)%s, "
           "teacher %.2f%% on %zu test images; %s\n",
           MPLC_MODEL_NAME, mode_name(T->cfg.mode), (unsigned long long)T->cfg.seed, T->cfg.labels, T->cfg.steps,
           T->cfg.finetune_steps, 100 * accuracy(T->rs.acc_after[1], n), 100 * accuracy(T->rs.acc_before[1], n), ema,
           100 * accuracy(T->rs.acc_after[0], n), n, T->summary_path);
}
