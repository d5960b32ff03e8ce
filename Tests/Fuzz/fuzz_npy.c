/* libFuzzer target: NPY files (versions 1-3, optionally gzip-compressed) through npy_read, then what
 * the dataset and replay code do with a successful read: the shape string and every element. */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <string.h>

#include "budget.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    NpyArray a;
    Err e;
    if (npy_read(path, &a, &e) == 0) {
        FUZZ_ASSERT(a.ndim >= 0 && a.ndim <= NPY_MAX_DIMS);
        size_t count = 1;
        for (int i = 0; i < a.ndim; i++) count *= a.shape[i];
        FUZZ_ASSERT(count == a.count && a.data != NULL);
        fuzz_touch(a.data, a.count * npy_type_size(a.type));
        char shape[128];
        npy_shape_str(&a, shape, sizeof shape);
        FUZZ_ASSERT(shape[0] == '(');
        if (a.type != NPY_F4) { /* the callers read integer labels only through npy_int_at */
            long long sum = 0;
            for (size_t i = 0; i < a.count; i++) sum += npy_int_at(&a, i) & 1;
            fuzz_sink += (unsigned)sum;
        }
        npy_free(&a);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
        FUZZ_ASSERT(a.data == NULL);
    }
    FUZZ_ASSERT(budget_planned() == 0); /* every byte taken from the memory budget was returned */
    return 0;
}
