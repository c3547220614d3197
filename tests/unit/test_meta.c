/* test_meta.c -- unit tests for the meta-protocol request parser
 * (core/codec/meta.c).  The expected error lines were read off a live
 * memcached 1.6.18. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/meta.h"
#include "codec/proto.h"
#include "unit.h"

#define K50 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define KEY250 K50 K50 K50 K50 K50
#define KEY251 KEY250 "k"
#define O31 "ooooooooooooooooooooooooooooooo"

static const char E_FORMAT[] = "CLIENT_ERROR bad command line format";
static const char E_INVALID[] = "CLIENT_ERROR invalid flag";
static const char E_DUP[] = "CLIENT_ERROR duplicate flag";
static const char E_IOD[] = "CLIENT_ERROR invalid or duplicate flag";
static const char E_TOKEN[] = "CLIENT_ERROR bad token in command line format";
static const char E_DELTA[] = "CLIENT_ERROR invalid numeric delta value";
static const char E_INITIAL[] = "CLIENT_ERROR invalid numeric initial value";
static const char E_MLEN[] = "CLIENT_ERROR incorrect length for M token";
static const char E_DECODE[] = "CLIENT_ERROR error decoding key";
static const char E_OPAQUE[] = "CLIENT_ERROR opaque token too long";
static const char E_MS_MODE[] = "CLIENT_ERROR invalid mode for ms M token";
static const char E_MA_MODE[] = "CLIENT_ERROR invalid mode for ma M token";

/* Parse n bytes from a heap copy of exactly that size (a sanitizer build
 * catches a read past the end) with a fresh default parser.  The copy is
 * kept in `last` so offsets can be checked against it. */
static char *last;

static int parse_n(const char *s, size_t n, struct mc_meta_request *r)
{
    struct mc_parser p;
    free(last);
    last = malloc(n ? n : 1);
    memcpy(last, s, n);
    mc_parser_init(&p, 0, 0);
    return mc_meta_parse(&p, last, n, r);
}

static int parse(const char *s, struct mc_meta_request *r)
{
    return parse_n(s, strlen(s), r);
}

static void check_flag(const struct mc_meta_request *r, const char *s,
                       uint32_t i, const char *want)
{
    CHECK(i < r->nflags);
    if (i < r->nflags) {
        CHECK_EQ_MEM(s + r->flags[i].off, r->flags[i].len, want);
        CHECK_EQ_INT(r->flags[i].letter, want[0]);
    }
}

/* ---- helpers ----------------------------------------------------------- */

static void test_names(void)
{
    static const char *const want[] = {"mg", "ms", "md", "ma", "mn", "me"};
    for (int c = MC_META_GET; c <= MC_META_DEBUG; c++) {
        CHECK(strcmp(mc_cmd_name((enum mc_cmd)c), want[c - MC_META_GET]) == 0);
        CHECK(mc_cmd_is_meta((enum mc_cmd)c));
    }
    CHECK_EQ_INT(MC_META_BIT('A'), 1);
    CHECK(MC_META_BIT('z') == 1ULL << 57);
}

static void test_is_meta(void)
{
    CHECK(mc_is_meta("mg foo v\r\n", 10));
    CHECK(mc_is_meta("m", 1));
    CHECK(mc_is_meta("   ms", 5));
    CHECK(mc_is_meta("mx\r\n", 4));   /* unknown, answered by the meta parser */
    CHECK(!mc_is_meta("", 0));
    CHECK(!mc_is_meta("   ", 3));     /* not known yet: the text parser waits */
    CHECK(!mc_is_meta("get foo\r\n", 9));
    CHECK(!mc_is_meta("\r\n", 2));
    CHECK(!mc_is_meta("\tmg", 3));
    CHECK(!mc_is_meta("Mg foo\r\n", 8));
}

/* ---- each command ------------------------------------------------------ */

static void test_mg(void)
{
    struct mc_meta_request r;
    CHECK_EQ_INT(parse("mg foo\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_GET);
    CHECK_EQ_INT(r.line_len, 8);
    CHECK_EQ_INT(r.total_len, 8);
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "foo");
    CHECK_EQ_INT(r.nflags, 0);
    CHECK_EQ_INT(r.flag_bits, 0);
    CHECK(!r.quiet && !r.binary_key && !r.close && r.error == NULL);
    size_t kl;
    const char *k = mc_meta_key(last, &r, &kl);
    CHECK_EQ_MEM(k, kl, "foo");

    const char *s = "  mg   foo   s v  t f c k l h u O123 q T30 N-1 R5 P/path Lx\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_GET);
    CHECK_EQ_INT(r.total_len, strlen(s));
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "foo");
    static const char *const fl[] = {"s", "v", "t", "f", "c", "k", "l", "h",
                                     "u", "O123", "q", "T30", "N-1", "R5",
                                     "P/path", "Lx"};
    CHECK_EQ_INT(r.nflags, GW_ARRAY_LEN(fl));
    uint64_t bits = 0;
    for (uint32_t i = 0; i < GW_ARRAY_LEN(fl); i++) {
        check_flag(&r, last, i, fl[i]);
        bits |= MC_META_BIT(fl[i][0]);
    }
    CHECK(r.flag_bits == bits);
    CHECK(r.quiet);
    CHECK_EQ_INT(r.ttl, 30);
    CHECK_EQ_INT(r.vivify_ttl, -1);
    CHECK_EQ_INT(r.recache_ttl, 5);
    CHECK(mc_meta_has(&r, 'O') && !mc_meta_has(&r, 'b'));
    const struct mc_meta_flag *o = mc_meta_flag(&r, 'O');
    CHECK(o != NULL && o == &r.flags[9]);
    CHECK(mc_meta_flag(&r, 'E') == NULL);
    CHECK(mc_meta_flag(&r, '[') == NULL);
    CHECK(mc_meta_flag(&r, '~') == NULL);
}

/* Every letter, alone, with and without a token, on each keyed command:
 * what memcached 1.6.18 answers, with E and x accepted as later 1.6 does. */
static void test_each_flag(void)
{
    static const char known[] = "bcfhklOqstuvxINTRCEFMJDPL";
    static const enum mc_cmd cmds[] = {MC_META_GET, MC_META_DELETE, MC_META_ARITH, MC_META_SET};
    char line[64];
    struct mc_meta_request r;

    for (size_t c = 0; c < GW_ARRAY_LEN(cmds); c++) {
        enum mc_cmd cmd = cmds[c];
        bool collapsed = cmd == MC_META_DELETE || cmd == MC_META_ARITH;
        for (int l = 0; l < 52; l++) {
            char f = (char)(l < 26 ? 'a' + l : 'A' + l - 26);
            for (int tok = 0; tok < 2; tok++) {
                int n = snprintf(line, sizeof(line), "%s foo %s%c%s\r\n%s",
                                 mc_cmd_name(cmd),
                                 cmd == MC_META_SET ? "2 " : "", f, tok ? "1" : "",
                                 cmd == MC_META_SET ? "hi\r\n" : "");
                const char *want = NULL;
                if (!strchr(known, f))
                    want = collapsed ? E_IOD : E_INVALID;
                else if (f == 'b')
                    want = E_DECODE;  /* "foo" is no base64 */
                else if (!tok && strchr("NTRCE", f))
                    want = E_TOKEN;
                else if (!tok && f == 'D')
                    want = E_DELTA;
                else if (!tok && f == 'J')
                    want = E_INITIAL;
                else if (!tok && f == 'F')
                    want = E_FORMAT;
                else if (!tok && f == 'M')
                    want = E_MLEN;
                if (want && collapsed && want != E_IOD)
                    want = E_IOD;
                if (f == 'M' && tok && cmd == MC_META_SET)
                    want = E_MS_MODE;
                if (f == 'M' && tok && cmd == MC_META_ARITH)
                    want = E_MA_MODE;

                int rc = parse_n(line, (size_t)n, &r);
                bool ok = want ? rc == GW_ERROR && strcmp(r.error, want) == 0
                               : rc == GW_OK && r.nflags == 1 &&
                                     mc_meta_has(&r, f) && r.error == NULL;
                ok = ok && r.total_len == (uint32_t)n;
                if (!ok)
                    fprintf(stderr, "'%.*s': rc %d error '%s'\n", n - 2, line,
                            rc, r.error ? r.error : "");
                CHECK(ok);
            }
        }
    }
}

static void test_values(void)
{
    struct mc_meta_request r;
    CHECK_EQ_INT(parse("mg k T-9223372036854775808 N+7 R0 C18446744073709551615"
                       " E42 F4294967295 D+3 J00 MS\r\n", &r), GW_OK);
    CHECK(r.ttl == INT64_MIN);
    CHECK_EQ_INT(r.vivify_ttl, 7);
    CHECK_EQ_INT(r.recache_ttl, 0);
    CHECK(r.cas == UINT64_MAX);
    CHECK_EQ_INT(r.new_cas, 42);
    CHECK_EQ_INT(r.client_flags, 4294967295u);
    CHECK_EQ_INT(r.delta, 3);
    CHECK_EQ_INT(r.initial, 0);
    CHECK_EQ_INT(r.mode, 'S');
    CHECK_EQ_INT(r.nflags, 9);

    /* tokens that memcached ignores: a token on a plain flag, mg with M */
    CHECK_EQ_INT(parse("mg k v1 q0 Mz x I\r\n", &r), GW_OK);
    CHECK(r.quiet);
    CHECK_EQ_INT(r.mode, 'z');
    check_flag(&r, last, 0, "v1");

    static const struct {
        const char *in;
        const char *err;
    } bad[] = {
        {"mg k T2147483648x\r\n", E_TOKEN},
        {"mg k T9223372036854775808\r\n", E_TOKEN},
        {"mg k T0x10\r\n", E_TOKEN},
        {"mg k T--1\r\n", E_TOKEN},
        {"mg k T+-1\r\n", E_TOKEN},
        {"mg k C-1\r\n", E_TOKEN},
        {"mg k C18446744073709551616\r\n", E_TOKEN},
        {"mg k E-1\r\n", E_TOKEN},
        {"mg k F4294967296\r\n", E_FORMAT},  /* memcached truncates */
        {"mg k F-1\r\n", E_FORMAT},
        {"mg k D-1\r\n", E_DELTA},
        {"mg k J1.5\r\n", E_INITIAL},
        {"mg k MSS\r\n", E_MLEN},
        /* the walk goes on after a bad token; the last message wins */
        {"mg k T Dx\r\n", E_DELTA},
        {"mg k Dx T\r\n", E_TOKEN},
        {"mg k Dx F\r\n", E_DELTA},
        {"mg k F Dx\r\n", E_DELTA},
        {"mg k Fx v\r\n", E_FORMAT},
        {"mg k Fx b\r\n", E_DECODE},
        /* ... but a duplicate or unknown flag stops it at once */
        {"mg k Dx v v\r\n", E_DUP},
        {"mg k Dx ! T\r\n", E_INVALID},
        {"mg k T v1 v\r\n", E_DUP},
        {"mg k \x80\r\n", E_DUP},        /* memcached: a byte >= 127 */
        {"mg k \x7f\r\n", E_DUP},
        {"mg k \x01\r\n", E_INVALID},
        {"mg k 5\r\n", E_INVALID},
        {"mg k !x\r\n", E_INVALID},
        {"mg k \tv\r\n", E_INVALID},
        /* ms: the mode comes after the walk, and before the opaque */
        {"ms k 2 Mx T\r\nhi\r\n", E_TOKEN},
        {"ms k 2 Mx O" O31 "o\r\nhi\r\n", E_MS_MODE},
        {"ms k 2 O" O31 "o Mx\r\nhi\r\n", E_MS_MODE},
        {"ms k 2 Me\r\nhi\r\n", E_MS_MODE},
        {"ma k Mi\r\n", E_MA_MODE},
        {"ma k Md\r\n", E_MA_MODE},
        {"ma k O" O31 "o Mx\r\n", E_MA_MODE},
        {"ma k Mx v v\r\n", E_IOD},
        {"md k T\r\n", E_IOD},
        {"md k q q\r\n", E_IOD},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        int rc = parse(bad[i].in, &r);
        bool ok = rc == GW_ERROR && strcmp(r.error, bad[i].err) == 0;
        if (!ok)
            fprintf(stderr, "case %zu '%s': rc %d '%s'\n", i, bad[i].in, rc,
                    r.error ? r.error : "");
        CHECK(ok);
    }

    /* the modes each command takes */
    static const char ms_modes[] = "EAPRS", ma_modes[] = "I+D-";
    char line[32];
    for (int m = 0; m < 5; m++) {
        snprintf(line, sizeof(line), "ms k 0 M%c\r\n\r\n", ms_modes[m]);
        CHECK_EQ_INT(parse(line, &r), GW_OK);
        CHECK_EQ_INT(r.mode, ms_modes[m]);
    }
    for (int m = 0; m < 4; m++) {
        snprintf(line, sizeof(line), "ma k M%c\r\n", ma_modes[m]);
        CHECK_EQ_INT(parse(line, &r), GW_OK);
        CHECK_EQ_INT(r.mode, ma_modes[m]);
    }
    CHECK_EQ_INT(parse("md k Mx\r\n", &r), GW_OK);  /* md ignores it */
}

static void test_ms(void)
{
    struct mc_meta_request r;
    const char *s = "ms foo 5 T30 F7 c k O1 q MR I C9\r\nhe\r\no\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_SET);
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "foo");
    CHECK_EQ_INT(r.bytes, 5);
    size_t line = strlen("ms foo 5 T30 F7 c k O1 q MR I C9\r\n");
    CHECK_EQ_INT(r.line_len, line);
    CHECK_EQ_INT(r.data_off, line);
    CHECK_EQ_MEM(last + r.data_off, r.bytes, "he\r\no");
    CHECK_EQ_INT(r.total_len, strlen(s));
    CHECK_EQ_INT(r.nflags, 9);
    check_flag(&r, last, 0, "T30");
    check_flag(&r, last, 8, "C9");
    CHECK_EQ_INT(r.ttl, 30);
    CHECK_EQ_INT(r.client_flags, 7);
    CHECK_EQ_INT(r.mode, 'R');
    CHECK_EQ_INT(r.cas, 9);
    CHECK(r.quiet);

    CHECK_EQ_INT(parse("ms k 0\r\n\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 0);
    CHECK_EQ_INT(r.total_len, 10);
    CHECK_EQ_INT(r.nflags, 0);
    CHECK_EQ_INT(parse("ms k +2\nhi\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 2);
    CHECK_EQ_INT(r.line_len, 8);
    CHECK_EQ_INT(parse("ms k -0\r\n\r\n", &r), GW_OK);
    CHECK_EQ_INT(parse("ms " KEY250 " 1\r\nx\r\n", &r), GW_OK);
}

static void test_md_ma_mn_me(void)
{
    struct mc_meta_request r;
    CHECK_EQ_INT(parse("md foo q I T30 C5 E6 x k O9 b\r\n", &r), GW_ERROR);
    CHECK(strcmp(r.error, E_IOD) == 0);  /* b on a key that is no base64 */
    CHECK_EQ_INT(parse("md Zm9v q I T30 C5 E6 x k O9 b\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_DELETE);
    CHECK_EQ_INT(r.nflags, 9);
    CHECK(r.quiet && r.binary_key);
    CHECK_EQ_INT(r.ttl, 30);
    CHECK_EQ_INT(r.cas, 5);
    CHECK_EQ_INT(r.new_cas, 6);

    CHECK_EQ_INT(parse("ma n N0 J5 D3 v t c MD q\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_ARITH);
    CHECK_EQ_INT(r.vivify_ttl, 0);
    CHECK_EQ_INT(r.initial, 5);
    CHECK_EQ_INT(r.delta, 3);
    CHECK_EQ_INT(r.mode, 'D');
    CHECK_EQ_INT(r.nflags, 8);

    CHECK_EQ_INT(parse("mn\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_NOOP);
    CHECK_EQ_INT(r.total_len, 4);
    CHECK_EQ_INT(r.key_len, 0);
    CHECK_EQ_INT(parse("mn foo bar !!\r\n", &r), GW_OK);  /* ignored */
    CHECK_EQ_INT(r.nflags, 0);
    CHECK_EQ_INT(parse("mn\n", &r), GW_OK);

    CHECK_EQ_INT(parse("me foo\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_DEBUG);
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "foo");
    CHECK_EQ_INT(r.nflags, 0);
    CHECK_EQ_INT(parse("me foo x v v !\r\n", &r), GW_OK);  /* ignored */
    CHECK_EQ_INT(r.nflags, 0);
    CHECK_EQ_INT(parse("me Zm9v b\r\n", &r), GW_OK);
    CHECK(r.binary_key);
    CHECK_EQ_MEM(r.kbuf, r.kbuf_len, "foo");
    CHECK_EQ_INT(r.nflags, 1);
    check_flag(&r, last, 0, "b");
    CHECK_EQ_INT(parse("me Zm9v bx\r\n", &r), GW_OK);  /* only "b" counts */
    CHECK(!r.binary_key);
    CHECK_EQ_INT(parse("me Zm9v x b\r\n", &r), GW_OK);
    CHECK(!r.binary_key);
    CHECK_EQ_INT(parse("me foo b\r\n", &r), GW_ERROR);
    CHECK(strcmp(r.error, E_FORMAT) == 0);
}

/* ---- keys -------------------------------------------------------------- */

static void test_base64_keys(void)
{
    struct mc_meta_request r;
    size_t kl;
    const char *k;

    CHECK_EQ_INT(parse("mg Zm9v b v\r\n", &r), GW_OK);
    CHECK(r.binary_key);
    CHECK_EQ_MEM(last + r.key_off, r.key_len, "Zm9v");  /* as sent */
    CHECK_EQ_MEM(r.kbuf, r.kbuf_len, "foo");
    k = mc_meta_key(last, &r, &kl);
    CHECK(k == (const char *)r.kbuf);
    CHECK_EQ_MEM(k, kl, "foo");
    CHECK(mc_meta_has(&r, 'b'));

    /* binary bytes, space and NUL included: the key a route sees */
    CHECK_EQ_INT(parse("ms AAEgCv8= 1 b\r\nx\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.kbuf_len, 5);
    CHECK(memcmp(r.kbuf, "\x00\x01\x20\x0a\xff", 5) == 0);
    CHECK_EQ_INT(r.total_len, strlen("ms AAEgCv8= 1 b\r\nx\r\n"));

    /* 248 characters: the longest base64 key (186 bytes decoded) */
    char line[300];
    char coded[249];
    for (int i = 0; i < 248; i++)
        coded[i] = "QUJD"[i % 4];
    coded[248] = 0;
    snprintf(line, sizeof(line), "mg %s b\r\n", coded);
    CHECK_EQ_INT(parse(line, &r), GW_OK);
    CHECK_EQ_INT(r.kbuf_len, 186);
    CHECK(memcmp(r.kbuf, "ABCABC", 6) == 0);
    /* 252: valid base64, but the key as sent is over 250 */
    snprintf(line, sizeof(line), "mg %sQUJD b\r\n", coded);
    CHECK_EQ_INT(parse(line, &r), GW_ERROR);
    CHECK(strcmp(r.error, E_FORMAT) == 0);

    static const char *const bad[] = {
        "mg Zm9 b\r\n", "mg Zg= b\r\n", "mg Z=== b\r\n",
        "mg Zm9v! b\r\n",     /* memcached skips the '!'; refused here */
        "mg Zg==Zm9v b\r\n",  /* memcached stops at the padding */
        "mg " KEY250 " b\r\n",
        "ms foo 2 b\r\nhi\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(parse(bad[i], &r), GW_ERROR);
        CHECK(r.error && strcmp(r.error, E_DECODE) == 0);
        CHECK_EQ_INT(r.total_len, strlen(bad[i]));
    }
    CHECK_EQ_INT(parse("md Zm9 b\r\n", &r), GW_ERROR);
    CHECK(strcmp(r.error, E_IOD) == 0);
    CHECK_EQ_INT(parse("ma Zm9 b\r\n", &r), GW_ERROR);
    CHECK(strcmp(r.error, E_IOD) == 0);
    CHECK_EQ_INT(parse("mg Zm9v b b\r\n", &r), GW_ERROR);
    CHECK(strcmp(r.error, E_DUP) == 0);
    /* non-canonical bits under the padding decode as memcached does */
    CHECK_EQ_INT(parse("mg Zh== b\r\n", &r), GW_OK);
    CHECK_EQ_MEM(r.kbuf, r.kbuf_len, "f");
}

static void test_keys(void)
{
    struct mc_meta_request r;
    struct mc_parser p;
    CHECK_EQ_INT(parse("mg " KEY250 " v\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.key_len, 250);
    static const char *const bad[] = {
        "mg " KEY251 "\r\n", "md " KEY251 " q\r\n", "ma " KEY251 "\r\n",
        "me " KEY251 "\r\n", ("mg a\x01" "b v\r\n"), "mg a\x7f\r\n",
        "mg foo\tv\r\n",      /* memcached takes "foo\tv" as the key */
        "me a\x02\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        CHECK_EQ_INT(parse(bad[i], &r), GW_ERROR);
        CHECK(r.error && strcmp(r.error, E_FORMAT) == 0);
    }
    /* binary_keys lets control bytes through, as for text */
    static const char ctl[] = "mg a\x01 v\r\n";
    mc_parser_init(&p, 0, 0);
    p.binary_keys = true;
    CHECK_EQ_INT(mc_meta_parse(&p, ctl, sizeof ctl - 1, &r), GW_OK);
    CHECK_EQ_INT(r.key_len, 2);
    static const char nul[] = "mg a\0b v\r\n";
    CHECK_EQ_INT(mc_meta_parse(&p, nul, sizeof nul - 1, &r), GW_ERROR);
    CHECK(strcmp(r.error, E_FORMAT) == 0);
}

/* ---- limits ------------------------------------------------------------ */

static void test_opaque(void)
{
    static const char *const cmds[] = {"mg", "md", "ma", "ms"};
    struct mc_meta_request r;
    char line[128];
    for (size_t c = 0; c < GW_ARRAY_LEN(cmds); c++) {
        bool ms = strcmp(cmds[c], "ms") == 0;
        const char *pre = ms ? " 2" : "", *data = ms ? "hi\r\n" : "";
        /* 31 bytes of opaque: the O token is 32 with its letter */
        int n = snprintf(line, sizeof(line), "%s k%s O%s q\r\n%s", cmds[c], pre,
                         O31, data);
        CHECK_EQ_INT(parse_n(line, (size_t)n, &r), GW_OK);
        const struct mc_meta_flag *o = mc_meta_flag(&r, 'O');
        CHECK(o != NULL);
        if (o)
            CHECK_EQ_MEM(last + o->off + 1, o->len - 1, O31);
        n = snprintf(line, sizeof(line), "%s k%s O%so q\r\n%s", cmds[c], pre,
                     O31, data);
        CHECK_EQ_INT(parse_n(line, (size_t)n, &r), GW_ERROR);
        CHECK(strcmp(r.error, E_OPAQUE) == 0);
        CHECK_EQ_INT(r.total_len, n);
        /* an empty opaque is fine */
        n = snprintf(line, sizeof(line), "%s k%s O\r\n%s", cmds[c], pre, data);
        CHECK_EQ_INT(parse_n(line, (size_t)n, &r), GW_OK);
    }
}

static void test_max_flags(void)
{
    static const char f17[] = " c f h k l O q s t u v P L I N1 R1 T1";
    struct mc_meta_request r;
    char line[128];

    snprintf(line, sizeof(line), "mg k%s\r\n", f17);
    CHECK_EQ_INT(parse(line, &r), GW_OK);
    CHECK_EQ_INT(r.nflags, 17);
    snprintf(line, sizeof(line), "mg k%s x\r\n", f17);
    CHECK_EQ_INT(parse(line, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR options flags are too long") == 0);
    snprintf(line, sizeof(line), "md k%s x\r\n", f17);
    CHECK_EQ_INT(parse(line, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR options flags too long") == 0);
    snprintf(line, sizeof(line), "ma k%s x\r\n", f17);
    CHECK_EQ_INT(parse(line, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR options flags too long") == 0);
    /* the count comes before the walk: 18 bad flags are "too long" */
    CHECK_EQ_INT(parse("mg k ! ! ! ! ! ! ! ! ! ! ! ! ! ! ! ! ! !\r\n", &r),
                 GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR options flags are too long") == 0);

    /* ms: 16, <datalen> being a token of its own */
    int n = snprintf(line, sizeof(line), "ms k 2%s\r\nhi\r\n", f17 + 2);
    CHECK_EQ_INT(parse_n(line, (size_t)n, &r), GW_OK);
    CHECK_EQ_INT(r.nflags, 16);
    n = snprintf(line, sizeof(line), "ms k 2%s\r\nhi\r\n", f17);
    CHECK_EQ_INT(parse_n(line, (size_t)n, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR options flags too long") == 0);
    CHECK_EQ_INT(r.total_len, n);  /* the data is swallowed */
}

/* ---- errors ------------------------------------------------------------ */

struct err_case {
    const char *in;
    const char *err;
    int extra;   /* total_len - line_len */
    size_t len;  /* bytes of in; 0: strlen (a NUL inside needs it) */
};

static void test_errors(void)
{
    static const char E_TOO_LARGE[] = "SERVER_ERROR object too large for cache";
    static const char E_CHUNK[] = "CLIENT_ERROR bad data chunk";
    static const struct err_case cases[] = {
        /* unknown commands and missing keys */
        {"m\r\n", "ERROR", 0, 0},
        {"mx foo\r\n", "ERROR", 0, 0},
        {"mgg foo\r\n", "ERROR", 0, 0},
        {"mg\tfoo\r\n", "ERROR", 0, 0},
        {"mg\r\n", "ERROR", 0, 0},
        {"mg   \r\n", "ERROR", 0, 0},
        {"md\r\n", "ERROR", 0, 0},
        {"ma\r\n", "ERROR", 0, 0},
        {"ms\r\n", "ERROR", 0, 0},
        {"me\r\n", E_FORMAT, 0, 0},
        /* ms's line */
        {"ms foo\r\n", E_FORMAT, 0, 0},
        {"ms foo x\r\nhi\r\n", E_FORMAT, 0, 0},
        {"ms foo -1\r\nhi\r\n", E_FORMAT, 0, 0},
        {"ms foo 2x\r\nhi\r\n", E_FORMAT, 0, 0},
        {"ms foo 2147483646\r\n", E_FORMAT, 0, 0},
        {"ms " KEY251 " 2\r\nhi\r\n", E_FORMAT, 4, 0},  /* memcached: no swallow */
        {"ms foo 2 S2\r\nhi\r\n", E_INVALID, 4, 0},
        {"ms foo 2 v v\r\nhi\r\n", E_DUP, 4, 0},
        {"ms foo 2 T\r\nhi\r\n", E_TOKEN, 4, 0},
        {"ms foo 2 Fx\r\nhi\r\n", E_FORMAT, 4, 0},
        {"ms foo 2 M\r\nhi\r\n", E_MLEN, 4, 0},
        {"ms foo 2 \x00v\r\nhi\r\n", E_FORMAT, 4, 17},
        /* ms's data */
        {"ms foo 2\r\nhiXY", E_CHUNK, 4, 0},
        {"ms foo 2 q\r\nhiXY", E_CHUNK, 4, 0},
        {"ms foo 2\r\nhi\n\r", E_CHUNK, 4, 0},
        {"ms foo 0\r\nab", E_CHUNK, 2, 0},
        {"ms foo 2000000 q\r\n", E_TOO_LARGE, 2000002, 0},
        {"ms foo 2147483645\r\n", E_TOO_LARGE, 2147483647, 0},
        /* the walk's errors on mg */
        {"mg foo v v\r\n", E_DUP, 0, 0},
        {"mg foo vv v1\r\n", E_DUP, 0, 0},
        {"mg foo S\r\n", E_INVALID, 0, 0},
        {"mg foo T\r\n", E_TOKEN, 0, 0},
        {"mg foo N\r\n", E_TOKEN, 0, 0},
        {"mg foo R-\r\n", E_TOKEN, 0, 0},
        {"mg foo C\r\n", E_TOKEN, 0, 0},
        {"mg foo E\r\n", E_TOKEN, 0, 0},
        {"mg foo D\r\n", E_DELTA, 0, 0},
        {"mg foo J\r\n", E_INITIAL, 0, 0},
        {"mg foo F\r\n", E_FORMAT, 0, 0},
        {"mg foo M\r\n", E_MLEN, 0, 0},
        {"mg foo v\0\r\n", E_FORMAT, 0, 11},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        const struct err_case *c = &cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        const char *nl = memchr(c->in, '\n', n);
        size_t line = nl ? (size_t)(nl - c->in) + 1 : 0;
        struct mc_meta_request r;
        int rc = parse_n(c->in, n, &r);
        bool ok = rc == GW_ERROR && r.error && strcmp(r.error, c->err) == 0 &&
                  r.line_len == line && r.total_len == line + (size_t)c->extra &&
                  !r.close;
        if (!ok)
            fprintf(stderr, "case %zu '%s': rc %d error '%s' line %u total %u\n",
                    i, c->in, rc, r.error ? r.error : "(null)", r.line_len,
                    r.total_len);
        CHECK(ok);
    }
}

/* Text and meta interleaved after a bad chunk: memcached consumed exactly
 * datalen + 2 and reads on from there. */
static void test_bad_chunk_resync(void)
{
    struct mc_parser p;
    struct mc_meta_request r;
    const char *s = "ms k 2\r\nhiXYmg k v\r\n";
    size_t n = strlen(s);
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(mc_meta_parse(&p, s, n, &r), GW_ERROR);
    CHECK_EQ_INT(r.total_len, 12);
    CHECK(mc_is_meta(s + 12, n - 12));
    CHECK_EQ_INT(mc_meta_parse(&p, s + 12, n - 12, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_META_GET);
    CHECK_EQ_INT(r.total_len, n - 12);
    /* judged only once the whole block is there */
    CHECK_EQ_INT(mc_meta_parse(&p, s, 11, &r), GW_AGAIN);
    CHECK_EQ_INT(p.scanned, 7);
    CHECK_EQ_INT(mc_meta_parse(&p, s, 12, &r), GW_ERROR);
}

static void test_line_too_long(void)
{
    struct mc_parser p;
    struct mc_meta_request r;
    char buf[200];
    memset(buf, 'v', sizeof(buf));
    memcpy(buf, "mg k ", 5);
    mc_parser_init(&p, 64, 0);
    CHECK_EQ_INT(mc_meta_parse(&p, buf, 63, &r), GW_AGAIN);
    CHECK_EQ_INT(p.scanned, 63);
    CHECK_EQ_INT(mc_meta_parse(&p, buf, 64, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR line too long") == 0);
    CHECK(r.close);
    CHECK_EQ_INT(r.total_len, 64);
    CHECK_EQ_INT(p.scanned, 0);

    /* a data block may be far longer than max_line */
    static char big[1000];
    int n = snprintf(big, sizeof(big), "ms k 900 T0\r\n");
    memset(big + n, 'v', 900);
    memcpy(big + n + 900, "\r\n", 2);
    mc_parser_init(&p, 64, 0);
    CHECK_EQ_INT(mc_meta_parse(&p, big, (size_t)n + 902, &r), GW_OK);
    CHECK_EQ_INT(r.total_len, n + 902);
    /* max_value holds for ms as for set */
    mc_parser_init(&p, 0, 899);
    CHECK_EQ_INT(mc_meta_parse(&p, big, (size_t)n + 902, &r), GW_ERROR);
    CHECK(strcmp(r.error, "SERVER_ERROR object too large for cache") == 0);
    CHECK_EQ_INT(r.total_len, n + 902);
}

/* Every prefix is GW_AGAIN, and p->scanned records the search. */
static void test_incomplete(void)
{
    static const char *const reqs[] = {
        "mg foo v t\r\n",
        "ms foo 5 T0 q\r\nab\r\nc\r\n",
        "md foo q\r\n",
        "ma foo D5\r\n",
        "mn\r\n",
        "me Zm9v b\r\n",
        "mx\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(reqs); i++) {
        const char *s = reqs[i];
        size_t n = strlen(s);
        size_t line = (size_t)((const char *)memchr(s, '\n', n) - s) + 1;
        struct mc_parser p;
        struct mc_meta_request r;
        mc_parser_init(&p, 0, 0);
        for (size_t k = 0; k < n; k++) {
            CHECK_EQ_INT(mc_meta_parse(&p, s, k, &r), GW_AGAIN);
            CHECK_EQ_INT(p.scanned, k < line ? k : line - 1);
        }
        int rc = mc_meta_parse(&p, s, n, &r);
        CHECK(rc == (i == GW_ARRAY_LEN(reqs) - 1 ? GW_ERROR : GW_OK));
        CHECK_EQ_INT(r.total_len, n);
        CHECK_EQ_INT(p.scanned, 0);
    }
}

/* ---- text and meta on one connection, at every split point ------------- */

struct rec {
    int rc;
    bool meta;
    size_t at;
    uint32_t total_len;
    int cmd;
    const char *error;
    uint32_t nflags;
    uint64_t flag_bits;
    uint32_t key_off, key_len;
};

#define MAX_RECS 128

static bool rec_eq(const struct rec *a, const struct rec *b)
{
    return a->rc == b->rc && a->meta == b->meta && a->at == b->at &&
           a->total_len == b->total_len && a->cmd == b->cmd &&
           a->nflags == b->nflags && a->flag_bits == b->flag_bits &&
           a->key_off == b->key_off && a->key_len == b->key_len &&
           ((!a->error && !b->error) ||
            (a->error && b->error && strcmp(a->error, b->error) == 0));
}

/* As a client codec would: pick the parser by mc_is_meta, one mc_parser. */
static void drain(struct mc_parser *p, const char *s, size_t avail,
                  size_t *at, struct rec *out, int *nout)
{
    while (*at < avail) {
        struct rec rec = {.at = *at};
        const char *b = s + *at;
        size_t left = avail - *at;
        rec.meta = mc_is_meta(b, left);
        if (rec.meta) {
            struct mc_meta_request r;
            rec.rc = mc_meta_parse(p, b, left, &r);
            rec.total_len = r.total_len;
            rec.cmd = r.cmd;
            rec.error = r.error;
            rec.nflags = r.nflags;
            rec.flag_bits = r.flag_bits;
            rec.key_off = r.key_off;
            rec.key_len = r.key_len;
        } else {
            struct mc_request r;
            rec.rc = mc_parse(p, b, left, &r);
            rec.total_len = r.total_len;
            rec.cmd = r.cmd;
            rec.error = r.error;
            rec.key_off = r.key_off;
            rec.key_len = r.key_len;
        }
        if (rec.rc == GW_AGAIN)
            return;
        if (*nout < MAX_RECS)
            out[*nout] = rec;
        (*nout)++;
        *at += rec.total_len;  /* may run past avail: swallowed as it comes */
    }
}

static bool same(const struct rec *a, int na, const struct rec *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na && i < MAX_RECS; i++)
        if (!rec_eq(&a[i], &b[i]))
            return false;
    return true;
}

static void test_pipeline_splits(void)
{
    static char s[4096];
    size_t n = 0;
#define ADD(str) (memcpy(s + n, str, sizeof(str) - 1), n += sizeof(str) - 1)
    ADD("ms k1 5 T60 F3 c\r\nhello\r\n");
    ADD("get k1\r\n");
    ADD("mg k1 v f t c O42 q\r\n");
    ADD("   mg   k1   s  \r\n");                  /* leading spaces */
    ADD("set k2 0 0 3\r\nabc\r\n");
    ADD("ms k2 12 MA q\r\nab\r\ncd\r\nef\r\n\r\n");  /* "\r\n" inside */
    ADD("md k2 q I T30\r\n");
    ADD("ma n N0 J10 D2 v\n");
    ADD("mn\r\n");
    ADD("me Zm9v b\r\n");
    ADD("mg Zm9v b k v\r\n");
    ADD("mx nope\r\n");                           /* ERROR */
    ADD("mg k v v\r\n");                          /* duplicate flag */
    ADD("ms k 3 Mx\r\nabc\r\n");                  /* invalid mode: swallowed */
    ADD("ms k 3\r\nabcXY");                       /* bad data chunk */
    ADD("\r\n");                                  /* ... leaves "\r\n": ERROR */
    ADD("ms big 300 q\r\n");                      /* too large: swallowed */
    for (int i = 0; i < 300; i++)
        s[n++] = (char)('a' + i % 26);
    ADD("\r\n");
    ADD("mg " KEY251 " v\r\n");
    ADD("delete k1\r\n");
    ADD("mg last v\r\n");
    ADD("mn\r\n");
#undef ADD

    static const struct {
        int rc;
        bool meta;
        int cmd;
    } want[] = {
        {GW_OK, true, MC_META_SET},     {GW_OK, false, MC_GET},
        {GW_OK, true, MC_META_GET},     {GW_OK, true, MC_META_GET},
        {GW_OK, false, MC_SET},   {GW_OK, true, MC_META_SET},
        {GW_OK, true, MC_META_DELETE},     {GW_OK, true, MC_META_ARITH},
        {GW_OK, true, MC_META_NOOP},     {GW_OK, true, MC_META_DEBUG},
        {GW_OK, true, MC_META_GET},     {GW_ERROR, true, MC_NONE},
        {GW_ERROR, true, MC_META_GET},  {GW_ERROR, true, MC_META_SET},
        {GW_ERROR, true, MC_META_SET},  {GW_ERROR, false, MC_NONE},
        {GW_ERROR, true, MC_META_SET},  {GW_ERROR, true, MC_META_GET},
        {GW_OK, false, MC_DELETE}, {GW_OK, true, MC_META_GET},
        {GW_OK, true, MC_META_NOOP},
    };
    const size_t max_value = 200;
    static struct rec ref[MAX_RECS], got[MAX_RECS];
    struct mc_parser p;
    size_t at = 0;
    int nref = 0;
    mc_parser_init(&p, 0, max_value);
    drain(&p, s, n, &at, ref, &nref);
    CHECK_EQ_INT(nref, GW_ARRAY_LEN(want));
    for (int i = 0; i < nref && i < (int)GW_ARRAY_LEN(want); i++) {
        if (ref[i].rc != want[i].rc || ref[i].meta != want[i].meta ||
            ref[i].cmd != want[i].cmd)
            fprintf(stderr, "req %d at %zu: rc %d meta %d cmd %d (%s)\n", i,
                    ref[i].at, ref[i].rc, ref[i].meta, ref[i].cmd,
                    ref[i].error ? ref[i].error : "");
        CHECK_EQ_INT(ref[i].rc, want[i].rc);
        CHECK_EQ_INT(ref[i].meta, want[i].meta);
        CHECK_EQ_INT(ref[i].cmd, want[i].cmd);
    }
    if (nref > 0 && nref <= MAX_RECS)
        CHECK_EQ_INT(ref[nref - 1].at + ref[nref - 1].total_len, n);
    CHECK_EQ_INT(ref[2].nflags, 6);
    CHECK(strcmp(ref[12].error, E_DUP) == 0);
    CHECK(strcmp(ref[13].error, E_MS_MODE) == 0);
    CHECK(strcmp(ref[16].error, "SERVER_ERROR object too large for cache") == 0);

    int bad = 0;
    for (size_t i = 0; i <= n; i++) {
        int ngot = 0;
        at = 0;
        mc_parser_init(&p, 0, max_value);
        drain(&p, s, i, &at, got, &ngot);
        drain(&p, s, n, &at, got, &ngot);
        if (!same(ref, nref, got, ngot) && bad++ < 5)
            fprintf(stderr, "split at %zu differs\n", i);
    }
    CHECK_EQ_INT(bad, 0);

    int ngot = 0;
    at = 0;
    mc_parser_init(&p, 0, max_value);
    for (size_t i = 1; i <= n; i++)
        drain(&p, s, i, &at, got, &ngot);
    CHECK(same(ref, nref, got, ngot));
}

int main(void)
{
    RUN(test_names);
    RUN(test_is_meta);
    RUN(test_mg);
    RUN(test_each_flag);
    RUN(test_values);
    RUN(test_ms);
    RUN(test_md_ma_mn_me);
    RUN(test_base64_keys);
    RUN(test_keys);
    RUN(test_opaque);
    RUN(test_max_flags);
    RUN(test_errors);
    RUN(test_bad_chunk_resync);
    RUN(test_line_too_long);
    RUN(test_incomplete);
    RUN(test_pipeline_splits);
    free(last);
    return unit_report("meta");
}
