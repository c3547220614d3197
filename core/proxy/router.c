/* router.c -- see router.h. */
#include "router.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "base/buf.h"
#include "front/client.h"
#include "script/lhost.h"
#include "pool.h"
#include "req.h"
#include "codec/resp.h"
#include "front/stats.h"
#include "store/store.h"
#include "base/version.h"
#include "server/worker.h"

#define GW_VERSION_LINE "VERSION " GW_VERSION_REPLY "\r\n"

static void *alloc_value_buf(void *ctx, size_t n)
{
    struct gw_buf **bp = ctx;
    *bp = buf_new(n + 2);
    return *bp ? (*bp)->data : NULL;
}

/* A retrieval key served by the embedded store. */
static void internal_get(struct pool *p, struct gw_req *r, struct gw_key *k)
{
    bool touch = r->mc.cmd == MC_GAT || r->mc.cmd == MC_GATS;
    struct gw_buf *vb = NULL;
    char *data;
    size_t bytes;
    enum store_result res = store_get(p->store, k->bkey, k->bklen, touch, r->mc.exptime,
                                      &k->flags, &k->cas, &data, &bytes, alloc_value_buf, &vb);
    if (res != STORE_HIT || !vb) {
        buf_unref(vb);
        k->state = res == STORE_MISS ? KEY_MISS : KEY_ERROR;
        return;
    }
    vb->data[bytes] = '\r';
    vb->data[bytes + 1] = '\n';
    k->state = KEY_HIT;
    k->bytes = (uint32_t)bytes;
    k->vbuf = vb;
    k->vdata = vb->data;
}

static const char *store_line(enum store_result res)
{
    switch (res) {
    case STORE_STORED: return "STORED\r\n";
    case STORE_NOT_STORED: return "NOT_STORED\r\n";
    case STORE_EXISTS: return "EXISTS\r\n";
    case STORE_NOT_FOUND: return "NOT_FOUND\r\n";
    case STORE_DELETED: return "DELETED\r\n";
    case STORE_TOUCHED: return "TOUCHED\r\n";
    case STORE_NON_NUMERIC:
        return "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    case STORE_TOO_LARGE: return "SERVER_ERROR object too large for cache\r\n";
    case STORE_NOMEM: return "SERVER_ERROR out of memory storing object\r\n";
    default: return "SERVER_ERROR internal store error\r\n";
    }
}

/* The reply kind a backend would have sent for a store result. */
static enum mc_resp_kind store_kind(enum store_result res)
{
    switch (res) {
    case STORE_STORED: return RESP_STORED;
    case STORE_NOT_STORED: return RESP_NOT_STORED;
    case STORE_EXISTS: return RESP_EXISTS;
    case STORE_NOT_FOUND: return RESP_NOT_FOUND;
    case STORE_DELETED: return RESP_DELETED;
    case STORE_TOUCHED: return RESP_TOUCHED;
    case STORE_ARITH_OK: return RESP_NUMBER;
    case STORE_NON_NUMERIC: return RESP_CLIENT_ERROR;
    default: return RESP_SERVER_ERROR;
    }
}

static const enum store_op store_ops[MC_CMD_COUNT] = {
    [MC_SET] = STORE_SET, [MC_ADD] = STORE_ADD, [MC_REPLACE] = STORE_REPLACE,
    [MC_APPEND] = STORE_APPEND, [MC_PREPEND] = STORE_PREPEND, [MC_CAS] = STORE_CAS,
};

/* A single-key command served by the embedded store. */
static void internal_single(struct worker *w, struct pool *p, struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    struct gw_key *k = &r->keys[0];
    enum store_result res;
    uint64_t n;
    switch (m->cmd) {
    case MC_DELETE:
        res = store_delete(p->store, k->bkey, k->bklen);
        break;
    case MC_INCR:
    case MC_DECR:
        res = store_arith(p->store, k->bkey, k->bklen, m->cmd == MC_INCR, m->delta, &n);
        if (res == STORE_ARITH_OK) {
            stats_count_reply(&w->stats, m->cmd, RESP_NUMBER);
            req_reply_fmt(r, "%" PRIu64, n);
            r->rkind = RESP_NUMBER;
            return;
        }
        break;
    case MC_TOUCH:
        res = store_touch(p->store, k->bkey, k->bklen, m->exptime);
        break;
    default:
        res = store_update(p->store, store_ops[m->cmd], k->bkey, k->bklen, m->flags,
                           m->exptime, r->base + m->data_off, m->bytes, m->cas);
        break;
    }
    r->rkind = (uint8_t)store_kind(res);
    stats_count_reply(&w->stats, m->cmd, r->rkind);
    req_reply_static(r, store_line(res));
}

/* Fill in an op's command text for a single-key command. */
static void op_format_single(struct be_op *op, const struct mc_request *m)
{
    const char *name = mc_cmd_name(m->cmd);
    op->head_len = (uint16_t)snprintf(op->head, sizeof op->head, "%s ", name);
    int n;
    switch (m->cmd) {
    case MC_CAS:
        n = snprintf(op->tail, sizeof op->tail, " %u %" PRId64 " %u %" PRIu64 "\r\n", m->flags,
                     m->exptime, m->bytes, m->cas);
        break;
    case MC_INCR:
    case MC_DECR:
        n = snprintf(op->tail, sizeof op->tail, " %" PRIu64 "\r\n", m->delta);
        break;
    case MC_TOUCH:
        n = snprintf(op->tail, sizeof op->tail, " %" PRId64 "\r\n", m->exptime);
        break;
    case MC_DELETE:
        n = snprintf(op->tail, sizeof op->tail, "\r\n");
        break;
    default: /* set, add, replace, append, prepend */
        n = snprintf(op->tail, sizeof op->tail, " %u %" PRId64 " %u\r\n", m->flags, m->exptime,
                     m->bytes);
        break;
    }
    op->tail_len = (uint16_t)n;
}

static void op_format_retrieval(struct be_op *op, const struct mc_request *m)
{
    const char *name = mc_cmd_name(m->cmd);
    if (m->cmd == MC_GAT || m->cmd == MC_GATS)
        op->head_len = (uint16_t)snprintf(op->head, sizeof op->head, "%s %" PRId64 " ", name,
                                          m->exptime);
    else
        op->head_len = (uint16_t)snprintf(op->head, sizeof op->head, "%s ", name);
}

void router_send(struct worker *w, struct pool *p, struct gw_req *r, uint32_t k)
{
    bool retrieval = mc_cmd_is_retrieval(r->mc.cmd);
    struct gw_key *key = &r->keys[k];
    if (p->kind == POOL_INTERNAL) {
        if (retrieval) internal_get(p, r, key);
        else internal_single(w, p, r);
        return;
    }
    struct backend *b = pool_pick(p, key->bkey, key->bklen);
    if (!b) {
        if (p->multiget_error) r->fail_whole = true;
        req_fail_key(r, k, "no server available");
        return;
    }
    struct be_op *op = op_new(w, r, p, r->mc.cmd);
    if (!op) {
        req_fail_key(r, k, "out of memory");
        return;
    }
    if (retrieval) {
        op_format_retrieval(op, &r->mc);
        op->first_key = op->last_key = op->cur_key = (int32_t)k;
    } else {
        op_format_single(op, &r->mc);
    }
    backend_enqueue(b, op);
}

static void dispatch_single(struct worker *w, struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    r->nkeys = 1;
    req_key_init(r, 0, r->base + m->key_off, m->key_len);
    if (mc_cmd_is_storage(m->cmd)) STAT_INC(&w->stats, cmd_set);
    else if (m->cmd == MC_TOUCH) STAT_INC(&w->stats, cmd_touch);
    struct pool *p;
    if (lhost_route(w->lua, r, 0, &p) == ROUTE_POOL) router_send(w, p, r, 0);
}

#define BATCH_SLOTS 64

struct batch {
    int n;
    struct backend *be[BATCH_SLOTS];
    struct be_op *op[BATCH_SLOTS];
};

static void batch_send(struct batch *bt)
{
    for (int j = 0; j < bt->n; j++) backend_enqueue(bt->be[j], bt->op[j]);
    bt->n = 0;
}

/* Add key k of r to the op bound for backend b, starting one if need be. */
static void batch_add(struct worker *w, struct batch *bt, struct gw_req *r, uint32_t k,
                      struct pool *p, struct backend *b)
{
    int s = 0;
    while (s < bt->n && !(bt->be[s] == b && bt->op[s]->pool == p)) s++;
    if (s == bt->n) {
        if (bt->n == BATCH_SLOTS) batch_send(bt); /* too many servers: send what we have */
        struct be_op *op = op_new(w, r, p, r->mc.cmd);
        if (!op) {
            req_fail_key(r, k, "out of memory");
            return;
        }
        op_format_retrieval(op, &r->mc);
        op->first_key = op->cur_key = (int32_t)k;
        s = bt->n++;
        bt->be[s] = b;
        bt->op[s] = op;
    } else {
        r->keys[bt->op[s]->last_key].next = (int32_t)k;
    }
    bt->op[s]->last_key = (int32_t)k;
}

/* Route each key; batch the keys bound for each backend into one op.  Keys
 * whose route is still running (a backend call from Lua) are sent alone
 * when it ends. */
static void dispatch_retrieval(struct worker *w, struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    if (req_reserve_keys(r, m->nkeys) != GW_OK) {
        req_fail_key(r, 0, "out of memory");
        return;
    }
    struct batch bt;
    bt.n = 0;
    uint32_t pos = m->keys_off, off, len, i = 0;
    while (mc_key_next(r->base, m, &pos, &off, &len)) {
        req_key_init(r, i, r->base + off, len);
        r->nkeys = ++i;
        uint32_t k = i - 1;
        struct pool *p;
        if (lhost_route(w->lua, r, k, &p) != ROUTE_POOL) continue;
        if (p->kind == POOL_INTERNAL) {
            internal_get(p, r, &r->keys[k]);
            continue;
        }
        struct backend *b = pool_pick(p, r->keys[k].bkey, r->keys[k].bklen);
        if (b) {
            batch_add(w, &bt, r, k, p, b);
        } else {
            if (p->multiget_error) r->fail_whole = true;
            req_fail_key(r, k, "no server available");
        }
    }
    batch_send(&bt);
}

static void dispatch_flush(struct worker *w, struct gw_req *r)
{
    STAT_INC(&w->stats, cmd_flush);
    struct pool **pools;
    int n = lhost_pools(w->lua, &pools);
    for (int i = 0; i < n; i++) {
        struct pool *p = pools[i];
        if (p->kind == POOL_INTERNAL) {
            store_flush(p->store, r->mc.delay);
            continue;
        }
        for (uint32_t s = 0; s < p->nservers; s++) {
            struct be_op *op = op_new(w, r, p, MC_FLUSH_ALL);
            if (!op) {
                r->errors = true;
                continue;
            }
            op->head_len = (uint16_t)(r->mc.delay
                ? snprintf(op->head, sizeof op->head, "flush_all %" PRId64 "\r\n", r->mc.delay)
                : snprintf(op->head, sizeof op->head, "flush_all\r\n"));
            backend_enqueue(p->servers[s].be, op);
        }
    }
}

void router_dispatch(struct worker *w, struct gw_req *r)
{
    /* The dispatch itself counts as one pending op, so backends that fail
     * at once cannot finish the request before every key is routed. */
    r->pending = 1;
    /* The request finishes under the config it started with, even if a
     * reload switches the worker to another meanwhile. */
    r->host = w->lua;
    lhost_hold(r->host);
    switch (r->mc.cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        dispatch_retrieval(w, r);
        break;
    case MC_FLUSH_ALL:
        dispatch_flush(w, r);
        break;
    case MC_VERSION:
        req_reply_static(r, GW_VERSION_LINE);
        break;
    case MC_VERBOSITY:
        req_reply_static(r, "OK\r\n");
        break;
    case MC_STATS:
        stats_reply(w, r);
        break;
    default:
        dispatch_single(w, r);
        break;
    }
    req_op_done(r);
}

void router_conn_closed(struct worker *w, struct client *c)
{
    lhost_conn_closed(c);
}
