/* metrics.h -- what the gateway measures beyond its counters, and how
 * every thread's numbers become one exposition.
 *
 * Recording (hot path, one thread each): a worker's runtime owns stats
 * blocks keyed by their labels -- one per route, per pool and per (pool,
 * server) -- made on first use and kept for the process's life, so their
 * counters survive reloads and a series never goes backwards.  The layers
 * above resolve a block once (when a config is bound) and keep a pointer:
 * recording is a plain add, no lookup, no lock, no syscall.  Latency is a
 * fixed-bucket histogram (50 us to 5 s).
 *
 * Collecting (off the hot path): a metric set (mset) accumulates series by
 * name and labels, merging what every worker adds (sum, min or max per
 * family), and renders the Prometheus text exposition format.  The server
 * layer fills one per worker on the worker's own thread (so nothing is
 * read while it changes), merges them, and publishes the result
 * (metrics_publish); anyone may take the latest (metrics_latest).
 *
 * Ownership: stats blocks belong to their runtime; an mset to whoever made
 * it until published, then to the published reference counts.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/proto.h"

#define METRIC_BUCKETS 16   /* upper bounds from 50 us to 5 s, then +Inf */
extern const double metric_bucket_bounds[METRIC_BUCKETS];

struct histo {
    uint64_t bucket[METRIC_BUCKETS + 1];   /* not cumulative; the last is +Inf */
    uint64_t count;
    double sum;                            /* seconds */
};

void histo_observe(struct histo *h, double seconds);
/* Monotonic seconds (clock_gettime through the vDSO: no syscall). */
double metrics_now(void);

/* Why a backend request failed, as the metrics name it. */
enum be_error_kind {
    BE_ERR_TIMEOUT, BE_ERR_REFUSED, BE_ERR_CLOSED, BE_ERR_GARBAGE, BE_ERR_QUEUE_FULL,
    BE_ERR_DOWN, BE_ERR_OTHER, BE_ERR_KINDS
};
extern const char *const be_error_names[BE_ERR_KINDS];

/* Client-visible errors, by where they come from. */
enum client_error_kind {
    CERR_PROTOCOL, CERR_LUA, CERR_NO_ROUTE, CERR_BACKEND, CERR_DENIED, CERR_KINDS
};
extern const char *const client_error_names[CERR_KINDS];

struct route_stats {
    struct route_stats *next;
    char *label;               /* the prefix, or "default" */
    uint64_t requests;         /* keys routed by it */
    uint64_t hits, misses;     /* retrieval keys it routed */
    struct histo duration;     /* client-observed time of requests it routed first */
};

struct pool_stats {
    struct pool_stats *next;
    char *name;
    uint64_t requests;         /* backend requests its servers were sent */
    uint64_t errors[BE_ERR_KINDS];
};

struct server_stats {
    struct server_stats *next;
    char *pool, *server;
    struct pool_stats *pool_stats;
    uint64_t requests;
    uint64_t errors[BE_ERR_KINDS];
    struct histo rtt;          /* backend round trips */
};

/* A worker's stats blocks and per-command counts (rt.h holds one). */
struct rt_metrics {
    struct route_stats *routes;
    struct pool_stats *pools;
    struct server_stats *servers;
    uint64_t commands[MC_CMD_COUNT];       /* client requests by command */
    uint64_t errors[CERR_KINDS];           /* client-visible errors */
};

/* The block for a label, made if need be (NULL when out of memory).
 * Only the owning thread calls these. */
struct route_stats *metrics_route(struct rt_metrics *m, const char *label);
struct pool_stats *metrics_pool(struct rt_metrics *m, const char *name);
struct server_stats *metrics_server(struct rt_metrics *m, const char *pool, const char *server);
void metrics_free(struct rt_metrics *m);

static inline void server_stats_error(struct server_stats *s, enum be_error_kind k)
{
    if (!s) return;
    s->errors[k]++;
    if (s->pool_stats) s->pool_stats->errors[k]++;
}

/* --- metric sets ------------------------------------------------------------ */

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };
enum metric_merge { MERGE_SUM, MERGE_MIN, MERGE_MAX };

struct mset;

struct mset *mset_new(void);
void mset_free(struct mset *s);
/* Add v to the series name{labels} (labels: `a="x",b="y"`, already escaped
 * with mset_escape, or "" for none), merging with what is there.  A
 * family's type, merge rule and help come from its first add. */
void mset_add(struct mset *s, const char *name, enum metric_type type, enum metric_merge merge,
              const char *help, const char *labels, double v);
void mset_add_histo(struct mset *s, const char *name, const char *help, const char *labels,
                    const struct histo *h);
/* The value of name{labels} (a counter or gauge), or NAN if absent. */
double mset_get(const struct mset *s, const char *name, const char *labels);
/* Each series of a family, in the order first added: its labels, value
 * and (histograms) the histogram. */
void mset_each(const struct mset *s, const char *name,
               void (*fn)(void *ctx, const char *labels, double v, const struct histo *h),
               void *ctx);
/* The Prometheus text exposition of s (malloc'd, NUL-terminated). */
char *mset_render(const struct mset *s, size_t *len);
/* Escape a label value into out (outlen bytes): backslash, quote, newline. */
void mset_escape(char *out, size_t outlen, const char *value);

/* The latest merged set, published by the collector.  metrics_latest
 * returns it with a reference (NULL before the first), given back with
 * metrics_release. */
void metrics_publish(struct mset *s);
struct mset *metrics_latest(void);
void metrics_release(struct mset *s);

#endif
