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

#include "lhost.h"
#include "proxy/resolver.h"
#include "rt/settings.h"

#define POOL_MT "memcache.pool"
#define REQUEST_MT "memcache.request"
#define RESPONSE_MT "memcache.response"

enum task_kind { TASK_MAIN, TASK_ROUTE, TASK_SUB, TASK_SPAWN };

struct group;
struct gw_req;

struct task {
    struct lhost *h;            /* first: what host_of() reads */
    enum task_kind kind;
    lua_State *co;
    struct task *prev, *next;   /* the host's live tasks, or its free list */
    bool suspended;             /* yielded in a call or a wait */
    struct gw_req *call;        /* the backend call it waits on */
    struct group *waiting;      /* the wait group it waits on */

    /* TASK_ROUTE */
    struct gw_req *req;
    uint32_t k;
    bool async;                 /* it was suspended: the request waits on it */
    struct lreq *lreq;
    enum route_result outcome;
    struct pool *pool;

    /* TASK_SUB */
    struct group *group;
    int index;
};

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

    struct pool **pools;
    int npools;
    int ninternal;

    lua_State **idle;            /* coroutines ready for reuse */
    int nidle, idle_cap;
    int threads_ref;             /* registry table anchoring every coroutine */

    struct task main_task;       /* config time */
    struct task *live;           /* tasks running or suspended */
    struct task *free_tasks;
    struct group *free_groups;
    struct group *all_groups;
    bool closing;                /* lhost_free is tearing down: resume nothing */
    uint32_t holds;              /* unfinished requests it routed or made */

    struct lhost_config cfg;
    int request_mt_ref;          /* the request metatable, for a fast lookup */
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

/* Whether keys may hold control bytes, as the request parser decides: the
 * running setting at request time, the config's own when validating. */
static inline bool host_binary_keys(const struct lhost *h)
{
    return h->rt ? gw_settings.binary_keys : h->cfg.settings.binary_keys;
}

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
/* Run route function fref for key k of r (the resolver's route). */
enum route_result ltask_route(struct lhost *h, int fref, struct gw_req *r, uint32_t k,
                              struct pool **pool);
/* At teardown: release what suspended tasks hold, and free every task. */
void ltask_free_all(struct lhost *h);

#endif
