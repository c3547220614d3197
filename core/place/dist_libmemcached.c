/* dist_libmemcached.c -- libmemcached's default placement (modula).
 *
 * Reproduces libmemcached's MEMCACHED_DISTRIBUTION_MODULA with its default
 * key hash, as pylibmc 1.6.3 and PHP's Memcached 3.2.0 use it out of the
 * box (Debian 12: both link libmemcached11 1.1.4, the libmemcached-awesome
 * fork; they were built against 1.0.18's headers and say "1.0.18"):
 *
 *     server = one_at_a_time(key) % number of servers
 *
 * (hash.cc dispatch_host; hashkit_one_at_a_time over signed char, see
 * hash_oaat.c; with one server, libmemcached skips the hash: server 0.)
 * Weights are ignored: libmemcached's modula never reads them (a weight
 * only switches a *consistent* distribution to weighted ketama), so a
 * server listed with weight 3 holds the same share as one with weight 1.
 *
 * Around a dead server libmemcached has no rule under modula: even with
 * MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS (auto eject) only the consistent
 * distributions are rebuilt, and a key of a dead server just fails.  So
 * failover here is the gateway's own: the next server in list order that
 * is up, wrapping around.
 */
#include "dist.h"
#include "hash.h"

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    (void)d;
    (void)s;
    (void)n;
    (void)err;
    (void)errlen;
    return GW_OK;
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    if (d->nservers == 1)
        return 0;
    return hash_oaat(key, len) % d->nservers;
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    uint32_t s = pick(d, key, len);

    for (uint32_t k = 0; k < d->nservers; k++) {
        if (is_up(ctx, s))
            return (int32_t)s;
        if (++s == d->nservers)
            s = 0;
    }
    return -1;
}

const struct dist_mode dist_libmemcached = {
    .name = "libmemcached", .build = build, .pick = pick, .pick_up = pick_up,
};
