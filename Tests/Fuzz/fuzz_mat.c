/* libFuzzer target: MAT-files (Level 5) through mat_read, then every element of every numeric variable
 * through mat_get, then the same file through svhn_read (X and y to images and labels). */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <string.h>

#include "budget.h"
#include "mat.h"
#include "svhn.h"

static void check_vars(const MatFile *m) {
    FUZZ_ASSERT(m->nvars >= 0 && m->nvars <= MAT_MAX_VARS);
    for (int i = 0; i < m->nvars; i++) {
        const MatVar *v = &m->vars[i];
        FUZZ_ASSERT(strlen(v->name) < MAT_NAME_CAP && mat_class_name(v->cls) != NULL);
        FUZZ_ASSERT(v->ndim >= 1 && v->ndim <= MAT_MAX_DIMS);
        char dims[128];
        mat_dims_str(v, dims, sizeof dims);
        if (!v->numeric) {
            FUZZ_ASSERT(v->data == NULL);
            continue;
        }
        size_t count = 1;
        for (int d = 0; d < v->ndim; d++) count *= v->dims[d];
        FUZZ_ASSERT(count == v->count && v->elem >= 1 && v->elem <= 8 && (v->count == 0 || v->data != NULL));
        fuzz_touch(v->data, v->count * v->elem);
        double sum = 0;
        for (size_t k = 0; k < v->count; k++) sum += mat_get(v, k);
        fuzz_sink += sum > 0;
        FUZZ_ASSERT(mat_find(m, v->name) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    static MatFile m;
    Err e;
    if (mat_read(path, &m, &e) == 0) {
        check_vars(&m);
        mat_free(&m);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
        FUZZ_ASSERT(m.file == NULL && m.nvars == 0); /* freed on failure */
    }
    SvhnSet s;
    if (svhn_read(path, &s, &e) == 0) {
        FUZZ_ASSERT(s.n > 0 && s.pixels != NULL && s.labels != NULL);
        fuzz_touch(s.pixels, s.n * SVHN_PIXELS);
        for (size_t i = 0; i < s.n; i++) FUZZ_ASSERT(s.labels[i] < SVHN_CLASSES);
        svhn_free(&s);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
        FUZZ_ASSERT(s.pixels == NULL && s.labels == NULL);
    }
    FUZZ_ASSERT(budget_planned() == 0); /* every byte taken from the memory budget was returned */
    return 0;
}
