/* test_meta_resp.c -- the meta reply parser (core/codec/meta_resp.c).  The
 * replies are the ones a memcached 1.6.18 sends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/meta_resp.h"
#include "unit.h"

/* Parse from a heap copy of the exact size, so a sanitizer build catches
 * any read past the end; the copy stays in `last` for offset checks. */
static char *last;

static int parse_n(const char *s, size_t n, struct mc_meta_resp *r)
{
    free(last);
    last = malloc(n ? n : 1);
    memcpy(last, s, n);
    return mc_meta_resp_parse(last, n, r);
}

static int parse_s(const char *s, struct mc_meta_resp *r)
{
    return parse_n(s, strlen(s), r);
}

static void check_flags(const struct mc_meta_resp *r,
                        const char *const *want, uint32_t n)
{
    CHECK_EQ_INT(r->nflags, n);
    uint64_t bits = 0;
    for (uint32_t i = 0; i < n && i < r->nflags; i++) {
        CHECK_EQ_MEM(last + r->flags[i].off, r->flags[i].len, want[i]);
        CHECK_EQ_INT(r->flags[i].letter, want[i][0]);
        bits |= MC_META_BIT(want[i][0]);
    }
    CHECK(r->flag_bits == bits);
}

static void test_words(void)
{
    static const char *const want[] = {NULL, "VA", "HD", "EN", "NS", "EX", "NF",
                                       "MN", "ME", "ERROR", "CLIENT_ERROR",
                                       "SERVER_ERROR"};
    CHECK_EQ_INT(GW_ARRAY_LEN(want), MRESP_KIND_COUNT);
    CHECK(mc_meta_resp_word(MRESP_NONE) == NULL);
    for (int k = 1; k < MRESP_KIND_COUNT; k++)
        CHECK(strcmp(mc_meta_resp_word((enum mc_meta_resp_kind)k), want[k]) == 0);
    CHECK(mc_meta_resp_word(MRESP_KIND_COUNT) == NULL);
}

static void test_status_lines(void)
{
    static const struct {
        const char *in;
        enum mc_meta_resp_kind kind;
    } t[] = {
        {"HD\r\n", MRESP_HD}, {"EN\r\n", MRESP_EN}, {"NS\r\n", MRESP_NS},
        {"EX\r\n", MRESP_EX}, {"NF\r\n", MRESP_NF}, {"MN\r\n", MRESP_MN},
        {"HD\n", MRESP_HD},   {"EN  \r\n", MRESP_EN}, {"MN \r\n", MRESP_MN},
    };
    struct mc_meta_resp r;
    for (size_t i = 0; i < GW_ARRAY_LEN(t); i++) {
        CHECK_EQ_INT(parse_s(t[i].in, &r), GW_OK);
        CHECK_EQ_INT(r.kind, t[i].kind);
        CHECK_EQ_INT(r.total_len, strlen(t[i].in));
        CHECK_EQ_INT(r.line_len, strlen(t[i].in));
        CHECK_EQ_INT(r.nflags, 0);
        CHECK_EQ_INT(r.need, 0);
    }
}

static void test_flags(void)
{
    struct mc_meta_resp r;
    CHECK_EQ_INT(parse_s("HD c50 f0 h0 kfoo l0 O s2 t-1\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_HD);
    static const char *const f1[] = {"c50", "f0", "h0", "kfoo", "l0", "O", "s2", "t-1"};
    check_flags(&r, f1, 8);
    const struct mc_meta_flag *k = mc_meta_resp_flag(&r, 'k');
    CHECK(k != NULL && k == &r.flags[3]);
    CHECK(mc_meta_resp_flag(&r, 'W') == NULL);

    /* miss with the opaque and key memcached echoes; a binary key */
    CHECK_EQ_INT(parse_s("EN Oabc kZm9v b\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_EN);
    static const char *const f2[] = {"Oabc", "kZm9v", "b"};
    check_flags(&r, f2, 3);

    CHECK_EQ_INT(parse_s("HD t30 W X Z\r\n", &r), GW_OK);
    static const char *const f3[] = {"t30", "W", "X", "Z"};
    check_flags(&r, f3, 4);
    CHECK_EQ_INT(parse_s("NS   O1   kx  \r\n", &r), GW_OK);
    static const char *const f4[] = {"O1", "kx"};
    check_flags(&r, f4, 2);
    CHECK_EQ_INT(parse_s("EX c9\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_EX);
    CHECK_EQ_INT(parse_s("NF O77\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_NF);

    /* a repeated letter is the server's business: the first is found */
    CHECK_EQ_INT(parse_s("HD k1 k2\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.nflags, 2);
    CHECK(mc_meta_resp_flag(&r, 'k') == &r.flags[0]);

    /* MC_META_RESP_MAX_FLAGS, then one more */
    char line[200] = "HD";
    for (int i = 0; i < MC_META_RESP_MAX_FLAGS; i++)
        strcat(line, " a1");
    strcat(line, "\r\n");
    CHECK_EQ_INT(parse_s(line, &r), GW_OK);
    CHECK_EQ_INT(r.nflags, MC_META_RESP_MAX_FLAGS);
    strcpy(line + strlen(line) - 2, " b\r\n");
    CHECK_EQ_INT(parse_s(line, &r), GW_ERROR);
}

static void test_value(void)
{
    struct mc_meta_resp r;
    const char *s = "VA 2 c50 f0 s2 t-1\r\nhi\r\n";
    CHECK_EQ_INT(parse_s(s, &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_VA);
    CHECK_EQ_INT(r.bytes, 2);
    CHECK_EQ_INT(r.line_len, 20);
    CHECK_EQ_INT(r.data_off, 20);
    CHECK_EQ_MEM(last + r.data_off, r.bytes, "hi");
    CHECK_EQ_INT(r.total_len, strlen(s));
    static const char *const f[] = {"c50", "f0", "s2", "t-1"};
    check_flags(&r, f, 4);

    CHECK_EQ_INT(parse_s("VA 0\r\n\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 0);
    CHECK_EQ_INT(r.total_len, 8);
    CHECK_EQ_INT(r.nflags, 0);
    /* "\r\n" inside the data is data */
    s = "VA 6 O1\r\n\r\nab\r\n\r\n";
    CHECK_EQ_INT(parse_s(s, &r), GW_OK);
    CHECK_EQ_MEM(last + r.data_off, r.bytes, "\r\nab\r\n");
    CHECK_EQ_INT(r.total_len, strlen(s));
    /* ma's value */
    CHECK_EQ_INT(parse_s("VA 1\r\n5\r\n", &r), GW_OK);
    CHECK_EQ_MEM(last + r.data_off, r.bytes, "5");
    /* a large value: need says the whole unit's size at once */
    CHECK_EQ_INT(parse_s("VA 4294967000\r\n", &r), GW_AGAIN);
    CHECK_EQ_INT(r.need, 15 + 4294967000ULL + 2);
    /* one whose unit would not fit total_len */
    CHECK_EQ_INT(parse_s("VA 4294967295\r\n", &r), GW_ERROR);
}

static void test_debug(void)
{
    struct mc_meta_resp r;
    const char *s = "ME foo exp=-1 la=0 cas=8 fetch=no cls=1 size=63\r\n";
    CHECK_EQ_INT(parse_s(s, &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_ME);
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "foo");
    CHECK_EQ_MEM(last + r.msg_off, r.msg_len,
                 "exp=-1 la=0 cas=8 fetch=no cls=1 size=63");
    CHECK_EQ_INT(r.nflags, 0);
    CHECK_EQ_INT(parse_s("ME Zm9v\r\n", &r), GW_OK);
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "Zm9v");
    CHECK_EQ_INT(r.msg_len, 0);
    CHECK_EQ_INT(r.msg_off, 7);
}

static void test_errors(void)
{
    struct mc_meta_resp r;
    CHECK_EQ_INT(parse_s("ERROR\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_ERROR);
    CHECK_EQ_INT(r.msg_len, 0);
    CHECK_EQ_INT(parse_s("ERROR unknown command\r\n", &r), GW_OK);
    CHECK_EQ_MEM(last + r.msg_off, r.msg_len, "unknown command");
    CHECK_EQ_INT(parse_s("CLIENT_ERROR bad command line format\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_CLIENT_ERROR);
    CHECK_EQ_MEM(last + r.msg_off, r.msg_len, "bad command line format");
    CHECK_EQ_INT(parse_s("SERVER_ERROR out of memory storing object\r\n", &r),
                 GW_OK);
    CHECK_EQ_INT(r.kind, MRESP_SERVER_ERROR);
    CHECK_EQ_MEM(last + r.msg_off, r.msg_len, "out of memory storing object");
}

/* Bytes that are no meta reply: the connection is out of step. */
static void test_garbage(void)
{
    static const char *const bad[] = {
        "hd\r\n", "HDx\r\n", "HD 5\r\n", "HD c1 !\r\n", "EN -1\r\n",
        "MN x\r\n", "VA\r\n", "VA x\r\n", "VA -1\r\n", "VA +2\r\nhi\r\n",
        "VA 2x\r\nhi\r\n", "VA 4294967296\r\n", "VA 2 5\r\nhi\r\n",
        "VA 2\r\nhiX\n", "VA 2\r\nhi\n\n", "ME\r\n", "ME \r\n",
        "VALUE k 0 1\r\nx\r\n", "END\r\n", "STORED\r\n", "\r\n", " HD\r\n",
        "H\n", "OK\r\n", "CLIENT_ERRORx\r\n",
        "VA 2\r\nhiX",    /* the byte after the block is known: no need to wait */
        "X", "h", "VB", "HE", "ERRX", " ", "\r",
    };
    struct mc_meta_resp r;
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        int rc = parse_s(bad[i], &r);
        if (rc != GW_ERROR)
            fprintf(stderr, "case %zu '%s': rc %d\n", i, bad[i], rc);
        CHECK_EQ_INT(rc, GW_ERROR);
    }
    /* a full line with no "\n" */
    static char big[MC_RESP_MAX_LINE + 10];
    memset(big, ' ', sizeof(big));
    memcpy(big, "HD", 2);
    CHECK_EQ_INT(parse_n(big, MC_RESP_MAX_LINE - 1, &r), GW_AGAIN);
    CHECK_EQ_INT(parse_n(big, MC_RESP_MAX_LINE, &r), GW_ERROR);
}

/* Every prefix of every valid unit is GW_AGAIN (never GW_ERROR), and a VA's
 * need is its whole size once its line is in. */
static void test_prefixes(void)
{
    static const char *const units[] = {
        "VA 2 c50 f0\r\nhi\r\n", "VA 0\r\n\r\n", "HD kfoo O1\r\n", "EN\r\n",
        "NS\r\n", "EX c1\r\n", "NF\r\n", "MN\r\n", "ME k exp=-1 la=0\r\n",
        "ERROR\r\n", "CLIENT_ERROR bad data chunk\r\n",
        "SERVER_ERROR out of memory\r\n",
    };
    struct mc_meta_resp r;
    for (size_t i = 0; i < GW_ARRAY_LEN(units); i++) {
        size_t n = strlen(units[i]);
        size_t line = (size_t)((const char *)strchr(units[i], '\n') - units[i]) + 1;
        for (size_t k = 0; k < n; k++) {
            int rc = parse_n(units[i], k, &r);
            if (rc != GW_AGAIN)
                fprintf(stderr, "'%s' cut at %zu: rc %d\n", units[i], k, rc);
            CHECK_EQ_INT(rc, GW_AGAIN);
            CHECK_EQ_INT(r.need, k >= line ? n : 0);
        }
        CHECK_EQ_INT(parse_n(units[i], n, &r), GW_OK);
        CHECK_EQ_INT(r.total_len, n);
    }
}

/* A pipeline of replies split at every point: the same units each time. */
static void test_stream_splits(void)
{
    static const char s[] =
        "VA 5 t-1 c2 Oa\r\nhello\r\n"
        "HD c3\r\n"
        "EN\r\n"
        "VA 4 kZm9v b\r\n\r\n\r\n\r\n"
        "NF O9\r\n"
        "ME foo exp=-1 la=3 cas=2 fetch=yes cls=1 size=64\r\n"
        "CLIENT_ERROR bad command line format\r\n"
        "VA 1\r\n7\r\n"
        "MN\r\n";
    static const enum mc_meta_resp_kind want[] = {
        MRESP_VA, MRESP_HD, MRESP_EN, MRESP_VA, MRESP_NF,
        MRESP_ME, MRESP_CLIENT_ERROR, MRESP_VA, MRESP_MN,
    };
    const size_t n = sizeof(s) - 1;
    char *b = malloc(n);
    memcpy(b, s, n);
    int bad = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        size_t at = 0;
        int units = 0;
        /* bytes [0, cut) first, then all */
        for (int pass = 0; pass < 2; pass++) {
            size_t avail = pass == 0 ? cut : n;
            while (at < avail) {
                struct mc_meta_resp r;
                int rc = mc_meta_resp_parse(b + at, avail - at, &r);
                if (rc == GW_AGAIN)
                    break;
                if (rc != GW_OK || units >= (int)GW_ARRAY_LEN(want) ||
                    r.kind != want[units]) {
                    bad++;
                    at = n;
                    break;
                }
                units++;
                at += r.total_len;
            }
        }
        if (units != (int)GW_ARRAY_LEN(want) || at != n)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(b);
}

int main(void)
{
    RUN(test_words);
    RUN(test_status_lines);
    RUN(test_flags);
    RUN(test_value);
    RUN(test_debug);
    RUN(test_errors);
    RUN(test_garbage);
    RUN(test_prefixes);
    RUN(test_stream_splits);
    free(last);
    return unit_report("meta_resp");
}
