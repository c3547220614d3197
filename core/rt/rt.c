/* rt.c -- see rt.h. */
#include "rt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/log.h"
#include "base/status.h"

#define CACHE_REQS_MAX 1024
#define CACHE_OPS_MAX 4096

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rt *all[RT_MAX];
static int nall;

int rt_init(struct rt *rt, int id, struct gw_loop *loop)
{
    memset(rt, 0, sizeof *rt);
    rt->id = id;
    rt->loop = loop;
    rt->reqs = (struct gw_freelist)GW_FREELIST_INIT(CACHE_REQS_MAX);
    rt->ops = (struct gw_freelist)GW_FREELIST_INIT(CACHE_OPS_MAX);
    pthread_mutex_lock(&all_lock);
    int rc = GW_ERROR;
    if (nall < RT_MAX) {
        all[nall++] = rt;
        rc = GW_OK;
    }
    pthread_mutex_unlock(&all_lock);
    return rc;
}

void rt_destroy(struct rt *rt)
{
    metrics_free(&rt->metrics);
    pthread_mutex_lock(&all_lock);
    for (int i = 0; i < nall; i++) {
        if (all[i] == rt) {
            all[i] = all[--nall];
            break;
        }
    }
    pthread_mutex_unlock(&all_lock);
}

/* The end of a flush queue.  A queued object's next is never NULL (the
 * last one's is &queue_end), so next != NULL is what says it is queued and
 * struct rt_flushable needs no flag.  A queue is empty when its head is
 * NULL or &queue_end. */
static struct rt_flushable queue_end;

static inline bool queue_empty(const struct rt_flushable *head)
{
    return !head || head == &queue_end;
}

void rt_mark(struct rt *rt, struct rt_flushable *f, enum rt_flush_class cls)
{
    if (f->next) return;
    f->next = rt->flush[cls] ? rt->flush[cls] : &queue_end;
    rt->flush[cls] = f;
}

void rt_unmark(struct rt *rt, struct rt_flushable *f, enum rt_flush_class cls)
{
    if (!f->next) return;
    struct rt_flushable **pp = &rt->flush[cls];
    while (!queue_empty(*pp) && *pp != f) pp = &(*pp)->next;
    if (*pp == f) *pp = f->next;
    f->next = NULL;
}

void rt_flush(struct rt *rt)
{
    for (;;) {
        int cls = 0;
        while (cls < RT_FLUSH_CLASSES && queue_empty(rt->flush[cls])) cls++;
        if (cls == RT_FLUSH_CLASSES) return;
        /* Drain this class before looking at the later ones: flushing a
         * client can read and dispatch more, which marks backends again. */
        while (!queue_empty(rt->flush[cls])) {
            struct rt_flushable *f = rt->flush[cls];
            rt->flush[cls] = f->next;
            f->next = NULL;
            f->flush(f);
        }
    }
}

void rt_stats_sum(struct gw_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&all_lock);
    for (int i = 0; i < nall; i++) {
        const struct gw_stats *s = &all[i]->stats;
#define GW_STAT_SUM(name) out->name += __atomic_load_n(&s->name, __ATOMIC_RELAXED);
        GW_STATS_FIELDS(GW_STAT_SUM)
#undef GW_STAT_SUM
    }
    pthread_mutex_unlock(&all_lock);
}

uint64_t rt_connections(void)
{
    uint64_t n = 0;
    pthread_mutex_lock(&all_lock);
    for (int i = 0; i < nall; i++)
        n += __atomic_load_n(&all[i]->stats.curr_connections, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&all_lock);
    return n;
}

int rt_count(void)
{
    pthread_mutex_lock(&all_lock);
    int n = nall;
    pthread_mutex_unlock(&all_lock);
    return n;
}

/* --- process-wide state ---------------------------------------------------- */

double rt_start_time;

static double unix_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

void rt_process_start(void)
{
    rt_start_time = (double)(long)unix_now();
}

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rt_config_status status = { .generation = 1, .last_result = "none" };

void rt_config_status(struct rt_config_status *out)
{
    pthread_mutex_lock(&status_lock);
    *out = status;
    pthread_mutex_unlock(&status_lock);
}

void rt_config_started(void)
{
    pthread_mutex_lock(&status_lock);
    status.last_ok_time = unix_now();
    pthread_mutex_unlock(&status_lock);
}

void rt_config_record(bool ok, const char *err)
{
    pthread_mutex_lock(&status_lock);
    status.last_time = unix_now();
    status.last_result = ok ? "ok" : "failed";
    if (ok) {
        status.generation++;
        status.reloads++;
        status.last_ok_time = status.last_time;
        status.last_error[0] = 0;   /* the config serving now has no error */
    } else {
        status.failures++;
        snprintf(status.last_error, sizeof status.last_error, "%s", err);
        for (char *p = status.last_error; *p; p++)
            if (*p == '\r' || *p == '\n') *p = ' ';  /* one STAT line */
        log_strip_dirs(status.last_error);         /* clients read stats */
    }
    pthread_mutex_unlock(&status_lock);
}

/* --- the operator's servers and the shutdown flag ----------------------------- */

static pthread_mutex_t down_lock = PTHREAD_MUTEX_INITIALIZER;
static char **down_servers;
static int ndown;

void rt_set_admin_down(const char *server, bool down)
{
    pthread_mutex_lock(&down_lock);
    int i = 0;
    while (i < ndown && strcmp(down_servers[i], server) != 0) i++;
    if (down && i == ndown) {
        char **n = realloc(down_servers, (size_t)(ndown + 1) * sizeof *n);
        char *copy = strdup(server);
        if (n && copy) {
            down_servers = n;
            down_servers[ndown++] = copy;
        } else {
            if (n) down_servers = n;
            free(copy);
        }
    } else if (!down && i < ndown) {
        free(down_servers[i]);
        down_servers[i] = down_servers[--ndown];
    }
    pthread_mutex_unlock(&down_lock);
}

bool rt_admin_down(const char *server)
{
    pthread_mutex_lock(&down_lock);
    bool found = false;
    for (int i = 0; i < ndown && !found; i++) found = !strcmp(down_servers[i], server);
    pthread_mutex_unlock(&down_lock);
    return found;
}

static uint64_t admin_refusals[RT_REFUSED_KINDS];

void rt_admin_refused(enum rt_admin_refusal why)
{
    __atomic_add_fetch(&admin_refusals[why], 1, __ATOMIC_RELAXED);
}

uint64_t rt_admin_refusals(enum rt_admin_refusal why)
{
    return __atomic_load_n(&admin_refusals[why], __ATOMIC_RELAXED);
}

static bool stopping;

void rt_set_stopping(void)
{
    __atomic_store_n(&stopping, true, __ATOMIC_RELAXED);
}

bool rt_stopping(void)
{
    return __atomic_load_n(&stopping, __ATOMIC_RELAXED);
}
