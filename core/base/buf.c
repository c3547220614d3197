/* buf.c -- see buf.h. */
#define _GNU_SOURCE
#include "buf.h"

#include "freelist.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* This thread's free lists (buf.h says why these bounds). */
#define BUF_CACHE_MAX 1024
#define IOV_CACHE_MAX 1024
#define OQ_FIRST_CAP 64

static __thread struct gw_freelist bufs = GW_FREELIST_INIT(BUF_CACHE_MAX);
static __thread struct gw_freelist iovs = GW_FREELIST_INIT(IOV_CACHE_MAX);
/* Bytes this thread gave back to malloc since buf_cache_trim last asked. */
static __thread size_t given_back;

struct gw_buf *buf_new(size_t cap)
{
    struct gw_buf *b;
    if (cap <= GW_BUF_SIZE && (b = freelist_get(&bufs))) {
        b->cap = GW_BUF_SIZE; /* the list's link took the first word */
    } else {
        if (cap < GW_BUF_SIZE) cap = GW_BUF_SIZE;
        if (cap > UINT32_MAX - sizeof *b) return NULL;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = (uint32_t)cap;
    }
    b->refs = 1;
    return b;
}

void buf_unref(struct gw_buf *b)
{
    if (!b || --b->refs > 0) return;
    if (b->cap == GW_BUF_SIZE && freelist_put(&bufs, b)) return;
    given_back += sizeof *b + b->cap;
    free(b);
}

static void release(void *p) { free(p); }

size_t buf_cache_trim(void)
{
    size_t n = given_back;
    given_back = 0;
    n += (size_t)freelist_trim(&bufs, release) * (sizeof(struct gw_buf) + GW_BUF_SIZE);
    n += (size_t)freelist_trim(&iovs, release) * OQ_FIRST_CAP * sizeof(struct iovec);
    return n;
}

void buf_cache_drain(void)
{
    freelist_drain(&bufs, release);
    freelist_drain(&iovs, release);
    given_back = 0;
}

/* Make room for `need` unconsumed bytes (and at least a little to read
 * into).  Moves bytes only when nobody else points at them. */
static int rbuf_make_room(struct gw_rbuf *r, size_t need)
{
    size_t have = r->end - r->pos;
    if (need < have + 1) need = have + 1;
    if (!r->b) {
        r->b = buf_new(need);
        if (!r->b) return GW_NOMEM;
        r->pos = r->end = 0;
        return GW_OK;
    }
    if (r->b->refs == 1 && have == 0) r->pos = r->end = 0;
    if (r->b->cap - r->pos >= need && r->end < r->b->cap) return GW_OK;
    if (r->b->refs == 1 && r->b->cap >= need) {
        memmove(r->b->data, r->b->data + r->pos, have);
        r->pos = 0;
        r->end = (uint32_t)have;
        return GW_OK;
    }
    /* Grow geometrically so a large value arriving in pieces is copied a
     * bounded number of times. */
    size_t cap = need;
    if (cap > GW_BUF_SIZE && cap < 2 * (size_t)r->b->cap) cap = 2 * (size_t)r->b->cap;
    struct gw_buf *nb = buf_new(cap);
    if (!nb) return GW_NOMEM;
    memcpy(nb->data, r->b->data + r->pos, have);
    buf_unref(r->b);
    r->b = nb;
    r->pos = 0;
    r->end = (uint32_t)have;
    return GW_OK;
}

char *rbuf_reserve(struct gw_rbuf *r, size_t need, size_t *room)
{
    if (rbuf_make_room(r, need) != GW_OK) return NULL;
    *room = r->b->cap - r->end;
    return r->b->data + r->end;
}

int rbuf_read(struct gw_rbuf *r, int fd, size_t need, size_t *n)
{
    *n = 0;
    size_t room;
    char *p = rbuf_reserve(r, need, &room);
    if (!p) return GW_NOMEM;
    for (;;) {
        ssize_t got = read(fd, p, room);
        if (got > 0) {
            rbuf_commit(r, (size_t)got);
            *n = (size_t)got;
            return GW_OK;
        }
        if (got == 0) return GW_ERROR;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return GW_AGAIN;
        return GW_ERROR;
    }
}

void rbuf_release(struct gw_rbuf *r)
{
    buf_unref(r->b);
    r->b = NULL;
    r->pos = r->end = 0;
}

/* The first array comes from the thread's free list; a full one doubles. */
static int oq_grow(struct gw_oq *q)
{
    if (!q->iov) {
        q->iov = freelist_get(&iovs);
        if (!q->iov) q->iov = malloc(OQ_FIRST_CAP * sizeof *q->iov);
        if (!q->iov) return GW_NOMEM;
        q->cap = OQ_FIRST_CAP;
        return GW_OK;
    }
    uint32_t ncap = 2 * q->cap;
    struct iovec *n = realloc(q->iov, ncap * sizeof *n);
    if (!n) return GW_NOMEM;
    q->iov = n;
    q->cap = ncap;
    return GW_OK;
}

int oq_push(struct gw_oq *q, const void *p, size_t len)
{
    if (len == 0) return GW_OK;
    if (q->head + q->count == q->cap) {
        if (q->head > 0) {
            memmove(q->iov, q->iov + q->head, q->count * sizeof *q->iov);
            q->head = 0;
        }
        if (q->count == q->cap && oq_grow(q) != GW_OK) return GW_NOMEM;
    }
    q->iov[q->head + q->count].iov_base = (void *)p;
    q->iov[q->head + q->count].iov_len = len;
    q->count++;
    q->bytes += len;
    return GW_OK;
}

int oq_write(struct gw_oq *q, int fd, size_t *written)
{
    *written = 0;
    while (q->count > 0) {
        int cnt = q->count > IOV_MAX ? IOV_MAX : (int)q->count;
        ssize_t w = writev(fd, q->iov + q->head, cnt);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return GW_AGAIN;
            return GW_ERROR;
        }
        *written += (size_t)w;
        oq_consume(q, (size_t)w);
    }
    q->head = 0;
    return GW_OK;
}

void oq_consume(struct gw_oq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0) {
        struct iovec *v = &q->iov[q->head];
        if (n >= v->iov_len) {
            n -= v->iov_len;
            q->head++;
            q->count--;
        } else {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= n;
            n = 0;
        }
    }
    if (q->count == 0) q->head = 0;
}

void oq_clear(struct gw_oq *q)
{
    q->head = q->count = 0;
    q->bytes = 0;
}

void oq_free(struct gw_oq *q)
{
    if (q->iov && !(q->cap == OQ_FIRST_CAP && freelist_put(&iovs, q->iov))) {
        given_back += q->cap * sizeof *q->iov;
        free(q->iov);
    }
    q->iov = NULL;
    q->head = q->count = q->cap = 0;
    q->bytes = 0;
}
