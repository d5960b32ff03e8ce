/* A tiny stand-in for a generated model.h (docs/ABI.md) for the checkpoint fuzz target: the same
 * tables as a real model, but 32 state floats, so a whole valid checkpoint is a few hundred bytes and
 * the fuzzer spends its time on headers and metadata. The entry points are stubs (model.c). */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>

#define MPLC_MODEL_NAME "tiny"
#define MPLC_INPUT_HEIGHT 1
#define MPLC_INPUT_WIDTH 1
#define MPLC_INPUT_CHANNELS 3
#define MPLC_INPUT_SIZE 3
#define MPLC_CLASSES 2
#define MPLC_BATCH_LABELED 2
#define MPLC_BATCH_UNLABELED 2
#define MPLC_EVAL_BATCH 2
#define MPLC_FINETUNE_BATCH 2
#define MPLC_STATE_FLOATS 32
#define MPLC_STEP_IO_FLOATS 32
#define MPLC_SUPERVISED_IO_FLOATS 16
#define MPLC_SCRATCH_FLOATS 1
#define MPLC_NUM_STATE_TENSORS 8
#define MPLC_NUM_STEP_INPUTS 6
#define MPLC_NUM_STEP_OUTPUTS 6
#define MPLC_NUM_SUPERVISED_INPUTS 3
#define MPLC_NUM_SUPERVISED_OUTPUTS 1

#define MPLC_STEPS 300
#define MPLC_SEED 0
#define MPLC_STUDENT_WAIT_STEPS 20
#define MPLC_TEACHER_LR 0.01
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
#define MPLC_RANKS 1
#define MPLC_LOCAL_BATCH_LABELED 2
#define MPLC_LOCAL_BATCH_UNLABELED 2
#define MPLC_LOCAL_FINETUNE_BATCH 2
/* By hand: the recipe as the compiler writes it (docs/ABI.md) and a made-up hash of model.c and model.h. */
#define MPLC_RECIPE                                                                                              \
    "batch_labeled=2;batch_unlabeled=2;eval_batch=2;finetune_batch=2;steps=300;seed=0;student_wait_steps=20;"     \
    "teacher_lr=0.01;teacher_momentum=0.9;teacher_nesterov=1;teacher_weight_decay=5e-4;teacher_warmup_steps=20;" \
    "teacher_cosine=1;student_lr=0.01;student_momentum=0.9;student_nesterov=1;student_weight_decay=5e-4;"         \
    "student_warmup_steps=20;student_cosine=1;uda_weight=1.0;uda_ramp_steps=100;finetune_steps=50;"               \
    "finetune_lr=0.005;ema_decay=0.995;init_uniform=0;init_bound=0.1;pseudo_labels=hard-argmax;"                  \
    "feedback=dot-product;teacher_objective=uda;teacher_reads_predictions=0;uda_temperature=0.7;uda_threshold=0.6;label_smoothing=0.15"
#define MPLC_MODEL_HASH "7171000000000000000000000000000000000000000000000000000000000001"

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
