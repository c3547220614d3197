/* worker.c -- see worker.h. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "base/buf.h"
#include "front/client.h"
#include "script/lhost.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/net.h"
#include "proxy/req.h"

struct gw_settings gw_settings;
double gw_start_time;
struct worker *gw_workers;
int gw_nworkers;

void worker_mark_client(struct worker *w, struct client *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->next_dirty = w->dirty_clients;
    w->dirty_clients = c;
}

void worker_mark_backend(struct worker *w, struct backend *b)
{
    if (b->dirty) return;
    b->dirty = true;
    b->next_dirty = w->dirty_backends;
    w->dirty_backends = b;
}

/* Before the loop blocks: write every backend's queued ops, then every
 * client's finished replies.  Backends first, so requests that arrived in
 * this iteration are on the wire before we sleep. */
/* Free retired configs that have finished their last request. */
static void reap_retired(struct worker *w)
{
    for (int i = 0; i < w->nretired;) {
        if (lhost_idle(w->retired[i])) {
            lhost_free(w->retired[i]);
            w->retired[i] = w->retired[--w->nretired];
        } else {
            i++;
        }
    }
}

static void worker_flush(void *data, int events)
{
    struct worker *w = data;
    if (w->nretired) reap_retired(w);
    while (w->dirty_backends || w->dirty_clients) {
        while (w->dirty_backends) {
            struct backend *b = w->dirty_backends;
            w->dirty_backends = b->next_dirty;
            b->dirty = false;
            backend_flush(b);
        }
        while (w->dirty_clients) {
            struct client *c = w->dirty_clients;
            w->dirty_clients = c->next_dirty;
            c->dirty = false;
            client_flush(c);
        }
    }
    if (w->draining && !w->clients) gw_loop_break(w->loop);
}

static uint32_t total_connections_now(void)
{
    uint64_t n = 0;
    for (int i = 0; i < gw_nworkers; i++)
        n += __atomic_load_n(&gw_workers[i].stats.curr_connections, __ATOMIC_RELAXED);
    return (uint32_t)n;
}

static void listener_on_accept(void *data, int events)
{
    struct listener *l = data;
    struct worker *w = l->w;
    for (int i = 0; i < 64; i++) {
        int fd;
        char err[GW_NET_ERRLEN];
        int rc = net_accept(l->fd, &fd, err);
        if (rc == GW_AGAIN) return;
        if (rc != GW_OK) {
            LOG_WARN("%s", err);
            return;
        }
        if (gw_settings.max_connections && total_connections_now() >= gw_settings.max_connections) {
            static const char msg[] = "SERVER_ERROR too many open connections\r\n";
            ssize_t wr = write(fd, msg, sizeof msg - 1);
            (void)wr;
            close(fd);
            STAT_INC(&w->stats, rejected_connections);
            continue;
        }
        client_new(w, l, fd);
    }
}

static void on_drain_timeout(void *data, int events)
{
    struct worker *w = data;
    int n = 0;
    for (struct client *c = w->clients; c; c = c->next) n++;
    LOG_WARN("worker %d: %d client(s) still busy after the shutdown timeout; closing them", w->id, n);
    gw_loop_break(w->loop);
}

/* Shutting down: stop accepting and reading; each client is closed once
 * the replies to what it has sent so far are written. */
static void worker_drain(struct worker *w)
{
    w->draining = true;
    while (w->listeners) worker_unlisten(w, w->listeners->addr);
    for (struct client *c = w->clients; c; c = c->next) {
        c->closing = true;
        worker_mark_client(w, c);
    }
    w->drain_timer = gw_timer_new(w->loop, on_drain_timeout, w);
    if (w->drain_timer) gw_timer_start(w->drain_timer, gw_settings.shutdown_timeout);
}

static void worker_on_wake(void *data, int events)
{
    struct worker *w = data;
    pthread_mutex_lock(&w->call_lock);
    void (*fn)(struct worker *, void *) = w->call_done ? NULL : w->call_fn;
    pthread_mutex_unlock(&w->call_lock);
    if (fn) {
        fn(w, w->call_arg);
        pthread_mutex_lock(&w->call_lock);
        w->call_done = true;
        pthread_cond_signal(&w->call_cond);
        pthread_mutex_unlock(&w->call_lock);
    }
    if (__atomic_load_n(&w->stopping, __ATOMIC_SEQ_CST) && !w->draining) worker_drain(w);
}

void worker_post(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg)
{
    pthread_mutex_lock(&w->call_lock);
    w->call_fn = fn;
    w->call_arg = arg;
    w->call_done = false;
    pthread_mutex_unlock(&w->call_lock);
    gw_async_send(w->wake);
}

void worker_wait(struct worker *w)
{
    pthread_mutex_lock(&w->call_lock);
    while (!w->call_done) pthread_cond_wait(&w->call_cond, &w->call_lock);
    w->call_fn = NULL;
    pthread_mutex_unlock(&w->call_lock);
}

int worker_init(struct worker *w, int id, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->call_done = true;
    pthread_mutex_init(&w->call_lock, NULL);
    pthread_cond_init(&w->call_cond, NULL);
    w->loop = gw_loop_new();
    if (!w->loop) {
        snprintf(err, errlen, "cannot create an event loop");
        return GW_ERROR;
    }
    w->lua = lhost_new(w, gw_settings.config_path, gw_settings.lua_dir, err, errlen);
    if (!w->lua) return GW_ERROR;
    w->flush_hook = gw_hook_new(w->loop, worker_flush, w);
    w->wake = gw_async_new(w->loop, worker_on_wake, w);
    if (!w->flush_hook || !w->wake) {
        snprintf(err, errlen, "out of memory");
        return GW_ERROR;
    }
    return GW_OK;
}

int worker_listen(struct worker *w, int fd, const char *addr, const char *name)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l) return GW_NOMEM;
    l->fd = fd;
    l->w = w;
    l->addr = strdup(addr);
    l->name = name ? strdup(name) : NULL;
    l->io = gw_io_new(w->loop, fd, GW_EV_READ, listener_on_accept, l);
    if (!l->addr || (name && !l->name) || !l->io) {
        gw_io_free(l->io);
        free(l->addr);
        free(l->name);
        free(l);
        return GW_NOMEM;
    }
    l->next = w->listeners;
    w->listeners = l;
    return GW_OK;
}

static void listener_close(struct listener *l)
{
    gw_io_free(l->io);
    l->io = NULL;
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}

void worker_unlisten(struct worker *w, const char *addr)
{
    for (struct listener **pp = &w->listeners; *pp; pp = &(*pp)->next) {
        struct listener *l = *pp;
        if (strcmp(l->addr, addr) != 0) continue;
        *pp = l->next;
        listener_close(l);
        l->next = w->closed_listeners;
        w->closed_listeners = l;
        return;
    }
}

void worker_rename_listener(struct worker *w, const char *addr, const char *name)
{
    for (struct listener *l = w->listeners; l; l = l->next) {
        if (strcmp(l->addr, addr) != 0) continue;
        if ((!name && !l->name) || (name && l->name && !strcmp(name, l->name))) return;
        char *n = name ? strdup(name) : NULL;
        if (name && !n) return;
        free(l->name);
        l->name = n;
        return;
    }
}

void worker_switch_config(struct worker *w, struct lhost *h)
{
    struct lhost **n = realloc(w->retired, (size_t)(w->nretired + 1) * sizeof *n);
    if (n) {
        w->retired = n;
        w->retired[w->nretired++] = w->lua;
    } else {
        LOG_WARN("out of memory retiring a config; it stays allocated");
    }
    w->lua = h;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    gw_loop_run(w->loop);
    /* Tear down on this thread: its buffers live in this thread's cache. */
    worker_destroy(w);
    buf_cache_drain();
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? GW_OK : GW_ERROR;
}

void worker_stop(struct worker *w)
{
    __atomic_store_n(&w->stopping, true, __ATOMIC_SEQ_CST);
    gw_async_send(w->wake);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    if (!w->loop) return;
    while (w->clients) client_close(w->clients);
    for (struct listener *l = w->listeners; l;) {
        struct listener *next = l->next;
        l->next = w->closed_listeners;
        w->closed_listeners = l;
        l = next;
    }
    w->listeners = NULL;
    while (w->closed_listeners) {
        struct listener *l = w->closed_listeners;
        w->closed_listeners = l->next;
        listener_close(l);
        free(l->addr);
        free(l->name);
        free(l);
    }
    for (int i = 0; i < w->nretired; i++) lhost_free(w->retired[i]);
    free(w->retired);
    w->nretired = 0;
    lhost_free(w->lua);
    while (w->free_reqs) {
        struct gw_req *r = w->free_reqs;
        w->free_reqs = r->next;
        free(r->keys_heap);
        free(r);
    }
    while (w->free_ops) {
        struct be_op *op = w->free_ops;
        w->free_ops = op->next;
        free(op);
    }
    gw_hook_free(w->flush_hook);
    gw_async_free(w->wake);
    gw_timer_free(w->drain_timer);
    gw_loop_free(w->loop);
    w->loop = NULL;
    pthread_mutex_destroy(&w->call_lock);
    pthread_cond_destroy(&w->call_cond);
}

void worker_stats_sum(struct gw_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < gw_nworkers; i++) {
        const struct gw_stats *s = &gw_workers[i].stats;
#define GW_STAT_SUM(name) out->name += __atomic_load_n(&s->name, __ATOMIC_RELAXED);
        GW_STATS_FIELDS(GW_STAT_SUM)
#undef GW_STAT_SUM
    }
}
