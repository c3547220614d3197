/* test_backend.c -- the backend connection (proxy/backend.c) and its text
 * codec (proxy/be_text.c) against a scripted peer on a real socket. */
#include "mid.h"
#include "proxy/backend.h"

static struct backend_opts opts_with(double timeout, uint32_t failure_limit)
{
    struct backend_opts o = backend_opts_default;
    o.timeout = timeout;
    o.failure_limit = failure_limit;
    return o;
}

/* An op for all of r's keys, linked as the router batches them. */
static struct be_op *op_all_keys(struct rt *rt, struct gw_req *r, const struct be_policy *pol)
{
    struct be_op *op = op_new(rt, r, pol, r->mc.cmd);
    if (mc_cmd_is_retrieval(r->mc.cmd)) {
        for (uint32_t i = 0; i + 1 < r->nkeys; i++) r->keys[i].next = (int32_t)i + 1;
        op->first_key = op->cur_key = 0;
        op->last_key = (int32_t)r->nkeys - 1;
    }
    return op;
}

static void test_batched_get(void)
{
    struct rt *rt = mid_rt();
    struct peer p;
    peer_listen(&p);
    struct backend_opts o = opts_with(2, 2);
    struct backend *b = backend_acquire(rt, p.addr, &p.gaddr, &o);
    int done = 0;
    struct gw_req *r = mid_req(rt, "get a b c\r\n", &done);
    backend_enqueue(b, op_all_keys(rt, r, NULL));
    CHECK(peer_expect(&p, rt, "get a b c\r\n"));
    peer_send(&p, "VALUE b 5 2\r\nhi\r\nEND\r\n");
    CHECK(PUMP_UNTIL(rt, done == 1));
    CHECK_EQ_INT(r->keys[0].state, KEY_MISS);
    CHECK_EQ_INT(r->keys[1].state, KEY_HIT);
    CHECK_EQ_INT(r->keys[1].flags, 5);
    CHECK_EQ_MEM(r->keys[1].vdata, r->keys[1].bytes, "hi");
    CHECK_EQ_INT(r->keys[2].state, KEY_MISS);
    CHECK(!r->errors);
    req_unref(r);
    backend_release(b);
    peer_close(&p);
    mid_rt_free(rt);
}

static void test_pipelined_replies_in_order(void)
{
    struct rt *rt = mid_rt();
    struct peer p;
    peer_listen(&p);
    struct backend_opts o = opts_with(2, 2);
    struct backend *b = backend_acquire(rt, p.addr, &p.gaddr, &o);
    int done1 = 0, done2 = 0, done3 = 0;
    struct gw_req *r1 = mid_req(rt, "set s 1 0 3\r\nabc\r\n", &done1);
    struct gw_req *r2 = mid_req(rt, "delete d\r\n", &done2);
    struct gw_req *r3 = mid_req(rt, "incr n 7\r\n", &done3);
    backend_enqueue(b, op_all_keys(rt, r1, NULL));
    backend_enqueue(b, op_all_keys(rt, r2, NULL));
    backend_enqueue(b, op_all_keys(rt, r3, NULL));
    CHECK(peer_expect(&p, rt, "incr n 7\r\n"));
    CHECK(strcmp(p.in, "set s 1 0 3\r\nabc\r\ndelete d\r\nincr n 7\r\n") == 0);
    peer_send(&p, "STORED\r\nNOT_FOUND\r\n15\r\n");
    CHECK(PUMP_UNTIL(rt, done1 && done2 && done3));
    CHECK_REPLY(r1, "STORED\r\n");
    CHECK_EQ_INT(r1->rkind, RESP_STORED);
    CHECK_REPLY(r2, "NOT_FOUND\r\n");
    CHECK_REPLY(r3, "15\r\n");
    CHECK_EQ_INT(r3->rkind, RESP_NUMBER);
    CHECK_EQ_INT(rt->stats.delete_misses, 1);
    CHECK_EQ_INT(rt->stats.incr_hits, 1);
    req_unref(r1);
    req_unref(r2);
    req_unref(r3);
    backend_release(b);
    peer_close(&p);
    mid_rt_free(rt);
}

static void test_invalid_reply_marks_down(void)
{
    struct rt *rt = mid_rt();
    struct peer p;
    peer_listen(&p);
    struct backend_opts o = opts_with(2, 1);
    o.retry_timeout = 60; /* no probe during the test */
    struct backend *b = backend_acquire(rt, p.addr, &p.gaddr, &o);
    int done = 0, done2 = 0;
    struct gw_req *r = mid_req(rt, "get x\r\n", &done);
    backend_enqueue(b, op_all_keys(rt, r, NULL));
    CHECK(peer_expect(&p, rt, "get x\r\n"));
    peer_send(&p, "BOGUS REPLY\r\n");
    CHECK(PUMP_UNTIL(rt, done == 1));
    char want[128];
    snprintf(want, sizeof want, "SERVER_ERROR backend %s sent an invalid reply\r\n", p.addr);
    CHECK_REPLY(r, want);
    CHECK_EQ_INT(r->keys[0].state, KEY_ERROR);
    CHECK(!backend_is_up(b));
    CHECK_EQ_INT(rt->stats.gw_backend_marked_down, 1);
    /* Down: the next op fails at once, without waiting for anything. */
    struct gw_req *r2 = mid_req(rt, "get y\r\n", &done2);
    backend_enqueue(b, op_all_keys(rt, r2, NULL));
    CHECK_EQ_INT(done2, 1);
    snprintf(want, sizeof want, "SERVER_ERROR backend %s is down\r\n", p.addr);
    CHECK_REPLY(r2, want);
    req_unref(r);
    req_unref(r2);
    backend_release(b);
    peer_close(&p);
    mid_rt_free(rt);
}

static void test_unexpected_reply(void)
{
    struct rt *rt = mid_rt();
    struct peer p;
    peer_listen(&p);
    struct backend_opts o = opts_with(2, 2);
    struct backend *b = backend_acquire(rt, p.addr, &p.gaddr, &o);
    int done = 0;
    struct gw_req *r = mid_req(rt, "set k 0 0 1\r\nv\r\n", &done);
    backend_enqueue(b, op_all_keys(rt, r, NULL));
    CHECK(peer_expect(&p, rt, "v\r\n"));
    peer_send(&p, "END\r\n"); /* a reply, but not to a set */
    CHECK(PUMP_UNTIL(rt, done == 1));
    char want[128];
    snprintf(want, sizeof want, "SERVER_ERROR backend %s sent an unexpected reply\r\n", p.addr);
    CHECK_REPLY(r, want);
    CHECK(backend_is_up(b)); /* one failure of two */
    req_unref(r);
    backend_release(b);
    peer_close(&p);
    mid_rt_free(rt);
}

static void test_timeout(void)
{
    struct rt *rt = mid_rt();
    struct peer p;
    peer_listen(&p);
    struct backend_opts o = opts_with(0.05, 2);
    struct backend *b = backend_acquire(rt, p.addr, &p.gaddr, &o);
    int done = 0;
    struct gw_req *r = mid_req(rt, "touch k 10\r\n", &done);
    backend_enqueue(b, op_all_keys(rt, r, NULL));
    CHECK(peer_expect(&p, rt, "touch k 10\r\n"));
    CHECK(PUMP_UNTIL(rt, done == 1));
    char want[128];
    snprintf(want, sizeof want, "SERVER_ERROR backend %s timed out\r\n", p.addr);
    CHECK_REPLY(r, want);
    CHECK_EQ_INT(rt->stats.gw_backend_timeouts, 1);
    req_unref(r);
    backend_release(b);
    peer_close(&p);
    mid_rt_free(rt);
}

/* A policy that fails over to one fixed backend and fails multi-gets whole. */
struct fixed_policy {
    struct be_policy pol;
    struct backend *to;
    int picks;
};

static struct backend *fixed_pick(const struct be_policy *pol, const char *key, size_t len)
{
    struct fixed_policy *f = (struct fixed_policy *)pol;
    f->picks++;
    return f->to;
}

static void test_failover_reroutes_unsent_ops(void)
{
    struct rt *rt = mid_rt();
    struct peer dead, live;
    peer_listen(&dead);
    peer_listen(&live);
    close(dead.lfd); /* connections to it are refused */
    struct backend_opts o = opts_with(2, 1);
    o.retry_timeout = 60;
    struct backend *a = backend_acquire(rt, dead.addr, &dead.gaddr, &o);
    struct backend *b = backend_acquire(rt, live.addr, &live.gaddr, &o);
    struct fixed_policy fp = { { .failover = true, .pick = fixed_pick }, b, 0 };
    int done1 = 0, done2 = 0;
    struct gw_req *r1 = mid_req(rt, "set k1 0 0 2\r\nv1\r\n", &done1);
    struct gw_req *r2 = mid_req(rt, "get k2 k3\r\n", &done2);
    backend_enqueue(a, op_all_keys(rt, r1, &fp.pol));
    backend_enqueue(a, op_all_keys(rt, r2, &fp.pol));
    /* The connect is refused: a is down, and its never-sent ops go where
     * the policy says, a multi-get split into one op per key. */
    CHECK(peer_expect(&live, rt, "get k3\r\n"));
    CHECK(!backend_is_up(a));
    CHECK_EQ_INT(fp.picks, 3);
    CHECK(strcmp(live.in, "set k1 0 0 2\r\nv1\r\nget k2\r\nget k3\r\n") == 0);
    peer_send(&live, "STORED\r\nVALUE k2 0 1\r\nx\r\nEND\r\nEND\r\n");
    CHECK(PUMP_UNTIL(rt, done1 && done2));
    CHECK_REPLY(r1, "STORED\r\n");
    CHECK_EQ_INT(r2->keys[0].state, KEY_HIT);
    CHECK_EQ_INT(r2->keys[1].state, KEY_MISS);
    req_unref(r1);
    req_unref(r2);
    backend_release(a);
    backend_release(b);
    peer_close(&live);
    mid_rt_free(rt);
}

static void test_multiget_error_policy(void)
{
    struct rt *rt = mid_rt();
    struct peer dead;
    peer_listen(&dead);
    close(dead.lfd);
    struct backend_opts o = opts_with(2, 5);
    struct backend *a = backend_acquire(rt, dead.addr, &dead.gaddr, &o);
    struct be_policy whole = { .failover = false, .multiget_error = true };
    struct be_policy miss = { .failover = false, .multiget_error = false };
    int d1 = 0, d2 = 0;
    struct gw_req *r1 = mid_req(rt, "get a b\r\n", &d1);
    struct gw_req *r2 = mid_req(rt, "get a b\r\n", &d2);
    backend_enqueue(a, op_all_keys(rt, r1, &whole));
    backend_enqueue(a, op_all_keys(rt, r2, &miss));
    CHECK(PUMP_UNTIL(rt, d1 && d2));
    CHECK(r1->errors && r1->fail_whole && req_retrieval_failed(r1));
    CHECK(r2->errors && !r2->fail_whole && !req_retrieval_failed(r2));
    req_unref(r1);
    req_unref(r2);
    backend_release(a);
    mid_rt_free(rt);
}

static void test_shared_registry_and_release(void)
{
    struct rt *rt = mid_rt();
    struct peer p;
    peer_listen(&p);
    struct backend_opts o = opts_with(2, 2), o2 = opts_with(3, 2);
    struct backend *b1 = backend_acquire(rt, p.addr, &p.gaddr, &o);
    struct backend *b2 = backend_acquire(rt, p.addr, &p.gaddr, &o);
    struct backend *b3 = backend_acquire(rt, p.addr, &p.gaddr, &o2);
    CHECK(b1 == b2);   /* same address and options: one connection */
    CHECK(b1 != b3);   /* other options: another */
    backend_release(b2);
    int done = 0;
    struct gw_req *r = mid_req(rt, "delete k\r\n", &done);
    backend_enqueue(b1, op_all_keys(rt, r, NULL));
    /* The last reference goes with an op still queued: it fails. */
    backend_release(b1);
    CHECK_EQ_INT(done, 1);
    char want[128];
    snprintf(want, sizeof want, "SERVER_ERROR backend %s closed\r\n", p.addr);
    CHECK_REPLY(r, want);
    req_unref(r);
    backend_release(b3);
    CHECK(rt->backends == NULL);
    peer_close(&p);
    mid_rt_free(rt);
}

static void test_text_encoding(void)
{
    struct rt *rt = mid_rt();
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "get a b\r\n", "get a b\r\n" },
        { "gats 300 k1 k2\r\n", "gats 300 k1 k2\r\n" },
        { "cas k 7 100 2 99 noreply\r\nxy\r\n", "cas k 7 100 2 99\r\nxy\r\n" },
        { "append k 0 0 1\r\nz\r\n", "append k 0 0 1\r\nz\r\n" },
        { "decr k 3\r\n", "decr k 3\r\n" },
        { "delete k 0\r\n", "delete k\r\n" },
        { "touch k -1\r\n", "touch k -1\r\n" },
        { "flush_all 10\r\n", "flush_all 10\r\n" },
        { "flush_all\r\n", "flush_all\r\n" },
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        int done = 0;
        struct gw_req *r = mid_req(rt, cases[i].in, &done);
        struct be_op *op = op_all_keys(rt, r, NULL);
        struct gw_oq q = { 0 };
        CHECK_EQ_INT(be_codec_text.encode(op, &q), GW_OK);
        char out[256];
        size_t n = 0;
        for (uint32_t v = q.head; v < q.head + q.count; v++) {
            memcpy(out + n, q.iov[v].iov_base, q.iov[v].iov_len);
            n += q.iov[v].iov_len;
        }
        CHECK_EQ_MEM(out, n, cases[i].out);
        oq_free(&q);
        r->pending = 0;
        req_unref(r); /* the op's reference */
        req_unref(r);
        free(op);
    }
    mid_rt_free(rt);
}

int main(void)
{
    RUN(test_batched_get);
    RUN(test_pipelined_replies_in_order);
    RUN(test_invalid_reply_marks_down);
    RUN(test_unexpected_reply);
    RUN(test_timeout);
    RUN(test_failover_reroutes_unsent_ops);
    RUN(test_multiget_error_policy);
    RUN(test_shared_registry_and_release);
    RUN(test_text_encoding);
    return unit_report("backend");
}
