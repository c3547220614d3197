/* conn.h -- a transport: how bytes move on one connected socket.
 *
 * Client and backend connections read and write only through these four
 * calls, so a transport is one file and nothing above it knows which one a
 * connection uses (nginx swaps recv/send pointers the same way; HAProxy's
 * xprt_ops, Redis 6's ConnectionType).  Plain TCP is the one transport
 * today; TLS will be another struct transport beside it.
 *
 *   read     append what the peer sent to `in`, making room for at least
 *            `need` unconsumed bytes (0: any); as rbuf_read: GW_OK with *n
 *            bytes, GW_AGAIN nothing to read, GW_ERROR the peer closed
 *            (*n = 0) or failed, GW_NOMEM.
 *   writev   write as much of `out` as the socket takes; as oq_write.
 *   pending  bytes the transport has already taken off the socket but not
 *            handed to read yet (a TLS record decrypted ahead).  The owner
 *            calls read again before the loop sleeps while this is true,
 *            since no readiness event will come for them.
 *   close    close the socket (and end the session cleanly if the
 *            transport has one).  The conn is then closed (fd -1).
 *
 * Ownership: the gw_conn is embedded in its owner, which also owns the
 * socket once conn_*_init has it.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct gw_conn;

struct transport {
    const char *name;
    int (*read)(struct gw_conn *c, struct gw_rbuf *in, size_t need, size_t *n);
    int (*writev)(struct gw_conn *c, struct gw_oq *out, size_t *written);
    bool (*pending)(const struct gw_conn *c);
    void (*close)(struct gw_conn *c);
};

struct gw_conn {
    const struct transport *t;
    int fd;            /* -1: closed */
    void *session;     /* the transport's own state (TLS); NULL for plain */
};

extern const struct transport transport_plain;

/* Take over fd as a plain TCP connection. */
void conn_init_plain(struct gw_conn *c, int fd);

static inline int conn_read(struct gw_conn *c, struct gw_rbuf *in, size_t need, size_t *n)
{
    return c->t->read(c, in, need, n);
}
static inline int conn_writev(struct gw_conn *c, struct gw_oq *out, size_t *written)
{
    return c->t->writev(c, out, written);
}
static inline bool conn_pending(const struct gw_conn *c) { return c->t->pending(c); }
static inline void conn_close(struct gw_conn *c)
{
    if (c->fd >= 0) c->t->close(c);
}

#endif
