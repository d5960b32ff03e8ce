/* A loaded data set in memory, as every format's loader (dataset.h: the table of formats) fills it: the splits,
 * allocated against the memory budget (budget.h), and the pixel statistics augmentation needs. */
#ifndef RUNNER_DATASPLIT_H
#define RUNNER_DATASPLIT_H

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

/* Class names (image folders): at most this many bytes each, with the terminating 0, and all of them together
 * (quoted, comma-separated) at most DATASET_CLASS_NAMES_MAX, so that a checkpoint's metadata holds them. */
#define DATASET_CLASS_NAME_MAX 64
#define DATASET_CLASS_NAMES_MAX 1536

typedef struct {
    /* train: the training set; with labeled_as_is, the labeled set as given (no --labels split).
     * unlabeled: images without labels (y unused), for formats that keep them apart; n = 0 when there are
     * none, and then the training images serve as the unlabeled set. */
    DataSplit train, unlabeled, test;
    int labeled_as_is;
    char **class_names; /* MPLC_CLASSES names, from the format (image folders); NULL when it has none */
    float *norm_mean, *norm_std; /* per channel, of the training pixels in [0, 1], when the format computed the
                                  * normalisation x = (p/255 - mean)/std; NULL when it has fixed statistics */
    /* Per channel (MPLC_INPUT_CHANNELS values each): range and mean of the (normalised) training pixels.
     * Augmentation pads with lo, fills Cutout with mean, and maps pixel operations (solarize, posterize...)
     * onto [lo, hi]. 8-bit data normalised per channel (CIFAR-10, SVHN) has a different range in each
     * channel; the other formats have the same values in every channel. */
    float *lo, *hi, *mean;
    char format[16]; /* the format's name in the table of dataset.c: "idx", "npy", "cifar10", "svhn", "images", "csv"... */
    int resize;      /* set by dataset_load before the format loads: resize images of another size (--resize) */
    size_t resized;  /* how many images the format resized */
} Dataset;

/* x = (p/255 - FMNIST_MEAN)/FMNIST_STD: how 8-bit data without statistics of its own is normalised. */
float dataset_byte(uint8_t p);
/* Allocates s->x and s->y for n examples, after taking their bytes from the memory budget (budget.h):
 * fails, naming path, if they do not fit beside the arenas and the data loaded so far. */
int dataset_alloc_split(DataSplit *s, size_t n, const char *path, Err *e);
/* Sets the same range and mean in every channel (formats without per-channel statistics). */
void dataset_set_range(Dataset *d, float lo, float hi, float mean);
/* One range and mean over all channels, from the training pixels (the test pixels without a training set):
 * the range is the data's, or with byte_range (and for constant data) that of normalised bytes. */
void dataset_set_stats(Dataset *d, int byte_range);
void dataset_free(Dataset *d);
/* The class names as a JSON array, ["T-shirt","Trouser",...], into out[cap] (at least DATASET_CLASS_NAMES_MAX + 8
 * bytes); "" when the data has none. */
void dataset_classes_json(const Dataset *d, char *out, size_t cap);
/* The normalisation the data computed (norm_mean, norm_std) as the checkpoint records it, one "%.9g" per channel,
 * comma-separated, into mean and std (DATASET_NORM_TEXT bytes each); both "" when the data has fixed statistics. */
#define DATASET_NORM_TEXT 256
void dataset_norm_text(const Dataset *d, char *mean, char *std);

/* The class-balanced labeled subset: labels/K examples per class, the first ones met in a seeded
 * shuffle of the training set. Writes `labels` indices into the training set. */
int dataset_pick_labeled(const DataSplit *train, long labels, uint64_t seed, uint32_t **out, Err *e);

#endif
