/* hash.c -- distributions: turn a server list into a key -> server map.
 *
 * Each mode reproduces an existing client's placement exactly, so the
 * gateway can sit in front of a pool that those clients already filled:
 *   python-memcached  weighted modulo over a bucket array (hash_pymc);
 *   ketama            twemproxy/libmemcached md5 continuum;
 *   jump              jump hash over the same weighted bucket array.
 * Building allocates; picking never does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define KETAMA_POINTS_PER_SERVER 160  /* twemproxy/libmemcached constant */
#define KETAMA_POINTS_PER_HASH   4    /* one md5 digest gives 4 points */
#define HASH_MAX_BUCKETS         (1u << 20)  /* sum of weights, pymc/jump */
#define HASH_MAX_NAME            255  /* ketama point name host part */
#define HASH_REHASH_TRIES        10   /* python-memcached _SERVER_RETRIES */

/* The one list of mode names, in enum order. */
static const char *const mode_names[] = {
    [HASH_PYTHON_MEMCACHED] = "python-memcached",
    [HASH_KETAMA] = "ketama",
    [HASH_JUMP] = "jump",
};

const char *hash_mode_name(int mode)
{
    return mode >= 0 && mode < (int)GW_ARRAY_LEN(mode_names) ? mode_names[mode] : NULL;
}

int hash_mode_parse(const char *name, enum hash_mode *mode)
{
    if (name == NULL)
        return GW_ERROR;
    for (int i = 0; i < (int)GW_ARRAY_LEN(mode_names); i++) {
        if (strcmp(name, mode_names[i]) == 0) {
            *mode = (enum hash_mode)i;
            return GW_OK;
        }
    }
    return GW_ERROR;
}

/* --- building ----------------------------------------------------------- */

/* python-memcached's _init_buckets: each server repeated `weight` times in
 * list order.  Jump uses the same array so weights mean the same thing. */
static int build_buckets(struct hash_dist *d, const struct hash_server *s,
                         uint32_t n, char *err, size_t errlen)
{
    uint64_t total = 0;

    for (uint32_t i = 0; i < n; i++)
        total += s[i].weight;
    if (total > HASH_MAX_BUCKETS) {
        snprintf(err, errlen, "total weight %llu exceeds %u",
                 (unsigned long long)total, HASH_MAX_BUCKETS);
        return GW_ERROR;
    }
    d->buckets = malloc(total * sizeof(*d->buckets));
    if (d->buckets == NULL) {
        snprintf(err, errlen, "out of memory");
        return GW_NOMEM;
    }
    d->nbuckets = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t w = 0; w < s[i].weight; w++)
            d->buckets[d->nbuckets++] = i;
    return GW_OK;
}

/* Ties on value are ordered by server index: glibc's qsort (what
 * twemproxy calls) is a merge sort when memory allows, i.e. stable, and the
 * points are generated in server order, so this reproduces its ring even in
 * the (astronomically rare) case of two servers sharing a point value. */
static int ketama_cmp(const void *a, const void *b)
{
    const struct ketama_point *x = a, *y = b;

    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

/* Points for one server, as twemproxy's ketama_update computes them:
 * floorf(pct * 160 / 4 * n + 1e-10) * 4 with pct and the products in
 * *float* (single precision), the 1e-10 added in double and the sum rounded
 * back to float before floorf.  Double arithmetic gives different counts
 * for some pools: with 25 (or 47, 50, 55, 61, ...) equal-weight servers the
 * float product comes out just under 40 and every server gets 156 points, not 160.
 * The float steps are kept literally so placement matches nutcracker. */
static uint32_t ketama_points_for(uint32_t weight, uint64_t total, uint32_t n)
{
    float pct = (float)weight / (float)total;
    float x = pct * (float)KETAMA_POINTS_PER_SERVER;

    x = x / 4.0f;
    x = x * (float)n;
    return (uint32_t)(floorf((float)((double)x + 0.0000000001)) * 4.0f);
}

static int build_ketama(struct hash_dist *d, const struct hash_server *s,
                        uint32_t n, char *err, size_t errlen)
{
    uint64_t total = 0, npoints = 0;
    char name[HASH_MAX_NAME + 32];

    for (uint32_t i = 0; i < n; i++) {
        total += s[i].weight;
        if (strlen(s[i].host) > HASH_MAX_NAME) {
            snprintf(err, errlen, "host name of server %u is too long", i);
            return GW_ERROR;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        npoints += ketama_points_for(s[i].weight, total, n);
    if (npoints == 0 || npoints > UINT32_MAX / 2) {
        snprintf(err, errlen, "bad ketama point count %llu",
                 (unsigned long long)npoints);
        return GW_ERROR;
    }
    d->points = malloc(npoints * sizeof(*d->points));
    if (d->points == NULL) {
        snprintf(err, errlen, "out of memory");
        return GW_NOMEM;
    }

    d->npoints = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t hashes = ketama_points_for(s[i].weight, total, n) /
                          KETAMA_POINTS_PER_HASH;

        for (uint32_t h = 0; h < hashes; h++) {
            unsigned char dg[16];
            int len;

            /* libmemcached compatibility: the default port is left out. */
            if (s[i].port == 11211)
                len = snprintf(name, sizeof(name), "%s-%u", s[i].host, h);
            else
                len = snprintf(name, sizeof(name), "%s:%u-%u", s[i].host,
                               (unsigned)s[i].port, h);
            hash_md5(name, (size_t)len, dg);
            for (int a = 0; a < KETAMA_POINTS_PER_HASH; a++) {
                const unsigned char *q = dg + 4 * a;
                struct ketama_point *p = &d->points[d->npoints++];

                p->value = (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 |
                           (uint32_t)q[1] << 8 | q[0];
                p->server = i;
            }
        }
    }
    qsort(d->points, d->npoints, sizeof(*d->points), ketama_cmp);
    return GW_OK;
}

int hash_dist_build(struct hash_dist *d, enum hash_mode mode,
                    bool pymc_legacy_one, const struct hash_server *servers,
                    uint32_t n, char *err, size_t errlen)
{
    int rc;

    memset(d, 0, sizeof(*d));
    if (errlen)
        err[0] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "no servers");
        return GW_ERROR;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (servers[i].weight < 1) {
            snprintf(err, errlen, "server %u: weight must be >= 1", i);
            return GW_ERROR;
        }
        if (servers[i].host == NULL) {
            snprintf(err, errlen, "server %u: no host", i);
            return GW_ERROR;
        }
    }

    d->mode = mode;
    d->pymc_legacy_one = pymc_legacy_one;
    d->nservers = n;
    switch (mode) {
    case HASH_PYTHON_MEMCACHED:
    case HASH_JUMP:
        rc = build_buckets(d, servers, n, err, errlen);
        break;
    case HASH_KETAMA:
        rc = build_ketama(d, servers, n, err, errlen);
        break;
    default:
        snprintf(err, errlen, "unknown hash mode %d", (int)mode);
        rc = GW_ERROR;
        break;
    }
    if (rc != GW_OK)
        hash_dist_free(d);
    return rc;
}

void hash_dist_free(struct hash_dist *d)
{
    free(d->buckets);
    free(d->points);
    d->buckets = NULL;
    d->points = NULL;
    d->nbuckets = d->npoints = d->nservers = 0;
}

/* --- picking ------------------------------------------------------------ */

/* twemproxy/libmemcached key hash for "hash: md5": the digest's first four
 * bytes read little-endian. */
static uint32_t ketama_key_hash(const void *key, size_t len)
{
    unsigned char dg[16];

    hash_md5(key, len, dg);
    return (uint32_t)dg[3] << 24 | (uint32_t)dg[2] << 16 |
           (uint32_t)dg[1] << 8 | dg[0];
}

/* Index of the first point with value >= h, wrapping to 0 past the end
 * (twemproxy's ketama_dispatch). */
static uint32_t ketama_find(const struct hash_dist *d, uint32_t h)
{
    uint32_t lo = 0, hi = d->npoints;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (d->points[mid].value < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == d->npoints ? 0 : lo;
}

/* python-memcached's rehash: hash(str(h) + str(i)) with both in decimal. */
static uint32_t pymc_rehash(uint32_t h, unsigned i, bool legacy_one)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%u%u", h, i);

    return hash_pymc(buf, (size_t)len, legacy_one);
}

/* Jump failover: the next 64-bit hash is XXH3 over the previous hash and
 * the try number (both little-endian 64-bit), so every try is a fresh,
 * well-mixed draw that any implementation can reproduce. */
static uint64_t jump_rehash(uint64_t h, unsigned try)
{
    unsigned char buf[16];

    for (int b = 0; b < 8; b++) {
        buf[b] = (unsigned char)(h >> (8 * b));
        buf[8 + b] = (unsigned char)((uint64_t)try >> (8 * b));
    }
    return hash_xxh64(buf, sizeof(buf));
}

static uint32_t jump_bucket(const struct hash_dist *d, uint64_t h)
{
    return d->buckets[hash_jump(h, (int32_t)d->nbuckets)];
}

uint32_t hash_dist_pick(const struct hash_dist *d, const void *key,
                        size_t len)
{
    switch (d->mode) {
    case HASH_PYTHON_MEMCACHED:
        return d->buckets[hash_pymc(key, len, d->pymc_legacy_one) %
                          d->nbuckets];
    case HASH_KETAMA:
        return d->points[ketama_find(d, ketama_key_hash(key, len))].server;
    case HASH_JUMP:
        return jump_bucket(d, hash_xxh64(key, len));
    }
    return 0;
}

int32_t hash_dist_pick_up(const struct hash_dist *d, const void *key,
                          size_t len, bool (*is_up)(void *ctx, uint32_t i),
                          void *ctx)
{
    switch (d->mode) {
    case HASH_PYTHON_MEMCACHED: {
        uint32_t h = hash_pymc(key, len, d->pymc_legacy_one);

        for (unsigned i = 0; i < HASH_REHASH_TRIES; i++) {
            uint32_t s = d->buckets[h % d->nbuckets];

            if (is_up(ctx, s))
                return (int32_t)s;
            h = pymc_rehash(h, i, d->pymc_legacy_one);
        }
        return -1;
    }
    case HASH_KETAMA: {
        uint32_t p = ketama_find(d, ketama_key_hash(key, len));

        /* Walk the ring once; the same server recurs, so remember nothing
         * and just ask is_up per point (cheap, and failover is rare). */
        for (uint32_t k = 0; k < d->npoints; k++) {
            uint32_t s = d->points[p].server;

            if (is_up(ctx, s))
                return (int32_t)s;
            if (++p == d->npoints)
                p = 0;
        }
        return -1;
    }
    case HASH_JUMP: {
        uint64_t h = hash_xxh64(key, len);
        uint32_t b = 0;

        for (unsigned i = 0; i < HASH_REHASH_TRIES; i++) {
            if (i > 0)
                h = jump_rehash(h, i);
            b = (uint32_t)hash_jump(h, (int32_t)d->nbuckets);
            if (is_up(ctx, d->buckets[b]))
                return (int32_t)d->buckets[b];
        }
        /* Ten unlucky draws (likely only when most servers are down): fall
         * back to the next up bucket after the last draw, so a key never
         * fails while some server is up. */
        for (uint32_t k = 1; k < d->nbuckets; k++) {
            uint32_t s = d->buckets[(b + k) % d->nbuckets];

            if (is_up(ctx, s))
                return (int32_t)s;
        }
        return -1;
    }
    }
    return -1;
}
