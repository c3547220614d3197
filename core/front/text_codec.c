/* text_codec.c -- memcached's text protocol, client side (codec.h).
 *
 * A connection may mix text and meta requests, as memcached allows: each
 * request that starts with 'm' goes to the meta codec (meta_codec.c), and
 * so does the rendering of its reply.
 *
 * Requests are parsed by codec/proto.h straight out of the read buffer.
 * What the parser refuses is answered with its error line, and its data
 * block, when its length was readable, is swallowed so the stream stays in
 * step.  Replies are rendered here: VALUE lines (always with the client's
 * own key, whatever a route sent to the backend), END, or the reply line.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "base/fmt.h"
#include "codec.h"
#include "codec/meta.h"
#include "proxy/req.h"

static const char END[] = "END\r\n";

static bool is_too_large(const char *error)
{
    static const char msg[] = "SERVER_ERROR object too large";
    return strncmp(error, msg, sizeof msg - 1) == 0;
}

/* memcached drops the stored value of a set it refuses as too large, so a
 * client never reads the old value back after a failed set: the refused
 * set becomes a delete of its key, answered with the error. */
static void refuse_set(struct client *c, const struct mc_request *mc, const char *base)
{
    struct gw_req *r = client_request(c, mc, base);
    if (!r) return;
    r->mc.cmd = MC_DELETE;
    r->forced_reply = "SERVER_ERROR object too large for cache\r\n";
    STAT_INC(&c->rt->stats, gw_protocol_errors);
    client_dispatch(c, r);
}

void codec_consume(struct client *c, uint32_t total_len)
{
    struct gw_rbuf *in = &c->in;
    if (total_len > rbuf_len(in)) {
        c->cs.swallow = total_len - (uint32_t)rbuf_len(in);
        in->pos = in->end;
    } else {
        in->pos += total_len;
    }
}

bool codec_swallow(struct client *c)
{
    struct gw_rbuf *in = &c->in;
    struct codec_state *cs = &c->cs;
    if (!cs->swallow) return false;
    uint32_t k = rbuf_len(in) < cs->swallow ? (uint32_t)rbuf_len(in) : cs->swallow;
    in->pos += k;
    cs->swallow -= k;
    return true;
}

const struct codec *codec_pick(uint8_t first)
{
    return first == 0x80 ? &codec_binary : &codec_text;
}

static void text_decode(struct client *c)
{
    struct gw_rbuf *in = &c->in;
    struct codec_state *cs = &c->cs;
    while (rbuf_len(in) > 0 && !c->closing) {
        if (codec_swallow(c)) continue;
        if (client_busy(c)) break;
        const char *base = rbuf_data(in);
        if (mc_is_meta(base, rbuf_len(in))) {
            if (!meta_decode(c)) break;
            continue;
        }
        struct mc_request mc;
        int rc = mc_parse(&cs->parser, base, rbuf_len(in), &mc);
        cs->need = rc == GW_AGAIN ? mc.total_len : 0;
        if (rc == GW_AGAIN) break;
        if (rc == GW_ERROR) {
            if (mc.cmd == MC_SET && !mc.close && is_too_large(mc.error))
                refuse_set(c, &mc, base);
            else
                client_refuse(c, &mc, mc.error, mc.close);
            codec_consume(c, mc.total_len);
            continue;
        }
        if (!client_authenticated(c) && mc.cmd != MC_QUIT) {
            client_gate(c, &mc, base);
            in->pos += mc.total_len;
            continue;
        }
        struct gw_req *r = client_request(c, &mc, base);
        in->pos += mc.total_len;
        if (!r) break;
        STAT_INC(&c->rt->stats, gw_requests);
        if (mc.cmd == MC_QUIT) {
            r->done = true;
            c->closing = true;
            break;
        }
        client_dispatch(c, r);
    }
}

/* The reply of a retrieval: a VALUE unit per hit, then END. */
static int encode_values(struct client *c, struct gw_req *r)
{
    struct gw_oq *q = &c->out;
    bool with_cas = r->mc.cmd == MC_GETS || r->mc.cmd == MC_GATS;
    int rc = GW_OK;
    for (uint32_t i = 0; i < r->nkeys && rc == GW_OK; i++) {
        struct gw_key *k = &r->keys[i];
        if (k->state != KEY_HIT) continue;
        char *h = req_alloc(r, k->cklen + 6 + 3 * (FMT_U64_MAX + 1) + 2);
        if (!h) return GW_NOMEM;
        size_t n = fmt_mem(h, "VALUE ", 6);
        n += fmt_mem(h + n, k->ckey, k->cklen);
        n += fmt_sp_u64(h + n, k->flags);
        n += fmt_sp_u64(h + n, k->bytes);
        if (with_cas) n += fmt_sp_u64(h + n, k->cas);
        h[n++] = '\r';
        h[n++] = '\n';
        rc = oq_push(q, h, n);
        if (rc == GW_OK) rc = oq_push(q, k->vdata, (size_t)k->bytes + 2);
    }
    if (rc == GW_OK) rc = oq_push(q, END, sizeof END - 1);
    return rc;
}

static int text_encode(struct client *c, struct gw_req *r)
{
    if (mc_cmd_is_meta(r->mc.cmd)) return meta_encode(c, r);
    if (r->forced_reply) return oq_push(&c->out, r->forced_reply, strlen(r->forced_reply));
    if (mc_cmd_is_retrieval(r->mc.cmd)) {
        /* One key that failed answers the error; in a multi-get failed keys
         * are misses (python-memcached's get_multi), unless the pool says
         * to fail the whole request. */
        if (req_retrieval_failed(r)) return oq_push(&c->out, r->rline, r->rlen);
        return encode_values(c, r);
    }
    return r->rline ? oq_push(&c->out, r->rline, r->rlen) : GW_OK;
}

const struct codec codec_text = {
    .name = "text",
    .decode = text_decode,
    .encode = text_encode,
};
