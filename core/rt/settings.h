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
    bool binary_keys;          /* accept control bytes in keys (memcached does) */
    double shutdown_timeout;   /* seconds a stopping worker waits for requests in flight */
    uint64_t instruction_limit;/* Lua instructions per task (0: unbounded) */
    const char *config_path;
    const char *lua_dir;
};

extern const struct gw_settings settings_defaults;
extern struct gw_settings gw_settings;

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
