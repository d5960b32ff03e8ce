/* RUN_DIR/options.json: the options a run was started with, resolved (defaults filled in, paths absolute), so
 * that `--resume` needs nothing but the run directory (docs/RUNNER.md, "Run directory").
 *
 * The file is written atomically with the run's other files and rewritten on every resume. It is untrusted
 * input when read back: every key is checked for its type and for the range its flag accepts, an unknown key
 * or a malformed file is an error naming the file. Settings the checkpoint records too (labels, steps, ...) are
 * checked against the checkpoint afterwards, as a flag given on the command line would be. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "json.h"
#include "model.h"
#include "trainer.h"

#define OPTIONS_FORMAT "mplc-run-options/1"
#define OPTIONS_MAX_BYTES (64 * 1024)
/* What a resume may change; every other option given again must have the run's value. */
#define MAY_CHANGE "only --threads, --steps (to extend the run), --teacher-cache (the same rows), --quiet and --stop-at " \
                   "may change on --resume"

static int options_path(const Trainer *T, char *out, size_t cap, Err *e) {
    return path_join(out, cap, e, "%s/options.json", T->cfg.out_dir);
}

static void write_long(FILE *fp, const char *key, long v) { fprintf(fp, ",\n  \"%s\": %ld", key, v); }

static void write_string(FILE *fp, const char *key, const char *v) {
    fprintf(fp, ",\n  \"%s\": ", key);
    if (v) json_write_string(fp, v);
    else fputs("null", fp);
}

int run_options_write(const Trainer *T, Err *e) {
    const TrainConfig *c = &T->cfg;
    char path[PATH_CAP];
    AtomicFile out;
    if (options_path(T, path, sizeof path, e) != 0 || atomic_create(&out, path, e) != 0) return -1;
    FILE *fp = out.fp;
    fprintf(fp, "{\n  \"format\": \"" OPTIONS_FORMAT "\"");
    write_string(fp, "model", MPLC_MODEL_NAME);
    write_string(fp, "data", T->data_dir);
    write_string(fp, "mode", mode_name(c->mode));
    fprintf(fp, ",\n  \"seed\": %" PRIu64, c->seed);
    write_long(fp, "labels", c->labels);
    write_long(fp, "steps", c->steps);
    write_long(fp, "finetune_steps", c->finetune_steps);
    write_long(fp, "eval_every", c->eval_every);
    write_long(fp, "checkpoint_every", c->checkpoint_every);
    write_long(fp, "validation", c->validation);
    write_long(fp, "patience", c->patience);
    write_long(fp, "threads", c->threads);
    fprintf(fp, ",\n  \"ema_decay\": ");
    json_write_double(fp, c->ema_decay);
    write_string(fp, "flip", c->flip ? "yes" : "no");
    fprintf(fp, ",\n  \"strong_magnitude\": ");
    json_write_double(fp, c->strong_magnitude);
    write_string(fp, "resize", c->resize ? "yes" : "no");
    write_string(fp, "teacher_cache", T->cache.rows ? T->cache.path : NULL);
    write_string(fp, "init_from", T->init_from[0] ? T->init_from : NULL);
    write_string(fp, "pseudo_labels", c->pseudo_labels);
    write_string(fp, "pseudo_labels_from", c->pseudo_labels_from);
    write_string(fp, "feedback", c->feedback_text);
    fprintf(fp, ",\n  \"feedback_weight\": ");
    json_write_double(fp, c->feedback_weight);
    fprintf(fp, ",\n  \"feedback_baseline\": ");
    json_write_double(fp, c->feedback_baseline);
    fprintf(fp, ",\n  \"feedback_normalise\": ");
    json_write_double(fp, c->feedback_normalise);
    fprintf(fp, ",\n  \"feedback_wait\": %ld", c->feedback_wait);
    fprintf(fp, "\n}\n");
    return atomic_commit(&out, e);
}

/* ---- reading it back ---- */

typedef struct {
    const char *path;
    const JsonValue *root;
} Reader;

/* The member key, which must have the given type (NULL when it is absent, or null where allowed). */
static int member(const Reader *r, const char *key, JsonType type, int nullable, const JsonValue **out, Err *e) {
    const JsonValue *v = json_get(r->root, key);
    *out = NULL;
    if (!v || (nullable && v->type == JSON_NULL)) return 0;
    if (v->type != type)
        return err_set(e, "%s: \"%s\" is not a %s", r->path, key,
                       type == JSON_STRING ? "string" : nullable ? "string or null" : "number");
    *out = v;
    return 0;
}

/* An integer option: the recorded value unless the command gave one; a given one that differs is refused unless
 * the option may change on resume. */
static int adopt_long(const Reader *r, const char *key, const char *flag, int given, int may_change, long lo, long hi,
                      long *value, Err *e) {
    const JsonValue *v;
    if (member(r, key, JSON_NUMBER, 0, &v, e) != 0) return -1;
    if (!v) return 0;
    if (!v->is_uint || v->uint > (uint64_t)hi || (long)v->uint < lo)
        return err_set(e, "%s: \"%s\" is not an integer in [%ld, %ld]", r->path, key, lo, hi);
    const long stored = (long)v->uint;
    if (given && !may_change && stored != *value)
        return err_set(e, "%s: the run was started with %s %ld, but this command says %s %ld (drop the flag, or start "
                          "a new run; " MAY_CHANGE ")",
                       r->path, flag, stored, flag, *value);
    if (!given) *value = stored;
    return 0;
}

/* A string option, copied into buf when the command gave none; a given one that differs is refused. */
static int adopt_string(const Reader *r, const char *key, const char *flag, const char *given, char *buf, size_t cap,
                        const char **value, Err *e) {
    const JsonValue *v;
    if (member(r, key, JSON_STRING, 1, &v, e) != 0) return -1;
    if (!v) return 0;
    if (given && strcmp(given, v->string) != 0)
        return err_set(e, "%s: the run was started with %s %s, but this command says %s %s (drop the flag, or start "
                          "a new run; " MAY_CHANGE ")",
                       r->path, flag, v->string, flag, given);
    if (given) return 0;
    if (path_join(buf, cap, e, "%s", v->string) != 0) return err_set(e, "%s: \"%s\" is too long", r->path, key);
    *value = buf;
    return 0;
}

/* One of a few names ("mpl", "uda", ...): its index in names, into *value unless given (then it must agree). */
static int adopt_choice(const Reader *r, const char *key, const char *flag, const char *const *names, int n,
                        const char *given_name, int *value, Err *e) {
    const JsonValue *v;
    if (member(r, key, JSON_STRING, 0, &v, e) != 0) return -1;
    if (!v) return 0;
    int k = 0;
    while (k < n && strcmp(names[k], v->string) != 0) k++;
    if (k == n) return err_set(e, "%s: \"%s\" is '%.40s', not one of the values %s accepts", r->path, key, v->string, flag);
    if (given_name && strcmp(given_name, names[k]) != 0)
        return err_set(e, "%s: the run was started with %s %s, but this command says %s %s (drop the flag, or start "
                          "a new run; " MAY_CHANGE ")",
                       r->path, flag, names[k], flag, given_name);
    if (!given_name) *value = k;
    return 0;
}

static const char *const KEYS[] = {"format",   "model",      "data",       "mode",          "seed",
                                   "labels",   "steps",      "finetune_steps", "eval_every", "checkpoint_every",
                                   "validation", "patience", "threads",    "ema_decay",     "flip",
                                   "teacher_cache", "init_from", "pseudo_labels", "pseudo_labels_from", "feedback", "resize",
                                   "feedback_weight", "feedback_baseline", "feedback_normalise", "feedback_wait",
                                   "strong_magnitude"};

/* The ranges of main.c's number options: the feedback weight, a decay (the EMA's; a feedback variant's, 0 for
 * none), the strong view's magnitude. */
static int is_weight(double x) { return x > 0; }
static int is_decay(double x) { return x >= 0 && x < 1; }
static int is_magnitude(double x) { return x >= 0 && x <= 1; }

/* A number option: in its range (`in_range`, named by `range`), and the value a flag given again says. */
static int adopt_number(const Reader *r, const char *key, const char *flag, int given, int (*in_range)(double),
                        const char *range, double *value, Err *e) {
    const JsonValue *v;
    if (member(r, key, JSON_NUMBER, 0, &v, e) != 0) return -1;
    if (!v) return 0;
    if (!in_range(v->number)) return err_set(e, "%s: \"%s\" is not %s", r->path, key, range);
    if (given && v->number != *value)
        return err_set(e, "%s: the run was started with %s %.17g, but this command says %s %.17g (drop the flag, or "
                          "start a new run; " MAY_CHANGE ")",
                       r->path, flag, v->number, flag, *value);
    *value = v->number;
    return 0;
}

static int adopt_all(Trainer *T, const Reader *r, Err *e) {
    TrainConfig *c = &T->cfg;
    const JsonValue *root = r->root, *v;
    for (size_t i = 0; i < root->len; i++) {
        size_t k = 0;
        while (k < sizeof KEYS / sizeof KEYS[0] && strcmp(KEYS[k], root->keys[i]) != 0) k++;
        if (k == sizeof KEYS / sizeof KEYS[0])
            return err_set(e, "%s: \"%.40s\" is not an option of mplc-run", r->path, root->keys[i]);
    }
    if (member(r, "format", JSON_STRING, 0, &v, e) != 0) return -1;
    if (!v || strcmp(v->string, OPTIONS_FORMAT) != 0)
        return err_set(e, "%s: not the options of an mplc-run run (\"format\" is not %s)", r->path, OPTIONS_FORMAT);
    if (member(r, "model", JSON_STRING, 0, &v, e) != 0) return -1;
    if (!v || strcmp(v->string, MPLC_MODEL_NAME) != 0)
        return err_set(e, "%s: the run is of model %.64s, this runner is built for %s", r->path,
                       v ? v->string : "(none)", MPLC_MODEL_NAME);
    /* The data directory: a --data given again must resolve to the recorded one (the same folder by a symlink). */
    if (member(r, "data", JSON_STRING, 0, &v, e) != 0) return -1;
    if (v && c->given_data) {
        char now[PATH_CAP];
        if (resolve_path(c->data_dir, now, sizeof now, e) != 0) return -1;
        if (strcmp(now, v->string) != 0)
            return err_set(e, "%s: the run was started with --data %s, but this command says --data %s (drop the "
                              "flag, or start a new run; " MAY_CHANGE ")",
                           r->path, v->string, c->data_dir);
    } else if (v) {
        if (!v->string[0] || path_join(T->data_dir, sizeof T->data_dir, e, "%s", v->string) != 0)
            return err_set(e, "%s: \"data\" is empty or too long", r->path);
        c->data_dir = T->data_dir;
    }
    static const char *const modes[] = {"mpl", "uda", "supervised"};
    static const Mode mode_of[] = {MODE_MPL, MODE_UDA, MODE_SUPERVISED};
    int mode = 0;
    while (mode_of[mode] != c->mode) mode++;
    if (adopt_choice(r, "mode", "--mode", modes, 3, c->given_mode ? modes[mode] : NULL, &mode, e) != 0) return -1;
    c->mode = mode_of[mode];
    if (member(r, "seed", JSON_NUMBER, 0, &v, e) != 0) return -1;
    if (v && !v->is_uint) return err_set(e, "%s: \"seed\" is not a non-negative integer", r->path);
    if (v && c->given_seed && v->uint != c->seed)
        return err_set(e, "%s: the run was started with --seed %" PRIu64 ", but this command says --seed %" PRIu64
                          " (drop the flag, or start a new run; " MAY_CHANGE ")",
                       r->path, v->uint, c->seed);
    if (v) c->seed = v->uint;
    long threads = c->threads;
    if (adopt_long(r, "labels", "--labels", c->given_labels, 0, 1, LONG_MAX, &c->labels, e) ||
        adopt_long(r, "steps", "--steps", c->given_steps, 1, 1, LONG_MAX, &c->steps, e) ||
        adopt_long(r, "finetune_steps", "--finetune-steps", c->given_finetune, 0, 0, LONG_MAX, &c->finetune_steps, e) ||
        adopt_long(r, "eval_every", "--eval-every", c->given_eval, 0, 1, LONG_MAX, &c->eval_every, e) ||
        adopt_long(r, "checkpoint_every", "--checkpoint-every", c->given_checkpoint, 0, 1, LONG_MAX,
                   &c->checkpoint_every, e) ||
        adopt_long(r, "validation", "--validation", c->given_validation, 0, 0, LONG_MAX, &c->validation, e) ||
        adopt_long(r, "patience", "--patience", c->given_patience, 0, 0, LONG_MAX, &c->patience, e) ||
        adopt_long(r, "threads", "--threads", c->given_threads, 1, 1, 1024, &threads, e))
        return -1;
    c->threads = (int)threads;
    const char *const decay = "a number D with 0 <= D < 1";
    if (adopt_number(r, "ema_decay", "--ema-decay", c->given_ema_decay, is_decay, decay, &c->ema_decay, e) ||
        adopt_number(r, "strong_magnitude", "--strong-magnitude", c->given_strong_magnitude, is_magnitude,
                     "a number M with 0 <= M <= 1", &c->strong_magnitude, e) ||
        adopt_number(r, "feedback_weight", "--feedback-weight", c->given_feedback_weight, is_weight, "a number W > 0",
                     &c->feedback_weight, e) ||
        adopt_number(r, "feedback_baseline", "--feedback-baseline", c->given_feedback_baseline, is_decay, decay,
                     &c->feedback_baseline, e) ||
        adopt_number(r, "feedback_normalise", "--feedback-normalise", c->given_feedback_normalise, is_decay, decay,
                     &c->feedback_normalise, e) ||
        adopt_long(r, "feedback_wait", "--feedback-wait", c->given_feedback_wait, 0, 0, LONG_MAX, &c->feedback_wait, e))
        return -1;
    static const char *const flips[] = {"no", "yes", "auto"};
    int flip = c->flip < 0 ? 2 : c->flip;
    if (adopt_choice(r, "flip", "--flip", flips, 2, c->given_flip ? flips[flip] : NULL, &flip, e) != 0) return -1;
    c->flip = flip == 2 ? -1 : flip;
    /* --resize is a switch: not given, the run's setting; given, the run must have had it. */
    if (member(r, "resize", JSON_STRING, 0, &v, e) != 0) return -1;
    if (v && strcmp(v->string, "yes") != 0 && strcmp(v->string, "no") != 0)
        return err_set(e, "%s: \"resize\" is '%.40s', not yes or no", r->path, v->string);
    if (v && c->given_resize && v->string[0] == 'n')
        return err_set(e, "%s: the run was started without --resize, but this command says --resize (drop the flag, "
                          "or start a new run; " MAY_CHANGE ")",
                       r->path);
    if (v) c->resize = v->string[0] == 'y';
    /* A --teacher-cache given again may name another file: the checkpoint checks that its rows are the run's. */
    if (member(r, "teacher_cache", JSON_STRING, 1, &v, e) != 0) return -1;
    if (v && !c->teacher_cache) {
        if (!v->string[0] || path_join(T->cache_path, sizeof T->cache_path, e, "%s", v->string) != 0)
            return err_set(e, "%s: \"teacher_cache\" is empty or too long", r->path);
        c->teacher_cache = T->cache_path;
    }
    /* init_from: the checkpoint carries it; here for people (and --init-from is refused with --resume). */
    if (member(r, "init_from", JSON_STRING, 1, &v, e) != 0) return -1;
    return adopt_string(r, "pseudo_labels", "--pseudo-labels", c->pseudo_labels, T->opt_pseudo_labels,
                        sizeof T->opt_pseudo_labels, &c->pseudo_labels, e) ||
                   adopt_string(r, "pseudo_labels_from", "--pseudo-labels-from", c->pseudo_labels_from,
                                T->opt_pseudo_labels_from, sizeof T->opt_pseudo_labels_from, &c->pseudo_labels_from, e) ||
                   adopt_string(r, "feedback", "--feedback", c->feedback_text, T->opt_feedback, sizeof T->opt_feedback,
                                &c->feedback_text, e)
               ? -1
               : 0;
}

int run_options_adopt(Trainer *T, Err *e) {
    char path[PATH_CAP];
    if (options_path(T, path, sizeof path, e) != 0) return -1;
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) return 0; /* a run of an older mplc-run: the checkpoint's settings */
    unsigned char *text;
    size_t len;
    if (read_regular_file(path, OPTIONS_MAX_BYTES, "the run's options", &text, &len, e) != 0) return -1;
    JsonValue root;
    Err why;
    int rc;
    if (json_parse((const char *)text, len, &root, &why) != 0) {
        rc = err_set(e, "%s: not valid JSON: %s", path, why.msg);
    } else {
        Reader r = {path, &root};
        rc = root.type != JSON_OBJECT ? err_set(e, "%s: not a JSON object", path) : adopt_all(T, &r, e);
        json_free(&root);
    }
    free(text);
    return rc;
}
