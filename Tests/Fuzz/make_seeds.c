/* Writes the seed corpora of the reader fuzz targets into Tests/Fuzz/corpus/{idx,npy,json,safetensors,cifar,mat,image,csv}:
 * small valid files of every kind each reader accepts, plus a few near misses. Built and run by
 *   Tests/Fuzz/run_fuzzers.sh --make-seeds
 * The output is checked in; inputs that once crashed a reader are added next to the seeds as crash-*. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "idx.h"
#include "model.h"
#include "npy.h"
#include "safetensors.h"

static char root[1024];

static void put(const char *kind, const char *name, const void *data, size_t n) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, kind);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", root, kind, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* gzip (not zlib) framing of data, as gzread expects. */
static unsigned char *gz(const void *data, size_t n, size_t *out_len) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    size_t cap = deflateBound(&s, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    s.next_in = (unsigned char *)data;
    s.avail_in = (uInt)n;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    if (deflate(&s, Z_FINISH) != Z_STREAM_END) exit(1);
    *out_len = s.total_out;
    deflateEnd(&s);
    return out;
}

static size_t be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return 4;
}

/* An IDX seed: selector byte (0 images, 1 labels) then the file, plain or gzip. */
static void idx_seed(const char *name, int labels, const uint32_t *dims, int ndim, uint32_t magic, long adjust, int compress) {
    unsigned char buf[4096];
    size_t n = 0;
    n += be32(buf + n, magic);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) n += be32(buf + n, dims[i]), count *= dims[i];
    if (count > 1024) count = 16; /* a header that promises more than the file holds */
    for (size_t i = 0; i < count; i++) buf[n++] = (unsigned char)(labels ? i % 10 : (i * 37) & 0xFF);
    n = (size_t)((long)n + adjust);
    unsigned char out[8192];
    out[0] = (unsigned char)labels;
    size_t len = n;
    if (compress) {
        unsigned char *z = gz(buf, n, &len);
        memcpy(out + 1, z, len);
        free(z);
    } else {
        memcpy(out + 1, buf, n);
    }
    put("idx", name, out, len + 1);
}

static void npy_raw(const char *name, int major, const char *dict, const void *data, size_t n, int compress) {
    unsigned char buf[4096];
    size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
    size_t total = pre + hl + 1, pad = (64 - total % 64) % 64, hlen = hl + pad + 1;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major, buf[7] = 0;
    if (major == 1) buf[8] = (unsigned char)hlen, buf[9] = (unsigned char)(hlen >> 8);
    else buf[8] = (unsigned char)hlen, buf[9] = (unsigned char)(hlen >> 8), buf[10] = 0, buf[11] = 0;
    memcpy(buf + pre, dict, hl);
    memset(buf + pre + hl, ' ', pad);
    buf[pre + hl + pad] = '\n';
    size_t len = pre + hlen;
    memcpy(buf + len, data, n);
    len += n;
    if (compress) {
        size_t zl;
        unsigned char *z = gz(buf, len, &zl);
        put("npy", name, z, zl);
        free(z);
    } else {
        put("npy", name, buf, len);
    }
}

/* with_meta: 0 none (a state file), 1 a run at step 7 of 20, 2 at step 3 of finetuning, 3 as 1 with the
 * student's EMA. st_save writes the data's checksum. */
static void st_seed(const char *name, int with_meta) {
    float state[MPLC_STATE_FLOATS], ema[MPLC_STATE_FLOATS];
    for (int i = 0; i < MPLC_STATE_FLOATS; i++) state[i] = (float)i * 0.25f - 3.0f, ema[i] = (float)i * 0.125f;
    StMeta *m = calloc(1, sizeof *m);
    if (with_meta) { /* the keys of a training checkpoint (checkpoint.c) */
        meta_set(m, "format", "mplc-run-checkpoint/1");
        meta_set(m, "model", "%s", MPLC_MODEL_NAME);
        meta_set(m, "model_hash", "%s", MPLC_MODEL_HASH);
        meta_set(m, "recipe", "%s", MPLC_RECIPE);
        meta_set(m, "mode", "mpl");
        meta_set(m, "seed", "0");
        meta_set(m, "labels", "100");
        meta_set(m, "steps", "20");
        meta_set(m, "finetune_steps", "5");
        meta_set(m, "eval_every", "10");
        meta_set(m, "checkpoint_every", "7");
        meta_set(m, "phase", with_meta == 2 ? "finetune" : "mpl");
        meta_set(m, "step", "%d", with_meta == 2 ? 3 : 7);
        meta_set(m, "rng", "xoshiro256**");
        meta_set(m, "order_position_labeled", "14");
        meta_set(m, "order_position_unlabeled", "14");
        meta_set(m, "order_seed", "0");
        meta_set(m, "test_examples", "10000");
        meta_set(m, "acc_last", "5000,6000,7");
        meta_set(m, "acc_before_finetune", "-1,-1");
        meta_set(m, "acc_after_finetune", "-1,-1");
        char sums[1024] = "";
        for (int i = 0; i < 32; i++) snprintf(sums + strlen(sums), sizeof sums - strlen(sums), i ? ",%a" : "%a", i * 0.5);
        meta_set(m, "log_sums", "%s", sums);
        meta_set(m, "log_count", "3");
        meta_set(m, "metrics_bytes", "512");
        if (with_meta == 3) {
            meta_set(m, "ema_decay", "0.995");
            meta_set(m, "ema_updates", "5");
            meta_set(m, "acc_ema", "6100,-1,-1");
            meta_set(m, "flip", "0");
            meta_set(m, "strong_magnitude", "0.5");
            meta_set(m, "data", "/usr/share/datasets/fashion-mnist"); /* optional: older checkpoints lack it */
        }
    }
    char path[2048];
    snprintf(path, sizeof path, "%s/safetensors", root);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/safetensors/%s", root, name);
    Err e;
    if (st_save_ema(path, state, with_meta == 3 ? ema : NULL, m, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    free(m);
}

/* ---- CIFAR-10 batches: 3073-byte records (label, then the R, G and B planes) */

static void cifar_seed(const char *name, int records, int extra, int bad_label, int compress) {
    static unsigned char buf[8192];
    size_t n = 0;
    for (int r = 0; r < records; r++) {
        buf[n++] = (unsigned char)(bad_label && r == records - 1 ? 10 : (r * 3) % 10);
        for (int p = 0; p < 3072; p++) buf[n++] = (unsigned char)((p * 7 + r) & 0xFF);
    }
    for (int i = 0; i < extra; i++) buf[n++] = 0xAB;
    if (compress) {
        size_t zl;
        unsigned char *z = gz(buf, n, &zl);
        put("cifar", name, z, zl);
        free(z);
    } else {
        put("cifar", name, buf, n);
    }
}

/* ---- MAT-files (Level 5): header, then matrices, plain or in zlib-compressed elements */

typedef struct {
    unsigned char b[16384];
    size_t n;
} MatBuf;

static void mput(MatBuf *f, const void *p, size_t n) {
    memcpy(f->b + f->n, p, n);
    f->n += n;
}
static void mput32(MatBuf *f, uint32_t v) {
    unsigned char q[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    mput(f, q, 4);
}
static void mat_header(MatBuf *f, unsigned version, const char *endian) {
    char text[116];
    memset(text, ' ', sizeof text);
    memcpy(text, "MATLAB 5.0 MAT-file, Platform: seeds", 36);
    f->n = 0;
    mput(f, text, 116);
    memset(f->b + f->n, 0, 8);
    f->n += 8;
    unsigned char v[2] = {(unsigned char)version, (unsigned char)(version >> 8)};
    mput(f, v, 2);
    mput(f, endian, 2);
}
/* A sub-element, in the small format when it fits in 4 bytes and `small` is set. */
static void mat_sub(MatBuf *f, uint32_t type, const void *data, size_t n, int small) {
    if (small && n <= 4) {
        mput32(f, type | (uint32_t)n << 16);
        unsigned char w[4] = {0, 0, 0, 0};
        memcpy(w, data, n);
        mput(f, w, 4);
        return;
    }
    mput32(f, type);
    mput32(f, (uint32_t)n);
    mput(f, data, n);
    while (f->n % 8) f->b[f->n++] = 0;
}
/* miMATRIX `name` of class cls, dims, data (count x elem bytes of mi type `type`; none when data is NULL). */
static void mat_matrix(MatBuf *f, const char *name, int cls, const int32_t *dims, int ndim, uint32_t type,
                       const void *data, size_t bytes, int compress) {
    MatBuf body;
    body.n = 0;
    uint32_t flags[2] = {(uint32_t)cls, 0};
    mat_sub(&body, 6, flags, 8, 0);
    mat_sub(&body, 5, dims, 4 * (size_t)ndim, 0);
    mat_sub(&body, 1, name, strlen(name), 1);
    if (data) mat_sub(&body, type, data, bytes, 0);
    MatBuf el;
    el.n = 0;
    mput32(&el, 14);
    mput32(&el, (uint32_t)body.n);
    mput(&el, body.b, body.n);
    if (!compress) {
        mput(f, el.b, el.n);
        return;
    }
    uLongf zn = sizeof body.b;
    if (compress2(body.b, &zn, el.b, el.n, 9) != Z_OK) exit(1);
    mput32(f, 15);
    mput32(f, (uint32_t)zn);
    mput(f, body.b, zn);
}

static void mat_seeds(void) {
    static unsigned char x[2 * 3072];
    for (size_t i = 0; i < sizeof x; i++) x[i] = (unsigned char)((i * 13) >> 3);
    const int32_t x1[4] = {32, 32, 3, 1}, x2[4] = {32, 32, 3, 2}, y1[2] = {1, 1}, y2[2] = {2, 1}, d23[2] = {2, 3};
    const double ten = 10;
    const unsigned char labels[2] = {10, 3};
    MatBuf f;
    mat_header(&f, 0x0100, "IM"); /* SVHN, one image, compressed, y double */
    mat_matrix(&f, "X", 9, x1, 4, 2, x, 3072, 1);
    mat_matrix(&f, "y", 6, y1, 2, 9, &ten, 8, 1);
    put("mat", "svhn-1-image-compressed", f.b, f.n);
    mat_header(&f, 0x0100, "IM"); /* SVHN, two images, plain, y a double stored as uint8 */
    mat_matrix(&f, "X", 9, x2, 4, 2, x, sizeof x, 0);
    mat_matrix(&f, "y", 6, y2, 2, 2, labels, 2, 0);
    put("mat", "svhn-2-images-plain", f.b, f.n);
    int16_t i16[6] = {1, -2, 3, 300, 5, 6};
    const uint16_t chars[3] = {'a', 'b', 'c'};
    const int32_t c13[2] = {1, 3}, empty[2] = {0, 0};
    mat_header(&f, 0x0100, "IM"); /* variables of several kinds */
    mat_matrix(&f, "dbl", 6, d23, 2, 3, i16, sizeof i16, 0);
    mat_matrix(&f, "str", 4, c13, 2, 4, chars, sizeof chars, 1);
    mat_matrix(&f, "c", 1, empty, 2, 0, NULL, 0, 0); /* an empty cell array */
    float sgl[6] = {0.5f, 1, 2, 3, 4, 5};
    mat_matrix(&f, "single", 7, d23, 2, 7, sgl, sizeof sgl, 1);
    put("mat", "mixed-variables", f.b, f.n);
    mat_header(&f, 0x0200, "IM");
    put("mat", "v73-header", f.b, f.n);
    mat_header(&f, 0x0100, "MI");
    mat_matrix(&f, "y", 6, y1, 2, 9, &ten, 8, 0);
    put("mat", "big-endian", f.b, f.n);
}

/* ---- image files (fuzz_image): a selector byte (bit 0: the model's channels, 1 or 3; bits 1-3 and 4-6: the width
 * and height to resize to, 1 + 9 k pixels), then a PNG or JPEG ---- */

typedef struct {
    unsigned char b[65536];
    size_t n;
} ImgBuf;

static void img_write(void *ctx, void *data, int size) {
    ImgBuf *f = ctx;
    if (f->n + (size_t)size > sizeof f->b) exit(1);
    memcpy(f->b + f->n, data, (size_t)size);
    f->n += (size_t)size;
}

/* keep: how many bytes of the file to keep (0: all), a truncated file. */
static void image_seed(const char *name, int selector, int jpeg, int w, int h, int c, size_t keep) {
    static ImgBuf f;
    unsigned char px[64 * 64 * 4];
    for (int i = 0; i < w * h * c; i++) px[i] = (unsigned char)(i * 37 + i / 5);
    f.b[0] = (unsigned char)selector;
    f.n = 1;
    if (!(jpeg ? stbi_write_jpg_to_func(img_write, &f, w, h, c, px, 90)
               : stbi_write_png_to_func(img_write, &f, w, h, c, px, w * c)))
        exit(1);
    put("image", name, f.b, keep ? keep : f.n);
}

static void image_seeds(void) {
    image_seed("png-gray-28x28", 0, 0, 28, 28, 1, 0);
    image_seed("png-rgb-28x28-to-gray", 0, 0, 28, 28, 3, 0);
    image_seed("png-rgba-8x8-to-rgb", 1, 0, 8, 8, 4, 0);
    image_seed("png-gray-alpha-4x4", 1, 0, 4, 4, 2, 0);
    image_seed("png-1x1", 0, 0, 1, 1, 1, 0);
    image_seed("png-truncated", 0, 0, 28, 28, 1, 60);
    image_seed("jpeg-gray-28x28", 0, 1, 28, 28, 1, 0);
    image_seed("jpeg-rgb-16x16", 1, 1, 16, 16, 3, 0);
    image_seed("jpeg-rgb-33x7-to-gray", 0, 1, 33, 7, 3, 0);
    image_seed("jpeg-truncated", 1, 1, 16, 16, 3, 200);
    image_seed("png-gray-20x28-resize-to-28x28", 0x36, 0, 20, 28, 1, 0);  /* 1 + 9 * 3 = 28: enlarged in width */
    image_seed("png-rgb-56x56-resize-to-28x28", 0x37, 0, 56, 56, 3, 0);   /* shrunk by 2 */
    image_seed("jpeg-rgb-33x7-resize-to-64x10", 0x1F, 1, 33, 7, 3, 0);    /* enlarged */
    image_seed("png-rgba-64x64-resize-to-10x55", 0x63, 0, 64, 64, 4, 0);  /* shrunk by odd ratios */
}

/* ---- CSV feature vectors (fuzz_csv) ---- */

static void csv_seeds(void) {
    const char *csv[][2] = {
        {"header-3-cols", "x1,x2,label\n0.5,-1.25,0\n1e3, 2 ,1\n"},
        {"crlf-blank-line", "0.5,1.5\r\n-2,3\r\n\r\n"},
        {"no-final-newline", "1,2\n3,4"},
        {"ragged", "1,2,3\n4,5\n"},
        {"nan", "1,nan,0\n"},
        {"float-overflow", "1e39,0\n"},
        {"header-only", "a,b\n"},
        {"quoted-header", "\"x\",y\n1,2\n"},
        {"empty-field", "1,,2\n"},
        {"hex-and-spaces", " 0x1p3 ,\t-0.0\n"},
    };
    for (size_t i = 0; i < sizeof csv / sizeof *csv; i++) put("csv", csv[i][0], csv[i][1], strlen(csv[i][1]));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    mkdir(root, 0777);

    uint32_t img[3] = {3, 4, 4}, lbl[1] = {12};
    idx_seed("images-plain", 0, img, 3, IDX_MAGIC_IMAGES, 0, 0);
    idx_seed("images-gzip", 0, img, 3, IDX_MAGIC_IMAGES, 0, 1);
    idx_seed("labels-plain", 1, lbl, 1, IDX_MAGIC_LABELS, 0, 0);
    idx_seed("labels-gzip", 1, lbl, 1, IDX_MAGIC_LABELS, 0, 1);
    idx_seed("images-truncated-gzip", 0, img, 3, IDX_MAGIC_IMAGES, -5, 1);
    idx_seed("labels-trailing-byte", 1, lbl, 1, IDX_MAGIC_LABELS, 1, 0);
    uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 2};
    idx_seed("images-huge-header", 0, huge, 3, IDX_MAGIC_IMAGES, 0, 0);

    float f[6] = {0.5f, -1, 2, 3, 4, 5};
    uint8_t u[8] = {0, 1, 2, 3, 250, 251, 252, 255};
    int32_t i4[4] = {0, 9, -1, 7};
    int64_t i8[3] = {1, 2, 3};
    npy_raw("f4-2x3", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f, 0);
    npy_raw("u1-2x2x2", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }", u, sizeof u, 0);
    npy_raw("i4-4", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", i4, sizeof i4, 0);
    npy_raw("i8-3-v2", 2, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8, sizeof i8, 0);
    npy_raw("u1-8-v3-gzip", 3, "{'descr': '<u1', 'fortran_order': False, 'shape': (8,), }", u, sizeof u, 1);
    npy_raw("f4-scalar", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4, 0);
    npy_raw("i8-py2-long", 1, "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (3L,)}", i8, sizeof i8, 0);
    npy_raw("f4-empty", 1, "{'shape': (0, 4), 'fortran_order': False, 'descr': '<f4'}", f, 0, 0);
    npy_raw("fortran", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, sizeof f, 0);

    const char *json[][2] = {
        {"object", "{\"a\":{\"dtype\":\"F32\",\"shape\":[784,256],\"data_offsets\":[0,802816]},\"b\":[]}"},
        {"metadata", "{\"__metadata__\":{\"format\":\"mplc-run-checkpoint/1\",\"log_sums\":\"0x1p+0,0x0p+0\"}}"},
        {"escapes", "[\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\", \"\\u0041\", \"\xc3\xa9\"]"},
        {"numbers", "[0, -0, 1.5e+10, -2E-3, 18446744073709551615, 18446744073709551616, 1e400, 0.000001]"},
        {"literals", " { \"t\" : true , \"f\" : false , \"n\" : null } \n"},
        {"nested", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{\"k\":[[[[]]]]}]]]]]]]]]]]]]]]]]]]]]]]]]"},
        {"duplicate-key", "{\"a\":1,\"a\":2}"},
    };
    for (size_t i = 0; i < sizeof json / sizeof *json; i++) put("json", json[i][0], json[i][1], strlen(json[i][1]));

    st_seed("checkpoint-mpl", 1);
    st_seed("checkpoint-finetune", 2);
    st_seed("state-only", 0);
    st_seed("checkpoint-ema", 3);

    cifar_seed("one-record", 1, 0, 0, 0);
    cifar_seed("two-records-gzip", 2, 0, 0, 1);
    cifar_seed("record-and-a-byte", 1, 1, 0, 0);
    cifar_seed("label-10", 2, 0, 1, 0);
    mat_seeds();
    image_seeds();
    csv_seeds();
    return 0;
}
