/* client.h -- one client connection: read, decode, dispatch, reply in order.
 *
 * Requests are decoded straight out of the read buffer (many per read) by
 * the connection's codec (codec.h) and dispatched at once; their replies
 * are written in request order, many per writev, when the thread flushes
 * (the rt flush queue).  Bad input is answered and the connection goes on;
 * only `quit`, an overlong line, or the peer closing end it.  A peer that
 * only shuts down its sending side (`nc -N`, monitoring scripts) still gets
 * the replies to everything it sent before the connection is closed.  Reading
 * pauses while too many requests or reply bytes are pending, so a client
 * that never reads cannot grow memory without bound: at most max_pending
 * requests, max_output unwritten reply bytes, and max_client_memory in
 * all, counting each request in flight as its own bytes plus one
 * max_value_size per key it reads (one request is always let in).
 *
 * Memory: an idle client (no partial request read, no request in flight,
 * no reply unwritten) holds no read buffer and no output array: it gives
 * them back to the thread's free lists (base/buf.h) as soon as its last
 * reply is written with nothing more read, and takes a buffer again when
 * it next becomes readable.  So what a connection costs while idle is this
 * struct (about 300 bytes), whatever it sent before; a client that is
 * never idle (pipelining) keeps its buffer and never goes to the free list.
 *
 * Protocol and login: the first byte a client sends picks its codec for
 * good (codec_pick: binary, or text with meta).  On a listener whose
 * config wants a login (resolver_auth, asked then), nothing but a login is
 * served until one succeeds: SASL for binary clients (client_sasl),
 * memcached's ASCII authentication for the others (client_gate).  The name
 * logged in with is the client's user, copied into each request it sends
 * (req.user).
 *
 * Ownership: the client owns its requests until their replies are written;
 * when it closes, requests still at a backend are orphaned (on_done
 * cleared) and freed when their backends answer.  A client is identified
 * to the layers above by its id (req->conn_id), never by pointer, and each
 * request carries a copy of its address (req->peer) for the log.
 */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/conn.h"
#include "base/loop.h"
#include "base/net.h"
#include "codec.h"
#include "rt/rt.h"

struct listener;
struct gw_req;

/* Every open connection has one of these, idle or not, so it is kept small
 * (thousands of app processes may each hold one): its fields are ordered
 * to leave no padding, and the I/O watcher lives inside it. */
struct client {
    struct rt *rt;
    const struct listener *listener;
    uint64_t id;
    struct gw_peer peer;         /* its address: each request copies it, for the log */
    uint32_t pending;            /* requests from head to tail */
    struct gw_conn conn;
    struct gw_io_slot io;        /* its watcher (gw_io_in) */
    const struct codec *codec;
    char *user;                  /* the name it logged in with (owned), or NULL */
    struct codec_state cs;
    struct gw_rbuf in;           /* no buffer while idle */
    struct gw_req *head, *tail;  /* requests whose replies are not yet queued */
    struct gw_req *whead, *wtail;/* replies queued in out, not yet written */
    size_t inflight;             /* the bytes they are counted as pinning (req->charge) */
    struct gw_oq out;            /* no iovec array while idle */
    struct rt_flushable flushq;
    struct client *prev, *next;  /* the thread's open clients (rt->clients) */
    bool closing;                /* close once every queued reply is written */
    bool eof;                    /* the peer is done sending (half-close): answer
                                  * what it sent, then close */
    bool paused;                 /* reading paused for back-pressure */
    bool must_auth;              /* its listener wants a login */
    uint8_t failed_logins;       /* logins refused so far (CLIENT_LOGIN_TRIES) */
};

/* Logins a connection may fail before it is closed: each costs a password
 * hash on the worker's thread.  memcached allows any number. */
#define CLIENT_LOGIN_TRIES 3

/* Take over an accepted socket, whose peer is at *peer. */
void client_new(struct rt *rt, const struct listener *l, int fd, const struct gw_peer *peer);
void client_close(struct client *c);

/* Every open client of the thread: stop reading and close each once the
 * replies to what it has sent are written (shutdown). */
void clients_drain(struct rt *rt);
void clients_close_all(struct rt *rt);

/* --- for codecs ----------------------------------------------------------- */

/* A request for mc, whose bytes start at base in the read buffer (NULL
 * for one with no bytes to keep), queued for its reply in order.  NULL when
 * out of memory: the client is then closing. */
struct gw_req *client_request(struct client *c, const struct mc_request *mc, const char *base);
/* Send r on its way: the gateway's own commands are answered here, the
 * rest go to the router. */
void client_dispatch(struct client *c, struct gw_req *r);
/* A request the codec refused: its reply is `line` (no "\r\n"); close the
 * connection after it if `close`.  noreply follows mc. */
void client_refuse(struct client *c, const struct mc_request *mc, const char *line, bool close);
/* May the client send commands (its listener needs no authentication, or
 * it has authenticated)? */
bool client_authenticated(const struct client *c);
/* A binary SASL request (opcode: list mechs, auth, step; mech and data
 * its key and value): the status to answer (binary.h).  Its
 * CLIENT_LOGIN_TRIES-th failure sets the client closing. */
uint16_t client_sasl(struct client *c, uint8_t opcode, const char *mech, size_t mlen,
                     const char *data, size_t dlen);
/* A text or meta request mc (its bytes at base) from a client that has
 * not logged in, on a listener that wants it to: answered as memcached
 * with ASCII authentication (-Y) answers: a set whose data is "user
 * password" logs in (STORED, or CLIENT_ERROR authentication failure; the
 * CLIENT_LOGIN_TRIES-th failure closes the connection); anything else is
 * CLIENT_ERROR unauthenticated. */
void client_gate(struct client *c, const struct mc_request *mc, const char *base);
/* Too much is pending: stop decoding until replies drain. */
bool client_busy(const struct client *c);

#endif
