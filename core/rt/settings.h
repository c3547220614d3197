/* settings.h -- the process-wide settings, and the one place their
 * defaults are written.
 *
 * gw_settings is filled once at start-up (main) from the defaults, the
 * config's gateway.settings and the command line, before any worker
 * starts; after that every thread reads it without locks and nobody
 * writes it.  settings_defaults is what a setting is when nobody set it;
 * the Lua prelude asks the core for the same values (script/lhost.c), so
 * the config API, the docs and the core cannot disagree.
 */
#ifndef GW_SETTINGS_H
#define GW_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_settings {
    int threads;
    size_t max_value;          /* largest value accepted, bytes */
    size_t max_line;           /* longest command line accepted, bytes */
    uint32_t max_connections;  /* open client connections, all workers together */
    uint32_t max_pending;      /* requests in flight per client before reading pauses */
    size_t max_output;         /* unwritten reply bytes per client before reading pauses */
    size_t max_client_memory;  /* bytes one client may pin: its unwritten replies, and for
                                * each request in flight its bytes and, per key it reads,
                                * one max_value (at least one request is always let in) */
    bool binary_keys;          /* accept control bytes in keys (memcached does) */
    double shutdown_timeout;   /* seconds a stopping worker waits for requests in flight */
    uint64_t instruction_limit;/* Lua instructions per route call, with all it starts (0: none) */
    double route_timeout;      /* seconds a route call may take, with all it starts (0: none) */
    uint32_t task_limit;       /* Lua tasks one route call may start (0: none) */
    uint32_t max_tasks;        /* Lua tasks alive at once on a worker (0: none) */
    size_t lua_memory_limit;   /* bytes of Lua memory per worker (0: none) */
    const char *config_path;
    const char *lua_dir;
};

extern const struct gw_settings settings_defaults;
extern struct gw_settings gw_settings;

/* Seconds a config's top level may run (at start, on reload, in a check):
 * a slow or endless one fails its load, and only delays a reload. */
#define CONFIG_TIMEOUT 10.0

/* One setting's name and default, for the prelude's table of defaults:
 * each entry is a number (is_bool false) or a boolean. */
struct setting_default {
    const char *name;
    double value;
    bool is_bool;
};
extern const struct setting_default settings_default_list[];
extern const int settings_default_count;

#endif
