#include "moons.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rng.h"

#define MOONS_PI 3.14159265358979323846
/* The data set is a fixed function of these streams, not of --seed: every run sees the same moons. */
#define MOONS_TRAIN_STREAM 101
#define MOONS_TEST_STREAM 102

static double gaussian(Rng *r) {
    double u = rng_double(r), v = rng_double(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * MOONS_PI * v);
}

/* scikit-learn's layout: the upper moon is class 0, the lower one, shifted right and down, class 1. */
static void generate_split(DataSplit *s, uint64_t stream) {
    Rng r;
    rng_init(&r, 0, stream, 0);
    s->n = MOONS_POINTS;
    s->x = xcalloc(2 * s->n, sizeof(float));
    s->y = xcalloc(s->n, sizeof(int32_t));
    for (size_t i = 0; i < s->n; i++) {
        int label = (int)(i % 2);
        double t = MOONS_PI * rng_double(&r);
        double px = label == 0 ? cos(t) : 1.0 - cos(t);
        double py = label == 0 ? sin(t) : 0.5 - sin(t);
        s->x[2 * i] = (float)(px + MOONS_NOISE * gaussian(&r));
        s->x[2 * i + 1] = (float)(py + MOONS_NOISE * gaussian(&r));
        s->y[i] = label;
    }
}

int moons_find(const char *dir, int want_train, char *root, size_t cap, Err *e) {
    (void)want_train;
    if (strcmp(dir, MOONS_DATA_NAME) != 0) return 0;
    return path_join(root, cap, e, "%s", dir) != 0 ? -1 : 1;
}

int moons_load(const char *name, int want_train, Dataset *d, Err *e) {
    (void)name;
    if (MPLC_INPUT_SIZE != 2 || MPLC_CLASSES != 2)
        return err_set(e, "%s: the model %s must take Features(2) and have 2 classes (it takes %d inputs, %d classes)",
                       MOONS_DATA_NAME, MPLC_MODEL_NAME, MPLC_INPUT_SIZE, MPLC_CLASSES);
    if (want_train) generate_split(&d->train, MOONS_TRAIN_STREAM);
    generate_split(&d->test, MOONS_TEST_STREAM);
    dataset_set_range(d, -2, 3, 0);
    return 0;
}
