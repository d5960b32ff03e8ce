/* libFuzzer target: CSV files of feature vectors (dataset_csv.c) through csv_read: every value finite, the table
 * as large as its rows and columns say, errors naming the file, the memory budget back to 0. */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <math.h>
#include <string.h>

#include "budget.h"
#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    CsvTable t;
    Err e;
    if (csv_read(path, &t, &e) == 0) {
        FUZZ_ASSERT(t.rows > 0 && t.cols > 0 && t.v != NULL);
        for (size_t i = 0; i < t.rows * t.cols; i++) FUZZ_ASSERT(isfinite(t.v[i]));
        csv_free(&t);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
        FUZZ_ASSERT(t.v == NULL);
    }
    FUZZ_ASSERT(budget_planned() == 0);
    return 0;
}
