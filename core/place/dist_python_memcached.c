/* dist_python_memcached.c -- python-memcached 1.59's placement.
 *
 * buckets = each server repeated `weight` times in list order;
 * h = (crc32(key) >> 16) & 0x7fff, 1 if 0 (the "h = 1" rule is dropped when
 * the pool asks for >= 1.60 behaviour); server = buckets[h % nbuckets].
 * Around a dead server it walks as python-memcached does: up to 10 tries of
 * h = hash(str(h) .. str(i)), -1 if every try lands on a down server.
 */
#include <stdio.h>

#include "dist.h"
#include "hash.h"

#define PYMC_REHASH_TRIES 10   /* python-memcached's _SERVER_RETRIES */

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_buckets(d, s, n, err, errlen);
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->buckets[hash_pymc(key, len, d->pymc_legacy_one) % d->nbuckets];
}

/* python-memcached's rehash: hash(str(h) + str(i)) with both in decimal. */
static uint32_t rehash(uint32_t h, unsigned i, bool legacy_one)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%u%u", h, i);

    return hash_pymc(buf, (size_t)len, legacy_one);
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    uint32_t h = hash_pymc(key, len, d->pymc_legacy_one);

    for (unsigned i = 0; i < PYMC_REHASH_TRIES; i++) {
        uint32_t s = d->buckets[h % d->nbuckets];

        if (is_up(ctx, s))
            return (int32_t)s;
        h = rehash(h, i, d->pymc_legacy_one);
    }
    return -1;
}

const struct dist_mode dist_python_memcached = {
    .name = "python-memcached", .build = build, .pick = pick, .pick_up = pick_up,
};
