/* hash_jump.c -- jump consistent hash (Lamping & Veach, 2014) and the
 * 64-bit key hash that feeds it (XXH3-64 from libxxhash).
 */
#include <xxhash.h>

#include "hash.h"

uint64_t hash_xxh64(const void *data, size_t len)
{
    return (uint64_t)XXH3_64bits(data, len);
}

/* The paper's algorithm: a 64-bit LCG drives a sequence of "jumps" forward
 * through the bucket numbers; the last jump below `buckets` is the answer.
 * The expected number of iterations is O(ln buckets).  The division has to
 * be done in double exactly as in the paper so that results match every
 * other implementation bit for bit.  buckets < 1 returns -1, as the
 * reference code does (callers never ask for that). */
int32_t hash_jump(uint64_t key, int32_t buckets)
{
    int64_t b = -1, j = 0;

    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) *
                      ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (int32_t)b;
}
