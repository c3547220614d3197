/* test_router.c -- the router (proxy/router.c): batching a multi-get per
 * server, embedded-store keys, failed routes, flush_all's fan-out, and the
 * config hold; with a table resolver in place of the Lua host. */
#include "mid.h"
#include "place/hash.h"
#include "proxy/backend.h"
#include "proxy/pool.h"
#include "proxy/resolver.h"
#include "proxy/router.h"
#include "store/store.h"

/* Routes by prefix: "a:" pool a, "b:" pool b, "i:" the embedded store,
 * "miss:" answered by the route itself, anything else fails. */
struct table {
    struct resolver res;
    struct pool *pools[3];
    int holds;
    uint64_t closed;
};

static enum route_result table_route(struct resolver *rs, struct gw_req *r, uint32_t k,
                                     struct pool **pool)
{
    struct table *t = (struct table *)rs;
    const struct gw_key *key = &r->keys[k];
    static const char *const prefixes[] = { "a:", "b:", "i:" };
    for (int i = 0; i < 3; i++) {
        if (key->cklen >= 2 && !memcmp(key->ckey, prefixes[i], 2)) {
            *pool = t->pools[i];
            return ROUTE_POOL;
        }
    }
    if (key->cklen >= 5 && !memcmp(key->ckey, "miss:", 5)) {
        r->keys[k].state = KEY_MISS;
        return ROUTE_ANSWERED;
    }
    req_fail_key(r, k, "no route for key");
    return ROUTE_FAILED;
}

static int table_pools(struct resolver *rs, struct pool ***pools)
{
    *pools = ((struct table *)rs)->pools;
    return 3;
}

static void table_hold(struct resolver *rs) { ((struct table *)rs)->holds++; }
static void table_release(struct resolver *rs) { ((struct table *)rs)->holds--; }
static void table_closed(struct resolver *rs, uint64_t id) { ((struct table *)rs)->closed = id; }

static enum keyless_verdict table_keyless(struct resolver *rs, struct gw_req *r,
                                          struct pool ***pools, int *npools)
{
    *npools = -1;
    return KEYLESS_ALLOWED;
}

static const struct resolver_ops table_ops = { table_route, table_pools, table_keyless,
                                               table_hold, table_release, table_closed, NULL };

/* A resolver with an auth op: listener "locked" wants user "u" / "p". */
static enum auth_verdict table_auth(struct resolver *rs, const char *listener, const char *user,
                                    size_t ulen, const char *pass, size_t plen)
{
    if (!listener || strcmp(listener, "locked")) return AUTH_NONE;
    if (!user) return AUTH_DENIED;
    return ulen == 1 && *user == 'u' && plen == 1 && *pass == 'p' ? AUTH_OK : AUTH_DENIED;
}

static const struct resolver_ops auth_ops = { table_route, table_pools, table_keyless, table_hold,
                                              table_release, table_closed, table_auth };

static struct pool *servers_pool(struct rt *rt, int n, int first_port, bool multiget_error)
{
    struct hash_server hs[8];
    const char *names[8];
    char bufs[8][32];
    struct backend_opts opts[8];
    for (int i = 0; i < n; i++) {
        snprintf(bufs[i], sizeof bufs[i], "127.0.0.1:%d", first_port + i);
        names[i] = bufs[i];
        hs[i] = (struct hash_server){ "127.0.0.1", (uint16_t)(first_port + i), 1 };
        opts[i] = backend_opts_default;
    }
    struct pool_spec spec = { .name = "p", .servers = hs, .server_names = names,
                              .nservers = (uint32_t)n, .mode = dist_mode_find("ketama"), .opts = opts,
                              .multiget_error = multiget_error };
    char err[256];
    return pool_new(rt, &spec, err, sizeof err);
}

static void table_init(struct table *t, struct rt *rt)
{
    memset(t, 0, sizeof *t);
    t->res.ops = &table_ops;
    t->pools[0] = servers_pool(rt, 3, 1001, false);
    t->pools[1] = servers_pool(rt, 1, 2001, false);
    char err[256];
    t->pools[2] = pool_new_internal(rt, 0, 1 << 20, err, sizeof err);
    rt->resolver = &t->res;
}

static void table_free(struct table *t)
{
    for (int i = 0; i < 3; i++) pool_free(t->pools[i]);
    pool_stores_free();
}

/* The ops queued on b, and their keys as the wire shows them. */
static int queued_ops(const struct backend *b)
{
    int n = 0;
    for (const struct be_op *op = b->send_head; op; op = op->next) n++;
    return n;
}

static void encoded(struct be_op *op, char *out, size_t cap)
{
    struct gw_oq q = { 0 };
    be_codec_text.encode(op, &q);
    size_t n = 0;
    for (uint32_t v = q.head; v < q.head + q.count && n + q.iov[v].iov_len < cap; v++) {
        memcpy(out + n, q.iov[v].iov_base, q.iov[v].iov_len);
        n += q.iov[v].iov_len;
    }
    out[n] = 0;
    oq_free(&q);
}

static void test_multiget_batches_per_server(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    struct pool *a = t.pools[0];
    const char *text = "get a:1 a:2 a:3 a:4 a:5 a:6 a:7 a:8 b:1 b:2\r\n";
    int done = 0;
    struct gw_req *r = mid_req(rt, text, &done);
    r->nkeys = 0; /* the router sets the keys up itself */
    router_dispatch(r);
    CHECK_EQ_INT(done, 0);
    CHECK_EQ_INT(r->nkeys, 10);
    CHECK_EQ_INT(t.holds, 1);
    /* One op per server, its keys in the order asked. */
    int ops = 0;
    for (uint32_t s = 0; s < a->nservers; s++) {
        struct backend *b = a->servers[s].be;
        char want[256] = "get";
        for (int k = 1; k <= 8; k++) {
            char key[8];
            snprintf(key, sizeof key, "a:%d", k);
            if (pool_pick(a, key, strlen(key)) == b) {
                strcat(want, " ");
                strcat(want, key);
            }
        }
        strcat(want, "\r\n");
        if (strlen(want) == 5) {
            CHECK_EQ_INT(queued_ops(b), 0);
            continue;
        }
        CHECK_EQ_INT(queued_ops(b), 1);
        char got[256];
        encoded(b->send_head, got, sizeof got);
        CHECK(strcmp(got, want) == 0);
        CHECK(b->send_head->policy == &a->policy);
        ops++;
    }
    struct backend *bb = t.pools[1]->servers[0].be;
    CHECK_EQ_INT(queued_ops(bb), 1);
    char got[256];
    encoded(bb->send_head, got, sizeof got);
    CHECK(strcmp(got, "get b:1 b:2\r\n") == 0);
    CHECK_EQ_INT(r->pending, ops + 1);
    /* Dropping the pools fails what was queued: the request finishes. */
    table_free(&t);
    CHECK_EQ_INT(done, 1);
    req_unref(r);
    CHECK_EQ_INT(t.holds, 0);
    mid_rt_free(rt);
}

static void test_store_keys_and_failed_routes(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    store_update(t.pools[2]->store, STORE_SET, "i:x", 3, 9, 0, "val", 3, 0);
    int done = 0;
    struct gw_req *r = mid_req(rt, "gets i:x i:y nope:1 miss:1\r\n", &done);
    r->nkeys = 0;
    router_dispatch(r);
    /* Nothing needed a server: done before dispatch returns. */
    CHECK_EQ_INT(done, 1);
    CHECK_EQ_INT(r->keys[0].state, KEY_HIT);
    CHECK_EQ_INT(r->keys[0].flags, 9);
    CHECK_EQ_MEM(r->keys[0].vdata, r->keys[0].bytes, "val");
    CHECK_EQ_INT(r->keys[1].state, KEY_MISS);
    CHECK_EQ_INT(r->keys[2].state, KEY_ERROR);
    CHECK_EQ_INT(r->keys[3].state, KEY_MISS);
    CHECK(r->errors && !req_retrieval_failed(r)); /* a multi-get: the failed key is a miss */
    req_unref(r);
    table_free(&t);
    mid_rt_free(rt);
}

static void test_single_key_commands(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    int d1 = 0, d2 = 0, d3 = 0;
    struct gw_req *r1 = mid_req(rt, "set i:n 0 0 2\r\n41\r\n", &d1);
    struct gw_req *r2 = mid_req(rt, "incr i:n 1\r\n", &d2);
    struct gw_req *r3 = mid_req(rt, "delete b:gone\r\n", &d3);
    router_dispatch(r1);
    router_dispatch(r2);
    router_dispatch(r3);
    CHECK(d1 == 1 && d2 == 1 && d3 == 0);
    CHECK_REPLY(r1, "STORED\r\n");
    CHECK_REPLY(r2, "42\r\n");
    CHECK_EQ_INT(rt->stats.incr_hits, 1);
    CHECK_EQ_INT(rt->stats.cmd_set, 1);
    struct backend *b = t.pools[1]->servers[0].be;
    CHECK_EQ_INT(queued_ops(b), 1);
    char got[64];
    encoded(b->send_head, got, sizeof got);
    CHECK(strcmp(got, "delete b:gone\r\n") == 0);
    table_free(&t);
    CHECK_EQ_INT(d3, 1);
    req_unref(r1);
    req_unref(r2);
    req_unref(r3);
    mid_rt_free(rt);
}

static void test_flush_fans_out(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    store_update(t.pools[2]->store, STORE_SET, "i:x", 3, 0, 0, "v", 1, 0);
    int done = 0;
    struct gw_req *r = mid_req(rt, "flush_all 5\r\n", &done);
    router_flush(r, NULL, -1);
    CHECK_EQ_INT(done, 0);
    int servers = 0;
    for (int p = 0; p < 2; p++) {
        for (uint32_t s = 0; s < t.pools[p]->nservers; s++) {
            struct backend *b = t.pools[p]->servers[s].be;
            CHECK_EQ_INT(queued_ops(b), 1);
            char got[64];
            encoded(b->send_head, got, sizeof got);
            CHECK(strcmp(got, "flush_all 5\r\n") == 0);
            CHECK(b->send_head->policy == NULL); /* a flush never fails over */
            servers++;
        }
    }
    CHECK_EQ_INT(servers, 4);
    CHECK_EQ_INT(r->pending, 4);
    CHECK_EQ_INT(rt->stats.cmd_flush, 1);
    /* The servers never answer (the pools go): one failed flush fails it. */
    table_free(&t);
    CHECK_EQ_INT(done, 1);
    CHECK_REPLY(r, "SERVER_ERROR flush_all failed on a backend\r\n");
    req_unref(r);
    mid_rt_free(rt);
}

static void test_down_server_fails_at_once(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    t.pools[1]->servers[0].be->down = true;
    int done = 0;
    struct gw_req *r = mid_req(rt, "get b:1\r\n", &done);
    r->nkeys = 0;
    router_dispatch(r);
    CHECK_EQ_INT(done, 1);
    CHECK(req_retrieval_failed(r)); /* one key: the error is the answer */
    CHECK_REPLY(r, "SERVER_ERROR backend 127.0.0.1:2001 is down\r\n");
    req_unref(r);
    CHECK_EQ_INT(t.holds, 0);
    table_free(&t);
    mid_rt_free(rt);
}

/* memcached closes a connection whose unfinished line passes 2048 bytes
 * unless it is a get: a gat of many keys goes out in several lines, each
 * within that, with every key once, in order. */
static void test_gat_lines_stay_short(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    char text[40000] = "gats 99";
    for (int i = 0; i < 1500; i++) sprintf(text + strlen(text), " b:key-%06d", i);
    strcat(text, "\r\n");
    int done = 0;
    struct gw_req *r = mid_req(rt, text, &done);
    r->nkeys = 0;
    router_dispatch(r);
    struct backend *b = t.pools[1]->servers[0].be;
    int ops = queued_ops(b), seen = 0;
    CHECK(ops > 1);
    for (struct be_op *op = b->send_head; op; op = op->next) {
        static char got[4096];
        encoded(op, got, sizeof got);
        CHECK(strlen(got) <= 2048);
        CHECK(strncmp(got, "gats 99 ", 8) == 0);
        for (char *k = strstr(got, "b:key-"); k; k = strstr(k + 1, "b:key-")) {
            CHECK_EQ_INT(atoi(k + 6), seen);
            seen++;
        }
    }
    CHECK_EQ_INT(seen, 1500);
    /* A get is not limited: one line. */
    int done2 = 0;
    memcpy(text, "get    ", 7);
    struct gw_req *r2 = mid_req(rt, text, &done2);
    r2->nkeys = 0;
    router_dispatch(r2);
    CHECK_EQ_INT(queued_ops(b), ops + 1);
    table_free(&t);
    CHECK(done && done2);
    req_unref(r);
    req_unref(r2);
    mid_rt_free(rt);
}

/* Keys of one request that reach the router one at a time (their routes
 * waited) join the op still queued for the same server: one queue entry. */
static void test_late_keys_join_the_open_batch(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    int done = 0;
    struct gw_req *r = mid_req(rt, "get b:1 b:2 b:3\r\n", &done);
    r->pending = 3;
    for (uint32_t k = 0; k < 3; k++) router_send(t.pools[1], r, k);
    struct backend *b = t.pools[1]->servers[0].be;
    CHECK_EQ_INT(queued_ops(b), 1);
    CHECK_EQ_INT(b->nqueued, 1);
    char got[64];
    encoded(b->send_head, got, sizeof got);
    CHECK(strcmp(got, "get b:1 b:2 b:3\r\n") == 0);
    table_free(&t);
    r->pending = 1;
    req_op_done(r);
    CHECK_EQ_INT(done, 1);
    req_unref(r);
    mid_rt_free(rt);
}

/* A healthy server whose queue is full: the multi-get fails whole, never a
 * silent miss. */
static void test_queue_full_is_an_error(void)
{
    struct rt *rt = mid_rt();
    struct table t;
    table_init(&t, rt);
    struct backend *b = t.pools[1]->servers[0].be;
    b->opts.max_queue = 1;
    int d1 = 0, d2 = 0;
    struct gw_req *r1 = mid_req(rt, "get b:1\r\n", &d1);
    struct gw_req *r2 = mid_req(rt, "get b:2 a:1\r\n", &d2);
    r1->nkeys = r2->nkeys = 0;
    router_dispatch(r1);
    router_dispatch(r2);
    CHECK(r2->fail_whole && req_retrieval_failed(r2));
    CHECK_REPLY(r2, "SERVER_ERROR backend 127.0.0.1:2001 queue is full\r\n");
    table_free(&t);
    req_unref(r1);
    req_unref(r2);
    mid_rt_free(rt);
}

/* A recycled request does not keep the key array of a huge multi-get. */
static void test_free_list_drops_big_key_arrays(void)
{
    struct rt *rt = mid_rt();
    struct mc_request mc = { .cmd = MC_GET };
    struct gw_req *r = req_new(rt, NULL, NULL, &mc);
    CHECK_EQ_INT(req_reserve_keys(r, 100000), GW_OK);
    CHECK(r->keys_heap != NULL);
    req_unref(r);
    struct gw_req *again = req_new(rt, NULL, NULL, &mc);
    CHECK(again == r);                 /* the same request, recycled ... */
    CHECK(again->keys_heap == NULL);   /* ... without its 100,000 keys */
    CHECK_EQ_INT(req_reserve_keys(again, 100), GW_OK);
    req_unref(again);
    again = req_new(rt, NULL, NULL, &mc);
    CHECK(again->keys_heap != NULL);   /* a small array is kept */
    req_unref(again);
    mid_rt_free(rt);
}

/* resolver_auth: a resolver without the op (or none at all) asks no one to
 * log in; one with it is asked. */
static void test_auth_is_optional(void)
{
    struct resolver plain = { &table_ops }, locked = { &auth_ops };
    CHECK_EQ_INT(resolver_auth(NULL, "locked", NULL, 0, NULL, 0), AUTH_NONE);
    CHECK_EQ_INT(resolver_auth(&plain, "locked", NULL, 0, NULL, 0), AUTH_NONE);
    CHECK_EQ_INT(resolver_auth(&plain, "locked", "u", 1, "x", 1), AUTH_NONE);
    CHECK_EQ_INT(resolver_auth(&locked, "open", NULL, 0, NULL, 0), AUTH_NONE);
    CHECK_EQ_INT(resolver_auth(&locked, "locked", NULL, 0, NULL, 0), AUTH_DENIED);
    CHECK_EQ_INT(resolver_auth(&locked, "locked", "u", 1, "x", 1), AUTH_DENIED);
    CHECK_EQ_INT(resolver_auth(&locked, "locked", "u", 1, "p", 1), AUTH_OK);
}

int main(void)
{
    RUN(test_multiget_batches_per_server);
    RUN(test_store_keys_and_failed_routes);
    RUN(test_single_key_commands);
    RUN(test_flush_fans_out);
    RUN(test_down_server_fails_at_once);
    RUN(test_gat_lines_stay_short);
    RUN(test_late_keys_join_the_open_batch);
    RUN(test_queue_full_is_an_error);
    RUN(test_free_list_drops_big_key_arrays);
    RUN(test_auth_is_optional);
    return unit_report("router");
}
