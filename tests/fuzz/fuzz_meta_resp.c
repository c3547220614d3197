/* fuzz_meta_resp.c -- libFuzzer target for the meta reply parser
 * (core/codec/meta_resp.c).
 *
 * Input: one byte whose low 5 bits are the size of the reads of the
 * incremental feed (seeds start with '@'), then what a server sends.
 *
 * The stream is parsed as a backend connection will: from the start of the
 * next unit, consume total_len, stop at GW_AGAIN or at GW_ERROR (reset).
 * Fed whole and then in reads of the chosen size, both feeds must give the
 * same units and end the same way.  Each unit is checked against
 * meta_resp.h (offsets inside it, flags that start with a letter and are
 * listed in order, flag_bits their set, a VA's data block followed by
 * "\r\n", need past the bytes at hand), and every proper prefix of a unit
 * that parses is GW_AGAIN with a need of 0 or the unit's size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/meta_resp.h"
#include "fuzz.h"

#define MAX_UNITS 8192

/* What a unit holds, up to its flags (the parser clears that much). */
static const size_t CMP = offsetof(struct mc_meta_resp, flags);

struct feed {
    struct mc_meta_resp u[MAX_UNITS];
    int n;
    size_t at;
    bool reset;
};

static bool same_unit(const struct mc_meta_resp *a, const struct mc_meta_resp *b)
{
    return memcmp(a, b, CMP) == 0 &&
           memcmp(a->flags, b->flags, a->nflags * sizeof a->flags[0]) == 0;
}

static void check_ok(const char *b, size_t len, const struct mc_meta_resp *r)
{
    REQUIRE(r->need == 0);
    REQUIRE(r->total_len > 0 && r->total_len <= len);
    REQUIRE(r->line_len > 0 && r->line_len <= r->total_len);
    REQUIRE(r->line_len <= MC_RESP_MAX_LINE);
    REQUIRE(b[r->line_len - 1] == '\n');
    REQUIRE(memchr(b, '\n', r->line_len - 1) == NULL);
    REQUIRE(r->kind > MRESP_NONE && r->kind < MRESP_KIND_COUNT);
    const char *w = mc_meta_resp_word(r->kind);
    REQUIRE(memcmp(b, w, strlen(w)) == 0);

    uint64_t bits = 0;
    REQUIRE(r->nflags <= MC_META_RESP_MAX_FLAGS);
    for (uint32_t i = 0; i < r->nflags; i++) {
        const struct mc_meta_flag *f = &r->flags[i];
        REQUIRE(f->len >= 1 && f->off + f->len < r->line_len);
        REQUIRE(b[f->off] == f->letter && b[f->off - 1] == ' ');
        REQUIRE((f->letter | 0x20) >= 'a' && (f->letter | 0x20) <= 'z');
        REQUIRE(memchr(b + f->off, ' ', f->len) == NULL);
        if (i > 0)
            REQUIRE(f->off > r->flags[i - 1].off + r->flags[i - 1].len);
        bits |= MC_META_BIT(f->letter);
    }
    REQUIRE(bits == r->flag_bits);

    if (r->kind == MRESP_VA) {
        REQUIRE(r->data_off == r->line_len);
        REQUIRE((uint64_t)r->data_off + r->bytes + 2 == r->total_len);
        REQUIRE(b[r->total_len - 2] == '\r' && b[r->total_len - 1] == '\n');
        return;
    }
    REQUIRE(r->total_len == r->line_len);
    if (r->kind == MRESP_ME)
        REQUIRE(r->key_len > 0 && r->key_off + r->key_len < r->line_len);
    if (r->msg_len)
        REQUIRE(r->msg_off + r->msg_len < r->line_len);
}

/* The proper prefixes of a unit that parsed from b (each at the end of a
 * heap block, so a read past it is caught). */
static void check_prefixes(const char *b, const struct mc_meta_resp *r,
                           char *scratch, size_t room)
{
    size_t total = r->total_len;
    size_t step = total / 40 + 1;
    for (size_t k = 0; k < total; k += k < 24 || total - k < 24 ? 1 : step) {
        struct mc_meta_resp p;
        memcpy(scratch + room - k, b, k);
        REQUIRE(mc_meta_resp_parse(scratch + room - k, k, &p) == GW_AGAIN);
        REQUIRE(p.need == 0 || p.need == total);
        REQUIRE(p.need == 0 || k >= r->line_len);
    }
}

/* data[0, avail) has arrived (copied to a heap block of exactly that
 * size): parse the units it completes. */
static void feed(const uint8_t *data, size_t avail, struct feed *f,
                 char *scratch, size_t room)
{
    if (f->reset || avail <= f->at)
        return;
    char *copy = malloc(avail);
    REQUIRE(copy != NULL);
    memcpy(copy, data, avail);
    while (f->at < avail) {
        const char *b = copy + f->at;
        size_t left = avail - f->at;
        struct mc_meta_resp *r = &f->u[f->n];
        REQUIRE(f->n < MAX_UNITS);
        int rc = mc_meta_resp_parse(b, left, r);
        if (rc == GW_AGAIN) {
            REQUIRE(r->need == 0 || (r->need > left && memchr(b, '\n', left)));
            break;
        }
        if (rc == GW_ERROR) {
            f->reset = true;
            break;
        }
        check_ok(b, left, r);
        if (scratch)
            check_prefixes(b, r, scratch, room);
        f->n++;
        f->at += r->total_len;
    }
    free(copy);
}

static struct feed whole, pieces;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] & 31) + 1;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    char *scratch = malloc(n ? n : 1);
    REQUIRE(scratch != NULL);

    memset(&whole, 0, sizeof whole);
    feed(in, n, &whole, scratch, n);
    memset(&pieces, 0, sizeof pieces);
    for (size_t avail = 0;; avail = n - avail < step ? n : avail + step) {
        feed(in, avail, &pieces, NULL, 0);
        if (avail == n)
            break;
    }
    REQUIRE(whole.n == pieces.n && whole.at == pieces.at &&
            whole.reset == pieces.reset);
    for (int i = 0; i < whole.n; i++)
        REQUIRE(same_unit(&whole.u[i], &pieces.u[i]));
    free(scratch);
    return 0;
}
