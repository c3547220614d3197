/* test_store.c -- unit tests for the embedded cache (core/store.c). */
#include "store/store.h"
#include "unit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* ---- a clock the tests control ----------------------------------------- */

#define T0 1700000000LL
static int64_t fake_now = T0;
static int64_t fake_clock(void) { return fake_now; }

static struct store *new_store(size_t max)
{
    fake_now = T0;
    struct store *st = store_new(max);
    if (st)
        store_set_clock(st, fake_clock);
    return st;
}

/* ---- helpers ------------------------------------------------------------ */

static void *heap_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static void *null_alloc(void *ctx, size_t n)
{
    (void)ctx;
    (void)n;
    return NULL;
}

/* Last value read by get(): */
static char got[65536];
static size_t got_len;
static uint32_t got_flags;
static uint64_t got_cas;

static enum store_result get_ex(struct store *st, const char *key, bool touch,
                                int64_t exptime)
{
    char *data = NULL;
    size_t n = 0;
    got_len = 0;
    got_flags = 0;
    got_cas = 0;
    enum store_result r = store_get(st, key, strlen(key), touch, exptime,
                                    &got_flags, &got_cas, &data, &n,
                                    heap_alloc, NULL);
    if (r == STORE_HIT) {
        if (n < sizeof got) {
            memcpy(got, data, n);
            got_len = n;
        }
        free(data);
    }
    return r;
}

static enum store_result get(struct store *st, const char *key)
{
    return get_ex(st, key, false, 0);
}

static enum store_result upd(struct store *st, enum store_op op,
                             const char *key, uint32_t flags, int64_t exptime,
                             const char *val, uint64_t cas)
{
    return store_update(st, op, key, strlen(key), flags, exptime, val,
                        strlen(val), cas);
}

static enum store_result set(struct store *st, const char *key,
                             const char *val, int64_t exptime)
{
    return upd(st, STORE_SET, key, 0, exptime, val, 0);
}

static struct store_stats stats(struct store *st)
{
    struct store_stats s;
    store_get_stats(st, &s);
    return s;
}

/* Per-item overhead the store charges (bytes = overhead + klen + dlen). */
static uint64_t overhead(void)
{
    struct store *st = store_new(1 << 20);
    store_update(st, STORE_SET, "k", 1, 0, 0, "", 0, 0);
    uint64_t h = stats(st).bytes - 1;
    store_free(st);
    return h;
}

/* ---- tests --------------------------------------------------------------- */

static void test_set_get(void)
{
    struct store *st = new_store(1 << 20);
    CHECK(st != NULL);
    CHECK_EQ_INT(get(st, "foo"), STORE_MISS);
    CHECK_EQ_INT(upd(st, STORE_SET, "foo", 42, 0, "bar", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "foo"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "bar");
    CHECK_EQ_INT(got_flags, 42);
    CHECK(got_cas != 0);
    uint64_t c1 = got_cas;

    /* overwrite: new value, new flags, new cas */
    CHECK_EQ_INT(upd(st, STORE_SET, "foo", 7, 0, "bazz", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "foo"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "bazz");
    CHECK_EQ_INT(got_flags, 7);
    CHECK(got_cas > c1);

    /* empty value */
    CHECK_EQ_INT(set(st, "empty", "", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "empty"), STORE_HIT);
    CHECK_EQ_INT(got_len, 0);

    /* binary keys and values with NUL bytes; keys differ only after a NUL */
    CHECK_EQ_INT(store_update(st, STORE_SET, "a\0b", 3, 1, 0, "x\0y", 3, 0),
                 STORE_STORED);
    CHECK_EQ_INT(store_update(st, STORE_SET, "a\0c", 3, 2, 0, "z", 1, 0),
                 STORE_STORED);
    char *d = NULL;
    size_t n = 0;
    uint32_t fl = 0;
    CHECK_EQ_INT(store_get(st, "a\0b", 3, false, 0, &fl, NULL, &d, &n,
                           heap_alloc, NULL), STORE_HIT);
    CHECK(n == 3 && memcmp(d, "x\0y", 3) == 0 && fl == 1);
    free(d);
    CHECK_EQ_INT(store_get(st, "a", 1, false, 0, NULL, NULL, NULL, NULL,
                           heap_alloc, NULL), STORE_MISS);

    /* alloc NULL: no copy, just the length */
    d = (char *)1;
    n = 0;
    CHECK_EQ_INT(store_get(st, "foo", 3, false, 0, NULL, NULL, &d, &n, NULL,
                           NULL), STORE_HIT);
    CHECK(d == NULL);
    CHECK_EQ_INT(n, 4);

    /* alloc failing: NOMEM; alloc failing for an empty value is fine */
    CHECK_EQ_INT(store_get(st, "foo", 3, false, 0, NULL, NULL, &d, &n,
                           null_alloc, NULL), STORE_NOMEM);
    CHECK_EQ_INT(store_get(st, "empty", 5, false, 0, NULL, NULL, &d, &n,
                           null_alloc, NULL), STORE_HIT);
    CHECK_EQ_INT(n, 0);

    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, 4);
    CHECK_EQ_INT(s.limit_bytes, 1 << 20);
    store_free(st);
}

static void test_add_replace_delete(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(upd(st, STORE_REPLACE, "k", 0, 0, "r", 0), STORE_NOT_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);
    CHECK_EQ_INT(upd(st, STORE_ADD, "k", 3, 0, "a", 0), STORE_STORED);
    CHECK_EQ_INT(upd(st, STORE_ADD, "k", 4, 0, "b", 0), STORE_NOT_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "a");
    CHECK_EQ_INT(got_flags, 3);
    CHECK_EQ_INT(upd(st, STORE_REPLACE, "k", 5, 0, "r", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "r");
    CHECK_EQ_INT(got_flags, 5);

    CHECK_EQ_INT(store_delete(st, "k", 1), STORE_DELETED);
    CHECK_EQ_INT(store_delete(st, "k", 1), STORE_NOT_FOUND);
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);
    CHECK_EQ_INT(upd(st, STORE_ADD, "k", 0, 0, "again", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "again");

    /* add on an expired key succeeds; replace on an expired key does not */
    CHECK_EQ_INT(set(st, "e", "old", 5), STORE_STORED);
    fake_now += 5;
    CHECK_EQ_INT(upd(st, STORE_ADD, "e", 0, 0, "new", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "e"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "new");
    CHECK_EQ_INT(set(st, "e2", "old", 5), STORE_STORED);
    fake_now += 5;
    CHECK_EQ_INT(upd(st, STORE_REPLACE, "e2", 0, 0, "new", 0),
                 STORE_NOT_STORED);
    CHECK_EQ_INT(get(st, "e2"), STORE_MISS);

    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, 2);
    CHECK_EQ_INT(s.expired, 2);
    store_free(st);
}

static void test_append_prepend(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(upd(st, STORE_APPEND, "k", 0, 0, "x", 0), STORE_NOT_STORED);
    CHECK_EQ_INT(upd(st, STORE_PREPEND, "k", 0, 0, "x", 0), STORE_NOT_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);

    CHECK_EQ_INT(upd(st, STORE_SET, "k", 99, 100, "mid", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    uint64_t c0 = got_cas;
    /* flags and exptime passed to append/prepend are ignored */
    CHECK_EQ_INT(upd(st, STORE_APPEND, "k", 1, 0, "-end", 0), STORE_STORED);
    CHECK_EQ_INT(upd(st, STORE_PREPEND, "k", 2, -1, "start-", 0),
                 STORE_STORED);
    CHECK_EQ_INT(upd(st, STORE_APPEND, "k", 3, 0, "", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "start-mid-end");
    CHECK_EQ_INT(got_flags, 99);
    CHECK(got_cas > c0);

    /* the original expiry still applies */
    fake_now += 99;
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    fake_now += 1;
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);

    /* byte accounting follows the growth */
    uint64_t h = overhead();
    CHECK_EQ_INT(set(st, "a", "12", 0), STORE_STORED);
    CHECK_EQ_INT(upd(st, STORE_APPEND, "a", 0, 0, "345", 0), STORE_STORED);
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, 1);
    CHECK_EQ_INT(s.bytes, h + 1 + 5);
    store_free(st);
}

static void test_cas(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(upd(st, STORE_CAS, "k", 0, 0, "v", 1), STORE_NOT_FOUND);
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);

    CHECK_EQ_INT(set(st, "k", "v1", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    uint64_t c1 = got_cas;
    CHECK_EQ_INT(upd(st, STORE_CAS, "k", 0, 0, "bad", c1 + 1000), STORE_EXISTS);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "v1");
    CHECK_EQ_INT(got_cas, c1);

    CHECK_EQ_INT(upd(st, STORE_CAS, "k", 8, 0, "v2", c1), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "v2");
    CHECK_EQ_INT(got_flags, 8);
    uint64_t c2 = got_cas;
    CHECK(c2 > c1);
    /* the old unique is stale now */
    CHECK_EQ_INT(upd(st, STORE_CAS, "k", 0, 0, "v3", c1), STORE_EXISTS);

    /* touch and gat keep the unique; other modifications change it */
    CHECK_EQ_INT(store_touch(st, "k", 1, 100), STORE_TOUCHED);
    CHECK_EQ_INT(get_ex(st, "k", true, 200), STORE_HIT);
    CHECK_EQ_INT(got_cas, c2);
    CHECK_EQ_INT(upd(st, STORE_CAS, "k", 0, 0, "v3", c2), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    uint64_t c3 = got_cas;
    CHECK(c3 > c2);

    uint64_t prev = c3;
    const enum store_op ops[] = {STORE_SET, STORE_REPLACE, STORE_APPEND,
                                 STORE_PREPEND};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        CHECK_EQ_INT(upd(st, ops[i], "k", 0, 0, "1", 0), STORE_STORED);
        CHECK_EQ_INT(get(st, "k"), STORE_HIT);
        CHECK(got_cas > prev);
        prev = got_cas;
    }
    uint64_t res;
    CHECK_EQ_INT(store_arith(st, "k", 1, true, 1, &res), STORE_ARITH_OK);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK(got_cas > prev);
    prev = got_cas;
    CHECK_EQ_INT(store_arith(st, "k", 1, false, 1, &res), STORE_ARITH_OK);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK(got_cas > prev);

    /* cas on a deleted key */
    prev = got_cas;
    CHECK_EQ_INT(store_delete(st, "k", 1), STORE_DELETED);
    CHECK_EQ_INT(upd(st, STORE_CAS, "k", 0, 0, "v", prev), STORE_NOT_FOUND);

    /* uniques are distinct across keys */
    CHECK_EQ_INT(set(st, "x", "1", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "x"), STORE_HIT);
    uint64_t cx = got_cas;
    CHECK_EQ_INT(set(st, "y", "1", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "y"), STORE_HIT);
    CHECK(got_cas != cx);
    store_free(st);
}

static void test_expiry_relative(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(set(st, "k", "v", 10), STORE_STORED);
    fake_now += 9;
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    fake_now += 1;
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, 0);
    CHECK_EQ_INT(s.bytes, 0);
    CHECK_EQ_INT(s.expired, 1);

    /* 2592000 (30 days) is still relative */
    CHECK_EQ_INT(set(st, "m", "v", 2592000), STORE_STORED);
    fake_now += 2591999;
    CHECK_EQ_INT(get(st, "m"), STORE_HIT);
    fake_now += 1;
    CHECK_EQ_INT(get(st, "m"), STORE_MISS);

    /* expired keys are removed on delete/touch/arith too, as misses */
    CHECK_EQ_INT(set(st, "a", "1", 1), STORE_STORED);
    CHECK_EQ_INT(set(st, "b", "1", 1), STORE_STORED);
    CHECK_EQ_INT(set(st, "c", "1", 1), STORE_STORED);
    fake_now += 1;
    uint64_t res;
    CHECK_EQ_INT(store_delete(st, "a", 1), STORE_NOT_FOUND);
    CHECK_EQ_INT(store_touch(st, "b", 1, 100), STORE_NOT_FOUND);
    CHECK_EQ_INT(store_arith(st, "c", 1, true, 1, &res), STORE_NOT_FOUND);
    s = stats(st);
    CHECK_EQ_INT(s.curr_items, 0);
    CHECK_EQ_INT(s.expired, 5);
    store_free(st);
}

static void test_expiry_absolute(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(set(st, "k", "v", T0 + 100), STORE_STORED);
    fake_now = T0 + 99;
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    fake_now = T0 + 100;
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);

    /* an absolute time in the past: stored but never visible */
    CHECK_EQ_INT(set(st, "p", "v", T0 - 5), STORE_STORED);
    CHECK_EQ_INT(get(st, "p"), STORE_MISS);
    /* 2592001 is absolute (1970): long past */
    CHECK_EQ_INT(set(st, "q", "v", 2592001), STORE_STORED);
    CHECK_EQ_INT(get(st, "q"), STORE_MISS);
    /* absolute time equal to now: expired already */
    CHECK_EQ_INT(set(st, "r", "v", fake_now), STORE_STORED);
    CHECK_EQ_INT(get(st, "r"), STORE_MISS);
    CHECK_EQ_INT(stats(st).curr_items, 0);
    store_free(st);
}

static void test_expiry_negative_and_zero(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(set(st, "k", "old", 0), STORE_STORED);
    CHECK_EQ_INT(set(st, "k", "new", -1), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);   /* the old value is gone too */
    CHECK_EQ_INT(upd(st, STORE_ADD, "n", 0, -1, "v", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "n"), STORE_MISS);
    CHECK_EQ_INT(upd(st, STORE_ADD, "n", 0, -1, "v", 0), STORE_STORED);
    CHECK_EQ_INT(set(st, "r", "v", 0), STORE_STORED);
    CHECK_EQ_INT(upd(st, STORE_REPLACE, "r", 0, -100, "w", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "r"), STORE_MISS);
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, 0);
    CHECK_EQ_INT(s.bytes, 0);

    /* 0 never expires */
    CHECK_EQ_INT(set(st, "z", "v", 0), STORE_STORED);
    fake_now += 100LL * 365 * 86400;
    CHECK_EQ_INT(get(st, "z"), STORE_HIT);
    store_free(st);
}

static void test_touch_gat(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(store_touch(st, "k", 1, 10), STORE_NOT_FOUND);
    CHECK_EQ_INT(set(st, "k", "v", 10), STORE_STORED);
    fake_now += 5;
    CHECK_EQ_INT(store_touch(st, "k", 1, 10), STORE_TOUCHED);  /* -> +15 */
    fake_now += 9;
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_INT(store_touch(st, "k", 1, 0), STORE_TOUCHED);   /* never */
    fake_now += 1000000;
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "v");

    /* gat: value back, new expiry */
    CHECK_EQ_INT(get_ex(st, "k", true, 3), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "v");
    fake_now += 2;
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    fake_now += 1;
    CHECK_EQ_INT(get(st, "k"), STORE_MISS);
    CHECK_EQ_INT(get_ex(st, "k", true, 3), STORE_MISS);

    /* touch with a past expiry removes the item */
    CHECK_EQ_INT(set(st, "t", "v", 0), STORE_STORED);
    CHECK_EQ_INT(store_touch(st, "t", 1, -1), STORE_TOUCHED);
    CHECK_EQ_INT(get(st, "t"), STORE_MISS);
    /* gat with a past expiry returns the value once */
    CHECK_EQ_INT(set(st, "g", "gv", 0), STORE_STORED);
    CHECK_EQ_INT(get_ex(st, "g", true, -1), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "gv");
    CHECK_EQ_INT(get(st, "g"), STORE_MISS);
    CHECK_EQ_INT(stats(st).curr_items, 0);
    store_free(st);
}

static void test_lru_eviction(void)
{
    const size_t budget = 4096;
    uint64_t h = overhead();
    struct store *st = new_store(budget);
    char val[201];
    memset(val, 'v', 200);
    val[200] = 0;
    /* keys "k00".."k99": 3-byte keys, 200-byte values */
    const size_t per = h + 3 + 200;
    const size_t fit = budget / per;
    CHECK(fit >= 4);
    char key[8];
    for (size_t i = 0; i < fit; i++) {
        snprintf(key, sizeof key, "k%02zu", i);
        CHECK_EQ_INT(set(st, key, val, 0), STORE_STORED);
    }
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, fit);
    CHECK_EQ_INT(s.evictions, 0);
    CHECK(s.bytes <= budget);

    /* read k00 (oldest), touch k01: both move to the head */
    CHECK_EQ_INT(get(st, "k00"), STORE_HIT);
    CHECK_EQ_INT(store_touch(st, "k01", 3, 0), STORE_TOUCHED);

    /* one more item: k02 (now the LRU tail) goes */
    snprintf(key, sizeof key, "k%02zu", fit);
    CHECK_EQ_INT(set(st, key, val, 0), STORE_STORED);
    s = stats(st);
    CHECK_EQ_INT(s.evictions, 1);
    CHECK_EQ_INT(s.curr_items, fit);
    CHECK(s.bytes <= budget);
    CHECK_EQ_INT(get(st, "k02"), STORE_MISS);
    CHECK_EQ_INT(get(st, "k00"), STORE_HIT);
    CHECK_EQ_INT(get(st, "k01"), STORE_HIT);
    CHECK_EQ_INT(get(st, "k03"), STORE_HIT);   /* k03 moves to head */

    /* next: k04 then k05 are the oldest */
    snprintf(key, sizeof key, "k%02zu", fit + 1);
    CHECK_EQ_INT(set(st, key, val, 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "k04"), STORE_MISS);
    CHECK_EQ_INT(get(st, "k03"), STORE_HIT);
    CHECK_EQ_INT(get(st, "k05"), STORE_HIT);

    /* a big item evicts several from the tail at once */
    char big[1024];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = 0;
    uint64_t ev = stats(st).evictions;
    CHECK_EQ_INT(set(st, "big", big, 0), STORE_STORED);
    s = stats(st);
    CHECK(s.evictions >= ev + 4);
    CHECK(s.bytes <= budget);
    CHECK_EQ_INT(get(st, "big"), STORE_HIT);
    CHECK_EQ_INT(got_len, sizeof big - 1);

    /* expired items at the tail are counted as expired, not evictions */
    store_free(st);
    st = new_store(budget);
    for (size_t i = 0; i < fit; i++) {
        snprintf(key, sizeof key, "e%02zu", i);
        CHECK_EQ_INT(set(st, key, val, i == 0 ? 1 : 0), STORE_STORED);
    }
    fake_now += 1;
    CHECK_EQ_INT(set(st, "new", val, 0), STORE_STORED);
    s = stats(st);
    CHECK_EQ_INT(s.evictions, 0);
    CHECK_EQ_INT(s.expired, 1);
    store_free(st);
}

static void test_too_large(void)
{
    uint64_t h = overhead();
    struct store *st = new_store(4096);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ_INT(set(st, "a", "small", 0), STORE_STORED);
    CHECK_EQ_INT(set(st, "big", big, 0), STORE_TOO_LARGE);
    CHECK_EQ_INT(get(st, "big"), STORE_MISS);
    CHECK_EQ_INT(upd(st, STORE_ADD, "big", 0, 0, big, 0), STORE_TOO_LARGE);
    CHECK_EQ_INT(get(st, "a"), STORE_HIT);   /* nothing evicted for it */
    CHECK_EQ_INT(stats(st).evictions, 0);

    /* a too-large set drops the old value (memcached); replace keeps it */
    CHECK_EQ_INT(upd(st, STORE_REPLACE, "a", 0, 0, big, 0), STORE_TOO_LARGE);
    CHECK_EQ_INT(get(st, "a"), STORE_HIT);
    CHECK_EQ_INT(set(st, "a", big, 0), STORE_TOO_LARGE);
    CHECK_EQ_INT(get(st, "a"), STORE_MISS);

    /* append past the budget: TOO_LARGE, old value intact */
    CHECK_EQ_INT(set(st, "b", "base", 0), STORE_STORED);
    big[4096 - h - 1 - 4 + 1] = 0;          /* one byte over the budget */
    CHECK_EQ_INT(upd(st, STORE_APPEND, "b", 0, 0, big, 0), STORE_TOO_LARGE);
    CHECK_EQ_INT(upd(st, STORE_PREPEND, "b", 0, 0, big, 0), STORE_TOO_LARGE);
    CHECK_EQ_INT(get(st, "b"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "base");

    /* an item exactly the size of the budget fits, evicting the rest */
    size_t dlen = 4096 - h - 3;
    memset(big, 'x', sizeof big - 1);
    big[dlen] = 0;
    CHECK_EQ_INT(set(st, "key", big, 0), STORE_STORED);
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.bytes, 4096);
    CHECK_EQ_INT(s.curr_items, 1);
    CHECK_EQ_INT(get(st, "key"), STORE_HIT);
    CHECK_EQ_INT(got_len, dlen);
    big[dlen + 1] = 0;
    big[dlen] = 'x';
    CHECK_EQ_INT(set(st, "key", big, 0), STORE_TOO_LARGE);

    /* a zero budget stores nothing */
    store_free(st);
    st = new_store(0);
    CHECK_EQ_INT(set(st, "k", "", 0), STORE_TOO_LARGE);
    store_free(st);
}

static void test_arith(void)
{
    struct store *st = new_store(1 << 20);
    uint64_t r = 12345;
    CHECK_EQ_INT(store_arith(st, "n", 1, true, 1, &r), STORE_NOT_FOUND);

    CHECK_EQ_INT(upd(st, STORE_SET, "n", 77, 100, "10", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "n", 1, true, 5, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 15);
    CHECK_EQ_INT(store_arith(st, "n", 1, false, 6, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 9);
    CHECK_EQ_INT(get(st, "n"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "9");
    CHECK_EQ_INT(got_flags, 77);
    CHECK_EQ_INT(store_arith(st, "n", 1, true, 91, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(get(st, "n"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "100");
    /* decr floors at 0 */
    CHECK_EQ_INT(store_arith(st, "n", 1, false, 1000, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(get(st, "n"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "0");
    /* the expiry is kept */
    fake_now += 100;
    CHECK_EQ_INT(get(st, "n"), STORE_MISS);

    /* incr wraps at 2^64 */
    CHECK_EQ_INT(set(st, "w", "18446744073709551615", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "w", 1, true, 1, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(get(st, "w"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "0");
    CHECK_EQ_INT(set(st, "w", "18446744073709551610", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "w", 1, true, 10, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 4);
    CHECK_EQ_INT(store_arith(st, "w", 1, true, UINT64_MAX, &r),
                 STORE_ARITH_OK);
    CHECK_EQ_INT(r, 3);
    CHECK_EQ_INT(set(st, "w", "5", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "w", 1, false, UINT64_MAX, &r),
                 STORE_ARITH_OK);
    CHECK_EQ_INT(r, 0);

    /* surrounding spaces (memcached pads decr results) are accepted */
    CHECK_EQ_INT(set(st, "s", "25  ", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "s", 1, false, 1, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 24);
    CHECK_EQ_INT(get(st, "s"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "24");
    CHECK_EQ_INT(set(st, "s", " 7", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "s", 1, true, 1, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 8);
    CHECK_EQ_INT(set(st, "s", "00042", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "s", 1, true, 0, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(r, 42);

    /* non-numeric values are left alone */
    const char *bad[] = {"", "abc", "12a", "-1", "+1", "1 2", "1.5", " ",
                         "18446744073709551616", "99999999999999999999",
                         "1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(set(st, "b", bad[i], 0), STORE_STORED);
        CHECK_EQ_INT(store_arith(st, "b", 1, true, 1, &r), STORE_NON_NUMERIC);
        CHECK_EQ_INT(store_arith(st, "b", 1, false, 1, &r),
                     STORE_NON_NUMERIC);
        CHECK_EQ_INT(get(st, "b"), STORE_HIT);
        CHECK_EQ_MEM(got, got_len, bad[i]);
    }
    CHECK_EQ_INT(store_update(st, STORE_SET, "z", 1, 0, 0, "1\0", 2, 0),
                 STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "z", 1, true, 1, &r), STORE_NON_NUMERIC);

    /* byte accounting after a length change */
    uint64_t h = overhead();
    store_free(st);
    st = new_store(1 << 20);
    CHECK_EQ_INT(set(st, "c", "9", 0), STORE_STORED);
    CHECK_EQ_INT(store_arith(st, "c", 1, true, 1, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(stats(st).bytes, h + 1 + 2);
    CHECK_EQ_INT(store_arith(st, "c", 1, false, 5, &r), STORE_ARITH_OK);
    CHECK_EQ_INT(stats(st).bytes, h + 1 + 1);
    CHECK_EQ_INT(stats(st).curr_items, 1);
    store_free(st);
}

static void test_flush(void)
{
    struct store *st = new_store(1 << 20);
    CHECK_EQ_INT(set(st, "a", "1", 0), STORE_STORED);
    CHECK_EQ_INT(set(st, "b", "2", 100), STORE_STORED);
    store_flush(st, 0);
    CHECK_EQ_INT(get(st, "a"), STORE_MISS);
    CHECK_EQ_INT(get(st, "b"), STORE_MISS);
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, 0);
    CHECK_EQ_INT(s.bytes, 0);
    /* items stored after the flush, even in the same second, are kept */
    CHECK_EQ_INT(set(st, "a", "3", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "a"), STORE_HIT);
    CHECK_EQ_MEM(got, got_len, "3");
    store_flush(st, -5);                       /* negative: immediate */
    CHECK_EQ_INT(get(st, "a"), STORE_MISS);

    /* delayed: everything existing at now+10 goes then */
    CHECK_EQ_INT(set(st, "old", "1", 0), STORE_STORED);
    store_flush(st, 10);
    CHECK_EQ_INT(get(st, "old"), STORE_HIT);
    fake_now += 5;
    CHECK_EQ_INT(set(st, "mid", "1", 0), STORE_STORED);
    fake_now += 4;                              /* T0+9 */
    CHECK_EQ_INT(get(st, "old"), STORE_HIT);
    CHECK_EQ_INT(get(st, "mid"), STORE_HIT);
    fake_now += 1;                              /* T0+10: flush time */
    CHECK_EQ_INT(set(st, "after", "1", 0), STORE_STORED);
    CHECK_EQ_INT(get(st, "old"), STORE_MISS);
    CHECK_EQ_INT(get(st, "mid"), STORE_MISS);
    CHECK_EQ_INT(get(st, "after"), STORE_HIT);
    fake_now += 100;
    CHECK_EQ_INT(get(st, "after"), STORE_HIT);  /* one-shot */
    s = stats(st);
    CHECK_EQ_INT(s.curr_items, 1);
    CHECK_EQ_INT(s.expired, 0);                 /* flushed is not expired */

    /* stats alone apply a due flush */
    store_flush(st, 1);
    fake_now += 1;
    CHECK_EQ_INT(stats(st).curr_items, 0);

    /* an immediate flush replaces a pending delayed one */
    CHECK_EQ_INT(set(st, "x", "1", 0), STORE_STORED);
    store_flush(st, 10);
    store_flush(st, 0);
    CHECK_EQ_INT(set(st, "y", "1", 0), STORE_STORED);
    fake_now += 20;
    CHECK_EQ_INT(get(st, "x"), STORE_MISS);
    CHECK_EQ_INT(get(st, "y"), STORE_HIT);

    /* a later delayed flush replaces an earlier one */
    store_flush(st, 5);
    store_flush(st, 50);
    fake_now += 10;
    CHECK_EQ_INT(get(st, "y"), STORE_HIT);
    fake_now += 40;
    CHECK_EQ_INT(get(st, "y"), STORE_MISS);

    /* absolute flush time */
    CHECK_EQ_INT(set(st, "z", "1", 0), STORE_STORED);
    store_flush(st, fake_now + 30);
    fake_now += 29;
    CHECK_EQ_INT(get(st, "z"), STORE_HIT);
    fake_now += 1;
    CHECK_EQ_INT(get(st, "z"), STORE_MISS);
    /* absolute flush time in the past: immediate */
    CHECK_EQ_INT(set(st, "z", "1", 0), STORE_STORED);
    store_flush(st, 2592001);
    CHECK_EQ_INT(get(st, "z"), STORE_MISS);
    store_free(st);
}

static void test_growth(void)
{
    enum { N = 100000 };
    uint64_t h = overhead();
    struct store *st = new_store((size_t)1 << 30);
    char key[32], val[32];
    uint64_t sum = 0;
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "key:%d", i);
        int vl = snprintf(val, sizeof val, "value-%d", i * 7);
        CHECK_EQ_INT(store_update(st, STORE_SET, key, (size_t)kl, (uint32_t)i,
                                  0, val, (size_t)vl, 0), STORE_STORED);
        sum += h + (uint64_t)kl + (uint64_t)vl;
    }
    struct store_stats s = stats(st);
    CHECK_EQ_INT(s.curr_items, N);
    CHECK_EQ_INT(s.bytes, sum);
    CHECK_EQ_INT(s.evictions, 0);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(val, sizeof val, "value-%d", i * 7);
        if (get(st, key) != STORE_HIT || got_flags != (uint32_t)i ||
            got_len != strlen(val) || memcmp(got, val, got_len) != 0)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(get(st, "key:100000"), STORE_MISS);
    for (int i = 0; i < N; i += 2) {
        int kl = snprintf(key, sizeof key, "key:%d", i);
        if (store_delete(st, key, (size_t)kl) != STORE_DELETED)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(stats(st).curr_items, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        if (get(st, key) != ((i & 1) ? STORE_HIT : STORE_MISS))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    store_free(st);
}

/* ---- concurrency ---------------------------------------------------------- */

enum { HAMMER_THREADS = 4, HAMMER_ITERS = 40000, HAMMER_KEYS = 1500 };

struct hammer_arg {
    struct store *st;
    uint64_t seed;
    int errors;
};

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Keys "s<n>" hold "s<n>:" + padding; keys "n<n>" hold numbers. */
static void *hammer(void *p)
{
    struct hammer_arg *a = p;
    char key[32], val[400];
    for (int i = 0; i < HAMMER_ITERS; i++) {
        uint64_t r = xorshift(&a->seed);
        unsigned k = (unsigned)(r % HAMMER_KEYS);
        bool num = (r >> 20) % 4 == 0;
        unsigned op = (unsigned)((r >> 24) % 10);
        int kl = snprintf(key, sizeof key, "%c%u", num ? 'n' : 's', k);
        if (op < 4) {                                   /* set */
            int vl;
            if (num) {
                vl = snprintf(val, sizeof val, "%u", (unsigned)(r >> 40));
            } else {
                vl = snprintf(val, sizeof val, "%s:", key);
                int pad = (int)((r >> 32) % 300);
                memset(val + vl, 'p', (size_t)pad);
                vl += pad;
            }
            if (store_update(a->st, STORE_SET, key, (size_t)kl, k, 0, val,
                             (size_t)vl, 0) != STORE_STORED)
                a->errors++;
        } else if (op < 7) {                            /* get */
            char *d = NULL;
            size_t n = 0;
            uint32_t fl = 0;
            enum store_result res = store_get(a->st, key, (size_t)kl,
                                              op == 6, 0, &fl, NULL, &d, &n,
                                              heap_alloc, NULL);
            if (res == STORE_HIT) {
                if (fl != k)
                    a->errors++;
                if (num) {
                    for (size_t j = 0; j < n; j++)
                        if (d[j] < '0' || d[j] > '9')
                            a->errors++;
                } else if (n < (size_t)kl + 1 ||
                           memcmp(d, key, (size_t)kl) != 0 ||
                           d[kl] != ':') {
                    a->errors++;
                }
                free(d);
            } else if (res != STORE_MISS) {
                a->errors++;
            }
        } else if (op == 7) {                           /* delete */
            enum store_result res = store_delete(a->st, key, (size_t)kl);
            if (res != STORE_DELETED && res != STORE_NOT_FOUND)
                a->errors++;
        } else if (num) {                               /* incr / decr */
            uint64_t out;
            enum store_result res = store_arith(a->st, key, (size_t)kl,
                                                op == 8, r >> 50, &out);
            if (res != STORE_ARITH_OK && res != STORE_NOT_FOUND)
                a->errors++;
        } else {                                        /* append/prepend */
            enum store_result res;
            if (op == 8)
                res = store_update(a->st, STORE_APPEND, key, (size_t)kl, 0, 0,
                                   "ap", 2, 0);
            else {
                int vl = snprintf(val, sizeof val, "%s:", key);
                res = store_update(a->st, STORE_ADD, key, (size_t)kl, k, 0,
                                   val, (size_t)vl, 0);
            }
            if (res != STORE_STORED && res != STORE_NOT_STORED &&
                res != STORE_TOO_LARGE)
                a->errors++;
        }
    }
    return NULL;
}

static void test_hammer(void)
{
    const size_t budget = 256 * 1024;
    uint64_t h = overhead();
    struct store *st = store_new(budget);      /* real clock, no expiry */
    pthread_t th[HAMMER_THREADS];
    struct hammer_arg args[HAMMER_THREADS];
    for (int i = 0; i < HAMMER_THREADS; i++) {
        args[i].st = st;
        args[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        args[i].errors = 0;
        CHECK_EQ_INT(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    int errors = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(th[i], NULL);
        errors += args[i].errors;
    }
    CHECK_EQ_INT(errors, 0);

    struct store_stats s = stats(st);
    CHECK(s.bytes <= budget);
    CHECK(s.evictions > 0);     /* the budget was small enough to evict */

    /* curr_items and bytes agree with what a full scan finds */
    uint64_t items = 0, bytes = 0;
    char key[32];
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned k = 0; k < HAMMER_KEYS; k++) {
            int kl = snprintf(key, sizeof key, "%c%u", pass ? 'n' : 's', k);
            size_t n = 0;
            if (store_get(st, key, (size_t)kl, false, 0, NULL, NULL, NULL, &n,
                          NULL, NULL) == STORE_HIT) {
                items++;
                bytes += h + (uint64_t)kl + n;
            }
        }
    }
    s = stats(st);
    CHECK_EQ_INT(s.curr_items, items);
    CHECK_EQ_INT(s.bytes, bytes);

    /* deleting every key leaves nothing charged */
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned k = 0; k < HAMMER_KEYS; k++) {
            int kl = snprintf(key, sizeof key, "%c%u", pass ? 'n' : 's', k);
            store_delete(st, key, (size_t)kl);
        }
    }
    s = stats(st);
    CHECK_EQ_INT(s.curr_items, 0);
    CHECK_EQ_INT(s.bytes, 0);
    store_free(st);
}

static void test_default_clock(void)
{
    struct store *st = new_store(1 << 20);
    store_set_clock(st, NULL);                  /* back to time(NULL) */
    CHECK_EQ_INT(set(st, "k", "v", 1000), STORE_STORED);
    CHECK_EQ_INT(get(st, "k"), STORE_HIT);
    /* an absolute time an hour ago is past by the real clock */
    CHECK_EQ_INT(set(st, "p", "v", (int64_t)time(NULL) - 3600), STORE_STORED);
    CHECK_EQ_INT(get(st, "p"), STORE_MISS);
    CHECK_EQ_INT(set(st, "f", "v", (int64_t)time(NULL) + 3600), STORE_STORED);
    CHECK_EQ_INT(get(st, "f"), STORE_HIT);
    store_free(st);
    store_free(NULL);
}

int main(void)
{
    RUN(test_set_get);
    RUN(test_add_replace_delete);
    RUN(test_append_prepend);
    RUN(test_cas);
    RUN(test_expiry_relative);
    RUN(test_expiry_absolute);
    RUN(test_expiry_negative_and_zero);
    RUN(test_touch_gat);
    RUN(test_lru_eviction);
    RUN(test_too_large);
    RUN(test_arith);
    RUN(test_flush);
    RUN(test_growth);
    RUN(test_hammer);
    RUN(test_default_clock);
    return unit_report("store");
}
