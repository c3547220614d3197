/* utf8.h -- decoding one well-formed UTF-8 character (RFC 3629).
 *
 * Placement modes whose client hashes characters, not bytes (pymemcache,
 * Java's String.hashCode), see the key's UTF-8 bytes and decode them back.
 * What a byte that starts no well-formed character stands for is each
 * caller's own rule, so the decoder only says it found none.
 */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The character at p[0..len) (len > 0): its code point in *cp and its
 * length in bytes (1 to 4); 0 when p does not start a well-formed
 * character (a stray continuation byte, an overlong form, a surrogate,
 * above U+10FFFF, or cut off by len). */
size_t utf8_decode(const unsigned char *p, size_t len, uint32_t *cp);

#endif
