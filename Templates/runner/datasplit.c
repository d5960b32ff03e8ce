#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fmemopen */
#endif
#include "datasplit.h"

#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "json.h"
#include "model.h"
#include "rng.h"

float dataset_byte(uint8_t p) { return (float)(((double)p / 255.0 - FMNIST_MEAN) / FMNIST_STD); }

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

void dataset_set_range(Dataset *d, float lo, float hi, float mean) {
    d->lo = xcalloc(MPLC_INPUT_CHANNELS, sizeof(float));
    d->hi = xcalloc(MPLC_INPUT_CHANNELS, sizeof(float));
    d->mean = xcalloc(MPLC_INPUT_CHANNELS, sizeof(float));
    for (int c = 0; c < MPLC_INPUT_CHANNELS; c++) d->lo[c] = lo, d->hi[c] = hi, d->mean[c] = mean;
}

void dataset_set_stats(Dataset *d, int byte_range) {
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
    if (byte_range || hi <= lo) { /* 8-bit data: the full byte range */
        lo = dataset_byte(0);
        hi = dataset_byte(255);
    }
    dataset_set_range(d, lo, hi, (float)(sum / (double)n));
}

void dataset_free(Dataset *d) {
    DataSplit *splits[3] = {&d->train, &d->unlabeled, &d->test};
    for (int i = 0; i < 3; i++) {
        budget_return(splits[i]->planned);
        free(splits[i]->x);
        free(splits[i]->y);
    }
    if (d->class_names)
        for (int k = 0; k < MPLC_CLASSES; k++) free(d->class_names[k]);
    free(d->class_names);
    free(d->norm_mean);
    free(d->norm_std);
    free(d->lo);
    free(d->hi);
    free(d->mean);
    memset(d, 0, sizeof *d);
}

void dataset_classes_json(const Dataset *d, char *out, size_t cap) {
    out[0] = '\0';
    if (!d->class_names) return;
    FILE *fp = fmemopen(out, cap, "w");
    if (!fp) die(EXIT_BAD_INPUT, "cannot format the class names: out of memory");
    for (int k = 0; k < MPLC_CLASSES; k++) {
        fputc(k ? ',' : '[', fp);
        json_write_string(fp, d->class_names[k]);
    }
    fputc(']', fp);
    fclose(fp);
}

void dataset_norm_text(const Dataset *d, char *mean, char *std) {
    mean[0] = std[0] = '\0';
    for (int c = 0, n = 0, k = 0; d->norm_mean && c < MPLC_INPUT_CHANNELS; c++) {
        n += snprintf(mean + n, DATASET_NORM_TEXT - (size_t)n, c ? ",%.9g" : "%.9g", (double)d->norm_mean[c]);
        k += snprintf(std + k, DATASET_NORM_TEXT - (size_t)k, c ? ",%.9g" : "%.9g", (double)d->norm_std[c]);
    }
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
