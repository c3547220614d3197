/* hash_sha1.c -- SHA-1 (FIPS 180-4), one-shot, from OpenSSL's libcrypto.
 *
 * Only dalli's ring needs it, and only while building (one digest per
 * point name "host:port:i"), so libcrypto's implementation, already
 * linked for TLS, is used rather than a hand-written one.
 */
#include <openssl/sha.h>

#include "hash.h"

void hash_sha1(const void *data, size_t len, unsigned char out[20])
{
    SHA1(data, len, out);
}
