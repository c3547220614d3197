/* stats.h -- counters behind the `stats` command.
 *
 * Each worker owns one gw_stats and is its only writer (STAT_ADD compiles
 * to a plain add); `stats` on any worker sums every worker's counters with
 * relaxed atomic loads.  The X-macro list is the single place a counter is
 * named, so the reply and the struct cannot drift apart.
 */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdint.h>

#define GW_STATS_FIELDS(X)                                                     \
    X(curr_connections) X(total_connections) X(rejected_connections)           \
    X(cmd_get) X(cmd_set) X(cmd_flush) X(cmd_touch)                            \
    X(get_hits) X(get_misses) X(get_expired) X(get_flushed)                    \
    X(delete_misses) X(delete_hits)                                            \
    X(incr_misses) X(incr_hits) X(decr_misses) X(decr_hits)                    \
    X(cas_misses) X(cas_hits) X(cas_badval)                                    \
    X(touch_hits) X(touch_misses)                                              \
    X(bytes_read) X(bytes_written)                                             \
    X(gw_requests) X(gw_protocol_errors) X(gw_route_calls) X(gw_lua_errors)    \
    X(gw_backend_requests) X(gw_backend_errors) X(gw_backend_timeouts)         \
    X(gw_backend_connects) X(gw_backend_conn_failures) X(gw_lua_memory)          \
    X(gw_lua_calls) X(gw_lua_tasks)                                           \
    X(gw_backend_marked_down) X(gw_backend_probes) X(gw_backend_resends)      \
    X(gw_backend_queue_full)

struct gw_stats {
#define GW_STAT_FIELD(name) uint64_t name;
    GW_STATS_FIELDS(GW_STAT_FIELD)
#undef GW_STAT_FIELD
};

#define STAT_ADD(st, field, n)                                                 \
    __atomic_store_n(&(st)->field, __atomic_load_n(&(st)->field, __ATOMIC_RELAXED) + (n), \
                     __ATOMIC_RELAXED)
#define STAT_INC(st, field) STAT_ADD(st, field, 1)
#define STAT_DEC(st, field) STAT_ADD(st, field, (uint64_t)-1)

#include "codec/proto.h"
#include "codec/resp.h"

struct gw_req;
struct worker;

/* Count a single-line reply to cmd (delete/incr/decr/touch/cas hits and
 * misses), whether a backend or the embedded store gave it. */
void stats_count_reply(struct gw_stats *st, enum mc_cmd cmd, enum mc_resp_kind kind);

/* Build the reply to `stats` (and `stats settings`) into r. */
void stats_reply(struct worker *w, struct gw_req *r);

#endif
