/* client.c -- see client.h. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "proxy/req.h"
#include "proxy/router.h"
#include "server/worker.h"

static const char END[] = "END\r\n";

static void client_on_event(void *data, int events);

void client_new(struct worker *w, const struct listener *l, int fd)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->w = w;
    c->listener = l;
    c->fd = fd;
    c->conn_ref = -2; /* LUA_NOREF */
    mc_parser_init(&c->parser, gw_settings.max_line, gw_settings.max_value);
    c->parser.binary_keys = gw_settings.binary_keys;
    c->io = gw_io_new(w->loop, fd, GW_EV_READ, client_on_event, c);
    if (!c->io) {
        close(fd);
        free(c);
        return;
    }
    c->next = w->clients;
    if (w->clients) w->clients->prev = c;
    w->clients = c;
    STAT_INC(&w->stats, curr_connections);
    STAT_INC(&w->stats, total_connections);
}

static void release_list(struct gw_req *r)
{
    while (r) {
        struct gw_req *next = r->next;
        r->client = NULL;
        req_unref(r);
        r = next;
    }
}

void client_close(struct client *c)
{
    struct worker *w = c->w;
    if (c->dirty) {
        /* Unlink from the dirty list (rare: closing while dirty). */
        struct client **pp = &w->dirty_clients;
        while (*pp && *pp != c) pp = &(*pp)->next_dirty;
        if (*pp) *pp = c->next_dirty;
    }
    if (c->prev) c->prev->next = c->next;
    else w->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    release_list(c->head);
    release_list(c->whead);
    gw_io_free(c->io);
    close(c->fd);
    rbuf_release(&c->in);
    oq_free(&c->out);
    router_conn_closed(w, c);
    STAT_DEC(&w->stats, curr_connections);
    free(c);
}

static void enqueue(struct client *c, struct gw_req *r)
{
    r->client = c;
    r->next = NULL;
    if (c->tail) c->tail->next = r;
    else c->head = r;
    c->tail = r;
    c->pending++;
}

static bool is_too_large(const char *error)
{
    static const char msg[] = "SERVER_ERROR object too large";
    return strncmp(error, msg, sizeof msg - 1) == 0;
}

/* memcached drops the stored value of a set it refuses as too large, so a
 * client never reads the old value back after a failed set: the refused
 * set becomes a delete of its key, answered with the error. */
static void enqueue_refused_set(struct client *c, const struct mc_request *mc, struct gw_buf *in,
                                const char *base)
{
    struct gw_req *r = req_new(c->w, in, base, mc);
    if (!r) {
        c->closing = true;
        return;
    }
    r->mc.cmd = MC_DELETE;
    r->forced_reply = "SERVER_ERROR object too large for cache\r\n";
    enqueue(c, r);
    STAT_INC(&c->w->stats, gw_protocol_errors);
    router_dispatch(c->w, r);
}

/* A request the parser refused: its reply is the parser's error line. */
static void enqueue_error(struct client *c, const struct mc_request *mc)
{
    struct gw_req *r = req_new(c->w, NULL, NULL, mc);
    if (!r) {
        c->closing = true;
        return;
    }
    /* memcached stays silent on a refused noreply command, unless the
     * connection is about to close. */
    if (mc->close) r->mc.noreply = false;
    r->mc.cmd = MC_NONE; /* the reply is the error line, whatever the command */
    req_reply_fmt(r, "%s", mc->error);
    r->done = true;
    enqueue(c, r);
    STAT_INC(&c->w->stats, gw_protocol_errors);
    if (mc->close) c->closing = true;
}

static bool over_limits(const struct client *c)
{
    return c->pending >= gw_settings.max_pending || c->out.bytes >= gw_settings.max_output;
}

/* Parse and dispatch every whole request in the read buffer. */
static void client_parse(struct client *c)
{
    struct gw_rbuf *in = &c->in;
    while (rbuf_len(in) > 0 && !c->closing) {
        if (c->swallow) {
            size_t k = rbuf_len(in) < c->swallow ? rbuf_len(in) : c->swallow;
            in->pos += (uint32_t)k;
            c->swallow -= k;
            continue;
        }
        if (over_limits(c)) {
            c->paused = true;
            break;
        }
        struct mc_request mc;
        const char *base = rbuf_data(in);
        int rc = mc_parse(&c->parser, base, rbuf_len(in), &mc);
        if (rc == GW_AGAIN) break;
        if (rc == GW_ERROR) {
            if (mc.cmd == MC_SET && !mc.close && is_too_large(mc.error))
                enqueue_refused_set(c, &mc, in->b, base);
            else
                enqueue_error(c, &mc);
            if (mc.total_len > rbuf_len(in)) {
                c->swallow = mc.total_len - rbuf_len(in);
                in->pos = in->end;
            } else {
                in->pos += mc.total_len;
            }
            continue;
        }
        struct gw_req *r = req_new(c->w, in->b, base, &mc);
        in->pos += mc.total_len;
        if (!r) {
            c->closing = true;
            break;
        }
        enqueue(c, r);
        STAT_INC(&c->w->stats, gw_requests);
        if (mc.cmd == MC_QUIT) {
            r->done = true;
            c->closing = true;
            break;
        }
        router_dispatch(c->w, r);
    }
    worker_mark_client(c->w, c);
}

static void client_read(struct client *c)
{
    size_t n;
    int rc = rbuf_read(&c->in, c->fd, 0, &n);
    if (rc == GW_AGAIN) return;
    if (rc != GW_OK) {
        client_close(c);
        return;
    }
    STAT_ADD(&c->w->stats, bytes_read, n);
    client_parse(c);
}

/* Queue the reply of a retrieval: a VALUE unit per hit, then END. */
static int queue_values(struct client *c, struct gw_req *r)
{
    struct gw_oq *q = &c->out;
    struct gw_stats *st = &c->w->stats;
    bool with_cas = r->mc.cmd == MC_GETS || r->mc.cmd == MC_GATS;
    /* One key that failed answers the error; in a multi-get failed keys are
     * misses (python-memcached's get_multi), unless the pool says to fail
     * the whole request. */
    if (r->rline && r->errors && (r->nkeys == 1 ? r->keys[0].state == KEY_ERROR : r->fail_whole))
        return oq_push(q, r->rline, r->rlen);
    STAT_ADD(st, cmd_get, r->nkeys);
    if (r->mc.cmd == MC_GAT || r->mc.cmd == MC_GATS) STAT_ADD(st, cmd_touch, r->nkeys);
    int rc = GW_OK;
    for (uint32_t i = 0; i < r->nkeys && rc == GW_OK; i++) {
        struct gw_key *k = &r->keys[i];
        if (k->state != KEY_HIT) {
            STAT_INC(st, get_misses);
            continue;
        }
        STAT_INC(st, get_hits);
        char *h = req_alloc(r, k->cklen + 64);
        if (!h) return GW_NOMEM;
        int n = sprintf(h, "VALUE %.*s %u %u", (int)k->cklen, k->ckey, k->flags, k->bytes);
        if (with_cas) n += sprintf(h + n, " %llu", (unsigned long long)k->cas);
        h[n++] = '\r';
        h[n++] = '\n';
        rc = oq_push(q, h, (size_t)n);
        if (rc == GW_OK) rc = oq_push(q, k->vdata, (size_t)k->bytes + 2);
    }
    if (rc == GW_OK) rc = oq_push(q, END, sizeof END - 1);
    return rc;
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
        r->next = NULL;
        if (r->mc.cmd == MC_QUIT) {
            c->closing = true;
            req_unref(r);
            release_list(c->head);
            c->head = c->tail = NULL;
            c->pending = 0;
            break;
        }
        size_t before = c->out.bytes;
        int rc = GW_OK;
        if (!r->mc.noreply) {
            if (r->forced_reply) rc = oq_push(&c->out, r->forced_reply, strlen(r->forced_reply));
            else if (mc_cmd_is_retrieval(r->mc.cmd)) rc = queue_values(c, r);
            else if (r->rline) rc = oq_push(&c->out, r->rline, r->rlen);
        }
        if (rc != GW_OK) return rc;
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

void client_flush(struct client *c)
{
    if (queue_replies(c) != GW_OK) {
        client_close(c);
        return;
    }
    if (c->out.count > 0) {
        size_t written;
        int rc = oq_write(&c->out, c->fd, &written);
        STAT_ADD(&c->w->stats, bytes_written, written);
        retire_written(c, written);
        if (rc == GW_ERROR) {
            client_close(c);
            return;
        }
    }
    if (c->closing && c->out.count == 0 && !c->head) {
        client_close(c);
        return;
    }
    if (c->paused && !over_limits(c)) {
        c->paused = false;
        client_parse(c);
    }
    int ev = (c->paused || c->closing) ? 0 : GW_EV_READ;
    if (c->out.count > 0) ev |= GW_EV_WRITE;
    gw_io_set(c->io, ev);
}

void client_request_done(struct client *c, struct gw_req *r)
{
    if (c->head && c->head->done) worker_mark_client(c->w, c);
}

static void client_on_event(void *data, int events)
{
    struct client *c = data;
    if (events & GW_EV_WRITE) {
        client_flush(c);
        return;
    }
    if (events & GW_EV_READ) client_read(c);
}
