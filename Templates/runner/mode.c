#include "mode.h"

#include <string.h>

const char *mode_name(Mode m) { return m == MODE_MPL ? "mpl" : m == MODE_UDA ? "uda" : "supervised"; }

const char *phase_name(Mode m, Phase p) {
    return p == PHASE_MAIN ? mode_name(m) : p == PHASE_FINETUNE ? "finetune" : "done";
}

static const char *const OBJECTIVES[] = {"uda", "supervised", "randaugment"};
static const char *const FEEDBACKS[] = {"off", "dot-product", "loss-difference", "soft"};

const char *objective_name(Objective o) { return OBJECTIVES[o]; }
const char *feedback_name(Feedback f) { return FEEDBACKS[f]; }

int objective_parse(const char *s, Objective *o) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, OBJECTIVES[i]) == 0) return *o = (Objective)i, 0;
    return -1;
}

int feedback_parse(const char *s, Feedback *f) {
    if (strcmp(s, "dot") == 0) return *f = FEEDBACK_DOT, 0;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, FEEDBACKS[i]) == 0) return *f = (Feedback)i, 0;
    return -1;
}
