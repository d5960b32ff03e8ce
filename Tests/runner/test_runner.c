/* Unit tests of the runner (readers, checkpoints, RNG, schedules, augmentation, data split, fake model)
 * and helpers that run_tests.sh uses to prepare files for the end-to-end tests.
 *
 *   test_runner unit                 run the unit tests in a temporary directory
 *   test_runner gen-data DIR KIND    write a small dataset: npy, idx, idx-badmagic, idx-badlabel,
 *                                    idx-truncated, idx-wrongsize, idx-countmismatch, idx-bomb (training
 *                                    images: a valid gzip of a million images, 784 MB of zeros)
 *   test_runner gen-replay DIR N     write DIR/in.safetensors, DIR/batches/step_*, and the expected
 *                                    DIR/expected.safetensors and DIR/expected_losses.jsonl
 *   test_runner st-equal A B         exit 0 iff the two checkpoints hold bit-identical state tensors
 *   test_runner st-meta FILE KEY     print a metadata value of a checkpoint
 *   test_runner st-finite FILE       exit 0 iff every state tensor is finite
 *   test_runner st-set FILE KEY VALUE, st-del FILE KEY, st-poke FILE TENSOR ELEMENT VALUE,
 *               st-flip FILE TENSOR ELEMENT BIT
 *                                    change a checkpoint's metadata or one float (valid checksum), or flip a bit
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "augment.h"
#include "budget.h"
#include "cifar.h"
#include "dataset.h"
#include "idx.h"
#include "json.h"
#include "mat.h"
#include "model.h"
#include "npy.h"
#include "rng.h"
#include "safetensors.h"
#include "schedule.h"
#include "tensors.h"
#include "test_harness.h"
#include "trainer.h"

/* ---------------------------------------------------------------- test files */

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    if (!gz || gzwrite(gz, data, (unsigned)n) != (int)n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    gzclose(gz);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* An IDX file in memory: magic, dims, then `have` data bytes (pattern i*7). */
static unsigned char *make_idx(uint32_t magic, const uint32_t *dims, int ndim, size_t have, size_t *len) {
    *len = 4 + 4 * (size_t)ndim + have;
    unsigned char *b = xmalloc(*len);
    put_be32(b, magic);
    for (int i = 0; i < ndim; i++) put_be32(b + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < have; i++) b[4 + 4 * ndim + i] = (unsigned char)(i * 7);
    return b;
}

/* ---------------------------------------------------------------- rng, order, schedules */

static void test_rng(void) {
    current = "rng";
    Rng a, b, c;
    rng_init(&a, 42, RNG_AUGMENT, 7);
    rng_init(&b, 42, RNG_AUGMENT, 7);
    rng_init(&c, 42, RNG_AUGMENT, 8);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_next(&a), y = rng_next(&b), z = rng_next(&c);
        same &= x == y;
        differ += x != z;
    }
    CHECK(same, "same key, different numbers");
    CHECK(differ > 95, "neighbouring keys give similar numbers");
    int counts[10] = {0}, in_range = 1;
    for (int i = 0; i < 100000; i++) {
        uint32_t v = rng_below(&a, 10);
        float f = rng_float(&a);
        double d = rng_double(&a);
        in_range &= v < 10 && f >= 0 && f < 1 && d >= 0 && d < 1;
        if (v < 10) counts[v]++;
    }
    CHECK(in_range, "out of range draw");
    for (int k = 0; k < 10; k++) CHECK(counts[k] > 9500 && counts[k] < 10500, "rng_below(10) bucket %d has %d", k, counts[k]);
    int lo = 0, hi = 0;
    for (int i = 0; i < 1000; i++) {
        int v = rng_range(&a, -2, 2);
        lo |= v == -2;
        hi |= v == 2;
        CHECK(v >= -2 && v <= 2, "rng_range gave %d", v);
    }
    CHECK(lo && hi, "rng_range never reached its ends");
}

static void test_order(void) {
    current = "order";
    Order o;
    order_init(&o, 13, 5, RNG_ORDER_LABELED);
    int perm_ok = 1, epochs_differ = 0;
    for (uint64_t epoch = 0; epoch < 4; epoch++) {
        int seen[13] = {0};
        for (uint64_t i = 0; i < 13; i++) seen[order_at(&o, epoch * 13 + i)]++;
        for (int k = 0; k < 13; k++) perm_ok &= seen[k] == 1;
    }
    CHECK(perm_ok, "an epoch is not a permutation");
    for (uint64_t i = 0; i < 13; i++) epochs_differ += order_at(&o, i) != order_at(&o, 13 + i);
    CHECK(epochs_differ > 0, "two epochs have the same order");
    /* Random access gives the same as sequential access (what resuming relies on). */
    uint32_t a = order_at(&o, 40), b;
    Order p;
    order_init(&p, 13, 5, RNG_ORDER_LABELED);
    b = order_at(&p, 40);
    CHECK(a == b, "order_at depends on history");
    order_free(&o);
    order_free(&p);
}

static void test_schedule(void) {
    current = "schedule";
    CHECK(fabs(sched_warmup(0, 10) - 0.1) < 1e-12, "warmup(0,10)");
    CHECK(sched_warmup(9, 10) == 1 && sched_warmup(50, 10) == 1 && sched_warmup(0, 0) == 1, "warmup end");
    CHECK(sched_cosine(10, 10, 110, 1) == 1, "cosine at W");
    CHECK(fabs(sched_cosine(60, 10, 110, 1) - 0.5) < 1e-12, "cosine midpoint");
    CHECK(sched_cosine(60, 10, 110, 0) == 1, "cosine off");
    CHECK(sched_cosine(5, 10, 10, 1) == 1, "cosine with T = W");
    CHECK(sched_lr_student(MPLC_STUDENT_WAIT_STEPS - 1, 300, MPLC_STUDENT_WAIT_STEPS) == 0, "student waits");
    CHECK(sched_lr_student(MPLC_STUDENT_WAIT_STEPS, 300, MPLC_STUDENT_WAIT_STEPS) > 0, "student starts");
    double want = MPLC_STUDENT_LR * sched_warmup(0, MPLC_STUDENT_WARMUP_STEPS);
    CHECK(fabs(sched_lr_student(MPLC_STUDENT_WAIT_STEPS, 300, MPLC_STUDENT_WAIT_STEPS) - want) < 1e-12,
          "student warm-up restarts after the wait");
    CHECK(sched_uda_weight(0) == 0 && fabs(sched_uda_weight(MPLC_UDA_RAMP_STEPS / 2) - MPLC_UDA_WEIGHT / 2) < 1e-12 &&
              sched_uda_weight(10 * MPLC_UDA_RAMP_STEPS) == MPLC_UDA_WEIGHT,
          "uda ramp");
    double lr = sched_lr_teacher(MPLC_TEACHER_WARMUP_STEPS - 1, 300);
    CHECK(fabs(lr - MPLC_TEACHER_LR) < 1e-12, "teacher lr at the end of warm-up is %g", lr);
}

/* The progress line (report.c): its fields fit the terminal's width, least important dropped first; the ETA's
 * rate is the recent one. */
static void test_progress(void) {
    current = "progress";
    const ProgressField f[] = {{"[mpl] 10/100", 0, 0}, {"loss 1.5", 0, 6}, {"h 0.25", 0, 6},
                               {"test@10 T 50.00% S 40.00%", 1, 3}, {"10%", 2, 1}, {"ETA 0:09", 2, 2},
                               {"elapsed 0:01", 2, 4}, {"10.0 steps/s", 2, 5}};
    const int n = (int)(sizeof f / sizeof *f);
    char out[256];
    const char *all =
        "[mpl] 10/100 loss 1.5 h 0.25 | test@10 T 50.00% S 40.00% | 10% ETA 0:09 elapsed 0:01 10.0 steps/s";
    size_t len = progress_layout(out, sizeof out, f, n, 0);
    CHECK(strcmp(out, all) == 0 && len == strlen(all), "no limit: '%s'", out);
    progress_layout(out, sizeof out, f, n, (int)strlen(all));
    CHECK(strcmp(out, all) == 0, "exact width: '%s'", out);
    progress_layout(out, sizeof out, f, n, (int)strlen(all) - 1);
    CHECK(strcmp(out, "[mpl] 10/100 loss 1.5 | test@10 T 50.00% S 40.00% | 10% ETA 0:09 elapsed 0:01 10.0 steps/s") ==
              0, "one column less drops the last step output: '%s'", out);
    progress_layout(out, sizeof out, f, n, 60);
    CHECK(strcmp(out, "[mpl] 10/100 | test@10 T 50.00% S 40.00% | 10% ETA 0:09") == 0, "60 columns: '%s'", out);
    len = progress_layout(out, sizeof out, f, n, 30);
    CHECK(strcmp(out, "[mpl] 10/100 | 10% ETA 0:09") == 0 && len <= 30, "30 columns: '%s'", out);
    progress_layout(out, sizeof out, f, n, 5);
    CHECK(strcmp(out, "[mpl]") == 0, "5 columns cut the step: '%s'", out);
    progress_layout(out, 8, f, n, 0);
    CHECK(strlen(out) < 8, "the buffer's capacity holds: '%s'", out);

    RateWindow w = {0};
    CHECK(rate_window_rate(&w, 5, 10) == 0, "no sample, no rate");
    rate_window_add(&w, 0, 0);
    for (int s = 1; s <= 10; s++) rate_window_add(&w, 10.0 * s, s); /* a slow start: 0.1 steps/s for 100 s */
    for (int s = 1; s <= 20; s++) rate_window_add(&w, 100 + s, 10 + 100L * s); /* then 100 steps/s */
    double r = rate_window_rate(&w, 120, 2010);
    CHECK(fabs(r - 100) < 1e-9, "the rate of the last seconds, not the run's mean (%.3f vs 16.5)", r);
    rate_window_add(&w, 120.5, 2060);
    CHECK(w.t[(w.next + RATE_WINDOW - 1) % RATE_WINDOW] == 120,
          "a sample less than a second after the last is not kept");
}

/* ---------------------------------------------------------------- IDX */

static void test_idx(void) {
    current = "idx";
    Err e;
    IdxArray a;
    uint32_t dims[3] = {5, 4, 3};
    size_t len;
    unsigned char *good = make_idx(IDX_MAGIC_IMAGES, dims, 3, 60, &len);
    write_bytes(tpath("good.idx"), good, len);
    write_gz(tpath("good.idx.gz"), good, len);
    const char *names[2] = {"good.idx", "good.idx.gz"};
    for (int k = 0; k < 2; k++) {
        int rc = idx_read(tpath(names[k]), IDX_MAGIC_IMAGES, &a, &e);
        CHECK(rc == 0, "%s: %s", names[k], e.msg);
        if (rc == 0) {
            CHECK(a.ndim == 3 && a.dims[0] == 5 && a.dims[1] == 4 && a.dims[2] == 3 && a.count == 60, "dims");
            CHECK(memcmp(a.data, good + 16, 60) == 0, "%s: data differs", names[k]);
            idx_free(&a);
        }
    }
    /* truncated data, plain and compressed */
    write_bytes(tpath("trunc.idx"), good, len - 7);
    write_gz(tpath("trunc.idx.gz"), good, len - 7);
    CHECK_FAILS(idx_read(tpath("trunc.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "truncated");
    CHECK_FAILS(idx_read(tpath("trunc.idx.gz"), IDX_MAGIC_IMAGES, &a, &e), e, "truncated");
    /* a truncated gzip stream (the compressed bytes cut in the middle) */
    {
        FILE *fp = fopen(tpath("good.idx.gz"), "rb");
        unsigned char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        write_bytes(tpath("cutgz.idx.gz"), buf, n - 12);
        CHECK_FAILS(idx_read(tpath("cutgz.idx.gz"), IDX_MAGIC_IMAGES, &a, &e), e, "cutgz.idx.gz");
        /* corrupt deflate data after a valid gzip header */
        for (size_t i = 12; i < n - 8; i++) buf[i] ^= 0x5A;
        write_bytes(tpath("corrupt.idx.gz"), buf, n);
        CHECK_FAILS(idx_read(tpath("corrupt.idx.gz"), IDX_MAGIC_IMAGES, &a, &e), e, "corrupt.idx.gz");
    }
    /* header only, or not even that */
    write_bytes(tpath("short.idx"), good, 6);
    CHECK_FAILS(idx_read(tpath("short.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "truncated");
    write_bytes(tpath("empty.idx"), good, 0);
    CHECK_FAILS(idx_read(tpath("empty.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "truncated");
    /* wrong magic: a label file read as images */
    CHECK_FAILS(idx_read(tpath("good.idx"), IDX_MAGIC_LABELS, &a, &e), e, "wrong magic");
    /* lying dimensions: more announced than present, or less */
    uint32_t lie[3] = {500, 4, 3};
    unsigned char *b = make_idx(IDX_MAGIC_IMAGES, lie, 3, 60, &len);
    write_gz(tpath("lie.idx.gz"), b, len);
    CHECK_FAILS(idx_read(tpath("lie.idx.gz"), IDX_MAGIC_IMAGES, &a, &e), e, "truncated");
    free(b);
    uint32_t small[3] = {2, 4, 3};
    b = make_idx(IDX_MAGIC_IMAGES, small, 3, 60, &len);
    write_bytes(tpath("extra.idx"), b, len);
    CHECK_FAILS(idx_read(tpath("extra.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "unexpected data");
    free(b);
    /* dimensions whose product overflows size_t, and a huge but representable size with no data */
    uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    b = make_idx(IDX_MAGIC_IMAGES, huge, 3, 10, &len);
    write_bytes(tpath("overflow.idx"), b, len);
    CHECK_FAILS(idx_read(tpath("overflow.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "overflow");
    free(b);
    uint32_t big[3] = {0x7FFFFFFFu, 28, 28}; /* 1.7 TB: more than the memory budget, refused before reading */
    b = make_idx(IDX_MAGIC_IMAGES, big, 3, 10, &len);
    write_bytes(tpath("big.idx"), b, len);
    CHECK_FAILS(idx_read(tpath("big.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "need 1683627179248 bytes");
    free(b);
    uint32_t zero[3] = {0, 28, 28};
    b = make_idx(IDX_MAGIC_IMAGES, zero, 3, 0, &len);
    write_bytes(tpath("zero.idx"), b, len);
    CHECK_FAILS(idx_read(tpath("zero.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "empty");
    free(b);
    CHECK_FAILS(idx_read(tpath("missing.idx"), IDX_MAGIC_IMAGES, &a, &e), e, "cannot open");
    /* labels */
    uint32_t ldims[1] = {60};
    b = make_idx(IDX_MAGIC_LABELS, ldims, 1, 60, &len);
    write_gz(tpath("labels.idx.gz"), b, len);
    CHECK(idx_read(tpath("labels.idx.gz"), IDX_MAGIC_LABELS, &a, &e) == 0 && a.count == 60, "labels: %s", e.msg);
    idx_free(&a);
    free(b);
    free(good);
}

/* ---------------------------------------------------------------- NPY */

static void write_npy_raw(const char *name, int major, const char *dict, const void *data, size_t n) {
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12, total = pre + dl + 1;
    size_t pad = (64 - total % 64) % 64, hlen = dl + pad + 1;
    unsigned char *buf = xmalloc(pre + hlen + n);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)hlen, buf[9] = (unsigned char)(hlen >> 8);
    } else {
        buf[8] = (unsigned char)hlen, buf[9] = (unsigned char)(hlen >> 8), buf[10] = buf[11] = 0;
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', pad);
    buf[pre + dl + pad] = '\n';
    memcpy(buf + pre + hlen, data, n);
    write_bytes(tpath(name), buf, pre + hlen + n);
    free(buf);
}

static void test_npy(void) {
    current = "npy";
    Err e;
    NpyArray a;
    float f[6] = {1, -2, 3.5f, 4, 5, 6};
    size_t shape[2] = {2, 3};
    CHECK(npy_write(tpath("f.npy"), NPY_F4, 2, shape, f, &e) == 0, "write: %s", e.msg);
    int rc = npy_read(tpath("f.npy"), &a, &e);
    CHECK(rc == 0, "read f.npy: %s", e.msg);
    if (rc == 0) {
        CHECK(a.type == NPY_F4 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6, "f.npy header");
        CHECK(memcmp(a.data, f, sizeof f) == 0, "f.npy data");
        npy_free(&a);
    }
    /* hand-written headers: version 2, double quotes, Python-2 longs, no trailing comma */
    uint8_t u[4] = {0, 1, 2, 255};
    write_npy_raw("u1.npy", 2, "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (4L,)}", u, 4);
    rc = npy_read(tpath("u1.npy"), &a, &e);
    CHECK(rc == 0 && a.type == NPY_U1 && a.ndim == 1 && a.shape[0] == 4 && npy_int_at(&a, 3) == 255, "u1.npy: %s", e.msg);
    if (rc == 0) npy_free(&a);
    int32_t i4[3] = {7, -1, 9};
    write_npy_raw("i4.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", i4, sizeof i4);
    rc = npy_read(tpath("i4.npy"), &a, &e);
    CHECK(rc == 0 && a.type == NPY_I4 && npy_int_at(&a, 1) == -1, "i4.npy: %s", e.msg);
    if (rc == 0) npy_free(&a);
    int64_t i8[2] = {5, 1LL << 40};
    size_t s1[1] = {2};
    CHECK(npy_write(tpath("i8.npy"), NPY_I8, 1, s1, i8, &e) == 0, "write i8");
    rc = npy_read(tpath("i8.npy"), &a, &e);
    CHECK(rc == 0 && a.type == NPY_I8 && npy_int_at(&a, 1) == (1LL << 40), "i8.npy: %s", e.msg);
    if (rc == 0) npy_free(&a);
    float scalar = 2.5f;
    CHECK(npy_write(tpath("s.npy"), NPY_F4, 0, NULL, &scalar, &e) == 0, "write scalar");
    rc = npy_read(tpath("s.npy"), &a, &e);
    CHECK(rc == 0 && a.ndim == 0 && a.count == 1 && ((float *)a.data)[0] == 2.5f, "0-d: %s", e.msg);
    if (rc == 0) npy_free(&a);
    /* bad files */
    write_bytes(tpath("magic.npy"), "\x93NUMPX\x01\x00\x10\x00{}", 12);
    CHECK_FAILS(npy_read(tpath("magic.npy"), &a, &e), e, "wrong magic");
    write_npy_raw("trunc.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, 20);
    CHECK_FAILS(npy_read(tpath("trunc.npy"), &a, &e), e, "truncated");
    write_npy_raw("extra.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f, 24);
    CHECK_FAILS(npy_read(tpath("extra.npy"), &a, &e), e, "unexpected data");
    write_npy_raw("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", f, 24);
    CHECK_FAILS(npy_read(tpath("be.npy"), &a, &e), e, "unsupported dtype");
    write_npy_raw("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f, 24);
    CHECK_FAILS(npy_read(tpath("f8.npy"), &a, &e), e, "unsupported dtype");
    write_npy_raw("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, 24);
    CHECK_FAILS(npy_read(tpath("fortran.npy"), &a, &e), e, "Fortran");
    write_npy_raw("ovf.npy", 1,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", f, 24);
    CHECK_FAILS(npy_read(tpath("ovf.npy"), &a, &e), e, "overflow");
    write_npy_raw("ovf2.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", f, 24);
    CHECK_FAILS(npy_read(tpath("ovf2.npy"), &a, &e), e, "overflow");
    write_npy_raw("lie.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", f, 24);
    CHECK_FAILS(npy_read(tpath("lie.npy"), &a, &e), e, "truncated");
    write_npy_raw("nokey.npy", 1, "{'descr': '<f4', 'shape': (6,), }", f, 24);
    CHECK_FAILS(npy_read(tpath("nokey.npy"), &a, &e), e, "missing 'fortran_order'");
    write_npy_raw("junk.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': [6], }", f, 24);
    CHECK_FAILS(npy_read(tpath("junk.npy"), &a, &e), e, "bad header");
    /* header length pointing past the end of the file */
    write_bytes(tpath("hlen.npy"), "\x93NUMPY\x01\x00\xff\x7f{'descr'", 17);
    CHECK_FAILS(npy_read(tpath("hlen.npy"), &a, &e), e, "truncated");
    write_bytes(tpath("ver.npy"), "\x93NUMPY\x09\x00\x10\x00{}", 12);
    CHECK_FAILS(npy_read(tpath("ver.npy"), &a, &e), e, "version");
}

/* ---------------------------------------------------------------- JSON */

static void test_json(void) {
    current = "json";
    Err e;
    JsonValue v;
    const char *good = " {\"a\": [1, 2.5, -3e2, true, false, null], \"b\\u00e9\\n\": {\"c\": \"x\\\"y\"}, \"n\": 18446744073709551615} ";
    int rc = json_parse(good, strlen(good), &v, &e);
    CHECK(rc == 0, "parse: %s", e.msg);
    if (rc == 0) {
        const JsonValue *arr = json_get(&v, "a");
        CHECK(arr && arr->type == JSON_ARRAY && arr->len == 6 && arr->items[0].is_uint && arr->items[0].uint == 1 &&
                  arr->items[1].number == 2.5 && !arr->items[1].is_uint && arr->items[2].number == -300 &&
                  arr->items[3].boolean && arr->items[5].type == JSON_NULL,
              "array contents");
        const JsonValue *b = json_get(&v, "b\xc3\xa9\n");
        CHECK(b && json_get(b, "c") && strcmp(json_get(b, "c")->string, "x\"y") == 0, "escapes");
        const JsonValue *n = json_get(&v, "n");
        CHECK(n && n->is_uint && n->uint == UINT64_MAX, "uint64 max");
        json_free(&v);
    }
    const char *bad[] = {"{\"a\":1,}", "{\"a\" 1}", "[1 2]", "{\"a\":1}x", "\"abc", "{\"a\":1,\"a\":2}", "[01x]", "tru", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(json_parse(bad[i], strlen(bad[i]), &v, &e) != 0, "accepted bad JSON %s", bad[i]);
    char deep[300];
    memset(deep, '[', sizeof deep);
    CHECK_FAILS(json_parse(deep, sizeof deep, &v, &e), e, "deeply");
}

/* ---------------------------------------------------------------- safetensors */

static float *random_state(uint64_t seed) {
    float *s = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    Rng r;
    rng_init(&r, seed, 99, 0);
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        for (size_t k = 0; k < t->count; k++) s[t->offset + k] = (float)(rng_double(&r) - 0.5);
    }
    return s;
}

/* Writes a safetensors file with the given header text and `data` bytes of payload. */
static void write_st(const char *name, const char *header, size_t data, size_t claimed_len) {
    size_t hl = strlen(header);
    size_t n = 8 + hl + data;
    unsigned char *b = xcalloc(n, 1);
    uint64_t len = claimed_len ? claimed_len : hl;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
    memcpy(b + 8, header, hl);
    write_bytes(tpath(name), b, n);
    free(b);
}

/* A header for the fake model's state with one entry replaced by `override` (or appended). */
static char *fake_header(const char *which, const char *override_entry, const char *meta) {
    static char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof buf, "{%s", meta ? meta : "");
    size_t begin = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (i || meta) buf[n++] = ',';
        if (which && strcmp(which, t->name) == 0) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", override_entry);
        } else if (t->rank == 2) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                  t->name, t->shape[0], t->shape[1], begin, begin + 4 * t->count);
        } else {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                  t->name, t->shape[0], begin, begin + 4 * t->count);
        }
        begin += 4 * t->count;
    }
    snprintf(buf + n, sizeof buf - n, "}");
    return buf;
}

static void test_safetensors(void) {
    current = "safetensors";
    Err e;
    float *s = random_state(1), *back = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    StMeta *m = xmalloc(sizeof *m), *m2 = xmalloc(sizeof *m2);
    meta_clear(m);
    meta_set(m, "step", "%d", 17);
    meta_set(m, "quote", "a \"b\" \\ c\n");
    CHECK(st_save(tpath("rt.safetensors"), s, m, &e) == 0, "save: %s", e.msg);
    CHECK(!file_exists(tpath("rt.safetensors.tmp")), "temporary file left behind");
    int rc = st_load(tpath("rt.safetensors"), back, m2, &e);
    CHECK(rc == 0, "load: %s", e.msg);
    CHECK(memcmp(s, back, sizeof(float) * MPLC_STATE_FLOATS) == 0, "state differs after a round trip");
    CHECK(meta_get(m2, "step") && strcmp(meta_get(m2, "step"), "17") == 0, "metadata step");
    CHECK(meta_get(m2, "quote") && strcmp(meta_get(m2, "quote"), "a \"b\" \\ c\n") == 0, "metadata escapes");
    /* layout: 8-byte length, header padded to 8 bytes, data size = 4 x state floats */
    FILE *fp = fopen(tpath("rt.safetensors"), "rb");
    unsigned char len8[8];
    CHECK(fp && fread(len8, 1, 8, fp) == 8, "read length");
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)len8[i] << (8 * i);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    CHECK(hl % 8 == 0 && (uint64_t)size == 8 + hl + 4 * (uint64_t)MPLC_STATE_FLOATS, "layout: header %llu, size %ld",
          (unsigned long long)hl, size);
    /* saving again over an existing file works (rename replaces it) */
    CHECK(st_save(tpath("rt.safetensors"), back, NULL, &e) == 0, "overwrite: %s", e.msg);

    size_t data = 4 * (size_t)MPLC_STATE_FLOATS;
    write_st("ok.safetensors", fake_header(NULL, NULL, "\"__metadata__\":{\"k\":\"v\"}"), data, 0);
    CHECK(st_load(tpath("ok.safetensors"), back, m2, &e) == 0, "hand-made header: %s", e.msg);
    write_st("tiny.safetensors", "", 0, 0);
    CHECK_FAILS(st_load(tpath("tiny.safetensors"), back, NULL, &e), e, "bad header length");
    write_bytes(tpath("short.safetensors"), "\x10\0\0", 3);
    CHECK_FAILS(st_load(tpath("short.safetensors"), back, NULL, &e), e, "too short");
    write_st("hugelen.safetensors", "{}", 0, (size_t)1 << 40);
    CHECK_FAILS(st_load(tpath("hugelen.safetensors"), back, NULL, &e), e, "bad header length");
    write_st("pastend.safetensors", "{}", 0, 100);
    CHECK_FAILS(st_load(tpath("pastend.safetensors"), back, NULL, &e), e, "bad header length");
    write_st("notjson.safetensors", "{\"a\":", 0, 0);
    CHECK_FAILS(st_load(tpath("notjson.safetensors"), back, NULL, &e), e, "not valid JSON");
    write_st("array.safetensors", "[1,2]", 0, 0);
    CHECK_FAILS(st_load(tpath("array.safetensors"), back, NULL, &e), e, "not a JSON object");
    write_st("dtype.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[62760,62800]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("dtype.safetensors"), back, NULL, &e), e, "dtype F16");
    write_st("shape.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[5,2],\"data_offsets\":[62760,62800]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("shape.safetensors"), back, NULL, &e), e, "has shape [5,2], model fake_linear expects [10]");
    write_st("unknown.safetensors",
             fake_header("student/dense1/bias", "\"student/dense9/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[62760,62800]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("unknown.safetensors"), back, NULL, &e), e, "not a state tensor");
    write_st("range.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[62760,999999]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("range.safetensors"), back, NULL, &e), e, "outside");
    write_st("overlap.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,40]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("overlap.safetensors"), back, NULL, &e), e, "overlaps");
    write_st("span.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[62760,62796]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("span.safetensors"), back, NULL, &e), e, "needs 40");
    write_st("negative.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[-4,36]}", NULL),
             data, 0);
    CHECK_FAILS(st_load(tpath("negative.safetensors"), back, NULL, &e), e, "bad data_offsets");
    write_st("trunc.safetensors", fake_header(NULL, NULL, NULL), data - 4, 0);
    CHECK_FAILS(st_load(tpath("trunc.safetensors"), back, NULL, &e), e, "outside");
    write_st("extra.safetensors", fake_header(NULL, NULL, NULL), data + 4, 0);
    CHECK_FAILS(st_load(tpath("extra.safetensors"), back, NULL, &e), e, "data section");
    write_st("meta.safetensors", fake_header(NULL, NULL, "\"__metadata__\":{\"step\":3}"), data, 0);
    CHECK_FAILS(st_load(tpath("meta.safetensors"), back, NULL, &e), e, "not a string");
    /* a missing tensor: drop the last entry from a good header */
    {
        char *h = fake_header(NULL, NULL, NULL);
        char *last = strstr(h, ",\"student_momentum/dense1/bias\"");
        strcpy(last, "}");
        write_st("missing.safetensors", h, data - 40, 0);
        CHECK_FAILS(st_load(tpath("missing.safetensors"), back, NULL, &e), e, "is missing");
    }
    CHECK_FAILS(st_load(tpath("nothing.safetensors"), back, NULL, &e), e, "cannot open");
    free(s);
    free(back);
    free(m);
    free(m2);
}

/* ---------------------------------------------------------------- checkpoint integrity (issue 15) */

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    rewind(fp);
    unsigned char *b = xmalloc(*len);
    if (fread(b, 1, *len, fp) != *len) exit(2);
    fclose(fp);
    return b;
}

/* The offset of a tensor's data in a file written by st_save (the data section follows the header). */
static size_t data_offset(const unsigned char *b, const char *name) {
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
    return 8 + (size_t)hl + 4 * table_find(&TABLE_STATE, name)->offset; /* the runner writes table order */
}

/* Every way a checkpoint's contents can lie that the safetensors layout alone does not catch: a flipped bit,
 * two same-size tensors swapped (their bytes or their offsets), a NaN or Inf, invalid UTF-8, a directory, a
 * file much larger than the model. Each loaded without complaint before the checksum and the checks. */
static void test_checkpoint_integrity(void) {
    current = "checkpoint integrity";
    Err e;
    float *s = random_state(5), *back = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    StMeta *m = xmalloc(sizeof *m);
    meta_clear(m);
    meta_set(m, "step", "3");
    CHECK(st_save(tpath("good.safetensors"), s, m, &e) == 0, "save: %s", e.msg);
    CHECK(st_load(tpath("good.safetensors"), back, m, &e) == 0, "load: %s", e.msg);
    CHECK(meta_get(m, ST_CRC_KEY) && strlen(meta_get(m, ST_CRC_KEY)) == 8, "the checkpoint has no " ST_CRC_KEY);
    size_t len;
    unsigned char *good = read_all(tpath("good.safetensors"), &len), *b = xmalloc(len);
    /* one flipped mantissa bit */
    memcpy(b, good, len);
    b[data_offset(b, "student/dense1/weight") + 4 * 1000] ^= 0x02;
    write_bytes(tpath("flip.safetensors"), b, len);
    CHECK_FAILS(st_load(tpath("flip.safetensors"), back, NULL, &e), e, "does not match its checksum");
    /* the bytes of two tensors of the same size swapped (the teacher's and the student's bias) */
    const size_t tb = data_offset(good, "teacher/dense2/bias"), sb = data_offset(good, "student/dense1/bias");
    memcpy(b, good, len);
    memcpy(b + tb, good + sb, 40);
    memcpy(b + sb, good + tb, 40);
    write_bytes(tpath("swap-bytes.safetensors"), b, len);
    CHECK_FAILS(st_load(tpath("swap-bytes.safetensors"), back, NULL, &e), e, "does not match its checksum");
    /* or their data_offsets swapped in the header (same length: the data section is untouched) */
    {
        char t_off[64], s_off[64];
        size_t t_begin = 4 * table_find(&TABLE_STATE, "teacher/dense2/bias")->offset,
               s_begin = 4 * table_find(&TABLE_STATE, "student/dense1/bias")->offset;
        snprintf(t_off, sizeof t_off, "[%zu,%zu]", t_begin, t_begin + 40);
        snprintf(s_off, sizeof s_off, "[%zu,%zu]", s_begin, s_begin + 40);
        memcpy(b, good, len);
        char *h = (char *)b + 8, *pt = strstr(h, t_off), *ps = strstr(h, s_off);
        CHECK(pt && ps && strlen(t_off) == strlen(s_off), "offsets %s and %s not found in the header", t_off, s_off);
        if (pt && ps && strlen(t_off) == strlen(s_off)) {
            memcpy(pt, s_off, strlen(s_off));
            memcpy(ps, t_off, strlen(t_off));
            write_bytes(tpath("swap-offsets.safetensors"), b, len);
            CHECK_FAILS(st_load(tpath("swap-offsets.safetensors"), back, NULL, &e), e, "does not match its checksum");
        }
    }
    /* an Inf weight in a file whose checksum is right: refused, naming the tensor and the element */
    s[table_find(&TABLE_STATE, "student/dense1/weight")->offset + 7] = INFINITY;
    CHECK(st_save(tpath("inf.safetensors"), s, NULL, &e) == 0, "save: %s", e.msg);
    CHECK_FAILS(st_load(tpath("inf.safetensors"), back, NULL, &e), e,
                "tensor \"student/dense1/weight\" is not finite (element 7 is inf)");
    s[table_find(&TABLE_STATE, "student/dense1/weight")->offset + 7] = 0.5f;
    float *ema = random_state(6), *ema_back = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    ema[table_find(&TABLE_STATE, "student/dense1/bias")->offset + 2] = NAN;
    int has_ema;
    CHECK(st_save_ema(tpath("nan-ema.safetensors"), s, ema, NULL, &e) == 0, "save: %s", e.msg);
    CHECK_FAILS(st_load_ema(tpath("nan-ema.safetensors"), back, ema_back, &has_ema, NULL, &e), e,
                "tensor \"ema/student/dense1/bias\" is not finite (element 2");
    CHECK_FAILS(st_load(tpath("nan-ema.safetensors"), back, NULL, &e), e, "ema/student/dense1/bias\" is not finite");
    free(ema);
    free(ema_back);
    /* invalid UTF-8 in the header (a metadata value), and a lone surrogate escape */
    size_t data = 4 * (size_t)MPLC_STATE_FLOATS;
    write_st("utf8.safetensors", fake_header(NULL, NULL, "\"__metadata__\":{\"k\":\"\xc0\xaf\"}"), data, 0);
    CHECK_FAILS(st_load(tpath("utf8.safetensors"), back, NULL, &e), e, "invalid UTF-8");
    write_st("surrogate.safetensors", fake_header(NULL, NULL, "\"__metadata__\":{\"k\":\"\\ud800\"}"), data, 0);
    CHECK_FAILS(st_load(tpath("surrogate.safetensors"), back, NULL, &e), e, "unpaired surrogate");
    /* not a regular file: refused from fstat, nothing read */
    CHECK_FAILS(st_load(tmpdir, back, NULL, &e), e, "not a regular file (a directory)");
    /* a valid checkpoint followed by a 3 GB hole: refused from its size, without reading it */
    write_bytes(tpath("huge.safetensors"), good, len);
    CHECK(truncate(tpath("huge.safetensors"), (off_t)3 << 30) == 0, "truncate");
    double t0 = now_seconds();
    CHECK_FAILS(st_load(tpath("huge.safetensors"), back, NULL, &e), e,
                "3221225472 bytes, more than a checkpoint of model fake_linear can have");
    CHECK(now_seconds() - t0 < 0.5, "refusing a 3 GB file took %.1f s (was it read?)", now_seconds() - t0);
    unlink(tpath("huge.safetensors"));
    /* a few bytes too many or too few: refused before the data is read */
    write_bytes(tpath("long.safetensors"), good, len);
    CHECK(truncate(tpath("long.safetensors"), (off_t)len + 4) == 0, "truncate");
    CHECK_FAILS(st_load(tpath("long.safetensors"), back, NULL, &e), e, "the data section has");
    write_bytes(tpath("short.safetensors"), good, len - 4);
    CHECK_FAILS(st_load(tpath("short.safetensors"), back, NULL, &e), e, "outside");
    /* a checksum that is not one */
    meta_clear(m);
    write_st("badcrc.safetensors", fake_header(NULL, NULL, "\"__metadata__\":{\"" ST_CRC_KEY "\":\"zz\"}"), data, 0);
    CHECK_FAILS(st_load(tpath("badcrc.safetensors"), back, NULL, &e), e, "does not match its checksum");
    free(good);
    free(b);
    free(s);
    free(back);
    free(m);
}

/* ---------------------------------------------------------------- resume identity and --init-from (issue 15) */

static void test_recipe_identity(void) {
    current = "recipe identity";
    char out[256];
    recipe_diff("batch_labeled=32;batch_unlabeled=128;teacher_lr=0.05;seed=0", "batch_labeled=64;batch_unlabeled=256;teacher_lr=0.1;seed=0",
                out, sizeof out);
    CHECK(strcmp(out, "batch_labeled 32 -> 64, batch_unlabeled 128 -> 256, teacher_lr 0.05 -> 0.1") == 0, "diff: '%s'", out);
    recipe_diff(MPLC_RECIPE, MPLC_RECIPE, out, sizeof out);
    CHECK(out[0] == '\0', "a recipe differs from itself: '%s'", out);
    recipe_diff("a=1;b=2", "a=1;c=3", out, sizeof out);
    CHECK(strcmp(out, "b 2 -> (none), c (none) -> 3") == 0, "keys in one recipe only: '%s'", out);
    recipe_diff("a=1", "a=10", out, 12);
    CHECK(strcmp(out, "a 1 -> 10") == 0, "a value that is a prefix of the other: '%s'", out);

    /* --init-from: the teacher's and student's tensors by name, momenta zero whatever the file holds */
    Err e;
    float *src = random_state(21);
    CHECK(st_save(tpath("init.safetensors"), src, NULL, &e) == 0, "save: %s", e.msg);
    Trainer *T = xcalloc(1, sizeof *T);
    T->state = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    init_state(T->state, 3);
    T->cfg.init_from = tpath("init.safetensors");
    CHECK(checkpoint_init_from(T, &e) == 0, "init-from: %s", e.msg);
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        int param = starts_with(t->name, "teacher/") || starts_with(t->name, "student/");
        size_t differ = 0;
        for (size_t k = t->offset; k < t->offset + t->count; k++) differ += T->state[k] != (param ? src[k] : 0.0f);
        CHECK(differ == 0, "%s: %zu floats are not %s", t->name, differ, param ? "the file's" : "zero");
    }
    CHECK(strcmp(T->init_from, tpath("init.safetensors")) == 0, "the run does not record where it started from");
    /* a file of another architecture: refused naming the tensor and both shapes */
    write_st("wide.safetensors",
             fake_header("student/dense1/bias", "\"student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[20],\"data_offsets\":[62760,62840]}",
                         NULL),
             4 * (size_t)MPLC_STATE_FLOATS + 40, 0);
    T->cfg.init_from = tpath("wide.safetensors");
    CHECK_FAILS(checkpoint_init_from(T, &e), e, "--init-from: ");
    CHECK(strstr(e.msg, "wide.safetensors: tensor \"student/dense1/bias\" has shape [20], model fake_linear expects [10]"),
          "message: %s", e.msg);
    free(T->state);
    free(T);
    free(src);
}

/* ---------------------------------------------------------------- initialisation */

static void test_init(void) {
    current = "init";
    float *a = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *b = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    init_state(a, 3);
    init_state(b, 3);
    CHECK(memcmp(a, b, sizeof(float) * MPLC_STATE_FLOATS) == 0, "init is not deterministic");
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        const float *p = a + t->offset;
        double bound = t->is_weight ? sqrt(6.0 / t->fan_in) : 0, maxabs = 0;
        for (size_t k = 0; k < t->count; k++) maxabs = fmax(maxabs, fabs(p[k]));
        int param = starts_with(t->name, "teacher/") || starts_with(t->name, "student/");
        if (param && t->is_weight) CHECK(maxabs <= bound && maxabs > 0.9 * bound, "%s: max |w| %g, bound %g", t->name, maxabs, bound);
        else CHECK(maxabs == 0, "%s should start at zero", t->name);
    }
    CHECK(memcmp(a, a + mplc_state_tensors[2].offset, 100 * sizeof(float)) != 0, "teacher and student share weights");
    init_state(b, 4);
    CHECK(memcmp(a, b, sizeof(float) * MPLC_STATE_FLOATS) != 0, "seed does not matter");
    zero_state_prefix(a, "teacher/");
    CHECK(a[0] == 0 && a[mplc_state_tensors[2].offset] != 0, "zero_state_prefix");
    free(a);
    free(b);
}

/* ---------------------------------------------------------------- augmentation */

static void test_augment(void) {
    current = "augment";
    static const float LO = -0.81f, HI = 2.02f, MEAN = 0.0f;
    AugSpec s = {28, 28, 1, &LO, &HI, &MEAN, AUG_WEAK_SHIFT, 0, 1};
    float src[784], a[784], b[784], tmp[2 * 784];
    for (int i = 0; i < 784; i++) src[i] = LO;
    src[14 * 28 + 14] = HI; /* one bright pixel in the middle */
    Rng r1, r2;
    for (int trial = 0; trial < 50; trial++) {
        rng_init(&r1, 1, RNG_AUGMENT, (uint64_t)trial);
        rng_init(&r2, 1, RNG_AUGMENT, (uint64_t)trial);
        aug_weak(&s, src, a, &r1);
        aug_weak(&s, src, b, &r2);
        CHECK(memcmp(a, b, sizeof a) == 0, "weak view not deterministic");
        int bright = -1, others_lo = 1;
        for (int i = 0; i < 784; i++) {
            if (a[i] == HI) bright = i;
            else others_lo &= a[i] == LO;
        }
        CHECK(bright >= 0 && others_lo, "translation changed pixel values");
        if (bright >= 0) CHECK(abs(bright / 28 - 14) <= 2 && abs(bright % 28 - 14) <= 2, "moved more than 2 pixels");
    }
    /* every op keeps pixels finite and in range, at every magnitude */
    float img[784];
    Rng r;
    rng_init(&r, 9, 1, 1);
    for (int i = 0; i < 784; i++) img[i] = LO + (HI - LO) * (float)rng_double(&r) * (i % 3 ? 1.0f : 0.3f);
    for (int op = 0; op < AUG_NUM_OPS; op++)
        for (int k = 0; k <= 4; k++) {
            aug_apply_op(&s, op, k / 4.0, img, a, tmp, &r);
            int ok = 1;
            for (int i = 0; i < 784; i++) ok &= isfinite(a[i]) && a[i] >= LO - 1e-4f && a[i] <= HI + 1e-4f;
            CHECK(ok, "op %d at magnitude %d/4 leaves the pixel range", op, k);
        }
    aug_apply_op(&s, AUG_IDENTITY, 1, img, a, tmp, &r);
    CHECK(memcmp(a, img, sizeof a) == 0, "identity changed the image");
    aug_apply_op(&s, AUG_SOLARIZE, 1, img, a, tmp, &r);
    CHECK(fabsf(a[1] - (LO + HI - img[1])) < 1e-4f, "solarize at full magnitude does not invert");
    aug_apply_op(&s, AUG_ROTATE, 0, img, a, tmp, &r);
    float maxd = 0;
    for (int i = 0; i < 784; i++) maxd = fmaxf(maxd, fabsf(a[i] - img[i]));
    CHECK(maxd < 1e-4f, "rotation by 0 degrees changed the image by %g", maxd);
    /* the strong view is deterministic, differs from the input, and Cutout leaves a square of the mean */
    rng_init(&r1, 5, RNG_AUGMENT, 1);
    rng_init(&r2, 5, RNG_AUGMENT, 1);
    aug_strong(&s, img, a, tmp, &r1);
    aug_strong(&s, img, b, tmp, &r2);
    CHECK(memcmp(a, b, sizeof a) == 0, "strong view not deterministic");
    CHECK(memcmp(a, img, sizeof a) != 0, "strong view equals the input");
    memcpy(a, img, sizeof a);
    aug_cutout(&s, a, &r1);
    int filled = 0;
    for (int i = 0; i < 784; i++) filled += a[i] == MEAN;
    CHECK(filled >= 16 && filled <= 64, "cutout filled %d pixels", filled);
    /* --strong-magnitude: a smaller cap draws the same numbers (the same ops, signs and Cutout square, so the data
     * order after it is the same) and moves the image less on average; its ops at magnitude 0 change nothing that
     * has a magnitude (rotate, shear, translate, solarize, contrast, brightness, sharpness). */
    double moved[2] = {0, 0};
    for (int trial = 0; trial < 200; trial++)
        for (int k = 0; k < 2; k++) {
            AugSpec capped = s;
            capped.magnitude = k ? 0.25 : 1;
            rng_init(&r1, 7, RNG_AUGMENT, (uint64_t)trial);
            aug_strong(&capped, img, a, tmp, &r1);
            for (int i = 0; i < 784; i++) moved[k] += fabsf(a[i] - img[i]);
            if (k == 0) r2 = r1;
            else CHECK(rng_next(&r1) == rng_next(&r2), "trial %d: magnitude 0.25 drew other numbers than 1", trial);
        }
    CHECK(moved[1] < 0.75 * moved[0], "magnitude 0.25 moved the images by %g, magnitude 1 by %g", moved[1], moved[0]);
    for (int op = AUG_ROTATE; op <= AUG_SHARPNESS; op++) {
        if (op == AUG_POSTERIZE) continue; /* at magnitude 0 it still rounds to 8 bits */
        aug_apply_op(&s, op, 0, img, a, tmp, &r);
        maxd = 0;
        for (int i = 0; i < 784; i++) maxd = fmaxf(maxd, fabsf(a[i] - img[i]));
        CHECK(maxd < 1e-4f, "op %d at magnitude 0 changed the image by %g", op, maxd);
    }
}

/* ---------------------------------------------------------------- datasets */

/* Writes a small class-balanced dataset (n_train, n_test examples, 28x28) in the given format. */
static void write_dataset(const char *dir, const char *kind, size_t n_train, size_t n_test) {
    mkdir(dir, 0777);
    char path[1024];
    for (int split = 0; split < 2; split++) {
        size_t n = split ? n_test : n_train;
        uint8_t *x = xmalloc(n * 784), *y = xmalloc(n);
        for (size_t i = 0; i < n; i++) {
            y[i] = (uint8_t)(i % 10);
            for (int p = 0; p < 784; p++) x[i * 784 + p] = (uint8_t)((p / 28 < 3 * (int)y[i] + 2) ? 200 : (p * 13 + i) % 50);
        }
        if (strcmp(kind, "npy") == 0) {
            size_t xs[3] = {n, 28, 28}, ys[1] = {n};
            int64_t *y8 = xmalloc(n * 8);
            for (size_t i = 0; i < n; i++) y8[i] = y[i];
            Err e;
            snprintf(path, sizeof path, "%s/%s_x.npy", dir, split ? "test" : "train");
            npy_write(path, NPY_U1, 3, xs, x, &e);
            snprintf(path, sizeof path, "%s/%s_y.npy", dir, split ? "test" : "train");
            npy_write(path, NPY_I8, 1, ys, y8, &e);
            free(y8);
        } else {
            uint32_t dims[3] = {(uint32_t)n, 28, 28}, ldims[1] = {(uint32_t)n};
            if (strcmp(kind, "idx-wrongsize") == 0) dims[1] = dims[2] = 27;
            if (strcmp(kind, "idx-countmismatch") == 0) ldims[0] = (uint32_t)n - 1;
            if (strcmp(kind, "idx-badlabel") == 0) y[n / 2] = 10;
            size_t len, llen;
            unsigned char *im = make_idx(strcmp(kind, "idx-badmagic") == 0 ? 0x00000804u : IDX_MAGIC_IMAGES, dims, 3,
                                         (size_t)dims[0] * dims[1] * dims[2], &len);
            memcpy(im + 16, x, (size_t)dims[0] * dims[1] * dims[2] < n * 784 ? (size_t)dims[0] * dims[1] * dims[2] : n * 784);
            unsigned char *lb = make_idx(IDX_MAGIC_LABELS, ldims, 1, ldims[0], &llen);
            memcpy(lb + 8, y, ldims[0]);
            if (strcmp(kind, "idx-truncated") == 0) len -= 100;
            snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, split ? "t10k" : "train");
            write_gz(path, im, len);
            snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split ? "t10k" : "train"); /* not compressed */
            write_bytes(path, lb, llen);
            free(im);
            free(lb);
        }
        free(x);
        free(y);
    }
}

static void test_dataset(void) {
    current = "dataset";
    Err e;
    Dataset d;
    const char *kinds[2] = {"npy", "idx"};
    for (int k = 0; k < 2; k++) {
        const char *dir = tpath(kinds[k]);
        write_dataset(dir, kinds[k], 200, 50);
        int rc = dataset_load(dir, 1, 0, &d, &e);
        CHECK(rc == 0, "%s: %s", kinds[k], e.msg);
        if (rc != 0) continue;
        CHECK(d.train.n == 200 && d.test.n == 50 && d.train.y[13] == 3, "%s sizes", kinds[k]);
        CHECK(fabsf(d.train.x[0] - (float)((200 / 255.0 - FMNIST_MEAN) / FMNIST_STD)) < 1e-6f, "%s normalisation", kinds[k]);
        CHECK(d.lo[0] < d.mean[0] && d.mean[0] < d.hi[0], "%s pixel stats", kinds[k]);
        uint32_t *pick, *pick2;
        CHECK(dataset_pick_labeled(&d.train, 50, 7, &pick, &e) == 0, "pick: %s", e.msg);
        CHECK(dataset_pick_labeled(&d.train, 50, 7, &pick2, &e) == 0, "pick: %s", e.msg);
        int per[10] = {0}, distinct = 1;
        for (int i = 0; i < 50; i++) {
            per[d.train.y[pick[i]]]++;
            for (int j = 0; j < i; j++) distinct &= pick[i] != pick[j];
        }
        for (int c = 0; c < 10; c++) CHECK(per[c] == 5, "class %d has %d labeled examples", c, per[c]);
        CHECK(distinct, "an example was picked twice");
        CHECK(memcmp(pick, pick2, 50 * sizeof *pick) == 0, "the split is not deterministic");
        free(pick2);
        CHECK(dataset_pick_labeled(&d.train, 50, 8, &pick2, &e) == 0 && memcmp(pick, pick2, 50 * sizeof *pick) != 0,
              "the split ignores the seed");
        free(pick);
        free(pick2);
        CHECK_FAILS(dataset_pick_labeled(&d.train, 55, 7, &pick, &e), e, "multiple of the 10 classes");
        CHECK_FAILS(dataset_pick_labeled(&d.train, 1000, 7, &pick, &e), e, "larger than");
        CHECK_FAILS(dataset_pick_labeled(&d.train, 0, 7, &pick, &e), e, "positive multiple");
        dataset_free(&d);
    }
    const char *bad[][2] = {{"idx-badmagic", "wrong magic"}, {"idx-badlabel", "outside [0, 10)"},
                            {"idx-truncated", "truncated"}, {"idx-wrongsize", "expects 28x28"},
                            {"idx-countmismatch", "labels but"}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        const char *dir = tpath(bad[k][0]);
        write_dataset(dir, bad[k][0], 100, 20);
        CHECK_FAILS(dataset_load(dir, 1, 0, &d, &e), e, bad[k][1]);
        CHECK(strstr(e.msg, bad[k][0]) != NULL, "message does not name the file: %s", e.msg);
    }
    CHECK_FAILS(dataset_load(tpath("no-such-dir"), 1, 0, &d, &e), e, "missing file");
}

/* ---------------------------------------------------------------- memory budget of the data */

/* A gzip IDX of `images` 28x28 images: the header and then `zeros` zero bytes (all of them: a valid file). */
static void write_gz_idx_zeros(const char *path, uint32_t images, size_t zeros) {
    uint32_t dims[3] = {images, 28, 28};
    size_t len;
    unsigned char *h = make_idx(IDX_MAGIC_IMAGES, dims, 3, 0, &len);
    gzFile gz = gzopen(path, "wb9");
    static unsigned char z[1 << 20];
    if (!gz || gzwrite(gz, h, (unsigned)len) != (int)len) exit(2);
    for (size_t left = zeros; left > 0;) {
        unsigned n = left < sizeof z ? (unsigned)left : (unsigned)sizeof z;
        if (gzwrite(gz, z, n) != (int)n) exit(2);
        left -= n;
    }
    gzclose(gz);
    free(h);
}

/* The decompressed size of data counts in the memory budget before it is allocated or read (issue 15): a
 * header claiming more than MPLC_MEMORY_LIMIT is refused with the sizes, whatever the file holds after it. */
static void test_data_budget(void) {
    current = "data budget";
    Err e;
    uint64_t before = budget_planned();
    setenv("MPLC_MEMORY_LIMIT", "100000000", 1);
    /* IDX: a gzip header claiming a million images (the body is not read, so a few zeros suffice here;
     * run_tests.sh trains on a complete 784 MB stream) */
    IdxArray a;
    write_gz_idx_zeros(tpath("bomb.idx.gz"), 1000000, 4096);
    CHECK_FAILS(idx_read(tpath("bomb.idx.gz"), IDX_MAGIC_IMAGES, &a, &e), e,
                "bomb.idx.gz: the 1000000x28x28 images of the IDX header need 784000000 bytes; with the 0 bytes "
                "already planned (the model's arenas and the data loaded so far) that is more than the 100000000 "
                "bytes of MPLC_MEMORY_LIMIT; not read");
    /* NPY: a float32 header of the same size (3.1 GB) */
    NpyArray n;
    float f[4] = {0};
    write_npy_raw("bomb.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 28, 28), }", f, 16);
    CHECK_FAILS(npy_read(tpath("bomb.npy"), &n, &e), e,
                "bomb.npy: the <f4 array of shape (1000000, 28, 28) (NPY header) need 3136000000 bytes");
    /* MAT: a compressed element whose inner tag announces 2 GB */
    {
        unsigned char file[256] = "MATLAB 5.0 MAT-file";
        memset(file + 19, ' ', 116 - 19);
        memset(file + 116, 0, 8);
        file[124] = 0x00, file[125] = 0x01, file[126] = 'I', file[127] = 'M';
        unsigned char inner[16] = {14, 0, 0, 0, 0xF0, 0xFF, 0xFF, 0x7F, 6, 0, 0, 0, 8, 0, 0, 0};
        uLongf zn = 96;
        unsigned char *z = file + 136;
        CHECK(compress2(z, &zn, inner, sizeof inner, 9) == Z_OK, "compress");
        uint32_t hdr[2] = {15, (uint32_t)zn};
        memcpy(file + 128, hdr, 8); /* little-endian host, as the runner */
        write_bytes(tpath("bomb.mat"), file, 136 + zn);
        MatFile *m = xmalloc(sizeof *m);
        CHECK_FAILS(mat_read(tpath("bomb.mat"), m, &e), e, "(its tag announces 2147483632 bytes) need 2147483648 bytes");
        free(m);
    }
    /* CIFAR-10 (no header): the records count once read, before they are kept */
    setenv("MPLC_MEMORY_LIMIT", "5000", 1);
    unsigned char rec[2 * 3073] = {0};
    write_bytes(tpath("two.bin"), rec, sizeof rec);
    CifarBatch cb = {0, NULL};
    CHECK_FAILS(cifar_read(tpath("two.bin"), &cb, &e), e, "two.bin: the CIFAR-10 records need 6146 bytes");
    cifar_free(&cb);
    /* a data set whose files fit but whose float32 copy does not: 200 x (784 + 1) x 4 bytes */
    setenv("MPLC_MEMORY_LIMIT", "400000", 1);
    Dataset d;
    write_dataset(tpath("budget-idx"), "idx", 200, 50);
    CHECK_FAILS(dataset_load(tpath("budget-idx"), 1, 0, &d, &e), e,
                "train-images-idx3-ubyte.gz: 200 examples as float32 (the model's 784 inputs each, and a label) need "
                "628000 bytes");
    unsetenv("MPLC_MEMORY_LIMIT");
    /* what is taken is returned: loading and freeing a data set leaves the total as it was */
    CHECK(dataset_load(tpath("budget-idx"), 1, 0, &d, &e) == 0, "load: %s", e.msg);
    CHECK(budget_planned() > before, "a loaded data set plans nothing");
    dataset_free(&d);
    CHECK(budget_planned() == before, "%llu bytes planned after freeing everything, %llu before",
          (unsigned long long)budget_planned(), (unsigned long long)before);
}

/* ---------------------------------------------------------------- fake model sanity */

/* The gradient that mplc_supervised_step applies matches finite differences of its loss (the fake model
 * is only a test fixture, but the training tests mean something only if it learns correctly). */
static void test_fake_model(void) {
    current = "fake model";
    StepInputs in;
    SupInputs sup;
    Err e;
    CHECK(locate_inputs(&in, &sup, &e) == 0, "locate_inputs: %s", e.msg);
    float *state = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *io = xcalloc(MPLC_SUPERVISED_IO_FLOATS, sizeof(float));
    float *scratch = xcalloc(MPLC_SCRATCH_FLOATS, sizeof(float)), *before = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    init_state(state, 1);
    Rng r;
    rng_init(&r, 2, 3, 4);
    for (size_t i = 0; i < sup.x->count; i++) io[sup.x->offset + i] = (float)rng_double(&r);
    for (int i = 0; i < MPLC_FINETUNE_BATCH; i++) io[sup.y->offset + (size_t)i * MPLC_CLASSES + (size_t)(i % MPLC_CLASSES)] = 1;
    const mplc_tensor *w = table_find(&TABLE_STATE, "student/dense1/weight");
    const mplc_tensor *mom = table_find(&TABLE_STATE, "student_momentum/dense1/weight");
    size_t probes[3] = {5, 3001, 7830};
    for (int k = 0; k < 3; k++) {
        size_t idx = w->offset + probes[k];
        float saved = state[idx], h = 1e-2f, lp, lm;
        io[sup.lr->offset] = 0;
        state[idx] = saved + h;
        mplc_supervised_step(state, io, scratch);
        lp = io[TABLE_SUP_OUT.items[0].offset];
        state[idx] = saved - h;
        mplc_supervised_step(state, io, scratch);
        lm = io[TABLE_SUP_OUT.items[0].offset];
        state[idx] = saved;
        memset(state + mom->offset, 0, mom->count * sizeof(float));
        memcpy(before, state, sizeof(float) * MPLC_STATE_FLOATS);
        float lr = 0.1f;
        io[sup.lr->offset] = lr;
        mplc_supervised_step(state, io, scratch);
        /* fresh Nesterov momentum: theta' = theta - lr (1 + mu) (g + wd theta) */
        double g = (before[idx] - state[idx]) / (lr * (1 + MPLC_STUDENT_MOMENTUM)) - MPLC_STUDENT_WEIGHT_DECAY * before[idx];
        double fd = (lp - lm) / (2.0 * h);
        CHECK(fabs(g - fd) < 1e-3 + 1e-2 * fabs(fd), "weight %zu: applied gradient %g, finite difference %g", probes[k], g, fd);
        memcpy(state, before, sizeof(float) * MPLC_STATE_FLOATS);
    }
    free(state);
    free(io);
    free(scratch);
    free(before);
}

/* --teacher-objective: the labeled rows of a step's x, which the teacher's supervised loss reads, are the weak view
 * of the labeled images, or with randaugment their strong view (then the unlabeled views draw later numbers of the
 * step's stream, so they differ too, as any other augmentation draw would). */
static void test_teacher_views(void) {
    current = "teacher objective views";
    enum { N = 40, BL = MPLC_BATCH_LABELED, BU = MPLC_BATCH_UNLABELED, D = MPLC_INPUT_SIZE };
    static const float LO = -1.0f, HI = 2.0f, MEAN = 0.0f;
    Trainer *T = xcalloc(1, sizeof *T);
    Err e;
    CHECK(locate_inputs(&T->in, &T->sup, &e) == 0, "locate_inputs: %s", e.msg);
    float *pixels = xcalloc((size_t)N * D, sizeof(float)), *want = xcalloc(D, sizeof(float));
    int32_t labels[N];
    uint32_t labeled[N];
    Rng r;
    rng_init(&r, 7, 1, 1);
    for (size_t i = 0; i < (size_t)N * D; i++) pixels[i] = LO + (HI - LO) * (float)rng_double(&r);
    for (int i = 0; i < N; i++) labels[i] = i % MPLC_CLASSES, labeled[i] = (uint32_t)(N - 1 - i);
    T->data.train = (DataSplit){.n = N, .x = pixels, .y = labels};
    T->unl = &T->data.train;
    T->labeled = labeled;
    T->n_labeled = N;
    T->aug = (AugSpec){MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS, &LO, &HI, &MEAN, AUG_WEAK_SHIFT, 0, 1};
    T->cfg.seed = 3;
    order_init(&T->order_l, N, 3, RNG_ORDER_LABELED);
    order_init(&T->order_u, N, 3, RNG_ORDER_UNLABELED);
    T->step_io = xcalloc(MPLC_STEP_IO_FLOATS, sizeof(float));
    T->img = xcalloc(2 * (size_t)D, sizeof(float));
    float *views[2];
    const Objective objectives[2] = {OBJECTIVE_SUPERVISED, OBJECTIVE_RANDAUGMENT};
    const long t = 5;
    for (int o = 0; o < 2; o++) {
        T->cfg.objective = objectives[o];
        batch_fill_step(T, t, 0, 0, 0, 0, 0);
        const float *x = T->step_io + T->in.x->offset;
        views[o] = xmalloc(sizeof(float) * (size_t)(BL + 2 * BU) * D);
        memcpy(views[o], x, sizeof(float) * (size_t)(BL + 2 * BU) * D);
        /* The views batch.c draws, in its order, from the step's augmentation stream. */
        rng_init(&r, 3, RNG_AUGMENT, (uint64_t)t);
        int same = 1;
        for (int i = 0; i < BL; i++) {
            uint32_t k = labeled[order_at(&T->order_l, (uint64_t)t * BL + (uint64_t)i)];
            if (objectives[o] == OBJECTIVE_RANDAUGMENT) aug_strong(&T->aug, pixels + (size_t)k * D, want, T->img, &r);
            else aug_weak(&T->aug, pixels + (size_t)k * D, want, &r);
            same &= memcmp(want, x + (size_t)i * D, sizeof(float) * D) == 0;
        }
        CHECK(same, "--teacher-objective %s: the labeled rows are not the %s view", objective_name(objectives[o]),
              o ? "strong" : "weak");
    }
    size_t rows = (size_t)BL * D;
    CHECK(memcmp(views[0], views[1], sizeof(float) * rows) != 0, "randaugment did not change the labeled rows");
    free(views[0]);
    free(views[1]);
    order_free(&T->order_l);
    order_free(&T->order_u);
    free(T->step_io);
    free(T->img);
    free(pixels);
    free(want);
    free(T);
}

/* ---------------------------------------------------------------- helpers for run_tests.sh */

/* Replay batches: step 0 with int64 labels and a dropout mask file, step 1 with int32 labels and no mask
 * (so all ones), step 2 with flattened x [rows, H*W*C] and one-hot float32 labels. The expected result is computed here by calling mplc_step. */
static int gen_replay(const char *dir, long steps) {
    StepInputs in;
    SupInputs sup;
    Err e;
    if (locate_inputs(&in, &sup, &e) != 0) die_err(&e, 1);
    char path[2048], sd[1024];
    float *state = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *io = xcalloc(MPLC_STEP_IO_FLOATS, sizeof(float));
    float *scratch = xcalloc(MPLC_SCRATCH_FLOATS, sizeof(float));
    init_state(state, 11);
    snprintf(path, sizeof path, "%s/in.safetensors", dir);
    if (st_save(path, state, NULL, &e) != 0) die_err(&e, 1);
    snprintf(path, sizeof path, "%s/batches", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/expected_losses.jsonl", dir);
    FILE *lf = fopen(path, "wb");
    const size_t rows = MPLC_BATCH_LABELED + 2 * MPLC_BATCH_UNLABELED;
    for (long s = 0; s < steps; s++) {
        snprintf(sd, sizeof sd, "%s/batches/step_%06ld", dir, s);
        mkdir(sd, 0777);
        Rng r;
        rng_init(&r, 77, 1, (uint64_t)s);
        float *x = io + in.x->offset;
        for (size_t i = 0; i < rows * MPLC_INPUT_SIZE; i++) x[i] = (float)(2 * rng_double(&r) - 0.5);
        size_t xs4[4] = {rows, MPLC_INPUT_HEIGHT, MPLC_INPUT_WIDTH, MPLC_INPUT_CHANNELS}, xs2[2] = {rows, MPLC_INPUT_SIZE};
        snprintf(path, sizeof path, "%s/x.npy", sd);
        npy_write(path, NPY_F4, s == 2 ? 2 : 4, s == 2 ? xs2 : xs4, x, &e);
        int64_t y8[MPLC_BATCH_LABELED];
        int32_t y4[MPLC_BATCH_LABELED];
        float *y = io + in.y->offset;
        memset(y, 0, sizeof(float) * MPLC_BATCH_LABELED * MPLC_CLASSES);
        for (int i = 0; i < MPLC_BATCH_LABELED; i++) {
            y4[i] = (int32_t)rng_below(&r, MPLC_CLASSES);
            y8[i] = y4[i];
            y[i * MPLC_CLASSES + y4[i]] = 1;
        }
        size_t ys[2] = {MPLC_BATCH_LABELED, MPLC_CLASSES};
        snprintf(path, sizeof path, "%s/y.npy", sd);
        if (s == 2) npy_write(path, NPY_F4, 2, ys, y, &e); /* one-hot rows */
        else npy_write(path, s == 1 ? NPY_I4 : NPY_I8, 1, ys, s == 1 ? (void *)y4 : (void *)y8, &e);
        float sc[4] = {0.02f, s == 0 ? 0.0f : 0.03f, 0.5f, 1.0f};
        size_t ss[1] = {4};
        snprintf(path, sizeof path, "%s/scalars.npy", sd);
        npy_write(path, NPY_F4, 1, ss, sc, &e);
        io[in.lr_teacher->offset] = sc[0];
        io[in.lr_student->offset] = sc[1];
        io[in.uda_weight->offset] = sc[2];
        io[in.feedback_scale->offset] = sc[3];
        if (in.feedback_baseline) io[in.feedback_baseline->offset] = 0; /* replay's: the plain rule */
        for (int k = 0; k < MPLC_NUM_STEP_INPUTS; k++) {
            const mplc_tensor *t = &mplc_step_inputs[k];
            if (!starts_with(t->name, "dropout/")) continue;
            float *m = io + t->offset;
            if (s == 1) {
                for (size_t i = 0; i < t->count; i++) m[i] = 1;
                continue;
            }
            Rng rd;
            rng_init(&rd, 78, 2, (uint64_t)s);
            fill_dropout_masks(&TABLE_STEP_IN, io, &rd);
            char name[256];
            size_t n = 0;
            for (const char *p = t->name; *p; p++) {
                if (*p == '/') name[n++] = '_', name[n++] = '_';
                else name[n++] = *p;
            }
            name[n] = '\0';
            size_t ms[4];
            for (int d = 0; d < t->rank; d++) ms[d] = (size_t)t->shape[d];
            snprintf(path, sizeof path, "%s/%s.npy", sd, name);
            npy_write(path, NPY_F4, t->rank, ms, m, &e);
        }
        mplc_step(state, io, scratch);
        fprintf(lf, "{\"step\":%ld", s);
        for (int k = 0; k < MPLC_NUM_STEP_OUTPUTS; k++) {
            fprintf(lf, ",\"%s\":", mplc_step_outputs[k].name);
            json_write_float(lf, io[mplc_step_outputs[k].offset]);
        }
        fputs("}\n", lf);
    }
    fclose(lf);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (st_save(path, state, NULL, &e) != 0) die_err(&e, 1);
    free(state);
    free(io);
    free(scratch);
    return 0;
}

/* The helpers free what they read, so that the suite runs clean under LeakSanitizer. */
static int st_equal(const char *a, const char *b) {
    float *x = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *y = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    Err e;
    if (st_load(a, x, NULL, &e) != 0 || st_load(b, y, NULL, &e) != 0) die_err(&e, 1);
    int rc = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS && rc == 0; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        if (memcmp(x + t->offset, y + t->offset, t->count * sizeof(float)) != 0) {
            fprintf(stderr, "%s differs between %s and %s\n", t->name, a, b);
            rc = 1;
        }
    }
    free(x);
    free(y);
    return rc;
}

static int st_meta(const char *file, const char *key) {
    float *x = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    StMeta *m = xmalloc(sizeof *m);
    Err e;
    if (st_load(file, x, m, &e) != 0) die_err(&e, 1);
    const char *v = meta_get(m, key);
    if (v) printf("%s\n", v);
    free(x);
    free(m);
    return v ? 0 : 1;
}

static int st_finite(const char *file) {
    float *x = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    Err e;
    if (st_load(file, x, NULL, &e) != 0) die_err(&e, 1);
    int rc = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++)
        if (first_nonfinite(x, &mplc_state_tensors[i]) >= 0) rc = 1;
    free(x);
    return rc;
}

/* Checkpoint surgery for the integrity tests of run_tests.sh: each rewrites FILE through st_save_ema, so the
 * result has a valid checksum and only the change made is wrong (except st-flip, which corrupts it). */
static void load_any(const char *file, float *s, float *ema, int *has, StMeta *m) {
    Err e;
    if (st_load_ema(file, s, ema, has, m, &e) != 0) die_err(&e, 1);
}

static void save_any(const char *file, const float *s, const float *ema, int has, const StMeta *m) {
    Err e;
    if (st_save_ema(file, s, has ? ema : NULL, m, &e) != 0) die_err(&e, 1);
}

static int st_surgery(int argc, char **argv) {
    float *s = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *ema = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    StMeta *m = xmalloc(sizeof *m);
    int has = 0, rc = 0;
    const char *file = argv[2];
    load_any(file, s, ema, &has, m);
    if (argc == 5 && strcmp(argv[1], "st-set") == 0) { /* st-set FILE KEY VALUE: a metadata value */
        meta_set(m, argv[3], "%s", argv[4]);
        save_any(file, s, ema, has, m);
    } else if (argc == 4 && strcmp(argv[1], "st-del") == 0) { /* st-del FILE KEY: no such metadata */
        StMeta *kept = xmalloc(sizeof *kept);
        meta_clear(kept);
        for (int i = 0; i < m->count; i++)
            if (strcmp(m->key[i], argv[3]) != 0) meta_set(kept, m->key[i], "%s", m->value[i]);
        save_any(file, s, ema, has, kept);
        free(kept);
    } else if (argc == 6 && strcmp(argv[1], "st-poke") == 0) { /* st-poke FILE TENSOR ELEMENT VALUE: one float */
        const mplc_tensor *t = table_find(&TABLE_STATE, argv[3]);
        if (!t || (size_t)atol(argv[4]) >= t->count) die(1, "no element %s of %s", argv[4], argv[3]);
        s[t->offset + (size_t)atol(argv[4])] = strtof(argv[5], NULL);
        save_any(file, s, ema, has, m);
    } else if (argc == 6 && strcmp(argv[1], "st-flip") == 0) { /* st-flip FILE TENSOR ELEMENT BIT: in the file */
        size_t len;
        unsigned char *b = read_all(file, &len);
        const mplc_tensor *t = table_find(&TABLE_STATE, argv[3]);
        if (!t || (size_t)atol(argv[4]) >= t->count) die(1, "no element %s of %s", argv[4], argv[3]);
        int bit = atoi(argv[5]);
        b[data_offset(b, argv[3]) + 4 * (size_t)atol(argv[4]) + (size_t)(bit / 8)] ^= (unsigned char)(1u << (bit % 8));
        write_bytes(file, b, len);
        free(b);
    } else {
        fprintf(stderr, "usage: test_runner st-set FILE KEY VALUE | st-del FILE KEY | st-poke FILE TENSOR ELEMENT VALUE "
                        "| st-flip FILE TENSOR ELEMENT BIT\n");
        rc = 2;
    }
    free(s);
    free(ema);
    free(m);
    return rc;
}

/* ================================================================ EMA of the student (ema.h)
 * Unit tests and helpers of the EMA, run by the EMA section of run_tests.sh:
 *   test_runner ema-unit [TMPDIR]              the EMA update against the formula; EMA tensors in checkpoints
 *   test_runner ema-check B [A] DECAY          checkpoint B's EMA is the student of B (no A: the first update)
 *                                              or DECAY * (A's EMA) + (1 - DECAY) * (B's student), bit for bit
 *   test_runner ema-strip IN OUT               OUT = IN without EMA tensors and metadata (an older checkpoint) */

#include "ema.h"

/* The runner's update written out for one float: the reference the arena-wide update must match bit for bit. */
static float ema_reference(float ema, float student, double decay) {
    return (float)(decay * (double)ema + (1.0 - decay) * (double)student);
}

static void test_ema_tracks(void) {
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        CHECK(ema_tracks(t) == (strncmp(t->name, "student/", 8) == 0), "ema_tracks(%s)", t->name);
    }
    /* BatchNorm statistics, when a model has them, are student/ tensors like the weights */
    mplc_tensor bn = {"student/bn0/running_var", 1, {16, 0, 0, 0}, 0, 16, 0, 0, 0};
    mplc_tensor mom = {"student_momentum/bn0/scale", 1, {16, 0, 0, 0}, 0, 16, 0, 0, 0};
    CHECK(ema_tracks(&bn) && !ema_tracks(&mom), "BatchNorm statistics are averaged, momenta are not");
}

/* N updates with a different student each time: the arena equals the recurrence computed float by float
 * (bit for bit), agrees with the closed form d^(N-1) s_1 + sum_{k>=2} (1-d) d^(N-k) s_k, and the
 * floats of other tensors are never touched. */
static void test_ema_formula(void) {
    const double d = 0.995;
    const int N = 40;
    float *ema = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *want = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    double *closed = xcalloc(MPLC_STATE_FLOATS, sizeof(double));
    for (size_t k = 0; k < MPLC_STATE_FLOATS; k++) ema[k] = want[k] = 42.0f; /* sentinel */
    for (int n = 0; n < N; n++) {
        float *s = random_state(1000 + (uint64_t)n);
        ema_update(ema, s, d, n);
        for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
            const mplc_tensor *t = &mplc_state_tensors[i];
            if (!ema_tracks(t)) continue;
            for (size_t k = t->offset; k < t->offset + t->count; k++) {
                want[k] = n == 0 ? s[k] : ema_reference(want[k], s[k], d);
                closed[k] = n == 0 ? s[k] : d * closed[k] + (1 - d) * s[k];
            }
        }
        free(s);
    }
    CHECK(memcmp(ema, want, sizeof(float) * MPLC_STATE_FLOATS) == 0, "EMA after %d updates differs from the recurrence", N);
    double worst = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        size_t written = 0;
        for (size_t k = t->offset; k < t->offset + t->count; k++) {
            if (!ema_tracks(t)) written += ema[k] != 42.0f;
            else if (fabs(ema[k] - closed[k]) > worst) worst = fabs(ema[k] - closed[k]);
        }
        CHECK(written == 0, "%zu floats of %s were written", written, t->name);
    }
    CHECK(worst < 1e-6, "EMA differs from the closed form by %g", worst);
    /* the first update copies, whatever the arena held */
    float *s = random_state(7);
    ema_update(ema, s, d, 0);
    const mplc_tensor *w = table_find(&TABLE_STATE, "student/dense1/weight");
    CHECK(w && memcmp(ema + w->offset, s + w->offset, sizeof(float) * w->count) == 0, "first update is not a copy");
    free(s);
    free(ema);
    free(want);
    free(closed);
}

/* The feedback variants (docs/RUNNER.md): the inputs the runner gives the step against the documented formulas,
 * step by step over a sequence of h. */
static void test_feedback_variants(void) {
    Trainer *T = xcalloc(1, sizeof *T);
    T->out_h = table_find(&TABLE_STEP_OUT, "h");
    float *io = xcalloc(MPLC_STEP_IO_FLOATS, sizeof(float));
    CHECK(T->out_h != NULL, "the fake step has no output h");
    const double hs[] = {0.02, -0.01, 0.03, 0.005, -0.002, 0.04, 0.0, 0.01};
    const int n = (int)(sizeof hs / sizeof *hs);
    double scale, baseline;
    /* The paper's rule: scale 1, baseline 0, whatever h was. */
    T->cfg.feedback_weight = 1;
    CHECK(!feedback_variant(&T->cfg), "weight 1 without a baseline or normaliser is a variant");
    feedback_inputs(T, 0, &scale, &baseline);
    CHECK(scale == 1 && baseline == 0, "the plain rule gives scale %g baseline %g", scale, baseline);
    /* Weight W and baseline D: the coefficient scale (h - baseline) is W (h - m_t), m_t = D m_{t-1} + (1 - D) h_t. */
    T->cfg.feedback_weight = 2, T->cfg.feedback_baseline = 0.9;
    CHECK(feedback_variant(&T->cfg), "a baseline is not a variant");
    double m = 0;
    for (int t = 0; t < n; t++) {
        feedback_inputs(T, t, &scale, &baseline);
        const double want_m = 0.9 * m + 0.1 * hs[t], got = scale * (hs[t] - baseline), want = 2 * (hs[t] - want_m);
        CHECK(fabs(got - want) <= 1e-12 * (fabs(want) + 1e-12), "step %d: coefficient %.17g, want %.17g", t, got, want);
        io[T->out_h->offset] = (float)hs[t];
        feedback_follow(T, io);
        m = 0.9 * m + 0.1 * (double)(float)hs[t];
        CHECK(fabs(T->rs.fb_mean - m) <= 1e-15, "step %d: average %.17g, want %.17g", t, T->rs.fb_mean, m);
    }
    /* The normaliser (weight 0.5, no baseline): no feedback before the first average, then 0.5 over the
     * bias-corrected average of |h| of the steps before. With the teacher's wait (3 steps) the scale is 0 before
     * step 3 while the average still follows h, so step 3 gets the average of three. */
    for (long wait = 0; wait <= 3; wait += 3) {
        memset(&T->rs, 0, sizeof T->rs);
        T->cfg.feedback_weight = 0.5, T->cfg.feedback_baseline = 0, T->cfg.feedback_normalise = 0.8;
        T->cfg.feedback_wait = wait;
        CHECK(feedback_variant(&T->cfg), "the normaliser is not a variant");
        double a = 0;
        for (int t = 0; t < n; t++) {
            feedback_inputs(T, t, &scale, &baseline);
            const double want = t == 0 || t < wait ? 0 : 0.5 / (a / (1 - pow(0.8, t)));
            CHECK(baseline == 0 && fabs(scale - want) <= 1e-12 * want, "wait %ld step %d: scale %.17g, want %.17g",
                  wait, t, scale, want);
            io[T->out_h->offset] = (float)hs[t];
            feedback_follow(T, io);
            a = 0.8 * a + 0.2 * fabs((double)(float)hs[t]);
        }
        CHECK(T->rs.fb_updates == n, "%ld updates of the normaliser, want %d", T->rs.fb_updates, n);
    }
    /* The wait alone is a variant (its runs say so in summary.json). */
    T->cfg.feedback_weight = 1, T->cfg.feedback_normalise = 0, T->cfg.feedback_wait = 5;
    CHECK(feedback_variant(&T->cfg), "--feedback-wait alone is not a variant");
    free(io);
    free(T);
}

/* Appends one entry to a header made by fake_header (which ends with '}'). */
static char *header_plus(const char *entry) {
    char *h = fake_header(NULL, NULL, NULL);
    snprintf(h + strlen(h) - 1, 8192 - strlen(h), ",%s}", entry);
    return h;
}

static void test_ema_checkpoint(void) {
    Err e;
    float *s = random_state(11), *ema = random_state(12);
    float *s2 = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *ema2 = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    int has = -1;
    CHECK(st_save_ema(tpath("ema.safetensors"), s, ema, NULL, &e) == 0, "save: %s", e.msg);
    CHECK(st_load_ema(tpath("ema.safetensors"), s2, ema2, &has, NULL, &e) == 0 && has == 1, "load: %s", e.msg);
    CHECK(memcmp(s, s2, sizeof(float) * MPLC_STATE_FLOATS) == 0, "state differs after a round trip");
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        size_t bad = 0;
        for (size_t k = t->offset; k < t->offset + t->count; k++) bad += ema2[k] != (ema_tracks(t) ? ema[k] : 0.0f);
        CHECK(bad == 0, "%zu floats of the EMA of %s differ after a round trip (or are not zero)", bad, t->name);
    }
    CHECK(st_load(tpath("ema.safetensors"), s2, NULL, &e) == 0, "st_load skips the EMA: %s", e.msg);
    CHECK(memcmp(s, s2, sizeof(float) * MPLC_STATE_FLOATS) == 0, "st_load of a file with an EMA");
    CHECK(st_save(tpath("noema.safetensors"), s, NULL, &e) == 0, "save without EMA: %s", e.msg);
    CHECK(st_load_ema(tpath("noema.safetensors"), s2, ema2, &has, NULL, &e) == 0 && has == 0, "no EMA: %s", e.msg);
    size_t data = 4 * (size_t)MPLC_STATE_FLOATS;
    char entry[256];
    snprintf(entry, sizeof entry, "\"ema/student/dense1/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[%zu,%zu]}",
             data, data + 40);
    write_st("ema-part.safetensors", header_plus(entry), data + 40, 0);
    CHECK_FAILS(st_load_ema(tpath("ema-part.safetensors"), s2, ema2, &has, NULL, &e), e,
                "EMA is incomplete: tensor \"ema/student/dense1/weight\" is missing");
    snprintf(entry, sizeof entry, "\"ema/teacher/dense2/bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[%zu,%zu]}",
             data, data + 40);
    write_st("ema-teacher.safetensors", header_plus(entry), data + 40, 0);
    CHECK_FAILS(st_load_ema(tpath("ema-teacher.safetensors"), s2, ema2, &has, NULL, &e), e, "not a state tensor");
    free(s);
    free(ema);
    free(s2);
    free(ema2);
}

static int ema_unit(const char *dir) {
    snprintf(tmpdir, sizeof tmpdir, "%s", dir);
    mkdir(tmpdir, 0777);
    current = "ema";
    test_ema_tracks();
    test_ema_formula();
    test_ema_checkpoint();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

static void load_with_ema(const char *path, float *state, float *ema) {
    Err e;
    int has = 0;
    if (st_load_ema(path, state, ema, &has, NULL, &e) != 0) die_err(&e, 1);
    if (!has) die(1, "%s has no EMA", path);
}

static int ema_check(const char *b, const char *a, double decay) {
    float *sb = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *eb = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    float *sa = xcalloc(MPLC_STATE_FLOATS, sizeof(float)), *ea = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    load_with_ema(b, sb, eb);
    if (a) load_with_ema(a, sa, ea);
    int rc = 0;
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS && rc == 0; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        for (size_t k = t->offset; ema_tracks(t) && k < t->offset + t->count && rc == 0; k++) {
            float want = a ? ema_reference(ea[k], sb[k], decay) : sb[k];
            if (memcmp(&want, &eb[k], sizeof want) != 0) {
                fprintf(stderr, "ema/%s[%zu] is %.9g, want %.9g\n", t->name, k - t->offset, eb[k], want);
                rc = 1;
            }
        }
    }
    free(sb);
    free(eb);
    free(sa);
    free(ea);
    return rc;
}

static int ema_strip(const char *in, const char *out) {
    float *s = xcalloc(MPLC_STATE_FLOATS, sizeof(float));
    StMeta *m = xmalloc(sizeof *m), *kept = xmalloc(sizeof *kept);
    Err e;
    if (st_load(in, s, m, &e) != 0) die_err(&e, 1);
    meta_clear(kept);
    for (int i = 0; i < m->count; i++)
        if (strncmp(m->key[i], "ema_", 4) != 0 && strcmp(m->key[i], "acc_ema") != 0)
            meta_set(kept, m->key[i], "%s", m->value[i]);
    if (st_save(out, s, kept, &e) != 0) die_err(&e, 1);
    free(s);
    free(m);
    free(kept);
    return 0;
}

static int ema_main(int argc, char **argv) {
    if (strcmp(argv[1], "ema-unit") == 0) return ema_unit(argc >= 3 ? argv[2] : "/tmp/mplc-runner-ema-unit");
    if (argc == 4 && strcmp(argv[1], "ema-check") == 0) return ema_check(argv[2], NULL, atof(argv[3]));
    if (argc == 5 && strcmp(argv[1], "ema-check") == 0) return ema_check(argv[2], argv[3], atof(argv[4]));
    if (argc == 4 && strcmp(argv[1], "ema-strip") == 0) return ema_strip(argv[2], argv[3]);
    fprintf(stderr, "usage: test_runner ema-unit [TMPDIR] | ema-check B [A] DECAY | ema-strip IN OUT\n");
    return 2;
}

/* ================================================================ end of the EMA section */

/* ================================================================ image folders and CSV (issue 17) */

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "image.h"

/* Fashion-MNIST's class names: sorted, they are not in label order, so a run that mixed up folder order and
 * label numbers would test at chance. One has a space. */
static const char *const FASHION_CLASSES[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* One 28x28 image as a file: PNG, grayscale (c = 1) or RGB (c = 3, the gray value in each channel), or JPEG. */
static void write_image(const char *path, const uint8_t *gray, int c, int jpeg) {
    uint8_t px[28 * 28 * 3];
    for (int i = 0; i < 28 * 28; i++)
        for (int k = 0; k < c; k++) px[i * c + k] = gray[i];
    int ok = jpeg ? stbi_write_jpg(path, 28, 28, c, px, 95) : stbi_write_png(path, 28, 28, c, px, 28 * c);
    if (!ok) die(1, "%s: cannot write", path);
}

/* make-images FASHION_DIR OUT PER_CLASS UNLABELED TEST_PER_CLASS: an image-folder data set from Fashion-MNIST:
 * OUT/labeled/<class>/ (PER_CLASS training images per class, PNG), OUT/unlabeled/ (the next UNLABELED training
 * images, a quarter of them JPEG) and OUT/test/<class>/ (TEST_PER_CLASS test images per class, a third of them
 * RGB PNG). */
static int make_images(const char *fm, const char *out, long per_class, long unlabeled, long test_per_class) {
    Err e;
    char path[PATH_CAP];
    const char *sets[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                              {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int s = 0; s < 2; s++) {
        IdxArray im, lb;
        snprintf(path, sizeof path, "%s/%s", fm, sets[s][0]);
        if (idx_read(path, IDX_MAGIC_IMAGES, &im, &e) != 0) die_err(&e, 1);
        snprintf(path, sizeof path, "%s/%s", fm, sets[s][1]);
        if (idx_read(path, IDX_MAGIC_LABELS, &lb, &e) != 0) die_err(&e, 1);
        const long want = s == 0 ? per_class : test_per_class;
        long taken[10] = {0}, free_images = 0;
        for (int k = 0; k < 10; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", out, s == 0 ? "labeled" : "test", FASHION_CLASSES[k]);
            if (make_dirs(path, &e) != 0) die_err(&e, 1);
        }
        snprintf(path, sizeof path, "%s/unlabeled", out);
        if (s == 0 && make_dirs(path, &e) != 0) die_err(&e, 1);
        for (uint32_t i = 0; i < im.dims[0]; i++) {
            const uint8_t *img = im.data + (size_t)i * 28 * 28;
            int k = lb.data[i];
            if (taken[k] < want) {
                snprintf(path, sizeof path, "%s/%s/%s/%05u.png", out, s == 0 ? "labeled" : "test", FASHION_CLASSES[k], i);
                write_image(path, img, s == 1 && taken[k] % 3 == 0 ? 3 : 1, 0);
                taken[k]++;
            } else if (s == 0 && free_images < unlabeled) {
                snprintf(path, sizeof path, "%s/unlabeled/%05u.%s", out, i, free_images % 4 == 0 ? "jpg" : "png");
                write_image(path, img, 1, free_images % 4 == 0);
                free_images++;
            }
        }
        idx_free(&im);
        idx_free(&lb);
    }
    return 0;
}

/* write-image PATH W H C [V]: a W x H image of C channels (PNG), a gradient, or every byte V. */
static int write_test_image(const char *path, int w, int h, int c, int value) {
    uint8_t *px = xcalloc((size_t)w * h * c, 1);
    for (int i = 0; i < w * h * c; i++) px[i] = (uint8_t)(value >= 0 ? value : i * 7);
    int ok = stbi_write_png(path, w, h, c, px, w * c);
    free(px);
    return ok ? 0 : 1;
}

/* upscale IN OUT: the 28x28 grey image IN (as the runner reads it) as a 56x56 PNG OUT of 2x2 blocks, which
 * --resize shrinks back to IN exactly (its box filter averages each block). */
static int upscale_image(const char *in, const char *out) {
    uint8_t small[28 * 28], big[56 * 56];
    int w, h;
    Err e;
    if (image_read(in, 28, 28, 1, 0, small, &w, &h, &e) != 0) die_err(&e, 1);
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 56; x++) big[y * 56 + x] = small[(y / 2) * 28 + x / 2];
    return stbi_write_png(out, 56, 56, 1, big, 56) ? 0 : 1;
}

/* --resize (image.c, dataset_images.c): a 56x56 image of 2x2 blocks becomes its 28x28 pattern again, a constant
 * image of another size (shrunk or enlarged, RGB read as grey) stays that constant, and in an image folder those
 * rows of the decoded tensor are those of the same images at 28x28; without --resize the folder is refused with
 * a message that names the first file and the option. The memory budget is back to 0 after each. */
static void test_resize(void) {
    current = "resize";
    Err e;
    uint8_t pattern[28 * 28], big[56 * 56], out[28 * 28 * 3];
    for (int i = 0; i < 28 * 28; i++) pattern[i] = (uint8_t)(i * 37 + i / 5);
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 56; x++) big[y * 56 + x] = pattern[(y / 2) * 28 + x / 2];
    const char *blocks = tpath("resize-blocks.png"), *small = tpath("resize-small.png");
    CHECK(stbi_write_png(blocks, 56, 56, 1, big, 56) && stbi_write_png(small, 28, 28, 1, pattern, 28), "write");
    int w, h;
    CHECK(image_read(blocks, 28, 28, 1, 1, out, &w, &h, &e) == 0, "%s", e.msg);
    CHECK(w == 56 && h == 56, "the file's size: %dx%d", w, h);
    int worst = 0;
    for (int i = 0; i < 28 * 28; i++) worst = abs(out[i] - pattern[i]) > worst ? abs(out[i] - pattern[i]) : worst;
    CHECK(worst == 0, "56x56 of 2x2 blocks resized to 28x28 differs from the pattern by up to %d", worst);
    CHECK(image_read(blocks, 28, 28, 1, 0, out, &w, &h, &e) == 1 && strstr(e.msg, "--resize"),
          "without resize: refused, naming --resize: %s", e.msg);
    const int sizes[][3] = {{40, 33, 3}, {20, 28, 1}, {5, 90, 3}};
    for (int k = 0; k < 3; k++) {
        const char *path = tpath("resize-constant.png");
        write_test_image(path, sizes[k][0], sizes[k][1], sizes[k][2], 173);
        for (int c = 1; c <= 3; c += 2) {
            int rc = image_read(path, 28, 28, c, 1, out, &w, &h, &e), off = 0;
            for (int i = 0; i < 28 * 28 * c; i++) off += out[i] != 173;
            CHECK(rc == 0 && off == 0, "%dx%d constant 173 resized to 28x28x%d: rc %d, %d bytes differ (%s)",
                  sizes[k][0], sizes[k][1], c, rc, off, rc ? e.msg : "");
        }
    }
    CHECK(budget_planned() == 0, "the budget is not back to 0: %llu", (unsigned long long)budget_planned());

    /* An image folder: class c<k> holds one labeled and one test image; test/c0 has the pattern at 56x56 and
     * labeled/c0 at 28x28, test/c1 a constant image of 20x28, labeled/c1 the constant at 28x28. */
    char path[PATH_CAP];
    uint8_t constant[28 * 28], other[28 * 28];
    memset(constant, 200, sizeof constant);
    for (int k = 0; k < MPLC_CLASSES; k++)
        for (int s = 0; s < 2; s++) {
            snprintf(path, sizeof path, "%s/%s/c%d", tpath("resize-folder"), s ? "test" : "labeled", k);
            if (make_dirs(path, &e) != 0) die_err(&e, 1);
            snprintf(path, sizeof path, "%s/%s/c%d/a.png", tpath("resize-folder"), s ? "test" : "labeled", k);
            if (k == 0 && s) stbi_write_png(path, 56, 56, 1, big, 56);
            else if (k == 1 && s) write_test_image(path, 20, 28, 1, 200);
            else {
                for (int i = 0; i < 28 * 28; i++) other[i] = pattern[(i + k) % (28 * 28)];
                stbi_write_png(path, 28, 28, 1, k == 0 ? pattern : k == 1 ? constant : other, 28);
            }
        }
    Dataset d;
    CHECK_FAILS(dataset_load(tpath("resize-folder"), 1, 0, &d, &e), e,
                "resize-folder/test: 2 of its 10 images are not 28x28 pixels");
    CHECK(strstr(e.msg, "test/c0/a.png (56x56)") && strstr(e.msg, "give --resize"), "%s", e.msg);
    if (dataset_load(tpath("resize-folder"), 1, 1, &d, &e) != 0) {
        CHECK(0, "with resize: %s", e.msg);
        return;
    }
    const size_t D = MPLC_INPUT_SIZE;
    CHECK(d.resized == 2, "%zu images resized, not 2", d.resized);
    CHECK(memcmp(d.test.x, d.train.x, D * sizeof(float)) == 0, "the resized pattern's row is not the 28x28 one's");
    CHECK(memcmp(d.test.x + D, d.train.x + D, D * sizeof(float)) == 0, "the resized constant's row is not 200's");
    dataset_free(&d);
    CHECK(budget_planned() == 0, "the budget is not back to 0 after the folder");
}

/* make-csv FASHION_DIR OUT LABELED UNLABELED TEST: CSV feature vectors from Fashion-MNIST (pixels / 255, the
 * label last): OUT/labeled.csv (the first LABELED training images, with a header line), OUT/unlabeled.csv (the
 * next UNLABELED, no label column, no header, CRLF line ends) and OUT/test.csv (the first TEST test images). */
static int make_csv(const char *fm, const char *out, long labeled, long unlabeled, long test) {
    Err e;
    char path[PATH_CAP];
    if (make_dirs(out, &e) != 0) die_err(&e, 1);
    const char *sets[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                              {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int s = 0; s < 2; s++) {
        IdxArray im, lb;
        snprintf(path, sizeof path, "%s/%s", fm, sets[s][0]);
        if (idx_read(path, IDX_MAGIC_IMAGES, &im, &e) != 0) die_err(&e, 1);
        snprintf(path, sizeof path, "%s/%s", fm, sets[s][1]);
        if (idx_read(path, IDX_MAGIC_LABELS, &lb, &e) != 0) die_err(&e, 1);
        for (int part = 0; part < (s == 0 ? 2 : 1); part++) {
            const int unl = s == 0 && part == 1;
            const long first = unl ? labeled : 0, n = s == 1 ? test : unl ? unlabeled : labeled;
            snprintf(path, sizeof path, "%s/%s", out, s == 1 ? "test.csv" : unl ? "unlabeled.csv" : "labeled.csv");
            FILE *fp = fopen(path, "w");
            if (!fp) die(1, "%s: cannot write", path);
            if (!unl) {
                for (int k = 0; k < 784; k++) fprintf(fp, "p%d,", k);
                fprintf(fp, "label\n");
            }
            for (long i = first; i < first + n; i++) {
                for (int k = 0; k < 784; k++) fprintf(fp, k ? ",%.4g" : "%.4g", im.data[i * 784 + k] / 255.0);
                if (unl) fputs("\r\n", fp);
                else fprintf(fp, ",%d\n", lb.data[i]);
            }
            if (fclose(fp) != 0) die(1, "%s: cannot write", path);
        }
        idx_free(&im);
        idx_free(&lb);
    }
    return 0;
}

/* ================================================================ end of the image folders section */

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "make-images") == 0)
        return make_images(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atol(argv[6]));
    if (argc == 7 && strcmp(argv[1], "make-csv") == 0)
        return make_csv(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atol(argv[6]));
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "write-image") == 0)
        return write_test_image(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argc == 7 ? atoi(argv[6]) : -1);
    if (argc == 4 && strcmp(argv[1], "upscale") == 0) return upscale_image(argv[2], argv[3]);
    if (argc >= 2 && strcmp(argv[1], "unit") == 0) {
        snprintf(tmpdir, sizeof tmpdir, "%s", argc >= 3 ? argv[2] : "/tmp/mplc-runner-unit");
        mkdir(tmpdir, 0777);
        void (*tests[])(void) = {test_rng,         test_order,  test_schedule, test_progress, test_idx,
                                 test_npy,         test_json,   test_safetensors, test_checkpoint_integrity,
                                 test_recipe_identity, test_init, test_augment, test_dataset, test_data_budget,
                                 test_fake_model, test_teacher_views, test_resize, test_feedback_variants};
        const char *names[] = {"rng",  "order",   "schedule", "progress", "idx",     "npy",          "json",
                               "safetensors", "checkpoint integrity", "recipe identity", "init", "augment", "dataset",
                               "data budget", "fake model", "teacher objective views", "image resize",
                               "feedback variants"};
        for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
            int before = failures;
            tests[i]();
            printf("%s unit: %s\n", failures == before ? "ok  " : "FAIL", names[i]);
        }
        printf("%d checks, %d failed\n", checks, failures);
        return failures ? 1 : 0;
    }
    if (argc == 4 && strcmp(argv[1], "gen-data") == 0) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp");
        int bomb = strcmp(argv[3], "idx-bomb") == 0;
        write_dataset(argv[2], bomb ? "idx" : argv[3], 400, 100);
        if (bomb) { /* 762 KB of gzip: a million images, 784 MB of zeros, and as many labels (all 0) */
            char path[1024];
            snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", argv[2]);
            write_gz_idx_zeros(path, 1000000, (size_t)1000000 * 784);
            uint32_t n[1] = {1000000};
            size_t len;
            unsigned char *lb = make_idx(IDX_MAGIC_LABELS, n, 1, 0, &len);
            lb = realloc(lb, len + n[0]);
            memset(lb + len, 0, n[0]);
            snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", argv[2]);
            unlink(path);
            snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", argv[2]);
            write_gz(path, lb, len + n[0]);
            free(lb);
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "gen-replay") == 0) return gen_replay(argv[2], atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "st-equal") == 0) return st_equal(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "st-meta") == 0) return st_meta(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "st-finite") == 0) return st_finite(argv[2]);
    if (argc >= 3 && (!strcmp(argv[1], "st-set") || !strcmp(argv[1], "st-del") || !strcmp(argv[1], "st-poke") ||
                      !strcmp(argv[1], "st-flip")))
        return st_surgery(argc, argv);
    if (argc >= 2 && strncmp(argv[1], "ema-", 4) == 0) return ema_main(argc, argv); /* the EMA section */
    fprintf(stderr, "usage: test_runner unit [TMPDIR] | gen-data DIR KIND | gen-replay DIR N | st-equal A B | "
                    "st-meta FILE KEY | st-finite FILE\n");
    return 2;
}
