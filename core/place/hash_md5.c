/* hash_md5.c -- MD5 (RFC 1321), one-shot.
 *
 * Only the one-shot form is needed: ketama hashes short point names
 * ("host:port-i") and keys, so there is no streaming context.  The four
 * rounds are written out step by step, as in the RFC's own reference
 * code, so each line can be checked against section 3.4.
 */
#include <string.h>

#include "hash.h"

/* T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 section 3.4. */
static const uint32_t md5_t[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu,
    0xf57c0fafu, 0x4787c62au, 0xa8304613u, 0xfd469501u,
    0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu,
    0x6b901122u, 0xfd987193u, 0xa679438eu, 0x49b40821u,
    0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau,
    0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u,
    0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu,
    0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au,
    0xfffa3942u, 0x8771f681u, 0x6d9d6122u, 0xfde5380cu,
    0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u,
    0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u,
    0xf4292244u, 0x432aff97u, 0xab9423a7u, 0xfc93a039u,
    0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
    0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u,
    0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u,
};

static inline uint32_t rotl32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void store_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* The four auxiliary functions of RFC 1321 section 3.4 (F and G in the
 * forms with one operation fewer). */
#define MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))

/* One step: a = b + ((a + fn(b,c,d) + m[g] + T[i]) <<< s). */
#define MD5_STEP(fn, a, b, c, d, g, i, s) \
    (a) = (b) + rotl32((a) + fn((b), (c), (d)) + m[g] + md5_t[i], (s))

/* Fold one 64-byte block into state[4].  The 64 steps are written out, four
 * per line in the RFC's order (word index g, step i, shift s): a loop with
 * a switch per step ran at half the speed, and ketama hashes every key. */
static void md5_block(uint32_t state[4], const unsigned char *block)
{
    uint32_t m[16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];

    for (int i = 0; i < 16; i++)
        m[i] = load_le32(block + 4 * i);

    MD5_STEP(MD5_F, a, b, c, d,  0,  0,  7); MD5_STEP(MD5_F, d, a, b, c,  1,  1, 12);
    MD5_STEP(MD5_F, c, d, a, b,  2,  2, 17); MD5_STEP(MD5_F, b, c, d, a,  3,  3, 22);
    MD5_STEP(MD5_F, a, b, c, d,  4,  4,  7); MD5_STEP(MD5_F, d, a, b, c,  5,  5, 12);
    MD5_STEP(MD5_F, c, d, a, b,  6,  6, 17); MD5_STEP(MD5_F, b, c, d, a,  7,  7, 22);
    MD5_STEP(MD5_F, a, b, c, d,  8,  8,  7); MD5_STEP(MD5_F, d, a, b, c,  9,  9, 12);
    MD5_STEP(MD5_F, c, d, a, b, 10, 10, 17); MD5_STEP(MD5_F, b, c, d, a, 11, 11, 22);
    MD5_STEP(MD5_F, a, b, c, d, 12, 12,  7); MD5_STEP(MD5_F, d, a, b, c, 13, 13, 12);
    MD5_STEP(MD5_F, c, d, a, b, 14, 14, 17); MD5_STEP(MD5_F, b, c, d, a, 15, 15, 22);

    MD5_STEP(MD5_G, a, b, c, d,  1, 16,  5); MD5_STEP(MD5_G, d, a, b, c,  6, 17,  9);
    MD5_STEP(MD5_G, c, d, a, b, 11, 18, 14); MD5_STEP(MD5_G, b, c, d, a,  0, 19, 20);
    MD5_STEP(MD5_G, a, b, c, d,  5, 20,  5); MD5_STEP(MD5_G, d, a, b, c, 10, 21,  9);
    MD5_STEP(MD5_G, c, d, a, b, 15, 22, 14); MD5_STEP(MD5_G, b, c, d, a,  4, 23, 20);
    MD5_STEP(MD5_G, a, b, c, d,  9, 24,  5); MD5_STEP(MD5_G, d, a, b, c, 14, 25,  9);
    MD5_STEP(MD5_G, c, d, a, b,  3, 26, 14); MD5_STEP(MD5_G, b, c, d, a,  8, 27, 20);
    MD5_STEP(MD5_G, a, b, c, d, 13, 28,  5); MD5_STEP(MD5_G, d, a, b, c,  2, 29,  9);
    MD5_STEP(MD5_G, c, d, a, b,  7, 30, 14); MD5_STEP(MD5_G, b, c, d, a, 12, 31, 20);

    MD5_STEP(MD5_H, a, b, c, d,  5, 32,  4); MD5_STEP(MD5_H, d, a, b, c,  8, 33, 11);
    MD5_STEP(MD5_H, c, d, a, b, 11, 34, 16); MD5_STEP(MD5_H, b, c, d, a, 14, 35, 23);
    MD5_STEP(MD5_H, a, b, c, d,  1, 36,  4); MD5_STEP(MD5_H, d, a, b, c,  4, 37, 11);
    MD5_STEP(MD5_H, c, d, a, b,  7, 38, 16); MD5_STEP(MD5_H, b, c, d, a, 10, 39, 23);
    MD5_STEP(MD5_H, a, b, c, d, 13, 40,  4); MD5_STEP(MD5_H, d, a, b, c,  0, 41, 11);
    MD5_STEP(MD5_H, c, d, a, b,  3, 42, 16); MD5_STEP(MD5_H, b, c, d, a,  6, 43, 23);
    MD5_STEP(MD5_H, a, b, c, d,  9, 44,  4); MD5_STEP(MD5_H, d, a, b, c, 12, 45, 11);
    MD5_STEP(MD5_H, c, d, a, b, 15, 46, 16); MD5_STEP(MD5_H, b, c, d, a,  2, 47, 23);

    MD5_STEP(MD5_I, a, b, c, d,  0, 48,  6); MD5_STEP(MD5_I, d, a, b, c,  7, 49, 10);
    MD5_STEP(MD5_I, c, d, a, b, 14, 50, 15); MD5_STEP(MD5_I, b, c, d, a,  5, 51, 21);
    MD5_STEP(MD5_I, a, b, c, d, 12, 52,  6); MD5_STEP(MD5_I, d, a, b, c,  3, 53, 10);
    MD5_STEP(MD5_I, c, d, a, b, 10, 54, 15); MD5_STEP(MD5_I, b, c, d, a,  1, 55, 21);
    MD5_STEP(MD5_I, a, b, c, d,  8, 56,  6); MD5_STEP(MD5_I, d, a, b, c, 15, 57, 10);
    MD5_STEP(MD5_I, c, d, a, b,  6, 58, 15); MD5_STEP(MD5_I, b, c, d, a, 13, 59, 21);
    MD5_STEP(MD5_I, a, b, c, d,  4, 60,  6); MD5_STEP(MD5_I, d, a, b, c, 11, 61, 10);
    MD5_STEP(MD5_I, c, d, a, b,  2, 62, 15); MD5_STEP(MD5_I, b, c, d, a,  9, 63, 21);

    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void hash_md5(const void *data, size_t len, unsigned char out[16])
{
    const unsigned char *p = data;
    uint32_t state[4] = { 0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u };
    unsigned char tail[128];
    uint64_t bits = (uint64_t)len * 8;
    size_t rest, padded;

    for (; len >= 64; p += 64, len -= 64)
        md5_block(state, p);

    /* Padding: 0x80, zeros up to 56 mod 64, then the bit length (LE64).
     * The remainder plus padding fits in one block, or two if rest >= 56. */
    rest = len;
    padded = rest < 56 ? 64 : 128;
    if (rest)
        memcpy(tail, p, rest);
    tail[rest] = 0x80;
    memset(tail + rest + 1, 0, padded - 8 - rest - 1);
    store_le32(tail + padded - 8, (uint32_t)bits);
    store_le32(tail + padded - 4, (uint32_t)(bits >> 32));

    md5_block(state, tail);
    if (padded == 128)
        md5_block(state, tail + 64);

    for (int i = 0; i < 4; i++)
        store_le32(out + 4 * i, state[i]);
}
