/* binary.c -- see binary.h. */
#include "binary.h"

#include <string.h>

/* What each opcode needs of its body (memcached 1.6.18's checks). */
enum shape {
    SHAPE_NONE = 0,   /* not served: unknown command */
    SHAPE_EMPTY,      /* no extras, key or value: Noop, Version, Quit, list mechs */
    SHAPE_KEY,        /* a key only: Get*, Delete */
    SHAPE_STORE,      /* 8 bytes of extras, a key, a value: Set, Add, Replace */
    SHAPE_CONCAT,     /* a key and a value: Append, Prepend */
    SHAPE_ARITH,      /* 20 bytes of extras and a key: Increment, Decrement */
    SHAPE_TOUCH,      /* 4 bytes of extras and a key: Touch, GAT* */
    SHAPE_FLUSH,      /* 0 or 4 bytes of extras */
    SHAPE_STAT,       /* an optional key */
    SHAPE_SASL,       /* a key (the mechanism) and a value */
};

struct op_info {
    uint8_t shape;
    uint8_t cmd;      /* enum mc_cmd */
    bool quiet;
    bool with_key;
};

static const struct op_info OPS[256] = {
    [BIN_GET] = { SHAPE_KEY, MC_GET, false, false },
    [BIN_GETQ] = { SHAPE_KEY, MC_GET, true, false },
    [BIN_GETK] = { SHAPE_KEY, MC_GET, false, true },
    [BIN_GETKQ] = { SHAPE_KEY, MC_GET, true, true },
    [BIN_SET] = { SHAPE_STORE, MC_SET, false, false },
    [BIN_SETQ] = { SHAPE_STORE, MC_SET, true, false },
    [BIN_ADD] = { SHAPE_STORE, MC_ADD, false, false },
    [BIN_ADDQ] = { SHAPE_STORE, MC_ADD, true, false },
    [BIN_REPLACE] = { SHAPE_STORE, MC_REPLACE, false, false },
    [BIN_REPLACEQ] = { SHAPE_STORE, MC_REPLACE, true, false },
    [BIN_APPEND] = { SHAPE_CONCAT, MC_APPEND, false, false },
    [BIN_APPENDQ] = { SHAPE_CONCAT, MC_APPEND, true, false },
    [BIN_PREPEND] = { SHAPE_CONCAT, MC_PREPEND, false, false },
    [BIN_PREPENDQ] = { SHAPE_CONCAT, MC_PREPEND, true, false },
    [BIN_DELETE] = { SHAPE_KEY, MC_DELETE, false, false },
    [BIN_DELETEQ] = { SHAPE_KEY, MC_DELETE, true, false },
    [BIN_INCREMENT] = { SHAPE_ARITH, MC_INCR, false, false },
    [BIN_INCREMENTQ] = { SHAPE_ARITH, MC_INCR, true, false },
    [BIN_DECREMENT] = { SHAPE_ARITH, MC_DECR, false, false },
    [BIN_DECREMENTQ] = { SHAPE_ARITH, MC_DECR, true, false },
    [BIN_TOUCH] = { SHAPE_TOUCH, MC_TOUCH, false, false },
    [BIN_GAT] = { SHAPE_TOUCH, MC_GAT, false, false },
    [BIN_GATQ] = { SHAPE_TOUCH, MC_GAT, true, false },
    [BIN_GATK] = { SHAPE_TOUCH, MC_GAT, false, true },
    [BIN_GATKQ] = { SHAPE_TOUCH, MC_GAT, true, true },
    [BIN_QUIT] = { SHAPE_EMPTY, MC_QUIT, false, false },
    [BIN_QUITQ] = { SHAPE_EMPTY, MC_QUIT, true, false },
    [BIN_FLUSH] = { SHAPE_FLUSH, MC_FLUSH_ALL, false, false },
    [BIN_FLUSHQ] = { SHAPE_FLUSH, MC_FLUSH_ALL, true, false },
    [BIN_NOOP] = { SHAPE_EMPTY, MC_NONE, false, false },
    [BIN_VERSION] = { SHAPE_EMPTY, MC_VERSION, false, false },
    [BIN_STAT] = { SHAPE_STAT, MC_STATS, false, false },
    [BIN_SASL_LIST_MECHS] = { SHAPE_EMPTY, MC_NONE, false, false },
    [BIN_SASL_AUTH] = { SHAPE_SASL, MC_NONE, false, false },
    [BIN_SASL_STEP] = { SHAPE_SASL, MC_NONE, false, false },
};

/* The most a SASL exchange may carry: PLAIN needs a few hundred bytes. */
#define SASL_MAX 4096

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int fail(struct mc_bin_request *req, uint16_t status, bool close)
{
    req->status = status;
    req->close = close;
    return GW_ERROR;
}

/* Do the lengths fit the opcode's shape? */
static bool shape_ok(enum shape s, const struct mc_bin_request *r)
{
    uint32_t kx = (uint32_t)r->keylen + r->extlen;
    switch (s) {
    case SHAPE_EMPTY: return r->extlen == 0 && r->keylen == 0 && r->bodylen == 0;
    case SHAPE_KEY: return r->extlen == 0 && r->keylen > 0 && r->bodylen == r->keylen;
    case SHAPE_STORE: return r->extlen == 8 && r->keylen > 0 && r->bodylen >= kx;
    case SHAPE_CONCAT: return r->extlen == 0 && r->keylen > 0 && r->bodylen >= kx;
    case SHAPE_ARITH: return r->extlen == 20 && r->keylen > 0 && r->bodylen == kx;
    case SHAPE_TOUCH: return r->extlen == 4 && r->keylen > 0 && r->bodylen == kx;
    case SHAPE_FLUSH: return r->keylen == 0 && r->bodylen == r->extlen &&
                             (r->extlen == 0 || r->extlen == 4);
    case SHAPE_STAT: return r->extlen == 0 && r->bodylen == r->keylen;
    case SHAPE_SASL: return r->extlen == 0 && r->keylen > 0 && r->bodylen >= kx &&
                            r->bodylen <= SASL_MAX;
    default: return false;
    }
}

static void read_extras(enum shape s, const uint8_t *x, struct mc_bin_request *r)
{
    switch (s) {
    case SHAPE_STORE:
        r->flags = get32(x);
        r->exptime = get32(x + 4);
        break;
    case SHAPE_ARITH:
        r->delta = get64(x);
        r->initial = get64(x + 8);
        r->exptime = get32(x + 16);
        break;
    case SHAPE_TOUCH:
        r->exptime = get32(x);
        break;
    case SHAPE_FLUSH:
        if (r->extlen == 4) r->exptime = get32(x);
        break;
    default:
        break;
    }
}

int mc_bin_parse(const struct mc_parser *p, const char *buf, size_t len,
                 struct mc_bin_request *req)
{
    memset(req, 0, sizeof *req);
    const uint8_t *h = (const uint8_t *)buf;
    if (len >= 1 && h[0] != MC_BIN_REQ_MAGIC) return fail(req, 0, true);
    if (len < MC_BIN_HEADER) return GW_AGAIN;
    req->opcode = h[1];
    req->keylen = get16(h + 2);
    req->extlen = h[4];
    req->bodylen = get32(h + 8);
    memcpy(&req->opaque, h + 12, 4);
    req->cas = get64(h + 16);
    req->key_off = MC_BIN_HEADER + req->extlen;
    req->value_off = req->key_off + req->keylen;
    uint64_t total = (uint64_t)MC_BIN_HEADER + req->bodylen;
    req->total_len = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;

    const struct op_info *op = &OPS[req->opcode];
    req->cmd = (enum mc_cmd)op->cmd;
    req->quiet = op->quiet;
    req->with_key = op->with_key;
    /* A key and extras longer than the body: memcached answers "Unknown
     * command" and closes, whatever the opcode. */
    if ((uint32_t)req->keylen + req->extlen > req->bodylen)
        return fail(req, BIN_UNKNOWN_COMMAND, true);
    if (req->keylen > MC_KEY_MAX) return fail(req, BIN_EINVAL, true); /* any opcode */
    if (op->shape == SHAPE_NONE)
        /* A body a 32-bit count cannot skip whole (over 4 GiB): close. */
        return fail(req, BIN_UNKNOWN_COMMAND, total > UINT32_MAX);
    if (!shape_ok(op->shape, req)) return fail(req, BIN_EINVAL, true);
    req->value_len = req->bodylen - req->extlen - req->keylen;
    if ((op->shape == SHAPE_STORE || op->shape == SHAPE_CONCAT) && req->value_len > p->max_value) {
        /* Refused once its extras and key are there (a refused Set still
         * names the key whose old value goes); the value is swallowed. */
        if (len < req->value_off) {
            req->total_len = req->value_off;
            return GW_AGAIN;
        }
        read_extras(op->shape, h + MC_BIN_HEADER, req);
        return fail(req, BIN_E2BIG, total > UINT32_MAX);
    }
    if (len < req->total_len) return GW_AGAIN;
    read_extras(op->shape, h + MC_BIN_HEADER, req);
    /* A Set, Add or Replace with a cas is a cas (memcached stores it as
     * one, whatever the opcode): the command a route sees. */
    if ((req->cmd == MC_SET || req->cmd == MC_ADD || req->cmd == MC_REPLACE) && req->cas)
        req->cmd = MC_CAS;
    return GW_OK;
}

const char *mc_bin_status_text(uint16_t status)
{
    switch (status) {
    case BIN_OK: return "";
    case BIN_KEY_ENOENT: return "Not found";
    case BIN_KEY_EEXISTS: return "Data exists for key.";
    case BIN_E2BIG: return "Too large.";
    case BIN_EINVAL: return "Invalid arguments";
    case BIN_NOT_STORED: return "Not stored.";
    case BIN_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
    case BIN_AUTH_ERROR: return "Auth failure.";
    case BIN_UNKNOWN_COMMAND: return "Unknown command";
    case BIN_ENOMEM: return "Out of memory";
    default: return "Internal error";
    }
}

void mc_bin_header(uint8_t *out, uint8_t opcode, uint16_t keylen, uint8_t extlen,
                   uint16_t status, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    out[0] = MC_BIN_RES_MAGIC;
    out[1] = opcode;
    put16(out + 2, keylen);
    out[4] = extlen;
    out[5] = 0; /* raw bytes */
    put16(out + 6, status);
    put32(out + 8, bodylen);
    memcpy(out + 12, &opaque, 4);
    put32(out + 16, (uint32_t)(cas >> 32));
    put32(out + 20, (uint32_t)cas);
}
