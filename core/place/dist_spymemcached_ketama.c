/* dist_spymemcached_ketama.c -- spymemcached's KetamaNodeLocator, no weights.
 *
 * Reproduces spymemcached 2.12.3 (Debian's libspymemcached-java) with
 * `new KetamaConnectionFactory()`, or ConnectionFactoryBuilder with
 * setLocatorType(Locator.CONSISTENT) AND setHashAlg(DefaultHashAlgorithm.
 * KETAMA_HASH).  (The builder's CONSISTENT alone keeps NATIVE_HASH, the
 * default hash, for both points and keys: "spymemcached-ketama-native".)
 *
 * Each server gets 160 points: for r = 0..39, md5("host:port-r") gives 4
 * points, bytes 4h..4h+3 little-endian.  The name is KetamaNodeKeyFormatter
 * SPYMEMCACHED: InetSocketAddress.toString() without the leading "/",
 * which for a server the app gave by IP ("10.0.0.1:11211", AddrUtil) is
 * "10.0.0.1:11211", port always included.  (For a host name Java writes
 * "name/10.0.0.1:11211", which this mode does not reproduce: give the
 * servers by IP address.)  Points go into a TreeMap in list order, so of
 * two servers on the same point the later one keeps it.  A key's hash is
 * md5(UTF-8 key) bytes 0..3 little-endian; it goes to the first point >=
 * it (ceiling), wrapping to the first.  Around a dead server:
 * dist_spy_ketama_pick_up below, the client's KetamaIterator.
 *
 * All weights must be equal here (they do not matter): a client given a
 * weights map is "spymemcached-ketama-weighted".
 */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "dist.h"
#include "hash.h"

/* --- KetamaNodeLocator (2.12.3), shared with _weighted.c and _native.c --- */

#define SPY_KETAMA_REPS     160   /* DefaultKetamaNodeLocatorConfiguration */
#define SPY_KETAMA_TRIES    7     /* getSequence: the primary + 6 rehashes */
#define SPY_MAX_KEY         250   /* StringUtils.validateKey */

/* Points per server with a weights map, as setKetamaNodes computes them:
 *   (int)(Math.floor((float)(percent * 160 / 4 * nodeCount + 1e-10)) * 4)
 * percent = (float)weight / (float)totalWeight, and every product and
 * quotient in float (Java evaluates float * float in float); only the
 * 1e-10 is added in double and the sum goes back to float before floor.
 * With 25 (47, 50, ...) equal weights this is 156, where double
 * arithmetic gives 160. */
static uint64_t spy_weighted_points(uint32_t weight, uint64_t total, uint32_t n)
{
    float pct = (float)(int32_t)weight / (float)(int32_t)total;
    float x = pct * (float)SPY_KETAMA_REPS;

    x = x / 4.0f;
    x = x * (float)(int32_t)n;
    return (uint32_t)(int32_t)(floor((double)(float)((double)x + 1e-10)) * 4.0);
}

static uint64_t spy_points(uint32_t weight, uint64_t total, uint32_t n)
{
    return SPY_KETAMA_REPS;
}

int dist_spy_ketama_build(struct hash_dist *d, const struct hash_server *s,
                          uint32_t n, bool weighted, char *err, size_t errlen)
{
    uint64_t total = 0;

    for (uint32_t i = 0; i < n; i++) {
        total += s[i].weight;
        if (!weighted && s[i].weight != s[0].weight) {
            snprintf(err, errlen, "spymemcached's ketama without a weights map "
                     "gives every server 160 points: use "
                     "\"spymemcached-ketama-weighted\" for weights");
            return GW_ERROR;
        }
    }
    if (weighted && total > INT32_MAX) {   /* Java sums the weights in an int */
        snprintf(err, errlen, "total weight %llu exceeds %d",
                 (unsigned long long)total, INT32_MAX);
        return GW_ERROR;
    }
    /* KetamaNodeKeyFormatter SPYMEMCACHED: the InetSocketAddress's toString
     * without its leading "/", then "-" and the repetition: "10.0.0.1:11211-0"
     * for a server given by IP address, the port always there. */
    int rc = dist_md5_ring(d, s, n, weighted ? spy_weighted_points : spy_points, true,
                           err, errlen);
    if (rc != GW_OK)
        return rc;
    /* a TreeMap: a later put of a value replaces the earlier one */
    dist_ring_keep_last(d);
    return GW_OK;
}

/* FailureMode.Redistribute: the first active node of getSequence(key), a
 * KetamaIterator of 7 tries: the primary, then 6 more points, each the
 * previous hash plus hash("<t>" + key) for t = 0, 1, ... (mod 2^32; the
 * rehash's high word is zero, so the xor with it changes nothing).  When
 * all 7 are down the client stays on the primary: -1 here.  A key over 250
 * bytes (which spymemcached refuses) walks the ring instead. */
int32_t dist_spy_ketama_walk(const struct hash_dist *d, const void *key,
                             size_t len, dist_key_hash hash, dist_is_up is_up,
                             void *ctx)
{
    uint32_t h = hash(key, len);
    char buf[16 + SPY_MAX_KEY];

    if (len > SPY_MAX_KEY)
        return dist_ring_walk_up(d, dist_ring_successor(d, h), is_up, ctx);
    for (int t = 0; t < SPY_KETAMA_TRIES; t++) {
        uint32_t server = d->points[dist_ring_successor(d, h)].server;

        if (is_up(ctx, server))
            return (int32_t)server;
        int dl = snprintf(buf, 16, "%d", t);

        if (len > 0)
            memcpy(buf + dl, key, len);
        h += hash(buf, (size_t)dl + len);
    }
    return -1;
}

int32_t dist_spy_ketama_pick_up(const struct hash_dist *d, const void *key,
                                size_t len, dist_is_up is_up, void *ctx)
{
    return dist_spy_ketama_walk(d, key, len, dist_md5_hash, is_up, ctx);
}

/* --- the mode ------------------------------------------------------------ */

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_spy_ketama_build(d, s, n, false, err, errlen);
}

const struct dist_mode dist_spymemcached_ketama = {
    .name = "spymemcached-ketama", .build = build,
    .pick = dist_md5_ring_pick, .pick_up = dist_spy_ketama_pick_up,
};
