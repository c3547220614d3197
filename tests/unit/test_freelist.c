/* test_freelist.c -- the bounded free list (core/base/freelist.c): its
 * bound, its low-water-mark trim, and what the buffers built on it
 * (core/base/buf.c) do with it: an rbuf that gives its buffer back and
 * takes one again, an output queue that gives its array back. */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/freelist.h"
#include "unit.h"

struct obj { void *link; int tag; };

static int released;
static void release(void *p)
{
    released++;
    free(p);
}

static struct obj *obj_new(int tag)
{
    struct obj *o = malloc(sizeof *o);
    o->tag = tag;
    return o;
}

static void test_bound(void)
{
    struct gw_freelist fl = GW_FREELIST_INIT(3);
    CHECK(freelist_get(&fl) == NULL);
    struct obj *o[4];
    for (int i = 0; i < 4; i++) o[i] = obj_new(i);
    for (int i = 0; i < 3; i++) CHECK(freelist_put(&fl, o[i]));
    CHECK(!freelist_put(&fl, o[3]));   /* full: the caller frees it */
    free(o[3]);
    CHECK_EQ_INT(fl.n, 3);
    /* A stack: the last one put is the first one got, its tag intact. */
    struct obj *g = freelist_get(&fl);
    CHECK(g == o[2]);
    CHECK_EQ_INT(g->tag, 2);
    free(g);
    released = 0;
    CHECK_EQ_INT(freelist_drain(&fl, release), 2);
    CHECK_EQ_INT(released, 2);
    CHECK_EQ_INT(fl.n, 0);
    CHECK(freelist_get(&fl) == NULL);
}

/* What a period's load cycled through is kept; what sat untouched for a
 * whole period is freed, the coldest (bottom of the stack) first. */
static void test_trim_low_water(void)
{
    struct gw_freelist fl = GW_FREELIST_INIT(100);
    for (int i = 0; i < 10; i++) CHECK(freelist_put(&fl, obj_new(i)));
    released = 0;
    /* Nothing was taken since the list started at 0: the 10 are new this
     * period and none is trimmed. */
    CHECK_EQ_INT(freelist_trim(&fl, release), 0);
    CHECK_EQ_INT(fl.n, 10);

    /* A load that takes 4 and puts them back: 6 sat untouched. */
    void *got[4];
    for (int i = 0; i < 4; i++) got[i] = freelist_get(&fl);
    for (int i = 3; i >= 0; i--) CHECK(freelist_put(&fl, got[i]));
    CHECK_EQ_INT(freelist_trim(&fl, release), 6);
    CHECK_EQ_INT(released, 6);
    CHECK_EQ_INT(fl.n, 4);
    /* The 4 kept are the ones used, on top (tags 9..6). */
    int tags = 0;
    for (struct obj *o = fl.head; o; o = o->link) tags = tags * 10 + o->tag;
    CHECK_EQ_INT(tags, 9876);

    /* An idle period: all 4 go. */
    CHECK_EQ_INT(freelist_trim(&fl, release), 4);
    CHECK_EQ_INT(fl.n, 0);
    CHECK(fl.head == NULL);
    CHECK_EQ_INT(freelist_trim(&fl, release), 0);

    /* Taken down to empty and refilled in a period: none trimmed. */
    for (int i = 0; i < 5; i++) CHECK(freelist_put(&fl, obj_new(i)));
    CHECK_EQ_INT(freelist_trim(&fl, release), 0);
    void *all[5];
    for (int i = 0; i < 5; i++) all[i] = freelist_get(&fl);
    for (int i = 0; i < 5; i++) CHECK(freelist_put(&fl, all[i]));
    CHECK_EQ_INT(freelist_trim(&fl, release), 0);
    CHECK_EQ_INT(freelist_drain(&fl, release), 5);
}

/* An rbuf gives its buffer back and takes one from the list again; a
 * buffer other owners still hold stays alive.  Trim, twice idle, frees
 * what is cached. */
static void test_rbuf_release(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct gw_rbuf r = { 0 };
    size_t n;
    CHECK(write(sv[1], "get a\r\n", 7) == 7);
    CHECK_EQ_INT(rbuf_read(&r, sv[0], 0, &n), GW_OK);
    CHECK_EQ_INT(n, 7);
    struct gw_buf *first = r.b;
    buf_ref(first);                  /* a request pointing into it */
    rbuf_release(&r);
    CHECK(r.b == NULL);
    CHECK_EQ_INT(rbuf_len(&r), 0);
    CHECK_EQ_MEM(first->data, 7, "get a\r\n");
    buf_unref(first);                /* the last owner: onto the list */

    CHECK(write(sv[1], "get b\r\n", 7) == 7);
    CHECK_EQ_INT(rbuf_read(&r, sv[0], 0, &n), GW_OK);
    CHECK(r.b == first);             /* reused, not malloc'd */
    CHECK_EQ_INT(r.b->cap, GW_BUF_SIZE);
    CHECK_EQ_INT(r.b->refs, 1);
    CHECK_EQ_MEM(rbuf_data(&r), rbuf_len(&r), "get b\r\n");
    rbuf_release(&r);

    buf_cache_trim();                /* the buffer came back this period */
    size_t freed = buf_cache_trim(); /* a whole period unused: freed */
    CHECK(freed >= GW_BUF_SIZE);
    CHECK_EQ_INT(buf_cache_trim(), 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_oq_free(void)
{
    struct gw_oq q = { 0 };
    CHECK_EQ_INT(oq_push(&q, "x", 1), GW_OK);
    struct iovec *arr = q.iov;
    CHECK(arr != NULL);
    oq_free(&q);
    CHECK(q.iov == NULL);
    CHECK_EQ_INT(q.bytes, 0);
    CHECK_EQ_INT(oq_push(&q, "y", 1), GW_OK);   /* still usable */
    CHECK(q.iov == arr);                        /* from the list */
    /* Grown past the first size, it goes back to malloc, counted. */
    for (int i = 0; i < 200; i++) CHECK_EQ_INT(oq_push(&q, "z", 1), GW_OK);
    buf_cache_trim();
    oq_free(&q);
    CHECK(buf_cache_trim() > 0);
    buf_cache_drain();
}

int main(void)
{
    RUN(test_bound);
    RUN(test_trim_low_water);
    RUN(test_rbuf_release);
    RUN(test_oq_free);
    return unit_report("freelist");
}
