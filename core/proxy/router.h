/* router.h -- what a parsed request turns into.
 *
 * router_dispatch answers the gateway's own commands (version, verbosity,
 * stats), resolves every key to a target through the Lua host's routes,
 * runs embedded-store requests on the spot, and batches the keys bound for
 * each backend server into one be_op per server.  flush_all fans out to
 * every server of every pool.  When it returns the request is either done
 * or waiting on backend ops (or on route functions suspended in backend
 * calls of their own, see lhost.h).
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdint.h>

struct worker;
struct client;
struct gw_req;

struct pool;

void router_dispatch(struct worker *w, struct gw_req *r);
/* Send key k of r to pool p: answered at once by an embedded store, else
 * queued on the server the pool picks (or failed, with SERVER_ERROR).  For
 * a retrieval only key k is asked; otherwise r is a single-key request. */
void router_send(struct worker *w, struct pool *p, struct gw_req *r, uint32_t k);
/* The client is gone: drop its per-connection Lua state. */
void router_conn_closed(struct worker *w, struct client *c);

#endif
