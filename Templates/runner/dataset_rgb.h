/* The two 32x32 RGB data sets, CIFAR-10 and SVHN (dataset_rgb.c): finding their files, checking them
 * against the model, and normalising their 8-bit pixels per channel. Used by dataset.c. */
#ifndef RUNNER_DATASET_RGB_H
#define RUNNER_DATASET_RGB_H

#include "datasplit.h"

/* Entries of the table of formats (dataset.h). CIFAR-10's root is the directory that holds its batches: DIR
 * itself or DIR/cifar-10-batches-bin (how the published archive unpacks), whichever has data_batch_1.bin or
 * test_batch.bin. SVHN's is DIR, if it holds train_32x32.mat or test_32x32.mat. The loaders set the
 * per-channel range and mean (d->lo, d->hi, d->mean). */
int cifar_find(const char *dir, int want_train, char *out, size_t cap, Err *e);
int svhn_find(const char *dir, int want_train, char *out, size_t cap, Err *e);
int cifar_load(const char *dir, int want_train, Dataset *d, Err *e);
int svhn_load(const char *dir, int want_train, Dataset *d, Err *e);

#endif
