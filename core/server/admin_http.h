/* admin_http.h -- the admin listener (gateway.admin): HTTP/1.1 for
 * operators, served by GNU libmicrohttpd on threads of its own, never on a
 * worker's loop.
 *
 *   GET  /metrics                  the Prometheus text exposition (the latest
 *                                  collected set, collect.h)
 *   GET  /healthz                  200 "ok", or 503 and why: shutting down, or a
 *                                  pool without failover with every server down
 *   GET  /config                   the live config, as JSON
 *   GET  /route?key=K[&command=C]  where K would go, as JSON
 *   POST /reload                   reload now (as SIGHUP); says ok and the
 *                                  generation, or the error with file:line
 *   POST /servers/HOST:PORT/down   the operator takes a server out ...
 *   POST /servers/HOST:PORT/up     ... or puts it back
 *
 * What needs the workers or reload runs on the main thread: a request's
 * thread hands it over (admin_http_init's bridge) and waits.  Bad input
 * gets a 4xx; a connection that is slow or idle is closed after 10 s;
 * headers are bounded; at most ADMIN_MAX_CONNECTIONS are served at once.
 *
 * Main thread: admin_http_init once, then start/stop as the config says.
 */
#ifndef GW_ADMIN_HTTP_H
#define GW_ADMIN_HTTP_H

#include <stddef.h>

struct gw_loop;

#define ADMIN_MAX_CONNECTIONS 256

/* The bridge to the main loop (before the first start). */
int admin_http_init(struct gw_loop *main_loop);
/* Serve on the listening socket fd (the daemon owns it from now on). */
int admin_http_start(int fd, char *err, size_t errlen);
/* Stop serving.  Returns at once: the old daemon stops accepting and is
 * stopped on a thread of its own once its replies are out, since one of
 * its requests may be what the main thread is running (POST /reload). */
void admin_http_stop(void);
/* Shutting down: requests that need the main thread are refused from now
 * on, so none waits on a loop that no longer runs. */
void admin_http_quiesce(void);
void admin_http_free(void);

#endif
