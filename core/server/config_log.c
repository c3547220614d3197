/* config_log.c -- see config_log.h. */
#include "config_log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "place/dist.h"
#include "proxy/pool.h"
#include "script/lhost.h"

#define DESC_MAX 2048      /* one pool's or the routes' description */
#define SERVERS_SHOWN 32
#define ROUTES_SHOWN 64

/* A description being written; what passes DESC_MAX is cut. */
struct sbuf {
    char s[DESC_MAX];
    size_t n;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->n >= sizeof b->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (n > 0) b->n += (size_t)n < sizeof b->s - b->n ? (size_t)n : sizeof b->s - 1 - b->n;
}

struct pool_desc {
    char *key;     /* the name, and "#n" for the n-th pool of that name (n > 1) */
    char *name;
    char *text;
};

struct config_desc {
    struct pool_desc *pools;
    int npools;
    char *routes;
};

static struct config_desc serving;

static void size_text(struct sbuf *b, size_t bytes)
{
    if (bytes && bytes % (1u << 20) == 0) sb_add(b, "%zu MB", bytes >> 20);
    else if (bytes && bytes % 1024 == 0) sb_add(b, "%zu KB", bytes >> 10);
    else sb_add(b, "%zu bytes", bytes);
}

/* "python-memcached, failover rehash, timeout 0.5 s, 2 servers: a:1, b:2 (weight 2)" */
static void describe_pool(const struct pool *p, struct sbuf *b)
{
    static const char *const failovers[] = { "none", "rehash", "next" };
    if (p->kind == POOL_INTERNAL) {
        sb_add(b, "memcache.internal, ");
        size_text(b, p->store_size);
        return;
    }
    double timeout = p->nservers ? p->servers[0].opts.timeout : 0;
    sb_add(b, "%s", p->dist.mode->name);
    if (p->failover != FAILOVER_NONE) sb_add(b, ", failover %s", failovers[p->failover]);
    sb_add(b, ", timeout %g s, %u server%s:", timeout, p->nservers, p->nservers == 1 ? "" : "s");
    for (uint32_t i = 0; i < p->nservers && i < SERVERS_SHOWN; i++) {
        const struct server *s = &p->servers[i];
        sb_add(b, "%s %s", i ? "," : "", s->name);
        if (s->weight != 1) sb_add(b, " (weight %u)", s->weight);
        if (s->opts.timeout != timeout) sb_add(b, " (timeout %g s)", s->opts.timeout);
    }
    if (p->nservers > SERVERS_SHOWN) sb_add(b, " and %u more", p->nservers - SERVERS_SHOWN);
}

/* "\"sess:\" -> sessions, \"t1:\" -> function, default -> main" */
static void describe_routes(const struct lhost *h, struct sbuf *b)
{
    struct route_view v[ROUTES_SHOWN];
    int n = lhost_routes(h, v, ROUTES_SHOWN);
    for (int i = 0; i < n && i < ROUTES_SHOWN; i++) {
        if (v[i].prefix) sb_add(b, "%s\"%s\" -> ", i ? ", " : "", v[i].prefix);
        else sb_add(b, "%sdefault -> ", i ? ", " : "");
        sb_add(b, "%s", v[i].function ? "function" : v[i].pool->name);
    }
    if (n > ROUTES_SHOWN) sb_add(b, " and %d more", n - ROUTES_SHOWN);
    if (n == 0) sb_add(b, "none");
}

static void desc_free(struct config_desc *d)
{
    for (int i = 0; i < d->npools; i++) {
        free(d->pools[i].key);
        free(d->pools[i].name);
        free(d->pools[i].text);
    }
    free(d->pools);
    free(d->routes);
    memset(d, 0, sizeof *d);
}

/* The key of pool i: its name, told apart from earlier pools of that name. */
static char *pool_key(struct pool **pools, int i)
{
    int nth = 1;
    for (int j = 0; j < i; j++) nth += !strcmp(pools[j]->name, pools[i]->name);
    char buf[512];
    if (nth == 1) snprintf(buf, sizeof buf, "%s", pools[i]->name);
    else snprintf(buf, sizeof buf, "%s#%d", pools[i]->name, nth);
    return strdup(buf);
}

/* h described into d; false when out of memory. */
static bool desc_build(const struct lhost *h, struct config_desc *d)
{
    struct pool **pools;
    int n = lhost_pools(h, &pools);
    memset(d, 0, sizeof *d);
    d->pools = calloc((size_t)(n ? n : 1), sizeof *d->pools);
    if (!d->pools) return false;
    for (int i = 0; i < n; i++, d->npools++) {
        struct sbuf b = { .n = 0 };
        b.s[0] = 0;
        describe_pool(pools[i], &b);
        struct pool_desc *pd = &d->pools[i];
        pd->key = pool_key(pools, i);
        pd->name = strdup(pools[i]->name);
        pd->text = strdup(b.s);
        if (!pd->key || !pd->name || !pd->text) {
            d->npools++;
            desc_free(d);
            return false;
        }
    }
    struct sbuf b = { .n = 0 };
    b.s[0] = 0;
    describe_routes(h, &b);
    if (!(d->routes = strdup(b.s))) {
        desc_free(d);
        return false;
    }
    return true;
}

static const struct pool_desc *find_pool(const struct config_desc *d, const char *key)
{
    for (int i = 0; i < d->npools; i++)
        if (!strcmp(d->pools[i].key, key)) return &d->pools[i];
    return NULL;
}

void config_log_start(const struct lhost *h, const char *path)
{
    char abs[PATH_MAX];
    LOG_INFO("config %s", realpath(path, abs) ? abs : path);
    desc_free(&serving);
    if (!desc_build(h, &serving)) {
        LOG_WARN("out of memory describing the config");
        return;
    }
    for (int i = 0; i < serving.npools; i++)
        LOG_INFO("pool %s: %s", serving.pools[i].name, serving.pools[i].text);
    LOG_INFO("routes: %s", serving.routes);
}

void config_log_reload(const struct lhost *h, uint64_t generation)
{
    unsigned long long gen = (unsigned long long)generation;
    struct config_desc next;
    if (!desc_build(h, &next)) {
        LOG_WARN("reload: generation %llu: out of memory describing the config", gen);
        return;
    }
    int changes = 0;
    for (int i = 0; i < next.npools; i++) {
        const struct pool_desc *p = &next.pools[i], *old = find_pool(&serving, p->key);
        if (old && !strcmp(old->text, p->text)) continue;
        LOG_INFO("reload: generation %llu: pool %s %s: %s", gen, p->name,
                 old ? "changed" : "added", p->text);
        changes++;
    }
    for (int i = 0; i < serving.npools; i++) {
        if (find_pool(&next, serving.pools[i].key)) continue;
        LOG_INFO("reload: generation %llu: pool %s removed", gen, serving.pools[i].name);
        changes++;
    }
    if (!serving.routes || strcmp(serving.routes, next.routes) != 0) {
        LOG_INFO("reload: generation %llu: routes: %s", gen, next.routes);
        changes++;
    }
    if (!changes) LOG_INFO("reload: generation %llu: pools and routes unchanged", gen);
    desc_free(&serving);
    serving = next;
}

void config_log_free(void)
{
    desc_free(&serving);
}
