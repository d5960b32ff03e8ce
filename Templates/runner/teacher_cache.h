/* Reduced MPL (docs/RUNNER.md, "Reduced MPL"): the large teacher's class distributions, computed once by
 * `mplc-run cache` in the runner of the large teacher's model, and read by the runner of a model whose
 * teacher reads them instead of images (MPLC_TEACHER_READS_PREDICTIONS 1).
 *
 * The file is one NPY float32 array [N_train + N_test, K]: row i < N_train is training image i, row
 * N_train + j is test image j, both in the data set's order, so a row is found from an image's index
 * alone and the cache does not depend on the seed, the labeled split or the data order of a run. */
#ifndef RUNNER_TEACHER_CACHE_H
#define RUNNER_TEACHER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "util.h"

/* A row is a distribution when its values are finite, non-negative and sum to 1 within this. */
#define TEACHER_CACHE_SUM_TOLERANCE 1e-3

typedef struct {
    const char *path;    /* as given on the command line (not copied) */
    float *rows;         /* (n_train + n_test) x MPLC_CLASSES; NULL when no cache is loaded */
    size_t n_train, n_test;
    uint64_t hash;       /* FNV-1a of the rows' bytes: checkpoints record it and --resume compares it */
    long test_correct;   /* test rows whose argmax is the label: the large teacher's accuracy */
} TeacherCache;

/* Reads and checks path against the loaded data set: dtype float32, shape [N_train + N_test, K], every
 * row a class distribution. Fails naming the file and, for a bad row, the first one. */
int teacher_cache_load(const char *path, const Dataset *d, TeacherCache *c, Err *e);
void teacher_cache_free(TeacherCache *c);

/* The cached rows of training image i, and the n_test rows of the test set (contiguous). */
const float *teacher_cache_train_row(const TeacherCache *c, size_t i);
const float *teacher_cache_test_rows(const TeacherCache *c);

/* The rows of s (n rows of K) whose first maximum is the label. */
long teacher_cache_correct(const float *rows, const DataSplit *s);

#endif
