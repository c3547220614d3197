/* dist_dalli.c -- Ruby Dalli's Dalli::Ring (dalli 3.0.6, Debian's
 * ruby-dalli: lib/dalli/ring.rb), checked against that source and against
 * the real client (tests/spec/placement_dalli_spec.lua).
 *
 * Points: server i gets floor((n * 160 * w_i) / Float(sum w)) of them: the
 * product n * 160 * w is a Ruby Integer (exact), divided by a Float, so the
 * quotient is one double division, then floored.  Multiplying first, the
 * count is the exact floor(n * 160 * w / sum w) for any pool size (7 or 14
 * equal-weight servers get 160 each, where the libmemcached order
 * w / sum w * 160 * n in double gives 159; a float division differs only
 * for large weights: 375131, 125248, 302905 give the third server 180
 * points in double, 181 in float).  Point j of a server is the
 * first 8 hex digits of SHA1("host:port:j") read as a number, i.e. the
 * digest's first four bytes big-endian; "host:port" is Dalli's server.name:
 * the host as written (IPv6 without its brackets), always with the port,
 * never the weight.
 * Ring: continuum.sort_by(&:value).  Debian's Ruby 3.1 sorts with glibc's
 * qsort_r, a merge sort (stable) for rings of any real size, so equal
 * values stay in server order (dist_ring_sort); a Ruby built on another
 * libc could order such ties otherwise (two points share a value about
 * once in a ring of 600 servers).
 * Key: Zlib.crc32(key) over the key as sent (after Dalli's KeyManager:
 * namespace prefixed, and a key over 250 characters replaced by a prefix +
 * ":md5:" + digest; the gateway sees and hashes that key, which is what
 * Dalli hashed).  The server is that of the LAST point with value <= hash
 * (bsearch_index for the first value > hash, minus one), wrapping to the
 * last point when every point is above the hash; among equal values that
 * is the last of them, i.e. the highest server index.
 * One server: no continuum, every key goes to it.
 * Around a dead server (Ring#server_from_continuum with failover on, the
 * default): 20 looks in all, the first with crc32(key), then with
 * crc32("#{try}#{key}") for try = 0, 1, ..., 18 (the try in decimal before
 * the original key, not chained); none up: -1 (Dalli raises RingError).
 * With one server: it, or -1.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dist.h"
#include "hash.h"

#define DALLI_POINTS_PER_SERVER 160   /* Dalli::Ring::POINTS_PER_SERVER */
#define DALLI_TRIES             20    /* 20.times in server_from_continuum */
#define DALLI_MAX_HOST          255

/* Points for one server, as Ruby computes
 * ((total_servers * POINTS_PER_SERVER * server.weight) / Float(total_weight)).floor */
static uint64_t points_for(uint32_t weight, uint64_t total, uint32_t n)
{
    uint64_t num = (uint64_t)n * DALLI_POINTS_PER_SERVER * weight;

    return (uint64_t)floor((double)num / (double)total);
}

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    uint64_t total = 0, npoints = 0;
    char name[DALLI_MAX_HOST + 32];

    if (n == 1)
        return GW_OK;       /* no continuum: pick says server 0 */
    for (uint32_t i = 0; i < n; i++) {
        total += s[i].weight;
        if (strlen(s[i].host) > DALLI_MAX_HOST) {
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
        uint64_t count = points_for(s[i].weight, total, n);

        for (uint64_t j = 0; j < count; j++) {
            unsigned char dg[20];
            int len = snprintf(name, sizeof(name), "%s:%u:%llu", s[i].host,
                               (unsigned)s[i].port, (unsigned long long)j);

            hash_sha1(name, (size_t)len, dg);
            d->points[d->npoints++] = (struct ring_point){
                (uint32_t)dg[0] << 24 | (uint32_t)dg[1] << 16 |
                (uint32_t)dg[2] << 8 | dg[3], i };
        }
    }
    dist_ring_sort(d);
    return GW_OK;
}

/* The server of the last point with value <= h, or of the last point. */
static uint32_t server_for_hash(const struct hash_dist *d, uint32_t h)
{
    uint32_t lo = 0, hi = d->npoints;

    while (lo < hi) {       /* lo = the first point with value > h */
        uint32_t mid = lo + (hi - lo) / 2;

        if (d->points[mid].value > h)
            hi = mid;
        else
            lo = mid + 1;
    }
    return d->points[lo == 0 ? d->npoints - 1 : lo - 1].server;
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    if (d->npoints == 0)
        return 0;
    return server_for_hash(d, hash_crc32(key, len));
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    if (d->npoints == 0)
        return is_up(ctx, 0) ? 0 : -1;
    uint32_t h = hash_crc32(key, len);

    for (unsigned try = 0; try < DALLI_TRIES; try++) {
        uint32_t s = server_for_hash(d, h);
        char pre[16];

        if (is_up(ctx, s))
            return (int32_t)s;
        /* "#{try}#{key}": the try in decimal, then the key's bytes */
        int plen = snprintf(pre, sizeof(pre), "%u", try);
        h = hash_crc32_more(hash_crc32(pre, (size_t)plen), key, len);
    }
    return -1;
}

const struct dist_mode dist_dalli = {
    .name = "dalli", .build = build, .pick = pick, .pick_up = pick_up,
};
