#include "dataset_rgb.h"

#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "model.h"
#include "svhn.h"

#define IMG_H MPLC_INPUT_HEIGHT
#define IMG_W MPLC_INPUT_WIDTH
#define IMG_C MPLC_INPUT_CHANNELS

/* x = (p/255 - mean_c)/std_c for each byte value and channel, computed once. */
typedef struct {
    float v[3][256];
} ByteTable;

static void byte_table(ByteTable *t, const double mean[3], const double std[3]) {
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 256; p++) t->v[c][p] = (float)(((double)p / 255.0 - mean[c]) / std[c]);
}

/* The range of each channel is that of its bytes, [table(0), table(255)]; the mean is the data's (the Cutout
 * fill), over the training set when there is one. */
static void set_channel_stats(Dataset *d, const ByteTable *t) {
    const size_t n = IMG_C > 3 ? IMG_C : 3; /* 3 (the model was checked); no fewer, for the compiler's sake */
    d->lo = xcalloc(n, sizeof(float));
    d->hi = xcalloc(n, sizeof(float));
    d->mean = xcalloc(n, sizeof(float));
    const DataSplit *s = d->train.n ? &d->train : &d->test;
    double sum[3] = {0, 0, 0};
    for (size_t i = 0; i < s->n * (size_t)MPLC_INPUT_SIZE; i++) sum[i % 3] += s->x[i];
    for (int c = 0; c < 3; c++) {
        d->lo[c] = t->v[c][0];
        d->hi[c] = t->v[c][255];
        d->mean[c] = (float)(sum[c] / ((double)s->n * IMG_H * IMG_W));
    }
}

/* Both data sets are 32x32 RGB images of 10 classes; say so, with the file and the numbers, before reading
 * hundreds of megabytes. */
static int check_model(const char *path, const char *name, Err *e) {
    if (IMG_H != 32 || IMG_W != 32 || IMG_C != 3)
        return err_set(e, "%s: %s images are 32x32 with 3 channels, model %s expects %dx%d with %d channel(s)", path, name,
                       MPLC_MODEL_NAME, IMG_H, IMG_W, IMG_C);
    if (MPLC_CLASSES != 10)
        return err_set(e, "%s: %s has 10 classes, model %s has %d", path, name, MPLC_MODEL_NAME, MPLC_CLASSES);
    return 0;
}

/* ---- CIFAR-10 ---- */

static int has_cifar(const char *dir, Err *e, int *found) {
    char p[4096];
    *found = 0;
    if (path_join(p, sizeof p, e, "%s/data_batch_1.bin", dir) != 0) return -1;
    *found = file_exists(p);
    if (path_join(p, sizeof p, e, "%s/test_batch.bin", dir) != 0) return -1;
    *found |= file_exists(p);
    return 0;
}

int cifar_find(const char *dir, int want_train, char *out, size_t cap, Err *e) {
    (void)want_train;
    int found;
    if (has_cifar(dir, e, &found) != 0) return -1;
    if (found) return path_join(out, cap, e, "%s", dir) == 0 ? 1 : -1;
    char sub[4096];
    if (path_join(sub, sizeof sub, e, "%s/cifar-10-batches-bin", dir) != 0 || has_cifar(sub, e, &found) != 0) return -1;
    if (found) return path_join(out, cap, e, "%s", sub) == 0 ? 1 : -1;
    return 0;
}

/* Every file of the split must exist; the message names all that are missing. */
static int cifar_paths(const char *dir, int train, char paths[][4096], int *count, Err *e) {
    char missing[512] = "";
    size_t used = 0;
    *count = train ? CIFAR_TRAIN_BATCHES : 1;
    for (int i = 0; i < *count; i++) {
        char name[32];
        if (train) snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else snprintf(name, sizeof name, "test_batch.bin");
        if (path_join(paths[i], 4096, e, "%s/%s", dir, name) != 0) return -1;
        if (!file_exists(paths[i]) && used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", name);
    }
    if (used)
        return err_set(e, "%s: missing CIFAR-10 file(s) %s (the data set is data_batch_1.bin ... data_batch_5.bin and "
                          "test_batch.bin)",
                       dir, missing);
    return 0;
}

static int cifar_split(const char *dir, int train, const ByteTable *t, DataSplit *s, Err *e) {
    char paths[CIFAR_TRAIN_BATCHES][4096];
    int count;
    if (cifar_paths(dir, train, paths, &count, e) != 0 || check_model(paths[0], "CIFAR-10", e) != 0) return -1;
    CifarBatch b = {0, NULL};
    for (int i = 0; i < count; i++)
        if (cifar_read(paths[i], &b, e) != 0) {
            cifar_free(&b);
            return -1;
        }
    if (dataset_alloc_split(s, b.n, dir, e) != 0) {
        cifar_free(&b);
        return -1;
    }
    for (size_t i = 0; i < b.n; i++) {
        float *img = s->x + i * (size_t)CIFAR_PIXELS;
        for (int y = 0; y < CIFAR_SIDE; y++)
            for (int x = 0; x < CIFAR_SIDE; x++)
                for (int c = 0; c < CIFAR_CHANNELS; c++)
                    img[(y * CIFAR_SIDE + x) * CIFAR_CHANNELS + c] = t->v[c][cifar_pixel(&b, i, y, x, c)];
        s->y[i] = cifar_label(&b, i);
    }
    cifar_free(&b);
    return 0;
}

int cifar_load(const char *dir, int want_train, Dataset *d, Err *e) {
    const double mean[3] = {CIFAR_MEAN_R, CIFAR_MEAN_G, CIFAR_MEAN_B}, std[3] = {CIFAR_STD_R, CIFAR_STD_G, CIFAR_STD_B};
    ByteTable *t = xmalloc(sizeof *t);
    byte_table(t, mean, std);
    int rc = (want_train ? cifar_split(dir, 1, t, &d->train, e) : 0) || cifar_split(dir, 0, t, &d->test, e) ? -1 : 0;
    if (rc == 0) set_channel_stats(d, t);
    free(t);
    return rc;
}

/* ---- SVHN ---- */

int svhn_find(const char *dir, int want_train, char *out, size_t cap, Err *e) {
    (void)want_train;
    char p[4096];
    Err ignored;
    int found = (path_join(p, sizeof p, &ignored, "%s/train_32x32.mat", dir) == 0 && file_exists(p)) ||
                (path_join(p, sizeof p, &ignored, "%s/test_32x32.mat", dir) == 0 && file_exists(p));
    return found && path_join(out, cap, e, "%s", dir) != 0 ? -1 : found;
}

static int svhn_split(const char *dir, const char *name, const ByteTable *t, DataSplit *s, Err *e) {
    char path[4096];
    if (path_join(path, sizeof path, e, "%s/%s", dir, name) != 0) return -1;
    if (!file_exists(path))
        return err_set(e, "%s: missing SVHN file %s (the data set is train_32x32.mat and test_32x32.mat)", dir, name);
    if (check_model(path, "SVHN", e) != 0) return -1;
    SvhnSet v;
    if (svhn_read(path, &v, e) != 0) return -1;
    if (dataset_alloc_split(s, v.n, path, e) != 0) {
        svhn_free(&v);
        return -1;
    }
    for (size_t i = 0; i < v.n * (size_t)SVHN_PIXELS; i++) s->x[i] = t->v[i % SVHN_CHANNELS][v.pixels[i]];
    for (size_t i = 0; i < v.n; i++) s->y[i] = v.labels[i];
    svhn_free(&v);
    return 0;
}

int svhn_load(const char *dir, int want_train, Dataset *d, Err *e) {
    const double mean[3] = {SVHN_MEAN_R, SVHN_MEAN_G, SVHN_MEAN_B}, std[3] = {SVHN_STD_R, SVHN_STD_G, SVHN_STD_B};
    ByteTable *t = xmalloc(sizeof *t);
    byte_table(t, mean, std);
    int rc = (want_train ? svhn_split(dir, "train_32x32.mat", t, &d->train, e) : 0) ||
                     svhn_split(dir, "test_32x32.mat", t, &d->test, e)
                 ? -1
                 : 0;
    if (rc == 0) set_channel_stats(d, t);
    free(t);
    return rc;
}
