/* The commands of mplc-run (see docs/RUNNER.md). Each returns the process exit code;
 * errors exit directly with a message. */
#ifndef RUNNER_TRAIN_H
#define RUNNER_TRAIN_H

#include <string.h>

#include "safetensors.h"
#include "trainer.h"

/* A checkpoint of a run trained with --resize says so (metadata "resize": "yes"), so that eval, cache and predict
 * read image files of another size as its training did; older checkpoints have no "resize" (their runs refused
 * such images). */
static inline int checkpoint_resizes(const StMeta *m) {
    const char *v = meta_get(m, "resize");
    return v && strcmp(v, "yes") == 0;
}

int train_command(const TrainConfig *cfg);
/* The rule the model file obeys, applied to --steps (a new run's, or that of a run extended on --resume): -1 with e
 * set when the student's wait or a warm-up does not fit in the steps. */
int check_steps_fit_recipe(const TrainConfig *c, Err *e);
/* teacher_cache: the --teacher-cache file of a model whose teacher reads predictions, else NULL. */
int eval_command(const char *checkpoint, const char *data_dir, const char *teacher_cache);
/* Reduced MPL: writes the teacher's class distributions of every training and test image (teacher_cache.h). */
int cache_command(const char *checkpoint, const char *out, const char *data_dir);
/* Prints {"file", "class", "probability", "probabilities"} per image; normalise: fashion-mnist, cifar10 or svhn;
 * resize: image files of another size are resized (also when the checkpoint's run was trained with --resize). */
int predict_command(const char *checkpoint, int use_ema, const char *normalise, int resize, char **files, int nfiles);
/* supervised: replay mplc_supervised_step (x, y of the finetune batch; scalars.npy [lr]) instead of mplc_step. */
int replay_command(const char *checkpoint, const char *batches, long steps, const char *out, const char *losses,
                   int supervised);

#endif
