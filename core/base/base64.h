/* base64.h -- RFC 4648 base64 (the standard alphabet, "=" padding), as
 * memcached's meta protocol carries binary keys (the 'b' flag).
 *
 * Contract
 * - Never allocates: the caller passes the output buffer and its size.
 * - base64_encode writes base64_encoded_len(n) bytes, padded, no NUL.
 * - base64_decode is strict: it accepts only canonical-length input (a
 *   multiple of 4 characters; "" decodes to nothing), only alphabet
 *   characters, and
 *   "=" only as the last one or two characters.  Bits left over in the last
 *   character before padding are ignored (RFC 4648 3.5 lets a decoder
 *   refuse them; memcached accepts them, so a key it takes decodes the
 *   same here).  memcached's own decoder is laxer still: it skips bytes
 *   outside the alphabet and stops at the first padded quantum; such input
 *   is refused here, so every key accepted decodes to what the server
 *   stores.
 */
#ifndef GW_BASE64_H
#define GW_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters that encode n bytes: 4 * ceil(n / 3). */
static inline size_t base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Encode src[0..n) into out, which must hold base64_encoded_len(n) bytes.
 * Returns the bytes written. */
size_t base64_encode(const uint8_t *src, size_t n, char *out);

/* Decode src[0..n) into out[0..cap).  Returns the decoded length, or -1 when
 * src is not canonical base64 (see above) or does not fit in cap bytes. */
long base64_decode(const char *src, size_t n, uint8_t *out, size_t cap);

#endif
