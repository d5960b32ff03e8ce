/* mplc-run predict: the class and class probabilities of each example of the files given (PNG or JPEG images, IDX,
 * NPY and CSV files of examples), by the student of a checkpoint (or its EMA), one JSON line per example on stdout. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "csv.h"
#include "dataset.h"
#include "fileio.h"
#include "idx.h"
#include "image.h"
#include "json.h"
#include "model.h"
#include "npy.h"
#include "safetensors.h"
#include "svhn.h"
#include "tensors.h"
#include "train.h"
#include "trainer.h"

/* How 8-bit pixels become the model's inputs, x = (p/255 - mean[c])/std[c]; known = 0 when nothing says (an RGB
 * model's checkpoint without statistics and no --normalise): 8-bit data is then refused. */
typedef struct {
    int known;
    double mean[3], std[3];
} Pixels;

/* Per channel mean and std of p/255 for --normalise (docs/RUNNER.md, "predict"). */
static int normalisation(const char *name, double mean[3], double std[3], Err *e) {
    if (strcmp(name, "fashion-mnist") == 0) {
        for (int c = 0; c < 3; c++) mean[c] = FMNIST_MEAN, std[c] = FMNIST_STD;
    } else if (strcmp(name, "cifar10") == 0) {
        const double m[3] = {CIFAR_MEAN_R, CIFAR_MEAN_G, CIFAR_MEAN_B}, s[3] = {CIFAR_STD_R, CIFAR_STD_G, CIFAR_STD_B};
        memcpy(mean, m, sizeof m), memcpy(std, s, sizeof s);
    } else if (strcmp(name, "svhn") == 0) {
        const double m[3] = {SVHN_MEAN_R, SVHN_MEAN_G, SVHN_MEAN_B}, s[3] = {SVHN_STD_R, SVHN_STD_G, SVHN_STD_B};
        memcpy(mean, m, sizeof m), memcpy(std, s, sizeof s);
    } else {
        return err_set(e, "--normalise must be fashion-mnist, cifar10 or svhn, got '%s'", name);
    }
    return 0;
}

/* The files' examples go through the student in batches of MPLC_EVAL_BATCH rows, across files; a batch remembers
 * each row's file and its index in the file (-1 for an image file, a single example). */
typedef struct {
    const float *state;
    float *x, *logits, *scratch;
    const char *file[MPLC_EVAL_BATCH];
    long index[MPLC_EVAL_BATCH];
    int rows;
} Batch;

/* Predicts the batch's rows (the rest of x zero: padding whose logits are ignored) and prints a JSON line each. */
static void flush(Batch *b) {
    if (b->rows == 0) return;
    memset(b->x + (size_t)b->rows * MPLC_INPUT_SIZE, 0,
           (size_t)(MPLC_EVAL_BATCH - b->rows) * MPLC_INPUT_SIZE * sizeof *b->x);
    mplc_predict_student(b->state, b->x, b->logits, b->scratch);
    for (int i = 0; i < b->rows; i++) {
        const float *z = b->logits + (size_t)i * MPLC_CLASSES;
        /* softmax in double, the row's maximum subtracted */
        int best = 0;
        for (int k = 1; k < MPLC_CLASSES; k++)
            if (z[k] > z[best]) best = k;
        double p[MPLC_CLASSES], sum = 0;
        for (int k = 0; k < MPLC_CLASSES; k++) sum += p[k] = exp((double)z[k] - (double)z[best]);
        if (!isfinite(sum)) {
            if (b->index[i] < 0) die(EXIT_NONFINITE, "%s: the student's logits are not finite", b->file[i]);
            die(EXIT_NONFINITE, "%s: example %ld: the student's logits are not finite", b->file[i], b->index[i]);
        }
        printf("{\"file\":");
        json_write_string(stdout, b->file[i]);
        if (b->index[i] >= 0) printf(",\"index\":%ld", b->index[i]);
        printf(",\"class\":%d,\"probability\":", best);
        json_write_double(stdout, p[best] / sum);
        printf(",\"probabilities\":[");
        for (int k = 0; k < MPLC_CLASSES; k++) {
            if (k) putchar(',');
            json_write_double(stdout, p[k] / sum);
        }
        printf("]}\n");
    }
    b->rows = 0;
}

/* The next row of the batch, for example `index` of `file`; a full batch is predicted first. */
static float *next_row(Batch *b, const char *file, long index) {
    if (b->rows == MPLC_EVAL_BATCH) flush(b);
    b->file[b->rows] = file;
    b->index[b->rows] = index;
    return b->x + (size_t)b->rows++ * MPLC_INPUT_SIZE;
}

static int is_features_model(void) { return MPLC_INPUT_HEIGHT == 1 && MPLC_INPUT_WIDTH == 1; }

/* 8-bit pixels need the normalisation of the data the model trained on. */
static int pixels_known(const char *path, const Pixels *px, Err *e) {
    if (px->known) return 0;
    return err_set(e,
                   "%s: 8-bit pixels and model %s reads RGB images: give --normalise cifar10 or svhn, the data it was "
                   "trained on",
                   path, MPLC_MODEL_NAME);
}

static float pixel(uint8_t p, int c, const Pixels *px) {
    return (float)(((double)p / 255.0 - px->mean[c]) / px->std[c]);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* An image file (PNG or JPEG, image.c), one example, decoded at the model's size (resized to it with resize, as
 * the image folders of a run with --resize are) and normalised as the trainer normalises 8-bit data:
 * ((double)p / 255 - mean) / std, rounded to float once. */
static int predict_image(Batch *b, const char *path, const Pixels *px, int resize, Err *e) {
    if (is_features_model())
        return err_set(e, "%s: model %s reads %d features per example, not images: give a CSV or NPY file", path,
                       MPLC_MODEL_NAME, MPLC_INPUT_SIZE);
    if (MPLC_INPUT_CHANNELS != 1 && MPLC_INPUT_CHANNELS != 3)
        return err_set(e, "%s: model %s reads images of %d channels; predict reads grey or RGB image files", path,
                       MPLC_MODEL_NAME, MPLC_INPUT_CHANNELS);
    if (pixels_known(path, px, e) != 0) return -1;
    uint8_t *pixels = xmalloc(MPLC_INPUT_SIZE);
    int got_w, got_h;
    int rc = image_read(path, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS, resize, pixels, &got_w, &got_h,
                        e);
    float *x = rc == 0 ? next_row(b, path, -1) : NULL;
    for (size_t i = 0; x && i < (size_t)MPLC_INPUT_SIZE; i++)
        x[i] = pixel(pixels[i], (int)(i % MPLC_INPUT_CHANNELS), px);
    free(pixels);
    return rc == 0 ? 0 : -1;
}

/* An IDX image file (train-images-idx3-ubyte and the like, gzip or not): N grey images of the model's size. */
static int predict_idx(Batch *b, const char *path, const Pixels *px, Err *e) {
    IdxArray a;
    if (pixels_known(path, px, e) != 0 || idx_read(path, IDX_MAGIC_IMAGES, &a, e) != 0) return -1;
    int rc = 0;
    if (a.dims[1] != MPLC_INPUT_HEIGHT || a.dims[2] != MPLC_INPUT_WIDTH || MPLC_INPUT_CHANNELS != 1)
        rc = err_set(e, "%s: images are %ux%u with 1 channel, model %s takes %dx%d with %d channel(s)", path, a.dims[1],
                     a.dims[2], MPLC_MODEL_NAME, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS);
    for (size_t n = 0; rc == 0 && n < a.dims[0]; n++) {
        float *x = next_row(b, path, (long)n);
        for (size_t i = 0; i < (size_t)MPLC_INPUT_SIZE; i++)
            x[i] = pixel(a.data[n * MPLC_INPUT_SIZE + i], 0, px);
    }
    idx_free(&a);
    return rc;
}

/* An NPY file of examples: (N, H, W, C), (N, H, W) for one channel or (N, H·W·C); '|u1' pixels normalised as
 * images are, '<f4' values used as is (as the trainer uses float data). */
static int predict_npy(Batch *b, const char *path, const Pixels *px, Err *e) {
    const size_t D = MPLC_INPUT_SIZE;
    NpyArray a;
    if (npy_read(path, &a, e) != 0) return -1;
    int rc = 0;
    char shape[128];
    npy_shape_str(&a, shape, sizeof shape);
    int fits = (a.ndim == 4 && a.shape[1] == MPLC_INPUT_HEIGHT && a.shape[2] == MPLC_INPUT_WIDTH &&
                a.shape[3] == MPLC_INPUT_CHANNELS) ||
               (a.ndim == 3 && MPLC_INPUT_CHANNELS == 1 && a.shape[1] == MPLC_INPUT_HEIGHT &&
                a.shape[2] == MPLC_INPUT_WIDTH) ||
               (a.ndim == 2 && a.shape[1] == D);
    if (a.type != NPY_F4 && a.type != NPY_U1)
        rc = err_set(e, "%s: dtype %s; predict reads '<f4' or '|u1' examples", path, npy_type_name(a.type));
    else if (!fits)
        rc = err_set(e,
                     "%s: shape %s does not fit model %s: expected (N, %d, %d, %d), (N, %d, %d) for 1 channel or "
                     "(N, %zu)",
                     path, shape, MPLC_MODEL_NAME, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS,
                     MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, D);
    else if (a.type == NPY_U1 && (MPLC_INPUT_CHANNELS == 1 || MPLC_INPUT_CHANNELS == 3))
        rc = pixels_known(path, px, e);
    else if (a.type == NPY_U1)
        rc = err_set(e, "%s: 8-bit values for model %s, which reads %d channels: give float32 ('<f4') values", path,
                     MPLC_MODEL_NAME, MPLC_INPUT_CHANNELS);
    for (size_t n = 0; rc == 0 && n < a.shape[0]; n++) {
        float *x = next_row(b, path, (long)n);
        for (size_t i = 0; rc == 0 && i < D; i++) {
            if (a.type == NPY_U1) {
                x[i] = pixel(((const uint8_t *)a.data)[n * D + i], (int)(i % MPLC_INPUT_CHANNELS), px);
                continue;
            }
            x[i] = ((const float *)a.data)[n * D + i];
            if (!isfinite(x[i])) rc = err_set(e, "%s: example %zu, value %zu is not finite", path, n, i);
        }
    }
    npy_free(&a);
    return rc;
}

/* A CSV file of feature vectors (Features models): rows of the model's D inputs, or of D inputs and a label (a test
 * set's; ignored), used as is. */
static int predict_csv(Batch *b, const char *path, Err *e) {
    const size_t D = MPLC_INPUT_SIZE;
    CsvTable t;
    if (!is_features_model())
        return err_set(e, "%s: model %s reads %dx%d images; CSV files are for Features models", path, MPLC_MODEL_NAME,
                       MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH);
    if (csv_read(path, &t, e) != 0) return -1;
    int rc = 0;
    if (t.cols != D && t.cols != D + 1)
        rc = err_set(e, "%s: rows of %zu fields; model %s takes %zu features (and an optional label after them)", path,
                     t.cols, MPLC_MODEL_NAME, D);
    for (size_t n = 0; rc == 0 && n < t.rows; n++)
        memcpy(next_row(b, path, (long)n), t.v + n * t.cols, D * sizeof(float));
    csv_free(&t);
    return rc;
}

/* The format by the file's name: *.npy (NPY), *.csv (CSV), *idx3-ubyte or *.idx (IDX), each also with .gz for NPY
 * and IDX; anything else an image file (PNG or JPEG). */
static int predict_file(Batch *b, const char *path, const Pixels *px, int resize, Err *e) {
    if (has_suffix(path, ".npy") || has_suffix(path, ".npy.gz")) return predict_npy(b, path, px, e);
    if (has_suffix(path, ".csv")) return predict_csv(b, path, e);
    if (has_suffix(path, "idx3-ubyte") || has_suffix(path, "idx3-ubyte.gz") || has_suffix(path, ".idx") ||
        has_suffix(path, ".idx.gz"))
        return predict_idx(b, path, px, e);
    return predict_image(b, path, px, resize, e);
}

/* One value per channel of model's input, "0.25,0.5,0.75" (as checkpoint.c writes them): the count, or -1. */
static int channel_values(const char *text, double v[3]) {
    int n = 0;
    for (const char *p = text; n < 3; p++) {
        char *end;
        v[n++] = strtod(p, &end);
        if (end == p || !isfinite(v[n - 1])) return -1;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        p = end;
    }
    return -1;
}

/* The pixels' normalisation: the one the checkpoint records (an image-folder run's, computed from its training
 * images: metadata norm_mean and norm_std), else --normalise, else Fashion-MNIST's for a grey model. A
 * --normalise beside recorded statistics would silently feed the student other inputs than it trained on:
 * refused. */
static int pixel_normalisation(const StMeta *m, const char *checkpoint, const char *normalise, Pixels *px, Err *e) {
    const char *mean = meta_get(m, "norm_mean"), *std = meta_get(m, "norm_std");
    *px = (Pixels){0};
    if (!mean && !std) {
        if (!normalise && MPLC_INPUT_CHANNELS == 1) normalise = "fashion-mnist";
        px->known = normalise != NULL;
        return normalise ? normalisation(normalise, px->mean, px->std, e) : 0;
    }
    const int C = MPLC_INPUT_CHANNELS;
    if (!mean || !std || channel_values(mean, px->mean) != C || channel_values(std, px->std) != C)
        return err_set(e,
                       "%s: metadata norm_mean '%.64s' and norm_std '%.64s' are not one value per channel of model %s "
                       "(%d)",
                       checkpoint, mean ? mean : "(none)", std ? std : "(none)", MPLC_MODEL_NAME, C);
    for (int c = 0; c < C; c++)
        if (!(px->std[c] > 0))
            return err_set(e, "%s: metadata norm_std '%.64s' has a value that is not positive", checkpoint, std);
    if (normalise)
        return err_set(e,
                       "--normalise %s: %s records the normalisation of the images it was trained on (mean %s, std "
                       "%s), which predict uses; drop --normalise",
                       normalise, checkpoint, mean, std);
    px->known = 1;
    return 0;
}

int predict_command(const char *checkpoint, int use_ema, const char *normalise, int resize, char **files, int nfiles) {
    Err e;
    Pixels px; /* a --normalise that names no data set is a usage error, before the checkpoint is read */
    if (normalise && normalisation(normalise, px.mean, px.std, &e) != 0) die_err(&e, EXIT_USAGE);
    if (arenas_fit_in_memory(1, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *state = arena_alloc(MPLC_STATE_FLOATS), *ema = use_ema ? arena_alloc(MPLC_STATE_FLOATS) : NULL;
    int has_ema = 0;
    StMeta *meta = xmalloc(sizeof *meta);
    if (st_load_ema(checkpoint, state, ema, &has_ema, meta, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    const char *updates = meta_get(meta, "ema_updates");
    if (use_ema && !has_ema)
        die(EXIT_BAD_INPUT, "%s: --ema: the checkpoint has no EMA (the run had --ema-decay 0)", checkpoint);
    if (use_ema && updates && strcmp(updates, "0") == 0)
        die(EXIT_BAD_INPUT, "%s: --ema: the EMA has no update yet (the student was still waiting)", checkpoint);
    if (pixel_normalisation(meta, checkpoint, normalise, &px, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    resize = resize || checkpoint_resizes(meta); /* the images as its training saw them */
    free(meta);
    Batch *b = xmalloc(sizeof *b);
    *b = (Batch){.state = use_ema ? ema : state,
                 .x = arena_alloc(EVAL_INPUT_FLOATS),
                 .logits = arena_alloc((size_t)MPLC_EVAL_BATCH * MPLC_CLASSES),
                 .scratch = arena_alloc(MPLC_SCRATCH_FLOATS)};
    for (int f = 0; f < nfiles; f++)
        if (predict_file(b, files[f], &px, resize, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    flush(b);
    free(b->x);
    free(b->logits);
    free(b->scratch);
    free(b);
    free(state);
    free(ema);
    return 0;
}
