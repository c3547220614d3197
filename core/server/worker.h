/* worker.h -- a worker thread: one event loop, one runtime (rt.h), one Lua
 * state per live config, and the listeners, clients and backends it owns.
 *
 * Everything reachable from a worker is touched only by its thread, except
 * its counters (read by `stats` on any thread) and the call slot the main
 * thread posts to (worker_post).  The worker drives its runtime: before the
 * loop blocks it frees retired configs that went idle and flushes the
 * runtime's queue (every backend's ops, then every client's replies); every
 * second it trims the thread's free lists of what went unused and, once
 * enough was freed, has malloc return free pages to the system.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rt/rt.h"

struct gw_hook;
struct gw_async;
struct gw_timer;
struct lhost;
struct lhost_config;
struct listener;
struct gw_tls;

struct worker {
    struct rt rt;                    /* the thread's runtime */
    int id;
    pthread_t thread;
    struct lhost *lua;               /* the config routing new requests */
    struct gw_hook *flush_hook;
    struct gw_async *wake;
    bool stopping;                   /* asked to stop (any thread) */
    bool draining;                   /* stopping: finishing what is in flight */
    struct gw_timer *drain_timer;
    struct gw_timer *housekeeping;   /* every second: trim free lists, return memory */

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
};

extern struct worker *gw_workers;
extern int gw_nworkers;

/* Set up a worker: its loop and runtime, and a Lua state running the
 * config texts `cfg` holds (read once by the main thread).  On failure
 * returns GW_ERROR with err filled. */
int worker_init(struct worker *w, int id, const struct lhost_config *cfg, char *err,
                size_t errlen);
/* Start accepting on fd (the worker owns it from now on), TLS with tls
 * unless NULL (the listener takes a reference).  On the worker's thread,
 * or before it starts. */
int worker_listen(struct worker *w, int fd, const char *addr, const char *name,
                  struct gw_tls *tls);
/* Give the listener on addr a new label and TLS context (worker thread). */
void worker_rename_listener(struct worker *w, const char *addr, const char *name,
                            struct gw_tls *tls);
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
/* Wait up to timeout seconds for the worker's thread to end: GW_ERROR if
 * it has not (it is stuck). */
int worker_join(struct worker *w, double timeout);
void worker_destroy(struct worker *w);

#endif
