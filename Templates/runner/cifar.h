/* CIFAR-10 binary batches (the "CIFAR-10 binary version" of https://www.cs.toronto.edu/~kriz/cifar.html):
 * data_batch_1.bin ... data_batch_5.bin and test_batch.bin, each a sequence of 3073-byte records, one label
 * byte (0..9) then 3072 pixel bytes: the 1024 red values of the 32x32 image in row-major order, then the
 * 1024 green, then the 1024 blue. No header: a file's size says how many records it holds. */
#ifndef RUNNER_CIFAR_H
#define RUNNER_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)                         /* 3073 */
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_BATCHES 5

/* The usual CIFAR-10 statistics of p/255 per channel (R, G, B). */
#define CIFAR_MEAN_R 0.4914
#define CIFAR_MEAN_G 0.4822
#define CIFAR_MEAN_B 0.4465
#define CIFAR_STD_R 0.2470
#define CIFAR_STD_G 0.2435
#define CIFAR_STD_B 0.2616

/* Records of one or more batch files, still in the file's layout. */
typedef struct {
    size_t n;          /* records */
    uint8_t *records;  /* n x CIFAR_RECORD bytes */
} CifarBatch;

/* Reads one batch file (plain or gzip-compressed) and appends its records to b (which starts zeroed).
 * Fails, naming the file, if it is empty, its size is not a multiple of 3073 bytes, a label is not below
 * 10, or the records do not fit in the memory budget (budget.h; cifar_free returns them). */
int cifar_read(const char *path, CifarBatch *b, Err *e);
void cifar_free(CifarBatch *b);

/* The label of record i and its pixel (y, x, c) in the file's planar layout. */
static inline uint8_t cifar_label(const CifarBatch *b, size_t i) { return b->records[i * CIFAR_RECORD]; }
static inline uint8_t cifar_pixel(const CifarBatch *b, size_t i, int y, int x, int c) {
    return b->records[i * CIFAR_RECORD + 1 + (size_t)c * CIFAR_SIDE * CIFAR_SIDE + (size_t)y * CIFAR_SIDE + (size_t)x];
}

#endif
