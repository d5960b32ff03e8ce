#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ema.h"
#include "json.h"
#include "tensors.h"

#define EMA_PREFIX "ema/"

#define ST_MAX_HEADER (100u << 20) /* the same limit as the reference implementation */

void meta_clear(StMeta *m) { m->count = 0; }

void meta_set(StMeta *m, const char *key, const char *fmt, ...) {
    int i = 0;
    while (i < m->count && strcmp(m->key[i], key) != 0) i++;
    if (i == m->count) {
        if (m->count == ST_MAX_META) die(EXIT_BAD_INPUT, "internal: too many checkpoint metadata entries");
        snprintf(m->key[i], ST_KEY_LEN, "%s", key);
        m->count++;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->value[i], ST_VALUE_LEN, fmt, ap);
    va_end(ap);
}

const char *meta_get(const StMeta *m, const char *key) {
    for (int i = 0; i < m->count; i++)
        if (strcmp(m->key[i], key) == 0) return m->value[i];
    return NULL;
}

/* ---- writing ---- */

static void write_entry(FILE *fp, const char *prefix, const mplc_tensor *t, size_t *begin) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, t->name);
    json_write_string(fp, name);
    fputs(":{\"dtype\":\"F32\",\"shape\":[", fp);
    for (int d = 0; d < t->rank; d++) fprintf(fp, d ? ",%d" : "%d", t->shape[d]);
    size_t end = *begin + 4 * t->count;
    fprintf(fp, "],\"data_offsets\":[%zu,%zu]}", *begin, end);
    *begin = end;
}

/* CRC-32 (zlib) of the data section as st_save_ema lays it out: the state tensors in table order, then the
 * EMA's (ema NULL: none). The reader computes it over the tensors it loaded, by name. */
static uint32_t data_crc(const float *state, const float *ema) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int pass = 0; pass < (ema ? 2 : 1); pass++)
        for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
            const mplc_tensor *t = &mplc_state_tensors[i];
            if (pass == 1 && !ema_tracks(t)) continue;
            const unsigned char *p = (const unsigned char *)((pass ? ema : state) + t->offset);
            for (size_t left = 4 * t->count; left > 0;) { /* crc32 takes at most UINT_MAX bytes at a time */
                uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
                crc = crc32(crc, p, n);
                p += n;
                left -= n;
            }
        }
    return (uint32_t)crc;
}

/* The metadata is the caller's plus the data's checksum (any checksum in meta, e.g. copied from a file read
 * before, is replaced). */
static void write_header(FILE *fp, const StMeta *meta, int with_ema, uint32_t crc) {
    fputs("{\"__metadata__\":{", fp);
    for (int i = 0; meta && i < meta->count; i++) {
        if (strcmp(meta->key[i], ST_CRC_KEY) == 0) continue;
        json_write_string(fp, meta->key[i]);
        fputc(':', fp);
        json_write_string(fp, meta->value[i]);
        fputc(',', fp);
    }
    fprintf(fp, "\"" ST_CRC_KEY "\":\"%08lx\"},", (unsigned long)crc);
    size_t begin = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        if (i) fputc(',', fp);
        write_entry(fp, "", &mplc_state_tensors[i], &begin);
    }
    for (int i = 0; with_ema && i < MPLC_NUM_STATE_TENSORS; i++) {
        if (!ema_tracks(&mplc_state_tensors[i])) continue;
        fputc(',', fp);
        write_entry(fp, EMA_PREFIX, &mplc_state_tensors[i], &begin);
    }
    fputc('}', fp);
}

int st_save(const char *path, const float *state, const StMeta *meta, Err *e) {
    return st_save_ema(path, state, NULL, meta, e);
}

int st_save_ema(const char *path, const float *state, const float *ema, const StMeta *meta, Err *e) {
    /* Build the header in memory first: its length comes before it in the file. */
    char *hbuf = NULL;
    size_t hlen = 0;
    FILE *mem = open_memstream(&hbuf, &hlen);
    if (!mem) return err_set(e, "%s: cannot build the header", path);
    write_header(mem, meta, ema != NULL, data_crc(state, ema));
    fclose(mem);
    size_t padded = (hlen + 7) / 8 * 8; /* pad with spaces so the data is 8-byte aligned */

    AtomicFile out;
    if (atomic_create(&out, path, e) != 0) {
        free(hbuf);
        return -1;
    }
    FILE *fp = out.fp;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fwrite(hbuf, 1, hlen, fp);
    for (size_t i = hlen; i < padded; i++) fputc(' ', fp);
    free(hbuf);
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        fwrite(state + t->offset, sizeof(float), t->count, fp);
    }
    for (int i = 0; ema && i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (ema_tracks(t)) fwrite(ema + t->offset, sizeof(float), t->count, fp);
    }
    return atomic_commit(&out, e);
}

/* ---- reading ---- */

/* The most data a checkpoint of this model can hold: every state tensor and the EMA of the student's. */
static uint64_t max_data_bytes(void) {
    uint64_t floats = MPLC_STATE_FLOATS;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++)
        if (ema_tracks(&mplc_state_tensors[i])) floats += mplc_state_tensors[i].count;
    return 4 * floats;
}

/* Reads exactly n bytes at offset; a file that ends early changed after its size was checked. */
static int read_at(int fd, const char *path, void *buf, size_t n, uint64_t offset, const char *what, Err *e) {
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return err_set(e, "%s: cannot read %s: %s", path, what, strerror(errno));
        if (got == 0) return err_set(e, "%s: the file ended while reading %s (did it change?)", path, what);
        done += (size_t)got;
    }
    return 0;
}

/* Opens a checkpoint and checks, from fstat alone, that it is a regular file no larger than a checkpoint of
 * this model can be: a directory, a FIFO or a 3 GB file is refused before a byte of it is read. O_NONBLOCK:
 * opening a FIFO must not wait for a writer. */
static int open_checked(const char *path, int *fd_out, uint64_t *size, Err *e) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return err_set(e, "%s: cannot stat: %s", path, strerror(saved));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file (%s), so not a checkpoint", path,
                       S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket");
    }
    const uint64_t most = 8 + (uint64_t)ST_MAX_HEADER + max_data_bytes();
    *size = (uint64_t)st.st_size;
    if (*size > most) {
        close(fd);
        return err_set(e,
                       "%s: %llu bytes, more than a checkpoint of model %s can have (%llu: the 8-byte header length, "
                       "a header of at most %u bytes and %llu bytes of state and EMA); not read",
                       path, (unsigned long long)*size, MPLC_MODEL_NAME, (unsigned long long)most, ST_MAX_HEADER,
                       (unsigned long long)max_data_bytes());
    }
    *fd_out = fd;
    return 0;
}

static int read_meta(const char *path, const JsonValue *obj, StMeta *meta, Err *e) {
    if (obj->type != JSON_OBJECT) return err_set(e, "%s: \"__metadata__\" is not an object", path);
    for (size_t i = 0; i < obj->len; i++) {
        if (obj->items[i].type != JSON_STRING)
            return err_set(e, "%s: metadata value \"%s\" is not a string", path, obj->keys[i]);
        if (!meta) continue;
        if (strlen(obj->keys[i]) >= ST_KEY_LEN || strlen(obj->items[i].string) >= ST_VALUE_LEN)
            return err_set(e, "%s: metadata entry \"%.40s\" is too long", path, obj->keys[i]);
        if (meta->count == ST_MAX_META) return err_set(e, "%s: too many metadata entries", path);
        meta_set(meta, obj->keys[i], "%s", obj->items[i].string);
    }
    return 0;
}

typedef struct {
    uint64_t begin, end;
    const mplc_tensor *t;
    int ema; /* an "ema/..." entry: its data goes to the EMA arena */
} Span;

/* The state tensor an entry name stands for: itself, or for "ema/<name>" the tracked tensor <name>. */
static const mplc_tensor *entry_tensor(const char *name, int *ema) {
    *ema = starts_with(name, EMA_PREFIX);
    const mplc_tensor *t = table_find(&TABLE_STATE, *ema ? name + strlen(EMA_PREFIX) : name);
    return t && (!*ema || ema_tracks(t)) ? t : NULL;
}

static int by_begin(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* "[784,10]" */
static void shape_str(const int *dims, int rank, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < rank && n < cap; d++) n += (size_t)snprintf(out + n, cap - n, d ? ",%d" : "%d", dims[d]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

/* Checks one tensor entry of the header against the table; fills span. */
static int check_entry(const char *path, const char *name, const JsonValue *v, uint64_t data_len, Span *span, Err *e) {
    int ema;
    const mplc_tensor *t = entry_tensor(name, &ema);
    if (!t)
        return err_set(e, "%s: tensor \"%s\" is not a state tensor of model %s (nor the EMA \"" EMA_PREFIX
                          "student/...\" of one)",
                       path, name, MPLC_MODEL_NAME);
    if (v->type != JSON_OBJECT) return err_set(e, "%s: entry \"%s\" is not an object", path, name);
    const JsonValue *dtype = json_get(v, "dtype"), *shape = json_get(v, "shape"), *offs = json_get(v, "data_offsets");
    if (!dtype || dtype->type != JSON_STRING) return err_set(e, "%s: tensor \"%s\" has no dtype", path, name);
    if (strcmp(dtype->string, "F32") != 0)
        return err_set(e, "%s: tensor \"%s\" has dtype %s, only F32 is supported", path, name, dtype->string);
    if (!shape || shape->type != JSON_ARRAY) return err_set(e, "%s: tensor \"%s\" has no shape", path, name);
    int same = (int)shape->len == t->rank;
    for (size_t d = 0; same && d < shape->len; d++)
        same = shape->items[d].is_uint && shape->items[d].uint == (uint64_t)t->shape[d];
    if (!same) {
        char want[96], got[96] = "[";
        shape_str(t->shape, t->rank, want, sizeof want);
        for (size_t d = 0; d < shape->len && strlen(got) < 64; d++) {
            const JsonValue *x = &shape->items[d];
            size_t n = strlen(got);
            if (x->is_uint) snprintf(got + n, sizeof got - n, d ? ",%llu" : "%llu", (unsigned long long)x->uint);
            else snprintf(got + n, sizeof got - n, d ? ",?" : "?");
        }
        snprintf(got + strlen(got), sizeof got - strlen(got), "]");
        return err_set(e, "%s: tensor \"%s\" has shape %s, model %s expects %s", path, name, got, MPLC_MODEL_NAME,
                       want);
    }
    if (!offs || offs->type != JSON_ARRAY || offs->len != 2 || !offs->items[0].is_uint || !offs->items[1].is_uint)
        return err_set(e, "%s: tensor \"%s\" has bad data_offsets", path, name);
    span->begin = offs->items[0].uint;
    span->end = offs->items[1].uint;
    span->t = t;
    span->ema = ema;
    if (span->begin > span->end || span->end > data_len)
        return err_set(e, "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the %llu data bytes (truncated file?)",
                       path, name, (unsigned long long)span->begin, (unsigned long long)span->end,
                       (unsigned long long)data_len);
    if (span->end - span->begin != 4 * (uint64_t)t->count)
        return err_set(e, "%s: tensor \"%s\": data_offsets span %llu bytes, its shape needs %zu", path, name,
                       (unsigned long long)(span->end - span->begin), 4 * t->count);
    return 0;
}

/* EMA entries are all there or all absent: half an average is no average. Sets *has_ema. */
static int check_ema_entries(const char *path, const JsonValue *root, int *has_ema, Err *e) {
    int present = 0, tracked = 0;
    const char *missing = NULL;
    char name[256];
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        if (!ema_tracks(&mplc_state_tensors[i])) continue;
        tracked++;
        snprintf(name, sizeof name, EMA_PREFIX "%s", mplc_state_tensors[i].name);
        if (json_get(root, name)) present++;
        else if (!missing) missing = mplc_state_tensors[i].name;
    }
    *has_ema = present > 0;
    if (present > 0 && present < tracked)
        return err_set(e, "%s: the student's EMA is incomplete: tensor \"" EMA_PREFIX "%s\" is missing", path, missing);
    return 0;
}

/* The header: its JSON (UTF-8 checked by the parser), every entry against the state table, and the tiling of
 * the data section, which must be exactly the rest of the file (size from fstat). Fills spans (sorted by
 * begin) and meta; nothing of the data section is read here. */
static int check_header(const char *path, const JsonValue *root, uint64_t data_len, Span *spans, size_t *nspans,
                        int *has_ema, StMeta *meta, Err *e) {
    if (meta) meta_clear(meta);
    if (root->type != JSON_OBJECT) return err_set(e, "%s: header is not a JSON object", path);
    *nspans = 0;
    for (size_t i = 0; i < root->len; i++) {
        if (strcmp(root->keys[i], "__metadata__") == 0) {
            if (read_meta(path, &root->items[i], meta, e) != 0) return -1;
            continue;
        }
        if (check_entry(path, root->keys[i], &root->items[i], data_len, &spans[*nspans], e) != 0) return -1;
        (*nspans)++;
    }
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++)
        if (!json_get(root, mplc_state_tensors[i].name))
            return err_set(e, "%s: tensor \"%s\" of model %s is missing", path, mplc_state_tensors[i].name,
                           MPLC_MODEL_NAME);
    if (check_ema_entries(path, root, has_ema, e) != 0) return -1;
    /* The tensors must tile the data section exactly: no overlap, no gap, nothing left over. */
    qsort(spans, *nspans, sizeof *spans, by_begin);
    uint64_t pos = 0;
    for (size_t i = 0; i < *nspans; i++) {
        if (spans[i].begin != pos)
            return err_set(e, "%s: tensor \"%s%s\" %s the previous one in the data section", path,
                           spans[i].ema ? EMA_PREFIX : "", spans[i].t->name,
                           spans[i].begin < pos ? "overlaps" : "leaves a gap after");
        pos = spans[i].end;
    }
    if (pos != data_len)
        return err_set(e, "%s: the data section has %llu bytes, the tensors describe %llu", path,
                       (unsigned long long)data_len, (unsigned long long)pos);
    return 0;
}

/* The stored checksum must match the data as read (by tensor name, so swapped offsets fail as swapped bytes
 * do); a file without one (not written by mplc-run, e.g. by the JAX reference) is taken as it is. */
static int check_crc(const char *path, const JsonValue *root, const float *state, const float *ema, Err *e) {
    const JsonValue *stored = json_get(json_get(root, "__metadata__"), ST_CRC_KEY);
    if (!stored) return 0;
    char now[16];
    snprintf(now, sizeof now, "%08lx", (unsigned long)data_crc(state, ema));
    if (strcmp(stored->string, now) != 0)
        return err_set(e, "%s: the data does not match its checksum (CRC-32 %s, the header says %.16s): the file is "
                          "corrupt or was edited",
                       path, now, stored->string);
    return 0;
}

/* A checkpoint holds finite numbers only: a run stops before saving a NaN or Inf (train.c), so one here was
 * put there by something else, and training from it would stop at its first step. */
static int check_finite(const char *path, const Span *spans, size_t n, const float *state, const float *ema, Err *e) {
    for (size_t i = 0; i < n; i++) {
        const float *arena = spans[i].ema ? ema : state;
        long bad = first_nonfinite(arena, spans[i].t);
        if (bad >= 0)
            return err_set(e, "%s: tensor \"%s%s\" is not finite (element %ld is %g); a checkpoint holds finite state "
                              "only",
                           path, spans[i].ema ? EMA_PREFIX : "", spans[i].t->name, bad,
                           (double)arena[spans[i].t->offset + (size_t)bad]);
    }
    return 0;
}

int st_load(const char *path, float *state, StMeta *meta, Err *e) {
    int has_ema;
    return st_load_ema(path, state, NULL, &has_ema, meta, e);
}

int st_load_ema(const char *path, float *state, float *ema, int *has_ema, StMeta *meta, Err *e) {
    int fd = -1;
    uint64_t size = 0;
    *has_ema = 0;
    if (open_checked(path, &fd, &size, e) != 0) return -1;
    int rc = -1;
    unsigned char len8[8];
    char *header = NULL;
    Span *spans = NULL;
    size_t nspans = 0;
    float *sink = NULL;
    JsonValue root;
    memset(&root, 0, sizeof root);
    if (size < 8) {
        err_set(e, "%s: too short for a safetensors file (%llu bytes)", path, (unsigned long long)size);
        goto done;
    }
    if (read_at(fd, path, len8, 8, 0, "the header length", e) != 0) goto done;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen == 0 || hlen > ST_MAX_HEADER || hlen > size - 8) {
        err_set(e, "%s: bad header length %llu (file has %llu bytes)", path, (unsigned long long)hlen,
                (unsigned long long)size);
        goto done;
    }
    header = xmalloc((size_t)hlen);
    if (read_at(fd, path, header, (size_t)hlen, 8, "the header", e) != 0) goto done;
    Err je;
    if (json_parse(header, (size_t)hlen, &root, &je) != 0) {
        err_set(e, "%s: header is not valid JSON: %s", path, je.msg);
        goto done;
    }
    spans = xcalloc(root.len ? root.len : 1, sizeof *spans);
    const uint64_t data_start = 8 + hlen;
    if (check_header(path, &root, size - data_start, spans, &nspans, has_ema, meta, e) != 0) goto done;
    /* Only now is the data read: straight into the arenas (the EMA's into a scratch arena when the caller
     * skips it, as the checksum covers it). */
    if (*has_ema && !ema) ema = sink = arena_alloc(MPLC_STATE_FLOATS);
    memset(state, 0, sizeof(float) * (size_t)MPLC_STATE_FLOATS);
    if (ema) memset(ema, 0, sizeof(float) * (size_t)MPLC_STATE_FLOATS);
    for (size_t i = 0; i < nspans; i++) {
        float *arena = spans[i].ema ? ema : state;
        if (read_at(fd, path, arena + spans[i].t->offset, 4 * spans[i].t->count, data_start + spans[i].begin,
                    spans[i].t->name, e) != 0)
            goto done;
    }
    if (check_crc(path, &root, state, *has_ema ? ema : NULL, e) != 0 ||
        check_finite(path, spans, nspans, state, ema, e) != 0)
        goto done;
    rc = 0;
done:
    close(fd);
    free(header);
    free(spans);
    free(sink);
    json_free(&root);
    return rc;
}
