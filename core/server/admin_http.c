/* admin_http.c -- see admin_http.h. */
#include "admin_http.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/conn.h"
#include "base/json.h"
#include "base/log.h"
#include "base/loop.h"
#include "codec/proto.h"
#include "collect.h"
#include "reload.h"
#include "rt/metrics.h"
#include "rt/rt.h"
#include "rt/settings.h"
#include "script/lhost.h"

#define ADMIN_THREADS 2
#define ADMIN_TIMEOUT_SECONDS 10
#define ADMIN_HEADER_MEMORY (32 * 1024)
#define ADMIN_DRAIN_SECONDS 2    /* a retired daemon's replies in flight */

/* A daemon and what it was started with: its own copies, immutable while
 * it serves (its threads read them with no lock), freed once it stopped.
 * A change of tls or token is a new daemon, as a change of address is. */
struct admin_daemon {
    struct MHD_Daemon *mhd;
    bool tls;
    int verify;                /* enum tls_verify */
    int min_version;
    char *cert, *key, *ca;     /* PEM texts: libmicrohttpd reads them at start */
    char *token;               /* NULL: none asked */
    size_t token_len;
    char start_err[256];       /* libmicrohttpd's first complaint while starting */
};

static struct admin_daemon *daemon_;

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

/* --- who may ask -------------------------------------------------------------- */

/* Equal, in a time that depends on what was sent (its length) and never on
 * the secret: every byte sent is compared, whatever differs first. */
static bool same_secret(const char *got, size_t glen, const char *want, size_t wlen)
{
    if (wlen == 0) return false;   /* the config refuses an empty token */
    size_t diff = glen ^ wlen;
    for (size_t i = 0; i < glen; i++)
        diff |= (size_t)((unsigned char)got[i] ^ (unsigned char)want[i % wlen]);
    return diff == 0;
}

/* Why the request's Authorization is not the token (NULL: it is). */
static const char *token_refusal(const struct admin_daemon *d, struct MHD_Connection *c)
{
    const char *h =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) return "no Authorization header";
    if (strncasecmp(h, "Bearer ", 7) != 0) return "Authorization is not Bearer";
    h += 7;
    while (*h == ' ') h++;
    return same_secret(h, strlen(h), d->token, d->token_len) ? NULL : "wrong token";
}

/* Why the client's certificate does not do (NULL: it does, or none is
 * asked).  The handshake asked for one (on_connection); this is the check
 * that counts: the chain against the ca, and "required" wants one. */
static const char *cert_refusal(const struct admin_daemon *d, struct MHD_Connection *c,
                                char *why, size_t len)
{
    if (!d->tls || d->verify == TLS_VERIFY_NONE) return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return "no TLS session";
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status);
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND)
        return d->verify == TLS_VERIFY_REQUIRED ? "no client certificate" : NULL;
    if (rc < 0) {
        snprintf(why, len, "client certificate: %s", gnutls_strerror(rc));
        return why;
    }
    if (status == 0) return NULL;
    gnutls_datum_t out = { 0 };
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
        snprintf(why, len, "client certificate: %s", (const char *)out.data);
        gnutls_free(out.data);
        for (size_t n = strlen(why); n > 0 && why[n - 1] == ' '; n--) why[n - 1] = 0;
    } else {
        snprintf(why, len, "client certificate does not verify");
    }
    return why;
}

static void client_addr(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[64] = "-", port[8] = "";
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
        getnameinfo(sa, sl, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    }
    snprintf(out, len, "%s:%s", host, port);
}

static enum MHD_Result reply_refused(struct MHD_Connection *c, unsigned status,
                                     const char *challenge, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    if (challenge) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Refuse the request now (with its headers, before any body) if the
 * listener asks for a client certificate or a token it lacks: 403 or 401,
 * counted, and logged without the token (rate limited: a scanner does not
 * flood the log).  /healthz needs no token: load balancers and
 * orchestrators probe it, and it tells only ok or why not. */
static bool refuse(const struct admin_daemon *d, struct MHD_Connection *c, const char *url,
                   const char *method, enum MHD_Result *ret)
{
    char why[300], peer[80];
    const char *no = cert_refusal(d, c, why, sizeof why);
    if (no) {
        rt_admin_refused(RT_REFUSED_CERTIFICATE);
        client_addr(c, peer, sizeof peer);
        LOG_WARN_LIMIT("admin: certificate", "admin: %s %s from %s refused (403): %s", method,
                       url, peer, no);
        *ret = reply_refused(c, MHD_HTTP_FORBIDDEN, NULL, "a valid client certificate is required\n");
        return true;
    }
    if (!d->token || !strcmp(url, "/healthz")) return false;
    if (!(no = token_refusal(d, c))) return false;
    rt_admin_refused(RT_REFUSED_TOKEN);
    client_addr(c, peer, sizeof peer);
    LOG_WARN_LIMIT("admin: token", "admin: %s %s from %s refused (401): %s", method, url, peer, no);
    bool sent = strcmp(no, "no Authorization header") != 0;
    *ret = reply_refused(c, MHD_HTTP_UNAUTHORIZED,
                         sent ? "Bearer realm=\"gateway\", error=\"invalid_token\""
                              : "Bearer realm=\"gateway\"",
                         "unauthorized: send Authorization: Bearer <token>\n");
    return true;
}

/* libmicrohttpd calls this several times per request: first with the
 * headers, then with each piece of the body, then with none.  Bodies are
 * not used: they are read and dropped, and the answer goes on the last
 * (a refusal goes on the first). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    static int started;
    if (*state == NULL) {
        *state = &started;
        __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);   /* on_completed ends it */
        enum MHD_Result ret;
        if (refuse(cls, c, url, method, &ret)) return ret;
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

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct admin_daemon *d = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    LOG_VERBOSE("admin: %s", msg);
    pthread_mutex_lock(&log_lock);
    if (!d->mhd && !d->start_err[0]) snprintf(d->start_err, sizeof d->start_err, "%.200s", msg);
    pthread_mutex_unlock(&log_lock);
}

/* A TLS connection begins: ask for the client's certificate as verify
 * says ("required": the handshake fails without one; the chain itself is
 * checked per request, cert_refusal). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    const struct admin_daemon *d = cls;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED || d->verify == TLS_VERIFY_NONE) return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci && ci->tls_session)
        gnutls_certificate_server_set_request(
            (gnutls_session_t)ci->tls_session,
            d->verify == TLS_VERIFY_REQUIRED ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
}

static void daemon_free(struct admin_daemon *d)
{
    if (!d) return;
    free(d->cert);
    free(d->key);
    free(d->ca);
    free(d->token);
    free(d);
}

static char *dup_opt(const char *s, bool *nomem)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *nomem = true;
    return d;
}

static struct admin_daemon *daemon_new(const struct lhost_admin *o)
{
    struct admin_daemon *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->verify = TLS_VERIFY_NONE;
    if (!o) return d;
    bool nomem = false;
    d->tls = o->tls;
    if (o->tls) {
        d->verify = o->verify;
        d->min_version = o->min_version;
        d->cert = dup_opt(o->cert, &nomem);
        d->key = dup_opt(o->key, &nomem);
        d->ca = dup_opt(o->ca, &nomem);
    }
    d->token = dup_opt(o->token, &nomem);
    d->token_len = o->token ? strlen(o->token) : 0;
    if (nomem) {
        daemon_free(d);
        return NULL;
    }
    return d;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

bool admin_http_serves(const struct lhost_admin *o)
{
    const struct admin_daemon *d = daemon_;
    if (!d) return false;
    bool tls = o && o->tls;
    if (tls != d->tls || !same_text(o ? o->token : NULL, d->token)) return false;
    return !tls || (o->verify == d->verify && o->min_version == d->min_version &&
                    same_text(o->cert, d->cert) && same_text(o->key, d->key) &&
                    same_text(o->ca, d->ca));
}

int admin_http_fd(void)
{
    if (!daemon_) return -1;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(daemon_->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    return i ? (int)i->listen_fd : -1;
}

/* GnuTLS's priorities for the lowest version (the defaults otherwise). */
static const char *tls_priorities(int min_version)
{
    return min_version >= 13 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                             : "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1";
}

int admin_http_start(int fd, const struct lhost_admin *o, char *err, size_t errlen)
{
    struct admin_daemon *d = daemon_new(o);
    if (!d) {
        snprintf(err, errlen, "the admin listener could not start: out of memory");
        close(fd);
        return GW_ERROR;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls[6];
    int n = 0;
    if (d->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "the admin listener's tls: this libmicrohttpd has no TLS");
            daemon_free(d);
            close(fd);
            return GW_ERROR;
        }
        flags |= MHD_USE_TLS;
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, d->key };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, d->cert };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)tls_priorities(d->min_version) };
        if (d->ca && d->verify != TLS_VERIFY_NONE)
            tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, d->ca };
        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
                                            (intptr_t)on_connection, d };
    }
    tls[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    /* MHD_USE_ITC: MHD_quiesce_daemon needs it with a thread pool (retire). */
    struct MHD_Daemon *mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, d,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, d,   /* first: it then hears everything */
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)ADMIN_THREADS, MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_TIMEOUT_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_HEADER_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!mhd) {
        pthread_mutex_lock(&log_lock);
        snprintf(err, errlen, "the admin listener could not start (libmicrohttpd%s%s)",
                 d->start_err[0] ? ": " : "", d->start_err);
        pthread_mutex_unlock(&log_lock);
        daemon_free(d);
        close(fd);
        return GW_ERROR;
    }
    pthread_mutex_lock(&log_lock);
    d->mhd = mhd;
    pthread_mutex_unlock(&log_lock);
    /* Serving: the one it replaces stops accepting now. */
    admin_http_stop();
    daemon_ = d;
    return GW_OK;
}

/* A daemon a reload moved or dropped is stopped on a thread of its own, not
 * on the main thread: MHD_stop_daemon waits for the daemon's requests, and
 * one of them may be waiting on the main thread (main_call) -- the very
 * POST /reload that is running the reload.  Stopping it there waited for
 * itself for ever.  admin_http_stop has it stop accepting at once; this
 * thread lets the requests in flight end (their replies sent; up to
 * ADMIN_DRAIN_SECONDS, and not at all when shutting down, when main_call
 * refuses anyway), then stops it.  Until then the old port stays bound: a
 * reload that binds it again in the meantime fails ("address in use") and
 * changes nothing.  (A daemon that replaces it on the same address, for a
 * new tls or token, serves a dup of its socket: nothing is bound again.) */
struct retiring {
    struct admin_daemon *d;
    MHD_socket fd;             /* its listening socket, now ours */
};

static void *retire_main(void *arg)
{
    struct retiring *r = arg;
    for (int i = 0; i < ADMIN_DRAIN_SECONDS * 100; i++) {
        pthread_mutex_lock(&slot_lock);
        bool stop = quiesced;
        pthread_mutex_unlock(&slot_lock);
        if (stop || __atomic_load_n(&inflight, __ATOMIC_SEQ_CST) == 0) break;
        usleep(10 * 1000);
    }
    MHD_stop_daemon(r->d->mhd);
    if (r->fd != MHD_INVALID_SOCKET) close(r->fd);   /* quiesced: the socket is ours */
    daemon_free(r->d);
    free(r);
    pthread_mutex_lock(&slot_lock);
    retiring--;
    pthread_cond_broadcast(&slot_cond);
    pthread_mutex_unlock(&slot_lock);
    return NULL;
}

void admin_http_stop(void)
{
    if (!daemon_) return;
    struct admin_daemon *d = daemon_;
    daemon_ = NULL;
    /* It stops accepting now (no wait: its threads are told), so a daemon
     * that replaces it on the same socket (a new token or certificate) is
     * the only one that accepts from here on. */
    MHD_socket fd = MHD_quiesce_daemon(d->mhd);
    struct retiring *r = malloc(sizeof *r);
    pthread_mutex_lock(&slot_lock);
    retiring++;
    pthread_mutex_unlock(&slot_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = -1;
    if (r) {
        *r = (struct retiring){ d, fd };
        rc = pthread_create(&t, &attr, retire_main, r);
    }
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* No thread: leave it running, accepting nothing (its socket stays
         * open until exit).  Never stop it here (see retire_main). */
        LOG_ERROR("admin: no thread to stop the old listener; it stops accepting");
        free(r);
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
    if (daemon_) {
        MHD_stop_daemon(daemon_->mhd);   /* closes the listening socket */
        daemon_free(daemon_);
    }
    daemon_ = NULL;
    pthread_mutex_lock(&slot_lock);
    while (retiring > 0) pthread_cond_wait(&slot_cond, &slot_lock);
    pthread_mutex_unlock(&slot_lock);
    gw_async_free(wake);
    wake = NULL;
}
