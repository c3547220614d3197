/* conn.h -- a transport: how bytes move on one connected socket.
 *
 * Client and backend connections read and write only through these four
 * calls, so a transport is one file and nothing above it knows which one a
 * connection uses (nginx swaps recv/send pointers the same way; HAProxy's
 * xprt_ops, Redis 6's ConnectionType).  Plain TCP (conn_plain.c) and TLS
 * (conn_tls.c, OpenSSL) are the two transports.
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
 *   handshake
 *            set the session up (TLS: the handshake), as far as the socket
 *            allows: GW_OK done, GW_AGAIN call again when conn_events says,
 *            GW_ERROR failed (why in err).  read and writev also make this
 *            progress on their own, so a server-side owner need not call it.
 *   events   the watcher events to ask for, given those the owner wants:
 *            a TLS session that must write to read on (or read to write
 *            on) swaps them.  Plain returns them as they are.  An owner that
 *            gets an event it did not want for itself (a write readiness
 *            with nothing to write) calls read (or writev) again, which is
 *            what the transport waits for.
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
    int (*handshake)(struct gw_conn *c, char *err, size_t errlen);
    int (*events)(const struct gw_conn *c, int wanted);
};

struct gw_conn {
    const struct transport *t;
    int fd;            /* -1: closed */
    void *session;     /* the transport's own state (TLS); NULL for plain */
};

extern const struct transport transport_plain;

/* Take over fd as a plain TCP connection. */
void conn_init_plain(struct gw_conn *c, int fd);

/* --- TLS (conn_tls.c) -------------------------------------------------------
 *
 * A gw_tls is the settings connections share (an OpenSSL SSL_CTX):
 * certificate, key, the CAs to verify the peer with, the verify mode and
 * the lowest version.  It is built once per config load from the PEM texts
 * the config read (so errors name the files), on any thread, and then used
 * read-only by every worker's connections.  It is reference counted: each
 * holder (a listener, a backend, a config) takes one, and a connection's
 * session keeps the context alive until it closes, so a reload that
 * replaces it never pulls it from under a connection. */
struct gw_tls;

enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRED };

/* A PEM file: its path (for messages) and its text; path NULL: none. */
struct tls_pem {
    const char *path;
    const char *text;
    size_t len;
};

struct tls_opts {
    struct tls_pem cert, key, ca;  /* cert may hold the chain after the leaf */
    enum tls_verify verify;        /* a server: the client's certificate; a
                                    * client: REQUIRED or NONE */
    int min_version;               /* 12 (TLS 1.2) or 13 */
    const char *server_name;       /* a client: the name to expect and send (SNI);
                                    * NULL: the host connected to */
};

/* A context to accept (tls_server_new: cert and key required) or to
 * connect (tls_client_new) with.  NULL with the reason, naming the file, in
 * err.  The caller holds the one reference. */
struct gw_tls *tls_server_new(const struct tls_opts *o, char *err, size_t errlen);
struct gw_tls *tls_client_new(const struct tls_opts *o, char *err, size_t errlen);
struct gw_tls *tls_ref(struct gw_tls *t);   /* NULL passes through */
void tls_unref(struct gw_tls *t);           /* NULL: nothing */

/* Take over fd as a TLS connection with t, as the server (accepted) or the
 * client of host (its name or address, to verify when t names none).
 * GW_NOMEM: fd is left open and c unset.  peer names the other end in the
 * log lines of a failed handshake. */
int conn_init_tls_server(struct gw_conn *c, int fd, struct gw_tls *t, const char *peer);
int conn_init_tls_client(struct gw_conn *c, int fd, struct gw_tls *t, const char *host);

/* The name the peer's verified certificate gives (subject CN, else the
 * first DNS SAN), in a new string; NULL when the connection is not TLS,
 * the handshake is not done, or no certificate was verified. */
char *conn_peer_user(const struct gw_conn *c);

static inline int conn_read(struct gw_conn *c, struct gw_rbuf *in, size_t need, size_t *n)
{
    return c->t->read(c, in, need, n);
}
static inline int conn_writev(struct gw_conn *c, struct gw_oq *out, size_t *written)
{
    return c->t->writev(c, out, written);
}
static inline bool conn_pending(const struct gw_conn *c) { return c->t->pending(c); }
static inline int conn_handshake(struct gw_conn *c, char *err, size_t errlen)
{
    return c->t->handshake(c, err, errlen);
}
static inline int conn_events(const struct gw_conn *c, int wanted)
{
    return c->t->events(c, wanted);
}
static inline void conn_close(struct gw_conn *c)
{
    if (c->fd >= 0) c->t->close(c);
}

#endif
