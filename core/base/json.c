/* json.c -- see json.h. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j)
{
    memset(j, 0, sizeof *j);
}

static void put(struct json *j, const char *s, size_t n)
{
    if (j->failed) return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1024;
        while (cap < j->len + n + 1) cap *= 2;
        char *p = realloc(j->p, cap);
        if (!p) {
            j->failed = true;
            return;
        }
        j->p = p;
        j->cap = cap;
    }
    memcpy(j->p + j->len, s, n);
    j->len += n;
    j->p[j->len] = 0;
}

/* A value or a key starts: a comma first unless it is the first. */
static void item(struct json *j)
{
    if (j->need_comma) put(j, ",", 1);
    j->need_comma = true;
}

void json_open(struct json *j, char bracket)
{
    item(j);
    put(j, &bracket, 1);
    j->need_comma = false;
}

void json_close(struct json *j, char bracket)
{
    put(j, &bracket, 1);
    j->need_comma = true;
}

void json_key(struct json *j, const char *key)
{
    json_str(j, key);
    put(j, ":", 1);
    j->need_comma = false;
}

/* The length of the well-formed UTF-8 sequence at s (at most n bytes), or
 * 0: no overlong form, surrogate or code point past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xf4) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))) return 0;
    if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))) return 0;
    return len;
}

void json_strn(struct json *j, const char *s, size_t n)
{
    item(j);
    put(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char)c };
            put(j, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            put(j, e, 6);
        } else if (c < 0x80) {
            put(j, (const char *)&s[i], 1);
        } else {
            size_t len = utf8_len((const unsigned char *)s + i, n - i);
            if (len) {
                put(j, s + i, len);
                i += len - 1;
            } else {   /* not UTF-8: the byte as the code point of its value */
                char e[8];
                snprintf(e, sizeof e, "\\u%04x", c);
                put(j, e, 6);
            }
        }
    }
    put(j, "\"", 1);
}

void json_str(struct json *j, const char *s)
{
    if (!s) json_null(j);
    else json_strn(j, s, strlen(s));
}

void json_num(struct json *j, double v)
{
    item(j);
    char b[40];
    int n;
    if (!isfinite(v)) n = snprintf(b, sizeof b, "null");
    else if (v == floor(v) && fabs(v) < 1e15) n = snprintf(b, sizeof b, "%.0f", v);
    else n = snprintf(b, sizeof b, "%.17g", v);
    put(j, b, (size_t)n);
}

void json_bool(struct json *j, bool v)
{
    item(j);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json *j)
{
    item(j);
    put(j, "null", 4);
}

void json_kstr(struct json *j, const char *key, const char *s)
{
    json_key(j, key);
    json_str(j, s);
}

void json_knum(struct json *j, const char *key, double v)
{
    json_key(j, key);
    json_num(j, v);
}

void json_kbool(struct json *j, const char *key, bool v)
{
    json_key(j, key);
    json_bool(j, v);
}

char *json_take(struct json *j, size_t *len)
{
    if (j->failed || !j->p) {
        json_free(j);
        return NULL;
    }
    char *p = j->p;
    *len = j->len;
    j->p = NULL;
    j->len = j->cap = 0;
    return p;
}

void json_free(struct json *j)
{
    free(j->p);
    j->p = NULL;
    j->len = j->cap = 0;
}
