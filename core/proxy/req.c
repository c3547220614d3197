/* req.c -- see req.h. */
#include "req.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/meta.h"
#include "resolver.h"
#include "rt/rt.h"

struct arena_chunk {
    struct arena_chunk *next;
    char data[];
};

static void arena_reset(struct gw_req *r)
{
    struct arena_chunk *c = r->arena.chunks;
    while (c) {
        struct arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    r->arena.chunks = NULL;
    r->arena.cur = r->arena_inline;
    r->arena.left = sizeof r->arena_inline;
}

char *req_alloc(struct gw_req *r, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n > r->arena.left) {
        size_t size = n > 4096 ? n : 4096;
        struct arena_chunk *c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->next = r->arena.chunks;
        r->arena.chunks = c;
        r->arena.cur = c->data;
        r->arena.left = size;
    }
    char *p = r->arena.cur;
    r->arena.cur += n;
    r->arena.left -= n;
    return p;
}

struct gw_req *req_new(struct rt *rt, struct gw_buf *in, const char *base,
                       const struct mc_request *mc)
{
    struct gw_req *r = freelist_get(&rt->reqs);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
        r->arena.cur = r->arena_inline;
        r->arena.left = sizeof r->arena_inline;
    }
    r->next = NULL;
    r->rt = rt;
    r->res = NULL;
    r->on_done = NULL;
    r->ctx = NULL;
    r->conn_id = 0;
    r->peer.family = 0;
    r->listener = NULL;
    r->user = NULL;
    r->mc = *mc;
    r->base = base;
    r->in = in;
    if (in) buf_ref(in);
    r->refs = 1;
    r->pending = 0;
    r->done = false;
    r->errors = false;
    r->fail_whole = false;
    r->rkind = 0;
    r->runit = false;
    r->rline = NULL;
    r->rlen = 0;
    r->forced_reply = NULL;
    r->fail_reply = NULL;
    r->rline_buf = NULL;
    r->out_left = 0;
    r->charge = 0;
    r->started = 0;
    r->nkeys = 0;
    r->keys = r->keys_inline;
    return r;
}

int req_reserve_keys(struct gw_req *r, uint32_t n)
{
    if (n <= REQ_INLINE_KEYS) {
        r->keys = r->keys_inline;
        return GW_OK;
    }
    if (n > r->keys_heap_cap) {
        struct gw_key *k = realloc(r->keys_heap, n * sizeof *k);
        if (!k) return GW_NOMEM;
        r->keys_heap = k;
        r->keys_heap_cap = n;
    }
    r->keys = r->keys_heap;
    return GW_OK;
}

void req_key_init(struct gw_req *r, uint32_t i, const char *key, uint32_t len)
{
    struct gw_key *k = &r->keys[i];
    k->ckey = k->bkey = key;
    k->cklen = k->bklen = (uint16_t)len;
    k->state = KEY_PENDING;
    k->next = -1;
    k->vbuf = NULL;
    k->vdata = NULL;
    k->route = NULL;
}

void req_unref(struct gw_req *r)
{
    if (--r->refs > 0) return;
    for (uint32_t i = 0; i < r->nkeys; i++) buf_unref(r->keys[i].vbuf);
    r->nkeys = 0;
    buf_unref(r->rline_buf);
    r->rline_buf = NULL;
    buf_unref(r->in);
    r->in = NULL;
    if (r->arena.chunks || r->arena.cur != r->arena_inline) arena_reset(r);
    if (r->res) resolver_release(r->res);
    r->res = NULL;
    if (r->keys_heap_cap > REQ_KEEP_KEYS) {
        free(r->keys_heap);
        r->keys_heap = NULL;
        r->keys_heap_cap = 0;
    }
    if (!freelist_put(&r->rt->reqs, r)) {
        free(r->keys_heap);
        free(r);
    }
}

static void req_release(void *p)
{
    struct gw_req *r = p;
    free(r->keys_heap);
    free(r);
}

size_t req_cache_trim(struct rt *rt)
{
    return (size_t)freelist_trim(&rt->reqs, req_release) * sizeof(struct gw_req);
}

void req_cache_drain(struct rt *rt)
{
    freelist_drain(&rt->reqs, req_release);
}

/* The key's bytes, printable: \xNN for what is not plain ASCII text. */
static size_t escape_key(const char *k, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < len; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c > 32 && c < 127 && c != '"' && c != '\\') out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
    }
    out[o] = 0;
    return o;
}

const char *req_describe(const struct gw_req *r, uint32_t k, char *out, size_t len)
{
    char peer[GW_PEER_STRLEN], key[4 * 250 + 8];
    net_peer_format(&r->peer, peer, sizeof peer);
    if (k < r->nkeys) {
        escape_key(r->keys[k].ckey, r->keys[k].cklen, key, sizeof key);
        snprintf(out, len, "key \"%s\" client %s", key, peer);
    } else {
        snprintf(out, len, "client %s", peer);
    }
    return out;
}

void req_reply_held(struct gw_req *r, struct gw_buf *buf, const char *p, uint32_t len)
{
    buf_ref(buf);
    buf_unref(r->rline_buf);
    r->runit = false;
    r->rline = p;
    r->rlen = len;
    r->rline_buf = buf;
}

void req_reply_static(struct gw_req *r, const char *line)
{
    r->runit = false;
    r->rline = line;
    r->rlen = (uint32_t)strlen(line);
}

void req_reply_kind(struct gw_req *r, enum mc_resp_kind kind)
{
    r->runit = false;
    r->rline = reply_line(kind);
    r->rlen = (uint32_t)reply_line_len(kind);
    r->rkind = (uint8_t)kind;
}

void req_reply_fmt(struct gw_req *r, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp - 2, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof tmp - 3) n = (int)sizeof tmp - 3;
    char *p = req_alloc(r, (size_t)n + 2);
    if (!p) {
        req_reply_static(r, "SERVER_ERROR out of memory\r\n");
        return;
    }
    memcpy(p, tmp, (size_t)n);
    p[n] = '\r';
    p[n + 1] = '\n';
    r->runit = false;
    r->rline = p;
    r->rlen = (uint32_t)n + 2;
}

bool req_meta_key_hidden(const struct gw_req *r)
{
    const struct gw_key *k = &r->keys[0];
    if (!r->mc.binary_key && k->bkey == k->ckey) return false; /* a text key, as sent */
    if (mc_key_valid(k->bkey, k->bklen)) return false;
    uint32_t pos = 0, len;
    const char *tok;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &len))
        if (tok[0] == 'k') return true;
    return false;
}

void req_fail_key(struct gw_req *r, uint32_t k, const char *why)
{
    if (mc_cmd_is_retrieval(r->mc.cmd)) r->keys[k].state = KEY_ERROR;
    r->errors = true;
    req_reply_fmt(r, "SERVER_ERROR %s", why);
    r->rkind = RESP_SERVER_ERROR;
}

void req_op_done(struct gw_req *r)
{
    if (--r->pending > 0) return;
    if (r->fail_reply && r->errors) req_reply_static(r, r->fail_reply);
    r->done = true;
    if (r->on_done) r->on_done(r);
}

void req_count_reply(struct gw_stats *st, enum mc_cmd cmd, enum mc_resp_kind kind)
{
    switch (cmd) {
    case MC_DELETE:
        if (kind == RESP_DELETED) STAT_INC(st, delete_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, delete_misses);
        break;
    case MC_INCR:
        if (kind == RESP_NUMBER) STAT_INC(st, incr_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, incr_misses);
        break;
    case MC_DECR:
        if (kind == RESP_NUMBER) STAT_INC(st, decr_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, decr_misses);
        break;
    case MC_TOUCH:
        if (kind == RESP_TOUCHED) STAT_INC(st, touch_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, touch_misses);
        break;
    case MC_CAS:
        if (kind == RESP_STORED) STAT_INC(st, cas_hits);
        else if (kind == RESP_EXISTS) STAT_INC(st, cas_badval);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, cas_misses);
        break;
    default:
        break;
    }
}

void req_count_retrieval(const struct gw_req *r)
{
    struct gw_stats *st = &r->rt->stats;
    STAT_ADD(st, cmd_get, r->nkeys);
    if (r->mc.cmd == MC_GAT || r->mc.cmd == MC_GATS) STAT_ADD(st, cmd_touch, r->nkeys);
    uint32_t hits = 0;
    for (uint32_t i = 0; i < r->nkeys; i++) {
        const struct gw_key *k = &r->keys[i];
        hits += k->state == KEY_HIT;
        if (k->route && k->state == KEY_HIT) k->route->hits++;
        else if (k->route) k->route->misses++;
    }
    STAT_ADD(st, get_hits, hits);
    STAT_ADD(st, get_misses, r->nkeys - hits);
}
