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
