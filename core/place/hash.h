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
/* zlib's crc32(crc, data, len): continue a CRC, so that
 * hash_crc32_more(hash_crc32(a), b) is the CRC of a followed by b. */
uint32_t hash_crc32_more(uint32_t crc, const void *data, size_t len);
void hash_md5(const void *data, size_t len, unsigned char out[16]);
void hash_sha1(const void *data, size_t len, unsigned char out[20]);
uint64_t hash_xxh64(const void *data, size_t len);      /* XXH3_64bits */
int32_t hash_jump(uint64_t key, int32_t buckets);       /* Lamping & Veach */

/* python-memcached's 15-bit server hash; legacy_one applies "0 becomes 1". */
uint32_t hash_pymc(const void *key, size_t len, bool legacy_one);

/* libmemcached's default key hash: one-at-a-time over signed char. */
uint32_t hash_oaat(const void *key, size_t len);
/* MurmurHash3_x86_32, one-shot and fed a byte at a time (a state can be
 * copied: hash a prefix once, then go on from copies).  len counts the
 * bytes fed, modulo 2^32, as the reference's (uint32_t) length does. */
struct murmur3 {
    uint32_t h1;       /* the state after the whole 4-byte blocks */
    uint32_t block;    /* the bytes of the unfinished block, little-endian */
    uint32_t len;      /* bytes fed so far */
};
void murmur3_init(struct murmur3 *m, uint32_t seed);
void murmur3_byte(struct murmur3 *m, uint8_t b);
void murmur3_update(struct murmur3 *m, const void *data, size_t len);
uint32_t murmur3_final(const struct murmur3 *m);
uint32_t hash_murmur3_32(const void *data, size_t len, uint32_t seed);
/* Java's String.hashCode() (as an unsigned 32-bit value) of the string
 * whose UTF-8 encoding is data[0..len). */
uint32_t hash_java(const void *data, size_t len);

#endif
