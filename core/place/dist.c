/* dist.c -- see dist.h: the table of modes, building, and the pieces the
 * modes share (weighted buckets, the sorted ring, server names). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "hash.h"

#define DIST_MAX_BUCKETS (1u << 20)   /* sum of weights, bucket modes */
#define DIST_MAX_POINTS  (1u << 24)   /* points on one ring */

/* The modes, one row each, in the order `hash =` lists them; the first is
 * the default.  Each row names a `const struct dist_mode dist_<row>`. */
#define DIST_MODES(X) \
    X(python_memcached) \
    X(ketama) \
    X(jump) \
    X(libmemcached) \
    X(libmemcached_consistent) \
    X(pymemcache) \
    X(gomemcache) \
    X(dalli) \
    X(node_memcached) \
    X(spymemcached) \
    X(spymemcached_ketama) \
    X(spymemcached_ketama_weighted) \
    X(spymemcached_ketama_native)

#define DIST_DECLARE(m) extern const struct dist_mode dist_##m;
DIST_MODES(DIST_DECLARE)
#define DIST_ROW(m) &dist_##m,
static const struct dist_mode *const modes[] = { DIST_MODES(DIST_ROW) };

const char *dist_mode_name(int i)
{
    return i >= 0 && i < (int)GW_ARRAY_LEN(modes) ? modes[i]->name : NULL;
}

const struct dist_mode *dist_mode_find(const char *name)
{
    for (size_t i = 0; name && i < GW_ARRAY_LEN(modes); i++)
        if (strcmp(name, modes[i]->name) == 0)
            return modes[i];
    return NULL;
}

static int check_servers(const struct hash_server *s, uint32_t n, char *err,
                         size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "no servers");
        return GW_ERROR;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (s[i].weight < 1) {
            snprintf(err, errlen, "server %u: weight must be >= 1", i);
            return GW_ERROR;
        }
        if (s[i].host == NULL) {
            snprintf(err, errlen, "server %u: no host", i);
            return GW_ERROR;
        }
    }
    return GW_OK;
}

int dist_build(struct hash_dist *d, const struct dist_mode *mode,
               bool pymc_legacy_one, const struct hash_server *servers,
               uint32_t n, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    if (errlen)
        err[0] = '\0';
    if (mode == NULL) {
        snprintf(err, errlen, "no hash mode");
        return GW_ERROR;
    }
    if (check_servers(servers, n, err, errlen) != GW_OK)
        return GW_ERROR;
    d->mode = mode;
    d->pymc_legacy_one = pymc_legacy_one;
    d->nservers = n;
    int rc = mode->build(d, servers, n, err, errlen);
    if (rc != GW_OK)
        dist_free(d);
    return rc;
}

void dist_free(struct hash_dist *d)
{
    if (d->names)
        for (uint32_t i = 0; i < d->nservers; i++)
            free(d->names[i]);
    free(d->names);
    free(d->buckets);
    free(d->points);
    free(d->mode_data);
    d->mode_data = NULL;
    d->names = NULL;
    d->buckets = NULL;
    d->points = NULL;
    d->nbuckets = d->npoints = d->nservers = 0;
}

/* --- shared building blocks --------------------------------------------- */

int dist_buckets(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    uint64_t total = 0;

    for (uint32_t i = 0; i < n; i++)
        total += s[i].weight;
    if (total > DIST_MAX_BUCKETS) {
        snprintf(err, errlen, "total weight %llu exceeds %u",
                 (unsigned long long)total, DIST_MAX_BUCKETS);
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

int dist_ring_alloc(struct hash_dist *d, uint64_t npoints, char *err,
                    size_t errlen)
{
    if (npoints == 0 || npoints > DIST_MAX_POINTS) {
        snprintf(err, errlen, "bad ring point count %llu (weights too uneven?)",
                 (unsigned long long)npoints);
        return GW_ERROR;
    }
    d->points = malloc(npoints * sizeof(*d->points));
    if (d->points == NULL) {
        snprintf(err, errlen, "out of memory");
        return GW_NOMEM;
    }
    d->npoints = 0;
    return GW_OK;
}

static int ring_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;

    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

void dist_ring_sort(struct hash_dist *d)
{
    qsort(d->points, d->npoints, sizeof(*d->points), ring_cmp);
}

uint32_t dist_ring_successor(const struct hash_dist *d, uint32_t h)
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

int32_t dist_ring_walk_up(const struct hash_dist *d, uint32_t p,
                          dist_is_up is_up, void *ctx)
{
    /* The same server recurs around the ring: rather than remember which
     * were asked, ask per point (cheap, and failover is rare). */
    for (uint32_t k = 0; k < d->npoints; k++) {
        uint32_t s = d->points[p].server;

        if (is_up(ctx, s))
            return (int32_t)s;
        if (++p == d->npoints)
            p = 0;
    }
    return -1;
}

int dist_names(struct hash_dist *d, const struct hash_server *s, uint32_t n,
               char *err, size_t errlen)
{
    d->names = calloc(n, sizeof(*d->names));
    if (d->names == NULL)
        goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(s[i].host) + sizeof(":65535");

        d->names[i] = malloc(len);
        if (d->names[i] == NULL)
            goto nomem;
        snprintf(d->names[i], len, "%s:%u", s[i].host, (unsigned)s[i].port);
    }
    return GW_OK;
nomem:
    snprintf(err, errlen, "out of memory");
    return GW_NOMEM;
}

void dist_ring_keep_last(struct hash_dist *d)
{
    uint32_t out = 0;

    for (uint32_t i = 0; i < d->npoints; i++) {
        if (i + 1 < d->npoints && d->points[i + 1].value == d->points[i].value)
            continue;   /* a later put of the same value replaces this one */
        d->points[out++] = d->points[i];
    }
    d->npoints = out;
}

/* --- the md5 ring (libmemcached's ketama, and those modelled on it) ------- */

#define MD5_RING_MAX_HOST 255

static uint32_t le32(const unsigned char *q)
{
    return (uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
}

uint32_t dist_md5_hash(const void *key, size_t len)
{
    unsigned char dg[16];

    hash_md5(key, len, dg);
    return le32(dg);
}

int dist_md5_ring(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                  dist_points_fn points, bool port_always, char *err,
                  size_t errlen)
{
    uint64_t total = 0, npoints = 0;
    char name[MD5_RING_MAX_HOST + 32];

    for (uint32_t i = 0; i < n; i++) {
        total += s[i].weight;
        if (strlen(s[i].host) > MD5_RING_MAX_HOST) {
            snprintf(err, errlen, "host name of server %u is too long", i);
            return GW_ERROR;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        npoints += points(s[i].weight, total, n);
    int rc = dist_ring_alloc(d, npoints, err, errlen);
    if (rc != GW_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t digests = points(s[i].weight, total, n) / 4;

        for (uint64_t j = 0; j < digests; j++) {
            unsigned char dg[16];
            int len = s[i].port == 11211 && !port_always
                ? snprintf(name, sizeof(name), "%s-%llu", s[i].host, (unsigned long long)j)
                : snprintf(name, sizeof(name), "%s:%u-%llu", s[i].host, (unsigned)s[i].port,
                           (unsigned long long)j);

            hash_md5(name, (size_t)len, dg);
            for (int k = 0; k < 4; k++)
                d->points[d->npoints++] = (struct ring_point){ le32(dg + 4 * k), i };
        }
    }
    dist_ring_sort(d);
    return GW_OK;
}

uint32_t dist_md5_ring_pick(const struct hash_dist *d, const void *key, size_t len)
{
    return d->points[dist_ring_successor(d, dist_md5_hash(key, len))].server;
}

int32_t dist_md5_ring_pick_up(const struct hash_dist *d, const void *key, size_t len,
                              dist_is_up is_up, void *ctx)
{
    return dist_ring_walk_up(d, dist_ring_successor(d, dist_md5_hash(key, len)), is_up, ctx);
}
