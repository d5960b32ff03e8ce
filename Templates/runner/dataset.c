#include "dataset.h"

#include <string.h>

#include "dataset_arrays.h"
#include "dataset_csv.h"
#include "dataset_images.h"
#include "dataset_rgb.h"
#include "moons.h"

/* First match wins; Fashion-MNIST IDX, the default data set's format, comes last. */
const DataFormat DATA_FORMATS[] = {
    {"moons", "the name " MOONS_DATA_NAME, moons_find, moons_load},
    {"npy", "NumPy train_x.npy", npy_find, npy_load},
    {"cifar10", "CIFAR-10 data_batch_1.bin", cifar_find, cifar_load},
    {"svhn", "SVHN train_32x32.mat", svhn_find, svhn_load},
    {"images", "image folders labeled/<class>/", images_find, images_load},
    {"csv", "CSV train.csv or labeled.csv", csv_find, csv_load},
    {"idx", "Fashion-MNIST train-images-idx3-ubyte[.gz]", idx_find, idx_load},
};
const int DATA_FORMAT_COUNT = (int)(sizeof DATA_FORMATS / sizeof DATA_FORMATS[0]);

/* A directory without any data set: say what each format looks for. The IDX files come first, as the default. */
static int no_data_set(const char *dir, int want_train, Err *e) {
    const char *idx = want_train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
    char formats[512] = "";
    size_t n = 0;
    for (int i = 0; i < DATA_FORMAT_COUNT - 1 && n < sizeof formats; i++)
        n += (size_t)snprintf(formats + n, sizeof formats - n, "%s%s", i ? ", " : "", DATA_FORMATS[i].files);
    return err_set(e,
                   "%s: missing file %s or %s.gz (Fashion-MNIST IDX), and no other data set there either (%s); "
                   "see docs/RUNNER.md, Data",
                   dir, idx, idx, formats);
}

int dataset_load(const char *dir, int want_train, int resize, Dataset *d, Err *e) {
    memset(d, 0, sizeof *d);
    d->resize = resize;
    char root[4096];
    for (int i = 0; i < DATA_FORMAT_COUNT; i++) {
        const DataFormat *f = &DATA_FORMATS[i];
        int found = f->find(dir, want_train, root, sizeof root, e);
        if (found < 0) return -1;
        if (!found) continue;
        snprintf(d->format, sizeof d->format, "%s", f->name);
        if (f->load(root, want_train, d, e) == 0) return 0;
        dataset_free(d);
        return -1;
    }
    return no_data_set(dir, want_train, e);
}
