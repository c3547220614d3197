/* test_pool.c -- a pool's pick and its failover policy (proxy/pool.c). */
#include "mid.h"
#include "place/hash.h"
#include "proxy/backend.h"
#include "proxy/pool.h"

#define NSERVERS 4

static struct pool *make_pool(struct rt *rt, const struct dist_mode *mode, enum failover fo,
                              const char *tag)
{
    static const char *names[NSERVERS] = { "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3",
                                           "127.0.0.1:4" };
    struct hash_server hs[NSERVERS];
    struct backend_opts opts[NSERVERS];
    for (int i = 0; i < NSERVERS; i++) {
        hs[i] = (struct hash_server){ .host = "127.0.0.1", .port = (uint16_t)(i + 1), .weight = 1 };
        opts[i] = backend_opts_default;
    }
    struct pool_spec spec = { .name = "p", .servers = hs, .server_names = names,
                              .nservers = NSERVERS, .mode = mode, .opts = opts,
                              .failover = fo, .hash_tag = tag };
    char err[256];
    struct pool *p = pool_new(rt, &spec, err, sizeof err);
    if (!p) fprintf(stderr, "pool_new: %s\n", err);
    return p;
}

static uint32_t index_of(const struct pool *p, const struct backend *b)
{
    for (uint32_t i = 0; i < p->nservers; i++)
        if (p->servers[i].be == b) return i;
    return UINT32_MAX;
}

static void test_pick_follows_the_distribution(void)
{
    struct rt *rt = mid_rt();
    const struct dist_mode *modes[] = { dist_mode_find("python-memcached"), dist_mode_find("ketama"), dist_mode_find("jump") };
    for (size_t m = 0; m < GW_ARRAY_LEN(modes); m++) {
        struct pool *p = make_pool(rt, modes[m], FAILOVER_NONE, NULL);
        CHECK(p != NULL);
        int used[NSERVERS] = { 0 };
        for (int i = 0; i < 2000; i++) {
            char key[32];
            int n = snprintf(key, sizeof key, "key:%d", i);
            uint32_t want = dist_pick(&p->dist, key, (size_t)n);
            uint32_t got = index_of(p, pool_pick(p, key, (size_t)n));
            CHECK_EQ_INT(got, want);
            used[got]++;
        }
        for (int s = 0; s < NSERVERS; s++) CHECK(used[s] > 200); /* every server takes a share */
        pool_free(p);
    }
    mid_rt_free(rt);
}

static void test_hash_tag(void)
{
    struct rt *rt = mid_rt();
    struct pool *p = make_pool(rt, dist_mode_find("ketama"), FAILOVER_NONE, "{}");
    int same = 0;
    for (int i = 0; i < 200; i++) {
        char a[48], b[48], tag[16];
        snprintf(tag, sizeof tag, "u%d", i);
        int na = snprintf(a, sizeof a, "sess:{%s}:cart", tag);
        int nb = snprintf(b, sizeof b, "prof:{%s}", tag);
        struct backend *ba = pool_pick(p, a, (size_t)na), *bb = pool_pick(p, b, (size_t)nb);
        same += ba == bb;
        /* What lies between the braces is what is hashed. */
        CHECK_EQ_INT(index_of(p, ba), dist_pick(&p->dist, tag, strlen(tag)));
    }
    CHECK_EQ_INT(same, 200);
    /* No closing brace, or an empty tag: the whole key. */
    CHECK_EQ_INT(index_of(p, pool_pick(p, "a{bc", 4)), dist_pick(&p->dist, "a{bc", 4));
    CHECK_EQ_INT(index_of(p, pool_pick(p, "a{}c", 4)), dist_pick(&p->dist, "a{}c", 4));
    pool_free(p);
    mid_rt_free(rt);
}

static void test_failover_policies(void)
{
    struct rt *rt = mid_rt();
    enum failover fos[] = { FAILOVER_NONE, FAILOVER_REHASH, FAILOVER_NEXT };
    for (size_t f = 0; f < GW_ARRAY_LEN(fos); f++) {
        struct pool *p = make_pool(rt, dist_mode_find("python-memcached"), fos[f], NULL);
        CHECK_EQ_INT(p->policy.failover, fos[f] != FAILOVER_NONE);
        struct backend *down = p->servers[1].be;
        down->down = true;
        int moved = 0;
        for (int i = 0; i < 500; i++) {
            char key[32];
            int n = snprintf(key, sizeof key, "k%d", i);
            uint32_t home = dist_pick(&p->dist, key, (size_t)n);
            struct backend *b = pool_pick(p, key, (size_t)n);
            /* The policy, as the backends see it, answers the same. */
            struct server_stats *ss;
            CHECK(p->policy.pick(&p->policy, key, (size_t)n, &ss) == b);
            CHECK(b == NULL ? ss == NULL : ss == p->servers[index_of(p, b)].stats);
            if (home != 1) {
                CHECK_EQ_INT(index_of(p, b), home); /* keys of healthy servers stay */
            } else if (fos[f] == FAILOVER_NONE) {
                CHECK(b == down);                   /* ... fails at the backend */
            } else {
                CHECK(b != down && b != NULL);
                moved++;
            }
        }
        if (fos[f] != FAILOVER_NONE) CHECK(moved > 0);
        /* Every server down: nowhere to go. */
        for (int s = 0; s < NSERVERS; s++) p->servers[s].be->down = true;
        if (fos[f] != FAILOVER_NONE) CHECK(pool_pick(p, "k1", 2) == NULL);
        for (int s = 0; s < NSERVERS; s++) p->servers[s].be->down = false;
        pool_free(p);
    }
    mid_rt_free(rt);
}

static void test_servers_share_backends(void)
{
    struct rt *rt = mid_rt();
    struct pool *p1 = make_pool(rt, dist_mode_find("ketama"), FAILOVER_NONE, NULL);
    struct pool *p2 = make_pool(rt, dist_mode_find("jump"), FAILOVER_NEXT, NULL);
    for (int s = 0; s < NSERVERS; s++) {
        CHECK(p1->servers[s].be == p2->servers[s].be);
        CHECK_EQ_INT(p1->servers[s].be->refs, 2);
    }
    pool_free(p1);
    CHECK_EQ_INT(p2->servers[0].be->refs, 1);
    pool_free(p2);
    CHECK(rt->backends == NULL);
    mid_rt_free(rt);
}

static void test_check_pool_opens_nothing(void)
{
    /* No runtime: a config check validates the pool and names no backend. */
    struct hash_server hs = { "127.0.0.1", 1, 1 };
    const char *name = "127.0.0.1:1";
    struct backend_opts o = backend_opts_default;
    struct pool_spec spec = { .name = "p", .servers = &hs, .server_names = &name, .nservers = 1,
                              .mode = dist_mode_find("ketama"), .opts = &o };
    char err[256];
    struct pool *p = pool_new(NULL, &spec, err, sizeof err);
    CHECK(p && p->servers[0].be == NULL);
    pool_free(p);
    const char *bad = "nohost";
    spec.server_names = &bad;
    CHECK(pool_new(NULL, &spec, err, sizeof err) == NULL);
}

int main(void)
{
    RUN(test_pick_follows_the_distribution);
    RUN(test_hash_tag);
    RUN(test_failover_policies);
    RUN(test_servers_share_backends);
    RUN(test_check_pool_opens_nothing);
    return unit_report("pool");
}
