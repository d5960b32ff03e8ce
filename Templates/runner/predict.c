/* mplc-run predict: the class and class probabilities of each image file (PNG or JPEG), by the
 * student of a checkpoint (or its EMA), one JSON line per image on stdout. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "dataset.h"
#include "fileio.h"
#include "image.h"
#include "json.h"
#include "model.h"
#include "safetensors.h"
#include "svhn.h"
#include "tensors.h"
#include "train.h"
#include "trainer.h"

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

/* Decodes path into x (MPLC_INPUT_SIZE floats, NHWC, rows top to bottom) with the data loader's decoder
 * (image.c: PNG or JPEG, the model's size), normalised as the trainer normalises 8-bit data:
 * ((double)p / 255 - mean) / std, rounded to float once. */
static int load_image(const char *path, const double mean[3], const double std[3], float *x, Err *e) {
    uint8_t *pixels = xmalloc(MPLC_INPUT_SIZE);
    int got_w, got_h;
    int rc = image_read(path, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS, pixels, &got_w, &got_h, e);
    for (size_t i = 0; rc == 0 && i < (size_t)MPLC_INPUT_SIZE; i++) {
        int c = (int)(i % MPLC_INPUT_CHANNELS);
        x[i] = (float)(((double)pixels[i] / 255.0 - mean[c]) / std[c]);
    }
    free(pixels);
    return rc == 0 ? 0 : -1;
}

int predict_command(const char *checkpoint, int use_ema, const char *normalise, char **files, int nfiles) {
    Err e;
    if (MPLC_INPUT_HEIGHT == 1 && MPLC_INPUT_WIDTH == 1)
        die(EXIT_USAGE, "predict: model %s reads %d features per example, not images", MPLC_MODEL_NAME,
            MPLC_INPUT_SIZE);
    if (MPLC_INPUT_CHANNELS != 1 && MPLC_INPUT_CHANNELS != 3)
        die(EXIT_USAGE, "predict: model %s reads images of %d channels; predict reads grey or RGB images",
            MPLC_MODEL_NAME, MPLC_INPUT_CHANNELS);
    double mean[3] = {0}, std[3] = {1, 1, 1};
    if (normalisation(normalise, mean, std, &e) != 0) die_err(&e, EXIT_USAGE);
    if (arenas_fit_in_memory(1, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    float *state = arena_alloc(MPLC_STATE_FLOATS), *ema = use_ema ? arena_alloc(MPLC_STATE_FLOATS) : NULL;
    int has_ema = 0;
    StMeta *meta = xmalloc(sizeof *meta);
    if (st_load_ema(checkpoint, state, ema, &has_ema, meta, &e) != 0) die_err(&e, EXIT_BAD_INPUT);
    const char *updates = meta_get(meta, "ema_updates");
    if (use_ema && !has_ema) die(EXIT_BAD_INPUT, "%s: --ema: the checkpoint has no EMA (the run had --ema-decay 0)", checkpoint);
    if (use_ema && updates && strcmp(updates, "0") == 0)
        die(EXIT_BAD_INPUT, "%s: --ema: the EMA has no update yet (the student was still waiting)", checkpoint);
    free(meta);
    float *scratch = arena_alloc(MPLC_SCRATCH_FLOATS);
    float *x = arena_alloc(EVAL_INPUT_FLOATS);
    float *logits = arena_alloc((size_t)MPLC_EVAL_BATCH * MPLC_CLASSES);
    /* Batches of MPLC_EVAL_BATCH images, the last one padded with zero images (their logits are ignored). */
    for (int start = 0; start < nfiles; start += MPLC_EVAL_BATCH) {
        int rows = nfiles - start < MPLC_EVAL_BATCH ? nfiles - start : MPLC_EVAL_BATCH;
        memset(x, 0, EVAL_INPUT_FLOATS * sizeof *x);
        for (int i = 0; i < rows; i++)
            if (load_image(files[start + i], mean, std, x + (size_t)i * MPLC_INPUT_SIZE, &e) != 0)
                die_err(&e, EXIT_BAD_INPUT);
        mplc_predict_student(use_ema ? ema : state, x, logits, scratch);
        for (int i = 0; i < rows; i++) {
            const float *z = logits + (size_t)i * MPLC_CLASSES;
            /* softmax in double, the row's maximum subtracted */
            int best = 0;
            for (int k = 1; k < MPLC_CLASSES; k++)
                if (z[k] > z[best]) best = k;
            double p[MPLC_CLASSES], sum = 0;
            for (int k = 0; k < MPLC_CLASSES; k++) sum += p[k] = exp((double)z[k] - (double)z[best]);
            if (!isfinite(sum)) die(EXIT_NONFINITE, "%s: the student's logits are not finite", files[start + i]);
            printf("{\"file\":");
            json_write_string(stdout, files[start + i]);
            printf(",\"class\":%d,\"probability\":", best);
            json_write_double(stdout, p[best] / sum);
            printf(",\"probabilities\":[");
            for (int k = 0; k < MPLC_CLASSES; k++) {
                if (k) putchar(',');
                json_write_double(stdout, p[k] / sum);
            }
            printf("]}\n");
        }
    }
    free(state);
    free(ema);
    free(scratch);
    free(x);
    free(logits);
    return 0;
}
