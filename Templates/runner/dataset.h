/* Training and test data: the table of formats (dataset.c) and the one entry point that picks a format by the
 * files present and loads it, checked against the model's input shape and classes, normalised once. */
#ifndef RUNNER_DATASET_H
#define RUNNER_DATASET_H

#include "datasplit.h"

/* One data format: how a directory is recognised as holding it, and its loader. */
typedef struct {
    const char *name;  /* Dataset.format */
    const char *files; /* what selects it, for the message of a directory that holds no data set */
    /* 1 if DIR holds this format, with root set to the directory its files are in; 0 if not; -1 on a path error.
     * want_train = 0: only the test split is needed. */
    int (*find)(const char *dir, int want_train, char *root, size_t cap, Err *e);
    /* Loads the test split and, if want_train, the training split, and sets d's statistics (lo, hi, mean).
     * On failure d may hold partial data: dataset_load frees it. */
    int (*load)(const char *root, int want_train, Dataset *d, Err *e);
} DataFormat;

extern const DataFormat DATA_FORMATS[];
extern const int DATA_FORMAT_COUNT;

/* Loads DIR in the first format of the table whose find accepts it (docs/RUNNER.md, Data).
 * want_train = 0 loads only the test set (for `mplc-run eval`). resize: image files of another size than the
 * model's are resized (--resize; the formats of arrays have the model's size or are refused). */
int dataset_load(const char *dir, int want_train, int resize, Dataset *d, Err *e);

#endif
