/* lhost_priv.h -- what lhost.c (the state and the config-time API) and
 * ltask.c (request-time Lua: tasks, backend calls, responses, fan-out)
 * share.  Nothing outside those two files includes it.
 *
 * Tasks.  Every piece of request-time Lua runs in a task: a coroutine
 * from the host's pool of threads plus this bookkeeping.  A route task
 * runs a route function for one key of a client request; a sub task runs
 * one function of a memcache.wait; a spawned task runs in the background.
 * A task is suspended in at most one thing at a time: a backend call (a
 * `call`, a request the host made, with client NULL) or a wait group.
 * Each coroutine's extra space points at its task, so a C function finds
 * the task that called it in O(1); the main thread's points at main_task
 * (config time).
 */
#ifndef GW_LHOST_PRIV_H
#define GW_LHOST_PRIV_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/net.h"
#include "lhost.h"
#include "proxy/resolver.h"
#include "rt/settings.h"

#define POOL_MT "memcache.pool"
#define REQUEST_MT "memcache.request"
#define RESPONSE_MT "memcache.response"

/* The gateway's userdata types.  Each metatable is made once per state and
 * the host keeps its address (lhost_note_type), so a type check is one
 * pointer comparison, not luaL_checkudata's registry lookup by name: a
 * route call makes several. */
enum ltype { LT_POOL, LT_REQUEST, LT_RESPONSE, LT_COUNT };

enum task_kind { TASK_MAIN, TASK_ROUTE, TASK_SUB, TASK_SPAWN };

struct group;
struct gw_req;
struct gw_timer;
struct task;
struct users;

/* What one route call (one key of a request) may spend, with every task it
 * starts (memcache.wait's, memcache.spawn's, theirs): instructions, time
 * and tasks.  Lua code, the pattern matcher and task starts draw on it;
 * past any limit it expires, the task running raises, and every task of it
 * that is waiting is ended when it would resume.  A timer at the deadline
 * answers a request whose route is still waiting.  The config's top level
 * has one too (the host's config_quota: time only). */
struct quota {
    struct lhost *h;
    struct quota *next;         /* the host's free list */
    struct quota *all_next;     /* every quota the host made (for teardown) */
    uint32_t refs;              /* its live tasks */
    int64_t instructions;       /* left; INT64_MAX: no limit */
    double deadline;            /* monotonic seconds; 0: none */
    uint32_t started;           /* tasks started under it */
    bool expired;               /* past a limit: its tasks end */
    const char *why;            /* ... and the message they end with */
    const char *timeout_why;    /* the message past the deadline */
    struct task *route;         /* its route task, while a request waits on it */
    struct gw_timer *timer;     /* at the deadline, while a task waits */
    const char *route_name;     /* the route's prefix or "default" (the host's), for
                                 * the log; NULL: the keyless hook */
    struct gw_peer peer;        /* the client of the request it routes, which its
                                 * backend calls carry (for the log) */
};

struct task {
    struct lhost *h;            /* first: what host_of() reads */
    enum task_kind kind;
    struct quota *q;            /* what it draws on */
    lua_State *co;
    struct task *prev, *next;   /* the host's live tasks, or its free list */
    bool suspended;             /* yielded in a call or a wait */
    struct gw_req *call;        /* the backend call it waits on */
    struct group *waiting;      /* the wait group it waits on */

    /* TASK_ROUTE */
    struct gw_req *req;
    uint32_t k;
    bool async;                 /* it was suspended ... */
    bool holds_req;             /* ... and the request waits on it (a pending op, a ref) */
    struct lreq *lreq;
    enum route_result outcome;
    struct pool *pool;

    /* TASK_SUB */
    struct group *group;
    int index;
};

/* What a listener lets its clients do with the commands that have no key
 * (gateway.listen's flush = and stats =). */
enum flush_policy { FLUSH_ALL, FLUSH_DENY, FLUSH_POOLS };
enum stats_policy { STATS_ALL, STATS_READ, STATS_DENY };

struct listen_policy {
    char *label;                 /* the listener's name, or its address */
    enum flush_policy flush;
    struct pool **pools;         /* FLUSH_POOLS: the only pools flush_all reaches */
    int npools;
    enum stats_policy stats;
    struct users *users;         /* gateway.listen's auth: who may log in (owned); NULL: no auth */
};

struct route {
    char *prefix;
    size_t len;
    struct pool *pool;   /* a pool target ... */
    int fref;            /* ... or a function (registry ref) */
    struct route_stats *stats;  /* the worker's counters for it, once bound */
};

/* Small blocks are recycled per size class, so the garbage a request
 * makes (its request object, strings) costs no malloc in steady state. */
#define SC_STEP 16
#define SC_MAX 256
#define SC_COUNT (SC_MAX / SC_STEP)

struct lhost {
    struct resolver res;         /* first: the router sees the host as this */
    lua_State *L;
    struct rt *rt;               /* NULL: a check (pools open nothing) */
    size_t mem;
    void *sc_free[SC_COUNT];
    uint32_t sc_nfree[SC_COUNT];

    struct route *routes;        /* sorted longest prefix first */
    int nroutes;
    struct route deflt;
    bool has_default;
    int keyless_ref;             /* memcache.keyless's hook, or LUA_NOREF */

    struct listen_policy *policies;
    int npolicies;
    const struct lhost_config *from; /* while booting from another host's texts */

    struct pool **pools;
    int npools;
    int ninternal;

    lua_State **idle;            /* coroutines ready for reuse */
    int nidle, idle_cap;
    int threads_ref;             /* registry table anchoring every coroutine */

    struct task main_task;       /* config time */
    struct quota config_quota;   /* the config's top level */
    struct quota *free_quotas;
    struct quota *all_quotas;
    int in_lua;                  /* > 0 while Lua code runs: memory may then be refused */
    struct task *live;           /* tasks running or suspended */
    struct task *free_tasks;
    struct group *free_groups;
    struct group *all_groups;
    bool closing;                /* lhost_free is tearing down: resume nothing */
    uint32_t holds;              /* unfinished requests it routed or made */

    struct lhost_config cfg;
    int request_mt_ref;          /* the request metatable, for a fast lookup */
    int response_mt_ref;         /* the response metatable, likewise */
    const void *mt[LT_COUNT];    /* each userdata type's metatable (ltype_test) */
    int conns_ref;               /* registry table: connection id -> req.conn table */
};

struct lpool { struct pool *p; };

static inline struct task *task_of(lua_State *L)
{
    return *(struct task **)lua_getextraspace(L);
}

static inline struct lhost *host_of(lua_State *L)
{
    return task_of(L)->h;
}

/* The userdata at index i if it is of type t, else NULL. */
static inline void *ltype_test(lua_State *L, int i, enum ltype t)
{
    void *p = lua_touserdata(L, i);
    if (!p || !lua_getmetatable(L, i)) return NULL;
    const void *mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    return mt == host_of(L)->mt[t] ? p : NULL;
}

/* The same, raising luaL_checkudata's error when it is not. */
void *ltype_check(lua_State *L, int i, enum ltype t);
/* Record the metatable at the top of L's stack as type t's. */
void lhost_note_type(lua_State *L, enum ltype t);

/* Whether keys may hold control bytes, as the request parser decides: the
 * running setting at request time, the config's own when validating. */
static inline bool host_binary_keys(const struct lhost *h)
{
    return h->rt ? gw_settings.binary_keys : h->cfg.settings.binary_keys;
}

/* The metatable at the top of the stack answers getmetatable() with a
 * stand-in that only names the type ({ __name = name }): scripts can tell
 * a pool from a response, but cannot change the real methods or give them
 * a __gc (which nothing could bound). */
void protect_metatable(lua_State *L, const char *name);

/* A key a route may send to a server: what the request parser accepts.
 * Raises (as argument arg of fname, or naming fname if arg is 0) if not. */
void check_key(lua_State *L, const char *key, size_t len, int arg, const char *fname);

/* ltask.c */

/* Register the request-time types (request, response) and add the
 * backend-call methods to the pool metatable at the top of the stack. */
void ltask_register(lua_State *L);
/* Push a table of the request-time memcache.* functions (hit, miss, ...,
 * wait, spawn, crc32) for the prelude to merge into `memcache`. */
void ltask_push_api(lua_State *L);
/* Run the keyless hook for r (flush_all, stats, verbosity); pools/npools
 * hold what the listener allows and become what the hook chose (the
 * resolver's keyless). */
enum keyless_verdict ltask_keyless(struct lhost *h, struct gw_req *r, struct pool ***pools,
                                   int *npools);
/* Run route function fref for key k of r (the resolver's route); route
 * names it in the log (the prefix, or "default": a string the host keeps). */
enum route_result ltask_route(struct lhost *h, int fref, const char *route, struct gw_req *r,
                              uint32_t k, struct pool **pool);
/* At teardown: release what suspended tasks hold, and free every task. */
void ltask_free_all(struct lhost *h);
/* The hook that counts a quota's instructions and checks its deadline,
 * installed on L for q (config time: the main thread). */
void ltask_set_hook(lua_State *L, const struct quota *q);
/* lmatch's charge function: pattern-matching steps count as instructions. */
bool ltask_charge(lua_State *L, unsigned long steps);
/* Seconds, read now: on a worker its loop's clock (gw_loop_clock, the base
 * of every deadline), else the monotonic clock. */
double ltask_now(const struct lhost *h);

#endif
