/*
 * sgemm_peak.c: what cblas_sgemm achieves on this machine at given shapes (Benchmarks/run).
 *
 *   sgemm_peak --threads T [--min-seconds S] [--calls C] SHAPE...     SHAPE = TA,TB,M,N,K, TA and TB N or T
 *
 * Each shape gets its own row-major operands (filled with U(-1, 1)), one untimed call, then at least C timed
 * calls (default 3) and more until at least S seconds (default 0.2) have passed; the first timed call (warm, one
 * sample: what a step's single call of that shape sees), the best and the median time per call are kept. Prints
 * one JSON line:
 * {"threads": T, "shapes": [{"shape": "N,N,960,1024,784", "flops": ..., "first": s, "best": s, "median": s}, ...]}.
 * The process is pinned to T CPUs and OpenBLAS uses T threads, as in step_timer.c.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static float *random_matrix(size_t count) {
    float *p = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "sgemm_peak: out of memory\n");
        exit(1);
    }
    unsigned s = 12345u;
    for (size_t i = 0; i < count; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return p;
}

static void pin_threads(int threads) {
    cpu_set_t current, wanted;
    if (sched_getaffinity(0, sizeof current, &current) != 0) return;
    CPU_ZERO(&wanted);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < threads; cpu++)
        if (CPU_ISSET(cpu, &current)) {
            CPU_SET(cpu, &wanted);
            taken++;
        }
    if (taken == threads) sched_setaffinity(0, sizeof wanted, &wanted);
}

int main(int argc, char **argv) {
    int threads = 1, first = 1, min_calls = 3;
    double min_seconds = 0.2;
    while (first + 1 < argc && strncmp(argv[first], "--", 2) == 0) {
        if (strcmp(argv[first], "--threads") == 0) threads = atoi(argv[first + 1]);
        else if (strcmp(argv[first], "--min-seconds") == 0) min_seconds = atof(argv[first + 1]);
        else if (strcmp(argv[first], "--calls") == 0) min_calls = atoi(argv[first + 1]);
        else break;
        first += 2;
    }
    if (threads < 1 || min_calls < 1 || first >= argc) {
        fprintf(stderr, "usage: sgemm_peak --threads T [--min-seconds S] [--calls C] TA,TB,M,N,K...\n");
        return 2;
    }
    pin_threads(threads);
    openblas_set_num_threads(threads);
    printf("{\"threads\": %d, \"shapes\": [", threads);
    for (int s = first; s < argc; s++) {
        char ta, tb;
        int m, n, k;
        if (sscanf(argv[s], "%c,%c,%d,%d,%d", &ta, &tb, &m, &n, &k) != 5 || m < 1 || n < 1 || k < 1 ||
            (ta != 'N' && ta != 'T') || (tb != 'N' && tb != 'T')) {
            fprintf(stderr, "sgemm_peak: bad shape %s (want TA,TB,M,N,K)\n", argv[s]);
            return 2;
        }
        float *a = random_matrix((size_t)m * k), *b = random_matrix((size_t)k * n), *c = random_matrix((size_t)m * n);
        const int lda = ta == 'T' ? m : k, ldb = tb == 'T' ? k : n;
        const enum CBLAS_TRANSPOSE opa = ta == 'T' ? CblasTrans : CblasNoTrans;
        const enum CBLAS_TRANSPOSE opb = tb == 'T' ? CblasTrans : CblasNoTrans;
        cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        enum { MAX_CALLS = 10000 };
        static double times[MAX_CALLS];
        int calls = 0;
        const double start = now();
        while (calls < MAX_CALLS && (calls < min_calls || now() - start < min_seconds)) {
            const double t0 = now();
            cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
            times[calls++] = now() - t0;
        }
        const double first_timed = times[0];
        qsort(times, (size_t)calls, sizeof(double), compare);
        printf("%s{\"shape\": \"%s\", \"flops\": %.0f, \"first\": %.9f, \"best\": %.9f, \"median\": %.9f, \"calls\": %d}",
               s > first ? ", " : "", argv[s], 2.0 * m * n * (double)k, first_timed, times[0], times[calls / 2], calls);
        free(a);
        free(b);
        free(c);
    }
    printf("]}\n");
    return 0;
}
