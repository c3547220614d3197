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
 * gateway.admin's tls and token (lhost_admin): with tls the listener
 * speaks HTTPS (libmicrohttpd's GnuTLS, from the PEM texts the config
 * read; this is the one file that knows GnuTLS), and with verify other
 * than "none" a request whose client certificate is missing ("required")
 * or does not verify against the ca gets 403.  With a token every request
 * but GET /healthz must carry "Authorization: Bearer <token>" (compared in
 * constant time), else 401 with WWW-Authenticate: Bearer realm="gateway".
 * Both refusals are counted (rt_admin_refused) and logged, rate limited,
 * without the token.
 *
 * Main thread: admin_http_init once, then start/stop as the config says.
 */
#ifndef GW_ADMIN_HTTP_H
#define GW_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_loop;
struct lhost_admin;

#define ADMIN_MAX_CONNECTIONS 256

/* The bridge to the main loop (before the first start). */
int admin_http_init(struct gw_loop *main_loop);
/* Serve on the listening socket fd (the daemon owns it from now on, and
 * closes it if it cannot start) with o's tls and token (NULL: neither).
 * Once the new daemon serves, the one serving before is stopped
 * (admin_http_stop); if it cannot start (a certificate GnuTLS refuses),
 * GW_ERROR with why, and the one serving before goes on. */
int admin_http_start(int fd, const struct lhost_admin *o, char *err, size_t errlen);
/* Does the daemon serving now have o's tls and token? */
bool admin_http_serves(const struct lhost_admin *o);
/* The serving daemon's listening socket (-1: none): a daemon with a new
 * tls or token takes a dup of it, so the address is never unbound. */
int admin_http_fd(void);
/* Stop serving.  Returns at once: the old daemon stops accepting and is
 * stopped on a thread of its own once its replies are out, since one of
 * its requests may be what the main thread is running (POST /reload). */
void admin_http_stop(void);
/* Shutting down: requests that need the main thread are refused from now
 * on, so none waits on a loop that no longer runs. */
void admin_http_quiesce(void);
void admin_http_free(void);

#endif
