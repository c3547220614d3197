/* dist_spymemcached_ketama_weighted.c -- spymemcached's weighted ketama.
 *
 * Reproduces spymemcached 2.12.3's KetamaNodeLocator given a non-empty
 * weights map: `new KetamaConnectionFactory(repeat, bufSize, opTimeout,
 * DefaultHashAlgorithm.KETAMA_HASH, KetamaNodeKeyFormatter.Format.
 * SPYMEMCACHED, weights)`, weights mapping each server's InetSocketAddress
 * to its Integer weight.  Everything is as "spymemcached-ketama" except the
 * points per server:
 *     (int)(Math.floor((float)(w / W * 160 / 4 * n + 1e-10)) * 4)
 * in float arithmetic (W the sum of the weights, n the servers): see
 * dist.c.  Even with equal weights this differs from the unweighted
 * locator for some pool sizes (25 servers: 156 points each, not 160), so
 * the two are separate modes.
 */
#include "dist.h"

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_spy_ketama_build(d, s, n, true, err, errlen);
}

const struct dist_mode dist_spymemcached_ketama_weighted = {
    .name = "spymemcached-ketama-weighted", .build = build,
    .pick = dist_md5_ring_pick, .pick_up = dist_spy_ketama_pick_up,
};
