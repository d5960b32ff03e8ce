/* Image folders (dataset_images.c), an entry of the table of formats (dataset.h):
 *   DIR/labeled/<class>/<image>      the labeled set, used as is (no split); classes are the folder names, sorted
 *   DIR/unlabeled/<image>            unlabeled images (optional: without it the labeled images serve)
 *   DIR/test/<class>/<image>         the test set, with the same class folders
 * An image is a PNG or JPEG file (image.h) of the model's height and width (another size is refused, or resized
 * with Dataset.resize, --resize), converted to the model's channels.
 * Pixels are normalised per channel with the mean and standard deviation of the training images (labeled and
 * unlabeled), which the run records. Names starting with '.' are skipped. */
#ifndef RUNNER_DATASET_IMAGES_H
#define RUNNER_DATASET_IMAGES_H

#include "datasplit.h"

#define IMAGES_MAX_PER_FOLDER (1u << 24)

/* Image folders when DIR/labeled is a directory (DIR/test, for eval). */
int images_find(const char *dir, int want_train, char *root, size_t cap, Err *e);
int images_load(const char *dir, int want_train, Dataset *d, Err *e);

#endif
