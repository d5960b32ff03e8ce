/* CSV feature vectors (dataset_csv.c), for Features(D) models, an entry of the table of formats (dataset.h):
 * DIR/train.csv (D features and the label, last, per row; --labels draws the labeled split), or DIR/labeled.csv
 * (the same, used as is) with DIR/unlabeled.csv (D features per row, no label; optional); and DIR/test.csv.
 * A header line is allowed (csv.h). Values are used as is. */
#ifndef RUNNER_DATASET_CSV_H
#define RUNNER_DATASET_CSV_H

#include "datasplit.h"

/* CSV when DIR/train.csv or DIR/labeled.csv exists (or only test.csv, for eval). */
int csv_find(const char *dir, int want_train, char *root, size_t cap, Err *e);
int csv_load(const char *dir, int want_train, Dataset *d, Err *e);

#endif
