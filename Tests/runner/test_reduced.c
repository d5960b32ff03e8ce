/* Unit checks of Reduced MPL in the runner, linked with a model whose teacher reads cached predictions
 * (generated/fashion_reduced: teacher Dense(64)-ReLU-Dense(10) on 10 class probabilities):
 *
 *   test_reduced DATA_DIR CACHE.npy AS_IS_DIR   (written by Tests/runner/reduced_data.py make; AS_IS_DIR: DATA_DIR's
 *                                                 files as labeled_x.npy, labeled_y.npy, test_x.npy, test_y.npy)
 *
 * - batch_fill_step puts in row r of teacher_x the cached row of the very image whose view it puts in row
 *   r of x (labeled rows, then the weak views of the unlabeled ones), for several steps and epochs;
 * - evaluate() gives the teacher the cached rows of the test images, in order, the last chunk padded:
 *   with a teacher that returns its input, the teacher's test accuracy is the cache's;
 * - --validation (trainer_pick_labeled), of a training set split by --labels and of a labeled set used as is: each
 *   validation example is a training image, class-balanced, not among the labeled ones, and the teacher's input
 *   for it is that very image's cached row.
 * Prints one line per check and "N checks passed" last; exits 1 on the first failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "trainer.h"

#define D MPLC_INPUT_SIZE
#define K MPLC_CLASSES

static int checks;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what);
        exit(1);
    }
    checks++;
    printf("ok   %s\n", what);
}

/* The training image a row of x shows: the centre pixel holds (i + 1) / 2048 (reduced_data.py). */
static long image_of(const float *img) {
    float v = img[(14 * MPLC_INPUT_WIDTH + 14) * MPLC_INPUT_CHANNELS];
    long i = lroundf(v * 2048.0f) - 1;
    return (float)(i + 1) / 2048.0f == v ? i : -1;
}

static void setup(Trainer *T, const char *data, const char *cache) {
    Err e;
    T->cfg.seed = 5;
    T->cfg.labels = 300;
    T->cfg.data_dir = data;
    T->cfg.teacher_cache = cache;
    if (locate_inputs(&T->in, &T->sup, &e) != 0 || trainer_load_data(T, &e) != 0 ||
        dataset_pick_labeled(&T->data.train, T->cfg.labels, T->cfg.seed, &T->labeled, &e) != 0)
        die_err(&e, 1);
    T->n_labeled = (size_t)T->cfg.labels;
    T->step_io = arena_alloc(MPLC_STEP_IO_FLOATS);
    T->img = xcalloc(2 * (size_t)D, sizeof(float));
    order_init(&T->order_l, T->n_labeled, T->cfg.seed, RNG_ORDER_LABELED);
    order_init(&T->order_u, T->unl->n, T->cfg.seed, RNG_ORDER_UNLABELED);
    T->aug = aug_spec(&T->data, 0, 1);
}

/* Steps 0..9 cover more than one epoch of the labeled order (300 / 32 rows per step). */
static void check_batches(Trainer *T) {
    const int BL = MPLC_BATCH_LABELED, BU = MPLC_BATCH_UNLABELED;
    long rows = 0, bad = 0, wrong_label = 0;
    for (long t = 0; t < 10; t++) {
        batch_fill_step(T, t, 0.1, 0.1, 0, 1, 0);
        const float *x = T->step_io + T->in.x->offset, *tx = T->step_io + T->in.teacher_x->offset,
                    *y = T->step_io + T->in.y->offset;
        for (int r = 0; r < BL + BU; r++, rows++) {
            long k = image_of(x + (size_t)r * D);
            if (k < 0 || (size_t)k >= T->data.train.n ||
                memcmp(tx + (size_t)r * K, teacher_cache_train_row(&T->cache, (size_t)k), sizeof(float) * K) != 0)
                bad++;
            else if (r < BL && y[(size_t)r * K + (size_t)T->data.train.y[k]] != 1.0f)
                wrong_label++;
        }
    }
    char what[200];
    snprintf(what, sizeof what,
             "batch_fill_step: teacher_x row r is the cached row of the image in x row r (%ld rows of 10 steps; "
             "labeled rows carry that image's label)",
             rows);
    check(bad == 0 && wrong_label == 0, what);
}

/* Teacher weights that make it return its input: Dense(K -> H) with the identity on its first K units,
 * ReLU (the input is non-negative), Dense(H -> K) with the identity on its first K rows. */
static void identity_teacher(float *state) {
    const mplc_tensor *w[2] = {NULL, NULL};
    int n = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (strncmp(t->name, "teacher/", 8) != 0 || !t->is_weight) continue;
        if (n < 2) w[n] = t;
        n++;
    }
    check(n == 2 && w[0]->rank == 2 && w[0]->shape[0] == K && w[1]->rank == 2 && w[1]->shape[1] == K &&
              w[0]->shape[1] == w[1]->shape[0] && w[0]->shape[1] >= K,
          "the model's teacher is Dense(H >= K)-ReLU-Dense(K) on K inputs");
    const int H = w[0]->shape[1];
    for (int k = 0; k < K; k++) {
        state[w[0]->offset + (size_t)k * H + (size_t)k] = 1.0f;
        state[w[1]->offset + (size_t)k * K + (size_t)k] = 1.0f;
    }
}

static void check_evaluate(Trainer *T) {
    float *state = arena_alloc(MPLC_STATE_FLOATS), *scratch = arena_alloc(MPLC_SCRATCH_FLOATS),
          *x = arena_alloc(EVAL_INPUT_FLOATS), *logits = arena_alloc((size_t)MPLC_EVAL_BATCH * K);
    identity_teacher(state);
    const DataSplit *test = &T->data.test;
    long correct[3], confusion[3 * K * K];
    evaluate(state, NULL, test, teacher_cache_test_rows(&T->cache), x, logits, scratch, correct, confusion);
    long want = teacher_cache_correct(teacher_cache_test_rows(&T->cache), test);
    long other = teacher_cache_correct(teacher_cache_train_row(&T->cache, 0), test);
    char what[200];
    snprintf(what, sizeof what,
             "evaluate: the teacher reads the cached test rows (%ld of %zu right, as the cache; the training rows "
             "would give %ld; chunks of %d, the last padded)",
             correct[0], test->n, other, MPLC_EVAL_BATCH);
    check(correct[0] == want && want != other && test->n % MPLC_EVAL_BATCH != 0 && test->n > MPLC_EVAL_BATCH, what);
    check(correct[2] == -1 && correct[1] >= 0, "evaluate: the student still reads the images, no EMA given");
    /* The confusion matrices: each network's rows add up to the test set, its diagonal to its correct count. */
    long rows[2] = {0, 0}, diagonal[2] = {0, 0};
    for (int net = 0; net < 2; net++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                rows[net] += confusion[(net * K + i) * K + j];
                if (i == j) diagonal[net] += confusion[(net * K + i) * K + j];
            }
    check(rows[0] == (long)test->n && rows[1] == (long)test->n && diagonal[0] == correct[0] && diagonal[1] == correct[1],
          "evaluate: the teacher's and the student's confusion matrices count every test image, their diagonals the "
          "correct ones");
    free(state);
    free(scratch);
    free(x);
    free(logits);
}

/* trainer_pick_labeled with --validation 100 and a cache, on data (--labels 300) or on a labeled set used as is. */
static void check_validation(const char *data, const char *cache, int as_is) {
    Trainer *T = xcalloc(1, sizeof *T);
    Err e;
    T->cfg.seed = 5;
    T->cfg.labels = 300;
    T->cfg.validation = 100;
    T->cfg.data_dir = data;
    T->cfg.teacher_cache = cache;
    if (trainer_load_data(T, &e) != 0 || trainer_pick_labeled(T, &e) != 0) die_err(&e, 1);
    const size_t n = T->data.train.n;
    long bad = 0, labeled_too = 0, per_class[K] = {0};
    char *held = xcalloc(n, 1);
    for (size_t r = 0; r < T->val.n; r++) {
        long k = image_of(T->val.x + r * D);
        if (k < 0 || (size_t)k >= n || T->val.y[r] != T->data.train.y[k] || !T->val_teacher_x ||
            memcmp(T->val_teacher_x + r * K, teacher_cache_train_row(&T->cache, (size_t)k), sizeof(float) * K) != 0) {
            bad++;
            continue;
        }
        held[k] = 1;
        per_class[T->val.y[r]]++;
    }
    for (long i = 0; i < T->cfg.labels; i++) labeled_too += held[T->labeled[i]];
    int balanced = 1;
    for (int k = 0; k < K; k++) balanced &= per_class[k] == 100 / K;
    const long labels = as_is ? (long)n - 100 : 300;
    char what[300];
    snprintf(what, sizeof what,
             "--validation 100 of %s: 100 training images, %s, none labeled (%ld labeled), each with its own cached "
             "row as the teacher's input",
             as_is ? "a labeled set used as is" : "--labels 300", balanced ? "10 per class" : "NOT balanced", labels);
    check(T->data.labeled_as_is == as_is && T->val.n == 100 && bad == 0 && balanced && labeled_too == 0 &&
              T->cfg.labels == labels,
          what);
    free(held);
    free(T->val.x);
    free(T->val.y);
    free(T->val_teacher_x);
    free(T->labeled);
    teacher_cache_free(&T->cache);
    dataset_free(&T->data);
    free(T);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_reduced DATA_DIR CACHE.npy AS_IS_DIR\n");
        return 2;
    }
    check(MPLC_TEACHER_READS_PREDICTIONS == 1, "the model's teacher reads predictions (MPLC_TEACHER_READS_PREDICTIONS)");
    Trainer *T = xcalloc(1, sizeof *T);
    setup(T, argv[1], argv[2]);
    check(T->in.teacher_x != NULL, "locate_inputs finds teacher_x");
    check_batches(T);
    check_evaluate(T);
    check_validation(argv[1], argv[2], 0);
    check_validation(argv[3], argv[2], 1);
    printf("%d checks passed\n", checks);
    order_free(&T->order_l);
    order_free(&T->order_u);
    teacher_cache_free(&T->cache);
    dataset_free(&T->data);
    free(T->labeled);
    free(T->step_io);
    free(T->img);
    free(T);
    return 0;
}
