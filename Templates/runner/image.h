/* One image file, PNG or JPEG (untrusted input), decoded by stb_image (Debian's libstb-dev) into bytes, and
 * resized by its stb_image_resize when asked. */
#ifndef RUNNER_IMAGE_H
#define RUNNER_IMAGE_H

#include <stdint.h>

#include "util.h"

#define IMAGE_MAX_FILE_BYTES (64u << 20) /* a larger file is refused unread */
#define IMAGE_MAX_SIDE 16384             /* stb_image refuses wider or taller images from their header */

/* Reads path into out: h x w pixels of c channels (1 or 3), rows top to bottom, each pixel's channels
 * together (the model's [H, W, C] layout); grayscale and RGB (and alpha, dropped) are converted to c channels.
 * An image of another size is resized to h x w when resize_it (stretched: image.c says how and why), else refused.
 * *got_w x *got_h is the file's size. 0 on success; -1 with e naming path if the file cannot be read or is not
 * a whole PNG or JPEG image; 1 if it is an image of another size and not resize_it (e says so), before anything
 * is decoded. The file's bytes, the decoded image and the resize's buffers are taken from the memory budget
 * (budget.h) while they are held. */
int image_read(const char *path, int h, int w, int c, int resize_it, uint8_t *out, int *got_w, int *got_h, Err *e);

#endif
