/* IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or not. */
#ifndef RUNNER_IDX_H
#define RUNNER_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned bytes, 3 dimensions: count, rows, cols */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned bytes, 1 dimension: count */

typedef struct {
    int ndim;
    uint32_t dims[3];
    size_t count; /* product of dims */
    uint8_t *data;
} IdxArray;

/* Reads an IDX file whose magic must equal `magic` (one of the two above). The data's size, from the header,
 * is taken from the memory budget (budget.h) before it is read, and returned by idx_free. */
int idx_read(const char *path, uint32_t magic, IdxArray *out, Err *e);
void idx_free(IdxArray *a);

#endif
