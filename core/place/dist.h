/* dist.h -- distributions: a server list turned into a key -> server map.
 *
 * Each mode reproduces one client's own placement exactly (which bytes are
 * hashed, the points or buckets, weights, ties, wrap-around, the client's
 * arithmetic), so the gateway can take over a pool that client filled with
 * no misses.  A mode is one file (dist_<mode>.c) that defines a struct
 * dist_mode, plus one row in dist.c's table; the table is the one list of
 * names, which the config API asks for (dist_mode_name).
 *
 * Ownership: dist_build() allocates inside *d; dist_free() frees it.  A
 * built distribution is read-only and may be shared across threads; picking
 * never allocates.
 */
#ifndef GW_DIST_H
#define GW_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct hash_server {
    const char *host;      /* as configured, e.g. "10.0.0.1" */
    uint16_t port;
    uint32_t weight;       /* >= 1 */
};

/* One point of a ring (a continuum): a hash value and its server. */
struct ring_point {
    uint32_t value;
    uint32_t server;
};

struct dist_mode;

struct hash_dist {
    const struct dist_mode *mode;
    bool pymc_legacy_one;          /* python-memcached < 1.60 "h = 1" rule */
    uint32_t nservers;
    uint32_t *buckets;             /* weighted modulo modes: server per bucket */
    uint32_t nbuckets;
    struct ring_point *points;     /* ring modes: sorted as the mode says */
    uint32_t npoints;
    char **names;                  /* modes that hash server names per key */
    void *mode_data;               /* a mode's own precomputed table (malloc'd) */
};

typedef bool (*dist_is_up)(void *ctx, uint32_t server);

/* A mode.  build fills the parts of *d it uses (dist_build has checked the
 * servers: n >= 1, hosts set, weights >= 1, and frees *d if build fails);
 * pick maps a key to a server; pick_up does the same when some servers are
 * down, following the client's own failover rule where it has one, and
 * returns -1 when it finds no up server. */
struct dist_mode {
    const char *name;
    int (*build)(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen);
    uint32_t (*pick)(const struct hash_dist *d, const void *key, size_t len);
    int32_t (*pick_up)(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx);
};

/* The mode called name, or NULL. */
const struct dist_mode *dist_mode_find(const char *name);
/* The name of mode number i (0, 1, ...), NULL past the last. */
const char *dist_mode_name(int i);

/* Build the distribution for servers[0..n).  On GW_ERROR (or GW_NOMEM), err
 * says why and *d holds nothing.  pymc_legacy_one only matters to
 * python-memcached. */
int dist_build(struct hash_dist *d, const struct dist_mode *mode,
               bool pymc_legacy_one, const struct hash_server *servers,
               uint32_t n, char *err, size_t errlen);
void dist_free(struct hash_dist *d);

static inline uint32_t dist_pick(const struct hash_dist *d, const void *key,
                                 size_t len)
{
    return d->mode->pick(d, key, len);
}

static inline int32_t dist_pick_up(const struct hash_dist *d, const void *key,
                                   size_t len, dist_is_up is_up, void *ctx)
{
    return d->mode->pick_up(d, key, len, is_up, ctx);
}

/* --- for the modes: shared building blocks (dist.c) --------------------- */

/* Each server repeated `weight` times in list order (python-memcached's
 * _init_buckets; also gomemcache's "list a server twice"). */
int dist_buckets(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen);
/* Room for npoints ring points (d->npoints stays 0: the mode appends). */
int dist_ring_alloc(struct hash_dist *d, uint64_t npoints, char *err,
                    size_t errlen);
/* Sort the ring by value, ties by server index (a stable sort of points
 * made in server order, as the clients' own sorts leave them). */
void dist_ring_sort(struct hash_dist *d);
/* The first point with value >= h, wrapping to 0 past the end: the ketama
 * successor rule. */
uint32_t dist_ring_successor(const struct hash_dist *d, uint32_t h);
/* From point p on, the first point whose server is up, once around. */
int32_t dist_ring_walk_up(const struct hash_dist *d, uint32_t p,
                          dist_is_up is_up, void *ctx);
/* "host:port" strings for every server, in d->names. */
int dist_names(struct hash_dist *d, const struct hash_server *s, uint32_t n,
               char *err, size_t errlen);

/* After dist_ring_sort, keep one point per value: the last one put, as a
 * Java TreeMap's put replaces an equal key (points made in server order,
 * so the highest server index among the tied). */
void dist_ring_keep_last(struct hash_dist *d);
/* The md5 ring of libmemcached's ketama, which other clients copied: for
 * server i, points(weight, total weight, n) points (a multiple of 4), 4 per
 * md5 digest of "host-j" (port 11211, unless port_always) or
 * "host:port-j", j = 0, 1, ..., each 4 bytes little-endian; sorted as
 * dist_ring_sort does. */
typedef uint64_t (*dist_points_fn)(uint32_t weight, uint64_t total, uint32_t n);
int dist_md5_ring(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                  dist_points_fn points, bool port_always, char *err,
                  size_t errlen);
/* md5 of the key, its first four bytes little-endian: those rings' key hash. */
uint32_t dist_md5_hash(const void *key, size_t len);
/* pick and pick_up for such a ring: the successor of the key's md5 hash,
 * and around a dead server the next point whose server is up. */
uint32_t dist_md5_ring_pick(const struct hash_dist *d, const void *key, size_t len);
int32_t dist_md5_ring_pick_up(const struct hash_dist *d, const void *key, size_t len,
                              dist_is_up is_up, void *ctx);

/* spymemcached's KetamaNodeLocator with KETAMA_HASH, defined in
 * dist_spymemcached_ketama.c and shared by its two md5 modes (that file and
 * _weighted.c): weighted says whether the client was given a weights map,
 * which changes the points per server. */
int dist_spy_ketama_build(struct hash_dist *d, const struct hash_server *s,
                          uint32_t n, bool weighted, char *err, size_t errlen);
int32_t dist_spy_ketama_pick_up(const struct hash_dist *d, const void *key,
                                size_t len, dist_is_up is_up, void *ctx);
/* Its failover walk (KetamaIterator) with the given key hash: md5 above,
 * String.hashCode for "spymemcached-ketama-native". */
typedef uint32_t (*dist_key_hash)(const void *key, size_t len);
int32_t dist_spy_ketama_walk(const struct hash_dist *d, const void *key,
                             size_t len, dist_key_hash hash, dist_is_up is_up,
                             void *ctx);

#endif
