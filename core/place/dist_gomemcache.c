/* dist_gomemcache.c -- bradfitz/gomemcache's ServerList.PickServer
 * (Debian's golang-github-bradfitz-gomemcache-dev, git 2014-11-09).
 *
 *   server = addrs[crc32.ChecksumIEEE(key) % len(addrs)]
 *
 * with addrs the list given to SetServers (memcache.New), in order, a
 * server listed k times taking k slots: SetServers resolves each entry and
 * keeps duplicates ("A server is given more weight if it's listed multiple
 * times").  So weight = repetition: the gateway's buckets are each server
 * repeated `weight` times in list order, which is the app's list when its
 * repeats are next to each other.  PickServer copies the key into a
 * 256-byte buffer first, so only the first 256 bytes are hashed (its
 * legalKey allows at most 250 anyway); one server takes every key.
 * gomemcache has no failover of its own (a dead server's keys fail); here
 * pick_up walks on to the next bucket whose server is up.
 */
#include "dist.h"
#include "hash.h"

#define GOMC_KEY_BUF 256   /* keyBufPool's buffers */

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_buckets(d, s, n, err, errlen);
}

static uint32_t bucket(const struct hash_dist *d, const void *key, size_t len)
{
    return hash_crc32(key, len < GOMC_KEY_BUF ? len : GOMC_KEY_BUF) % d->nbuckets;
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->buckets[bucket(d, key, len)];
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    uint32_t b = bucket(d, key, len);

    for (uint32_t k = 0; k < d->nbuckets; k++) {
        uint32_t s = d->buckets[(b + k) % d->nbuckets];

        if (is_up(ctx, s))
            return (int32_t)s;
    }
    return -1;
}

const struct dist_mode dist_gomemcache = {
    .name = "gomemcache", .build = build, .pick = pick, .pick_up = pick_up,
};
