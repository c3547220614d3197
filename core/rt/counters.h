/* counters.h -- the counters every layer bumps, named once.
 *
 * Each thread's runtime (rt.h) owns one gw_stats and is its only writer:
 * STAT_ADD is a relaxed load and store, no atomic read-modify-write.  Any
 * thread may read every runtime's counters (rt_stats_sum) with relaxed
 * loads.  The X-macro list is the single place a counter is named, so the
 * struct and every report of it (`stats`, later metrics) cannot drift apart.
 *
 * Counters only count: building a reply from them is the front's job
 * (front/admin.h), so bumping one drags in no protocol.
 */
#ifndef GW_COUNTERS_H
#define GW_COUNTERS_H

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
    X(gw_backend_connects) X(gw_backend_conn_failures) X(gw_lua_memory)        \
    X(gw_lua_calls) X(gw_lua_tasks)                                            \
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
#define STAT_SET(st, field, v) __atomic_store_n(&(st)->field, (v), __ATOMIC_RELAXED)
#define STAT_INC(st, field) STAT_ADD(st, field, 1)
#define STAT_DEC(st, field) STAT_ADD(st, field, (uint64_t)-1)

#endif
