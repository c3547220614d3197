/* hash_murmur3.c -- MurmurHash3_x86_32 (Austin Appleby's, public domain).
 *
 * Fed a byte at a time through struct murmur3 so that a caller can hash a
 * fixed prefix once and go on from a copy of the state (pymemcache's
 * rendezvous hash hashes "node-key" for every node), or feed something
 * other than the raw bytes (pymemcache's pure-Python murmur3 takes ord() of
 * each character, masked to 8 bits, and counts characters in the length).
 * Fed the same bytes, the result equals the one-shot reference function.
 */
#include "hash.h"

#define C1 0xcc9e2d51u
#define C2 0x1b873593u

static inline uint32_t rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t mix_k1(uint32_t k1)
{
    k1 *= C1;
    k1 = rotl32(k1, 15);
    return k1 * C2;
}

void murmur3_init(struct murmur3 *m, uint32_t seed)
{
    m->h1 = seed;
    m->block = 0;
    m->len = 0;
}

void murmur3_byte(struct murmur3 *m, uint8_t b)
{
    unsigned shift = 8 * (m->len & 3);

    m->block |= (uint32_t)b << shift;
    m->len++;
    if ((m->len & 3) == 0) {
        m->h1 ^= mix_k1(m->block);
        m->h1 = rotl32(m->h1, 13);
        m->h1 = m->h1 * 5 + 0xe6546b64u;
        m->block = 0;
    }
}

void murmur3_update(struct murmur3 *m, const void *data, size_t len)
{
    const uint8_t *p = data;

    /* finish an open block a byte at a time, then whole blocks at once */
    while (len > 0 && (m->len & 3) != 0) {
        murmur3_byte(m, *p++);
        len--;
    }
    for (; len >= 4; p += 4, len -= 4) {
        uint32_t k1 = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                      (uint32_t)p[3] << 24;

        m->h1 ^= mix_k1(k1);
        m->h1 = rotl32(m->h1, 13);
        m->h1 = m->h1 * 5 + 0xe6546b64u;
        m->len += 4;
    }
    while (len > 0) {
        murmur3_byte(m, *p++);
        len--;
    }
}

uint32_t murmur3_final(const struct murmur3 *m)
{
    uint32_t h1 = m->h1;

    if (m->len & 3)
        h1 ^= mix_k1(m->block);
    h1 ^= m->len;
    h1 ^= h1 >> 16;
    h1 *= 0x85ebca6bu;
    h1 ^= h1 >> 13;
    h1 *= 0xc2b2ae35u;
    h1 ^= h1 >> 16;
    return h1;
}

uint32_t hash_murmur3_32(const void *data, size_t len, uint32_t seed)
{
    struct murmur3 m;

    murmur3_init(&m, seed);
    murmur3_update(&m, data, len);
    return murmur3_final(&m);
}
