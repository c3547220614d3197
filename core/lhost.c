/* lhost.c -- see lhost.h.
 *
 * Bindings follow one pattern: userdata with a named metatable
 * ("memcache.pool", "memcache.request"), methods in luaL_Reg tables, and
 * luaL_checkudata on every self.  Misuse raises; the primitives in the
 * `core` table are called only by lua/gateway/prelude.lua, which validates
 * user input first and turns errors into config file:line messages.
 */
#include "lhost.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "hash.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "req.h"
#include "worker.h"

#define POOL_MT "memcache.pool"
#define REQUEST_MT "memcache.request"
#define DEFAULT_INSTRUCTION_LIMIT 1000000

struct route {
    char *prefix;
    size_t len;
    struct pool *pool;   /* a pool target ... */
    int fref;            /* ... or a function (registry ref) */
};

/* Small blocks are recycled per size class, so the garbage a request
 * makes (its request object, strings) costs no malloc in steady state. */
#define SC_STEP 16
#define SC_MAX 256
#define SC_COUNT (SC_MAX / SC_STEP)
#define SC_KEEP 4096

struct lhost {
    lua_State *L;
    struct worker *w;
    size_t mem;
    void *sc_free[SC_COUNT];
    uint32_t sc_nfree[SC_COUNT];

    struct route *routes;        /* sorted longest prefix first */
    int nroutes;
    struct route deflt;
    bool has_default;

    struct pool **pools;
    int npools;
    int ninternal;

    lua_State **idle;            /* coroutines ready for reuse */
    int nidle, idle_cap;
    int threads_ref;             /* registry table anchoring every coroutine */

    struct lhost_config cfg;
    int request_mt_ref;          /* the request metatable, for a fast lookup */
};

struct lpool { struct pool *p; };
struct lreq { struct gw_req *r; struct client *c; uint32_t k; };

static struct lhost *host_of(lua_State *L)
{
    return *(struct lhost **)lua_getextraspace(L);
}

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

/* Lua's allocator: counts the bytes the state holds (shown in stats). */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lhost *h = ud;
    if (!ptr) osize = 0; /* then osize is a type tag, not a size */
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
    if (h->w) __atomic_store_n(&h->w->stats.gw_lua_memory, h->mem, __ATOMIC_RELAXED);
    return np;
}

/* --- memcache.pool userdata --------------------------------------------- */

static int pool_tostring(lua_State *L)
{
    struct lpool *lp = luaL_checkudata(L, 1, POOL_MT);
    lua_pushfstring(L, "memcache.pool(%s)", lp->p->name);
    return 1;
}

static int pool_name(lua_State *L)
{
    struct lpool *lp = luaL_checkudata(L, 1, POOL_MT);
    lua_pushstring(L, lp->p->name);
    return 1;
}

static const luaL_Reg pool_methods[] = {
    { "name", pool_name },
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

/* core.pool{ name=, servers={ {addr=, weight=}... }, hash=, legacy=, timeout=,
 *            retry_timeout=, failover= } -- already validated by the prelude. */
static int core_pool(lua_State *L)
{
    struct lhost *h = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    struct pool_spec spec = { 0 };
    lua_getfield(L, 1, "name");
    spec.name = luaL_optstring(L, -1, "pool");
    lua_getfield(L, 1, "hash");
    if (hash_mode_parse(luaL_checkstring(L, -1), &spec.mode) != GW_OK)
        return luaL_error(L, "unknown hash '%s'", lua_tostring(L, -1));
    lua_getfield(L, 1, "legacy");
    spec.pymc_legacy_one = lua_toboolean(L, -1);
    lua_getfield(L, 1, "timeout");
    spec.timeout = luaL_checknumber(L, -1);
    lua_getfield(L, 1, "retry_timeout");
    spec.retry_timeout = luaL_checknumber(L, -1);
    lua_getfield(L, 1, "failover");
    const char *fo = luaL_checkstring(L, -1);
    spec.failover = !strcmp(fo, "rehash") ? FAILOVER_REHASH
                  : !strcmp(fo, "next")   ? FAILOVER_NEXT : FAILOVER_NONE;
    lua_getfield(L, 1, "servers");
    luaL_checktype(L, -1, LUA_TTABLE);
    int sidx = lua_gettop(L);
    lua_Integer n = luaL_len(L, sidx);
    if (n < 1 || n > 4096) return luaL_error(L, "a pool needs 1 to 4096 servers");
    spec.nservers = (uint32_t)n;
    spec.servers = lua_newuserdatauv(L, sizeof *spec.servers * (size_t)n, 0);
    spec.server_names = lua_newuserdatauv(L, sizeof *spec.server_names * (size_t)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, sidx, i);
        lua_getfield(L, -1, "addr");
        spec.server_names[i - 1] = luaL_checkstring(L, -1);
        lua_getfield(L, -2, "weight");
        spec.servers[i - 1].weight = (uint32_t)luaL_checkinteger(L, -1);
        lua_pop(L, 3);
    }
    char err[256];
    struct pool *p = pool_new(h->w, &spec, err, sizeof err);
    if (!p) return luaL_error(L, "%s", err);
    return push_pool(L, h, p);
}

/* core.internal(max_bytes) */
static int core_internal(lua_State *L)
{
    struct lhost *h = host_of(L);
    lua_Integer size = luaL_checkinteger(L, 1);
    char err[256];
    struct pool *p = pool_new_internal(h->w, h->ninternal++, (size_t)size, err, sizeof err);
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
    struct lpool *lp = luaL_testudata(L, -1, POOL_MT);
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

/* core.listen(addr, name_or_nil) */
static int core_listen(lua_State *L)
{
    struct lhost *h = host_of(L);
    const char *addr = luaL_checkstring(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    int n = h->cfg.nlisten + 1;
    char **a = realloc(h->cfg.listen, (size_t)n * sizeof *a);
    if (a) h->cfg.listen = a;
    char **nm = realloc(h->cfg.listen_names, (size_t)n * sizeof *nm);
    if (nm) h->cfg.listen_names = nm;
    if (!a || !nm) return luaL_error(L, "out of memory");
    h->cfg.listen[n - 1] = dupstr(L, addr);
    h->cfg.listen_names[n - 1] = name ? dupstr(L, name) : NULL;
    h->cfg.nlisten = n;
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
 *                instruction_limit= } (numbers; sizes already in bytes) */
static int core_settings(lua_State *L)
{
    struct lhost *h = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    h->cfg.threads = (int)opt_field(L, "threads", h->cfg.threads);
    h->cfg.max_value = (size_t)opt_field(L, "max_value_size", (lua_Integer)h->cfg.max_value);
    h->cfg.max_line = (size_t)opt_field(L, "max_line", (lua_Integer)h->cfg.max_line);
    h->cfg.max_connections =
        (uint32_t)opt_field(L, "max_connections", h->cfg.max_connections);
    h->cfg.instruction_limit =
        (uint64_t)opt_field(L, "instruction_limit", (lua_Integer)h->cfg.instruction_limit);
    lua_getfield(L, 1, "binary_keys");
    if (!lua_isnil(L, -1)) h->cfg.binary_keys = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return 0;
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
    lua_pushboolean(L, mc_key_valid(k, len));
    return 1;
}

static const luaL_Reg core_funcs[] = {
    { "pool", core_pool },
    { "internal", core_internal },
    { "route", core_route },
    { "listen", core_listen },
    { "settings", core_settings },
    { "log", core_log },
    { "valid_key", core_valid_key },
    { NULL, NULL },
};

/* --- memcache.request userdata ------------------------------------------ */

static struct lreq *check_req(lua_State *L)
{
    struct lreq *q = luaL_checkudata(L, 1, REQUEST_MT);
    if (!q->r) luaL_error(L, "request is finished (a req is valid only while its route runs)");
    return q;
}

static void push_conn_table(lua_State *L, struct lhost *h, struct client *c)
{
    if (!c) {
        lua_pushnil(L);
        return;
    }
    if (c->conn_ref == LUA_NOREF) {
        lua_newtable(L);
        c->conn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->conn_ref);
}

static int req_index(lua_State *L)
{
    struct lreq *q = check_req(L);
    size_t len;
    const char *f = luaL_checklstring(L, 2, &len);
    const struct gw_req *r = q->r;
    const struct mc_request *m = &r->mc;
    bool storage = mc_cmd_is_storage(m->cmd);
    if (!strcmp(f, "key")) {
        lua_pushlstring(L, r->keys[q->k].bkey, r->keys[q->k].bklen);
    } else if (!strcmp(f, "command")) {
        lua_pushstring(L, mc_cmd_name(m->cmd));
    } else if (!strcmp(f, "value")) {
        if (storage) lua_pushlstring(L, r->base + m->data_off, m->bytes);
        else lua_pushnil(L);
    } else if (!strcmp(f, "flags")) {
        if (storage) lua_pushinteger(L, m->flags);
        else lua_pushnil(L);
    } else if (!strcmp(f, "exptime")) {
        if (storage || m->cmd == MC_TOUCH || m->cmd == MC_GAT || m->cmd == MC_GATS)
            lua_pushinteger(L, m->exptime);
        else lua_pushnil(L);
    } else if (!strcmp(f, "cas")) {
        if (m->cmd == MC_CAS) lua_pushinteger(L, (lua_Integer)m->cas);
        else lua_pushnil(L);
    } else if (!strcmp(f, "delta")) {
        if (m->cmd == MC_INCR || m->cmd == MC_DECR) lua_pushinteger(L, (lua_Integer)m->delta);
        else lua_pushnil(L);
    } else if (!strcmp(f, "noreply")) {
        lua_pushboolean(L, m->noreply);
    } else if (!strcmp(f, "conn")) {
        push_conn_table(L, host_of(L), q->c);
    } else if (!strcmp(f, "listener")) {
        const struct listener *l = q->c ? q->c->listener : NULL;
        if (l) lua_pushstring(L, l->name ? l->name : l->addr);
        else lua_pushnil(L);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

static int req_newindex(lua_State *L)
{
    struct lreq *q = check_req(L);
    const char *f = luaL_checkstring(L, 2);
    struct gw_req *r = q->r;
    if (!strcmp(f, "key")) {
        size_t len;
        const char *k = luaL_checklstring(L, 3, &len);
        if (!mc_key_valid(k, len))
            return luaL_error(L, "req.key: invalid memcached key (1..250 bytes, no spaces or control characters)");
        char *p = req_alloc(r, len);
        if (!p) return luaL_error(L, "out of memory");
        memcpy(p, k, len);
        r->keys[q->k].bkey = p;
        r->keys[q->k].bklen = (uint16_t)len;
        return 0;
    }
    if (!strcmp(f, "exptime") && (mc_cmd_is_storage(r->mc.cmd) || r->mc.cmd == MC_TOUCH)) {
        r->mc.exptime = luaL_checkinteger(L, 3);
        return 0;
    }
    if (!strcmp(f, "flags") && mc_cmd_is_storage(r->mc.cmd)) {
        lua_Integer v = luaL_checkinteger(L, 3);
        luaL_argcheck(L, v >= 0 && v <= UINT32_MAX, 3, "flags must fit in 32 bits");
        r->mc.flags = (uint32_t)v;
        return 0;
    }
    return luaL_error(L, "req.%s cannot be set", f);
}

static int req_tostring(lua_State *L)
{
    struct lreq *q = luaL_checkudata(L, 1, REQUEST_MT);
    if (!q->r) lua_pushliteral(L, "memcache.request(finished)");
    else lua_pushfstring(L, "memcache.request(%s %s)", mc_cmd_name(q->r->mc.cmd),
                         lua_pushlstring(L, q->r->keys[q->k].bkey, q->r->keys[q->k].bklen));
    return 1;
}

static const luaL_Reg req_meta[] = {
    { "__index", req_index },
    { "__newindex", req_newindex },
    { "__tostring", req_tostring },
    { NULL, NULL },
};

/* --- state set-up -------------------------------------------------------- */

static void register_types(lua_State *L)
{
    luaL_newmetatable(L, POOL_MT);
    luaL_setfuncs(L, pool_meta, 0);
    luaL_newlibtable(L, pool_methods);
    luaL_setfuncs(L, pool_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, REQUEST_MT);
    luaL_setfuncs(L, req_meta, 0);
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

/* Run lua/gateway/prelude.lua's boot(core, config_path, lua_dir). */
static int boot(struct lhost *h, const char *config_path, const char *lua_dir, char *err,
                size_t errlen)
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
    lua_pushstring(L, config_path);
    lua_pushstring(L, lua_dir);
    lua_pushboolean(L, h->w != NULL);
    if (lua_pcall(L, 4, 0, 1) != LUA_OK) {
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

struct lhost *lhost_new(struct worker *w, const char *config_path, const char *lua_dir,
                        char *err, size_t errlen)
{
    struct lhost *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->w = w;
    h->deflt.fref = LUA_NOREF;
    h->cfg.instruction_limit = DEFAULT_INSTRUCTION_LIMIT;
    h->L = lua_newstate(counting_alloc, h);
    if (!h->L) {
        free(h);
        snprintf(err, errlen, "cannot create a Lua state");
        return NULL;
    }
    *(struct lhost **)lua_getextraspace(h->L) = h;
    luaL_openlibs(h->L);
    register_types(h->L);
    luaL_getmetatable(h->L, REQUEST_MT);
    h->request_mt_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    lua_newtable(h->L);
    h->threads_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    if (boot(h, config_path, lua_dir, err, errlen) != GW_OK) {
        lhost_free(h);
        return NULL;
    }
    return h;
}

void lhost_free(struct lhost *h)
{
    if (!h) return;
    routes_clear(h);
    lua_close(h->L);
    blocks_free(h);
    for (int i = 0; i < h->npools; i++) pool_free(h->pools[i]);
    free(h->pools);
    free(h->idle);
    for (int i = 0; i < h->cfg.nlisten; i++) {
        free(h->cfg.listen[i]);
        free(h->cfg.listen_names[i]);
    }
    free(h->cfg.listen);
    free(h->cfg.listen_names);
    free(h);
}

const struct lhost_config *lhost_config(const struct lhost *h) { return &h->cfg; }
size_t lhost_memory(const struct lhost *h) { return h->mem; }

int lhost_pools(struct lhost *h, struct pool ***pools)
{
    *pools = h->pools;
    return h->npools;
}

void lhost_conn_closed(struct lhost *h, struct client *c)
{
    if (c->conn_ref != LUA_NOREF) luaL_unref(h->L, LUA_REGISTRYINDEX, c->conn_ref);
    c->conn_ref = LUA_NOREF;
}

/* --- request time ------------------------------------------------------- */

static const struct route *route_match(const struct lhost *h, const char *key, size_t len)
{
    for (int i = 0; i < h->nroutes; i++) {
        const struct route *rt = &h->routes[i];
        if (rt->len <= len && memcmp(rt->prefix, key, rt->len) == 0) return rt;
    }
    return h->has_default ? &h->deflt : NULL;
}

static lua_State *thread_get(struct lhost *h)
{
    if (h->nidle > 0) return h->idle[--h->nidle];
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->threads_ref);
    lua_State *co = lua_newthread(L);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return co;
}

static void thread_put(struct lhost *h, lua_State *co)
{
    if (h->nidle == h->idle_cap) {
        int cap = h->idle_cap ? 2 * h->idle_cap : 8;
        lua_State **n = realloc(h->idle, (size_t)cap * sizeof *n);
        if (!n) return; /* the thread stays anchored; it is just not reused */
        h->idle = n;
        h->idle_cap = cap;
    }
    h->idle[h->nidle++] = co;
}

/* A coroutine that ended in an error is not reused (a hook that raised
 * leaves it unable to run hooks again): unanchor it for the collector. */
static void thread_drop(struct lhost *h, lua_State *co)
{
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->threads_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    luaL_error(L, "instruction budget exceeded");
}

/* Log a route error with its traceback; keep a short reason. */
static const char *route_error(struct lhost *h, lua_State *co, struct gw_req *r)
{
    const char *msg = lua_tostring(co, -1);
    if (!msg) msg = "error object is not a string";
    luaL_traceback(h->L, co, msg, 0);
    LOG_ERROR("route error: %s", lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    STAT_INC(&h->w->stats, gw_lua_errors);
    size_t n = strcspn(msg, "\r\n");
    if (n > 160) n = 160;
    char *p = req_alloc(r, n + 16);
    if (!p) return "lua error";
    snprintf(p, n + 16, "lua error: %.*s", (int)n, msg);
    return p;
}

struct pool *lhost_route(struct lhost *h, struct client *c, struct gw_req *r, uint32_t k,
                         const char **err)
{
    const struct gw_key *key = &r->keys[k];
    const struct route *rt = route_match(h, key->ckey, key->cklen);
    if (!rt) {
        *err = "no route for key";
        return NULL;
    }
    if (rt->pool) return rt->pool;

    STAT_INC(&h->w->stats, gw_route_calls);
    lua_State *co = thread_get(h);
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->fref);
    struct lreq *q = lua_newuserdatauv(co, sizeof *q, 0);
    q->r = r;
    q->c = c;
    q->k = k;
    lua_rawgeti(co, LUA_REGISTRYINDEX, h->request_mt_ref);
    lua_setmetatable(co, -2);
    if (h->cfg.instruction_limit)
        lua_sethook(co, budget_hook, LUA_MASKCOUNT, (int)h->cfg.instruction_limit);
    int nres = 0;
    int st = lua_resume(co, h->L, 1, &nres);
    q->r = NULL;
    if (st == LUA_OK) {
        struct lpool *lp = nres > 0 ? luaL_testudata(co, -nres, POOL_MT) : NULL;
        lua_settop(co, 0);
        thread_put(h, co);
        if (!lp) *err = "route returned no pool";
        return lp ? lp->p : NULL;
    }
    if (st == LUA_YIELD) {
        lua_pushliteral(co, "route yielded outside a backend call");
        st = LUA_ERRRUN;
    }
    *err = route_error(h, co, r);
    thread_drop(h, co);
    return NULL;
}
