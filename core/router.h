/* router.h -- what a parsed request turns into.
 *
 * router_dispatch answers the gateway's own commands (version, verbosity,
 * stats), resolves every key to a target through the Lua host's routes,
 * runs embedded-store requests on the spot, and batches the keys bound for
 * each backend server into one be_op per server.  flush_all fans out to
 * every server of every pool.  When it returns the request is either done
 * or waiting on backend ops.
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

struct worker;
struct client;
struct gw_req;

void router_dispatch(struct worker *w, struct client *c, struct gw_req *r);
/* The client is gone: drop its per-connection Lua state. */
void router_conn_closed(struct worker *w, struct client *c);

#endif
