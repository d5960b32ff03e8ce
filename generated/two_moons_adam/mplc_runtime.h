/*
 * mplc runtime: the hand-written helpers of the generated code. mplc writes this file beside every model.c, which
 * includes it (the one translation unit that uses it), and pastes it into exported libraries, which stay two
 * files. Every helper is MPLC_HELPER (static inline, marked unused so that a model that needs only some of them
 * compiles warning-free with gcc and clang), so two libraries linked into one program never clash.
 * Tensors are row-major float arrays; images are NHWC.
 */
#ifndef MPLC_RUNTIME_H
#define MPLC_RUNTIME_H
#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define MPLC_HELPER static inline __attribute__((unused))
#else
#define MPLC_HELPER static inline
#endif

/* ---- GEMM: OpenBLAS, or with -DMPLC_NAIVE_GEMM a plain triple loop to compare it against ---- */
#ifdef MPLC_NAIVE_GEMM
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

/* C = alpha * op(A) * op(B) + beta * C, row-major only; C is not read when beta is 0 (like BLAS). */
MPLC_HELPER void mplc_naive_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b,
                                    int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                                    float beta, float *c, int ldc) {
    (void)order;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float sum = 0.0f;
            for (int p = 0; p < k; p++) {
                const float a_ip = trans_a == CblasTrans ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                const float b_pj = trans_b == CblasTrans ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += a_ip * b_pj;
            }
            float *c_ij = &c[(size_t)i * ldc + j];
            *c_ij = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c_ij;
        }
    }
}
#define cblas_sgemm mplc_naive_sgemm
#else
#include <cblas.h>
#endif

/* ---- threads: the kernels' parts (docs/PERFORMANCE.md, "Threads") ----
 * One pool for everything: a parallel kernel runs part p of P on thread p (the caller is part 0), and a GEMM
 * inside a part calls OpenBLAS single-threaded, so no second pool of BLAS threads waits beside this one.
 * Parts are contiguous, in the same order for every call, so a run is deterministic for a given thread count.
 * Idle workers spin briefly (the step's parallel kernels follow each other within microseconds), then sleep. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

typedef void (*mplc_part_function)(void *context, int part, int parts);

/* Pauses a waiting thread spins before it sleeps (or yields, while it waits for the others' parts). */
#ifndef MPLC_SPINS
#define MPLC_SPINS (1 << 16)
#endif

static struct {
    atomic_int parts; /* parts of a parallel call (1: serial); changed only by mplc_pool_resize, between calls */
    int workers;      /* worker threads started */
    pthread_mutex_t lock;
    pthread_cond_t wake, resized;
    atomic_ulong generation; /* counts parallel calls; a worker runs one part for each new value */
    atomic_int unfinished;   /* workers still running their part of the current call */
    mplc_part_function function;
    void *context;
    unsigned long first_generation; /* the generation when the newest workers were started: they wait for the next */
    atomic_size_t claimed;          /* mplc_claim: the start of the next unclaimed piece of the current call */
} mplc_pool = {1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, NULL, 0, 0};

MPLC_HELPER void mplc_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the pool's generation differs from `seen`: spinning first, then asleep. Returns the new value. */
MPLC_HELPER unsigned long mplc_wait_for_call(unsigned long seen) {
    for (int spins = 0; spins < MPLC_SPINS; spins++) {
        const unsigned long now = atomic_load_explicit(&mplc_pool.generation, memory_order_acquire);
        if (now != seen) return now;
        mplc_pause();
    }
    pthread_mutex_lock(&mplc_pool.lock);
    unsigned long now;
    while ((now = atomic_load_explicit(&mplc_pool.generation, memory_order_acquire)) == seen)
        pthread_cond_wait(&mplc_pool.wake, &mplc_pool.lock);
    pthread_mutex_unlock(&mplc_pool.lock);
    return now;
}

/* A worker beyond the pool's parts (mplc_set_threads shrank it) sleeps until the pool grows back to include it.
 * Returns the generation to wait on from then: the one of that resize, since a call may have begun already. */
MPLC_HELPER unsigned long mplc_sit_out(int part) {
    pthread_mutex_lock(&mplc_pool.lock);
    while (part >= mplc_pool.parts) pthread_cond_wait(&mplc_pool.resized, &mplc_pool.lock);
    const unsigned long seen = mplc_pool.first_generation;
    pthread_mutex_unlock(&mplc_pool.lock);
    return seen;
}

static void *mplc_worker(void *argument) {
    const int part = (int)(intptr_t)argument;
    pthread_mutex_lock(&mplc_pool.lock);
    unsigned long seen = mplc_pool.first_generation; /* not the current one: a call may have begun already */
    pthread_mutex_unlock(&mplc_pool.lock);
    for (;;) {
        if (part >= mplc_pool.parts) seen = mplc_sit_out(part);
        seen = mplc_wait_for_call(seen);
        if (part >= mplc_pool.parts) continue; /* the pool shrank while this worker waited */
        mplc_pool.function(mplc_pool.context, part, mplc_pool.parts);
        atomic_fetch_sub_explicit(&mplc_pool.unfinished, 1, memory_order_release);
    }
    return NULL;
}

/* Runs function(context, p, P) for p = 0..P-1, P = the pool's parts, on P threads; returns when all are done. */
MPLC_HELPER void mplc_parallel(mplc_part_function function, void *context) {
    const int parts = mplc_pool.parts;
    atomic_store_explicit(&mplc_pool.claimed, 0, memory_order_relaxed);
    if (parts == 1) {
        function(context, 0, 1);
        return;
    }
    mplc_pool.function = function;
    mplc_pool.context = context;
    atomic_store_explicit(&mplc_pool.unfinished, parts - 1, memory_order_relaxed);
    pthread_mutex_lock(&mplc_pool.lock);
    atomic_fetch_add_explicit(&mplc_pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&mplc_pool.wake);
    pthread_mutex_unlock(&mplc_pool.lock);
    function(context, 0, parts);
    for (int spins = 0; atomic_load_explicit(&mplc_pool.unfinished, memory_order_acquire) > 0; spins++) {
        if (spins < MPLC_SPINS) mplc_pause();
        else sched_yield();
    }
}

/* The number of parts of a parallel call. */
MPLC_HELPER int mplc_threads(void) { return mplc_pool.parts; }

/* Claims the next `piece` of [0, n) for the calling thread: [*lo, *hi), or 0 when all of it is claimed. Threads
 * that finish early take more pieces, so a slower core does not hold the others up. Only for work whose result
 * does not depend on which thread does which piece. */
MPLC_HELPER int mplc_claim(size_t n, size_t piece, size_t *lo, size_t *hi) {
    const size_t start = atomic_fetch_add_explicit(&mplc_pool.claimed, piece, memory_order_relaxed);
    if (start >= n) return 0;
    *lo = start;
    *hi = n - start < piece ? n : start + piece;
    return 1;
}

/* [*lo, *hi): part `part` of `parts` of [0, n), cut at multiples of `block`. */
MPLC_HELPER void mplc_part(size_t n, size_t block, int part, int parts, size_t *lo, size_t *hi) {
    const size_t blocks = (n + block - 1) / block;
    *lo = blocks * (size_t)part / (size_t)parts * block;
    *hi = blocks * (size_t)(part + 1) / (size_t)parts * block;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

/* Starts workers so that parallel calls have `threads` parts (clamped to [1, MPLC_MAX_THREADS]); returns the
 * number of parts, fewer if a thread cannot be started. Not to be called while a step runs. */
MPLC_HELPER int mplc_pool_resize(int threads) {
    if (threads < 1) threads = 1;
    if (threads > MPLC_MAX_THREADS) threads = MPLC_MAX_THREADS;
    pthread_mutex_lock(&mplc_pool.lock);
    mplc_pool.first_generation = atomic_load_explicit(&mplc_pool.generation, memory_order_relaxed);
    while (mplc_pool.workers < threads - 1) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, mplc_worker, (void *)(intptr_t)(mplc_pool.workers + 1)) != 0) break;
        pthread_detach(thread);
        mplc_pool.workers++;
    }
    mplc_pool.parts = threads < mplc_pool.workers + 1 ? threads : mplc_pool.workers + 1;
    pthread_cond_broadcast(&mplc_pool.resized);
    pthread_mutex_unlock(&mplc_pool.lock);
#ifndef MPLC_NAIVE_GEMM
    openblas_set_num_threads(1);
#endif
    return mplc_pool.parts;
}

/* ---- sliding windows over NHWC batches (k x k window, stride, zero padding) ---- */
typedef struct {
    int batch, height, width, channels;
    int kernel, stride, padding;
} mplc_window;

MPLC_HELPER int mplc_out_height(mplc_window g) { return (g.height + 2 * g.padding - g.kernel) / g.stride + 1; }
MPLC_HELPER int mplc_out_width(mplc_window g) { return (g.width + 2 * g.padding - g.kernel) / g.stride + 1; }

/* Index into the NHWC input of pixel (y, x), or -1 when (y, x) falls on the padding. */
MPLC_HELPER ptrdiff_t mplc_pixel(mplc_window g, int n, int y, int x) {
    if (y < 0 || y >= g.height || x < 0 || x >= g.width) return -1;
    return ((ptrdiff_t)(n * g.height + y) * g.width + x) * g.channels;
}

/* columns[N*OH*OW, k*k*C]: row = output pixel, column = (ky, kx, c); padding reads as 0. */
MPLC_HELPER void mplc_im2col(float *restrict columns, const float *restrict image, mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g), c = g.channels;
    float *row = columns;
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ky = 0; ky < g.kernel; ky++)
                    for (int kx = 0; kx < g.kernel; kx++, row += c) {
                        const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                        if (pixel < 0) memset(row, 0, (size_t)c * sizeof(float));
                        else memcpy(row, image + pixel, (size_t)c * sizeof(float));
                    }
}

/* The transpose of im2col: every column entry is added back into the pixel it was read from. */
MPLC_HELPER void mplc_col2im(float *restrict image, const float *restrict columns, mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g), c = g.channels;
    memset(image, 0, (size_t)g.batch * g.height * g.width * c * sizeof(float));
    const float *row = columns;
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ky = 0; ky < g.kernel; ky++)
                    for (int kx = 0; kx < g.kernel; kx++, row += c) {
                        const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                        if (pixel < 0) continue;
                        for (int ch = 0; ch < c; ch++) image[pixel + ch] += row[ch];
                    }
}

/* ---- small GEMMs: the Winograd products, whose contraction is a layer's channels (32, 64) ----
 * C = A·B in register tiles of 6 rows x 16 columns, straight from A and B as they lie; A [m, k], B [k, n] and
 * C [m, n] row-major. On W2's 16 products [196, 32]·[32, 64] per chunk, OpenBLAS spends about as much on zeroing
 * C (beta = 0) and packing as on arithmetic: the forward convolution of 960 images by Winograd took 74 ms on one
 * core with sgemm for these products and 51 ms with these tiles (im2col + sgemm: 96 ms). */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* One step of the contraction for row r of a tile: C[r, 0:16] += A[r, p] * B[p, 0:16]. */
#define MPLC_TILE_ROW(r)                       \
    x = _mm256_broadcast_ss(a##r++);           \
    c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0); \
    c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1);
#define MPLC_TILE_ROWS MPLC_TILE_ROW(0) MPLC_TILE_ROW(1) MPLC_TILE_ROW(2) MPLC_TILE_ROW(3) MPLC_TILE_ROW(4) MPLC_TILE_ROW(5)

/* The tile of C at rows [0, rows) and columns [0, cols), rows <= 6, cols <= 16. Rows past `rows` repeat row 0
 * (computed, not stored); columns past `cols` are masked. */
MPLC_HELPER void mplc_gemm_tile(float *c, size_t ldc, const float *a, size_t lda, const float *b, size_t ldb, int rows,
                                int cols, int k) {
    const float *a0 = a, *a1 = a + (rows > 1) * lda, *a2 = a + (rows > 2) * 2 * lda, *a3 = a + (rows > 3) * 3 * lda;
    const float *a4 = a + (rows > 4) * 4 * lda, *a5 = a + (rows > 5) * 5 * lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, x, b0, b1;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
    if (cols == 16) {
        for (int p = 0; p < k; p++, b += ldb) {
            b0 = _mm256_loadu_ps(b);
            b1 = _mm256_loadu_ps(b + 8);
            MPLC_TILE_ROWS
        }
    } else {
        for (int p = 0; p < k; p++, b += ldb) {
            b0 = _mm256_maskload_ps(b, mask0);
            b1 = _mm256_maskload_ps(b + 8, mask1);
            MPLC_TILE_ROWS
        }
    }
    const __m256 tile[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < rows; r++, c += ldc) {
        if (cols == 16) { /* plain stores: masked ones are microcoded on AMD's cores, many times slower */
            _mm256_storeu_ps(c, tile[r][0]);
            _mm256_storeu_ps(c + 8, tile[r][1]);
        } else {
            _mm256_maskstore_ps(c, mask0, tile[r][0]);
            _mm256_maskstore_ps(c + 8, mask1, tile[r][1]);
        }
    }
}
#undef MPLC_TILE_ROWS
#undef MPLC_TILE_ROW

MPLC_HELPER void mplc_small_gemm(float *restrict c, const float *restrict a, const float *restrict b, int m, int n, int k) {
    for (int i = 0; i < m; i += 6)
        for (int j = 0; j < n; j += 16)
            mplc_gemm_tile(c + (size_t)i * n + j, (size_t)n, a + (size_t)i * k, (size_t)k, b + j, (size_t)n,
                           m - i < 6 ? m - i : 6, n - j < 16 ? n - j : 16, k);
}
#else
/* Without AVX2 and FMA: the same product in plain loops (the rows of B stream through C's row). */
MPLC_HELPER void mplc_small_gemm(float *restrict c, const float *restrict a, const float *restrict b, int m, int n, int k) {
    for (int i = 0; i < m; i++) {
        float *restrict row = c + (size_t)i * n;
        for (int j = 0; j < n; j++) row[j] = 0.0f;
        for (int p = 0; p < k; p++) {
            const float a_ip = a[(size_t)i * k + p];
            const float *restrict b_p = b + (size_t)p * n;
            for (int j = 0; j < n; j++) row[j] += a_ip * b_p[j];
        }
    }
}
#endif

/* ---- 3x3 stride-1 pad-1 convolutions by Winograd's F(2x2, 3x3) (Lavin & Gray, CVPR 2016) ----
 * Each 2x2 block of outputs comes from a 4x4 tile of the input, per pair of channels
 *     Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A,
 * 16 multiplies where the direct product needs 36. Summed over the input channels, the 16 element-wise products
 * are 16 GEMMs [tiles, in]·[in, out]: 2.25 times fewer multiplies than im2col's GEMM, for a few additions per
 * element in the transforms. The tiles cover the image; outputs past an odd edge are computed and dropped. */

/* u[16][in][out]: the transformed filters G g Gᵀ of a 3x3 convolution from `in` to `out` channels. `w` is its
 * im2col GEMM's [9*in, out] weight matrix; or, with `flipped`, the weights [9*out, in] of the convolution the
 * other way, turned by 180 degrees: the transposed convolution, i.e. the ∂x of a 3x3 stride-1 pad-1 one. */
MPLC_HELPER void mplc_winograd_filters(float *restrict u, const float *restrict w, int in, int out, int flipped) {
    const size_t plane = (size_t)in * out;
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++) {
            float g[3][3], gg[4][3];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    g[a][b] = flipped ? w[((size_t)((2 - a) * 3 + 2 - b) * out + o) * in + i]
                                      : w[((size_t)(a * 3 + b) * in + i) * out + o];
            for (int b = 0; b < 3; b++) { /* G g */
                gg[0][b] = g[0][b];
                gg[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
                gg[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
                gg[3][b] = g[2][b];
            }
            for (int a = 0; a < 4; a++) { /* (G g) Gᵀ */
                float *element = u + (size_t)(4 * a) * plane + (size_t)i * out + o;
                element[0] = gg[a][0];
                element[plane] = 0.5f * (gg[a][0] + gg[a][1] + gg[a][2]);
                element[2 * plane] = 0.5f * (gg[a][0] - gg[a][1] + gg[a][2]);
                element[3 * plane] = gg[a][2];
            }
        }
}

/* ∂w[9*in, out] (the layout of mplc_winograd_filters' w, not flipped) = Gᵀ ∂u G: the transpose of the filter
 * transform, which takes a gradient with respect to the transformed filters back to the 3x3 filters. */
MPLC_HELPER void mplc_winograd_filters_transpose(float *restrict dw, const float *restrict du, int in, int out) {
    const size_t plane = (size_t)in * out;
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++) {
            float d[4][4], gd[3][4];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) d[a][b] = du[(size_t)(4 * a + b) * plane + (size_t)i * out + o];
            for (int b = 0; b < 4; b++) { /* Gᵀ ∂u */
                gd[0][b] = d[0][b] + 0.5f * (d[1][b] + d[2][b]);
                gd[1][b] = 0.5f * (d[1][b] - d[2][b]);
                gd[2][b] = 0.5f * (d[1][b] + d[2][b]) + d[3][b];
            }
            for (int a = 0; a < 3; a++) { /* (Gᵀ ∂u) G */
                float *row = dw + ((size_t)(a * 3) * in + i) * out + o;
                row[0] = gd[a][0] + 0.5f * (gd[a][1] + gd[a][2]);
                row[plane] = 0.5f * (gd[a][1] - gd[a][2]);
                row[2 * plane] = 0.5f * (gd[a][1] + gd[a][2]) + gd[a][3];
            }
        }
}

/* Tiles of 2x2 outputs covering a batch. */
MPLC_HELPER size_t mplc_winograd_tiles(mplc_window g) {
    return (size_t)g.batch * (size_t)((g.height + 1) / 2) * (size_t)((g.width + 1) / 2);
}

/* The scratch of mplc_winograd_conv3x3 and mplc_winograd_filter_gradient, laid out by the caller (the generated
 * code's offsets come from GEMM.winogradScratch in Sources/MPLLower/Kernels.swift, the layout's one home): room
 * for the transformed input tiles v[16][tiles][in] and the products or output gradients m[16][tiles][out] (v_plane
 * >= tiles x in, m_plane >= tiles x out floats); a row of in + out floats that the helpers zero, read for the padding; and a row of out floats that takes the
 * outputs past an odd edge. The kernels use the front of v and m for one block of tiles at a time. */
typedef struct {
    float *v, *m, *zeros, *dropped;
    size_t v_plane, m_plane;
} mplc_winograd_scratch;

/* The kernels go through a chunk's tiles in blocks whose transformed inputs and products (64 (in + out) bytes a
 * tile) stay in the core's L2 cache between the transform, the 16 products and the inverse transform; the whole
 * chunk at once (1 MiB for one 32x32 image of 32 channels) went out to L3 and back. A multiple of 8 tiles (the
 * rows of a register tile), at most the chunk's. */
#ifndef MPLC_WINOGRAD_BLOCK_BYTES
#define MPLC_WINOGRAD_BLOCK_BYTES (128 * 1024)
#endif
#ifndef MPLC_WINOGRAD4_BLOCK_BYTES /* F(4x4, 3x3)'s blocks (below) */
#define MPLC_WINOGRAD4_BLOCK_BYTES MPLC_WINOGRAD_BLOCK_BYTES
#endif
MPLC_HELPER size_t mplc_winograd_block(size_t tiles, int in, int out, size_t bytes) {
    size_t block = bytes / (64 * (size_t)(in + out)) / 8 * 8;
    if (block < 8) block = 8;
    return block < tiles ? block : tiles;
}

/* The pixel pointers of tile t (outputs (2ty..2ty+1, 2tx..2tx+1) of image n): the 4x4 input tile around it, or
 * `zeros` on the padding. */
MPLC_HELPER void mplc_winograd_tile_inputs(const float *d[4][4], const float *x, const float *zeros, mplc_window g,
                                           size_t t) {
    const size_t tile_rows = (size_t)(g.height + 1) / 2, tile_cols = (size_t)(g.width + 1) / 2;
    const int n = (int)(t / (tile_rows * tile_cols)), ty = (int)(t / tile_cols % tile_rows), tx = (int)(t % tile_cols);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const ptrdiff_t pixel = mplc_pixel(g, n, 2 * ty - 1 + a, 2 * tx - 1 + b);
            d[a][b] = pixel < 0 ? zeros : x + pixel;
        }
}

/* v[16][plane] at row `row` (of `in` floats) = Bᵀ d B for the channels [c, c + w) of one tile, w <= 16: on local
 * arrays of 16 channels, which the compiler keeps in vector registers (pointers into v and x could alias). */
MPLC_HELPER void mplc_winograd_transform_input(float *v, size_t plane, const float *d[4][4], int c, int w) {
    float e[4][4][16] = {{{0}}}, bd[4][4][16], r[16][16];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) memcpy(e[a][b], d[a][b] + c, (size_t)w * sizeof(float));
    for (int b = 0; b < 4; b++) /* Bᵀ d, column b */
        for (int l = 0; l < 16; l++) {
            bd[0][b][l] = e[0][b][l] - e[2][b][l];
            bd[1][b][l] = e[1][b][l] + e[2][b][l];
            bd[2][b][l] = e[2][b][l] - e[1][b][l];
            bd[3][b][l] = e[1][b][l] - e[3][b][l];
        }
    for (int a = 0; a < 4; a++) /* (Bᵀ d) B, row a */
        for (int l = 0; l < 16; l++) {
            r[4 * a][l] = bd[a][0][l] - bd[a][2][l];
            r[4 * a + 1][l] = bd[a][1][l] + bd[a][2][l];
            r[4 * a + 2][l] = bd[a][2][l] - bd[a][1][l];
            r[4 * a + 3][l] = bd[a][1][l] - bd[a][3][l];
        }
    for (int xi = 0; xi < 16; xi++) memcpy(v + xi * plane + c, r[xi], (size_t)w * sizeof(float));
}

/* v[16][count][in] (planes of count x in floats) = Bᵀ d B for the tiles [t0, t0 + count) of x. */
MPLC_HELPER void mplc_winograd_input_block(float *v, const float *x, const float *zeros, mplc_window g, size_t t0,
                                           size_t count) {
    const int in = g.channels;
    const size_t plane = count * (size_t)in;
    for (size_t j = 0; j < count; j++) {
        const float *d[4][4];
        mplc_winograd_tile_inputs(d, x, zeros, g, t0 + j);
        float *row = v + j * (size_t)in;
        int c = 0;
        for (; c + 16 <= in; c += 16) mplc_winograd_transform_input(row, plane, d, c, 16);
        if (c < in) mplc_winograd_transform_input(row, plane, d, c, in - c);
    }
}

/* C[m, n] = A·B (with `accumulate`, C += A·B), A[i, p] = a[i * a_row + p * a_step], B [k, n] row-major with row
 * stride ldb, C row-major with row stride ldc: the 16 products of a block of tiles (A = v_ξ, a_row = in,
 * a_step = 1) and the filter gradient's (A = v_ξᵀ, a_row = 1, a_step = in). */
#if defined(__AVX512F__)
#include <immintrin.h>
/* Register tiles of 8 rows x 32 columns (16 accumulators, with 2 for B and 1 broadcast), columns masked at the
 * right edge; rows past `rows` repeat row 0 (computed, not stored). On AMD's Zen 4 a 512-bit FMA is two 256-bit
 * halves, so the gain over the AVX2 tiles is half the loads, broadcasts and loop overhead per multiply-add. */
#define MPLC_Z_ROW(r)                               \
    x = _mm512_set1_ps(a##r[p * a_step]);           \
    c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);      \
    c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1);
#define MPLC_Z_ROWS MPLC_Z_ROW(0) MPLC_Z_ROW(1) MPLC_Z_ROW(2) MPLC_Z_ROW(3) MPLC_Z_ROW(4) MPLC_Z_ROW(5) MPLC_Z_ROW(6) MPLC_Z_ROW(7)
MPLC_HELPER void mplc_gemm_tile_8x32(float *c, size_t ldc, const float *a, size_t a_row, size_t a_step, const float *b,
                                     size_t ldb, int rows, int cols, int k, int accumulate) {
    const float *a0 = a, *a1 = a + (rows > 1) * a_row, *a2 = a + (rows > 2) * 2 * a_row, *a3 = a + (rows > 3) * 3 * a_row;
    const float *a4 = a + (rows > 4) * 4 * a_row, *a5 = a + (rows > 5) * 5 * a_row, *a6 = a + (rows > 6) * 6 * a_row;
    const float *a7 = a + (rows > 7) * 7 * a_row;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00, x, b0, b1;
    const __mmask16 mask0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 mask1 = cols >= 32 ? (__mmask16)0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    if (cols == 32) {
        for (size_t p = 0; p < (size_t)k; p++, b += ldb) {
            b0 = _mm512_loadu_ps(b);
            b1 = _mm512_loadu_ps(b + 16);
            MPLC_Z_ROWS
        }
    } else {
        for (size_t p = 0; p < (size_t)k; p++, b += ldb) {
            b0 = _mm512_maskz_loadu_ps(mask0, b);
            b1 = _mm512_maskz_loadu_ps(mask1, b + 16);
            MPLC_Z_ROWS
        }
    }
    const __m512 tile[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                               {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    for (int r = 0; r < rows; r++, c += ldc) {
        __m512 t0 = tile[r][0], t1 = tile[r][1];
        if (accumulate) {
            t0 = _mm512_add_ps(t0, _mm512_maskz_loadu_ps(mask0, c));
            t1 = _mm512_add_ps(t1, _mm512_maskz_loadu_ps(mask1, c + 16));
        }
        _mm512_mask_storeu_ps(c, mask0, t0);
        _mm512_mask_storeu_ps(c + 16, mask1, t1);
    }
}
#undef MPLC_Z_ROWS
#undef MPLC_Z_ROW

/* 8 rows x 16 columns, for products at most 16 wide (fashion_wrn's 16-channel layers, the ∂x of WRN-28-2's
 * 16 -> 32 convolution), where half of an 8 x 32 tile's multiply-adds would be masked off. Eight accumulators
 * cover the FMA's latency on Zen 4 (one 512-bit FMA a cycle, 4 cycles). */
#define MPLC_Z16_ROW(r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[p * a_step]), b0, c##r);
MPLC_HELPER void mplc_gemm_tile_8x16(float *c, size_t ldc, const float *a, size_t a_row, size_t a_step, const float *b,
                                     size_t ldb, int rows, int cols, int k, int accumulate) {
    const float *a0 = a, *a1 = a + (rows > 1) * a_row, *a2 = a + (rows > 2) * 2 * a_row, *a3 = a + (rows > 3) * 3 * a_row;
    const float *a4 = a + (rows > 4) * 4 * a_row, *a5 = a + (rows > 5) * 5 * a_row, *a6 = a + (rows > 6) * 6 * a_row;
    const float *a7 = a + (rows > 7) * 7 * a_row;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, b0;
    const __mmask16 mask = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    for (size_t p = 0; p < (size_t)k; p++, b += ldb) {
        b0 = _mm512_maskz_loadu_ps(mask, b);
        MPLC_Z16_ROW(0) MPLC_Z16_ROW(1) MPLC_Z16_ROW(2) MPLC_Z16_ROW(3) MPLC_Z16_ROW(4) MPLC_Z16_ROW(5) MPLC_Z16_ROW(6)
        MPLC_Z16_ROW(7)
    }
    const __m512 tile[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int r = 0; r < rows; r++, c += ldc) {
        const __m512 t = accumulate ? _mm512_add_ps(tile[r], _mm512_maskz_loadu_ps(mask, c)) : tile[r];
        _mm512_mask_storeu_ps(c, mask, t);
    }
}
#undef MPLC_Z16_ROW

/* 4 rows x 32 columns, for a product's last rows when they are at most 4 (F(4x4, 3x3) on 8x8 images: 4 tiles an
 * image, 12 a chunk of 3), where an 8 x 32 tile would compute twice the rows it stores. */
#define MPLC_Z4_ROW(r)                          \
    x = _mm512_set1_ps(a##r[p * a_step]);       \
    c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);  \
    c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1);
MPLC_HELPER void mplc_gemm_tile_4x32(float *c, size_t ldc, const float *a, size_t a_row, size_t a_step, const float *b,
                                     size_t ldb, int rows, int cols, int k, int accumulate) {
    const float *a0 = a, *a1 = a + (rows > 1) * a_row, *a2 = a + (rows > 2) * 2 * a_row, *a3 = a + (rows > 3) * 3 * a_row;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 x, b0, b1;
    const __mmask16 mask0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 mask1 = cols >= 32 ? (__mmask16)0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (size_t p = 0; p < (size_t)k; p++, b += ldb) {
        b0 = _mm512_maskz_loadu_ps(mask0, b);
        b1 = _mm512_maskz_loadu_ps(mask1, b + 16);
        MPLC_Z4_ROW(0) MPLC_Z4_ROW(1) MPLC_Z4_ROW(2) MPLC_Z4_ROW(3)
    }
    const __m512 tile[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int r = 0; r < rows; r++, c += ldc) {
        __m512 t0 = tile[r][0], t1 = tile[r][1];
        if (accumulate) {
            t0 = _mm512_add_ps(t0, _mm512_maskz_loadu_ps(mask0, c));
            t1 = _mm512_add_ps(t1, _mm512_maskz_loadu_ps(mask1, c + 16));
        }
        _mm512_mask_storeu_ps(c, mask0, t0);
        _mm512_mask_storeu_ps(c + 16, mask1, t1);
    }
}
#undef MPLC_Z4_ROW

MPLC_HELPER void mplc_winograd_gemm(float *c, size_t ldc, const float *a, size_t a_row, size_t a_step, const float *b,
                                    size_t ldb, int m, int n, int k, int accumulate) {
    if (n <= 16) {
        for (int i = 0; i < m; i += 8)
            mplc_gemm_tile_8x16(c + (size_t)i * ldc, ldc, a + (size_t)i * a_row, a_row, a_step, b, ldb,
                                m - i < 8 ? m - i : 8, n, k, accumulate);
        return;
    }
    for (int j = 0; j < n; j += 32) /* B's panel of 32 columns stays in L1 while the rows go by */
        for (int i = 0; i < m; i += 8)
            (m - i <= 4 ? mplc_gemm_tile_4x32 : mplc_gemm_tile_8x32)(c + (size_t)i * ldc + j, ldc, a + (size_t)i * a_row,
                                                                     a_row, a_step, b + j, ldb, m - i < 8 ? m - i : 8,
                                                                     n - j < 32 ? n - j : 32, k, accumulate);
}
#endif

/* The products of a block of `count` tiles: plane xi of m [count, out] = plane xi of v [count, in] times plane xi of
 * the transformed filters u [in, out], for the 16 planes of F(2x2, 3x3) or the 36 of F(4x4, 3x3). */
MPLC_HELPER void mplc_winograd_products(float *m, const float *v, const float *u, int planes, size_t count, int in,
                                        int out) {
    const size_t v_plane = count * in, m_plane = count * out;
    for (int xi = 0; xi < planes; xi++) {
#if defined(__AVX512F__)
        mplc_winograd_gemm(m + xi * m_plane, (size_t)out, v + xi * v_plane, (size_t)in, 1, u + (size_t)xi * in * out,
                           (size_t)out, (int)count, out, in, 0);
#else
        mplc_small_gemm(m + xi * m_plane, v + xi * v_plane, u + (size_t)xi * in * out, (int)count, out, in);
#endif
    }
}

/* y[2x2 tile] = Aᵀ m A for the channels [f, f + w) of one tile, w <= 16, m's 16 rows `plane` apart. */
MPLC_HELPER void mplc_winograd_transform_output(float *o[2][2], const float *m, size_t plane, int f, int w) {
    float e[16][16], am[2][4][16], r[2][2][16];
    for (int xi = 0; xi < 16; xi++) memcpy(e[xi], m + xi * plane + f, (size_t)w * sizeof(float));
    for (int b = 0; b < 4; b++)
        for (int l = 0; l < 16; l++) {
            am[0][b][l] = e[b][l] + e[4 + b][l] + e[8 + b][l];
            am[1][b][l] = e[4 + b][l] - e[8 + b][l] - e[12 + b][l];
        }
    for (int a = 0; a < 2; a++)
        for (int l = 0; l < 16; l++) {
            r[a][0][l] = am[a][0][l] + am[a][1][l] + am[a][2][l];
            r[a][1][l] = am[a][1][l] - am[a][2][l] - am[a][3][l];
        }
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) memcpy(o[a][b] + f, r[a][b], (size_t)w * sizeof(float));
}

/* y[N, H, W, out] = the 3x3 stride-1 pad-1 convolution of x[N, H, W, in] (g: in = g.channels) with the
 * filters u of mplc_winograd_filters: by blocks of tiles, each transformed, multiplied and transformed back
 * while it is in cache. */
MPLC_HELPER void mplc_winograd_conv3x3(float *restrict y, const float *restrict x, const float *restrict u, mplc_window g,
                                      int out, mplc_winograd_scratch s) {
    const int in = g.channels, tile_rows = (g.height + 1) / 2, tile_cols = (g.width + 1) / 2;
    memset(s.zeros, 0, (size_t)(in + out) * sizeof(float));
    const size_t tiles = mplc_winograd_tiles(g), block = mplc_winograd_block(tiles, in, out, MPLC_WINOGRAD_BLOCK_BYTES);
    mplc_window output = g; /* y's pixels */
    output.channels = out;
    for (size_t t0 = 0; t0 < tiles; t0 += block) {
        const size_t count = tiles - t0 < block ? tiles - t0 : block, m_plane = count * out;
        mplc_winograd_input_block(s.v, x, s.zeros, g, t0, count);
        mplc_winograd_products(s.m, s.v, u, 16, count, in, out);
        for (size_t j = 0; j < count; j++) { /* y = Aᵀ m A */
            const size_t t = t0 + j;
            const int n = (int)(t / ((size_t)tile_rows * tile_cols)), ty = (int)(t / tile_cols % tile_rows);
            const int tx = (int)(t % tile_cols);
            float *o[2][2];
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    const ptrdiff_t pixel = mplc_pixel(output, n, 2 * ty + a, 2 * tx + b);
                    o[a][b] = pixel < 0 ? s.dropped : y + pixel;
                }
            const float *mt = s.m + j * out;
            int f = 0;
            for (; f + 16 <= out; f += 16) mplc_winograd_transform_output(o, mt, m_plane, f, 16);
            if (f < out) mplc_winograd_transform_output(o, mt, m_plane, f, out - f);
        }
    }
}

/* m[16][plane] at row `row` = A ∂y Aᵀ for the channels [f, f + w) of one tile, w <= 16 (e: its 2x2 outputs'
 * gradients, `zeros` past an odd edge). */
MPLC_HELPER void mplc_winograd_transform_gradient(float *m, size_t plane, const float *e[2][2], int f, int w) {
    float d[2][2][16] = {{{0}}}, row[4][2][16], r[16][16];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) memcpy(d[a][b], e[a][b] + f, (size_t)w * sizeof(float));
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 16; l++) {
            row[0][b][l] = d[0][b][l];
            row[1][b][l] = d[0][b][l] + d[1][b][l];
            row[2][b][l] = d[0][b][l] - d[1][b][l];
            row[3][b][l] = -d[1][b][l];
        }
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 16; l++) {
            r[4 * a][l] = row[a][0][l];
            r[4 * a + 1][l] = row[a][0][l] + row[a][1][l];
            r[4 * a + 2][l] = row[a][0][l] - row[a][1][l];
            r[4 * a + 3][l] = -row[a][1][l];
        }
    for (int xi = 0; xi < 16; xi++) memcpy(m + xi * plane + f, r[xi], (size_t)w * sizeof(float));
}

/* du[16][in][out] = Σ over tiles of V_t ⊗ (A ∂y_t Aᵀ) (with `accumulate`, added to du): the gradient with respect
 * to the transformed filters of mplc_winograd_conv3x3(y, x, ...) given ∂y = dy[N, H, W, out]; outputs past an
 * odd edge have no gradient. mplc_winograd_filters_transpose turns du into ∂W; in between, du can sum chunks.
 * By blocks of tiles, as the forward product; the blocks are larger (the products' contraction is the block's
 * tiles, and each block reads and writes du once). */
MPLC_HELPER void mplc_winograd_filter_gradient(float *restrict du, const float *restrict x, const float *restrict dy,
                                               mplc_window g, int out, int accumulate, mplc_winograd_scratch s) {
    const int in = g.channels;
    memset(s.zeros, 0, (size_t)(in + out) * sizeof(float));
#if defined(__AVX512F__)
    const size_t tiles = mplc_winograd_tiles(g), block = mplc_winograd_block(tiles, in, out, 2 * MPLC_WINOGRAD_BLOCK_BYTES);
#else /* sgemm, which wants the long contraction of the whole chunk more than the cache */
    const size_t tiles = mplc_winograd_tiles(g), block = tiles;
#endif
    mplc_window output = g; /* dy's pixels */
    output.channels = out;
    for (size_t t0 = 0; t0 < tiles; t0 += block) {
        const size_t count = tiles - t0 < block ? tiles - t0 : block, v_plane = count * in, m_plane = count * out;
        mplc_winograd_input_block(s.v, x, s.zeros, g, t0, count);
        for (size_t j = 0; j < count; j++) { /* ∂m = A ∂y Aᵀ */
            const float *e[2][2];
            const float *d[4][4]; /* the tile's output pixels are d[1..2][1..2] of the same walk over dy */
            mplc_winograd_tile_inputs(d, dy, s.zeros, output, t0 + j);
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) e[a][b] = d[1 + a][1 + b];
            float *mt = s.m + j * out;
            int f = 0;
            for (; f + 16 <= out; f += 16) mplc_winograd_transform_gradient(mt, m_plane, e, f, 16);
            if (f < out) mplc_winograd_transform_gradient(mt, m_plane, e, f, out - f);
        }
        const int add = accumulate || t0 > 0;
        for (int xi = 0; xi < 16; xi++) {
#if defined(__AVX512F__)
            /* ∂u_ξ (+)= v_ξᵀ ∂m_ξ with the accumulators in registers over the block's tiles */
            mplc_winograd_gemm(du + (size_t)xi * in * out, (size_t)out, s.v + xi * v_plane, 1, (size_t)in,
                               s.m + xi * m_plane, (size_t)out, in, out, (int)count, add);
#else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, (int)count, 1.0f, s.v + xi * v_plane, in,
                        s.m + xi * m_plane, out, add ? 1.0f : 0.0f, du + (size_t)xi * in * out, out);
#endif
        }
    }
}

/* ---- 3x3 stride-1 pad-1 convolutions by Winograd's F(4x4, 3x3) (Lavin & Gray's points 0, ±1, ±2, ∞) ----
 * The forward product and ∂x (the same function with flipped filters): each 4x4 block of outputs from a 6x6
 * input tile, 36 products (2.25 per output, F(2x2, 3x3) needs 4), in 36 GEMMs [tiles, in]·[in, out] by the same
 * register tiles. The transforms' larger coefficients (up to 8 in Aᵀ, 1/24 in G) cost precision: 15-30x the
 * float32 error of F(2x2, 3x3), up to 8.8e-6 of the largest output at 64 and 128 channels (test_winograd.c).
 * ∂W keeps F(2x2, 3x3). The compiler uses these where they need fewer products than F(2x2, 3x3)
 * (GEMM.winogradTile in Sources/MPLLower/Kernels.swift: 36 ⌈H/4⌉⌈W/4⌉ < 16 ⌈H/2⌉⌈W/2⌉, i.e. unless a side is
 * 1 or 2 or both are 5 or 6). */
#define MPLC_WINOGRAD4 1

/* u[36][in][out] = G g Gᵀ, with G's rows (1/4, 0, 0), -(1, 1, 1)/6, -(1, -1, 1)/6, (1/24, 1/12, 1/6),
 * (1/24, -1/12, 1/6), (0, 0, 1); `w` and `flipped` as mplc_winograd_filters'. */
MPLC_HELPER void mplc_winograd4_filters(float *restrict u, const float *restrict w, int in, int out, int flipped) {
    const size_t plane = (size_t)in * out;
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++) {
            double g[3][3], gg[6][3], r[6]; /* in double: one rounding, the last */
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    g[a][b] = flipped ? w[((size_t)((2 - a) * 3 + 2 - b) * out + o) * in + i]
                                      : w[((size_t)(a * 3 + b) * in + i) * out + o];
            for (int b = 0; b < 3; b++) { /* G g */
                const double g0 = g[0][b], g1 = g[1][b], g2 = g[2][b];
                gg[0][b] = g0 / 4;
                gg[1][b] = -(g0 + g1 + g2) / 6;
                gg[2][b] = -(g0 - g1 + g2) / 6;
                gg[3][b] = g0 / 24 + g1 / 12 + g2 / 6;
                gg[4][b] = g0 / 24 - g1 / 12 + g2 / 6;
                gg[5][b] = g2;
            }
            for (int a = 0; a < 6; a++) { /* (G g) Gᵀ */
                const double g0 = gg[a][0], g1 = gg[a][1], g2 = gg[a][2];
                r[0] = g0 / 4;
                r[1] = -(g0 + g1 + g2) / 6;
                r[2] = -(g0 - g1 + g2) / 6;
                r[3] = g0 / 24 + g1 / 12 + g2 / 6;
                r[4] = g0 / 24 - g1 / 12 + g2 / 6;
                r[5] = g2;
                for (int b = 0; b < 6; b++) u[(size_t)(6 * a + b) * plane + (size_t)i * out + o] = (float)r[b];
            }
        }
}

/* Tiles of 4x4 outputs covering a batch. */
MPLC_HELPER size_t mplc_winograd4_tiles(mplc_window g) {
    return (size_t)g.batch * (size_t)((g.height + 3) / 4) * (size_t)((g.width + 3) / 4);
}

/* As mplc_winograd_block, for 36 planes: 144 (in + out) bytes a tile. */
MPLC_HELPER size_t mplc_winograd4_block(size_t tiles, int in, int out, size_t bytes) {
    size_t block = bytes / (144 * (size_t)(in + out)) / 8 * 8;
    if (block < 8) block = 8;
    return block < tiles ? block : tiles;
}

/* The 6x6 input tile of tile t (outputs (4ty..4ty+3, 4tx..4tx+3) of image n), `zeros` on the padding. */
MPLC_HELPER void mplc_winograd4_tile_inputs(const float *d[6][6], const float *x, const float *zeros, mplc_window g,
                                            size_t t) {
    const size_t tile_rows = (size_t)(g.height + 3) / 4, tile_cols = (size_t)(g.width + 3) / 4;
    const int n = (int)(t / (tile_rows * tile_cols)), ty = (int)(t / tile_cols % tile_rows), tx = (int)(t % tile_cols);
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            const ptrdiff_t pixel = mplc_pixel(g, n, 4 * ty - 1 + a, 4 * tx - 1 + b);
            d[a][b] = pixel < 0 ? zeros : x + pixel;
        }
}

/* Bᵀ z for one column z[0..5] of 16 channels, Bᵀ's rows (4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0),
 * (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1). */
#define MPLC_WINOGRAD4_BT(r, z)                                                 \
    for (int l = 0; l < 16; l++) {                                              \
        const float z0 = z[0][l], z1 = z[1][l], z2 = z[2][l], z3 = z[3][l];     \
        const float z4 = z[4][l], z5 = z[5][l];                                 \
        r[0][l] = 4.0f * z0 - 5.0f * z2 + z4;                                   \
        r[1][l] = (z3 + z4) - 4.0f * (z1 + z2);                                 \
        r[2][l] = 4.0f * (z1 - z2) + (z4 - z3);                                 \
        r[3][l] = 2.0f * (z3 - z1) + (z4 - z2);                                 \
        r[4][l] = 2.0f * (z1 - z3) + (z4 - z2);                                 \
        r[5][l] = 4.0f * z1 - 5.0f * z3 + z5;                                   \
    }

/* v[36][plane] at row `row` = Bᵀ d B for the channels [c, c + w) of one tile, w <= 16. */
MPLC_HELPER void mplc_winograd4_transform_input(float *v, size_t plane, const float *d[6][6], int c, int w) {
    float e[6][6][16], bd[6][6][16], col[6][16], res[6][16];
    if (w < 16) memset(e, 0, sizeof e);
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) memcpy(e[b][a], d[a][b] + c, (size_t)w * sizeof(float)); /* e[column][row] */
    for (int b = 0; b < 6; b++) { /* Bᵀ d, column b */
        MPLC_WINOGRAD4_BT(col, e[b])
        for (int a = 0; a < 6; a++) memcpy(bd[a][b], col[a], sizeof col[a]);
    }
    for (int a = 0; a < 6; a++) { /* (Bᵀ d) B, row a */
        MPLC_WINOGRAD4_BT(res, bd[a])
        for (int b = 0; b < 6; b++) memcpy(v + (size_t)(6 * a + b) * plane + c, res[b], (size_t)w * sizeof(float));
    }
}
#undef MPLC_WINOGRAD4_BT

/* v[36][count][in] = Bᵀ d B for the tiles [t0, t0 + count) of x. */
MPLC_HELPER void mplc_winograd4_input_block(float *v, const float *x, const float *zeros, mplc_window g, size_t t0,
                                            size_t count) {
    const int in = g.channels;
    const size_t plane = count * (size_t)in;
    for (size_t j = 0; j < count; j++) {
        const float *d[6][6];
        mplc_winograd4_tile_inputs(d, x, zeros, g, t0 + j);
        float *row = v + j * (size_t)in;
        int c = 0;
        for (; c + 16 <= in; c += 16) mplc_winograd4_transform_input(row, plane, d, c, 16);
        if (c < in) mplc_winograd4_transform_input(row, plane, d, c, in - c);
    }
}

/* Aᵀ z for one column z[0..5] of 16 channels, Aᵀ's rows (1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0),
 * (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1). */
#define MPLC_WINOGRAD4_AT(r, z)                                       \
    for (int l = 0; l < 16; l++) {                                    \
        const float s12 = z[1][l] + z[2][l], d12 = z[1][l] - z[2][l]; \
        const float s34 = z[3][l] + z[4][l], d34 = z[3][l] - z[4][l]; \
        r[0][l] = z[0][l] + s12 + s34;                                \
        r[1][l] = d12 + 2.0f * d34;                                   \
        r[2][l] = s12 + 4.0f * s34;                                   \
        r[3][l] = d12 + 8.0f * d34 + z[5][l];                         \
    }

/* y[4x4 tile] = Aᵀ m A for the channels [f, f + w) of one tile, w <= 16, m's 36 rows `plane` apart. */
MPLC_HELPER void mplc_winograd4_transform_output(float *o[4][4], const float *m, size_t plane, int f, int w) {
    float e[6][6][16], am[4][6][16], col[4][16], res[4][16];
    if (w < 16) memset(e, 0, sizeof e);
    for (int a = 0; a < 6; a++) /* e[column][row] */
        for (int b = 0; b < 6; b++) memcpy(e[b][a], m + (size_t)(6 * a + b) * plane + f, (size_t)w * sizeof(float));
    for (int b = 0; b < 6; b++) { /* Aᵀ m, column b */
        MPLC_WINOGRAD4_AT(col, e[b])
        for (int a = 0; a < 4; a++) memcpy(am[a][b], col[a], sizeof col[a]);
    }
    for (int a = 0; a < 4; a++) { /* (Aᵀ m) A, row a */
        MPLC_WINOGRAD4_AT(res, am[a])
        for (int b = 0; b < 4; b++) memcpy(o[a][b] + f, res[b], (size_t)w * sizeof(float));
    }
}
#undef MPLC_WINOGRAD4_AT

/* y[N, H, W, out] = the 3x3 stride-1 pad-1 convolution of x[N, H, W, in] with the filters u of
 * mplc_winograd4_filters, as mplc_winograd_conv3x3 by blocks of tiles; the scratch's planes are 36, of v_plane >=
 * tiles x in and m_plane >= tiles x out floats for mplc_winograd4_tiles(g) tiles. */
MPLC_HELPER void mplc_winograd4_conv3x3(float *restrict y, const float *restrict x, const float *restrict u,
                                        mplc_window g, int out, mplc_winograd_scratch s) {
    const int in = g.channels, tile_rows = (g.height + 3) / 4, tile_cols = (g.width + 3) / 4;
    memset(s.zeros, 0, (size_t)(in + out) * sizeof(float));
    const size_t tiles = mplc_winograd4_tiles(g);
    const size_t block = mplc_winograd4_block(tiles, in, out, MPLC_WINOGRAD4_BLOCK_BYTES);
    mplc_window output = g; /* y's pixels */
    output.channels = out;
    for (size_t t0 = 0; t0 < tiles; t0 += block) {
        const size_t count = tiles - t0 < block ? tiles - t0 : block, m_plane = count * out;
        mplc_winograd4_input_block(s.v, x, s.zeros, g, t0, count);
        mplc_winograd_products(s.m, s.v, u, 36, count, in, out);
        for (size_t j = 0; j < count; j++) { /* y = Aᵀ m A */
            const size_t t = t0 + j;
            const int n = (int)(t / ((size_t)tile_rows * tile_cols)), ty = (int)(t / tile_cols % tile_rows);
            const int tx = (int)(t % tile_cols);
            float *o[4][4];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    const ptrdiff_t pixel = mplc_pixel(output, n, 4 * ty + a, 4 * tx + b);
                    o[a][b] = pixel < 0 ? s.dropped : y + pixel;
                }
            const float *mt = s.m + j * out;
            int f = 0;
            for (; f + 16 <= out; f += 16) mplc_winograd4_transform_output(o, mt, m_plane, f, 16);
            if (f < out) mplc_winograd4_transform_output(o, mt, m_plane, f, out - f);
        }
    }
}

/* The pooled functions visit output element o = ((n*OH + oy)*OW + ox)*C + ch in order, o counting up. */

/* The window's maximum. Only the value matters here, so channels run innermost and vectorise (ten times
 * faster than finding each element's argmax, which select and scatter below need). */
MPLC_HELPER void mplc_max_pool(float *restrict out, const float *restrict x, mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g), channels = g.channels;
    float *o = out;
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++, o += channels) {
                int found = 0;
                for (int ky = 0; ky < g.kernel; ky++)
                    for (int kx = 0; kx < g.kernel; kx++) {
                        const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                        if (pixel < 0) continue;
                        const float *s = x + pixel;
                        if (!found) for (int c = 0; c < channels; c++) o[c] = s[c];
                        else for (int c = 0; c < channels; c++) o[c] = s[c] > o[c] ? s[c] : o[c];
                        found = 1;
                    }
            }
}

/* Max-pool derivatives. Both pick, per window and channel, the first tap (in ky, kx order) holding the
 * window's maximum of `source` (the first maximum; the reference interpreter's choice). They find it a block
 * of channels at a time:
 * the maximum over the taps with channels innermost, then the first tap equal to it. Every loop runs along
 * contiguous channels and vectorises, which is several times faster than one argmax search per element. */
enum { MPLC_POOL_CHANNEL_BLOCK = 64 };

/* best[0..cb) = the maximum of `source` over the valid taps of window (n, oy, ox), channels [c0, c0 + cb). */
MPLC_HELPER void mplc_window_max(float *restrict best, const float *restrict source, mplc_window g, int n, int oy,
                                   int ox, int c0, int cb) {
    int found = 0;
    for (int ky = 0; ky < g.kernel; ky++)
        for (int kx = 0; kx < g.kernel; kx++) {
            const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
            if (pixel < 0) continue;
            const float *s = source + pixel + c0;
            if (!found) for (int c = 0; c < cb; c++) best[c] = s[c];
            else for (int c = 0; c < cb; c++) best[c] = s[c] > best[c] ? s[c] : best[c];
            found = 1;
        }
}

/* The tangent at the position of each window's maximum of `source`. The taps are visited last to first and the
 * tangent of every tap equal to the maximum overwrites the previous pick, so the first one wins. */
MPLC_HELPER void mplc_max_pool_select(float *restrict out, const float *restrict source, const float *restrict tangent,
                                        mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g);
    float best[MPLC_POOL_CHANNEL_BLOCK];
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int c0 = 0; c0 < g.channels; c0 += MPLC_POOL_CHANNEL_BLOCK) {
                    const int cb = g.channels - c0 < MPLC_POOL_CHANNEL_BLOCK ? g.channels - c0 : MPLC_POOL_CHANNEL_BLOCK;
                    float *o = out + (((ptrdiff_t)n * oh + oy) * ow + ox) * g.channels + c0;
                    mplc_window_max(best, source, g, n, oy, ox, c0, cb);
                    for (int c = 0; c < cb; c++) o[c] = 0.0f;
                    for (int tap = g.kernel * g.kernel - 1; tap >= 0; tap--) {
                        const int ky = tap / g.kernel, kx = tap % g.kernel;
                        const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                        if (pixel < 0) continue;
                        const float *s = source + pixel + c0, *t = tangent + pixel + c0;
                        for (int c = 0; c < cb; c++) o[c] = s[c] == best[c] ? t[c] : o[c];
                    }
                }
}

/* Each window's cotangent routed to the position of its maximum of `source` (the transpose of select). Windows
 * that tile the input (stride = kernel, no padding) write every covered element once; otherwise the output is
 * zeroed and accumulated into. */
MPLC_HELPER void mplc_max_pool_scatter(float *restrict out, const float *restrict source,
                                         const float *restrict cotangent, mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g);
    const int tiles = g.stride == g.kernel && g.padding == 0 && oh * g.stride == g.height && ow * g.stride == g.width;
    if (!tiles) memset(out, 0, (size_t)g.batch * g.height * g.width * g.channels * sizeof(float));
    float best[MPLC_POOL_CHANNEL_BLOCK], done[MPLC_POOL_CHANNEL_BLOCK];
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int c0 = 0; c0 < g.channels; c0 += MPLC_POOL_CHANNEL_BLOCK) {
                    const int cb = g.channels - c0 < MPLC_POOL_CHANNEL_BLOCK ? g.channels - c0 : MPLC_POOL_CHANNEL_BLOCK;
                    const float *o = cotangent + (((ptrdiff_t)n * oh + oy) * ow + ox) * g.channels + c0;
                    mplc_window_max(best, source, g, n, oy, ox, c0, cb);
                    for (int c = 0; c < cb; c++) done[c] = 0.0f;
                    for (int ky = 0; ky < g.kernel; ky++)
                        for (int kx = 0; kx < g.kernel; kx++) {
                            const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                            if (pixel < 0) continue;
                            const float *s = source + pixel + c0;
                            float *d = out + pixel + c0;
                            for (int c = 0; c < cb; c++) {
                                const int hit = done[c] == 0.0f && s[c] == best[c];
                                if (tiles) d[c] = hit ? o[c] : 0.0f;
                                else d[c] += hit ? o[c] : 0.0f;
                                done[c] = hit ? 1.0f : done[c];
                            }
                        }
                }
}

/* Mean over the k*k window; padding counts as zeros. Channels innermost, so the sums vectorise. */
MPLC_HELPER void mplc_avg_pool(float *restrict out, const float *restrict x, mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g), channels = g.channels;
    const float scale = 1.0f / (float)(g.kernel * g.kernel);
    float *o = out;
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++, o += channels) {
                for (int c = 0; c < channels; c++) o[c] = 0.0f;
                for (int ky = 0; ky < g.kernel; ky++)
                    for (int kx = 0; kx < g.kernel; kx++) {
                        const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                        if (pixel < 0) continue;
                        for (int c = 0; c < channels; c++) o[c] += x[pixel + c];
                    }
                for (int c = 0; c < channels; c++) o[c] *= scale;
            }
}

/* The transpose of avg_pool: each output's cotangent spread evenly over its window. */
MPLC_HELPER void mplc_avg_pool_transpose(float *restrict out, const float *restrict cotangent, mplc_window g) {
    const int oh = mplc_out_height(g), ow = mplc_out_width(g), channels = g.channels;
    const float scale = 1.0f / (float)(g.kernel * g.kernel);
    memset(out, 0, (size_t)g.batch * g.height * g.width * channels * sizeof(float));
    const float *o = cotangent;
    for (int n = 0; n < g.batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++, o += channels)
                for (int ky = 0; ky < g.kernel; ky++)
                    for (int kx = 0; kx < g.kernel; kx++) {
                        const ptrdiff_t pixel = mplc_pixel(g, n, oy * g.stride + ky - g.padding, ox * g.stride + kx - g.padding);
                        if (pixel < 0) continue;
                        for (int c = 0; c < channels; c++) out[pixel + c] += o[c] * scale;
                    }
}

/* ---- rows ---- */

/* out[out_rows, row] = 0 except rows [start, start + in_rows), which are `in`. */
MPLC_HELPER void mplc_pad_rows(float *restrict out, const float *restrict in, size_t in_rows, size_t out_rows,
                                 size_t start, size_t row) {
    memset(out, 0, start * row * sizeof(float));
    memcpy(out + start * row, in, in_rows * row * sizeof(float));
    memset(out + (start + in_rows) * row, 0, (out_rows - start - in_rows) * row * sizeof(float));
}

/* One-hot of the first maximum of each row. */
MPLC_HELPER void mplc_one_hot_argmax(float *restrict out, const float *restrict x, size_t rows, size_t classes) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * classes;
        size_t best = 0;
        for (size_t k = 1; k < classes; k++)
            if (row[k] > row[best]) best = k;
        for (size_t k = 0; k < classes; k++) out[r * classes + k] = k == best ? 1.0f : 0.0f;
    }
}

/* One-hot of the smallest k with p[0] + ... + p[k] > u (the last class if none), per row. */
MPLC_HELPER void mplc_one_hot_sample(float *restrict out, const float *restrict p, const float *restrict u,
                                       size_t rows, size_t classes) {
    for (size_t r = 0; r < rows; r++) {
        size_t pick = classes - 1;
        double cumulative = 0.0;
        for (size_t k = 0; k < classes; k++) {
            cumulative += p[r * classes + k];
            if (cumulative > u[r]) {
                pick = k;
                break;
            }
        }
        for (size_t k = 0; k < classes; k++) out[r * classes + k] = k == pick ? 1.0f : 0.0f;
    }
}

/* ---- data parallelism: the allReduceSum op (docs/STEP.md, "Ranks") ----
 * Sums x over every rank in place. A model compiled for R > 1 ranks calls it; its trainer is built with mpicc
 * -DMPLC_MPI. Without MPLC_MPI (one process, or a library used alone) it is the identity, and the file needs no MPI.
 * A failed all-reduce ends the whole job: the other ranks would wait for this one forever. */
#ifdef MPLC_MPI
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
MPLC_HELPER void mplc_allreduce_sum(float *x, long n) {
    /* MPI counts are int: a longer buffer goes in pieces. */
    for (long done = 0; done < n;) {
        const int piece = n - done > INT_MAX ? INT_MAX : (int)(n - done);
        const int status = MPI_Allreduce(MPI_IN_PLACE, x + done, piece, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (status != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING];
            int length = 0;
            MPI_Error_string(status, text, &length);
            fprintf(stderr, "mplc: MPI_Allreduce of %ld floats failed: %s\n", n, text);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        done += piece;
    }
}
#else
MPLC_HELPER void mplc_allreduce_sum(float *x, long n) {
    (void)x;
    (void)n;
}
#endif

#endif /* MPLC_RUNTIME_H */
