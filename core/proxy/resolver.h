/* resolver.h -- what the router asks of a config: where a key goes.
 *
 * A resolver is one loaded config on one thread.  The script layer
 * implements it (script/lhost.c, with Lua routes); the router only calls
 * these operations, and the server layer swaps the thread's current
 * resolver (rt->resolver) on reload.  Tests implement it with a table.
 *
 *   route        resolve key k of request r.  ROUTE_POOL: send it to
 *                *pool; ROUTE_ANSWERED: the route answered key k itself;
 *                ROUTE_PENDING: the route is suspended (it holds a pending
 *                count and a reference on r, and finishes key k later with
 *                router_send or an answer, then req_op_done); ROUTE_FAILED:
 *                key k failed (req_fail_key was called).
 *   pools        every pool the config made, for commands that reach them
 *                all (flush_all).  Returns the count.
 *   keyless      may r, a command with no key (flush_all, stats, stats reset,
 *                verbosity), run?  The config decides per listener (r->listener)
 *                and may hand the request to a hook of its own.
 *                KEYLESS_ANSWERED: no, or the hook answered: r's reply is set;
 *                KEYLESS_ALLOWED: yes; for flush_all *pools[0..*npools) are the
 *                pools to flush (*npools < 0: every pool the config made).
 *                Never waits.
 *   hold/release a request routed by this config holds it until the
 *                request is freed, so the config outlives its requests.
 *   conn_closed  the client connection conn_id closed: forget what the
 *                config kept for it (req.conn).
 *   auth         may a client of listener `listener` (its label, as
 *                r->listener holds) go on without authenticating (user
 *                NULL: AUTH_NONE when the listener needs no auth, else
 *                AUTH_DENIED), or are user/pass good (AUTH_OK /
 *                AUTH_DENIED)?  A user given to a listener that needs no
 *                auth: AUTH_NONE (the codec answers as a server without
 *                SASL would).  user and pass are bytes with lengths, not
 *                NUL-terminated.  The password is never kept or logged; a
 *                wrong one is logged (warn) with the listener and the
 *                user's name, an unknown name without that name (it may
 *                be a password typed in the wrong field), rate limited per
 *                listener; the client's address is the caller's to log.
 *                Never waits, but a check costs one password hash on the
 *                calling thread (base/users.h).
 *                Optional: a resolver without it (ops->auth NULL), like no
 *                resolver at all, asks no client to authenticate
 *                (resolver_auth answers AUTH_NONE).
 */
#ifndef GW_RESOLVER_H
#define GW_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

struct gw_req;
struct pool;
struct resolver;

enum route_result {
    ROUTE_POOL,
    ROUTE_ANSWERED,
    ROUTE_PENDING,
    ROUTE_FAILED,
};

enum keyless_verdict { KEYLESS_ALLOWED, KEYLESS_ANSWERED };

enum auth_verdict { AUTH_NONE, AUTH_OK, AUTH_DENIED };

struct resolver_ops {
    enum route_result (*route)(struct resolver *rs, struct gw_req *r, uint32_t k,
                               struct pool **pool);
    int (*pools)(struct resolver *rs, struct pool ***pools);
    enum keyless_verdict (*keyless)(struct resolver *rs, struct gw_req *r, struct pool ***pools,
                                    int *npools);
    void (*hold)(struct resolver *rs);
    void (*release)(struct resolver *rs);
    void (*conn_closed)(struct resolver *rs, uint64_t conn_id);
    enum auth_verdict (*auth)(struct resolver *rs, const char *listener, const char *user,
                              size_t ulen, const char *pass, size_t plen);
};

/* Embed as the implementation's first member. */
struct resolver {
    const struct resolver_ops *ops;
};

static inline enum route_result resolver_route(struct resolver *rs, struct gw_req *r, uint32_t k,
                                               struct pool **pool)
{
    return rs->ops->route(rs, r, k, pool);
}
static inline int resolver_pools(struct resolver *rs, struct pool ***pools)
{
    return rs->ops->pools(rs, pools);
}
static inline enum keyless_verdict resolver_keyless(struct resolver *rs, struct gw_req *r,
                                                    struct pool ***pools, int *npools)
{
    return rs->ops->keyless(rs, r, pools, npools);
}
static inline void resolver_hold(struct resolver *rs) { rs->ops->hold(rs); }
static inline void resolver_release(struct resolver *rs) { rs->ops->release(rs); }
static inline void resolver_conn_closed(struct resolver *rs, uint64_t conn_id)
{
    if (rs) rs->ops->conn_closed(rs, conn_id);
}
static inline enum auth_verdict resolver_auth(struct resolver *rs, const char *listener,
                                              const char *user, size_t ulen, const char *pass,
                                              size_t plen)
{
    if (!rs || !rs->ops->auth) return AUTH_NONE;
    return rs->ops->auth(rs, listener, user, ulen, pass, plen);
}

#endif
