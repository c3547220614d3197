/* dist_spymemcached_ketama_native.c -- spymemcached's KetamaNodeLocator
 * with NATIVE_HASH: ConnectionFactoryBuilder's CONSISTENT locator when the
 * app does not also call setHashAlg.
 *
 * Reproduces spymemcached 2.12.3 (Debian's libspymemcached-java) with
 * `new ConnectionFactoryBuilder().setLocatorType(Locator.CONSISTENT)`:
 * the builder's hash stays DefaultConnectionFactory's DEFAULT_HASH,
 * NATIVE_HASH, and KetamaNodeLocator then takes the non-md5 branch of
 * setKetamaNodes: 160 points per server, point r being
 * "ip:port-r".hashCode() & 0xffffffff (the SPYMEMCACHED node name, as in
 * "spymemcached-ketama"), and a key's hash is key.hashCode() &
 * 0xffffffff (hash_java: UTF-16 code units of the UTF-8 key).  Lookup:
 * the first point >= the hash, wrapping to the first; of two servers on the
 * same point (String hashes collide easily) the later in the list keeps it,
 * as TreeMap.put leaves it.  Around a dead server: KetamaIterator with the
 * same hash (dist_spy_ketama_walk).
 *
 * String.hashCode spreads neither the points nor short keys well (keys of
 * one or two characters all hash below 2^16), so the load is uneven: it is
 * the client's placement all the same.  Weights must be equal (the builder
 * has no weights map).
 */
#include <stdio.h>
#include <string.h>

#include "dist.h"
#include "hash.h"

#define SPY_NATIVE_REPS 160
#define SPY_MAX_HOST    255

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    char name[SPY_MAX_HOST + 32];

    for (uint32_t i = 0; i < n; i++) {
        if (strlen(s[i].host) > SPY_MAX_HOST) {
            snprintf(err, errlen, "host name of server %u is too long", i);
            return GW_ERROR;
        }
        if (s[i].weight != s[0].weight) {
            snprintf(err, errlen, "spymemcached's CONSISTENT locator has no "
                     "weights: leave them equal");
            return GW_ERROR;
        }
    }
    int rc = dist_ring_alloc(d, (uint64_t)n * SPY_NATIVE_REPS, err, errlen);
    if (rc != GW_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t r = 0; r < SPY_NATIVE_REPS; r++) {
            int len = snprintf(name, sizeof(name), "%s:%u-%u", s[i].host,
                               (unsigned)s[i].port, r);

            d->points[d->npoints++] = (struct ring_point){ hash_java(name, (size_t)len), i };
        }
    dist_ring_sort(d);
    dist_ring_keep_last(d);
    return GW_OK;
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->points[dist_ring_successor(d, hash_java(key, len))].server;
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    return dist_spy_ketama_walk(d, key, len, hash_java, is_up, ctx);
}

const struct dist_mode dist_spymemcached_ketama_native = {
    .name = "spymemcached-ketama-native", .build = build, .pick = pick,
    .pick_up = pick_up,
};
