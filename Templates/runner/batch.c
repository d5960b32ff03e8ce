#include <stdlib.h>
#include <string.h>

#include "model.h"
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

void batch_fill_step(Trainer *T, long t, double lr_teacher, double lr_student, double uda_weight, double feedback) {
    const int BL = MPLC_BATCH_LABELED, BU = MPLC_BATCH_UNLABELED;
    float *io = T->step_io;
    float *x = io + T->in.x->offset, *y = io + T->in.y->offset;
    const DataSplit *tr = &T->data.train;
    Rng r;
    rng_init(&r, T->cfg.seed, RNG_AUGMENT, (uint64_t)t);
    for (int i = 0; i < BL; i++) {
        uint32_t k = T->labeled[order_at(&T->order_l, (uint64_t)t * BL + (uint64_t)i)];
        /* The RandAugment teacher's supervised loss reads the strong view (and so does the updated student's
         * labeled loss, which only the feedback uses). */
        if (T->cfg.objective == OBJECTIVE_RANDAUGMENT)
            aug_strong(&T->aug, image(tr, k), x + (size_t)i * IMG_FLOATS, T->img, &r);
        else
            aug_weak(&T->aug, image(tr, k), x + (size_t)i * IMG_FLOATS, &r);
        one_hot(y + (size_t)i * NUM_CLASSES, tr->y[k]);
        teacher_row(T, io, i, k);
    }
    /* The unlabeled set (the whole training set, unless the data has one apart); its labels are never read. */
    for (int j = 0; j < BU; j++) {
        uint32_t k = order_at(&T->order_u, (uint64_t)t * BU + (uint64_t)j);
        aug_weak(&T->aug, image(T->unl, k), x + (size_t)(BL + j) * IMG_FLOATS, &r);
        aug_strong(&T->aug, image(T->unl, k), x + (size_t)(BL + BU + j) * IMG_FLOATS, T->img, &r);
        teacher_row(T, io, BL + j, k);
    }
    if (T->in.uniform) {
        Rng ru;
        rng_init(&ru, T->cfg.seed, RNG_UNIFORM, (uint64_t)t);
        float *u = io + T->in.uniform->offset;
        for (int j = 0; j < BU; j++) u[j] = rng_float(&ru);
    }
    Rng rd;
    rng_init(&rd, T->cfg.seed, RNG_DROPOUT, (uint64_t)t);
    fill_dropout_masks(&TABLE_STEP_IN, io, &rd);
    io[T->in.lr_teacher->offset] = (float)lr_teacher;
    io[T->in.lr_student->offset] = (float)lr_student;
    io[T->in.uda_weight->offset] = (float)uda_weight;
    io[T->in.feedback_scale->offset] = (float)feedback;
}

void batch_fill_supervised(Trainer *T, long t, Order *o, int aug_stream, int dropout_stream, double lr) {
    const int F = MPLC_FINETUNE_BATCH;
    float *io = T->sup_io;
    float *x = io + T->sup.x->offset, *y = io + T->sup.y->offset;
    const DataSplit *tr = &T->data.train;
    Rng r;
    rng_init(&r, T->cfg.seed, (uint64_t)aug_stream, (uint64_t)t);
    for (int i = 0; i < F; i++) {
        uint32_t k = T->labeled[order_at(o, (uint64_t)t * F + (uint64_t)i)];
        aug_weak(&T->aug, image(tr, k), x + (size_t)i * IMG_FLOATS, &r);
        one_hot(y + (size_t)i * NUM_CLASSES, tr->y[k]);
    }
    Rng rd;
    rng_init(&rd, T->cfg.seed, (uint64_t)dropout_stream, (uint64_t)t);
    fill_dropout_masks(&TABLE_SUP_IN, io, &rd);
    io[T->sup.lr->offset] = (float)lr;
}
