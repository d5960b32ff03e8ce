#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fstat, fileno */
#endif
#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "budget.h"

/* The whole file, at most CSV_MAX_FILE_BYTES, its bytes taken from the budget. */
static int read_whole(const char *path, char **out, size_t *len, Err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set(e, "%s: not a regular file", path);
    } else if ((uint64_t)st.st_size > CSV_MAX_FILE_BYTES) {
        err_set(e, "%s: %lld bytes, more than the %llu bytes a CSV file may have", path, (long long)st.st_size,
                CSV_MAX_FILE_BYTES);
    } else if (budget_take((uint64_t)st.st_size + 1, path, "the CSV file's bytes", e) == 0) {
        *len = (size_t)st.st_size;
        *out = xmalloc(*len + 1);
        if (fread(*out, 1, *len, fp) == *len) {
            (*out)[*len] = '\0';
            rc = 0;
        } else {
            err_set(e, "%s: cannot read its %zu bytes", path, *len);
            free(*out);
            budget_return(*len + 1);
        }
    }
    fclose(fp);
    return rc;
}

/* One line [p, end): its fields parsed into v (when not NULL) and counted. Returns the number of fields, or -1
 * with e set; *numbers counts the fields that are numbers (a header has none). */
static long parse_line(const char *path, size_t line, const char *p, const char *end, float *v, long *numbers,
                       Err *e) {
    long n = 0;
    *numbers = 0;
    for (;;) {
        int numeric = 1;
        const char *f = p;
        while (p < end && *p != ',') p++;
        const char *fe = p;
        while (f < fe && (*f == ' ' || *f == '\t')) f++; /* spaces around a field are not part of it */
        while (fe > f && (fe[-1] == ' ' || fe[-1] == '\t')) fe--;
        char buf[CSV_MAX_FIELD + 1];
        size_t len = (size_t)(fe - f);
        double d = 0;
        char *stop = NULL;
        if (len == 0 || len > CSV_MAX_FIELD) {
            numeric = 0;
        } else {
            memcpy(buf, f, len);
            buf[len] = '\0';
            d = strtod(buf, &stop);
            if (*stop != '\0') numeric = 0;
        }
        *numbers += numeric;
        if (v) {
            if (!numeric)
                return err_set(e, "%s: line %zu, field %ld is not a number: '%.*s'", path, line, n + 1,
                               (int)(len > 20 ? 20 : len), f);
            if (!isfinite(d) || fabs(d) > 3.4e38)
                return err_set(e, "%s: line %zu, field %ld is not a finite float: '%s'", path, line, n + 1, buf);
            v[n] = (float)d;
        }
        n++;
        if (p >= end) return n;
        p++; /* the comma */
    }
}

/* Calls each(ctx, line number, start, end) for every non-blank line; stops at the first non-zero return. */
typedef int (*LineFn)(void *ctx, size_t line, const char *p, const char *end);

static int each_line(const char *text, size_t len, LineFn fn, void *ctx) {
    size_t line = 0;
    for (const char *p = text, *stop = text + len; p < stop;) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *end = nl ? nl : stop;
        line++;
        const char *trim = end;
        if (trim > p && trim[-1] == '\r') trim--;
        int blank = 1;
        for (const char *q = p; q < trim && blank; q++) blank = *q == ' ' || *q == '\t';
        if (!blank) {
            int rc = fn(ctx, line, p, trim);
            if (rc) return rc;
        }
        p = nl ? nl + 1 : stop;
    }
    return 0;
}

typedef struct {
    const char *path;
    CsvTable *t;
    Err *e;
    size_t first; /* line number of the first non-blank line */
    size_t row;
} Pass;

/* First pass: the header (a first line without any number: a line with some would be a broken row, and is
 * parsed as one), the columns of the first row, the number of rows. */
static int count_line(void *ctx, size_t line, const char *p, const char *end) {
    Pass *s = ctx;
    long numbers;
    long n = parse_line(s->path, line, p, end, NULL, &numbers, s->e);
    if (!s->first) {
        s->first = line;
        s->t->cols = (size_t)n;
        if (numbers == 0) {
            s->t->header = 1;
            return 0;
        }
    } else if ((size_t)n != s->t->cols) {
        return err_set(s->e, "%s: line %zu has %ld fields, line %zu has %zu", s->path, line, n, s->first,
                       s->t->cols);
    }
    s->t->rows++;
    return 0;
}

/* Second pass: the values. */
static int fill_line(void *ctx, size_t line, const char *p, const char *end) {
    Pass *s = ctx;
    long numbers;
    if (line == s->first && s->t->header) return 0;
    return parse_line(s->path, line, p, end, s->t->v + s->row++ * s->t->cols, &numbers, s->e) < 0 ? -1 : 0;
}

int csv_read(const char *path, CsvTable *t, Err *e) {
    memset(t, 0, sizeof *t);
    char *text = NULL;
    size_t len = 0;
    if (read_whole(path, &text, &len, e) != 0) return -1;
    Pass s = {path, t, e, 0, 0};
    int rc = -1;
    size_t floats, bytes;
    if (each_line(text, len, count_line, &s) != 0) goto done;
    if (t->rows == 0) {
        err_set(e, "%s: no rows of numbers", path);
        goto done;
    }
    if (size_mul(t->rows, t->cols, &floats) != 0 || size_mul(floats, sizeof(float), &bytes) != 0 ||
        budget_take(bytes, path, "the CSV values as float32", e) != 0)
        goto done;
    t->planned = bytes;
    t->v = xmalloc(bytes);
    rc = each_line(text, len, fill_line, &s) != 0 ? -1 : 0;
done:
    free(text);
    budget_return(len + 1);
    if (rc != 0) csv_free(t);
    return rc;
}

void csv_free(CsvTable *t) {
    budget_return(t->planned);
    free(t->v);
    memset(t, 0, sizeof *t);
}
