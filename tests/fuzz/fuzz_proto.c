/* fuzz_proto.c -- libFuzzer target for the request parser (core/proto.c).
 *
 * Input: one settings byte, then the bytes a client sends.  The settings
 * byte's low bits pick the parser's limits (pick_settings); '@' (0x40) is
 * the defaults, so a seed reads as "@get foo\r\n".
 *
 * The stream is parsed the way core/client.c does it: mc_parse from the
 * start of the next request, consume total_len, and on GW_ERROR with a
 * total_len past the bytes at hand swallow the rest as it arrives; stop at
 * GW_AGAIN (wait for more), at a reply that closes the connection, and at
 * quit.  It is fed three ways, each with its own parser:
 *   - all at once;
 *   - in three reads, split at two points derived from the data;
 *   - (short inputs) one byte at a time;
 * and each must give the same requests, field for field.
 *
 * The bytes at hand are always the last bytes of an exact-size heap buffer,
 * so AddressSanitizer catches any read past len.  Every result is checked
 * against the contract in proto.h (offsets inside the bytes looked at, keys
 * 1..250 bytes and valid (with binary_keys: no NUL, CR, LF), a storage request's data block
 * ending in "\r\n", total_len > 0, ...); a breach aborts.  Also, a request
 * that parses whole gives GW_AGAIN for every proper prefix of it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/proto.h"
#include "fuzz.h"

#define MAX_RECS 4096

struct settings {
    size_t max_line;
    size_t max_value;
    bool binary_keys;
};

/* bit 0: binary_keys; bits 1-2: max_line; bits 3-4: max_value (0: the
 * parser's 1 MiB default). */
static struct settings pick_settings(uint8_t b)
{
    static const size_t lines[4] = {0, 32, 256, 2048};
    static const size_t values[4] = {0, 1, 16, 1000};
    struct settings s = {lines[(b >> 1) & 3], values[(b >> 3) & 3], b & 1};
    return s;
}

static void parser_init(struct mc_parser *p, const struct settings *s)
{
    mc_parser_init(p, s->max_line, s->max_value);
    p->binary_keys = s->binary_keys;
}

/* One parse result, as client.c acts on it. */
struct rec {
    int rc;
    size_t at;           /* offset of the request in the stream */
    struct mc_request r;
};

struct run {
    struct rec recs[MAX_RECS];
    int n;
    size_t at;           /* start of the next request */
    size_t swallow;      /* bytes still to drop (an error's data block) */
    bool stopped;        /* the connection closed (line too long, quit) */
};

static bool is_error_line(const char *e)
{
    return strcmp(e, "ERROR") == 0 || strcmp(e, "END") == 0 ||
           strncmp(e, "CLIENT_ERROR ", 13) == 0 ||
           strncmp(e, "SERVER_ERROR ", 13) == 0;
}

static void check_key(const char *b, uint32_t off, uint32_t len, size_t lim,
                      bool binary_keys)
{
    REQUIRE(len >= 1 && len <= MC_KEY_MAX);
    REQUIRE((size_t)off + len <= lim);
    /* Never a byte that ends a line for memcached, binary_keys or not. */
    REQUIRE(memchr(b + off, ' ', len) == NULL);
    REQUIRE(memchr(b + off, '\n', len) == NULL);
    REQUIRE(memchr(b + off, '\r', len) == NULL);
    REQUIRE(memchr(b + off, '\0', len) == NULL);
    REQUIRE(mc_key_allowed(b + off, len, binary_keys));
    if (!binary_keys)
        REQUIRE(mc_key_valid(b + off, len));
}

/* The contract of one result over b[0, len). */
static void check(const struct mc_parser *p, const struct settings *s,
                  const char *b, size_t len, int rc,
                  const struct mc_request *r)
{
    size_t max_line = p->max_line;

    if (rc == GW_AGAIN) {
        REQUIRE(p->scanned <= len);
        return;
    }
    REQUIRE(p->scanned == 0);
    REQUIRE(r->total_len > 0);
    REQUIRE(r->line_len > 0 && r->line_len <= r->total_len);
    REQUIRE(r->line_len <= len && r->line_len <= max_line);
    REQUIRE((unsigned)r->cmd < MC_CMD_COUNT);

    if (rc == GW_ERROR) {
        REQUIRE(r->error != NULL && is_error_line(r->error));
        if (r->close) {
            REQUIRE(strcmp(r->error, "CLIENT_ERROR line too long") == 0);
            REQUIRE(r->total_len == (len < max_line ? len : max_line));
            REQUIRE(memchr(b, '\n', r->total_len) == NULL);
            return;
        }
        REQUIRE(b[r->line_len - 1] == '\n');
        /* only a storage request's data block may run past the bytes */
        if (r->total_len > len)
            REQUIRE(mc_cmd_is_storage(r->cmd));
        if (r->total_len != r->line_len)
            REQUIRE(mc_cmd_is_storage(r->cmd));
        return;
    }

    REQUIRE(rc == GW_OK);
    REQUIRE(r->error == NULL && !r->close);
    REQUIRE(r->cmd != MC_NONE);
    REQUIRE(r->total_len <= len);
    REQUIRE(b[r->line_len - 1] == '\n');

    if (mc_cmd_is_retrieval(r->cmd)) {
        REQUIRE(r->nkeys >= 1);
        REQUIRE(r->keys_off <= r->keys_end && r->keys_end < r->line_len);
        REQUIRE(r->key_off == r->keys_off);
        REQUIRE(r->total_len == r->line_len);
        uint32_t pos = r->keys_off, off, klen, n = 0;
        while (mc_key_next(b, r, &pos, &off, &klen)) {
            REQUIRE(pos <= r->keys_end);
            check_key(b, off, klen, r->keys_end, s->binary_keys);
            if (n == 0)
                REQUIRE(off == r->key_off && klen == r->key_len);
            n++;
        }
        REQUIRE(n == r->nkeys);
    } else if (mc_cmd_is_storage(r->cmd)) {
        REQUIRE(r->nkeys == 1);
        check_key(b, r->key_off, r->key_len, r->line_len, s->binary_keys);
        REQUIRE(r->data_off == r->line_len);
        REQUIRE((uint64_t)r->line_len + r->bytes + 2 == r->total_len);
        REQUIRE(r->bytes <= p->max_value);
        REQUIRE(b[r->total_len - 2] == '\r' && b[r->total_len - 1] == '\n');
    } else {
        REQUIRE(r->total_len == r->line_len);
        switch (r->cmd) {
        case MC_DELETE:
        case MC_INCR:
        case MC_DECR:
        case MC_TOUCH:
            REQUIRE(r->nkeys == 1);
            check_key(b, r->key_off, r->key_len, r->line_len, s->binary_keys);
            break;
        case MC_STATS:
            REQUIRE((size_t)r->args_off + r->args_len <= r->line_len);
            if (r->args_len > 0)
                REQUIRE(b[r->args_off] != ' ' &&
                        b[r->args_off + r->args_len - 1] != ' ');
            break;
        default:
            REQUIRE(r->nkeys == 0);
            break;
        }
    }
}

/* A request that parsed whole from b[0, total): with a fresh parser, some
 * proper prefixes must give GW_AGAIN.  Each prefix sits at the end of the
 * heap block [scratch, scratch + room), room >= total, so a read past it is
 * caught. */
static void check_prefixes(const struct settings *s, const char *b,
                           size_t total, char *scratch, size_t room)
{
    char *end = scratch + room;
    size_t ks[12] = {0, 1, total / 2, total - 1, total - 2, total - 3};
    int nk = 6;
    const char *nl = memchr(b, '\n', total);
    size_t line_len = nl ? (size_t)(nl - b) + 1 : total;
    ks[nk++] = line_len - 1;
    ks[nk++] = line_len;
    ks[nk++] = line_len + 1;
    for (int i = 0; i < nk; i++) {
        size_t k = ks[i];
        if (k >= total)
            continue;
        struct mc_parser p;
        struct mc_request r;
        parser_init(&p, s);
        memcpy(end - k, b, k);
        int rc = mc_parse(&p, end - k, k, &r);
        REQUIRE(rc == GW_AGAIN);
    }
}

/* The bytes data[0, avail) have arrived (in a heap buffer of exactly that
 * size): parse what can be parsed. */
static void drain(struct mc_parser *p, const struct settings *s,
                  const uint8_t *data, size_t avail, struct run *run,
                  char *scratch, size_t room)
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
        struct mc_request r;
        int rc = mc_parse(p, b, left, &r);
        check(p, s, b, left, rc, &r);
        if (rc == GW_AGAIN)
            break;
        REQUIRE(run->n < MAX_RECS);
        run->recs[run->n].rc = rc;
        run->recs[run->n].at = run->at;
        run->recs[run->n].r = r;
        run->n++;
        if (rc == GW_OK && scratch)
            check_prefixes(s, b, r.total_len, scratch, room);
        if (r.total_len > left) {
            run->swallow = r.total_len - left;
            run->at = avail;
        } else {
            run->at += r.total_len;
        }
        if ((rc == GW_ERROR && r.close) || (rc == GW_OK && r.cmd == MC_QUIT))
            run->stopped = true;
    }
    free(copy);
}

static bool req_eq(const struct mc_request *a, const struct mc_request *b)
{
    return a->cmd == b->cmd && a->line_len == b->line_len &&
           a->total_len == b->total_len && a->key_off == b->key_off &&
           a->key_len == b->key_len && a->keys_off == b->keys_off &&
           a->keys_end == b->keys_end && a->nkeys == b->nkeys &&
           a->flags == b->flags && a->exptime == b->exptime &&
           a->bytes == b->bytes && a->data_off == b->data_off &&
           a->cas == b->cas && a->delta == b->delta && a->delay == b->delay &&
           a->level == b->level && a->args_off == b->args_off &&
           a->args_len == b->args_len && a->noreply == b->noreply &&
           a->close == b->close &&
           ((a->error == NULL && b->error == NULL) ||
            (a->error && b->error && strcmp(a->error, b->error) == 0));
}

static void same_runs(const struct run *a, const struct run *b)
{
    REQUIRE(a->n == b->n);
    for (int i = 0; i < a->n; i++) {
        REQUIRE(a->recs[i].rc == b->recs[i].rc);
        REQUIRE(a->recs[i].at == b->recs[i].at);
        REQUIRE(req_eq(&a->recs[i].r, &b->recs[i].r));
    }
    REQUIRE(a->at == b->at && a->swallow == b->swallow &&
            a->stopped == b->stopped);
}

static struct run whole, split, bytewise;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct settings s = pick_settings(data[0]);
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    struct mc_parser p;
    char *scratch = malloc(n ? n : 1);
    REQUIRE(scratch != NULL);

    memset(&whole, 0, sizeof whole);
    parser_init(&p, &s);
    drain(&p, &s, in, n, &whole, scratch, n);

    uint64_t h = fuzz_hash(in, n);
    size_t s1 = (size_t)(h % (n + 1));
    size_t s2 = s1 + (size_t)((h >> 32) % (n - s1 + 1));
    memset(&split, 0, sizeof split);
    parser_init(&p, &s);
    drain(&p, &s, in, s1, &split, NULL, 0);
    drain(&p, &s, in, s2, &split, NULL, 0);
    drain(&p, &s, in, n, &split, NULL, 0);
    same_runs(&whole, &split);

    if (n <= 300) {
        memset(&bytewise, 0, sizeof bytewise);
        parser_init(&p, &s);
        for (size_t i = 1; i <= n; i++)
            drain(&p, &s, in, i, &bytewise, NULL, 0);
        same_runs(&whole, &bytewise);
    }
    free(scratch);
    return 0;
}
