/* rt.h -- the per-thread runtime: what every layer above needs from the
 * thread it runs on, so that none of them needs the worker.
 *
 * One struct rt per worker thread.  It holds
 *   loop        the thread's event loop;
 *   stats       the thread's counters (counters.h), written by it alone;
 *   free lists  recycled objects (requests, backend ops), so the common
 *               path does not call malloc; bounded, and trimmed every
 *               second of what went unused (base/freelist.h), so a burst's
 *               objects do not stay for ever;
 *   freed       bytes given back to malloc since the worker last looked
 *               (clients closed, free lists trimmed): past a threshold it
 *               has malloc return free pages to the system;
 *   flush queue objects with bytes to write mark themselves during a loop
 *               iteration; rt_flush writes them all once, just before the
 *               loop blocks (Redis's beforesleep): many requests, one writev
 *               per socket.  Backends are flushed before clients, so the
 *               requests read in this iteration are on the wire first;
 *   lists       per-thread lists that belong to the layers above (the
 *               backend registry, the open clients).  rt only holds their
 *               heads and never looks inside;
 *   resolver    the config that routes new requests on this thread
 *               (proxy/resolver.h).  The server layer sets it and swaps it
 *               on reload.
 * Everything in an rt is touched only by its thread, except the counters
 * (read by any thread) and what rt_post carries.
 *
 * Process-wide, and safe from any thread: the runtimes themselves (for
 * summing counters and connections), the start time, and the state of the
 * config (generation, reloads), which reload publishes and `stats` reads.
 */
#ifndef GW_RT_H
#define GW_RT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/freelist.h"
#include "counters.h"
#include "metrics.h"

struct gw_loop;
struct backend;     /* proxy/backend.h: the registry's entries */
struct client;      /* front/client.h: the open clients */
struct resolver;    /* proxy/resolver.h */

/* An object that has bytes to write: it marks itself with rt_mark and its
 * flush function runs once in the next rt_flush.  Embed it, zeroed (not
 * queued); the flush function finds its owner from the pointer. */
struct rt_flushable {
    struct rt_flushable *next;   /* non-NULL while it is queued */
    void (*flush)(struct rt_flushable *f);
};

enum rt_flush_class { RT_FLUSH_BACKEND, RT_FLUSH_CLIENT, RT_FLUSH_CLASSES };

struct rt {
    int id;                        /* worker number, 0.. */
    struct gw_loop *loop;
    struct gw_stats stats;
    struct rt_metrics metrics;     /* stats blocks by label (metrics.h) */
    struct gw_freelist reqs;       /* proxy/req.c: at most 1024 (1.6 MiB) */
    struct gw_freelist ops;        /* proxy/backend.c: at most 4096 (0.7 MiB) */
    struct rt_flushable *flush[RT_FLUSH_CLASSES];
    struct backend *backends;      /* proxy/backend.c: shared per address + options */
    struct client *clients;        /* front/client.c: every open client */
    struct resolver *resolver;     /* the current config (server/worker.c) */
    uint64_t next_conn_id;
    size_t freed;                  /* bytes freed since the worker last looked */
};

/* Set up rt for the thread that will run loop, and register it so its
 * counters are summed.  At most RT_MAX runtimes. */
#define RT_MAX 256
int rt_init(struct rt *rt, int id, struct gw_loop *loop);
/* Unregister (the counters stop being summed). */
void rt_destroy(struct rt *rt);

void rt_mark(struct rt *rt, struct rt_flushable *f, enum rt_flush_class cls);
/* Take f off the queue (it is being freed). */
void rt_unmark(struct rt *rt, struct rt_flushable *f, enum rt_flush_class cls);
/* Flush every marked object, backends first, until nothing is marked. */
void rt_flush(struct rt *rt);

/* A new connection id, unique on this thread for the process's life. */
static inline uint64_t rt_conn_id(struct rt *rt) { return ++rt->next_conn_id; }

/* --- process-wide --------------------------------------------------------- */

/* The sum of every runtime's counters. */
void rt_stats_sum(struct gw_stats *out);
/* Open client connections, all runtimes together. */
uint64_t rt_connections(void);
int rt_count(void);

/* Unix time the process started (set once by rt_process_start). */
extern double rt_start_time;
void rt_process_start(void);

/* The config's state, as reload publishes it. */
struct rt_config_status {
    uint64_t generation;       /* 1 for the config started with */
    uint64_t reloads;          /* successful */
    uint64_t failures;
    double last_time;          /* unix time of the last attempt, 0: none */
    double last_ok_time;       /* unix time the serving config was loaded */
    const char *last_result;   /* "none", "ok" or "failed" */
    char last_error[512];      /* of the last failure, "" after a success; file
                                * names without their directories */
};

void rt_config_status(struct rt_config_status *out);
/* At start-up: the first config is serving. */
void rt_config_started(void);
/* Record a reload attempt: ok, or failed with err (one line is kept). */
void rt_config_record(bool ok, const char *err);

/* Servers the operator took out ("host:port"), for the whole process: a
 * backend made later (a reload that changes the server's options) starts
 * out too.  Any thread. */
void rt_set_admin_down(const char *server, bool down);
bool rt_admin_down(const char *server);

/* Admin requests refused (server/admin_http.c), by reason: for the
 * token (401) or for the client certificate (403).  Any thread. */
enum rt_admin_refusal { RT_REFUSED_TOKEN, RT_REFUSED_CERTIFICATE, RT_REFUSED_KINDS };
void rt_admin_refused(enum rt_admin_refusal why);
uint64_t rt_admin_refusals(enum rt_admin_refusal why);

/* The process is shutting down (set by the main thread on SIGTERM). */
void rt_set_stopping(void);
bool rt_stopping(void);

#endif
