/* worker.c -- see worker.h. */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "client.h"
#include "lhost.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "req.h"

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
static void worker_flush(void *data, int events)
{
    struct worker *w = data;
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

static void worker_on_wake(void *data, int events)
{
    struct worker *w = data;
    if (w->stopping) gw_loop_break(w->loop);
}

int worker_init(struct worker *w, int id, int *listen_fds, char **addrs, char **names,
                int nlisteners, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->loop = gw_loop_new();
    if (!w->loop) {
        snprintf(err, errlen, "cannot create an event loop");
        return GW_ERROR;
    }
    w->lua = lhost_new(w, gw_settings.config_path, gw_settings.lua_dir, err, errlen);
    if (!w->lua) return GW_ERROR;
    w->flush_hook = gw_hook_new(w->loop, worker_flush, w);
    w->wake = gw_async_new(w->loop, worker_on_wake, w);
    w->listeners = calloc((size_t)nlisteners, sizeof *w->listeners);
    if (!w->flush_hook || !w->wake || (nlisteners && !w->listeners)) {
        snprintf(err, errlen, "out of memory");
        return GW_ERROR;
    }
    w->nlisteners = nlisteners;
    for (int i = 0; i < nlisteners; i++) {
        struct listener *l = &w->listeners[i];
        l->fd = listen_fds[i];
        l->w = w;
        l->addr = addrs[i];
        l->name = names[i];
        l->io = gw_io_new(w->loop, l->fd, GW_EV_READ, listener_on_accept, l);
        if (!l->io) {
            snprintf(err, errlen, "out of memory");
            return GW_ERROR;
        }
    }
    return GW_OK;
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
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    if (!w->loop) return;
    for (int i = 0; i < w->nlisteners; i++) {
        gw_io_free(w->listeners[i].io);
        close(w->listeners[i].fd);
    }
    free(w->listeners);
    while (w->clients) client_close(w->clients);
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
    gw_loop_free(w->loop);
    w->loop = NULL;
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
