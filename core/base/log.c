/* log.c -- see log.h. */
#define _GNU_SOURCE /* memmem */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_LVL_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "VERBOSE", "DEBUG" };

#define MSG_MAX 4096        /* one message, formatted */
#define OUT_MAX 16384       /* what one call writes, every line's prefix included */
#define PREFIX_MAX 160

static bool is_delim(char c)
{
    return c == ' ' || c == '\t' || c == '\'' || c == '"' || c == '(' || c == '\0';
}

/* Where the file name ends in a word that names a file by its path and a
 * line ("dir/file:12:") or by an absolute path alone ("/dir/file:"), as
 * error messages start; NULL if the word is neither. */
static const char *file_ref_end(const char *in, const char *end)
{
    if (end - in < 2 || end[-1] != ':') return NULL;
    const char *colon = end - 1, *p = colon;
    while (p > in && p[-1] >= '0' && p[-1] <= '9') p--;
    if (p < colon && p > in && p[-1] == ':') p--;  /* "file:12:" */
    else if (*in == '/') p = colon;                /* "/dir/file:" */
    else return NULL;
    return memchr(in, '/', (size_t)(p - in)) ? p : NULL;
}

void log_strip_dirs(char *msg)
{
    char *out = msg;
    const char *in = msg;
    while (*in) {
        if (is_delim(*in)) {
            *out++ = *in++;
            continue;
        }
        const char *end = in;
        while (!is_delim(*end)) end++;
        /* A word naming a Lua file, another file with a line
         * ("/etc/gw/users:3:"), or an absolute path before a colon
         * ("/etc/gw/users:"), keeps what follows its last '/' before that. */
        const char *stop = memmem(in, (size_t)(end - in), ".lua", 4);
        if (!stop) stop = file_ref_end(in, end);
        const char *from = in;
        for (const char *p = in; stop && p < stop; p++)
            if (*p == '/') from = p + 1;
        memmove(out, from, (size_t)(end - from));
        out += end - from;
        in = end;
    }
    *out = 0;
}

/* --- writing lines --------------------------------------------------------- */

/* "2026-12-02T13:04:05.123Z LEVEL file.c:12: " */
static int line_prefix(char *out, size_t len, int level, const char *file, int line)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s:%d: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(ts.tv_nsec / 1000000), level_names[level], base, line);
    return n < 0 ? 0 : n >= (int)len ? (int)len - 1 : n;
}

/* Append [p, p+n) to out (used bytes *used, room OUT_MAX), as much as fits. */
static void append(char *out, size_t *used, const char *p, size_t n)
{
    if (n > OUT_MAX - *used) n = OUT_MAX - *used;
    memcpy(out + *used, p, n);
    *used += n;
}

/* Write msg: each of its lines (a traceback has many) with the prefix, all
 * in one write(2).  What does not fit in OUT_MAX is cut. */
static void emit(int level, const char *file, int line, const char *msg)
{
    char out[OUT_MAX], pre[PREFIX_MAX];
    size_t used = 0, plen = (size_t)line_prefix(pre, sizeof pre, level, file, line);
    const char *p = msg;
    do {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (used + plen + 2 > OUT_MAX) break;
        append(out, &used, pre, plen);
        append(out, &used, p, n < OUT_MAX - 1 - used ? n : OUT_MAX - 1 - used);
        out[used++] = '\n';
        p = nl ? nl + 1 : NULL;
    } while (p && *p);
    ssize_t w = write(STDERR_FILENO, out, used);
    (void)w;
}

static void vformat(char *msg, const char *fmt, va_list ap)
{
    int n = vsnprintf(msg, MSG_MAX, fmt, ap);
    if (n < 0) msg[0] = 0;
}

void log_write(int level, const char *file, int line, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vformat(msg, fmt, ap);
    va_end(ap);
    emit(level, file, line, msg);
}

/* --- rate limiting ------------------------------------------------------- */

#define REPEAT_SLOTS 128
#define REPEAT_PROBE 8      /* slots a key may sit in, from its hash on */
#define REPEAT_TEXT 200     /* bytes of the first line a summary quotes */

/* One key: a call site and a topic, and its window. */
struct repeat {
    uint64_t key;           /* 0: a free slot */
    const char *file;       /* __FILE__: static */
    int line, level;
    double since;           /* monotonic seconds the window began (its line was logged) */
    unsigned long long count;   /* occurrences counted since, not logged */
    char text[REPEAT_TEXT + 4]; /* the start of that line */
};

static pthread_mutex_t repeats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct repeat repeats[REPEAT_SLOTS];
static double window = LOG_REPEAT_WINDOW;

void log_set_repeat_window(double seconds)
{
    if (seconds > 0) window = seconds;
}

double log_repeat_window(void) { return window; }

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a over the call site and the topic; never 0. */
static uint64_t repeat_key(const char *file, int line, const char *topic)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = file; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = (h ^ (uint64_t)(unsigned)line) * 0x100000001b3ull;
    for (const char *p = topic; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h ? h : 1;
}

static struct repeat *slot(uint64_t key, int i)
{
    return &repeats[(key + (uint64_t)i) % REPEAT_SLOTS];
}

static struct repeat *repeat_find(uint64_t key, int line)
{
    for (int i = 0; i < REPEAT_PROBE; i++) {
        struct repeat *e = slot(key, i);
        if (e->key == key && e->line == line) return e;
    }
    return NULL;
}

/* Log e's count, if any, and zero it. */
static void repeat_flush(struct repeat *e, double now)
{
    if (e->count == 0) return;
    double s = now - e->since;
    char msg[REPEAT_TEXT + 96];
    snprintf(msg, sizeof msg, "repeated %llu time%s in the last %.*f s: %s", e->count,
             e->count == 1 ? "" : "s", s >= 9.95 ? 0 : 1, s, e->text);
    emit(e->level, e->file, e->line, msg);
    e->count = 0;
}

/* A slot for a new key: a free one, else one whose window is over and that
 * has nothing to report, else the oldest (its count logged first). */
static struct repeat *repeat_claim(uint64_t key, double now)
{
    struct repeat *oldest = slot(key, 0);
    for (int i = 0; i < REPEAT_PROBE; i++) {
        struct repeat *e = slot(key, i);
        if (e->key == 0 || (e->count == 0 && now - e->since >= window)) return e;
        if (e->since < oldest->since) oldest = e;
    }
    repeat_flush(oldest, now);
    return oldest;
}

/* e starts a window for the line msg, logged now. */
static void repeat_start(struct repeat *e, uint64_t key, int level, const char *file, int line,
                         const char *msg, double now)
{
    e->key = key;
    e->file = file;
    e->line = line;
    e->level = level;
    e->since = now;
    e->count = 0;
    size_t n = strcspn(msg, "\n");
    if (n > REPEAT_TEXT) {
        memcpy(e->text, msg, REPEAT_TEXT);
        memcpy(e->text + REPEAT_TEXT, "...", 4);
    } else {
        memcpy(e->text, msg, n);
        e->text[n] = 0;
    }
}

bool log_admit(const char *file, int line, const char *topic)
{
    if (!topic) return true;
    uint64_t key = repeat_key(file, line, topic);
    double now = mono_now();
    pthread_mutex_lock(&repeats_lock);
    struct repeat *e = repeat_find(key, line);
    bool counted = e && now - e->since < window;
    if (counted) e->count++;
    pthread_mutex_unlock(&repeats_lock);
    return !counted;
}

void log_limited(int level, const char *file, int line, const char *topic, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    bool formatted = topic == NULL;
    if (formatted) {
        va_start(ap, fmt);
        vformat(msg, fmt, ap);
        va_end(ap);
        topic = msg;
    }
    uint64_t key = repeat_key(file, line, topic);
    double now = mono_now();
    pthread_mutex_lock(&repeats_lock);
    struct repeat *e = repeat_find(key, line);
    if (e && now - e->since < window) {
        e->count++;
        pthread_mutex_unlock(&repeats_lock);
        return;
    }
    if (!formatted) {
        va_start(ap, fmt);
        vformat(msg, fmt, ap);
        va_end(ap);
    }
    /* Under the lock: a key's count is written before its next line. */
    if (e) repeat_flush(e, now);
    else e = repeat_claim(key, now);
    repeat_start(e, key, level, file, line, msg, now);
    emit(level, file, line, msg);
    pthread_mutex_unlock(&repeats_lock);
}

void log_flush_repeats(bool all)
{
    double now = mono_now();
    pthread_mutex_lock(&repeats_lock);
    for (int i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat *e = &repeats[i];
        if (e->count > 0 && (all || now - e->since >= window)) repeat_flush(e, now);
    }
    pthread_mutex_unlock(&repeats_lock);
}
