/* loop.c -- see loop.h.  Each wrapper embeds the libev watcher first so a
 * watcher pointer is also a wrapper pointer. */
#include "loop.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>

/* An I/O watcher's data is in w.data, and the events it watches are w's
 * while it is active, so it fits a gw_io_slot. */
struct gw_io { ev_io w; struct ev_loop *loop; gw_event_fn fn; };
_Static_assert(sizeof(struct gw_io) <= sizeof(struct gw_io_slot), "gw_io_slot is too small");
_Static_assert(_Alignof(struct gw_io) <= _Alignof(struct gw_io_slot), "gw_io_slot is misaligned");
struct gw_timer { ev_timer w; struct ev_loop *loop; gw_event_fn fn; void *data; };
struct gw_hook { ev_prepare w; struct ev_loop *loop; gw_event_fn fn; void *data; };
struct gw_async { ev_async w; struct ev_loop *loop; gw_event_fn fn; void *data; };
struct gw_signal { ev_signal w; struct ev_loop *loop; gw_event_fn fn; void *data; };
struct gw_stat { ev_stat w; struct ev_loop *loop; gw_event_fn fn; void *data; char *path; };

#define EVL(l) ((struct ev_loop *)(l))

struct gw_loop *gw_loop_default(void) { return (struct gw_loop *)ev_default_loop(EVFLAG_AUTO); }
struct gw_loop *gw_loop_new(void) { return (struct gw_loop *)ev_loop_new(EVFLAG_AUTO); }
void gw_loop_free(struct gw_loop *loop) { ev_loop_destroy(EVL(loop)); }
void gw_loop_run(struct gw_loop *loop) { ev_run(EVL(loop), 0); }
void gw_loop_once(struct gw_loop *loop, int wait)
{
    ev_run(EVL(loop), wait ? EVRUN_ONCE : EVRUN_NOWAIT);
}
void gw_loop_break(struct gw_loop *loop) { ev_break(EVL(loop), EVBREAK_ALL); }
double gw_loop_now(struct gw_loop *loop) { return ev_now(EVL(loop)); }
double gw_loop_clock(struct gw_loop *loop) { (void)loop; return ev_time(); }

static int gw_events(int revents)
{
    return (revents & EV_READ ? GW_EV_READ : 0) | (revents & EV_WRITE ? GW_EV_WRITE : 0);
}

static void io_cb(struct ev_loop *l, ev_io *w, int revents)
{
    struct gw_io *io = (struct gw_io *)w;
    io->fn(w->data, gw_events(revents));
}

static int ev_events(int events)
{
    return (events & GW_EV_READ ? EV_READ : 0) | (events & GW_EV_WRITE ? EV_WRITE : 0);
}

static struct gw_io *io_init(struct gw_io *io, struct gw_loop *loop, int fd, int events,
                             gw_event_fn fn, void *data)
{
    io->loop = EVL(loop);
    io->fn = fn;
    ev_io_init(&io->w, io_cb, fd, EV_READ);
    io->w.data = data;
    gw_io_set(io, events);
    return io;
}

struct gw_io *gw_io_new(struct gw_loop *loop, int fd, int events, gw_event_fn fn, void *data)
{
    struct gw_io *io = calloc(1, sizeof *io);
    return io ? io_init(io, loop, fd, events, fn, data) : NULL;
}

struct gw_io *gw_io_embed(struct gw_io_slot *slot, struct gw_loop *loop, int fd, int events,
                          gw_event_fn fn, void *data)
{
    memset(slot, 0, sizeof *slot);
    return io_init(gw_io_in(slot), loop, fd, events, fn, data);
}

void gw_io_set(struct gw_io *io, int events)
{
    int now = ev_is_active(&io->w) ? gw_events(io->w.events) : 0;
    if (events == now) return;
    ev_io_stop(io->loop, &io->w);
    if (events) {
        ev_io_set(&io->w, io->w.fd, ev_events(events));
        ev_io_start(io->loop, &io->w);
    }
}

void gw_io_stop(struct gw_io *io)
{
    ev_io_stop(io->loop, &io->w);
}

void gw_io_free(struct gw_io *io)
{
    if (!io) return;
    ev_io_stop(io->loop, &io->w);
    free(io);
}

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    struct gw_timer *t = (struct gw_timer *)w;
    t->fn(t->data, GW_EV_TIMER);
}

struct gw_timer *gw_timer_new(struct gw_loop *loop, gw_event_fn fn, void *data)
{
    struct gw_timer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->loop = EVL(loop);
    t->fn = fn;
    t->data = data;
    ev_timer_init(&t->w, timer_cb, 0., 0.);
    return t;
}

void gw_timer_start(struct gw_timer *t, double after)
{
    ev_timer_stop(t->loop, &t->w);
    ev_timer_set(&t->w, after, 0.);
    ev_timer_start(t->loop, &t->w);
}

void gw_timer_stop(struct gw_timer *t) { ev_timer_stop(t->loop, &t->w); }
int gw_timer_active(const struct gw_timer *t) { return ev_is_active(&t->w); }

void gw_timer_free(struct gw_timer *t)
{
    if (!t) return;
    ev_timer_stop(t->loop, &t->w);
    free(t);
}

static void hook_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
    struct gw_hook *h = (struct gw_hook *)w;
    h->fn(h->data, 0);
}

struct gw_hook *gw_hook_new(struct gw_loop *loop, gw_event_fn fn, void *data)
{
    struct gw_hook *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->loop = EVL(loop);
    h->fn = fn;
    h->data = data;
    ev_prepare_init(&h->w, hook_cb);
    ev_prepare_start(h->loop, &h->w);
    return h;
}

void gw_hook_free(struct gw_hook *h)
{
    if (!h) return;
    ev_prepare_stop(h->loop, &h->w);
    free(h);
}

static void async_cb(struct ev_loop *l, ev_async *w, int revents)
{
    struct gw_async *a = (struct gw_async *)w;
    a->fn(a->data, 0);
}

struct gw_async *gw_async_new(struct gw_loop *loop, gw_event_fn fn, void *data)
{
    struct gw_async *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = EVL(loop);
    a->fn = fn;
    a->data = data;
    ev_async_init(&a->w, async_cb);
    ev_async_start(a->loop, &a->w);
    return a;
}

void gw_async_send(struct gw_async *a) { ev_async_send(a->loop, &a->w); }

void gw_async_free(struct gw_async *a)
{
    if (!a) return;
    ev_async_stop(a->loop, &a->w);
    free(a);
}

static void signal_cb(struct ev_loop *l, ev_signal *w, int revents)
{
    struct gw_signal *s = (struct gw_signal *)w;
    s->fn(s->data, 0);
}

struct gw_signal *gw_signal_new(struct gw_loop *loop, int signum, gw_event_fn fn, void *data)
{
    struct gw_signal *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->loop = EVL(loop);
    s->fn = fn;
    s->data = data;
    ev_signal_init(&s->w, signal_cb, signum);
    ev_signal_start(s->loop, &s->w);
    return s;
}

void gw_signal_free(struct gw_signal *s)
{
    if (!s) return;
    ev_signal_stop(s->loop, &s->w);
    free(s);
}

static void stat_cb(struct ev_loop *l, ev_stat *w, int revents)
{
    struct gw_stat *s = (struct gw_stat *)w;
    s->fn(s->data, 0);
}

struct gw_stat *gw_stat_new(struct gw_loop *loop, const char *path, double interval,
                            gw_event_fn fn, void *data)
{
    struct gw_stat *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->path = strdup(path); /* libev keeps the pointer */
    if (!s->path) {
        free(s);
        return NULL;
    }
    s->loop = EVL(loop);
    s->fn = fn;
    s->data = data;
    ev_stat_init(&s->w, stat_cb, s->path, interval);
    ev_stat_start(s->loop, &s->w);
    return s;
}

void gw_stat_free(struct gw_stat *s)
{
    if (!s) return;
    ev_stat_stop(s->loop, &s->w);
    free(s->path);
    free(s);
}
