/* config_log.h -- what a config says, in the operator's log.
 *
 * At start-up config_log_start logs the config file, every pool with its
 * servers (or its size, for memcache.internal) and the route table:
 *   config /etc/gateway/gateway.lua
 *   pool main: python-memcached, 2 servers: 10.0.0.1:11211, 10.0.0.2:11211 (weight 2)
 *   routes: "sess:" -> sessions, "t1:" -> function, default -> main
 * After a successful reload config_log_reload logs what changed, each line
 * naming the new generation: pools added, removed or changed (with their
 * new description), and the routes when they changed.  It keeps the
 * description of the serving config to compare the next one with (pools
 * are matched by name; a name made twice is told apart by its order).
 * The listeners are logged where they are bound (reload.c).
 *
 * Main thread only.  The host is only read.
 */
#ifndef GW_CONFIG_LOG_H
#define GW_CONFIG_LOG_H

#include <stdint.h>

struct lhost;

void config_log_start(const struct lhost *h, const char *path);
void config_log_reload(const struct lhost *h, uint64_t generation);
/* Forget the serving config's description (at exit). */
void config_log_free(void);

#endif
