/* binary_codec.c -- memcached's binary protocol, client side (codec.h).
 *
 * A connection whose first byte is 0x80 speaks binary to its end, as in
 * memcached (codec_pick).  Each request becomes one gw_req carrying the
 * text command it does (MC_GET for Get, GetQ, GetK, GetKQ; ...), so routes
 * see "get", "set", ...; its mc.binary says the key may be any bytes and
 * the value has no "\r\n" after it, and the backend sends it in meta where
 * the pool speaks meta (be_meta.h: a stored item's cas, an incr that
 * creates).  The request's bytes stay in the read buffer, header first
 * (r->base), so the answer reads its opcode and opaque from there.
 *
 * Answers are rendered from the request's result, whoever set it (a
 * server's reply, a route's memcache.hit(), the embedded store), with
 * memcached's statuses and messages: quiet opcodes answer only errors (and
 * a Get's miss not at all); errors that are not memcached's own (a server
 * down, a route's memcache.error) are "Internal error" (0x84) with the
 * text as body.  Noop, Version, Stat, Flush and Quit are the front's, as
 * for text.  SASL (PLAIN) is checked by the client (client_sasl, against
 * the listener's users file through the resolver); on a listener that
 * wants a login, anything else before it answers "Auth failure." and
 * closes, as in memcached; the third failed login closes too.
 */
#include <stddef.h>
#include <string.h>

#include "client.h"
#include "codec.h"
#include "codec/binary.h"
#include "proxy/req.h"

/* --- requests ------------------------------------------------------------ */

static void to_request(const struct mc_bin_request *b, struct mc_request *mc)
{
    memset(mc, 0, sizeof *mc);
    mc->cmd = b->cmd;
    mc->line_len = MC_BIN_HEADER;
    mc->total_len = b->total_len;
    mc->key_off = b->key_off;
    mc->key_len = b->keylen;
    mc->bytes = b->value_len;
    mc->data_off = b->value_off;
    mc->flags = b->flags;
    /* memcached reads an expiration as unsigned: past 2^31-1 it is an
     * absolute time after 2038, which meta's T and N (signed 32-bit)
     * cannot carry, and as good as never: no expiry.  (Incr's "do not
     * create" stays as it is.) */
    bool arith = b->cmd == MC_INCR || b->cmd == MC_DECR;
    mc->exptime = b->exptime > INT32_MAX && !(arith && b->exptime == MC_BIN_NO_CREATE)
                      ? 0 : b->exptime;
    mc->cas = b->cas;
    mc->delta = b->delta;
    mc->initial = b->initial;
    mc->delay = b->cmd == MC_FLUSH_ALL ? b->exptime : 0;
    if (b->cmd == MC_STATS) {
        mc->args_off = b->key_off;
        mc->args_len = b->keylen;
    }
    mc->quiet = b->quiet;
    mc->binary = true;
    mc->status = b->status;
}

/* A request whose answer the codec knows already (an error, Noop, SASL):
 * done at once, answered in order. */
static struct gw_req *answered(struct client *c, struct mc_request *mc, const char *base)
{
    mc->cmd = MC_NONE;
    struct gw_req *r = client_request(c, mc, base);
    if (!r) return NULL;
    r->done = true;
    return r;
}

static void set_key(struct gw_req *r)
{
    r->nkeys = 1;
    req_key_init(r, 0, r->base + r->mc.key_off, r->mc.key_len);
}

/* A refused request: its status answered, its body swallowed; a Set over
 * the size limit also drops the key's old value, as memcached does. */
static void refuse(struct client *c, struct mc_request *mc, const char *base, bool close)
{
    STAT_INC(&c->rt->stats, gw_protocol_errors);
    if (mc->status == BIN_E2BIG && (mc->cmd == MC_SET || mc->cmd == MC_CAS)) {
        mc->cmd = MC_DELETE;
        mc->cas = 0;
        struct gw_req *r = client_request(c, mc, base);
        if (!r) return;
        set_key(r);
        client_dispatch(c, r);
        return;
    }
    answered(c, mc, base);
    if (close) c->closing = true;
}

static void sasl(struct client *c, struct mc_request *mc, const struct mc_bin_request *b,
                 const char *base)
{
    struct gw_req *r = answered(c, mc, base);
    if (!r) return;
    r->mc.status = client_sasl(c, b->opcode, base + b->key_off, b->keylen,
                               base + b->value_off, b->value_len);
}

/* One parsed request.  False: stop decoding. */
static bool take(struct client *c, const struct mc_bin_request *b, const char *base)
{
    struct mc_request mc;
    to_request(b, &mc);
    uint8_t op = b->opcode;
    bool sasl_op = op == BIN_SASL_LIST_MECHS || op == BIN_SASL_AUTH || op == BIN_SASL_STEP;
    if (!sasl_op && !client_authenticated(c)) {
        /* memcached answers and closes */
        mc.status = BIN_AUTH_ERROR;
        refuse(c, &mc, base, true);
        return false;
    }
    if (sasl_op) {
        sasl(c, &mc, b, base);
        return !c->closing;
    }
    if (op == BIN_NOOP || mc.cmd == MC_QUIT) {
        if (mc.cmd == MC_QUIT) c->closing = true;
        return answered(c, &mc, base) != NULL && !c->closing;
    }
    struct gw_req *r = client_request(c, &mc, base);
    if (!r) return false;
    STAT_INC(&c->rt->stats, gw_requests);
    if (b->keylen > 0 && mc.cmd != MC_STATS) set_key(r);
    client_dispatch(c, r);
    return true;
}

static void binary_decode(struct client *c)
{
    struct gw_rbuf *in = &c->in;
    struct codec_state *cs = &c->cs;
    while (rbuf_len(in) > 0 && !c->closing) {
        if (codec_swallow(c)) continue;
        if (client_busy(c)) break;
        const char *base = rbuf_data(in);
        struct mc_bin_request b;
        int rc = mc_bin_parse(&cs->parser, base, rbuf_len(in), &b);
        cs->need = rc == GW_AGAIN ? b.total_len : 0;
        if (rc == GW_AGAIN) break;
        if (rc == GW_ERROR && b.status == 0) {
            /* Not a binary header: the stream is lost (memcached closes). */
            in->pos = in->end;
            c->closing = true;
            break;
        }
        if (rc == GW_ERROR) {
            struct mc_request mc;
            to_request(&b, &mc);
            refuse(c, &mc, base, b.close);
            codec_consume(c, b.total_len);
            continue;
        }
        bool go_on = take(c, &b, base);
        in->pos += b.total_len;
        if (!go_on) break;
    }
}

/* --- answers ------------------------------------------------------------- */

struct answer {
    uint8_t opcode;
    uint32_t opaque;
    uint16_t status;
    uint64_t cas;
    const char *extras;
    uint8_t extlen;
    const char *key;
    uint16_t keylen;
    const char *body;        /* the value, or an error's message */
    uint32_t bodylen;
};

static int push_answer(struct client *c, struct gw_req *r, const struct answer *a)
{
    uint8_t *h = (uint8_t *)req_alloc(r, MC_BIN_HEADER + a->extlen);
    if (!h) return GW_NOMEM;
    mc_bin_header(h, a->opcode, a->keylen, a->extlen, a->status,
                  (uint32_t)a->extlen + a->keylen + a->bodylen, a->opaque, a->cas);
    if (a->extlen) memcpy(h + MC_BIN_HEADER, a->extras, a->extlen);
    int rc = oq_push(&c->out, h, MC_BIN_HEADER + a->extlen);
    if (rc == GW_OK && a->keylen) rc = oq_push(&c->out, a->key, a->keylen);
    if (rc == GW_OK && a->bodylen) rc = oq_push(&c->out, a->body, a->bodylen);
    return rc;
}

static void begin(struct answer *a, const struct gw_req *r)
{
    memset(a, 0, sizeof *a);
    const uint8_t *h = (const uint8_t *)r->base;
    a->opcode = h[1];
    memcpy(&a->opaque, h + 12, 4);
}

static int push_status(struct client *c, struct gw_req *r, struct answer *a, uint16_t status)
{
    a->status = status;
    a->body = mc_bin_status_text(status);
    a->bodylen = (uint32_t)strlen(a->body);
    a->cas = 0;
    return push_answer(c, r, a);
}

/* An error line (a server's, a route's, the gateway's): memcached's own
 * errors by their status, the rest as "Internal error" with their text. */
static int push_error(struct client *c, struct gw_req *r, struct answer *a)
{
    static const char ce[] = "CLIENT_ERROR cannot increment or decrement non-numeric value";
    static const char se[] = "SERVER_ERROR ";
    const char *line = r->rline ? r->rline : "SERVER_ERROR no reply\r\n";
    size_t len = r->rline ? r->rlen : 23;
    if (len >= 2 && line[len - 2] == '\r') len -= 2;
    if (len >= sizeof ce - 1 && memcmp(line, ce, sizeof ce - 1) == 0)
        return push_status(c, r, a, BIN_DELTA_BADVAL);
    if (strncmp(line, "SERVER_ERROR object too large", 29) == 0) return push_status(c, r, a, BIN_E2BIG);
    if (strncmp(line, "SERVER_ERROR out of memory", 26) == 0) return push_status(c, r, a, BIN_ENOMEM);
    if (len >= sizeof se - 1 && memcmp(line, se, sizeof se - 1) == 0) {
        line += sizeof se - 1;
        len -= sizeof se - 1;
    }
    a->status = BIN_EINTERNAL;
    a->body = line;
    a->bodylen = (uint32_t)len;
    return push_answer(c, r, a);
}

static int answer_get(struct client *c, struct gw_req *r, struct answer *a, bool with_key)
{
    const struct gw_key *k = &r->keys[0];
    if (k->state == KEY_ERROR || (r->errors && k->state != KEY_HIT)) return push_error(c, r, a);
    if (with_key) {
        a->key = r->base + r->mc.key_off;
        a->keylen = (uint16_t)r->mc.key_len;
    }
    if (k->state != KEY_HIT) {
        if (r->mc.quiet) return GW_OK;
        if (with_key) { /* GetK's miss: the key, no message */
            a->status = BIN_KEY_ENOENT;
            return push_answer(c, r, a);
        }
        return push_status(c, r, a, BIN_KEY_ENOENT);
    }
    uint8_t flags[4] = { (uint8_t)(k->flags >> 24), (uint8_t)(k->flags >> 16),
                         (uint8_t)(k->flags >> 8), (uint8_t)k->flags };
    char *x = req_alloc(r, 4);
    if (!x) return GW_NOMEM;
    memcpy(x, flags, 4);
    a->extras = x;
    a->extlen = 4;
    a->cas = k->cas;
    if (a->opcode != BIN_TOUCH) {
        a->body = k->vdata;
        a->bodylen = k->bytes;
    }
    return push_answer(c, r, a);
}

/* The status a text reply kind stands for, for the command r carries. */
static uint16_t status_of(const struct gw_req *r)
{
    switch (r->rkind) {
    case RESP_STORED: case RESP_DELETED: case RESP_TOUCHED: case RESP_OK: case RESP_NUMBER:
        return BIN_OK;
    case RESP_NOT_FOUND: return BIN_KEY_ENOENT;
    case RESP_EXISTS: return BIN_KEY_EEXISTS;
    case RESP_NOT_STORED:
        /* add of a key that is there; replace of one that is not */
        return r->mc.cmd == MC_ADD ? BIN_KEY_EEXISTS
             : r->mc.cmd == MC_REPLACE ? BIN_KEY_ENOENT : BIN_NOT_STORED;
    default: return BIN_EINTERNAL;
    }
}

static int answer_update(struct client *c, struct gw_req *r, struct answer *a)
{
    if (r->errors || reply_is_error(r->rkind) || !r->rkind) return push_error(c, r, a);
    uint16_t status = status_of(r);
    if (status != BIN_OK) return push_status(c, r, a, status);
    if (r->mc.quiet) return GW_OK;
    a->cas = r->nkeys ? r->keys[0].cas : 0;
    if (r->rkind == RESP_NUMBER) {
        uint64_t v = 0;
        for (uint32_t i = 0; i < r->rlen && r->rline[i] >= '0' && r->rline[i] <= '9'; i++)
            v = v * 10 + (uint64_t)(r->rline[i] - '0');
        uint8_t *b = (uint8_t *)req_alloc(r, 8);
        if (!b) return GW_NOMEM;
        for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
        a->body = (const char *)b;
        a->bodylen = 8;
    }
    return push_answer(c, r, a);
}

/* stats: each "STAT name value" line an answer with the name as key and
 * the value as body, then an empty one (the text reply's END). */
static int answer_stats(struct client *c, struct gw_req *r, struct answer *a)
{
    if (!r->rline || r->rkind == RESP_ERROR) return push_status(c, r, a, BIN_KEY_ENOENT);
    const char *p = r->rline, *end = r->rline + r->rlen;
    int rc = GW_OK;
    while (rc == GW_OK && p < end && strncmp(p, "STAT ", 5) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        const char *name = p + 5, *line_end = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        const char *sp = memchr(name, ' ', (size_t)(line_end - name));
        a->key = name;
        a->keylen = (uint16_t)((sp ? sp : line_end) - name);
        a->body = sp ? sp + 1 : line_end;
        a->bodylen = (uint32_t)(line_end - a->body);
        rc = push_answer(c, r, a);
        p = nl + 1;
    }
    /* the run's end: an answer with no key and no body */
    a->key = a->body = NULL;
    a->keylen = 0;
    a->bodylen = 0;
    return rc == GW_OK ? push_answer(c, r, a) : rc;
}

/* Answers the codec made itself (refusals, Noop, Quit, SASL). */
static int answer_own(struct client *c, struct gw_req *r, struct answer *a)
{
    uint16_t status = r->mc.status;
    if (a->opcode == BIN_SASL_LIST_MECHS && status == BIN_OK) {
        a->body = "PLAIN";
        a->bodylen = 5;
        return push_answer(c, r, a);
    }
    if ((a->opcode == BIN_SASL_AUTH || a->opcode == BIN_SASL_STEP) && status == BIN_OK) {
        a->body = "Authenticated";
        a->bodylen = 13;
        return push_answer(c, r, a);
    }
    if (status != BIN_OK) return push_status(c, r, a, status);
    if (r->mc.quiet) return GW_OK; /* QuitQ */
    return push_answer(c, r, a);   /* Noop, Quit */
}

static int binary_encode(struct client *c, struct gw_req *r)
{
    struct answer a;
    begin(&a, r);
    if (r->mc.cmd == MC_NONE) return answer_own(c, r, &a);
    if (r->mc.status) return push_status(c, r, &a, r->mc.status); /* a Set too large */
    switch (r->mc.cmd) {
    case MC_GET: case MC_GAT:
        return answer_get(c, r, &a, a.opcode == BIN_GETK || a.opcode == BIN_GETKQ ||
                                        a.opcode == BIN_GATK || a.opcode == BIN_GATKQ);
    case MC_TOUCH:
        if (r->rkind == RESP_TOUCHED && r->nkeys) r->keys[0].state = KEY_HIT;
        else if (r->rkind == RESP_NOT_FOUND) r->keys[0].state = KEY_MISS;
        return answer_get(c, r, &a, false);
    case MC_VERSION: {
        const char *v = r->rline ? r->rline : "VERSION \r\n";
        a.body = v + 8;
        a.bodylen = r->rline ? r->rlen - 10 : 0;
        return push_answer(c, r, &a);
    }
    case MC_STATS:
        return answer_stats(c, r, &a);
    case MC_FLUSH_ALL:
        if (r->errors || (r->rkind && r->rkind != RESP_OK)) return push_error(c, r, &a);
        return r->mc.quiet ? GW_OK : push_answer(c, r, &a);
    default:
        return answer_update(c, r, &a);
    }
}

const struct codec codec_binary = {
    .name = "binary",
    .decode = binary_decode,
    .encode = binary_encode,
};
