/* fuzz_binary.c -- libFuzzer target for the binary-protocol request parser
 * (core/codec/binary.c).
 *
 * Input: one settings byte (as fuzz_proto.c: bits 3-4 pick max_value, 0
 * being the parser's 1 MiB default; '@' is the defaults), then the bytes a
 * client sends.
 *
 * The stream is parsed the way front/binary_codec.c does it: mc_bin_parse
 * from the start of the next request; consume total_len, swallowing what
 * runs past the bytes at hand; stop at GW_AGAIN (wait for more), at an
 * error that closes, and after Quit.  It is fed whole, in three reads split
 * where the data says, and (short inputs) a byte at a time; each feed must
 * give the same results, byte for byte.  The bytes at hand are always an
 * exact-size heap copy, so AddressSanitizer catches a read past len.
 *
 * Each result is checked against binary.h, from the header's bytes alone:
 *   GW_OK     only for an opcode memcached serves, with lengths that fit it,
 *             a key of at most 250 bytes, a value within max_value for Set &
 *             co., and the whole request in [buf, buf+len):
 *             total_len = 24 + bodylen <= len, key_off = 24 + extlen,
 *             value_off = key_off + keylen, key_off + keylen + value_len =
 *             total_len; opaque the bytes sent, cas and the extras read
 *             big-endian; cmd, quiet and with_key those of the opcode.
 *   GW_AGAIN  fewer than 24 bytes (total_len 0), or total_len > len: the
 *             whole request's size, or for a value over max_value its
 *             value_off.
 *   GW_ERROR  status 0 (close) exactly when the first byte is not 0x80;
 *             0x81 and close when the key and extras run past the body;
 *             0x81 without close for an opcode not served, the body
 *             swallowed; 0x04 and close for lengths that do not fit the
 *             opcode or a key over 250; 0x03 without close for a value
 *             over max_value, once the key is in.  An error that does not
 *             close has total_len = 24 + bodylen.
 * A request that parses whole gives GW_AGAIN, with the right total_len,
 * for its proper prefixes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/binary.h"
#include "codec/proto.h"
#include "fuzz.h"

#define MAX_RECS 4096

/* A body claimed over 4 GiB - 24 bytes gives total_len UINT32_MAX, short
 * of the request's end: the parser must then close (checked, not exempt). */
#define TOTAL_LEN_EXEMPT(bodylen) false

/* bits 3-4: max_value (0: the parser's default).  The parser reads only
 * max_value, so the struct is filled here (mc_parser_init lives in
 * proto.c, which this target does not link). */
static void init(struct mc_parser *p, uint8_t s)
{
    static const uint32_t values[4] = {MC_DEFAULT_MAX_VALUE, 1, 16, 1000};
    memset(p, 0, sizeof *p);
    p->max_line = (uint32_t)MC_DEFAULT_MAX_LINE;
    p->max_value = values[(s >> 3) & 3];
    p->binary_keys = s & 1;
}

/* ---- what memcached 1.6.18 serves, written out again -------------------- */

enum shape { NONE = 0, EMPTY, KEY, STORE, CONCAT, ARITH, TOUCH, FLUSH, STAT, SASL };

struct op {
    uint8_t shape;
    uint8_t cmd;
    bool quiet, with_key;
};

static struct op OPS[256];

static void ops_init(void)
{
    static bool done;
    if (done) return;
    done = true;
#define OP(o, sh, c, q, k) OPS[o] = (struct op){sh, c, q, k}
    OP(BIN_GET, KEY, MC_GET, false, false);
    OP(BIN_GETQ, KEY, MC_GET, true, false);
    OP(BIN_GETK, KEY, MC_GET, false, true);
    OP(BIN_GETKQ, KEY, MC_GET, true, true);
    OP(BIN_SET, STORE, MC_SET, false, false);
    OP(BIN_SETQ, STORE, MC_SET, true, false);
    OP(BIN_ADD, STORE, MC_ADD, false, false);
    OP(BIN_ADDQ, STORE, MC_ADD, true, false);
    OP(BIN_REPLACE, STORE, MC_REPLACE, false, false);
    OP(BIN_REPLACEQ, STORE, MC_REPLACE, true, false);
    OP(BIN_APPEND, CONCAT, MC_APPEND, false, false);
    OP(BIN_APPENDQ, CONCAT, MC_APPEND, true, false);
    OP(BIN_PREPEND, CONCAT, MC_PREPEND, false, false);
    OP(BIN_PREPENDQ, CONCAT, MC_PREPEND, true, false);
    OP(BIN_DELETE, KEY, MC_DELETE, false, false);
    OP(BIN_DELETEQ, KEY, MC_DELETE, true, false);
    OP(BIN_INCREMENT, ARITH, MC_INCR, false, false);
    OP(BIN_INCREMENTQ, ARITH, MC_INCR, true, false);
    OP(BIN_DECREMENT, ARITH, MC_DECR, false, false);
    OP(BIN_DECREMENTQ, ARITH, MC_DECR, true, false);
    OP(BIN_TOUCH, TOUCH, MC_TOUCH, false, false);
    OP(BIN_GAT, TOUCH, MC_GAT, false, false);
    OP(BIN_GATQ, TOUCH, MC_GAT, true, false);
    OP(BIN_GATK, TOUCH, MC_GAT, false, true);
    OP(BIN_GATKQ, TOUCH, MC_GAT, true, true);
    OP(BIN_NOOP, EMPTY, MC_NONE, false, false);
    OP(BIN_VERSION, EMPTY, MC_VERSION, false, false);
    OP(BIN_QUIT, EMPTY, MC_QUIT, false, false);
    OP(BIN_QUITQ, EMPTY, MC_QUIT, true, false);
    OP(BIN_FLUSH, FLUSH, MC_FLUSH_ALL, false, false);
    OP(BIN_FLUSHQ, FLUSH, MC_FLUSH_ALL, true, false);
    OP(BIN_STAT, STAT, MC_STATS, false, false);
    OP(BIN_SASL_LIST_MECHS, EMPTY, MC_NONE, false, false);
    OP(BIN_SASL_AUTH, SASL, MC_NONE, false, false);
    OP(BIN_SASL_STEP, SASL, MC_NONE, false, false);
#undef OP
}

/* binary.c's bound on a SASL body. */
#define SASL_BODY_MAX 4096

static bool fits(uint8_t shape, uint8_t ext, uint32_t key, uint32_t body)
{
    switch (shape) {
    case EMPTY: return ext == 0 && key == 0 && body == 0;
    case KEY: return ext == 0 && key > 0 && body == key;
    case STORE: return ext == 8 && key > 0 && body >= key + 8;
    case CONCAT: return ext == 0 && key > 0 && body >= key;
    case ARITH: return ext == 20 && key > 0 && body == key + 20;
    case TOUCH: return ext == 4 && key > 0 && body == key + 4;
    case FLUSH: return key == 0 && body == ext && (ext == 0 || ext == 4);
    case STAT: return ext == 0 && body == key;
    case SASL: return ext == 0 && key > 0 && body >= key && body <= SASL_BODY_MAX;
    default: return false;
    }
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

/* ---- one result against the header's bytes ------------------------------ */

static void check(const struct mc_parser *p, const uint8_t *b, size_t len, int rc,
                  const struct mc_bin_request *r)
{
    if (len >= 1 && b[0] != MC_BIN_REQ_MAGIC) {
        REQUIRE(rc == GW_ERROR && r->status == 0 && r->close);
        return;
    }
    REQUIRE(!(rc == GW_ERROR && r->status == 0));
    if (len < MC_BIN_HEADER) {
        REQUIRE(rc == GW_AGAIN && r->total_len == 0);
        return;
    }
    uint8_t op = b[1];
    uint32_t keylen = (uint32_t)b[2] << 8 | b[3];
    uint8_t extlen = b[4];
    uint32_t bodylen = rd32(b + 8);
    uint64_t total = (uint64_t)MC_BIN_HEADER + bodylen;
    uint64_t value_off = (uint64_t)MC_BIN_HEADER + extlen + keylen;
    const struct op *o = &OPS[op];
    bool past = (uint64_t)keylen + extlen > bodylen;
    bool ok_shape = !past && o->shape != NONE && keylen <= MC_KEY_MAX &&
                    fits(o->shape, extlen, keylen, bodylen);
    uint32_t value_len = past ? 0 : bodylen - extlen - keylen;
    bool too_large = ok_shape && (o->shape == STORE || o->shape == CONCAT) &&
                     value_len > p->max_value;

    REQUIRE(rc == GW_OK || rc == GW_AGAIN || rc == GW_ERROR);
    if (rc == GW_AGAIN) {
        REQUIRE(ok_shape);
        REQUIRE(r->total_len > len);
        if (too_large)
            REQUIRE(r->total_len == value_off && value_off > len);
        else
            REQUIRE(r->total_len == total);
        return;
    }
    REQUIRE(memcmp(&r->opaque, b + 12, 4) == 0);
    REQUIRE(r->opcode == op);
    if (rc == GW_ERROR) {
        REQUIRE(r->total_len > 0);
        switch (r->status) {
        case BIN_UNKNOWN_COMMAND:
            /* closes when the body is past the key, or too big to count */
            REQUIRE(r->close == (past || total > UINT32_MAX));
            if (!past) {
                REQUIRE(o->shape == NONE && keylen <= MC_KEY_MAX);
                REQUIRE(r->cmd == MC_NONE);
            }
            break;
        case BIN_EINVAL:
            REQUIRE(r->close);
            REQUIRE(!past && (keylen > MC_KEY_MAX || (o->shape != NONE && !ok_shape)));
            break;
        case BIN_E2BIG:
            REQUIRE(r->close == (total > UINT32_MAX));
            REQUIRE(too_large && len >= value_off);
            REQUIRE(r->key_off + (uint64_t)r->keylen == value_off && r->keylen == keylen);
            REQUIRE(r->value_off == value_off && r->value_len == value_len);
            break;
        default:
            REQUIRE(!"an unexpected status");
        }
        if (!r->close && !TOTAL_LEN_EXEMPT(bodylen))
            REQUIRE(r->total_len == total);
        return;
    }

    /* GW_OK */
    REQUIRE(ok_shape && !too_large);
    REQUIRE(!r->close && r->status == 0);
    REQUIRE(total <= len && r->total_len == total);
    REQUIRE(r->keylen == keylen && r->extlen == extlen && r->bodylen == bodylen);
    REQUIRE(r->key_off == MC_BIN_HEADER + (uint32_t)extlen);
    REQUIRE(r->value_off == r->key_off + keylen);
    REQUIRE((uint64_t)r->key_off + r->keylen + r->value_len == r->total_len);
    REQUIRE(r->value_len == value_len);
    REQUIRE(r->cas == rd64(b + 16));
    REQUIRE(r->quiet == o->quiet && r->with_key == o->with_key);
    enum mc_cmd cmd = (enum mc_cmd)o->cmd;
    if (o->shape == STORE && r->cas) cmd = MC_CAS;
    REQUIRE(r->cmd == cmd);
    const uint8_t *x = b + MC_BIN_HEADER;
    uint32_t flags = 0, exptime = 0;
    uint64_t delta = 0, initial = 0;
    switch (o->shape) {
    case STORE: flags = rd32(x); exptime = rd32(x + 4); break;
    case ARITH: delta = rd64(x); initial = rd64(x + 8); exptime = rd32(x + 16); break;
    case TOUCH: exptime = rd32(x); break;
    case FLUSH: exptime = extlen == 4 ? rd32(x) : 0; break;
    default: break;
    }
    REQUIRE(r->flags == flags && r->exptime == exptime);
    REQUIRE(r->delta == delta && r->initial == initial);
}

/* A request that parsed whole from b[0, total): its proper prefixes,
 * placed at the end of a heap block, give GW_AGAIN with the total_len of
 * what they need. */
static void check_prefixes(const struct mc_parser *p, const uint8_t *b, size_t total,
                           const struct mc_bin_request *whole, uint8_t *scratch, size_t room)
{
    size_t ks[] = {0, 1, MC_BIN_HEADER - 1, MC_BIN_HEADER, MC_BIN_HEADER + 1,
                   whole->key_off, whole->value_off, total / 2, total - 1};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        size_t k = ks[i];
        if (k >= total || k > room) continue;
        struct mc_bin_request r;
        memcpy(scratch + room - k, b, k);
        int rc = mc_bin_parse(p, (const char *)scratch + room - k, k, &r);
        REQUIRE(rc == GW_AGAIN);
        REQUIRE(r.total_len == (k < MC_BIN_HEADER ? 0 : total));
    }
}

/* ---- feeding the stream -------------------------------------------------- */

struct rec {
    int rc;
    size_t at;
    struct mc_bin_request r;
};

struct run {
    struct rec recs[MAX_RECS];
    int n;
    size_t at, swallow;
    bool stopped;
};

static void drain(const struct mc_parser *p, const uint8_t *data, size_t avail,
                  struct run *run, uint8_t *scratch, size_t room)
{
    if (run->stopped || avail <= run->at) return;
    uint8_t *copy = malloc(avail);
    REQUIRE(copy != NULL);
    memcpy(copy, data, avail);

    while (run->at < avail && !run->stopped) {
        size_t left = avail - run->at;
        if (run->swallow) {
            size_t k = left < run->swallow ? left : run->swallow;
            run->at += k;
            run->swallow -= k;
            continue;
        }
        const uint8_t *b = copy + run->at;
        struct rec rec;
        memset(&rec, 0, sizeof rec);
        rec.at = run->at;
        rec.rc = mc_bin_parse(p, (const char *)b, left, &rec.r);
        check(p, b, left, rec.rc, &rec.r);
        if (rec.rc == GW_AGAIN) break;
        if (rec.rc == GW_OK && scratch)
            check_prefixes(p, b, rec.r.total_len, &rec.r, scratch, room);
        REQUIRE(run->n < MAX_RECS);
        memcpy(&run->recs[run->n++], &rec, sizeof rec);  /* padding and all */
        if (rec.r.close || (rec.rc == GW_OK && rec.r.cmd == MC_QUIT)) {
            run->stopped = true;  /* what follows is never read */
            break;
        }
        if (rec.r.total_len > left) {
            run->swallow = rec.r.total_len - left;
            run->at = avail;
        } else {
            run->at += rec.r.total_len;
        }
    }
    free(copy);
}

static void same_runs(const struct run *a, const struct run *b)
{
    REQUIRE(a->n == b->n);
    for (int i = 0; i < a->n; i++) {
        const struct rec *x = &a->recs[i], *y = &b->recs[i];
        REQUIRE(x->rc == y->rc && x->at == y->at);
        REQUIRE(memcmp(&x->r, &y->r, sizeof x->r) == 0);
    }
    REQUIRE(a->at == b->at && a->swallow == b->swallow && a->stopped == b->stopped);
}

static struct run whole, split, bytewise;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    ops_init();
    uint8_t s = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    struct mc_parser p;
    init(&p, s);
    uint8_t *scratch = malloc(n ? n : 1);
    REQUIRE(scratch != NULL);

    memset(&whole, 0, sizeof whole);
    drain(&p, in, n, &whole, scratch, n);

    uint64_t h = fuzz_hash(in, n);
    size_t s1 = (size_t)(h % (n + 1));
    size_t s2 = s1 + (size_t)((h >> 32) % (n - s1 + 1));
    memset(&split, 0, sizeof split);
    drain(&p, in, s1, &split, NULL, 0);
    drain(&p, in, s2, &split, NULL, 0);
    drain(&p, in, n, &split, NULL, 0);
    same_runs(&whole, &split);

    if (n <= 300) {
        memset(&bytewise, 0, sizeof bytewise);
        for (size_t i = 1; i <= n; i++)
            drain(&p, in, i, &bytewise, NULL, 0);
        same_runs(&whole, &bytewise);
    }
    free(scratch);
    return 0;
}
