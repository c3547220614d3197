/* main.c -- command line, config validation, worker threads.
 *
 * The config is first run in a validation state on the main thread: that
 * is what --check does, and what catches config errors before anything
 * listens.  It reads the config's files once; each worker then runs the
 * same texts in its own state, and the main thread only waits for signals
 * and reloads (reload.h).
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/version.h"
#include "proxy/pool.h"
#include "reload.h"
#include "rt/rt.h"
#include "rt/settings.h"
#include "script/lhost.h"
#include "worker.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gateway [options] [CONFIG]\n"
            "  A Lua-scriptable memcached gateway.  CONFIG defaults to gateway.lua.\n"
            "\n"
            "  --check CONFIG        load and validate CONFIG, print file:line: message, exit 0/1\n"
            "  -l, --listen HOST:PORT listen here (overrides the config's gateway.listen)\n"
            "  -t, --threads N       worker threads (overrides gateway.settings)\n"
            "  -v                    more logging (repeat for more)\n"
            "      --version         print the version\n"
            "  -h, --help            this text\n");
}

/* lua/ next to the binary, unless GATEWAY_LUA_DIR says otherwise. */
static char *find_lua_dir(void)
{
    const char *env = getenv("GATEWAY_LUA_DIR");
    if (env && *env) return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            char path[PATH_MAX + 8];
            snprintf(path, sizeof path, "%s/lua", exe);
            if (access(path, R_OK) == 0) return strdup(path);
        }
    }
    return strdup("lua");
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "check", required_argument, NULL, 'c' },
        { "listen", required_argument, NULL, 'l' },
        { "threads", required_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *check = NULL, *listen_override = NULL;
    int threads_override = 0, c;
    while ((c = getopt_long(argc, argv, "l:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': check = optarg; break;
        case 'l': listen_override = optarg; break;
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
    if (argc - optind > (check ? 0 : 1)) {
        fprintf(stderr, "gateway: one config file at a time (extra argument '%s')\n",
                argv[check ? optind : optind + 1]);
        return 2;
    }
    const char *config = check ? check : optind < argc ? argv[optind] : "gateway.lua";
    char *lua_dir = find_lua_dir();
    char err[1024];
    gw_settings = settings_defaults; /* the limits the first load runs under */

    struct lhost *validate = lhost_new(NULL, config, lua_dir, NULL, err, sizeof err);
    if (!validate) {
        fprintf(stderr, "%s\n", err);
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
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    if (reload_start(cfg, listen_override) != GW_OK) return 1;
    main_loop = gw_loop_default();
    struct gw_signal *sigint = gw_signal_new(main_loop, SIGINT, on_stop_signal, NULL);
    struct gw_signal *sigterm = gw_signal_new(main_loop, SIGTERM, on_stop_signal, NULL);
    if (reload_watch(main_loop, cfg) != GW_OK) return 1;
    lhost_free(validate);
    for (int i = 0; i < nworkers; i++) {
        if (worker_start(&gw_workers[i]) != GW_OK) {
            fprintf(stderr, "gateway: cannot start worker thread\n");
            return 1;
        }
    }
    LOG_INFO("gateway %s serving with %d thread%s", GW_VERSION, nworkers, nworkers == 1 ? "" : "s");
    gw_loop_run(main_loop);

    for (int i = 0; i < nworkers; i++) worker_stop(&gw_workers[i]);
    /* Workers answer what they have read within shutdown_timeout; one that
     * is still not done a little later is stuck, and waiting on it would
     * make SIGTERM powerless. */
    double grace = gw_settings.shutdown_timeout + STOP_GRACE;
    for (int i = 0; i < nworkers; i++) {
        if (worker_join(&gw_workers[i], grace) != GW_OK) {
            LOG_ERROR("worker %d did not stop within %.1f s; exiting without it", i, grace);
            _exit(1);
        }
    }
    LOG_INFO("stopped");
    gw_signal_free(sigint);
    gw_signal_free(sigterm);
    reload_stop();
    pool_stores_free();
    buf_cache_drain();
    free(gw_workers);
    free(lua_dir);
    return 0;
}
