#include "schedule.h"

#include <math.h>

#include "model.h"

#define RUNNER_PI 3.14159265358979323846

double sched_warmup(long t, long warmup) {
    if (warmup <= 0) return 1.0;
    double w = (double)(t + 1) / (double)warmup;
    return w < 1.0 ? w : 1.0;
}

double sched_cosine(long t, long warmup, long total, int on) {
    /* Before the warm-up ends, or with no room for a decay, the factor is 1. */
    if (!on || t < warmup || total <= warmup) return 1.0;
    return 0.5 * (1.0 + cos(RUNNER_PI * (double)(t - warmup) / (double)(total - warmup)));
}

double sched_lr_teacher(long t, long total) {
    return (double)(MPLC_TEACHER_LR) * sched_warmup(t, MPLC_TEACHER_WARMUP_STEPS) *
           sched_cosine(t, MPLC_TEACHER_WARMUP_STEPS, total, MPLC_TEACHER_COSINE);
}

double sched_lr_student(long t, long total, long wait) {
    if (t < wait) return 0.0;
    return (double)(MPLC_STUDENT_LR) * sched_warmup(t - wait, MPLC_STUDENT_WARMUP_STEPS) *
           sched_cosine(t - wait, MPLC_STUDENT_WARMUP_STEPS, total - wait, MPLC_STUDENT_COSINE);
}

double sched_uda_weight(long t) {
    double ramp = (double)(MPLC_UDA_RAMP_STEPS);
    if (ramp <= 0) return (double)(MPLC_UDA_WEIGHT);
    double f = (double)t / ramp;
    return (double)(MPLC_UDA_WEIGHT) * (f < 1.0 ? f : 1.0);
}
