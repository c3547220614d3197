/* collect.h -- what the operator sees, gathered from the workers.
 *
 * Every worker's numbers live on its own thread (rt.h, metrics.h); they
 * are read there, by a job the main thread posts (worker_post), so the hot
 * path never takes a lock.  collect_start runs that once a second on the
 * main loop: the merged set is published (metrics_publish) for /metrics
 * and `stats servers`, and the health (every server of a pool without
 * failover down?) with it.  The other views are made on demand, on a
 * worker's thread, for the admin listener: the live config as JSON, where
 * a key goes, and taking a server out.
 *
 * Main thread only, except collect_health, which any thread may call.
 */
#ifndef GW_COLLECT_H
#define GW_COLLECT_H

#include <stdbool.h>
#include <stddef.h>

struct gw_loop;

/* Collect now, then once a second. */
int collect_start(struct gw_loop *loop);
void collect_stop(void);
/* Collect and publish at once (main thread). */
void collect_now(void);

/* Healthy?  If not, why (into why, whylen bytes). */
bool collect_health(char *why, size_t whylen);

/* The live config as JSON (malloc'd), from worker 0. */
char *collect_config_json(size_t *len);
/* Where key would go, as JSON (malloc'd), from worker 0. */
char *collect_route_json(const char *key, size_t klen, const char *command, size_t *len);
/* Take the server "host:port" out (down) or put it back on every worker.
 * False if no worker has such a server. */
bool collect_set_server_down(const char *server, bool down);

#endif
