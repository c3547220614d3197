/* lhost.h -- the Lua host: one Lua 5.4 state per worker running the config.
 *
 * lhost_new creates a state with a counting allocator, loads the Lua library
 * in lua/ (lua/gateway/prelude.lua builds the sandbox and the config-time API
 * on top of the primitives registered here), and runs the config file in
 * that sandbox.  Config errors come back as "file:line: message".
 *
 * With w == NULL (a config check, or the main thread's validation before
 * the workers start) pools are validated but open no connections.
 *
 * At request time lhost_route resolves one key of a request: the longest
 * matching prefix route wins; a pool target is returned directly, a function
 * target runs as a task: a coroutine (reused from a pool of threads) given a
 * `memcache.request` userdata, under an instruction budget.  The function
 * may return a pool (forward there), or a response it made or got from a
 * backend call, and it may suspend in backend calls (pool:get, ...,
 * memcache.wait) while the worker serves others; see ltask.c.  A Lua error
 * is logged with its traceback and answers SERVER_ERROR for that key only;
 * the state stays usable.
 *
 * Ownership: the host owns its pools; lhost_free closes the state and frees
 * them.  Strings in lhost_config live as long as the host.
 */
#ifndef GW_LHOST_H
#define GW_LHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;
struct client;
struct gw_req;
struct pool;
struct lhost;

struct lhost_config {
    char **listen;             /* addresses from gateway.listen */
    char **listen_names;       /* optional names (NULL entries) */
    int nlisten;
    int threads;               /* 0: not set */
    size_t max_value;          /* 0: not set */
    size_t max_line;
    uint32_t max_connections;
    uint64_t instruction_limit;
    uint32_t max_pending;      /* 0: not set */
    size_t max_output;
    double shutdown_timeout;   /* < 0: not set */
    bool binary_keys;
    char **files;              /* the config file and every Lua file it required */
    int nfiles;
};

struct lhost *lhost_new(struct worker *w, const char *config_path, const char *lua_dir,
                        char *err, size_t errlen);
void lhost_free(struct lhost *h);
const struct lhost_config *lhost_config(const struct lhost *h);

enum route_result {
    ROUTE_POOL,      /* forward key k to *pool */
    ROUTE_ANSWERED,  /* the route answered key k (a response it returned) */
    ROUTE_PENDING,   /* the route is suspended; it holds a pending count and
                      * a reference on r, and finishes key k itself later */
    ROUTE_FAILED,    /* key k failed (req_fail_key: SERVER_ERROR <why>) */
};

/* Route key k of r. */
enum route_result lhost_route(struct lhost *h, struct gw_req *r, uint32_t k, struct pool **pool);

/* Every pool the config made (for flush_all).  Returns the count. */
int lhost_pools(struct lhost *h, struct pool ***pools);

/* Bytes the Lua state holds. */
size_t lhost_memory(const struct lhost *h);

/* Drop the per-connection table of a closed client (in whichever config
 * made it). */
void lhost_conn_closed(struct client *c);

/* A config lives while requests it routed are unfinished: each holds it.
 * After a reload the worker retires the old config and frees it once it is
 * idle: no holds and no Lua task running or suspended. */
void lhost_hold(struct lhost *h);
void lhost_release(struct lhost *h);
bool lhost_idle(const struct lhost *h);

#endif
