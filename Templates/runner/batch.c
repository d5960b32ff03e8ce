#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ranks.h"
#include "trainer.h"

#define IMG_FLOATS MPLC_INPUT_SIZE
#define NUM_CLASSES MPLC_CLASSES

void order_init(Order *o, size_t n, uint64_t seed, int stream) {
    o->n = n;
    o->seed = seed;
    o->stream = stream;
    o->have = 0;
    o->epoch = 0;
    o->perm = xmalloc(n * sizeof *o->perm);
}

void order_free(Order *o) {
    free(o->perm);
    o->perm = NULL;
}

uint32_t order_at(Order *o, uint64_t pos) {
    uint64_t epoch = pos / o->n;
    if (!o->have || epoch != o->epoch) {
        Rng r;
        rng_init(&r, o->seed, (uint64_t)o->stream, epoch);
        for (size_t i = 0; i < o->n; i++) o->perm[i] = (uint32_t)i;
        for (size_t i = o->n - 1; i > 0; i--) {
            uint32_t j = rng_below(&r, (uint32_t)(i + 1));
            uint32_t t = o->perm[i];
            o->perm[i] = o->perm[j];
            o->perm[j] = t;
        }
        o->epoch = epoch;
        o->have = 1;
    }
    return o->perm[pos % o->n];
}

static const float *image(const DataSplit *s, size_t i) { return s->x + i * (size_t)IMG_FLOATS; }

static void one_hot(float *row, int label) {
    memset(row, 0, sizeof(float) * NUM_CLASSES);
    row[label] = 1.0f;
}

/* Reduced MPL: row `row` of teacher_x gets the cached distribution of training image k, the image whose
 * views the same step puts in x. Nothing to do for a teacher that reads images. */
static void teacher_row(const Trainer *T, float *io, int row, uint32_t k) {
    if (!T->in.teacher_x) return;
    memcpy(io + T->in.teacher_x->offset + (size_t)row * NUM_CLASSES, teacher_cache_train_row(&T->cache, k),
           sizeof(float) * NUM_CLASSES);
}

/* Data parallelism (ranks.h): each step has one GLOBAL batch of B rows, drawn from the seeded data order at
 * positions t x B + g, g in [0, B); rank r of R fills its step arena with the rows g in [r B/R, (r + 1) B/R), so
 * the union over the ranks is the one-process batch. The generator of global row g: one process draws its whole
 * batch from one stream per step (`step`, as it always has); with ranks, row g has a stream of its own,
 * (seed, row_stream, t x B + g), so that a rank augments its rows without drawing the others', and the global
 * batch is the same whatever the number of ranks. */
static Rng *row_rng(Rng *step, Rng *own, uint64_t seed, int row_stream, long t, long B, long g) {
    if (MPLC_RANKS == 1) return step;
    rng_init(own, seed, (uint64_t)row_stream, (uint64_t)t * (uint64_t)B + (uint64_t)g);
    return own;
}

/* Dropout masks have the rank's rows only (their row order depends on the network's pass), so with ranks each
 * rank draws its own from (seed, rank_stream, t x R + r); one process keeps its stream per step. */
static void fill_masks(const TensorTable *table, float *io, uint64_t seed, int step_stream, int rank_stream, long t) {
    Rng rd;
    if (MPLC_RANKS == 1) rng_init(&rd, seed, (uint64_t)step_stream, (uint64_t)t);
    else rng_init(&rd, seed, (uint64_t)rank_stream, (uint64_t)t * MPLC_RANKS + (uint64_t)rank_id());
    fill_dropout_masks(table, io, &rd);
}

void batch_fill_step(Trainer *T, long t, double lr_teacher, double lr_student, double uda_weight, double feedback,
                     double baseline) {
    const long BL = MPLC_BATCH_LABELED, BU = MPLC_BATCH_UNLABELED; /* global */
    const int LBL = MPLC_LOCAL_BATCH_LABELED, LBU = MPLC_LOCAL_BATCH_UNLABELED; /* this rank's rows */
    const long gl = (long)rank_id() * LBL, gu = (long)rank_id() * LBU; /* global rows of this rank's first */
    float *io = T->step_io;
    float *x = io + T->in.x->offset, *y = io + T->in.y->offset;
    const DataSplit *tr = &T->data.train;
    Rng step, own;
    rng_init(&step, T->cfg.seed, RNG_AUGMENT, (uint64_t)t);
    for (int i = 0; i < LBL; i++) {
        uint32_t k = T->labeled[order_at(&T->order_l, (uint64_t)t * BL + (uint64_t)(gl + i))];
        Rng *r = row_rng(&step, &own, T->cfg.seed, RNG_AUGMENT_ROW_LABELED, t, BL, gl + i);
        /* The RandAugment teacher's supervised loss reads the strong view (and so does the updated student's
         * labeled loss, which only the feedback uses). */
        if (T->cfg.objective == OBJECTIVE_RANDAUGMENT)
            aug_strong(&T->aug, image(tr, k), x + (size_t)i * IMG_FLOATS, T->img, r);
        else
            aug_weak(&T->aug, image(tr, k), x + (size_t)i * IMG_FLOATS, r);
        one_hot(y + (size_t)i * NUM_CLASSES, tr->y[k]);
        teacher_row(T, io, i, k);
    }
    /* The unlabeled set (the whole training set, unless the data has one apart); its labels are never read. */
    for (int j = 0; j < LBU; j++) {
        uint32_t k = order_at(&T->order_u, (uint64_t)t * BU + (uint64_t)(gu + j));
        Rng *r = row_rng(&step, &own, T->cfg.seed, RNG_AUGMENT_ROW_UNLABELED, t, BU, gu + j);
        aug_weak(&T->aug, image(T->unl, k), x + (size_t)(LBL + j) * IMG_FLOATS, r);
        aug_strong(&T->aug, image(T->unl, k), x + (size_t)(LBL + LBU + j) * IMG_FLOATS, T->img, r);
        teacher_row(T, io, LBL + j, k);
    }
    if (T->in.uniform) { /* the global batch's draws, of which this rank keeps its slice */
        Rng ru;
        rng_init(&ru, T->cfg.seed, RNG_UNIFORM, (uint64_t)t);
        float *u = io + T->in.uniform->offset;
        for (long j = 0; j < BU; j++) {
            float v = rng_float(&ru);
            if (j >= gu && j < gu + LBU) u[j - gu] = v;
        }
    }
    fill_masks(&TABLE_STEP_IN, io, T->cfg.seed, RNG_DROPOUT, RNG_DROPOUT_RANK, t);
    io[T->in.lr_teacher->offset] = (float)lr_teacher;
    io[T->in.lr_student->offset] = (float)lr_student;
    io[T->in.uda_weight->offset] = (float)uda_weight;
    io[T->in.feedback_scale->offset] = (float)feedback;
    if (T->in.feedback_baseline) io[T->in.feedback_baseline->offset] = (float)baseline;
}

void batch_fill_supervised(Trainer *T, long t, Order *o, const SupStreams *s, double lr) {
    const long F = MPLC_FINETUNE_BATCH;            /* global */
    const int LF = MPLC_LOCAL_FINETUNE_BATCH;       /* this rank's rows */
    const long g0 = (long)rank_id() * LF;
    float *io = T->sup_io;
    float *x = io + T->sup.x->offset, *y = io + T->sup.y->offset;
    const DataSplit *tr = &T->data.train;
    Rng step, own;
    rng_init(&step, T->cfg.seed, (uint64_t)s->augment, (uint64_t)t);
    for (int i = 0; i < LF; i++) {
        uint32_t k = T->labeled[order_at(o, (uint64_t)t * F + (uint64_t)(g0 + i))];
        aug_weak(&T->aug, image(tr, k), x + (size_t)i * IMG_FLOATS,
                 row_rng(&step, &own, T->cfg.seed, s->augment_row, t, F, g0 + i));
        one_hot(y + (size_t)i * NUM_CLASSES, tr->y[k]);
    }
    fill_masks(&TABLE_SUP_IN, io, T->cfg.seed, s->dropout, s->dropout_rank, t);
    io[T->sup.lr->offset] = (float)lr;
}
