/* The runtime's Winograd F(2x2, 3x3) convolutions (Templates/runtime/mplc_runtime.h) against a direct 3x3
 * stride-1 pad-1 convolution in double: the forward product, ∂x (the transposed convolution, with flipped
 * filters) and ∂W (the filter gradient summed over two chunks), on odd and even sides and channel counts that
 * leave partial register tiles; and F(4x4, 3x3)'s forward and ∂x on the same shapes. The error is the largest
 * absolute one over the largest |value| (VERBOSE=1 prints it per shape). F(2x2, 3x3)'s bound, 2e-6, is about 4x
 * the largest measured (4.6e-7, 128 channels); F(4x4, 3x3)'s transforms (Aᵀ up to 8, G down to 1/24) give about
 * 15-30x that (up to 8.8e-6 at 64 and 128 channels, 2-5e-6 at 8-40), so its bound is 2e-5: 2.3x the largest,
 * and a coefficient off by 1e-4 of itself (8 -> 8.001 in Aᵀ, 1/6 -> 1/6.001 in G) fails it at 3e-4 and more.
 * run_tests.sh builds it three times: as is (plain loops), with -march=native (the AVX2 or AVX-512 tiles where
 * the machine has them), and so with blocks of the fewest tiles. */
#define MPLC_MAX_THREADS 8
#define MPLC_NAIVE_GEMM /* the ∂W products are sgemm: the plain loop of the runtime, no OpenBLAS to link */
#include "mplc_runtime.h"

#include <math.h>

#include "test_harness.h"

#ifndef F4_BOUND
#define F4_BOUND 2e-5
#endif

static unsigned long long rng = 0x2545F4914F6CDD1DULL;
static float uniform(void) { /* in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* x[n, h, w, c] or 0 on the padding. */
static double pixel(const float *x, mplc_window g, int n, int y, int xx, int c) {
    const ptrdiff_t at = mplc_pixel(g, n, y, xx);
    return at < 0 ? 0.0 : x[at + c];
}

/* max |got - want| / max |want| over n values. */
static double relative_error(const float *got, const double *want, size_t n) {
    double error = 0.0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        error = fmax(error, fabs(got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    return error / scale;
}

/* A scratch for the convolutions of g to `out` channels, each part allocated on its own (the generated code lays
 * them out in one temporary, by GEMM.winogradScratch). */
static mplc_winograd_scratch scratch_for(mplc_window g, int out) {
    const size_t tiles = mplc_winograd_tiles(g), in = (size_t)g.channels;
    mplc_winograd_scratch s = {malloc(16 * tiles * in * sizeof(float)), malloc(16 * tiles * (size_t)out * sizeof(float)),
                               malloc((in + (size_t)out) * sizeof(float)),
                               malloc((size_t)out * sizeof(float)), tiles * in, tiles * (size_t)out};
    return s;
}

/* The same for F(4x4, 3x3): 36 planes of its tiles. */
static mplc_winograd_scratch scratch4_for(mplc_window g, int out) {
    const size_t tiles = mplc_winograd4_tiles(g), in = (size_t)g.channels;
    mplc_winograd_scratch s = {malloc(36 * tiles * in * sizeof(float)), malloc(36 * tiles * (size_t)out * sizeof(float)),
                               malloc((in + (size_t)out) * sizeof(float)),
                               malloc((size_t)out * sizeof(float)), tiles * in, tiles * (size_t)out};
    return s;
}

static void free_scratch(mplc_winograd_scratch s) { free(s.v), free(s.m), free(s.zeros), free(s.dropped); }

static void check_shape(int batch, int height, int width, int in, int out) {
    const mplc_window g = {batch, height, width, in, 3, 1, 1}, gy = {batch, height, width, out, 3, 1, 1};
    const size_t pixels = (size_t)batch * height * width;
    float *x = malloc(pixels * in * sizeof(float)), *w = malloc(9 * (size_t)in * out * sizeof(float));
    float *dy = malloc(pixels * out * sizeof(float)), *y = malloc(pixels * out * sizeof(float));
    float *dx = malloc(pixels * in * sizeof(float)), *dw = malloc(9 * (size_t)in * out * sizeof(float));
    float *u = malloc(36 * (size_t)in * out * sizeof(float));
    const mplc_winograd_scratch scratch = scratch_for(g, out), scratch_dy = scratch_for(gy, in);
    const mplc_winograd_scratch scratch4 = scratch4_for(g, out), scratch4_dy = scratch4_for(gy, in);
    double *want_y = calloc(pixels * out, sizeof(double)), *want_dx = calloc(pixels * in, sizeof(double));
    double *want_dw = calloc(9 * (size_t)in * out, sizeof(double));
    for (size_t i = 0; i < pixels * in; i++) x[i] = uniform();
    for (size_t i = 0; i < pixels * out; i++) dy[i] = uniform();
    for (size_t i = 0; i < 9 * (size_t)in * out; i++) w[i] = uniform();

    /* y = Σ x[p + (ky-1, kx-1), c] w[ky, kx, c, f]; ∂x and ∂W its transposes against dy. */
    for (int n = 0; n < batch; n++)
        for (int oy = 0; oy < height; oy++)
            for (int ox = 0; ox < width; ox++)
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        for (int c = 0; c < in; c++) {
                            const double xv = pixel(x, g, n, oy + ky - 1, ox + kx - 1, c);
                            const ptrdiff_t at = mplc_pixel(g, n, oy + ky - 1, ox + kx - 1);
                            for (int f = 0; f < out; f++) {
                                const size_t wi = ((size_t)(ky * 3 + kx) * in + c) * out + f;
                                const size_t yi = (((size_t)n * height + oy) * width + ox) * out + f;
                                want_y[yi] += xv * w[wi];
                                want_dw[wi] += xv * dy[yi];
                                if (at >= 0) want_dx[at + c] += (double)dy[yi] * w[wi];
                            }
                        }

    char name[96];
    snprintf(name, sizeof name, "%d images %dx%d, %d -> %d channels", batch, height, width, in, out);
    current = name;
    mplc_winograd_filters(u, w, in, out, 0);
    mplc_winograd_conv3x3(y, x, u, g, out, scratch);
    const double e2 = relative_error(y, want_y, pixels * out);
    CHECK(e2 < 2e-6, "forward: relative error %.2e", e2);
    mplc_winograd_filters(u, w, out, in, 1);
    mplc_winograd_conv3x3(dx, dy, u, gy, in, scratch_dy);
    const double e2dx = relative_error(dx, want_dx, pixels * in);
    CHECK(e2dx < 2e-6, "∂x: relative error %.2e", e2dx);
    /* F(4x4, 3x3): its larger coefficients cost precision (F4_BOUND) */
    mplc_winograd4_filters(u, w, in, out, 0);
    mplc_winograd4_conv3x3(y, x, u, g, out, scratch4);
    const double e4 = relative_error(y, want_y, pixels * out);
    CHECK(e4 < F4_BOUND, "F(4x4, 3x3) forward: relative error %.2e", e4);
    mplc_winograd4_filters(u, w, out, in, 1);
    mplc_winograd4_conv3x3(dx, dy, u, gy, in, scratch4_dy);
    const double e4dx = relative_error(dx, want_dx, pixels * in);
    CHECK(e4dx < F4_BOUND, "F(4x4, 3x3) ∂x: relative error %.2e", e4dx);
    if (getenv("VERBOSE")) printf("%s: F(2,3) fwd %.2e dx %.2e; F(4,3) fwd %.2e dx %.2e\n", name, e2, e2dx, e4, e4dx);
    /* ∂W over the first image, then the rest accumulated, as a part sums its chunks. */
    mplc_window first = g, rest = g;
    first.batch = 1;
    rest.batch = batch - 1;
    mplc_winograd_filter_gradient(u, x, dy, first, out, 0, scratch);
    if (rest.batch > 0) mplc_winograd_filter_gradient(u, x + (size_t)height * width * in, dy + (size_t)height * width * out, rest, out, 1, scratch);
    mplc_winograd_filters_transpose(dw, u, in, out);
    CHECK(relative_error(dw, want_dw, 9 * (size_t)in * out) < 2e-6, "∂W: relative error %.2e",
          relative_error(dw, want_dw, 9 * (size_t)in * out));
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(u), free_scratch(scratch), free_scratch(scratch_dy);
    free_scratch(scratch4), free_scratch(scratch4_dy);
    free(want_y), free(want_dx), free(want_dw);
}

int main(void) {
    check_shape(1, 1, 1, 1, 1);
    check_shape(2, 5, 7, 8, 9);    /* odd sides: tiles over the edge; 9 columns: a masked tile */
    check_shape(3, 6, 4, 17, 33);  /* 17 and 33: partial tiles of rows and columns */
    check_shape(2, 14, 14, 32, 64); /* W2's second convolution */
    check_shape(1, 7, 7, 64, 32);  /* and its transpose's shape */
    check_shape(2, 32, 32, 32, 32); /* WRN-28-2's layers: many blocks of tiles, ∂W summed over them */
    check_shape(3, 8, 8, 128, 128);
    check_shape(2, 9, 11, 16, 48);  /* a block that ends inside an image, odd sides */
    check_shape(1, 32, 32, 16, 32); /* WRN-28-2's other shapes: 16 -> 32 (its ∂x a product 16 wide) */
    check_shape(1, 16, 16, 64, 64);
    check_shape(2, 13, 10, 24, 40); /* F(4x4, 3x3) tiles past an odd and an even edge, blocks inside images */
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
