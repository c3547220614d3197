/* test_json.c -- the JSON writer (core/base/json.c): what the admin
 * listener's documents are made of, keys that are bytes among them. */
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "unit.h"

/* s[0..n) as a JSON string, in a fresh document. */
static char *str_of(const char *s, size_t n, size_t *len)
{
    struct json j;
    json_init(&j);
    json_strn(&j, s, n);
    return json_take(&j, len);
}

#define CHECK_STR(in, want)                                                    \
    do {                                                                       \
        size_t len_;                                                           \
        char *got_ = str_of(in, sizeof(in) - 1, &len_);                        \
        CHECK(got_ != NULL);                                                   \
        if (got_) CHECK_EQ_MEM(got_, len_, want);                              \
        free(got_);                                                            \
    } while (0)

static void test_escapes(void)
{
    CHECK_STR("plain", "\"plain\"");
    CHECK_STR("a\"b\\c", "\"a\\\"b\\\\c\"");
    CHECK_STR("\x01\n\x7f", "\"\\u0001\\u000a\\u007f\"");
}

static void test_utf8_kept(void)
{
    CHECK_STR("caf\xc3\xa9", "\"caf\xc3\xa9\"");                 /* é */
    CHECK_STR("\xe2\x82\xac", "\"\xe2\x82\xac\"");                /* € */
    CHECK_STR("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");        /* U+1F600 */
}

/* Bytes that are not UTF-8 come out as \u00XX, one each: the document
 * stays valid JSON whatever a key holds. */
static void test_bytes_not_utf8(void)
{
    CHECK_STR("\xff", "\"\\u00ff\"");
    CHECK_STR("\xc0\x80", "\"\\u00c0\\u0080\"");                  /* overlong NUL */
    CHECK_STR("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"");       /* a surrogate */
    CHECK_STR("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\"");   /* past U+10FFFF */
    CHECK_STR("ab\xe2\x82", "\"ab\\u00e2\\u0082\"");             /* cut short */
    CHECK_STR("\xc3(", "\"\\u00c3(\"");                          /* no continuation */
}

static void test_document(void)
{
    struct json j;
    json_init(&j);
    json_open(&j, '{');
    json_kstr(&j, "k", "v");
    json_knum(&j, "n", 1.5);
    json_key(&j, "a");
    json_open(&j, '[');
    json_num(&j, 2);
    json_null(&j);
    json_bool(&j, true);
    json_close(&j, ']');
    json_close(&j, '}');
    size_t len;
    char *doc = json_take(&j, &len);
    CHECK(doc != NULL);
    if (doc) CHECK_EQ_MEM(doc, len, "{\"k\":\"v\",\"n\":1.5,\"a\":[2,null,true]}");
    free(doc);
}

int main(void)
{
    RUN(test_escapes);
    RUN(test_utf8_kept);
    RUN(test_bytes_not_utf8);
    RUN(test_document);
    return unit_report("json");
}
