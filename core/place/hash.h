/* hash.h -- key hashing and server selection ("distributions").
 *
 * Small, separately tested functions (one file per algorithm, twemproxy
 * hashkit style) plus one table that turns a server list into a
 * distribution that maps a key to a server index.
 *
 * Modes, each a drop-in for an existing client's placement:
 *   HASH_PYTHON_MEMCACHED  python-memcached 1.59: buckets = each server
 *                          repeated `weight` times in list order;
 *                          h = (crc32(key) >> 16) & 0x7fff, h = 1 if 0
 *                          (the "h = 1" rule is dropped when the pool asks
 *                          for >= 1.60 behaviour); server = buckets[h % n].
 *                          Failover "rehash" walks like python-memcached:
 *                          up to 10 tries of h = hash(str(h) .. str(i)).
 *   HASH_KETAMA            libmemcached/twemproxy weighted ketama over md5
 *                          (point names "host:port-i", or "host-i" when the
 *                          port is 11211; points per server computed in
 *                          single precision exactly as twemproxy does).
 *   HASH_JUMP              jump consistent hash over XXH3-64 of the key,
 *                          over the same weighted buckets as
 *                          python-memcached.
 *
 * Ownership: hash_dist_build() allocates inside *d; hash_dist_free() frees
 * it.  A built distribution is read-only and may be shared across threads.
 */
#ifndef GW_HASH_H
#define GW_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* --- the small functions ------------------------------------------------ */

uint32_t hash_crc32(const void *data, size_t len);      /* zlib's crc32 */
void hash_md5(const void *data, size_t len, unsigned char out[16]);
uint64_t hash_xxh64(const void *data, size_t len);      /* XXH3_64bits */
int32_t hash_jump(uint64_t key, int32_t buckets);       /* Lamping & Veach */

/* python-memcached's 15-bit server hash; legacy_one applies "0 becomes 1". */
uint32_t hash_pymc(const void *key, size_t len, bool legacy_one);

/* --- distributions ------------------------------------------------------ */

enum hash_mode { HASH_PYTHON_MEMCACHED, HASH_KETAMA, HASH_JUMP };

struct hash_server {
    const char *host;      /* as configured, e.g. "10.0.0.1" */
    uint16_t port;
    uint32_t weight;       /* >= 1 */
};

struct ketama_point {
    uint32_t value;
    uint32_t server;
};

struct hash_dist {
    enum hash_mode mode;
    bool pymc_legacy_one;          /* python-memcached < 1.60 "h = 1" rule */
    uint32_t nservers;
    uint32_t *buckets;             /* python-memcached: server per bucket */
    uint32_t nbuckets;
    struct ketama_point *points;   /* ketama: sorted by value */
    uint32_t npoints;
};

/* Parse a mode name: "python-memcached", "ketama" or "jump".  Returns
 * GW_ERROR for anything else. */
int hash_mode_parse(const char *name, enum hash_mode *mode);
/* The name of mode number i (0, 1, ...), NULL past the last: the one list
 * of names, which the config API asks for. */
const char *hash_mode_name(int i);

/* Build the distribution for servers[0..n).  On GW_ERROR, err (errlen bytes)
 * says why.  pymc_legacy_one only matters for HASH_PYTHON_MEMCACHED. */
int hash_dist_build(struct hash_dist *d, enum hash_mode mode,
                    bool pymc_legacy_one, const struct hash_server *servers,
                    uint32_t n, char *err, size_t errlen);
void hash_dist_free(struct hash_dist *d);

/* The server index for a key. */
uint32_t hash_dist_pick(const struct hash_dist *d, const void *key,
                        size_t len);

/* The server index for a key when some servers are down (is_up(ctx, i)
 * false).  python-memcached: its rehash walk (10 tries; if all land on down
 * servers, returns -1).  ketama: the next point on the ring whose server is
 * up.  jump: rehash the key hash with the try number, up to 10 tries
 * (h = XXH3(le64(h) || le64(try))), then the next up bucket after the last
 * try.  Returns -1 if no server is up. */
int32_t hash_dist_pick_up(const struct hash_dist *d, const void *key,
                          size_t len, bool (*is_up)(void *ctx, uint32_t i),
                          void *ctx);

#endif
