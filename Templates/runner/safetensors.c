#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, open_memstream, clock_gettime, isatty */
#endif
#include "safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void write_header(FILE *fp, const StMeta *meta, int with_ema) {
    fputc('{', fp);
    if (meta && meta->count > 0) {
        fputs("\"__metadata__\":{", fp);
        for (int i = 0; i < meta->count; i++) {
            if (i) fputc(',', fp);
            json_write_string(fp, meta->key[i]);
            fputc(':', fp);
            json_write_string(fp, meta->value[i]);
        }
        fputs("},", fp);
    }
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
    write_header(mem, meta, ema != NULL);
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

static int read_file(const char *path, unsigned char **out, size_t *len, Err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        return err_set(e, "%s: cannot seek (not a regular file?)", path);
    }
    long size = ftell(fp);
    if (size < 0) {
        fclose(fp);
        return err_set(e, "%s: cannot tell its size", path);
    }
    rewind(fp);
    unsigned char *buf = xmalloc((size_t)size);
    size_t got = fread(buf, 1, (size_t)size, fp);
    fclose(fp);
    if (got != (size_t)size) {
        free(buf);
        return err_set(e, "%s: read failed", path);
    }
    *out = buf;
    *len = (size_t)size;
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

/* Checks one tensor entry of the header against the table; fills span. */
static int check_entry(const char *path, const char *name, const JsonValue *v, size_t data_len, Span *span, Err *e) {
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
        char want[96] = "[";
        for (int d = 0; d < t->rank; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), d ? ",%d" : "%d", t->shape[d]);
        strcat(want, "]");
        return err_set(e, "%s: tensor \"%s\" has a different shape than model %s expects %s", path, name,
                       MPLC_MODEL_NAME, want);
    }
    if (!offs || offs->type != JSON_ARRAY || offs->len != 2 || !offs->items[0].is_uint || !offs->items[1].is_uint)
        return err_set(e, "%s: tensor \"%s\" has bad data_offsets", path, name);
    span->begin = offs->items[0].uint;
    span->end = offs->items[1].uint;
    span->t = t;
    span->ema = ema;
    if (span->begin > span->end || span->end > data_len)
        return err_set(e, "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the %zu data bytes (truncated file?)",
                       path, name, (unsigned long long)span->begin, (unsigned long long)span->end, data_len);
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

/* Copies every tensor's data to its arena: ema entries to ema (skipped when ema is NULL). */
static void copy_spans(const Span *spans, size_t n, const unsigned char *data, float *state, float *ema) {
    memset(state, 0, sizeof(float) * (size_t)MPLC_STATE_FLOATS);
    if (ema) memset(ema, 0, sizeof(float) * (size_t)MPLC_STATE_FLOATS);
    for (size_t i = 0; i < n; i++) {
        float *arena = spans[i].ema ? ema : state;
        if (arena) memcpy(arena + spans[i].t->offset, data + spans[i].begin, 4 * spans[i].t->count);
    }
}

static int load_from_buffer(const char *path, const unsigned char *buf, size_t len, float *state, float *ema,
                            int *has_ema, StMeta *meta, Err *e) {
    if (len < 8) return err_set(e, "%s: too short for a safetensors file (%zu bytes)", path, len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen == 0 || hlen > ST_MAX_HEADER || hlen > len - 8)
        return err_set(e, "%s: bad header length %llu (file has %zu bytes)", path, (unsigned long long)hlen, len);
    JsonValue root;
    Err je;
    if (json_parse((const char *)buf + 8, (size_t)hlen, &root, &je) != 0)
        return err_set(e, "%s: header is not valid JSON: %s", path, je.msg);
    int rc = -1;
    Span *spans = xcalloc(root.len ? root.len : 1, sizeof *spans);
    size_t nspans = 0;
    const unsigned char *data = buf + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    if (meta) meta_clear(meta);
    if (root.type != JSON_OBJECT) {
        err_set(e, "%s: header is not a JSON object", path);
        goto done;
    }
    for (size_t i = 0; i < root.len; i++) {
        if (strcmp(root.keys[i], "__metadata__") == 0) {
            if (read_meta(path, &root.items[i], meta, e) != 0) goto done;
            continue;
        }
        if (check_entry(path, root.keys[i], &root.items[i], data_len, &spans[nspans], e) != 0) goto done;
        nspans++;
    }
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++)
        if (!json_get(&root, mplc_state_tensors[i].name)) {
            err_set(e, "%s: tensor \"%s\" of model %s is missing", path, mplc_state_tensors[i].name, MPLC_MODEL_NAME);
            goto done;
        }
    if (check_ema_entries(path, &root, has_ema, e) != 0) goto done;
    /* The tensors must tile the data section exactly: no overlap, no gap, nothing left over. */
    qsort(spans, nspans, sizeof *spans, by_begin);
    uint64_t pos = 0;
    for (size_t i = 0; i < nspans; i++) {
        if (spans[i].begin != pos) {
            err_set(e, "%s: tensor \"%s%s\" %s the previous one in the data section", path,
                    spans[i].ema ? EMA_PREFIX : "", spans[i].t->name, spans[i].begin < pos ? "overlaps" : "leaves a gap after");
            goto done;
        }
        pos = spans[i].end;
    }
    if (pos != data_len) {
        err_set(e, "%s: the data section has %zu bytes, the tensors describe %llu", path, data_len,
                (unsigned long long)pos);
        goto done;
    }
    copy_spans(spans, nspans, data, state, ema);
    rc = 0;
done:
    free(spans);
    json_free(&root);
    return rc;
}

int st_load(const char *path, float *state, StMeta *meta, Err *e) {
    int has_ema;
    return st_load_ema(path, state, NULL, &has_ema, meta, e);
}

int st_load_ema(const char *path, float *state, float *ema, int *has_ema, StMeta *meta, Err *e) {
    unsigned char *buf = NULL;
    size_t len = 0;
    *has_ema = 0;
    if (read_file(path, &buf, &len, e) != 0) return -1;
    int rc = load_from_buffer(path, buf, len, state, ema, has_ema, meta, e);
    free(buf);
    return rc;
}
