#include "dataset_arrays.h"

#include <math.h>

#include "idx.h"
#include "model.h"
#include "npy.h"

#define IMG_H MPLC_INPUT_HEIGHT
#define IMG_W MPLC_INPUT_WIDTH
#define IMG_C MPLC_INPUT_CHANNELS

static int check_labels(const char *path, const int32_t *y, size_t n, Err *e) {
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= MPLC_CLASSES)
            return err_set(e, "%s: label %d of example %zu is outside [0, %d) (model %s has %d classes)", path, y[i], i,
                           MPLC_CLASSES, MPLC_MODEL_NAME, MPLC_CLASSES);
    return 0;
}

/* ---- IDX ---- */

static int find_idx(const char *dir, const char *name, char *out, size_t cap, Err *e) {
    if (path_join(out, cap, e, "%s/%s.gz", dir, name) != 0) return -1;
    if (file_exists(out)) return 0;
    if (path_join(out, cap, e, "%s/%s", dir, name) != 0) return -1;
    if (file_exists(out)) return 0;
    return err_set(e, "%s: missing file %s or %s.gz", dir, name, name);
}

static int load_idx_split(const char *dir, const char *images, const char *labels, DataSplit *s, Err *e) {
    char ipath[4096], lpath[4096];
    if (find_idx(dir, images, ipath, sizeof ipath, e) != 0 || find_idx(dir, labels, lpath, sizeof lpath, e) != 0)
        return -1;
    IdxArray im, lb;
    if (idx_read(ipath, IDX_MAGIC_IMAGES, &im, e) != 0) return -1;
    if (im.dims[1] != IMG_H || im.dims[2] != IMG_W || IMG_C != 1) {
        err_set(e, "%s: images are %ux%u with 1 channel, model %s expects %dx%d with %d channel(s)", ipath, im.dims[1],
                im.dims[2], MPLC_MODEL_NAME, IMG_H, IMG_W, IMG_C);
        idx_free(&im);
        return -1;
    }
    if (idx_read(lpath, IDX_MAGIC_LABELS, &lb, e) != 0) {
        idx_free(&im);
        return -1;
    }
    int rc = -1;
    if (lb.dims[0] != im.dims[0]) {
        err_set(e, "%s: %u labels but %s has %u images", lpath, lb.dims[0], ipath, im.dims[0]);
        goto done;
    }
    if (dataset_alloc_split(s, im.dims[0], ipath, e) != 0) goto done;
    for (size_t i = 0; i < im.count; i++) s->x[i] = dataset_byte(im.data[i]);
    for (size_t i = 0; i < s->n; i++) s->y[i] = lb.data[i];
    rc = check_labels(lpath, s->y, s->n, e);
done:
    idx_free(&im);
    idx_free(&lb);
    return rc;
}

/* ---- NPY ---- */

static int image_shape_ok(const NpyArray *a) {
    if (a->ndim == 4) return a->shape[1] == IMG_H && a->shape[2] == IMG_W && a->shape[3] == IMG_C;
    if (a->ndim == 3) return IMG_C == 1 && a->shape[1] == IMG_H && a->shape[2] == IMG_W;
    if (a->ndim == 2) return a->shape[1] == (size_t)MPLC_INPUT_SIZE;
    return 0;
}

/* The images of xname (labels from yname; NULL: none, for unlabeled images) into s. */
static int load_npy_split(const char *dir, const char *xname, const char *yname, DataSplit *s, Err *e) {
    char xpath[4096], ypath[4096];
    if (path_join(xpath, sizeof xpath, e, "%s/%s", dir, xname) != 0 ||
        path_join(ypath, sizeof ypath, e, "%s/%s", dir, yname ? yname : "") != 0)
        return -1;
    NpyArray xa, ya = {0};
    if (npy_read(xpath, &xa, e) != 0) return -1;
    int rc = -1;
    char shape[128];
    npy_shape_str(&xa, shape, sizeof shape);
    if (xa.type != NPY_F4 && xa.type != NPY_U1) {
        err_set(e, "%s: images have dtype %s; expected '<f4' or '|u1'", xpath, npy_type_name(xa.type));
        goto done;
    }
    if (xa.ndim < 2 || !image_shape_ok(&xa) || xa.shape[0] == 0) {
        err_set(e, "%s: shape %s does not fit model %s: expected (N, %d, %d, %d), (N, %d, %d) for 1 channel or (N, %d)",
                xpath, shape, MPLC_MODEL_NAME, IMG_H, IMG_W, IMG_C, IMG_H, IMG_W, MPLC_INPUT_SIZE);
        goto done;
    }
    if (yname && npy_read(ypath, &ya, e) != 0) goto done;
    if (yname && (ya.type == NPY_F4 || ya.ndim != 1)) {
        npy_shape_str(&ya, shape, sizeof shape);
        err_set(e, "%s: labels must be a 1-d integer array ('|u1', '<i4' or '<i8'), got %s %s", ypath,
                npy_type_name(ya.type), shape);
        goto done;
    }
    if (yname && ya.shape[0] != xa.shape[0]) {
        err_set(e, "%s: %zu labels but %s has %zu images", ypath, ya.shape[0], xpath, xa.shape[0]);
        goto done;
    }
    if (dataset_alloc_split(s, xa.shape[0], xpath, e) != 0) goto done;
    for (size_t i = 0; i < xa.count; i++) {
        if (xa.type == NPY_U1) {
            s->x[i] = dataset_byte(((const uint8_t *)xa.data)[i]);
        } else {
            float v = ((const float *)xa.data)[i]; /* float data is used as is */
            if (!isfinite(v)) {
                err_set(e, "%s: element %zu is not finite", xpath, i);
                goto done;
            }
            s->x[i] = v;
        }
    }
    for (size_t i = 0; yname && i < s->n; i++) {
        long long v = npy_int_at(&ya, i);
        if (v < 0 || v >= MPLC_CLASSES) {
            err_set(e, "%s: label %lld of example %zu is outside [0, %d) (model %s has %d classes)", ypath, v, i,
                    MPLC_CLASSES, MPLC_MODEL_NAME, MPLC_CLASSES);
            goto done;
        }
        s->y[i] = (int32_t)v;
    }
    rc = 0;
done:
    npy_free(&xa);
    if (yname) npy_free(&ya);
    return rc;
}

static int npy_has(const char *dir, const char *name, Err *e, int *found) {
    char probe[4096];
    if (path_join(probe, sizeof probe, e, "%s/%s", dir, name) != 0) return -1;
    *found = file_exists(probe);
    return 0;
}

int npy_find(const char *dir, int want_train, char *root, size_t cap, Err *e) {
    int train, labeled, test;
    if (npy_has(dir, "train_x.npy", e, &train) || npy_has(dir, "labeled_x.npy", e, &labeled) ||
        npy_has(dir, "test_x.npy", e, &test))
        return -1;
    int found = train || labeled || (!want_train && test);
    return found && path_join(root, cap, e, "%s", dir) != 0 ? -1 : found;
}

/* train_x.npy/train_y.npy: a training set, from which --labels draws the labeled split. labeled_x.npy/
 * labeled_y.npy: the labeled set as is, with unlabeled_x.npy (images only) when there is one. */
int npy_load(const char *dir, int want_train, Dataset *d, Err *e) {
    int labeled, unlabeled;
    if (npy_has(dir, "labeled_x.npy", e, &labeled) || npy_has(dir, "unlabeled_x.npy", e, &unlabeled)) return -1;
    if (want_train && labeled) {
        d->labeled_as_is = 1;
        if (load_npy_split(dir, "labeled_x.npy", "labeled_y.npy", &d->train, e) != 0 ||
            (unlabeled && load_npy_split(dir, "unlabeled_x.npy", NULL, &d->unlabeled, e) != 0))
            return -1;
    } else if (want_train && load_npy_split(dir, "train_x.npy", "train_y.npy", &d->train, e) != 0) {
        return -1;
    }
    if (load_npy_split(dir, "test_x.npy", "test_y.npy", &d->test, e) != 0) return -1;
    dataset_set_stats(d, 0);
    return 0;
}

int idx_find(const char *dir, int want_train, char *root, size_t cap, Err *e) {
    Err missing;
    if (find_idx(dir, want_train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte", root, cap, &missing) != 0)
        return 0;
    return path_join(root, cap, e, "%s", dir) != 0 ? -1 : 1;
}

int idx_load(const char *dir, int want_train, Dataset *d, Err *e) {
    if (want_train && load_idx_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &d->train, e) != 0)
        return -1;
    if (load_idx_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &d->test, e) != 0) return -1;
    dataset_set_stats(d, 1);
    return 0;
}
