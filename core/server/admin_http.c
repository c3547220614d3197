/* admin_http.c -- see admin_http.h. */
#include "admin_http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/loop.h"
#include "codec/proto.h"
#include "collect.h"
#include "reload.h"
#include "rt/metrics.h"
#include "rt/rt.h"
#include "rt/settings.h"

#define ADMIN_THREADS 2
#define ADMIN_TIMEOUT_SECONDS 10
#define ADMIN_HEADER_MEMORY (32 * 1024)
#define ADMIN_DRAIN_SECONDS 2    /* a retired daemon's replies in flight */

static struct MHD_Daemon *daemon_;

/* --- the bridge to the main thread ------------------------------------------- */

static struct gw_async *wake;
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;   /* one call at a time */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cond = PTHREAD_COND_INITIALIZER;
static void (*slot_fn)(void *);
static void *slot_arg;
static bool slot_done, quiesced;
static int retiring;             /* daemons being stopped off the main thread */
static int inflight;             /* requests begun and not ended (__atomic) */

static void on_wake(void *data, int events)
{
    pthread_mutex_lock(&slot_lock);
    void (*fn)(void *) = slot_done ? NULL : slot_fn;
    void *arg = slot_arg;
    pthread_mutex_unlock(&slot_lock);
    if (!fn) return;
    fn(arg);
    pthread_mutex_lock(&slot_lock);
    slot_done = true;
    pthread_cond_broadcast(&slot_cond);
    pthread_mutex_unlock(&slot_lock);
}

/* Run fn(arg) on the main thread and wait; false if shutting down. */
static bool main_call(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&call_lock);
    pthread_mutex_lock(&slot_lock);
    bool ok = !quiesced;
    if (ok) {
        slot_fn = fn;
        slot_arg = arg;
        slot_done = false;
        gw_async_send(wake);
        while (!slot_done && !quiesced) pthread_cond_wait(&slot_cond, &slot_lock);
        ok = slot_done;
        slot_fn = NULL;
    }
    pthread_mutex_unlock(&slot_lock);
    pthread_mutex_unlock(&call_lock);
    return ok;
}

int admin_http_init(struct gw_loop *main_loop)
{
    wake = gw_async_new(main_loop, on_wake, NULL);
    return wake ? GW_OK : GW_ERROR;
}

void admin_http_quiesce(void)
{
    pthread_mutex_lock(&slot_lock);
    quiesced = true;
    pthread_cond_broadcast(&slot_cond);
    pthread_mutex_unlock(&slot_lock);
}

/* --- replies ------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (owned) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return reply(c, status, "text/plain; charset=utf-8", (char *)text, strlen(text), false);
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, char *json,
                                  size_t len)
{
    if (!json) return reply_text(c, 503, "unavailable (shutting down or out of memory)\n");
    return reply(c, status, "application/json", json, len, true);
}

static enum MHD_Result reply_not_allowed(struct MHD_Connection *c, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        19, (void *)"method not allowed\n", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Allow", allow);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return ret;
}

/* --- endpoints ------------------------------------------------------------------- */

static enum MHD_Result get_metrics(struct MHD_Connection *c)
{
    struct mset *s = metrics_latest();
    if (!s) return reply_text(c, 503, "no metrics collected yet\n");
    size_t len = 0;
    char *text = mset_render(s, &len);
    metrics_release(s);
    if (!text) return reply_text(c, 500, "out of memory\n");
    return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, true);
}

static enum MHD_Result get_healthz(struct MHD_Connection *c)
{
    char why[600];
    if (collect_health(why, sizeof why - 1)) return reply_text(c, 200, "ok\n");
    strcat(why, "\n");
    return reply_text(c, 503, why);
}

struct text_call {
    char *text;
    size_t len;
    const char *key, *command, *server;
    bool down, found;
};

static void config_call(void *arg)
{
    struct text_call *t = arg;
    t->text = collect_config_json(&t->len);
}

static void route_call(void *arg)
{
    struct text_call *t = arg;
    t->text = collect_route_json(t->key, strlen(t->key), t->command, &t->len);
}

static void reload_call(void *arg)
{
    struct text_call *t = arg;
    reload_now();
    struct rt_config_status cs;
    rt_config_status(&cs);
    struct json j;
    json_init(&j);
    json_open(&j, '{');
    bool ok = strcmp(cs.last_result, "ok") == 0;
    json_kstr(&j, "result", ok ? "ok" : "failed");
    json_knum(&j, "generation", (double)cs.generation);
    if (!ok) json_kstr(&j, "error", cs.last_error);
    json_close(&j, '}');
    t->found = ok;
    t->text = json_take(&j, &t->len);
}

static void down_call(void *arg)
{
    struct text_call *t = arg;
    t->found = collect_set_server_down(t->server, t->down);
    struct json j;
    json_init(&j);
    json_open(&j, '{');
    json_kstr(&j, "server", t->server);
    json_kstr(&j, "state", !t->found ? "unknown" : t->down ? "taken out" : "put back");
    json_close(&j, '}');
    t->text = json_take(&j, &t->len);
}

static enum MHD_Result on_main(struct MHD_Connection *c, void (*fn)(void *), struct text_call *t,
                               unsigned status)
{
    if (!main_call(fn, t)) return reply_text(c, 503, "shutting down\n");
    return reply_json(c, status, t->text, t->len);
}

/* Commands a client sends with a key, text or meta: the ones a route sees. */
static bool command_has_key(const char *name)
{
    switch (mc_cmd_named(name)) {
    case MC_NONE: case MC_FLUSH_ALL: case MC_VERSION: case MC_VERBOSITY: case MC_STATS: case MC_QUIT:
    case MC_META_NOOP:
        return false;
    default:
        return true;
    }
}

static enum MHD_Result get_route(struct MHD_Connection *c)
{
    const char *key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
    const char *cmd = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "command");
    if (!key || !mc_key_allowed(key, strlen(key), gw_settings.binary_keys))
        return reply_text(c, 400, "want /route?key=K, a memcached key (1 to 250 bytes, "
                                  "no space or control character)[&command=get]\n");
    if (!cmd) cmd = "get";
    if (!command_has_key(cmd))
        return reply_text(c, 400, "command: want one that takes a key, as get, set or delete\n");
    struct text_call t = { .key = key, .command = cmd };
    return on_main(c, route_call, &t, 200);
}

/* POST /servers/HOST:PORT/down or /up */
static enum MHD_Result post_server(struct MHD_Connection *c, const char *url)
{
    const char *rest = url + strlen("/servers/");
    const char *slash = strrchr(rest, '/');
    char server[300];
    if (!slash || slash == rest || (size_t)(slash - rest) >= sizeof server ||
        (strcmp(slash, "/down") != 0 && strcmp(slash, "/up") != 0))
        return reply_text(c, 404, "want POST /servers/HOST:PORT/down or /up\n");
    memcpy(server, rest, (size_t)(slash - rest));
    server[slash - rest] = 0;
    struct text_call t = { .server = server, .down = strcmp(slash, "/down") == 0 };
    if (!main_call(down_call, &t)) return reply_text(c, 503, "shutting down\n");
    return reply_json(c, t.found ? 200 : 404, t.text, t.len);
}

static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url, bool get, bool post)
{
    if (!strcmp(url, "/metrics") || !strcmp(url, "/healthz") || !strcmp(url, "/config") ||
        !strcmp(url, "/route")) {
        if (!get) return reply_not_allowed(c, "GET, HEAD");
        if (!strcmp(url, "/metrics")) return get_metrics(c);
        if (!strcmp(url, "/healthz")) return get_healthz(c);
        if (!strcmp(url, "/route")) return get_route(c);
        struct text_call t = { 0 };
        return on_main(c, config_call, &t, 200);
    }
    if (!strcmp(url, "/reload")) {
        if (!post) return reply_not_allowed(c, "POST");
        struct text_call t = { 0 };
        if (!main_call(reload_call, &t)) return reply_text(c, 503, "shutting down\n");
        return reply_json(c, t.found ? 200 : 422, t.text, t.len);
    }
    if (!strncmp(url, "/servers/", 9)) {
        if (!post) return reply_not_allowed(c, "POST");
        return post_server(c, url);
    }
    return reply_text(c, 404, "not found: try /metrics /healthz /config /route /reload /servers\n");
}

/* libmicrohttpd calls this several times per request: first with the
 * headers, then with each piece of the body, then with none.  Bodies are
 * not used: they are read and dropped, and the answer goes on the last. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    static int started;
    if (*state == NULL) {
        *state = &started;
        __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);   /* on_completed ends it */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    bool post = !strcmp(method, MHD_HTTP_METHOD_POST);
    return dispatch(c, url, get, post);
}

/* A request's end (its reply sent, or its connection gone): called for
 * every request on_request saw. */
static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    if (*state) __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    LOG_VERBOSE("admin: %s", msg);
}

int admin_http_start(int fd, char *err, size_t errlen)
{
    admin_http_stop();
    /* MHD_USE_ITC: MHD_quiesce_daemon needs it with a thread pool (retire). */
    daemon_ = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
        NULL, NULL,
        on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)ADMIN_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_TIMEOUT_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_HEADER_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!daemon_) {
        snprintf(err, errlen, "the admin listener could not start (libmicrohttpd)");
        close(fd);
        return GW_ERROR;
    }
    return GW_OK;
}

/* A daemon a reload moved or dropped is stopped on a thread of its own, not
 * on the main thread: MHD_stop_daemon waits for the daemon's requests, and
 * one of them may be waiting on the main thread (main_call) -- the very
 * POST /reload that is running the reload.  Stopping it there waited for
 * itself for ever.  This thread stops accepting at once, lets the requests
 * in flight end (their replies sent; up to ADMIN_DRAIN_SECONDS, and not at
 * all when shutting down, when main_call refuses anyway), then stops it.
 * Until then the old port stays bound: a reload that binds it again in
 * the meantime fails ("address in use") and changes nothing. */
static void *retire_main(void *arg)
{
    struct MHD_Daemon *d = arg;
    MHD_socket fd = MHD_quiesce_daemon(d);
    for (int i = 0; i < ADMIN_DRAIN_SECONDS * 100; i++) {
        pthread_mutex_lock(&slot_lock);
        bool stop = quiesced;
        pthread_mutex_unlock(&slot_lock);
        if (stop || __atomic_load_n(&inflight, __ATOMIC_SEQ_CST) == 0) break;
        usleep(10 * 1000);
    }
    MHD_stop_daemon(d);
    if (fd != MHD_INVALID_SOCKET) close(fd);   /* quiesced: the socket is ours */
    pthread_mutex_lock(&slot_lock);
    retiring--;
    pthread_cond_broadcast(&slot_cond);
    pthread_mutex_unlock(&slot_lock);
    return NULL;
}

void admin_http_stop(void)
{
    if (!daemon_) return;
    struct MHD_Daemon *d = daemon_;
    daemon_ = NULL;
    pthread_mutex_lock(&slot_lock);
    retiring++;
    pthread_mutex_unlock(&slot_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, retire_main, d);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* No thread: leave it running, but accepting nothing (its socket
         * stays open until exit).  Never stop it here (see retire_main). */
        LOG_ERROR("admin: no thread to stop the old listener; it stops accepting");
        MHD_quiesce_daemon(d);
        pthread_mutex_lock(&slot_lock);
        retiring--;
        pthread_mutex_unlock(&slot_lock);
    }
}

void admin_http_free(void)
{
    admin_http_quiesce();
    /* Quiesced, nothing waits on the main thread: stop the current daemon
     * here, and wait for the ones being retired. */
    if (daemon_) MHD_stop_daemon(daemon_);   /* closes the listening socket */
    daemon_ = NULL;
    pthread_mutex_lock(&slot_lock);
    while (retiring > 0) pthread_cond_wait(&slot_cond, &slot_lock);
    pthread_mutex_unlock(&slot_lock);
    gw_async_free(wake);
    wake = NULL;
}
