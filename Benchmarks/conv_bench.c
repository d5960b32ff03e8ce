/*
 * conv_bench.c: the runtime's 3x3 stride-1 pad-1 convolution kernels (Templates/runtime/mplc_runtime.h), timed
 * per shape as a generated step calls them (Benchmarks/conv_bench.py drives it against PyTorch).
 *
 *   conv_bench OP N H W IN OUT CHUNK REPS       OP = fwd | dx | dw
 *
 * fwd: the filter transform once, then mplc_winograd_conv3x3 on CHUNK images at a time (the generated
 * forward convolution without its epilogue); dx: the same with the flipped filters of the convolution OUT -> IN
 * (the transposed convolution: ∂y has IN channels here, ∂x OUT); dw: mplc_winograd_filter_gradient over the
 * chunks, then mplc_winograd_filters_transpose. One untimed call, then REPS timed calls on one thread; prints
 * one JSON line {"op", "n", "h", "w", "in", "out", "chunk", "median_s", "min_s"}.
 */
#define _POSIX_C_SOURCE 199309L
#define MPLC_MAX_THREADS 8
#include "mplc_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *filled(size_t n) {
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "conv_bench: out of memory\n");
        exit(1);
    }
    unsigned long long r = 0x9E3779B97F4A7C15ULL ^ n;
    for (size_t i = 0; i < n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        p[i] = (float)((r >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: conv_bench fwd|dx|dw N H W IN OUT CHUNK REPS\n");
        return 2;
    }
    const char *op = argv[1];
    const int n = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]), in = atoi(argv[5]), out = atoi(argv[6]);
    const int chunk = atoi(argv[7]), reps = atoi(argv[8]);
    const int fwd = !strcmp(op, "fwd"), dx = !strcmp(op, "dx"), dw = !strcmp(op, "dw");
    if (!(fwd || dx || dw) || n < 1 || h < 1 || w < 1 || in < 1 || out < 1 || chunk < 1 || reps < 1) {
        fprintf(stderr, "conv_bench: bad arguments\n");
        return 2;
    }
    mplc_pool_resize(1); /* and OpenBLAS on one thread, as in a step */
    const size_t pixels = (size_t)n * h * w;
    /* the convolution computed: from `cin` channels of `src` to `cout` channels */
    const int cin = dx ? out : in, cout = dx ? in : out;
    float *src = filled(pixels * cin), *dst = filled(pixels * cout), *weights = filled(9 * (size_t)in * out);
    float *filters = filled(16 * (size_t)in * out), *dweights = filled(9 * (size_t)in * out);
    const mplc_window whole = {chunk, h, w, cin, 3, 1, 1};
    const size_t tiles = mplc_winograd_tiles(whole);
    mplc_winograd_scratch s = {filled(16 * tiles * cin), filled(16 * tiles * cout), filled(16 * (size_t)cin),
                               filled((size_t)cin + cout), filled((size_t)cout), tiles * cin, tiles * cout};
    double *times = malloc(sizeof(double) * (size_t)reps);
    for (int rep = -1; rep < reps; rep++) {
        const double start = now();
        if (dw) {
            for (int n0 = 0; n0 < n; n0 += chunk) {
                mplc_window g = whole;
                g.batch = n - n0 < chunk ? n - n0 : chunk;
                mplc_winograd_filter_gradient(filters, src + (size_t)n0 * h * w * in, dst + (size_t)n0 * h * w * out, g,
                                              out, n0 != 0, s);
            }
            mplc_winograd_filters_transpose(dweights, filters, in, out);
        } else {
            mplc_winograd_filters(filters, weights, cin, cout, dx);
            for (int n0 = 0; n0 < n; n0 += chunk) {
                mplc_window g = whole;
                g.batch = n - n0 < chunk ? n - n0 : chunk;
                mplc_winograd_conv3x3(dst + (size_t)n0 * h * w * cout, src + (size_t)n0 * h * w * cin, filters, g, cout, s);
            }
        }
        if (rep >= 0) times[rep] = now() - start;
    }
    double best = times[0];
    for (int i = 1; i < reps; i++) best = times[i] < best ? times[i] : best;
    qsort(times, (size_t)reps, sizeof(double), compare);
    printf("{\"op\": \"%s\", \"n\": %d, \"h\": %d, \"w\": %d, \"in\": %d, \"out\": %d, \"chunk\": %d, \"median_s\": %.6g, "
           "\"min_s\": %.6g, \"check\": %.6g}\n",
           op, n, h, w, in, out, chunk, times[reps / 2], best, (double)(dw ? dweights[7] : dst[pixels * cout / 2]));
    return 0;
}
