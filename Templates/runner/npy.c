#include "npy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "fileio.h"

static const char *const TYPE_NAMES[] = {"<f4", "|u1", "<i4", "<i8"};
static const size_t TYPE_SIZES[] = {4, 1, 4, 8};

const char *npy_type_name(NpyType t) { return TYPE_NAMES[t]; }
size_t npy_type_size(NpyType t) { return TYPE_SIZES[t]; }

long long npy_int_at(const NpyArray *a, size_t i) {
    switch (a->type) {
    case NPY_U1: return ((const uint8_t *)a->data)[i];
    case NPY_I4: return ((const int32_t *)a->data)[i];
    case NPY_I8: return ((const int64_t *)a->data)[i];
    case NPY_F4: return (long long)((const float *)a->data)[i];
    }
    return 0;
}

void npy_shape_str(const NpyArray *a, char *out, size_t cap) {
    size_t used = (size_t)snprintf(out, cap, "(");
    for (int i = 0; i < a->ndim && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, i ? ", %zu" : "%zu", a->shape[i]);
    if (used < cap) snprintf(out + used, cap - used, a->ndim == 1 ? ",)" : ")");
}

/* ---- header parsing: the header is a Python dict literal such as
 *      {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }                  */

typedef struct {
    const char *p, *end;
} Cursor;

static void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int eat(Cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int parse_pystr(Cursor *c, char *out, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    c->p++;
    out[n] = '\0';
    return 0;
}

static int parse_shape(Cursor *c, NpyArray *a, const char *path, Err *e) {
    if (!eat(c, '(')) return err_set(e, "%s: bad header: 'shape' is not a tuple", path);
    a->ndim = 0;
    a->count = 1;
    while (!eat(c, ')')) {
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return err_set(e, "%s: bad header: bad 'shape' tuple", path);
        size_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (size_mul(v, 10, &v) != 0 || size_add(v, (size_t)(*c->p - '0'), &v) != 0)
                return err_set(e, "%s: bad header: a dimension of 'shape' overflows", path);
            c->p++;
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 long literal */
        if (a->ndim == NPY_MAX_DIMS) return err_set(e, "%s: more than %d dimensions", path, NPY_MAX_DIMS);
        a->shape[a->ndim++] = v;
        if (size_mul(a->count, v, &a->count) != 0)
            return err_set(e, "%s: bad header: the product of 'shape' overflows", path);
        if (!eat(c, ',')) {
            if (!eat(c, ')')) return err_set(e, "%s: bad header: bad 'shape' tuple", path);
            break;
        }
    }
    return 0;
}

static int parse_header(const char *text, size_t len, NpyArray *a, const char *path, Err *e) {
    Cursor c = {text, text + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!eat(&c, '{')) return err_set(e, "%s: bad header: not a dict", path);
    while (!eat(&c, '}')) {
        char key[32], val[32];
        if (parse_pystr(&c, key, sizeof key) != 0 || !eat(&c, ':'))
            return err_set(e, "%s: bad header: expected 'key': value", path);
        if (strcmp(key, "descr") == 0) {
            if (parse_pystr(&c, val, sizeof val) != 0) return err_set(e, "%s: bad header: bad 'descr'", path);
            int found = 0;
            for (int t = 0; t < 4; t++)
                if (strcmp(val, TYPE_NAMES[t]) == 0) a->type = (NpyType)t, found = 1;
            if (!found && strcmp(val, "<u1") == 0) a->type = NPY_U1, found = 1;
            if (!found)
                return err_set(e, "%s: unsupported dtype '%s' (supported: '<f4', '|u1', '<i4', '<i8')", path, val);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            skip_ws(&c);
            if ((size_t)(c.end - c.p) >= 5 && memcmp(c.p, "False", 5) == 0) {
                c.p += 5;
            } else if ((size_t)(c.end - c.p) >= 4 && memcmp(c.p, "True", 4) == 0) {
                return err_set(e, "%s: Fortran-order arrays are not supported (save with C order)", path);
            } else {
                return err_set(e, "%s: bad header: bad 'fortran_order'", path);
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (parse_shape(&c, a, path, e) != 0) return -1;
            have_shape = 1;
        } else {
            return err_set(e, "%s: bad header: unexpected key '%s'", path, key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}')) return err_set(e, "%s: bad header: expected ',' or '}'", path);
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return err_set(e, "%s: bad header: missing %s", path, !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
    return 0;
}

int npy_read(const char *path, NpyArray *out, Err *e) {
    memset(out, 0, sizeof *out);
    InFile f;
    char *header = NULL;
    if (in_open(&f, path, e) != 0) return -1;
    unsigned char pre[8];
    if (in_read(&f, pre, 8, "the NPY preamble", e) != 0) goto fail;
    if (memcmp(pre, "\x93NUMPY", 6) != 0) {
        err_set(e, "%s: not an NPY file (wrong magic string)", path);
        goto fail;
    }
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        unsigned char l[2];
        if (in_read(&f, l, 2, "the NPY header length", e) != 0) goto fail;
        hlen = (size_t)l[0] | (size_t)l[1] << 8;
    } else if (major == 2 || major == 3) {
        unsigned char l[4];
        if (in_read(&f, l, 4, "the NPY header length", e) != 0) goto fail;
        hlen = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
    } else {
        err_set(e, "%s: unsupported NPY version %d.%d", path, major, pre[7]);
        goto fail;
    }
    if (hlen > (1u << 20)) {
        err_set(e, "%s: NPY header length %zu is implausible (corrupt file?)", path, hlen);
        goto fail;
    }
    header = xmalloc(hlen + 1);
    if (in_read(&f, header, hlen, "the NPY header", e) != 0) goto fail;
    header[hlen] = '\0';
    if (parse_header(header, hlen, out, path, e) != 0) goto fail;
    /* The data's size counts in the memory budget before a byte of it is read (a small gzip can claim gigabytes). */
    size_t bytes;
    char what[192], shape[128];
    npy_shape_str(out, shape, sizeof shape);
    snprintf(what, sizeof what, "the %s array of shape %s (NPY header)", TYPE_NAMES[out->type], shape);
    if (size_mul(out->count, TYPE_SIZES[out->type], &bytes) != 0) {
        err_set(e, "%s: %s: the size overflows", path, what);
        goto fail;
    }
    if (budget_take(bytes, path, what, e) != 0) goto fail;
    void *data;
    if (in_read_array(&f, out->count, TYPE_SIZES[out->type], &data, "the array data", e) != 0) {
        budget_return(bytes);
        goto fail;
    }
    out->data = data;
    if (in_expect_end(&f, e) != 0) goto fail;
    free(header);
    in_close(&f);
    return 0;
fail:
    free(header);
    in_close(&f);
    npy_free(out);
    return -1;
}

void npy_free(NpyArray *a) {
    if (a->data) budget_return(a->count * TYPE_SIZES[a->type]);
    free(a->data);
    a->data = NULL;
}

int npy_write(const char *path, NpyType type, int ndim, const size_t *shape, const void *data, Err *e) {
    char dict[512];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", TYPE_NAMES[type]);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n += (size_t)snprintf(dict + n, sizeof dict - n, i ? ", %zu" : "%zu", shape[i]);
        if (size_mul(count, shape[i], &count) != 0) return err_set(e, "%s: shape overflows", path);
    }
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    /* Pad with spaces and end with '\n' so that the data starts at a multiple of 64 bytes. */
    size_t total = 10 + n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = n + pad + 1;
    if (hlen > 65535) return err_set(e, "%s: header too long", path);
    AtomicFile out;
    if (atomic_create(&out, path, e) != 0) return -1;
    FILE *fp = out.fp;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xFF), (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, 10, fp);
    fwrite(dict, 1, n, fp);
    for (size_t i = 0; i < pad; i++) fputc(' ', fp);
    fputc('\n', fp);
    if (count) fwrite(data, TYPE_SIZES[type], count, fp); /* a short write sets ferror, which the commit checks */
    return atomic_commit(&out, e);
}
