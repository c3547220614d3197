/* test_hash.c -- known-answer and property tests for core/place (hash_*.c, dist_*.c).
 *
 * Where the vectors come from:
 *   crc32, md5   RFC 1321's test suite, the CRC-32 check value, and
 *                digests of other lengths computed with Python's hashlib
 *                and binascii (padding boundaries at 55/56/63/64 bytes).
 *   xxh3, jump   xxHash's sanity values; jump hash vectors shared by the
 *                reference implementations (Go, Python, Elixir ports).
 *   pymc         Debian's python-memcached 1.59 (python3-memcache),
 *                Client._get_server with _Host.connect stubbed to mark
 *                servers up or down; ">= 1.60" columns swap in the hash
 *                without the "or 1".
 *   ketama       Debian's nutcracker 0.5.0 (md5 + ketama): keys set through
 *                it and found by a direct get on each real memcached.
 *   spymemcached Debian's libspymemcached-java 2.12.3: tests/tools/
 *                SpyVectors.java builds the real ArrayModNodeLocator and
 *                KetamaNodeLocator (plain and with a weights map) over
 *                stand-in MemcachedNodes (java.lang.reflect.Proxy, so no
 *                connection) and prints DefaultHashAlgorithm's NATIVE_HASH
 *                and KETAMA_HASH, getPrimary and getSequence per key, and
 *                the TreeMap's points per server; KetamaNodeLocator with
 *                NATIVE_HASH too (the builder's CONSISTENT default).
 *   oaat, libmemcached, libmemcached-consistent
 *                Debian 12's libmemcached11 1.1.4 (the library pylibmc
 *                1.6.3 and php-memcached 3.2.0 link), called through
 *                Python's ctypes: memcached_generate_hash_value(key, len,
 *                MEMCACHED_HASH_DEFAULT) for the hash, and
 *                memcached_generate_hash() of a memcached_st set up as the
 *                clients do it (behaviors first, then
 *                memcached_server_add_with_weight per server) for the
 *                placement; a down server's column is the same client built
 *                without that server (libmemcached's auto-eject rebuild).
 *                Spot-checked with PHP's Memcached::getServerByKey; the
 *                "unsigned" column is one-at-a-time over unsigned bytes,
 *                computed in Python, to show the difference.
 *   murmur3      pymemcache 3.5.2's own murmur3_32 (Debian's
 *                python3-pymemcache, pymemcache.client.murmur3), which
 *                agrees with the reference's published values ("hello",
 *                the quick brown fox).
 *   pymemcache   the same pymemcache's HashClient(servers,
 *                allow_unicode_keys=True).hasher.get_node(key) for str keys
 *                (their UTF-8 bytes here); a down server is
 *                hasher.remove_node("host:port"), as remove_server does.
 *   gomemcache   Debian's golang-github-bradfitz-gomemcache-dev
 *                (git 2014-11-09): ServerList.SetServers(list...) then
 *                PickServer(key), built with GOPATH=/usr/share/gocode
 *                GO111MODULE=off; weights are the list with repeats.
 *   sha1         FIPS 180 examples; Ruby's Digest::SHA1.hexdigest of point
 *                names.  crc32_more: Ruby's Zlib.crc32 of "#{try}#{key}".
 *   dalli        Debian's ruby-dalli 3.0.6: Dalli::Ring.new over
 *                Dalli::Protocol::Binary servers built from the same
 *                "host:port:weight" strings, with alive? stubbed to mark
 *                servers up or down, and ring.server_for_key(key); ties
 *                from a 1,000-server ring's equal continuum values; keys
 *                whose crc32 is a chosen value (a point's value, one below
 *                it, 0, 0xffffffff) made by appending four solved bytes
 *                (crc32 is affine over GF(2)).
 *   node-memcached  npm memcached 2.2.2 with hashring 3.2.0 (node 20):
 *                new Memcached({ "host:port": weight, ... }) and
 *                HashRing#get(key) for keys given as JS strings (their
 *                UTF-8 bytes here); ties: HashRing#find of a value two
 *                points share in a 1,000-server ring.
 */
#include <stdlib.h>

#include "place/dist.h"
#include "place/hash.h"
#include "unit.h"

/* --- small functions ---------------------------------------------------- */

static void hex16(const unsigned char d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_crc32(void)
{
    unsigned char bytes[256];

    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    CHECK_EQ_INT(hash_crc32("123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(hash_crc32("", 0), 0);
    CHECK_EQ_INT(hash_crc32("a", 1), 0xe8b7be43u);
    CHECK_EQ_INT(hash_crc32("abc", 3), 0x352441c2u);
    CHECK_EQ_INT(hash_crc32("The quick brown fox jumps over the lazy dog", 43),
                 0x414fa339u);
    CHECK_EQ_INT(hash_crc32(bytes, 256), 0x29058c73u);
}

static void test_md5_rfc1321(void)
{
    static const struct { const char *in, *hex; } v[] = {
        { "", "d41d8cd98f00b204e9800998ecf8427e" },
        { "a", "0cc175b9c0f1b6a831c399e269772661" },
        { "abc", "900150983cd24fb0d6963f7d28e17f72" },
        { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
        { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
        { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
          "d174ab98d277d9f5a5611c2c9f419d9f" },
        { "1234567890123456789012345678901234567890"
          "1234567890123456789012345678901234567890",
          "57edf4a22be3c955ac49da2e2107b67a" },
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++) {
        unsigned char d[16];
        char hex[33];

        hash_md5(v[i].in, strlen(v[i].in), d);
        hex16(d, hex);
        CHECK_EQ_MEM(hex, 32, v[i].hex);
    }
}

/* Lengths around the padding boundaries: data[i] = i * 7 + 3. */
static void test_md5_lengths(void)
{
    static const struct { size_t len; const char *hex; } v[] = {
        { 55, "52c0e574e1198de5fe3f8f11440dcb1b" },
        { 56, "46c9907fc908ee68b1e7b8e71286a518" },
        { 57, "1c805dd236c35cab25fcb1bc73802c51" },
        { 63, "a62f6d59e837867693f042f5b8f5a236" },
        { 64, "7160b8fb5e9e4023d549c3971fbaeead" },
        { 65, "70bd662e7aefbda85a0f7244167b7897" },
        { 119, "e84905d4214f4d1ca56c2cdcc152b143" },
        { 120, "e3eb5a6c8669ea01a8c185b8abc8a5dc" },
        { 127, "acce2474d6cc8302120d09c818d17ef7" },
        { 128, "10b2da1a82f16d99a81a7203fe9f02cb" },
        { 129, "03fefbbcebe2959cf2270241aafe0250" },
        { 1000, "10046f077f2082ac19676b8079f1cb1a" },
    };
    unsigned char data[1000];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++) {
        unsigned char d[16];
        char hex[33];

        hash_md5(data, v[i].len, d);
        hex16(d, hex);
        CHECK_EQ_MEM(hex, 32, v[i].hex);
    }
}

static void test_xxh3(void)
{
    CHECK(hash_xxh64("", 0) == 0x2D06800538D394C2ull);
    CHECK(hash_xxh64("a", 1) == 0xE6C632B61E964E1Full);
    CHECK(hash_xxh64("abc", 3) == 0x78AF5F94892F3950ull);
}

static void test_jump_vectors(void)
{
    static const struct { uint64_t key; int32_t buckets, want; } v[] = {
        { 1, 1, 0 },          { 42, 57, 43 },        { 0xDEAD10CC, 1, 0 },
        { 0xDEAD10CC, 666, 361 }, { 256, 1024, 520 }, { 0, 1, 0 },
        { 3, 1, 0 },          { 0, 2, 0 },           { 4, 2, 1 },
        { 7, 2, 0 },          { 1, 128, 55 },        { 129, 128, 120 },
        { 128, 100000000, 38172097 },
        { 18446744073709551615ull, 128, 92 },
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++)
        CHECK_EQ_INT(hash_jump(v[i].key, v[i].buckets), v[i].want);
    CHECK_EQ_INT(hash_jump(0xDEAD10CC, 0), -1);
    CHECK_EQ_INT(hash_jump(0xDEAD10CC, -666), -1);
}

/* Jump's defining property: growing from n to n+1 buckets moves a key only
 * into the new bucket, and about 1/(n+1) of the keys move. */
static void test_jump_monotone(void)
{
    for (int32_t n = 1; n < 40; n++) {
        int moved = 0;

        for (uint64_t k = 0; k < 2000; k++) {
            uint64_t h = hash_xxh64(&k, sizeof(k));
            int32_t a = hash_jump(h, n), b = hash_jump(h, n + 1);

            CHECK(a >= 0 && a < n);
            if (a != b) {
                CHECK_EQ_INT(b, n);
                moved++;
            }
        }
        CHECK(moved > 2000 / (n + 1) / 2 && moved < 2000 * 2 / (n + 1) + 20);
    }
}

static void test_pymc_hash(void)
{
    CHECK_EQ_INT(hash_pymc("k1", 2, true), 5646);
    CHECK_EQ_INT(hash_pymc("ob", 2, true), 1);
    CHECK_EQ_INT(hash_pymc("ob", 2, false), 0);
    CHECK_EQ_INT(hash_pymc("", 0, true), 1);
    CHECK_EQ_INT(hash_pymc("", 0, false), 0);
    /* the 15-bit value is bits 16..30 of the crc */
    CHECK_EQ_INT(hash_pymc("123456789", 9, false), (0xCBF43926u >> 16) & 0x7fff);
}

/* --- distributions ------------------------------------------------------ */

static bool down_mask[64];

static bool mask_up(void *ctx, uint32_t i)
{
    (void)ctx;
    return !down_mask[i];
}

static void set_down(const char *list)  /* e.g. "02": servers 0 and 2 */
{
    memset(down_mask, 0, sizeof(down_mask));
    for (; list && *list; list++)
        down_mask[*list - '0'] = true;
}

static bool all_up(void *ctx, uint32_t i)
{
    (void)ctx;
    (void)i;
    return true;
}

static bool none_up(void *ctx, uint32_t i)
{
    (void)ctx;
    (void)i;
    return false;
}

static const struct hash_server pymc_s1[] = {
    { "a", 1, 1 }, { "b", 2, 2 }, { "c", 3, 1 },
};
static const struct hash_server pymc_s2[] = {
    { "h0", 1, 3 }, { "h1", 2, 1 }, { "h2", 3, 4 }, { "h3", 4, 1 },
    { "h4", 5, 5 },
};

/* Columns: key, len, 1.59 hash, 1.60 hash; then servers s1 (a, b x2, c):
 * all up 1.59 / 1.60, b down 1.59 / 1.60, a and c down; then s2 (weights
 * 3,1,4,1,5): all up, h2 down, h2+h4 down, h0+h2+h4 down, only h3 up,
 * h2+h4 down with the 1.60 hash.  -1: ten rehashes all hit down servers.
 * ob, "" and z*: 15-bit hash 0, so 1.59 and 1.60 differ.  r3863, r12193,
 * r26438: the first rehash (str(h) + "0") has 15-bit hash 0, so the
 * "or 1" rule also applies inside the failover walk. */
static const struct pymc_vec {
    const char *key;
    size_t len;
    int h_legacy, h_modern;
    int s1_up, s1_up_m, s1_b, s1_b_m, s1_ac;
    int s2_up, s2_d2, s2_d24, s2_d024, s2_only3, s2_d24_m;
} pymc_vecs[] = {
    { "k1", 2, 5646, 5646, 1, 1, 0, 0, 1, 2, 0, 0, -1, -1, 0 },
    { "foo", 3, 3187, 3187, 2, 2, 2, 2, 1, 4, 4, 3, 3, 3, 3 },
    { "name", 4, 24099, 24099, 2, 2, 2, 2, 1, 2, 1, 1, 1, -1, 1 },
    { "product_count", 13, 9349, 9349, 1, 1, 2, 2, 1, 4, 4, 3, 3, 3, 3 },
    { "session:abc", 11, 17413, 17413, 1, 1, 2, 2, 1, 4, 4, 0, 1, -1, 0 },
    { "0", 1, 29915, 29915, 2, 2, 2, 2, 1, 4, 4, 1, 1, -1, 1 },
    { "\xc3\xa9", 2, 3588, 3588, 0, 0, 0, 0, 1, 2, 4, 1, 1, 3, 1 },
    { "ob", 2, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "z37384", 6, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "z63051", 6, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "z118415", 7, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "z171314", 7, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "user:0", 6, 3234, 3234, 1, 1, 2, 2, 1, 0, 0, 0, -1, -1, 0 },
    { "user:3", 6, 5547, 5547, 2, 2, 2, 2, 1, 1, 1, 1, 1, 3, 1 },
    { "user:6", 6, 26049, 26049, 1, 1, 0, 0, 1, 4, 4, 1, 1, -1, 1 },
    { "user:9", 6, 30078, 30078, 1, 1, 0, 0, 1, 2, 4, 0, 3, 3, 0 },
    { "user:12", 7, 6424, 6424, 0, 0, 0, 0, 1, 4, 4, 3, 3, 3, 3 },
    { "user:15", 7, 1916, 1916, 0, 0, 0, 0, 1, 4, 4, 0, 1, -1, 0 },
    { "user:18", 7, 31181, 31181, 1, 1, 2, 2, 1, 1, 1, 1, 1, -1, 1 },
    { "user:21", 7, 11068, 11068, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "user:24", 7, 23382, 23382, 1, 1, 0, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "user:27", 7, 16991, 16991, 2, 2, 2, 2, 1, 4, 4, 0, 1, -1, 0 },
    { "a", 1, 26807, 26807, 2, 2, 2, 2, 1, 4, 4, 0, -1, -1, 0 },
    { "b", 1, 29118, 29118, 1, 1, 0, 0, 1, 4, 4, 3, 3, 3, 3 },
    { "", 0, 1, 0, 1, 0, 2, 0, 1, 0, 0, 0, 1, -1, 0 },
    { "hello", 5, 13840, 13840, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "cache/page/index.html", 21, 24788, 24788, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "\x00\x01\xff", 3, 19288, 19288, 0, 0, 0, 0, 1, 4, 4, 1, 1, -1, 1 },
    { "KEY", 3, 7223, 7223, 2, 2, 2, 2, 1, 4, 4, 3, 3, 3, 3 },
    { "key_with_a_fairly_long_name_0123456789", 38, 10380, 10380, 0, 0, 0, 0, 1, 2, 4, 3, 3, 3, 3 },
    { "r3863", 5, 15130, 15130, 1, 1, 2, 0, 1, 4, 4, 0, 3, 3, 0 },
    { "r12193", 6, 9654, 9654, 1, 1, 2, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "r26438", 6, 1666, 1666, 1, 1, 2, 0, 1, 0, 0, 0, 3, 3, 0 },
    { "obj0", 4, 12441, 12441, 1, 1, 0, 0, 1, 4, 4, 3, 3, 3, 3 },
    { "obj7919", 7, 10546, 10546, 1, 1, 2, 2, 1, 2, 0, 0, 1, -1, 0 },
    { "obj15838", 8, 29706, 29706, 1, 1, 2, 2, 1, 4, 4, 3, 3, 3, 3 },
    { "obj23757", 8, 23416, 23416, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "obj31676", 8, 2274, 2274, 1, 1, 0, 0, 1, 2, 0, 0, -1, -1, 0 },
    { "obj39595", 8, 18586, 18586, 1, 1, 0, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "obj47514", 8, 9659, 9659, 2, 2, 2, 2, 1, 4, 4, 3, 3, 3, 3 },
    { "obj55433", 8, 8002, 8002, 1, 1, 0, 0, 1, 3, 3, 3, 3, 3, 3 },
    { "obj63352", 8, 22939, 22939, 2, 2, 2, 2, 1, 2, 0, 0, -1, -1, 0 },
    { "obj71271", 8, 25615, 25615, 2, 2, 2, 2, 1, 4, 4, 0, -1, -1, 0 },
};

static void pick_pymc_case(const struct hash_server *s, uint32_t n,
                           bool legacy, const char *key, size_t len,
                           const char *down, int want, int line)
{
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("python-memcached"), legacy, s, n, err,
                                 sizeof(err)), GW_OK);
    set_down(down);
    if (dist_pick_up(&d, key, len, mask_up, NULL) != want)
        fprintf(stderr, "  pymc vector line %d key '%.*s' down '%s'\n", line,
                (int)len, key, down ? down : "");
    CHECK_EQ_INT(dist_pick_up(&d, key, len, mask_up, NULL), want);
    if (down == NULL)
        CHECK_EQ_INT(dist_pick(&d, key, len), want);
    dist_free(&d);
}

static void test_pymc_vectors(void)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(pymc_vecs); i++) {
        const struct pymc_vec *v = &pymc_vecs[i];
        const struct hash_server *s1 = pymc_s1, *s2 = pymc_s2;
        int l = (int)i;

        CHECK_EQ_INT(hash_pymc(v->key, v->len, true), v->h_legacy);
        CHECK_EQ_INT(hash_pymc(v->key, v->len, false), v->h_modern);
        pick_pymc_case(s1, 3, true, v->key, v->len, NULL, v->s1_up, l);
        pick_pymc_case(s1, 3, false, v->key, v->len, NULL, v->s1_up_m, l);
        pick_pymc_case(s1, 3, true, v->key, v->len, "1", v->s1_b, l);
        pick_pymc_case(s1, 3, false, v->key, v->len, "1", v->s1_b_m, l);
        pick_pymc_case(s1, 3, true, v->key, v->len, "02", v->s1_ac, l);
        pick_pymc_case(s2, 5, true, v->key, v->len, NULL, v->s2_up, l);
        pick_pymc_case(s2, 5, true, v->key, v->len, "2", v->s2_d2, l);
        pick_pymc_case(s2, 5, true, v->key, v->len, "24", v->s2_d24, l);
        pick_pymc_case(s2, 5, true, v->key, v->len, "024", v->s2_d024, l);
        pick_pymc_case(s2, 5, true, v->key, v->len, "0124", v->s2_only3, l);
        pick_pymc_case(s2, 5, false, v->key, v->len, "24", v->s2_d24_m, l);
    }
}

/* The issue's own examples, spelled out, plus a 250-byte key. */
static void test_pymc_examples(void)
{
    static const struct { const char *key; int want; } v[] = {
        { "k1", 1 }, { "foo", 2 }, { "name", 2 }, { "product_count", 1 },
        { "session:abc", 1 }, { "0", 2 }, { "\xc3\xa9", 0 }, { "ob", 1 },
    };
    struct hash_dist d, m;
    char err[128], x250[250];

    memset(x250, 'x', sizeof(x250));
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("python-memcached"), true, pymc_s1, 3,
                                 err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(dist_build(&m, dist_mode_find("python-memcached"), false, pymc_s1, 3,
                                 err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.nbuckets, 4);
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++)
        CHECK_EQ_INT(dist_pick(&d, v[i].key, strlen(v[i].key)), v[i].want);
    CHECK_EQ_INT(dist_pick(&m, "ob", 2), 0);
    CHECK_EQ_INT(hash_pymc(x250, 250, true), 2408);
    CHECK_EQ_INT(dist_pick(&d, x250, 250), 0);
    set_down("1");
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, mask_up, NULL), 0);
    CHECK_EQ_INT(dist_pick_up(&d, "product_count", 13, mask_up, NULL), 2);
    CHECK_EQ_INT(dist_pick_up(&d, x250, 250, mask_up, NULL), 0);
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, none_up, NULL), -1);
    dist_free(&d);
    dist_free(&m);
}

/* nutcracker pool A: 127.0.0.1 ports 21211..21213, weights 1, 2, 3. */
static const struct hash_server ketama_a[] = {
    { "127.0.0.1", 21211, 1 }, { "127.0.0.1", 21212, 2 },
    { "127.0.0.1", 21213, 3 },
};
/* Pool B: port 11211, so point names carry no port; weights 1, 1, 2. */
static const struct hash_server ketama_b[] = {
    { "127.0.0.2", 11211, 1 }, { "127.0.0.3", 11211, 1 },
    { "127.0.0.4", 11211, 2 },
};

struct ketama_vec {
    const char *key;  /* NULL: 250 x's */
    size_t len;
    int want;
};

static const struct ketama_vec ketama_a_vecs[] = {
    { "k1", 2, 2 },
    { "foo", 3, 2 },
    { "name", 4, 2 },
    { "product_count", 13, 2 },
    { "session:abc", 11, 2 },
    { "0", 1, 2 },
    { "\xc3\xa9", 2, 1 },
    { NULL /* x*250 */, 250, 2 },
    { "ob", 2, 2 },
    { "a", 1, 0 },
    { "b", 1, 2 },
    { "key:0", 5, 2 },
    { "key:7919", 8, 2 },
    { "key:15838", 9, 2 },
    { "key:23757", 9, 1 },
    { "key:31676", 9, 1 },
    { "key:39595", 9, 0 },
    { "key:47514", 9, 2 },
    { "key:55433", 9, 2 },
    { "key:63352", 9, 1 },
    { "key:71271", 9, 2 },
    { "key:79190", 9, 2 },
    { "key:87109", 9, 1 },
    { "key:95028", 9, 1 },
    { "key:102947", 10, 2 },
    { "key:110866", 10, 1 },
    { "key:118785", 10, 1 },
    { "key:126704", 10, 2 },
    { "key:134623", 10, 2 },
    { "key:142542", 10, 0 },
    { "key:150461", 10, 2 },
    { "key:158380", 10, 2 },
    { "key:166299", 10, 2 },
    { "key:174218", 10, 2 },
    { "key:182137", 10, 2 },
    { "key:190056", 10, 2 },
    { "key:197975", 10, 0 },
    { "key:205894", 10, 2 },
    { "key:213813", 10, 2 },
    { "key:221732", 10, 1 },
    { "key:229651", 10, 2 },
    { "key:237570", 10, 1 },
    { "key:245489", 10, 2 },
    { "key:253408", 10, 1 },
    { "key:261327", 10, 1 },
    { "key:269246", 10, 2 },
    { "key:277165", 10, 0 },
    { "key:285084", 10, 0 },
    { "key:293003", 10, 0 },
    { "key:300922", 10, 1 },
    { "key:308841", 10, 2 },
};
static const struct ketama_vec ketama_b_vecs[] = {
    { "k1", 2, 0 },
    { "foo", 3, 1 },
    { "name", 4, 1 },
    { "product_count", 13, 2 },
    { "session:abc", 11, 1 },
    { "0", 1, 1 },
    { "\xc3\xa9", 2, 2 },
    { NULL /* x*250 */, 250, 2 },
    { "ob", 2, 1 },
    { "a", 1, 2 },
    { "b", 1, 0 },
    { "key:0", 5, 1 },
    { "key:7919", 8, 2 },
    { "key:15838", 9, 0 },
    { "key:23757", 9, 1 },
    { "key:31676", 9, 2 },
    { "key:39595", 9, 1 },
    { "key:47514", 9, 2 },
    { "key:55433", 9, 2 },
    { "key:63352", 9, 2 },
    { "key:71271", 9, 0 },
    { "key:79190", 9, 0 },
    { "key:87109", 9, 2 },
    { "key:95028", 9, 1 },
    { "key:102947", 10, 1 },
    { "key:110866", 10, 1 },
    { "key:118785", 10, 0 },
    { "key:126704", 10, 2 },
    { "key:134623", 10, 0 },
    { "key:142542", 10, 2 },
    { "key:150461", 10, 0 },
    { "key:158380", 10, 2 },
    { "key:166299", 10, 2 },
    { "key:174218", 10, 2 },
    { "key:182137", 10, 0 },
    { "key:190056", 10, 2 },
    { "key:197975", 10, 2 },
    { "key:205894", 10, 2 },
    { "key:213813", 10, 2 },
    { "key:221732", 10, 2 },
    { "key:229651", 10, 0 },
    { "key:237570", 10, 1 },
    { "key:245489", 10, 2 },
    { "key:253408", 10, 0 },
    { "key:261327", 10, 2 },
    { "key:269246", 10, 1 },
    { "key:277165", 10, 2 },
    { "key:285084", 10, 1 },
    { "key:293003", 10, 0 },
    { "key:300922", 10, 2 },
    { "key:308841", 10, 2 },
};
/* Pool C: 25 equal-weight servers 127.0.0.10 .. 127.0.0.34 on 11211. */
static const struct ketama_vec ketama_c_vecs[] = {
    { "k1", 2, 24 },
    { "foo", 3, 24 },
    { "name", 4, 16 },
    { "product_count", 13, 17 },
    { "session:abc", 11, 4 },
    { "0", 1, 2 },
    { "\xc3\xa9", 2, 10 },
    { NULL /* x*250 */, 250, 3 },
    { "ob", 2, 20 },
    { "a", 1, 10 },
    { "b", 1, 22 },
    { "key:0", 5, 3 },
    { "key:7919", 8, 3 },
    { "key:15838", 9, 16 },
    { "key:23757", 9, 20 },
    { "key:31676", 9, 8 },
    { "key:39595", 9, 6 },
    { "key:47514", 9, 16 },
    { "key:55433", 9, 15 },
    { "key:63352", 9, 6 },
    { "key:71271", 9, 14 },
    { "key:79190", 9, 4 },
    { "key:87109", 9, 15 },
    { "key:95028", 9, 3 },
    { "key:102947", 10, 7 },
    { "key:110866", 10, 8 },
    { "key:118785", 10, 13 },
    { "key:126704", 10, 23 },
    { "key:134623", 10, 16 },
    { "key:142542", 10, 24 },
    { "key:150461", 10, 6 },
    { "key:158380", 10, 22 },
    { "key:166299", 10, 8 },
    { "key:174218", 10, 12 },
    { "key:182137", 10, 20 },
    { "key:190056", 10, 3 },
    { "key:197975", 10, 12 },
    { "key:205894", 10, 11 },
    { "key:213813", 10, 22 },
    { "key:221732", 10, 8 },
    { "key:229651", 10, 23 },
    { "key:237570", 10, 6 },
    { "key:245489", 10, 19 },
    { "key:253408", 10, 9 },
    { "key:261327", 10, 2 },
    { "key:269246", 10, 21 },
    { "key:277165", 10, 23 },
    { "key:285084", 10, 16 },
    { "key:293003", 10, 6 },
    { "key:300922", 10, 12 },
    { "key:308841", 10, 17 },
    /* keys that move if the point count is computed in double (160 per
     * server) instead of twemproxy's float (156) */
    { "key:688953", 10, 4 },
    { "key:807738", 10, 4 },
    { "key:1449177", 11, 16 },
    { "key:2185644", 11, 19 },
    { "key:2233158", 11, 21 },
    { "key:2375700", 11, 3 },
    { "key:2446971", 11, 11 },
    { "key:2969625", 11, 20 },
    { "key:3080491", 11, 19 },
    { "key:3215114", 11, 4 },
    { "key:3238871", 11, 22 },
    { "key:3286385", 11, 12 },
};

static void check_ketama_vecs(const struct hash_server *s, uint32_t n,
                              const struct ketama_vec *v, size_t nv)
{
    struct hash_dist d;
    char err[128], x250[250];

    memset(x250, 'x', sizeof(x250));
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, s, n, err,
                                 sizeof(err)), GW_OK);
    for (size_t i = 0; i < nv; i++) {
        const char *key = v[i].key ? v[i].key : x250;
        uint32_t got = dist_pick(&d, key, v[i].len);

        if ((int)got != v[i].want)
            fprintf(stderr, "  ketama key '%.*s'\n", (int)v[i].len, key);
        CHECK_EQ_INT(got, v[i].want);
        CHECK_EQ_INT(dist_pick_up(&d, key, v[i].len, all_up, NULL),
                     v[i].want);
    }
    dist_free(&d);
}

static void test_ketama_nutcracker_vectors(void)
{
    struct hash_server c[25];
    char hosts[25][16];

    for (int i = 0; i < 25; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "127.0.0.%d", 10 + i);
        c[i] = (struct hash_server){ hosts[i], 11211, 1 };
    }
    check_ketama_vecs(ketama_a, 3, ketama_a_vecs, GW_ARRAY_LEN(ketama_a_vecs));
    check_ketama_vecs(ketama_b, 3, ketama_b_vecs, GW_ARRAY_LEN(ketama_b_vecs));
    check_ketama_vecs(c, 25, ketama_c_vecs, GW_ARRAY_LEN(ketama_c_vecs));
}

static uint32_t count_points(const struct hash_dist *d, uint32_t server)
{
    uint32_t c = 0;

    for (uint32_t i = 0; i < d->npoints; i++)
        c += d->points[i].server == server;
    return c;
}

/* Point counts follow twemproxy's float formula, and the ring is sorted. */
static void test_ketama_points(void)
{
    struct hash_dist d;
    char err[128];
    struct hash_server many[61];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, ketama_a, 3, err,
                                 sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 480);
    CHECK_EQ_INT(count_points(&d, 0), 80);
    CHECK_EQ_INT(count_points(&d, 1), 160);
    CHECK_EQ_INT(count_points(&d, 2), 240);
    for (uint32_t i = 1; i < d.npoints; i++)
        CHECK(d.points[i - 1].value <= d.points[i].value);
    dist_free(&d);

    for (int i = 0; i < 61; i++)
        many[i] = (struct hash_server){ "10.0.0.1", (uint16_t)(20000 + i), 1 };
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, many, 25, err,
                                 sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 25 * 156);
    dist_free(&d);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, many, 24, err,
                                 sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 24 * 160);
    dist_free(&d);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, many, 61, err,
                                 sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 61 * 156);
    dist_free(&d);
}

/* The binary search agrees with a linear scan, including the wrap. */
static void test_ketama_search(void)
{
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, ketama_a, 3, err,
                                 sizeof(err)), GW_OK);
    for (uint32_t k = 0; k < 5000; k++) {
        char key[16];
        unsigned char dg[16];
        int len = snprintf(key, sizeof(key), "s%u", k);
        uint32_t h, want = d.points[0].server;

        hash_md5(key, (size_t)len, dg);
        h = (uint32_t)dg[3] << 24 | (uint32_t)dg[2] << 16 |
            (uint32_t)dg[1] << 8 | dg[0];
        for (uint32_t i = 0; i < d.npoints; i++)
            if (d.points[i].value >= h) {
                want = d.points[i].server;
                break;
            }
        CHECK_EQ_INT(dist_pick(&d, key, (size_t)len), want);
    }
    dist_free(&d);
}

/* pick_up: keys of up servers stay put; keys of a down server go to the
 * owner of the next point on the ring that belongs to an up server. */
static void test_ketama_pick_up(void)
{
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, ketama_a, 3, err,
                                 sizeof(err)), GW_OK);
    set_down("2");
    for (uint32_t k = 0; k < 3000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "u%u", k);
        uint32_t p = dist_pick(&d, key, (size_t)len);
        int32_t q = dist_pick_up(&d, key, (size_t)len, mask_up, NULL);

        if (p != 2) {
            CHECK_EQ_INT(q, p);
        } else {
            /* find the point the key landed on, then walk */
            unsigned char dg[16];
            uint32_t h, i = 0;

            hash_md5(key, (size_t)len, dg);
            h = (uint32_t)dg[3] << 24 | (uint32_t)dg[2] << 16 |
                (uint32_t)dg[1] << 8 | dg[0];
            while (i < d.npoints && d.points[i].value < h)
                i++;
            for (;; i++) {
                if (i == d.npoints)
                    i = 0;
                if (d.points[i].server != 2)
                    break;
            }
            CHECK_EQ_INT(q, d.points[i].server);
        }
    }
    set_down("012");
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, mask_up, NULL), -1);
    dist_free(&d);
}

static void test_jump_dist(void)
{
    static const struct hash_server s[] = {
        { "a", 1, 1 }, { "b", 2, 2 }, { "c", 3, 1 },
    };
    struct hash_dist d, d4;
    char err[128];
    int count[3] = { 0 }, moved_ok = 1;

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("jump"), false, s, 3, err,
                                 sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.nbuckets, 4);
    /* weights: b has two of the four buckets */
    for (uint32_t k = 0; k < 20000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "j%u", k);
        uint32_t p = dist_pick(&d, key, (size_t)len);

        CHECK(p < 3);
        count[p]++;
        CHECK_EQ_INT(p, d.buckets[hash_jump(hash_xxh64(key, (size_t)len), 4)]);
    }
    CHECK(count[0] > 4500 && count[0] < 5500);
    CHECK(count[1] > 9500 && count[1] < 10500);
    CHECK(count[2] > 4500 && count[2] < 5500);

    /* adding a server (appended) moves keys only onto it */
    {
        static const struct hash_server s4[] = {
            { "a", 1, 1 }, { "b", 2, 2 }, { "c", 3, 1 }, { "d", 4, 1 },
        };
        CHECK_EQ_INT(dist_build(&d4, dist_mode_find("jump"), false, s4, 4, err,
                                     sizeof(err)), GW_OK);
        for (uint32_t k = 0; k < 5000; k++) {
            char key[16];
            int len = snprintf(key, sizeof(key), "j%u", k);
            uint32_t a = dist_pick(&d, key, (size_t)len);
            uint32_t b = dist_pick(&d4, key, (size_t)len);

            if (a != b && b != 3)
                moved_ok = 0;
        }
        CHECK(moved_ok);
        dist_free(&d4);
    }

    /* pick_up: up servers keep their keys; down ones' keys go elsewhere,
     * deterministically; nothing up gives -1. */
    set_down("1");
    for (uint32_t k = 0; k < 3000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "j%u", k);
        uint32_t p = dist_pick(&d, key, (size_t)len);
        int32_t q = dist_pick_up(&d, key, (size_t)len, mask_up, NULL);

        if (p != 1)
            CHECK_EQ_INT(q, p);
        else
            CHECK(q == 0 || q == 2);
        CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL), q);
    }
    /* with only one server up every key still finds it (fallback walk) */
    set_down("01");
    for (uint32_t k = 0; k < 3000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "j%u", k);

        CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL), 2);
    }
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, none_up, NULL), -1);
    dist_free(&d);
}

static const struct { const char *key; int up, b_down; } jump_regress[] = {
    { "k1", 1, 2 },
    { "foo", 1, 2 },
    { "name", 2, 2 },
    { "product_count", 1, 2 },
    { "session:abc", 2, 2 },
    { "0", 2, 2 },
    { "ob", 2, 2 },
    { "user:1", 1, 0 },
    { "user:2", 0, 0 },
    { "user:3", 1, 0 },
    { "user:4", 1, 2 },
    { "user:5", 2, 2 },
    { "user:6", 1, 2 },
    { "user:7", 1, 0 },
    { "user:8", 1, 2 },
    { "user:9", 1, 2 },
    { "alpha", 1, 0 },
    { "beta", 1, 2 },
    { "gamma", 0, 0 },
    { "delta", 1, 0 },
};

/* Regression guard: jump placements computed by this implementation (not
 * an outside reference; XXH3 and jump are each checked against one above). */
static void test_jump_regression(void)
{
    static const struct hash_server s[] = {
        { "a", 1, 1 }, { "b", 2, 2 }, { "c", 3, 1 },
    };
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("jump"), false, s, 3, err,
                                 sizeof(err)), GW_OK);
    for (size_t i = 0; i < GW_ARRAY_LEN(jump_regress); i++) {
        const char *k = jump_regress[i].key;

        CHECK_EQ_INT(dist_pick(&d, k, strlen(k)), jump_regress[i].up);
        set_down("1");
        CHECK_EQ_INT(dist_pick_up(&d, k, strlen(k), mask_up, NULL),
                     jump_regress[i].b_down);
    }
    dist_free(&d);
}

/* --- dalli and node-memcached ------------------------------------------- */

static void test_sha1(void)
{
    static const struct { const char *in; size_t len; const char *hex; } v[] = {
        { "", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
        { "abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
        { "a.example:11211:0", 17, "f039f2876b3a2ebb5864ed670183ad75f616c17d" },
        { "::1:11213:70", 12, "e1b4cab9e2124dfb76a16325c1498408209726f6" },
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++) {
        unsigned char d[20];
        char hex[41];

        hash_sha1(v[i].in, v[i].len, d);
        for (int b = 0; b < 20; b++)
            snprintf(hex + 2 * b, 3, "%02x", d[b]);
        CHECK_EQ_MEM(hex, 40, v[i].hex);
    }
}

static void test_crc32_more(void)
{
    CHECK_EQ_INT(hash_crc32_more(hash_crc32("12345", 5), "6789", 4), 0xCBF43926u);
    CHECK_EQ_INT(hash_crc32_more(0, "123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(hash_crc32_more(hash_crc32("0", 1), "k1", 2), 217943764u);
    CHECK_EQ_INT(hash_crc32_more(hash_crc32("18", 2), "k1", 2), 2491172518u);
}

/* Dalli's "a.example:11211:1", "b.example:22122:5", "c.example:11212:2",
 * "[::1]:11213:1": IPv6 is named "::1:11213" in its points. */
static const struct hash_server dalli_s[] = {
    { "a.example", 11211, 1 }, { "b.example", 22122, 5 },
    { "c.example", 11212, 2 }, { "::1", 11213, 1 },
};

/* Columns: key, len; all up, 1 down, 1+2 down, 0+1+2 down, all down.
 * -1: Dalli's 20 looks all hit down servers (RingError).  The "edge" keys
 * have crc32 0, 11330787 (one below the first point), 11330788 (the first
 * point), 11914623, 11914624 (one below and at the second point, server
 * 1's), 712303641, 712303642, 4286897328, 4286897329 (the last point, server
 * 0's) and 0xffffffff: below the first point wraps to the LAST point, and a
 * hash equal to a point takes that point.  "t1" finds server 3 on the 20th
 * look with 0, 1, 2 down; "t21" needs a 21st, so it fails. */
static const struct dalli_vec {
    const char *key;
    size_t len;
    int up, d1, d12, d012, dall;
} dalli_vecs[] = {
    { "k1", 2, 1, 2, 3, 3, -1 },
    { "foo", 3, 1, 2, 3, 3, -1 },
    { "user:42", 7, 1, 0, 0, 3, -1 },
    { "session:abc", 11, 1, 2, 0, -1, -1 },
    { "\xc3""\xa9""t\xc3""\xa9", 5, 1, 0, 0, -1, -1 },
    { "\x80""\xff""!", 3, 2, 2, 3, 3, -1 },
    { "cache/page/index.html", 21, 1, 0, 0, 3, -1 },
    { "a", 1, 1, 2, 0, 3, -1 },
    { "0", 1, 1, 2, 0, 3, -1 },
    { NULL, 250, 1, 0, 0, -1, -1 },     /* 250 'y's */
    { "edge\xfb""\xd9""\xdf""\x18", 8, 0, 0, 0, 3, -1 },
    { "edge=a\x82""\x13", 8, 0, 0, 0, -1, -1 },
    { "edge9xF~", 8, 0, 0, 0, -1, -1 },
    { "edge\xff""\xd0""\xc2""T", 8, 0, 0, 0, 3, -1 },
    { "edge&\xa0""\xa8""[", 8, 1, 0, 0, 3, -1 },
    { "edge\x1d""\xe3""R\x15", 8, 1, 3, 3, 3, -1 },
    { "edge\x9f""\xef""\xb0""\xa3", 8, 1, 3, 3, 3, -1 },
    { "edge\xa6""\xdd""\x85""\xcc", 8, 1, 3, 3, 3, -1 },
    { "edge\xe7""\xdb""\xf4""\x17", 8, 0, 0, 0, 3, -1 },
    { "edge\x99"",\xf9""\x8a", 8, 0, 0, 0, 3, -1 },
    { "t1", 2, 1, 2, 0, 3, -1 },
    { "t21", 3, 1, 2, 0, -1, -1 },
};

static void test_dalli_vectors(void)
{
    static const char *const downs[] = { "", "1", "12", "012", "0123" };
    struct hash_dist d;
    char err[128], y250[250];

    memset(y250, 'y', sizeof(y250));
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("dalli"), false, dalli_s, 4, err,
                            sizeof(err)), GW_OK);
    /* floor(4 * 160 * w / 9): 71, 355, 142, 71 */
    CHECK_EQ_INT(d.npoints, 639);
    CHECK_EQ_INT(count_points(&d, 1), 355);
    CHECK_EQ_INT(count_points(&d, 2), 142);
    CHECK_EQ_INT(d.points[0].value, 11330788u);
    CHECK_EQ_INT(d.points[d.npoints - 1].value, 4286897329u);
    for (size_t i = 0; i < GW_ARRAY_LEN(dalli_vecs); i++) {
        const struct dalli_vec *v = &dalli_vecs[i];
        const char *key = v->key ? v->key : y250;
        const int want[] = { v->up, v->d1, v->d12, v->d012, v->dall };

        if ((int)dist_pick(&d, key, v->len) != v->up)
            fprintf(stderr, "  dalli key %zu\n", i);
        CHECK_EQ_INT(dist_pick(&d, key, v->len), v->up);
        for (size_t c = 0; c < GW_ARRAY_LEN(downs); c++) {
            set_down(downs[c]);
            if (dist_pick_up(&d, key, v->len, mask_up, NULL) != want[c])
                fprintf(stderr, "  dalli key %zu, down %s\n", i, downs[c]);
            CHECK_EQ_INT(dist_pick_up(&d, key, v->len, mask_up, NULL), want[c]);
        }
    }
    dist_free(&d);
}

/* Equal continuum values: Dalli's stable sort_by keeps them in server
 * order and its search takes the last, so the higher server wins.  Keys
 * "tie" + 4 bytes with crc32 2084160607 (servers 186 and 192 share it),
 * 2084160606 (just below), 2705610418 (788, 876), 2730508963 (670, 935). */
static void test_dalli_ties(void)
{
    static const struct { const char *key; int want; } v[] = {
        { "tiel\x0f""\xc8""\x98", 192 },
        { "tie-\x09""\xb9""C", 27 },
        { "tie\xfb""\xfb""\x15""R", 876 },
        { "tieC8\x83""\x84", 935 },
    };
    static struct hash_server s[1000];
    static char hosts[1000][16];
    struct hash_dist d;
    char err[128];

    for (int i = 0; i < 1000; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "h%d.example", i);
        s[i] = (struct hash_server){ hosts[i], 11211, 1 };
    }
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("dalli"), false, s, 1000, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 160000);
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++)
        CHECK_EQ_INT(dist_pick(&d, v[i].key, 7), v[i].want);
    dist_free(&d);
}

/* Point counts: Dalli multiplies before it divides, in double. */
static void test_dalli_points(void)
{
    static const struct hash_server big[] = {
        { "a", 1, 375131 }, { "b", 2, 125248 }, { "c", 3, 302905 },
    };
    struct hash_server many[25];
    struct hash_dist d;
    char err[128];

    for (int i = 0; i < 25; i++)
        many[i] = (struct hash_server){ "10.0.0.1", (uint16_t)(20000 + i), 1 };
    for (uint32_t n = 7; n <= 25; n += 7 + 4 * (n == 14)) {   /* 7, 14, 25 */
        CHECK_EQ_INT(dist_build(&d, dist_mode_find("dalli"), false, many, n, err,
                                sizeof(err)), GW_OK);
        CHECK_EQ_INT(d.npoints, n * 160);   /* w / sum first: 159 at 7, 14 */
        dist_free(&d);
    }
    /* floor(480 * w / 803284): 224, 74, 180 (a float division: 181) */
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("dalli"), false, big, 3, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(count_points(&d, 0), 224);
    CHECK_EQ_INT(count_points(&d, 1), 74);
    CHECK_EQ_INT(count_points(&d, 2), 180);
    dist_free(&d);
    /* one server: no ring; it, or nothing when it is down */
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("dalli"), false, big, 1, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 0);
    CHECK_EQ_INT(dist_pick(&d, "k1", 2), 0);
    set_down("");
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, mask_up, NULL), 0);
    set_down("0");
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, mask_up, NULL), -1);
    dist_free(&d);
}

/* new Memcached({ "a.example:11211": 1, "b.example:22122": 5,
 * "c.example:11212": 2, "d.example": 1 }): a host without a port is
 * 11211's, named "d.example-i" like "a.example-i". */
static const struct hash_server node_s[] = {
    { "a.example", 11211, 1 }, { "b.example", 22122, 5 },
    { "c.example", 11212, 2 }, { "d.example", 11211, 1 },
};

static const struct ketama_vec node_vecs[] = {
    { "k1", 2, 1 },
    { "foo", 3, 1 },
    { "user:42", 7, 2 },
    { "session:abc", 11, 2 },
    { "\xc3""\xa9""t\xc3""\xa9", 5, 3 },
    { "\xce""\xa9""\xce""\xbc""\xce""\xad""\xce""\xb3""\xce""\xb1", 10, 2 },
    { "cache/page/index.html", 21, 1 },
    { "a", 1, 1 },
    { "0", 1, 1 },
    { "ab", 2, 1 },
    { "key:1", 5, 3 },
    { "key:2", 5, 1 },
    { "key:3", 5, 1 },
    { "key:4", 5, 2 },
    { "key:5", 5, 0 },
    { "key:6", 5, 1 },
    { "key:7", 5, 1 },
    { "key:8", 5, 3 },
    { "key:9", 5, 2 },
    { "\xc3""\xbf", 2, 2 },
};

static void test_node_memcached_vectors(void)
{
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("node-memcached"), false, node_s, 4, err,
                            sizeof(err)), GW_OK);
    /* floor(w / 9 * 40 * 4) digests x 4: 68, 352, 140, 68 */
    CHECK_EQ_INT(d.npoints, 628);
    CHECK_EQ_INT(count_points(&d, 0), 68);
    CHECK_EQ_INT(count_points(&d, 1), 352);
    CHECK_EQ_INT(count_points(&d, 2), 140);
    CHECK_EQ_INT(d.points[0].value, 12633542u);
    CHECK_EQ_INT(d.points[d.npoints - 1].value, 4293052661u);
    for (size_t i = 0; i < GW_ARRAY_LEN(node_vecs); i++) {
        CHECK_EQ_INT(dist_pick(&d, node_vecs[i].key, node_vecs[i].len), node_vecs[i].want);
        CHECK_EQ_INT(dist_pick_up(&d, node_vecs[i].key, node_vecs[i].len, all_up, NULL),
                     node_vecs[i].want);
    }
    /* past the last point: the first */
    CHECK_EQ_INT(dist_ring_successor(&d, 4293052662u), 0);
    CHECK_EQ_INT(dist_ring_successor(&d, 12633542u), 0);
    CHECK_EQ_INT(dist_ring_successor(&d, 12633543u), 1);
    dist_free(&d);
}

/* Equal values (HashRing#find of a value two servers' points share in a
 * 1,000-server ring): the first of them, the lower server, as the stable
 * sort left them.  Counts: 7 equal servers get 39 digests in double. */
static void test_node_memcached_points(void)
{
    static const struct { uint32_t value; int want; } ties[] = {
        { 667352913u, 282 }, { 768103211u, 156 }, { 4114234979u, 8 },
        { 4283323340u, 524 },
    };
    static struct hash_server s[1000];
    static char hosts[1000][16];
    struct hash_dist d;
    char err[128];

    for (int i = 0; i < 1000; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "h%d.example", i);
        s[i] = (struct hash_server){ hosts[i], 11211, 1 };
    }
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("node-memcached"), false, s, 1000, err,
                            sizeof(err)), GW_OK);
    for (size_t i = 0; i < GW_ARRAY_LEN(ties); i++)
        CHECK_EQ_INT(d.points[dist_ring_successor(&d, ties[i].value)].server, ties[i].want);
    dist_free(&d);
    for (uint32_t n = 7; n <= 28; n += 7) {     /* 7, 14, 21, 28 */
        CHECK_EQ_INT(dist_build(&d, dist_mode_find("node-memcached"), false, s, n, err,
                                sizeof(err)), GW_OK);
        CHECK_EQ_INT(d.npoints, n * (n == 21 ? 160 : 156));
        dist_free(&d);
    }
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("node-memcached"), false, s, 25, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 25 * 160);          /* single precision: 156 */
    dist_free(&d);
}

/* pick_up: memcached 2.2.2's remove: true rebuilds the ring without the
 * dead server; at equal weights where the survivors keep 40 digests (4
 * servers, one removed) that is the walk: HashRing#remove then #get for
 * "key:1".."key:9" on 127.0.0.1:30000..30003 with 30001 removed. */
static void test_node_memcached_pick_up(void)
{
    static const struct hash_server s[] = {
        { "127.0.0.1", 30000, 1 }, { "127.0.0.1", 30001, 1 },
        { "127.0.0.1", 30002, 1 }, { "127.0.0.1", 30003, 1 },
    };
    static const int want[] = { 0, 0, 2, 3, 3, 2, 0, 2, 3 };  /* 1, 5, 7 were 1's */
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("node-memcached"), false, s, 4, err,
                            sizeof(err)), GW_OK);
    set_down("1");
    for (int k = 1; k <= 9; k++) {
        char key[8];
        int len = snprintf(key, sizeof(key), "key:%d", k);

        CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL), want[k - 1]);
    }
    set_down("0123");
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, mask_up, NULL), -1);
    dist_free(&d);
}

static void test_mode_parse(void)
{
    CHECK(dist_mode_find("python-memcached") != NULL);
    CHECK(dist_mode_find("ketama") != NULL);
    CHECK(dist_mode_find("jump") != NULL);
    CHECK(dist_mode_find("dalli") != NULL);
    CHECK(dist_mode_find("node-memcached") != NULL);
    CHECK(dist_mode_find("Ketama") == NULL);
    CHECK(dist_mode_find("") == NULL);
    CHECK(dist_mode_find(NULL) == NULL);
    /* The table is the one list of names, the default first. */
    CHECK(strcmp(dist_mode_name(0), "python-memcached") == 0);
    for (int i = 0; dist_mode_name(i); i++)
        CHECK(dist_mode_find(dist_mode_name(i)) != NULL);
}

static void test_build_errors(void)
{
    static const struct hash_server zero_w[] = { { "a", 1, 1 }, { "b", 2, 0 } };
    static const struct hash_server heavy[] = { { "a", 1, 2000000 } };
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, zero_w, 0, err,
                                 sizeof(err)), GW_ERROR);
    CHECK(strstr(err, "no servers") != NULL);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("jump"), false, zero_w, 2, err,
                                 sizeof(err)), GW_ERROR);
    CHECK(strstr(err, "weight") != NULL);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("python-memcached"), true, heavy, 1, err,
                                 sizeof(err)), GW_ERROR);
    CHECK(d.buckets == NULL && d.points == NULL);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("ketama"), false, heavy, 1, err,
                                 sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 160);
    dist_free(&d);
    dist_free(&d);  /* idempotent */
    CHECK(d.points == NULL);
}

/* --- libmemcached: one-at-a-time, modula, consistent ------------------- */

static const struct { const char *key; size_t len; uint32_t h, h_unsigned; } oaat_vecs[] = {
    { "", 0, 0x00000000u, 0x00000000u },
    { "a", 1, 0xca2e9442u, 0xca2e9442u },
    { "hello", 5, 0xc8fd181bu, 0xc8fd181bu },
    { "123456789", 9, 0xc66b58c5u, 0xc66b58c5u },
    { "user:42", 7, 0x303f6feau, 0x303f6feau },
    { "\x80", 1, 0xc31d4e27u, 0x277fcedbu },
    { "\xff", 1, 0xae65a494u, 0xc7b20f1du },
    { "\xc3\xa9t\xc3\xa9", 5, 0x7fcb4b35u, 0x46fdbf25u },
    { "key\x7f\x80\x81", 6, 0x1cdffd3eu, 0xf8297728u },
};

/* libmemcached's one-at-a-time widens each byte as a signed char. */
static void test_oaat(void)
{
    unsigned char bytes[255];
    char x250[250];

    for (size_t i = 0; i < GW_ARRAY_LEN(oaat_vecs); i++) {
        uint32_t h = hash_oaat(oaat_vecs[i].key, oaat_vecs[i].len);

        CHECK_EQ_INT(h, oaat_vecs[i].h);
        if (oaat_vecs[i].h != oaat_vecs[i].h_unsigned)
            CHECK(h != oaat_vecs[i].h_unsigned);
    }
    for (int i = 0; i < 255; i++)
        bytes[i] = (unsigned char)(i + 1);
    CHECK_EQ_INT(hash_oaat(bytes, sizeof(bytes)), 0xd4dded1eu);  /* unsigned: 0xef2a46bd */
    memset(x250, 'x', sizeof(x250));
    CHECK_EQ_INT(hash_oaat(x250, sizeof(x250)), 0x0316a9feu);
}

static const struct hash_server lmc_s3[] = {
    { "10.0.0.1", 11211, 1 }, { "10.0.0.2", 11211, 2 }, { "10.0.0.3", 22122, 3 },
};
static const struct hash_server lmc_s3_equal[] = {
    { "10.0.0.1", 11211, 1 }, { "10.0.0.2", 11211, 1 }, { "10.0.0.3", 22122, 1 },
};
static const struct hash_server lmc_s5[] = {
    { "cache0.example", 11211, 1 }, { "cache1.example", 11211, 1 },
    { "cache2.example", 11211, 1 }, { "cache3.example", 11211, 1 },
    { "cache4.example", 11211, 1 },
};

/* Columns, all from libmemcached 1.1.4:
 *   mod3     default (modula) over lmc_s3: the weights 1,2,3 change nothing
 *   mod5     default over lmc_s5
 *   con3     MEMCACHED_BEHAVIOR_KETAMA over lmc_s3_equal (100 oaat points)
 *   wcon3    MEMCACHED_BEHAVIOR_KETAMA, then lmc_s3 added with weights
 *            1,2,3 (weighted md5 ring, oaat key hash)
 *   ket3     MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED over lmc_s3 (= hash "ketama")
 *   con3_d1  con3 with server 1 gone; con3_d02 with servers 0 and 2 gone */
static const struct lmc_vec {
    const char *key;
    size_t len;
    int mod3, mod5, con3, wcon3, ket3, con3_d1, con3_d02;
} lmc_vecs[] = {
    { "k1", 2, 1, 0, 2, 2, 2, 2, 1 },
    { "foo", 3, 0, 0, 1, 2, 1, 2, 1 },
    { "name", 4, 2, 2, 2, 1, 1, 2, 1 },
    { "product_count", 13, 0, 4, 2, 1, 0, 2, 1 },
    { "session:abc", 11, 0, 0, 0, 1, 0, 0, 1 },
    { "0", 1, 0, 4, 2, 2, 2, 2, 1 },
    { "a", 1, 0, 2, 0, 1, 1, 0, 1 },
    { "b", 1, 2, 3, 2, 2, 2, 2, 1 },
    { "hello", 5, 0, 4, 1, 1, 1, 0, 1 },
    { "user:1", 6, 2, 1, 0, 2, 1, 0, 1 },
    { "user:2", 6, 2, 1, 0, 1, 2, 0, 1 },
    { "user:3", 6, 2, 2, 0, 2, 2, 0, 1 },
    { "user:4", 6, 0, 3, 2, 0, 1, 2, 1 },
    { "user:5", 6, 2, 0, 1, 2, 1, 0, 1 },
    { "user:6", 6, 2, 2, 2, 1, 1, 2, 1 },
    { "\xc3\xa9", 2, 2, 2, 2, 1, 0, 2, 1 },
    { "\x80", 1, 2, 1, 0, 1, 1, 0, 1 },
    { "\xff\xfe", 2, 2, 0, 1, 1, 1, 0, 1 },
    { "caf\xc3\xa9", 5, 1, 3, 1, 1, 2, 0, 1 },
    { "key\x80\x81\x82", 6, 2, 0, 0, 1, 0, 0, 1 },
    { "KEY", 3, 1, 3, 2, 1, 2, 2, 1 },
    { "cache/page/index.html", 21, 0, 2, 1, 2, 2, 0, 1 },
    { "obj7919", 7, 1, 1, 0, 1, 2, 0, 1 },
    { "obj15838", 8, 1, 0, 2, 0, 2, 2, 1 },
};

static void build_ok(struct hash_dist *d, const char *mode,
                     const struct hash_server *s, uint32_t n)
{
    char err[128];

    CHECK_EQ_INT(dist_build(d, dist_mode_find(mode), false, s, n, err,
                            sizeof(err)), GW_OK);
}

static void test_libmemcached_vectors(void)
{
    struct hash_dist mod3, mod5, con3, wcon3, ket3;

    build_ok(&mod3, "libmemcached", lmc_s3, 3);
    build_ok(&mod5, "libmemcached", lmc_s5, 5);
    build_ok(&con3, "libmemcached-consistent", lmc_s3_equal, 3);
    build_ok(&wcon3, "libmemcached-consistent", lmc_s3, 3);
    build_ok(&ket3, "ketama", lmc_s3, 3);
    for (size_t i = 0; i < GW_ARRAY_LEN(lmc_vecs); i++) {
        const struct lmc_vec *v = &lmc_vecs[i];

        if ((int)dist_pick(&con3, v->key, v->len) != v->con3 ||
            (int)dist_pick(&wcon3, v->key, v->len) != v->wcon3)
            fprintf(stderr, "  libmemcached vector %zu\n", i);
        CHECK_EQ_INT(dist_pick(&mod3, v->key, v->len), v->mod3);
        CHECK_EQ_INT(dist_pick(&mod5, v->key, v->len), v->mod5);
        CHECK_EQ_INT(dist_pick(&con3, v->key, v->len), v->con3);
        CHECK_EQ_INT(dist_pick(&wcon3, v->key, v->len), v->wcon3);
        CHECK_EQ_INT(dist_pick(&ket3, v->key, v->len), v->ket3);
        CHECK_EQ_INT(dist_pick_up(&con3, v->key, v->len, all_up, NULL), v->con3);
        set_down("1");
        CHECK_EQ_INT(dist_pick_up(&con3, v->key, v->len, mask_up, NULL), v->con3_d1);
        set_down("02");
        CHECK_EQ_INT(dist_pick_up(&con3, v->key, v->len, mask_up, NULL), v->con3_d02);
    }
    CHECK_EQ_INT(dist_pick_up(&con3, "k1", 2, none_up, NULL), -1);
    dist_free(&mod3);
    dist_free(&mod5);
    dist_free(&con3);
    dist_free(&wcon3);
    dist_free(&ket3);
}

/* 25 servers of weight 2 (so libmemcached weights the ring): pct * 160 / 4
 * * 25 is just under 40 in float, 39 in floor, 156 points per server; in
 * double it would be 160, and these keys would go to the server in the
 * comment.  From libmemcached 1.1.4 (MEMCACHED_BEHAVIOR_KETAMA, then the
 * servers 127.0.0.10 .. 127.0.0.34 port 11211 weight 2). */
static const struct { const char *key; size_t len; int want; } lmc25_vecs[] = {
    { "key:23", 6, 22 },    /* double: 6 */
    { "key:40", 6, 4 },     /* double: 9 */
    { "key:116", 7, 22 },   /* double: 11 */
    { "key:149", 7, 10 },   /* double: 1 */
    { "key:166", 7, 4 },    /* double: 1 */
    { "key:219", 7, 13 },   /* double: 24 */
    { "key:250", 7, 21 },   /* double: 24 */
    { "key:302", 7, 19 },   /* double: 4 */
    { "key:322", 7, 3 },    /* double: 8 */
    { "key:341", 7, 4 },    /* double: 18 */
};

static void test_libmemcached_consistent_25(void)
{
    struct hash_server c[25];
    char hosts[25][16];
    struct hash_dist d;

    for (int i = 0; i < 25; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "127.0.0.%d", 10 + i);
        c[i] = (struct hash_server){ hosts[i], 11211, 2 };
    }
    build_ok(&d, "libmemcached-consistent", c, 25);
    CHECK_EQ_INT(d.npoints, 25 * 156);
    for (size_t i = 0; i < GW_ARRAY_LEN(lmc25_vecs); i++)
        CHECK_EQ_INT(dist_pick(&d, lmc25_vecs[i].key, lmc25_vecs[i].len),
                     lmc25_vecs[i].want);
    dist_free(&d);
    /* every weight 1: the unweighted ring, 100 points each */
    for (int i = 0; i < 25; i++)
        c[i].weight = 1;
    build_ok(&d, "libmemcached-consistent", c, 25);
    CHECK_EQ_INT(d.npoints, 25 * 100);
    dist_free(&d);
}

/* Modula: one server takes every key; down servers pass the key to the
 * next server in list order (the gateway's rule: libmemcached has none). */
static void test_libmemcached_modula(void)
{
    struct hash_dist d;
    int count[3] = { 0 };

    build_ok(&d, "libmemcached", lmc_s3, 1);
    CHECK_EQ_INT(dist_pick(&d, "k1", 2), 0);
    dist_free(&d);
    build_ok(&d, "libmemcached", lmc_s3, 3);
    CHECK(d.buckets == NULL && d.points == NULL);
    for (uint32_t k = 0; k < 3000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "m%u", k);
        uint32_t p = dist_pick(&d, key, (size_t)len);

        CHECK_EQ_INT(p, hash_oaat(key, (size_t)len) % 3);
        count[p]++;
        set_down("1");
        CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL),
                     p == 1 ? 2 : (int)p);
        set_down("2");
        CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL),
                     p == 2 ? 0 : (int)p);
        set_down("12");
        CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL), 0);
    }
    /* weights are ignored: about a third each */
    for (int i = 0; i < 3; i++)
        CHECK(count[i] > 850 && count[i] < 1150);
    CHECK_EQ_INT(dist_pick_up(&d, "k1", 2, none_up, NULL), -1);
    dist_free(&d);
}

/* --- pymemcache (rendezvous over murmur3) -------------------------------- */

static void test_murmur3(void)
{
    static const struct { const char *in; size_t len; uint32_t seed, want; } v[] = {
        { "", 0, 0x0u, 0x00000000u },
        { "", 0, 0x1u, 0x514e28b7u },
        { "a", 1, 0x0u, 0x3c2569b2u },
        { "ab", 2, 0x0u, 0x9bbfd75fu },
        { "abc", 3, 0x0u, 0xb3dd93fau },
        { "abcd", 4, 0x0u, 0x43ed676au },
        { "abcde", 5, 0x0u, 0xe89b9af6u },
        { "hello", 5, 0x0u, 0x248bfa47u },
        { "hello, world", 12, 0x0u, 0x149bbb7fu },
        { "The quick brown fox jumps over the lazy dog", 43, 0x0u, 0x2e4ff723u },
        { "The quick brown fox jumps over the lazy dog", 43, 0x9747b28cu, 0x2fa826cdu },
        { "\xff\xfe\x80\x01", 4, 0x0u, 0xd8bbc5b8u },
        { "127.0.0.1:11211-foo", 19, 0x0u, 0x20f9d679u },
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++) {
        struct murmur3 m, copy;

        CHECK_EQ_INT(hash_murmur3_32(v[i].in, v[i].len, v[i].seed), v[i].want);
        /* fed in two parts, from a copy of the state: the same */
        murmur3_init(&m, v[i].seed);
        murmur3_update(&m, v[i].in, v[i].len / 3);
        copy = m;
        murmur3_update(&copy, v[i].in + v[i].len / 3, v[i].len - v[i].len / 3);
        CHECK_EQ_INT(murmur3_final(&copy), v[i].want);
    }
    /* split at every point, and byte by byte */
    for (size_t cut = 0; cut <= 43; cut++) {
        const char *fox = v[9].in;
        struct murmur3 m;

        murmur3_init(&m, 0);
        murmur3_update(&m, fox, cut);
        murmur3_update(&m, fox + cut, 43 - cut);
        CHECK_EQ_INT(murmur3_final(&m), 0x2e4ff723u);
        murmur3_init(&m, 0);
        for (size_t i = 0; i < 43; i++)
            murmur3_byte(&m, (uint8_t)fox[i]);
        CHECK_EQ_INT(murmur3_final(&m), 0x2e4ff723u);
    }
}

static const struct hash_server pymemcache_s[] = {
    { "10.0.0.1", 11211, 1 }, { "10.0.0.2", 11211, 1 },
    { "10.0.0.3", 11212, 1 }, { "cache-a.example", 11211, 1 },
};

/* key (UTF-8 of the str the app passed; NULL: 250 x), its length, then the
 * server: all up; 1 down; 0 and 2 down; only 2 up. */
static const struct { const char *key; size_t len; int up, d1, d02, d013; } pymemcache_vecs[] = {
    { "foo", 3, 0, 0, 3, 2 },
    { "bar", 3, 1, 0, 1, 2 },
    { "k1", 2, 0, 0, 3, 2 },
    { "user:1", 6, 3, 3, 3, 2 },
    { "user:2", 6, 0, 0, 3, 2 },
    { "user:3", 6, 1, 0, 1, 2 },
    { "session:abc", 11, 2, 2, 3, 2 },
    { "product_count", 13, 0, 0, 1, 2 },
    { "a", 1, 1, 0, 1, 2 },
    { "", 0, 1, 0, 1, 2 },
    { NULL, 250, 1, 0, 1, 2 },
    { "caf\xc3\xa9", 5, 1, 3, 1, 2 },
    { "\xc3\xa9t\xc3\xa9", 5, 0, 0, 3, 2 },
    { "\xc5\x81\xc3\xb3" "d\xc5\xba", 7, 3, 3, 3, 2 },
    { "\xe2\x98\x83snow", 7, 2, 2, 3, 2 },
    { "\xf0\x9f\x98\x80grin", 8, 2, 2, 1, 2 },
    { "\xe4\xb8\xad\xe6\x96\x87\xe9\x94\xae", 9, 1, 2, 1, 2 },
    { "key-\xdf\xbf-\xc2\xa1", 9, 1, 0, 1, 2 },
    { "mixed:\xc4\x80\xc8\x80\xcc\x80", 12, 3, 3, 3, 2 },
};

static void test_pymemcache_vectors(void)
{
    struct hash_dist d;
    char err[128], x250[250];

    memset(x250, 'x', sizeof(x250));
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("pymemcache"), false, pymemcache_s, 4,
                            err, sizeof(err)), GW_OK);
    for (size_t i = 0; i < GW_ARRAY_LEN(pymemcache_vecs); i++) {
        const char *k = pymemcache_vecs[i].key ? pymemcache_vecs[i].key : x250;
        size_t len = pymemcache_vecs[i].len;

        CHECK_EQ_INT(dist_pick(&d, k, len), pymemcache_vecs[i].up);
        CHECK_EQ_INT(dist_pick_up(&d, k, len, all_up, NULL), pymemcache_vecs[i].up);
        set_down("1");
        CHECK_EQ_INT(dist_pick_up(&d, k, len, mask_up, NULL), pymemcache_vecs[i].d1);
        set_down("02");
        CHECK_EQ_INT(dist_pick_up(&d, k, len, mask_up, NULL), pymemcache_vecs[i].d02);
        set_down("013");
        CHECK_EQ_INT(dist_pick_up(&d, k, len, mask_up, NULL), pymemcache_vecs[i].d013);
    }
    CHECK_EQ_INT(dist_pick_up(&d, "foo", 3, none_up, NULL), -1);

    /* Keys past 256 bytes take the other path (decoded per server):
     * RendezvousHash.get_node of 300 z, 150 e-acute (300 bytes), 128
     * e-acute (256 bytes), 256 q and a snowman (259 bytes). */
    {
        char k[300];

        memset(k, 'z', 300);
        CHECK_EQ_INT(dist_pick(&d, k, 300), 2);
        for (int i = 0; i < 150; i++)
            memcpy(k + 2 * i, "\xc3\xa9", 2);
        CHECK_EQ_INT(dist_pick(&d, k, 300), 0);
        CHECK_EQ_INT(dist_pick(&d, k, 256), 0);
        memset(k, 'q', 256);
        memcpy(k + 256, "\xe2\x98\x83", 3);
        CHECK_EQ_INT(dist_pick(&d, k, 259), 1);
    }
    dist_free(&d);
}

/* Ties: "A:1" and "\u0141:1" hash alike (pymemcache keeps ord(c) & 0xff,
 * and U+0141 & 0xff is 'A'), so every key ties between them and goes to
 * max() of the names, U+0141, in either list order; "B:1" wins some keys
 * outright.  Picks from HashClient for the first ten keys above. */
static void test_pymemcache_ties(void)
{
    static const struct hash_server s1[] = {
        { "A", 1, 1 }, { "\xc5\x81", 1, 1 }, { "B", 1, 1 },
    };
    static const struct hash_server s2[] = {
        { "\xc5\x81", 1, 1 }, { "A", 1, 1 }, { "B", 1, 1 },
    };
    static const int want1[10] = { 2, 1, 2, 1, 1, 1, 2, 1, 1, 1 };
    static const int want2[10] = { 2, 0, 2, 0, 0, 0, 2, 0, 0, 0 };
    struct hash_dist d1, d2;
    char err[128];

    CHECK_EQ_INT(dist_build(&d1, dist_mode_find("pymemcache"), false, s1, 3, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(dist_build(&d2, dist_mode_find("pymemcache"), false, s2, 3, err,
                            sizeof(err)), GW_OK);
    for (int i = 0; i < 10; i++) {
        const char *k = pymemcache_vecs[i].key;
        size_t len = pymemcache_vecs[i].len;

        CHECK_EQ_INT(dist_pick(&d1, k, len), want1[i]);
        CHECK_EQ_INT(dist_pick(&d2, k, len), want2[i]);
        /* with the U+0141 server down the tie is gone: "A" takes its keys */
        set_down(want1[i] == 1 ? "1" : "");
        CHECK_EQ_INT(dist_pick_up(&d1, k, len, mask_up, NULL), want1[i] == 1 ? 0 : 2);
    }
    dist_free(&d1);
    dist_free(&d2);
}

/* Rendezvous: the list order never matters, and dropping a server moves
 * only its own keys. */
static void test_pymemcache_props(void)
{
    static const struct hash_server rev[] = {
        { "cache-a.example", 11211, 1 }, { "10.0.0.3", 11212, 1 },
        { "10.0.0.2", 11211, 1 }, { "10.0.0.1", 11211, 1 },
    };
    static const struct hash_server heavy[] = { { "a", 1, 1 }, { "b", 1, 2 } };
    struct hash_dist d, r;
    char err[128];
    int count[4] = { 0 };

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("pymemcache"), false, pymemcache_s, 4,
                            err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(dist_build(&r, dist_mode_find("pymemcache"), false, rev, 4, err,
                            sizeof(err)), GW_OK);
    set_down("2");
    for (uint32_t k = 0; k < 20000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "r%u", k);
        uint32_t p = dist_pick(&d, key, (size_t)len);

        count[p]++;
        CHECK_EQ_INT(dist_pick(&r, key, (size_t)len), 3 - p);
        if (p != 2)
            CHECK_EQ_INT(dist_pick_up(&d, key, (size_t)len, mask_up, NULL), p);
    }
    for (int i = 0; i < 4; i++)
        CHECK(count[i] > 4500 && count[i] < 5500);
    dist_free(&d);
    dist_free(&r);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("pymemcache"), false, heavy, 2, err,
                            sizeof(err)), GW_ERROR);
    CHECK(strstr(err, "weight") != NULL);
}

/* --- gomemcache (crc32 % n over the list with repeats) ------------------- */

static void test_gomemcache_vectors(void)
{
    static const struct hash_server w[] = {
        { "10.0.0.1", 11211, 1 }, { "10.0.0.2", 11211, 2 }, { "10.0.0.3", 11211, 3 },
    };
    static const struct hash_server e[] = {
        { "10.0.0.1", 11211, 1 }, { "10.0.0.2", 11211, 1 }, { "10.0.0.3", 11211, 1 },
    };
    /* key; server for the list 1, 2, 2, 3, 3, 3 (weights 1, 2, 3); for 1, 2, 3 */
    static const struct { const char *key; int w, e; } v[] = {
        { "foo", 2, 2 }, { "bar", 1, 2 }, { "k1", 1, 1 }, { "user:1", 0, 0 },
        { "user:2", 2, 1 }, { "user:3", 0, 0 }, { "session:abc", 1, 1 },
        { "product_count", 0, 0 }, { "a", 2, 0 }, { "", 0, 0 },
        { "~!@#$%^&*()_+{}|:<>?", 2, 0 },
    };
    struct hash_dist dw, de, d1;
    char err[128], longkey[300];

    CHECK_EQ_INT(dist_build(&dw, dist_mode_find("gomemcache"), false, w, 3, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(dist_build(&de, dist_mode_find("gomemcache"), false, e, 3, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(dw.nbuckets, 6);
    for (size_t i = 0; i < GW_ARRAY_LEN(v); i++) {
        size_t len = strlen(v[i].key);

        CHECK_EQ_INT(dist_pick(&dw, v[i].key, len), v[i].w);
        CHECK_EQ_INT(dist_pick(&de, v[i].key, len), v[i].e);
        CHECK_EQ_INT(dist_pick_up(&dw, v[i].key, len, all_up, NULL), v[i].w);
    }
    /* 250 x; 256 y; 256 y + "tail-is-not-hashed" (PickServer hashes the
     * first 256 bytes only) */
    memset(longkey, 'x', 250);
    CHECK_EQ_INT(dist_pick(&dw, longkey, 250), 1);
    CHECK_EQ_INT(dist_pick(&de, longkey, 250), 2);
    memset(longkey, 'y', 256);
    memcpy(longkey + 256, "tail-is-not-hashed", 18);
    CHECK_EQ_INT(dist_pick(&dw, longkey, 256), 2);
    CHECK_EQ_INT(dist_pick(&de, longkey, 256), 1);
    CHECK_EQ_INT(dist_pick(&dw, longkey, 274), 2);
    CHECK_EQ_INT(dist_pick(&de, longkey, 274), 1);

    /* one server takes every key */
    CHECK_EQ_INT(dist_build(&d1, dist_mode_find("gomemcache"), false, w, 1, err,
                            sizeof(err)), GW_OK);
    CHECK_EQ_INT(dist_pick(&d1, "foo", 3), 0);
    dist_free(&d1);

    /* pick_up (the gateway's own: gomemcache has no failover): the next
     * bucket whose server is up */
    set_down("2");
    for (uint32_t k = 0; k < 3000; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "g%u", k);
        uint32_t b = hash_crc32(key, (size_t)len) % 6, want = dw.buckets[b];

        if (want == 2)
            want = 0;   /* buckets 3, 4, 5 are server 2; the next is 0 */
        CHECK_EQ_INT(dist_pick_up(&dw, key, (size_t)len, mask_up, NULL), want);
    }
    CHECK_EQ_INT(dist_pick_up(&dw, "foo", 3, none_up, NULL), -1);
    dist_free(&dw);
    dist_free(&de);
}

/* --- spymemcached ------------------------------------------------------- */

/* Java's String.hashCode (NATIVE_HASH) and KETAMA_HASH of each key, from
 * spymemcached 2.12.3's DefaultHashAlgorithm.hash on the Java String whose
 * UTF-8 is the C string: non-ASCII keys of 2, 3 and 4 UTF-8 bytes (U+1F600
 * is a surrogate pair in Java), "Aa"/"BB" (a hashCode collision),
 * "polygenelubricants" (hashCode Integer.MIN_VALUE). */
static const struct spy_hash_vec {
    const char *key;  /* NULL: 250 x's */
    size_t len;
    uint32_t native, ketama;
} spy_hash_vecs[] = {
    { "k1", 2, 0x00000d26u, 0x7ab137b6u },
    { "foo", 3, 0x00018cc6u, 0xdb18bdacu },
    { "name", 4, 0x00337a8bu, 0x1c9368b0u },
    { "product_count", 13, 0x51b9d1bfu, 0xa1244829u },
    { "session:abc", 11, 0xfe9d1d7eu, 0x0d7b6032u },
    { "0", 1, 0x00000030u, 0x8420cdcfu },
    { "a", 1, 0x00000061u, 0xb975c10cu },
    { "b", 1, 0x00000062u, 0xfe5feb92u },
    { "hello", 5, 0x05e918d2u, 0x2a40415du },
    { "KEY", 3, 0x0001223fu, 0xe049593bu },
    { "\xc3\xa9", 2, 0x000000e9u, 0x97cddd66u },
    { "caf\xc3\xa9", 5, 0x002e7a21u, 0xe47f1107u },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 0x018b8997u, 0xf80a1100u },
    { "\xf0\x9f\x98\x80", 4, 0x001b0d63u, 0xc3ea022au },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 0x18e2412fu, 0x36458a18u },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 0x001ffc3eu, 0x2753971au },
    { "polygenelubricants", 18, 0x80000000u, 0x8d26e71au },
    { "Aa", 2, 0x00000840u, 0x548d5698u },
    { "BB", 2, 0x00000840u, 0x48903d9du },
    { "user:42", 7, 0xf73a5c8du, 0x18dfda56u },
    { "cache/page/index.html", 21, 0xa910823au, 0x91d717c1u },
    { NULL /* 250 x */, 250, 0x5188d300u, 0x4b51c179u },
    { "key:0", 5, 0x061389d5u, 0x82ab86dfu },
    { "key:7919", 8, 0x1bb8b4c5u, 0x9f4467a2u },
    { "key:15838", 9, 0x5b079f1eu, 0xd4e2f769u },
    { "key:23757", 9, 0x5b14ca5du, 0xefc8b213u },
    { "key:31676", 9, 0x5b21f59cu, 0xcad130e6u },
    { "key:39595", 9, 0x5b259510u, 0x17f37517u },
    { "key:47514", 9, 0x5b32c2dau, 0x6843df10u },
    { "key:55433", 9, 0x5b3fee19u, 0x545c5d6eu },
    { "key:63352", 9, 0x5b4d1958u, 0x80f8a1a5u },
    { "key:71271", 9, 0x5b5a4497u, 0x0c1a4cd1u },
    { "key:79190", 9, 0x5b5de40bu, 0x42eb9485u },
    { "key:87109", 9, 0x5b6b11c0u, 0xcbaf2a9au },
    { "key:95028", 9, 0x5b783cffu, 0xf6323b90u },
    { "key:102947", 10, 0x05a32b24u, 0x147b71c2u },
    { "key:110866", 10, 0x05b05663u, 0xc9438d8eu },
    { "key:118785", 10, 0x05b3f5d7u, 0x9189a233u },
    { "key:126704", 10, 0x05c123a1u, 0x0c899797u },
    { "key:134623", 10, 0x05ce4ee0u, 0x3d3a1164u },
    { "key:142542", 10, 0x05db7a1fu, 0xfc50603eu },
    { "key:150461", 10, 0x05e8a55eu, 0x27377071u },
    { "key:158380", 10, 0x05ec44d2u, 0x63cfe492u },
    { "key:166299", 10, 0x05f96ffcu, 0x77f84e5au },
    { "key:174218", 10, 0x06069dc6u, 0x787513deu },
    { "key:182137", 10, 0x0613c905u, 0x778dc1b0u },
};

/* Where spymemcached sends each key, as MemcachedConnection tries nodes:
 * getPrimary(key), then getSequence(key) in order (FailureMode.
 * Redistribute takes the first active one).  Server indexes are the
 * gateway's (a server listed k times for weight k counts as one). */
struct spy_order_vec {
    const char *key;  /* NULL: 250 x's */
    size_t len;
    int n;
    int order[8];
};

/* ArrayModNodeLocator + NATIVE_HASH, 127.0.0.1:21211..21213. */
static const struct spy_order_vec spy_mod3_vecs[] = {
    { "k1", 2, 3, { 0, 1, 2 } },
    { "foo", 3, 3, { 0, 1, 2 } },
    { "name", 4, 3, { 0, 1, 2 } },
    { "product_count", 13, 3, { 0, 1, 2 } },
    { "session:abc", 11, 3, { 2, 0, 1 } },
    { "0", 1, 3, { 0, 1, 2 } },
    { "a", 1, 3, { 1, 2, 0 } },
    { "b", 1, 3, { 2, 0, 1 } },
    { "hello", 5, 3, { 1, 2, 0 } },
    { "KEY", 3, 3, { 2, 0, 1 } },
    { "\xc3\xa9", 2, 3, { 2, 0, 1 } },
    { "caf\xc3\xa9", 5, 3, { 0, 1, 2 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 3, { 2, 0, 1 } },
    { "\xf0\x9f\x98\x80", 4, 3, { 1, 2, 0 } },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 3, { 2, 0, 1 } },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 3, { 0, 1, 2 } },
    { "polygenelubricants", 18, 3, { 2, 0, 1 } },
    { "Aa", 2, 3, { 0, 1, 2 } },
    { "BB", 2, 3, { 0, 1, 2 } },
    { "user:42", 7, 3, { 1, 2, 0 } },
    { "cache/page/index.html", 21, 3, { 1, 2, 0 } },
    { NULL /* 250 x */, 250, 3, { 2, 0, 1 } },
    { "key:0", 5, 3, { 0, 1, 2 } },
    { "key:7919", 8, 3, { 0, 1, 2 } },
    { "key:15838", 9, 3, { 2, 0, 1 } },
    { "key:23757", 9, 3, { 1, 2, 0 } },
    { "key:31676", 9, 3, { 0, 1, 2 } },
    { "key:39595", 9, 3, { 2, 0, 1 } },
    { "key:47514", 9, 3, { 1, 2, 0 } },
    { "key:55433", 9, 3, { 0, 1, 2 } },
    { "key:63352", 9, 3, { 2, 0, 1 } },
    { "key:71271", 9, 3, { 1, 2, 0 } },
    { "key:79190", 9, 3, { 0, 1, 2 } },
    { "key:87109", 9, 3, { 2, 0, 1 } },
    { "key:95028", 9, 3, { 1, 2, 0 } },
    { "key:102947", 10, 3, { 1, 2, 0 } },
    { "key:110866", 10, 3, { 0, 1, 2 } },
    { "key:118785", 10, 3, { 2, 0, 1 } },
    { "key:126704", 10, 3, { 1, 2, 0 } },
    { "key:134623", 10, 3, { 0, 1, 2 } },
    { "key:142542", 10, 3, { 2, 0, 1 } },
    { "key:150461", 10, 3, { 1, 2, 0 } },
    { "key:158380", 10, 3, { 0, 1, 2 } },
    { "key:166299", 10, 3, { 2, 0, 1 } },
    { "key:174218", 10, 3, { 1, 2, 0 } },
    { "key:182137", 10, 3, { 0, 1, 2 } },
};
/* the same servers listed 1, 2 and 3 times (weights 1, 2, 3). */
static const struct spy_order_vec spy_mod6_vecs[] = {
    { "k1", 2, 6, { 0, 1, 1, 2, 2, 2 } },
    { "foo", 3, 6, { 0, 1, 1, 2, 2, 2 } },
    { "name", 4, 6, { 2, 2, 2, 0, 1, 1 } },
    { "product_count", 13, 6, { 2, 2, 2, 0, 1, 1 } },
    { "session:abc", 11, 6, { 1, 2, 2, 2, 0, 1 } },
    { "0", 1, 6, { 0, 1, 1, 2, 2, 2 } },
    { "a", 1, 6, { 1, 1, 2, 2, 2, 0 } },
    { "b", 1, 6, { 1, 2, 2, 2, 0, 1 } },
    { "hello", 5, 6, { 2, 2, 0, 1, 1, 2 } },
    { "KEY", 3, 6, { 2, 0, 1, 1, 2, 2 } },
    { "\xc3\xa9", 2, 6, { 2, 0, 1, 1, 2, 2 } },
    { "caf\xc3\xa9", 5, 6, { 2, 2, 2, 0, 1, 1 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 6, { 2, 0, 1, 1, 2, 2 } },
    { "\xf0\x9f\x98\x80", 4, 6, { 1, 1, 2, 2, 2, 0 } },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 6, { 2, 0, 1, 1, 2, 2 } },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 6, { 0, 1, 1, 2, 2, 2 } },
    { "polygenelubricants", 18, 6, { 1, 2, 2, 2, 0, 1 } },
    { "Aa", 2, 6, { 0, 1, 1, 2, 2, 2 } },
    { "BB", 2, 6, { 0, 1, 1, 2, 2, 2 } },
    { "user:42", 7, 6, { 1, 1, 2, 2, 2, 0 } },
    { "cache/page/index.html", 21, 6, { 2, 2, 0, 1, 1, 2 } },
    { NULL /* 250 x */, 250, 6, { 1, 2, 2, 2, 0, 1 } },
    { "key:0", 5, 6, { 2, 2, 2, 0, 1, 1 } },
    { "key:7919", 8, 6, { 2, 2, 2, 0, 1, 1 } },
    { "key:15838", 9, 6, { 1, 2, 2, 2, 0, 1 } },
    { "key:23757", 9, 6, { 1, 1, 2, 2, 2, 0 } },
    { "key:31676", 9, 6, { 0, 1, 1, 2, 2, 2 } },
    { "key:39595", 9, 6, { 1, 2, 2, 2, 0, 1 } },
    { "key:47514", 9, 6, { 2, 2, 0, 1, 1, 2 } },
    { "key:55433", 9, 6, { 2, 2, 2, 0, 1, 1 } },
    { "key:63352", 9, 6, { 1, 2, 2, 2, 0, 1 } },
    { "key:71271", 9, 6, { 1, 1, 2, 2, 2, 0 } },
    { "key:79190", 9, 6, { 2, 2, 2, 0, 1, 1 } },
    { "key:87109", 9, 6, { 1, 2, 2, 2, 0, 1 } },
    { "key:95028", 9, 6, { 1, 1, 2, 2, 2, 0 } },
    { "key:102947", 10, 6, { 2, 2, 0, 1, 1, 2 } },
    { "key:110866", 10, 6, { 2, 2, 2, 0, 1, 1 } },
    { "key:118785", 10, 6, { 2, 0, 1, 1, 2, 2 } },
    { "key:126704", 10, 6, { 1, 1, 2, 2, 2, 0 } },
    { "key:134623", 10, 6, { 0, 1, 1, 2, 2, 2 } },
    { "key:142542", 10, 6, { 2, 0, 1, 1, 2, 2 } },
    { "key:150461", 10, 6, { 2, 2, 0, 1, 1, 2 } },
    { "key:158380", 10, 6, { 0, 1, 1, 2, 2, 2 } },
    { "key:166299", 10, 6, { 1, 2, 2, 2, 0, 1 } },
    { "key:174218", 10, 6, { 2, 2, 0, 1, 1, 2 } },
    { "key:182137", 10, 6, { 2, 2, 2, 0, 1, 1 } },
};
/* KetamaNodeLocator + KETAMA_HASH, no weights, 127.0.0.1:21211..21213. Java: points: 480 {n0=160, n1=160, n2=160} key0=127.0.0.1:21211-0 */
static const struct spy_order_vec spy_ket3_vecs[] = {
    { "k1", 2, 8, { 2, 2, 1, 0, 1, 0, 2, 0 } },
    { "foo", 3, 8, { 2, 2, 1, 0, 0, 1, 2, 1 } },
    { "name", 4, 8, { 2, 2, 2, 1, 0, 2, 0, 2 } },
    { "product_count", 13, 8, { 0, 0, 0, 2, 1, 2, 0, 2 } },
    { "session:abc", 11, 8, { 1, 1, 0, 0, 2, 2, 2, 1 } },
    { "0", 1, 8, { 0, 0, 2, 2, 1, 0, 0, 1 } },
    { "a", 1, 8, { 0, 0, 1, 2, 2, 0, 2, 0 } },
    { "b", 1, 8, { 2, 2, 0, 2, 0, 2, 1, 2 } },
    { "hello", 5, 8, { 1, 1, 0, 0, 1, 1, 2, 0 } },
    { "KEY", 3, 8, { 1, 1, 2, 0, 2, 0, 2, 1 } },
    { "\xc3\xa9", 2, 8, { 1, 1, 2, 0, 0, 2, 2, 2 } },
    { "caf\xc3\xa9", 5, 8, { 2, 2, 1, 1, 1, 1, 0, 0 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 8, { 2, 2, 0, 0, 0, 1, 0, 2 } },
    { "\xf0\x9f\x98\x80", 4, 8, { 0, 0, 1, 0, 1, 2, 2, 0 } },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 8, { 2, 2, 2, 1, 0, 1, 0, 0 } },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 8, { 0, 0, 2, 0, 1, 0, 0, 2 } },
    { "polygenelubricants", 18, 8, { 0, 0, 1, 2, 0, 2, 1, 2 } },
    { "Aa", 2, 8, { 2, 2, 0, 0, 1, 1, 0, 0 } },
    { "BB", 2, 8, { 2, 2, 1, 2, 0, 2, 0, 0 } },
    { "user:42", 7, 8, { 0, 0, 0, 0, 0, 1, 1, 2 } },
    { "cache/page/index.html", 21, 8, { 1, 1, 1, 2, 1, 2, 2, 2 } },
    { NULL /* 250 x */, 250, 8, { 0, 0, 2, 0, 2, 1, 1, 2 } },
    { "key:0", 5, 8, { 2, 2, 2, 1, 1, 0, 0, 0 } },
    { "key:7919", 8, 8, { 0, 0, 1, 0, 1, 1, 0, 1 } },
    { "key:15838", 9, 8, { 2, 2, 1, 2, 1, 1, 0, 2 } },
    { "key:23757", 9, 8, { 1, 1, 1, 1, 1, 0, 0, 1 } },
    { "key:31676", 9, 8, { 0, 0, 0, 0, 1, 0, 2, 1 } },
    { "key:39595", 9, 8, { 0, 0, 0, 0, 0, 0, 2, 0 } },
    { "key:47514", 9, 8, { 1, 1, 0, 0, 0, 0, 1, 2 } },
    { "key:55433", 9, 8, { 2, 2, 1, 0, 1, 1, 0, 1 } },
    { "key:63352", 9, 8, { 1, 1, 1, 0, 1, 2, 1, 2 } },
    { "key:71271", 9, 8, { 1, 1, 0, 0, 2, 0, 1, 2 } },
    { "key:79190", 9, 8, { 2, 2, 1, 2, 1, 0, 0, 2 } },
    { "key:87109", 9, 8, { 1, 1, 1, 1, 2, 2, 2, 1 } },
    { "key:95028", 9, 8, { 1, 1, 2, 1, 2, 1, 2, 0 } },
    { "key:102947", 10, 8, { 2, 2, 0, 1, 0, 2, 0, 1 } },
    { "key:110866", 10, 8, { 1, 1, 2, 2, 2, 2, 0, 2 } },
    { "key:118785", 10, 8, { 1, 1, 0, 1, 1, 1, 0, 2 } },
    { "key:126704", 10, 8, { 1, 1, 0, 2, 2, 1, 2, 2 } },
    { "key:134623", 10, 8, { 0, 0, 2, 0, 0, 0, 0, 2 } },
    { "key:142542", 10, 8, { 0, 0, 1, 2, 0, 2, 0, 2 } },
    { "key:150461", 10, 8, { 0, 0, 2, 2, 2, 2, 0, 1 } },
    { "key:158380", 10, 8, { 2, 2, 2, 0, 2, 0, 1, 2 } },
    { "key:166299", 10, 8, { 0, 0, 2, 1, 2, 2, 0, 2 } },
    { "key:174218", 10, 8, { 0, 0, 1, 2, 1, 2, 2, 2 } },
    { "key:182137", 10, 8, { 2, 2, 0, 0, 2, 1, 2, 0 } },
};
/* the same, 127.0.0.2..4:11211 (spymemcached keeps the port in the name). Java: points: 480 {n0=160, n1=160, n2=160} key0=127.0.0.2:11211-0 */
static const struct spy_order_vec spy_ket11211_vecs[] = {
    { "k1", 2, 8, { 2, 2, 0, 2, 0, 2, 0, 1 } },
    { "foo", 3, 8, { 1, 1, 1, 1, 1, 0, 2, 2 } },
    { "name", 4, 8, { 1, 1, 0, 2, 2, 2, 1, 1 } },
    { "product_count", 13, 8, { 1, 1, 1, 1, 1, 2, 0, 2 } },
    { "session:abc", 11, 8, { 1, 1, 0, 2, 0, 1, 0, 2 } },
    { "0", 1, 8, { 2, 2, 0, 1, 2, 2, 0, 0 } },
    { "a", 1, 8, { 2, 2, 0, 1, 2, 1, 2, 2 } },
    { "b", 1, 8, { 2, 2, 2, 2, 2, 1, 2, 1 } },
    { "hello", 5, 8, { 0, 0, 2, 0, 0, 2, 2, 0 } },
    { "KEY", 3, 8, { 0, 0, 2, 1, 1, 2, 0, 0 } },
    { "\xc3\xa9", 2, 8, { 0, 0, 0, 2, 0, 0, 1, 0 } },
    { "caf\xc3\xa9", 5, 8, { 2, 2, 1, 2, 1, 0, 0, 0 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 8, { 1, 1, 0, 1, 2, 0, 1, 2 } },
    { "\xf0\x9f\x98\x80", 4, 8, { 2, 2, 1, 0, 0, 2, 2, 2 } },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 8, { 1, 1, 0, 1, 1, 1, 2, 2 } },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 8, { 2, 2, 1, 2, 2, 2, 1, 0 } },
    { "polygenelubricants", 18, 8, { 0, 0, 2, 1, 1, 0, 1, 2 } },
    { "Aa", 2, 8, { 0, 0, 0, 1, 0, 1, 2, 2 } },
    { "BB", 2, 8, { 2, 2, 0, 0, 2, 2, 0, 1 } },
    { "user:42", 7, 8, { 1, 1, 0, 2, 2, 0, 0, 0 } },
    { "cache/page/index.html", 21, 8, { 2, 2, 0, 1, 1, 2, 1, 1 } },
    { NULL /* 250 x */, 250, 8, { 1, 1, 2, 1, 0, 1, 0, 2 } },
    { "key:0", 5, 8, { 0, 0, 2, 1, 2, 2, 2, 2 } },
    { "key:7919", 8, 8, { 1, 1, 0, 2, 0, 1, 1, 0 } },
    { "key:15838", 9, 8, { 0, 0, 1, 1, 1, 1, 0, 2 } },
    { "key:23757", 9, 8, { 1, 1, 0, 0, 1, 1, 2, 1 } },
    { "key:31676", 9, 8, { 0, 0, 2, 2, 2, 1, 2, 1 } },
    { "key:39595", 9, 8, { 0, 0, 2, 0, 2, 1, 2, 0 } },
    { "key:47514", 9, 8, { 0, 0, 1, 0, 1, 2, 2, 0 } },
    { "key:55433", 9, 8, { 0, 0, 0, 2, 2, 1, 2, 1 } },
    { "key:63352", 9, 8, { 0, 0, 0, 1, 0, 0, 1, 0 } },
    { "key:71271", 9, 8, { 2, 2, 1, 2, 0, 1, 2, 2 } },
    { "key:79190", 9, 8, { 1, 1, 2, 0, 1, 2, 0, 0 } },
    { "key:87109", 9, 8, { 1, 1, 2, 2, 2, 1, 2, 2 } },
    { "key:95028", 9, 8, { 2, 2, 1, 2, 2, 0, 1, 0 } },
    { "key:102947", 10, 8, { 0, 0, 1, 2, 1, 1, 1, 1 } },
    { "key:110866", 10, 8, { 1, 1, 0, 2, 1, 1, 0, 1 } },
    { "key:118785", 10, 8, { 2, 2, 1, 1, 2, 1, 1, 2 } },
    { "key:126704", 10, 8, { 2, 2, 1, 0, 1, 0, 1, 1 } },
    { "key:134623", 10, 8, { 0, 0, 1, 1, 1, 2, 2, 2 } },
    { "key:142542", 10, 8, { 2, 2, 2, 1, 1, 0, 2, 1 } },
    { "key:150461", 10, 8, { 2, 2, 0, 1, 2, 0, 1, 1 } },
    { "key:158380", 10, 8, { 0, 0, 1, 1, 2, 2, 1, 1 } },
    { "key:166299", 10, 8, { 1, 1, 1, 0, 2, 2, 0, 1 } },
    { "key:174218", 10, 8, { 2, 2, 2, 0, 1, 2, 2, 2 } },
    { "key:182137", 10, 8, { 0, 0, 2, 2, 1, 0, 2, 2 } },
};
/* KetamaNodeLocator + KETAMA_HASH + weights map {1, 2, 3}, 127.0.0.1:21211..21213. Java: points: 480 {n0=80, n1=160, n2=240} key0=127.0.0.1:21211-0 */
static const struct spy_order_vec spy_wket_vecs[] = {
    { "k1", 2, 8, { 2, 2, 2, 2, 1, 2, 2, 0 } },
    { "foo", 3, 8, { 2, 2, 1, 0, 0, 1, 2, 1 } },
    { "name", 4, 8, { 2, 2, 2, 1, 2, 2, 2, 2 } },
    { "product_count", 13, 8, { 2, 2, 1, 2, 1, 2, 0, 2 } },
    { "session:abc", 11, 8, { 2, 2, 2, 0, 2, 2, 2, 1 } },
    { "0", 1, 8, { 2, 2, 2, 2, 1, 2, 1, 1 } },
    { "a", 1, 8, { 0, 0, 1, 2, 2, 2, 2, 0 } },
    { "b", 1, 8, { 2, 2, 0, 2, 2, 2, 2, 2 } },
    { "hello", 5, 8, { 1, 1, 0, 2, 1, 1, 2, 0 } },
    { "KEY", 3, 8, { 1, 1, 2, 2, 2, 0, 2, 1 } },
    { "\xc3\xa9", 2, 8, { 1, 1, 2, 0, 1, 2, 2, 2 } },
    { "caf\xc3\xa9", 5, 8, { 2, 2, 2, 2, 1, 1, 0, 1 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 8, { 2, 2, 2, 1, 1, 1, 0, 2 } },
    { "\xf0\x9f\x98\x80", 4, 8, { 2, 2, 1, 0, 1, 2, 2, 0 } },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 8, { 2, 2, 2, 1, 2, 1, 0, 2 } },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 8, { 2, 2, 2, 2, 1, 2, 1, 2 } },
    { "polygenelubricants", 18, 8, { 0, 0, 2, 2, 0, 2, 1, 2 } },
    { "Aa", 2, 8, { 2, 2, 2, 0, 2, 2, 0, 0 } },
    { "BB", 2, 8, { 2, 2, 1, 2, 0, 2, 0, 1 } },
    { "user:42", 7, 8, { 0, 0, 1, 1, 1, 1, 1, 2 } },
    { "cache/page/index.html", 21, 8, { 1, 1, 1, 2, 1, 2, 2, 2 } },
    { NULL /* 250 x */, 250, 8, { 2, 2, 2, 1, 2, 1, 1, 2 } },
    { "key:0", 5, 8, { 2, 2, 2, 1, 1, 2, 2, 1 } },
    { "key:7919", 8, 8, { 2, 2, 1, 0, 1, 1, 1, 1 } },
    { "key:15838", 9, 8, { 2, 2, 1, 2, 1, 1, 0, 2 } },
    { "key:23757", 9, 8, { 1, 1, 1, 1, 1, 0, 0, 1 } },
    { "key:31676", 9, 8, { 1, 1, 0, 1, 1, 2, 2, 1 } },
    { "key:39595", 9, 8, { 0, 0, 1, 0, 2, 0, 2, 2 } },
    { "key:47514", 9, 8, { 2, 2, 2, 0, 2, 2, 2, 2 } },
    { "key:55433", 9, 8, { 2, 2, 1, 0, 1, 1, 2, 1 } },
    { "key:63352", 9, 8, { 1, 1, 1, 0, 1, 2, 1, 2 } },
    { "key:71271", 9, 8, { 2, 2, 0, 0, 2, 0, 1, 2 } },
    { "key:79190", 9, 8, { 2, 2, 1, 2, 1, 2, 1, 2 } },
    { "key:87109", 9, 8, { 1, 1, 1, 1, 2, 2, 2, 1 } },
    { "key:95028", 9, 8, { 1, 1, 2, 1, 2, 1, 2, 1 } },
    { "key:102947", 10, 8, { 2, 2, 0, 1, 2, 2, 0, 1 } },
    { "key:110866", 10, 8, { 1, 1, 2, 2, 2, 2, 1, 2 } },
    { "key:118785", 10, 8, { 1, 1, 2, 1, 1, 1, 0, 2 } },
    { "key:126704", 10, 8, { 2, 2, 0, 2, 2, 1, 2, 2 } },
    { "key:134623", 10, 8, { 2, 2, 2, 0, 0, 1, 2, 2 } },
    { "key:142542", 10, 8, { 0, 0, 1, 2, 2, 2, 1, 2 } },
    { "key:150461", 10, 8, { 2, 2, 2, 2, 2, 2, 2, 1 } },
    { "key:158380", 10, 8, { 2, 2, 2, 2, 2, 0, 1, 2 } },
    { "key:166299", 10, 8, { 2, 2, 2, 2, 2, 2, 0, 2 } },
    { "key:174218", 10, 8, { 2, 2, 1, 2, 1, 2, 2, 2 } },
    { "key:182137", 10, 8, { 2, 2, 2, 1, 2, 1, 2, 2 } },
};

static const struct hash_server spy_s3[] = {
    { "127.0.0.1", 21211, 1 }, { "127.0.0.1", 21212, 1 }, { "127.0.0.1", 21213, 1 },
};
static const struct hash_server spy_s123[] = {
    { "127.0.0.1", 21211, 1 }, { "127.0.0.1", 21212, 2 }, { "127.0.0.1", 21213, 3 },
};
static const struct hash_server spy_s11211[] = {
    { "127.0.0.2", 11211, 1 }, { "127.0.0.3", 11211, 1 }, { "127.0.0.4", 11211, 1 },
};

static void spy_key(const char *key, size_t len, char x250[250], const char **k)
{
    memset(x250, 'x', 250);
    *k = key ? key : x250;
    (void)len;
}

static void test_spy_hash(void)
{
    char x250[250];

    CHECK(dist_mode_find("spymemcached") != NULL);
    CHECK(dist_mode_find("spymemcached-ketama") != NULL);
    CHECK(dist_mode_find("spymemcached-ketama-weighted") != NULL);

    for (size_t i = 0; i < GW_ARRAY_LEN(spy_hash_vecs); i++) {
        const struct spy_hash_vec *v = &spy_hash_vecs[i];
        const char *k;
        unsigned char dg[16];

        spy_key(v->key, v->len, x250, &k);
        CHECK_EQ_INT(hash_java(k, v->len), v->native);
        hash_md5(k, v->len, dg);
        CHECK_EQ_INT((uint32_t)dg[3] << 24 | (uint32_t)dg[2] << 16 |
                     (uint32_t)dg[1] << 8 | dg[0], v->ketama);
    }
    /* Not well-formed UTF-8 (never sent by spymemcached): one U+FFFD per
     * bad byte, so a lone 0x80 hashes as "\uFFFD" and "\xc3" + "A" as
     * "\uFFFDA". */
    CHECK_EQ_INT(hash_java("\x80", 1), 0xFFFDu);
    CHECK_EQ_INT(hash_java("\xc3" "A", 2), 0xFFFDu * 31 + 'A');
    CHECK_EQ_INT(hash_java("\xc0\x80", 2), 0xFFFDu * 31 + 0xFFFDu);      /* overlong */
    CHECK_EQ_INT(hash_java("\xed\xa0\x80", 3),                            /* surrogate */
                 (0xFFFDu * 31 + 0xFFFDu) * 31 + 0xFFFDu);
    CHECK_EQ_INT(hash_java("\xf0\x9f\x98", 3),                            /* truncated */
                 (0xFFFDu * 31 + 0xFFFDu) * 31 + 0xFFFDu);
    CHECK_EQ_INT(hash_java("", 0), 0);
}

/* For each key: pick is the client's primary; pick_up with every set of
 * down servers is the first up server in the client's order, or -1. */
static void check_spy_orders(const char *mode, const struct hash_server *s,
                             uint32_t n, const struct spy_order_vec *v,
                             size_t nv)
{
    struct hash_dist d;
    char err[128], x250[250];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find(mode), false, s, n, err, sizeof(err)),
                 GW_OK);
    for (size_t i = 0; i < nv; i++) {
        const char *k;

        spy_key(v[i].key, v[i].len, x250, &k);
        if ((int)dist_pick(&d, k, v[i].len) != v[i].order[0])
            fprintf(stderr, "  %s vector %zu\n", mode, i);
        CHECK_EQ_INT(dist_pick(&d, k, v[i].len), v[i].order[0]);
        for (unsigned mask = 0; mask < (1u << n); mask++) {
            int want = -1;

            memset(down_mask, 0, sizeof(down_mask));
            for (uint32_t b = 0; b < n; b++)
                down_mask[b] = mask >> b & 1;
            for (int j = 0; j < v[i].n && want < 0; j++)
                if (!down_mask[v[i].order[j]])
                    want = v[i].order[j];
            if (dist_pick_up(&d, k, v[i].len, mask_up, NULL) != want)
                fprintf(stderr, "  %s vector %zu down mask %u\n", mode, i, mask);
            CHECK_EQ_INT(dist_pick_up(&d, k, v[i].len, mask_up, NULL), want);
        }
    }
    dist_free(&d);
}

static void test_spy_vectors(void)
{
    check_spy_orders("spymemcached", spy_s3, 3, spy_mod3_vecs,
                     GW_ARRAY_LEN(spy_mod3_vecs));
    check_spy_orders("spymemcached", spy_s123, 3, spy_mod6_vecs,
                     GW_ARRAY_LEN(spy_mod6_vecs));
    check_spy_orders("spymemcached-ketama", spy_s3, 3, spy_ket3_vecs,
                     GW_ARRAY_LEN(spy_ket3_vecs));
    check_spy_orders("spymemcached-ketama", spy_s11211, 3, spy_ket11211_vecs,
                     GW_ARRAY_LEN(spy_ket11211_vecs));
    check_spy_orders("spymemcached-ketama-weighted", spy_s123, 3, spy_wket_vecs,
                     GW_ARRAY_LEN(spy_wket_vecs));
}

/* Points per server, as spymemcached's TreeMap holds them (Java's counts:
 * 160 each unweighted; 80/160/240 for weights 1, 2, 3; 156 each for 25
 * equal weights with the weights map, where double arithmetic would give
 * 160). */
static void test_spy_points(void)
{
    static struct hash_server many[25];
    static char hosts[25][16];
    struct hash_dist d;
    char err[160];
    uint32_t count[25];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama"), false, spy_s3, 3,
                            err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 480);
    dist_free(&d);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama-weighted"), false,
                            spy_s123, 3, err, sizeof(err)), GW_OK);
    memset(count, 0, sizeof(count));
    for (uint32_t p = 0; p < d.npoints; p++)
        count[d.points[p].server]++;
    CHECK_EQ_INT(count[0], 80);
    CHECK_EQ_INT(count[1], 160);
    CHECK_EQ_INT(count[2], 240);
    for (uint32_t p = 1; p < d.npoints; p++)
        CHECK(d.points[p - 1].value < d.points[p].value);
    dist_free(&d);
    for (int i = 0; i < 25; i++) {
        snprintf(hosts[i], sizeof(hosts[i]), "127.0.0.1");
        many[i] = (struct hash_server){ hosts[i], (uint16_t)(21211 + i), 1 };
    }
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama-weighted"), false,
                            many, 25, err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 25 * 156);
    dist_free(&d);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama"), false,
                            many, 25, err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 25 * 160);
    dist_free(&d);
    /* the unweighted locator has no weights to give */
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama"), false,
                            spy_s123, 3, err, sizeof(err)), GW_ERROR);
    CHECK(strstr(err, "spymemcached-ketama-weighted") != NULL);
    CHECK(d.points == NULL);
}

/* TreeMap.put: of two servers on the same point the later one keeps it.
 * Two servers with the same name make every point a tie. */
static void test_spy_ties(void)
{
    static const struct hash_server twins[] = {
        { "127.0.0.1", 21211, 1 }, { "127.0.0.1", 21211, 1 },
    };
    struct hash_dist d;
    char err[128];

    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama"), false, twins, 2,
                            err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 160);
    for (uint32_t p = 0; p < d.npoints; p++)
        CHECK_EQ_INT(d.points[p].server, 1);
    CHECK_EQ_INT(dist_pick(&d, "k1", 2), 1);
    dist_free(&d);
}

/* KetamaNodeLocator + NATIVE_HASH (ConnectionFactoryBuilder CONSISTENT
 * without setHashAlg), 10.0.0.1..4:11211. Java: points: 640 {n0=160, n1=160, n2=160, n3=160} key0=10.0.0.1:11211-0 */
static const struct spy_order_vec spy_nat4_vecs[] = {
    { "k1", 2, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "foo", 3, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "name", 4, 8, { 2, 2, 2, 2, 2, 2, 2, 1 } },
    { "product_count", 13, 8, { 3, 3, 2, 0, 0, 3, 0, 0 } },
    { "session:abc", 11, 8, { 2, 2, 1, 0, 1, 1, 1, 1 } },
    { "0", 1, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "a", 1, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "b", 1, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "hello", 5, 8, { 2, 2, 1, 2, 1, 1, 3, 3 } },
    { "KEY", 3, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "\xc3\xa9", 2, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "caf\xc3\xa9", 5, 8, { 2, 2, 2, 2, 2, 2, 2, 1 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "\xf0\x9f\x98\x80", 4, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "x\xf0\x9f\x98\x80y\xc3\xa9z", 9, 8, { 1, 1, 1, 3, 3, 1, 3, 3 } },
    { "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "polygenelubricants", 18, 8, { 0, 0, 0, 1, 1, 0, 3, 1 } },
    { "Aa", 2, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "BB", 2, 8, { 2, 2, 2, 2, 2, 2, 2, 2 } },
    { "user:42", 7, 8, { 0, 0, 1, 3, 0, 1, 3, 2 } },
    { "cache/page/index.html", 21, 8, { 2, 2, 0, 0, 2, 1, 3, 3 } },
    { NULL /* 250 x */, 250, 8, { 3, 3, 1, 3, 1, 1, 3, 2 } },
    { "key:0", 5, 8, { 2, 2, 1, 2, 1, 1, 3, 3 } },
    { "key:7919", 8, 8, { 1, 1, 2, 0, 0, 3, 1, 3 } },
    { "key:15838", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:23757", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:31676", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:39595", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:47514", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:55433", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:63352", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:71271", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:79190", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:87109", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:95028", 9, 8, { 1, 1, 0, 3, 2, 2, 2, 3 } },
    { "key:102947", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:110866", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:118785", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:126704", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:134623", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:142542", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:150461", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:158380", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:166299", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:174218", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
    { "key:182137", 10, 8, { 2, 2, 0, 0, 0, 3, 0, 1 } },
};

static const struct hash_server spy_s4[] = {
    { "10.0.0.1", 11211, 1 }, { "10.0.0.2", 11211, 1 }, { "10.0.0.3", 11211, 1 },
    { "10.0.0.4", 11211, 1 },
};

static void test_spy_native_vectors(void)
{
    struct hash_dist d;
    char err[160];

    CHECK(dist_mode_find("spymemcached-ketama-native") != NULL);
    check_spy_orders("spymemcached-ketama-native", spy_s4, 4, spy_nat4_vecs,
                     GW_ARRAY_LEN(spy_nat4_vecs));
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama-native"), false,
                            spy_s4, 4, err, sizeof(err)), GW_OK);
    CHECK_EQ_INT(d.npoints, 640);
    /* point 0 of server 0 is "10.0.0.1:11211-0".hashCode() */
    bool seen = false;
    for (uint32_t p = 0; p < d.npoints; p++)
        seen |= d.points[p].value == hash_java("10.0.0.1:11211-0", 16) &&
                d.points[p].server == 0;
    CHECK(seen);
    dist_free(&d);
    CHECK_EQ_INT(dist_build(&d, dist_mode_find("spymemcached-ketama-native"), false,
                            spy_s123, 3, err, sizeof(err)), GW_ERROR);
}


int main(void)
{
    RUN(test_crc32);
    RUN(test_md5_rfc1321);
    RUN(test_md5_lengths);
    RUN(test_xxh3);
    RUN(test_jump_vectors);
    RUN(test_jump_monotone);
    RUN(test_pymc_hash);
    RUN(test_pymc_vectors);
    RUN(test_pymc_examples);
    RUN(test_ketama_nutcracker_vectors);
    RUN(test_ketama_points);
    RUN(test_ketama_search);
    RUN(test_ketama_pick_up);
    RUN(test_jump_dist);
    RUN(test_jump_regression);
    RUN(test_mode_parse);
    RUN(test_build_errors);
    RUN(test_oaat);
    RUN(test_libmemcached_vectors);
    RUN(test_libmemcached_consistent_25);
    RUN(test_libmemcached_modula);
    RUN(test_murmur3);
    RUN(test_pymemcache_vectors);
    RUN(test_pymemcache_ties);
    RUN(test_pymemcache_props);
    RUN(test_gomemcache_vectors);
    RUN(test_sha1);
    RUN(test_crc32_more);
    RUN(test_dalli_vectors);
    RUN(test_dalli_ties);
    RUN(test_dalli_points);
    RUN(test_node_memcached_vectors);
    RUN(test_node_memcached_points);
    RUN(test_node_memcached_pick_up);
    RUN(test_spy_hash);
    RUN(test_spy_vectors);
    RUN(test_spy_points);
    RUN(test_spy_ties);
    RUN(test_spy_native_vectors);
    return unit_report("hash");
}
