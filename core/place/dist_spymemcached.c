/* dist_spymemcached.c -- spymemcached's default placement.
 *
 * Reproduces spymemcached 2.12.3 (Debian's libspymemcached-java) with its
 * default ConnectionFactory: DefaultConnectionFactory, or
 * ConnectionFactoryBuilder without setLocatorType/setHashAlg, i.e.
 * ArrayModNodeLocator with DefaultHashAlgorithm.NATIVE_HASH:
 *     server = ((long) key.hashCode() & 0xffffffffL) % nodes.length
 * (getServerForKey: no Math.abs, the mask makes the hash non-negative).
 * String.hashCode is over UTF-16 code units; the gateway gets the key as
 * the UTF-8 bytes spymemcached sent (KeyUtil.getKeyBytes), and hash_java
 * decodes them back, so non-ASCII keys land where the client put them.
 *
 * spymemcached has no weights for this locator: weight = k stands for the
 * same address listed k times in a row in the client's list (which makes
 * it k nodes of the array), the buckets of dist_buckets.
 *
 * Around a dead server (FailureMode.Redistribute, the default): the
 * client's getSequence, ArrayModNodeLocator.NodeIterator, which visits the
 * nodes after the primary in list order, wrapping, up to the one before
 * it; the first active one wins, and -1 (the client stays on the dead
 * primary) when none is.
 */
#include "dist.h"
#include "hash.h"

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_buckets(d, s, n, err, errlen);
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->buckets[hash_java(key, len) % d->nbuckets];
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    uint32_t b = hash_java(key, len) % d->nbuckets;

    for (uint32_t k = 0; k < d->nbuckets; k++) {
        uint32_t s = d->buckets[(b + k) % d->nbuckets];

        if (is_up(ctx, s))
            return (int32_t)s;
    }
    return -1;
}

const struct dist_mode dist_spymemcached = {
    .name = "spymemcached", .build = build, .pick = pick, .pick_up = pick_up,
};
