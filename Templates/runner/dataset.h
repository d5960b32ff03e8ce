/* Training and test data: Fashion-MNIST IDX files (gzip or not) or NPY files, checked against the
 * model's input shape and classes, normalised once at load time. */
#ifndef RUNNER_DATASET_H
#define RUNNER_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Fashion-MNIST pixel statistics: x = (p/255 - mean)/std for 8-bit data. */
#define FMNIST_MEAN 0.2860
#define FMNIST_STD 0.3530

typedef struct {
    size_t n;
    float *x;   /* n x MPLC_INPUT_SIZE, normalised, each image [H, W, C] */
    int32_t *y; /* n labels in [0, MPLC_CLASSES) */
} DataSplit;

typedef struct {
    DataSplit train, test;
    /* Range and mean of the (normalised) training pixels: augmentation pads with lo, fills Cutout with
     * mean, and maps pixel operations (solarize, posterize...) onto [lo, hi]. */
    float lo, hi, mean;
    char format[8]; /* "idx" or "npy" */
} Dataset;

/* Loads DIR/train-images-idx3-ubyte[.gz] etc., or DIR/train_x.npy etc. when DIR/train_x.npy exists.
 * want_train = 0 loads only the test set (for `mplc-run eval`). */
int dataset_load(const char *dir, int want_train, Dataset *d, Err *e);
void dataset_free(Dataset *d);

/* The class-balanced labeled subset: labels/K examples per class, the first ones met in a seeded
 * shuffle of the training set. Writes `labels` indices into the training set. */
int dataset_pick_labeled(const DataSplit *train, long labels, uint64_t seed, uint32_t **out, Err *e);

#endif
