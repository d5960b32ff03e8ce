#include "dataset_csv.h"

#include <math.h>
#include <string.h>

#include "csv.h"
#include "model.h"

static int csv_has(const char *dir, const char *name, Err *e, int *found) {
    char probe[PATH_CAP];
    if (path_join(probe, sizeof probe, e, "%s/%s", dir, name) != 0) return -1;
    *found = file_exists(probe);
    return 0;
}

/* name into s: each row the model's inputs, then (labeled) the label, an integer in [0, classes). */
static int load_split(const char *dir, const char *name, int labeled, DataSplit *s, Err *e) {
    char path[PATH_CAP];
    if (path_join(path, sizeof path, e, "%s/%s", dir, name) != 0) return -1;
    CsvTable t;
    if (csv_read(path, &t, e) != 0) return -1;
    const size_t D = (size_t)MPLC_INPUT_SIZE, want = D + (labeled ? 1 : 0);
    int rc = -1;
    if (t.cols != want) {
        err_set(e, "%s: %zu columns, model %s takes %zu features%s", path, t.cols, MPLC_MODEL_NAME, D,
                labeled ? " and the label (last)" : " (no label: these are unlabeled)");
        goto done;
    }
    if (dataset_alloc_split(s, t.rows, path, e) != 0) goto done;
    for (size_t i = 0; i < t.rows; i++) {
        const float *row = t.v + i * t.cols;
        memcpy(s->x + i * D, row, D * sizeof(float));
        if (!labeled) continue;
        float y = row[D];
        if (y != floorf(y) || y < 0 || y >= MPLC_CLASSES) {
            err_set(e, "%s: row %zu: label %g is not a class number in [0, %d) (model %s has %d classes)", path, i + 1,
                    (double)y, MPLC_CLASSES, MPLC_MODEL_NAME, MPLC_CLASSES);
            goto done;
        }
        s->y[i] = (int32_t)y;
    }
    rc = 0;
done:
    csv_free(&t);
    return rc;
}

int csv_find(const char *dir, int want_train, char *root, size_t cap, Err *e) {
    int train, labeled, test;
    if (csv_has(dir, "train.csv", e, &train) || csv_has(dir, "labeled.csv", e, &labeled) ||
        csv_has(dir, "test.csv", e, &test))
        return -1;
    int found = train || labeled || (!want_train && test);
    return found && path_join(root, cap, e, "%s", dir) != 0 ? -1 : found;
}

int csv_load(const char *dir, int want_train, Dataset *d, Err *e) {
    int labeled, unlabeled;
    if (csv_has(dir, "labeled.csv", e, &labeled) || csv_has(dir, "unlabeled.csv", e, &unlabeled)) return -1;
    if (want_train && labeled) {
        d->labeled_as_is = 1;
        if (load_split(dir, "labeled.csv", 1, &d->train, e) != 0 ||
            (unlabeled && load_split(dir, "unlabeled.csv", 0, &d->unlabeled, e) != 0))
            return -1;
    } else if (want_train && load_split(dir, "train.csv", 1, &d->train, e) != 0) {
        return -1;
    }
    if (load_split(dir, "test.csv", 1, &d->test, e) != 0) return -1;
    dataset_set_stats(d, 0);
    return 0;
}
