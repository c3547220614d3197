/* settings.c -- see settings.h. */
#include "settings.h"

#include "base/status.h"
#include "codec/proto.h"

/* field, name in gateway.settings, default, is a boolean.  max_pending
 * bounds what one client can make the gateway hold: each request in flight
 * may pin a value of up to max_value_size bytes. */
#define SETTINGS_DEFAULTS(X)                                                   \
    X(threads, "threads", 1, false)                                            \
    X(max_value, "max_value_size", MC_DEFAULT_MAX_VALUE, false)                \
    X(max_line, "max_line", MC_DEFAULT_MAX_LINE, false)                        \
    X(max_connections, "max_connections", 4096, false)                         \
    X(max_pending, "max_pending", 256, false)                                  \
    X(max_output, "max_output", 8 * 1024 * 1024, false)                        \
    X(max_client_memory, "max_client_memory", 64 * 1024 * 1024, false)         \
    X(binary_keys, "binary_keys", false, true)                                 \
    X(shutdown_timeout, "shutdown_timeout", 5, false)                          \
    X(instruction_limit, "instruction_limit", 1000000, false)                  \
    X(route_timeout, "route_timeout", 5, false)                                \
    X(task_limit, "task_limit", 256, false)                                    \
    X(max_tasks, "max_tasks", 10000, false)                                    \
    X(lua_memory_limit, "lua_memory_limit", 256 * 1024 * 1024, false)

#define INIT(field, name, value, is_bool) .field = value,
const struct gw_settings settings_defaults = { SETTINGS_DEFAULTS(INIT) };
#undef INIT

struct gw_settings gw_settings;

#define ROW(field, name, value, is_bool) { name, (double)(value), is_bool },
const struct setting_default settings_default_list[] = { SETTINGS_DEFAULTS(ROW) };
#undef ROW

const int settings_default_count = (int)GW_ARRAY_LEN(settings_default_list);
