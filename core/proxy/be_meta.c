/* be_meta.c -- see be_meta.h. */
#include "be_meta.h"

#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/fmt.h"
#include "codec/binary.h"
#include "codec/meta_resp.h"
#include "req.h"

static const char CRLF[] = "\r\n";

int be_push_value(const struct gw_req *r, struct gw_oq *q)
{
    const char *data = r->base + r->mc.data_off;
    if (!r->mc.binary) return oq_push(q, data, (size_t)r->mc.bytes + 2);
    int rc = oq_push(q, data, r->mc.bytes);
    return rc == GW_OK ? oq_push(q, CRLF, 2) : rc;
}

void be_key_form(const struct gw_req *r, const struct gw_key *k, struct be_key *out)
{
    const struct mc_request *m = &r->mc;
    memset(out, 0, sizeof *out);
    bool as_sent = mc_cmd_is_meta(m->cmd) &&
                   (m->binary_key ? k->bkey == k->ckey : k->bkey == r->base + m->key_off);
    if (as_sent) {
        out->p = r->base + m->key_off;
        out->len = m->key_len;
        out->b = m->binary_key;
    } else if (mc_key_valid(k->bkey, k->bklen)) {
        out->p = k->bkey;
        out->len = k->bklen;
    } else {
        out->p = k->bkey;
        out->raw = k->bklen;
        out->len = (uint32_t)base64_encoded_len(k->bklen);
        out->b = out->encode = true;
    }
}

int be_push_key(struct gw_req *r, const struct be_key *key, struct gw_oq *q)
{
    if (!key->encode) return oq_push(q, key->p, key->len);
    char *enc = req_alloc(r, key->len);
    if (!enc) return GW_NOMEM;
    return oq_push(q, enc, base64_encode((const uint8_t *)key->p, key->raw, enc));
}

static const char *verb(enum mc_cmd cmd)
{
    switch (cmd) {
    case MC_GET: case MC_GETS: case MC_GAT: case MC_GATS: case MC_TOUCH: return "mg ";
    case MC_DELETE: return "md ";
    case MC_INCR: case MC_DECR: return "ma ";
    default: return "ms ";
    }
}

static char set_mode(enum mc_cmd cmd)
{
    switch (cmd) {
    case MC_ADD: return 'E';
    case MC_REPLACE: return 'R';
    case MC_APPEND: return 'A';
    case MC_PREPEND: return 'P';
    default: return 0; /* set, cas: S, the default */
    }
}

/* The flags after the key (and ms's <bytes>) into t; returns the length. */
static size_t put_flags(char *t, enum mc_cmd cmd, const struct mc_request *m)
{
    size_t n = 0;
    switch (cmd) {
    case MC_GET: case MC_GETS:
        n += fmt_mem(t, " v f c", 6);
        break;
    case MC_GAT: case MC_GATS: case MC_TOUCH:
        n += fmt_mem(t, cmd == MC_TOUCH ? " f c T" : " v f c T", cmd == MC_TOUCH ? 6 : 8);
        n += fmt_i64(t + n, m->exptime);
        break;
    case MC_DELETE:
        break;
    case MC_INCR: case MC_DECR:
        n += fmt_mem(t, " v c D", 6);
        n += fmt_u64(t + n, m->delta);
        if (cmd == MC_DECR) n += fmt_mem(t + n, " MD", 3);
        if (m->exptime != (int64_t)MC_BIN_NO_CREATE) {
            n += fmt_mem(t + n, " N", 2);
            n += fmt_i64(t + n, m->exptime);
            n += fmt_mem(t + n, " J", 2);
            n += fmt_u64(t + n, m->initial);
        }
        break;
    default: { /* storage */
        n += fmt_sp_u64(t, m->bytes);
        char mode = set_mode(cmd);
        if (mode != 'A' && mode != 'P') {
            n += fmt_mem(t + n, " F", 2);
            n += fmt_u64(t + n, m->flags);
            n += fmt_mem(t + n, " T", 2);
            n += fmt_i64(t + n, m->exptime);
        }
        n += fmt_mem(t + n, " c", 2);
        if (mode) {
            t[n++] = ' ';
            t[n++] = 'M';
            t[n++] = mode;
        }
        break;
    }
    }
    if (m->cas && !mc_cmd_is_retrieval(cmd) && cmd != MC_TOUCH) {
        n += fmt_mem(t + n, " C", 2);
        n += fmt_u64(t + n, m->cas);
    }
    return n;
}

int be_meta_encode(struct be_op *op, struct gw_oq *q)
{
    struct gw_req *r = op->req;
    const struct gw_key *k = &r->keys[op->first_key >= 0 ? op->first_key : 0];
    const char *v = verb(op->cmd);
    struct be_key key;
    be_key_form(r, k, &key);
    int rc = oq_push(q, v, 3);
    if (rc == GW_OK) rc = be_push_key(r, &key, q);
    op->tail_len = (uint16_t)put_flags(op->tail, op->cmd, &r->mc);
    if (key.b) op->tail_len += (uint16_t)fmt_mem(op->tail + op->tail_len, " b", 2);
    op->tail_len += (uint16_t)fmt_mem(op->tail + op->tail_len, CRLF, 2);
    if (rc == GW_OK) rc = oq_push(q, op->tail, op->tail_len);
    if (rc == GW_OK && v[1] == 's') rc = be_push_value(r, q);
    return rc;
}

/* The number in the unit's flag letter ("c123"), or 0. */
static uint64_t flag_number(const char *base, const struct mc_meta_resp *u, char letter)
{
    const struct mc_meta_flag *f = mc_meta_resp_flag(u, letter);
    return f ? strtoull(base + f->off + 1, NULL, 10) : 0;
}

/* The text reply kind a meta reply word stands for, per command. */
static enum mc_resp_kind kind_of(enum mc_cmd cmd, enum mc_meta_resp_kind k)
{
    switch (k) {
    case MRESP_HD:
        return cmd == MC_DELETE ? RESP_DELETED : cmd == MC_TOUCH ? RESP_TOUCHED : RESP_STORED;
    case MRESP_VA: return cmd == MC_INCR || cmd == MC_DECR ? RESP_NUMBER : RESP_VALUE;
    case MRESP_EN: return mc_cmd_is_retrieval(cmd) ? RESP_END : RESP_NOT_FOUND;
    case MRESP_NS: return RESP_NOT_STORED;
    case MRESP_EX: return RESP_EXISTS;
    case MRESP_NF: return RESP_NOT_FOUND;
    case MRESP_ERROR: return RESP_ERROR;
    case MRESP_CLIENT_ERROR: return RESP_CLIENT_ERROR;
    case MRESP_SERVER_ERROR: return RESP_SERVER_ERROR;
    default: return RESP_NONE;
    }
}

/* A retrieval's key answered: a value (with its flags and cas) or a miss. */
static void answer_key(struct gw_key *key, struct gw_buf *inb, const char *base,
                       const struct mc_meta_resp *u, enum mc_resp_kind kind)
{
    if (kind == RESP_END) {
        key->state = KEY_MISS;
        return;
    }
    key->state = KEY_HIT;
    key->flags = (uint32_t)flag_number(base, u, 'f');
    key->cas = flag_number(base, u, 'c');
    key->bytes = u->bytes;
    key->vbuf = inb;
    buf_ref(inb);
    key->vdata = base + u->data_off;
}

enum be_decode be_meta_decode(struct backend *b, struct be_op *op, struct gw_rbuf *in,
                              size_t *need)
{
    const char *base = rbuf_data(in);
    struct mc_meta_resp u;
    int rc = mc_meta_resp_parse(base, rbuf_len(in), &u);
    if (rc == GW_AGAIN) {
        *need = u.need;
        return BE_NEED;
    }
    if (rc != GW_OK) return BE_INVALID;
    struct gw_req *r = op->req;
    struct gw_key *key = &r->keys[op->first_key >= 0 ? op->first_key : 0];
    bool retrieval = mc_cmd_is_retrieval(op->cmd);
    enum mc_resp_kind kind = kind_of(op->cmd, u.kind);
    if (kind == RESP_NONE || (retrieval && kind != RESP_VALUE && kind != RESP_END &&
                              !reply_is_error(kind)))
        return BE_UNEXPECTED;
    if (reply_is_error(kind)) {
        if (retrieval) key->state = KEY_ERROR;
        r->errors = true;
        req_reply_held(r, in->b, base, u.line_len);
        r->rkind = (uint8_t)kind;
    } else if (retrieval) {
        answer_key(key, in->b, base, &u, kind);
        op->cur_key = -1;
    } else {
        req_count_reply(&b->rt->stats, op->cmd, kind);
        key->cas = flag_number(base, &u, 'c');
        key->flags = (uint32_t)flag_number(base, &u, 'f');
        if (kind == RESP_NUMBER) {
            req_reply_held(r, in->b, base + u.data_off, u.bytes + 2);
            r->rkind = RESP_NUMBER;
        } else {
            req_reply_kind(r, kind);
        }
    }
    in->pos += u.total_len;
    return BE_DONE;
}
