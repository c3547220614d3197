/* test_base64.c -- base64 (core/base/base64.c): RFC 4648 section 10's
 * vectors, round trips, and the strict decoder's refusals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/status.h"
#include "unit.h"

static const struct {
    const char *plain;
    const char *coded;
} rfc[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_encode(void)
{
    char out[16];
    for (size_t i = 0; i < GW_ARRAY_LEN(rfc); i++) {
        size_t n = strlen(rfc[i].plain);
        CHECK_EQ_INT(base64_encoded_len(n), strlen(rfc[i].coded));
        size_t w = base64_encode((const uint8_t *)rfc[i].plain, n, out);
        CHECK_EQ_MEM(out, w, rfc[i].coded);
    }
}

static void test_rfc4648_decode(void)
{
    uint8_t out[16];
    for (size_t i = 0; i < GW_ARRAY_LEN(rfc); i++) {
        long n = base64_decode(rfc[i].coded, strlen(rfc[i].coded), out,
                               sizeof(out));
        CHECK_EQ_INT(n, strlen(rfc[i].plain));
        if (n >= 0)
            CHECK_EQ_MEM(out, (size_t)n, rfc[i].plain);
    }
}

/* Every byte value, at every position of a quantum, and every length. */
static void test_round_trip(void)
{
    uint8_t src[300], back[300];
    char coded[400];
    for (int i = 0; i < 300; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n <= 300; n++) {
        size_t w = base64_encode(src, n, coded);
        CHECK_EQ_INT(w, base64_encoded_len(n));
        long d = base64_decode(coded, w, back, sizeof(back));
        CHECK_EQ_INT(d, n);
        CHECK(memcmp(src, back, n) == 0);
    }
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    size_t w = base64_encode(all, 256, coded);
    CHECK_EQ_INT(base64_decode(coded, w, back, 256), 256);
    CHECK(memcmp(all, back, 256) == 0);
    /* the output buffer exactly full, and one byte short */
    CHECK_EQ_INT(base64_decode("Zm9vYmFy", 8, back, 6), 6);
    CHECK_EQ_INT(base64_decode("Zm9vYmFy", 8, back, 5), -1);
    CHECK_EQ_INT(base64_decode("Zm9vYmE=", 8, back, 5), 5);
    CHECK_EQ_INT(base64_decode("Zm9vYmE=", 8, back, 4), -1);
}

static void test_refused(void)
{
    static const char *const bad[] = {
        "Zg=",        /* not a multiple of 4 */
        "Zm9",
        "Z",
        "Zm9v!",
        "Zm9v!!!!",   /* a byte outside the alphabet */
        "Zm 9",
        "Zm9\n",
        "Zm-_",       /* the URL-safe alphabet is not this one */
        "Z===",       /* three pads */
        "====",
        "=Zm9",       /* padding not at the end */
        "Zm=v",
        "Zg==Zm9v",   /* a padded quantum before the last */
        "Zm9v\0\0\0\0",
    };
    uint8_t out[16];
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i]);
        if (i == GW_ARRAY_LEN(bad) - 1)
            n = 8;
        long d = base64_decode(bad[i], n, out, sizeof(out));
        if (d != -1)
            fprintf(stderr, "'%s' decoded to %ld bytes\n", bad[i], d);
        CHECK_EQ_INT(d, -1);
    }
    /* Leftover bits under the padding are ignored, as memcached does. */
    CHECK_EQ_INT(base64_decode("Zh==", 4, out, sizeof(out)), 1);
    CHECK_EQ_INT(out[0], 'f');
    CHECK_EQ_INT(base64_decode("Zm9=", 4, out, sizeof(out)), 2);
    CHECK_EQ_MEM(out, 2, "fo");
}

int main(void)
{
    RUN(test_rfc4648_encode);
    RUN(test_rfc4648_decode);
    RUN(test_round_trip);
    RUN(test_refused);
    return unit_report("base64");
}
