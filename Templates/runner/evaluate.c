#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model.h"
#include "ranks.h"
#include "safetensors.h"
#include "train.h"
#include "trainer.h"

static int argmax(const float *z) {
    int best = 0;
    for (int k = 1; k < MPLC_CLASSES; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* net 0: the teacher of state; 1: the student of state; 2: the student of the EMA arena (its student/
 * regions hold the average, which is all mplc_predict_student reads). */
static void predict(int net, const float *state, const float *ema, const float *x, float *logits, float *scratch) {
    if (net == 0) mplc_predict_teacher(state, x, logits, scratch);
    else mplc_predict_student(net == 1 ? state : ema, x, logits, scratch);
}

/* Rows [start, start + rows) of src (rows of width floats) into x, the rest of the chunk zero: the last
 * chunk is padded and its padded rows ignored. */
static void load_chunk(float *x, const float *src, size_t width, size_t start, size_t rows) {
    memcpy(x, src + start * width, rows * width * sizeof(float));
    memset(x + rows * width, 0, (MPLC_EVAL_BATCH - rows) * width * sizeof(float));
}

/* Adds the chunk's predictions to one network's confusion matrix (row: true class, column: predicted) and
 * its count of correct ones. */
static void count_correct(const float *logits, const DataSplit *test, size_t start, size_t rows, long *correct,
                          long *confusion) {
    for (size_t i = 0; i < rows; i++) {
        int predicted = argmax(logits + i * MPLC_CLASSES), truth = test->y[start + i];
        if (predicted == truth) (*correct)++;
        if (confusion) confusion[truth * MPLC_CLASSES + predicted]++;
    }
}

void evaluate(const float *state, const float *ema, const DataSplit *test, const float *teacher_x, float *x,
              float *logits, float *scratch, long correct[3], long *confusion) {
    const size_t B = MPLC_EVAL_BATCH, D = MPLC_INPUT_SIZE, K2 = (size_t)MPLC_CLASSES * MPLC_CLASSES;
    const int nets = ema ? 3 : 2;
    correct[0] = correct[1] = 0;
    correct[2] = ema ? 0 : -1;
    if (confusion) memset(confusion, 0, 3 * K2 * sizeof *confusion);
    /* Sharded over the ranks: rank r takes chunks r, r + R, r + 2R, ...; the counts are summed below. */
    const size_t first = (size_t)rank_id() * B, stride = (size_t)rank_count() * B;
    for (size_t start = first; start < test->n; start += stride) {
        size_t rows = test->n - start < B ? test->n - start : B;
        if (teacher_x) { /* Reduced MPL: the teacher reads the cached distributions of these images */
            load_chunk(x, teacher_x, MPLC_CLASSES, start, rows);
            predict(0, state, ema, x, logits, scratch);
            count_correct(logits, test, start, rows, &correct[0], confusion);
        }
        load_chunk(x, test->x, D, start, rows);
        for (int net = teacher_x ? 1 : 0; net < nets; net++) {
            predict(net, state, ema, x, logits, scratch);
            count_correct(logits, test, start, rows, &correct[net], confusion ? confusion + net * K2 : NULL);
        }
    }
    if (rank_count() > 1) {
        ranks_sum_longs(correct, (size_t)nets);
        if (confusion) ranks_sum_longs(confusion, 3 * K2);
    }
}

static void print_accuracy(const char *key, long correct, size_t n) {
    printf(",\"%s\":", key);
    json_write_double(stdout, (double)correct / (double)n);
}

/* "confusion_<net>": [[...], ...], row i the test images of class i, column j those predicted as j. */
static void print_confusion(const char *net, const long *confusion) {
    printf(",\"confusion_%s\":[", net);
    for (int i = 0; i < MPLC_CLASSES; i++) {
        printf("%s[", i ? "," : "");
        for (int j = 0; j < MPLC_CLASSES; j++) printf("%s%ld", j ? "," : "", confusion[i * MPLC_CLASSES + j]);
        printf("]");
    }
    printf("]");
}

/* eval's JSON line (rank 0 alone prints it under MPI). */
static void print_eval(const char *checkpoint, const Dataset *d, int has_ema, const long correct[3],
                       const long *confusion) {
    const DataSplit *test = &d->test;
    printf("{\"model\":");
    json_write_string(stdout, MPLC_MODEL_NAME);
    printf(",\"checkpoint\":");
    json_write_string(stdout, checkpoint);
    printf(",\"test_examples\":%zu,\"correct_teacher\":%ld,\"correct_student\":%ld", test->n, correct[0],
           correct[1]);
    if (has_ema) printf(",\"correct_student_ema\":%ld", correct[2]);
    print_accuracy("acc_teacher", correct[0], test->n);
    print_accuracy("acc_student", correct[1], test->n);
    if (has_ema) print_accuracy("acc_student_ema", correct[2], test->n);
    printf(",\"classes\":%d", MPLC_CLASSES);
    print_confusion("teacher", confusion);
    print_confusion("student", confusion + (size_t)MPLC_CLASSES * MPLC_CLASSES);
    if (has_ema) print_confusion("student_ema", confusion + 2 * (size_t)MPLC_CLASSES * MPLC_CLASSES);
    printf("}\n");
}

/* An image-folder run trained on inputs normalised with its training images' statistics, which eval computes again
 * from DIR's labeled/ and unlabeled/ images (its test/ images without them): data other than the run's would feed
 * the networks inputs normalised otherwise, a silently wrong accuracy. Refused unless the statistics are the ones
 * the checkpoint records (a checkpoint without them: a run on data of fixed statistics, or an older one). */
static int same_normalisation(const StMeta *m, const char *checkpoint, const Dataset *d, const char *dir, Err *e) {
    const char *mean = meta_get(m, "norm_mean"), *std = meta_get(m, "norm_std");
    char now_mean[DATASET_NORM_TEXT], now_std[DATASET_NORM_TEXT];
    dataset_norm_text(d, now_mean, now_std);
    if (!mean || (strcmp(mean, now_mean) == 0 && std && strcmp(std, now_std) == 0)) return 0;
    if (!now_mean[0])
        return err_set(e,
                       "%s: %s data has fixed statistics, but %s was trained on image folders normalised with "
                       "mean %.64s, std %.64s: give the run's data directory",
                       dir, d->format, checkpoint, mean, std ? std : "(none)");
    return err_set(e,
                   "%s: its training images give the normalisation mean %s, std %s, but %s was trained with "
                   "mean %.64s, std %.64s; eval normalises as in training: give the run's data directory (the same "
                   "labeled/ and unlabeled/ images beside test/)",
                   dir, now_mean, now_std, checkpoint, mean, std ? std : "(none)");
}

/* eval of a Reduced MPL model: the cache is checked against the whole data set, so the training set is
 * loaded too (only its size is used). */
int eval_command(const char *checkpoint, const char *data_dir, const char *teacher_cache) {
    Err e;
    StepInputs in;
    SupInputs sup;
    Dataset data;
    TeacherCache cache = {0};
    if (locate_inputs(&in, &sup, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    if (arenas_fit_in_memory(1, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *state = arena_alloc(MPLC_STATE_FLOATS), *ema = arena_alloc(MPLC_STATE_FLOATS);
    int has_ema = 0;
    StMeta *meta = xmalloc(sizeof *meta);
    if (st_load_ema(checkpoint, state, ema, &has_ema, meta, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    /* An EMA with no update yet (the student was still waiting) holds zeros, not a model: leave it out. */
    const char *updates = meta_get(meta, "ema_updates");
    if (updates && strcmp(updates, "0") == 0) has_ema = 0;
    if (dataset_load(data_dir, teacher_cache != NULL, checkpoint_resizes(meta), &data, &e) != 0 ||
        same_normalisation(meta, checkpoint, &data, data_dir, &e) != 0)
        die_err(&e, EXIT_BAD_INPUT);
    free(meta);
    if (teacher_cache && teacher_cache_load(teacher_cache, &data, &cache, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *scratch = arena_alloc(MPLC_SCRATCH_FLOATS);
    float *x = arena_alloc(EVAL_INPUT_FLOATS);
    float *logits = arena_alloc((size_t)MPLC_EVAL_BATCH * MPLC_CLASSES);
    long correct[3];
    long *confusion = xmalloc(3 * (size_t)MPLC_CLASSES * MPLC_CLASSES * sizeof *confusion);
    evaluate(state, has_ema ? ema : NULL, &data.test, cache.rows ? teacher_cache_test_rows(&cache) : NULL, x, logits,
             scratch, correct, confusion);
    if (rank_leader()) print_eval(checkpoint, &data, has_ema, correct, confusion);
    free(confusion);
    free(state);
    free(ema);
    free(scratch);
    free(x);
    free(logits);
    teacher_cache_free(&cache);
    dataset_free(&data);
    return 0;
}
