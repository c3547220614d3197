/* hash.h -- the small hash functions that placement is built from.
 *
 * One file per algorithm (twemproxy's hashkit style), each checked against
 * known-answer vectors in tests/unit/test_hash.c.  dist.h builds the
 * distributions (key -> server) out of them.
 */
#ifndef GW_HASH_H
#define GW_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* --- the small functions ------------------------------------------------ */

uint32_t hash_crc32(const void *data, size_t len);      /* zlib's crc32 */
void hash_md5(const void *data, size_t len, unsigned char out[16]);
uint64_t hash_xxh64(const void *data, size_t len);      /* XXH3_64bits */
int32_t hash_jump(uint64_t key, int32_t buckets);       /* Lamping & Veach */

/* python-memcached's 15-bit server hash; legacy_one applies "0 becomes 1". */
uint32_t hash_pymc(const void *key, size_t len, bool legacy_one);

/* Java's String.hashCode() (as an unsigned 32-bit value) of the string
 * whose UTF-8 encoding is data[0..len). */
uint32_t hash_java(const void *data, size_t len);

#endif
