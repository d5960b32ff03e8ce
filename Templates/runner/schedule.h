/* Learning-rate and UDA-weight schedules of docs/ABI.md ("Schedules"), from the model.h recipe. */
#ifndef RUNNER_SCHEDULE_H
#define RUNNER_SCHEDULE_H

double sched_warmup(long t, long warmup);
double sched_cosine(long t, long warmup, long total, int on);
/* Teacher learning rate at step t of a run of `total` steps. */
double sched_lr_teacher(long t, long total);
/* Student learning rate: 0 for t < wait, then warm-up and cosine over the remaining total - wait steps. */
double sched_lr_student(long t, long total, long wait);
double sched_uda_weight(long t);

#endif
