/* MAT-file Level 5 reader: see mat.h for the subset read, and MathWorks' "MAT-File Format" (matfile_format.pdf)
 * for the layout: a 128-byte header, then data elements, each an 8-byte tag (type, byte count) and its data;
 * an element of at most 4 bytes may be packed with its tag into 8 bytes ("small data element"). */
#include "mat.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "budget.h"
#include "fileio.h"

#define MAT_HEADER 128

enum {
    MI_INT8 = 1, MI_UINT8 = 2, MI_INT16 = 3, MI_UINT16 = 4, MI_INT32 = 5, MI_UINT32 = 6, MI_SINGLE = 7,
    MI_DOUBLE = 9, MI_INT64 = 12, MI_UINT64 = 13, MI_MATRIX = 14, MI_COMPRESSED = 15
};

#define MAT_FLAG_COMPLEX 0x0800u

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Bytes per element of a numeric storage type; 0 for anything else. */
static size_t mi_size(uint32_t type) {
    switch (type) {
    case MI_INT8: case MI_UINT8: return 1;
    case MI_INT16: case MI_UINT16: return 2;
    case MI_INT32: case MI_UINT32: case MI_SINGLE: return 4;
    case MI_DOUBLE: case MI_INT64: case MI_UINT64: return 8;
    default: return 0;
    }
}

const char *mat_class_name(int cls) {
    static const char *const names[] = {"unknown class", "cell array", "struct", "object", "char array", "sparse array",
                                        "double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                                        "int64", "uint64"};
    return cls >= 1 && cls <= MAT_CLASS_UINT64 ? names[cls] : names[0];
}

void mat_dims_str(const MatVar *v, char *out, size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < v->ndim && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, i ? "x%zu" : "%zu", v->dims[i]);
}

/* A region of bytes being parsed: the file after its header, a matrix's contents, or an inflated element.
 * `where` names it in messages ("byte" of the file, or "byte ... of the compressed element at byte N"). */
typedef struct {
    const uint8_t *p;
    size_t len, pos;
    const char *path;
    size_t base;     /* offset of p[0] in the file, for messages (when not inside a compressed element) */
    size_t zip_at;   /* file offset of the enclosing compressed element; SIZE_MAX if none */
} Region;

static int region_err(const Region *r, size_t at, Err *e, const char *what) {
    if (r->zip_at == SIZE_MAX) return err_set(e, "%s: %s (at byte %zu)", r->path, what, r->base + at);
    return err_set(e, "%s: %s (at byte %zu of the compressed element at byte %zu)", r->path, what, r->base + at,
                   r->zip_at);
}

typedef struct {
    uint32_t type;
    const uint8_t *data;
    size_t n;
    size_t at; /* position of the tag in the region */
} Element;

/* Reads the element at r->pos and moves past it; `pad` skips the padding to the next multiple of 8, which
 * sub-elements of a matrix have and top-level elements need not. */
static int next_element(Region *r, int pad, Element *el, Err *e) {
    char msg[160];
    el->at = r->pos;
    if (r->len - r->pos < 8) {
        snprintf(msg, sizeof msg, "truncated: a data element tag needs 8 bytes, %zu remain", r->len - r->pos);
        return region_err(r, r->pos, e, msg);
    }
    const uint8_t *t = r->p + r->pos;
    uint32_t first = le32(t);
    if (first >> 16) { /* small data element: byte count in the high half, data in the tag's second word */
        el->type = first & 0xFFFFu;
        el->n = first >> 16;
        if (el->n > 4) {
            snprintf(msg, sizeof msg, "bad small data element: %zu bytes (at most 4)", el->n);
            return region_err(r, r->pos, e, msg);
        }
        el->data = t + 4;
        r->pos += 8;
        return 0;
    }
    el->type = first;
    el->n = le32(t + 4);
    if (el->n > r->len - r->pos - 8) {
        snprintf(msg, sizeof msg, "truncated: data element of type %u announces %zu bytes, %zu remain", el->type, el->n,
                 r->len - r->pos - 8);
        return region_err(r, r->pos, e, msg);
    }
    el->data = t + 8;
    r->pos += 8 + el->n;
    if (pad) {
        size_t rem = r->pos % 8;
        r->pos = rem && 8 - rem <= r->len - r->pos ? r->pos + 8 - rem : rem ? r->len : r->pos;
    }
    return 0;
}

static int expect_element(Region *r, uint32_t type, const char *what, Element *el, Err *e) {
    if (next_element(r, 1, el, e) != 0) return -1;
    if (el->type != type) {
        char msg[160];
        snprintf(msg, sizeof msg, "bad matrix: %s has data type %u, expected %u", what, el->type, type);
        return region_err(r, el->at, e, msg);
    }
    return 0;
}

static int is_numeric_class(uint32_t cls) { return cls >= MAT_CLASS_DOUBLE && cls <= MAT_CLASS_UINT64; }

static int parse_name(Region *r, MatVar *v, Err *e) {
    Element el;
    if (expect_element(r, MI_INT8, "the array name", &el, e) != 0) return -1;
    if (el.n >= MAT_NAME_CAP) return region_err(r, el.at, e, "bad matrix: array name longer than 63 characters");
    for (size_t i = 0; i < el.n; i++)
        if (el.data[i] < 0x21 || el.data[i] > 0x7E) return region_err(r, el.at, e, "bad matrix: array name is not printable ASCII");
    memcpy(v->name, el.data, el.n);
    v->name[el.n] = '\0';
    return 0;
}

static int parse_dims(Region *r, MatVar *v, Err *e) {
    Element el;
    if (expect_element(r, MI_INT32, "the dimensions", &el, e) != 0) return -1;
    if (el.n % 4 != 0 || el.n == 0 || el.n / 4 > MAT_MAX_DIMS)
        return region_err(r, el.at, e, "bad matrix: the dimensions are not 1 to 8 32-bit integers");
    v->ndim = (int)(el.n / 4);
    v->count = 1;
    for (int i = 0; i < v->ndim; i++) {
        int32_t d = (int32_t)le32(el.data + 4 * i);
        if (d < 0) return region_err(r, el.at, e, "bad matrix: a negative dimension");
        v->dims[i] = (size_t)d;
        if (size_mul(v->count, v->dims[i], &v->count) != 0) return region_err(r, el.at, e, "bad matrix: dimensions overflow");
    }
    return 0;
}

/* The contents of an miMATRIX element: array flags, dimensions, name, then (for a real numeric array) the data. */
static int parse_matrix(Region *r, MatVar *v, Err *e) {
    Element el;
    if (expect_element(r, MI_UINT32, "the array flags", &el, e) != 0) return -1;
    if (el.n != 8) return region_err(r, el.at, e, "bad matrix: array flags are not 8 bytes");
    uint32_t flags = le32(el.data);
    v->cls = (int)(flags & 0xFFu);
    v->complex_ = (flags & MAT_FLAG_COMPLEX) != 0;
    if (parse_dims(r, v, e) != 0 || parse_name(r, v, e) != 0) return -1;
    if (!is_numeric_class((uint32_t)v->cls) || v->complex_) return 0; /* listed, not read */
    if (next_element(r, 1, &el, e) != 0) return -1;
    v->type = (int)el.type;
    v->elem = mi_size(el.type);
    char msg[320];
    size_t want;
    if (v->elem == 0) {
        snprintf(msg, sizeof msg, "variable '%s': data of type %u is not a numeric type", v->name, el.type);
        return region_err(r, el.at, e, msg);
    }
    if (size_mul(v->count, v->elem, &want) != 0 || el.n != want) {
        char dims[96];
        mat_dims_str(v, dims, sizeof dims);
        snprintf(msg, sizeof msg, "variable '%s' (%s): data holds %zu bytes, expected %zu elements of %zu bytes",
                 v->name, dims, el.n, v->count, v->elem);
        return region_err(r, el.at, e, msg);
    }
    if (r->pos != r->len) {
        snprintf(msg, sizeof msg, "variable '%s': unexpected data after the real part", v->name);
        return region_err(r, r->pos, e, msg);
    }
    v->data = el.data;
    v->numeric = 1;
    return 0;
}

/* Inflates an miCOMPRESSED element (a zlib stream holding one data element). The output buffer grows with
 * the data actually produced and stops at what the inner tag announces (plus padding), so a small corrupt
 * stream cannot ask for gigabytes. */
static int inflate_element(const char *path, size_t at, const uint8_t *src, size_t n, uint8_t **out, size_t *out_len,
                           uint64_t *planned, Err *e) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return err_set(e, "%s: zlib initialisation failed", path);
    size_t cap = 8, have = 0, used = 0, limit = 8;
    int tag_seen = 0, rc = -1, zr = Z_OK;
    uint8_t *buf = xmalloc(cap);
    while (zr != Z_STREAM_END) {
        if (have == cap) {
            if (!tag_seen) {
                uint32_t first = le32(buf);
                /* the element, at most 7 bytes of padding, and one byte to see a stream that goes on */
                size_t inner = first >> 16 ? 0 : le32(buf + 4);
                limit = 8 + inner + 8;
                tag_seen = 1;
                /* What the tag announces counts in the memory budget before it is inflated. */
                char what[96];
                snprintf(what, sizeof what, "the compressed element at byte %zu (its tag announces %zu bytes)", at,
                         inner);
                if (budget_take(limit, path, what, e) != 0) goto done;
                *planned += limit;
            }
            if (have >= limit) {
                err_set(e, "%s: compressed element at byte %zu holds more data than its element announces", path, at);
                goto done;
            }
            cap = cap > limit / 2 ? limit : cap * 2;
            uint8_t *grown = realloc(buf, cap);
            if (!grown) {
                err_set(e, "%s: out of memory inflating the compressed element at byte %zu (%zu bytes)", path, at, cap);
                goto done;
            }
            buf = grown;
        }
        z.next_in = (Bytef *)(uintptr_t)(src + used);
        z.avail_in = (uInt)(n - used < UINT_MAX ? n - used : UINT_MAX);
        z.next_out = buf + have;
        z.avail_out = (uInt)(cap - have < UINT_MAX ? cap - have : UINT_MAX);
        uInt in0 = z.avail_in, out0 = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        used += in0 - z.avail_in;
        have += out0 - z.avail_out;
        if (zr == Z_STREAM_END) break;
        if (zr == Z_BUF_ERROR && used == n) {
            err_set(e, "%s: truncated compressed element at byte %zu (the zlib stream ends early)", path, at);
            goto done;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            err_set(e, "%s: corrupt compressed element at byte %zu: %s", path, at, z.msg ? z.msg : "zlib error");
            goto done;
        }
    }
    if (used != n) {
        err_set(e, "%s: compressed element at byte %zu: %zu bytes after the end of its zlib stream", path, at, n - used);
        goto done;
    }
    *out = buf;
    *out_len = have;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    inflateEnd(&z);
    return rc;
}

static int parse_top_element(const char *path, Region *top, MatFile *m, Err *e) {
    Element el;
    if (next_element(top, 0, &el, e) != 0) return -1;
    if (m->nvars == MAT_MAX_VARS) return err_set(e, "%s: more than %d variables", path, MAT_MAX_VARS);
    MatVar *v = &m->vars[m->nvars];
    size_t at = top->base + el.at;
    if (el.type == MI_MATRIX) {
        Region r = {el.data, el.n, 0, path, at + 8, SIZE_MAX};
        if (parse_matrix(&r, v, e) != 0) return -1;
    } else if (el.type == MI_COMPRESSED) {
        size_t len = 0;
        if (inflate_element(path, at, el.data, el.n, &m->inflated[m->nvars], &len, &m->planned, e) != 0) return -1;
        Region z = {m->inflated[m->nvars], len, 0, path, 0, at};
        Element inner;
        if (next_element(&z, 0, &inner, e) != 0) return -1;
        if (inner.type != MI_MATRIX)
            return err_set(e, "%s: compressed element at byte %zu holds a data element of type %u, not a matrix (14)",
                           path, at, inner.type);
        if (len - z.pos >= 8)
            return err_set(e, "%s: compressed element at byte %zu holds %zu bytes after its matrix", path, at, len - z.pos);
        Region r = {inner.data, inner.n, 0, path, 8, at};
        if (parse_matrix(&r, v, e) != 0) return -1;
    } else {
        return err_set(e, "%s: data element of type %u at byte %zu; a MAT-file holds matrices (14) or compressed "
                          "matrices (15) at the top level",
                       path, el.type, at);
    }
    m->nvars++;
    return 0;
}

static int check_header(const char *path, const uint8_t *p, size_t len, Err *e) {
    if (len < MAT_HEADER)
        return err_set(e, "%s: truncated or not a MAT-file: %zu bytes, shorter than the 128-byte header", path, len);
    if (p[0] == 0 || p[1] == 0 || p[2] == 0 || p[3] == 0)
        return err_set(e, "%s: not a Level 5 MAT-file (a MATLAB v4 file?); save it with save(..., '-v7')", path);
    if (memcmp(p, "MATLAB", 6) != 0) return err_set(e, "%s: not a MAT-file (the header does not start with 'MATLAB')", path);
    unsigned version = (unsigned)p[124] | (unsigned)p[125] << 8;
    if (p[126] == 'M' && p[127] == 'I')
        return err_set(e, "%s: big-endian MAT-file; only little-endian files are read", path);
    if (p[126] != 'I' || p[127] != 'M') return err_set(e, "%s: bad MAT-file header (no endian indicator)", path);
    if (version == 0x0200)
        return err_set(e, "%s: a MATLAB v7.3 (HDF5) MAT-file; only Level 5 files are read: save it with "
                          "save(..., '-v7') or scipy.io.savemat",
                       path);
    if (version != 0x0100) return err_set(e, "%s: unsupported MAT-file version 0x%04x", path, version);
    return 0;
}

int mat_read(const char *path, MatFile *m, Err *e) {
    memset(m, 0, sizeof *m);
    void *data = NULL;
    size_t len = 0;
    if (in_read_file(path, &data, &len, e) != 0) return -1;
    m->file = data;
    if (check_header(path, m->file, len, e) != 0) goto fail;
    Region top = {m->file + MAT_HEADER, len - MAT_HEADER, 0, path, MAT_HEADER, SIZE_MAX};
    while (top.pos < top.len) {
        size_t rest = top.len - top.pos;
        int zeros = 1;
        for (size_t i = 0; i < rest && rest < 8; i++) zeros &= top.p[top.pos + i] == 0;
        if (rest < 8 && zeros) break; /* padding after the last element */
        if (parse_top_element(path, &top, m, e) != 0) goto fail;
    }
    return 0;
fail:
    mat_free(m);
    return -1;
}

void mat_free(MatFile *m) {
    budget_return(m->planned);
    free(m->file);
    for (int i = 0; i < MAT_MAX_VARS; i++) free(m->inflated[i]);
    memset(m, 0, sizeof *m);
}

const MatVar *mat_find(const MatFile *m, const char *name) {
    for (int i = 0; i < m->nvars; i++)
        if (strcmp(m->vars[i].name, name) == 0) return &m->vars[i];
    return NULL;
}

double mat_get(const MatVar *v, size_t i) {
    const uint8_t *p = v->data + i * v->elem;
    switch (v->type) {
    case MI_INT8: return (int8_t)p[0];
    case MI_UINT8: return p[0];
    case MI_INT16: return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    case MI_UINT16: return (uint16_t)(p[0] | p[1] << 8);
    case MI_INT32: return (int32_t)le32(p);
    case MI_UINT32: return le32(p);
    case MI_INT64: return (double)(int64_t)le64(p);
    case MI_UINT64: return (double)le64(p);
    case MI_SINGLE: {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case MI_DOUBLE: {
        uint64_t u = le64(p);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    default: return 0;
    }
}
