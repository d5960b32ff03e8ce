/* MATLAB Level 5 MAT-files (the format of the SVHN files train_32x32.mat / test_32x32.mat), the part of it
 * such files use: the 128-byte header, little-endian, top-level miMATRIX elements, each possibly wrapped in
 * an miCOMPRESSED (zlib) element, and real numeric arrays. Variables of other kinds (cell, struct, char,
 * sparse, complex, ...) are listed with their class so that a caller can name them in an error; their
 * contents are skipped. MATLAB v4 files, v7.3 (HDF5) files and big-endian files are rejected. */
#ifndef RUNNER_MAT_H
#define RUNNER_MAT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MAT_MAX_DIMS 8
#define MAT_MAX_VARS 32
#define MAT_NAME_CAP 64 /* MATLAB names have at most 63 characters */

/* Array classes (mxCLASS) of the array flags. */
enum {
    MAT_CLASS_CELL = 1, MAT_CLASS_STRUCT = 2, MAT_CLASS_OBJECT = 3, MAT_CLASS_CHAR = 4, MAT_CLASS_SPARSE = 5,
    MAT_CLASS_DOUBLE = 6, MAT_CLASS_SINGLE = 7, MAT_CLASS_INT8 = 8, MAT_CLASS_UINT8 = 9, MAT_CLASS_INT16 = 10,
    MAT_CLASS_UINT16 = 11, MAT_CLASS_INT32 = 12, MAT_CLASS_UINT32 = 13, MAT_CLASS_INT64 = 14, MAT_CLASS_UINT64 = 15
};

typedef struct {
    char name[MAT_NAME_CAP];
    int cls;     /* MAT_CLASS_*, or another value found in the file */
    int numeric; /* a real, non-sparse numeric array whose data was read; otherwise data is NULL */
    int complex_;
    int ndim;
    size_t dims[MAT_MAX_DIMS]; /* column-major: element (i0, i1, ...) is at i0 + dims[0]*(i1 + dims[1]*(...)) */
    size_t count;              /* product of dims */
    int type;                  /* storage type of the data (miUINT8, miDOUBLE...): MATLAB may store a double
                                  array in a smaller integer type when its values fit */
    size_t elem;               /* bytes per stored element */
    const uint8_t *data;       /* count x elem bytes, little-endian, owned by the MatFile */
} MatVar;

typedef struct {
    int nvars;
    MatVar vars[MAT_MAX_VARS];
    uint8_t *file;                  /* the file's bytes */
    uint8_t *inflated[MAT_MAX_VARS]; /* decompressed elements, one per miCOMPRESSED variable */
    uint64_t planned;                /* bytes of the inflated elements taken from the memory budget (budget.h) */
} MatFile;

int mat_read(const char *path, MatFile *m, Err *e);
void mat_free(MatFile *m);
const MatVar *mat_find(const MatFile *m, const char *name);
/* Element i of a numeric variable, converted to double. */
double mat_get(const MatVar *v, size_t i);
/* "double", "uint8", "cell array"... for messages. */
const char *mat_class_name(int cls);
/* "32x32x3x100" for messages. */
void mat_dims_str(const MatVar *v, char *out, size_t cap);

#endif
