#include "dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "dataset_rgb.h"
#include "idx.h"
#include "moons.h"
#include "model.h"
#include "npy.h"
#include "rng.h"

#define IMG_H MPLC_INPUT_HEIGHT
#define IMG_W MPLC_INPUT_WIDTH
#define IMG_C MPLC_INPUT_CHANNELS

static float normalise_byte(uint8_t p) { return (float)(((double)p / 255.0 - FMNIST_MEAN) / FMNIST_STD); }

static int check_labels(const char *path, const int32_t *y, size_t n, Err *e) {
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= MPLC_CLASSES)
            return err_set(e, "%s: label %d of example %zu is outside [0, %d) (model %s has %d classes)", path, y[i], i,
                           MPLC_CLASSES, MPLC_MODEL_NAME, MPLC_CLASSES);
    return 0;
}

/* ---- IDX ---- */

/* IDX is the default format, so a directory without any data set ends up here: `first` says so. */
static int find_idx(const char *dir, const char *name, int first, char *out, size_t cap, Err *e) {
    if (path_join(out, cap, e, "%s/%s.gz", dir, name) != 0) return -1;
    if (file_exists(out)) return 0;
    if (path_join(out, cap, e, "%s/%s", dir, name) != 0) return -1;
    if (file_exists(out)) return 0;
    return err_set(e, "%s: missing file %s or %s.gz%s", dir, name, name,
                   first ? " (and no other data set there either: NumPy train_x.npy, CIFAR-10 data_batch_1.bin or SVHN "
                           "train_32x32.mat; see docs/RUNNER.md, Data)"
                         : "");
}

static int load_idx_split(const char *dir, const char *images, const char *labels, DataSplit *s, Err *e) {
    char ipath[4096], lpath[4096];
    if (find_idx(dir, images, 1, ipath, sizeof ipath, e) != 0 || find_idx(dir, labels, 0, lpath, sizeof lpath, e) != 0)
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
    for (size_t i = 0; i < im.count; i++) s->x[i] = normalise_byte(im.data[i]);
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

static int load_npy_split(const char *dir, const char *xname, const char *yname, DataSplit *s, Err *e) {
    char xpath[4096], ypath[4096];
    if (path_join(xpath, sizeof xpath, e, "%s/%s", dir, xname) != 0 ||
        path_join(ypath, sizeof ypath, e, "%s/%s", dir, yname) != 0)
        return -1;
    NpyArray xa, ya;
    if (npy_read(xpath, &xa, e) != 0) return -1;
    int rc = -1;
    char shape[128];
    npy_shape_str(&xa, shape, sizeof shape);
    if (xa.type != NPY_F4 && xa.type != NPY_U1) {
        err_set(e, "%s: images have dtype %s; expected '<f4' or '|u1'", xpath, npy_type_name(xa.type));
        npy_free(&xa);
        return -1;
    }
    if (xa.ndim < 2 || !image_shape_ok(&xa) || xa.shape[0] == 0) {
        err_set(e, "%s: shape %s does not fit model %s: expected (N, %d, %d, %d), (N, %d, %d) for 1 channel or (N, %d)",
                xpath, shape, MPLC_MODEL_NAME, IMG_H, IMG_W, IMG_C, IMG_H, IMG_W, MPLC_INPUT_SIZE);
        npy_free(&xa);
        return -1;
    }
    if (npy_read(ypath, &ya, e) != 0) {
        npy_free(&xa);
        return -1;
    }
    if (ya.type == NPY_F4 || ya.ndim != 1) {
        npy_shape_str(&ya, shape, sizeof shape);
        err_set(e, "%s: labels must be a 1-d integer array ('|u1', '<i4' or '<i8'), got %s %s", ypath,
                npy_type_name(ya.type), shape);
        goto done;
    }
    if (ya.shape[0] != xa.shape[0]) {
        err_set(e, "%s: %zu labels but %s has %zu images", ypath, ya.shape[0], xpath, xa.shape[0]);
        goto done;
    }
    if (dataset_alloc_split(s, xa.shape[0], xpath, e) != 0) goto done;
    for (size_t i = 0; i < xa.count; i++) {
        if (xa.type == NPY_U1) {
            s->x[i] = normalise_byte(((const uint8_t *)xa.data)[i]);
        } else {
            float v = ((const float *)xa.data)[i]; /* float data is used as is */
            if (!isfinite(v)) {
                err_set(e, "%s: element %zu is not finite", xpath, i);
                goto done;
            }
            s->x[i] = v;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
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
    npy_free(&ya);
    return rc;
}

void dataset_set_range(Dataset *d, float lo, float hi, float mean) {
    d->lo = xcalloc(IMG_C, sizeof(float));
    d->hi = xcalloc(IMG_C, sizeof(float));
    d->mean = xcalloc(IMG_C, sizeof(float));
    for (int c = 0; c < IMG_C; c++) d->lo[c] = lo, d->hi[c] = hi, d->mean[c] = mean;
}

/* IDX and NPY data: one range and mean over all channels. */
static void pixel_stats(Dataset *d) {
    const DataSplit *s = d->train.n ? &d->train : &d->test;
    size_t n = s->n * (size_t)MPLC_INPUT_SIZE;
    float lo = s->x[0], hi = s->x[0];
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        float v = s->x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    if (strcmp(d->format, "idx") == 0 || hi <= lo) { /* 8-bit data: the full byte range */
        lo = normalise_byte(0);
        hi = normalise_byte(255);
    }
    dataset_set_range(d, lo, hi, (float)(sum / (double)n));
}

/* NPY when DIR/train_x.npy exists (or only test_x.npy, for eval). */
static int npy_present(const char *dir, int want_train, Err *e, int *found) {
    char probe[4096];
    if (path_join(probe, sizeof probe, e, "%s/train_x.npy", dir) != 0) return -1;
    *found = file_exists(probe);
    if (!*found && !want_train && path_join(probe, sizeof probe, e, "%s/test_x.npy", dir) == 0 && file_exists(probe))
        *found = 1;
    return 0;
}

int dataset_load(const char *dir, int want_train, Dataset *d, Err *e) {
    if (strcmp(dir, MOONS_DATA_NAME) == 0) return moons_generate(d, want_train, e);
    memset(d, 0, sizeof *d);
    int npy, rc = 0;
    char cifar_dir[4096];
    if (npy_present(dir, want_train, e, &npy) != 0) return -1;
    int cifar = npy ? 0 : cifar_find(dir, cifar_dir, sizeof cifar_dir, e);
    if (cifar < 0) return -1;
    if (npy) {
        snprintf(d->format, sizeof d->format, "npy");
        if (want_train) rc = load_npy_split(dir, "train_x.npy", "train_y.npy", &d->train, e);
        if (rc == 0) rc = load_npy_split(dir, "test_x.npy", "test_y.npy", &d->test, e);
    } else if (cifar) {
        rc = cifar_load(cifar_dir, want_train, d, e);
    } else if (svhn_find(dir)) {
        rc = svhn_load(dir, want_train, d, e);
    } else {
        snprintf(d->format, sizeof d->format, "idx");
        if (want_train) rc = load_idx_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &d->train, e);
        if (rc == 0) rc = load_idx_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &d->test, e);
    }
    if (rc != 0) {
        dataset_free(d);
        return -1;
    }
    if (!d->lo) pixel_stats(d); /* CIFAR-10 and SVHN set their per-channel statistics */
    return 0;
}

int dataset_alloc_split(DataSplit *s, size_t n, const char *path, Err *e) {
    size_t floats, bytes;
    if (size_mul(n, (size_t)MPLC_INPUT_SIZE, &floats) != 0 || size_mul(floats + n, 4, &bytes) != 0)
        return err_set(e, "%s: %zu examples are too many to hold", path, n);
    char what[96];
    snprintf(what, sizeof what, "%zu examples as float32 (the model's %d inputs each, and a label)", n,
             MPLC_INPUT_SIZE);
    if (budget_take(bytes, path, what, e) != 0) return -1;
    s->planned = bytes;
    s->n = n;
    s->x = xcalloc(floats, sizeof(float));
    s->y = xcalloc(n, sizeof(int32_t));
    return 0;
}

void dataset_free(Dataset *d) {
    budget_return(d->train.planned + d->test.planned);
    free(d->train.x);
    free(d->train.y);
    free(d->test.x);
    free(d->test.y);
    free(d->lo);
    free(d->hi);
    free(d->mean);
    memset(d, 0, sizeof *d);
}

int dataset_pick_labeled(const DataSplit *train, long labels, uint64_t seed, uint32_t **out, Err *e) {
    if (labels <= 0 || labels % MPLC_CLASSES != 0)
        return err_set(e, "--labels %ld must be a positive multiple of the %d classes (a class-balanced split)", labels,
                       MPLC_CLASSES);
    if ((size_t)labels > train->n)
        return err_set(e, "--labels %ld is larger than the %zu training examples", labels, train->n);
    if (train->n > UINT32_MAX) return err_set(e, "training set too large (%zu examples)", train->n);
    size_t per_class = (size_t)labels / MPLC_CLASSES;
    uint32_t *perm = xmalloc(train->n * sizeof *perm);
    for (size_t i = 0; i < train->n; i++) perm[i] = (uint32_t)i;
    Rng r;
    rng_init(&r, seed, RNG_SPLIT, 0);
    for (size_t i = train->n - 1; i > 0; i--) {
        uint32_t j = rng_below(&r, (uint32_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    size_t taken[MPLC_CLASSES] = {0};
    uint32_t *picked = xmalloc((size_t)labels * sizeof *picked);
    size_t n = 0;
    for (size_t i = 0; i < train->n && n < (size_t)labels; i++) {
        int32_t c = train->y[perm[i]];
        if (taken[c] < per_class) {
            taken[c]++;
            picked[n++] = perm[i];
        }
    }
    free(perm);
    for (int c = 0; c < MPLC_CLASSES; c++)
        if (taken[c] < per_class) {
            free(picked);
            return err_set(e, "class %d has only %zu training examples; --labels %ld needs %zu per class", c, taken[c],
                           labels, per_class);
        }
    *out = picked;
    return 0;
}
