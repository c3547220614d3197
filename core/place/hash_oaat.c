/* hash_oaat.c -- Bob Jenkins' one-at-a-time hash as libmemcached computes it
 * (libhashkit's hashkit_one_at_a_time, MEMCACHED_HASH_DEFAULT).
 *
 * libhashkit reads the key through a `const char *` and widens each byte
 * with (uint32_t)*ptr: on x86-64 (and every Debian target where char is
 * signed) a byte >= 0x80 is sign-extended, so 0x80 adds 0xffffff80, not
 * 0x80.  This matters for keys with such bytes (UTF-8 keys included), and
 * is kept here: the byte goes through int8_t.  (On a target whose char is
 * unsigned, such as arm64, libmemcached itself would place those keys
 * differently; the gateway follows x86-64.)
 */
#include "hash.h"

uint32_t hash_oaat(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint32_t h = 0;

    for (size_t i = 0; i < len; i++) {
        h += (uint32_t)(int32_t)(int8_t)p[i];
        h += h << 10;
        h ^= h >> 6;
    }
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h;
}
