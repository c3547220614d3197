/* lhost.c -- see lhost.h.  The state, its allocator, the config-time
 * primitives and the route table; request-time Lua lives in ltask.c.
 *
 * Bindings follow one pattern: userdata with a named metatable
 * ("memcache.pool", "memcache.request", "memcache.response"), methods in
 * luaL_Reg tables, and ltype_check on every self (luaL_checkudata's
 * contract, by metatable address).  Misuse raises; the
 * primitives in the `core` table are called only by lua/gateway/prelude.lua,
 * which validates user input first and turns errors into config file:line
 * messages.
 */
#include "lhost_priv.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/conn.h"
#include "base/log.h"
#include "base/net.h"
#include "base/users.h"
#include "codec/proto.h"
#include "lmatch.h"
#include "place/dist.h"
#include "proxy/backend.h"
#include "proxy/pool.h"
#include "proxy/req.h"
#include "rt/rt.h"

#define SC_KEEP 4096

/* --- allocator ----------------------------------------------------------- */

static int size_class(size_t n)
{
    return n == 0 || n > SC_MAX ? -1 : (int)((n - 1) / SC_STEP);
}

static void *block_get(struct lhost *h, int c)
{
    void *p = h->sc_free[c];
    if (!p) return malloc((size_t)(c + 1) * SC_STEP);
    h->sc_free[c] = *(void **)p;
    h->sc_nfree[c]--;
    return p;
}

static void block_put(struct lhost *h, int c, void *p)
{
    if (c < 0 || h->sc_nfree[c] >= SC_KEEP) {
        free(p);
        return;
    }
    *(void **)p = h->sc_free[c];
    h->sc_free[c] = p;
    h->sc_nfree[c]++;
}

static void blocks_free(struct lhost *h)
{
    for (int c = 0; c < SC_COUNT; c++) {
        while (h->sc_free[c]) {
            void *p = h->sc_free[c];
            h->sc_free[c] = *(void **)p;
            free(p);
        }
        h->sc_nfree[c] = 0;
    }
}

/* Would growing by n bytes pass lua_memory_limit?  The limit is per
 * worker: every state it holds (the config, and one a reload retired or
 * prepared) counts; a state not bound to a worker counts alone. */
static bool over_memory_limit(const struct lhost *h, size_t n)
{
    size_t limit = gw_settings.lua_memory_limit;
    if (!limit) return false;
    uint64_t used = h->rt ? __atomic_load_n(&h->rt->stats.gw_lua_memory, __ATOMIC_RELAXED) : h->mem;
    return used + n > limit;
}

/* Lua's allocator: counts the bytes the state holds (shown in stats), and
 * refuses to grow past lua_memory_limit while Lua code runs (Lua then
 * raises "not enough memory" in that code; the gateway's own bookkeeping
 * outside Lua code never fails on the limit). */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lhost *h = ud;
    if (!ptr) osize = 0; /* then osize is a type tag, not a size */
    if (nsize > osize && h->in_lua && over_memory_limit(h, nsize - osize)) return NULL;
    int oc = ptr ? size_class(osize) : -1, nc = size_class(nsize);
    void *np = NULL;
    if (nsize == 0) {
        if (ptr) block_put(h, oc, ptr);
    } else if (ptr && oc == nc && oc >= 0) {
        np = ptr;
    } else if (nc < 0 && oc < 0) {
        np = realloc(ptr, nsize);
        if (!np) return NULL;
    } else {
        np = nc >= 0 ? block_get(h, nc) : malloc(nsize);
        if (!np) return NULL;
        if (ptr) {
            memcpy(np, ptr, osize < nsize ? osize : nsize);
            block_put(h, oc, ptr);
        }
    }
    h->mem += nsize - osize;
    if (h->rt) STAT_ADD(&h->rt->stats, gw_lua_memory, nsize - osize);
    return np;
}

/* --- memcache.pool userdata --------------------------------------------- */

static int pool_tostring(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    lua_pushfstring(L, "memcache.pool(%s)", lp->p->name);
    return 1;
}

static int pool_name(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    lua_pushstring(L, lp->p->name);
    return 1;
}

/* "memcached" for servers, or "internal" for memcache.internal. */
static int pool_kind(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    lua_pushstring(L, lp->p->kind == POOL_INTERNAL ? "internal" : "memcached");
    return 1;
}

/* What its servers are spoken to in: "meta" (pool:mg and pool:ms work),
 * "text" (protocol = "text", for servers older than memcached 1.6), or nil
 * for memcache.internal. */
static int pool_protocol(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    if (lp->p->kind == POOL_INTERNAL) lua_pushnil(L);
    else lua_pushstring(L, lp->p->text_only ? "text" : "meta");
    return 1;
}

static const luaL_Reg pool_methods[] = {
    { "name", pool_name },
    { "kind", pool_kind },
    { "protocol", pool_protocol },
    { NULL, NULL },
};

static const luaL_Reg pool_meta[] = {
    { "__tostring", pool_tostring },
    { NULL, NULL },
};

static int push_pool(lua_State *L, struct lhost *h, struct pool *p)
{
    struct pool **np = realloc(h->pools, (size_t)(h->npools + 1) * sizeof *np);
    if (!np) {
        pool_free(p);
        return luaL_error(L, "out of memory");
    }
    h->pools = np;
    h->pools[h->npools++] = p;
    struct lpool *lp = lua_newuserdatauv(L, sizeof *lp, 0);
    lp->p = p;
    luaL_setmetatable(L, POOL_MT);
    return 1;
}

static double num_field(lua_State *L, int t, const char *name, double def)
{
    lua_getfield(L, t, name);
    double v = luaL_optnumber(L, -1, def);
    lua_pop(L, 1);
    return v;
}

/* A server's backend options: its own fields, else the pool's (table at
 * p), else backend_opts_default.  A connect timeout left unset is the
 * reply timeout. */
static void server_opts(lua_State *L, int s, int p, struct backend_opts *o)
{
    const struct backend_opts *d = &backend_opts_default;
    o->timeout = num_field(L, s, "timeout", num_field(L, p, "timeout", d->timeout));
    double ct = d->connect_timeout > 0 ? d->connect_timeout : o->timeout;
    o->connect_timeout = num_field(L, s, "connect_timeout", num_field(L, p, "connect_timeout", ct));
    o->retry_timeout = num_field(L, p, "retry_timeout", d->retry_timeout);
    o->failure_limit = (uint32_t)num_field(L, p, "failure_limit", d->failure_limit);
    o->max_queue = (uint32_t)num_field(L, p, "max_queue", d->max_queue);
    o->tls = NULL; /* core_pool sets it for a pool with tls */
}

/* A PEM file of a tls table: t[key] its path, t[key.."_text"] its text. */
static void tls_pem_field(lua_State *L, int t, const char *key, struct tls_pem *pem)
{
    char tk[32];
    snprintf(tk, sizeof tk, "%s_text", key);
    lua_getfield(L, t, key);
    pem->path = lua_tostring(L, -1);
    lua_getfield(L, t, tk);
    pem->text = lua_tolstring(L, -1, &pem->len);
    lua_pop(L, 2); /* both stay reachable from t */
    if (!pem->text) pem->path = NULL;
}

/* core.pool{ name=, servers={ {addr=, weight=, timeout=, connect_timeout=}... },
 *            hash=, legacy=, timeout=, connect_timeout=, retry_timeout=,
 *            failure_limit=, max_queue=, failover=, multiget_errors=, hash_tag=,
 *            hash_namespace=,
 *            text_only= }
 * -- already validated by the prelude. */
static int core_pool(lua_State *L)
{
    struct lhost *h = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    struct pool_spec spec = { 0 };
    lua_getfield(L, 1, "name");
    spec.name = luaL_optstring(L, -1, "pool");
    lua_getfield(L, 1, "hash");
    spec.mode = dist_mode_find(luaL_checkstring(L, -1));
    if (!spec.mode)
        return luaL_error(L, "unknown hash '%s'", lua_tostring(L, -1));
    lua_getfield(L, 1, "legacy");
    spec.pymc_legacy_one = lua_toboolean(L, -1);
    lua_getfield(L, 1, "failover");
    const char *fo = luaL_checkstring(L, -1);
    spec.failover = !strcmp(fo, "rehash") ? FAILOVER_REHASH
                  : !strcmp(fo, "next")   ? FAILOVER_NEXT : FAILOVER_NONE;
    lua_getfield(L, 1, "multiget_errors");
    spec.multiget_error = lua_isstring(L, -1) && !strcmp(lua_tostring(L, -1), "error");
    lua_getfield(L, 1, "text_only");
    spec.text_only = lua_toboolean(L, -1);
    lua_getfield(L, 1, "hash_tag");
    spec.hash_tag = luaL_optstring(L, -1, NULL);
    if (spec.hash_tag && strlen(spec.hash_tag) != 2)
        return luaL_error(L, "hash_tag must be two characters");
    lua_getfield(L, 1, "hash_namespace");
    spec.hash_namespace = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "servers");
    luaL_checktype(L, -1, LUA_TTABLE);
    int sidx = lua_gettop(L);
    lua_Integer n = luaL_len(L, sidx);
    if (n < 1 || n > 4096) return luaL_error(L, "a pool needs 1 to 4096 servers");
    spec.nservers = (uint32_t)n;
    spec.servers = lua_newuserdatauv(L, sizeof *spec.servers * (size_t)n, 0);
    spec.server_names = lua_newuserdatauv(L, sizeof *spec.server_names * (size_t)n, 0);
    spec.opts = lua_newuserdatauv(L, sizeof *spec.opts * (size_t)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, sidx, i);
        int s = lua_gettop(L);
        server_opts(L, s, 1, &spec.opts[i - 1]);
        lua_getfield(L, s, "addr");
        spec.server_names[i - 1] = luaL_checkstring(L, -1);
        lua_getfield(L, s, "weight");
        spec.servers[i - 1].weight = (uint32_t)luaL_checkinteger(L, -1);
        lua_pop(L, 3);
    }
    /* tls: each host builds its own client context (one per pool); every
     * server of the pool connects with it. */
    struct gw_tls *tls = NULL;
    char err[512];
    lua_getfield(L, 1, "tls");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        struct tls_opts o = { 0 };
        tls_pem_field(L, t, "cert", &o.cert);
        tls_pem_field(L, t, "key", &o.key);
        tls_pem_field(L, t, "ca", &o.ca);
        lua_getfield(L, t, "server_name");
        o.server_name = lua_tostring(L, -1);
        lua_getfield(L, t, "verify");
        o.verify = lua_toboolean(L, -1) ? TLS_VERIFY_REQUIRED : TLS_VERIFY_NONE;
        o.min_version = 12;
        if (!(tls = tls_client_new(&o, err, sizeof err))) return luaL_error(L, "tls: %s", err);
        lua_pop(L, 2);
        for (uint32_t i = 0; i < spec.nservers; i++) spec.opts[i].tls = tls;
    }
    struct pool *p = pool_new(h->rt, &spec, err, sizeof err);
    tls_unref(tls); /* the servers hold it now */
    if (!p) return luaL_error(L, "%s", err);
    return push_pool(L, h, p);
}

/* core.internal(max_bytes) */
static int core_internal(lua_State *L)
{
    struct lhost *h = host_of(L);
    lua_Integer size = luaL_checkinteger(L, 1);
    char err[256];
    struct pool *p = pool_new_internal(h->rt, h->ninternal++, (size_t)size, err, sizeof err);
    if (!p) return luaL_error(L, "%s", err);
    return push_pool(L, h, p);
}

static int route_cmp(const void *a, const void *b)
{
    const struct route *x = a, *y = b;
    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static void routes_clear(struct lhost *h)
{
    for (int i = 0; i < h->nroutes; i++) {
        free(h->routes[i].prefix);
        if (h->routes[i].fref != LUA_NOREF) luaL_unref(h->L, LUA_REGISTRYINDEX, h->routes[i].fref);
    }
    free(h->routes);
    h->routes = NULL;
    h->nroutes = 0;
    if (h->has_default && h->deflt.fref != LUA_NOREF)
        luaL_unref(h->L, LUA_REGISTRYINDEX, h->deflt.fref);
    h->has_default = false;
}

/* Fill a route from the target at the top of the stack (pops it). */
static void route_target(lua_State *L, struct route *rt)
{
    struct lpool *lp = ltype_test(L, -1, LT_POOL);
    rt->pool = lp ? lp->p : NULL;
    rt->fref = LUA_NOREF;
    if (lp) lua_pop(L, 1);
    else rt->fref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* core.route({ {prefix, target}, ... }, default_or_nil) */
static int core_route(lua_State *L)
{
    struct lhost *h = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    routes_clear(h);
    lua_Integer n = luaL_len(L, 1);
    h->routes = calloc((size_t)(n ? n : 1), sizeof *h->routes);
    if (!h->routes) return luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        lua_geti(L, -1, 1);
        size_t len;
        const char *prefix = luaL_checklstring(L, -1, &len);
        struct route *rt = &h->routes[h->nroutes];
        rt->prefix = malloc(len + 1);
        if (!rt->prefix) return luaL_error(L, "out of memory");
        memcpy(rt->prefix, prefix, len + 1);
        rt->len = len;
        lua_pop(L, 1);
        lua_geti(L, -1, 2);
        route_target(L, rt);
        lua_pop(L, 1);
        h->nroutes++;
    }
    qsort(h->routes, (size_t)h->nroutes, sizeof *h->routes, route_cmp);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushvalue(L, 2);
        route_target(L, &h->deflt);
        h->has_default = true;
    }
    return 0;
}

static char *dupstr(lua_State *L, const char *s)
{
    char *d = strdup(s);
    if (!d) luaL_error(L, "out of memory");
    return d;
}

/* The pools in the list at index idx, into a new array (its count in *n). */
static struct pool **pool_list(lua_State *L, int idx, int *n)
{
    lua_Integer len = luaL_len(L, idx);
    struct pool **pools = calloc((size_t)(len ? len : 1), sizeof *pools);
    if (!pools) luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        struct lpool *lp = ltype_test(L, -1, LT_POOL);
        lua_pop(L, 1);
        if (!lp) {
            free(pools);
            luaL_error(L, "flush: item %d is not a pool", (int)i);
        }
        pools[i - 1] = lp->p;
    }
    *n = (int)len;
    return pools;
}

/* A listener's tls table (gateway.listen's, gateway.admin's; checked by
 * the prelude, the files read) as tls_opts pointing into it. */
static void listener_tls_opts(lua_State *L, int t, struct tls_opts *out)
{
    struct tls_opts o = { 0 };
    tls_pem_field(L, t, "cert", &o.cert);
    tls_pem_field(L, t, "key", &o.key);
    tls_pem_field(L, t, "ca", &o.ca);
    lua_getfield(L, t, "verify");
    const char *v = luaL_optstring(L, -1, "none");
    o.verify = !strcmp(v, "required") ? TLS_VERIFY_REQUIRED
               : !strcmp(v, "optional") ? TLS_VERIFY_OPTIONAL : TLS_VERIFY_NONE;
    lua_getfield(L, t, "min_version");
    o.min_version = !strcmp(luaL_optstring(L, -1, "1.2"), "1.3") ? 13 : 12;
    lua_pop(L, 2);
    *out = o;
}

/* gateway.listen's tls table (checked by the prelude, the files read) as
 * a server context.  A host made from another's texts takes the one that
 * host built (the same config ran there in the same order: listener i is
 * the same), so each load builds and checks it once.  Raises
 * "tls: file: what is wrong". */
static struct gw_tls *listen_tls(lua_State *L, struct lhost *h, int t, int i)
{
    if (h->from && i < h->from->nlisten) return tls_ref(h->from->listen_tls[i]);
    struct tls_opts o;
    listener_tls_opts(L, t, &o);
    char err[512];
    struct gw_tls *tls = tls_server_new(&o, err, sizeof err);
    if (!tls) luaL_error(L, "tls: %s", err);
    return tls;
}

/* listen_tls(table, i), protected: the context as a light userdata. */
static int listen_tls_call(lua_State *L)
{
    struct gw_tls *tls = listen_tls(L, host_of(L), 1, (int)lua_tointeger(L, 2));
    lua_pushlightuserdata(L, tls);
    return 1;
}

/* core.listen(addr, name_or_nil, flush, stats [, auth, auth_text [, tls]]):
 * flush is "all", "deny" or a list of pools; stats is "all", "read" or
 * "deny" (validated by the prelude); auth is the users file's path
 * (resolved) and auth_text its text, as the prelude read it; tls is
 * gateway.listen's tls table with its files' texts (listen_tls).  A bad
 * users file raises "path:line: what is wrong", with no position of its
 * own; a bad certificate "tls: path: what is wrong". */
static int core_listen(lua_State *L)
{
    struct lhost *h = host_of(L);
    const char *addr = luaL_checkstring(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    static const char *const stats_modes[] = { "all", "read", "deny", NULL };
    int stats = luaL_checkoption(L, 4, "all", stats_modes);
    const char *auth = luaL_optstring(L, 5, NULL);
    struct users *users = NULL;
    if (auth) {
        size_t tlen;
        const char *text = luaL_checklstring(L, 6, &tlen);
        char err[512];
        if (!(users = users_parse(auth, text, tlen, err, sizeof err)))
            return luaL_error(L, "%s", err);
    }
    struct gw_tls *tls = NULL;
    if (lua_istable(L, 7)) {
        int ok;
        lua_pushcfunction(L, listen_tls_call);
        lua_pushvalue(L, 7);
        lua_pushinteger(L, h->cfg.nlisten);
        ok = lua_pcall(L, 2, 1, 0) == LUA_OK;
        if (!ok) {
            users_free(users);
            return lua_error(L);
        }
        tls = lua_touserdata(L, -1);
        lua_pop(L, 1);
    }
    int n = h->cfg.nlisten + 1;
    char **a = realloc(h->cfg.listen, (size_t)n * sizeof *a);
    if (a) h->cfg.listen = a;
    char **nm = realloc(h->cfg.listen_names, (size_t)n * sizeof *nm);
    if (nm) h->cfg.listen_names = nm;
    char **au = realloc(h->cfg.listen_auth, (size_t)n * sizeof *au);
    if (au) h->cfg.listen_auth = au;
    struct gw_tls **tl = realloc(h->cfg.listen_tls, (size_t)n * sizeof *tl);
    if (tl) h->cfg.listen_tls = tl;
    struct listen_policy *pol = realloc(h->policies, (size_t)n * sizeof *pol);
    if (pol) h->policies = pol;
    if (!a || !nm || !au || !tl || !pol) {
        users_free(users);
        tls_unref(tls);
        return luaL_error(L, "out of memory");
    }
    struct listen_policy *p = &h->policies[n - 1];
    memset(p, 0, sizeof *p);
    p->users = users;
    h->npolicies = n;
    p->stats = (enum stats_policy)stats;
    if (lua_istable(L, 3)) {
        p->flush = FLUSH_POOLS;
        p->pools = pool_list(L, 3, &p->npools);
    } else {
        p->flush = !strcmp(luaL_checkstring(L, 3), "deny") ? FLUSH_DENY : FLUSH_ALL;
    }
    p->label = dupstr(L, name ? name : addr);
    h->cfg.listen[n - 1] = dupstr(L, addr);
    h->cfg.listen_names[n - 1] = name ? dupstr(L, name) : NULL;
    h->cfg.listen_tls[n - 1] = tls;
    h->cfg.listen_auth[n - 1] = auth ? dupstr(L, auth) : NULL;
    h->cfg.nlisten = n;
    return 0;
}

static char *dupstr_opt(lua_State *L, const char *s)
{
    return s ? dupstr(L, s) : NULL;
}

void lhost_admin_free(struct lhost_admin *a)
{
    if (!a) return;
    free(a->cert);
    free(a->key);
    free(a->ca);
    free(a->cert_path);
    free(a->key_path);
    free(a->ca_path);
    free(a->token);
    free(a);
}

/* A copy of another host's (a host made from its texts runs the same
 * config: the certificate was checked there). */
static void admin_copy(lua_State *L, struct lhost_admin *a, const struct lhost_admin *from)
{
    a->tls = from->tls;
    a->verify = from->verify;
    a->min_version = from->min_version;
    a->cert = dupstr_opt(L, from->cert);
    a->key = dupstr_opt(L, from->key);
    a->ca = dupstr_opt(L, from->ca);
    a->cert_path = dupstr_opt(L, from->cert_path);
    a->key_path = dupstr_opt(L, from->key_path);
    a->ca_path = dupstr_opt(L, from->ca_path);
    a->token = dupstr_opt(L, from->token);
}

/* gateway.admin's tls table at t: checked as gateway.listen's is (the
 * same context is built with OpenSSL and dropped, so the errors are the
 * same, naming the file), then kept as texts for libmicrohttpd.  Raises
 * "tls: file: what is wrong". */
static void admin_tls(lua_State *L, struct lhost_admin *a, int t)
{
    struct tls_opts o;
    listener_tls_opts(L, t, &o);
    char err[512];
    struct gw_tls *tls = tls_server_new(&o, err, sizeof err);
    if (!tls) luaL_error(L, "tls: %s", err);
    tls_unref(tls);
    a->tls = true;
    a->verify = (int)o.verify;
    a->min_version = o.min_version;
    a->cert = dupstr(L, o.cert.text);
    a->key = dupstr(L, o.key.text);
    a->ca = dupstr_opt(L, o.ca.text);
    a->cert_path = dupstr_opt(L, o.cert.path);
    a->key_path = dupstr_opt(L, o.key.path);
    a->ca_path = dupstr_opt(L, o.ca.path);
}

/* core.admin(addr [, tls [, token]]): the admin listener's address, its
 * tls table (as gateway.listen's, with the files' texts) and its bearer
 * token (all validated by the prelude; a host that does not resolve is an
 * error here, a bad certificate "tls: file: what is wrong"). */
static int core_admin(lua_State *L)
{
    struct lhost *h = host_of(L);
    const char *addr = luaL_checkstring(L, 1);
    const char *token = luaL_optstring(L, 3, NULL);
    struct gw_addr a;
    char host[256], err[GW_NET_ERRLEN];
    uint16_t port;
    if (net_parse_addr(addr, &a, host, sizeof host, &port, err) != GW_OK)
        return luaL_error(L, "gateway.admin: %s", err);
    free(h->cfg.admin);
    h->cfg.admin = dupstr(L, addr);
    lhost_admin_free(h->cfg.admin_opts);
    h->cfg.admin_opts = NULL;
    if (!lua_istable(L, 2) && !token) return 0;
    /* Owned by the config from here, so an error below leaks nothing. */
    struct lhost_admin *o = h->cfg.admin_opts = calloc(1, sizeof *o);
    if (!o) return luaL_error(L, "out of memory");
    if (h->from && h->from->admin_opts) {
        admin_copy(L, o, h->from->admin_opts);
        return 0;
    }
    if (lua_istable(L, 2)) admin_tls(L, o, 2);
    o->token = dupstr_opt(L, token);
    return 0;
}

/* core.keyless(fn): the hook for commands with no key. */
static int core_keyless(lua_State *L)
{
    struct lhost *h = host_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (h->keyless_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, h->keyless_ref);
    lua_pushvalue(L, 1);
    h->keyless_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static lua_Integer opt_field(lua_State *L, const char *name, lua_Integer def)
{
    lua_getfield(L, 1, name);
    lua_Integer v = luaL_optinteger(L, -1, def);
    lua_pop(L, 1);
    return v;
}

/* core.settings{ threads=, max_value_size=, max_line=, max_connections=,
 *                instruction_limit=, max_pending=, max_output=,
 *                max_client_memory=, shutdown_timeout=, binary_keys=,
 *                route_timeout=, task_limit=, max_tasks=, lua_memory_limit= }
 * -- validated by the prelude, sizes already in bytes. */
static int core_settings(lua_State *L)
{
    struct gw_settings *st = &host_of(L)->cfg.settings;
    luaL_checktype(L, 1, LUA_TTABLE);
    st->threads = (int)opt_field(L, "threads", st->threads);
    st->max_value = (size_t)opt_field(L, "max_value_size", (lua_Integer)st->max_value);
    st->max_line = (size_t)opt_field(L, "max_line", (lua_Integer)st->max_line);
    st->max_connections = (uint32_t)opt_field(L, "max_connections", st->max_connections);
    st->instruction_limit =
        (uint64_t)opt_field(L, "instruction_limit", (lua_Integer)st->instruction_limit);
    st->max_pending = (uint32_t)opt_field(L, "max_pending", st->max_pending);
    st->max_output = (size_t)opt_field(L, "max_output", (lua_Integer)st->max_output);
    st->max_client_memory =
        (size_t)opt_field(L, "max_client_memory", (lua_Integer)st->max_client_memory);
    st->task_limit = (uint32_t)opt_field(L, "task_limit", st->task_limit);
    st->max_tasks = (uint32_t)opt_field(L, "max_tasks", st->max_tasks);
    st->lua_memory_limit =
        (size_t)opt_field(L, "lua_memory_limit", (lua_Integer)st->lua_memory_limit);
    st->shutdown_timeout = num_field(L, 1, "shutdown_timeout", st->shutdown_timeout);
    st->route_timeout = num_field(L, 1, "route_timeout", st->route_timeout);
    lua_getfield(L, 1, "binary_keys");
    if (!lua_isnil(L, -1)) st->binary_keys = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return 0;
}

/* core.defaults() -> { settings = {...}, pool = {...}, internal_size = n }:
 * what a setting or a pool option is when the config leaves it out, from
 * the core's one place for each (rt/settings.c, backend_opts_default,
 * POOL_INTERNAL_DEFAULT_SIZE). */
static int core_defaults(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_createtable(L, 0, settings_default_count);
    for (int i = 0; i < settings_default_count; i++) {
        const struct setting_default *d = &settings_default_list[i];
        if (d->is_bool) lua_pushboolean(L, d->value != 0);
        else if (d->value == (double)(lua_Integer)d->value) lua_pushinteger(L, (lua_Integer)d->value);
        else lua_pushnumber(L, d->value);
        lua_setfield(L, -2, d->name);
    }
    lua_setfield(L, -2, "settings");
    const struct backend_opts *b = &backend_opts_default;
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, b->timeout);
    lua_setfield(L, -2, "timeout");
    lua_pushnumber(L, b->retry_timeout);
    lua_setfield(L, -2, "retry_timeout");
    lua_pushinteger(L, b->failure_limit);
    lua_setfield(L, -2, "failure_limit");
    lua_pushinteger(L, b->max_queue);
    lua_setfield(L, -2, "max_queue");
    lua_setfield(L, -2, "pool");
    lua_pushinteger(L, (lua_Integer)POOL_INTERNAL_DEFAULT_SIZE);
    lua_setfield(L, -2, "internal_size");
    return 1;
}

/* core.hashes() -> { "python-memcached", ... }: the hash names pools take. */
static int core_hashes(lua_State *L)
{
    lua_newtable(L);
    for (int i = 0; dist_mode_name(i); i++) {
        lua_pushstring(L, dist_mode_name(i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core.log(level, message) */
static int core_log(lua_State *L)
{
    static const char *const levels[] = { "error", "warn", "info", "verbose", NULL };
    int lvl = luaL_checkoption(L, 1, "info", levels);
    const char *msg = luaL_checkstring(L, 2);
    LOG_AT(lvl, "%s", msg);
    return 0;
}

static int core_valid_key(lua_State *L)
{
    size_t len;
    const char *k = luaL_checklstring(L, 1, &len);
    lua_pushboolean(L, mc_key_allowed(k, len, host_binary_keys(host_of(L))));
    return 1;
}

void check_key(lua_State *L, const char *key, size_t len, int arg, const char *fname)
{
    bool binary = host_binary_keys(host_of(L));
    if (mc_key_allowed(key, len, binary)) return;
    const char *why = binary ? "invalid memcached key (1..250 bytes, no space, NUL, CR or LF)"
                             : "invalid memcached key (1..250 bytes, no spaces or control characters)";
    if (arg) luaL_argerror(L, arg, why);
    luaL_error(L, "%s: %s", fname, why);
}

/* Keep a file the config loaded, with its text (len bytes) and stamp. */
static int add_file(struct lhost *h, const char *path, const char *text, size_t len,
                    const struct stat *stamp)
{
    int n = h->cfg.nfiles + 1;
    char **f = realloc(h->cfg.files, (size_t)n * sizeof *f);
    if (f) h->cfg.files = f;
    char **t = realloc(h->cfg.texts, (size_t)n * sizeof *t);
    if (t) h->cfg.texts = t;
    size_t *l = realloc(h->cfg.lens, (size_t)n * sizeof *l);
    if (l) h->cfg.lens = l;
    struct stat *s = realloc(h->cfg.stamps, (size_t)n * sizeof *s);
    if (s) h->cfg.stamps = s;
    if (!f || !t || !l || !s) return GW_NOMEM;
    char *pcopy = strdup(path), *tcopy = malloc(len + 1);
    if (!pcopy || !tcopy) {
        free(pcopy);
        free(tcopy);
        return GW_NOMEM;
    }
    memcpy(tcopy, text, len);
    tcopy[len] = 0;
    f[n - 1] = pcopy;
    t[n - 1] = tcopy;
    l[n - 1] = len;
    if (stamp) s[n - 1] = *stamp;
    else memset(&s[n - 1], 0, sizeof s[n - 1]);
    h->cfg.nfiles = n;
    return GW_OK;
}

/* core.read(path) -> text | nil, err: read a file the config loads, and
 * keep it (its text for the workers, its stamp for the watch).  The stamp
 * is taken before the read, so a save racing the read shows as a change. */
static int core_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    FILE *f = NULL;
    if (stat(path, &st) != 0 || !(f = fopen(path, "rb"))) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t n;
    do {
        char *p = luaL_prepbuffer(&b);
        n = fread(p, 1, LUAL_BUFFERSIZE, f);
        luaL_addsize(&b, n);
    } while (n == LUAL_BUFFERSIZE);
    bool failed = ferror(f);
    fclose(f);
    luaL_pushresult(&b);
    if (failed) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: read error", path);
        return 2;
    }
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (add_file(host_of(L), path, text, len, &st) != GW_OK) return luaL_error(L, "out of memory");
    return 1;
}

/* core.track(path, text): the config loaded this file from the texts
 * another host read. */
static int core_track(lua_State *L)
{
    size_t len;
    const char *path = luaL_checkstring(L, 1);
    const char *text = luaL_checklstring(L, 2, &len);
    if (add_file(host_of(L), path, text, len, NULL) != GW_OK)
        return luaL_error(L, "out of memory");
    return 0;
}

static const luaL_Reg core_funcs[] = {
    { "read", core_read },
    { "track", core_track },
    { "pool", core_pool },
    { "internal", core_internal },
    { "route", core_route },
    { "listen", core_listen },
    { "keyless", core_keyless },
    { "admin", core_admin },
    { "settings", core_settings },
    { "defaults", core_defaults },
    { "hashes", core_hashes },
    { "log", core_log },
    { "valid_key", core_valid_key },
    { NULL, NULL },
};

/* --- state set-up -------------------------------------------------------- */

void protect_metatable(lua_State *L, const char *name)
{
    lua_createtable(L, 0, 1);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_setfield(L, -2, "__metatable");
}

static const char *const ltype_names[LT_COUNT] = {
    [LT_POOL] = POOL_MT, [LT_REQUEST] = REQUEST_MT, [LT_RESPONSE] = RESPONSE_MT,
};

void *ltype_check(lua_State *L, int i, enum ltype t)
{
    void *p = ltype_test(L, i, t);
    if (!p) luaL_typeerror(L, i, ltype_names[t]);
    return p;
}

void lhost_note_type(lua_State *L, enum ltype t)
{
    host_of(L)->mt[t] = lua_topointer(L, -1);
}

static void register_types(lua_State *L)
{
    /* getmetatable("") must not hand sandboxed code the string library. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushliteral(L, "string");
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    luaL_newmetatable(L, POOL_MT);
    lhost_note_type(L, LT_POOL);
    luaL_setfuncs(L, pool_meta, 0);
    protect_metatable(L, POOL_MT);
    luaL_newlibtable(L, pool_methods);
    luaL_setfuncs(L, pool_methods, 0);
    lua_setfield(L, -2, "__index");
    ltask_register(L);
    lua_pop(L, 1);
}

/* Message handler: the error with a traceback. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The texts another host read, as the prelude's sources table (path ->
 * text), or nil. */
static void push_sources(lua_State *L, const struct lhost_config *from)
{
    if (!from) {
        lua_pushnil(L);
        return;
    }
    lua_createtable(L, 0, from->nfiles);
    for (int i = 0; i < from->nfiles; i++) {
        lua_pushlstring(L, from->texts[i], from->lens[i]);
        lua_setfield(L, -2, from->files[i]);
    }
}

/* Run lua/gateway/prelude.lua's boot(core, config_path, lua_dir, live,
 * sources). */
static int boot(struct lhost *h, const char *config_path, const char *lua_dir,
                const struct lhost_config *from, char *err, size_t errlen)
{
    lua_State *L = h->L;
    char path[4096];
    snprintf(path, sizeof path, "%s/gateway/prelude.lua", lua_dir);
    lua_pushcfunction(L, traceback);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        return GW_ERROR;
    }
    if (lua_pcall(L, 0, 1, -2) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        return GW_ERROR;
    }
    luaL_newlib(L, core_funcs);
    ltask_push_api(L);
    lua_setfield(L, -2, "request_api");
    lua_pushstring(L, config_path);
    lua_pushstring(L, lua_dir);
    lua_pushboolean(L, h->rt != NULL);
    push_sources(L, from);
    /* The top level runs against a deadline (it is not a request: it may
     * do more work than a route call's budget, but not forever). */
    h->config_quota = (struct quota){
        .h = h, .instructions = INT64_MAX, .deadline = ltask_now(h) + CONFIG_TIMEOUT,
        .timeout_why = "the config's top level took too long (more than 10 s)",
    };
    h->main_task.q = &h->config_quota;
    ltask_set_hook(L, &h->config_quota);
    h->in_lua = 1;
    int st = lua_pcall(L, 5, 0, 1);
    h->in_lua = 0;
    lua_sethook(L, NULL, 0, 0);
    h->config_quota.deadline = 0;
    h->config_quota.expired = false;
    if (st != LUA_OK) {
        /* The prelude raises "file:line: message"; drop the traceback. */
        const char *m = lua_tostring(L, -1);
        const char *tb = m ? strstr(m, "\nstack traceback:") : NULL;
        snprintf(err, errlen, "%.*s", tb ? (int)(tb - m) : (int)strlen(m ? m : ""), m ? m : "?");
        LOG_VERBOSE("%s", m ? m : "?");
        return GW_ERROR;
    }
    lua_settop(L, 0);
    if (!h->has_default && h->nroutes == 0) {
        snprintf(err, errlen, "%s: the config routes nothing (call memcache.route{...})",
                 config_path);
        return GW_ERROR;
    }
    return GW_OK;
}

static const struct resolver_ops lhost_resolver_ops;

struct lhost *lhost_new(struct rt *rt, const char *config_path, const char *lua_dir,
                        const struct lhost_config *from, char *err, size_t errlen)
{
    struct lhost *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->res.ops = &lhost_resolver_ops;
    h->rt = rt;
    h->main_task.h = h;
    h->main_task.kind = TASK_MAIN;
    h->deflt.fref = LUA_NOREF;
    h->keyless_ref = LUA_NOREF;
    h->cfg.settings = settings_defaults;
    h->L = lua_newstate(counting_alloc, h);
    if (!h->L) {
        free(h);
        snprintf(err, errlen, "cannot create a Lua state");
        return NULL;
    }
    *(struct task **)lua_getextraspace(h->L) = &h->main_task;
    luaL_openlibs(h->L);
    /* Pattern matching that counts its steps against the quota, in place
     * of the string library's (which no hook can stop). */
    lua_getglobal(h->L, "string");
    lmatch_register(h->L, -1, ltask_charge);
    lua_pop(h->L, 1);
    register_types(h->L);
    luaL_getmetatable(h->L, REQUEST_MT);
    h->request_mt_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    luaL_getmetatable(h->L, RESPONSE_MT);
    h->response_mt_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    lua_newtable(h->L);
    h->threads_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    lua_newtable(h->L);
    h->conns_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    h->from = from;
    int rc = boot(h, config_path, lua_dir, from, err, errlen);
    h->from = NULL;
    if (rc != GW_OK) {
        lhost_free(h);
        return NULL;
    }
    return h;
}

void lhost_free(struct lhost *h)
{
    if (!h) return;
    h->closing = true;
    routes_clear(h);
    /* Lua first: what its objects point to (pools) must outlive it.  Then
     * freeing the pools fails the backend calls in flight; with `closing`
     * set nothing is resumed.  Then the tasks let go of what they hold. */
    lua_close(h->L);
    for (int i = 0; i < h->npools; i++) pool_free(h->pools[i]);
    free(h->pools);
    ltask_free_all(h);
    if (h->rt) STAT_ADD(&h->rt->stats, gw_lua_memory, (uint64_t)0 - h->mem);
    blocks_free(h);
    free(h->idle);
    for (int i = 0; i < h->cfg.nlisten; i++) {
        free(h->cfg.listen[i]);
        free(h->cfg.listen_names[i]);
        free(h->cfg.listen_auth[i]);
        tls_unref(h->cfg.listen_tls[i]);
    }
    for (int i = 0; i < h->npolicies; i++) {
        free(h->policies[i].label);
        free(h->policies[i].pools);
        users_free(h->policies[i].users);
    }
    free(h->policies);
    free(h->cfg.admin);
    lhost_admin_free(h->cfg.admin_opts);
    free(h->cfg.listen);
    free(h->cfg.listen_names);
    free(h->cfg.listen_auth);
    free(h->cfg.listen_tls);
    for (int i = 0; i < h->cfg.nfiles; i++) {
        free(h->cfg.files[i]);
        free(h->cfg.texts[i]);
    }
    free(h->cfg.files);
    free(h->cfg.texts);
    free(h->cfg.lens);
    free(h->cfg.stamps);
    free(h);
}

void lhost_closing(struct lhost *h)
{
    if (h) h->closing = true;
}

int lhost_bind(struct lhost *h, struct rt *rt)
{
    for (int i = 0; i < h->npools; i++)
        if (pool_bind(h->pools[i], rt) != GW_OK) return GW_NOMEM;
    for (int i = 0; i < h->nroutes; i++)
        if (!(h->routes[i].stats = metrics_route(&rt->metrics, h->routes[i].prefix))) return GW_NOMEM;
    if (h->has_default && !(h->deflt.stats = metrics_route(&rt->metrics, "default")))
        return GW_NOMEM;
    h->rt = rt;
    STAT_ADD(&rt->stats, gw_lua_memory, h->mem);
    return GW_OK;
}

const struct lhost_config *lhost_config(const struct lhost *h) { return &h->cfg; }
struct resolver *lhost_resolver(struct lhost *h) { return &h->res; }
size_t lhost_memory(const struct lhost *h) { return h->mem; }
bool lhost_idle(const struct lhost *h) { return h->holds == 0 && h->live == NULL; }

/* --- the resolver --------------------------------------------------------- */

static const struct route *route_match(const struct lhost *h, const char *key, size_t len)
{
    for (int i = 0; i < h->nroutes; i++) {
        const struct route *rt = &h->routes[i];
        if (rt->len <= len && memcmp(rt->prefix, key, rt->len) == 0) return rt;
    }
    return h->has_default ? &h->deflt : NULL;
}

/* A key no route takes: logged, rate limited per listener. */
static void log_no_route(const struct gw_req *r, uint32_t k)
{
    char what[REQ_DESCRIBE_LEN];
    const char *listener = r->listener ? *r->listener : "";
    LOG_WARN_LIMIT(listener, "route none %s: no route for key (no prefix matches it and the "
                   "config has no default route)", req_describe(r, k, what, sizeof what));
}

static enum route_result host_route(struct resolver *rs, struct gw_req *r, uint32_t k,
                                    struct pool **pool)
{
    struct lhost *h = (struct lhost *)rs;
    const struct gw_key *key = &r->keys[k];
    const struct route *rt = route_match(h, key->ckey, key->cklen);
    if (!rt) {
        h->rt->metrics.errors[CERR_NO_ROUTE]++;
        log_no_route(r, k);
        req_fail_key(r, k, "no route for key");
        return ROUTE_FAILED;
    }
    if (rt->stats) {
        rt->stats->requests++;
        r->keys[k].route = rt->stats;
    }
    if (rt->pool) {
        *pool = rt->pool;
        return ROUTE_POOL;
    }
    STAT_INC(&h->rt->stats, gw_route_calls);
    return ltask_route(h, rt->fref, rt->prefix ? rt->prefix : "default", r, k, pool);
}

/* The policy of the listener labelled label; NULL: the defaults (all, no
 * auth). */
static const struct listen_policy *policy_of(const struct lhost *h, const char *label)
{
    for (int i = 0; label && i < h->npolicies; i++)
        if (!strcmp(h->policies[i].label, label)) return &h->policies[i];
    return NULL;
}

/* The policy of the listener r came in on. */
static const struct listen_policy *policy_for(const struct lhost *h, const struct gw_req *r)
{
    return policy_of(h, r->listener ? *r->listener : NULL);
}

static bool args_are(const struct gw_req *r, const char *word)
{
    size_t n = strlen(word);
    return r->mc.args_len == n && !memcmp(r->base + r->mc.args_off, word, n);
}

static enum keyless_verdict host_keyless(struct resolver *rs, struct gw_req *r,
                                         struct pool ***pools, int *npools)
{
    struct lhost *h = (struct lhost *)rs;
    const struct listen_policy *p = policy_for(h, r);
    *pools = NULL;
    *npools = -1;
    if (r->mc.cmd == MC_STATS && p) {
        bool reset = args_are(r, "reset");
        if (p->stats == STATS_DENY || (p->stats == STATS_READ && reset)) {
            h->rt->metrics.errors[CERR_DENIED]++;
            req_reply_static(r, reset ? "CLIENT_ERROR stats reset not allowed\r\n"
                                      : "CLIENT_ERROR stats not allowed\r\n");
            return KEYLESS_ANSWERED;
        }
    } else if (r->mc.cmd == MC_FLUSH_ALL && p) {
        if (p->flush == FLUSH_DENY) {
            h->rt->metrics.errors[CERR_DENIED]++;
            req_reply_static(r, "CLIENT_ERROR flush_all not allowed\r\n");
            return KEYLESS_ANSWERED;
        }
        if (p->flush == FLUSH_POOLS) {
            *pools = p->pools;
            *npools = p->npools;
        }
    }
    if (h->keyless_ref != LUA_NOREF) return ltask_keyless(h, r, pools, npools);
    return KEYLESS_ALLOWED;
}

static void view_of(const struct route *rt, const char *prefix, struct route_view *out)
{
    out->prefix = prefix;
    out->function = rt->pool == NULL;
    out->pool = rt->pool;
}

int lhost_routes(const struct lhost *h, struct route_view *out, int max)
{
    int n = 0;
    for (int i = 0; i < h->nroutes; i++, n++)
        if (n < max) view_of(&h->routes[i], h->routes[i].prefix, &out[n]);
    if (h->has_default) {
        if (n < max) view_of(&h->deflt, NULL, &out[n]);
        n++;
    }
    return n;
}

bool lhost_match(const struct lhost *h, const char *key, size_t len, struct route_view *out)
{
    const struct route *rt = route_match(h, key, len);
    if (!rt) return false;
    view_of(rt, rt == &h->deflt ? NULL : rt->prefix, out);
    return true;
}

void lhost_fences(const struct lhost *h, int i, const char **flush, const char **stats)
{
    static const char *const flushes[] = { "all", "deny", "pools" };
    static const char *const statses[] = { "all", "read", "deny" };
    *flush = i < h->npolicies ? flushes[h->policies[i].flush] : "all";
    *stats = i < h->npolicies ? statses[h->policies[i].stats] : "all";
}

size_t lhost_auth_users(const struct lhost *h, int i)
{
    return i < h->npolicies ? users_count(h->policies[i].users) : 0;
}

int lhost_pools(const struct lhost *h, struct pool ***pools)
{
    *pools = h->pools;
    return h->npools;
}

static int host_pools(struct resolver *rs, struct pool ***pools)
{
    struct lhost *h = (struct lhost *)rs;
    *pools = h->pools;
    return h->npools;
}

static void host_hold(struct resolver *rs) { ((struct lhost *)rs)->holds++; }
static void host_release(struct resolver *rs) { ((struct lhost *)rs)->holds--; }

static void host_conn_closed(struct resolver *rs, uint64_t conn_id)
{
    struct lhost *h = (struct lhost *)rs;
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->conns_ref);
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)conn_id);
    lua_pop(L, 1);
}

/* Who may use the listener: its users file decides (resolver.h).  The
 * password is neither kept nor logged.  A failure is logged once per
 * window (base/log.h) per listener and user; an unknown name is not
 * logged, as it may be a password typed in the wrong field. */
static enum auth_verdict host_auth(struct resolver *rs, const char *listener, const char *user,
                                   size_t ulen, const char *pass, size_t plen)
{
    struct lhost *h = (struct lhost *)rs;
    const struct listen_policy *p = policy_of(h, listener);
    if (!p || !p->users) return AUTH_NONE;
    if (!user) return AUTH_DENIED;
    char topic[USERS_NAME_MAX + 256];
    switch (users_check(p->users, user, ulen, pass, plen)) {
    case USERS_MATCH:
        return AUTH_OK;
    case USERS_WRONG_PASSWORD: /* a name from the users file: printable, no spaces */
        snprintf(topic, sizeof topic, "%s %.*s", p->label, (int)ulen, user);
        LOG_WARN_LIMIT(topic, "auth: listener %s: wrong password for user %.*s", p->label,
                       (int)ulen, user);
        break;
    case USERS_NO_SUCH_USER:
        LOG_WARN_LIMIT(p->label, "auth: listener %s: no such user (the name is not logged: it "
                       "may be a password typed in the wrong field)", p->label);
        break;
    case USERS_FAILED: /* the name only if it is in the file (see above) */
        if (!users_has(p->users, user, ulen)) ulen = 0;
        snprintf(topic, sizeof topic, "%s %.*s", p->label, (int)ulen, user);
        LOG_ERROR_LIMIT(topic, "auth: listener %s: could not check a password (user %.*s): out "
                        "of memory, or crypt(3) refused the user's hash", p->label, (int)ulen, user);
        break;
    }
    return AUTH_DENIED;
}

static const struct resolver_ops lhost_resolver_ops = {
    .route = host_route,
    .pools = host_pools,
    .keyless = host_keyless,
    .hold = host_hold,
    .release = host_release,
    .conn_closed = host_conn_closed,
    .auth = host_auth,
};
