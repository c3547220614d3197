/* stats.c -- the reply to `stats`, in memcached's format. */
#include "stats.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/req.h"
#include "codec/resp.h"
#include "base/version.h"
#include "server/reload.h"
#include "server/worker.h"

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

/* `stats reset` zeroes counters by remembering where they stood. */
static pthread_mutex_t baseline_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gw_stats baseline;

static void stats_reset(void)
{
    pthread_mutex_lock(&baseline_lock);
    worker_stats_sum(&baseline);
    baseline.curr_connections = 0;
    baseline.gw_lua_memory = 0;
    baseline.gw_lua_tasks = 0;
    pthread_mutex_unlock(&baseline_lock);
}

static void general_stats(struct sbuf *b)
{
    struct gw_stats s;
    worker_stats_sum(&s);
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
    add(b, "STAT uptime %ld\r\n", (long)(now.tv_sec - (time_t)gw_start_time));
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
    add(b, "STAT threads %d\r\n", gw_nworkers);
    struct reload_status rs;
    reload_status(&rs);
    add(b, "STAT gw_config_generation %" PRIu64 "\r\n", rs.generation);
    add(b, "STAT gw_reloads %" PRIu64 "\r\n", rs.reloads);
    add(b, "STAT gw_reload_failures %" PRIu64 "\r\n", rs.failures);
    add(b, "STAT gw_last_reload %ld\r\n", (long)rs.last_time);
    add(b, "STAT gw_last_reload_result %s\r\n", rs.last_result);
    if (rs.last_error[0]) add(b, "STAT gw_last_reload_error %s\r\n", rs.last_error);
}

static void settings_stats(struct sbuf *b)
{
    add(b, "STAT maxconns %u\r\n", gw_settings.max_connections);
    add(b, "STAT item_size_max %zu\r\n", gw_settings.max_value);
    add(b, "STAT max_line %zu\r\n", gw_settings.max_line);
    add(b, "STAT num_threads %d\r\n", gw_settings.threads);
    add(b, "STAT config %s\r\n", gw_settings.config_path);
}

void stats_reply(struct worker *w, struct gw_req *r)
{
    size_t cap = 8192;
    struct sbuf b = { req_alloc(r, cap), 0, cap };
    if (!b.p) {
        req_reply_static(r, "SERVER_ERROR out of memory\r\n");
        return;
    }
    const char *args = r->base + r->mc.args_off;
    size_t alen = r->mc.args_len;
    if (alen == 0) {
        general_stats(&b);
    } else if (alen == 8 && !memcmp(args, "settings", 8)) {
        settings_stats(&b);
    } else if ((alen == 5 && !memcmp(args, "items", 5)) || (alen == 5 && !memcmp(args, "slabs", 5)) ||
               (alen == 5 && !memcmp(args, "sizes", 5)) || (alen == 5 && !memcmp(args, "conns", 5))) {
        /* Per-server details live on the servers; the gateway has none. */
    } else if (alen == 5 && !memcmp(args, "reset", 5)) {
        stats_reset();
        req_reply_static(r, "RESET\r\n");
        return;
    } else {
        req_reply_static(r, "ERROR\r\n");
        return;
    }
    add(&b, "END\r\n");
    r->rline = b.p;
    r->rlen = (uint32_t)b.len;
}

/* Hit and miss counters, from the kind of a single-line reply. */
void stats_count_reply(struct gw_stats *st, enum mc_cmd cmd, enum mc_resp_kind kind)
{
    switch (cmd) {
    case MC_DELETE:
        if (kind == RESP_DELETED) STAT_INC(st, delete_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, delete_misses);
        break;
    case MC_INCR:
        if (kind == RESP_NUMBER) STAT_INC(st, incr_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, incr_misses);
        break;
    case MC_DECR:
        if (kind == RESP_NUMBER) STAT_INC(st, decr_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, decr_misses);
        break;
    case MC_TOUCH:
        if (kind == RESP_TOUCHED) STAT_INC(st, touch_hits);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, touch_misses);
        break;
    case MC_CAS:
        if (kind == RESP_STORED) STAT_INC(st, cas_hits);
        else if (kind == RESP_EXISTS) STAT_INC(st, cas_badval);
        else if (kind == RESP_NOT_FOUND) STAT_INC(st, cas_misses);
        break;
    default:
        break;
    }
}
