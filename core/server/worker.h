/* worker.h -- a worker thread: one event loop, one Lua state, and the
 * client and backend connections it owns.
 *
 * Everything reachable from a worker is touched only by its thread, except
 * its stats (read by `stats` on any worker) and the wake-up async.  Work
 * produced while handling events (backend writes, client replies) is put on
 * the dirty lists and flushed once per loop iteration, just before the loop
 * blocks: many requests, one writev per socket.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "front/stats.h"

struct gw_loop;
struct gw_hook;
struct gw_async;
struct gw_io;
struct lhost;
struct client;
struct backend;
struct gw_req;
struct be_op;

/* Process-wide settings, fixed after start-up. */
struct gw_settings {
    int threads;
    size_t max_value;          /* largest value accepted, bytes */
    size_t max_line;           /* longest command line accepted, bytes */
    uint32_t max_connections;
    uint32_t max_pending;      /* requests in flight per client before reading pauses */
    size_t max_output;         /* unwritten reply bytes per client before reading pauses */
    bool binary_keys;          /* accept control bytes in keys (memcached does) */
    double shutdown_timeout;   /* seconds a stopping worker waits for requests in flight */
    const char *config_path;
    const char *lua_dir;
};

extern struct gw_settings gw_settings;
extern double gw_start_time;   /* unix time the process started */

/* A listening socket of one worker.  Clients point at theirs (for
 * req.listener), so one a reload removes is closed but kept until exit. */
struct listener {
    struct listener *next;
    int fd;                    /* -1 once closed */
    struct gw_io *io;
    struct worker *w;
    char *addr;                /* as configured (owned) */
    char *name;                /* optional label (owned), or NULL */
};

struct worker {
    int id;
    pthread_t thread;
    struct gw_loop *loop;
    struct lhost *lua;
    struct gw_hook *flush_hook;
    struct gw_async *wake;
    bool stopping;                   /* asked to stop (any thread) */
    bool draining;                   /* stopping: finishing what is in flight */
    struct gw_timer *drain_timer;

    struct listener *listeners;      /* open ones */
    struct listener *closed_listeners;

    struct lhost **retired;          /* old configs finishing their requests */
    int nretired;

    /* A function the main thread runs on this worker's thread (worker_post). */
    pthread_mutex_t call_lock;
    pthread_cond_t call_cond;
    void (*call_fn)(struct worker *w, void *arg);
    void *call_arg;
    bool call_done;

    struct client *clients;          /* every open client (for shutdown) */
    struct backend *backends;        /* the registry of backends (backend.h) */
    struct client *dirty_clients;
    struct backend *dirty_backends;

    struct gw_req *free_reqs;
    struct be_op *free_ops;
    uint32_t nfree_reqs, nfree_ops;

    struct gw_stats stats;
};

extern struct worker *gw_workers;
extern int gw_nworkers;

/* Set up a worker (loop, Lua state running the config, listeners on the
 * given fds).  On failure returns GW_ERROR with err filled. */
int worker_init(struct worker *w, int id, char *err, size_t errlen);
/* Start accepting on fd (the worker owns it from now on).  On the worker's
 * thread, or before it starts. */
int worker_listen(struct worker *w, int fd, const char *addr, const char *name);
/* Give the listener on addr a new label (worker thread). */
void worker_rename_listener(struct worker *w, const char *addr, const char *name);
/* Stop accepting on addr and close it (worker thread). */
void worker_unlisten(struct worker *w, const char *addr);
/* Switch to config h; the old one is retired and freed once idle (worker
 * thread). */
void worker_switch_config(struct worker *w, struct lhost *h);
/* Main thread: have fn(w, arg) run on the worker's thread; worker_wait
 * waits until it has. */
void worker_post(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg);
void worker_wait(struct worker *w);
int worker_start(struct worker *w);
/* Ask the worker to stop (main thread): it stops accepting, answers the
 * requests it has read, closes each client once its replies are written,
 * and ends when none is left or after gw_settings.shutdown_timeout
 * seconds.  worker_join waits for that. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

void worker_mark_client(struct worker *w, struct client *c);
void worker_mark_backend(struct worker *w, struct backend *b);

/* Sum of every worker's counters. */
void worker_stats_sum(struct gw_stats *out);

#endif
