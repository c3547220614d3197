/* pool.c -- see pool.h. */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rt/rt.h"
#include "store/store.h"

#define MAX_STORES 64

static pthread_mutex_t stores_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *stores[MAX_STORES];

static struct backend *policy_pick(const struct be_policy *pol, const char *key, size_t len,
                                   struct server_stats **stats);

static struct pool *pool_alloc(struct rt *rt, const char *name, enum pool_kind kind)
{
    struct pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->policy.pick = policy_pick;
    p->kind = kind;
    p->rt = rt;
    p->name = strdup(name ? name : "pool");
    if (!p->name) {
        free(p);
        return NULL;
    }
    return p;
}

/* The distribution names servers by their parsed host and port. */
static int build_dist(struct pool *p, const struct pool_spec *spec, char *err, size_t errlen)
{
    struct hash_server *hs = calloc(p->nservers, sizeof *hs);
    if (!hs) {
        snprintf(err, errlen, "out of memory");
        return GW_ERROR;
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        hs[i].host = p->servers[i].host;
        hs[i].port = p->servers[i].port;
        hs[i].weight = p->servers[i].weight;
    }
    int rc = dist_build(&p->dist, spec->mode, spec->pymc_legacy_one, hs, p->nservers, err,
                             errlen);
    free(hs);
    return rc;
}

struct pool *pool_new(struct rt *rt, const struct pool_spec *spec, char *err, size_t errlen)
{
    struct pool *p = pool_alloc(rt, spec->name, POOL_SERVERS);
    if (!p) goto nomem;
    p->policy.multiget_error = spec->multiget_error;
    p->policy.failover = spec->failover != FAILOVER_NONE;
    p->failover = spec->failover;
    if (spec->hash_tag) memcpy(p->hash_tag, spec->hash_tag, 2);
    if (spec->hash_namespace) {
        p->hash_ns = strdup(spec->hash_namespace);
        if (!p->hash_ns) goto nomem;
        p->hash_ns_len = strlen(p->hash_ns);
    }
    p->text_only = spec->text_only;
    p->servers = calloc(spec->nservers, sizeof *p->servers);
    if (!p->servers) goto nomem;
    p->nservers = spec->nservers;
    for (uint32_t i = 0; i < spec->nservers; i++) {
        struct server *s = &p->servers[i];
        char nerr[GW_NET_ERRLEN];
        s->name = strdup(spec->server_names[i]);
        if (!s->name) goto nomem;
        if (net_parse_addr(s->name, &s->addr, s->host, sizeof s->host, &s->port, nerr) != GW_OK) {
            snprintf(err, errlen, "%s", nerr);
            goto fail;
        }
        s->weight = spec->servers[i].weight;
        s->opts = spec->opts[i];
        tls_ref(s->opts.tls);
    }
    if (build_dist(p, spec, err, errlen) != GW_OK) goto fail;
    if (rt && pool_bind(p, rt) != GW_OK) goto nomem;
    return p;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    pool_free(p);
    return NULL;
}

struct pool *pool_new_internal(struct rt *rt, int index, size_t max_bytes, char *err,
                               size_t errlen)
{
    if (index < 0 || index >= MAX_STORES) {
        snprintf(err, errlen, "too many memcache.internal stores (at most %d)", MAX_STORES);
        return NULL;
    }
    pthread_mutex_lock(&stores_lock);
    if (!stores[index]) stores[index] = store_new(max_bytes);
    struct store *st = stores[index];
    pthread_mutex_unlock(&stores_lock);
    struct pool *p = st ? pool_alloc(rt, "internal", POOL_INTERNAL) : NULL;
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->store = st;
    p->store_size = max_bytes;
    return p;
}

int pool_bind(struct pool *p, struct rt *rt)
{
    p->rt = rt;
    if (p->kind == POOL_INTERNAL) {
        store_set_limit(p->store, p->store_size);
        return GW_OK;
    }
    if (!(p->stats = metrics_pool(&rt->metrics, p->name))) return GW_NOMEM;
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        if (!s->be && !(s->be = backend_acquire(rt, p->name, s->name, &s->addr, &s->opts)))
            return GW_NOMEM;
        if (!(s->stats = metrics_server(&rt->metrics, p->name, s->name))) return GW_NOMEM;
    }
    return GW_OK;
}

void pool_stores_free(void)
{
    pthread_mutex_lock(&stores_lock);
    for (int i = 0; i < MAX_STORES; i++) {
        if (stores[i]) store_free(stores[i]);
        stores[i] = NULL;
    }
    pthread_mutex_unlock(&stores_lock);
}

void pool_free(struct pool *p)
{
    if (!p) return;
    for (uint32_t i = 0; p->servers && i < p->nservers; i++) {
        backend_release(p->servers[i].be, p->name);
        tls_unref(p->servers[i].opts.tls);
        free(p->servers[i].name);
    }
    free(p->servers);
    if (p->kind == POOL_SERVERS) dist_free(&p->dist);
    free(p->hash_ns);
    free(p->name);
    free(p);
}

static bool server_up(void *ctx, uint32_t i)
{
    struct pool *p = ctx;
    return backend_is_up(p->servers[i].be);
}

/* With a hash tag "{}", a key like "sess:{abc}:cart" hashes as "abc", so
 * related keys share a server.  No tag, or an empty one: the whole key
 * (twemproxy's rule). */
static void hash_part(const struct pool *p, const char **key, size_t *len)
{
    /* hash_namespace first: libmemcached prepends its namespace (PHP's
     * OPT_PREFIX_KEY, memcached.sess_prefix) to the key it sends but
     * hashes the key without it. */
    if (p->hash_ns && *len > p->hash_ns_len && memcmp(*key, p->hash_ns, p->hash_ns_len) == 0) {
        *key += p->hash_ns_len;
        *len -= p->hash_ns_len;
    }
    if (!p->hash_tag[0]) return;
    const char *open = memchr(*key, p->hash_tag[0], *len);
    if (!open) return;
    size_t rest = *len - (size_t)(open - *key) - 1;
    const char *close = memchr(open + 1, p->hash_tag[1], rest);
    if (!close || close == open + 1) return;
    *key = open + 1;
    *len = (size_t)(close - open - 1);
}

struct server *pool_pick_server(struct pool *p, const char *key, size_t len)
{
    hash_part(p, &key, &len);
    uint32_t i = p->nservers == 1 ? 0 : dist_pick(&p->dist, key, len);
    struct server *s = &p->servers[i];
    if (p->failover == FAILOVER_NONE || backend_is_up(s->be)) return s;
    int32_t j = dist_pick_up(&p->dist, key, len, server_up, p);
    return j < 0 ? NULL : &p->servers[j];
}

struct backend *pool_pick(struct pool *p, const char *key, size_t len)
{
    struct server *s = pool_pick_server(p, key, len);
    return s ? s->be : NULL;
}

static struct backend *policy_pick(const struct be_policy *pol, const char *key, size_t len,
                                   struct server_stats **stats)
{
    struct server *s = pool_pick_server((struct pool *)pol, key, len);
    *stats = s ? s->stats : NULL;
    return s ? s->be : NULL;
}
