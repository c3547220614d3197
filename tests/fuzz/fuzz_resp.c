/* fuzz_resp.c -- libFuzzer target for the backend-reply parser (core/resp.c).
 *
 * Input: one mode byte, then the bytes a memcached server sends back.  The
 * mode byte's low 5 bits pick the read size of the incremental feed (below);
 * seeds start with '@'.
 *
 * The stream is parsed the way core/backend.c does it: mc_resp_parse from
 * the start of the next unit, consume total_len, stop at GW_AGAIN (wait for
 * more) or GW_ERROR (the connection is reset).  It is fed twice:
 *   - all at once;
 *   - a first read of a data-derived length, then reads of 1..32 bytes;
 * and both must give the same units, field for field, and end the same way.
 *
 * The bytes at hand are always the last bytes of an exact-size heap buffer,
 * so AddressSanitizer catches any read past len.  Each result is checked
 * against resp.h: offsets inside the unit, a VALUE's data_off + bytes + 2 ==
 * total_len with "\r\n" after the block, need > len when set, and so on.
 * For every unit, prefixes of it are parsed too: a prefix of a unit that
 * parses (GW_OK) gives GW_AGAIN (never GW_ERROR: the contract's "a prefix of
 * a valid unit never gives GW_ERROR"), a prefix of bytes that are refused is
 * never GW_OK, and once a prefix is refused every longer one is.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/resp.h"
#include "fuzz.h"

#define MAX_UNITS 8192

struct unit {
    int rc;
    size_t at;
    struct mc_resp r;
};

struct run {
    struct unit u[MAX_UNITS];
    int n;
    size_t at;          /* start of the next unit */
    size_t need;        /* GW_AGAIN's need for the unit at `at`, or 0 */
    bool reset;         /* GW_ERROR: the connection was dropped */
};

static bool is_msg_kind(enum mc_resp_kind k)
{
    return k == RESP_VERSION || k == RESP_STAT || k == RESP_ERROR ||
           k == RESP_CLIENT_ERROR || k == RESP_SERVER_ERROR;
}

/* The contract of one result over b[0, len). */
static void check(const char *b, size_t len, int rc, const struct mc_resp *r)
{
    if (rc == GW_ERROR)
        return;
    if (rc == GW_AGAIN) {
        if (r->need != 0) {
            REQUIRE(r->need > len);
            REQUIRE(memchr(b, '\n', len) != NULL); /* the line is whole */
        }
        return;
    }
    REQUIRE(rc == GW_OK);
    REQUIRE(r->need == 0);
    REQUIRE(r->total_len > 0 && r->total_len <= len);
    REQUIRE(r->line_len > 0 && r->line_len <= r->total_len);
    REQUIRE(r->line_len <= MC_RESP_MAX_LINE);
    REQUIRE(b[r->line_len - 1] == '\n');
    REQUIRE(memchr(b, '\n', r->line_len - 1) == NULL);
    REQUIRE(r->kind > RESP_NONE && r->kind < RESP_KIND_COUNT);

    if (r->kind == RESP_VALUE) {
        REQUIRE(memcmp(b, "VALUE ", 6) == 0);
        REQUIRE(r->key_len > 0 && r->key_off >= 6);
        REQUIRE((size_t)r->key_off + r->key_len < r->line_len);
        REQUIRE(memchr(b + r->key_off, ' ', r->key_len) == NULL);
        REQUIRE(r->data_off == r->line_len);
        REQUIRE((uint64_t)r->data_off + r->bytes + 2 == r->total_len);
        REQUIRE(b[r->total_len - 2] == '\r' && b[r->total_len - 1] == '\n');
        return;
    }
    REQUIRE(r->total_len == r->line_len);
    if (is_msg_kind(r->kind)) {
        REQUIRE((size_t)r->msg_off + r->msg_len < r->line_len);
        REQUIRE(memchr(b + r->msg_off, '\n', r->msg_len) == NULL);
    } else if (r->kind == RESP_NUMBER) {
        REQUIRE(b[0] >= '0' && b[0] <= '9');
    } else {
        const char *w = mc_resp_word(r->kind);
        REQUIRE(w != NULL);
        REQUIRE(strlen(w) < r->line_len && memcmp(b, w, strlen(w)) == 0);
    }
}

static bool resp_eq(const struct mc_resp *a, const struct mc_resp *b)
{
    return a->kind == b->kind && a->line_len == b->line_len &&
           a->total_len == b->total_len && a->need == b->need &&
           a->key_off == b->key_off && a->key_len == b->key_len &&
           a->flags == b->flags && a->bytes == b->bytes &&
           a->data_off == b->data_off && a->cas == b->cas &&
           a->has_cas == b->has_cas && a->number == b->number &&
           a->msg_off == b->msg_off && a->msg_len == b->msg_len;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The unit at b[0, len) gave rc/r.  Parse prefixes of it, each placed at
 * the end of the heap block [scratch, scratch + room), room >= len. */
static void check_prefixes(const char *b, size_t len, int rc,
                           const struct mc_resp *r, char *scratch,
                           size_t room)
{
    char *end = scratch + room;
    size_t ks[64];
    int nk = 0;
    size_t top = rc == GW_OK ? r->total_len : len;
    for (size_t k = 0; k <= 24 && k <= top; k++)
        ks[nk++] = k;
    const char *nl = memchr(b, '\n', len);
    size_t line_len = nl ? (size_t)(nl - b) + 1 : len;
    size_t extra[] = {line_len - 1, line_len, line_len + 1, line_len + 2,
                      top - 2, top - 1, top};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (extra[i] <= top)
            ks[nk++] = extra[i];
    for (int i = 1; i <= 16; i++)
        ks[nk++] = top * (size_t)i / 17;
    qsort(ks, (size_t)nk, sizeof ks[0], cmp_size);

    bool refused = false;
    for (int i = 0; i < nk; i++) {
        size_t k = ks[i];
        struct mc_resp p;
        memcpy(end - k, b, k);
        int prc = mc_resp_parse(end - k, k, &p);
        check(end - k, k, prc, &p);
        if (rc == GW_OK) {
            if (k < r->total_len) {
                REQUIRE(prc == GW_AGAIN);
                REQUIRE(p.need == 0 || p.need == r->total_len);
            } else {
                REQUIRE(prc == GW_OK && resp_eq(&p, r));
            }
        } else if (rc == GW_AGAIN) {
            REQUIRE(prc == GW_AGAIN);
        } else {
            REQUIRE(prc != GW_OK);
            if (refused)
                REQUIRE(prc == GW_ERROR);
            refused = prc == GW_ERROR;
        }
    }
}

/* The bytes data[0, avail) have arrived: parse the units they complete. */
static void drain(const uint8_t *data, size_t avail, struct run *run,
                  char *scratch, size_t room)
{
    if (run->reset || avail <= run->at)
        return;
    char *copy = malloc(avail);
    REQUIRE(copy != NULL);
    memcpy(copy, data, avail);

    while (run->at < avail) {
        const char *b = copy + run->at;
        size_t left = avail - run->at;
        struct mc_resp r;
        int rc = mc_resp_parse(b, left, &r);
        check(b, left, rc, &r);
        if (scratch)
            check_prefixes(b, left, rc, &r, scratch, room);
        if (rc == GW_AGAIN) {
            if (run->need != 0)
                REQUIRE(r.need == 0 || r.need == run->need);
            if (r.need != 0)
                run->need = r.need;
            break;
        }
        if (rc == GW_OK && run->need != 0)
            REQUIRE(r.total_len == run->need);
        run->need = 0;
        REQUIRE(run->n < MAX_UNITS);
        run->u[run->n].rc = rc;
        run->u[run->n].at = run->at;
        run->u[run->n].r = r;
        run->n++;
        if (rc == GW_ERROR) {
            run->reset = true;
            break;
        }
        run->at += r.total_len;
    }
    free(copy);
}

static void same_runs(const struct run *a, const struct run *b)
{
    REQUIRE(a->n == b->n);
    for (int i = 0; i < a->n; i++) {
        REQUIRE(a->u[i].rc == b->u[i].rc);
        REQUIRE(a->u[i].at == b->u[i].at);
        if (a->u[i].rc == GW_OK)
            REQUIRE(resp_eq(&a->u[i].r, &b->u[i].r));
    }
    REQUIRE(a->at == b->at && a->reset == b->reset);
}

static struct run whole, pieces;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] & 31) + 1;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    char *scratch = malloc(n ? n : 1); /* room for any unit */
    REQUIRE(scratch != NULL);

    memset(&whole, 0, sizeof whole);
    drain(in, n, &whole, scratch, n);

    memset(&pieces, 0, sizeof pieces);
    size_t avail = (size_t)(fuzz_hash(in, n) % (n + 1));
    for (;;) {
        drain(in, avail, &pieces, NULL, 0);
        if (avail == n)
            break;
        avail = n - avail < step ? n : avail + step;
    }
    same_runs(&whole, &pieces);
    free(scratch);
    return 0;
}
