/* The training modes and the phases of a run, and their names (in checkpoints, metrics lines, the summary and
 * messages): one home that train.c, checkpoint.c and report.c all include. */
#ifndef RUNNER_MODE_H
#define RUNNER_MODE_H

typedef enum { MODE_MPL, MODE_UDA, MODE_SUPERVISED } Mode;
typedef enum { PHASE_MAIN, PHASE_FINETUNE, PHASE_DONE } Phase;
/* The teacher's objective and feedback (docs/RUNNER.md, "Teacher objective and feedback"): the modes mpl and uda
 * are two of their combinations. */
typedef enum { OBJECTIVE_UDA, OBJECTIVE_SUPERVISED, OBJECTIVE_RANDAUGMENT } Objective;
typedef enum { FEEDBACK_OFF, FEEDBACK_DOT, FEEDBACK_LOSS_DIFFERENCE, FEEDBACK_SOFT } Feedback;

const char *mode_name(Mode m);
const char *objective_name(Objective o);
const char *feedback_name(Feedback f);
/* 0 and the value for a name (feedback also takes "dot" for "dot-product"), -1 for anything else. */
int objective_parse(const char *s, Objective *o);
int feedback_parse(const char *s, Feedback *f);
const char *phase_name(Mode m, Phase p); /* the main phase is named after the mode */

#endif
