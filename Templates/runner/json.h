/* A small JSON parser (for safetensors headers) and writing helpers (for metrics and summaries). */
#ifndef RUNNER_JSON_H
#define RUNNER_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue {
    JsonType type;
    int boolean;
    double number;
    int is_uint;      /* the number was a plain non-negative integer that fits in uint64 */
    uint64_t uint;
    char *string;     /* JSON_STRING: UTF-8, NUL-terminated (embedded NULs are rejected) */
    size_t len;       /* items of an array or members of an object */
    struct JsonValue *items;
    char **keys;      /* JSON_OBJECT: keys[i] names items[i] */
} JsonValue;

/* Parses text[0, len) completely (trailing spaces allowed); strings must be well-formed UTF-8, escapes included
 * (an unpaired surrogate is refused). */
int json_parse(const char *text, size_t len, JsonValue *out, Err *e);
void json_free(JsonValue *v);
/* The member named key of an object, or NULL. */
const JsonValue *json_get(const JsonValue *obj, const char *key);

/* Writers. */
void json_write_string(FILE *fp, const char *s);
/* A float32 value with enough digits to read it back exactly ("%.9g"); NaN/Inf as null. */
void json_write_float(FILE *fp, float v);
/* A double with the fewest digits (15 to 17) that read back exactly; NaN/Inf as null. */
void json_write_double(FILE *fp, double v);

#endif
