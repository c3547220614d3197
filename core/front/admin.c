/* admin.c -- see admin.h.  The stats reply follows memcached's format. */
#include "admin.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/version.h"
#include "proxy/req.h"
#include "rt/metrics.h"
#include "rt/rt.h"
#include "rt/settings.h"

#define VERSION_LINE "VERSION " GW_VERSION_REPLY "\r\n"

struct sbuf {
    char *p;
    size_t len, cap;
};

static void add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n > 0 && b->len + (size_t)n < b->cap) b->len += (size_t)n;
}

/* `stats reset` zeroes counters by remembering where they stood; gauges
 * are never reset. */
static pthread_mutex_t baseline_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gw_stats baseline;

static void stats_reset(void)
{
    pthread_mutex_lock(&baseline_lock);
    rt_stats_sum(&baseline);
    baseline.curr_connections = 0;
    baseline.gw_lua_memory = 0;
    baseline.gw_lua_tasks = 0;
    pthread_mutex_unlock(&baseline_lock);
}

static void general_stats(struct sbuf *b)
{
    struct gw_stats s;
    rt_stats_sum(&s);
    pthread_mutex_lock(&baseline_lock);
#define GW_STAT_SUB(name) s.name -= baseline.name;
    GW_STATS_FIELDS(GW_STAT_SUB)
#undef GW_STAT_SUB
    pthread_mutex_unlock(&baseline_lock);
    struct timeval now;
    gettimeofday(&now, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    add(b, "STAT pid %d\r\n", (int)getpid());
    add(b, "STAT uptime %ld\r\n", (long)(now.tv_sec - (time_t)rt_start_time));
    add(b, "STAT time %ld\r\n", (long)now.tv_sec);
    add(b, "STAT version %s\r\n", GW_VERSION_REPLY);
    add(b, "STAT libevent libev\r\n");
    add(b, "STAT pointer_size %d\r\n", (int)(8 * sizeof(void *)));
    add(b, "STAT rusage_user %ld.%06ld\r\n", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    add(b, "STAT rusage_system %ld.%06ld\r\n", (long)ru.ru_stime.tv_sec,
        (long)ru.ru_stime.tv_usec);
    add(b, "STAT max_connections %u\r\n", gw_settings.max_connections);
#define GW_STAT_LINE(name) add(b, "STAT " #name " %" PRIu64 "\r\n", s.name);
    GW_STATS_FIELDS(GW_STAT_LINE)
#undef GW_STAT_LINE
    add(b, "STAT threads %d\r\n", rt_count());
    struct rt_config_status cs;
    rt_config_status(&cs);
    add(b, "STAT gw_config_generation %" PRIu64 "\r\n", cs.generation);
    add(b, "STAT gw_reloads %" PRIu64 "\r\n", cs.reloads);
    add(b, "STAT gw_reload_failures %" PRIu64 "\r\n", cs.failures);
    add(b, "STAT gw_last_reload %ld\r\n", (long)cs.last_time);
    add(b, "STAT gw_last_reload_result %s\r\n", cs.last_result);
    if (cs.last_error[0]) add(b, "STAT gw_last_reload_error %s\r\n", cs.last_error);
}

/* The value of label `key` in a series' labels (`a="x",b="y"`), unescaped
 * enough for names and addresses. */
static void label_value(const char *labels, const char *key, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=\"", key);
    const char *p = strstr(labels, pat);
    size_t n = 0;
    if (p) {
        for (p += strlen(pat); *p && *p != '"' && n + 1 < outlen; p++) {
            if (*p == '\\' && p[1]) p++;
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

struct listing {
    struct sbuf *b;
    const struct mset *set;
};

static void listener_line(void *ctx, const char *labels, double v, const struct histo *h)
{
    struct listing *l = ctx;
    char addr[300], name[300];
    label_value(labels, "addr", addr, sizeof addr);
    label_value(labels, "name", name, sizeof name);
    add(l->b, "STAT listen %s%s%s\r\n", addr, name[0] ? " " : "", name);
}

static void settings_stats(struct sbuf *b)
{
    const struct gw_settings *s = &gw_settings;
    add(b, "STAT maxconns %u\r\n", s->max_connections);
    add(b, "STAT item_size_max %zu\r\n", s->max_value);
    add(b, "STAT max_line %zu\r\n", s->max_line);
    add(b, "STAT num_threads %d\r\n", s->threads);
    const char *slash = strrchr(s->config_path, '/');
    add(b, "STAT config %s\r\n", slash ? slash + 1 : s->config_path);
    add(b, "STAT max_pending %u\r\n", s->max_pending);
    add(b, "STAT max_output %zu\r\n", s->max_output);
    add(b, "STAT max_client_memory %zu\r\n", s->max_client_memory);
    add(b, "STAT binary_keys %s\r\n", s->binary_keys ? "yes" : "no");
    add(b, "STAT shutdown_timeout %g\r\n", s->shutdown_timeout);
    add(b, "STAT max_tasks %u\r\n", s->max_tasks);
    add(b, "STAT lua_memory_limit %zu\r\n", s->lua_memory_limit);
    struct mset *m = metrics_latest();
    if (m) {
        struct listing l = { b, m };
        mset_each(m, "gateway_listener_info", listener_line, &l);
        metrics_release(m);
    }
}

static double value_or_zero(const struct mset *m, const char *name, const char *labels)
{
    double v = mset_get(m, name, labels);
    return v == v ? v : 0;
}

/* Sum of a family over the kinds of one series: `labels,kind="..."`. */
static double sum_kinds(const struct mset *m, const char *name, const char *labels)
{
    double total = 0;
    for (int k = 0; k < BE_ERR_KINDS; k++) {
        char lbl[1200];
        snprintf(lbl, sizeof lbl, "%s,kind=\"%s\"", labels, be_error_names[k]);
        double v = mset_get(m, name, lbl);
        if (v == v) total += v;
    }
    return total;
}

struct latency {
    const char *labels;
    double us;
};

static void find_latency(void *ctx, const char *labels, double v, const struct histo *h)
{
    struct latency *l = ctx;
    if (h && !strcmp(labels, l->labels) && h->count) l->us = h->sum / (double)h->count * 1e6;
}

static void server_line(void *ctx, const char *labels, double v, const struct histo *h)
{
    struct listing *l = ctx;
    char pool[300], server[300];
    label_value(labels, "pool", pool, sizeof pool);
    label_value(labels, "server", server, sizeof server);
    double up = mset_get(l->set, "gateway_server_up", labels);
    double out = mset_get(l->set, "gateway_server_admin_down", labels);
    struct latency lat = { labels, 0 };
    mset_each(l->set, "gateway_server_rtt_seconds", find_latency, &lat);
    add(l->b, "STAT %s pool:%s state:%s requests:%.0f errors:%.0f queue:%.0f avg_latency_us:%.1f\r\n",
        server, pool, out == 1 ? "taken_out" : up == 1 ? "up" : up == 0 ? "down" : "unused", v,
        sum_kinds(l->set, "gateway_server_errors_total", labels),
        value_or_zero(l->set, "gateway_server_queue_depth", labels), lat.us);
}

static void pool_line(void *ctx, const char *labels, double v, const struct histo *h)
{
    struct listing *l = ctx;
    char pool[300];
    label_value(labels, "pool", pool, sizeof pool);
    add(l->b, "STAT %s requests:%.0f errors:%.0f\r\n", pool, v,
        sum_kinds(l->set, "gateway_pool_errors_total", labels));
}

static void file_line(void *ctx, const char *labels, double v, const struct histo *h)
{
    struct listing *l = ctx;
    char file[300], hash[40];
    label_value(labels, "file", file, sizeof file);
    label_value(labels, "fnv1a64", hash, sizeof hash);
    add(l->b, "STAT file %s %s\r\n", file, hash);
}

/* stats servers / pools / config: from the set the collector published
 * (at most a second old), summed over every worker. */
static void collected_stats(struct sbuf *b, const char *what)
{
    struct mset *m = metrics_latest();
    if (!m) return;
    struct listing l = { b, m };
    if (!strcmp(what, "servers")) {
        mset_each(m, "gateway_server_requests_total", server_line, &l);
    } else if (!strcmp(what, "pools")) {
        mset_each(m, "gateway_pool_requests_total", pool_line, &l);
    } else {
        struct rt_config_status cs;
        rt_config_status(&cs);
        add(b, "STAT generation %llu\r\n", (unsigned long long)cs.generation);
        add(b, "STAT loaded_at %.0f\r\n", cs.last_ok_time);
        add(b, "STAT last_reload_result %s\r\n", cs.last_result);
        if (cs.last_error[0]) add(b, "STAT last_reload_error %s\r\n", cs.last_error);
        mset_each(m, "gateway_config_file_info", file_line, &l);
    }
    metrics_release(m);
}

static bool args_are(const char *args, size_t len, const char *word)
{
    return len == strlen(word) && !memcmp(args, word, len);
}

static void stats_answer(struct gw_req *r)
{
    const char *args = r->base + r->mc.args_off;
    size_t alen = r->mc.args_len;
    if (args_are(args, alen, "reset")) {
        stats_reset();
        req_reply_static(r, "RESET\r\n");
        return;
    }
    bool general = alen == 0, settings = args_are(args, alen, "settings");
    const char *collected = args_are(args, alen, "servers") ? "servers"
                          : args_are(args, alen, "pools") ? "pools"
                          : args_are(args, alen, "config") ? "config" : NULL;
    /* Items, slabs and the like live on the servers; the gateway has none. */
    bool empty = args_are(args, alen, "items") || args_are(args, alen, "slabs") ||
                 args_are(args, alen, "sizes") || args_are(args, alen, "conns");
    if (!general && !settings && !empty && !collected) {
        req_reply_kind(r, RESP_ERROR);
        return;
    }
    size_t cap = collected ? 256 * 1024 : 8192;
    struct sbuf b = { req_alloc(r, cap), 0, cap };
    if (!b.p) {
        req_reply_static(r, "SERVER_ERROR out of memory\r\n");
        return;
    }
    if (general) general_stats(&b);
    else if (settings) settings_stats(&b);
    else if (collected) collected_stats(&b, collected);
    add(&b, "END\r\n");
    r->rline = b.p;
    r->rlen = (uint32_t)b.len;
}

bool admin_answers(enum mc_cmd cmd)
{
    return cmd == MC_VERSION || cmd == MC_VERBOSITY || cmd == MC_STATS || cmd == MC_META_NOOP;
}

void admin_answer(struct gw_req *r)
{
    switch (r->mc.cmd) {
    case MC_VERSION:
        req_reply_static(r, VERSION_LINE);
        break;
    case MC_VERBOSITY:
        req_reply_kind(r, RESP_OK);
        break;
    case MC_META_NOOP:
        /* Replies go out in request order, so MN follows every earlier
         * reply on the connection, however many servers they came from. */
        req_reply_static(r, "MN\r\n");
        break;
    default:
        stats_answer(r);
        break;
    }
}
