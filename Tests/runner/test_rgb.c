/* Tests of the runner's 32x32 RGB data (CIFAR-10, SVHN) and of its augmentation on 3-channel images,
 * built with the fake model in its 3x32x32 form (-DFAKE_RGB32) by Tests/runner/rgb_tests.sh.
 *
 *   test_rgb unit [TMPDIR]   unit tests: RGB augmentation, CIFAR-10 and MAT-file readers on hand-made
 *                            files, the labeled split at CIFAR-10-4K and SVHN-1K sizes
 *   test_rgb dump DIR OUT    load DIR as mplc-run does and write OUT/{train,test}_{x,y}.npy (x float32
 *                            [N, 32, 32, 3], y int64) and OUT/stats.npy (float32 [3, 3]: lo, hi, mean per
 *                            channel) for Tests/runner/rgb_data.py check
 *   test_rgb mat FILE        read FILE as SVHN and print the image count and the first labels
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "augment.h"
#include "cifar.h"
#include "dataset.h"
#include "mat.h"
#include "model.h"
#include "npy.h"
#include "rng.h"
#include "svhn.h"
#include "test_harness.h"

_Static_assert(MPLC_INPUT_HEIGHT == 32 && MPLC_INPUT_WIDTH == 32 && MPLC_INPUT_CHANNELS == 3,
               "test_rgb is built with -DFAKE_RGB32");

/* ---------------------------------------------------------------- augmentation on RGB */

enum { S = 32, C = 3, NPIX = S * S * C };

/* CIFAR-10's channel ranges: t = p/255 maps to (t - mean_c)/std_c. */
static const float LO[3] = {(float)(-0.4914 / 0.2470), (float)(-0.4822 / 0.2435), (float)(-0.4465 / 0.2616)};
static const float HI[3] = {(float)((1 - 0.4914) / 0.2470), (float)((1 - 0.4822) / 0.2435), (float)((1 - 0.4465) / 0.2616)};
static const float MEAN[3] = {0.1f, -0.2f, 0.3f};

static float t_of(int ch, float v) { return (v - LO[ch]) / (HI[ch] - LO[ch]); }
static float v_of(int ch, float t) { return LO[ch] + t * (HI[ch] - LO[ch]); }
static float luma_t(const float *px) { return 0.299f * t_of(0, px[0]) + 0.587f * t_of(1, px[1]) + 0.114f * t_of(2, px[2]); }

static void random_image(float *img, uint64_t seed, float lo_t, float hi_t) {
    Rng r;
    rng_init(&r, seed, 1, 1);
    for (int i = 0; i < NPIX; i++) img[i] = v_of(i % C, lo_t + (hi_t - lo_t) * (float)rng_double(&r));
}

static int in_channel_ranges(const float *img) {
    for (int i = 0; i < NPIX; i++)
        if (!isfinite(img[i]) || img[i] < LO[i % C] - 1e-4f || img[i] > HI[i % C] + 1e-4f) return 0;
    return 1;
}

static void test_augment_rgb(void) {
    current = "augment rgb";
    AugSpec s = {S, S, C, LO, HI, MEAN, AUG_WEAK_SHIFT_RGB, 0, 1};
    static float img[NPIX], a[NPIX], tmp[2 * NPIX];
    random_image(img, 1, 0, 1);
    Rng r;
    rng_init(&r, 2, 3, 4);
    /* every op, at every magnitude, keeps each channel in its own range */
    for (int op = 0; op < AUG_NUM_OPS; op++)
        for (int k = 0; k <= 4; k++) {
            aug_apply_op(&s, op, k / 4.0, img, a, tmp, &r);
            CHECK(in_channel_ranges(a), "op %d at magnitude %d/4 leaves a channel's range", op, k);
        }
    /* Color: t_c - gray = f (t_c - gray) with one factor f = 1 +- 0.9 m for the whole image, gray kept
     * (no clipping here: mid-range pixels, m = 0.5) */
    random_image(img, 3, 0.3f, 0.7f);
    for (int trial = 0; trial < 8; trial++) {
        aug_apply_op(&s, AUG_COLOR, 0.5, img, a, tmp, &r);
        double f = NAN, worst = 0, gray_err = 0;
        for (int p = 0; p < S * S; p++) {
            float g = luma_t(img + C * p);
            gray_err = fmax(gray_err, fabs(luma_t(a + C * p) - g));
            for (int ch = 0; ch < C; ch++) {
                double din = t_of(ch, img[C * p + ch]) - g, dout = t_of(ch, a[C * p + ch]) - g;
                if (fabs(din) < 0.05) continue;
                if (isnan(f)) f = dout / din;
                worst = fmax(worst, fabs(dout / din - f));
            }
        }
        CHECK(fabs(fabs(f - 1) - 0.45) < 1e-3 && worst < 1e-3 && gray_err < 1e-5,
              "color: factor %g (want 1 +- 0.45), spread %g, gray moved by %g", f, worst, gray_err);
    }
    /* Color leaves a gray image (equal t in every channel) alone */
    for (int p = 0; p < S * S; p++)
        for (int ch = 0; ch < C; ch++) img[C * p + ch] = v_of(ch, (float)(p % 97) / 96.0f);
    aug_apply_op(&s, AUG_COLOR, 1, img, a, tmp, &r);
    float maxd = 0;
    for (int i = 0; i < NPIX; i++) maxd = fmaxf(maxd, fabsf(t_of(i % C, a[i]) - t_of(i % C, img[i])));
    CHECK(maxd < 1e-5f, "color changed a gray image by %g (in t)", maxd);
    /* Contrast: every channel blends towards the same gray level, the mean luminance */
    random_image(img, 4, 0.35f, 0.65f);
    double mean_luma = 0;
    for (int p = 0; p < S * S; p++) mean_luma += luma_t(img + C * p);
    mean_luma /= S * S;
    aug_apply_op(&s, AUG_CONTRAST, 0.5, img, a, tmp, &r);
    double f = (t_of(0, a[0]) - mean_luma) / (t_of(0, img[0]) - mean_luma), worst = 0;
    for (int i = 0; i < NPIX; i++) {
        double din = t_of(i % C, img[i]) - mean_luma;
        if (fabs(din) > 0.05) worst = fmax(worst, fabs((t_of(i % C, a[i]) - mean_luma) / din - f));
    }
    CHECK(fabs(fabs(f - 1) - 0.45) < 1e-3 && worst < 1e-3, "contrast: factor %g, spread %g around the mean luminance", f, worst);
    /* Brightness blends towards black, which is lo in each channel */
    aug_apply_op(&s, AUG_BRIGHTNESS, 0.5, img, a, tmp, &r);
    f = t_of(0, a[0]) / t_of(0, img[0]);
    worst = 0;
    for (int i = 0; i < NPIX; i++) worst = fmax(worst, fabs(t_of(i % C, a[i]) / t_of(i % C, img[i]) - f));
    CHECK(fabs(fabs(f - 1) - 0.45) < 1e-3 && worst < 1e-3, "brightness: factor %g, spread %g", f, worst);
    /* Solarize at full magnitude inverts every channel within its own range */
    aug_apply_op(&s, AUG_SOLARIZE, 1, img, a, tmp, &r);
    worst = 0;
    for (int i = 0; i < NPIX; i++) worst = fmax(worst, fabs(t_of(i % C, a[i]) - (1 - t_of(i % C, img[i]))));
    CHECK(worst < 1e-4, "solarize: off by %g from 1 - t", worst);
    /* AutoContrast stretches each channel to its full range */
    aug_apply_op(&s, AUG_AUTOCONTRAST, 0, img, a, tmp, &r);
    for (int ch = 0; ch < C; ch++) {
        float mn = a[ch], mx = a[ch];
        for (int i = ch; i < NPIX; i += C) mn = fminf(mn, a[i]), mx = fmaxf(mx, a[i]);
        CHECK(fabsf(mn - LO[ch]) < 1e-4f && fabsf(mx - HI[ch]) < 1e-4f, "autocontrast: channel %d spans [%g, %g], want [%g, %g]",
              ch, mn, mx, LO[ch], HI[ch]);
    }
}

static void test_flip_shift_cutout(void) {
    current = "flip, shift, cutout";
    AugSpec s = {S, S, C, LO, HI, MEAN, AUG_WEAK_SHIFT_RGB, 1, 1};
    static float img[NPIX], a[NPIX], flipped[NPIX], tmp[2 * NPIX];
    random_image(img, 5, 0, 1);
    memcpy(flipped, img, sizeof img);
    aug_flip(&s, flipped);
    int mirror_ok = 1;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int ch = 0; ch < C; ch++) mirror_ok &= flipped[(y * S + x) * C + ch] == img[(y * S + (S - 1 - x)) * C + ch];
    CHECK(mirror_ok, "aug_flip is not a left-right mirror");
    /* weak view, no shift: the image or its mirror, both seen; never a mirror with flips off */
    s.shift = 0;
    int plain = 0, mirrored = 0, other = 0;
    for (int t = 0; t < 200; t++) {
        Rng r;
        rng_init(&r, 7, RNG_AUGMENT, (uint64_t)t);
        aug_weak(&s, img, a, &r);
        if (memcmp(a, img, sizeof a) == 0) plain++;
        else if (memcmp(a, flipped, sizeof a) == 0) mirrored++;
        else other++;
    }
    CHECK(plain > 60 && mirrored > 60 && other == 0, "flip on: %d plain, %d mirrored, %d other of 200", plain, mirrored, other);
    s.flip = 0;
    mirrored = 0;
    for (int t = 0; t < 50; t++) {
        Rng r;
        rng_init(&r, 7, RNG_AUGMENT, (uint64_t)t);
        aug_weak(&s, img, a, &r);
        mirrored += memcmp(a, img, sizeof a) != 0;
    }
    CHECK(mirrored == 0, "flip off: %d of 50 weak views changed without a shift", mirrored);
    /* shift by up to 4 pixels, padding each channel with its own lo */
    s.shift = AUG_WEAK_SHIFT_RGB;
    int max_pad_rows = 0, pad_ok = 1;
    for (int t = 0; t < 100; t++) {
        Rng r;
        rng_init(&r, 8, RNG_AUGMENT, (uint64_t)t);
        aug_weak(&s, img, a, &r);
        int rows = 0;
        for (int y = 0; y < S; y++) {
            int pad = 1;
            for (int x = 0; x < S; x++)
                for (int ch = 0; ch < C; ch++) pad &= a[(y * S + x) * C + ch] == LO[ch];
            rows += pad;
        }
        max_pad_rows = rows > max_pad_rows ? rows : max_pad_rows;
        pad_ok &= rows <= AUG_WEAK_SHIFT_RGB;
    }
    CHECK(pad_ok && max_pad_rows == AUG_WEAK_SHIFT_RGB, "shift: up to %d padded rows seen (want exactly up to %d)",
          max_pad_rows, AUG_WEAK_SHIFT_RGB);
    /* Cutout fills each channel with its own mean */
    memcpy(a, img, sizeof a);
    Rng r;
    rng_init(&r, 9, 1, 1);
    aug_cutout(&s, a, &r);
    int filled[3] = {0, 0, 0};
    for (int i = 0; i < NPIX; i++) filled[i % C] += a[i] == MEAN[i % C];
    CHECK(filled[0] == filled[1] && filled[1] == filled[2] && filled[0] >= 20, "cutout filled %d/%d/%d pixels per channel",
          filled[0], filled[1], filled[2]);
    /* the strong view is deterministic and stays in range */
    static float b[NPIX];
    Rng r1, r2;
    for (int t = 0; t < 50; t++) {
        rng_init(&r1, 10, RNG_AUGMENT, (uint64_t)t);
        rng_init(&r2, 10, RNG_AUGMENT, (uint64_t)t);
        s.flip = t % 2;
        aug_strong(&s, img, a, tmp, &r1);
        aug_strong(&s, img, b, tmp, &r2);
        CHECK(memcmp(a, b, sizeof a) == 0 && in_channel_ranges(a), "strong view %d not deterministic or out of range", t);
    }
}

/* ---------------------------------------------------------------- the labeled split at paper sizes */

static void test_split_sizes(void) {
    current = "split";
    Err e;
    /* CIFAR-10: 50,000 training images, 5,000 per class; --labels 4000 */
    DataSplit s = {50000, NULL, xcalloc(50000, sizeof(int32_t)), 0};
    for (size_t i = 0; i < s.n; i++) s.y[i] = (int32_t)((i * 7) % 10);
    uint32_t *pick;
    int rc = dataset_pick_labeled(&s, 4000, 0, &pick, &e);
    CHECK(rc == 0, "CIFAR-10-4K: %s", e.msg);
    if (rc == 0) {
        int per[10] = {0};
        char *seen = xcalloc(s.n, 1);
        int dup = 0;
        for (int i = 0; i < 4000; i++) per[s.y[pick[i]]]++, dup += seen[pick[i]]++ != 0;
        for (int c = 0; c < 10; c++) CHECK(per[c] == 400, "CIFAR-10-4K: class %d has %d labels", c, per[c]);
        CHECK(dup == 0, "CIFAR-10-4K: %d examples picked twice", dup);
        free(seen);
        free(pick);
    }
    free(s.y);
    /* SVHN: 73,257 training images with SVHN's uneven classes (4,948 zeros ... 13,861 ones); --labels 1000 */
    static const int counts[10] = {4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659};
    s.n = 73257;
    s.y = xcalloc(s.n, sizeof(int32_t));
    size_t k = 0;
    for (int c = 0; c < 10; c++)
        for (int j = 0; j < counts[c]; j++) s.y[k++] = c;
    CHECK(k == s.n, "SVHN class counts add up to %zu", k);
    rc = dataset_pick_labeled(&s, 1000, 3, &pick, &e);
    CHECK(rc == 0, "SVHN-1K: %s", e.msg);
    if (rc == 0) {
        int per[10] = {0};
        for (int i = 0; i < 1000; i++) per[s.y[pick[i]]]++;
        for (int c = 0; c < 10; c++) CHECK(per[c] == 100, "SVHN-1K: class %d has %d labels", c, per[c]);
        free(pick);
    }
    free(s.y);
}

/* ---------------------------------------------------------------- CIFAR-10 reader */

static void test_cifar(void) {
    current = "cifar";
    Err e;
    enum { N = 5 };
    static uint8_t rec[N * CIFAR_RECORD];
    for (int i = 0; i < N; i++) {
        rec[i * CIFAR_RECORD] = (uint8_t)(9 - i);
        for (int p = 0; p < CIFAR_PIXELS; p++) rec[i * CIFAR_RECORD + 1 + p] = (uint8_t)(p * 31 + i);
    }
    write_bytes(tpath("good.bin"), rec, sizeof rec);
    CifarBatch b = {0, NULL};
    int rc = cifar_read(tpath("good.bin"), &b, &e);
    CHECK(rc == 0 && b.n == N, "good batch: %s", e.msg);
    if (rc == 0) {
        /* pixel (y, x, c) is byte 1 + 1024 c + 32 y + x of the record */
        CHECK(cifar_label(&b, 2) == 7 && cifar_pixel(&b, 2, 3, 4, 1) == (uint8_t)((1024 + 3 * 32 + 4) * 31 + 2),
              "record layout");
        rc = cifar_read(tpath("good.bin"), &b, &e); /* a second file appends */
        CHECK(rc == 0 && b.n == 2 * N && cifar_label(&b, N) == 9, "append: %s", e.msg);
    }
    cifar_free(&b);
    /* gzip-compressed batches read the same */
    gzFile gz = gzopen(tpath("good.bin.gz"), "wb");
    gzwrite(gz, rec, sizeof rec);
    gzclose(gz);
    rc = cifar_read(tpath("good.bin.gz"), &b, &e);
    CHECK(rc == 0 && b.n == N && memcmp(b.records, rec, sizeof rec) == 0, "gzip batch: %s", e.msg);
    cifar_free(&b);
    write_bytes(tpath("cut.bin"), rec, sizeof rec - 1);
    CHECK_FAILS(cifar_read(tpath("cut.bin"), &b, &e), e, "is not a multiple of the 3073-byte record (4 whole records");
    CHECK(b.n == 0 && b.records == NULL, "a failed read left records behind");
    write_bytes(tpath("empty.bin"), rec, 0);
    CHECK_FAILS(cifar_read(tpath("empty.bin"), &b, &e), e, "empty");
    rec[3 * CIFAR_RECORD] = 10;
    write_bytes(tpath("label.bin"), rec, sizeof rec);
    CHECK_FAILS(cifar_read(tpath("label.bin"), &b, &e), e, "label 10 of record 3");
    CHECK_FAILS(cifar_read(tpath("none.bin"), &b, &e), e, "cannot open");
}

/* ---------------------------------------------------------------- MAT-file reader */

/* A byte buffer for hand-made MAT-files. */
typedef struct {
    uint8_t b[1 << 16];
    size_t n;
} Buf;

static void put(Buf *f, const void *p, size_t n) {
    memcpy(f->b + f->n, p, n);
    f->n += n;
}
static void put32(Buf *f, uint32_t v) {
    uint8_t q[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(f, q, 4);
}
static void pad8(Buf *f) {
    while (f->n % 8) f->b[f->n++] = 0;
}
static void header(Buf *f, unsigned version, const char *endian) {
    f->n = 0;
    char text[116];
    memset(text, ' ', sizeof text);
    memcpy(text, "MATLAB 5.0 MAT-file, test_rgb", 29);
    put(f, text, 116);
    memset(f->b + f->n, 0, 8);
    f->n += 8;
    uint8_t v[2] = {(uint8_t)version, (uint8_t)(version >> 8)};
    put(f, v, 2);
    put(f, endian, 2);
}
static void sub(Buf *f, uint32_t type, const void *data, size_t n) {
    put32(f, type);
    put32(f, (uint32_t)n);
    put(f, data, n);
    pad8(f);
}
/* A uint8 matrix `name` of the given dims with data bytes 0, 1, 2, ... (mi type `type`, elem bytes each). */
static void matrix(Buf *f, const char *name, const int32_t *dims, int ndim, int cls, uint32_t type, size_t elem, size_t extra) {
    Buf body;
    body.n = 0;
    uint32_t flags[2] = {(uint32_t)cls, 0};
    sub(&body, 6, flags, 8);
    sub(&body, 5, dims, 4 * (size_t)ndim);
    sub(&body, 1, name, strlen(name));
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= dims[i] > 0 ? (size_t)dims[i] : 0;
    uint8_t data[4096];
    for (size_t i = 0; i < count * elem + extra; i++) data[i] = (uint8_t)(elem == 1 ? i : (i % elem == 0 ? i / elem : 0));
    sub(&body, type, data, count * elem + extra);
    put32(f, 14);
    put32(f, (uint32_t)body.n);
    put(f, body.b, body.n);
}

static int mat_file(const char *name, const Buf *f, MatFile *m, Err *e) {
    write_bytes(tpath(name), f->b, f->n);
    return mat_read(tpath(name), m, e);
}

static void test_mat(void) {
    current = "mat";
    Err e;
    static Buf f;
    static MatFile m;
    const int32_t d23[2] = {2, 3};
    header(&f, 0x0100, "IM");
    matrix(&f, "a", d23, 2, MAT_CLASS_UINT8, 2, 1, 0);
    matrix(&f, "dbl", d23, 2, MAT_CLASS_DOUBLE, 3, 2, 0); /* a double array stored as int16 */
    int rc = mat_file("good.mat", &f, &m, &e);
    CHECK(rc == 0 && m.nvars == 2, "good.mat: %s", e.msg);
    if (rc == 0) {
        const MatVar *a = mat_find(&m, "a"), *dbl = mat_find(&m, "dbl");
        CHECK(a && a->numeric && a->ndim == 2 && a->dims[0] == 2 && a->dims[1] == 3 && mat_get(a, 5) == 5, "a");
        CHECK(dbl && dbl->numeric && dbl->cls == MAT_CLASS_DOUBLE && mat_get(dbl, 4) == 4, "dbl (int16 storage)");
        CHECK(mat_find(&m, "b") == NULL, "found a variable that is not there");
        mat_free(&m);
    }
    /* the same matrix inside an miCOMPRESSED element */
    {
        Buf inner;
        header(&inner, 0x0100, "IM");
        size_t start = inner.n;
        matrix(&inner, "z", d23, 2, MAT_CLASS_UINT8, 2, 1, 0);
        uLongf zn = 8192;
        static uint8_t z[8192];
        compress(z, &zn, inner.b + start, inner.n - start);
        header(&f, 0x0100, "IM");
        put32(&f, 15);
        put32(&f, (uint32_t)zn);
        put(&f, z, zn);
        rc = mat_file("z.mat", &f, &m, &e);
        CHECK(rc == 0 && m.nvars == 1 && mat_find(&m, "z") && mat_get(mat_find(&m, "z"), 3) == 3, "compressed: %s", e.msg);
        if (rc == 0) mat_free(&m);
        f.n -= 5; /* cut the zlib stream */
        CHECK_FAILS(mat_file("zcut.mat", &f, &m, &e), e, "truncated");
        f.n += 5;
        f.b[f.n - 7] ^= 0xFF; /* corrupt the adler32 check or the last block */
        CHECK_FAILS(mat_file("zbad.mat", &f, &m, &e), e, "compressed element at byte 128");
    }
    /* headers */
    header(&f, 0x0100, "MI");
    CHECK_FAILS(mat_file("be.mat", &f, &m, &e), e, "big-endian");
    header(&f, 0x0200, "IM");
    CHECK_FAILS(mat_file("v73.mat", &f, &m, &e), e, "v7.3 (HDF5)");
    header(&f, 0x0300, "IM");
    CHECK_FAILS(mat_file("v3.mat", &f, &m, &e), e, "unsupported MAT-file version");
    memset(f.b, 0, 200);
    f.n = 200;
    CHECK_FAILS(mat_file("v4.mat", &f, &m, &e), e, "v4");
    memcpy(f.b, "NOTLAB", 6);
    CHECK_FAILS(mat_file("not.mat", &f, &m, &e), e, "not a MAT-file");
    f.n = 60;
    CHECK_FAILS(mat_file("short.mat", &f, &m, &e), e, "shorter than the 128-byte header");
    /* elements */
    header(&f, 0x0100, "IM");
    matrix(&f, "a", d23, 2, MAT_CLASS_UINT8, 2, 1, 3);
    CHECK_FAILS(mat_file("size.mat", &f, &m, &e), e, "variable 'a' (2x3): data holds 9 bytes, expected 6 elements of 1 bytes");
    header(&f, 0x0100, "IM");
    matrix(&f, "a", d23, 2, MAT_CLASS_UINT8, 14, 1, 0);
    CHECK_FAILS(mat_file("type.mat", &f, &m, &e), e, "not a numeric type");
    header(&f, 0x0100, "IM");
    matrix(&f, "a", d23, 2, MAT_CLASS_UINT8, 2, 1, 0);
    f.n -= 3;
    CHECK_FAILS(mat_file("cut.mat", &f, &m, &e), e, "truncated");
    header(&f, 0x0100, "IM");
    const int32_t neg[2] = {2, -3};
    matrix(&f, "a", neg, 2, MAT_CLASS_UINT8, 2, 1, 0);
    CHECK_FAILS(mat_file("neg.mat", &f, &m, &e), e, "negative dimension");
    header(&f, 0x0100, "IM");
    sub(&f, 2, "abc", 3);
    CHECK_FAILS(mat_file("top.mat", &f, &m, &e), e, "data element of type 2 at byte 128");
    header(&f, 0x0100, "IM");
    matrix(&f, "a_name_that_is_much_longer_than_the_sixty_three_characters_matlab_allows", d23, 2, MAT_CLASS_UINT8, 2, 1, 0);
    CHECK_FAILS(mat_file("name.mat", &f, &m, &e), e, "longer than 63");
    /* a cell array is listed by class, not read; SVHN then names it */
    header(&f, 0x0100, "IM");
    matrix(&f, "X", d23, 2, MAT_CLASS_CELL, 2, 1, 0);
    rc = mat_file("cell.mat", &f, &m, &e);
    CHECK(rc == 0 && m.nvars == 1 && !m.vars[0].numeric && m.vars[0].data == NULL, "cell: %s", e.msg);
    if (rc == 0) mat_free(&m);
    SvhnSet sv;
    CHECK_FAILS(svhn_read(tpath("cell.mat"), &sv, &e), e, "variable 'X' is a cell array");
    CHECK_FAILS(svhn_read(tpath("good.mat"), &sv, &e), e, "no variable 'X' (the images); the file has: a, dbl");
}

/* ---------------------------------------------------------------- helpers for rgb_tests.sh */

static int dump(const char *dir, const char *out) {
    Dataset d;
    Err e;
    if (dataset_load(dir, 1, 0, &d, &e) != 0) die_err(&e, 1);
    mkdir(out, 0777);
    char path[4096];
    const DataSplit *splits[2] = {&d.train, &d.test};
    const char *names[2] = {"train", "test"};
    for (int k = 0; k < 2; k++) {
        const DataSplit *s = splits[k];
        size_t xs[4] = {s->n, 32, 32, 3}, ys[1] = {s->n};
        int64_t *y = xmalloc(s->n * sizeof *y);
        for (size_t i = 0; i < s->n; i++) y[i] = s->y[i];
        snprintf(path, sizeof path, "%s/%s_x.npy", out, names[k]);
        if (npy_write(path, NPY_F4, 4, xs, s->x, &e) != 0) die_err(&e, 1);
        snprintf(path, sizeof path, "%s/%s_y.npy", out, names[k]);
        if (npy_write(path, NPY_I8, 1, ys, y, &e) != 0) die_err(&e, 1);
        free(y);
    }
    float stats[9];
    for (int c = 0; c < 3; c++) stats[c] = d.lo[c], stats[3 + c] = d.hi[c], stats[6 + c] = d.mean[c];
    size_t ss[2] = {3, 3};
    snprintf(path, sizeof path, "%s/stats.npy", out);
    if (npy_write(path, NPY_F4, 2, ss, stats, &e) != 0) die_err(&e, 1);
    printf("%s: %zu train, %zu test\n", d.format, d.train.n, d.test.n);
    dataset_free(&d);
    return 0;
}

static int read_mat(const char *path) {
    SvhnSet s;
    Err e;
    if (svhn_read(path, &s, &e) != 0) die_err(&e, 1);
    printf("%zu images, labels", s.n);
    for (size_t i = 0; i < s.n && i < 10; i++) printf(" %u", s.labels[i]);
    printf(", first pixel %u %u %u\n", s.pixels[0], s.pixels[1], s.pixels[2]);
    svhn_free(&s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "unit") == 0) {
        snprintf(tmpdir, sizeof tmpdir, "%s", argc >= 3 ? argv[2] : "/tmp/mplc-rgb-unit");
        mkdir(tmpdir, 0777);
        void (*tests[])(void) = {test_augment_rgb, test_flip_shift_cutout, test_split_sizes, test_cifar, test_mat};
        const char *names[] = {"augment rgb", "flip, shift, cutout", "split", "cifar", "mat"};
        for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
            int before = failures;
            tests[i]();
            printf("%s unit: %s\n", failures == before ? "ok  " : "FAIL", names[i]);
        }
        printf("%d checks, %d failed\n", checks, failures);
        return failures ? 1 : 0;
    }
    if (argc == 4 && strcmp(argv[1], "dump") == 0) return dump(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "mat") == 0) return read_mat(argv[2]);
    fprintf(stderr, "usage: test_rgb unit [TMPDIR] | dump DIR OUT | mat FILE\n");
    return 2;
}
