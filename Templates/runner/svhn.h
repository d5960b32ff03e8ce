/* SVHN, "format 2" (cropped 32x32 digits, http://ufldl.stanford.edu/housenumbers/): train_32x32.mat and
 * test_32x32.mat, MATLAB Level 5 files holding X, uint8 32x32x3xN (MATLAB's column-major order: row, column,
 * channel, image), and y, Nx1 labels 1..10 where 10 stands for the digit 0. */
#ifndef RUNNER_SVHN_H
#define RUNNER_SVHN_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SVHN_SIDE 32
#define SVHN_CHANNELS 3
#define SVHN_PIXELS (SVHN_SIDE * SVHN_SIDE * SVHN_CHANNELS)
#define SVHN_CLASSES 10

/* The usual SVHN statistics of p/255 per channel (R, G, B). */
#define SVHN_MEAN_R 0.4377
#define SVHN_MEAN_G 0.4438
#define SVHN_MEAN_B 0.4728
#define SVHN_STD_R 0.1980
#define SVHN_STD_G 0.2010
#define SVHN_STD_B 0.1970

typedef struct {
    size_t n;
    uint8_t *pixels; /* n x 32 x 32 x 3, each image [H, W, C] (channels last) */
    uint8_t *labels; /* n labels 0..9 (the file's 10 is 0) */
} SvhnSet;

/* Reads X and y from a MAT-file; fails, naming the file and the variable, on anything else than the layout
 * above (other variables are ignored). */
int svhn_read(const char *path, SvhnSet *s, Err *e);
void svhn_free(SvhnSet *s);

#endif
