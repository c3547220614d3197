/* meta_codec.c -- memcached's meta protocol, client side (codec.h).
 *
 * A meta request (mg ms md ma mn me) becomes one gw_req whose mc holds the
 * command, the key as sent (key_off/key_len: base64 with b), its flags as
 * sent (args_off/args_len), q (quiet) and b (binary_key); the key a route
 * sees and a server is sent is the decoded one, kept in the request.  mn
 * is answered by the gateway (admin.c): replies leave in request order, so
 * its MN follows every earlier reply, whichever servers they came from.
 *
 * Replies
 * - A server's reply unit is relayed as it came (r->runit), its value
 *   never copied.  Its line is rebuilt around the client's own key only
 *   when a route changed the key and the unit carries it back (k), or when
 *   the server was not asked for k (req_meta_key_hidden: a key that is no
 *   text key, which memcached may write raw).
 * - q: the server was asked without it (be_text.c), and what q suppresses
 *   is dropped here, as memcached 1.6.18 drops it: EN for mg, HD for ms
 *   and md, HD and VA for ma.  Errors are always sent.
 * - A reply made by the gateway (a Lua route's memcache.hit(), the
 *   embedded store, a failure) is rendered in meta with the flags the
 *   client asked for that the gateway knows: O and k always (with b after
 *   k when the key came in base64), and on an mg hit c, f and s.  h, l and
 *   t, which only the server that holds the item knows, are left out.
 */
#include <string.h>

#include "base/fmt.h"
#include "client.h"
#include "codec.h"
#include "codec/meta.h"
#include "codec/meta_resp.h"
#include "proxy/req.h"

static const char TOO_LARGE[] = "SERVER_ERROR object too large for cache\r\n";

/* The key routes see: the decoded one, copied into the request when it
 * was base64 (the parse's buffer is gone once decoding moves on). */
static int set_key(struct gw_req *r, const char *base, const struct mc_meta_request *m)
{
    size_t len;
    const char *k = mc_meta_key(base, m, &len);
    if (m->binary_key) {
        char *p = req_alloc(r, len ? len : 1);
        if (!p) return GW_NOMEM;
        memcpy(p, k, len);
        k = p;
    }
    r->nkeys = 1;
    req_key_init(r, 0, k, (uint32_t)len);
    return GW_OK;
}

/* memcached drops the stored value of a key whose ms it refuses as too
 * large, whatever the mode: the refused ms becomes an md of its key,
 * answered with the error. */
static void refuse_set(struct client *c, const struct mc_meta_request *m, const char *base)
{
    struct mc_request mc;
    mc_meta_to_request(m, &mc);
    mc.cmd = MC_META_DELETE;
    mc.args_len = 0;
    mc.quiet = false;
    struct gw_req *r = client_request(c, &mc, base);
    if (!r) return;
    r->forced_reply = TOO_LARGE;
    STAT_INC(&c->rt->stats, gw_protocol_errors);
    if (set_key(r, base, m) != GW_OK) {
        r->done = true;
        return;
    }
    client_dispatch(c, r);
}

bool meta_decode(struct client *c)
{
    struct gw_rbuf *in = &c->in;
    struct codec_state *cs = &c->cs;
    const char *base = rbuf_data(in);
    struct mc_meta_request m;
    int rc = mc_meta_parse(&cs->parser, base, rbuf_len(in), &m);
    cs->need = rc == GW_AGAIN ? m.total_len : 0;
    if (rc == GW_AGAIN) return false;
    struct mc_request mc;
    mc_meta_to_request(&m, &mc);
    if (rc == GW_ERROR) {
        if (m.cmd == MC_META_SET && m.error == MC_ERR_TOO_LARGE && !m.close)
            refuse_set(c, &m, base);
        else
            client_refuse(c, &mc, m.error, m.close);
        codec_consume(c, m.total_len);
        return true;
    }
    if (!client_authenticated(c)) {
        client_gate(c, &mc, base);
        in->pos += m.total_len;
        return true;
    }
    struct gw_req *r = client_request(c, &mc, base);
    in->pos += m.total_len;
    if (!r) return false;
    STAT_INC(&c->rt->stats, gw_requests);
    if (m.cmd != MC_META_NOOP && set_key(r, base, &m) != GW_OK) {
        req_reply_static(r, "SERVER_ERROR out of memory\r\n");
        r->errors = true;
        r->done = true;
        return true;
    }
    client_dispatch(c, r);
    return true;
}

/* --- replies ------------------------------------------------------------- */

/* Whether q drops a reply that starts with word (two letters).  An MN
 * unit stands for a reply the server itself suppressed (be_text.c's
 * probe). */
static bool quiet_drops(enum mc_cmd cmd, const char *word)
{
    bool hd = word[0] == 'H' && word[1] == 'D';
    if (word[0] == 'M' && word[1] == 'N') return true;
    switch (cmd) {
    case MC_META_GET: return word[0] == 'E' && word[1] == 'N';
    case MC_META_SET:
    case MC_META_DELETE: return hd;
    case MC_META_ARITH: return hd || (word[0] == 'V' && word[1] == 'A');
    default: return false;
    }
}

/* " k<key as sent>" and " b" after it when it came in base64. */
static size_t put_key_flag(char *h, const struct gw_req *r)
{
    size_t n = fmt_mem(h, " k", 2);
    n += fmt_mem(h + n, r->base + r->mc.key_off, r->mc.key_len);
    if (r->mc.binary_key) n += fmt_mem(h + n, " b", 2);
    return n;
}

/* The most a rendered line can take besides its flags as sent: the word,
 * a size, c f s numbers, the key and "\r\n". */
#define LINE_EXTRA (8 + 4 * (FMT_U64_MAX + 2) + MC_KEY_MAX + 4)

/* k was not asked of the server (req_meta_key_hidden): it goes where
 * memcached puts it, in request order, before the first reply flag that a
 * request flag after k asked for, or before the W X Z it adds at the end. */
static bool key_goes_before(const struct gw_req *r, char letter)
{
    if (letter == 'W' || letter == 'X' || letter == 'Z') return true;
    uint32_t pos = 0, len;
    const char *tok;
    bool after_k = false;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &len)) {
        if (tok[0] == 'k') after_k = true;
        else if (after_k && tok[0] == letter) return true;
    }
    return false;
}

/* The unit's line rebuilt around the client's key: in place of the key
 * the route sent (moved), or added where the server was not asked for it
 * (hidden); b as the client spelled it.  Then the value, not copied. */
static int relay_rebuilt(struct client *c, struct gw_req *r, bool hidden)
{
    struct mc_meta_resp u;
    bool has_key = false;
    if (mc_meta_resp_parse(r->rline, r->rlen, &u) != GW_OK || u.kind >= MRESP_MN ||
        (!hidden && !(u.flag_bits & (MC_META_BIT('k') | MC_META_BIT('b')))))
        return oq_push(&c->out, r->rline, r->rlen); /* errors, ME: as they are */
    char *h = req_alloc(r, u.line_len + LINE_EXTRA);
    if (!h) return GW_NOMEM;
    const char *word = mc_meta_resp_word(u.kind);
    size_t n = fmt_mem(h, word, strlen(word));
    if (u.kind == MRESP_VA) n += fmt_sp_u64(h + n, u.bytes);
    for (uint32_t i = 0; i < u.nflags; i++) {
        const struct mc_meta_flag *f = &u.flags[i];
        if (hidden && !has_key && key_goes_before(r, f->letter)) {
            n += put_key_flag(h + n, r);
            has_key = true;
        }
        if (f->letter == 'b') continue;
        if (f->letter == 'k') {
            n += put_key_flag(h + n, r);
            has_key = true;
            continue;
        }
        h[n++] = ' ';
        n += fmt_mem(h + n, r->rline + f->off, f->len);
    }
    if (hidden && !has_key) n += put_key_flag(h + n, r);
    n += fmt_mem(h + n, "\r\n", 2);
    int rc = oq_push(&c->out, h, n);
    if (rc == GW_OK && u.kind == MRESP_VA) rc = oq_push(&c->out, r->rline + u.data_off, u.bytes + 2);
    return rc;
}

static int relay_unit(struct client *c, struct gw_req *r)
{
    if (r->mc.quiet && quiet_drops(r->mc.cmd, r->rline)) return GW_OK;
    const struct gw_key *k = &r->keys[0];
    bool moved = k->bkey != k->ckey;
    if (!moved && !r->mc.binary_key) return oq_push(&c->out, r->rline, r->rlen);
    bool hidden = req_meta_key_hidden(r);
    if (!moved && !hidden) return oq_push(&c->out, r->rline, r->rlen);
    return relay_rebuilt(c, r, hidden);
}

/* The meta word for a reply the gateway made of kind. */
static const char *kind_word(enum mc_resp_kind kind)
{
    switch (kind) {
    case RESP_END: return "EN";
    case RESP_NOT_STORED: return "NS";
    case RESP_EXISTS: return "EX";
    case RESP_NOT_FOUND: return "NF";
    default: return "HD"; /* STORED, DELETED, TOUCHED, OK, a number */
    }
}

/* What a reply the gateway made (no server unit) says: its word and, for
 * a value (an mg hit, an ma's number), the value.  False: nothing was set. */
struct made_reply {
    const char *word;
    const char *vdata;   /* the value, then "\r\n" */
    uint32_t vlen;
    bool hit;            /* a value to give (with v) */
};

static bool made_reply(const struct gw_req *r, struct made_reply *out)
{
    const struct gw_key *k = &r->keys[0];
    enum mc_cmd cmd = r->mc.cmd;
    memset(out, 0, sizeof *out);
    if (cmd == MC_META_GET) {
        out->hit = k->state == KEY_HIT;
        out->word = out->hit ? "HD" : "EN";
        out->vdata = k->vdata;
        out->vlen = k->bytes;
    } else if (cmd == MC_META_DEBUG) {
        out->word = "EN";
    } else if (!r->rkind) {
        return false;
    } else {
        out->word = kind_word(r->rkind);
        if (r->rkind == RESP_NUMBER && cmd == MC_META_ARITH) {
            out->hit = true;
            out->vdata = r->rline;
            out->vlen = r->rlen - 2;
        }
    }
    return true;
}

/* The flags asked for that the gateway knows, in request order: O, k, and
 * for an mg hit (item) c, f and s. */
static size_t put_known_flags(char *h, const struct gw_req *r, bool item)
{
    const struct gw_key *k = &r->keys[0];
    uint32_t pos = 0, len;
    const char *tok;
    size_t n = 0;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &len)) {
        char letter = tok[0];
        if (letter == 'O') {
            h[n++] = ' ';
            n += fmt_mem(h + n, tok, len);
        } else if (letter == 'k') {
            n += put_key_flag(h + n, r);
        } else if (item && (letter == 'c' || letter == 'f' || letter == 's')) {
            h[n++] = ' ';
            h[n++] = letter;
            n += fmt_u64(h + n, letter == 'c' ? k->cas : letter == 'f' ? k->flags : k->bytes);
        }
    }
    return n;
}

static bool asks_value(const struct gw_req *r)
{
    uint32_t pos = 0, len;
    const char *tok;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &len))
        if (tok[0] == 'v') return true;
    return false;
}

/* A reply the gateway made, in meta. */
static int render(struct client *c, struct gw_req *r)
{
    struct made_reply m;
    if (!made_reply(r, &m)) return oq_push(&c->out, "SERVER_ERROR no reply\r\n", 23);
    bool value = m.hit && asks_value(r);
    if (value) m.word = "VA";
    if (r->mc.quiet && quiet_drops(r->mc.cmd, m.word)) return GW_OK;
    char *h = req_alloc(r, r->mc.args_len + LINE_EXTRA);
    if (!h) return GW_NOMEM;
    size_t n = fmt_mem(h, m.word, 2);
    if (value) n += fmt_sp_u64(h + n, m.vlen);
    n += put_known_flags(h + n, r, m.hit && r->mc.cmd == MC_META_GET);
    n += fmt_mem(h + n, "\r\n", 2);
    int rc = oq_push(&c->out, h, n);
    if (rc == GW_OK && value) rc = oq_push(&c->out, m.vdata, m.vlen + 2);
    return rc;
}

int meta_encode(struct client *c, struct gw_req *r)
{
    if (r->forced_reply) return oq_push(&c->out, r->forced_reply, strlen(r->forced_reply));
    if (r->runit) return relay_unit(c, r);
    /* Failures, and mn's MN. */
    if (r->rline && (r->errors || reply_is_error(r->rkind) || r->mc.cmd == MC_META_NOOP))
        return oq_push(&c->out, r->rline, r->rlen);
    return render(c, r);
}
