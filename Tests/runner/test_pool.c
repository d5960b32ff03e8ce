/* The generated library's thread pool (Templates/runtime/mplc_runtime.h): every piece of work done exactly once,
 * fixed shares that tile [0, n), the pool grown and shrunk between calls, thousands of calls in a row (a lost
 * wake-up would hang here: run_tests.sh runs this under `timeout`). */
#define MPLC_MAX_THREADS 8
#define MPLC_NAIVE_GEMM /* no OpenBLAS to set to one thread */
#include "mplc_runtime.h"

#include "test_harness.h"

enum { N = 1000 };

typedef struct {
    atomic_int done[N];    /* how often each element was visited */
    atomic_int parts_seen; /* how many parts ran */
} Work;

static void claim_pieces(void *context, int part, int parts) {
    Work *w = context;
    (void)part, (void)parts;
    atomic_fetch_add(&w->parts_seen, 1);
    size_t lo, hi;
    while (mplc_claim(N, 7, &lo, &hi))
        for (size_t i = lo; i < hi; i++) atomic_fetch_add(&w->done[i], 1);
}

static void fixed_shares(void *context, int part, int parts) {
    Work *w = context;
    atomic_fetch_add(&w->parts_seen, 1);
    size_t lo, hi;
    mplc_part(N, 16, part, parts, &lo, &hi);
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(&w->done[i], 1);
}

/* Runs `calls` parallel calls of `function` and checks that each visited every element once on `threads` parts. */
static void run_calls(mplc_part_function function, int threads, int calls) {
    for (int c = 0; c < calls; c++) {
        Work w;
        for (int i = 0; i < N; i++) atomic_init(&w.done[i], 0);
        atomic_init(&w.parts_seen, 0);
        mplc_parallel(function, &w);
        int wrong = 0;
        for (int i = 0; i < N; i++) wrong += atomic_load(&w.done[i]) != 1;
        CHECK(wrong == 0, "%d threads, call %d: %d elements not done exactly once", threads, c, wrong);
        CHECK(atomic_load(&w.parts_seen) == threads, "%d threads, call %d: %d parts ran", threads, c,
              atomic_load(&w.parts_seen));
        if (wrong) return;
    }
}

static void shares_tile_the_range(void) {
    current = "mplc_part shares";
    const size_t counts[] = {0, 1, 5, 16, 17, 784, 1000};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
        for (int parts = 1; parts <= MPLC_MAX_THREADS; parts++) {
            size_t expected = 0;
            for (int part = 0; part < parts; part++) {
                size_t lo, hi;
                mplc_part(counts[k], 16, part, parts, &lo, &hi);
                CHECK(lo == expected && lo <= hi && hi <= counts[k], "n %zu, part %d of %d: [%zu, %zu)", counts[k], part,
                      parts, lo, hi);
                CHECK(lo % 16 == 0 || lo == counts[k], "n %zu, part %d of %d starts at %zu", counts[k], part, parts, lo);
                expected = hi;
            }
            CHECK(expected == counts[k], "n %zu, %d parts end at %zu", counts[k], parts, expected);
        }
}

int main(void) {
    shares_tile_the_range();
    const int sizes[] = {1, 2, 3, 8, 2, 4, 1, 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        current = "pool calls";
        const int threads = mplc_pool_resize(sizes[k]);
        CHECK(threads == sizes[k], "mplc_pool_resize(%d) gave %d", sizes[k], threads);
        CHECK(mplc_threads() == threads, "mplc_threads() %d after resizing to %d", mplc_threads(), threads);
        run_calls(claim_pieces, threads, 500);
        run_calls(fixed_shares, threads, 500);
    }
    current = "pool limits";
    CHECK(mplc_pool_resize(0) == 1, "0 threads means 1");
    CHECK(mplc_pool_resize(1000) == MPLC_MAX_THREADS, "at most MPLC_MAX_THREADS");
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
