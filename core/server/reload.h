/* reload.h -- the listen addresses, and hot reload of the config.
 *
 * The main thread owns both.  reload_start binds the first config's
 * listen addresses (one SO_REUSEPORT socket per worker) and hands them to
 * the workers; reload_watch then watches SIGHUP and the config's files.
 *
 * A reload (SIGHUP, or a change to the config file or any Lua file it
 * required, debounced) is all or nothing:
 *   1. the new config runs in a validation state on the main thread, which
 *      reads its files once;
 *   2. new listen addresses are bound (and the admin listener's, if it
 *      moves);
 *   3. every worker builds its own state from the texts step 1 read
 *      (prepare);
 *   4. the admin listener, if it moves or its tls or token changed, is
 *      started anew (on a dup of its socket when only tls or token
 *      changed), and replaces the one serving only once it serves;
 *   5. only if every step worked does every worker switch (commit), else
 *      every prepared state is dropped and new sockets closed (abort),
 *      and the admin listener serving goes on as it was.
 * A worker's old config keeps running the requests it started and is freed
 * once idle.  Backends with the same address and options are shared across
 * configs (backend.h), so their connections stay open.  Clients are never
 * touched.  gateway.settings other than instruction_limit keep their
 * start-up values (a change is logged).
 *
 * Each attempt is published as the config status (rt.h), which `stats`
 * reads, and logged: the generation now serving, the listen addresses
 * added and dropped, and what config_log.h says changed.  Main thread only.
 */
#ifndef GW_RELOAD_H
#define GW_RELOAD_H

struct gw_loop;
struct lhost_config;


/* Bind cfg's listen addresses (or listen_override) and give them to the
 * workers, which must be initialised.  GW_ERROR (logged) if one cannot be
 * bound. */
int reload_start(const struct lhost_config *cfg, const char *listen_override);
/* Reload on SIGHUP and when one of cfg's files changes. */
int reload_watch(struct gw_loop *loop, const struct lhost_config *cfg);
/* Reload now (main thread). */
void reload_now(void);
/* Stop watching and free the bookkeeping (the workers own the sockets). */
void reload_stop(void);

#endif
