/* libFuzzer target: the JSON parser of safetensors headers (json_parse), then a walk over the tree
 * as the checkpoint reader does it (json_get on objects, strings, numbers). */
#include "fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <string.h>

#include "json.h"

static void walk(const JsonValue *v, int depth) {
    FUZZ_ASSERT(depth <= 70);
    switch (v->type) {
    case JSON_STRING: fuzz_touch(v->string, strlen(v->string) + 1); break;
    case JSON_NUMBER: fuzz_sink += v->is_uint ? (unsigned)v->uint : (unsigned)(v->number == v->number); break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->len; i++) {
            FUZZ_ASSERT(json_get(v, v->keys[i]) == &v->items[i]); /* keys are unique */
            walk(&v->items[i], depth + 1);
        }
        (void)json_get(v, "__metadata__");
        break;
    case JSON_ARRAY:
        FUZZ_ASSERT(json_get(v, "x") == NULL);
        for (size_t i = 0; i < v->len; i++) walk(&v->items[i], depth + 1);
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy with no slack after it, so a read past the end is caught. */
    char *text = malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    JsonValue v;
    Err e;
    if (json_parse(text, size, &v, &e) == 0) {
        walk(&v, 0);
        json_free(&v);
    } else {
        FUZZ_ASSERT(e.msg[0] != '\0');
    }
    free(text);
    return 0;
}
