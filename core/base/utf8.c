/* utf8.c -- see utf8.h. */
#include "utf8.h"

size_t utf8_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
    unsigned char b = p[0];
    unsigned char lo = 0x80, hi = 0xbf;   /* the allowed range of the 2nd byte */
    size_t n;
    uint32_t c;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2, c = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3, c = b & 0x0f;
        if (b == 0xe0) lo = 0xa0;          /* not overlong */
        if (b == 0xed) hi = 0x9f;          /* not a surrogate */
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4, c = b & 0x07;
        if (b == 0xf0) lo = 0x90;          /* not overlong */
        if (b == 0xf4) hi = 0x8f;          /* not above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    *cp = c;
    return n;
}
