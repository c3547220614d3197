/* pool.h -- a pool: servers chosen by a hash distribution, or the embedded
 * store, behind one interface.
 *
 * Each worker thread runs the config, so each builds its own pools and each
 * server has one persistent backend connection per thread.  A pool built
 * with no runtime (a config check) is validated but opens nothing.  The
 * embedded stores are process-wide: the n-th memcache.internal{} of the
 * config is the same store in every worker.
 *
 * A pool is its servers' failure policy (backend.h's be_policy): where an
 * op goes when its server is down, and how a failed multi-get answers.
 *
 * Ownership: pool_new copies what it needs from the spec; pool_free closes
 * its backends (failing what they still had in flight).
 */
#ifndef GW_POOL_H
#define GW_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "place/dist.h"
#include "base/net.h"

struct rt;
struct backend;
struct store;

enum pool_kind { POOL_SERVERS, POOL_INTERNAL };

/* memcache.internal{}'s size when the config gives none. */
#define POOL_INTERNAL_DEFAULT_SIZE ((size_t)64 << 20)
enum failover { FAILOVER_NONE, FAILOVER_REHASH, FAILOVER_NEXT };

struct server {
    char *name;                /* "host:port" as configured */
    char host[256];
    uint16_t port;
    uint32_t weight;
    struct gw_addr addr;
    struct backend_opts opts;
    struct backend *be;        /* NULL until the pool is bound to a runtime */
    struct server_stats *stats;/* where its requests are counted, once bound */
};

struct pool_spec {
    const char *name;
    struct hash_server *servers;
    const char **server_names; /* "host:port" strings, parallel to servers */
    uint32_t nservers;
    const struct dist_mode *mode;
    bool pymc_legacy_one;
    struct backend_opts *opts; /* per server, parallel to servers */
    enum failover failover;
    bool multiget_error;       /* a multi-get with a failed server answers an error */
    const char *hash_tag;      /* two characters, e.g. "{}", or NULL */
    const char *hash_namespace;/* a key prefix left out of the hash, or NULL */
    bool text_only;            /* servers too old for the meta protocol */
};

struct pool {
    struct be_policy policy;   /* first: the backends see the pool as this */
    enum pool_kind kind;
    char *name;
    struct rt *rt;
    struct hash_dist dist;
    struct server *servers;
    uint32_t nservers;
    enum failover failover;
    char hash_tag[2];          /* hash only what lies between these; 0: whole key */
    char *hash_ns;             /* a key starting with this hashes without it; NULL: none */
    size_t hash_ns_len;
    bool text_only;            /* protocol = "text": no meta calls (pool:mg, pool:ms) */
    struct pool_stats *stats;  /* once bound (POOL_SERVERS) */
    struct store *store;       /* POOL_INTERNAL */
    size_t store_size;         /* ... the size this config gives it */
};

/* A pool for spec; with rt its servers take their backends at once (else
 * it is only validated until pool_bind). */
struct pool *pool_new(struct rt *rt, const struct pool_spec *spec, char *err, size_t errlen);
/* Take the servers' backends from rt's registry (on rt's thread).
 * GW_NOMEM when out of memory. */
int pool_bind(struct pool *p, struct rt *rt);
/* The embedded store number `index` of the config (made on first use with
 * max_bytes), wrapped as a pool.  A store kept across a reload takes the
 * new size when the new config's pool is bound (a smaller one evicts). */
struct pool *pool_new_internal(struct rt *rt, int index, size_t max_bytes, char *err,
                               size_t errlen);
void pool_free(struct pool *p);

/* The server for key, honouring the failover policy; NULL if the policy
 * finds no server up.  pool_pick is its backend. */
struct server *pool_pick_server(struct pool *p, const char *key, size_t len);
struct backend *pool_pick(struct pool *p, const char *key, size_t len);

/* Free the process-wide embedded stores (at exit). */
void pool_stores_free(void);

#endif
