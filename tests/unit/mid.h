/* mid.h -- helpers for the unit tests of the middle of the core (proxy/):
 * a runtime on a loop of its own, a scripted peer that plays a memcached
 * server over a real loopback socket, and requests made from protocol
 * text.  These tests link only the layers up to proxy/ (no Lua, no
 * worker), which is what proves those layers stand on their own.
 */
#ifndef GW_MID_H
#define GW_MID_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/net.h"
#include "codec/proto.h"
#include "proxy/backend.h"
#include "proxy/req.h"
#include "rt/rt.h"
#include "unit.h"

static inline double mid_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline struct rt *mid_rt(void)
{
    static struct rt rt;
    static int id;
    log_level = -1; /* the failures the tests provoke are expected */
    struct gw_loop *loop = gw_loop_new();
    if (!loop || rt_init(&rt, id++, loop) != GW_OK) abort();
    return &rt;
}

static inline void mid_rt_free(struct rt *rt)
{
    req_cache_drain(rt);
    op_cache_drain(rt);
    rt_destroy(rt);
    gw_loop_free(rt->loop);
}

/* One turn of the thread: flush what is marked, handle what is ready. */
static inline void mid_pump(struct rt *rt)
{
    rt_flush(rt);
    gw_loop_once(rt->loop, 0);
    rt_flush(rt);
}

/* Pump until cond holds, for at most 2 seconds; the value of cond. */
#define PUMP_UNTIL(rt, cond)                                                   \
    ({                                                                         \
        double mid_deadline_ = mid_now() + 2.0;                                \
        while (!(cond) && mid_now() < mid_deadline_) {                         \
            mid_pump(rt);                                                      \
            usleep(200);                                                       \
        }                                                                      \
        (cond);                                                                \
    })

/* A scripted server: it listens on a free loopback port, accepts the
 * backend's connection, and reads and writes exactly what a test says. */
struct peer {
    int lfd, fd;
    char addr[64];
    struct gw_addr gaddr;
    char in[65536];
    size_t inlen;
};

static inline void peer_listen(struct peer *p)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sin, len) < 0 || listen(p->lfd, 16) < 0)
        abort();
    getsockname(p->lfd, (struct sockaddr *)&sin, &len);
    snprintf(p->addr, sizeof p->addr, "127.0.0.1:%u", ntohs(sin.sin_port));
    char err[GW_NET_ERRLEN], host[64];
    uint16_t port;
    if (net_parse_addr(p->addr, &p->gaddr, host, sizeof host, &port, err) != GW_OK) abort();
}

static inline bool peer_try_accept(struct peer *p)
{
    if (p->fd >= 0) return true;
    p->fd = accept(p->lfd, NULL, NULL);
    if (p->fd >= 0) fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    return p->fd >= 0;
}

/* Read what the backend sent until `want` has arrived; the bytes stay in
 * p->in (NUL-terminated).  False on timeout. */
static inline bool peer_expect(struct peer *p, struct rt *rt, const char *want)
{
    double deadline = mid_now() + 2.0;
    while (mid_now() < deadline) {
        mid_pump(rt);
        if (peer_try_accept(p)) {
            ssize_t n = read(p->fd, p->in + p->inlen, sizeof p->in - 1 - p->inlen);
            if (n > 0) p->inlen += (size_t)n;
            p->in[p->inlen] = 0;
            if (strstr(p->in, want)) return true;
        }
        usleep(200);
    }
    fprintf(stderr, "peer: wanted '%s', got '%s'\n", want, p->in);
    return false;
}

static inline void peer_send(struct peer *p, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = write(p->fd, s + off, len - off);
        if (n > 0) off += (size_t)n;
        else if (n < 0 && errno != EAGAIN) abort();
    }
}

static inline void peer_hangup(struct peer *p)
{
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

static inline void peer_close(struct peer *p)
{
    peer_hangup(p);
    close(p->lfd);
}

/* A request parsed from protocol text (one command), its keys set up as
 * the router would, done-ness recorded in *done. */
static inline void mid_mark_done(struct gw_req *r)
{
    (*(int *)r->ctx)++;
}

static inline struct gw_req *mid_req(struct rt *rt, const char *text, int *done)
{
    size_t len = strlen(text);
    struct gw_buf *b = buf_new(len + 1);
    memcpy(b->data, text, len);
    struct mc_parser parser;
    mc_parser_init(&parser, 0, 0);
    struct mc_request mc;
    if (mc_parse(&parser, b->data, len, &mc) != GW_OK) abort();
    struct gw_req *r = req_new(rt, b, b->data, &mc);
    buf_unref(b); /* the request holds it */
    if (mc_cmd_is_retrieval(mc.cmd)) {
        req_reserve_keys(r, mc.nkeys);
        uint32_t pos = mc.keys_off, off, klen;
        while (mc_key_next(r->base, &mc, &pos, &off, &klen)) {
            req_key_init(r, r->nkeys, r->base + off, klen);
            r->nkeys++;
        }
    } else if (mc.nkeys == 1) {
        req_key_init(r, 0, r->base + mc.key_off, mc.key_len);
        r->nkeys = 1;
    }
    r->on_done = mid_mark_done;
    r->ctx = done;
    return r;
}

/* The reply line of r, for comparing. */
#define CHECK_REPLY(r, want) CHECK_EQ_MEM((r)->rline, (r)->rline ? (r)->rlen : 0, want)

#endif
