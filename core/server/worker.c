/* worker.c -- see worker.h. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/buf.h"
#include "base/log.h"
#include "base/loop.h"
#include "front/client.h"
#include "front/listener.h"
#include "proxy/backend.h"
#include "proxy/req.h"
#include "rt/settings.h"
#include "script/lhost.h"

struct worker *gw_workers;
int gw_nworkers;

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

/* Before the loop blocks. */
static void worker_before_sleep(void *data, int events)
{
    struct worker *w = data;
    if (w->nretired) reap_retired(w);
    rt_flush(&w->rt);
    if (w->draining && !w->rt.clients) gw_loop_break(w->rt.loop);
}

/* Every second: free what the thread's free lists kept unused for the
 * last second (base/freelist.h), and once RETURN_AFTER bytes (1 MiB) have
 * been freed since the last time, have malloc give free pages back to the
 * system.  glibc returns memory only from the top of a heap on its own; a
 * live allocation above thousands of freed read buffers (a request kept in
 * a free list, a client struct) would pin them all, so 5,000 idle or
 * closed connections would keep their 80 MB.  malloc_trim(0) releases the
 * free pages wherever they are, in every thread's arena.  It costs a walk
 * of the arenas, at most once a second, and only after a thread freed a
 * megabyte: steady traffic of default-size buffers frees little (the
 * free lists recycle them). */
#define HOUSEKEEPING_PERIOD 1.0
#define RETURN_AFTER ((size_t)1 << 20)

static void worker_housekeeping(void *data, int events)
{
    struct worker *w = data;
    struct rt *rt = &w->rt;
    rt->freed += buf_cache_trim() + req_cache_trim(rt) + op_cache_trim(rt);
    if (rt->freed >= RETURN_AFTER) {
        rt->freed = 0;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
    gw_timer_start(w->housekeeping, HOUSEKEEPING_PERIOD);
}

static void on_drain_timeout(void *data, int events)
{
    struct worker *w = data;
    int n = 0;
    for (struct client *c = w->rt.clients; c; c = c->next) n++;
    LOG_WARN("worker %d: %d client(s) still busy after the shutdown timeout; closing them", w->id, n);
    gw_loop_break(w->rt.loop);
}

/* Shutting down: stop accepting and reading; each client is closed once
 * the replies to what it has sent so far are written. */
static void worker_drain(struct worker *w)
{
    w->draining = true;
    while (w->listeners) worker_unlisten(w, w->listeners->addr);
    clients_drain(&w->rt);
    w->drain_timer = gw_timer_new(w->rt.loop, on_drain_timeout, w);
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

int worker_init(struct worker *w, int id, const struct lhost_config *cfg, char *err,
                size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->call_done = true;
    pthread_mutex_init(&w->call_lock, NULL);
    pthread_cond_init(&w->call_cond, NULL);
    struct gw_loop *loop = gw_loop_new();
    if (!loop || rt_init(&w->rt, id, loop) != GW_OK) {
        if (loop) gw_loop_free(loop);
        snprintf(err, errlen, "cannot create an event loop");
        return GW_ERROR;
    }
    w->lua = lhost_new(NULL, gw_settings.config_path, gw_settings.lua_dir, cfg, err, errlen);
    if (!w->lua) return GW_ERROR;
    if (lhost_bind(w->lua, &w->rt) != GW_OK) {
        snprintf(err, errlen, "out of memory");
        return GW_ERROR;
    }
    w->rt.resolver = lhost_resolver(w->lua);
    w->flush_hook = gw_hook_new(loop, worker_before_sleep, w);
    w->wake = gw_async_new(loop, worker_on_wake, w);
    w->housekeeping = gw_timer_new(loop, worker_housekeeping, w);
    if (!w->flush_hook || !w->wake || !w->housekeeping) {
        snprintf(err, errlen, "out of memory");
        return GW_ERROR;
    }
    gw_timer_start(w->housekeeping, HOUSEKEEPING_PERIOD);
    return GW_OK;
}

int worker_listen(struct worker *w, int fd, const char *addr, const char *name,
                  struct gw_tls *tls)
{
    struct listener *l = listener_new(&w->rt, fd, addr, name);
    if (!l) return GW_NOMEM;
    listener_set_tls(l, tls);
    l->next = w->listeners;
    w->listeners = l;
    return GW_OK;
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

void worker_rename_listener(struct worker *w, const char *addr, const char *name,
                            struct gw_tls *tls)
{
    for (struct listener *l = w->listeners; l; l = l->next) {
        if (strcmp(l->addr, addr) == 0) {
            listener_rename(l, name);
            listener_set_tls(l, tls);
            return;
        }
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
    w->rt.resolver = lhost_resolver(h);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    gw_loop_run(w->rt.loop);
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

int worker_join(struct worker *w, double timeout)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double end = (double)ts.tv_sec + ts.tv_nsec / 1e9 + timeout;
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    return pthread_timedjoin_np(w->thread, NULL, &ts) == 0 ? GW_OK : GW_ERROR;
}

void worker_destroy(struct worker *w)
{
    if (!w->rt.loop) return;
    clients_close_all(&w->rt);
    while (w->listeners) worker_unlisten(w, w->listeners->addr);
    while (w->closed_listeners) {
        struct listener *l = w->closed_listeners;
        w->closed_listeners = l->next;
        listener_free(l);
    }
    /* Every op still at a server ends while every config's pools are
     * alive (a backend shared across a reload holds ops of both), and
     * wakes no Lua task. */
    for (int i = 0; i < w->nretired; i++) lhost_closing(w->retired[i]);
    lhost_closing(w->lua);
    backends_abort(&w->rt);
    for (int i = 0; i < w->nretired; i++) lhost_free(w->retired[i]);
    free(w->retired);
    w->nretired = 0;
    lhost_free(w->lua);
    w->lua = NULL;
    w->rt.resolver = NULL;
    req_cache_drain(&w->rt);
    op_cache_drain(&w->rt);
    gw_hook_free(w->flush_hook);
    gw_async_free(w->wake);
    gw_timer_free(w->drain_timer);
    gw_timer_free(w->housekeeping);
    rt_destroy(&w->rt);
    gw_loop_free(w->rt.loop);
    w->rt.loop = NULL;
    pthread_mutex_destroy(&w->call_lock);
    pthread_cond_destroy(&w->call_cond);
}
