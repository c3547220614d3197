/* fuzz_meta.c -- libFuzzer target for the meta request parser
 * (core/codec/meta.c), on a stream that mixes text and meta requests.
 *
 * Input: one settings byte (as fuzz_proto.c: bit 0 binary_keys, bits 1-2
 * max_line, bits 3-4 max_value; '@' is the defaults), then client bytes.
 *
 * The stream is parsed the way a client codec will: mc_is_meta picks
 * mc_meta_parse or mc_parse for the request at hand, both with the one
 * struct mc_parser; consume total_len (swallowing what runs past the bytes
 * at hand); stop at GW_AGAIN or a reply that closes.  It is fed whole, in
 * three reads split where the data says, and (short inputs) a byte at a
 * time; each feed must give the same results, byte for byte.
 *
 * Each meta result is checked against meta.h: offsets inside the line,
 * flags that are unique letters in request order with flag_bits their
 * set, no NUL in a flag, an opaque of at most 32 bytes, modes of ms/ma
 * from their lists, a base64 key whose kbuf is its decoding, an ms data
 * block ending in "\r\n" within max_value.  A meta request that parses
 * whole gives GW_AGAIN for its proper prefixes.  The text parser's own
 * contract is fuzz_proto.c's business.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "codec/meta.h"
#include "codec/proto.h"
#include "fuzz.h"

#define MAX_RECS 4096

static void init(struct mc_parser *p, uint8_t s)
{
    static const size_t lines[4] = {0, 32, 256, 2048};
    static const size_t values[4] = {0, 1, 16, 1000};
    mc_parser_init(p, lines[(s >> 1) & 3], values[(s >> 3) & 3]);
    p->binary_keys = s & 1;
}

/* One result; the request is kept as raw bytes, so records compare with
 * memcmp (both parsers clear what they fill). */
struct rec {
    int rc;
    bool meta;
    size_t at;
    uint32_t total_len;
    union {
        struct mc_meta_request m;
        struct mc_request t;
    } u;
};

struct run {
    struct rec recs[MAX_RECS];
    int n;
    size_t at, swallow;
    bool stopped;
};

static const size_t META_CMP = offsetof(struct mc_meta_request, kbuf_len);

static void check_flags(const char *b, const struct mc_meta_request *r)
{
    uint64_t bits = 0;
    uint32_t max = r->cmd == MC_META_SET ? MC_META_MAX_FLAGS - 1 : MC_META_MAX_FLAGS;
    REQUIRE(r->nflags <= max);
    for (uint32_t i = 0; i < r->nflags; i++) {
        const struct mc_meta_flag *f = &r->flags[i];
        char c = f->letter;
        REQUIRE(f->len >= 1 && f->off + f->len < r->line_len);
        REQUIRE(b[f->off] == c && b[f->off - 1] == ' ');
        REQUIRE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
        REQUIRE(!(bits & MC_META_BIT(c)));
        REQUIRE(memchr(b + f->off, ' ', f->len) == NULL);
        REQUIRE(memchr(b + f->off, '\0', f->len) == NULL);
        if (i > 0)
            REQUIRE(f->off > r->flags[i - 1].off + r->flags[i - 1].len);
        bits |= MC_META_BIT(c);
        REQUIRE(mc_meta_flag(r, c) == f);
    }
    REQUIRE(bits == r->flag_bits);
    const struct mc_meta_flag *o = mc_meta_flag(r, 'O');
    REQUIRE(!o || o->len <= 32);
    REQUIRE(r->quiet == mc_meta_has(r, 'q'));
    if (mc_meta_has(r, 'M') && r->cmd == MC_META_SET)
        REQUIRE(memchr("EAPRS", r->mode, 5) != NULL);
    if (mc_meta_has(r, 'M') && r->cmd == MC_META_ARITH)
        REQUIRE(memchr("I+D-", r->mode, 4) != NULL);
}

static void check_key(const struct mc_parser *p, const char *b,
                      const struct mc_meta_request *r)
{
    REQUIRE(r->key_len >= 1 && r->key_len <= MC_KEY_MAX);
    REQUIRE(r->key_off + r->key_len < r->line_len);
    REQUIRE(mc_key_allowed(b + r->key_off, r->key_len, p->binary_keys));
    REQUIRE(r->binary_key == mc_meta_has(r, 'b'));
    if (r->binary_key) {
        uint8_t again[MC_KEY_MAX];
        long n = base64_decode(b + r->key_off, r->key_len, again, sizeof again);
        REQUIRE(n >= 1 && (uint32_t)n == r->kbuf_len);
        REQUIRE(memcmp(again, r->kbuf, r->kbuf_len) == 0);
    }
}

static void check_meta(const struct mc_parser *p, const char *b, size_t len,
                       int rc, const struct mc_meta_request *r)
{
    if (rc == GW_AGAIN) {
        REQUIRE(p->scanned <= len);
        return;
    }
    REQUIRE(p->scanned == 0);
    REQUIRE(r->line_len > 0 && r->line_len <= r->total_len);
    REQUIRE(r->line_len <= len && r->line_len <= p->max_line);
    if (rc == GW_ERROR) {
        REQUIRE(r->error != NULL);
        REQUIRE(strcmp(r->error, "ERROR") == 0 ||
                strncmp(r->error, "CLIENT_ERROR ", 13) == 0 ||
                strncmp(r->error, "SERVER_ERROR ", 13) == 0);
        if (r->close)
            REQUIRE(strcmp(r->error, "CLIENT_ERROR line too long") == 0);
        else if (r->total_len != r->line_len)
            REQUIRE(r->cmd == MC_META_SET);
        return;
    }
    REQUIRE(rc == GW_OK && r->error == NULL && !r->close);
    REQUIRE(r->total_len <= len && b[r->line_len - 1] == '\n');
    REQUIRE(mc_cmd_is_meta(r->cmd));
    if (r->cmd == MC_META_NOOP) {
        REQUIRE(r->nflags == 0 && r->key_len == 0 && r->flag_bits == 0);
        REQUIRE(r->total_len == r->line_len);
        return;
    }
    check_key(p, b, r);
    check_flags(b, r);
    if (r->cmd == MC_META_DEBUG)
        REQUIRE(r->flag_bits == 0 || r->flag_bits == MC_META_BIT('b'));
    if (r->cmd != MC_META_SET) {
        REQUIRE(r->total_len == r->line_len);
        return;
    }
    REQUIRE(r->key_off + r->key_len < r->flags[0].off || r->nflags == 0);
    REQUIRE(r->data_off == r->line_len && r->bytes <= p->max_value);
    REQUIRE((uint64_t)r->line_len + r->bytes + 2 == r->total_len);
    REQUIRE(b[r->total_len - 2] == '\r' && b[r->total_len - 1] == '\n');
}

/* A meta request that parsed whole from b[0, total): with a fresh parser,
 * its proper prefixes (placed at the end of a heap block) give GW_AGAIN. */
static void check_prefixes(uint8_t s, const char *b, size_t total,
                           char *scratch, size_t room)
{
    const char *nl = memchr(b, '\n', total);
    size_t line = nl ? (size_t)(nl - b) + 1 : total;
    size_t ks[] = {0, 1, total / 2, total - 1, line - 1, line, line + 1};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        if (ks[i] >= total)
            continue;
        struct mc_parser p;
        struct mc_meta_request r;
        init(&p, s);
        memcpy(scratch + room - ks[i], b, ks[i]);
        REQUIRE(mc_meta_parse(&p, scratch + room - ks[i], ks[i], &r) == GW_AGAIN);
    }
}

static void drain(struct mc_parser *p, uint8_t s, const uint8_t *data,
                  size_t avail, struct run *run, char *scratch, size_t room)
{
    if (run->stopped || avail <= run->at)
        return;
    char *copy = malloc(avail);
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
        const char *b = copy + run->at;
        struct rec rec;
        memset(&rec, 0, sizeof rec);
        rec.at = run->at;
        rec.meta = mc_is_meta(b, left);
        bool closes;
        if (rec.meta) {
            rec.rc = mc_meta_parse(p, b, left, &rec.u.m);
            check_meta(p, b, left, rec.rc, &rec.u.m);
            rec.total_len = rec.u.m.total_len;
            closes = rec.u.m.close;
            if (rec.rc == GW_OK && scratch)
                check_prefixes(s, b, rec.total_len, scratch, room);
        } else {
            rec.rc = mc_parse(p, b, left, &rec.u.t);
            rec.total_len = rec.u.t.total_len;
            closes = rec.u.t.close || (rec.rc == GW_OK && rec.u.t.cmd == MC_QUIT);
        }
        if (rec.rc == GW_AGAIN)
            break;
        REQUIRE(rec.total_len > 0);
        REQUIRE(run->n < MAX_RECS);
        run->recs[run->n++] = rec;
        if (rec.total_len > left) {
            run->swallow = rec.total_len - left;
            run->at = avail;
        } else {
            run->at += rec.total_len;
        }
        if (closes)
            run->stopped = true;
    }
    free(copy);
}

static void same_runs(const struct run *a, const struct run *b)
{
    REQUIRE(a->n == b->n);
    for (int i = 0; i < a->n; i++) {
        const struct rec *x = &a->recs[i], *y = &b->recs[i];
        REQUIRE(x->rc == y->rc && x->meta == y->meta && x->at == y->at &&
                x->total_len == y->total_len);
        if (x->meta) {
            REQUIRE(memcmp(&x->u.m, &y->u.m, META_CMP) == 0);
            REQUIRE(x->u.m.kbuf_len == y->u.m.kbuf_len);
            REQUIRE(memcmp(x->u.m.kbuf, y->u.m.kbuf, x->u.m.kbuf_len) == 0);
        } else {
            REQUIRE(memcmp(&x->u.t, &y->u.t, sizeof x->u.t) == 0);
        }
    }
    REQUIRE(a->at == b->at && a->swallow == b->swallow &&
            a->stopped == b->stopped);
}

static struct run whole, split, bytewise;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t s = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    struct mc_parser p;
    char *scratch = malloc(n ? n : 1);
    REQUIRE(scratch != NULL);

    memset(&whole, 0, sizeof whole);
    init(&p, s);
    drain(&p, s, in, n, &whole, scratch, n);

    uint64_t h = fuzz_hash(in, n);
    size_t s1 = (size_t)(h % (n + 1));
    size_t s2 = s1 + (size_t)((h >> 32) % (n - s1 + 1));
    memset(&split, 0, sizeof split);
    init(&p, s);
    drain(&p, s, in, s1, &split, NULL, 0);
    drain(&p, s, in, s2, &split, NULL, 0);
    drain(&p, s, in, n, &split, NULL, 0);
    same_runs(&whole, &split);

    if (n <= 300) {
        memset(&bytewise, 0, sizeof bytewise);
        init(&p, s);
        for (size_t i = 1; i <= n; i++)
            drain(&p, s, in, i, &bytewise, NULL, 0);
        same_runs(&whole, &bytewise);
    }
    free(scratch);
    return 0;
}
