/* internal.c -- see internal.h. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "codec/binary.h"
#include "codec/meta.h"
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

static void get_key(struct pool *p, struct gw_req *r, uint32_t k, bool touch, int64_t exptime)
{
    struct gw_key *key = &r->keys[k];
    struct gw_buf *vb = NULL;
    char *data;
    size_t bytes;
    enum store_result res = store_get(p->store, key->bkey, key->bklen, touch, exptime,
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

void internal_get(struct pool *p, struct gw_req *r, uint32_t k)
{
    get_key(p, r, k, r->mc.cmd == MC_GAT || r->mc.cmd == MC_GATS, r->mc.exptime);
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

/* --- meta requests ------------------------------------------------------ */

/* The token of the request's meta flag letter (the parser checked it), or
 * NULL when it was not sent. */
static const char *meta_token(const struct gw_req *r, char letter, uint32_t *len)
{
    uint32_t pos = 0, n;
    const char *tok;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &n)) {
        if (tok[0] == letter) {
            *len = n - 1;
            return tok + 1;
        }
    }
    return NULL;
}

static int64_t meta_number(const struct gw_req *r, char letter, int64_t dflt)
{
    uint32_t len;
    const char *t = meta_token(r, letter, &len);
    return t && len > 0 ? strtoll(t, NULL, 10) : dflt;
}

/* Flags the embedded store cannot honour (compare-and-delete, invalidation,
 * stale-while-revalidate, a given CAS), per command; sent anyway they get an
 * error rather than a reply that pretends. */
static const char *meta_unsupported(const struct gw_req *r)
{
    static const char *const letters[MC_CMD_COUNT] = {
        [MC_META_GET] = "ENR", [MC_META_SET] = "EI", [MC_META_DELETE] = "CEIx",
        [MC_META_ARITH] = "CE",
    };
    for (const char *l = letters[r->mc.cmd]; l && *l; l++) {
        uint32_t len;
        if (meta_token(r, *l, &len)) return l;
    }
    return NULL;
}

/* ms: its mode (M) as a store op, C making a set a cas. */
static enum store_op meta_set_op(const struct gw_req *r)
{
    uint32_t len;
    const char *mode = meta_token(r, 'M', &len);
    switch (mode ? mode[0] : 'S') {
    case 'E': case 'e': return STORE_ADD;
    case 'A': case 'a': return STORE_APPEND;
    case 'P': case 'p': return STORE_PREPEND;
    case 'R': case 'r': return STORE_REPLACE;
    default: return meta_token(r, 'C', &len) ? STORE_CAS : STORE_SET;
    }
}

static enum store_result meta_set(struct pool *p, struct gw_req *r)
{
    const struct gw_key *k = &r->keys[0];
    enum store_op op = meta_set_op(r);
    const char *data = r->base + r->mc.data_off;
    uint32_t flags = (uint32_t)meta_number(r, 'F', 0);
    enum store_result res = store_update(p->store, op, k->bkey, k->bklen, flags,
                                         meta_number(r, 'T', 0), data, r->mc.bytes,
                                         (uint64_t)meta_number(r, 'C', 0));
    uint32_t len;
    /* N: an append or prepend to a missing item creates it. */
    if (res == STORE_NOT_STORED && (op == STORE_APPEND || op == STORE_PREPEND) &&
        meta_token(r, 'N', &len))
        res = store_update(p->store, STORE_ADD, k->bkey, k->bklen, flags,
                           meta_number(r, 'N', 0), data, r->mc.bytes, 0);
    return res;
}

/* An incr or decr of a missing key that creates it (ma's N, a binary
 * client's expiration): the item made at its initial value, which is
 * what the client is answered. */
static enum store_result create_number(struct pool *p, const struct gw_key *k, uint64_t initial,
                                       int64_t exptime, uint64_t *n)
{
    char num[24];
    int nl = snprintf(num, sizeof num, "%" PRIu64, initial);
    enum store_result res = store_update(p->store, STORE_ADD, k->bkey, k->bklen, 0, exptime,
                                         num, (size_t)nl, 0);
    *n = initial;
    return res == STORE_STORED ? STORE_ARITH_OK : res;
}

/* ma: incr or decr by D (1), creating a missing item at J (0) with N. */
static enum store_result meta_arith(struct pool *p, struct gw_req *r, uint64_t *n)
{
    const struct gw_key *k = &r->keys[0];
    uint32_t len;
    const char *mode = meta_token(r, 'M', &len);
    bool incr = !mode || mode[0] == 'I' || mode[0] == 'i' || mode[0] == '+';
    enum store_result res = store_arith(p->store, k->bkey, k->bklen, incr,
                                        (uint64_t)meta_number(r, 'D', 1), n);
    if (res == STORE_NOT_FOUND && meta_token(r, 'N', &len))
        res = create_number(p, k, (uint64_t)meta_number(r, 'J', 0), meta_number(r, 'N', 0), n);
    if (res == STORE_ARITH_OK && meta_token(r, 'T', &len))
        store_touch(p->store, k->bkey, k->bklen, meta_number(r, 'T', 0));
    return res;
}

/* A meta request: the result is set as for a text one (a hit, or a reply
 * kind) and the client's meta codec renders it. */
static void internal_meta(struct pool *p, struct gw_req *r)
{
    const char *bad = meta_unsupported(r);
    if (r->mc.cmd == MC_META_DEBUG) {
        req_fail_key(r, 0, "memcache.internal does not support me");
        return;
    }
    if (bad) {
        char why[64];
        snprintf(why, sizeof why, "memcache.internal does not support flag %c", *bad);
        req_fail_key(r, 0, why);
        return;
    }
    struct gw_key *k = &r->keys[0];
    enum store_result res;
    uint64_t n = 0;
    uint32_t len;
    switch (r->mc.cmd) {
    case MC_META_GET:
        get_key(p, r, 0, meta_token(r, 'T', &len) != NULL, meta_number(r, 'T', 0));
        if (k->state == KEY_ERROR) req_fail_key(r, 0, "out of memory");
        return;
    case MC_META_SET: res = meta_set(p, r); break;
    case MC_META_DELETE: res = store_delete(p->store, k->bkey, k->bklen); break;
    default: res = meta_arith(p, r, &n); break;
    }
    enum mc_resp_kind kind = store_kind(res);
    if (kind == RESP_NUMBER) req_reply_fmt(r, "%" PRIu64, n);
    else if (reply_line(kind)) req_reply_kind(r, kind);
    else req_reply_static(r, store_error_line(res));
    r->rkind = (uint8_t)kind;
    if (reply_is_error(kind)) r->errors = true;
}

void internal_single(struct pool *p, struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    if (mc_cmd_is_meta(m->cmd)) {
        internal_meta(p, r);
        return;
    }
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
        if (res == STORE_NOT_FOUND && m->binary && m->exptime != (int64_t)MC_BIN_NO_CREATE)
            res = create_number(p, k, m->initial, m->exptime, &n);
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
