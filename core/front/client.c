/* client.c -- see client.h. */
#include "client.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "base/loop.h"
#include "base/log.h"
#include "base/users.h"
#include "codec/binary.h"
#include "listener.h"
#include "proxy/req.h"
#include "proxy/resolver.h"
#include "proxy/router.h"
#include "rt/settings.h"

static void client_on_event(void *data, int events);
static void client_on_flush(struct rt_flushable *f);
static void client_request_done(struct gw_req *r);

/* The first byte of a TLS client's first record (a handshake). */
#define TLS_HANDSHAKE_RECORD 0x16

static void mark(struct client *c)
{
    rt_mark(c->rt, &c->flushq, RT_FLUSH_CLIENT);
}

void client_new(struct rt *rt, const struct listener *l, int fd, const struct gw_peer *peer)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->rt = rt;
    c->listener = l;
    c->id = rt_conn_id(rt);
    c->peer = *peer;
    /* The listener's transport: TLS when it has a context.  The session
     * holds its own reference, so a reload that changes the listener's
     * context leaves this connection as it began. */
    if (l->tls) {
        char who[GW_PEER_STRLEN];
        if (conn_init_tls_server(&c->conn, fd, l->tls, net_peer_format(peer, who, sizeof who)) != GW_OK) {
            free(c);
            close(fd);
            return;
        }
    } else {
        conn_init_plain(&c->conn, fd);
    }
    c->codec = &codec_text;
    mc_parser_init(&c->cs.parser, gw_settings.max_line, gw_settings.max_value);
    c->cs.parser.binary_keys = gw_settings.binary_keys;
    c->flushq.flush = client_on_flush;
    gw_io_embed(&c->io, rt->loop, fd, GW_EV_READ, client_on_event, c);
    c->next = rt->clients;
    if (rt->clients) rt->clients->prev = c;
    rt->clients = c;
    STAT_INC(&rt->stats, curr_connections);
    STAT_INC(&rt->stats, total_connections);
}

/* The client is going away: its requests finish alone. */
static void release_list(struct gw_req *r)
{
    while (r) {
        struct gw_req *next = r->next;
        r->on_done = NULL;
        r->ctx = NULL;
        req_unref(r);
        r = next;
    }
}

void client_close(struct client *c)
{
    struct rt *rt = c->rt;
    rt_unmark(rt, &c->flushq, RT_FLUSH_CLIENT);
    if (c->prev) c->prev->next = c->next;
    else rt->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    release_list(c->head);
    release_list(c->whead);
    gw_io_stop(gw_io_in(&c->io));
    conn_close(&c->conn);
    rbuf_release(&c->in);
    oq_free(&c->out);
    free(c->user);
    resolver_conn_closed(rt->resolver, c->id);
    STAT_DEC(&rt->stats, curr_connections);
    rt->freed += sizeof *c;
    free(c);
}

void clients_drain(struct rt *rt)
{
    for (struct client *c = rt->clients; c; c = c->next) {
        c->closing = true;
        mark(c);
    }
}

void clients_close_all(struct rt *rt)
{
    while (rt->clients) client_close(rt->clients);
}

static void enqueue(struct client *c, struct gw_req *r)
{
    r->on_done = client_request_done;
    r->ctx = c;
    r->next = NULL;
    if (c->tail) c->tail->next = r;
    else c->head = r;
    c->tail = r;
    c->pending++;
}

struct gw_req *client_request(struct client *c, const struct mc_request *mc, const char *base)
{
    struct gw_req *r = req_new(c->rt, base ? c->in.b : NULL, base, mc);
    if (!r) {
        c->closing = true;
        return NULL;
    }
    r->conn_id = c->id;
    r->peer = c->peer;
    r->listener = &c->listener->label;
    if (c->user) {
        /* a copy: a route may still run once the client has gone */
        size_t n = strlen(c->user) + 1;
        char *u = req_alloc(r, n);
        if (u) r->user = memcpy(u, c->user, n);
    }
    r->started = gw_loop_now(c->rt->loop); /* the loop's clock: no syscall */
    /* What its reply may pin, at worst, until it is written. */
    r->charge = mc->total_len;
    if (mc_cmd_is_retrieval(mc->cmd) || mc->cmd == MC_META_GET)
        r->charge += (size_t)mc->nkeys * gw_settings.max_value;
    c->inflight += r->charge;
    enqueue(c, r);
    return r;
}

/* Commands with no key (flush_all, stats, verbosity): the config says, per
 * listener, whether they may run and on what. */
static bool keyless(enum mc_cmd cmd)
{
    return cmd == MC_FLUSH_ALL || cmd == MC_STATS || cmd == MC_VERBOSITY;
}

void client_dispatch(struct client *c, struct gw_req *r)
{
    c->rt->metrics.commands[r->mc.cmd]++;
    if (!keyless(r->mc.cmd) && !admin_answers(r->mc.cmd)) {
        router_dispatch(r);
        return;
    }
    struct pool **pools = NULL;
    int n = -1;
    if (keyless(r->mc.cmd) &&
        resolver_keyless(c->rt->resolver, r, &pools, &n) == KEYLESS_ANSWERED) {
        r->pending = 1;
        req_op_done(r);
    } else if (r->mc.cmd == MC_FLUSH_ALL) {
        router_flush(r, pools, n);
    } else {
        r->pending = 1;
        admin_answer(r);
        req_op_done(r);
    }
}

/* A request answered with line (no "\r\n") at once; close after it. */
static void answer(struct client *c, const struct mc_request *mc, const char *line, bool close)
{
    struct gw_req *r = client_request(c, mc, NULL);
    if (!r) return;
    if (close) r->mc.noreply = false;
    r->mc.cmd = MC_NONE; /* the reply is the line, whatever the command */
    req_reply_fmt(r, "%s", line);
    r->done = true;
    if (close) c->closing = true;
}

void client_refuse(struct client *c, const struct mc_request *mc, const char *line, bool close)
{
    /* memcached stays silent on a refused noreply command, unless the
     * connection is about to close. */
    answer(c, mc, line, close);
    STAT_INC(&c->rt->stats, gw_protocol_errors);
}

bool client_authenticated(const struct client *c)
{
    return !c->must_auth || c->user;
}

/* The client's address for a log line. */
static const char *peer_text(const struct client *c, char *out, size_t len)
{
    return net_peer_format(&c->peer, out, len);
}

/* A failed login, logged with the client's address (the resolver logs
 * the user, never the password). */
static void login_failed(struct client *c, const char *why)
{
    if (++c->failed_logins >= CLIENT_LOGIN_TRIES) c->closing = true;
    char peer[GW_PEER_STRLEN];
    LOG_WARN_LIMIT(c->listener->label, "listener %s: client %s: authentication failed (%s)",
                   c->listener->label, peer_text(c, peer, sizeof peer), why);
}

/* Check user/pass against the listener's users; on success the client is
 * logged in as user.  GW_ERROR: refused (logged); GW_NOMEM. */
static int login(struct client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    if (resolver_auth(c->rt->resolver, c->listener->label, user, ulen, pass, plen) != AUTH_OK) {
        login_failed(c, "refused");
        return GW_ERROR;
    }
    c->user = malloc(ulen + 1);
    if (!c->user) return GW_NOMEM;
    memcpy(c->user, user, ulen);
    c->user[ulen] = '\0';
    return GW_OK;
}

uint16_t client_sasl(struct client *c, uint8_t opcode, const char *mech, size_t mlen,
                     const char *data, size_t dlen)
{
    if (!c->must_auth) return BIN_UNKNOWN_COMMAND; /* as memcached without SASL */
    if (opcode == BIN_SASL_LIST_MECHS) return BIN_OK;
    if (c->user) return BIN_AUTH_ERROR;              /* once per connection */
    const char *user, *pass, *why = "not PLAIN";
    size_t ulen, plen;
    bool plain = opcode == BIN_SASL_AUTH && mlen == 5 && memcmp(mech, "PLAIN", 5) == 0;
    if (!plain || users_sasl_plain(data, dlen, &user, &ulen, &pass, &plen, &why) != GW_OK) {
        login_failed(c, why);
        return BIN_AUTH_ERROR;
    }
    int rc = login(c, user, ulen, pass, plen);
    return rc == GW_OK ? BIN_OK : rc == GW_NOMEM ? BIN_ENOMEM : BIN_AUTH_ERROR;
}

/* The login gate's answer to mc: sent even for noreply, as memcached does. */
static void answer_line(struct client *c, const struct mc_request *mc, const char *line, bool close)
{
    struct mc_request m = *mc;
    m.noreply = false;
    answer(c, &m, line, close);
}

void client_gate(struct client *c, const struct mc_request *mc, const char *base)
{
    if (mc->cmd != MC_SET) {
        answer_line(c, mc, "CLIENT_ERROR unauthenticated", false);
        return;
    }
    /* memcached's ASCII authentication (-Y): a set whose data is
     * "user password"; its key, flags and noreply do not matter. */
    const char *data = base + mc->data_off;
    const char *sp = memchr(data, ' ', mc->bytes);
    if (!sp) {
        login_failed(c, "no \"user password\" in the set");
        answer_line(c, mc, "CLIENT_ERROR bad authentication token format", false);
        return;
    }
    const char *pass = sp, *end = data + mc->bytes;
    while (pass < end && *pass == ' ') pass++;
    int rc = login(c, data, (size_t)(sp - data), pass, (size_t)(end - pass));
    if (rc == GW_OK) {
        answer_line(c, mc, "STORED", false);
    } else {
        answer_line(c, mc, rc == GW_NOMEM ? "SERVER_ERROR out of memory"
                                          : "CLIENT_ERROR authentication failure", c->closing);
    }
}

bool client_busy(const struct client *c)
{
    return c->pending >= gw_settings.max_pending || c->out.bytes >= gw_settings.max_output ||
           (c->pending > 0 && c->out.bytes + c->inflight >= gw_settings.max_client_memory);
}

static void client_decode(struct client *c)
{
    if (c->closing) return;
    if (!c->cs.started && rbuf_len(&c->in) > 0) {
        /* Chosen by the first byte, as memcached does; whether the client
         * must log in is the config's word when it first speaks. */
        c->cs.started = true;
        if (!c->listener->tls && (uint8_t)rbuf_data(&c->in)[0] == TLS_HANDSHAKE_RECORD) {
            /* No command starts so: a TLS client at the wrong port.  It
             * would wait for a handshake that never comes; close. */
            char who[GW_PEER_STRLEN];
            LOG_INFO("client %s speaks TLS to a listener without tls; closing",
                     net_peer_format(&c->peer, who, sizeof who));
            c->closing = true;
            return;
        }
        c->codec = codec_pick((uint8_t)rbuf_data(&c->in)[0]);
        c->must_auth = resolver_auth(c->rt->resolver, c->listener->label, NULL, 0, NULL, 0) !=
                       AUTH_NONE;
        /* Its verified TLS certificate names the user, the handshake being
         * done by now; on a listener that wants a login, the login does. */
        if (!c->must_auth) c->user = conn_peer_user(&c->conn);
    }
    c->codec->decode(c);
    if (client_busy(c) && rbuf_len(&c->in) > 0) c->paused = true;
    mark(c);
}

/* Nothing pending: no partial request read, no request in flight, no
 * reply queued or being written. */
static bool client_idle(const struct client *c)
{
    return !c->head && !c->whead && c->out.count == 0 && rbuf_len(&c->in) == 0;
}

/* An idle client gives its read buffer and its output array back to the
 * thread's free lists, so an idle connection costs only its struct; its
 * next read takes a buffer again (client.h). */
static void client_park(struct client *c)
{
    if (c->in.b) rbuf_release(&c->in);
    if (c->out.iov) oq_free(&c->out);
}

/* Reads that may follow one another at once while a large value arrives
 * (see client_read). */
#define READ_ROUNDS 4

static void client_read(struct client *c)
{
    for (int round = 0; round < READ_ROUNDS; round++) {
        size_t n;
        /* Room for the whole request when its line gave its size and a full
         * buffer of it has come (so a client must send 16 KB before the
         * gateway sets aside up to max_value for it): one buffer, the bytes
         * already read copied once, not a copy at each doubling. */
        size_t need = rbuf_full(&c->in) ? c->cs.need : 0;
        int rc = conn_read(&c->conn, &c->in, need, &n);
        if (rc == GW_AGAIN) {
            if (client_idle(c)) client_park(c);
            /* The transport waits for a write readiness (a TLS handshake):
             * the flush asks for it. */
            if (conn_events(&c->conn, GW_EV_READ) != GW_EV_READ) mark(c);
            return;
        }
        if (rc != GW_OK) {
            /* The peer sent all it will (or the socket failed: then writing
             * fails too).  What it sent is still answered. */
            c->eof = true;
            mark(c);
            return;
        }
        STAT_ADD(&c->rt->stats, bytes_read, n);
        client_decode(c);
        /* A value of a buffer or more still arriving is most likely in the
         * socket already: read on rather than wait for epoll to say so. */
        if (c->cs.need < GW_BUF_SIZE || c->closing || c->paused) return;
    }
}

/* Move finished requests, in order, from the head of the queue into the
 * output queue. */
static int queue_replies(struct client *c)
{
    while (c->head && c->head->done) {
        struct gw_req *r = c->head;
        c->head = r->next;
        if (!c->head) c->tail = NULL;
        c->pending--;
        c->inflight -= r->charge;
        r->next = NULL;
        if (r->mc.cmd == MC_QUIT) {
            c->closing = true;
            req_unref(r);
            release_list(c->head);
            c->head = c->tail = NULL;
            c->pending = 0;
            c->inflight = 0;
            break;
        }
        size_t before = c->out.bytes;
        if (mc_cmd_is_retrieval(r->mc.cmd) && !r->forced_reply && !req_retrieval_failed(r))
            req_count_retrieval(r);
        else if (r->mc.cmd == MC_META_GET && !r->errors)
            req_count_retrieval(r);
        if (r->nkeys > 0 && r->keys[0].route && r->started > 0)
            histo_observe(&r->keys[0].route->duration, gw_loop_now(c->rt->loop) - r->started);
        if (!r->mc.noreply) {
            int rc = c->codec->encode(c, r);
            if (rc != GW_OK) return rc;
        }
        r->out_left = (uint32_t)(c->out.bytes - before);
        if (r->out_left == 0) {
            req_unref(r);
            continue;
        }
        if (c->wtail) c->wtail->next = r;
        else c->whead = r;
        c->wtail = r;
    }
    return GW_OK;
}

/* Free requests whose replies have been written. */
static void retire_written(struct client *c, size_t written)
{
    while (c->whead && written > 0) {
        struct gw_req *r = c->whead;
        if (written < r->out_left) {
            r->out_left -= (uint32_t)written;
            return;
        }
        written -= r->out_left;
        c->whead = r->next;
        if (!c->whead) c->wtail = NULL;
        req_unref(r);
    }
}

static void client_flush(struct client *c)
{
    if (queue_replies(c) != GW_OK) {
        client_close(c);
        return;
    }
    if (c->out.count > 0) {
        size_t written;
        int rc = conn_writev(&c->conn, &c->out, &written);
        STAT_ADD(&c->rt->stats, bytes_written, written);
        retire_written(c, written);
        if (rc == GW_ERROR) {
            client_close(c);
            return;
        }
    }
    if (c->paused && !client_busy(c)) {
        c->paused = false;
        client_decode(c);
    }
    /* Done when every reply is written: after quit or on shutdown, or once
     * a peer that stopped sending has had its last whole request answered
     * (a request it cut off midway gets nothing, as with memcached). */
    if ((c->closing || (c->eof && !c->paused)) && c->out.count == 0 && !c->head) {
        client_close(c);
        return;
    }
    /* Bytes the transport holds already will get no readiness event. */
    if (!c->paused && !c->closing && !c->eof && conn_pending(&c->conn)) {
        mark(c);
        client_read(c);
        return;
    }
    if (client_idle(c)) client_park(c);
    int ev = (c->paused || c->closing || c->eof) ? 0 : GW_EV_READ;
    if (c->out.count > 0) ev |= GW_EV_WRITE;
    gw_io_set(gw_io_in(&c->io), conn_events(&c->conn, ev));
}

static void client_on_flush(struct rt_flushable *f)
{
    client_flush((struct client *)((char *)f - offsetof(struct client, flushq)));
}

static void client_request_done(struct gw_req *r)
{
    struct client *c = r->ctx;
    if (c->head && c->head->done) mark(c);
}

static void client_on_event(void *data, int events)
{
    struct client *c = data;
    if ((events & GW_EV_WRITE) && c->out.count == 0) {
        /* Not for a reply: the transport must write to read on (a TLS
         * handshake's flight the socket would not take at once).  Read,
         * and let the flush ask for the events anew. */
        client_read(c);
        mark(c);
        return;
    }
    if (events & GW_EV_WRITE) {
        client_flush(c);
        return;
    }
    if (events & GW_EV_READ) client_read(c);
}
