#include "cifar.h"

#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "fileio.h"

/* Appends data[0, len) (whole records) to b. */
static void append(CifarBatch *b, const uint8_t *data, size_t len) {
    size_t have = b->n * CIFAR_RECORD;
    uint8_t *grown = realloc(b->records, have + len);
    if (!grown) die(EXIT_BAD_INPUT, "out of memory holding %zu CIFAR-10 records", b->n + len / CIFAR_RECORD);
    memcpy(grown + have, data, len);
    b->records = grown;
    b->n += len / CIFAR_RECORD;
}

int cifar_read(const char *path, CifarBatch *b, Err *e) {
    void *data = NULL;
    size_t len = 0;
    if (in_read_file(path, &data, &len, e) != 0) return -1;
    int rc = 0;
    const uint8_t *p = data;
    if (len == 0) rc = err_set(e, "%s: empty (a CIFAR-10 batch holds records of %d bytes)", path, CIFAR_RECORD);
    else if (len % CIFAR_RECORD != 0)
        rc = err_set(e,
                     "%s: truncated or not a CIFAR-10 batch: %zu bytes is not a multiple of the %d-byte record "
                     "(%zu whole records and %zu bytes left over)",
                     path, len, CIFAR_RECORD, len / CIFAR_RECORD, len % CIFAR_RECORD);
    for (size_t i = 0; rc == 0 && i < len / CIFAR_RECORD; i++)
        if (p[i * CIFAR_RECORD] >= CIFAR_CLASSES)
            rc = err_set(e, "%s: label %u of record %zu (byte %zu) is not a CIFAR-10 class (0..9); is this CIFAR-100?",
                         path, p[i * CIFAR_RECORD], i, i * CIFAR_RECORD);
    /* CIFAR-10 has no header: the records count in the memory budget once read, before they are kept. */
    if (rc == 0) rc = budget_take(len, path, "the CIFAR-10 records", e);
    if (rc == 0) append(b, p, len);
    free(data);
    return rc;
}

void cifar_free(CifarBatch *b) {
    budget_return((uint64_t)b->n * CIFAR_RECORD);
    free(b->records);
    b->records = NULL;
    b->n = 0;
}
