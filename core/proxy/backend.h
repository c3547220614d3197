/* backend.h -- one persistent connection from a worker to one memcached
 * server, with pipelining.
 *
 * Ops queued during a loop iteration are written together with one writev
 * when the worker flushes (backend_flush); their replies are matched in
 * order.  The connection is opened on first use and re-opened after a
 * failure.  A failure (refused, timed out, closed mid-reply, garbage)
 * answers every op still waiting with SERVER_ERROR and resets the
 * connection; a server that failed is left alone for the pool's
 * retry_timeout, during which its ops fail at once.
 *
 * Backends are shared: each worker keeps a registry of them keyed by
 * address and options, and every pool (of every config generation) that
 * names the same server with the same options holds a reference on the same
 * backend.  So a reload that keeps a server keeps its connection, its
 * marked-down state and its queue.
 *
 * Ownership: a be_op holds a reference on its request until it is
 * answered, and names the pool that routed it (which outlives it: a config
 * lives until its last request is done).  backend_release frees a backend
 * with its last reference, failing whatever is still queued.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/net.h"
#include "codec/proto.h"

struct worker;
struct pool;
struct server;
struct gw_req;
struct gw_io;
struct gw_timer;

struct be_op {
    struct be_op *next;
    struct gw_req *req;
    struct pool *pool;     /* the pool that chose this server (for failover) */
    enum mc_cmd cmd;
    bool queued;           /* counted in its backend's nqueued */
    uint8_t resent;        /* times sent again on a fresh connection */
    int32_t first_key;     /* retrieval: the batch's first key index */
    int32_t last_key;      /* retrieval: where the next key is linked */
    int32_t cur_key;       /* retrieval: next key a VALUE may answer */
    uint16_t head_len, tail_len;
    char head[40];         /* "get ", "gat 100 ", "set ", "flush_all 0\r\n" */
    char tail[72];         /* " <flags> <exptime> <bytes> [<cas>]\r\n", ... */
};

enum backend_state { BE_IDLE, BE_CONNECTING, BE_CONNECTED };

struct backend_opts {
    double timeout;            /* seconds a reply may take */
    double connect_timeout;    /* seconds a connect may take */
    double retry_timeout;      /* seconds before the first probe of a down server */
    uint32_t failure_limit;    /* consecutive failures that mark it down */
    uint32_t max_queue;        /* ops queued or waiting before new ones fail at once */
};

struct backend {
    struct worker *w;
    struct backend *reg_next;  /* the worker's registry */
    uint32_t refs;             /* pools naming it */
    char *name;                /* "host:port" */
    struct gw_addr addr;
    struct backend_opts opts;
    int fd;
    enum backend_state state;
    struct gw_io *io;
    struct gw_timer *timer;
    struct gw_rbuf in;
    size_t need;               /* bytes the unit being read needs */
    struct gw_oq out;
    struct be_op *send_head, *send_tail;   /* queued, not yet written */
    struct be_op *wait_head, *wait_tail;   /* written (or in out), awaiting a reply */
    double last_progress;      /* loop time of the last byte moved */
    uint32_t nqueued;          /* ops in the send and wait queues */
    uint32_t failures;         /* consecutive */
    bool down;                 /* marked down: ops fail at once until a probe answers */
    bool reused;               /* the connection went idle and was reused, and has
                                * not answered since: if it turns out dead, resend */
    bool served;               /* the connection has answered something */
    bool closing;              /* being freed */
    double probe_delay;        /* seconds until the next probe (backoff) */
    struct gw_timer *probe_timer;
    bool dirty;
    struct backend *next_dirty;
};

/* The worker's backend for this server and options (a new reference), made
 * if none exists yet.  NULL when out of memory. */
struct backend *backend_acquire(struct worker *w, const char *name, const struct gw_addr *addr,
                                const struct backend_opts *opts);
void backend_release(struct backend *b);

bool backend_is_up(const struct backend *b);

/* An op for request r (from the worker's free list); it takes a reference on r
 * and counts as pending on it. */
struct be_op *op_new(struct worker *w, struct gw_req *r, struct pool *p, enum mc_cmd cmd);
/* Queue an op; it is written on the next flush. */
void backend_enqueue(struct backend *b, struct be_op *op);
/* Write what is queued (connecting first if need be). */
void backend_flush(struct backend *b);

#endif
