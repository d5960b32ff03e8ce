/* The exponential moving average (EMA) of the student's weights (docs/RUNNER.md, "EMA of the student").
 *
 * The EMA lives in an arena of MPLC_STATE_FLOATS floats laid out like the state arena, so that
 * mplc_predict_student, which reads only the "student/..." tensors, can evaluate it directly. Only those
 * regions are meaningful; the rest of the arena stays zero. Every state tensor whose name starts with
 * "student/" is averaged the same way: weights, biases and (when a model has them) BatchNorm running
 * statistics. "student_momentum/..." is optimiser state, not part of the model, and is not averaged. */
#ifndef RUNNER_EMA_H
#define RUNNER_EMA_H

#include "model.h"

/* 1 if the state tensor is averaged (its name starts with "student/"). */
int ema_tracks(const mplc_tensor *t);

/* One EMA update after a step in which the student learned. The first update (updates_done == 0) copies
 * the student's weights; later ones set, for every tracked float,
 *     ema = (float)(decay * ema + (1 - decay) * student)
 * evaluated in double, so that the result depends only on the two floats and the decay. */
void ema_update(float *ema, const float *state, double decay, long updates_done);

#endif
