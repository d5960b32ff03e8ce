/* The array formats (dataset_arrays.c): Fashion-MNIST IDX files (gzip or not) and NumPy NPY files, checked
 * against the model's input shape and classes and normalised once. Entries of the table in dataset.c. */
#ifndef RUNNER_DATASET_ARRAYS_H
#define RUNNER_DATASET_ARRAYS_H

#include "datasplit.h"

/* IDX when DIR/train-images-idx3-ubyte[.gz] exists (t10k-images-idx3-ubyte[.gz] for eval). */
int idx_find(const char *dir, int want_train, char *root, size_t cap, Err *e);
int idx_load(const char *dir, int want_train, Dataset *d, Err *e);
/* NPY when DIR/train_x.npy exists (or only test_x.npy, for eval). */
int npy_find(const char *dir, int want_train, char *root, size_t cap, Err *e);
int npy_load(const char *dir, int want_train, Dataset *d, Err *e);

#endif
