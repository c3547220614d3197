/* be_text.c -- the text protocol toward memcached: the backend codec
 * (backend.h) that writes memcached's text commands and reads its replies
 * with the reply parser (codec/resp.h).
 *
 * A retrieval op asks for a batch of keys in one line; memcached answers
 * them in the order asked, skipping misses, then END.  Every other op is
 * one line (plus a data block for storage commands) and one reply line.
 * A meta op (a client's mg ms md ma me, or Lua's pool:mg and pool:ms)
 * goes out in the meta protocol on the same connection, as memcached
 * allows, and its reply is read with the meta reply parser
 * (codec/meta_resp.h); an op marked meta (a binary client's text command)
 * is be_meta.c's.  Whatever the client sent, nothing goes to a server that
 * it would read as another command than the one routed: what cannot be
 * written safely is refused before it is queued (text_refuses).
 */
#include <string.h>

#include "backend.h"
#include "be_meta.h"
#include "base/fmt.h"
#include "codec/binary.h"
#include "codec/meta_resp.h"
#include "codec/resp.h"
#include "req.h"

static const char CRLF[] = "\r\n";
static const char SPACE[] = " ";

/* "<name> " into op->head. */
static void head_name(struct be_op *op, const char *name)
{
    size_t n = fmt_mem(op->head, name, strlen(name));
    op->head[n++] = ' ';
    op->head_len = (uint16_t)n;
}

/* The command line around the key: head "<cmd> " and tail " <args>\r\n"
 * (sizes in backend.h's be_op). */
static void format_single(struct be_op *op, const struct mc_request *m)
{
    head_name(op, mc_cmd_name(op->cmd));
    char *t = op->tail;
    size_t n = 0;
    switch (op->cmd) {
    case MC_INCR:
    case MC_DECR:
        n += fmt_sp_u64(t + n, m->delta);
        break;
    case MC_TOUCH:
        n += fmt_sp_i64(t + n, m->exptime);
        break;
    case MC_DELETE:
        break;
    default: /* set, add, replace, append, prepend; cas adds its unique */
        n += fmt_sp_u64(t + n, m->flags);
        n += fmt_sp_i64(t + n, m->exptime);
        n += fmt_sp_u64(t + n, m->bytes);
        if (op->cmd == MC_CAS) n += fmt_sp_u64(t + n, m->cas);
        break;
    }
    t[n++] = '\r';
    t[n++] = '\n';
    op->tail_len = (uint16_t)n;
}

static int encode_retrieval(struct be_op *op, struct gw_oq *q)
{
    struct gw_req *r = op->req;
    enum mc_cmd cmd = op->cmd;
    /* A binary client's get answers the cas: ask for it. */
    if (r->mc.binary) cmd = cmd == MC_GET ? MC_GETS : cmd == MC_GAT ? MC_GATS : cmd;
    head_name(op, mc_cmd_name(cmd));
    if (op->cmd == MC_GAT || op->cmd == MC_GATS) {
        size_t n = op->head_len + fmt_i64(op->head + op->head_len, r->mc.exptime);
        op->head[n++] = ' ';
        op->head_len = (uint16_t)n;
    }
    int rc = oq_push(q, op->head, op->head_len);
    for (int32_t k = op->first_key; k >= 0 && rc == GW_OK; k = r->keys[k].next) {
        if (k != op->first_key) rc = oq_push(q, SPACE, 1);
        if (rc == GW_OK) rc = oq_push(q, r->keys[k].bkey, r->keys[k].bklen);
    }
    if (rc == GW_OK) rc = oq_push(q, CRLF, 2);
    return rc;
}

static int push_run(struct gw_oq *q, const char *p, uint32_t n)
{
    int rc = oq_push(q, SPACE, 1);
    return rc == GW_OK ? oq_push(q, p, n) : rc;
}

/* memcached 1.6.18 drops a quiet ma's reply only when it found the item:
 * an ma whose N created the item answers HD (or VA) all the same, which
 * the gateway could not tell from any ma's reply if it sent it without q.
 * So an ma with q and N goes with its q and an mn after it, and the
 * server's own answer (its reply then MN, or MN alone) says. */
static bool meta_probe(const struct gw_req *r)
{
    if (r->mc.cmd != MC_META_ARITH || !r->mc.quiet) return false;
    uint32_t pos = 0, len;
    const char *tok;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &len))
        if (tok[0] == 'N') return true;
    return false;
}

/* The request's flags f[0..n) as sent, less those in drop (MC_META_BIT):
 * q, as the gateway sends every request with a reply (and drops what q
 * would drop on the way back), so each server stream stays in step and a
 * failure is always seen (a probe keeps it, meta_probe); b, which goes
 * with the key (push_meta_key); k when the key is hidden
 * (req_meta_key_hidden).  The flags kept go out as runs of the client's
 * own bytes. */
static int push_meta_flags(struct gw_oq *q, const char *f, uint32_t n, uint64_t drop)
{
    int rc = GW_OK;
    uint32_t pos = 0, len;
    const char *tok, *run = NULL, *run_end = NULL;
    while (rc == GW_OK && mc_meta_next_flag(f, n, &pos, &tok, &len)) {
        if (!(drop & MC_META_BIT(tok[0]))) { /* the parser let only letters in */
            if (!run) run = tok;
            run_end = tok + len;
        } else if (run) {
            rc = push_run(q, run, (uint32_t)(run_end - run));
            run = NULL;
        }
    }
    if (rc == GW_OK && run) rc = push_run(q, run, (uint32_t)(run_end - run));
    return rc;
}

/* The flags of r not sent on (MC_META_BIT): see push_meta_flags. */
static uint64_t meta_drop(const struct gw_req *r)
{
    uint64_t drop = MC_META_BIT('b');
    if (!meta_probe(r)) drop |= MC_META_BIT('q');
    if (req_meta_key_hidden(r)) drop |= MC_META_BIT('k');
    return drop;
}

/* "<cmd> <key> <flags>\r\n", or "ms <key> <datalen> <flags>\r\n" and the
 * data (straight from the client's buffer). */
static int encode_meta(struct be_op *op, struct gw_oq *q)
{
    struct gw_req *r = op->req;
    bool set = op->cmd == MC_META_SET;
    struct be_key key;
    be_key_form(r, &r->keys[0], &key);
    head_name(op, mc_cmd_name(op->cmd));
    int rc = oq_push(q, op->head, op->head_len);
    if (rc == GW_OK) rc = be_push_key(r, &key, q);
    if (rc == GW_OK && set) {
        op->tail_len = (uint16_t)fmt_sp_u64(op->tail, r->mc.bytes);
        rc = oq_push(q, op->tail, op->tail_len);
    }
    if (rc == GW_OK && key.b) rc = oq_push(q, " b", 2);
    bool probe = meta_probe(r);
    if (rc == GW_OK) rc = push_meta_flags(q, r->base + r->mc.args_off, r->mc.args_len, meta_drop(r));
    if (rc == GW_OK) rc = oq_push(q, CRLF, 2);
    if (rc == GW_OK && set) rc = be_push_value(r, q);
    if (rc == GW_OK && probe) rc = oq_push(q, "mn\r\n", 4);
    return rc;
}

static int text_encode(struct be_op *op, struct gw_oq *q)
{
    struct gw_req *r = op->req;
    if (op->meta) return be_meta_encode(op, q);
    if (mc_cmd_is_retrieval(op->cmd)) return encode_retrieval(op, q);
    if (mc_cmd_is_meta(op->cmd)) return encode_meta(op, q);
    if (op->cmd == MC_FLUSH_ALL) {
        size_t n = fmt_mem(op->head, "flush_all", 9);
        if (r->mc.delay) n += fmt_sp_i64(op->head + n, r->mc.delay);
        n += fmt_mem(op->head + n, CRLF, 2);
        op->head_len = (uint16_t)n;
        return oq_push(q, op->head, op->head_len);
    }
    if (op->cmd == MC_VERSION) return oq_push(q, "version\r\n", 9);
    format_single(op, &r->mc);
    int rc = oq_push(q, op->head, op->head_len);
    if (rc == GW_OK) rc = oq_push(q, r->keys[0].bkey, r->keys[0].bklen);
    if (rc == GW_OK) rc = oq_push(q, op->tail, op->tail_len);
    if (rc == GW_OK && mc_cmd_is_storage(op->cmd)) rc = be_push_value(r, q);
    return rc;
}

/* One unit for a retrieval op. */
static enum be_decode decode_retrieval(struct be_op *op, struct gw_buf *inb, const char *base,
                                       const struct mc_resp *u)
{
    struct gw_req *r = op->req;
    if (u->kind == RESP_VALUE) {
        /* memcached answers keys in the order asked, skipping misses. */
        int32_t k = op->cur_key;
        while (k >= 0 && !(r->keys[k].bklen == u->key_len &&
                           memcmp(r->keys[k].bkey, base + u->key_off, u->key_len) == 0)) {
            r->keys[k].state = KEY_MISS;
            k = r->keys[k].next;
        }
        if (k < 0) return BE_UNEXPECTED;
        struct gw_key *key = &r->keys[k];
        key->state = KEY_HIT;
        key->flags = u->flags;
        key->bytes = u->bytes;
        key->cas = u->cas;
        key->vbuf = inb;
        buf_ref(key->vbuf);
        key->vdata = base + u->data_off;
        op->cur_key = key->next;
        return BE_MORE;
    }
    if (u->kind == RESP_END) {
        for (int32_t k = op->cur_key; k >= 0; k = r->keys[k].next) r->keys[k].state = KEY_MISS;
        op->cur_key = -1;
        return BE_DONE;
    }
    if (reply_is_error(u->kind)) {
        for (int32_t k = op->cur_key; k >= 0; k = r->keys[k].next) r->keys[k].state = KEY_ERROR;
        r->errors = true;
        req_reply_fmt(r, "%.*s", (int)(u->line_len - 2), base);
        r->rkind = (uint8_t)u->kind;
        return BE_DONE;
    }
    return BE_UNEXPECTED;
}

/* The reply line of any other op. */
static enum be_decode decode_line(struct backend *b, struct be_op *op, struct gw_buf *inb,
                                  const char *base, const struct mc_resp *u)
{
    struct gw_req *r = op->req;
    if (u->kind == RESP_VALUE || u->kind == RESP_END || u->kind == RESP_STAT) return BE_UNEXPECTED;
    req_count_reply(&b->rt->stats, op->cmd, u->kind);
    if (op->cmd == MC_FLUSH_ALL) {
        if (u->kind != RESP_OK) r->errors = true;
        return BE_DONE;
    }
    if (reply_line(u->kind)) {
        req_reply_kind(r, u->kind);
    } else {
        /* A line with text (a number, VERSION, an error): the reply points
         * into the read buffer, referenced. */
        req_reply_held(r, inb, base, u->line_len);
        r->rkind = (uint8_t)u->kind;
    }
    return BE_DONE;
}

/* The reply to a meta op, whole (VA: line, data and "\r\n"): the op's
 * key is answered (KEY_HIT: VA, HD, ME, and NS, EX, NF), a miss (EN) or
 * an error, and r->rline is the unit, referenced in the read buffer
 * (r->runit), for the client's codec to relay or a Lua call to read. */
static enum be_decode decode_meta(struct gw_req *r, struct gw_rbuf *in, size_t *need)
{
    const char *base = rbuf_data(in);
    struct mc_meta_resp u;
    int rc = mc_meta_resp_parse(base, rbuf_len(in), &u);
    if (rc == GW_AGAIN) {
        *need = u.need;
        return BE_NEED;
    }
    if (rc != GW_OK) return BE_INVALID;
    struct gw_key *key = &r->keys[0];
    bool probe = meta_probe(r);
    if (u.kind == MRESP_MN && (probe || r->runit)) {
        /* A probe's end: MN alone is the reply q suppressed, held for the
         * client's codec to drop; after a reply (which held the unit) it
         * is only consumed. */
        if (!r->runit) {
            req_reply_held(r, in->b, base, u.total_len);
            r->runit = true;
            key->state = KEY_HIT;
        }
        in->pos += u.total_len;
        return BE_DONE;
    }
    switch (u.kind) {
    case MRESP_VA:
    case MRESP_HD:
    case MRESP_NS:
    case MRESP_EX:
    case MRESP_NF:
    case MRESP_ME:
        key->state = KEY_HIT;
        break;
    case MRESP_EN:
        key->state = KEY_MISS;
        break;
    case MRESP_ERROR:
    case MRESP_CLIENT_ERROR:
    case MRESP_SERVER_ERROR:
        key->state = KEY_ERROR;
        r->errors = true;
        break;
    default:
        return BE_UNEXPECTED;
    }
    req_reply_held(r, in->b, base, u.total_len);
    r->runit = true;
    in->pos += u.total_len;
    if (!probe) return BE_DONE;
    r->mc.quiet = false; /* the server applied q itself: the reply goes out */
    return BE_MORE;
}

static enum be_decode text_decode(struct backend *b, struct be_op *op, struct gw_rbuf *in,
                                  size_t *need)
{
    if (op->meta) return be_meta_decode(b, op, in, need);
    if (mc_cmd_is_meta(op->cmd)) return decode_meta(op->req, in, need);
    const char *base = rbuf_data(in);
    struct mc_resp u;
    int rc = mc_resp_parse(base, rbuf_len(in), &u);
    if (rc == GW_AGAIN) {
        *need = u.need;
        return BE_NEED;
    }
    if (rc != GW_OK) return BE_INVALID;
    enum be_decode d = mc_cmd_is_retrieval(op->cmd) ? decode_retrieval(op, in->b, base, &u)
                                                    : decode_line(b, op, in->b, base, &u);
    if (d == BE_MORE || d == BE_DONE) in->pos += u.total_len;
    return d;
}

/* memcached closes a connection whose unfinished line passes 2048 bytes,
 * unless it is a get or gets (proto_text.c, try_read_command_ascii), so a
 * gat/gats line is kept within that: 2048 less its longest head ("gats ",
 * a 20-digit exptime and a space) and "\r\n". */
#define SERVER_LINE_MAX 2048
#define GAT_HEAD_MAX 32

static size_t text_batch_limit(enum mc_cmd cmd)
{
    return cmd == MC_GAT || cmd == MC_GATS ? SERVER_LINE_MAX - GAT_HEAD_MAX - 2 : 0;
}

/* The most flags memcached takes on a meta command (ms: one fewer). */
#define SERVER_META_FLAGS 17

/* The flags r goes to the server with (push_meta_flags), and its line's
 * length, as be_text writes them. */
static void meta_sent(const struct gw_req *r, const struct be_key *key, uint32_t *nflags,
                      size_t *line)
{
    uint64_t drop = meta_drop(r);
    uint32_t pos = 0, len, n = key->b;
    const char *tok;
    while (mc_meta_next_flag(r->base + r->mc.args_off, r->mc.args_len, &pos, &tok, &len))
        n += !(drop & MC_META_BIT(tok[0]));
    *nflags = n;
    *line = 3 + key->len + (r->mc.cmd == MC_META_SET ? 1 + 10 : 0) + (key->b ? 2 : 0) + 1 +
            r->mc.args_len + 2;
}

static const char *text_refuses(const struct gw_req *r, uint32_t k, bool meta)
{
    const struct mc_request *m = &r->mc;
    const struct gw_key *key = &r->keys[k];
    if (!meta && !mc_cmd_is_meta(m->cmd)) {
        /* A binary client's key may hold any byte, and its incr may
         * create the item: text can carry neither. */
        if (!m->binary) return NULL;
        if (!mc_key_valid(key->bkey, key->bklen))
            return "key is no text key, and the pool speaks only text";
        bool arith = m->cmd == MC_INCR || m->cmd == MC_DECR;
        if (arith && m->exptime != (int64_t)MC_BIN_NO_CREATE)
            return "an incr or decr that creates its item needs meta, and the pool speaks only text";
        if (m->cas && m->cmd != MC_CAS)
            return "a cas on this command needs meta, and the pool speaks only text";
        return NULL;
    }
    struct be_key bk;
    be_key_form(r, key, &bk);
    if (bk.len > MC_KEY_MAX) return "key over 250 bytes in base64, longer than memcached reads";
    if (meta) return NULL;
    uint32_t nflags;
    size_t line;
    meta_sent(r, &bk, &nflags, &line);
    if (nflags > SERVER_META_FLAGS - (m->cmd == MC_META_SET))
        return "too many flags for memcached once b is added for the key";
    if (line > SERVER_LINE_MAX) return "line longer than memcached reads (2048 bytes)";
    return NULL;
}

const struct be_codec be_codec_text = {
    .name = "text",
    .encode = text_encode,
    .decode = text_decode,
    .batch_limit = text_batch_limit,
    .refuses = text_refuses,
};
