/* reload.c -- see reload.h. */
#include "reload.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/loop.h"
#include "admin_http.h"
#include "base/net.h"
#include "config_log.h"
#include "rt/rt.h"
#include "rt/settings.h"
#include "script/lhost.h"
#include "worker.h"

#define DEFAULT_LISTEN "127.0.0.1:11211"
#define DEBOUNCE_SECONDS 0.3
#define POLL_SECONDS 0.5

struct listen_entry {
    char *addr;
    char *name;
};

static struct listen_entry *cur;     /* what the workers listen on */
static int ncur;
static char *cur_admin;              /* the admin listener's address, or NULL */
static const char *override;         /* -l: fixed for the process's life */

static struct gw_loop *main_loop;
static struct gw_signal *hup;
static struct gw_timer *debounce;
/* A watched file.  libev's stat watcher compares whole seconds, so a
 * same-size save within the second it last looked goes unseen; a poll that
 * compares nanosecond times catches that. */
struct watch {
    char *path;
    struct stat st;
    bool exists;
    struct gw_stat *ev;
};

static struct watch *watches;
static int nwatches;
static struct gw_timer *poll_timer;

/* Publish and log a reload attempt; returns the generation serving. */
static uint64_t record(bool ok, const char *err)
{
    rt_config_record(ok, err);
    struct rt_config_status st;
    rt_config_status(&st);
    if (ok)
        LOG_INFO("reload: config generation %llu is serving", (unsigned long long)st.generation);
    else
        LOG_ERROR("reload failed, the running config stays: %s", err);
    return st.generation;
}

/* --- listen addresses ---------------------------------------------------- */

/* The addresses cfg asks for: the -l override, the config's, or the
 * default; with each its name and TLS context (NULL: none). */
static int wanted(const struct lhost_config *cfg, const char *const **addrs,
                  char *const **names, struct gw_tls *const **tls)
{
    static const char *const default_addr[1] = { DEFAULT_LISTEN };
    static const char *override_addr[1];
    static char *const no_name[1] = { NULL };
    static struct gw_tls *const no_tls[1] = { NULL };
    if (override || cfg->nlisten == 0) {
        override_addr[0] = override;
        *addrs = override ? override_addr : default_addr;
        *names = no_name;
        *tls = no_tls;
        return 1;
    }
    *addrs = (const char *const *)cfg->listen;
    *names = cfg->listen_names;
    *tls = cfg->listen_tls;
    return cfg->nlisten;
}

/* Is addr's host a loopback one (127.0.0.0/8, ::1, localhost)? */
static bool loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]:", 6) ||
           !strncmp(addr, "localhost:", 10);
}

/* Safe defaults: a listener anyone on the network can reach, with neither
 * TLS nor a login, lets anyone read and overwrite every key in plaintext. */
static void warn_exposed(const struct lhost_config *cfg)
{
    const char *const *addrs;
    char *const *names;
    struct gw_tls *const *tls;
    int n = wanted(cfg, &addrs, &names, &tls);
    for (int i = 0; i < n; i++) {
        bool auth = !override && cfg->nlisten > 0 && cfg->listen_auth[i];
        if (loopback(addrs[i]) || tls[i] || auth) continue;
        LOG_WARN("listening on %s, beyond loopback, with neither tls nor auth: anyone who can "
                 "reach it can read and overwrite every key, and the traffic is plaintext",
                 addrs[i]);
    }
    /* The admin listener reloads the config and takes servers out. */
    const struct lhost_admin *ao = cfg->admin_opts;
    if (!cfg->admin || loopback(cfg->admin)) return;
    if (!ao)
        LOG_WARN("admin listener on %s, beyond loopback, with neither tls nor token: anyone "
                 "who can reach it can reload the config, take servers out and read the "
                 "config and the metrics", cfg->admin);
    else if (ao->token && !ao->tls)
        LOG_WARN("admin listener on %s, beyond loopback, has a token but no tls: the token "
                 "travels in plaintext", cfg->admin);
}

static int find_cur(const char *addr)
{
    for (int i = 0; i < ncur; i++)
        if (!strcmp(cur[i].addr, addr)) return i;
    return -1;
}

/* One socket per worker on addr, into fds[0..gw_nworkers). */
static int bind_addr(const char *addr, int *fds, char *err, size_t errlen)
{
    struct gw_addr a;
    char host[256], nerr[GW_NET_ERRLEN];
    uint16_t port;
    if (net_parse_addr(addr, &a, host, sizeof host, &port, nerr) != GW_OK) {
        snprintf(err, errlen, "listen %s: %s", addr, nerr);
        return GW_ERROR;
    }
    /* Only this process's workers may share the address. */
    if (net_check_free(&a, nerr) != GW_OK) {
        snprintf(err, errlen, "listen %s: %s", addr, nerr);
        return GW_ERROR;
    }
    for (int w = 0; w < gw_nworkers; w++) {
        if (net_listen(&a, true, 1024, &fds[w], nerr) != GW_OK) {
            snprintf(err, errlen, "listen %s: %s", addr, nerr);
            while (w-- > 0) close(fds[w]);
            return GW_ERROR;
        }
    }
    return GW_OK;
}

/* The admin listener's one socket (not shared: one thread pool serves it). */
static int bind_admin(const char *addr, int *fd, char *err, size_t errlen)
{
    struct gw_addr a;
    char host[256], nerr[GW_NET_ERRLEN];
    uint16_t port;
    if (net_parse_addr(addr, &a, host, sizeof host, &port, nerr) != GW_OK ||
        net_check_free(&a, nerr) != GW_OK || net_listen(&a, false, 128, fd, nerr) != GW_OK) {
        snprintf(err, errlen, "admin %s: %s", addr, nerr);
        return GW_ERROR;
    }
    return GW_OK;
}

static bool same_addr(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Stop the admin listener (the config has none now). */
static void admin_off(void)
{
    admin_http_stop();
    if (cur_admin) LOG_INFO("admin listener on %s stopped", cur_admin);
    free(cur_admin);
    cur_admin = NULL;
}

/* Serve cfg's admin listener on fd (bound for its address, or a dup of the
 * serving one's socket), in place of the one serving.  If it cannot start,
 * GW_ERROR with why, fd closed, and the one serving goes on. */
static int admin_serve(const struct lhost_config *cfg, int fd, char *err, size_t errlen)
{
    const struct lhost_admin *o = cfg->admin_opts;
    char *addr = strdup(cfg->admin);
    if (!addr) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return GW_ERROR;
    }
    if (admin_http_start(fd, o, err, errlen) != GW_OK) {
        free(addr);
        return GW_ERROR;
    }
    free(cur_admin);
    cur_admin = addr;
    bool tls = o && o->tls;
    static const char *const verify[] = { "", ", client certificates verified if sent",
                                          ", client certificates required" };
    LOG_INFO("admin listener on %s://%s/%s%s", tls ? "https" : "http", addr,
             tls ? verify[o->verify] : "", o && o->token ? ", bearer token required" : "");
    return GW_OK;
}

static void entry_set(struct listen_entry *e, const char *addr, const char *name)
{
    e->addr = strdup(addr);
    e->name = name ? strdup(name) : NULL;
}

static void entry_clear(struct listen_entry *e)
{
    free(e->addr);
    free(e->name);
}

/* "listening on 127.0.0.1:11211 (name tenant1)", after `what`. */
static void log_listening(const char *what, const char *addr, const char *name)
{
    LOG_INFO("%slistening on %s%s%s%s", what, addr, name ? " (name " : "", name ? name : "",
             name ? ")" : "");
}

/* -l replaces the config's listeners, names, fences and auth included
 * (the -l listener's label is its address): say so when that leaves out a
 * listener's auth.  Only an unnamed listener of the config on the -l
 * address itself keeps its auth. */
static void warn_override_auth(const struct lhost_config *cfg)
{
    if (!override) return;
    bool any = false, kept = false;
    for (int i = 0; i < cfg->nlisten; i++) {
        if (!cfg->listen_auth[i]) continue;
        any = true;
        if (!cfg->listen_names[i] && !strcmp(cfg->listen[i], override)) kept = true;
    }
    if (any && !kept)
        LOG_WARN("-l %s replaces the config's listeners, and with them their auth: clients of %s "
                 "are not asked to log in", override, override);
}

int reload_start(const struct lhost_config *cfg, const char *listen_override)
{
    override = listen_override;
    warn_override_auth(cfg);
    warn_exposed(cfg);
    const char *const *addrs;
    char *const *names;
    struct gw_tls *const *tls;
    int n = wanted(cfg, &addrs, &names, &tls);
    cur = calloc((size_t)n, sizeof *cur);
    int *fds = calloc((size_t)gw_nworkers, sizeof *fds);
    if (!cur || !fds) {
        free(fds);
        return GW_ERROR;
    }
    for (int i = 0; i < n; i++) {
        char err[300];
        if (bind_addr(addrs[i], fds, err, sizeof err) != GW_OK) {
            LOG_ERROR("%s", err);
            free(fds);
            return GW_ERROR;
        }
        for (int w = 0; w < gw_nworkers; w++) {
            if (worker_listen(&gw_workers[w], fds[w], addrs[i], names[i], tls[i]) != GW_OK) {
                free(fds);
                return GW_ERROR;
            }
        }
        entry_set(&cur[ncur++], addrs[i], names[i]);
        log_listening("", addrs[i], names[i]);
    }
    free(fds);
    if (cfg->admin) {
        char err[300];
        int fd;
        if (bind_admin(cfg->admin, &fd, err, sizeof err) != GW_OK ||
            admin_serve(cfg, fd, err, sizeof err) != GW_OK) {
            LOG_ERROR("%s", err);
            return GW_ERROR;
        }
    }
    return GW_OK;
}

/* --- the switch ---------------------------------------------------------- */

struct job {
    const struct lhost_config *cfg; /* the validated config: its texts */
    bool bind_failed;
    struct lhost **hosts;         /* per worker: the state prepared */
    char (*errs)[512];            /* per worker: why it could not be */
    const char *const *addrs;     /* the new listen set */
    char *const *names;
    struct gw_tls *const *tls;
    int naddrs;
    int *new_fds;                 /* naddrs x workers; -1 for kept addresses */
};

/* Prepare, off the workers' loops: one thread per worker runs the
 * config's top level into a state of its own, so a slow config delays the
 * reload and never a request. */
struct build {
    struct job *j;
    int id;
    bool threaded;
    pthread_t thread;
};

static void *build_main(void *arg)
{
    struct build *b = arg;
    struct job *j = b->j;
    j->hosts[b->id] = lhost_new(NULL, gw_settings.config_path, gw_settings.lua_dir, j->cfg,
                                j->errs[b->id], sizeof j->errs[b->id]);
    buf_cache_drain(); /* buffers the top level made belong to no thread now */
    return NULL;
}

static void build_states(struct job *j)
{
    struct build *b = calloc((size_t)gw_nworkers, sizeof *b);
    if (!b) {
        for (int w = 0; w < gw_nworkers; w++) snprintf(j->errs[w], sizeof j->errs[w], "out of memory");
        return;
    }
    for (int w = 0; w < gw_nworkers; w++) {
        b[w].j = j;
        b[w].id = w;
        b[w].threaded = pthread_create(&b[w].thread, NULL, build_main, &b[w]) == 0;
        if (!b[w].threaded) build_main(&b[w]);
    }
    for (int w = 0; w < gw_nworkers; w++)
        if (b[w].threaded) pthread_join(b[w].thread, NULL);
    free(b);
}

/* On the worker: its prepared state takes its backends (no Lua runs). */
static void job_bind(struct worker *w, void *arg)
{
    struct job *j = arg;
    struct lhost *h = j->hosts[w->id];
    if (h && lhost_bind(h, &w->rt) != GW_OK) {
        snprintf(j->errs[w->id], sizeof j->errs[w->id], "out of memory");
        j->bind_failed = true;
    }
}

static void job_abort(struct worker *w, void *arg)
{
    struct job *j = arg;
    lhost_free(j->hosts[w->id]);
    j->hosts[w->id] = NULL;
}

static bool in_new_set(const struct job *j, const char *addr)
{
    for (int i = 0; i < j->naddrs; i++)
        if (!strcmp(j->addrs[i], addr)) return true;
    return false;
}

static void job_commit(struct worker *w, void *arg)
{
    struct job *j = arg;
    worker_switch_config(w, j->hosts[w->id]);
    for (int i = 0; i < ncur; i++)
        if (!in_new_set(j, cur[i].addr)) worker_unlisten(w, cur[i].addr);
    for (int i = 0; i < j->naddrs; i++) {
        int fd = j->new_fds[i * gw_nworkers + w->id];
        if (fd >= 0) {
            if (worker_listen(w, fd, j->addrs[i], j->names[i], j->tls[i]) != GW_OK) close(fd);
        } else {
            worker_rename_listener(w, j->addrs[i], j->names[i], j->tls[i]);
        }
    }
}

/* Run fn on every worker at once and wait for all of them. */
static void on_all_workers(void (*fn)(struct worker *, void *), void *arg)
{
    for (int w = 0; w < gw_nworkers; w++) worker_post(&gw_workers[w], fn, arg);
    for (int w = 0; w < gw_nworkers; w++) worker_wait(&gw_workers[w]);
}

static void close_new_fds(struct job *j)
{
    for (int i = 0; i < j->naddrs * gw_nworkers; i++)
        if (j->new_fds[i] >= 0) close(j->new_fds[i]);
}

static void warn_settings(const struct lhost_config *cfg)
{
    const struct gw_settings *s = &cfg->settings, *g = &gw_settings;
    if ((s->threads != g->threads && s->threads != settings_defaults.threads) ||
        s->max_value != g->max_value || s->max_line != g->max_line ||
        s->max_connections != g->max_connections || s->max_pending != g->max_pending ||
        s->max_output != g->max_output || s->shutdown_timeout != g->shutdown_timeout ||
        s->binary_keys != g->binary_keys || s->max_client_memory != g->max_client_memory ||
        s->max_tasks != g->max_tasks || s->lua_memory_limit != g->lua_memory_limit)
        LOG_WARN("reload: gateway.settings changes (other than instruction_limit, route_timeout "
                 "and task_limit) take effect at the next restart");
}

static void watch_files(const struct lhost_config *cfg);

/* The listen addresses the switch to j added and dropped. */
static void log_listen_changes(const struct job *j)
{
    for (int i = 0; i < j->naddrs; i++)
        if (find_cur(j->addrs[i]) < 0) log_listening("reload: now ", j->addrs[i], j->names[i]);
    for (int i = 0; i < ncur; i++)
        if (!in_new_set(j, cur[i].addr)) LOG_INFO("reload: no longer listening on %s", cur[i].addr);
}

/* Steps 2-5 of reload.h for a config that validated as cfg.  Returns
 * GW_OK once every worker serves it. */
static int switch_to(const struct lhost_config *cfg, char *err, size_t errlen)
{
    struct job j = { 0 };
    j.cfg = cfg;
    j.naddrs = wanted(cfg, &j.addrs, &j.names, &j.tls);
    j.hosts = calloc((size_t)gw_nworkers, sizeof *j.hosts);
    j.errs = calloc((size_t)gw_nworkers, sizeof *j.errs);
    j.new_fds = malloc((size_t)(j.naddrs * gw_nworkers) * sizeof *j.new_fds);
    int rc = GW_ERROR;
    if (!j.hosts || !j.errs || !j.new_fds) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < j.naddrs * gw_nworkers; i++) j.new_fds[i] = -1;
    for (int i = 0; i < j.naddrs; i++) {
        if (find_cur(j.addrs[i]) >= 0) continue;
        if (bind_addr(j.addrs[i], &j.new_fds[i * gw_nworkers], err, errlen) != GW_OK) {
            close_new_fds(&j);
            goto out;
        }
    }
    bool admin_moves = !same_addr(cfg->admin, cur_admin);
    /* Same address, new tls or token: a new daemon on the same socket. */
    bool admin_renews = !admin_moves && cfg->admin && !admin_http_serves(cfg->admin_opts);
    int admin_fd = -1;
    if (admin_moves && cfg->admin) {
        /* A new address may be the old one's port on another host: the
         * old socket is closed first only when the new one is bound. */
        if (bind_admin(cfg->admin, &admin_fd, err, errlen) != GW_OK) {
            close_new_fds(&j);
            goto out;
        }
    }
    build_states(&j);
    for (int w = 0; w < gw_nworkers && !j.bind_failed; w++)
        if (!j.hosts[w]) j.bind_failed = true;
    if (!j.bind_failed) on_all_workers(job_bind, &j);
    for (int w = 0; w < gw_nworkers; w++) {
        if (!j.hosts[w] || j.errs[w][0]) {
            snprintf(err, errlen, "worker %d: %s", w, j.errs[w]);
            on_all_workers(job_abort, &j);
            close_new_fds(&j);
            if (admin_fd >= 0) close(admin_fd);
            goto out;
        }
    }
    /* The last step that may fail: libmicrohttpd may refuse a certificate
     * the config's check let through.  Then nothing changes, the old admin
     * listener included. */
    if (admin_renews && (admin_fd = dup(admin_http_fd())) < 0)
        snprintf(err, errlen, "admin %s: cannot take the listening socket again", cfg->admin);
    if ((admin_renews && admin_fd < 0) ||
        (admin_fd >= 0 && admin_serve(cfg, admin_fd, err, errlen) != GW_OK)) {
        on_all_workers(job_abort, &j);
        close_new_fds(&j);
        goto out;
    }
    on_all_workers(job_commit, &j);
    log_listen_changes(&j);
    if (admin_moves && !cfg->admin) admin_off();
    struct listen_entry *next = calloc((size_t)j.naddrs, sizeof *next);
    if (next) {
        for (int i = 0; i < ncur; i++) entry_clear(&cur[i]);
        free(cur);
        cur = next;
        ncur = j.naddrs;
        for (int i = 0; i < ncur; i++) entry_set(&cur[i], j.addrs[i], j.names[i]);
    }
    rc = GW_OK;
out:
    free(j.hosts);
    free(j.errs);
    free(j.new_fds);
    return rc;
}

void reload_now(void)
{
    char err[512];
    gw_timer_stop(debounce);   /* a save waiting to reload is loaded by this one */
    LOG_INFO("reload: loading %s", gw_settings.config_path);
    struct lhost *check = lhost_new(NULL, gw_settings.config_path, gw_settings.lua_dir, NULL,
                                    err, sizeof err);
    if (!check) {
        record(false, err);
        return;
    }
    const struct lhost_config *cfg = lhost_config(check);
    if (switch_to(cfg, err, sizeof err) != GW_OK) {
        record(false, err);
    } else {
        warn_settings(cfg);
        warn_override_auth(cfg);
        warn_exposed(cfg);
        watch_files(cfg);
        config_log_reload(check, record(true, NULL));
    }
    lhost_free(check);
}

/* --- triggers ------------------------------------------------------------- */

static void on_debounced(void *data, int events)
{
    reload_now();
}

static void on_hup(void *data, int events)
{
    reload_now();
}

/* Has the file changed since we last looked?  Remembers what it saw. */
static bool watch_changed(struct watch *w)
{
    struct stat st;
    bool exists = stat(w->path, &st) == 0;
    bool changed = exists != w->exists ||
        (exists && (st.st_ino != w->st.st_ino || st.st_size != w->st.st_size ||
                    st.st_mtim.tv_sec != w->st.st_mtim.tv_sec ||
                    st.st_mtim.tv_nsec != w->st.st_mtim.tv_nsec ||
                    st.st_ctim.tv_sec != w->st.st_ctim.tv_sec ||
                    st.st_ctim.tv_nsec != w->st.st_ctim.tv_nsec));
    w->exists = exists;
    if (exists) w->st = st;
    return changed;
}

static void on_stat_event(void *data, int events)
{
    struct watch *w = data;
    watch_changed(w);
    gw_timer_start(debounce, DEBOUNCE_SECONDS);
}

static void on_poll(void *data, int events)
{
    for (int i = 0; i < nwatches; i++) {
        if (watch_changed(&watches[i])) {
            gw_timer_start(debounce, DEBOUNCE_SECONDS);
            break;
        }
    }
    gw_timer_start(poll_timer, POLL_SECONDS);
}

static void unwatch_files(void)
{
    for (int i = 0; i < nwatches; i++) {
        gw_stat_free(watches[i].ev);
        free(watches[i].path);
    }
    free(watches);
    watches = NULL;
    nwatches = 0;
}

static void watch_files(const struct lhost_config *cfg)
{
    unwatch_files();
    watches = calloc((size_t)cfg->nfiles, sizeof *watches);
    if (!watches) return;
    bool changed = false;
    for (int i = 0; i < cfg->nfiles; i++) {
        struct watch *w = &watches[nwatches];
        w->path = strdup(cfg->files[i]);
        if (!w->path) continue;
        /* Compare with the file as it was when the config read it: a save
         * made while that config loaded is a change still to load. */
        w->st = cfg->stamps[i];
        w->exists = cfg->stamps[i].st_nlink > 0;
        changed |= watch_changed(w);
        w->ev = gw_stat_new(main_loop, w->path, POLL_SECONDS, on_stat_event, w);
        nwatches++;
    }
    if (changed) gw_timer_start(debounce, DEBOUNCE_SECONDS);
}

int reload_watch(struct gw_loop *loop, const struct lhost_config *cfg)
{
    main_loop = loop;
    hup = gw_signal_new(loop, SIGHUP, on_hup, NULL);
    /* Editors write a file in bursts (truncate, write, rename): reload once
     * the burst is over. */
    debounce = gw_timer_new(loop, on_debounced, NULL);
    poll_timer = gw_timer_new(loop, on_poll, NULL);
    if (!hup || !debounce || !poll_timer) return GW_ERROR;
    watch_files(cfg);
    gw_timer_start(poll_timer, POLL_SECONDS);
    return GW_OK;
}

void reload_stop(void)
{
    free(cur_admin);
    cur_admin = NULL;
    unwatch_files();
    gw_signal_free(hup);
    gw_timer_free(debounce);
    gw_timer_free(poll_timer);
    poll_timer = NULL;
    hup = NULL;
    debounce = NULL;
    for (int i = 0; i < ncur; i++) entry_clear(&cur[i]);
    free(cur);
    cur = NULL;
    ncur = 0;
}
