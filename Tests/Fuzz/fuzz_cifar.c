/* libFuzzer target: CIFAR-10 binary batches (plain or gzip-compressed) through cifar_read, twice into one
 * CifarBatch as the dataset code does with data_batch_1..5.bin. */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <string.h>

#include "budget.h"
#include "cifar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    CifarBatch b = {0, NULL};
    Err e;
    for (int pass = 0; pass < 2; pass++) {
        size_t before = b.n;
        if (cifar_read(path, &b, &e) == 0) {
            FUZZ_ASSERT(b.n > before && b.records != NULL);
            fuzz_touch(b.records, b.n * CIFAR_RECORD);
            for (size_t i = 0; i < b.n; i++) FUZZ_ASSERT(cifar_label(&b, i) < CIFAR_CLASSES);
            FUZZ_ASSERT(cifar_pixel(&b, b.n - 1, 31, 31, 2) == b.records[b.n * CIFAR_RECORD - 1]);
        } else {
            FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL); /* every message names the file */
            FUZZ_ASSERT(b.n == before);                                   /* a failed read appends nothing */
        }
    }
    cifar_free(&b);
    FUZZ_ASSERT(budget_planned() == 0); /* every byte taken from the memory budget was returned */
    return 0;
}
