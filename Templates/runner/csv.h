/* CSV files of numbers (csv.c), untrusted input: fields separated by commas, one row per line (LF or CRLF), blank
 * lines skipped, an optional header (a first line in which no field is a number), every row with the same
 * number of fields, every value finite. */
#ifndef RUNNER_CSV_H
#define RUNNER_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CSV_MAX_FILE_BYTES (1ull << 31) /* a larger file is refused unread */
#define CSV_MAX_FIELD 64                /* characters of one field (a float needs fewer than 32) */

typedef struct {
    size_t rows;
    size_t cols;
    int header;       /* the file had a header line (skipped) */
    float *v;         /* rows x cols, row-major */
    uint64_t planned; /* bytes taken from the memory budget (the file's while it is parsed, then v's) */
} CsvTable;

/* Reads path into t; -1 with e naming the file (and line and field) on any error, t empty. */
int csv_read(const char *path, CsvTable *t, Err *e);
void csv_free(CsvTable *t);

#endif
