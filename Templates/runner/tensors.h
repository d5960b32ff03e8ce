/* Helpers over the symbol tables of model.h: lookup, initialisation, dropout masks, checks. */
#ifndef RUNNER_TENSORS_H
#define RUNNER_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rng.h"
#include "util.h"

/* Floats of the predict functions' input buffer: MPLC_EVAL_BATCH images or, for a teacher that reads
 * predictions, MPLC_EVAL_BATCH class distributions, whichever is larger (features may be fewer than classes). */
#define EVAL_INPUT_FLOATS \
    ((size_t)MPLC_EVAL_BATCH * (size_t)(MPLC_INPUT_SIZE > MPLC_CLASSES ? MPLC_INPUT_SIZE : MPLC_CLASSES))

typedef struct {
    const mplc_tensor *items;
    int count;
    size_t arena_floats; /* size of the arena the offsets point into */
    const char *what;    /* "state", "step input", ... for messages */
} TensorTable;

extern const TensorTable TABLE_STATE, TABLE_STEP_IN, TABLE_STEP_OUT, TABLE_SUP_IN, TABLE_SUP_OUT;

const mplc_tensor *table_find(const TensorTable *t, const char *name);
int starts_with(const char *s, const char *prefix);
/* Checks that every tensor lies inside its arena and that count matches the shape. */
int table_validate(const TensorTable *t, Err *e);

/* Parameters: He-uniform U(-sqrt(6/fan_in), +) for weights and zero otherwise, or U(-b, b) for every
 * parameter when MPLC_INIT_UNIFORM; momenta zero. Draws come from (seed, RNG_INIT, 0) in table order. */
void init_state(float *state, uint64_t seed);
/* Sets every state tensor whose name starts with prefix (e.g. "student_momentum/") to zero. */
void zero_state_prefix(float *state, const char *prefix);

/* Fills every "dropout/..." input of the table with inverted-dropout masks (0 or 1/(1-rate)). */
void fill_dropout_masks(const TensorTable *t, float *io, Rng *r);

/* Returns the index of the first non-finite float of the tensor, or -1. */
long first_nonfinite(const float *arena, const mplc_tensor *t);

/* The inputs of mplc_step and mplc_supervised_step that the runner fills, located by name in the
 * tables (dropout masks are filled by name prefix). uniform is NULL when the model has none; teacher_x
 * (Reduced MPL) is NULL unless MPLC_TEACHER_READS_PREDICTIONS is 1; feedback_baseline is NULL with soft pseudo
 * labels (and for steps compiled before it existed): then --feedback-baseline is refused. */
typedef struct {
    const mplc_tensor *x, *y, *uniform, *lr_teacher, *lr_student, *uda_weight, *feedback_scale, *teacher_x;
    const mplc_tensor *feedback_baseline;
} StepInputs;

typedef struct {
    const mplc_tensor *x, *y, *lr;
} SupInputs;

/* Fails, with the numbers, if the arenas the runner allocates for this model (state, both I/O arenas,
 * scratch, and the evaluation batch's inputs and logits) exceed memory_limit(): a model too large for
 * the machine is rejected before any data is loaded or anything is allocated. ema_arenas != 0 counts a
 * second state-sized arena, the student's EMA (ema.h). The arenas are planned in the budget (budget.h),
 * so the data loaded afterwards must fit beside them. */
int arenas_fit_in_memory(int ema_arenas, Err *e);

/* Validates all five tables and finds the inputs; fails with a message naming anything the runner
 * does not understand (an unknown input name, a wrong size, a non-scalar output...). */
int locate_inputs(StepInputs *step, SupInputs *sup, Err *e);

#endif
