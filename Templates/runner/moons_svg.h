/* The picture of a two-moons run (moons.h): the student's and the teacher's decision regions as an SVG. */
#ifndef RUNNER_MOONS_SVG_H
#define RUNNER_MOONS_SVG_H

#include <stdint.h>

#include "datasplit.h"
#include "util.h"

/* Writes an SVG of the student's and the teacher's decision regions over the data's bounding box, with axes, a
 * legend, the unlabeled points small and the labeled ones large, and in each panel's title its test accuracy
 * (accuracy[0] the teacher's, [1] the student's; negative: none). */
int moons_write_boundary(const char *path, const float *state, float *scratch, float *x, float *logits,
                         const Dataset *d, const uint32_t *labeled, size_t n_labeled, const double accuracy[2],
                         Err *e);

#endif
