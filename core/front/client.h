/* client.h -- one client connection: read, parse, route, reply in order.
 *
 * Requests are parsed straight out of the read buffer (many per read) and
 * dispatched at once; their replies are written in request order, many per
 * writev, when the worker flushes.  Bad input is answered and the
 * connection goes on; only `quit`, an overlong line, or the peer closing
 * end it.  Reading pauses while too many requests or reply bytes are
 * pending, so a client that never reads cannot grow memory without bound.
 *
 * Ownership: the client owns its requests until their replies are written;
 * when it closes, requests still at a backend are orphaned (req->client =
 * NULL) and freed when their backends answer.
 */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "codec/proto.h"

struct worker;
struct listener;
struct gw_io;
struct gw_req;
struct lhost;

struct client {
    struct worker *w;
    const struct listener *listener;
    int fd;
    struct gw_io *io;
    struct gw_rbuf in;
    struct mc_parser parser;
    size_t swallow;              /* data bytes of a refused value still to skip */
    struct gw_req *head, *tail;  /* requests whose replies are not yet queued */
    struct gw_req *whead, *wtail;/* replies queued in out, not yet written */
    uint32_t pending;            /* requests from head to tail */
    struct gw_oq out;
    bool dirty;
    bool closing;                /* close once every queued reply is written */
    bool paused;                 /* reading paused for back-pressure */
    int conn_ref;                /* Lua per-connection table, or LUA_NOREF ... */
    struct lhost *conn_host;     /* ... in this config's state */
    struct client *next_dirty;
    struct client *prev, *next;  /* the worker's list of clients */
};

/* Take over an accepted socket. */
void client_new(struct worker *w, const struct listener *l, int fd);
/* A request finished: its reply can be written once it reaches the head. */
void client_request_done(struct client *c, struct gw_req *r);
/* Queue finished replies in order and write (called by the worker flush). */
void client_flush(struct client *c);
void client_close(struct client *c);

#endif
