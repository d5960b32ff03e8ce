#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *p, *end;
    Err *e;
} Parser;

static void skip_ws(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static size_t pos_of(Parser *ps, const char *start) { return (size_t)(ps->p - start); }

static int parse_value(Parser *ps, JsonValue *v, int depth, const char *start);

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | (cp >> 6 & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The length of the well-formed UTF-8 sequence at p[0, n), or 0 if there is none: no stray continuation
 * byte, overlong form, surrogate or code point above U+10FFFF (RFC 3629, as the reference safetensors
 * reader demands). */
static size_t utf8_length(const unsigned char *p, size_t n) {
    unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
    size_t len;
    if (p[0] < 0x80) return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) len = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) len = 3, lo = p[0] == 0xE0 ? 0xA0 : 0x80, hi = p[0] == 0xED ? 0x9F : 0xBF;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4) len = 4, lo = p[0] == 0xF0 ? 0x90 : 0x80, hi = p[0] == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return len;
}

static int parse_string(Parser *ps, char **out, const char *start) {
    /* ps->p is at the opening quote. The decoded string is never longer than the encoded one. */
    const char *q = ps->p + 1;
    while (q < ps->end && *q != '"') {
        if (*q == '\\') q++;
        q++;
    }
    if (q >= ps->end) return err_set(ps->e, "unterminated string at byte %zu", pos_of(ps, start));
    char *s = xmalloc((size_t)(q - ps->p) + 4);
    size_t n = 0;
    ps->p++;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) { free(s); return err_set(ps->e, "control character in string at byte %zu", pos_of(ps, start)); }
        if (c >= 0x80) {
            size_t len = utf8_length((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
            if (len == 0) { free(s); return err_set(ps->e, "invalid UTF-8 in string at byte %zu", pos_of(ps, start)); }
            memcpy(s + n, ps->p, len);
            n += len;
            ps->p += len;
            continue;
        }
        if (c != '\\') { s[n++] = (char)c; ps->p++; continue; }
        ps->p++;
        char esc = *ps->p++;
        switch (esc) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (ps->end - ps->p < 4 || hex4(ps->p, &cp) != 0 || cp == 0) {
                free(s);
                return err_set(ps->e, "bad \\u escape at byte %zu", pos_of(ps, start));
            }
            ps->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                unsigned lo;
                if (hex4(ps->p + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    ps->p += 6;
                }
            }
            /* A surrogate not paired above would become invalid UTF-8. */
            if (cp >= 0xD800 && cp < 0xE000) {
                free(s);
                return err_set(ps->e, "unpaired surrogate \\u%04X in string at byte %zu", cp, pos_of(ps, start));
            }
            n += put_utf8(s + n, cp);
            break;
        }
        default:
            free(s);
            return err_set(ps->e, "bad escape in string at byte %zu", pos_of(ps, start));
        }
    }
    ps->p++;
    s[n] = '\0';
    *out = s;
    return 0;
}

static int parse_number(Parser *ps, JsonValue *v, const char *start) {
    const char *b = ps->p;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return err_set(ps->e, "bad number at byte %zu", pos_of(ps, start));
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    int plain = *b != '-';
    if (ps->p < ps->end && *ps->p == '.') {
        plain = 0;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return err_set(ps->e, "bad number at byte %zu", pos_of(ps, start));
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        plain = 0;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return err_set(ps->e, "bad number at byte %zu", pos_of(ps, start));
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    char buf[64];
    size_t n = (size_t)(ps->p - b);
    if (n >= sizeof buf) return err_set(ps->e, "number too long at byte %zu", pos_of(ps, start));
    memcpy(buf, b, n);
    buf[n] = '\0';
    v->type = JSON_NUMBER;
    v->number = strtod(buf, NULL);
    if (plain) {
        uint64_t u = 0;
        int ok = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned d = (unsigned)(buf[i] - '0');
            if (u > (UINT64_MAX - d) / 10) { ok = 0; break; }
            u = u * 10 + d;
        }
        v->is_uint = ok;
        v->uint = u;
    }
    return 0;
}

static int parse_literal(Parser *ps, const char *word, const char *start) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return err_set(ps->e, "unexpected character at byte %zu", pos_of(ps, start));
    ps->p += n;
    return 0;
}

static int parse_container(Parser *ps, JsonValue *v, int depth, const char *start, int is_object) {
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return 0; }
    for (;;) {
        if (v->len == cap) {
            cap = cap ? 2 * cap : 8;
            v->items = realloc(v->items, cap * sizeof *v->items);
            if (is_object) v->keys = realloc(v->keys, cap * sizeof *v->keys);
            if (!v->items || (is_object && !v->keys)) die(EXIT_BAD_INPUT, "out of memory parsing JSON");
        }
        JsonValue *item = &v->items[v->len];
        memset(item, 0, sizeof *item);
        if (is_object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') return err_set(ps->e, "expected a string key at byte %zu", pos_of(ps, start));
            if (parse_string(ps, &v->keys[v->len], start) != 0) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                v->len++; /* so that json_free releases the key */
                return err_set(ps->e, "expected ':' at byte %zu", pos_of(ps, start));
            }
            ps->p++;
            for (size_t i = 0; i < v->len; i++)
                if (strcmp(v->keys[i], v->keys[v->len]) == 0) {
                    v->len++;
                    return err_set(ps->e, "duplicate key \"%s\"", v->keys[v->len - 1]);
                }
        }
        v->len++;
        if (parse_value(ps, item, depth + 1, start) != 0) return -1;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; return 0; }
        return err_set(ps->e, "expected ',' or '%c' at byte %zu", close, pos_of(ps, start));
    }
}

static int parse_value(Parser *ps, JsonValue *v, int depth, const char *start) {
    if (depth > JSON_MAX_DEPTH) return err_set(ps->e, "nested too deeply");
    skip_ws(ps);
    if (ps->p >= ps->end) return err_set(ps->e, "unexpected end of JSON");
    switch (*ps->p) {
    case '{': v->type = JSON_OBJECT; return parse_container(ps, v, depth, start, 1);
    case '[': v->type = JSON_ARRAY; return parse_container(ps, v, depth, start, 0);
    case '"': v->type = JSON_STRING; return parse_string(ps, &v->string, start);
    case 't': v->type = JSON_BOOL; v->boolean = 1; return parse_literal(ps, "true", start);
    case 'f': v->type = JSON_BOOL; return parse_literal(ps, "false", start);
    case 'n': v->type = JSON_NULL; return parse_literal(ps, "null", start);
    default: return parse_number(ps, v, start);
    }
}

int json_parse(const char *text, size_t len, JsonValue *out, Err *e) {
    Parser ps = {text, text + len, e};
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len)) {
        err_set(e, "NUL byte inside JSON");
        return -1;
    }
    if (parse_value(&ps, out, 0, text) != 0) {
        json_free(out);
        return -1;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        json_free(out);
        return err_set(e, "unexpected data after the JSON value at byte %zu", (size_t)(ps.p - text));
    }
    return 0;
}

void json_free(JsonValue *v) {
    for (size_t i = 0; i < v->len; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}

const JsonValue *json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

void json_write_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c == '\n') fputs("\\n", fp);
        else if (c == '\t') fputs("\\t", fp);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    fputc('"', fp);
}

void json_write_float(FILE *fp, float v) {
    if (!isfinite(v)) fputs("null", fp);
    else fprintf(fp, "%.9g", (double)v);
}

void json_write_double(FILE *fp, double v) {
    if (!isfinite(v)) {
        fputs("null", fp);
        return;
    }
    /* The shortest of %.15g..%.17g that reads back as the same double: 0.05, not 0.050000000000000003. */
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, fp);
}
