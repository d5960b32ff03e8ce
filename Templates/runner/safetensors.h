/* Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON header naming
 * every state tensor (dtype "F32", shape, data_offsets) plus "__metadata__" (string values), then the
 * raw little-endian float32 data. Tensors are those of model.h's state table, by their table names. */
#ifndef RUNNER_SAFETENSORS_H
#define RUNNER_SAFETENSORS_H

#include "util.h"

/* The metadata key of the data's checksum: CRC-32 (zlib) of the data section, 8 lowercase hex digits. Every
 * file st_save writes has it; st_load verifies it when present. */
#define ST_CRC_KEY "data_crc32"

#define ST_MAX_META 64
#define ST_KEY_LEN 64
#define ST_VALUE_LEN 2048

typedef struct {
    int count;
    char key[ST_MAX_META][ST_KEY_LEN];
    char value[ST_MAX_META][ST_VALUE_LEN];
} StMeta;

void meta_clear(StMeta *m);
/* Adds or replaces key (formatted value); dies if the fixed-size table is full (a programming error). */
void meta_set(StMeta *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *meta_get(const StMeta *m, const char *key); /* NULL if absent */

/* Writes path.tmp, fsyncs it, renames it over path and fsyncs the directory: a crash at any point
 * leaves either the old or the new checkpoint, never a partial one. The metadata written is meta (may be
 * NULL) plus ST_CRC_KEY. */
int st_save(const char *path, const float *state, const StMeta *meta, Err *e);
/* Reads and validates a checkpoint against model.h's state table into state[MPLC_STATE_FLOATS];
 * meta may be NULL. Before any data is read: the file must be a regular file no larger than a checkpoint
 * of this model can be (fstat), the header length bounded, the header valid JSON and UTF-8, every entry a
 * state tensor with its shape, and the entries must tile the rest of the file exactly. After: the data
 * must match its checksum (when the file has one) and be finite. On failure the state arena may be partly
 * written. EMA tensors (below) are validated and skipped. */
int st_load(const char *path, float *state, StMeta *meta, Err *e);

/* The student's EMA (ema.h) is stored as one extra tensor "ema/<name>" per state tensor <name> that
 * the EMA tracks ("student/..."), after the state tensors, with the same dtype and shape.
 * st_save_ema writes them from ema[MPLC_STATE_FLOATS] unless ema is NULL (then it is st_save).
 * st_load_ema reads them into ema (zeroing its other floats; ema may be NULL to skip them) and sets
 * *has_ema to 1 if the file has them, 0 if it has none; a file with some but not all is an error. */
int st_save_ema(const char *path, const float *state, const float *ema, const StMeta *meta, Err *e);
int st_load_ema(const char *path, float *state, float *ema, int *has_ema, StMeta *meta, Err *e);

#endif
