/* Training and test data: Fashion-MNIST IDX files (gzip or not), NPY files, CIFAR-10 binary batches or
 * SVHN MAT-files, checked against the model's input shape and classes, normalised once at load time. */
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
    uint64_t planned; /* bytes of x and y taken from the memory budget (budget.h), returned by dataset_free */
} DataSplit;

typedef struct {
    DataSplit train, test;
    /* Per channel (MPLC_INPUT_CHANNELS values each): range and mean of the (normalised) training pixels.
     * Augmentation pads with lo, fills Cutout with mean, and maps pixel operations (solarize, posterize...)
     * onto [lo, hi]. 8-bit data normalised per channel (CIFAR-10, SVHN) has a different range in each
     * channel; the other formats have the same values in every channel. */
    float *lo, *hi, *mean;
    char format[16]; /* "idx", "npy", "cifar10", "svhn" or "moons" */
} Dataset;

/* Loads, by the files present in DIR (first match):
 *   DIR/train_x.npy ...                               NumPy ("npy")
 *   DIR/data_batch_1.bin ... or DIR/test_batch.bin    CIFAR-10 ("cifar10"), also in DIR/cifar-10-batches-bin/
 *   DIR/train_32x32.mat or DIR/test_32x32.mat         SVHN ("svhn")
 *   DIR/train-images-idx3-ubyte[.gz] ...              Fashion-MNIST IDX ("idx"), the default
 * want_train = 0 loads only the test set (for `mplc-run eval`). */
int dataset_load(const char *dir, int want_train, Dataset *d, Err *e);
void dataset_free(Dataset *d);
/* Allocates s->x and s->y for n examples, after taking their bytes from the memory budget (budget.h):
 * fails, naming path, if they do not fit beside the arenas and the data loaded so far. */
int dataset_alloc_split(DataSplit *s, size_t n, const char *path, Err *e);
/* Sets the same range and mean in every channel (formats without per-channel statistics). */
void dataset_set_range(Dataset *d, float lo, float hi, float mean);

/* The class-balanced labeled subset: labels/K examples per class, the first ones met in a seeded
 * shuffle of the training set. Writes `labels` indices into the training set. */
int dataset_pick_labeled(const DataSplit *train, long labels, uint64_t seed, uint32_t **out, Err *e);

#endif
