/* backend.h -- one persistent connection from a worker to one memcached
 * server, with pipelining.
 *
 * Ops queued during a loop iteration are written together with one writev
 * when the thread flushes (the rt flush queue); their replies are matched
 * in order.  The connection is opened on first use and re-opened after a
 * failure.  A failure (refused, timed out, closed mid-reply, garbage)
 * answers every op still waiting with SERVER_ERROR and resets the
 * connection; failure_limit failures in a row mark the server down: its
 * ops fail at once (or go where their policy says) and a background probe
 * asks it for its version until it answers.
 *
 * Two seams:
 * - The wire format is a backend codec (be_codec): how an op's request is
 *   written and how its reply is read.  Text is the one today (be_text.c).
 * - Whoever queues an op names a policy (be_policy) that says what to do
 *   when the server fails: where to send an op that was never written
 *   (failover), and whether a failed key fails its whole multi-get.  The
 *   backend calls up only through it; a pool is one such policy.
 *
 * Backends are shared: each thread keeps a registry of them (rt->backends)
 * keyed by address and options, and every pool (of every config
 * generation) that names the same server with the same options holds a
 * reference on the same backend.  So a reload that keeps a server keeps its
 * connection, its marked-down state and its queue.
 *
 * Logs name the server with every pool that names it ("pool main server
 * 10.0.0.1:11211: ...").  State changes (marked down, back in service,
 * taken out) are logged each time, per worker; failures (a connect
 * refused, a timeout, garbage) and the requests failed at once while it is
 * down or its queue is full are rate limited per server and reason
 * (log.h).
 *
 * Ownership: a be_op holds a reference on its request until it is
 * answered, and names the policy that routed it (which outlives it: a
 * config lives until its last request is done).  backend_release frees a
 * backend with its last reference, failing whatever is still queued.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/conn.h"
#include "base/net.h"
#include "codec/proto.h"
#include "rt/rt.h"

struct backend;
struct be_op;
struct gw_req;
struct gw_io;
struct gw_timer;

/* What the owner of an op decides when its server fails. */
struct be_policy {
    /* Ops never written to a server that just went down go to the server
     * pick() names now (NULL: none is up; the op fails), whose stats block
     * it sets. */
    bool failover;
    struct backend *(*pick)(const struct be_policy *pol, const char *key, size_t len,
                            struct server_stats **stats);
    /* A failed key of a multi-get fails the whole request (else it is a
     * miss, python-memcached's get_multi). */
    bool multiget_error;
};

/* A backend wire format.
 *   encode  queue the bytes of op's request on out.  They may point into
 *           op->head/op->tail (which encode fills), the request's keys and
 *           its value: all live until the op is answered.
 *   decode  read one reply unit for op from the start of in's unread
 *           bytes, filling in op->req's keys or reply.  Returns
 *             BE_NEED     the unit is incomplete (*need: the bytes it needs
 *                         in all, or 0 if unknown); nothing consumed;
 *             BE_MORE     a unit was consumed; more belong to this op;
 *             BE_DONE     a unit was consumed; the op is answered;
 *             BE_INVALID  the bytes are not a reply at all;
 *             BE_UNEXPECTED  a reply, but not one this op can have.
 *           After the last two the connection is out of step and is reset. */
enum be_decode { BE_NEED, BE_MORE, BE_DONE, BE_INVALID, BE_UNEXPECTED };

struct be_codec {
    const char *name;
    int (*encode)(struct be_op *op, struct gw_oq *out);
    enum be_decode (*decode)(struct backend *b, struct be_op *op, struct gw_rbuf *in,
                             size_t *need);
    /* The most bytes of keys (with one separator each) one retrieval op
     * of cmd may carry, so that no line a server would refuse is sent; 0:
     * no limit. */
    size_t (*batch_limit)(enum mc_cmd cmd);
    /* Why key k of r cannot go to a server as the command meant (meta:
     * its op would be sent in meta, op->meta), or NULL: a server that
     * would read another command than the one routed must never get it.
     * NULL: every request can go. */
    const char *(*refuses)(const struct gw_req *r, uint32_t k, bool meta);
};

extern const struct be_codec be_codec_text;

struct be_op {
    struct be_op *next;    /* first (the free list's link) */
    struct gw_req *req;
    const struct be_policy *policy;  /* who chose this server, or NULL */
    struct server_stats *stats;      /* where it is counted (metrics.h), or NULL */
    enum mc_cmd cmd;
    bool queued;           /* counted in its backend's nqueued */
    bool meta;             /* a text command sent in meta: a binary client's,
                            * whose answer needs what only meta gives back
                            * (be_meta.c) */
    uint8_t resent;        /* times sent again on a fresh connection */
    int32_t first_key;     /* retrieval: the batch's first key index */
    int32_t last_key;      /* retrieval: where the next key is linked */
    int32_t cur_key;       /* retrieval: next key a VALUE may answer */
    uint32_t batch_bytes;  /* retrieval: bytes of its keys, one separator each */
    double sent_at;        /* loop time it was written: its whole reply is due
                            * within the timeout from then */
    uint16_t head_len, tail_len;
    char head[40];         /* codec scratch: "get ", "gat 100 ", "flush_all 0\r\n" */
    char tail[72];         /* codec scratch: " <flags> <exptime> <bytes> [<cas>]\r\n" */
};

enum backend_state { BE_IDLE, BE_CONNECTING, BE_CONNECTED };

struct backend_opts {
    double timeout;            /* seconds a reply may take */
    double connect_timeout;    /* seconds a connect may take (0: timeout) */
    double retry_timeout;      /* seconds before the first probe of a down server */
    uint32_t failure_limit;    /* consecutive failures that mark it down */
    uint32_t max_queue;        /* ops queued or waiting before new ones fail at once */
    struct gw_tls *tls;        /* connect with TLS (the holder's reference), or NULL */
};

/* The defaults of a pool's backend options (memcache.pool's). */
extern const struct backend_opts backend_opts_default;

/* A pool naming a backend (by the pool's name), and how many times. */
struct be_owner {
    char *pool;
    uint32_t refs;
};

struct backend {
    struct rt *rt;
    struct backend *reg_next;  /* the thread's registry */
    uint32_t refs;             /* pools naming it */
    char *name;                /* "host:port" */
    char *label;               /* "pool a,b server host:port", for the log */
    struct be_owner *owners;   /* the pools (by name) that hold the references */
    uint32_t nowners;
    struct gw_addr addr;
    struct backend_opts opts;
    const struct be_codec *codec;
    struct gw_conn conn;
    enum backend_state state;
    struct gw_io *io;
    struct gw_timer *timer;
    struct gw_rbuf in;
    size_t need;               /* bytes the unit being read needs */
    struct gw_oq out;
    struct be_op *send_head, *send_tail;   /* queued, not yet written */
    struct be_op *wait_head, *wait_tail;   /* written (or in out), awaiting a reply */
    double connect_start;      /* loop time the connect began */
    bool tcp_up;               /* connecting: the socket is, the handshake is under way */
    uint32_t nqueued;          /* ops in the send and wait queues */
    uint32_t failures;         /* consecutive */
    bool down;                 /* marked down: ops fail at once until a probe answers */
    bool admin_down;           /* taken out by the operator: down, and never probed */
    uint64_t connects, probes; /* for the metrics */
    bool reused;               /* the connection went idle and was reused, and has
                                * not answered since: if it turns out dead, resend */
    bool served;               /* the connection has answered something */
    bool closing;              /* being freed */
    double probe_delay;        /* seconds until the next probe (backoff) */
    struct gw_timer *probe_timer;
    struct rt_flushable flushq;
};

/* The thread's backend for this server and options (a new reference, on
 * behalf of the pool named `pool`, which its log lines then name; NULL:
 * none), made if none exists yet.  NULL when out of memory. */
struct backend *backend_acquire(struct rt *rt, const char *pool, const char *name,
                                const struct gw_addr *addr, const struct backend_opts *opts);
/* Drop the reference backend_acquire took for `pool`. */
void backend_release(struct backend *b, const char *pool);

bool backend_is_up(const struct backend *b);
/* The operator takes the server out (down, no probes) or puts it back. */
void backend_set_admin_down(struct backend *b, bool down);

/* An op for request r (from the thread's free list); it takes a reference
 * on r and counts as pending on it.  policy may be NULL (no failover). */
struct be_op *op_new(struct rt *rt, struct gw_req *r, const struct be_policy *policy,
                     enum mc_cmd cmd);
/* Free the cached ops that went unused since the last call (freelist_trim,
 * every second); returns the bytes freed. */
size_t op_cache_trim(struct rt *rt);
/* Free the thread's cached ops (at thread exit). */
void op_cache_drain(struct rt *rt);

/* Retrieval batches: key k of op->req is op's first key; op_add_key links
 * key k after the others, or returns false when a line to b could not hold
 * it (b's codec's batch_limit): the caller starts another op. */
void op_first_key(struct be_op *op, uint32_t k);
bool op_add_key(const struct backend *b, struct be_op *op, uint32_t k);
/* The op for r under policy queued on b and not written yet, if it is the
 * last queued: keys of r that resolve later (a route that waited) join it
 * rather than take a queue entry each.  NULL if there is none. */
struct be_op *backend_open_batch(struct backend *b, const struct gw_req *r,
                                 const struct be_policy *policy);
/* Queue an op; it is written on the next flush.  A server that is down or
 * whose queue is full fails it at once. */
void backend_enqueue(struct backend *b, struct be_op *op);
/* Write what is queued (connecting first if need be). */
void backend_flush(struct backend *b);
/* At thread exit, before any config is freed: fail every op still queued
 * or waiting on the thread's backends (none is sent elsewhere).  A backend
 * shared by several configs holds ops routed by the pools of each, so they
 * must all end while every pool is alive.  Whoever waits on them must no
 * longer start anything (the Lua hosts are closing). */
void backends_abort(struct rt *rt);

#endif
