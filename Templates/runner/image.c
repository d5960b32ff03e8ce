/* stb_image is compiled here, with only its PNG and JPEG decoders (no other format is accepted from a data
 * directory, so no other decoder is reachable from its bytes) and its own limit on the sides. */
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
#include <stb/stb_image.h>

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

int image_read(const char *path, int h, int w, int c, uint8_t *out, int *got_w, int *got_h, Err *e) {
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
    if (iw != w || ih != h) {
        err_set(e, "%s: %dx%d pixels, the model takes %dx%d", path, iw, ih, w, h);
        rc = 1;
        goto done;
    }
    /* stb_image holds the decoded pixels of the file's channels and of c (16 bits each at most) at once. */
    const uint64_t decode = (uint64_t)iw * (uint64_t)ih * 2u * (uint64_t)(ic + c);
    if (budget_take(decode, path, "the decoded image", e) != 0) goto done;
    int dw, dh, dc;
    unsigned char *px = stbi_load_from_memory(bytes, (int)len, &dw, &dh, &dc, c);
    budget_return(decode);
    if (!px) {
        err_set(e, "%s: corrupt or unsupported image (%s)", path, stbi_failure_reason());
        goto done;
    }
    if (dw == w && dh == h) {
        memcpy(out, px, (size_t)w * (size_t)h * (size_t)c);
        rc = 0;
    } else { /* the header said otherwise: refuse, whatever stb made of it */
        err_set(e, "%s: corrupt image (its header and its data disagree on the size)", path);
    }
    stbi_image_free(px);
done:
    free(bytes);
    budget_return(len);
    return rc;
}
