/* test_proto.c -- unit tests for the memcached text-protocol parser. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/proto.h"
#include "unit.h"

#define KEY251                                                                 \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
/* 250 bytes: the longest valid key. */
#define KEY250                                                                 \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" \
    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"

static const char E_FORMAT[] = "CLIENT_ERROR bad command line format";

/* Parse a whole string with a fresh default parser. */
static int parse_n(const char *s, size_t n, struct mc_request *r)
{
    struct mc_parser p;
    mc_parser_init(&p, 0, 0);
    return mc_parse(&p, s, n, r);
}

static int parse(const char *s, struct mc_request *r)
{
    return parse_n(s, strlen(s), r);
}

/* ---- helpers ----------------------------------------------------------- */

static void test_names(void)
{
    static const char *const want[] = {
        "none", "get", "gets", "gat", "gats", "set", "add", "replace",
        "append", "prepend", "cas", "delete", "incr", "decr", "touch",
        "flush_all", "version", "verbosity", "stats", "quit", "mg", "ms", "md", "ma", "mn", "me"};
    CHECK_EQ_INT(GW_ARRAY_LEN(want), MC_CMD_COUNT);
    for (int c = 0; c < MC_CMD_COUNT; c++)
        CHECK(strcmp(mc_cmd_name((enum mc_cmd)c), want[c]) == 0);
    CHECK(strcmp(mc_cmd_name(MC_CMD_COUNT), "unknown") == 0);

    for (int c = 0; c < MC_CMD_COUNT; c++) {
        bool st = c == MC_SET || c == MC_ADD || c == MC_REPLACE ||
                  c == MC_APPEND || c == MC_PREPEND || c == MC_CAS;
        bool rt = c == MC_GET || c == MC_GETS || c == MC_GAT || c == MC_GATS;
        CHECK_EQ_INT(mc_cmd_is_storage((enum mc_cmd)c), st);
        CHECK_EQ_INT(mc_cmd_is_retrieval((enum mc_cmd)c), rt);
        CHECK_EQ_INT(mc_cmd_is_meta((enum mc_cmd)c), c >= MC_META_GET && c <= MC_META_DEBUG);
    }
    /* The text parser never gives a meta command. */
    struct mc_parser p;
    struct mc_request req;
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(mc_parse(&p, "mg k v\r\n", 8, &req), GW_ERROR);
    CHECK(strcmp(req.error, "ERROR") == 0);
}

static void test_key_valid(void)
{
    CHECK(mc_key_valid("a", 1));
    CHECK(mc_key_valid("foo:bar/baz", 11));
    CHECK(mc_key_valid("\xc3\xa9t\xc3\xa9", 5)); /* UTF-8 is fine */
    CHECK(mc_key_valid("~!@#$%^&*()", 11));
    CHECK(mc_key_valid(KEY250, 250));
    CHECK(!mc_key_valid(KEY251, 251));
    CHECK(!mc_key_valid("", 0));
    CHECK(!mc_key_valid("a b", 3));
    CHECK(!mc_key_valid("a\tb", 3));
    CHECK(!mc_key_valid("a\rb", 3));
    CHECK(!mc_key_valid("a\nb", 3));
    CHECK(!mc_key_valid("ab\x7f", 3));
    CHECK(!mc_key_valid("\x01", 1));
    CHECK(!mc_key_valid("abc\0def", 7));
    /* the word-at-a-time path: a bad byte at every position of a long key */
    char k[40];
    for (int i = 0; i < 40; i++) {
        memset(k, 'x', sizeof(k));
        CHECK(mc_key_valid(k, sizeof(k)));
        k[i] = 0x1f;
        CHECK(!mc_key_valid(k, sizeof(k)));
        k[i] = ' ';
        CHECK(!mc_key_valid(k, sizeof(k)));
        k[i] = 0x7f;
        CHECK(!mc_key_valid(k, sizeof(k)));
        k[i] = (char)0x80;
        CHECK(mc_key_valid(k, sizeof(k)));
        k[i] = '!';
        CHECK(mc_key_valid(k, sizeof(k)));
    }
}

static void test_parser_init(void)
{
    struct mc_parser p;
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(p.scanned, 0);
    CHECK_EQ_INT(p.max_line, 1 << 20);
    CHECK_EQ_INT(p.max_value, 1 << 20);
    mc_parser_init(&p, 100, 200);
    CHECK_EQ_INT(p.max_line, 100);
    CHECK_EQ_INT(p.max_value, 200);
}

/* ---- each command ------------------------------------------------------ */

static void check_keys(const char *buf, const struct mc_request *r,
                       const char *const *keys, int n)
{
    uint32_t pos = r->keys_off, off = 0, klen = 0;
    int i = 0;
    CHECK_EQ_INT(r->nkeys, n);
    while (mc_key_next(buf, r, &pos, &off, &klen)) {
        CHECK(i < n);
        if (i < n)
            CHECK_EQ_MEM(buf + off, klen, keys[i]);
        i++;
    }
    CHECK_EQ_INT(i, n);
    CHECK(!mc_key_next(buf, r, &pos, &off, &klen));
}

static void test_get(void)
{
    struct mc_request r;
    const char *s = "get foo\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GET);
    CHECK_EQ_INT(r.line_len, 9);
    CHECK_EQ_INT(r.total_len, 9);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "foo");
    CHECK_EQ_INT(r.keys_off, 4);
    CHECK_EQ_INT(r.keys_end, 7);
    CHECK_EQ_INT(r.nkeys, 1);
    CHECK(!r.noreply);
    CHECK(r.error == NULL);
    CHECK(!r.close);
    static const char *const k1[] = {"foo"};
    check_keys(s, &r, k1, 1);

    s = "  get   a  bb ccc   \n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GET);
    CHECK_EQ_INT(r.line_len, strlen(s));
    CHECK_EQ_INT(r.total_len, strlen(s));
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "a");
    CHECK_EQ_INT(r.keys_off, 8);
    CHECK_EQ_MEM(s + r.keys_off, r.keys_end - r.keys_off, "a  bb ccc");
    static const char *const k3[] = {"a", "bb", "ccc"};
    check_keys(s, &r, k3, 3);

    s = "gets a noreply " KEY250 "\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GETS);
    CHECK(!r.noreply);  /* "noreply" is just a key here */
    static const char *const k4[] = {"a", "noreply", KEY250};
    check_keys(s, &r, k4, 3);

    /* a UTF-8 key */
    s = "get \xc3\xa9t\xc3\xa9\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "\xc3\xa9t\xc3\xa9");
}

static void test_gat(void)
{
    struct mc_request r;
    const char *s = "gat 100 foo bar\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GAT);
    CHECK_EQ_INT(r.exptime, 100);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "foo");
    static const char *const k[] = {"foo", "bar"};
    check_keys(s, &r, k, 2);
    CHECK_EQ_INT(r.total_len, strlen(s));

    s = "gats -1 x\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GATS);
    CHECK_EQ_INT(r.exptime, -1);
    static const char *const k1[] = {"x"};
    check_keys(s, &r, k1, 1);

    /* memcached truncates this to 32 bits; it is kept whole here */
    s = "gat 99999999999 x\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.exptime, 99999999999LL);
    check_keys(s, &r, k1, 1);

    s = "gat +5 x \r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.exptime, 5);
    check_keys(s, &r, k1, 1);
}

static void test_storage(void)
{
    static const struct {
        const char *name;
        enum mc_cmd cmd;
    } cmds[] = {{"set", MC_SET},         {"add", MC_ADD},
                {"replace", MC_REPLACE}, {"append", MC_APPEND},
                {"prepend", MC_PREPEND}};
    char buf[256];
    struct mc_request r;

    for (size_t c = 0; c < GW_ARRAY_LEN(cmds); c++) {
        for (int nr = 0; nr < 2; nr++) {
            int line = snprintf(buf, sizeof(buf), "%s mykey 4294967295 -30 5%s\r\n",
                                cmds[c].name, nr ? " noreply" : "");
            strcat(buf, "he\r\no\r\n");
            CHECK_EQ_INT(parse(buf, &r), GW_OK);
            CHECK_EQ_INT(r.cmd, cmds[c].cmd);
            CHECK_EQ_MEM(buf + r.key_off, r.key_len, "mykey");
            CHECK_EQ_INT(r.keys_off, r.key_off);
            CHECK_EQ_INT(r.keys_end, r.key_off + 5);
            CHECK_EQ_INT(r.nkeys, 1);
            CHECK_EQ_INT(r.flags, 4294967295u);
            CHECK_EQ_INT(r.exptime, -30);
            CHECK_EQ_INT(r.bytes, 5);
            CHECK_EQ_INT(r.line_len, line);
            CHECK_EQ_INT(r.data_off, line);
            CHECK_EQ_MEM(buf + r.data_off, r.bytes, "he\r\no");
            CHECK_EQ_INT(r.total_len, line + 7);
            CHECK_EQ_INT(r.noreply, nr);
            CHECK_EQ_INT(r.cas, 0);
            CHECK(r.error == NULL);
        }
    }

    const char *s = "cas k 1 2 3 18446744073709551615\r\nabc\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_CAS);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "k");
    CHECK_EQ_INT(r.flags, 1);
    CHECK_EQ_INT(r.exptime, 2);
    CHECK_EQ_INT(r.bytes, 3);
    CHECK(r.cas == UINT64_MAX);
    CHECK(!r.noreply);
    CHECK_EQ_MEM(s + r.data_off, r.bytes, "abc");
    CHECK_EQ_INT(r.total_len, strlen(s));

    s = "cas k 0 0 1 42 noreply\r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_CAS);
    CHECK_EQ_INT(r.cas, 42);
    CHECK(r.noreply);
    CHECK_EQ_INT(r.total_len, strlen(s));

    /* an unknown 6th token is ignored (memcached: STORED) */
    s = "cas k 0 0 1 42 bogus\r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK(!r.noreply);
    s = "set k 0 0 1 bogus\r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK(!r.noreply);

    /* python-memcached's trailing space, bare "\n", many spaces */
    s = "set k 16 0 4 \r\nabcd\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.flags, 16);
    CHECK_EQ_INT(r.bytes, 4);
    CHECK_EQ_INT(r.line_len, 15);
    CHECK_EQ_INT(r.total_len, strlen(s));
    s = "set k 0 0 4\nabcd\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.line_len, 12);
    CHECK_EQ_INT(r.data_off, 12);
    CHECK_EQ_INT(r.total_len, 18);
    s = "  set   k   1   2   1   noreply  \r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "k");
    CHECK_EQ_INT(r.flags, 1);
    CHECK_EQ_INT(r.exptime, 2);
    CHECK_EQ_INT(r.bytes, 1);
    CHECK(r.noreply);

    /* empty value, "+n", "-0" and leading zeros, as memcached accepts */
    s = "set k 0 0 0\r\n\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 0);
    CHECK_EQ_INT(r.total_len, 15);
    s = "set k +1 +5 +1\r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.flags, 1);
    CHECK_EQ_INT(r.exptime, 5);
    CHECK_EQ_INT(r.bytes, 1);
    s = "set k 0 0 -0\r\n\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 0);
    s = "set k 0 0 00000000000000000000005\r\nhello\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 5);
    s = "set k 0 -9223372036854775808 1\r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK(r.exptime == INT64_MIN);
    s = "set " KEY250 " 0 0 1\r\nx\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.key_len, 250);
}

static void test_delete(void)
{
    struct mc_request r;
    const char *s = "delete foo\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_DELETE);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "foo");
    CHECK_EQ_INT(r.nkeys, 1);
    CHECK(!r.noreply);
    CHECK_EQ_INT(r.total_len, strlen(s));
    static const char *const k[] = {"foo"};
    check_keys(s, &r, k, 1);

    CHECK_EQ_INT(parse("delete foo 0\r\n", &r), GW_OK);
    CHECK(!r.noreply);
    CHECK_EQ_INT(parse("delete foo noreply\r\n", &r), GW_OK);
    CHECK(r.noreply);
    CHECK_EQ_INT(parse("delete foo 0 noreply\n", &r), GW_OK);
    CHECK(r.noreply);
    CHECK_EQ_INT(r.total_len, 21);
}

static void test_arith(void)
{
    struct mc_request r;
    const char *s = "incr n 5\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_INCR);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "n");
    CHECK_EQ_INT(r.delta, 5);
    CHECK(!r.noreply);
    CHECK_EQ_INT(r.total_len, 10);

    s = "decr n 18446744073709551615 noreply\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_DECR);
    CHECK(r.delta == UINT64_MAX);
    CHECK(r.noreply);

    /* memcached ignores an unknown 4th token */
    CHECK_EQ_INT(parse("incr n 1 x\r\n", &r), GW_OK);
    CHECK(!r.noreply);
    CHECK_EQ_INT(r.delta, 1);
    CHECK_EQ_INT(parse("incr n +1\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.delta, 1);
}

static void test_touch(void)
{
    struct mc_request r;
    const char *s = "touch t 3600\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_TOUCH);
    CHECK_EQ_MEM(s + r.key_off, r.key_len, "t");
    CHECK_EQ_INT(r.exptime, 3600);
    CHECK(!r.noreply);
    CHECK_EQ_INT(parse("touch t -1 noreply\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.exptime, -1);
    CHECK(r.noreply);
    CHECK_EQ_INT(parse("touch t 10 x\r\n", &r), GW_OK);
    CHECK(!r.noreply);
}

static void test_flush_all(void)
{
    struct mc_request r;
    CHECK_EQ_INT(parse("flush_all\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_FLUSH_ALL);
    CHECK_EQ_INT(r.delay, 0);
    CHECK(!r.noreply);
    CHECK_EQ_INT(r.nkeys, 0);
    CHECK_EQ_INT(r.total_len, 11);
    CHECK_EQ_INT(parse("flush_all 30\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.delay, 30);
    CHECK(!r.noreply);
    CHECK_EQ_INT(parse("flush_all noreply\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.delay, 0);
    CHECK(r.noreply);
    CHECK_EQ_INT(parse("flush_all 10 noreply\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.delay, 10);
    CHECK(r.noreply);
    CHECK_EQ_INT(parse("flush_all -1\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.delay, -1);
    /* memcached: OK, the unknown second token is ignored */
    CHECK_EQ_INT(parse("flush_all 0 x\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.delay, 0);
    CHECK(!r.noreply);
}

static void test_misc(void)
{
    struct mc_request r;
    const char *s;
    CHECK_EQ_INT(parse("version\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_VERSION);
    CHECK_EQ_INT(r.total_len, 9);
    CHECK_EQ_INT(r.nkeys, 0);
    CHECK_EQ_INT(parse("version foo bar\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_VERSION);
    CHECK_EQ_INT(parse("quit\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_QUIT);
    CHECK_EQ_INT(r.total_len, 6);
    CHECK_EQ_INT(parse("quit\n", &r), GW_OK);
    CHECK_EQ_INT(r.total_len, 5);

    CHECK_EQ_INT(parse("verbosity 1\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_VERBOSITY);
    CHECK_EQ_INT(r.level, 1);
    CHECK(!r.noreply);
    CHECK_EQ_INT(parse("verbosity 4294967295 noreply\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.level, 4294967295LL);
    CHECK(r.noreply);
    CHECK_EQ_INT(parse("verbosity 2 x\r\n", &r), GW_OK);
    CHECK_EQ_INT(r.level, 2);
    CHECK(!r.noreply);

    s = "stats\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_STATS);
    CHECK_EQ_INT(r.args_len, 0);
    CHECK_EQ_INT(r.args_off, 5);
    s = "stats   \r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_INT(r.args_len, 0);
    s = "stats items\r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_MEM(s + r.args_off, r.args_len, "items");
    s = "stats  detail   on  \r\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_MEM(s + r.args_off, r.args_len, "detail   on");
    s = "stats cachedump 1 2\n";
    CHECK_EQ_INT(parse(s, &r), GW_OK);
    CHECK_EQ_MEM(s + r.args_off, r.args_len, "cachedump 1 2");
    CHECK_EQ_INT(r.total_len, strlen(s));
}

/* ---- errors ------------------------------------------------------------ */

struct err_case {
    const char *in;
    int rc;
    const char *err;
    int extra;   /* total_len - line_len: -1 means the line only */
    bool noreply;
};

static void test_errors(void)
{
    static const char E_DEL[] =
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
    static const char E_DELTA[] = "CLIENT_ERROR invalid numeric delta argument";
    static const char E_EXP[] = "CLIENT_ERROR invalid exptime argument";
    static const char E_CHUNK[] = "CLIENT_ERROR bad data chunk";
    static const struct err_case cases[] = {
        /* unknown or empty commands */
        {"foo\r\n", GW_ERROR, "ERROR", -1, false},
        {"GET k\r\n", GW_ERROR, "ERROR", -1, false},
        {"g\r\n", GW_ERROR, "ERROR", -1, false},
        {"\r\n", GW_ERROR, "ERROR", -1, false},
        {"\n", GW_ERROR, "ERROR", -1, false},
        {"   \r\n", GW_ERROR, "ERROR", -1, false},
        {"get\tk\r\n", GW_ERROR, "ERROR", -1, false},
        {"mn\r\n", GW_ERROR, "ERROR", -1, false},
        /* retrieval */
        {"get\r\n", GW_ERROR, "ERROR", -1, false},
        {"get \r\n", GW_ERROR, "ERROR", -1, false},
        {"gets\r\n", GW_ERROR, "ERROR", -1, false},
        {"get " KEY251 "\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"get a " KEY251 " b\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"get a\x01" "b\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"get a\x7f\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"get a\rb\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"get a\r\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"gat\r\n", GW_ERROR, "ERROR", -1, false},
        {"gat 10\r\n", GW_ERROR, "END", -1, false},
        {"gats 10  \r\n", GW_ERROR, "END", -1, false},
        {"gat abc\r\n", GW_ERROR, E_EXP, -1, false},
        {"gat abc k\r\n", GW_ERROR, E_EXP, -1, false},
        {"gat 1x k\r\n", GW_ERROR, E_EXP, -1, false},
        {"gat 10 " KEY251 "\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"gat abc " KEY251 "\r\n", GW_ERROR, E_EXP, -1, false},
        {"gat 99999999999999999999 k\r\n", GW_ERROR, E_EXP, -1, false},
        /* storage: the command line */
        {"set\r\n", GW_ERROR, "ERROR", -1, false},
        {"set k\r\n", GW_ERROR, "ERROR", -1, false},
        {"set k 0 0\r\n", GW_ERROR, "ERROR", -1, false},
        {"set k 0 0 5 noreply extra\r\n", GW_ERROR, "ERROR", 7, false},
        {"set k 0 0 x noreply extra\r\n", GW_ERROR, "ERROR", -1, false},
        {"cas k 0 0 5\r\n", GW_ERROR, "ERROR", 7, false},
        {"cas k 0 0 5 1 noreply x\r\n", GW_ERROR, "ERROR", 7, false},
        {"set " KEY251 " 0 0 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"set " KEY251 " 0 0 5 noreply\r\n", GW_ERROR, E_FORMAT, 7, true},
        {"set a\x01 0 0 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"add a\x7f 0 0 1 noreply\r\n", GW_ERROR, E_FORMAT, 3, true},
        {"set k abc 0 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"set k -1 0 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"set k 4294967296 0 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"set k 0x10 0 1\r\n", GW_ERROR, E_FORMAT, 3, false},
        {"set k 0 abc 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"set k 0 9223372036854775808 5\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"set k 0 0 abc\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"set k 0 0 -1\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"set k 0 0 -1 noreply\r\n", GW_ERROR, E_FORMAT, -1, true},
        {"set k 0 0 +\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"set k 0 0 5x\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"set k 0 0 2147483646\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"set k 0 0 4294967301\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"cas k 0 0 5 abc\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"cas k 0 0 5 -1\r\n", GW_ERROR, E_FORMAT, 7, false},
        {"cas k 0 0 5 noreply\r\n", GW_ERROR, E_FORMAT, 7, true},
        {"cas k 0 0 5 18446744073709551616\r\n", GW_ERROR, E_FORMAT, 7, false},
        /* storage: the data block */
        {"set k 0 0 5\r\nhelloXY\r\n", GW_ERROR, E_CHUNK, 7, false},
        {"set k 0 0 5 noreply\r\nhelloXY", GW_ERROR, E_CHUNK, 7, true},
        {"set k 0 0 5\r\nhello\nX", GW_ERROR, E_CHUNK, 7, false},
        {"set k 0 0 5\r\nhello\n\r", GW_ERROR, E_CHUNK, 7, false},
        {"set k 0 0 0\r\nab", GW_ERROR, E_CHUNK, 2, false},
        /* delete */
        {"delete\r\n", GW_ERROR, "ERROR", -1, false},
        {"delete k 5\r\n", GW_ERROR, E_DEL, -1, false},
        {"delete k x\r\n", GW_ERROR, E_DEL, -1, false},
        {"delete k 00\r\n", GW_ERROR, E_DEL, -1, false},
        {"delete k 5 noreply\r\n", GW_ERROR, E_DEL, -1, true},
        {"delete k noreply 0\r\n", GW_ERROR, E_DEL, -1, false},
        {"delete k 0 noreply x\r\n", GW_ERROR, "ERROR", -1, false},
        {"delete " KEY251 "\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"delete " KEY251 " noreply\r\n", GW_ERROR, E_FORMAT, -1, true},
        {"delete " KEY251 " 5\r\n", GW_ERROR, E_DEL, -1, false},
        {"delete a\x02\r\n", GW_ERROR, E_FORMAT, -1, false},
        /* incr/decr */
        {"incr k\r\n", GW_ERROR, "ERROR", -1, false},
        {"incr k 1 2 3\r\n", GW_ERROR, "ERROR", -1, false},
        {"incr k abc\r\n", GW_ERROR, E_DELTA, -1, false},
        {"incr k -1\r\n", GW_ERROR, E_DELTA, -1, false},
        {"incr k 18446744073709551616\r\n", GW_ERROR, E_DELTA, -1, false},
        {"incr k noreply\r\n", GW_ERROR, E_DELTA, -1, true},
        {"decr k abc noreply\r\n", GW_ERROR, E_DELTA, -1, true},
        {"incr " KEY251 " abc\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"decr k\x03 1\r\n", GW_ERROR, E_FORMAT, -1, false},
        /* touch */
        {"touch k\r\n", GW_ERROR, "ERROR", -1, false},
        {"touch k 10 noreply x\r\n", GW_ERROR, "ERROR", -1, false},
        {"touch k abc\r\n", GW_ERROR, E_EXP, -1, false},
        {"touch k abc noreply\r\n", GW_ERROR, E_EXP, -1, true},
        {"touch " KEY251 " abc\r\n", GW_ERROR, E_FORMAT, -1, false},
        /* flush_all */
        {"flush_all abc\r\n", GW_ERROR, E_EXP, -1, false},
        {"flush_all noreply 5\r\n", GW_ERROR, E_EXP, -1, false},
        {"flush_all abc noreply\r\n", GW_ERROR, E_EXP, -1, true},
        {"flush_all 1 2 3\r\n", GW_ERROR, "ERROR", -1, false},
        /* verbosity */
        {"verbosity\r\n", GW_ERROR, "ERROR", -1, false},
        {"verbosity \r\n", GW_ERROR, "ERROR", -1, false},
        {"verbosity abc\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"verbosity -1\r\n", GW_ERROR, E_FORMAT, -1, false},
        {"verbosity noreply\r\n", GW_ERROR, E_FORMAT, -1, true},
        {"verbosity 1 2 3\r\n", GW_ERROR, "ERROR", -1, false},
        {"verbosity 4294967296\r\n", GW_ERROR, E_FORMAT, -1, false},
    };

    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        const struct err_case *c = &cases[i];
        struct mc_parser p;
        struct mc_request r;
        size_t n = strlen(c->in);
        size_t line = (size_t)((const char *)memchr(c->in, '\n', n) - c->in) + 1;
        mc_parser_init(&p, 0, 0);
        int rc = mc_parse(&p, c->in, n, &r);
        int ok = rc == c->rc && r.error && strcmp(r.error, c->err) == 0 &&
                 r.line_len == line &&
                 r.total_len == line + (c->extra < 0 ? 0 : (size_t)c->extra) &&
                 r.noreply == c->noreply && !r.close && p.scanned == 0;
        if (!ok) {
            fprintf(stderr,
                    "case %zu '%s': rc %d error '%s' line %u total %u "
                    "noreply %d close %d\n",
                    i, c->in, rc, r.error ? r.error : "(null)", r.line_len,
                    r.total_len, r.noreply, r.close);
        }
        CHECK(ok);
    }
}

/* After "CLIENT_ERROR bad data chunk" memcached consumed exactly bytes + 2
 * and parses what follows as the next command: "\r\n" gives ERROR and a
 * command glued to the bad block still runs. */
static void test_bad_chunk_resync(void)
{
    struct mc_parser p;
    struct mc_request r;
    const char *s = "set k 0 0 5\r\nhelloXY\r\nget k\r\n";
    size_t n = strlen(s), off = 0;
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(mc_parse(&p, s, n, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR bad data chunk") == 0);
    CHECK_EQ_INT(r.total_len, 20);
    off += r.total_len;
    CHECK_EQ_INT(mc_parse(&p, s + off, n - off, &r), GW_ERROR);
    CHECK(strcmp(r.error, "ERROR") == 0);
    CHECK_EQ_INT(r.total_len, 2);
    off += r.total_len;
    CHECK_EQ_INT(mc_parse(&p, s + off, n - off, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GET);
    off += r.total_len;
    CHECK_EQ_INT(off, n);

    s = "set k 0 0 5\r\nhelloXYget k\r\n";
    n = strlen(s);
    CHECK_EQ_INT(mc_parse(&p, s, n, &r), GW_ERROR);
    CHECK_EQ_INT(r.total_len, 20);
    CHECK_EQ_INT(mc_parse(&p, s + 20, n - 20, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GET);
    CHECK_EQ_INT(r.total_len, 7);

    /* the bad chunk is only judged once the whole block is there */
    s = "set k 0 0 5\r\nhelloX";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_AGAIN);
    s = "set k 0 0 5\r\nhelloXY";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_ERROR);
}

static void test_too_large(void)
{
    struct mc_parser p;
    struct mc_request r;
    const char *s = "set big 0 0 2000000\r\nxxxxxxxx";
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_ERROR);
    CHECK(strcmp(r.error, "SERVER_ERROR object too large for cache") == 0);
    CHECK_EQ_INT(r.line_len, 21);
    CHECK_EQ_INT(r.total_len, 21 + 2000000 + 2);
    CHECK(r.total_len > strlen(s));
    CHECK(!r.noreply);
    CHECK(!r.close);
    CHECK_EQ_INT(r.bytes, 2000000);
    CHECK_EQ_INT(p.scanned, 0);

    /* the line alone is enough to decide */
    s = "set big 0 0 2000000 noreply\r\n";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_ERROR);
    CHECK(strcmp(r.error, "SERVER_ERROR object too large for cache") == 0);
    CHECK_EQ_INT(r.total_len, strlen(s) + 2000002);
    CHECK(r.noreply);

    /* exactly max_value is fine, one more is not */
    mc_parser_init(&p, 0, 10);
    s = "set k 0 0 10\r\n0123456789\r\n";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_OK);
    s = "cas k 0 0 11 5\r\n";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_ERROR);
    CHECK(strcmp(r.error, "SERVER_ERROR object too large for cache") == 0);
    CHECK_EQ_INT(r.total_len, strlen(s) + 13);

    /* the largest length memcached accepts still fits total_len */
    mc_parser_init(&p, 0, 0);
    s = "set k 0 0 2147483645\r\n";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_ERROR);
    CHECK(strcmp(r.error, "SERVER_ERROR object too large for cache") == 0);
    CHECK_EQ_INT(r.total_len, strlen(s) + 2147483647LL);

    /* a bad line with an oversized but valid length swallows it too */
    s = "set " KEY251 " 0 0 2000000\r\n";
    CHECK_EQ_INT(mc_parse(&p, s, strlen(s), &r), GW_ERROR);
    CHECK(strcmp(r.error, E_FORMAT) == 0);
    CHECK_EQ_INT(r.total_len, strlen(s) + 2000002);
}

static void test_line_too_long(void)
{
    struct mc_parser p;
    struct mc_request r;
    char buf[200];
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "get ", 4);

    mc_parser_init(&p, 64, 0);
    CHECK_EQ_INT(mc_parse(&p, buf, 63, &r), GW_AGAIN);
    CHECK_EQ_INT(p.scanned, 63);
    CHECK_EQ_INT(mc_parse(&p, buf, 64, &r), GW_ERROR);
    CHECK(strcmp(r.error, "CLIENT_ERROR line too long") == 0);
    CHECK(r.close);
    CHECK_EQ_INT(r.total_len, 64);
    CHECK_EQ_INT(p.scanned, 0);

    /* found, but longer than max_line: same answer whatever the reads */
    buf[80] = '\n';
    mc_parser_init(&p, 64, 0);
    CHECK_EQ_INT(mc_parse(&p, buf, 100, &r), GW_ERROR);
    CHECK(r.close);
    CHECK(strcmp(r.error, "CLIENT_ERROR line too long") == 0);

    /* a line of exactly max_line bytes is accepted */
    buf[80] = 'a';
    buf[62] = '\r';
    buf[63] = '\n';
    mc_parser_init(&p, 64, 0);
    CHECK_EQ_INT(mc_parse(&p, buf, 100, &r), GW_OK);
    CHECK_EQ_INT(r.cmd, MC_GET);
    CHECK_EQ_INT(r.line_len, 64);
    CHECK_EQ_INT(r.key_len, 58);

    /* a data block may be far longer than max_line */
    mc_parser_init(&p, 64, 0);
    static char big[1000];
    int n = snprintf(big, sizeof(big), "set k 0 0 900\r\n");
    memset(big + n, 'v', 900);
    memcpy(big + n + 900, "\r\n", 2);
    CHECK_EQ_INT(mc_parse(&p, big, (size_t)n + 902, &r), GW_OK);
    CHECK_EQ_INT(r.total_len, n + 902);
}

/* Resumption: every prefix of a request is GW_AGAIN, and p->scanned records
 * how far the "\n" search got. */
static void test_incomplete(void)
{
    static const char *const reqs[] = {
        "get a b c\r\n",
        "gat 10 a\r\n",
        "set k 1 2 5 noreply\r\nab\r\nc\r\n",
        "cas k 1 2 3 99\r\nabc\r\n",
        "delete k noreply\r\n",
        "incr k 1\r\n",
        "touch k 1\r\n",
        "flush_all\r\n",
        "version\r\n",
        "verbosity 1\r\n",
        "stats\r\n",
        "quit\r\n",
        "bogus\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(reqs); i++) {
        const char *s = reqs[i];
        size_t n = strlen(s);
        size_t line = (size_t)((const char *)memchr(s, '\n', n) - s) + 1;
        struct mc_parser p;
        struct mc_request r;
        mc_parser_init(&p, 0, 0);
        for (size_t k = 0; k < n; k++) {
            int rc = mc_parse(&p, s, k, &r);
            CHECK_EQ_INT(rc, GW_AGAIN);
            CHECK_EQ_INT(p.scanned, k < line ? k : line - 1);
        }
        int rc = mc_parse(&p, s, n, &r);
        CHECK(rc == (i == GW_ARRAY_LEN(reqs) - 1 ? GW_ERROR : GW_OK));
        CHECK_EQ_INT(r.total_len, n);
        CHECK_EQ_INT(p.scanned, 0);
    }
}

/* ---- the pipeline at every split point ------------------------------- */

struct rec {
    int rc;
    size_t at;  /* offset of the request in the stream */
    struct mc_request r;
};

#define MAX_RECS 256

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

/* Feed the stream as a caller would: the bytes [0, avail) have arrived; the
 * next request starts at `at`.  Parse what can be parsed. */
static void drain(struct mc_parser *p, const char *s, size_t avail,
                  size_t *at, struct rec *out, int *nout)
{
    while (*at < avail) {
        struct mc_request r;
        int rc = mc_parse(p, s + *at, avail - *at, &r);
        if (rc == GW_AGAIN)
            return;
        if (*nout < MAX_RECS) {
            out[*nout].rc = rc;
            out[*nout].at = *at;
            out[*nout].r = r;
        }
        (*nout)++;
        *at += r.total_len;  /* may run past avail: swallowed as it comes */
    }
}

static int one_shot(const char *s, size_t n, size_t max_value,
                    struct rec *out)
{
    struct mc_parser p;
    size_t at = 0;
    int nout = 0;
    mc_parser_init(&p, 0, max_value);
    drain(&p, s, n, &at, out, &nout);
    return nout;
}

static bool same_recs(const struct rec *a, int na, const struct rec *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na && i < MAX_RECS; i++)
        if (a[i].rc != b[i].rc || a[i].at != b[i].at || !req_eq(&a[i].r, &b[i].r))
            return false;
    return true;
}

static void test_pipeline_splits(void)
{
    static char s[4096];
    size_t n = 0;
#define ADD(str) (memcpy(s + n, str, sizeof(str) - 1), n += sizeof(str) - 1)
    ADD("set k1 0 0 5\r\nhello\r\n");
    ADD("get k1\r\n");
    ADD("set k2 7 100 12 noreply\r\nab\r\ncd\r\nef\r\n\r\n");  /* "\r\n" inside */
    ADD("gets k1 k2   k3 " KEY250 " k5\r\n");
    ADD("add k3 1 0 4\nx\ny\n\r\n");
    ADD("append k3 0 0 2 noreply\r\n\r\n\r\n");
    ADD("prepend k3 0 0 1\r\n\n\r\n");
    ADD("replace k3 0 0 3 \r\nabc\r\n");
    ADD("cas k1 0 0 3 12345\r\nxyz\r\n");
    ADD("cas k1 0 0 3 12345 noreply\r\nxyz\r\n");
    ADD("incr n 10\r\n");
    ADD("decr n 3 noreply\r\n");
    ADD("touch k1 60\r\n");
    ADD("touch k1 60 noreply\r\n");
    ADD("gat 30 k1 k2\r\n");
    ADD("gats 0 k1\n");
    ADD("delete k1\r\n");
    ADD("delete k2 0 noreply\r\n");
    ADD("delete k3 noreply\r\n");
    ADD("bogus command\r\n");                   /* ERROR */
    ADD("set k 0 0 3\r\nabcXY");                 /* bad data chunk */
    ADD("\r\n");                                 /* ... leaves "\r\n": ERROR */
    ADD("set " KEY251 " 0 0 2\r\nzz\r\n");       /* swallowed CLIENT_ERROR */
    ADD("incr n abc\r\n");
    ADD("get\r\n");
    ADD("set big 0 0 300 noreply\r\n");          /* too large: swallowed */
    for (int i = 0; i < 300; i++)
        s[n++] = (char)('a' + i % 26);
    ADD("\r\n");
    ADD("flush_all 0\r\n");
    ADD("flush_all noreply\r\n");
    ADD("verbosity 1 noreply\r\n");
    ADD("stats slabs\r\n");
    ADD("stats\n");
    ADD("version\r\n");
    ADD("  get   a  b  c  \r\n");
    ADD("set last 0 0 1\r\nL\r\n");
    ADD("quit\r\n");
#undef ADD

    static const struct {
        int rc;
        enum mc_cmd cmd;
    } want[] = {
        {GW_OK, MC_SET},       {GW_OK, MC_GET},      {GW_OK, MC_SET},
        {GW_OK, MC_GETS},      {GW_OK, MC_ADD},      {GW_OK, MC_APPEND},
        {GW_OK, MC_PREPEND},   {GW_OK, MC_REPLACE},  {GW_OK, MC_CAS},
        {GW_OK, MC_CAS},       {GW_OK, MC_INCR},     {GW_OK, MC_DECR},
        {GW_OK, MC_TOUCH},     {GW_OK, MC_TOUCH},    {GW_OK, MC_GAT},
        {GW_OK, MC_GATS},      {GW_OK, MC_DELETE},   {GW_OK, MC_DELETE},
        {GW_OK, MC_DELETE},    {GW_ERROR, MC_NONE},  {GW_ERROR, MC_SET},
        {GW_ERROR, MC_NONE},   {GW_ERROR, MC_SET},   {GW_ERROR, MC_INCR},
        {GW_ERROR, MC_GET},    {GW_ERROR, MC_SET},   {GW_OK, MC_FLUSH_ALL},
        {GW_OK, MC_FLUSH_ALL}, {GW_OK, MC_VERBOSITY}, {GW_OK, MC_STATS},
        {GW_OK, MC_STATS},     {GW_OK, MC_VERSION},  {GW_OK, MC_GET},
        {GW_OK, MC_SET},       {GW_OK, MC_QUIT},
    };
    const size_t max_value = 200;

    static struct rec ref[MAX_RECS], got[MAX_RECS];
    int nref = one_shot(s, n, max_value, ref);
    CHECK_EQ_INT(nref, GW_ARRAY_LEN(want));
    for (int i = 0; i < nref && i < (int)GW_ARRAY_LEN(want); i++) {
        if (ref[i].rc != want[i].rc || ref[i].r.cmd != want[i].cmd)
            fprintf(stderr, "req %d at %zu: rc %d cmd %s (%s)\n", i, ref[i].at,
                    ref[i].rc, mc_cmd_name(ref[i].r.cmd),
                    ref[i].r.error ? ref[i].r.error : "");
        CHECK_EQ_INT(ref[i].rc, want[i].rc);
        CHECK_EQ_INT(ref[i].r.cmd, want[i].cmd);
    }
    /* the whole stream was consumed, nothing more */
    if (nref > 0 && nref <= MAX_RECS)
        CHECK_EQ_INT(ref[nref - 1].at + ref[nref - 1].r.total_len, n);
    /* spot checks */
    CHECK_EQ_MEM(s + ref[2].at + ref[2].r.data_off, ref[2].r.bytes,
                 "ab\r\ncd\r\nef\r\n");
    CHECK(ref[2].r.noreply);
    CHECK_EQ_INT(ref[3].r.nkeys, 5);
    CHECK_EQ_MEM(s + ref[5].at + ref[5].r.data_off, ref[5].r.bytes, "\r\n");
    CHECK_EQ_INT(ref[9].r.cas, 12345);
    CHECK(ref[9].r.noreply);
    CHECK(strcmp(ref[20].r.error, "CLIENT_ERROR bad data chunk") == 0);
    CHECK(strcmp(ref[22].r.error, E_FORMAT) == 0);
    CHECK(strcmp(ref[25].r.error, "SERVER_ERROR object too large for cache") == 0);
    CHECK(ref[25].r.noreply);
    CHECK_EQ_MEM(s + ref[29].at + ref[29].r.args_off, ref[29].r.args_len, "slabs");
    CHECK_EQ_INT(ref[32].r.nkeys, 3);

    /* every split point: bytes [0, i) then the whole */
    int bad_splits = 0;
    for (size_t i = 0; i <= n; i++) {
        struct mc_parser p;
        size_t at = 0;
        int ngot = 0;
        mc_parser_init(&p, 0, max_value);
        drain(&p, s, i, &at, got, &ngot);
        drain(&p, s, n, &at, got, &ngot);
        if (!same_recs(ref, nref, got, ngot)) {
            if (bad_splits++ < 5)
                fprintf(stderr, "split at %zu differs\n", i);
        }
    }
    CHECK_EQ_INT(bad_splits, 0);

    /* one byte at a time */
    {
        struct mc_parser p;
        size_t at = 0;
        int ngot = 0;
        mc_parser_init(&p, 0, max_value);
        for (size_t i = 1; i <= n; i++)
            drain(&p, s, i, &at, got, &ngot);
        CHECK(same_recs(ref, nref, got, ngot));
    }

    /* two split points: [0, i), [0, j), then the whole (a sample) */
    int bad2 = 0;
    for (size_t i = 0; i <= n; i += 7) {
        for (size_t j = i; j <= n; j += 13) {
            struct mc_parser p;
            size_t at = 0;
            int ngot = 0;
            mc_parser_init(&p, 0, max_value);
            drain(&p, s, i, &at, got, &ngot);
            drain(&p, s, j, &at, got, &ngot);
            drain(&p, s, n, &at, got, &ngot);
            if (!same_recs(ref, nref, got, ngot))
                bad2++;
        }
    }
    CHECK_EQ_INT(bad2, 0);
}

/* ---- a 1 MB multi-get ------------------------------------------------ */

static void test_big_multiget(void)
{
    enum { NKEYS = 10000, KLEN = 99 };
    size_t cap = 4 + (size_t)NKEYS * (KLEN + 1) + 2;
    char *s = malloc(cap);
    CHECK(s != NULL);
    if (!s)
        return;
    size_t n = 0;
    memcpy(s, "get", 3);
    n = 3;
    for (int i = 0; i < NKEYS; i++) {
        char k[KLEN + 1];
        int l = snprintf(k, sizeof(k), "key:%05d:", i);
        memset(k + l, 'a' + i % 26, KLEN - (size_t)l);
        s[n++] = ' ';
        memcpy(s + n, k, KLEN);
        n += KLEN;
    }
    s[n++] = '\r';
    s[n++] = '\n';
    CHECK(n >= 1000000 && n < (1u << 20));

    /* arrives in 16 KB reads; every read is scanned once */
    struct mc_parser p;
    struct mc_request r;
    mc_parser_init(&p, 0, 0);
    size_t avail = 0, calls = 0;
    int rc = GW_AGAIN;
    while (rc == GW_AGAIN && avail < n) {
        size_t prev = p.scanned;
        avail = avail + 16384 < n ? avail + 16384 : n;
        rc = mc_parse(&p, s, avail, &r);
        calls++;
        if (rc == GW_AGAIN) {
            CHECK_EQ_INT(prev, avail < 16384 ? 0 : avail - 16384);
            CHECK_EQ_INT(p.scanned, avail);
        }
    }
    CHECK_EQ_INT(rc, GW_OK);
    CHECK_EQ_INT(calls, (n + 16383) / 16384);
    CHECK_EQ_INT(r.cmd, MC_GET);
    CHECK_EQ_INT(r.nkeys, NKEYS);
    CHECK_EQ_INT(r.total_len, n);
    CHECK_EQ_INT(r.keys_off, 4);
    CHECK_EQ_INT(r.keys_end, n - 2);
    CHECK_EQ_INT(r.key_off, 4);
    CHECK_EQ_INT(r.key_len, KLEN);

    uint32_t pos = r.keys_off, off, klen;
    int i = 0, bad = 0;
    while (mc_key_next(s, &r, &pos, &off, &klen)) {
        char want[16];
        int l = snprintf(want, sizeof(want), "key:%05d:", i);
        if (klen != KLEN || memcmp(s + off, want, (size_t)l) != 0 ||
            s[off + KLEN - 1] != 'a' + i % 26 ||
            off != 4 + (uint32_t)i * (KLEN + 1))
            bad++;
        i++;
    }
    CHECK_EQ_INT(i, NKEYS);
    CHECK_EQ_INT(bad, 0);

    /* one bad key among them: the whole line is a CLIENT_ERROR */
    s[4 + 5000 * (KLEN + 1) + 50] = '\x01';
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(mc_parse(&p, s, n, &r), GW_ERROR);
    CHECK(strcmp(r.error, E_FORMAT) == 0);
    CHECK_EQ_INT(r.total_len, n);
    free(s);
}

/* A storage request whose block arrives in pieces: the line is found at once
 * on every later call. */
static void test_storage_resume(void)
{
    static char s[5000];
    int line = snprintf(s, sizeof(s), "set k 0 0 4000\r\n");
    memset(s + line, 'v', 4000);
    memcpy(s + line + 4000, "\r\n", 2);
    size_t n = (size_t)line + 4002;
    struct mc_parser p;
    struct mc_request r;
    mc_parser_init(&p, 0, 0);
    for (size_t avail = (size_t)line; avail < n; avail += 100) {
        CHECK_EQ_INT(mc_parse(&p, s, avail, &r), GW_AGAIN);
        CHECK_EQ_INT(p.scanned, line - 1);
    }
    CHECK_EQ_INT(mc_parse(&p, s, n, &r), GW_OK);
    CHECK_EQ_INT(r.bytes, 4000);
    CHECK_EQ_INT(r.data_off, line);
    CHECK_EQ_INT(r.total_len, n);
    CHECK_EQ_INT(p.scanned, 0);
}

/* Control bytes in keys are refused unless the parser accepts binary keys
 * (as memcached does, and as memcaslap's keys need). */
static void test_binary_keys(void)
{
    static const char get[] = "get \x10\xb0\x10k\r\n";
    static const char set[] = "set \x10k 0 0 1\r\nx\r\n";
    struct mc_parser p;
    struct mc_request req;
    mc_parser_init(&p, 0, 0);
    CHECK_EQ_INT(mc_parse(&p, get, sizeof get - 1, &req), GW_ERROR);
    CHECK_EQ_INT(mc_parse(&p, set, sizeof set - 1, &req), GW_ERROR);
    p.binary_keys = true;
    CHECK_EQ_INT(mc_parse(&p, get, sizeof get - 1, &req), GW_OK);
    CHECK_EQ_INT(req.key_len, 4);
    CHECK_EQ_INT(mc_parse(&p, set, sizeof set - 1, &req), GW_OK);
    CHECK_EQ_INT(req.key_len, 2);
    CHECK_EQ_INT(req.total_len, sizeof set - 1);
}

/* Even with binary keys, a NUL, "\r" or "\n" inside a key is refused:
 * memcached ends the line there and would read the rest (here the data
 * block, another command) as commands of its own. */
static void test_binary_keys_never_end_a_line(void)
{
    static const char nul[] = "set app/x\0 0 0 24\r\nset admin/flag 0 0 2\r\non\r\n";
    static const char cr[] = "get a\rb\r\n";
    static const char nul_get[] = "get ok k\0x\r\n";
    struct mc_parser p;
    struct mc_request req;
    mc_parser_init(&p, 0, 0);
    p.binary_keys = true;
    CHECK_EQ_INT(mc_parse(&p, nul, sizeof nul - 1, &req), GW_ERROR);
    CHECK(strcmp(req.error, "CLIENT_ERROR bad command line format") == 0);
    /* the data block (24 bytes + "\r\n") is swallowed with the line */
    CHECK_EQ_INT(req.total_len, sizeof nul - 1);
    CHECK_EQ_INT(mc_parse(&p, cr, sizeof cr - 1, &req), GW_ERROR);
    CHECK_EQ_INT(mc_parse(&p, nul_get, sizeof nul_get - 1, &req), GW_ERROR);
    CHECK(!mc_key_allowed("a\0b", 3, true));
    CHECK(!mc_key_allowed("a\rb", 3, true));
    CHECK(!mc_key_allowed("a\nb", 3, true));
    CHECK(!mc_key_allowed("a b", 3, true));
    CHECK(mc_key_allowed("a\x01\x7f", 3, true));
    CHECK(!mc_key_allowed("a\x01\x7f", 3, false));
}

int main(void)
{
    RUN(test_names);
    RUN(test_key_valid);
    RUN(test_parser_init);
    RUN(test_get);
    RUN(test_gat);
    RUN(test_storage);
    RUN(test_delete);
    RUN(test_arith);
    RUN(test_touch);
    RUN(test_flush_all);
    RUN(test_misc);
    RUN(test_errors);
    RUN(test_bad_chunk_resync);
    RUN(test_too_large);
    RUN(test_line_too_long);
    RUN(test_incomplete);
    RUN(test_pipeline_splits);
    RUN(test_big_multiget);
    RUN(test_storage_resume);
    RUN(test_binary_keys);
    RUN(test_binary_keys_never_end_a_line);
    return unit_report("proto");
}
