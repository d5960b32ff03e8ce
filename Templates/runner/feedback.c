/* The feedback variants (docs/RUNNER.md, "Feedback variants"): what the runner passes the step as feedback_scale
 * and feedback_baseline, and the moving averages they come from. A leaf of the runner: train.c and report.c call it. */
#include <math.h>

#include "trainer.h"

/* The paper's rule is scale 1, baseline 0: h itself weighs the teacher's pseudo labels. */
int feedback_variant(const TrainConfig *c) {
    return c->feedback_weight != 1 || c->feedback_baseline > 0 || c->feedback_normalise > 0 || c->feedback_wait > 0;
}

void feedback_inputs(const Trainer *T, long t, double *scale, double *baseline) {
    const TrainConfig *c = &T->cfg;
    const RunState *rs = &T->rs;
    *scale = c->feedback_weight, *baseline = 0;
    /* The teacher's wait: no feedback before step N (h is largest just after the student starts learning); the
     * averages below still follow h from the student's first step, so a normaliser is ready when it ends. */
    if (t < c->feedback_wait) {
        *scale = 0;
        return;
    }
    if (c->feedback_baseline > 0) {
        /* The official code's order: the average m takes this step's h before it is subtracted, and
         * h - m_t = d (h - m_{t-1}); the step gets m_{t-1} and the factor d, as h is only known inside it. */
        *baseline = rs->fb_mean;
        *scale *= c->feedback_baseline;
    }
    if (c->feedback_normalise > 0) {
        /* By the bias-corrected average of the past steps' |coefficient| (this step's is known only after it); no
         * feedback until there is one. */
        const double avg = rs->fb_updates > 0 ? rs->fb_abs / (1 - pow(c->feedback_normalise, (double)rs->fb_updates)) : 0;
        *scale = avg > 0 ? *scale / avg : 0;
    }
}

/* After a step in which the student learned: the averages take the step's h. */
void feedback_follow(Trainer *T, const float *io) {
    const TrainConfig *c = &T->cfg;
    RunState *rs = &T->rs;
    const double h = io[T->out_h->offset];
    double coefficient = h;
    if (c->feedback_baseline > 0) {
        rs->fb_mean = c->feedback_baseline * rs->fb_mean + (1 - c->feedback_baseline) * h;
        coefficient = h - rs->fb_mean;
    }
    if (c->feedback_normalise > 0) {
        rs->fb_abs = c->feedback_normalise * rs->fb_abs + (1 - c->feedback_normalise) * fabs(coefficient);
        rs->fb_updates++;
    }
}
