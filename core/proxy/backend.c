/* backend.c -- see backend.h. */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/net.h"
#include "req.h"

#define PROBE_MAX_DELAY 3.0

const struct backend_opts backend_opts_default = {
    .timeout = 0.5,
    .connect_timeout = 0,
    .retry_timeout = 1,
    .failure_limit = 2,
    .max_queue = 4096,
};

static void backend_on_event(void *data, int events);
static void backend_on_timer(void *data, int events);
static void backend_on_flush(struct rt_flushable *f);

static bool same_opts(const struct backend_opts *a, const struct backend_opts *b)
{
    return a->timeout == b->timeout && a->connect_timeout == b->connect_timeout &&
           a->retry_timeout == b->retry_timeout && a->failure_limit == b->failure_limit &&
           a->max_queue == b->max_queue && a->tls == b->tls;
}

static void backend_on_probe(void *data, int events);
static void probe_schedule(struct backend *b);

/* --- who names it, for the log ------------------------------------------- */

/* b's label from its owners: "pool a,b server host:port" ("server
 * host:port" with none).  Out of memory, the old label stays. */
static void label_update(struct backend *b)
{
    size_t n = strlen(b->name) + 16;
    for (uint32_t i = 0; i < b->nowners; i++) n += strlen(b->owners[i].pool) + 1;
    char *l = malloc(n);
    if (!l) return;
    size_t o = 0;
    if (b->nowners) o += (size_t)snprintf(l, n, "pool ");
    for (uint32_t i = 0; i < b->nowners; i++)
        o += (size_t)snprintf(l + o, n - o, "%s%s", i ? "," : "", b->owners[i].pool);
    snprintf(l + o, n - o, "%sserver %s", b->nowners ? " " : "", b->name);
    free(b->label);
    b->label = l;
}

/* Pool `pool` takes a reference.  Best effort: out of memory, the label
 * just does not name it. */
static void owner_add(struct backend *b, const char *pool)
{
    if (!pool) return;
    for (uint32_t i = 0; i < b->nowners; i++) {
        if (!strcmp(b->owners[i].pool, pool)) {
            b->owners[i].refs++;
            return;
        }
    }
    struct be_owner *o = realloc(b->owners, (b->nowners + 1) * sizeof *o);
    if (!o) return;
    b->owners = o;
    if (!(o[b->nowners].pool = strdup(pool))) return;
    o[b->nowners++].refs = 1;
    label_update(b);
}

static void owner_drop(struct backend *b, const char *pool)
{
    for (uint32_t i = 0; pool && i < b->nowners; i++) {
        if (strcmp(b->owners[i].pool, pool) != 0) continue;
        if (--b->owners[i].refs > 0) return;
        free(b->owners[i].pool);
        b->owners[i] = b->owners[--b->nowners];
        label_update(b);
        return;
    }
}

/* --- the registry ----------------------------------------------------------- */

static struct backend *backend_new(struct rt *rt, const char *name,
                                   const struct gw_addr *addr, const struct backend_opts *opts)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->rt = rt;
    b->name = strdup(name);
    if (b->name) label_update(b);
    b->addr = *addr;
    b->opts = *opts;
    b->opts.tls = NULL; /* referenced once nothing below can fail */
    b->codec = &be_codec_text;
    b->admin_down = rt_admin_down(name);
    b->conn.fd = -1;
    b->state = BE_IDLE;
    b->flushq.flush = backend_on_flush;
    b->timer = gw_timer_new(rt->loop, backend_on_timer, b);
    b->probe_timer = gw_timer_new(rt->loop, backend_on_probe, b);
    if (!b->timer || !b->probe_timer || !b->name || !b->label) {
        gw_timer_free(b->timer);
        gw_timer_free(b->probe_timer);
        free(b->name);
        free(b->label);
        free(b);
        return NULL;
    }
    b->opts.tls = tls_ref(opts->tls);
    return b;
}

struct backend *backend_acquire(struct rt *rt, const char *pool, const char *name,
                                const struct gw_addr *addr, const struct backend_opts *opts)
{
    struct backend *b;
    for (b = rt->backends; b; b = b->reg_next)
        if (!strcmp(b->name, name) && same_opts(&b->opts, opts)) break;
    if (!b) {
        b = backend_new(rt, name, addr, opts);
        if (!b) return NULL;
        b->reg_next = rt->backends;
        rt->backends = b;
    }
    b->refs++;
    owner_add(b, pool);
    return b;
}

bool backend_is_up(const struct backend *b)
{
    return !b->down && !b->admin_down;
}

void backend_set_admin_down(struct backend *b, bool down)
{
    if (b->admin_down == down) return;
    b->admin_down = down;
    LOG_WARN("%s: %s by the operator", b->label, down ? "taken out" : "put back");
    if (!down && b->down) probe_schedule(b); /* probes stopped while it was out */
}

struct be_op *op_new(struct rt *rt, struct gw_req *r, const struct be_policy *policy,
                     enum mc_cmd cmd)
{
    struct be_op *op = freelist_get(&rt->ops);
    if (!op && !(op = malloc(sizeof *op))) return NULL;
    op->next = NULL;
    op->req = r;
    op->policy = policy;
    op->stats = NULL;
    op->cmd = cmd;
    op->first_key = op->last_key = op->cur_key = -1;
    op->batch_bytes = 0;
    op->head_len = op->tail_len = 0;
    op->queued = false;
    op->meta = false;
    op->resent = 0;
    r->refs++;
    r->pending++;
    return op;
}

static void op_free(struct rt *rt, struct be_op *op)
{
    if (!freelist_put(&rt->ops, op)) free(op);
}

static void op_release(void *op) { free(op); }

size_t op_cache_trim(struct rt *rt)
{
    return (size_t)freelist_trim(&rt->ops, op_release) * sizeof(struct be_op);
}

void op_cache_drain(struct rt *rt)
{
    freelist_drain(&rt->ops, op_release);
}

void op_first_key(struct be_op *op, uint32_t k)
{
    op->first_key = op->last_key = op->cur_key = (int32_t)k;
    op->batch_bytes = (uint32_t)op->req->keys[k].bklen + 1;
}

bool op_add_key(const struct backend *b, struct be_op *op, uint32_t k)
{
    struct gw_req *r = op->req;
    size_t add = (size_t)r->keys[k].bklen + 1;
    size_t limit = b->codec->batch_limit ? b->codec->batch_limit(op->cmd) : 0;
    if (limit && op->batch_bytes + add > limit) return false;
    r->keys[op->last_key].next = (int32_t)k;
    op->last_key = (int32_t)k;
    op->batch_bytes += (uint32_t)add;
    return true;
}

struct be_op *backend_open_batch(struct backend *b, const struct gw_req *r,
                                 const struct be_policy *policy)
{
    struct be_op *op = b->send_tail;
    return op && op->req == r && op->policy == policy && op->first_key >= 0 ? op : NULL;
}

/* The op is answered: the request loses a pending op and a reference. */
static void op_finish(struct backend *b, struct be_op *op)
{
    struct gw_req *r = op->req;
    if (op->queued) b->nqueued--;
    req_op_done(r);
    req_unref(r);
    op_free(b->rt, op);
}

/* Answer an op with an error: its keys fail, or its reply line is the error. */
static void op_fail(struct backend *b, struct be_op *op, enum be_error_kind kind, const char *reason)
{
    struct gw_req *r = op->req;
    server_stats_error(op->stats, kind);
    b->rt->metrics.errors[CERR_BACKEND]++;
    r->errors = true;
    if (op->policy && op->policy->multiget_error) r->fail_whole = true;
    if (mc_cmd_is_retrieval(op->cmd)) {
        /* Every key of the op, even those a VALUE already answered: a reply
         * that then fails (times out, turns to garbage) cannot be trusted. */
        for (int32_t k = op->first_key; k >= 0; k = r->keys[k].next) {
            struct gw_key *key = &r->keys[k];
            buf_unref(key->vbuf);
            key->vbuf = NULL;
            key->vdata = NULL;
            key->state = KEY_ERROR;
        }
    }
    if (!r->fail_reply) {
        req_reply_fmt(r, "SERVER_ERROR %s", reason);
        r->rkind = RESP_SERVER_ERROR;
    }
    STAT_INC(&b->rt->stats, gw_backend_errors);
    op_finish(b, op);
}

static void fail_queue(struct backend *b, struct be_op **head, struct be_op **tail,
                       enum be_error_kind kind, const char *reason)
{
    struct be_op *op = *head;
    *head = *tail = NULL;
    while (op) {
        struct be_op *next = op->next;
        op_fail(b, op, kind, reason);
        op = next;
    }
}

/* The server just went down and the op's policy fails over: send an op that was
 * never written to the server the policy picks now.  A multi-key batch is
 * split into one op per key, since its keys may now go different ways. */
static void op_reroute(struct backend *b, struct be_op *op, const char *reason)
{
    struct gw_req *r = op->req;
    const struct be_policy *pol = op->policy;
    struct server_stats *ns;
    if (!mc_cmd_is_retrieval(op->cmd)) {
        struct backend *nb = pol->pick(pol, r->keys[0].bkey, r->keys[0].bklen, &ns);
        if (nb && nb != b) {
            op->queued = false;
            b->nqueued--;
            op->stats = ns;
            backend_enqueue(nb, op);
        } else {
            op_fail(b, op, BE_ERR_DOWN, reason);
        }
        return;
    }
    for (int32_t k = op->first_key, next; k >= 0; k = next) {
        struct gw_key *key = &r->keys[k];
        next = key->next;
        key->next = -1;
        struct backend *nb = pol->pick(pol, key->bkey, key->bklen, &ns);
        struct be_op *one = nb && nb != b ? op_new(b->rt, r, pol, op->cmd) : NULL;
        if (!one) {
            key->state = KEY_ERROR;
            r->errors = true;
            continue;
        }
        one->stats = ns;
        one->meta = op->meta;
        op_first_key(one, (uint32_t)k);
        backend_enqueue(nb, one);
    }
    op_finish(b, op);
}

/* Close the socket and forget what was read or about to be written. */
static void close_conn(struct backend *b, const char *reason)
{
    if (b->conn.fd >= 0) {
        LOG_VERBOSE("%s: %s", b->label, reason);
        gw_io_free(b->io);
        b->io = NULL;
        conn_close(&b->conn);
    }
    b->state = BE_IDLE;
    b->tcp_up = false;
    b->reused = false;
    b->served = false;
    gw_timer_stop(b->timer);
    rbuf_release(&b->in);
    b->need = 0;
    oq_clear(&b->out);
}

static void probe_schedule(struct backend *b)
{
    if (!b->closing) gw_timer_start(b->probe_timer, b->probe_delay);
}

/* One more consecutive failure; at failure_limit the server is marked
 * down and probed in the background until it answers. */
static void count_failure(struct backend *b)
{
    b->failures++;
    if (b->down || b->failures < b->opts.failure_limit) return;
    b->down = true;
    b->probe_delay = b->opts.retry_timeout > 0 ? b->opts.retry_timeout : 0.1;
    STAT_INC(&b->rt->stats, gw_backend_marked_down);
    LOG_WARN("%s: marked down after %u failure%s in a row", b->label, b->failures,
             b->failures == 1 ? "" : "s");
    probe_schedule(b);
}

/* Drop the connection; every op still queued or waiting fails (or, when
 * the server is down and the policy fails over, unsent ops go to another
 * server).  A failure counts toward failure_limit. */
static void backend_reset(struct backend *b, enum be_error_kind kind, const char *reason,
                          bool failure)
{
    close_conn(b, reason);
    if (failure) count_failure(b);
    char msg[160];
    snprintf(msg, sizeof msg, "backend %s %s", b->name, reason);
    fail_queue(b, &b->wait_head, &b->wait_tail, kind, msg);
    if (b->down) {
        struct be_op *op = b->send_head;
        b->send_head = b->send_tail = NULL;
        while (op) {
            struct be_op *next = op->next;
            if (op->policy && op->policy->failover) op_reroute(b, op, msg);
            else op_fail(b, op, kind, msg);
            op = next;
        }
    }
    fail_queue(b, &b->send_head, &b->send_tail, kind, msg);
}

/* The connection failed (refused, timed out, closed mid-reply, garbage):
 * logged, rate limited per server and reason, then reset; it counts toward
 * failure_limit.  detail, if any, says more than reason (the errno). */
static void backend_fail(struct backend *b, enum be_error_kind kind, const char *reason,
                         const char *detail)
{
    LOG_WARN_LIMIT(NULL, "%s: %s%s%s%s", b->label, reason, detail ? " (" : "",
                   detail ? detail : "", detail ? ")" : "");
    backend_reset(b, kind, reason, true);
}

/* Ops that may run twice with no harm: the server may have applied one
 * before the connection broke, so only these are sent again.  (gat and
 * touch set the same expiry twice.) */
static bool op_may_repeat(const struct be_op *op)
{
    switch (op->cmd) {
    case MC_GET: case MC_GETS: case MC_GAT: case MC_GATS: case MC_TOUCH: case MC_VERSION:
        return true;
    default:
        return false;
    }
}

/* The connection broke before answering anything since it was reused
 * after being idle: most likely the server closed it meanwhile (restart,
 * idle timeout) and never saw these ops.  But it may have applied one and
 * then closed, so only the ops safe to repeat are sent again, once, on a
 * fresh connection; the others fail (an incr must not count twice). */
static void backend_resend(struct backend *b, const char *reason)
{
    close_conn(b, reason);
    STAT_INC(&b->rt->stats, gw_backend_resends);
    struct be_op *head = NULL, *last = NULL;
    struct be_op *op = b->wait_head;
    b->wait_head = b->wait_tail = NULL;
    char msg[160];
    snprintf(msg, sizeof msg, "backend %s %s", b->name, reason);
    while (op) {
        struct be_op *next = op->next;
        if (op->resent++ == 0 && op_may_repeat(op)) {
            op->next = NULL;
            if (last) last->next = op;
            else head = op;
            last = op;
        } else {
            op_fail(b, op, BE_ERR_CLOSED, msg);
        }
        op = next;
    }
    if (head) {
        last->next = b->send_head;
        if (!b->send_head) b->send_tail = last;
        b->send_head = head;
        rt_mark(b->rt, &b->flushq, RT_FLUSH_BACKEND);
    }
}

void backend_release(struct backend *b, const char *pool)
{
    if (!b) return;
    owner_drop(b, pool);
    if (--b->refs > 0) return;
    struct backend **pp = &b->rt->backends;
    while (*pp && *pp != b) pp = &(*pp)->reg_next;
    if (*pp) *pp = b->reg_next;
    rt_unmark(b->rt, &b->flushq, RT_FLUSH_BACKEND);
    b->closing = true;
    backend_reset(b, BE_ERR_OTHER, "closed", false);
    gw_timer_free(b->timer);
    gw_timer_free(b->probe_timer);
    oq_free(&b->out);
    for (uint32_t i = 0; i < b->nowners; i++) free(b->owners[i].pool);
    free(b->owners);
    free(b->label);
    free(b->name);
    tls_unref(b->opts.tls);
    free(b);
}

/* An op failed at once (the server is down or its queue full): logged,
 * rate limited per server and reason (one call site each), with the first
 * key and the client as an example (formatted only when logged). */
#define LOG_REFUSED(b, op, why, what)                                              \
    LOG_WARN_LIMIT((b)->label, "%s " why ": %s failed (%s)", (b)->label,           \
                   mc_cmd_name((op)->cmd),                                         \
                   req_describe((op)->req, op_key(op), what, sizeof what))

static uint32_t op_key(const struct be_op *op)
{
    return op->first_key >= 0 ? (uint32_t)op->first_key : 0;
}

static void log_refused(const struct backend *b, const struct be_op *op)
{
    char what[REQ_DESCRIBE_LEN];
    if (b->admin_down) LOG_REFUSED(b, op, "is taken out by the operator", what);
    else if (b->down) LOG_REFUSED(b, op, "is down", what);
    else LOG_REFUSED(b, op, "queue is full", what);
}

void backends_abort(struct rt *rt)
{
    for (struct backend *b = rt->backends; b; b = b->reg_next) {
        b->closing = true;
        close_conn(b, "closed at exit");
        char msg[160];
        snprintf(msg, sizeof msg, "backend %s closed", b->name);
        fail_queue(b, &b->wait_head, &b->wait_tail, BE_ERR_OTHER, msg);
        fail_queue(b, &b->send_head, &b->send_tail, BE_ERR_OTHER, msg);
    }
}

void backend_enqueue(struct backend *b, struct be_op *op)
{
    bool down = b->down || b->admin_down;
    if (down || (b->opts.max_queue && b->nqueued >= b->opts.max_queue)) {
        const char *why = b->admin_down ? "is taken out by the operator"
                        : down ? "is down" : "queue is full";
        char msg[160];
        snprintf(msg, sizeof msg, "backend %s %s", b->name, why);
        log_refused(b, op);
        if (!down) {
            /* The server is healthy: its keys are never answered as misses. */
            STAT_INC(&b->rt->stats, gw_backend_queue_full);
            op->req->fail_whole = true;
        }
        op_fail(b, op, down ? BE_ERR_DOWN : BE_ERR_QUEUE_FULL, msg);
        return;
    }
    if (op->stats) {
        op->stats->requests++;
        if (op->stats->pool_stats) op->stats->pool_stats->requests++;
    }
    op->queued = true;
    b->nqueued++;
    op->next = NULL;
    if (b->send_tail) b->send_tail->next = op;
    else b->send_head = op;
    b->send_tail = op;
    STAT_INC(&b->rt->stats, gw_backend_requests);
    rt_mark(b->rt, &b->flushq, RT_FLUSH_BACKEND);
}

static void backend_watch(struct backend *b)
{
    int ev = GW_EV_READ;
    if (b->state == BE_CONNECTING || b->out.count > 0) ev |= GW_EV_WRITE;
    gw_io_set(b->io, conn_events(&b->conn, ev));
}

static double current_timeout(const struct backend *b)
{
    if (b->state == BE_CONNECTING && b->opts.connect_timeout > 0) return b->opts.connect_timeout;
    return b->opts.timeout;
}

static void backend_arm_timer(struct backend *b)
{
    double t = current_timeout(b);
    if (!gw_timer_active(b->timer) && t > 0) gw_timer_start(b->timer, t);
}

static void connect_failed(struct backend *b, const char *err)
{
    STAT_INC(&b->rt->stats, gw_backend_conn_failures);
    backend_fail(b, BE_ERR_REFUSED, "connect failed", err);
}

static void backend_connect(struct backend *b)
{
    char err[GW_NET_ERRLEN];
    int fd;
    int rc = net_connect(&b->addr, &fd, err);
    STAT_INC(&b->rt->stats, gw_backend_connects);
    b->connects++;
    if (rc == GW_ERROR) {
        connect_failed(b, err);
        return;
    }
    if (b->opts.tls) {
        /* The TLS session is set up once the socket is connected: the
         * state stays BE_CONNECTING (and connect_timeout runs) until the
         * handshake is done. */
        char host[256];
        snprintf(host, sizeof host, "%s", b->name);
        char *colon = strrchr(host, ':');
        if (colon) *colon = '\0';
        if (conn_init_tls_client(&b->conn, fd, b->opts.tls, host) != GW_OK) {
            close(fd);
            backend_reset(b, BE_ERR_OTHER, "out of memory", false);
            return;
        }
    } else {
        conn_init_plain(&b->conn, fd);
    }
    b->io = gw_io_new(b->rt->loop, fd, 0, backend_on_event, b);
    if (!b->io) {
        backend_reset(b, BE_ERR_OTHER, "out of memory", false);
        return;
    }
    b->tcp_up = rc == GW_OK;
    b->state = rc == GW_OK && !b->opts.tls ? BE_CONNECTED : BE_CONNECTING;
    b->connect_start = gw_loop_now(b->rt->loop);
    backend_arm_timer(b);
    backend_watch(b);
}

static void backend_write(struct backend *b)
{
    size_t written;
    int rc = conn_writev(&b->conn, &b->out, &written);
    if (rc == GW_ERROR) {
        if (b->reused) backend_resend(b, "write failed on a connection that had been idle");
        else backend_fail(b, BE_ERR_CLOSED, "write failed", NULL);
        return;
    }
    backend_watch(b);
}

void backend_flush(struct backend *b)
{
    if (!b->send_head) return;
    if (b->state == BE_IDLE) {
        backend_connect(b);
        if (b->state == BE_IDLE) return;
    }
    if (b->state == BE_CONNECTING) return;
    bool was_idle = b->wait_head == NULL;
    /* A connection that already served and sat idle may have been closed
     * by the server meanwhile; remember, so its ops are sent again. */
    if (was_idle && b->served) b->reused = true;
    double now = gw_loop_now(b->rt->loop);
    while (b->send_head) {
        struct be_op *op = b->send_head;
        b->send_head = op->next;
        if (!b->send_head) b->send_tail = NULL;
        op->next = NULL;
        if (b->wait_tail) b->wait_tail->next = op;
        else b->wait_head = op;
        b->wait_tail = op;
        op->sent_at = now;
        if (b->codec->encode(op, &b->out) != GW_OK) {
            backend_reset(b, BE_ERR_OTHER, "out of memory", false);
            return;
        }
    }
    backend_arm_timer(b);
    backend_write(b);
}

/* The head op is answered. */
static void wait_pop(struct backend *b)
{
    struct be_op *op = b->wait_head;
    b->wait_head = op->next;
    if (!b->wait_head) b->wait_tail = NULL;
    b->failures = 0;
    b->served = true;
    if (op->stats) histo_observe(&op->stats->rtt, gw_loop_now(b->rt->loop) - op->sent_at);
    op_finish(b, op);
}

/* A read that fills the buffer while a reply still needs bytes, or that
 * leaves a value of a buffer or more incomplete, is followed at once by
 * another, up to this many in all: the rest is most likely there already,
 * and waiting for the loop to say so would cost a trip through epoll for
 * each piece. */
#define READ_ROUNDS 4

/* Read once and decode what arrived.  true: read again now. */
static bool backend_read_once(struct backend *b)
{
    size_t n;
    int rc = conn_read(&b->conn, &b->in, b->need, &n);
    if (rc == GW_AGAIN) return false;
    if (rc != GW_OK) {
        const char *why = n == 0 && rc == GW_ERROR ? "closed the connection" : "read failed";
        if (b->reused && b->wait_head) backend_resend(b, why);
        else if (b->wait_head) backend_fail(b, BE_ERR_CLOSED, why, "with requests waiting");
        else backend_reset(b, BE_ERR_CLOSED, why, false);
        return false;
    }
    b->reused = false;
    while (rbuf_len(&b->in) > 0) {
        struct be_op *op = b->wait_head;
        if (!op) {
            /* Bytes nobody asked for: the stream cannot be trusted. */
            backend_fail(b, BE_ERR_GARBAGE, "sent an invalid reply", "bytes nobody asked for");
            return false;
        }
        size_t need = 0;
        enum be_decode d = b->codec->decode(b, op, &b->in, &need);
        if (d == BE_NEED) {
            b->need = need;
            return rbuf_full(&b->in) || need >= GW_BUF_SIZE;
        }
        b->need = 0;
        if (d == BE_INVALID || d == BE_UNEXPECTED) {
            char to[40];
            snprintf(to, sizeof to, "to a %s", mc_cmd_name(op->cmd));
            const char *what = d == BE_INVALID ? "sent an invalid reply" : "sent an unexpected reply";
            backend_fail(b, BE_ERR_GARBAGE, what, to);
            return false;
        }
        if (d == BE_DONE) wait_pop(b);
    }
    if (!b->wait_head) gw_timer_stop(b->timer);
    return false;
}

static void backend_read(struct backend *b)
{
    for (int i = 0; i < READ_ROUNDS && backend_read_once(b); i++) {
    }
    /* Bytes the transport holds already (the rest of a TLS record) get no
     * readiness event: read them now, or the reply they finish waits for
     * the next packet, which may never come. */
    while (b->state == BE_CONNECTED && b->wait_head && conn_pending(&b->conn))
        backend_read_once(b);
}

static void backend_on_event(void *data, int events)
{
    struct backend *b = data;
    if (b->state == BE_CONNECTING && (b->tcp_up || (events & GW_EV_WRITE))) {
        char err[GW_NET_ERRLEN + 256];
        if (!b->tcp_up && net_connect_result(b->conn.fd, err) != GW_OK) {
            connect_failed(b, err);
            return;
        }
        b->tcp_up = true;
        int rc = conn_handshake(&b->conn, err, sizeof err); /* TLS; plain has none */
        if (rc == GW_AGAIN) {
            backend_watch(b);
            return;
        }
        if (rc != GW_OK) {
            connect_failed(b, err);
            return;
        }
        b->state = BE_CONNECTED;
        gw_timer_stop(b->timer); /* the flush arms it for the replies */
        backend_flush(b);
        if (b->state != BE_CONNECTED) return;
    }
    if (events & GW_EV_READ) {
        backend_read(b);
        if (b->state != BE_CONNECTED) return;
    }
    if ((events & GW_EV_WRITE) && b->out.count > 0) backend_write(b);
}

/* Lazy timeout: the timer is armed once per busy period and re-armed for
 * the time left, so replies cost no timer work.  A connect is due within
 * connect_timeout of its start; a reply, whole, within timeout of its op's
 * write: a server that drips bytes cannot hold a request past it. */
static void backend_on_timer(void *data, int events)
{
    struct backend *b = data;
    if (!b->wait_head && b->state != BE_CONNECTING) return;
    double now = gw_loop_now(b->rt->loop);
    double start = b->state == BE_CONNECTING ? b->connect_start : b->wait_head->sent_at;
    double left = start + current_timeout(b) - now;
    if (left > 0.0005) {
        gw_timer_start(b->timer, left);
        return;
    }
    STAT_INC(&b->rt->stats, gw_backend_timeouts);
    bool connecting = b->state == BE_CONNECTING;
    char after[48];
    snprintf(after, sizeof after, "no %s within %g s", connecting ? "connect" : "whole reply",
             current_timeout(b));
    backend_fail(b, BE_ERR_TIMEOUT, connecting ? "connect timed out" : "timed out", after);
}

/* --- probing a server that is down ---------------------------------------- */

static void probe_done(struct gw_req *r)
{
    struct backend *b = r->ctx;
    bool ok = r->rkind == RESP_VERSION;
    req_unref(r);
    if (b->closing || !b->down) return;
    if (ok) {
        b->down = false;
        b->failures = 0;
        LOG_WARN("%s: answers again, back in service", b->label);
        return;
    }
    double max = b->opts.retry_timeout > PROBE_MAX_DELAY ? b->opts.retry_timeout : PROBE_MAX_DELAY;
    b->probe_delay = b->probe_delay * 2 < max ? b->probe_delay * 2 : max;
    probe_schedule(b);
}

/* Ask a down server for its version on a fresh connection; the answer
 * puts it back in service (and the connection stays for its requests). */
static void backend_on_probe(void *data, int events)
{
    struct backend *b = data;
    if (!b->down || b->closing || b->admin_down) return;
    struct mc_request mc;
    memset(&mc, 0, sizeof mc);
    mc.cmd = MC_VERSION;
    struct gw_req *r = req_new(b->rt, NULL, NULL, &mc);
    struct be_op *op = r ? op_new(b->rt, r, NULL, MC_VERSION) : NULL;
    if (!op) {
        if (r) req_unref(r);
        probe_schedule(b);
        return;
    }
    r->on_done = probe_done;
    r->ctx = b;
    STAT_INC(&b->rt->stats, gw_backend_probes);
    b->probes++;
    /* Queued past the down check, which is what keeps everyone else out. */
    op->queued = true;
    b->nqueued++;
    if (b->send_tail) b->send_tail->next = op;
    else b->send_head = op;
    b->send_tail = op;
    rt_mark(b->rt, &b->flushq, RT_FLUSH_BACKEND);
}

static void backend_on_flush(struct rt_flushable *f)
{
    backend_flush((struct backend *)((char *)f - offsetof(struct backend, flushq)));
}
