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
#include "base/utf8.h"
#include "hash.h"

#define REPLACEMENT 0xFFFDu

/* One code point at p (p < end); returns the bytes it took. */
static size_t utf8_next(const unsigned char *p, const unsigned char *end,
                        uint32_t *cp)
{
    size_t n = utf8_decode(p, (size_t)(end - p), cp);

    if (n > 0)
        return n;
    *cp = REPLACEMENT;
    return 1;
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
