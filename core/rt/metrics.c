/* metrics.c -- see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"

const double metric_bucket_bounds[METRIC_BUCKETS] = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
    25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5,
};

const char *const be_error_names[BE_ERR_KINDS] = {
    [BE_ERR_TIMEOUT] = "timeout", [BE_ERR_REFUSED] = "refused", [BE_ERR_CLOSED] = "closed",
    [BE_ERR_GARBAGE] = "garbage", [BE_ERR_QUEUE_FULL] = "queue_full", [BE_ERR_DOWN] = "down",
    [BE_ERR_OTHER] = "other",
};

const char *const client_error_names[CERR_KINDS] = {
    [CERR_PROTOCOL] = "protocol", [CERR_LUA] = "lua", [CERR_NO_ROUTE] = "no_route",
    [CERR_BACKEND] = "backend", [CERR_DENIED] = "denied",
};

double metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void histo_observe(struct histo *h, double seconds)
{
    int i = 0;
    while (i < METRIC_BUCKETS && seconds > metric_bucket_bounds[i]) i++;
    h->bucket[i]++;
    h->count++;
    h->sum += seconds;
}

/* --- stats blocks ------------------------------------------------------------ */

struct route_stats *metrics_route(struct rt_metrics *m, const char *label)
{
    for (struct route_stats *r = m->routes; r; r = r->next)
        if (!strcmp(r->label, label)) return r;
    struct route_stats *r = calloc(1, sizeof *r);
    if (!r || !(r->label = strdup(label))) {
        free(r);
        return NULL;
    }
    r->next = m->routes;
    m->routes = r;
    return r;
}

struct pool_stats *metrics_pool(struct rt_metrics *m, const char *name)
{
    for (struct pool_stats *p = m->pools; p; p = p->next)
        if (!strcmp(p->name, name)) return p;
    struct pool_stats *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return NULL;
    }
    p->next = m->pools;
    m->pools = p;
    return p;
}

struct server_stats *metrics_server(struct rt_metrics *m, const char *pool, const char *server)
{
    for (struct server_stats *s = m->servers; s; s = s->next)
        if (!strcmp(s->pool, pool) && !strcmp(s->server, server)) return s;
    struct server_stats *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pool = strdup(pool);
    s->server = strdup(server);
    s->pool_stats = metrics_pool(m, pool);
    if (!s->pool || !s->server || !s->pool_stats) {
        free(s->pool);
        free(s->server);
        free(s);
        return NULL;
    }
    s->next = m->servers;
    m->servers = s;
    return s;
}

void metrics_free(struct rt_metrics *m)
{
    while (m->routes) {
        struct route_stats *r = m->routes;
        m->routes = r->next;
        free(r->label);
        free(r);
    }
    while (m->pools) {
        struct pool_stats *p = m->pools;
        m->pools = p->next;
        free(p->name);
        free(p);
    }
    while (m->servers) {
        struct server_stats *s = m->servers;
        m->servers = s->next;
        free(s->pool);
        free(s->server);
        free(s);
    }
}

/* --- metric sets ------------------------------------------------------------- */

struct family;

struct series {
    struct series *next;       /* the family's, in order */
    struct series *chain;      /* the hash table's */
    struct family *fam;
    char *labels;
    double v;
    struct histo h;
};

struct family {
    struct family *next;
    char *name, *help;
    enum metric_type type;
    enum metric_merge merge;
    struct series *first, *last;
};

struct mset {
    struct family *families, *last;
    struct series **table;
    size_t cap, n;
    int refs;
};

struct mset *mset_new(void)
{
    struct mset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = 256;
    s->table = calloc(s->cap, sizeof *s->table);
    if (!s->table) {
        free(s);
        return NULL;
    }
    s->refs = 1;
    return s;
}

void mset_free(struct mset *s)
{
    if (!s) return;
    while (s->families) {
        struct family *f = s->families;
        s->families = f->next;
        while (f->first) {
            struct series *x = f->first;
            f->first = x->next;
            free(x->labels);
            free(x);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    free(s->table);
    free(s);
}

static size_t hash_of(const struct family *f, const char *labels)
{
    size_t h = (size_t)(uintptr_t)f * 0x9E3779B97F4A7C15ull;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++) h = (h ^ *p) * 0x100000001B3ull;
    return h;
}

static struct family *family_find(const struct mset *s, const char *name)
{
    for (struct family *f = s->families; f; f = f->next)
        if (!strcmp(f->name, name)) return f;
    return NULL;
}

static struct family *family_get(struct mset *s, const char *name, enum metric_type type,
                                  enum metric_merge merge, const char *help)
{
    struct family *f = family_find(s, name);
    if (f) return f;
    f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    f->merge = merge;
    if (s->last) s->last->next = f;
    else s->families = f;
    s->last = f;
    return f;
}

static void table_grow(struct mset *s)
{
    size_t cap = s->cap * 2;
    struct series **t = calloc(cap, sizeof *t);
    if (!t) return;
    for (size_t i = 0; i < s->cap; i++) {
        for (struct series *x = s->table[i], *next; x; x = next) {
            next = x->chain;
            size_t b = hash_of(x->fam, x->labels) & (cap - 1);
            x->chain = t[b];
            t[b] = x;
        }
    }
    free(s->table);
    s->table = t;
    s->cap = cap;
}

/* The series f{labels}; made (and reported in *fresh) if need be. */
static struct series *series_get(struct mset *s, struct family *f, const char *labels, bool *fresh)
{
    size_t b = hash_of(f, labels) & (s->cap - 1);
    for (struct series *x = s->table[b]; x; x = x->chain)
        if (x->fam == f && !strcmp(x->labels, labels)) {
            *fresh = false;
            return x;
        }
    struct series *x = calloc(1, sizeof *x);
    if (!x || !(x->labels = strdup(labels))) {
        free(x);
        return NULL;
    }
    x->fam = f;
    x->chain = s->table[b];
    s->table[b] = x;
    if (f->last) f->last->next = x;
    else f->first = x;
    f->last = x;
    *fresh = true;
    if (++s->n > s->cap) table_grow(s);
    return x;
}

void mset_add(struct mset *s, const char *name, enum metric_type type, enum metric_merge merge,
              const char *help, const char *labels, double v)
{
    struct family *f = family_get(s, name, type, merge, help);
    bool fresh;
    struct series *x = f ? series_get(s, f, labels, &fresh) : NULL;
    if (!x) return;
    if (fresh) x->v = v;
    else if (f->merge == MERGE_MIN) x->v = v < x->v ? v : x->v;
    else if (f->merge == MERGE_MAX) x->v = v > x->v ? v : x->v;
    else x->v += v;
}

void mset_add_histo(struct mset *s, const char *name, const char *help, const char *labels,
                    const struct histo *h)
{
    struct family *f = family_get(s, name, METRIC_HISTOGRAM, MERGE_SUM, help);
    bool fresh;
    struct series *x = f ? series_get(s, f, labels, &fresh) : NULL;
    if (!x) return;
    for (int i = 0; i <= METRIC_BUCKETS; i++) x->h.bucket[i] += h->bucket[i];
    x->h.count += h->count;
    x->h.sum += h->sum;
}

double mset_get(const struct mset *s, const char *name, const char *labels)
{
    const struct family *f = family_find(s, name);
    if (!f) return NAN;
    for (const struct series *x = f->first; x; x = x->next)
        if (!strcmp(x->labels, labels)) return x->v;
    return NAN;
}

void mset_each(const struct mset *s, const char *name,
               void (*fn)(void *ctx, const char *labels, double v, const struct histo *h),
               void *ctx)
{
    const struct family *f = family_find(s, name);
    for (const struct series *x = f ? f->first : NULL; x; x = x->next)
        fn(ctx, x->labels, x->v, f->type == METRIC_HISTOGRAM ? &x->h : NULL);
}

void mset_escape(char *out, size_t outlen, const char *value)
{
    size_t n = 0;
    for (const char *p = value; *p && n + 3 < outlen; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

/* --- the text exposition ------------------------------------------------------ */

struct text {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n) * 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* A sample value: whole numbers without a fraction. */
static void put_value(struct text *t, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) put(t, "%.0f\n", v);
    else put(t, "%.17g\n", v);
}

static void put_histo(struct text *t, const char *name, const char *labels, const struct histo *h)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i < METRIC_BUCKETS; i++) {
        cum += h->bucket[i];
        put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, metric_bucket_bounds[i],
            (unsigned long long)cum);
    }
    put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count);
    put(t, labels[0] ? "%s_sum{%s} " : "%s_sum%s ", name, labels);
    put_value(t, h->sum);
    put(t, labels[0] ? "%s_count{%s} %llu\n" : "%s_count%s %llu\n", name, labels,
        (unsigned long long)h->count);
}

char *mset_render(const struct mset *s, size_t *len)
{
    static const char *const types[] = { "counter", "gauge", "histogram" };
    struct text t = { malloc(65536), 0, 65536, false };
    if (!t.p) return NULL;
    for (const struct family *f = s->families; f; f = f->next) {
        if (!f->first) continue;
        put(&t, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
        for (const struct series *x = f->first; x; x = x->next) {
            if (f->type == METRIC_HISTOGRAM) {
                put_histo(&t, f->name, x->labels, &x->h);
                continue;
            }
            put(&t, x->labels[0] ? "%s{%s} " : "%s%s ", f->name, x->labels);
            put_value(&t, x->v);
        }
    }
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

/* --- the published set ----------------------------------------------------------- */

static pthread_mutex_t latest_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mset *latest;

void metrics_publish(struct mset *s)
{
    pthread_mutex_lock(&latest_lock);
    struct mset *old = latest;
    latest = s;
    pthread_mutex_unlock(&latest_lock);
    metrics_release(old);
}

struct mset *metrics_latest(void)
{
    pthread_mutex_lock(&latest_lock);
    struct mset *s = latest;
    if (s) s->refs++;
    pthread_mutex_unlock(&latest_lock);
    return s;
}

void metrics_release(struct mset *s)
{
    if (!s) return;
    pthread_mutex_lock(&latest_lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&latest_lock);
    if (last) mset_free(s);
}
