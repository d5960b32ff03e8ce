/* Replay mode: run mplc_step on batches prepared elsewhere (e.g. by the JAX reference), with no
 * shuffling, augmentation or schedules, and record every output. Layout in docs/RUNNER.md. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model.h"
#include "npy.h"
#include "ranks.h"
#include "safetensors.h"
#include "train.h"

#define IMG_FLOATS MPLC_INPUT_SIZE
#define NUM_CLASSES MPLC_CLASSES

static void load_npy(const char *dir, const char *name, NpyArray *a) {
    char path[PATH_CAP];
    Err e;
    if (path_join(path, sizeof path, &e, "%s/%s", dir, name) != 0 || npy_read(path, a, &e) != 0)
        die_err(&e, EXIT_BAD_INPUT);
}

static void need_f32(const char *dir, const char *name, const NpyArray *a, size_t count) {
    if (a->type != NPY_F4 || a->count != count) {
        char shape[128];
        npy_shape_str(a, shape, sizeof shape);
        die(EXIT_BAD_INPUT, "%s/%s: expected %zu float32 values ('<f4'), got %s %s", dir, name, count,
            npy_type_name(a->type), shape);
    }
}

/* The files hold the GLOBAL batch; with ranks, this rank takes its rows of each block of it (ranks.h): labeled
 * rows [r B_l/R, (r + 1) B_l/R), and the same slice of the unlabeled weak and strong views. Copies `width`
 * floats per row of the blocks of `blocks` global rows each into the rank's blocks. */
static void take_slices(float *dst, const float *src, size_t width, const size_t *global, const size_t *local,
                        int blocks) {
    for (int b = 0; b < blocks; b++) {
        memcpy(dst, src + (size_t)rank_id() * local[b] * width, local[b] * width * sizeof(float));
        dst += local[b] * width;
        src += global[b] * width;
    }
}

/* What one entry point reads from a step directory: x in `blocks` blocks of global rows (labeled; weak and strong
 * unlabeled views for mplc_step; the labeled batch for mplc_supervised_step), y of the first block's rows, the
 * scalars of scalars.npy in order, and the dropout masks of its input table. */
typedef struct {
    const char *entry;
    int blocks;
    size_t global[3], local[3];
    const mplc_tensor *x, *y;
    int n_scalars;
    const mplc_tensor *scalars[4];
    const TensorTable *inputs;
} Entry;

static void read_x(const char *dir, const Entry *en, float *io) {
    size_t rows = 0;
    for (int b = 0; b < en->blocks; b++) rows += en->global[b];
    NpyArray a;
    load_npy(dir, "x.npy", &a);
    int shape_ok = (a.ndim == 4 && a.shape[0] == rows && a.shape[1] == MPLC_INPUT_HEIGHT &&
                    a.shape[2] == MPLC_INPUT_WIDTH && a.shape[3] == MPLC_INPUT_CHANNELS) ||
                   (a.ndim == 2 && a.shape[0] == rows && a.shape[1] == IMG_FLOATS);
    if (!shape_ok) {
        char shape[128];
        npy_shape_str(&a, shape, sizeof shape);
        die(EXIT_BAD_INPUT, "%s/x.npy: shape %s, expected (%zu, %d, %d, %d) for %s of model %s", dir, shape, rows,
            MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS, en->entry, MPLC_MODEL_NAME);
    }
    need_f32(dir, "x.npy", &a, rows * IMG_FLOATS);
    take_slices(io + en->x->offset, a.data, IMG_FLOATS, en->global, en->local, en->blocks);
    npy_free(&a);
}

/* Labels: integers [rows] (int32, int64 or uint8), or float32 one-hot rows [rows, K] as the JAX reference may
 * write them, as one-hot rows into y. */
static void read_global_y(const char *dir, float *y, int rows) {
    NpyArray a;
    load_npy(dir, "y.npy", &a);
    if (a.type == NPY_F4 && a.ndim == 2 && a.shape[0] == (size_t)rows && a.shape[1] == NUM_CLASSES) {
        memcpy(y, a.data, sizeof(float) * rows * NUM_CLASSES);
        for (size_t i = 0; i < a.count; i++)
            if (!isfinite(y[i])) die(EXIT_BAD_INPUT, "%s/y.npy: element %zu is not finite", dir, i);
        npy_free(&a);
        return;
    }
    if (a.type == NPY_F4 || a.ndim != 1 || a.shape[0] != (size_t)rows) {
        char shape[128];
        npy_shape_str(&a, shape, sizeof shape);
        die(EXIT_BAD_INPUT, "%s/y.npy: expected %d integer labels, shape (%d,), or float32 one-hot rows (%d, %d); got %s %s",
            dir, rows, rows, rows, NUM_CLASSES, npy_type_name(a.type), shape);
    }
    memset(y, 0, sizeof(float) * rows * NUM_CLASSES);
    for (int i = 0; i < rows; i++) {
        long long c = npy_int_at(&a, (size_t)i);
        if (c < 0 || c >= NUM_CLASSES)
            die(EXIT_BAD_INPUT, "%s/y.npy: label %lld of row %d is outside [0, %d)", dir, c, i, NUM_CLASSES);
        y[(size_t)i * NUM_CLASSES + (size_t)c] = 1.0f;
    }
    npy_free(&a);
}

/* This rank's rows of y.npy. */
static void read_y(const char *dir, const Entry *en, float *io) {
    float *y = xmalloc(sizeof(float) * en->global[0] * NUM_CLASSES);
    read_global_y(dir, y, (int)en->global[0]);
    take_slices(io + en->y->offset, y, NUM_CLASSES, en->global, en->local, 1);
    free(y);
}

static void read_scalars(const char *dir, const Entry *en, float *io) {
    NpyArray a;
    load_npy(dir, "scalars.npy", &a);
    need_f32(dir, "scalars.npy", &a, (size_t)en->n_scalars);
    const float *v = a.data;
    for (int i = 0; i < en->n_scalars; i++) {
        if (!isfinite(v[i])) die(EXIT_BAD_INPUT, "%s/scalars.npy: value %d is not finite", dir, i);
        io[en->scalars[i]->offset] = v[i];
    }
    npy_free(&a);
}

/* "dropout/teacher/all/dense3" -> "dropout__teacher__all__dense3.npy" */
static void mask_file_name(const char *input, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = input; *p && n + 3 < cap; p++) {
        if (*p == '/') {
            out[n++] = '_';
            out[n++] = '_';
        } else {
            out[n++] = *p;
        }
    }
    snprintf(out + n, cap - n, ".npy");
}

static void read_masks(const char *dir, const TensorTable *inputs, float *io) {
    for (int i = 0; i < inputs->count; i++) {
        const mplc_tensor *t = &inputs->items[i];
        if (!starts_with(t->name, "dropout/")) continue;
        char name[512], path[PATH_CAP];
        mask_file_name(t->name, name, sizeof name);
        Err e;
        if (path_join(path, sizeof path, &e, "%s/%s", dir, name) != 0) die_err(&e, EXIT_BAD_INPUT);
        float *m = io + t->offset;
        if (!file_exists(path)) { /* no mask given: no dropout */
            for (size_t k = 0; k < t->count; k++) m[k] = 1.0f;
            continue;
        }
        /* A mask's rows follow the network's pass (which blocks of the batch it sees), so a global mask cannot be
         * sliced here; the ranks of a training run draw their own (batch.c). */
        if (MPLC_RANKS > 1)
            die(EXIT_BAD_INPUT, "%s: replay of a model compiled for %d ranks takes no dropout masks (a rank's rows "
                "of a global mask depend on the pass); leave the file out (no dropout)", path, MPLC_RANKS);
        NpyArray a;
        load_npy(dir, name, &a);
        need_f32(dir, name, &a, t->count);
        memcpy(m, a.data, t->count * sizeof(float));
        npy_free(&a);
    }
}

/* Reduced MPL: the cached distributions of the labeled and unlabeled images, float32 [B_l + B_u, K]. */
static void read_teacher_x(const char *dir, float *teacher_x) {
    const size_t rows = MPLC_BATCH_LABELED + MPLC_BATCH_UNLABELED;
    NpyArray a;
    load_npy(dir, "teacher_x.npy", &a);
    need_f32(dir, "teacher_x.npy", &a, rows * NUM_CLASSES);
    const float *v = a.data;
    for (size_t i = 0; i < a.count; i++)
        if (!isfinite(v[i])) die(EXIT_BAD_INPUT, "%s/teacher_x.npy: element %zu is not finite", dir, i);
    const size_t global[2] = {MPLC_BATCH_LABELED, MPLC_BATCH_UNLABELED},
                 local[2] = {MPLC_LOCAL_BATCH_LABELED, MPLC_LOCAL_BATCH_UNLABELED};
    take_slices(teacher_x, v, NUM_CLASSES, global, local, 2);
    npy_free(&a);
}

static void read_step(const char *dir, const Entry *en, const StepInputs *in, float *io) {
    read_x(dir, en, io);
    read_y(dir, en, io);
    read_scalars(dir, en, io);
    if (en->inputs == &TABLE_STEP_IN && in->uniform) {
        char path[PATH_CAP];
        Err e;
        if (path_join(path, sizeof path, &e, "%s/uniform.npy", dir) != 0) die_err(&e, EXIT_BAD_INPUT);
        if (!file_exists(path))
            die(EXIT_BAD_INPUT, "%s: missing (model %s samples hard pseudo labels and needs %d uniform draws)", path,
                MPLC_MODEL_NAME, MPLC_BATCH_UNLABELED);
        NpyArray a;
        load_npy(dir, "uniform.npy", &a);
        need_f32(dir, "uniform.npy", &a, MPLC_BATCH_UNLABELED);
        take_slices(io + in->uniform->offset, a.data, 1, en->global + 1, en->local + 1, 1);
        npy_free(&a);
    }
    if (en->inputs == &TABLE_STEP_IN && in->teacher_x) read_teacher_x(dir, io + in->teacher_x->offset);
    read_masks(dir, en->inputs, io);
}

int replay_command(const char *checkpoint, const char *batches, long steps, const char *out, const char *losses,
                   int supervised) {
    Err e;
    StepInputs in;
    SupInputs sup;
    if (locate_inputs(&in, &sup, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    const Entry step = {"mplc_step", 3,
                        {MPLC_BATCH_LABELED, MPLC_BATCH_UNLABELED, MPLC_BATCH_UNLABELED},
                        {MPLC_LOCAL_BATCH_LABELED, MPLC_LOCAL_BATCH_UNLABELED, MPLC_LOCAL_BATCH_UNLABELED},
                        in.x, in.y, 4, {in.lr_teacher, in.lr_student, in.uda_weight, in.feedback_scale},
                        &TABLE_STEP_IN},
                sup_step = {"mplc_supervised_step", 1, {MPLC_FINETUNE_BATCH, 0, 0}, {MPLC_LOCAL_FINETUNE_BATCH, 0, 0},
                            sup.x, sup.y, 1, {sup.lr, NULL, NULL, NULL}, &TABLE_SUP_IN};
    const Entry *en = supervised ? &sup_step : &step;
    const TensorTable *outs = supervised ? &TABLE_SUP_OUT : &TABLE_STEP_OUT;
    if (arenas_fit_in_memory(0, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *state = arena_alloc(MPLC_STATE_FLOATS);
    float *io = arena_alloc(supervised ? MPLC_SUPERVISED_IO_FLOATS : MPLC_STEP_IO_FLOATS);
    float *scratch = arena_alloc(MPLC_SCRATCH_FLOATS);
    if (st_load(checkpoint, state, NULL, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    /* Every rank replays its rows of the global batches; rank 0 writes the losses and the state (ranks.h). */
    FILE *lf = NULL;
    if (rank_leader() && !(lf = fopen(losses, "wb")))
        die(EXIT_BAD_INPUT, "%s: cannot create: %s", losses, strerror(errno));
    for (long i = 0; i < steps; i++) {
        char dir[PATH_CAP];
        if (path_join(dir, sizeof dir, &e, "%s/step_%06ld", batches, i) != 0) die_err(&e, EXIT_BAD_INPUT);
        read_step(dir, en, &in, io);
        /* scalars.npy holds the four scalars of the plain rule: no baseline (docs/RUNNER.md). */
        if (!supervised && in.feedback_baseline) io[in.feedback_baseline->offset] = 0.0f;
        if (supervised) mplc_supervised_step(state, io, scratch);
        else mplc_step(state, io, scratch);
        for (int k = 0; k < outs->count; k++) {
            const mplc_tensor *t = &outs->items[k];
            float v = io[t->offset];
            if (!isfinite(v))
                die(EXIT_NONFINITE, "replay step %ld (%s): output %s is %s; %s not written", i, dir, t->name,
                    isnan(v) ? "NaN" : "Inf", out);
        }
        if (!lf) continue;
        fprintf(lf, "{\"step\":%ld", i);
        for (int k = 0; k < outs->count; k++) {
            fputc(',', lf);
            json_write_string(lf, outs->items[k].name);
            fputc(':', lf);
            json_write_float(lf, io[outs->items[k].offset]);
        }
        fputs("}\n", lf);
    }
    if (lf && close_checked(lf, losses, 0, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    StMeta *meta = xmalloc(sizeof *meta);
    meta_clear(meta);
    meta_set(meta, "format", "mplc-run-replay/1");
    meta_set(meta, "model", "%s", MPLC_MODEL_NAME);
    meta_set(meta, "replay_steps", "%ld", steps);
    if (supervised) meta_set(meta, "replay_entry", "supervised");
    if (rank_leader() && st_save(out, state, meta, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    free(meta);
    free(state);
    free(io);
    free(scratch);
    return 0;
}
