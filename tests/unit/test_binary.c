/* test_binary.c -- unit tests for the binary-protocol request parser and
 * response header (core/codec/binary.c).
 *
 * Every opcode memcached 1.6.18 serves is parsed, field by field, then
 * again at every split point: a proper prefix is GW_AGAIN (total_len 0
 * before the 24-byte header is in, the whole request's size after), and
 * the parser sees only an exact-size heap copy of the bytes, so a
 * sanitizer build (make unit SANITIZE=1) catches a read past len.  Then
 * the errors: a bad magic, opcodes not served, lengths that do not fit an
 * opcode, keys over 250 bytes, values over max_value, a SASL body over its
 * limit; a pipeline of all of it at every split point; the response header
 * and the error messages.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/binary.h"
#include "codec/proto.h"
#include "unit.h"

#define K50 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define KEY250 K50 K50 K50 K50 K50
#define KEY251 KEY250 "k"

/* What binary.c allows a SASL exchange (its SASL_MAX). */
#define SASL_BODY_MAX 4096

/* The opaque every request here carries: echoed as these bytes. */
static const uint8_t OPAQUE[4] = {0xde, 0xad, 0xbe, 0xef};

/* ---- building requests ------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

/* A 24-byte request header with the lengths as given (they need not agree
 * with any body). */
static void header(uint8_t *out, uint8_t op, uint16_t keylen, uint8_t extlen,
                   uint32_t bodylen, uint64_t cas)
{
    out[0] = MC_BIN_REQ_MAGIC;
    out[1] = op;
    out[2] = (uint8_t)(keylen >> 8);
    out[3] = (uint8_t)keylen;
    out[4] = extlen;
    out[5] = 0;  /* data type */
    out[6] = 0;  /* vbucket */
    out[7] = 0;
    be32(out + 8, bodylen);
    memcpy(out + 12, OPAQUE, 4);
    be64(out + 16, cas);
}

/* A whole request into out (room enough): header, extras, key, value.
 * Returns its length. */
static size_t build(uint8_t *out, uint8_t op, const void *ext, size_t extlen,
                    const void *key, size_t keylen, const void *val, size_t vlen,
                    uint64_t cas)
{
    header(out, op, (uint16_t)keylen, (uint8_t)extlen,
           (uint32_t)(extlen + keylen + vlen), cas);
    size_t n = MC_BIN_HEADER;
    if (extlen) memcpy(out + n, ext, extlen);
    n += extlen;
    if (keylen) memcpy(out + n, key, keylen);
    n += keylen;
    if (vlen) memcpy(out + n, val, vlen);
    return n + vlen;
}

/* ---- parsing ------------------------------------------------------------- */

/* Parse n bytes from a heap copy of exactly that size (a sanitizer build
 * catches a read past the end), with max_value (0: the default). */
static uint8_t *last;

static int parse_n(const void *s, size_t n, size_t max_value, struct mc_bin_request *r)
{
    struct mc_parser p;
    free(last);
    last = malloc(n ? n : 1);
    if (n) memcpy(last, s, n);
    mc_parser_init(&p, 0, max_value);
    /* garbage in: the parser must fill what it returns */
    memset(r, 0xa5, sizeof *r);
    return mc_bin_parse(&p, (const char *)last, n, r);
}

/* A request that parses whole from s[0, n): every proper prefix is
 * GW_AGAIN with total_len 0 before the header is in and n after; and the
 * request followed by more bytes (the next request) parses the same. */
static bool splits_ok(const uint8_t *s, size_t n, size_t max_value,
                      const struct mc_bin_request *want)
{
    int bad = 0;
    struct mc_bin_request r;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_n(s, i, max_value, &r);
        uint32_t t = i < MC_BIN_HEADER ? 0 : (uint32_t)n;
        if (rc != GW_AGAIN || r.total_len != t) {
            if (bad++ < 3)
                fprintf(stderr, "opcode 0x%02x, split at %zu of %zu: rc %d total_len %u\n",
                        s[1], i, n, rc, r.total_len);
        }
    }
    uint8_t *more = malloc(n + 30);
    memcpy(more, s, n);
    memset(more + n, MC_BIN_REQ_MAGIC, 30);
    if (parse_n(more, n + 30, max_value, &r) != GW_OK || memcmp(&r, want, sizeof r) != 0) {
        fprintf(stderr, "opcode 0x%02x: differs with bytes after it\n", s[1]);
        bad++;
    }
    free(more);
    return bad == 0;
}

/* Parse a request that must be OK; check what every OK request must be
 * (offsets, lengths, opaque, cas) and its split points.  *r is the result. */
static bool parse_ok(const uint8_t *s, size_t n, size_t max_value, struct mc_bin_request *r)
{
    int rc = parse_n(s, n, max_value, r);
    bool ok = rc == GW_OK && r->total_len == n &&
              r->total_len == MC_BIN_HEADER + r->bodylen &&
              r->opcode == s[1] && r->status == 0 && !r->close &&
              r->key_off == (uint32_t)MC_BIN_HEADER + r->extlen &&
              r->value_off == r->key_off + r->keylen &&
              r->key_off + r->keylen + r->value_len == r->total_len &&
              memcmp(&r->opaque, OPAQUE, 4) == 0 &&
              memcmp(&r->opaque, s + 12, 4) == 0;
    if (!ok) {
        fprintf(stderr, "opcode 0x%02x (%zu bytes): rc %d status 0x%x total_len %u\n",
                n > 1 ? s[1] : 0, n, rc, r->status, r->total_len);
        return false;
    }
    struct mc_bin_request keep;
    memcpy(&keep, r, sizeof keep);  /* padding and all: compared with memcmp */
    ok = splits_ok(s, n, max_value, &keep);
    memcpy(r, &keep, sizeof keep);
    return ok;
}

/* A request refused as soon as its header is in: every prefix of fewer
 * than 24 bytes is GW_AGAIN with total_len 0; the header alone, the
 * header and part of the body, and the whole all give the same error. */
static bool refused(const uint8_t *s, size_t n, size_t max_value, uint16_t status,
                    bool close, struct mc_bin_request *out)
{
    int bad = 0;
    struct mc_bin_request r, first;
    memset(&first, 0, sizeof first);
    for (size_t i = 0; i < MC_BIN_HEADER && i < n; i++) {
        int rc = parse_n(s, i, max_value, &r);
        if (rc != GW_AGAIN || r.total_len != 0) bad++;
    }
    size_t lens[] = {MC_BIN_HEADER, MC_BIN_HEADER + 1, n / 2, n - 1, n};
    bool have_first = false;
    for (size_t k = 0; k < GW_ARRAY_LEN(lens); k++) {
        size_t i = lens[k];
        if (i < MC_BIN_HEADER || i > n) continue;
        int rc = parse_n(s, i, max_value, &r);
        if (rc != GW_ERROR || r.status != status || r.close != close) {
            if (bad++ < 3)
                fprintf(stderr, "opcode 0x%02x, %zu of %zu bytes: rc %d status 0x%x close %d\n",
                        s[1], i, n, rc, r.status, r.close);
            continue;
        }
        if (!have_first) {
            memcpy(&first, &r, sizeof r);
            have_first = true;
        } else if (memcmp(&r, &first, sizeof r) != 0) {
            bad++;
        }
    }
    if (out && have_first) memcpy(out, &first, sizeof first);
    return bad == 0 && have_first;
}

/* ---- the opcodes ------------------------------------------------------- */

enum shape { E, K, S, C, A, T, F, ST, SA };

static const struct {
    uint8_t op;
    enum mc_cmd cmd;
    bool quiet, with_key;
    enum shape shape;
    const char *name;
} SERVED[] = {
    {BIN_GET, MC_GET, false, false, K, "Get"},
    {BIN_GETQ, MC_GET, true, false, K, "GetQ"},
    {BIN_GETK, MC_GET, false, true, K, "GetK"},
    {BIN_GETKQ, MC_GET, true, true, K, "GetKQ"},
    {BIN_SET, MC_SET, false, false, S, "Set"},
    {BIN_SETQ, MC_SET, true, false, S, "SetQ"},
    {BIN_ADD, MC_ADD, false, false, S, "Add"},
    {BIN_ADDQ, MC_ADD, true, false, S, "AddQ"},
    {BIN_REPLACE, MC_REPLACE, false, false, S, "Replace"},
    {BIN_REPLACEQ, MC_REPLACE, true, false, S, "ReplaceQ"},
    {BIN_APPEND, MC_APPEND, false, false, C, "Append"},
    {BIN_APPENDQ, MC_APPEND, true, false, C, "AppendQ"},
    {BIN_PREPEND, MC_PREPEND, false, false, C, "Prepend"},
    {BIN_PREPENDQ, MC_PREPEND, true, false, C, "PrependQ"},
    {BIN_DELETE, MC_DELETE, false, false, K, "Delete"},
    {BIN_DELETEQ, MC_DELETE, true, false, K, "DeleteQ"},
    {BIN_INCREMENT, MC_INCR, false, false, A, "Increment"},
    {BIN_INCREMENTQ, MC_INCR, true, false, A, "IncrementQ"},
    {BIN_DECREMENT, MC_DECR, false, false, A, "Decrement"},
    {BIN_DECREMENTQ, MC_DECR, true, false, A, "DecrementQ"},
    {BIN_TOUCH, MC_TOUCH, false, false, T, "Touch"},
    {BIN_GAT, MC_GAT, false, false, T, "GAT"},
    {BIN_GATQ, MC_GAT, true, false, T, "GATQ"},
    {BIN_GATK, MC_GAT, false, true, T, "GATK"},
    {BIN_GATKQ, MC_GAT, true, true, T, "GATKQ"},
    {BIN_NOOP, MC_NONE, false, false, E, "Noop"},
    {BIN_VERSION, MC_VERSION, false, false, E, "Version"},
    {BIN_QUIT, MC_QUIT, false, false, E, "Quit"},
    {BIN_QUITQ, MC_QUIT, true, false, E, "QuitQ"},
    {BIN_FLUSH, MC_FLUSH_ALL, false, false, F, "Flush"},
    {BIN_FLUSHQ, MC_FLUSH_ALL, true, false, F, "FlushQ"},
    {BIN_STAT, MC_STATS, false, false, ST, "Stat"},
    {BIN_SASL_LIST_MECHS, MC_NONE, false, false, E, "SASL list mechs"},
    {BIN_SASL_AUTH, MC_NONE, false, false, SA, "SASL auth"},
    {BIN_SASL_STEP, MC_NONE, false, false, SA, "SASL step"},
};

static int served(uint8_t op)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(SERVED); i++)
        if (SERVED[i].op == op) return (int)i;
    return -1;
}

/* A valid request of a shape: key "foo" where there is one, a value "bar"
 * where one goes, extras of the right size. */
static size_t valid_for(uint8_t *out, uint8_t op, enum shape sh, uint64_t cas)
{
    uint8_t ext[20];
    memset(ext, 0, sizeof ext);
    switch (sh) {
    case E: return build(out, op, NULL, 0, NULL, 0, NULL, 0, cas);
    case K: return build(out, op, NULL, 0, "foo", 3, NULL, 0, cas);
    case S: return build(out, op, ext, 8, "foo", 3, "bar", 3, cas);
    case C: return build(out, op, NULL, 0, "foo", 3, "bar", 3, cas);
    case A: return build(out, op, ext, 20, "foo", 3, NULL, 0, cas);
    case T: return build(out, op, ext, 4, "foo", 3, NULL, 0, cas);
    case F: return build(out, op, NULL, 0, NULL, 0, NULL, 0, cas);
    case ST: return build(out, op, NULL, 0, NULL, 0, NULL, 0, cas);
    case SA: return build(out, op, NULL, 0, "PLAIN", 5, "\0u\0p", 4, cas);
    }
    return 0;
}

/* Each served opcode: its command, quiet and with_key, opaque echoed. */
static void test_every_opcode(void)
{
    uint8_t b[128];
    struct mc_bin_request r;
    for (size_t i = 0; i < GW_ARRAY_LEN(SERVED); i++) {
        size_t n = valid_for(b, SERVED[i].op, SERVED[i].shape, 0);
        bool ok = parse_ok(b, n, 0, &r) && r.cmd == SERVED[i].cmd &&
                  r.quiet == SERVED[i].quiet && r.with_key == SERVED[i].with_key;
        if (!ok)
            fprintf(stderr, "%s: cmd %d quiet %d with_key %d\n", SERVED[i].name,
                    r.cmd, r.quiet, r.with_key);
        CHECK(ok);
    }
    CHECK_EQ_INT(GW_ARRAY_LEN(SERVED), 35);
}

/* Any other opcode: "Unknown command", the body swallowed, no close; known
 * as soon as the header is in, whatever the lengths. */
static void test_unknown_opcodes(void)
{
    uint8_t b[64];
    struct mc_bin_request r;
    int unknown = 0;
    for (int op = 0; op < 256; op++) {
        if (served((uint8_t)op) >= 0) continue;
        unknown++;
        size_t n = build(b, (uint8_t)op, "xx", 2, "abc", 3, "hello", 5, 7);
        bool ok = refused(b, n, 0, BIN_UNKNOWN_COMMAND, false, &r) &&
                  r.total_len == n && r.opcode == op && r.cmd == MC_NONE &&
                  memcmp(&r.opaque, OPAQUE, 4) == 0;
        n = build(b, (uint8_t)op, NULL, 0, NULL, 0, NULL, 0, 0);
        ok = ok && refused(b, n, 0, BIN_UNKNOWN_COMMAND, false, &r) &&
             r.total_len == MC_BIN_HEADER;
        if (!ok) fprintf(stderr, "opcode 0x%02x\n", op);
        CHECK(ok);
    }
    CHECK_EQ_INT(unknown, 256 - 35);

    /* Verbosity among them: memcached 1.6.18 does not serve it */
    uint8_t ext[4] = {0, 0, 0, 1};
    size_t n = build(b, BIN_VERBOSITY, ext, 4, NULL, 0, NULL, 0, 0);
    CHECK(refused(b, n, 0, BIN_UNKNOWN_COMMAND, false, &r));
    CHECK_EQ_INT(r.total_len, 28);
    CHECK_EQ_INT(r.cmd, MC_NONE);

    /* a key and extras longer than the body: Unknown command and close,
     * whatever the opcode (memcached's first check) */
    for (int op = 0; op < 256; op++) {
        static const struct {
            uint8_t extlen;
            uint16_t keylen;
            uint32_t bodylen;
        } over[] = {{0, 1, 0}, {1, 0, 0}, {4, 3, 6}, {20, 250, 269}, {255, 65535, 65535},
                    {0, 251, 250}};
        for (size_t i = 0; i < GW_ARRAY_LEN(over); i++) {
            header(b, (uint8_t)op, over[i].keylen, over[i].extlen, over[i].bodylen, 0);
            bool ok = parse_n(b, MC_BIN_HEADER, 0, &r) == GW_ERROR &&
                      r.status == BIN_UNKNOWN_COMMAND && r.close &&
                      memcmp(&r.opaque, OPAQUE, 4) == 0;
            if (!ok) fprintf(stderr, "opcode 0x%02x, over %zu: status 0x%x\n", op, i, r.status);
            CHECK(ok);
        }
    }

    /* the body need not be there: total_len covers it (swallowed as it
     * comes), even a large one */
    header(b, 0x30, 0, 0, 1000000, 0);  /* RGet: memcached does not serve it */
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_UNKNOWN_COMMAND);
    CHECK(!r.close);
    CHECK_EQ_INT(r.total_len, MC_BIN_HEADER + 1000000);
    header(b, 0xff, 0, 0, UINT32_MAX - MC_BIN_HEADER, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_UNKNOWN_COMMAND);
    CHECK(r.total_len == UINT32_MAX);
}

/* ---- each family, field by field ----------------------------------------- */

static void test_get(void)
{
    static const uint8_t ops[] = {BIN_GET, BIN_GETQ, BIN_GETK, BIN_GETKQ};
    uint8_t b[400];
    struct mc_bin_request r;
    for (size_t i = 0; i < sizeof ops; i++) {
        size_t n = build(b, ops[i], NULL, 0, "foo", 3, NULL, 0, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.cmd, MC_GET);
        CHECK_EQ_INT(r.total_len, 27);
        CHECK_EQ_INT(r.extlen, 0);
        CHECK_EQ_INT(r.bodylen, 3);
        CHECK_EQ_INT(r.key_off, 24);
        CHECK_EQ_INT(r.keylen, 3);
        CHECK_EQ_MEM(b + r.key_off, r.keylen, "foo");
        CHECK_EQ_INT(r.value_off, 27);
        CHECK_EQ_INT(r.value_len, 0);
        CHECK(r.cas == 0);
        CHECK_EQ_INT(r.flags, 0);
        CHECK_EQ_INT(r.exptime, 0);
        CHECK_EQ_INT(r.quiet, ops[i] == BIN_GETQ || ops[i] == BIN_GETKQ);
        CHECK_EQ_INT(r.with_key, ops[i] == BIN_GETK || ops[i] == BIN_GETKQ);
    }

    /* any bytes in a key (memcached takes them); 1 and 250 bytes */
    static const char odd[] = "a b\0c\r\n\x7f\xff";
    size_t n = build(b, BIN_GETK, NULL, 0, odd, sizeof odd - 1, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.keylen, sizeof odd - 1);
    CHECK(memcmp(b + r.key_off, odd, sizeof odd - 1) == 0);
    n = build(b, BIN_GET, NULL, 0, "k", 1, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.keylen, 1);
    n = build(b, BIN_GETKQ, NULL, 0, KEY250, 250, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.keylen, 250);
    CHECK_EQ_INT(r.total_len, 274);

    /* the data type and vbucket bytes are not looked at */
    n = build(b, BIN_GET, NULL, 0, "foo", 3, NULL, 0, 0);
    b[5] = 0x7f;
    b[6] = 0x12;
    b[7] = 0x34;
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.cmd, MC_GET);
}

/* Set, Add, Replace and their quiet forms; any of them with a cas is a cas
 * (memcached stores it as one). */
static void test_store(void)
{
    static const struct {
        uint8_t op;
        enum mc_cmd cmd, with_cas;
        bool quiet;
    } ops[] = {
        {BIN_SET, MC_SET, MC_CAS, false},        {BIN_SETQ, MC_SET, MC_CAS, true},
        {BIN_ADD, MC_ADD, MC_CAS, false},        {BIN_ADDQ, MC_ADD, MC_CAS, true},
        {BIN_REPLACE, MC_REPLACE, MC_CAS, false},
        {BIN_REPLACEQ, MC_REPLACE, MC_CAS, true},
    };
    uint8_t b[600], ext[8];
    struct mc_bin_request r;
    be32(ext, 0xdeadbeef);
    be32(ext + 4, 3600);
    for (size_t i = 0; i < GW_ARRAY_LEN(ops); i++) {
        for (int with_cas = 0; with_cas < 2; with_cas++) {
            uint64_t cas = with_cas ? 0x0102030405060708ULL : 0;
            size_t n = build(b, ops[i].op, ext, 8, "key", 3, "value", 5, cas);
            CHECK(parse_ok(b, n, 0, &r));
            CHECK_EQ_INT(r.cmd, with_cas ? ops[i].with_cas : ops[i].cmd);
            CHECK_EQ_INT(r.quiet, ops[i].quiet);
            CHECK(!r.with_key);
            CHECK(r.cas == cas);
            CHECK_EQ_INT(r.extlen, 8);
            CHECK(r.flags == 0xdeadbeef);
            CHECK_EQ_INT(r.exptime, 3600);
            CHECK_EQ_INT(r.key_off, 32);
            CHECK_EQ_MEM(b + r.key_off, r.keylen, "key");
            CHECK_EQ_INT(r.value_off, 35);
            CHECK_EQ_MEM(b + r.value_off, r.value_len, "value");
            CHECK_EQ_INT(r.total_len, 40);
            CHECK_EQ_INT(r.bodylen, 16);
        }
    }

    /* cas and exptime read big-endian, all their bits */
    be32(ext, 0);
    be32(ext + 4, 0xffffffff);
    size_t n = build(b, BIN_SET, ext, 8, "k", 1, "", 0, 0xfffefdfcfbfaf9f8ULL);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.cmd, MC_CAS);
    CHECK(r.cas == 0xfffefdfcfbfaf9f8ULL);
    CHECK(r.exptime == 0xffffffffu);
    CHECK_EQ_INT(r.flags, 0);
    CHECK_EQ_INT(r.value_len, 0);  /* an empty value */
    CHECK_EQ_INT(r.value_off, 33);
    CHECK_EQ_INT(r.total_len, 33);

    /* a value of any bytes, up to max_value exactly */
    uint8_t v[300];
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (uint8_t)i;
    n = build(b, BIN_ADDQ, ext, 8, KEY250, 250, v, 100, 0);
    CHECK(parse_ok(b, n, 100, &r));
    CHECK_EQ_INT(r.value_len, 100);
    CHECK_EQ_INT(r.value_off, 24 + 8 + 250);
    CHECK(memcmp(b + r.value_off, v, 100) == 0);
    n = build(b, BIN_SET, ext, 8, "k", 1, v, 300, 0);
    CHECK(parse_ok(b, n, 300, &r));
    CHECK_EQ_INT(r.value_len, 300);
}

static void test_concat(void)
{
    static const uint8_t ops[] = {BIN_APPEND, BIN_APPENDQ, BIN_PREPEND, BIN_PREPENDQ};
    uint8_t b[128];
    struct mc_bin_request r;
    for (size_t i = 0; i < sizeof ops; i++) {
        for (int with_cas = 0; with_cas < 2; with_cas++) {
            uint64_t cas = with_cas ? 77 : 0;
            size_t n = build(b, ops[i], NULL, 0, "foo", 3, "bar", 3, cas);
            CHECK(parse_ok(b, n, 0, &r));
            bool append = ops[i] == BIN_APPEND || ops[i] == BIN_APPENDQ;
            CHECK_EQ_INT(r.cmd, append ? MC_APPEND : MC_PREPEND);  /* a cas or not */
            CHECK_EQ_INT(r.quiet, ops[i] == BIN_APPENDQ || ops[i] == BIN_PREPENDQ);
            CHECK(r.cas == cas);
            CHECK_EQ_INT(r.extlen, 0);
            CHECK_EQ_INT(r.key_off, 24);
            CHECK_EQ_MEM(b + r.key_off, r.keylen, "foo");
            CHECK_EQ_INT(r.value_off, 27);
            CHECK_EQ_MEM(b + r.value_off, r.value_len, "bar");
            CHECK_EQ_INT(r.flags, 0);
            CHECK_EQ_INT(r.exptime, 0);
            CHECK_EQ_INT(r.total_len, 30);
        }
        size_t n = build(b, ops[i], NULL, 0, "foo", 3, NULL, 0, 0);  /* nothing to add */
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.value_len, 0);
    }
}

static void test_delete(void)
{
    uint8_t b[64];
    struct mc_bin_request r;
    size_t n = build(b, BIN_DELETE, NULL, 0, "gone", 4, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.cmd, MC_DELETE);
    CHECK(!r.quiet);
    CHECK_EQ_MEM(b + r.key_off, r.keylen, "gone");
    CHECK_EQ_INT(r.value_len, 0);
    CHECK(r.cas == 0);
    n = build(b, BIN_DELETEQ, NULL, 0, "gone", 4, NULL, 0, 42);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.cmd, MC_DELETE);
    CHECK(r.quiet);
    CHECK(r.cas == 42);
    CHECK_EQ_INT(r.total_len, 28);
}

static void test_arith(void)
{
    static const struct {
        uint8_t op;
        enum mc_cmd cmd;
        bool quiet;
    } ops[] = {
        {BIN_INCREMENT, MC_INCR, false}, {BIN_INCREMENTQ, MC_INCR, true},
        {BIN_DECREMENT, MC_DECR, false}, {BIN_DECREMENTQ, MC_DECR, true},
    };
    static const struct {
        uint64_t delta, initial;
        uint32_t exptime;
    } vals[] = {
        {1, 0, 0},
        {0x0102030405060708ULL, 0x1112131415161718ULL, 3600},
        {UINT64_MAX, UINT64_MAX, MC_BIN_NO_CREATE},
        {0, 5, 0xfffffffe},
    };
    uint8_t b[128], ext[20];
    struct mc_bin_request r;
    for (size_t i = 0; i < GW_ARRAY_LEN(ops); i++) {
        for (size_t j = 0; j < GW_ARRAY_LEN(vals); j++) {
            be64(ext, vals[j].delta);
            be64(ext + 8, vals[j].initial);
            be32(ext + 16, vals[j].exptime);
            size_t n = build(b, ops[i].op, ext, 20, "counter", 7, NULL, 0, j == 1 ? 9 : 0);
            CHECK(parse_ok(b, n, 0, &r));
            CHECK_EQ_INT(r.cmd, ops[i].cmd);
            CHECK_EQ_INT(r.quiet, ops[i].quiet);
            CHECK(r.delta == vals[j].delta);
            CHECK(r.initial == vals[j].initial);
            CHECK(r.exptime == vals[j].exptime);
            CHECK(r.cas == (j == 1 ? 9u : 0u));
            CHECK_EQ_INT(r.extlen, 20);
            CHECK_EQ_INT(r.key_off, 44);
            CHECK_EQ_MEM(b + r.key_off, r.keylen, "counter");
            CHECK_EQ_INT(r.value_len, 0);
            CHECK_EQ_INT(r.total_len, 51);
            CHECK_EQ_INT(r.flags, 0);
        }
    }
    /* "do not create" */
    be32(ext + 16, 0xffffffff);
    size_t n = build(b, BIN_INCREMENT, ext, 20, "c", 1, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK(r.exptime == MC_BIN_NO_CREATE);
}

static void test_touch_gat(void)
{
    static const struct {
        uint8_t op;
        enum mc_cmd cmd;
        bool quiet, with_key;
    } ops[] = {
        {BIN_TOUCH, MC_TOUCH, false, false}, {BIN_GAT, MC_GAT, false, false},
        {BIN_GATQ, MC_GAT, true, false},     {BIN_GATK, MC_GAT, false, true},
        {BIN_GATKQ, MC_GAT, true, true},
    };
    uint8_t b[64], ext[4];
    struct mc_bin_request r;
    for (size_t i = 0; i < GW_ARRAY_LEN(ops); i++) {
        static const uint32_t exps[] = {0, 60, 0x80000000u, 0xffffffffu};
        for (size_t j = 0; j < GW_ARRAY_LEN(exps); j++) {
            be32(ext, exps[j]);
            size_t n = build(b, ops[i].op, ext, 4, "foo", 3, NULL, 0, 0);
            CHECK(parse_ok(b, n, 0, &r));
            CHECK_EQ_INT(r.cmd, ops[i].cmd);
            CHECK_EQ_INT(r.quiet, ops[i].quiet);
            CHECK_EQ_INT(r.with_key, ops[i].with_key);
            CHECK(r.exptime == exps[j]);
            CHECK_EQ_INT(r.extlen, 4);
            CHECK_EQ_INT(r.key_off, 28);
            CHECK_EQ_MEM(b + r.key_off, r.keylen, "foo");
            CHECK_EQ_INT(r.value_len, 0);
            CHECK_EQ_INT(r.total_len, 31);
        }
    }
}

/* Noop, Version, Quit(Q), Flush(Q), Stat, SASL. */
static void test_others(void)
{
    uint8_t b[5000], ext[4];
    struct mc_bin_request r;
    size_t n;

    static const struct {
        uint8_t op;
        enum mc_cmd cmd;
        bool quiet;
    } empty[] = {
        {BIN_NOOP, MC_NONE, false},
        {BIN_VERSION, MC_VERSION, false},
        {BIN_QUIT, MC_QUIT, false},
        {BIN_QUITQ, MC_QUIT, true},
        {BIN_SASL_LIST_MECHS, MC_NONE, false},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(empty); i++) {
        n = build(b, empty[i].op, NULL, 0, NULL, 0, NULL, 0, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.cmd, empty[i].cmd);
        CHECK_EQ_INT(r.quiet, empty[i].quiet);
        CHECK_EQ_INT(r.total_len, 24);
        CHECK_EQ_INT(r.keylen, 0);
        CHECK_EQ_INT(r.value_len, 0);
        CHECK_EQ_INT(r.key_off, 24);
    }

    for (int q = 0; q < 2; q++) {
        uint8_t op = q ? BIN_FLUSHQ : BIN_FLUSH;
        n = build(b, op, NULL, 0, NULL, 0, NULL, 0, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.cmd, MC_FLUSH_ALL);
        CHECK_EQ_INT(r.quiet, q);
        CHECK_EQ_INT(r.extlen, 0);
        CHECK_EQ_INT(r.exptime, 0);
        CHECK_EQ_INT(r.total_len, 24);
        be32(ext, 90);
        n = build(b, op, ext, 4, NULL, 0, NULL, 0, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.cmd, MC_FLUSH_ALL);
        CHECK_EQ_INT(r.quiet, q);
        CHECK_EQ_INT(r.extlen, 4);
        CHECK_EQ_INT(r.exptime, 90);
        CHECK_EQ_INT(r.total_len, 28);
        CHECK_EQ_INT(r.key_off, 28);
    }

    n = build(b, BIN_STAT, NULL, 0, NULL, 0, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.cmd, MC_STATS);
    CHECK_EQ_INT(r.keylen, 0);
    CHECK_EQ_INT(r.total_len, 24);
    n = build(b, BIN_STAT, NULL, 0, "items", 5, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_INT(r.cmd, MC_STATS);
    CHECK_EQ_MEM(b + r.key_off, r.keylen, "items");
    CHECK_EQ_INT(r.value_len, 0);
    CHECK_EQ_INT(r.total_len, 29);
    n = build(b, BIN_STAT, NULL, 0, "detail dump", 11, NULL, 0, 0);
    CHECK(parse_ok(b, n, 0, &r));
    CHECK_EQ_MEM(b + r.key_off, r.keylen, "detail dump");

    for (int step = 0; step < 2; step++) {
        uint8_t op = step ? BIN_SASL_STEP : BIN_SASL_AUTH;
        n = build(b, op, NULL, 0, "PLAIN", 5, "\0user\0secret", 12, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.cmd, MC_NONE);
        CHECK(!r.quiet);
        CHECK_EQ_MEM(b + r.key_off, r.keylen, "PLAIN");
        CHECK_EQ_INT(r.value_off, 29);
        CHECK_EQ_INT(r.value_len, 12);
        CHECK(memcmp(b + r.value_off, "\0user\0secret", 12) == 0);
        CHECK_EQ_INT(r.total_len, 41);
        /* a mechanism alone; and the largest body */
        n = build(b, op, NULL, 0, "PLAIN", 5, NULL, 0, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.value_len, 0);
        static uint8_t big[SASL_BODY_MAX];
        n = build(b, op, NULL, 0, "PLAIN", 5, big, SASL_BODY_MAX - 5, 0);
        CHECK(parse_ok(b, n, 0, &r));
        CHECK_EQ_INT(r.bodylen, SASL_BODY_MAX);
        CHECK_EQ_INT(r.value_len, SASL_BODY_MAX - 5);
    }
}

/* ---- errors ---------------------------------------------------------------- */

/* A first byte other than 0x80: close, no answer, as soon as it is in. */
static void test_bad_magic(void)
{
    static const uint8_t firsts[] = {MC_BIN_RES_MAGIC, 0x00, 0x7f, 0xff, 'g', 'm', 0x01};
    uint8_t b[64];
    struct mc_bin_request r;
    CHECK_EQ_INT(parse_n("", 0, 0, &r), GW_AGAIN);
    CHECK_EQ_INT(r.total_len, 0);
    CHECK(!r.close);
    for (size_t i = 0; i < sizeof firsts; i++) {
        size_t n = build(b, BIN_GET, NULL, 0, "foo", 3, NULL, 0, 0);
        b[0] = firsts[i];
        for (size_t len = 1; len <= n; len++) {
            int rc = parse_n(b, len, 0, &r);
            bool ok = rc == GW_ERROR && r.status == 0 && r.close;
            if (!ok) fprintf(stderr, "magic 0x%02x, %zu bytes: rc %d\n", firsts[i], len, rc);
            CHECK(ok);
        }
    }
    CHECK_EQ_INT(parse_n("get foo\r\n", 9, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, 0);
    CHECK(r.close);
}

/* Lengths that do not fit the opcode: "Invalid arguments", then close;
 * or, when the key and extras run past the body, "Unknown command", then
 * close (memcached checks that first). */
static void test_wrong_lengths(void)
{
    static const struct {
        enum shape shape;
        uint8_t extlen;
        uint16_t keylen;
        uint32_t bodylen;
    } bad[] = {
        /* no extras, key or value */
        {E, 1, 0, 1}, {E, 4, 0, 4}, {E, 0, 1, 1}, {E, 0, 0, 1}, {E, 0, 0, 100},
        {E, 0, 3, 2},
        /* a key only */
        {K, 4, 3, 7}, {K, 0, 0, 0}, {K, 0, 0, 3}, {K, 0, 3, 4}, {K, 0, 3, 2},
        {K, 8, 3, 11}, {K, 0, 3, 0},
        /* 8 bytes of extras, a key, a value */
        {S, 0, 3, 3}, {S, 0, 3, 6}, {S, 4, 3, 7}, {S, 12, 3, 15}, {S, 20, 3, 23},
        {S, 8, 0, 8}, {S, 8, 0, 10}, {S, 8, 3, 10}, {S, 8, 3, 3}, {S, 8, 3, 0},
        /* a key and a value */
        {C, 8, 3, 11}, {C, 4, 3, 7}, {C, 0, 0, 5}, {C, 0, 0, 0}, {C, 0, 3, 2},
        /* 20 bytes of extras and a key */
        {A, 0, 3, 3}, {A, 8, 3, 11}, {A, 24, 3, 27}, {A, 19, 3, 22}, {A, 20, 0, 20},
        {A, 20, 3, 24}, {A, 20, 3, 22}, {A, 20, 3, 3},
        /* 4 bytes of extras and a key */
        {T, 0, 3, 3}, {T, 8, 3, 11}, {T, 4, 0, 4}, {T, 4, 3, 8}, {T, 4, 3, 6},
        {T, 4, 3, 3},
        /* 0 or 4 bytes of extras */
        {F, 8, 0, 8}, {F, 1, 0, 1}, {F, 3, 0, 3}, {F, 0, 1, 1}, {F, 4, 1, 5},
        {F, 0, 0, 4}, {F, 4, 0, 8}, {F, 4, 0, 3},
        /* an optional key */
        {ST, 4, 0, 4}, {ST, 4, 5, 9}, {ST, 0, 3, 5}, {ST, 0, 3, 2}, {ST, 0, 0, 3},
        /* a mechanism and data, at most SASL_BODY_MAX */
        {SA, 4, 5, 9}, {SA, 0, 0, 4}, {SA, 0, 0, 0}, {SA, 0, 5, 4},
        {SA, 0, 5, SASL_BODY_MAX + 1}, {SA, 0, 5, 100000},
    };
    size_t cap = MC_BIN_HEADER + 100000;
    uint8_t *b = malloc(cap);
    memset(b, 'x', cap);
    struct mc_bin_request r;
    int cases = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        for (size_t o = 0; o < GW_ARRAY_LEN(SERVED); o++) {
            if (SERVED[o].shape != bad[i].shape) continue;
            cases++;
            header(b, SERVED[o].op, bad[i].keylen, bad[i].extlen, bad[i].bodylen, 0);
            size_t n = MC_BIN_HEADER + bad[i].bodylen;
            bool past = (uint32_t)bad[i].keylen + bad[i].extlen > bad[i].bodylen;
            bool ok = refused(b, n, 0, past ? BIN_UNKNOWN_COMMAND : BIN_EINVAL, true, &r) &&
                      r.total_len == n && r.opcode == SERVED[o].op &&
                      r.cmd == SERVED[o].cmd && r.quiet == SERVED[o].quiet &&
                      memcmp(&r.opaque, OPAQUE, 4) == 0;
            if (!ok)
                fprintf(stderr, "%s extlen %u keylen %u bodylen %u: rc status 0x%x close %d\n",
                        SERVED[o].name, bad[i].extlen, bad[i].keylen, bad[i].bodylen,
                        r.status, r.close);
            CHECK(ok);
        }
    }
    CHECK(cases > 200);
    /* spelled out: a Get with extras; a Set whose key runs past the body */
    header(b, BIN_GET, 3, 4, 7, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
    header(b, BIN_SET, 3, 8, 10, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_UNKNOWN_COMMAND);
    CHECK(r.close);

    /* known from the header alone, even a body claimed at 4 GiB */
    header(b, BIN_GET, 3, 0, UINT32_MAX, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
    header(b, BIN_SASL_AUTH, 5, 0, UINT32_MAX, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
    free(b);
}

/* A key over 250 bytes, on every opcode that takes one: "Invalid
 * arguments" and close. */
static void test_long_keys(void)
{
    uint8_t *b = malloc(MC_BIN_HEADER + 20 + 65535 + 10);
    struct mc_bin_request r;
    static const uint16_t lens[] = {251, 300, 1000, 65535};
    for (size_t o = 0; o < GW_ARRAY_LEN(SERVED); o++) {
        uint8_t extlen = 0;
        uint32_t vlen = 0;
        switch (SERVED[o].shape) {
        case K: case ST: break;
        case S: extlen = 8; vlen = 2; break;
        case C: case SA: vlen = 2; break;
        case A: extlen = 20; break;
        case T: extlen = 4; break;
        default: continue;
        }
        for (size_t l = 0; l < GW_ARRAY_LEN(lens); l++) {
            uint32_t body = extlen + lens[l] + vlen;
            if (SERVED[o].shape == SA && body > SASL_BODY_MAX) continue;
            header(b, SERVED[o].op, lens[l], extlen, body, 0);
            memset(b + MC_BIN_HEADER, 'k', body);
            size_t n = MC_BIN_HEADER + body;
            bool ok = refused(b, n, 0, BIN_EINVAL, true, &r) && r.total_len == n;
            if (!ok) fprintf(stderr, "%s, key of %u\n", SERVED[o].name, lens[l]);
            CHECK(ok);
        }
        /* 250 is fine */
        header(b, SERVED[o].op, 250, extlen, extlen + 250 + vlen, 0);
        bool ok = parse_ok(b, MC_BIN_HEADER + extlen + 250 + vlen, 0, &r) && r.keylen == 250;
        if (!ok) fprintf(stderr, "%s, key of 250\n", SERVED[o].name);
        CHECK(ok);
    }
    /* a too-large Set whose key is too long: the key is what is wrong */
    header(b, BIN_SET, 251, 8, 8 + 251 + 5000, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 100, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
    free(b);
}

/* A value over max_value on Set & co., Append, Prepend: "Too large.", no
 * close, the body swallowed; refused once the key is in (GW_AGAIN with
 * total_len = value_off until then). */
static void test_too_large(void)
{
    static const uint8_t ops[] = {BIN_SET, BIN_SETQ, BIN_ADD, BIN_ADDQ, BIN_REPLACE,
                                  BIN_REPLACEQ, BIN_APPEND, BIN_APPENDQ, BIN_PREPEND,
                                  BIN_PREPENDQ};
    uint8_t b[512], v[101], ext[8];
    struct mc_bin_request r;
    memset(v, 'v', sizeof v);
    be32(ext, 0xcafe);
    be32(ext + 4, 60);
    for (size_t i = 0; i < sizeof ops; i++) {
        int o = served(ops[i]);
        bool store = SERVED[o].shape == S;
        for (int with_cas = 0; with_cas < 2; with_cas++) {
            uint64_t cas = with_cas ? 5 : 0;
            size_t n = build(b, ops[i], ext, store ? 8 : 0, "bigkey", 6, v, 101, cas);
            uint32_t value_off = (uint32_t)(MC_BIN_HEADER + (store ? 8 : 0) + 6);
            int bad = 0;
            for (size_t len = 0; len <= n; len++) {
                int rc = parse_n(b, len, 100, &r);
                bool ok;
                if (len < MC_BIN_HEADER)
                    ok = rc == GW_AGAIN && r.total_len == 0;
                else if (len < value_off)
                    ok = rc == GW_AGAIN && r.total_len == value_off;
                else
                    ok = rc == GW_ERROR && r.status == BIN_E2BIG && !r.close &&
                         r.total_len == n && r.key_off == value_off - 6 && r.keylen == 6 &&
                         memcmp(b + r.key_off, "bigkey", 6) == 0 &&
                         r.value_off == value_off && r.value_len == 101 &&
                         r.opcode == ops[i] && r.cmd == SERVED[o].cmd &&
                         r.quiet == SERVED[o].quiet && r.cas == cas &&
                         memcmp(&r.opaque, OPAQUE, 4) == 0 &&
                         r.flags == (store ? 0xcafeu : 0) && r.exptime == (store ? 60u : 0);
                if (!ok && bad++ < 3)
                    fprintf(stderr, "%s cas %d, %zu of %zu bytes: rc %d status 0x%x total_len %u\n",
                            SERVED[o].name, with_cas, len, n, rc, r.status, r.total_len);
            }
            CHECK_EQ_INT(bad, 0);
            /* 100 is fine */
            n = build(b, ops[i], ext, store ? 8 : 0, "bigkey", 6, v, 100, cas);
            CHECK(parse_ok(b, n, 100, &r));
        }
    }

    /* with the default limit (1 MiB); the value need not be there */
    header(b, BIN_SET, 3, 8, 8 + 3 + (1u << 20) + 1, 0);
    memcpy(b + 24, ext, 8);
    memcpy(b + 32, "foo", 3);
    CHECK_EQ_INT(parse_n(b, 34, 0, &r), GW_AGAIN);
    CHECK_EQ_INT(r.total_len, 35);
    CHECK_EQ_INT(parse_n(b, 35, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_E2BIG);
    CHECK(!r.close);
    CHECK_EQ_INT(r.total_len, 24 + 8 + 3 + (1u << 20) + 1);
    CHECK_EQ_INT(r.value_len, (1u << 20) + 1);
    /* ... the largest a header can claim and total_len still hold */
    header(b, BIN_APPENDQ, 3, 0, UINT32_MAX - MC_BIN_HEADER, 0);
    memcpy(b + 24, "foo", 3);
    CHECK_EQ_INT(parse_n(b, 27, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_E2BIG);
    CHECK(!r.close);
    CHECK(r.total_len == UINT32_MAX);

    /* other opcodes' bodies are bound by their shape: Invalid arguments */
    header(b, BIN_GET, 3, 0, 2000000, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 100, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
}

/* A body claimed over 4 GiB - 24 bytes: total_len (uint32_t) cannot hold
 * the request, so a swallow would stop short of its end and the body's
 * last bytes be taken for the next request: the answer closes. */
static void test_total_len_overflow(void)
{
    uint8_t b[64];
    struct mc_bin_request r;
    header(b, 0x30, 0, 0, UINT32_MAX, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK(r.close || (uint64_t)r.total_len == MC_BIN_HEADER + (uint64_t)UINT32_MAX);
    header(b, BIN_SET, 3, 8, UINT32_MAX - 10, 0);
    memset(b + 24, 0, 8);
    memcpy(b + 32, "foo", 3);
    CHECK_EQ_INT(parse_n(b, 35, 0, &r), GW_ERROR);
    CHECK(r.close || (uint64_t)r.total_len == MC_BIN_HEADER + (uint64_t)UINT32_MAX - 10);
}

/* An opcode not served with a key over 250 bytes (that fits in the body):
 * memcached 1.6.18 checks the key first and answers "Invalid arguments",
 * then closes (seen on a live one). */
static void test_unknown_long_key(void)
{
    uint8_t b[64];
    struct mc_bin_request r;
    header(b, 0x30, 251, 0, 251, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
    header(b, BIN_VERBOSITY, 300, 4, 310, 0);
    CHECK_EQ_INT(parse_n(b, MC_BIN_HEADER, 0, &r), GW_ERROR);
    CHECK_EQ_INT(r.status, BIN_EINVAL);
    CHECK(r.close);
}

/* ---- a pipeline at every split point ----------------------------------- */

struct rec {
    int rc;
    size_t at;
    struct mc_bin_request r;
};

#define MAX_RECS 64

struct run {
    struct rec recs[MAX_RECS];
    int n;
    size_t at, swallow;
    bool stopped;
};

/* As binary_codec.c does: parse from the next request; consume total_len,
 * swallowing what runs past the bytes at hand; stop at GW_AGAIN, at a
 * close and after Quit.  The bytes at hand are an exact-size heap copy. */
static void drain(const uint8_t *s, size_t avail, size_t max_value, struct run *run)
{
    if (run->stopped || avail <= run->at) return;
    uint8_t *copy = malloc(avail);
    memcpy(copy, s, avail);
    struct mc_parser p;
    mc_parser_init(&p, 0, max_value);
    while (run->at < avail && !run->stopped) {
        size_t left = avail - run->at;
        if (run->swallow) {
            size_t k = left < run->swallow ? left : run->swallow;
            run->at += k;
            run->swallow -= k;
            continue;
        }
        struct rec rec;
        memset(&rec, 0, sizeof rec);
        rec.at = run->at;
        rec.rc = mc_bin_parse(&p, (const char *)copy + run->at, left, &rec.r);
        if (rec.rc == GW_AGAIN) break;
        if (run->n < MAX_RECS) memcpy(&run->recs[run->n], &rec, sizeof rec);
        run->n++;
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

static bool same_runs(const struct run *a, const struct run *b)
{
    if (a->n != b->n || a->at != b->at || a->swallow != b->swallow || a->stopped != b->stopped)
        return false;
    for (int i = 0; i < a->n && i < MAX_RECS; i++) {
        const struct rec *x = &a->recs[i], *y = &b->recs[i];
        if (x->rc != y->rc || x->at != y->at ||
            memcmp(&x->r, &y->r, sizeof x->r) != 0)
            return false;
    }
    return true;
}

static void test_pipeline_splits(void)
{
    static uint8_t s[4096];
    uint8_t ext[20], v[64];
    size_t n = 0;
    memset(v, 'v', sizeof v);
    memset(ext, 0, sizeof ext);
    be32(ext, 3);
    be32(ext + 4, 100);
    n += build(s + n, BIN_SET, ext, 8, "k1", 2, "hello", 5, 0);
    n += build(s + n, BIN_GETKQ, NULL, 0, "k1", 2, NULL, 0, 0);
    n += build(s + n, BIN_GETQ, NULL, 0, "k2", 2, NULL, 0, 0);
    n += build(s + n, BIN_NOOP, NULL, 0, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_SETQ, ext, 8, "k2", 2, v, 40, 12345);           /* a cas */
    n += build(s + n, 0x30, "ab", 2, "xyz", 3, "junk", 4, 0);            /* unknown */
    n += build(s + n, BIN_APPEND, NULL, 0, "k1", 2, v, 41, 0);           /* too large */
    n += build(s + n, BIN_PREPENDQ, NULL, 0, "k1", 2, "<", 1, 0);
    be64(ext, 5);
    be64(ext + 8, 1);
    be32(ext + 16, MC_BIN_NO_CREATE);
    n += build(s + n, BIN_INCREMENT, ext, 20, "n", 1, NULL, 0, 0);
    n += build(s + n, BIN_DECREMENTQ, ext, 20, "n", 1, NULL, 0, 0);
    be32(ext, 60);
    n += build(s + n, BIN_GATK, ext, 4, "k1", 2, NULL, 0, 0);
    n += build(s + n, BIN_TOUCH, ext, 4, "k1", 2, NULL, 0, 0);
    n += build(s + n, BIN_DELETEQ, NULL, 0, "k2", 2, NULL, 0, 0);
    n += build(s + n, BIN_FLUSHQ, ext, 4, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_VERBOSITY, ext, 4, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_STAT, NULL, 0, "slabs", 5, NULL, 0, 0);
    n += build(s + n, BIN_STAT, NULL, 0, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_VERSION, NULL, 0, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_SASL_LIST_MECHS, NULL, 0, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_SASL_AUTH, NULL, 0, "PLAIN", 5, "\0a\0b", 4, 0);
    n += build(s + n, 0xee, NULL, 0, NULL, 0, v, 64, 0);                 /* unknown */
    n += build(s + n, BIN_SET, ext, 8, "k3", 2, v, 64, 0);               /* too large */
    n += build(s + n, BIN_GET, NULL, 0, "k3", 2, NULL, 0, 0);
    size_t quit_at = n;
    n += build(s + n, BIN_QUITQ, NULL, 0, NULL, 0, NULL, 0, 0);
    n += build(s + n, BIN_GET, NULL, 0, "never", 5, NULL, 0, 0);

    static const struct {
        int rc;
        uint8_t op;
        uint16_t status;
    } want[] = {
        {GW_OK, BIN_SET, 0},         {GW_OK, BIN_GETKQ, 0},
        {GW_OK, BIN_GETQ, 0},        {GW_OK, BIN_NOOP, 0},
        {GW_OK, BIN_SETQ, 0},        {GW_ERROR, 0x30, BIN_UNKNOWN_COMMAND},
        {GW_ERROR, BIN_APPEND, BIN_E2BIG},
        {GW_OK, BIN_PREPENDQ, 0},    {GW_OK, BIN_INCREMENT, 0},
        {GW_OK, BIN_DECREMENTQ, 0},  {GW_OK, BIN_GATK, 0},
        {GW_OK, BIN_TOUCH, 0},       {GW_OK, BIN_DELETEQ, 0},
        {GW_OK, BIN_FLUSHQ, 0},      {GW_ERROR, BIN_VERBOSITY, BIN_UNKNOWN_COMMAND},
        {GW_OK, BIN_STAT, 0},        {GW_OK, BIN_STAT, 0},
        {GW_OK, BIN_VERSION, 0},     {GW_OK, BIN_SASL_LIST_MECHS, 0},
        {GW_OK, BIN_SASL_AUTH, 0},   {GW_ERROR, 0xee, BIN_UNKNOWN_COMMAND},
        {GW_ERROR, BIN_SET, BIN_E2BIG},
        {GW_OK, BIN_GET, 0},         {GW_OK, BIN_QUITQ, 0},
    };
    const size_t max_value = 40;

    static struct run ref, got;
    memset(&ref, 0, sizeof ref);
    drain(s, n, max_value, &ref);
    CHECK_EQ_INT(ref.n, GW_ARRAY_LEN(want));
    for (int i = 0; i < ref.n && i < (int)GW_ARRAY_LEN(want); i++) {
        const struct rec *x = &ref.recs[i];
        bool ok = x->rc == want[i].rc && x->r.opcode == want[i].op &&
                  x->r.status == want[i].status && !x->r.close;
        if (!ok)
            fprintf(stderr, "req %d at %zu: rc %d opcode 0x%02x status 0x%x\n", i, x->at,
                    x->rc, x->r.opcode, x->r.status);
        CHECK(ok);
    }
    CHECK(ref.stopped);
    CHECK_EQ_INT(ref.at, quit_at);  /* nothing read after QuitQ */
    CHECK_EQ_INT(ref.recs[4].r.cmd, MC_CAS);
    CHECK(ref.recs[4].r.cas == 12345);
    CHECK_EQ_INT(ref.recs[6].r.total_len, 24 + 2 + 41);
    CHECK(ref.recs[8].r.exptime == MC_BIN_NO_CREATE);
    CHECK_EQ_INT(ref.recs[8].r.delta, 5);
    CHECK_EQ_MEM(s + ref.recs[15].at + ref.recs[15].r.key_off, ref.recs[15].r.keylen, "slabs");

    /* every split point: bytes [0, i) then the whole */
    int bad = 0;
    for (size_t i = 0; i <= n; i++) {
        memset(&got, 0, sizeof got);
        drain(s, i, max_value, &got);
        drain(s, n, max_value, &got);
        if (!same_runs(&ref, &got) && bad++ < 5) fprintf(stderr, "split at %zu differs\n", i);
    }
    CHECK_EQ_INT(bad, 0);

    /* one byte at a time */
    memset(&got, 0, sizeof got);
    for (size_t i = 1; i <= n; i++)
        drain(s, i, max_value, &got);
    CHECK(same_runs(&ref, &got));

    /* two split points (a sample) */
    int bad2 = 0;
    for (size_t i = 0; i <= n; i += 5) {
        for (size_t j = i; j <= n; j += 11) {
            memset(&got, 0, sizeof got);
            drain(s, i, max_value, &got);
            drain(s, j, max_value, &got);
            drain(s, n, max_value, &got);
            if (!same_runs(&ref, &got)) bad2++;
        }
    }
    CHECK_EQ_INT(bad2, 0);

    /* a request refused with close ends the stream: nothing after it */
    size_t m = 0;
    m += build(s + m, BIN_GET, NULL, 0, "a", 1, NULL, 0, 0);
    m += build(s + m, BIN_GET, "xxxx", 4, "a", 1, NULL, 0, 0);  /* extras: EINVAL */
    m += build(s + m, BIN_GET, NULL, 0, "b", 1, NULL, 0, 0);
    memset(&ref, 0, sizeof ref);
    drain(s, m, 0, &ref);
    CHECK_EQ_INT(ref.n, 2);
    CHECK_EQ_INT(ref.recs[1].rc, GW_ERROR);
    CHECK_EQ_INT(ref.recs[1].r.status, BIN_EINVAL);
    CHECK(ref.stopped);
    bad = 0;
    for (size_t i = 0; i <= m; i++) {
        memset(&got, 0, sizeof got);
        drain(s, i, 0, &got);
        drain(s, m, 0, &got);
        if (!same_runs(&ref, &got)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

/* ---- the answer side ------------------------------------------------------- */

static void test_header(void)
{
    uint8_t out[32];
    uint32_t opaque;
    memcpy(&opaque, OPAQUE, 4);
    memset(out, 0x55, sizeof out);
    mc_bin_header(out, BIN_INCREMENT, 0x0102, 8, BIN_UNKNOWN_COMMAND, 0x0a0b0c0d, opaque,
                  0x1122334455667788ULL);
    static const uint8_t want[24] = {
        0x81, 0x05, 0x01, 0x02, 0x08, 0x00, 0x00, 0x81,
        0x0a, 0x0b, 0x0c, 0x0d, 0xde, 0xad, 0xbe, 0xef,
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    };
    CHECK(memcmp(out, want, 24) == 0);
    CHECK_EQ_INT(out[24], 0x55);  /* nothing past the header */

    memset(out, 0x55, sizeof out);
    mc_bin_header(out, BIN_GETKQ, 0, 0, BIN_OK, 0, 0, 0);
    static const uint8_t zero[24] = {0x81, 0x0d};
    CHECK(memcmp(out, zero, 24) == 0);
    CHECK_EQ_INT(out[24], 0x55);

    mc_bin_header(out, 0xff, 0xffff, 0xff, 0xffff, UINT32_MAX, UINT32_MAX, UINT64_MAX);
    CHECK_EQ_INT(out[0], MC_BIN_RES_MAGIC);
    CHECK_EQ_INT(out[5], 0);  /* raw bytes */
    for (int i = 1; i < 24; i++)
        if (i != 5) CHECK_EQ_INT(out[i], 0xff);

    /* the opaque of a parsed request comes back as the client sent it */
    uint8_t b[64];
    struct mc_bin_request r;
    size_t n = build(b, BIN_GETQ, NULL, 0, "k", 1, NULL, 0, 0);
    b[12] = 0x00;
    b[13] = 0x01;
    b[14] = 0x80;
    b[15] = 0xfe;
    CHECK_EQ_INT(parse_n(b, n, 0, &r), GW_OK);
    mc_bin_header(out, r.opcode, 0, 4, BIN_KEY_ENOENT, 13, r.opaque, 0);
    CHECK(memcmp(out + 12, b + 12, 4) == 0);
    CHECK_EQ_INT(out[1], BIN_GETQ);
    CHECK_EQ_INT(out[6], 0x00);
    CHECK_EQ_INT(out[7], 0x01);
    CHECK_EQ_INT(out[11], 13);
}

static void test_status_text(void)
{
    static const struct {
        uint16_t status;
        const char *text;
    } want[] = {
        {BIN_OK, ""},
        {BIN_KEY_ENOENT, "Not found"},
        {BIN_KEY_EEXISTS, "Data exists for key."},
        {BIN_E2BIG, "Too large."},
        {BIN_EINVAL, "Invalid arguments"},
        {BIN_NOT_STORED, "Not stored."},
        {BIN_DELTA_BADVAL, "Non-numeric server-side value for incr or decr"},
        {BIN_AUTH_ERROR, "Auth failure."},
        {BIN_UNKNOWN_COMMAND, "Unknown command"},
        {BIN_ENOMEM, "Out of memory"},
        {BIN_EINTERNAL, "Internal error"},
        /* the rest: none memcached sends as an error with a message */
        {BIN_AUTH_CONTINUE, "Internal error"},
        {BIN_NOT_SUPPORTED, "Internal error"},
        {BIN_EBUSY, "Internal error"},
        {BIN_ETMPFAIL, "Internal error"},
        {0x0007, "Internal error"},
        {0xffff, "Internal error"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(want); i++) {
        const char *got = mc_bin_status_text(want[i].status);
        bool ok = got != NULL && strcmp(got, want[i].text) == 0;
        if (!ok) fprintf(stderr, "status 0x%04x: '%s'\n", want[i].status, got ? got : "(null)");
        CHECK(ok);
    }
}

int main(void)
{
    RUN(test_every_opcode);
    RUN(test_unknown_opcodes);
    RUN(test_get);
    RUN(test_store);
    RUN(test_concat);
    RUN(test_delete);
    RUN(test_arith);
    RUN(test_touch_gat);
    RUN(test_others);
    RUN(test_bad_magic);
    RUN(test_wrong_lengths);
    RUN(test_long_keys);
    RUN(test_too_large);
    RUN(test_total_len_overflow);
    RUN(test_unknown_long_key);
    RUN(test_pipeline_splits);
    RUN(test_header);
    RUN(test_status_text);
    free(last);
    return unit_report("binary");
}
