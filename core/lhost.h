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
 * target runs in a coroutine (reused from a pool of threads) with a
 * `memcache.request` userdata, under an instruction budget.  A Lua error is
 * logged with its traceback and returned as a short reason for
 * SERVER_ERROR; the state stays usable.
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
    bool binary_keys;
};

struct lhost *lhost_new(struct worker *w, const char *config_path, const char *lua_dir,
                        char *err, size_t errlen);
void lhost_free(struct lhost *h);
const struct lhost_config *lhost_config(const struct lhost *h);

/* The pool for key k of r, or NULL with *err set to a short reason (valid
 * until the request ends). */
struct pool *lhost_route(struct lhost *h, struct client *c, struct gw_req *r, uint32_t k,
                         const char **err);

/* Every pool the config made (for flush_all).  Returns the count. */
int lhost_pools(struct lhost *h, struct pool ***pools);

/* Bytes the Lua state holds. */
size_t lhost_memory(const struct lhost *h);

/* Drop the per-connection table of a closed client. */
void lhost_conn_closed(struct lhost *h, struct client *c);

#endif
