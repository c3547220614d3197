/* main.c -- command line, config validation, worker threads.
 *
 * The config is first run in a validation state on the main thread: that
 * is what --check does, and what catches config errors before anything
 * listens.  It reads the config's files once; each worker then runs the
 * same texts in its own state, and the main thread only waits for signals
 * and reloads (reload.h).  Here too: where the Lua library is looked for
 * (find_lua_dir), the pid file a service manager may ask for, the start-up
 * log of the config (config_log.h), and the timer that writes the counts
 * of repeated errors (log.h; all of them at exit).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/version.h"
#include "proxy/pool.h"
#include "admin_http.h"
#include "collect.h"
#include "config_log.h"
#include "reload.h"
#include "rt/rt.h"
#include "rt/settings.h"
#include "script/lhost.h"
#include "worker.h"

/* The install path of the Lua library; the Makefile passes its DATADIR. */
#ifndef GW_LUA_DIR
#define GW_LUA_DIR "/usr/local/share/gateway"
#endif

/* The file that tells a folder is the Lua library: a folder merely named
 * lua (or /usr/local/bin/lua, the Lua interpreter) is not it. */
#define LUA_DIR_MARK "gateway/prelude.lua"

static bool is_lua_dir(const char *dir)
{
    char path[PATH_MAX + sizeof LUA_DIR_MARK + 1];
    snprintf(path, sizeof path, "%s/%s", dir, LUA_DIR_MARK);
    return access(path, R_OK) == 0;
}

/* lua/ in the folder of the running binary (a build tree: ./gateway and
 * ./lua), or NULL. */
static char *lua_dir_next_to_binary(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/lua", exe);
    return is_lua_dir(path) ? strdup(path) : NULL;
}

/* The first that applies (README "Run it in production"): GATEWAY_LUA_DIR,
 * taken as given; lua/ next to the binary, so a build tree uses its own
 * library even where one is installed; the install path; ./lua, whose
 * absence the config load then reports by name. */
static char *find_lua_dir(void)
{
    const char *env = getenv("GATEWAY_LUA_DIR");
    if (env && *env) return strdup(env);
    char *dir = lua_dir_next_to_binary();
    if (dir) return dir;
    if (is_lua_dir(GW_LUA_DIR)) return strdup(GW_LUA_DIR);
    return strdup("lua");
}

static void usage(FILE *f)
{
    char *lua_dir = find_lua_dir();
    fprintf(f,
            "usage: gateway [options] [CONFIG]\n"
            "  A Lua-scriptable memcached gateway.  CONFIG defaults to gateway.lua.\n"
            "\n"
            "      --check CONFIG      load and validate CONFIG, print file:line: message, exit 0/1\n"
            "  -l, --listen HOST:PORT  listen here (overrides the config's gateway.listen)\n"
            "  -p, --port PORT         listen on 127.0.0.1:PORT (as -l 127.0.0.1:PORT)\n"
            "  -t, --threads N         worker threads (overrides gateway.settings)\n"
            "      --pidfile FILE      write the pid to FILE once listening; removed at exit\n"
            "  -v                      more logging (repeat for more)\n"
            "      --version           print the version\n"
            "  -h, --help              this text\n"
            "\n"
            "environment:\n"
            "  GATEWAY_LUA_DIR         the Lua library's folder (the one holding gateway/prelude.lua).\n"
            "                          Unset: lua/ next to the binary, else %s\n"
            "                          (the install path), else ./lua.  This run: %s\n"
            "  GATEWAY_LOG_WINDOW      seconds a repeated error is counted rather than logged\n"
            "                          (default %g)\n"
            "\n"
            "signals:\n"
            "  HUP                     reload the config (as saving it does)\n"
            "  TERM, INT               stop accepting, answer what was read, exit\n",
            GW_LUA_DIR, lua_dir ? lua_dir : "?", LOG_REPEAT_WINDOW);
    free(lua_dir);
}

/* -p PORT as the address -l would take: memcached's -p, on loopback. */
static const char *port_listen_addr(const char *port)
{
    static char addr[32];
    char *end;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (errno || end == port || *end || p < 1 || p > 65535) return NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%ld", p);
    return addr;
}

/* Write the pid to path through a temporary file and a rename, so a reader
 * never sees the file empty or half written. */
static int pidfile_write(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        LOG_ERROR("--pidfile %s: name too long", path);
        return GW_ERROR;
    }
    FILE *f = fopen(tmp, "w");
    if (f) {
        bool ok = fprintf(f, "%ld\n", (long)getpid()) > 0;
        if (fclose(f) == 0 && ok && rename(tmp, path) == 0) return GW_OK;
    }
    LOG_ERROR("--pidfile %s: %s", path, strerror(errno));
    unlink(tmp);
    return GW_ERROR;
}

/* Remove path if it still names this process: a file another gateway has
 * since written is its own. */
static void pidfile_remove(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    long pid = 0;
    bool ours = fscanf(f, "%ld", &pid) == 1 && pid == (long)getpid();
    fclose(f);
    if (ours) unlink(path);
}

/* Seconds past shutdown_timeout a worker has to end before the process
 * leaves without it. */
#define STOP_GRACE 2.0

static struct gw_loop *main_loop;

static void on_stop_signal(void *data, int events)
{
    LOG_INFO("shutting down");
    gw_loop_break(main_loop);
}

/* Counts of repeated errors are logged once their window is over (log.h):
 * look a few times per window, at most a second apart. */
static struct gw_timer *repeats_timer;

static double repeats_period(void)
{
    double p = log_repeat_window() / 4;
    return p < 1 ? p : 1;
}

static void on_repeats_timer(void *data, int events)
{
    log_flush_repeats(false);
    gw_timer_start(repeats_timer, repeats_period());
}

/* GATEWAY_LOG_WINDOW, if set: the window of repeated errors (seconds). */
static int set_log_window(void)
{
    const char *env = getenv("GATEWAY_LOG_WINDOW");
    if (!env || !*env) return GW_OK;
    char *end;
    double w = strtod(env, &end);
    if (*end || !(w > 0) || w > 86400) {
        fprintf(stderr, "gateway: GATEWAY_LOG_WINDOW wants seconds, more than 0 (got '%s')\n", env);
        return GW_ERROR;
    }
    log_set_repeat_window(w);
    return GW_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "check", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "pidfile", required_argument, NULL, 'P' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *check = NULL, *listen_override = NULL, *port_override = NULL, *pidfile = NULL;
    int threads_override = 0, c;
    while ((c = getopt_long(argc, argv, "l:p:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': check = optarg; break;
        case 'l': listen_override = optarg; break;
        case 'p':
            port_override = port_listen_addr(optarg);
            if (!port_override) {
                fprintf(stderr, "gateway: -p/--port wants a port, 1 to 65535\n");
                return 2;
            }
            break;
        case 'P': pidfile = optarg; break;
        case 't':
            threads_override = atoi(optarg);
            if (threads_override < 1 || threads_override > 256) {
                fprintf(stderr, "gateway: --threads wants 1 to 256\n");
                return 2;
            }
            break;
        case 'v': log_level++; break;
        case 'V': printf("gateway %s\n", GW_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    /* Both name the whole listen address: which one was meant is a guess. */
    if (listen_override && port_override) {
        fprintf(stderr, "gateway: -l and -p both set the listen address; give one\n");
        return 2;
    }
    if (port_override) listen_override = port_override;
    if (argc - optind > (check ? 0 : 1)) {
        fprintf(stderr, "gateway: one config file at a time (extra argument '%s')\n",
                argv[check ? optind : optind + 1]);
        return 2;
    }
    if (set_log_window() != GW_OK) return 2;
    const char *config = check ? check : optind < argc ? argv[optind] : "gateway.lua";
    char *lua_dir = find_lua_dir();
    char err[1024];
    gw_settings = settings_defaults; /* the limits the first load runs under */

    struct lhost *validate = lhost_new(NULL, config, lua_dir, NULL, err, sizeof err);
    if (!validate) {
        if (check) fprintf(stderr, "%s\n", err);
        else LOG_ERROR("%s", err);
        free(lua_dir);
        return 1;
    }
    if (check) {
        printf("%s: ok\n", config);
        lhost_free(validate);
        free(lua_dir);
        return 0;
    }
    const struct lhost_config *cfg = lhost_config(validate);

    rt_process_start();
    gw_settings = cfg->settings;
    gw_settings.config_path = config;
    gw_settings.lua_dir = lua_dir;
    if (threads_override) gw_settings.threads = threads_override;

    signal(SIGPIPE, SIG_IGN);
    int nworkers = gw_settings.threads;
    gw_workers = calloc((size_t)nworkers, sizeof *gw_workers);
    if (!gw_workers) return 1;
    gw_nworkers = nworkers;
    for (int i = 0; i < nworkers; i++) {
        if (worker_init(&gw_workers[i], i, cfg, err, sizeof err) != GW_OK) {
            LOG_ERROR("%s", err);
            return 1;
        }
    }
    main_loop = gw_loop_default();
    config_log_start(validate, config);
    if (admin_http_init(main_loop) != GW_OK) return 1;
    if (reload_start(cfg, listen_override) != GW_OK) return 1;
    struct gw_signal *sigint = gw_signal_new(main_loop, SIGINT, on_stop_signal, NULL);
    struct gw_signal *sigterm = gw_signal_new(main_loop, SIGTERM, on_stop_signal, NULL);
    if (reload_watch(main_loop, cfg) != GW_OK) return 1;
    lhost_free(validate);
    for (int i = 0; i < nworkers; i++) {
        if (worker_start(&gw_workers[i]) != GW_OK) {
            LOG_ERROR("cannot start worker thread %d", i);
            return 1;
        }
    }
    rt_config_started();
    if (collect_start(main_loop) != GW_OK) return 1;
    repeats_timer = gw_timer_new(main_loop, on_repeats_timer, NULL);
    if (!repeats_timer) return 1;
    gw_timer_start(repeats_timer, repeats_period());
    /* Written once the listeners are bound and the workers serve, so its
     * appearance means the gateway answers; a pid file that cannot be
     * written stops the start (a service manager relies on it). */
    int status = 0;
    if (pidfile && pidfile_write(pidfile) != GW_OK) {
        status = 1;
        pidfile = NULL;
    } else {
        LOG_INFO("gateway %s serving with %d thread%s", GW_VERSION, nworkers, nworkers == 1 ? "" : "s");
        gw_loop_run(main_loop);
    }
    /* Health says so while the workers finish; nothing may wait on the
     * main loop any more. */
    rt_set_stopping();
    admin_http_quiesce();
    collect_stop();

    for (int i = 0; i < nworkers; i++) worker_stop(&gw_workers[i]);
    /* Workers answer what they have read within shutdown_timeout; one that
     * is still not done a little later is stuck, and waiting on it would
     * make SIGTERM powerless. */
    double grace = gw_settings.shutdown_timeout + STOP_GRACE;
    for (int i = 0; i < nworkers; i++) {
        if (worker_join(&gw_workers[i], grace) != GW_OK) {
            LOG_ERROR("worker %d did not stop within %.1f s; exiting without it", i, grace);
            log_flush_repeats(true);
            if (pidfile) pidfile_remove(pidfile);
            _exit(1);
        }
    }
    log_flush_repeats(true);
    LOG_INFO("stopped");
    gw_timer_free(repeats_timer);
    config_log_free();
    gw_signal_free(sigint);
    gw_signal_free(sigterm);
    admin_http_free();
    reload_stop();
    pool_stores_free();
    buf_cache_drain();
    free(gw_workers);
    free(lua_dir);
    if (pidfile) pidfile_remove(pidfile);
    return status;
}
