/* listener.h -- a listening socket of one worker thread, and the label its
 * clients' requests carry (req.listener).
 *
 * Each worker has its own socket per address (SO_REUSEPORT), so accepting
 * needs no lock.  Accepted sockets become clients (client.h) unless the
 * process is at max_connections, when the new connection is told
 * "SERVER_ERROR too many open connections" and closed, as memcached does.
 * Out of file descriptors (EMFILE), accepting pauses (0.1 s, doubling to
 * 1 s while it lasts) rather than spinning on a socket that stays
 * readable.  An episode is logged once when it starts and once when
 * accepting has worked for a second without running out again.
 *
 * Ownership: the server layer makes, closes and frees listeners.  A closed
 * listener (removed by a reload) stops accepting but stays allocated until
 * the thread exits, because its clients' requests still read its label.
 */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

struct rt;
struct gw_io;
struct gw_tls;

struct listener {
    struct listener *next;     /* the owner's list */
    int fd;                    /* -1 once closed */
    struct gw_io *io;
    struct gw_timer *resume;   /* accepting paused: out of descriptors */
    double pause;              /* seconds of the current pause; 0: none */
    double last_emfile;        /* loop time it last ran out */
    struct rt *rt;
    char *addr;                /* as configured (owned) */
    char *name;                /* optional label (owned), or NULL */
    const char *label;         /* name, or addr when it has none */
    struct gw_tls *tls;        /* its clients speak TLS with this (a reference), or NULL */
};

/* Start accepting on fd (the listener owns it from now on).  NULL when out
 * of memory (fd is then left open). */
struct listener *listener_new(struct rt *rt, int fd, const char *addr, const char *name);
/* Give it a new label; GW_NOMEM leaves the old one. */
int listener_rename(struct listener *l, const char *name);
/* Its clients from now on speak TLS with tls (NULL: plain); a client
 * accepted before keeps what it started with. */
void listener_set_tls(struct listener *l, struct gw_tls *tls);
/* Stop accepting and close the socket. */
void listener_close(struct listener *l);
void listener_free(struct listener *l);

#endif
