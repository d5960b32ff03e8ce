/* The three commands of mplc-run (see docs/RUNNER.md). Each returns the process exit code;
 * errors exit directly with a message. */
#ifndef RUNNER_TRAIN_H
#define RUNNER_TRAIN_H

#include "trainer.h"

int train_command(const TrainConfig *cfg);
int eval_command(const char *checkpoint, const char *data_dir);
int replay_command(const char *checkpoint, const char *batches, long steps, const char *out, const char *losses);

#endif
