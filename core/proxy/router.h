/* router.h -- where each key of a request goes.
 *
 * router_dispatch resolves every key of a keyed command through the
 * thread's current config (rt->resolver, resolver.h), answers keys bound
 * for an embedded store on the spot (internal.h), and batches the keys
 * bound for each backend server into one be_op per server.  router_flush
 * fans flush_all out to every server of the pools the config allows.  When it returns
 * the request is either done or waiting on backend ops (or on routes
 * suspended in backend calls of their own).
 *
 * A key whose pool finds no server up (failover found none) fails with
 * SERVER_ERROR and is logged, rate limited per pool.
 *
 * The router only routes: the gateway's own commands (version, verbosity,
 * stats) are answered by the front (front/admin.h), and the wire format
 * toward a server is the backend's codec.
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdint.h>

struct gw_req;
struct pool;

/* Route r (a keyed command) with the thread's current config, which r
 * holds until it is freed.  r->pending must be 0. */
void router_dispatch(struct gw_req *r);
/* flush_all r on pools[0..n) of the thread's current config (n < 0: every
 * pool it made; resolver_keyless says which).  r->pending must be 0. */
void router_flush(struct gw_req *r, struct pool **pools, int n);
/* Send key k of r to pool p: answered at once by an embedded store, else
 * queued on the server the pool picks (or failed, with SERVER_ERROR).  For
 * a retrieval only key k is asked; otherwise r is a single-key request. */
void router_send(struct pool *p, struct gw_req *r, uint32_t k);

#endif
