/* dist_jump.c -- jump consistent hash over XXH3-64 of the key, over the
 * same weighted buckets as python-memcached (so weights mean the same).
 *
 * No client places keys this way: it is the mode for new pools, moving the
 * fewest keys when a server is added at the end.  Around a dead server:
 * rehash the key hash with the try number, up to 10 tries
 * (h = XXH3(le64(h) || le64(try))), then the next up bucket after the last.
 */
#include "dist.h"
#include "hash.h"

#define JUMP_REHASH_TRIES 10

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_buckets(d, s, n, err, errlen);
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->buckets[hash_jump(hash_xxh64(key, len), (int32_t)d->nbuckets)];
}

/* The next 64-bit hash is XXH3 over the previous hash and the try number
 * (both little-endian 64-bit), so every try is a fresh, well-mixed draw
 * that any implementation can reproduce. */
static uint64_t rehash(uint64_t h, unsigned try)
{
    unsigned char buf[16];

    for (int b = 0; b < 8; b++) {
        buf[b] = (unsigned char)(h >> (8 * b));
        buf[8 + b] = (unsigned char)((uint64_t)try >> (8 * b));
    }
    return hash_xxh64(buf, sizeof(buf));
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    uint64_t h = hash_xxh64(key, len);
    uint32_t b = 0;

    for (unsigned i = 0; i < JUMP_REHASH_TRIES; i++) {
        if (i > 0)
            h = rehash(h, i);
        b = (uint32_t)hash_jump(h, (int32_t)d->nbuckets);
        if (is_up(ctx, d->buckets[b]))
            return (int32_t)d->buckets[b];
    }
    /* Ten unlucky draws (likely only when most servers are down): the next
     * up bucket after the last draw, so a key never fails while some server
     * is up. */
    for (uint32_t k = 1; k < d->nbuckets; k++) {
        uint32_t s = d->buckets[(b + k) % d->nbuckets];

        if (is_up(ctx, s))
            return (int32_t)s;
    }
    return -1;
}

const struct dist_mode dist_jump = {
    .name = "jump", .build = build, .pick = pick, .pick_up = pick_up,
};
