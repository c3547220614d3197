/* internal.c -- see internal.h. */
#include "internal.h"

#include <inttypes.h>

#include "base/buf.h"
#include "pool.h"
#include "req.h"
#include "rt/rt.h"
#include "store/store.h"

static void *alloc_value_buf(void *ctx, size_t n)
{
    struct gw_buf **bp = ctx;
    *bp = buf_new(n + 2);
    return *bp ? (*bp)->data : NULL;
}

void internal_get(struct pool *p, struct gw_req *r, uint32_t k)
{
    struct gw_key *key = &r->keys[k];
    bool touch = r->mc.cmd == MC_GAT || r->mc.cmd == MC_GATS;
    struct gw_buf *vb = NULL;
    char *data;
    size_t bytes;
    enum store_result res = store_get(p->store, key->bkey, key->bklen, touch, r->mc.exptime,
                                      &key->flags, &key->cas, &data, &bytes, alloc_value_buf, &vb);
    if (res != STORE_HIT || !vb) {
        buf_unref(vb);
        key->state = res == STORE_MISS ? KEY_MISS : KEY_ERROR;
        return;
    }
    vb->data[bytes] = '\r';
    vb->data[bytes + 1] = '\n';
    key->state = KEY_HIT;
    key->bytes = (uint32_t)bytes;
    key->vbuf = vb;
    key->vdata = vb->data;
}

/* The reply a memcached server gives for a store result. */
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

/* The text of the results that are errors, as memcached words them. */
static const char *store_error_line(enum store_result res)
{
    switch (res) {
    case STORE_NON_NUMERIC:
        return "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    case STORE_TOO_LARGE: return "SERVER_ERROR object too large for cache\r\n";
    case STORE_NOMEM: return "SERVER_ERROR out of memory storing object\r\n";
    default: return "SERVER_ERROR internal store error\r\n";
    }
}

static const enum store_op store_ops[MC_CMD_COUNT] = {
    [MC_SET] = STORE_SET, [MC_ADD] = STORE_ADD, [MC_REPLACE] = STORE_REPLACE,
    [MC_APPEND] = STORE_APPEND, [MC_PREPEND] = STORE_PREPEND, [MC_CAS] = STORE_CAS,
};

void internal_single(struct pool *p, struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    struct gw_key *k = &r->keys[0];
    enum store_result res;
    uint64_t n = 0;
    switch (m->cmd) {
    case MC_DELETE:
        res = store_delete(p->store, k->bkey, k->bklen);
        break;
    case MC_INCR:
    case MC_DECR:
        res = store_arith(p->store, k->bkey, k->bklen, m->cmd == MC_INCR, m->delta, &n);
        break;
    case MC_TOUCH:
        res = store_touch(p->store, k->bkey, k->bklen, m->exptime);
        break;
    default:
        res = store_update(p->store, store_ops[m->cmd], k->bkey, k->bklen, m->flags,
                           m->exptime, r->base + m->data_off, m->bytes, m->cas);
        break;
    }
    enum mc_resp_kind kind = store_kind(res);
    req_count_reply(&r->rt->stats, m->cmd, kind);
    if (kind == RESP_NUMBER) req_reply_fmt(r, "%" PRIu64, n);
    else if (reply_line(kind)) req_reply_kind(r, kind);
    else req_reply_static(r, store_error_line(res));
    r->rkind = (uint8_t)kind;
}

void internal_flush(struct pool *p, int64_t delay)
{
    store_flush(p->store, delay);
}
