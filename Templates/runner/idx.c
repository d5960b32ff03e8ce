#include "idx.h"

#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "fileio.h"

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int idx_read(const char *path, uint32_t magic, IdxArray *out, Err *e) {
    memset(out, 0, sizeof *out);
    InFile f;
    if (in_open(&f, path, e) != 0) return -1;
    unsigned char head[4];
    if (in_read(&f, head, 4, "the IDX magic number", e) != 0) goto fail;
    uint32_t got = be32(head);
    if (got != magic) {
        err_set(e, "%s: wrong magic number 0x%08X, expected 0x%08X (%s)", path, got, magic,
                magic == IDX_MAGIC_IMAGES ? "IDX unsigned-byte images, 3 dimensions" : "IDX unsigned-byte labels, 1 dimension");
        goto fail;
    }
    out->ndim = (int)(magic & 0xFF);
    unsigned char dims[12];
    if (in_read(&f, dims, 4 * (size_t)out->ndim, "the IDX dimensions", e) != 0) goto fail;
    out->count = 1;
    for (int i = 0; i < out->ndim; i++) {
        out->dims[i] = be32(dims + 4 * i);
        if (size_mul(out->count, out->dims[i], &out->count) != 0) {
            err_set(e, "%s: dimensions overflow (dimension %d is %u)", path, i, out->dims[i]);
            goto fail;
        }
    }
    if (out->count == 0) {
        err_set(e, "%s: empty (a dimension is 0)", path);
        goto fail;
    }
    /* The body's size counts in the memory budget before a byte of it is read (a small gzip can claim gigabytes). */
    char what[96];
    if (out->ndim == 3)
        snprintf(what, sizeof what, "the %ux%ux%u images of the IDX header", out->dims[0], out->dims[1], out->dims[2]);
    else
        snprintf(what, sizeof what, "the %u labels of the IDX header", out->dims[0]);
    if (budget_take(out->count, path, what, e) != 0) goto fail;
    void *data;
    if (in_read_array(&f, out->count, 1, &data, "the IDX data", e) != 0) {
        budget_return(out->count);
        goto fail;
    }
    out->data = data;
    if (in_expect_end(&f, e) != 0) goto fail;
    in_close(&f);
    return 0;
fail:
    in_close(&f);
    idx_free(out);
    return -1;
}

void idx_free(IdxArray *a) {
    if (a->data) budget_return(a->count);
    free(a->data);
    a->data = NULL;
}
