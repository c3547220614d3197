/* hash_java.c -- Java's String.hashCode() of a key that arrives as UTF-8.
 *
 * Java hashes a String's UTF-16 code units: h = 31 * h + unit, in 32-bit
 * wrapping arithmetic, starting at 0.  The gateway sees the key's UTF-8
 * bytes (spymemcached sends String.getBytes("UTF-8")), so the bytes are
 * decoded back to code points first: U+0000..U+FFFF is one unit, a code
 * point above U+FFFF is the surrogate pair Java holds for it.
 *
 * Bytes that are not well-formed UTF-8 (a stray continuation byte, a
 * truncated or overlong sequence, an encoded surrogate, anything above
 * U+10FFFF) are hashed as one U+FFFD each.  No Java client sends such
 * bytes -- getBytes("UTF-8") always yields well-formed UTF-8 -- so the rule
 * only has to be fixed, not to match anything.  The one key that cannot be
 * matched: a Java String holding an unpaired surrogate, which Java hashes
 * as the surrogate but sends as "?".
 */
#include "hash.h"

#define REPLACEMENT 0xFFFDu

/* Decode one code point at p (p < end); returns the bytes it took. */
static size_t utf8_next(const unsigned char *p, const unsigned char *end,
                        uint32_t *cp)
{
    unsigned char b = p[0];
    size_t need;
    uint32_t c, min;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1, c = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2, c = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3, c = b & 0x07, min = 0x10000;
    } else {
        *cp = REPLACEMENT;
        return 1;
    }
    if ((size_t)(end - p) <= need) {
        *cp = REPLACEMENT;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cp = REPLACEMENT;
            return 1;
        }
        c = c << 6 | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *cp = REPLACEMENT;
        return 1;
    }
    *cp = c;
    return need + 1;
}

uint32_t hash_java(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint32_t h = 0;

    while (p < end) {
        uint32_t cp;

        p += utf8_next(p, end, &cp);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return h;
}
