/* The training modes and the phases of a run, and their names (in checkpoints, metrics lines, the summary and
 * messages): one home that train.c, checkpoint.c and report.c all include. */
#ifndef RUNNER_MODE_H
#define RUNNER_MODE_H

typedef enum { MODE_MPL, MODE_UDA, MODE_SUPERVISED } Mode;
typedef enum { PHASE_MAIN, PHASE_FINETUNE, PHASE_DONE } Phase;

const char *mode_name(Mode m);
const char *phase_name(Mode m, Phase p); /* the main phase is named after the mode */

#endif
