/* json.h -- a small JSON writer into a growing buffer.
 *
 * Calls append a value, a key or a bracket; commas are placed for the
 * caller.  Strings are escaped as RFC 8259 asks (control bytes as \u00XX;
 * bytes >= 0x80 pass through: keys and names are the caller's bytes).  On
 * allocation failure the buffer is marked failed and later calls do
 * nothing; json_take then returns NULL.
 *
 * Ownership: the buffer belongs to the json until json_take hands it over
 * (malloc'd, NUL-terminated).
 */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stdbool.h>
#include <stddef.h>

struct json {
    char *p;
    size_t len, cap;
    bool failed;
    bool need_comma;
};

void json_init(struct json *j);
void json_open(struct json *j, char bracket);     /* '{' or '[' */
void json_close(struct json *j, char bracket);    /* '}' or ']' */
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
/* s[0..n) as a JSON string: UTF-8 kept, control characters escaped, and a
 * byte that is not UTF-8 (memcached keys are bytes) as \u00XX, so the
 * document stays valid JSON. */
void json_strn(struct json *j, const char *s, size_t n);
void json_num(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* key and value in one call */
void json_kstr(struct json *j, const char *key, const char *s);
void json_knum(struct json *j, const char *key, double v);
void json_kbool(struct json *j, const char *key, bool v);
/* The text (the caller frees it), or NULL if anything failed. */
char *json_take(struct json *j, size_t *len);
void json_free(struct json *j);

#endif
