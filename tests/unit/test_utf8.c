/* test_utf8.c -- the UTF-8 decoder (core/base/utf8.c): every length, the
 * edges of each range, and the forms RFC 3629 says are not UTF-8. */
#include <string.h>

#include "base/status.h"
#include "base/utf8.h"
#include "unit.h"

static const struct {
    const char *bytes;
    size_t n;          /* what utf8_decode returns: 0 for "none" */
    uint32_t cp;
} cases[] = {
    {"A", 1, 0x41},
    {"\x7f", 1, 0x7f},
    {"\xc2\x80", 2, 0x80},
    {"\xdf\xbf", 2, 0x7ff},
    {"\xe0\xa0\x80", 3, 0x800},
    {"\xed\x9f\xbf", 3, 0xd7ff},
    {"\xee\x80\x80", 3, 0xe000},
    {"\xef\xbf\xbf", 3, 0xffff},
    {"\xf0\x90\x80\x80", 4, 0x10000},
    {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
    {"\xc3\xa9tail", 2, 0xe9},           /* only the first character */
    {"\x80", 0, 0},                      /* a stray continuation byte */
    {"\xc0\x80", 0, 0},                  /* overlong NUL */
    {"\xc1\xbf", 0, 0},                  /* overlong */
    {"\xe0\x9f\xbf", 0, 0},              /* overlong */
    {"\xf0\x8f\xbf\xbf", 0, 0},          /* overlong */
    {"\xed\xa0\x80", 0, 0},              /* a surrogate */
    {"\xf4\x90\x80\x80", 0, 0},          /* above U+10FFFF */
    {"\xf5\x80\x80\x80", 0, 0},
    {"\xff", 0, 0},
    {"\xc3" "A", 0, 0},                  /* a continuation missing */
    {"\xe2\x82", 0, 0},                  /* cut off */
};

static void test_cases(void)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        uint32_t cp = 0;
        size_t n = utf8_decode((const unsigned char *)cases[i].bytes, strlen(cases[i].bytes), &cp);

        CHECK_EQ_INT(n, cases[i].n);
        if (n)
            CHECK_EQ_INT(cp, cases[i].cp);
    }
}

/* len cuts a well-formed character: none, without reading past len. */
static void test_len_cut(void)
{
    uint32_t cp;

    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 3, &cp), 0);
    CHECK_EQ_INT(utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    CHECK_EQ_INT(cp, 0x1f600);
}

int main(void)
{
    RUN(test_cases);
    RUN(test_len_cut);
    return unit_report("utf8");
}
