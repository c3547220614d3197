/* dist_ketama.c -- libmemcached/twemproxy weighted ketama over md5.
 *
 * Reproduces twemproxy (nutcracker, "hash: md5, distribution: ketama") and
 * libmemcached's MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: 160 points per server
 * at equal weights, 4 per md5 digest of "host-i" (port 11211) or
 * "host:port-i"; a key goes to the first point >= the digest's first four
 * bytes read little-endian, wrapping to the first point.  Around a dead
 * server: the next point on the ring whose server is up.
 */
#include <math.h>

#include "dist.h"
#include "hash.h"

#define KETAMA_POINTS_PER_SERVER 160

/* Points for one server, as twemproxy's ketama_update computes them:
 * floorf(pct * 160 / 4 * n + 1e-10) * 4 with pct and the products in
 * *float* (single precision), the 1e-10 added in double and the sum rounded
 * back to float before floorf.  Double arithmetic gives different counts
 * for some pools: with 25 (or 47, 50, 55, 61, ...) equal-weight servers the
 * float product comes out just under 40 and every server gets 156 points,
 * not 160.  The float steps are kept literally so placement matches. */
static uint64_t points_for(uint32_t weight, uint64_t total, uint32_t n)
{
    float pct = (float)weight / (float)total;
    float x = pct * (float)KETAMA_POINTS_PER_SERVER;

    x = x / 4.0f;
    x = x * (float)n;
    return (uint64_t)(floorf((float)((double)x + 0.0000000001)) * 4.0f);
}

/* glibc's qsort, which twemproxy calls, is a merge sort when memory allows,
 * i.e. stable: ties stay in server order, as dist_md5_ring leaves them. */
static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    return dist_md5_ring(d, s, n, points_for, false, err, errlen);
}

const struct dist_mode dist_ketama = {
    .name = "ketama", .build = build,
    .pick = dist_md5_ring_pick, .pick_up = dist_md5_ring_pick_up,
};
