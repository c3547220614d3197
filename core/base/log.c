/* log.c -- see log.h. */
#define _GNU_SOURCE /* memmem */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_LVL_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "VERBOSE", "DEBUG" };

static bool is_delim(char c)
{
    return c == ' ' || c == '\t' || c == '\'' || c == '"' || c == '(' || c == '\0';
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
        /* A word naming a Lua file keeps what follows its last '/'. */
        const char *lua = memmem(in, (size_t)(end - in), ".lua", 4);
        const char *from = in;
        for (const char *p = in; lua && p < lua; p++)
            if (*p == '/') from = p + 1;
        memmove(out, from, (size_t)(end - from));
        out += end - from;
        in = end;
    }
    *out = 0;
}

void log_write(int level, const char *file, int line, const char *fmt, ...)
{
    char msg[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(msg, sizeof msg, "%02d:%02d:%02d.%03d %s %s:%d: ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     level_names[level], base, line);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof msg - 2) n = (int)sizeof msg - 2;
    msg[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
    (void)w;
}
