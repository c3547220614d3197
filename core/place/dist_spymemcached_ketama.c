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
 * dist_spy_ketama_pick_up (dist.c), the client's KetamaIterator.
 *
 * All weights must be equal here (they do not matter): a client given a
 * weights map is "spymemcached-ketama-weighted".
 */
#include "dist.h"

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_spy_ketama_build(d, s, n, false, err, errlen);
}

const struct dist_mode dist_spymemcached_ketama = {
    .name = "spymemcached-ketama", .build = build,
    .pick = dist_spy_ketama_pick, .pick_up = dist_spy_ketama_pick_up,
};
