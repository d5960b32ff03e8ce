/* NumPy .npy files: versions 1, 2 and 3 headers, C order, little-endian '<f4', '|u1', '<i4', '<i8'.
 * Read through zlib, so a gzip-compressed .npy also works. */
#ifndef RUNNER_NPY_H
#define RUNNER_NPY_H

#include <stddef.h>

#include "util.h"

#define NPY_MAX_DIMS 8

typedef enum { NPY_F4, NPY_U1, NPY_I4, NPY_I8 } NpyType;

typedef struct {
    NpyType type;
    int ndim;
    size_t shape[NPY_MAX_DIMS];
    size_t count; /* product of shape (1 for a 0-d array) */
    void *data;   /* count elements of the type, native (little-endian) layout */
} NpyArray;

/* The data's size, from the header, is taken from the memory budget (budget.h) before it is read, and
 * returned by npy_free. */
int npy_read(const char *path, NpyArray *out, Err *e);
void npy_free(NpyArray *a);
/* Writes a version-1 file, atomically (path.tmp, synced, renamed over path: AtomicFile in util.h); for the teacher
 * cache, tests, and anyone preparing replay batches in C. */
int npy_write(const char *path, NpyType type, int ndim, const size_t *shape, const void *data, Err *e);
const char *npy_type_name(NpyType t);
size_t npy_type_size(NpyType t);
/* Reads label element i as an integer whatever the integer type (u1, i4, i8). */
long long npy_int_at(const NpyArray *a, size_t i);
/* "(60000, 28, 28)" for messages. */
void npy_shape_str(const NpyArray *a, char *out, size_t cap);

#endif
