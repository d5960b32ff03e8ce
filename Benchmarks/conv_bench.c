/*
 * conv_bench.c: the runtime's 3x3 stride-1 pad-1 convolution kernels (Templates/runtime/mplc_runtime.h), timed
 * per shape as a generated step calls them (Benchmarks/conv_bench.py drives it against PyTorch).
 *
 *   conv_bench OP N H W IN OUT CHUNK REPS THREADS       OP = fwd | dx | dw
 *
 * fwd: the filter transform once, then mplc_winograd_conv3x3 on CHUNK images at a time (the generated
 * forward convolution without its epilogue; mplc_winograd4_conv3x3, F(4x4, 3x3), where the step uses it and
 * MPLC_BENCH_F2 is not set in the environment); dx: the same with the flipped filters of the convolution OUT -> IN
 * (the transposed convolution: ∂y has IN channels here, ∂x OUT); dw: mplc_winograd_filter_gradient over the
 * chunks, then mplc_winograd_filters_transpose; split between THREADS threads of the runtime's pool as a step
 * splits them. One untimed call, then REPS timed calls; prints one JSON line {"op", "n", "h", "w", "in", "out",
 * "chunk", "threads", "median_s", "min_s", "cpu_median_s"} (the process's CPU seconds: at 1 thread on a loaded
 * machine, the work without the waits for a core).
 */
#define _POSIX_C_SOURCE 199309L
#define MPLC_MAX_THREADS 8
#include "mplc_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_seconds(CLOCK_MONOTONIC); }

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

typedef struct {
    int dw, dx, n, h, w, in, out, cin, cout, chunk;
    const float *src, *dst_in, *weights;
    float *dst, *filters[MPLC_MAX_THREADS], *dweights[MPLC_MAX_THREADS];
    mplc_winograd_scratch s[MPLC_MAX_THREADS], s4[MPLC_MAX_THREADS];
    int f2;
} bench;

#ifdef MPLC_WINOGRAD4
#define WINOGRAD4(name) mplc_winograd4_##name
#else /* a runtime without F(4x4, 3x3) (--baseline): never called */
#define WINOGRAD4(name) mplc_winograd_##name
#define mplc_winograd4_tiles mplc_winograd_tiles
#endif

/* One part of the kernel, as the generated code splits it: the forward and ∂x claim pieces of CHUNK images, each
 * part with its own transformed filters; ∂W sums a contiguous range of images into the part's own partial sum
 * (the parts' sums are added after, as in the step). */
static void run_part(void *context, int part, int parts) {
    bench *b = context;
    const mplc_window whole = {b->chunk, b->h, b->w, b->cin, 3, 1, 1};
    const size_t image_in = (size_t)b->h * b->w * b->cin, image_out = (size_t)b->h * b->w * b->cout;
    if (b->dw) {
        size_t lo, hi;
        mplc_part((size_t)b->n, (size_t)b->chunk, part, parts, &lo, &hi);
        for (size_t n0 = lo; n0 < hi; n0 += (size_t)b->chunk) {
            mplc_window g = whole;
            g.batch = hi - n0 < (size_t)b->chunk ? (int)(hi - n0) : b->chunk;
            mplc_winograd_filter_gradient(b->filters[part], b->src + n0 * image_in, b->dst_in + n0 * image_out, g, b->out,
                                          n0 != lo, b->s[part]);
        }
        if (lo < hi) mplc_winograd_filters_transpose(b->dweights[part], b->filters[part], b->in, b->out);
        return;
    }
#ifdef MPLC_WINOGRAD4 /* F(4x4, 3x3) where the step uses it (GEMM.winogradTile), unless F2 is set */
    const int f4 = !b->f2 && 36 * ((b->h + 3) / 4) * ((b->w + 3) / 4) < 16 * ((b->h + 1) / 2) * ((b->w + 1) / 2);
#else
    const int f4 = 0;
#endif
    if (f4) WINOGRAD4(filters)(b->filters[part], b->weights, b->cin, b->cout, b->dx);
    else mplc_winograd_filters(b->filters[part], b->weights, b->cin, b->cout, b->dx);
    size_t lo, hi;
    while (mplc_claim((size_t)b->n, (size_t)b->chunk, &lo, &hi)) {
        mplc_window g = whole;
        g.batch = (int)(hi - lo);
        if (f4)
            WINOGRAD4(conv3x3)(b->dst + lo * image_out, b->src + lo * image_in, b->filters[part], g, b->cout, b->s4[part]);
        else
            mplc_winograd_conv3x3(b->dst + lo * image_out, b->src + lo * image_in, b->filters[part], g, b->cout, b->s[part]);
    }
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr, "usage: conv_bench fwd|dx|dw N H W IN OUT CHUNK REPS THREADS\n");
        return 2;
    }
    const char *op = argv[1];
    const int n = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]), in = atoi(argv[5]), out = atoi(argv[6]);
    const int chunk = atoi(argv[7]), reps = atoi(argv[8]), threads = atoi(argv[9]);
    const int fwd = !strcmp(op, "fwd"), dx = !strcmp(op, "dx"), dw = !strcmp(op, "dw");
    if (!(fwd || dx || dw) || n < 1 || h < 1 || w < 1 || in < 1 || out < 1 || chunk < 1 || reps < 1 || threads < 1 ||
        threads > MPLC_MAX_THREADS) {
        fprintf(stderr, "conv_bench: bad arguments\n");
        return 2;
    }
    if (mplc_pool_resize(threads) != threads) { /* and OpenBLAS on one thread, as in a step */
        fprintf(stderr, "conv_bench: cannot start %d threads\n", threads);
        return 1;
    }
    const size_t pixels = (size_t)n * h * w;
    /* the convolution computed: from `cin` channels of `src` to `cout` channels (∂x: ∂y's OUT to ∂x's IN) */
    bench b = {dw, dx, n, h, w, in, out, dx ? out : in, dx ? in : out, chunk, NULL, NULL, NULL, NULL, {0}, {0}, {{0}}, {{0}},
               getenv("MPLC_BENCH_F2") != NULL};
    b.src = filled(pixels * b.cin);
    b.dst = filled(pixels * b.cout);
    b.dst_in = b.dst;
    b.weights = filled(9 * (size_t)in * out);
    const mplc_window whole = {chunk, h, w, b.cin, 3, 1, 1};
    const size_t tiles = mplc_winograd_tiles(whole);
    for (int t = 0; t < threads; t++) {
        b.filters[t] = filled(36 * (size_t)in * out);
        b.dweights[t] = filled(9 * (size_t)in * out);
        b.s[t] = (mplc_winograd_scratch){.v = filled(16 * tiles * b.cin), .m = filled(16 * tiles * b.cout),
                                         .zeros = filled((size_t)b.cin + b.cout), .dropped = filled((size_t)b.cout),
                                         .v_plane = tiles * b.cin, .m_plane = tiles * b.cout};
        const size_t tiles4 = mplc_winograd4_tiles(whole);
        b.s4[t] = (mplc_winograd_scratch){.v = filled(36 * tiles4 * b.cin), .m = filled(36 * tiles4 * b.cout),
                                          .zeros = filled((size_t)b.cin + b.cout), .dropped = filled((size_t)b.cout),
                                          .v_plane = tiles4 * b.cin, .m_plane = tiles4 * b.cout};
#ifndef MPLC_WINOGRAD_BLOCK_BYTES /* a runtime from before the blocks of tiles (--baseline): one tile's Bᵀ d */
        b.s[t].bd = filled(16 * (size_t)b.cin);
#endif
    }
    double *times = malloc(sizeof(double) * (size_t)reps), *cpu = malloc(sizeof(double) * (size_t)reps);
    for (int rep = -1; rep < reps; rep++) {
        const double start = now(), cpu_start = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
        mplc_parallel(run_part, &b);
        if (dw)
            for (int t = 1; t < threads; t++)
                for (size_t i = 0; i < 9 * (size_t)in * out; i++) b.dweights[0][i] += b.dweights[t][i];
        if (rep >= 0) times[rep] = now() - start, cpu[rep] = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    }
    double best = times[0];
    for (int i = 1; i < reps; i++) best = times[i] < best ? times[i] : best;
    qsort(times, (size_t)reps, sizeof(double), compare);
    qsort(cpu, (size_t)reps, sizeof(double), compare);
    printf("{\"op\": \"%s\", \"n\": %d, \"h\": %d, \"w\": %d, \"in\": %d, \"out\": %d, \"chunk\": %d, \"threads\": %d, "
           "\"median_s\": %.6g, \"min_s\": %.6g, \"cpu_median_s\": %.6g}\n",
           op, n, h, w, in, out, chunk, threads, times[reps / 2], best, cpu[reps / 2]);
    return 0;
}
