/* hash_pymc.c -- python-memcached's server hash ("cmemcache_hash").
 *
 * python-memcached 1.59 computes
 *     ((crc32(key) & 0xffffffff) >> 16) & 0x7fff  or 1
 * i.e. bits 16..30 of the CRC-32, with 0 replaced by 1 (Python's `or`).
 * Later releases drop the "or 1", so a key whose 15 bits are 0 lands on
 * bucket 0 instead of bucket 1; legacy_one selects the old behaviour.
 */
#include "hash.h"

uint32_t hash_pymc(const void *key, size_t len, bool legacy_one)
{
    uint32_t h = (hash_crc32(key, len) >> 16) & 0x7fff;

    if (h == 0 && legacy_one)
        h = 1;
    return h;
}
