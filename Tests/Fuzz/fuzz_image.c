/* libFuzzer target: image files (PNG and JPEG, through stb_image) as image_read decodes them for the image-folder
 * data sets (dataset_images.c). The first byte picks the model's channels (bit 0: 1 or 3) and the size images are
 * resized to (--resize; bits 1-3 the width, 4-6 the height: 1 to 64 pixels each); the file is read once at a size
 * it does not have (1x1: refused from its header, as a data set refuses it), then, if that named a size of at
 * most 256x256 pixels, decoded at its own size and resized (stb_image_resize, shrinking or enlarging each side). */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <string.h>

#include "budget.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int c = data[0] & 1 ? 3 : 1, rw = 1 + 9 * ((data[0] >> 1) & 7), rh = 1 + 9 * ((data[0] >> 4) & 7);
    const char *path = fuzz_file(data + 1, size - 1);
    uint8_t one[3];
    int w = 0, h = 0;
    Err e;
    int rc = image_read(path, 1, 1, c, 0, one, &w, &h, &e);
    FUZZ_ASSERT(rc == 0 || (e.msg[0] != '\0' && strstr(e.msg, path) != NULL));
    FUZZ_ASSERT(budget_planned() == 0);
    if (rc != 1) return 0;
    FUZZ_ASSERT(w > 0 && h > 0 && w <= IMAGE_MAX_SIDE && h <= IMAGE_MAX_SIDE && (w != 1 || h != 1));
    if ((long)w * h > 256 * 256) return 0;
    uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)c), *resized = malloc((size_t)rw * (size_t)rh * (size_t)c);
    int w2, h2;
    rc = image_read(path, h, w, c, 0, px, &w2, &h2, &e);
    FUZZ_ASSERT(rc != 1); /* the same header names the same size */
    if (rc == 0) fuzz_touch(px, (size_t)w * (size_t)h * (size_t)c);
    else FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
    const int decoded = rc == 0;
    /* The same bytes decode the same way (image.c gives stb_image zeroed memory), so the resize fails only where
     * the decoding did. */
    rc = image_read(path, rh, rw, c, 1, resized, &w2, &h2, &e);
    FUZZ_ASSERT(rc != 1 && w2 == w && h2 == h); /* resized, not refused; the file's size reported */
    FUZZ_ASSERT((rc == 0) == decoded);
    if (rc == 0) fuzz_touch(resized, (size_t)rw * (size_t)rh * (size_t)c);
    else FUZZ_ASSERT(e.msg[0] != '\0' && strstr(e.msg, path) != NULL);
    free(px);
    free(resized);
    FUZZ_ASSERT(budget_planned() == 0); /* every byte taken from the memory budget was returned */
    return 0;
}
