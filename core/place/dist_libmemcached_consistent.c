/* dist_libmemcached_consistent.c -- libmemcached's consistent distribution
 * with its default key hash.
 *
 * Reproduces libmemcached 1.1.4 (Debian 12's libmemcached11, which pylibmc
 * and php-memcached link although they report the 1.0.18 headers they were
 * built with; 1.0.18's update_continuum adds the 1e-10 in double where
 * 1.1.4 adds it in float, which gives the same point counts) for
 * MEMCACHED_DISTRIBUTION_CONSISTENT and
 * _CONSISTENT_KETAMA (MEMCACHED_BEHAVIOR_KETAMA), keys hashed with the
 * default one-at-a-time (hash_oaat.c), as set by pylibmc
 * behaviors={"ketama": True}, PHP's Memcached::OPT_DISTRIBUTION =
 * DISTRIBUTION_CONSISTENT, and PHP's session handler with
 * memcached.sess_consistent_hash=1 (php-memcached 3.2.0 sets
 * MEMCACHED_BEHAVIOR_KETAMA, memcached.sess_consistent_hash_type's default).
 * hosts.cc update_continuum builds one of two rings:
 *
 *  - no server weighted (every weight 1): 100 points per server
 *    (MEMCACHED_POINTS_PER_SERVER), point i = one_at_a_time("host-i"), or
 *    of "host:port-i" when the port is not 11211, i = 0..99;
 *  - some server weight > 1: server_add() turns on weighted ketama when a
 *    server with weight > 1 is added while the distribution is consistent.
 *    The ring is then the md5 ketama ring of dist_ketama.c (4 points per
 *    md5 of the same names, floor(pct * 160 / 4 * n) * 4 points per
 *    server in float), but the KEY is still hashed with one-at-a-time,
 *    not md5: unlike Memcached::OPT_LIBKETAMA_COMPATIBLE or
 *    MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, which also switch the key hash to
 *    md5 (that is hash = "ketama").
 *
 * A key goes to the first point >= its hash, wrapping to the first point;
 * ties sort by server index (continuum_item_cmp).  Weights are honoured only
 * through that switch, which depends on the order the client did things:
 * servers added before the distribution was set (or the session handler,
 * which pushes save_path's servers and then sets MEMCACHED_BEHAVIOR_KETAMA,
 * which clears the weighted flag) give the unweighted ring: list them here
 * with no weights.
 *
 * Around a dead server: the next point on the ring whose server is up.  With
 * MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS libmemcached rebuilds the ring
 * without the dead server, which for the unweighted ring is exactly that
 * walk; for the weighted ring it recomputes every server's point count
 * from the live servers' weights (moving some keys of live servers too),
 * which the walk does not copy.  Without auto eject libmemcached fails the
 * key.
 */
#include <stdio.h>
#include <string.h>

#include "dist.h"
#include "hash.h"

#define LMC_POINTS_PER_SERVER 100    /* MEMCACHED_POINTS_PER_SERVER */
#define LMC_DEFAULT_PORT      11211  /* MEMCACHED_DEFAULT_PORT */
#define LMC_MAX_HOST          255

extern const struct dist_mode dist_ketama;

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    char name[LMC_MAX_HOST + 32];
    bool weighted = false;

    for (uint32_t i = 0; i < n; i++) {
        if (s[i].weight > 1)
            weighted = true;
        if (strlen(s[i].host) > LMC_MAX_HOST) {
            snprintf(err, errlen, "host name of server %u is too long", i);
            return GW_ERROR;
        }
    }
    if (weighted)   /* the same md5 ring as twemproxy's; only the key hash differs */
        return dist_ketama.build(d, s, n, err, errlen);

    int rc = dist_ring_alloc(d, (uint64_t)n * LMC_POINTS_PER_SERVER, err, errlen);
    if (rc != GW_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t p = 0; p < LMC_POINTS_PER_SERVER; p++) {
            int len;

            if (s[i].port == LMC_DEFAULT_PORT)
                len = snprintf(name, sizeof(name), "%s-%u", s[i].host, p);
            else
                len = snprintf(name, sizeof(name), "%s:%u-%u", s[i].host,
                               (unsigned)s[i].port, p);
            d->points[d->npoints++] =
                (struct ring_point){ hash_oaat(name, (size_t)len), i };
        }
    }
    dist_ring_sort(d);
    return GW_OK;
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->points[dist_ring_successor(d, hash_oaat(key, len))].server;
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    return dist_ring_walk_up(d, dist_ring_successor(d, hash_oaat(key, len)), is_up, ctx);
}

const struct dist_mode dist_libmemcached_consistent = {
    .name = "libmemcached-consistent", .build = build, .pick = pick, .pick_up = pick_up,
};
