#include "ema.h"

#include <string.h>

#include "tensors.h"

int ema_tracks(const mplc_tensor *t) { return starts_with(t->name, "student/"); }

/* The average starts at the student's weights after its first learning step. Starting from zeros
 * would pull it towards 0 for hundreds of steps (or need a bias correction); starting at the
 * initialisation would be the same in modes mpl and uda (the student's weights do not change while it waits)
 * but add an untrained term in mode supervised and in finetuning-only uses. */
static void ema_copy(float *ema, const float *state, const mplc_tensor *t) {
    memcpy(ema + t->offset, state + t->offset, sizeof(float) * t->count);
}

/* Double arithmetic: (1 - decay) is not representable in float for decays like 0.995, and a float
 * product would round twice; the update is a few floats per parameter per step, cheap next to the step. */
static void ema_blend(float *ema, const float *state, const mplc_tensor *t, double decay) {
    const double keep = decay, take = 1.0 - decay;
    float *e = ema + t->offset;
    const float *p = state + t->offset;
    for (size_t k = 0; k < t->count; k++) e[k] = (float)(keep * (double)e[k] + take * (double)p[k]);
}

void ema_update(float *ema, const float *state, double decay, long updates_done) {
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (!ema_tracks(t)) continue;
        if (updates_done == 0) ema_copy(ema, state, t);
        else ema_blend(ema, state, t, decay);
    }
}
