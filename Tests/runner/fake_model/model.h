/* A hand-written stand-in for a generated model.h (see docs/ABI.md), used to test the runner without
 * the compiler. Teacher: Flatten, Dropout(0.1), Dense(10). Student: Flatten, Dense(10). Both are linear
 * softmax classifiers on 1x28x28 images; hard-argmax pseudo labels, dot-product feedback.
 * Build options (for tests): -DFAKE_TEACHER_LR=1e30 makes the teacher diverge to Inf/NaN;
 * -DFAKE_RGB32 makes the same model take 3x32x32 images (CIFAR-10 and SVHN tests), named fake_linear_rgb;
 * -DFAKE_MODEL_HASH='"..."' stands for another compilation of the same recipe (--resume tests);
 * -DFAKE_RANKS=R (with mpicc -DMPLC_MPI) a model compiled for R ranks: its step takes per-rank batches (but sums
 * nothing over the ranks: the runner's MPI tests check what the runner does, not the step's exactness). */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>

#define MPLC_CLASSES 10
#define MPLC_BATCH_LABELED 8
#define MPLC_BATCH_UNLABELED 16
#define MPLC_EVAL_BATCH 100
#define MPLC_FINETUNE_BATCH 32
#ifndef FAKE_RANKS
#define FAKE_RANKS 1
#endif
#define MPLC_RANKS FAKE_RANKS
#define MPLC_LOCAL_BATCH_LABELED (MPLC_BATCH_LABELED / MPLC_RANKS)
#define MPLC_LOCAL_BATCH_UNLABELED (MPLC_BATCH_UNLABELED / MPLC_RANKS)
#define MPLC_LOCAL_FINETUNE_BATCH (MPLC_FINETUNE_BATCH / MPLC_RANKS)
#ifdef FAKE_RGB32
#define MPLC_MODEL_NAME "fake_linear_rgb"
#define MPLC_INPUT_HEIGHT 32
#define MPLC_INPUT_WIDTH 32
#define MPLC_INPUT_CHANNELS 3
#define MPLC_INPUT_SIZE 3072
#else
#define MPLC_MODEL_NAME "fake_linear"
#define MPLC_INPUT_HEIGHT 28
#define MPLC_INPUT_WIDTH 28
#define MPLC_INPUT_CHANNELS 1
#define MPLC_INPUT_SIZE 784
#endif
/* The arena layout of model.c (its _Static_asserts check these) for the per-rank batches: with D inputs, K
 * classes, n = B_l + 2 B_u rows and F finetune rows; 31400, 62810, 25410, 48500 for D = 784 and one rank. */
#define FAKE_N (MPLC_LOCAL_BATCH_LABELED + 2 * MPLC_LOCAL_BATCH_UNLABELED)
#define FAKE_F MPLC_LOCAL_FINETUNE_BATCH
#define FAKE_W (MPLC_INPUT_SIZE * 10 + 10) /* one network's weights and biases */
#define MPLC_STATE_FLOATS (4 * FAKE_W)
#define MPLC_STEP_IO_FLOATS (2 * FAKE_N * MPLC_INPUT_SIZE + MPLC_LOCAL_BATCH_LABELED * 10 + 11)
#define MPLC_SUPERVISED_IO_FLOATS (FAKE_F * (MPLC_INPUT_SIZE + 10) + 2)
#define MPLC_SCRATCH_FLOATS (FAKE_N * MPLC_INPUT_SIZE + 2 * FAKE_N * 10 + 2 * FAKE_F * 10 + 2 * FAKE_W)
#define MPLC_NUM_STATE_TENSORS 8
#define MPLC_NUM_STEP_INPUTS 8
#define MPLC_NUM_STEP_OUTPUTS 6
#define MPLC_NUM_SUPERVISED_INPUTS 3
#define MPLC_NUM_SUPERVISED_OUTPUTS 1

#ifndef FAKE_TEACHER_LR
#define FAKE_TEACHER_LR 0.01
#else
#define FAKE_TEACHER_LR_GIVEN
#endif

#define MPLC_STEPS 300
#define MPLC_SEED 0
#define MPLC_STUDENT_WAIT_STEPS 20
#define MPLC_TEACHER_LR FAKE_TEACHER_LR
#define MPLC_TEACHER_MOMENTUM 0.9
#define MPLC_TEACHER_NESTEROV 1
#define MPLC_TEACHER_WEIGHT_DECAY 5e-4
#define MPLC_TEACHER_WARMUP_STEPS 20
#define MPLC_TEACHER_COSINE 1
#define MPLC_STUDENT_LR 0.01
#define MPLC_STUDENT_MOMENTUM 0.9
#define MPLC_STUDENT_NESTEROV 1
#define MPLC_STUDENT_WEIGHT_DECAY 5e-4
#define MPLC_STUDENT_WARMUP_STEPS 20
#define MPLC_STUDENT_COSINE 1
#define MPLC_UDA_WEIGHT 1.0
#define MPLC_UDA_RAMP_STEPS 100
#define MPLC_FINETUNE_STEPS 50
#define MPLC_FINETUNE_LR 0.005
#define MPLC_EMA_DECAY 0.995
#define MPLC_INIT_UNIFORM 0
#define MPLC_INIT_BOUND 0.1
#define MPLC_PSEUDO_LABELS "hard-argmax"
#define MPLC_FEEDBACK "dot-product"
#define MPLC_TEACHER_OBJECTIVE "uda"
#define MPLC_TEACHER_READS_PREDICTIONS 0

/* The recipe as the compiler writes it (docs/ABI.md), and a made-up hash in place of the SHA-256 of model.c
 * and model.h: one per variant of this file, as the compiler's would differ. */
#define FAKE_STR_(x) #x
#define FAKE_STR(x) FAKE_STR_(x)
#define MPLC_RECIPE                                                                                              \
    "batch_labeled=8;batch_unlabeled=16;eval_batch=100;finetune_batch=32;steps=300;seed=0;student_wait_steps=20;" \
    "teacher_lr=" FAKE_STR(FAKE_TEACHER_LR) ";teacher_momentum=0.9;teacher_nesterov=1;teacher_weight_decay=5e-4;"  \
    "teacher_warmup_steps=20;teacher_cosine=1;student_lr=0.01;student_momentum=0.9;student_nesterov=1;"          \
    "student_weight_decay=5e-4;student_warmup_steps=20;student_cosine=1;uda_weight=1.0;uda_ramp_steps=100;"       \
    "finetune_steps=50;finetune_lr=0.005;ema_decay=0.995;init_uniform=0;init_bound=0.1;pseudo_labels=hard-argmax;" \
    "feedback=dot-product;teacher_objective=uda;teacher_reads_predictions=0;uda_temperature=0.7;uda_threshold=0.6;label_smoothing=0.1"
#if defined(FAKE_MODEL_HASH)
#define MPLC_MODEL_HASH FAKE_MODEL_HASH
#elif defined(FAKE_RGB32)
#define MPLC_MODEL_HASH "fa4e000000000000000000000000000000000000000000000000000000000032"
#elif defined(FAKE_TEACHER_LR_GIVEN)
#define MPLC_MODEL_HASH "fa4e0000000000000000000000000000000000000000000000000000000001e3"
#else
#define MPLC_MODEL_HASH "fa4e000000000000000000000000000000000000000000000000000000000001"
#endif

typedef struct {
    const char *name;
    int rank;
    int shape[4];
    size_t offset;
    size_t count;
    int fan_in;
    int is_weight;
    double dropout_rate;
} mplc_tensor;

extern const mplc_tensor mplc_state_tensors[];
extern const mplc_tensor mplc_step_inputs[];
extern const mplc_tensor mplc_step_outputs[];
extern const mplc_tensor mplc_supervised_inputs[];
extern const mplc_tensor mplc_supervised_outputs[];

#define MPLC_MAX_THREADS 8
int mplc_set_threads(int threads);
void mplc_step(float *state, float *io, float *scratch);
void mplc_supervised_step(float *state, float *io, float *scratch);
void mplc_predict_teacher(const float *state, const float *x, float *logits, float *scratch);
void mplc_predict_student(const float *state, const float *x, float *logits, float *scratch);

#endif
