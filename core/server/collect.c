/* collect.c -- see collect.h. */
#include "collect.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/version.h"
#include "front/listener.h"
#include "proxy/backend.h"
#include "proxy/pool.h"
#include "proxy/resolver.h"
#include "rt/metrics.h"
#include "rt/rt.h"
#include "rt/settings.h"
#include "script/lhost.h"
#include "worker.h"

#define COLLECT_SECONDS 1.0
#define LABELS_MAX 1024

static struct gw_timer *timer;

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;
static char health_why[512];     /* "" when healthy */

/* `k1="v1",k2="v2",...` (values escaped); pairs end at a NULL key. */
static void labels(char *out, size_t outlen, const char *k1, const char *v1, const char *k2,
                   const char *v2, const char *k3, const char *v3)
{
    const char *keys[3] = { k1, k2, k3 }, *vals[3] = { v1, v2, v3 };
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < 3 && keys[i] && n < outlen; i++) {
        char esc[LABELS_MAX / 2];
        mset_escape(esc, sizeof esc, vals[i]);
        n += (size_t)snprintf(out + n, outlen - n, "%s%s=\"%s\"", n ? "," : "", keys[i], esc);
    }
}

/* --- per worker (on its thread) ------------------------------------------- */

struct gather {
    struct mset *set;
    char down[512];              /* pools without failover whose servers are all down */
};

static void add_counter(struct mset *s, const char *name, const char *help, const char *lbl,
                        double v)
{
    mset_add(s, name, METRIC_COUNTER, MERGE_SUM, help, lbl, v);
}

static void gather_process_counters(struct mset *s, const struct gw_stats *st)
{
    add_counter(s, "gateway_client_connections_total", "Client connections accepted.", "",
                (double)st->total_connections);
    add_counter(s, "gateway_client_connections_rejected_total",
                "Client connections refused at max_connections.", "",
                (double)st->rejected_connections);
    mset_add(s, "gateway_client_connections", METRIC_GAUGE, MERGE_SUM,
             "Client connections open now.", "", (double)st->curr_connections);
    add_counter(s, "gateway_client_read_bytes_total", "Bytes read from clients.", "",
                (double)st->bytes_read);
    add_counter(s, "gateway_client_written_bytes_total", "Bytes written to clients.", "",
                (double)st->bytes_written);
    mset_add(s, "gateway_lua_memory_bytes", METRIC_GAUGE, MERGE_SUM,
             "Bytes held by the workers' Lua states.", "", (double)st->gw_lua_memory);
    mset_add(s, "gateway_lua_tasks", METRIC_GAUGE, MERGE_SUM, "Lua tasks running or waiting.",
             "", (double)st->gw_lua_tasks);
    add_counter(s, "gateway_lua_errors_total", "Lua errors in routes and tasks.", "",
                (double)st->gw_lua_errors);
    add_counter(s, "gateway_lua_calls_total", "Backend calls made from Lua.", "",
                (double)st->gw_lua_calls);
}

static void gather_requests(struct mset *s, const struct rt *rt)
{
    char lbl[LABELS_MAX];
    for (int c = 1; c < MC_CMD_COUNT; c++) {
        labels(lbl, sizeof lbl, "command", mc_cmd_name((enum mc_cmd)c), NULL, NULL, NULL, NULL);
        add_counter(s, "gateway_requests_total", "Client requests by command.", lbl,
                    (double)rt->metrics.commands[c]);
    }
    for (int k = 0; k < CERR_KINDS; k++) {
        double v = (double)rt->metrics.errors[k];
        if (k == CERR_PROTOCOL) v = (double)rt->stats.gw_protocol_errors;
        if (k == CERR_LUA) v = (double)rt->stats.gw_lua_errors;
        labels(lbl, sizeof lbl, "kind", client_error_names[k], NULL, NULL, NULL, NULL);
        add_counter(s, "gateway_errors_total", "Errors clients were answered, by kind.", lbl, v);
    }
}

static void gather_routes(struct mset *s, const struct rt *rt)
{
    char lbl[LABELS_MAX];
    for (const struct route_stats *r = rt->metrics.routes; r; r = r->next) {
        labels(lbl, sizeof lbl, "route", r->label, NULL, NULL, NULL, NULL);
        add_counter(s, "gateway_route_requests_total", "Keys routed, by route.", lbl,
                    (double)r->requests);
        add_counter(s, "gateway_route_hits_total", "Retrieval keys found, by route.", lbl,
                    (double)r->hits);
        add_counter(s, "gateway_route_misses_total", "Retrieval keys not found, by route.", lbl,
                    (double)r->misses);
        mset_add_histo(s, "gateway_route_request_duration_seconds",
                       "Time from reading a request to queuing its reply, by the route of its "
                       "first key.", lbl, &r->duration);
    }
}

static void gather_pools(struct mset *s, const struct rt *rt)
{
    char lbl[LABELS_MAX];
    for (const struct pool_stats *p = rt->metrics.pools; p; p = p->next) {
        labels(lbl, sizeof lbl, "pool", p->name, NULL, NULL, NULL, NULL);
        add_counter(s, "gateway_pool_requests_total", "Backend requests sent, by pool.", lbl,
                    (double)p->requests);
        for (int k = 0; k < BE_ERR_KINDS; k++) {
            labels(lbl, sizeof lbl, "pool", p->name, "kind", be_error_names[k], NULL, NULL);
            add_counter(s, "gateway_pool_errors_total", "Backend requests failed, by pool and kind.",
                        lbl, (double)p->errors[k]);
        }
    }
    for (const struct server_stats *v = rt->metrics.servers; v; v = v->next) {
        labels(lbl, sizeof lbl, "pool", v->pool, "server", v->server, NULL, NULL);
        add_counter(s, "gateway_server_requests_total", "Backend requests sent, by server.", lbl,
                    (double)v->requests);
        mset_add_histo(s, "gateway_server_rtt_seconds", "Backend round trips, by server.", lbl,
                       &v->rtt);
        for (int k = 0; k < BE_ERR_KINDS; k++) {
            labels(lbl, sizeof lbl, "pool", v->pool, "server", v->server, "kind", be_error_names[k]);
            add_counter(s, "gateway_server_errors_total",
                        "Backend requests failed, by server and kind.", lbl, (double)v->errors[k]);
        }
    }
}

/* Is entry one of the "; "-separated entries of list? */
static bool has_entry(const char *list, const char *entry)
{
    size_t n = strlen(entry);
    for (const char *p = list; (p = strstr(p, entry)) != NULL; p += n)
        if ((p == list || (p >= list + 2 && p[-2] == ';' && p[-1] == ' ')) &&
            (p[n] == 0 || p[n] == ';'))
            return true;
    return false;
}

/* What the config's servers are doing now: state, queue, connects. */
static void gather_servers(struct gather *g, struct rt *rt)
{
    struct mset *s = g->set;
    struct pool **pools;
    int n = rt->resolver ? resolver_pools(rt->resolver, &pools) : 0;
    char lbl[LABELS_MAX];
    for (int i = 0; i < n; i++) {
        struct pool *p = pools[i];
        if (p->kind != POOL_SERVERS) continue;
        int up = 0;
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct backend *b = p->servers[j].be;
            if (!b) continue;
            labels(lbl, sizeof lbl, "pool", p->name, "server", p->servers[j].name, NULL, NULL);
            mset_add(s, "gateway_server_up", METRIC_GAUGE, MERGE_MIN,
                     "1 if the server is in service on every worker, 0 if any marked it down.",
                     lbl, backend_is_up(b));
            mset_add(s, "gateway_server_admin_down", METRIC_GAUGE, MERGE_MAX,
                     "1 if the operator took the server out.", lbl, b->admin_down);
            mset_add(s, "gateway_server_queue_depth", METRIC_GAUGE, MERGE_SUM,
                     "Requests queued or waiting on the server.", lbl, b->nqueued);
            add_counter(s, "gateway_server_connects_total", "Connections opened to the server.",
                        lbl, (double)b->connects);
            add_counter(s, "gateway_server_probes_total", "Probes of the server while down.", lbl,
                        (double)b->probes);
            up += backend_is_up(b);
        }
        /* Once per pool, though every worker finds it: matched as "pool
         * NAME:", since a bare strstr of the name skipped pool "a" after
         * "pool main: ..." (and any name inside the words). */
        char entry[300];
        snprintf(entry, sizeof entry, "pool %s: every server is down", p->name);
        if (up == 0 && p->failover == FAILOVER_NONE && !has_entry(g->down, entry)) {
            size_t len = strlen(g->down);
            snprintf(g->down + len, sizeof g->down - len, "%s%s", len ? "; " : "", entry);
        }
    }
}

/* FNV-1a over a file's text: which bytes are live. */
static void text_hash(const char *text, size_t len, char hex[20])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; k < len; k++) h = (h ^ (unsigned char)text[k]) * 0x100000001b3ull;
    snprintf(hex, 20, "%016llx", (unsigned long long)h);
}

/* Facts every worker shares, taken from worker 0: the listeners and the
 * config's files (names without directories). */
static void gather_info(struct mset *s, struct worker *w)
{
    char lbl[LABELS_MAX];
    for (const struct listener *l = w->listeners; l; l = l->next) {
        labels(lbl, sizeof lbl, "addr", l->addr, "name", l->name ? l->name : "", NULL, NULL);
        mset_add(s, "gateway_listener_info", METRIC_GAUGE, MERGE_MAX, "A client listener.", lbl, 1);
    }
    const struct lhost_config *cfg = lhost_config(w->lua);
    for (int i = 0; i < cfg->nfiles; i++) {
        char hex[20];
        text_hash(cfg->texts[i], cfg->lens[i], hex);
        const char *slash = strrchr(cfg->files[i], '/');
        labels(lbl, sizeof lbl, "file", slash ? slash + 1 : cfg->files[i], "fnv1a64", hex, NULL,
               NULL);
        mset_add(s, "gateway_config_file_info", METRIC_GAUGE, MERGE_MAX,
                 "A file of the serving config, with a hash of its text.", lbl, 1);
    }
}

static void gather_worker(struct worker *w, void *arg)
{
    struct gather *g = arg;
    if (w->id == 0) gather_info(g->set, w);
    gather_requests(g->set, &w->rt);
    gather_process_counters(g->set, &w->rt.stats);
    gather_routes(g->set, &w->rt);
    gather_pools(g->set, &w->rt);
    gather_servers(g, &w->rt);
}

/* --- the main thread -------------------------------------------------------- */

static void gather_process(struct mset *s)
{
    char lbl[LABELS_MAX];
    labels(lbl, sizeof lbl, "version", GW_VERSION, NULL, NULL, NULL, NULL);
    mset_add(s, "gateway_build_info", METRIC_GAUGE, MERGE_MAX, "The gateway's version.", lbl, 1);
    mset_add(s, "gateway_start_time_seconds", METRIC_GAUGE, MERGE_MAX,
             "Unix time the process started.", "", rt_start_time);
    mset_add(s, "gateway_workers", METRIC_GAUGE, MERGE_MAX, "Worker threads.", "", gw_nworkers);
    struct rt_config_status cs;
    rt_config_status(&cs);
    mset_add(s, "gateway_config_generation", METRIC_GAUGE, MERGE_MAX,
             "The serving config's generation (1 at start).", "", (double)cs.generation);
    add_counter(s, "gateway_config_reloads_total", "Successful reloads.", "", (double)cs.reloads);
    add_counter(s, "gateway_config_reload_failures_total", "Refused reloads.", "",
                (double)cs.failures);
    mset_add(s, "gateway_config_last_reload_success_timestamp_seconds", METRIC_GAUGE, MERGE_MAX,
             "Unix time the serving config was loaded.", "", cs.last_ok_time);
    labels(lbl, sizeof lbl, "reason", "token", NULL, NULL, NULL, NULL);
    add_counter(s, "gateway_admin_refused_total",
                "Admin requests refused: 401 for the token, 403 for the client certificate.",
                lbl, (double)rt_admin_refusals(RT_REFUSED_TOKEN));
    labels(lbl, sizeof lbl, "reason", "certificate", NULL, NULL, NULL, NULL);
    add_counter(s, "gateway_admin_refused_total",
                "Admin requests refused: 401 for the token, 403 for the client certificate.",
                lbl, (double)rt_admin_refusals(RT_REFUSED_CERTIFICATE));
}

void collect_now(void)
{
    struct gather g = { .set = mset_new() };
    if (!g.set) return;
    gather_process(g.set);
    /* One worker at a time: every worker adds to the one set (and to
     * g.down), which has no lock.  Posting to all before waiting on any
     * let them grow its table at once, and corrupted the heap. */
    for (int i = 0; i < gw_nworkers; i++) {
        worker_post(&gw_workers[i], gather_worker, &g);
        worker_wait(&gw_workers[i]);
    }
    metrics_publish(g.set);
    pthread_mutex_lock(&health_lock);
    snprintf(health_why, sizeof health_why, "%s", g.down);
    pthread_mutex_unlock(&health_lock);
}

static void on_timer(void *data, int events)
{
    collect_now();
    gw_timer_start(timer, COLLECT_SECONDS);
}

int collect_start(struct gw_loop *loop)
{
    timer = gw_timer_new(loop, on_timer, NULL);
    if (!timer) return GW_ERROR;
    collect_now();
    gw_timer_start(timer, COLLECT_SECONDS);
    return GW_OK;
}

void collect_stop(void)
{
    gw_timer_free(timer);
    timer = NULL;
    metrics_publish(NULL);
}

bool collect_health(char *why, size_t whylen)
{
    if (rt_stopping()) {
        snprintf(why, whylen, "shutting down");
        return false;
    }
    pthread_mutex_lock(&health_lock);
    bool ok = health_why[0] == 0;
    snprintf(why, whylen, "%s", health_why);
    pthread_mutex_unlock(&health_lock);
    return ok;
}

/* --- on demand -------------------------------------------------------------- */

/* Run fn(w, arg) on worker 0 and wait. */
static void on_worker0(void (*fn)(struct worker *, void *), void *arg)
{
    worker_post(&gw_workers[0], fn, arg);
    worker_wait(&gw_workers[0]);
}

static void json_server(struct json *j, const struct server *s)
{
    json_open(j, '{');
    json_kstr(j, "server", s->name);
    json_knum(j, "weight", s->weight);
    bool up = s->be && backend_is_up(s->be);
    json_kstr(j, "state", !s->be ? "unbound" : s->be->admin_down ? "taken out"
                          : up ? "up" : "down");
    json_knum(j, "queue", s->be ? s->be->nqueued : 0);
    json_knum(j, "timeout", s->opts.timeout);
    json_close(j, '}');
}

static void json_pool(struct json *j, const struct pool *p)
{
    static const char *const failovers[] = { "none", "rehash", "next" };
    json_open(j, '{');
    json_kstr(j, "name", p->name);
    if (p->kind == POOL_INTERNAL) {
        json_kstr(j, "kind", "internal");
        json_knum(j, "size", (double)p->store_size);
    } else {
        json_kstr(j, "kind", "servers");
        json_kstr(j, "hash", p->dist.mode->name);
        json_kstr(j, "failover", failovers[p->failover]);
        json_kbool(j, "multiget_error", p->policy.multiget_error);
        json_kstr(j, "protocol", p->text_only ? "text" : "meta");
        json_key(j, "servers");
        json_open(j, '[');
        for (uint32_t i = 0; i < p->nservers; i++) json_server(j, &p->servers[i]);
        json_close(j, ']');
    }
    json_close(j, '}');
}

static void json_files(struct json *j, const struct lhost_config *cfg)
{
    json_key(j, "files");
    json_open(j, '[');
    for (int i = 0; i < cfg->nfiles; i++) {
        char hex[20];
        text_hash(cfg->texts[i], cfg->lens[i], hex);
        json_open(j, '{');
        json_kstr(j, "path", cfg->files[i]);
        json_knum(j, "bytes", (double)cfg->lens[i]);
        json_kstr(j, "fnv1a64", hex);
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_settings(struct json *j, const char *key, const struct gw_settings *s)
{
    json_key(j, key);
    json_open(j, '{');
    json_knum(j, "threads", s->threads);
    json_knum(j, "max_value_size", (double)s->max_value);
    json_knum(j, "max_line", (double)s->max_line);
    json_knum(j, "max_connections", s->max_connections);
    json_knum(j, "max_pending", s->max_pending);
    json_knum(j, "max_output", (double)s->max_output);
    json_knum(j, "max_client_memory", (double)s->max_client_memory);
    json_kbool(j, "binary_keys", s->binary_keys);
    json_knum(j, "shutdown_timeout", s->shutdown_timeout);
    json_knum(j, "instruction_limit", (double)s->instruction_limit);
    json_knum(j, "route_timeout", s->route_timeout);
    json_knum(j, "task_limit", s->task_limit);
    json_knum(j, "max_tasks", s->max_tasks);
    json_knum(j, "lua_memory_limit", (double)s->lua_memory_limit);
    json_close(j, '}');
}

/* Settings the config asks for that wait for a restart. */
static void json_waiting(struct json *j, const struct gw_settings *want)
{
    const struct gw_settings *g = &gw_settings;
    json_key(j, "waiting_for_restart");
    json_open(j, '[');
    if (want->threads != g->threads) json_str(j, "threads");
    if (want->max_value != g->max_value) json_str(j, "max_value_size");
    if (want->max_line != g->max_line) json_str(j, "max_line");
    if (want->max_connections != g->max_connections) json_str(j, "max_connections");
    if (want->max_pending != g->max_pending) json_str(j, "max_pending");
    if (want->max_output != g->max_output) json_str(j, "max_output");
    if (want->max_client_memory != g->max_client_memory) json_str(j, "max_client_memory");
    if (want->binary_keys != g->binary_keys) json_str(j, "binary_keys");
    if (want->shutdown_timeout != g->shutdown_timeout) json_str(j, "shutdown_timeout");
    if (want->max_tasks != g->max_tasks) json_str(j, "max_tasks");
    if (want->lua_memory_limit != g->lua_memory_limit) json_str(j, "lua_memory_limit");
    json_close(j, ']');
}

/* The addresses the workers listen on now, which are the config's only
 * without -l: with -l (or no gateway.listen) the config's list is not what
 * is served.  A listener's fences are those of the config's entry with its
 * label (name, else address), as a request on it finds them. */
static void json_listeners(struct json *j, struct worker *w, const struct lhost_config *cfg)
{
    json_key(j, "listeners");
    json_open(j, '[');
    for (const struct listener *l = w->listeners; l; l = l->next) {
        const char *flush = "all", *stats = "all", *auth = NULL;
        size_t users = 0;
        for (int i = 0; i < cfg->nlisten; i++) {
            const char *label = cfg->listen_names[i] ? cfg->listen_names[i] : cfg->listen[i];
            if (!strcmp(label, l->label)) {
                lhost_fences(w->lua, i, &flush, &stats);
                auth = cfg->listen_auth[i];
                users = lhost_auth_users(w->lua, i);
                break;
            }
        }
        json_open(j, '{');
        json_kstr(j, "addr", l->addr);
        json_kstr(j, "name", l->name);
        json_kstr(j, "flush", flush);
        json_kstr(j, "stats", stats);
        if (auth) { /* the file and how many users it holds; never a hash */
            json_key(j, "auth");
            json_open(j, '{');
            json_kstr(j, "users_file", auth);
            json_knum(j, "users", (double)users);
            json_close(j, '}');
        }
        json_close(j, '}');
    }
    json_close(j, ']');
}

struct text_job {
    char *text;
    size_t len;
    const char *key, *command;
    size_t klen;
};

static void config_job(struct worker *w, void *arg)
{
    struct text_job *tj = arg;
    const struct lhost_config *cfg = lhost_config(w->lua);
    struct rt_config_status cs;
    rt_config_status(&cs);
    struct json j;
    json_init(&j);
    json_open(&j, '{');
    json_knum(&j, "generation", (double)cs.generation);
    json_knum(&j, "loaded_at", cs.last_ok_time);
    json_kstr(&j, "last_reload_result", cs.last_result);
    if (cs.last_error[0]) json_kstr(&j, "last_reload_error", cs.last_error);
    json_kstr(&j, "config", gw_settings.config_path);
    json_files(&j, cfg);
    json_listeners(&j, w, cfg);
    json_kstr(&j, "admin", cfg->admin);
    if (cfg->admin) {
        /* What protects it, never the token itself. */
        const struct lhost_admin *ao = cfg->admin_opts;
        static const char *const verify[] = { "none", "optional", "required" };
        json_key(&j, "admin_tls");
        if (ao && ao->tls) {
            json_open(&j, '{');
            json_kstr(&j, "cert", ao->cert_path);
            json_kstr(&j, "verify", verify[ao->verify]);
            json_kstr(&j, "min_version", ao->min_version >= 13 ? "1.3" : "1.2");
            json_close(&j, '}');
        } else {
            json_null(&j);
        }
        json_kbool(&j, "admin_token", ao && ao->token);
    }
    struct pool **pools;
    int n = lhost_pools(w->lua, &pools);
    json_key(&j, "pools");
    json_open(&j, '[');
    for (int i = 0; i < n; i++) json_pool(&j, pools[i]);
    json_close(&j, ']');
    struct route_view views[256];
    int nr = lhost_routes(w->lua, views, 256);
    json_key(&j, "routes");
    json_open(&j, '[');
    for (int i = 0; i < nr && i < 256; i++) {
        json_open(&j, '{');
        json_kstr(&j, "prefix", views[i].prefix ? views[i].prefix : "default");
        json_kstr(&j, "target", views[i].function ? "function" : "pool");
        if (!views[i].function) json_kstr(&j, "pool", views[i].pool->name);
        json_close(&j, '}');
    }
    json_close(&j, ']');
    json_settings(&j, "settings", &gw_settings);
    json_waiting(&j, &cfg->settings);
    json_close(&j, '}');
    tj->text = json_take(&j, &tj->len);
}

char *collect_config_json(size_t *len)
{
    struct text_job tj = { 0 };
    on_worker0(config_job, &tj);
    *len = tj.len;
    return tj.text;
}

static void route_job(struct worker *w, void *arg)
{
    struct text_job *tj = arg;
    struct json j;
    json_init(&j);
    json_open(&j, '{');
    json_key(&j, "key");
    json_strn(&j, tj->key, tj->klen);
    json_kstr(&j, "command", tj->command);
    struct route_view v;
    if (!lhost_match(w->lua, tj->key, tj->klen, &v)) {
        json_key(&j, "route");
        json_null(&j);
    } else {
        json_kstr(&j, "route", v.prefix ? v.prefix : "default");
        json_kstr(&j, "target", v.function ? "function" : "pool");
        if (!v.function) {
            json_kstr(&j, "pool", v.pool->name);
            json_key(&j, "backend_key");
            json_strn(&j, tj->key, tj->klen);
            if (v.pool->kind == POOL_INTERNAL) {
                json_kstr(&j, "server", "internal");
            } else {
                const struct server *s = pool_pick_server(v.pool, tj->key, tj->klen);
                json_kstr(&j, "server", s ? s->name : NULL);
                if (s) json_kbool(&j, "up", backend_is_up(s->be));
            }
        }
    }
    json_close(&j, '}');
    tj->text = json_take(&j, &tj->len);
}

char *collect_route_json(const char *key, size_t klen, const char *command, size_t *len)
{
    struct text_job tj = { .key = key, .klen = klen, .command = command };
    on_worker0(route_job, &tj);
    *len = tj.len;
    return tj.text;
}

struct down_job {
    const char *server;
    bool down;
    int found;
};

static void down_job(struct worker *w, void *arg)
{
    struct down_job *dj = arg;
    for (struct backend *b = w->rt.backends; b; b = b->reg_next) {
        if (strcmp(b->name, dj->server) != 0) continue;
        backend_set_admin_down(b, dj->down);
        dj->found++;
    }
}

bool collect_set_server_down(const char *server, bool down)
{
    struct down_job dj = { .server = server, .down = down };
    for (int i = 0; i < gw_nworkers; i++) {
        worker_post(&gw_workers[i], down_job, &dj);
        worker_wait(&gw_workers[i]);
    }
    if (dj.found) rt_set_admin_down(server, down);
    collect_now();
    return dj.found > 0;
}
