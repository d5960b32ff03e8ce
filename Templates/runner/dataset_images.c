#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#endif
#include "dataset_images.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "budget.h"
#include "image.h"
#include "model.h"

#define IMG_H MPLC_INPUT_HEIGHT
#define IMG_W MPLC_INPUT_WIDTH
#define IMG_C MPLC_INPUT_CHANNELS

typedef struct {
    char **v;
    size_t n, cap;
} Names;

static void names_add(Names *s, const char *name) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        char **grown = realloc(s->v, s->cap * sizeof *s->v);
        if (!grown) die(EXIT_BAD_INPUT, "out of memory listing image folders");
        s->v = grown;
    }
    size_t len = strlen(name) + 1;
    s->v[s->n] = xmalloc(len);
    memcpy(s->v[s->n++], name, len);
}

static void names_free(Names *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The entries of dir, sorted, without names starting with '.': its folders (want_dirs) or its files. An entry
 * of the other kind is refused by name, so that no image is silently left out. */
static int list(const char *dir, int want_dirs, Names *out, Err *e) {
    DIR *dp = opendir(dir);
    if (!dp) return err_set(e, "%s: cannot open the folder: %s", dir, strerror(errno));
    struct dirent *ent;
    char path[PATH_CAP];
    int rc = 0;
    while (rc == 0 && (ent = readdir(dp)) != NULL) {
        if (ent->d_name[0] == '.') continue;
        if (path_join(path, sizeof path, e, "%s/%s", dir, ent->d_name) != 0) rc = -1;
        else if (is_dir(path) != want_dirs)
            rc = err_set(e, want_dirs ? "%s: a file where a folder per class is expected (%s/<class>/<image>)"
                                      : "%s: a folder where images are expected (image folders are not nested)",
                         path, dir);
        else if (out->n >= IMAGES_MAX_PER_FOLDER)
            rc = err_set(e, "%s: more than %u entries", dir, IMAGES_MAX_PER_FOLDER);
        else names_add(out, ent->d_name);
    }
    closedir(dp);
    if (rc == 0) qsort(out->v, out->n, sizeof *out->v, by_name);
    return rc;
}

/* A set of image files and their labels (-1: unlabeled). */
typedef struct {
    Names paths;
    int32_t *labels;
    size_t labels_cap;
} Files;

static void files_add(Files *f, const char *path, int32_t label) {
    names_add(&f->paths, path);
    if (f->paths.n > f->labels_cap) {
        f->labels_cap = f->paths.cap;
        int32_t *grown = realloc(f->labels, f->labels_cap * sizeof *f->labels);
        if (!grown) die(EXIT_BAD_INPUT, "out of memory listing image folders");
        f->labels = grown;
    }
    f->labels[f->paths.n - 1] = label;
}

static void files_free(Files *f) {
    names_free(&f->paths);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

/* Every image file of dir, with the label. */
static int add_folder(Files *f, const char *dir, int32_t label, Err *e) {
    Names names = {0};
    int rc = list(dir, 0, &names, e);
    char path[PATH_CAP];
    for (size_t i = 0; i < names.n && rc == 0; i++) {
        rc = path_join(path, sizeof path, e, "%s/%s", dir, names.v[i]);
        if (rc == 0) files_add(f, path, label);
    }
    names_free(&names);
    return rc;
}

/* The class folders of dir, sorted by name: as many as the model has classes, each name short and printable
 * (the run records them). */
static int class_folders(const char *dir, Names *classes, Err *e) {
    if (list(dir, 1, classes, e) != 0) return -1;
    if (classes->n != MPLC_CLASSES)
        return err_set(e, "%s: %zu class folders, but model %s has %d classes (one folder per class: %s/<class>/<image>)",
                       dir, classes->n, MPLC_MODEL_NAME, MPLC_CLASSES, dir);
    size_t total = 0;
    for (size_t k = 0; k < classes->n; k++) {
        const char *name = classes->v[k];
        size_t len = strlen(name);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                return err_set(e, "%s: class folder %zu has a control character in its name", dir, k);
        if (len >= DATASET_CLASS_NAME_MAX)
            return err_set(e, "%s/%s: a class name has at most %d bytes", dir, name, DATASET_CLASS_NAME_MAX - 1);
        total += len + 4;
    }
    if (total > DATASET_CLASS_NAMES_MAX)
        return err_set(e, "%s: the class names take %zu bytes together, more than the %d a run records", dir, total,
                       DATASET_CLASS_NAMES_MAX);
    return 0;
}

/* test/ has the classes of labeled/, or its labels would name other classes. */
static int same_classes(const char *train_dir, const Names *train, const char *test_dir, const Names *test, Err *e) {
    for (size_t k = 0; k < train->n; k++)
        if (strcmp(train->v[k], test->v[k]) != 0)
            return err_set(e, "%s: class folder '%s' where %s has '%s' (both need the same class folders)", test_dir,
                           test->v[k], train_dir, train->v[k]);
    return 0;
}

static int add_classes(Files *f, const char *dir, const Names *classes, Err *e) {
    char path[PATH_CAP];
    for (size_t k = 0; k < classes->n; k++)
        if (path_join(path, sizeof path, e, "%s/%s", dir, classes->v[k]) != 0 || add_folder(f, path, (int32_t)k, e) != 0)
            return -1;
    return 0;
}

/* The images of f, decoded into *out (f->paths.n x the model's input, bytes), taken from the budget (returned
 * by the caller). Images of another size are resized with d->resize (and counted in d->resized); without it they
 * do not stop the reading: one message names the first of them and counts them all. */
static int decode(const Files *f, const char *dir, Dataset *d, uint8_t **out, uint64_t *planned, Err *e) {
    const size_t n = f->paths.n, each = (size_t)IMG_H * IMG_W * IMG_C;
    size_t bytes;
    if (n == 0) return err_set(e, "%s: no images", dir);
    if (size_mul(n, each, &bytes) != 0 || budget_take(bytes, dir, "the decoded images", e) != 0) return -1;
    *planned = bytes;
    *out = xmalloc(bytes);
    size_t wrong = 0;
    char first[PATH_CAP] = "";
    int first_w = 0, first_h = 0;
    for (size_t i = 0; i < n; i++) {
        int w, h, rc = image_read(f->paths.v[i], IMG_H, IMG_W, IMG_C, d->resize, *out + i * each, &w, &h, e);
        if (rc < 0) return -1;
        if ((w != IMG_W || h != IMG_H) && wrong++ == 0)
            snprintf(first, sizeof first, "%s", f->paths.v[i]), first_w = w, first_h = h;
    }
    if (wrong && !d->resize)
        return err_set(e, "%s: %zu of its %zu images are not %dx%d pixels, the size model %s takes; the first is %s "
                          "(%dx%d); resize them first, or give --resize to have them resized",
                       dir, wrong, n, IMG_W, IMG_H, MPLC_MODEL_NAME, first, first_w, first_h);
    d->resized += wrong;
    return 0;
}

/* Per channel: the mean and standard deviation of the pixels (in [0, 1]) of the given byte images. */
static void channel_stats(const uint8_t *const *sets, const size_t *counts, int nsets, double mean[], double std[]) {
    double sum[IMG_C] = {0}, sq[IMG_C] = {0}, n = 0;
    for (int s = 0; s < nsets; s++) {
        const size_t len = counts[s] * (size_t)IMG_H * IMG_W * IMG_C;
        for (size_t i = 0; i < len; i++) {
            double v = sets[s][i] / 255.0;
            sum[i % IMG_C] += v;
            sq[i % IMG_C] += v * v;
        }
        n += (double)counts[s] * IMG_H * IMG_W;
    }
    for (int c = 0; c < IMG_C; c++) {
        mean[c] = sum[c] / n;
        double var = sq[c] / n - mean[c] * mean[c];
        std[c] = var > 1e-12 ? sqrt(var) : 1.0; /* constant images: leave their scale */
    }
}

/* x = (p/255 - mean_c)/std_c into a split allocated for f's images. */
static int fill_split(DataSplit *s, const Files *f, const uint8_t *bytes, const char *dir, const float table[][256],
                      Err *e) {
    if (dataset_alloc_split(s, f->paths.n, dir, e) != 0) return -1;
    const size_t len = f->paths.n * (size_t)MPLC_INPUT_SIZE;
    for (size_t i = 0; i < len; i++) s->x[i] = table[i % IMG_C][bytes[i]];
    for (size_t i = 0; i < f->paths.n; i++) s->y[i] = f->labels[i] < 0 ? 0 : f->labels[i];
    return 0;
}

int images_find(const char *dir, int want_train, char *root, size_t cap, Err *e) {
    char p[PATH_CAP];
    Err ignored;
    int found = (path_join(p, sizeof p, &ignored, "%s/labeled", dir) == 0 && is_dir(p)) ||
                (!want_train && path_join(p, sizeof p, &ignored, "%s/test", dir) == 0 && is_dir(p));
    return found && path_join(root, cap, e, "%s", dir) != 0 ? -1 : found;
}

int images_load(const char *dir, int want_train, Dataset *d, Err *e) {
    if (IMG_C != 1 && IMG_C != 3)
        return err_set(e, "%s: image folders hold grayscale or RGB images; model %s takes %d channels", dir,
                       MPLC_MODEL_NAME, IMG_C);
    char labeled[PATH_CAP], unlabeled[PATH_CAP], test[PATH_CAP];
    if (path_join(labeled, sizeof labeled, e, "%s/labeled", dir) != 0 ||
        path_join(unlabeled, sizeof unlabeled, e, "%s/unlabeled", dir) != 0 ||
        path_join(test, sizeof test, e, "%s/test", dir) != 0)
        return -1;
    /* The statistics come from the training images, also for eval: the same normalisation as in training. */
    const int have_train = is_dir(labeled), have_unlabeled = have_train && is_dir(unlabeled);
    Names classes = {0}, test_classes = {0};
    Files ftrain = {0}, funl = {0}, ftest = {0};
    uint8_t *btrain = NULL, *bunl = NULL, *btest = NULL;
    uint64_t planned[3] = {0, 0, 0};
    float(*table)[256] = xcalloc(IMG_C, sizeof *table);
    int rc = -1;
    if (!is_dir(test)) {
        err_set(e, "%s: missing folder test (test/<class>/<image>, with the class folders of labeled/)", dir);
        goto done;
    }
    if (class_folders(have_train ? labeled : test, &classes, e) != 0) goto done;
    if (have_train && (class_folders(test, &test_classes, e) != 0 ||
                       same_classes(labeled, &classes, test, &test_classes, e) != 0 ||
                       add_classes(&ftrain, labeled, &classes, e) != 0 || decode(&ftrain, labeled, d, &btrain, &planned[0], e) != 0))
        goto done;
    if (have_unlabeled && (add_folder(&funl, unlabeled, -1, e) != 0 || decode(&funl, unlabeled, d, &bunl, &planned[1], e) != 0))
        goto done;
    if (add_classes(&ftest, test, &classes, e) != 0 || decode(&ftest, test, d, &btest, &planned[2], e) != 0) goto done;
    double mean[IMG_C], std[IMG_C];
    const uint8_t *sets[2] = {have_train ? btrain : btest, bunl};
    const size_t counts[2] = {have_train ? ftrain.paths.n : ftest.paths.n, funl.paths.n};
    channel_stats(sets, counts, have_unlabeled ? 2 : 1, mean, std);
    for (int c = 0; c < IMG_C; c++)
        for (int p = 0; p < 256; p++) table[c][p] = (float)((p / 255.0 - mean[c]) / std[c]);
    if (want_train && have_train &&
        (fill_split(&d->train, &ftrain, btrain, labeled, table, e) != 0 ||
         (have_unlabeled && fill_split(&d->unlabeled, &funl, bunl, unlabeled, table, e) != 0)))
        goto done;
    if (fill_split(&d->test, &ftest, btest, test, table, e) != 0) goto done;
    d->labeled_as_is = 1;
    d->class_names = xcalloc(MPLC_CLASSES, sizeof *d->class_names);
    for (int k = 0; k < MPLC_CLASSES; k++) {
        d->class_names[k] = xmalloc(strlen(classes.v[k]) + 1);
        memcpy(d->class_names[k], classes.v[k], strlen(classes.v[k]) + 1);
    }
    d->norm_mean = xcalloc(IMG_C, sizeof(float));
    d->norm_std = xcalloc(IMG_C, sizeof(float));
    d->lo = xcalloc(IMG_C, sizeof(float));
    d->hi = xcalloc(IMG_C, sizeof(float));
    d->mean = xcalloc(IMG_C, sizeof(float)); /* the normalised mean is 0 */
    for (int c = 0; c < IMG_C; c++) {
        d->norm_mean[c] = (float)mean[c], d->norm_std[c] = (float)std[c];
        d->lo[c] = table[c][0], d->hi[c] = table[c][255];
    }
    rc = 0;
done:
    free(btrain);
    free(bunl);
    free(btest);
    budget_return(planned[0] + planned[1] + planned[2]);
    free(table);
    names_free(&classes);
    names_free(&test_classes);
    files_free(&ftrain);
    files_free(&funl);
    files_free(&ftest);
    return rc;
}
