/* dist_node_memcached.c -- node's `memcached` 2.2.2 (npm), which places
 * keys with `hashring` 3.2.0, checked against both packages' source and
 * against the real client (tests/spec/placement_node_memcached_spec.lua).
 *
 * memcached 2.2.2 builds new HashRing(servers, "md5", { compatibility:
 * "ketama", "default port": 11211 }): 4 points per md5 digest ("replicas"),
 * 40 digests ("vnode count") per server at equal weights.
 * Points: server i gets Math.floor(w_i / total * 40 * n) digests, in JS
 * numbers, i.e. double precision, evaluated left to right, and no 1e-10
 * nudge: 7, 14, 28, 49 or 56 equal-weight servers get 39 digests (156
 * points) each, where single precision (and twemproxy's float ketama) gives
 * 40; 25, 47, 50, 55, 61 get 40 in double and 39 in float.  Digest j of a
 * server is md5("host-j") when its port is 11211 and md5("host:port-j")
 * otherwise ("host:port" is the string the app gave, which the gateway
 * rebuilds from the host as written and the port); its four points are the
 * digest's bytes 4k..4k+3 read little-endian.  A weight given in JS as
 * 1.5 works the same as any integers in the same ratio (3 with 6 for 1.5
 * with 3): w / total is one correctly rounded division.
 * Ring: Array.prototype.sort, stable in node >= 11 (TimSort), so equal
 * values stay in server order (dist_ring_sort).
 * Key: md5 of the key's UTF-8 bytes (crypto's update of a JS string), the
 * first four bytes little-endian; the server is that of the first point
 * >= the hash, wrapping to the first point (HashRing#find: a libketama
 * style binary search, which is exactly that successor rule, ties
 * included).  The key hashed is the key as sent, namespace included, as
 * long as it is at most 250 UTF-16 units and no "$" pattern: memcached
 * 2.2.2 hashes the key it was given but, for a longer key, sends the md5
 * hex of it instead (keyCompression), and it puts the key into the command
 * with String.replace, so "$&", "$`", "$'" and "$$" in a key are expanded
 * on the wire ("a$&b" is stored as "aa$&bb", "c$$d" as "c$d"; "$`" and
 * "$'" break the command); the gateway can only hash what it receives, so
 * such keys land elsewhere.  With one server the ring is not asked (the same answer).
 * Around a dead server: memcached 2.2.2 has no rehash.  By default (remove:
 * false) requests for a dead server fail until it reconnects; with remove:
 * true it rebuilds the ring without the server once it gives up on it,
 * and with failOverServers a spare takes over the dead server's points.
 * pick_up walks to the next point whose server is up.  That is the
 * rebuilt ring's answer when the survivors keep their digest counts: equal
 * weights, and not a survivor count above where floor() loses a digest
 * (4 equal servers, one removed: every key as HashRing#remove puts it; 8,
 * one removed: the 7 left get 39 digests and 427 of 20,000 keys land
 * elsewhere).  With unequal weights the rebuilt ring gives the survivors
 * other counts and moves some of their keys too, which no walk follows.
 */
#include <math.h>

#include "dist.h"
#include "hash.h"

#define NODE_VNODES        40      /* hashring's default "vnode count" */
#define NODE_REPLICAS      4       /* compatibility "ketama" */

/* Points for one server: 4 per digest, and Math.floor(server.weight / total
 * * vnodes * servers.length) digests, each step a double operation. */
static uint64_t points_for(uint32_t weight, uint64_t total, uint32_t n)
{
    double pct = (double)weight / (double)total;

    return NODE_REPLICAS * (uint64_t)floor(pct * (double)NODE_VNODES * (double)n);
}

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_md5_ring(d, s, n, points_for, false, err, errlen);
}

const struct dist_mode dist_node_memcached = {
    .name = "node-memcached", .build = build,
    .pick = dist_md5_ring_pick, .pick_up = dist_md5_ring_pick_up,
};
