/* Reading files that may or may not be gzip-compressed (zlib's gzread passes plain files through). */
#ifndef RUNNER_FILEIO_H
#define RUNNER_FILEIO_H

#include <stddef.h>
#include <zlib.h>

#include "util.h"

typedef struct {
    gzFile gz;
    const char *path;
    size_t offset; /* bytes of (uncompressed) content consumed so far, for messages */
} InFile;

int in_open(InFile *f, const char *path, Err *e);
void in_close(InFile *f);
/* Reads exactly n bytes; a short read is reported as truncation, a zlib failure as corruption. */
int in_read(InFile *f, void *buf, size_t n, const char *what, Err *e);
/* Fails unless the content ends here (no trailing bytes after what the header announced). */
int in_expect_end(InFile *f, Err *e);
/* Reads `count` elements of `elem` bytes into a buffer that grows with the data actually present, so a
 * header that lies about a huge size cannot make us allocate gigabytes before the truncation is found. */
int in_read_array(InFile *f, size_t count, size_t elem, void **out, const char *what, Err *e);
/* Reads the whole (uncompressed) content of path, for formats whose size is not in a header (CIFAR-10
 * batches, MAT files). The buffer grows with the data actually read; *len may be 0. */
int in_read_file(const char *path, void **out, size_t *len, Err *e);

/* The whole of a regular file of at most max_bytes (a FIFO, device or folder is refused without waiting, a larger
 * file before it is read; what names the content in that message, e.g. "an image"), not decompressed. */
int read_regular_file(const char *path, size_t max_bytes, const char *what, unsigned char **out, size_t *len, Err *e);

#endif
