/* lhost.h -- the Lua host: one Lua 5.4 state per worker running the config,
 * and the resolver (proxy/resolver.h) that routes with it.
 *
 * lhost_new creates a state with a counting allocator, loads the Lua library
 * in lua/ (lua/gateway/prelude.lua builds the sandbox and the config-time API
 * on top of the primitives registered here), and runs the config in that
 * sandbox.  Config errors come back as "file:line: message".
 *
 * The config is read once per load: a host made with `from` NULL reads the
 * config file and the Lua files it requires from disk and keeps their text
 * (lhost_config's files); a host made `from` another one runs exactly that
 * text.  So the main thread validates what it read, and every worker runs
 * the same bytes, even if a file is saved meanwhile.
 *
 * With rt == NULL (a config check, or the main thread's validation) pools
 * are validated but open no connections.
 *
 * As a resolver: the longest matching prefix route wins; a pool target is
 * returned directly, a function target runs as a task: a coroutine (reused
 * from a pool of threads) given a `memcache.request` userdata, under an
 * instruction budget.  The function may return a pool (forward there), or
 * a response it made or got from a backend call, and it may suspend in
 * backend calls (pool:get, ..., memcache.wait) while the worker serves
 * others; see ltask.c.  A Lua error is logged with its traceback and
 * answers SERVER_ERROR for that key only; the state stays usable.  Route
 * failures (a Lua error, a limit, a timeout, no pool or response, no route
 * at all) are logged rate limited (base/log.h) per route and error, each
 * line naming the route (prefix or "default"), the key and the client.
 * Per-connection tables (req.conn) are kept by connection id and dropped
 * when the resolver hears the connection closed.
 *
 * Authentication: a listener with gateway.listen's auth has the users file
 * the config named (base/users.h), read once per load like the config's
 * Lua files (so it is one of lhost_config's files, watched, and a worker
 * checks against the bytes the main thread validated); a bad users file
 * fails the load with its path:line.  The resolver's auth answers by the
 * listener's label (resolver.h).
 *
 * Ownership: the host owns its pools and users tables; lhost_free closes
 * the state and frees them.  Strings in lhost_config live as long as the host.
 */
#ifndef GW_LHOST_H
#define GW_LHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "rt/settings.h"

struct rt;
struct lhost;
struct resolver;
struct gw_tls;

/* gateway.admin's tls and token, as the admin listener takes them (it is
 * served by libmicrohttpd, which builds its own TLS from the PEM texts).
 * The certificate and key were checked when the config loaded. */
struct lhost_admin {
    bool tls;
    char *cert, *key, *ca;     /* PEM texts, NUL-terminated (ca: NULL for none) */
    char *cert_path, *key_path, *ca_path;  /* where they were read, for messages */
    int verify;                /* enum tls_verify (base/conn.h) */
    int min_version;           /* 12 or 13 */
    char *token;               /* the bearer token every request must carry, or NULL */
};

struct lhost_config {
    char **listen;             /* addresses from gateway.listen */
    char **listen_names;       /* optional names (NULL entries) */
    char **listen_auth;        /* gateway.listen's auth: each one's users file (its
                                * path, resolved as the config read it), or NULL */
    struct gw_tls **listen_tls;/* gateway.listen's tls (a reference each), or NULL:
                                * built by the host that read the files, and
                                * shared by the hosts made from its texts */
    int nlisten;
    char *admin;               /* gateway.admin's address, or NULL */
    struct lhost_admin *admin_opts;/* its tls and token (NULL: neither) */
    struct gw_settings settings;   /* the defaults, and what gateway.settings set */
    /* The config file and every Lua file it required, with their text and
     * what stat(2) said just before the text was read (st_nlink 0: taken
     * from another host's texts).  A change after that stamp is a change
     * the next reload must see, even one made during this load. */
    char **files;
    char **texts;
    size_t *lens;
    struct stat *stamps;
    int nfiles;
};

/* A host for the config at config_path, read from disk (from NULL) or from
 * the texts another host read (from its lhost_config).  NULL on error, with
 * err filled.  It runs the config's top level (bounded by CONFIG_TIMEOUT)
 * and may be made on any thread; with rt its pools are bound at once. */
struct lhost *lhost_new(struct rt *rt, const char *config_path, const char *lua_dir,
                        const struct lhost_config *from, char *err, size_t errlen);
/* Bind a host made without a runtime to rt (on rt's thread): its pools
 * take their backends there.  Runs no Lua, so a worker's loop is never
 * held by a config's top level.  GW_NOMEM when out of memory (the host
 * is then only fit for lhost_free, on rt's thread). */
int lhost_bind(struct lhost *h, struct rt *rt);
void lhost_free(struct lhost *h);
/* The thread is exiting: from now on a backend call that finishes wakes no
 * task (lhost_free does this first too). */
void lhost_closing(struct lhost *h);
const struct lhost_config *lhost_config(const struct lhost *h);
/* Free gateway.admin's options (NULL: nothing). */
void lhost_admin_free(struct lhost_admin *a);
struct resolver *lhost_resolver(struct lhost *h);

/* Bytes the Lua state holds. */
size_t lhost_memory(const struct lhost *h);

/* For the operator (the admin listener, on the host's thread): a route as
 * the config wrote it.  prefix NULL: the default. */
struct route_view {
    const char *prefix;
    bool function;             /* a route function (its pools are unknown) */
    struct pool *pool;         /* else its pool */
};
/* The routes, longest prefix first, then the default; up to max of them.
 * Returns how many there are. */
int lhost_routes(const struct lhost *h, struct route_view *out, int max);
/* The route key would take (without running a function); false if none. */
bool lhost_match(const struct lhost *h, const char *key, size_t len, struct route_view *out);
/* Listener i's fences, as gateway.listen's flush and stats words ("all",
 * "deny", "pools", "read"). */
void lhost_fences(const struct lhost *h, int i, const char **flush, const char **stats);
/* How many users listener i's users file holds (0 when it asks for no
 * authentication: cfg.listen_auth[i] NULL). */
size_t lhost_auth_users(const struct lhost *h, int i);
/* The pools the config made (count returned). */
int lhost_pools(const struct lhost *h, struct pool ***pools);

/* A config lives while requests it routed are unfinished: each holds it
 * (through the resolver).  After a reload the worker retires the old
 * config and frees it once it is idle: no holds and no Lua task running or
 * suspended. */
bool lhost_idle(const struct lhost *h);

#endif
