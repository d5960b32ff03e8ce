/* stb_image is compiled here, with only its PNG and JPEG decoders (no other format is accepted from a data
 * directory, so no other decoder is reachable from its bytes) and its own limit on the sides; and
 * stb_image_resize (--resize), whose one work buffer per call is taken from the memory budget. */
#include "image.h"

#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "fileio.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO /* the file is read here, size-checked and budgeted, and decoded from memory */
#define STBI_MAX_DIMENSIONS IMAGE_MAX_SIDE
/* Zeroed memory: stb_image 2.27 reads parts of its JPEG decoder's state (malloc'ed, not cleared) that a corrupt
 * file leaves unset, so what it makes of such a file depends on what the heap held: decoded twice in one process,
 * a file once succeeded and once failed, another ended in stb's assertion on its Huffman tables, an abort (found
 * by Tests/Fuzz/fuzz_image.c once it decoded each file twice, for --resize; with glibc's MALLOC_PERTURB_ the second
 * one's error changes with the fill byte). With calloc the same bytes always decode the same way. */
#define STBI_MALLOC(size) calloc(1, (size))
#define STBI_REALLOC(p, size) realloc((p), (size))
#define STBI_FREE(p) free(p)
#include <stb/stb_image.h>

/* stb_image_resize allocates its work buffer through these (one STBIR_MALLOC and one STBIR_FREE per resize). */
typedef struct {
    const char *path;
    Err *e;
    uint64_t taken;
} ResizeBudget;

static void *resize_alloc(size_t size, ResizeBudget *b) {
    if (budget_take((uint64_t)size, b->path, "the buffers of the resize", b->e) != 0) return NULL;
    void *p = malloc(size);
    if (!p) {
        budget_return((uint64_t)size);
        err_set(b->e, "%s: out of memory resizing the image", b->path);
        return NULL;
    }
    b->taken = size;
    return p;
}

static void resize_free(void *p, ResizeBudget *b) {
    free(p);
    budget_return(b->taken);
    b->taken = 0;
}

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STBIR_MALLOC(size, context) resize_alloc((size), (ResizeBudget *)(context))
#define STBIR_FREE(ptr, context) resize_free((ptr), (ResizeBudget *)(context))
#include <stb/stb_image_resize.h>

/* stb_image 2.27 (Debian's) trusts the sizes of a JPEG's Huffman tables: a table of more than 256 codes makes
 * stbi__build_huffman write past its arrays (found by Tests/Fuzz/fuzz_image.c; upstream checks it from 2.28).
 * stb_image reads a table wherever the bytes FF C4 (DHT) start a segment, so every FF C4 of a JPEG file is
 * checked here first, as stb_image would read it: a length, then tables of a class byte, 16 code counts and as
 * many values. stb_image takes a file that starts with FF (then any fill bytes FF, then D8) for a JPEG; a PNG is
 * not checked: its compressed data holds any bytes, and stb_image reads no DHT there. */
static int jpeg_tables_ok(const unsigned char *b, size_t len) {
    if (len == 0 || b[0] != 0xFF) return 1;
    for (size_t at = 0; at + 4 <= len; at++) {
        if (b[at] != 0xFF || b[at + 1] != 0xC4) continue;
        long left = (long)((b[at + 2] << 8) | b[at + 3]) - 2;
        size_t p = at + 4;
        while (left > 0 && p < len) {
            unsigned codes = 0;
            for (size_t i = 1; i <= 16 && p + i < len; i++) codes += b[p + i];
            if (codes > 256) return 0;
            p += 17 + codes;
            left -= 17 + (long)codes;
        }
    }
    return 1;
}

/* stb_image 2.27 grows its buffer for a PNG's IDAT data by the length each chunk header claims (up to 1 GiB)
 * before it reads that data, so a file of a few hundred bytes makes it allocate 2 GiB (found by
 * Tests/Fuzz/fuzz_image.c). Every chunk of a PNG up to IEND must therefore fit in the file: its length, type,
 * data and CRC. A file that does not start with the PNG signature is not a PNG to stb_image and is not checked. */
static int png_chunks_ok(const unsigned char *b, size_t len) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len < 8 || memcmp(b, signature, 8) != 0) return 1;
    for (size_t at = 8; at + 8 <= len;) {
        const uint64_t n = ((uint64_t)b[at] << 24) | ((uint64_t)b[at + 1] << 16) | ((uint64_t)b[at + 2] << 8) | b[at + 3];
        if (n + 12 > len - at) return 0;
        if (memcmp(b + at + 4, "IEND", 4) == 0) break;
        at += 12 + (size_t)n;
    }
    return 1;
}

/* The whole file, at most IMAGE_MAX_FILE_BYTES (read_regular_file: a FIFO or a folder is refused without
 * waiting), its bytes taken from the budget (returned by the caller). */
static int read_whole(const char *path, unsigned char **out, size_t *len, Err *e) {
    if (read_regular_file(path, IMAGE_MAX_FILE_BYTES, "an image file", out, len, e) != 0) return -1;
    if (budget_take((uint64_t)*len, path, "the image file's bytes", e) != 0) {
        free(*out);
        return -1;
    }
    return 0;
}

/* px (iw x ih, c channels) resized to out (w x h), stretched: the aspect ratio is not kept. Keras's folder reader
 * (image_dataset_from_directory) does the same by default, as does torchvision's Resize((h, w)), and nothing of
 * the picture is cut off: an object at the edge of a photo stays in it. Each axis is filtered by its
 * direction: shrinking averages the pixels each output pixel covers (stb's box filter, exact for whole ratios:
 * no aliasing of fine patterns, no ringing), enlarging interpolates linearly (its triangle filter, bilinear: no
 * overshoot). The 8-bit values are filtered as they are (no sRGB linearisation), as other image libraries do,
 * and the edges are clamped. */
static int resize(const uint8_t *px, int iw, int ih, uint8_t *out, int w, int h, int c, const char *path, Err *e) {
    ResizeBudget b = {path, e, 0};
    const stbir_filter fw = iw > w ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE,
                       fh = ih > h ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE;
    e->msg[0] = '\0';
    if (stbir_resize(px, iw, ih, 0, out, w, h, 0, STBIR_TYPE_UINT8, c, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                     STBIR_EDGE_CLAMP, fw, fh, STBIR_COLORSPACE_LINEAR, &b))
        return 0;
    return e->msg[0] ? -1 : err_set(e, "%s: cannot resize the image from %dx%d to %dx%d", path, iw, ih, w, h);
}

int image_read(const char *path, int h, int w, int c, int resize_it, uint8_t *out, int *got_w, int *got_h, Err *e) {
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (read_whole(path, &bytes, &len, e) != 0) return -1;
    int rc = -1, iw = 0, ih = 0, ic = 0;
    if (!png_chunks_ok(bytes, len)) {
        err_set(e, "%s: corrupt or unsupported image (a PNG chunk longer than the rest of the file)", path);
        goto done;
    }
    if (!jpeg_tables_ok(bytes, len)) {
        err_set(e, "%s: corrupt JPEG image (a Huffman table of more than 256 codes)", path);
        goto done;
    }
    if (len > INT32_MAX || !stbi_info_from_memory(bytes, (int)len, &iw, &ih, &ic)) {
        err_set(e, "%s: not a PNG or JPEG image (%s)", path, len > INT32_MAX ? "too large" : stbi_failure_reason());
        goto done;
    }
    *got_w = iw, *got_h = ih;
    if ((iw != w || ih != h) && !resize_it) {
        err_set(e, "%s: %dx%d pixels, the model takes %dx%d (--resize resizes images of another size)", path, iw, ih,
                w, h);
        rc = 1;
        goto done;
    }
    /* stb_image holds the decoded pixels of the file's channels and of c (16 bits each at most) at once; the
     * budget stays taken while the decoded image is resized. */
    const uint64_t decode = (uint64_t)iw * (uint64_t)ih * 2u * (uint64_t)(ic + c);
    if (budget_take(decode, path, "the decoded image", e) != 0) goto done;
    int dw, dh, dc;
    unsigned char *px = stbi_load_from_memory(bytes, (int)len, &dw, &dh, &dc, c);
    if (!px) {
        err_set(e, "%s: corrupt or unsupported image (%s)", path, stbi_failure_reason());
    } else if (dw != iw || dh != ih) { /* the header said otherwise: refuse, whatever stb made of it */
        err_set(e, "%s: corrupt image (its header and its data disagree on the size)", path);
    } else if (iw == w && ih == h) {
        memcpy(out, px, (size_t)w * (size_t)h * (size_t)c);
        rc = 0;
    } else {
        rc = resize(px, iw, ih, out, w, h, c, path, e);
    }
    stbi_image_free(px);
    budget_return(decode);
done:
    free(bytes);
    budget_return(len);
    return rc;
}
