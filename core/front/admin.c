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

static void settings_stats(struct sbuf *b)
{
    add(b, "STAT maxconns %u\r\n", gw_settings.max_connections);
    add(b, "STAT item_size_max %zu\r\n", gw_settings.max_value);
    add(b, "STAT max_line %zu\r\n", gw_settings.max_line);
    add(b, "STAT num_threads %d\r\n", gw_settings.threads);
    const char *slash = strrchr(gw_settings.config_path, '/');
    add(b, "STAT config %s\r\n", slash ? slash + 1 : gw_settings.config_path);
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
    /* Per-server details live on the servers; the gateway has none. */
    bool empty = args_are(args, alen, "items") || args_are(args, alen, "slabs") ||
                 args_are(args, alen, "sizes") || args_are(args, alen, "conns");
    if (!general && !settings && !empty) {
        req_reply_kind(r, RESP_ERROR);
        return;
    }
    size_t cap = 8192;
    struct sbuf b = { req_alloc(r, cap), 0, cap };
    if (!b.p) {
        req_reply_static(r, "SERVER_ERROR out of memory\r\n");
        return;
    }
    if (general) general_stats(&b);
    else if (settings) settings_stats(&b);
    add(&b, "END\r\n");
    r->rline = b.p;
    r->rlen = (uint32_t)b.len;
}

bool admin_answers(enum mc_cmd cmd)
{
    return cmd == MC_VERSION || cmd == MC_VERBOSITY || cmd == MC_STATS;
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
    default:
        stats_answer(r);
        break;
    }
}
