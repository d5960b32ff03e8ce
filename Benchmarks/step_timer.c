/*
 * step_timer.c: times mplc_step of one generated model (Benchmarks/run builds it with the model's model.c).
 *
 *   step_timer --threads T [--warmup W] [--steps N] [--seed S] [--serve]
 *
 * The state and the batch are random, drawn like Benchmarks/peers/common.py draws them: He-uniform weights
 * (bound sqrt(6 / fan_in)), U(-0.1, 0.1) biases, U(-0.01, 0.01) momenta, U(0, 1) pixels, random one-hot
 * labels, lr_teacher = lr_student = 0.01, uda_weight = feedback_scale = 1, no dropout. Each step runs on the
 * state the previous one produced, as in training. The process is pinned to T CPUs and the generated library
 * runs on T threads (mplc_set_threads).
 *
 * Without --serve: W untimed steps, N timed steps, then one JSON line like the peers' (common.py):
 *   {"peer": "mplc", "threads": T, "times": [...], "cpu_times": [...], "peak_rss_bytes": ..., "load_average": ...}
 * With --serve: W untimed steps, then one line per command read from stdin: "K" runs K steps and prints
 * {"times": [...], "cpu_times": [...]}; "rss" prints {"peak_rss_bytes": ...}; end of input exits. Benchmarks/run
 * uses this to interleave mplc's steps with the peers' in one run.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double uniform01(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static float uniform(double lo, double hi) { return (float)(lo + (hi - lo) * uniform01()); }

static void *allocate(size_t floats) {
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes > 0 ? bytes : 64);
    if (!p) {
        fprintf(stderr, "step_timer: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static void fill_state(float *state) {
    memset(state, 0, sizeof(float) * (size_t)MPLC_STATE_FLOATS);
    for (int i = 0; i < MPLC_NUM_STATE_TENSORS; i++) {
        const mplc_tensor *t = &mplc_state_tensors[i];
        double bound = 0.1;
        if (strstr(t->name, "_momentum/")) bound = 0.01;
        else if (t->is_weight && t->fan_in > 0) bound = sqrt(6.0 / t->fan_in);
        for (size_t k = 0; k < t->count; k++) state[t->offset + k] = uniform(-bound, bound);
    }
}

static void fill_io(float *io) {
    memset(io, 0, sizeof(float) * (size_t)MPLC_STEP_IO_FLOATS);
    for (int i = 0; i < MPLC_NUM_STEP_INPUTS; i++) {
        const mplc_tensor *t = &mplc_step_inputs[i];
        float *p = io + t->offset;
        if (strcmp(t->name, "x") == 0 || strcmp(t->name, "uniform") == 0) {
            for (size_t k = 0; k < t->count; k++) p[k] = uniform(0, 1);
        } else if (strcmp(t->name, "y") == 0) {
            const size_t classes = (size_t)t->shape[1];
            for (size_t r = 0; r < (size_t)t->shape[0]; r++) {
                size_t c = (size_t)(uniform01() * (double)classes);
                p[r * classes + (c < classes ? c : classes - 1)] = 1.0f;
            }
        } else if (starts_with(t->name, "dropout/")) {
            for (size_t k = 0; k < t->count; k++) p[k] = 1.0f;
        } else if (strcmp(t->name, "lr_teacher") == 0 || strcmp(t->name, "lr_student") == 0) {
            p[0] = 0.01f;
        } else if (strcmp(t->name, "uda_weight") == 0 || strcmp(t->name, "feedback_scale") == 0) {
            p[0] = 1.0f;
        }
    }
}

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The peak resident set of this process image: VmHWM of /proc/self/status. (getrusage's ru_maxrss is no
 * good here: Linux carries the parent's peak over fork and exec, so a child of a large Python process would
 * report the parent's size.) Falls back to ru_maxrss where /proc is missing. */
static long peak_rss_bytes(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (status && fgets(line, sizeof line, status))
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (status) fclose(status);
    if (kib < 0) {
        struct rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        kib = usage.ru_maxrss; /* KiB on Linux */
    }
    return kib * 1024L;
}

static void print_times(const double *wall, const double *cpu, int n) {
    printf("\"times\": [");
    for (int i = 0; i < n; i++) printf("%s%.6f", i ? ", " : "", wall[i]);
    printf("], \"cpu_times\": [");
    for (int i = 0; i < n; i++) printf("%s%.6f", i ? ", " : "", cpu[i]);
    printf("]");
}

static void run_steps(float *state, float *io, float *scratch, int n, double *wall, double *cpu) {
    for (int i = 0; i < n; i++) {
        const double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        mplc_step(state, io, scratch);
        if (wall) wall[i] = now(CLOCK_MONOTONIC) - w0;
        if (cpu) cpu[i] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
}

static void pin_threads(int threads) {
    cpu_set_t current, wanted;
    if (sched_getaffinity(0, sizeof current, &current) != 0) return;
    CPU_ZERO(&wanted);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < threads; cpu++) {
        if (CPU_ISSET(cpu, &current)) {
            CPU_SET(cpu, &wanted);
            taken++;
        }
    }
    if (taken == threads) sched_setaffinity(0, sizeof wanted, &wanted);
}

int main(int argc, char **argv) {
    int threads = 1, warmup = 2, steps = 10, serve = 0;
    for (int i = 1; i < argc; i++) {
        const int has_value = i + 1 < argc;
        if (strcmp(argv[i], "--threads") == 0 && has_value) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && has_value) warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && has_value) steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && has_value) rng_state += (uint64_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--serve") == 0) serve = 1;
        else {
            fprintf(stderr, "usage: step_timer --threads T [--warmup W] [--steps N] [--seed S] [--serve]\n");
            return 2;
        }
    }
    if (threads < 1 || warmup < 0 || steps < 1) {
        fprintf(stderr, "step_timer: --threads and --steps must be positive, --warmup not negative\n");
        return 2;
    }
    pin_threads(threads);
    mplc_set_threads(threads);
    float *state = allocate(MPLC_STATE_FLOATS), *io = allocate(MPLC_STEP_IO_FLOATS);
    float *scratch = allocate(MPLC_SCRATCH_FLOATS);
    fill_state(state);
    fill_io(io);
    run_steps(state, io, scratch, warmup, NULL, NULL);

    if (!serve) {
        double *wall = calloc((size_t)steps, sizeof(double)), *cpu = calloc((size_t)steps, sizeof(double));
        run_steps(state, io, scratch, steps, wall, cpu);
        double load[1] = {0};
        getloadavg(load, 1);
        printf("{\"peer\": \"mplc\", \"model\": \"%s\", \"threads\": %d, ", MPLC_MODEL_NAME, threads);
        print_times(wall, cpu, steps);
        printf(", \"peak_rss_bytes\": %ld, \"load_average\": %.2f}\n", peak_rss_bytes(), load[0]);
        return 0;
    }
    printf("{\"ready\": true}\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "rss", 3) == 0) {
            printf("{\"peak_rss_bytes\": %ld}\n", peak_rss_bytes());
        } else {
            const int n = atoi(line);
            if (n < 1) {
                printf("{\"error\": \"expected a step count or rss\"}\n");
            } else {
                double *wall = calloc((size_t)n, sizeof(double)), *cpu = calloc((size_t)n, sizeof(double));
                run_steps(state, io, scratch, n, wall, cpu);
                printf("{");
                print_times(wall, cpu, n);
                printf("}\n");
                free(wall);
                free(cpu);
            }
        }
        fflush(stdout);
    }
    return 0;
}
