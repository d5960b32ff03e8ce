/* The C unit tests' shared harness (test_runner.c, test_rgb.c): CHECK counts checks and failures without
 * stopping, `current` names the test being run, tpath() and write_bytes() make files in `tmpdir`. */
#ifndef RUNNER_TEST_HARNESS_H
#define RUNNER_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static char tmpdir[256];
static const char *current;

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                       \
        checks++;                                                                                              \
        if (!(cond)) {                                                                                         \
            failures++;                                                                                        \
            fprintf(stderr, "FAIL %s (%s:%d): ", current, __FILE__, __LINE__);                                 \
            fprintf(stderr, __VA_ARGS__);                                                                      \
            fputc('\n', stderr);                                                                               \
        }                                                                                                      \
    } while (0)

/* Checks that a call failed with a message containing `want`. */
#define CHECK_FAILS(call, e, want)                                                                             \
    do {                                                                                                       \
        (e).msg[0] = '\0';                                                                                     \
        int rc_ = (call);                                                                                      \
        CHECK(rc_ != 0 && strstr((e).msg, want) != NULL, "%s: expected failure with \"%s\", got rc %d \"%s\"", \
              #call, want, rc_, (e).msg);                                                                      \
    } while (0)

static inline const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static inline void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(fp);
}

#endif
