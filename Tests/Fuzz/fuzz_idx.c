/* libFuzzer target: IDX files, plain or gzip-compressed (zlib passes plain files through), through
 * idx_read. The first byte picks the expected magic (images or labels); the rest is the file. */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <string.h>

#include "budget.h"
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint32_t magic = (data[0] & 1) ? IDX_MAGIC_LABELS : IDX_MAGIC_IMAGES;
    const char *path = fuzz_file(data + 1, size - 1);
    IdxArray a;
    Err e;
    if (idx_read(path, magic, &a, &e) == 0) {
        FUZZ_ASSERT(a.ndim == (int)(magic & 0xFF));
        size_t count = 1;
        for (int i = 0; i < a.ndim; i++) count *= a.dims[i];
        FUZZ_ASSERT(count == a.count && count > 0 && a.data != NULL);
        fuzz_touch(a.data, a.count);
        idx_free(&a);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL); /* every message names the file */
        FUZZ_ASSERT(a.data == NULL);
    }
    FUZZ_ASSERT(budget_planned() == 0); /* every byte taken from the memory budget was returned */
    return 0;
}
