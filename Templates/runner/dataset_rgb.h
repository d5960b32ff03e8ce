/* The two 32x32 RGB data sets, CIFAR-10 and SVHN (dataset_rgb.c): finding their files, checking them
 * against the model, and normalising their 8-bit pixels per channel. Used by dataset.c. */
#ifndef RUNNER_DATASET_RGB_H
#define RUNNER_DATASET_RGB_H

#include "dataset.h"

/* The directory that holds the CIFAR-10 batches: DIR itself or DIR/cifar-10-batches-bin (how the published
 * archive unpacks), whichever has data_batch_1.bin or test_batch.bin. Returns 1 if found, 0 if not, -1 on a
 * path error. */
int cifar_find(const char *dir, char *out, size_t cap, Err *e);
/* 1 if DIR holds train_32x32.mat or test_32x32.mat. */
int svhn_find(const char *dir);

/* Load the test split and, if want_train, the training split; set d->format and the per-channel range and
 * mean (d->lo, d->hi, d->mean). On failure d may hold partial data: the caller frees it. */
int cifar_load(const char *dir, int want_train, Dataset *d, Err *e);
int svhn_load(const char *dir, int want_train, Dataset *d, Err *e);

#endif
