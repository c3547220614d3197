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
#include <stdio.h>
#include <string.h>

#include "dist.h"
#include "hash.h"

#define KETAMA_POINTS_PER_SERVER 160
#define KETAMA_POINTS_PER_HASH   4    /* one md5 digest gives 4 points */
#define KETAMA_MAX_HOST          255

/* Points for one server, as twemproxy's ketama_update computes them:
 * floorf(pct * 160 / 4 * n + 1e-10) * 4 with pct and the products in
 * *float* (single precision), the 1e-10 added in double and the sum rounded
 * back to float before floorf.  Double arithmetic gives different counts
 * for some pools: with 25 (or 47, 50, 55, 61, ...) equal-weight servers the
 * float product comes out just under 40 and every server gets 156 points,
 * not 160.  The float steps are kept literally so placement matches. */
static uint32_t points_for(uint32_t weight, uint64_t total, uint32_t n)
{
    float pct = (float)weight / (float)total;
    float x = pct * (float)KETAMA_POINTS_PER_SERVER;

    x = x / 4.0f;
    x = x * (float)n;
    return (uint32_t)(floorf((float)((double)x + 0.0000000001)) * 4.0f);
}

static uint32_t le32(const unsigned char *q)
{
    return (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
}

/* The md5 point name of hash h of server s: libmemcached leaves out the
 * default port. */
static int point_name(char *buf, size_t size, const struct hash_server *s,
                      uint32_t h)
{
    if (s->port == 11211)
        return snprintf(buf, size, "%s-%u", s->host, h);
    return snprintf(buf, size, "%s:%u-%u", s->host, (unsigned)s->port, h);
}

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    uint64_t total = 0, npoints = 0;
    char name[KETAMA_MAX_HOST + 32];

    for (uint32_t i = 0; i < n; i++) {
        total += s[i].weight;
        if (strlen(s[i].host) > KETAMA_MAX_HOST) {
            snprintf(err, errlen, "host name of server %u is too long", i);
            return GW_ERROR;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        npoints += points_for(s[i].weight, total, n);
    int rc = dist_ring_alloc(d, npoints, err, errlen);
    if (rc != GW_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t hashes = points_for(s[i].weight, total, n) / KETAMA_POINTS_PER_HASH;

        for (uint32_t h = 0; h < hashes; h++) {
            unsigned char dg[16];
            int len = point_name(name, sizeof(name), &s[i], h);

            hash_md5(name, (size_t)len, dg);
            for (int a = 0; a < KETAMA_POINTS_PER_HASH; a++)
                d->points[d->npoints++] = (struct ring_point){ le32(dg + 4 * a), i };
        }
    }
    /* glibc's qsort, which twemproxy calls, is a merge sort when memory
     * allows, i.e. stable: ties stay in server order, as dist_ring_sort
     * leaves them. */
    dist_ring_sort(d);
    return GW_OK;
}

/* The key hash of "hash: md5": the digest's first four bytes, little-endian. */
static uint32_t key_hash(const void *key, size_t len)
{
    unsigned char dg[16];

    hash_md5(key, len, dg);
    return le32(dg);
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->points[dist_ring_successor(d, key_hash(key, len))].server;
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    return dist_ring_walk_up(d, dist_ring_successor(d, key_hash(key, len)), is_up, ctx);
}

const struct dist_mode dist_ketama = {
    .name = "ketama", .build = build, .pick = pick, .pick_up = pick_up,
};
