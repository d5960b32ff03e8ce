/* Reduced MPL: writing the large teacher's cache (`mplc-run cache`) and reading it back (--teacher-cache).
 * Layout and checks in teacher_cache.h and docs/RUNNER.md. */
#include "teacher_cache.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "npy.h"
#include "safetensors.h"
#include "train.h"
#include "trainer.h"

#define K MPLC_CLASSES

/* ---- reading */

static int check_shape(const NpyArray *a, const char *path, const Dataset *d, Err *e) {
    size_t want = d->train.n + d->test.n;
    char shape[128];
    npy_shape_str(a, shape, sizeof shape);
    if (a->type != NPY_F4)
        return err_set(e, "%s: dtype '%s', expected '<f4' (float32 class distributions)", path, npy_type_name(a->type));
    if (a->ndim != 2 || a->shape[0] != want || a->shape[1] != (size_t)K)
        return err_set(e,
                       "%s: shape %s, expected (%zu, %d): one row per image of the data set (%zu training, then %zu "
                       "test) and one column per class of model %s",
                       path, shape, want, K, d->train.n, d->test.n, MPLC_MODEL_NAME);
    return 0;
}

/* Why a row of K floats is not a class distribution (the reason, written into why[cap]), or NULL if it is one. */
static const char *row_problem(const float *row, char *why, size_t cap) {
    double sum = 0;
    for (int k = 0; k < K; k++) {
        if (!isfinite(row[k])) {
            snprintf(why, cap, "element %d is %s", k, isnan(row[k]) ? "NaN" : "Inf");
            return why;
        }
        if (row[k] < 0) {
            snprintf(why, cap, "element %d is negative (%g)", k, (double)row[k]);
            return why;
        }
        sum += row[k];
    }
    if (fabs(sum - 1) > TEACHER_CACHE_SUM_TOLERANCE) {
        snprintf(why, cap, "it sums to %.6g, not 1 (tolerance %g)", sum, TEACHER_CACHE_SUM_TOLERANCE);
        return why;
    }
    return NULL;
}

static int check_rows(const float *rows, size_t n_train, size_t n_test, const char *path, Err *e) {
    char why[128];
    for (size_t r = 0; r < n_train + n_test; r++) {
        if (!row_problem(rows + r * K, why, sizeof why)) continue;
        return err_set(e, "%s: row %zu (%s image %zu) is not a class distribution: %s", path, r,
                       r < n_train ? "training" : "test", r < n_train ? r : r - n_train, why);
    }
    return 0;
}

static int argmax(const float *z) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

long teacher_cache_correct(const float *rows, const DataSplit *s) {
    long correct = 0;
    for (size_t i = 0; i < s->n; i++) correct += argmax(rows + i * K) == s->y[i];
    return correct;
}

int teacher_cache_load(const char *path, const Dataset *d, TeacherCache *c, Err *e) {
    memset(c, 0, sizeof *c);
    NpyArray a;
    if (npy_read(path, &a, e) != 0) return -1;
    if (check_shape(&a, path, d, e) != 0 || check_rows(a.data, d->train.n, d->test.n, path, e) != 0) {
        npy_free(&a);
        return -1;
    }
    c->path = path;
    c->rows = a.data; /* the cache owns the array from here */
    c->n_train = d->train.n;
    c->n_test = d->test.n;
    c->hash = fnv1a64(c->rows, a.count * sizeof(float));
    c->test_correct = teacher_cache_correct(teacher_cache_test_rows(c), &d->test);
    return 0;
}

void teacher_cache_free(TeacherCache *c) {
    free(c->rows);
    c->rows = NULL;
}

const float *teacher_cache_train_row(const TeacherCache *c, size_t i) { return c->rows + i * K; }
const float *teacher_cache_test_rows(const TeacherCache *c) { return c->rows + c->n_train * K; }

/* ---- writing (mplc-run cache) */

/* Softmax in double with the maximum subtracted, so large logits neither overflow nor lose the row's sum. */
static void softmax_row(const float *z, float *p) {
    double m = z[0], sum = 0, ex[K];
    for (int k = 1; k < K; k++) m = z[k] > m ? z[k] : m;
    for (int k = 0; k < K; k++) sum += ex[k] = exp((double)z[k] - m);
    for (int k = 0; k < K; k++) p[k] = (float)(ex[k] / sum);
}

/* The teacher's class distribution of every image of s into out (s->n rows), in evaluation chunks padded
 * like evaluate()'s. A teacher whose logits are not finite stops the command: such a cache would be
 * refused by every run that reads it. */
static void teacher_distributions(const float *state, const DataSplit *s, const char *what, float *x, float *logits,
                                  float *scratch, float *out) {
    const size_t B = MPLC_EVAL_BATCH, D = MPLC_INPUT_SIZE;
    for (size_t start = 0; start < s->n; start += B) {
        size_t rows = s->n - start < B ? s->n - start : B;
        memcpy(x, s->x + start * D, rows * D * sizeof(float));
        memset(x + rows * D, 0, (B - rows) * D * sizeof(float));
        mplc_predict_teacher(state, x, logits, scratch);
        for (size_t i = 0; i < rows; i++) {
            for (int k = 0; k < K; k++)
                if (!isfinite(logits[i * K + (size_t)k]))
                    die(EXIT_NONFINITE, "the teacher's logits of %s image %zu are not finite; no cache written", what,
                        start + i);
            softmax_row(logits + i * K, out + (start + i) * K);
        }
    }
}

/* npy_write replaces the file atomically, like checkpoints: a crash leaves the previous cache or the complete
 * new one, never a partial file under the final name. */
static int write_cache(const char *path, const float *rows, size_t n, Err *e) {
    char dir[PATH_CAP];
    const size_t shape[2] = {n, K};
    dir_of(path, dir, sizeof dir);
    if (make_dirs(dir, e) != 0) return -1;
    return npy_write(path, NPY_F4, 2, shape, rows, e);
}

int cache_command(const char *checkpoint, const char *out, const char *data_dir) {
    Err e;
    StepInputs in;
    SupInputs sup;
    Dataset data;
    if (locate_inputs(&in, &sup, &e) != 0 || arenas_fit_in_memory(0, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *state = arena_alloc(MPLC_STATE_FLOATS);
    StMeta *meta = xmalloc(sizeof *meta);
    if (st_load(checkpoint, state, meta, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    const int resize = checkpoint_resizes(meta);
    free(meta);
    if (dataset_load(data_dir, 1, resize, &data, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    const size_t n = data.train.n + data.test.n;
    float *rows = xcalloc(n, sizeof(float) * K); /* calloc checks n x K for overflow */
    float *scratch = arena_alloc(MPLC_SCRATCH_FLOATS), *x = arena_alloc(EVAL_INPUT_FLOATS),
          *logits = arena_alloc((size_t)MPLC_EVAL_BATCH * K);
    teacher_distributions(state, &data.train, "training", x, logits, scratch, rows);
    teacher_distributions(state, &data.test, "test", x, logits, scratch, rows + data.train.n * K);
    long correct = teacher_cache_correct(rows + data.train.n * K, &data.test);
    if (write_cache(out, rows, n, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    printf("mplc-run cache: wrote %s: float32 [%zu, %d], the class distributions of the teacher of %s (model %s) for "
           "the %zu training then %zu test images of %s; its test accuracy %.2f%%\n",
           out, n, K, checkpoint, MPLC_MODEL_NAME, data.train.n, data.test.n, data_dir,
           data.test.n ? 100.0 * (double)correct / (double)data.test.n : 0.0);
    free(state);
    free(rows);
    free(scratch);
    free(x);
    free(logits);
    dataset_free(&data);
    return 0;
}
