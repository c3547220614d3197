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

/* A runtime, a scripted server and a backend connected to it. */
struct fx {
    struct rt *rt;
    struct peer p;
    struct backend *b;
    char err[160];
};

static void fx_up(struct fx *f, double timeout, uint32_t failure_limit)
{
    f->rt = mid_rt();
    peer_listen(&f->p);
    struct backend_opts o = opts_with(timeout, failure_limit);
    o.retry_timeout = 60; /* no probe during a test */
    f->b = backend_acquire(f->rt, NULL, f->p.addr, &f->p.gaddr, &o);
}

static void fx_down(struct fx *f)
{
    backend_release(f->b, NULL);
    peer_close(&f->p);
    mid_rt_free(f->rt);
}

/* Request `text`, sent whole on f's backend. */
static struct gw_req *fx_send(struct fx *f, const char *text, int *done)
{
    struct gw_req *r = mid_req(f->rt, text, done);
    backend_enqueue(f->b, op_all_keys(f->rt, r, NULL));
    return r;
}

/* The reply a failure of f's server gives. */
static const char *fx_error(struct fx *f, const char *what)
{
    snprintf(f->err, sizeof f->err, "SERVER_ERROR backend %s %s\r\n", f->p.addr, what);
    return f->err;
}

static void test_batched_get(void)
{
    struct fx f;
    fx_up(&f, 2, 2);
    int done = 0;
    struct gw_req *r = fx_send(&f, "get a b c\r\n", &done);
    CHECK(peer_expect(&f.p, f.rt, "get a b c\r\n"));
    peer_send(&f.p, "VALUE b 5 2\r\nhi\r\nEND\r\n");
    CHECK(PUMP_UNTIL(f.rt, done == 1));
    CHECK_EQ_INT(r->keys[0].state, KEY_MISS);
    CHECK_EQ_INT(r->keys[1].state, KEY_HIT);
    CHECK_EQ_INT(r->keys[1].flags, 5);
    CHECK_EQ_MEM(r->keys[1].vdata, r->keys[1].bytes, "hi");
    CHECK_EQ_INT(r->keys[2].state, KEY_MISS);
    CHECK(!r->errors);
    req_unref(r);
    fx_down(&f);
}

static void test_pipelined_replies_in_order(void)
{
    struct fx f;
    fx_up(&f, 2, 2);
    int done1 = 0, done2 = 0, done3 = 0;
    struct gw_req *r1 = fx_send(&f, "set s 1 0 3\r\nabc\r\n", &done1);
    struct gw_req *r2 = fx_send(&f, "delete d\r\n", &done2);
    struct gw_req *r3 = fx_send(&f, "incr n 7\r\n", &done3);
    CHECK(peer_expect(&f.p, f.rt, "incr n 7\r\n"));
    CHECK(strcmp(f.p.in, "set s 1 0 3\r\nabc\r\ndelete d\r\nincr n 7\r\n") == 0);
    peer_send(&f.p, "STORED\r\nNOT_FOUND\r\n15\r\n");
    CHECK(PUMP_UNTIL(f.rt, done1 && done2 && done3));
    CHECK_REPLY(r1, "STORED\r\n");
    CHECK_EQ_INT(r1->rkind, RESP_STORED);
    CHECK_REPLY(r2, "NOT_FOUND\r\n");
    CHECK_REPLY(r3, "15\r\n");
    CHECK_EQ_INT(r3->rkind, RESP_NUMBER);
    CHECK_EQ_INT(f.rt->stats.delete_misses, 1);
    CHECK_EQ_INT(f.rt->stats.incr_hits, 1);
    req_unref(r1);
    req_unref(r2);
    req_unref(r3);
    fx_down(&f);
}

static void test_invalid_reply_marks_down(void)
{
    struct fx f;
    fx_up(&f, 2, 1);
    int done = 0, done2 = 0;
    struct gw_req *r = fx_send(&f, "get x\r\n", &done);
    CHECK(peer_expect(&f.p, f.rt, "get x\r\n"));
    peer_send(&f.p, "BOGUS REPLY\r\n");
    CHECK(PUMP_UNTIL(f.rt, done == 1));
    CHECK_REPLY(r, fx_error(&f, "sent an invalid reply"));
    CHECK_EQ_INT(r->keys[0].state, KEY_ERROR);
    CHECK(!backend_is_up(f.b));
    CHECK_EQ_INT(f.rt->stats.gw_backend_marked_down, 1);
    /* Down: the next op fails at once, without waiting for anything. */
    struct gw_req *r2 = fx_send(&f, "get y\r\n", &done2);
    CHECK_EQ_INT(done2, 1);
    CHECK_REPLY(r2, fx_error(&f, "is down"));
    req_unref(r);
    req_unref(r2);
    fx_down(&f);
}

static void test_unexpected_reply(void)
{
    struct fx f;
    fx_up(&f, 2, 2);
    int done = 0;
    struct gw_req *r = fx_send(&f, "set k 0 0 1\r\nv\r\n", &done);
    CHECK(peer_expect(&f.p, f.rt, "v\r\n"));
    peer_send(&f.p, "END\r\n"); /* a reply, but not to a set */
    CHECK(PUMP_UNTIL(f.rt, done == 1));
    CHECK_REPLY(r, fx_error(&f, "sent an unexpected reply"));
    CHECK(backend_is_up(f.b)); /* one failure of two */
    req_unref(r);
    fx_down(&f);
}

static void test_timeout(void)
{
    struct fx f;
    fx_up(&f, 0.05, 2);
    int done = 0;
    struct gw_req *r = fx_send(&f, "touch k 10\r\n", &done);
    CHECK(peer_expect(&f.p, f.rt, "touch k 10\r\n"));
    CHECK(PUMP_UNTIL(f.rt, done == 1));
    CHECK_REPLY(r, fx_error(&f, "timed out"));
    CHECK_EQ_INT(f.rt->stats.gw_backend_timeouts, 1);
    req_unref(r);
    fx_down(&f);
}

/* A policy that fails over to one fixed backend and fails multi-gets whole. */
struct fixed_policy {
    struct be_policy pol;
    struct backend *to;
    int picks;
};

static struct backend *fixed_pick(const struct be_policy *pol, const char *key, size_t len,
                                  struct server_stats **stats)
{
    struct fixed_policy *f = (struct fixed_policy *)pol;
    f->picks++;
    *stats = NULL;
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
    struct backend *a = backend_acquire(rt, NULL, dead.addr, &dead.gaddr, &o);
    struct backend *b = backend_acquire(rt, NULL, live.addr, &live.gaddr, &o);
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
    backend_release(a, NULL);
    backend_release(b, NULL);
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
    struct backend *a = backend_acquire(rt, NULL, dead.addr, &dead.gaddr, &o);
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
    backend_release(a, NULL);
    mid_rt_free(rt);
}

static void test_shared_registry_and_release(void)
{
    struct fx f;
    fx_up(&f, 2, 2);
    struct backend_opts o = f.b->opts, o2 = opts_with(3, 2);
    struct backend *b2 = backend_acquire(f.rt, NULL, f.p.addr, &f.p.gaddr, &o);
    struct backend *b3 = backend_acquire(f.rt, NULL, f.p.addr, &f.p.gaddr, &o2);
    CHECK(f.b == b2);  /* same address and options: one connection */
    CHECK(f.b != b3);  /* other options: another */
    backend_release(b2, NULL);
    backend_release(b3, NULL);
    int done = 0;
    struct gw_req *r = fx_send(&f, "delete k\r\n", &done);
    /* The last reference goes with an op still queued: it fails. */
    backend_release(f.b, NULL);
    CHECK_EQ_INT(done, 1);
    CHECK_REPLY(r, fx_error(&f, "closed"));
    CHECK(f.rt->backends == NULL);
    req_unref(r);
    peer_close(&f.p);
    mid_rt_free(f.rt);
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
