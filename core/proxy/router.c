/* router.c -- see router.h. */
#include "router.h"

#include "backend.h"
#include "base/log.h"
#include "internal.h"
#include "pool.h"
#include "req.h"
#include "resolver.h"
#include "rt/rt.h"

/* Key k of r found no server in pool p: logged (rate limited per pool) and
 * failed. */
static void send_failed(struct pool *p, struct gw_req *r, uint32_t k, const char *why)
{
    char what[REQ_DESCRIBE_LEN];
    LOG_WARN_LIMIT(p->name, "pool %s: %s, %s failed (%s)", p->name, why, mc_cmd_name(r->mc.cmd),
                   req_describe(r, k, what, sizeof what));
    if (p->policy.multiget_error) r->fail_whole = true;
    if (p->stats) p->stats->errors[BE_ERR_DOWN]++;
    r->rt->metrics.errors[CERR_BACKEND]++;
    req_fail_key(r, k, why);
}

/* Can key k of r go to backend b of pool p?  *meta: its op goes in meta
 * (a binary client's request, to a pool that speaks meta: be_meta.h).
 * If not, the key fails with the backend codec's reason. */
static bool sendable(const struct pool *p, const struct backend *b, struct gw_req *r, uint32_t k,
                     bool *meta)
{
    *meta = r->mc.binary && !p->text_only;
    const char *why = b->codec->refuses ? b->codec->refuses(r, k, *meta) : NULL;
    if (!why) return true;
    req_fail_key(r, k, why);
    return false;
}

void router_send(struct pool *p, struct gw_req *r, uint32_t k)
{
    bool retrieval = mc_cmd_is_retrieval(r->mc.cmd);
    struct gw_key *key = &r->keys[k];
    if (p->kind == POOL_INTERNAL) {
        if (retrieval) internal_get(p, r, k);
        else internal_single(p, r);
        return;
    }
    if (r->mc.cmd == MC_META_DEBUG && !mc_key_valid(key->bkey, key->bklen)) {
        /* me's reply writes the key raw (req_meta_key_hidden). */
        req_fail_key(r, k, "me is not relayed for a key that is no text key");
        return;
    }
    if (p->text_only && mc_cmd_is_meta(r->mc.cmd)) {
        req_fail_key(r, k, "pool speaks only the text protocol (protocol = \"text\")");
        return;
    }
    struct server *s = pool_pick_server(p, key->bkey, key->bklen);
    if (!s) {
        send_failed(p, r, k, "no server available");
        return;
    }
    struct backend *b = s->be;
    bool meta;
    if (!sendable(p, b, r, k, &meta)) return;
    if (retrieval && !meta) {
        struct be_op *open = backend_open_batch(b, r, &p->policy);
        if (open && op_add_key(b, open, k)) return;
    }
    struct be_op *op = op_new(r->rt, r, &p->policy, r->mc.cmd);
    if (!op) {
        req_fail_key(r, k, "out of memory");
        return;
    }
    op->stats = s->stats;
    op->meta = meta;
    if (retrieval) op_first_key(op, k);
    backend_enqueue(b, op);
}

static void dispatch_single(struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    struct gw_stats *st = &r->rt->stats;
    /* A meta request's codec set its key already (decoded from base64). */
    if (r->nkeys == 0) req_key_init(r, 0, r->base + m->key_off, m->key_len);
    r->nkeys = 1;
    if (mc_cmd_is_storage(m->cmd) || m->cmd == MC_META_SET) STAT_INC(st, cmd_set);
    else if (m->cmd == MC_TOUCH) STAT_INC(st, cmd_touch);
    struct pool *p;
    if (resolver_route(r->res, r, 0, &p) == ROUTE_POOL) router_send(p, r, 0);
}

/* A multi-get's ops under construction: one per (server, pool). */
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

/* Add key k of r to the op bound for server s, starting one if need be
 * (also when the op's line is full: that one is sent as it is). */
static void batch_add(struct batch *bt, struct gw_req *r, uint32_t k, struct pool *p,
                      struct server *srv)
{
    struct backend *b = srv->be;
    int s = 0;
    while (s < bt->n && !(bt->be[s] == b && bt->op[s]->policy == &p->policy)) s++;
    if (s < bt->n && op_add_key(b, bt->op[s], k)) return;
    struct be_op *op = op_new(r->rt, r, &p->policy, r->mc.cmd);
    if (!op) {
        req_fail_key(r, k, "out of memory");
        return;
    }
    op->stats = srv->stats;
    op_first_key(op, k);
    if (s < bt->n) {
        backend_enqueue(bt->be[s], bt->op[s]);
    } else {
        if (bt->n == BATCH_SLOTS) batch_send(bt); /* too many servers: send what we have */
        s = bt->n++;
        bt->be[s] = b;
    }
    bt->op[s] = op;
}

/* Route each key; batch the keys bound for each backend into one op.  Keys
 * whose route is still running (a backend call from Lua) are sent alone
 * when it ends. */
static void dispatch_retrieval(struct gw_req *r)
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
        if (resolver_route(r->res, r, k, &p) != ROUTE_POOL) continue;
        if (p->kind == POOL_INTERNAL) {
            internal_get(p, r, k);
            continue;
        }
        struct server *s = pool_pick_server(p, r->keys[k].bkey, r->keys[k].bklen);
        if (s) batch_add(&bt, r, k, p, s);
        else send_failed(p, r, k, "no server available");
    }
    batch_send(&bt);
}

void router_flush(struct gw_req *r, struct pool **pools, int n)
{
    r->pending = 1;
    r->res = r->rt->resolver;
    resolver_hold(r->res);
    STAT_INC(&r->rt->stats, cmd_flush);
    req_reply_kind(r, RESP_OK);
    r->fail_reply = "SERVER_ERROR flush_all failed on a backend\r\n";
    if (n < 0) n = resolver_pools(r->res, &pools);
    for (int i = 0; i < n; i++) {
        struct pool *p = pools[i];
        if (p->kind == POOL_INTERNAL) {
            internal_flush(p, r->mc.delay);
            continue;
        }
        for (uint32_t s = 0; s < p->nservers; s++) {
            /* No policy: a flush goes to its own server or fails. */
            struct be_op *op = op_new(r->rt, r, NULL, MC_FLUSH_ALL);
            if (!op) {
                r->errors = true;
                continue;
            }
            backend_enqueue(p->servers[s].be, op);
        }
    }
    req_op_done(r);
}

void router_dispatch(struct gw_req *r)
{
    /* The dispatch itself counts as one pending op, so backends that fail
     * at once cannot finish the request before every key is routed. */
    r->pending = 1;
    /* The request finishes under the config it started with, even if a
     * reload switches the thread to another meanwhile. */
    r->res = r->rt->resolver;
    resolver_hold(r->res);
    /* A binary client's get has one key, set by its codec. */
    if (mc_cmd_is_retrieval(r->mc.cmd) && !r->mc.binary) dispatch_retrieval(r);
    else dispatch_single(r);
    req_op_done(r);
}
