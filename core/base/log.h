/* log.h -- leveled logging to stderr with file:line, and rate limiting of
 * repeated errors.
 *
 * Line format:
 *   2026-12-02T13:04:05.123Z WARN backend.c:240: pool main server 10.0.0.1:11211: ...
 * an ISO 8601 UTC date and time (milliseconds, "Z"), the level, the call
 * site, the message.  A message with line breaks (a Lua traceback) becomes
 * one line per part, each with the same prefix.  Everything one call logs
 * is written with one write(2), so lines from worker threads do not
 * interleave.
 *
 * log_level is process-wide and set once at start-up (-v raises it); a
 * message above it costs one comparison (its arguments are not evaluated).
 * LOG_DEBUG compiles to nothing unless GW_DEBUG is defined.
 *
 * Rate limiting (LOG_*_LIMIT): for errors that can repeat per request or
 * per connect (a server down, a route that fails).  Occurrences are keyed
 * by their call site (file:line) and a topic the caller names: what fails
 * (a server's label, a route and where its Lua error was raised); with
 * topic NULL, the formatted message.  The first occurrence of a key is
 * logged; the ones in the log_repeat_window seconds after it are only
 * counted (not even formatted).  The count is then logged as one line,
 *   ... WARN backend.c:240: repeated 498 times in the last 10 s: <the first line's start>
 * by whichever comes first: the next occurrence after the window (which
 * is logged in full and starts a new window), log_flush_repeats (the main
 * thread calls it about once a second), or log_flush_repeats(true) at
 * exit.  N counts the lines not logged, so the first line plus N is every
 * occurrence.  A counted occurrence costs a hash of the topic and the
 * mutex of a small process-wide table; with a topic, the macros do not
 * even evaluate the message's arguments (so they may be calls that format
 * a request, or a traceback), and the topic expression is evaluated twice
 * (keep it free of side effects).  Only errors that are logged or counted
 * take the mutex.  When the table is full
 * the oldest key is flushed and reused, so a flood of ever-new topics is
 * logged rather than lost (name topics that do not hold a key or a client).
 *
 * Thread safety: every function may be called from any thread, except
 * log_set_repeat_window (at start-up, before the threads).
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_VERBOSE, LOG_LVL_DEBUG };

extern int log_level;

/* Seconds a repeated error is counted rather than logged. */
#define LOG_REPEAT_WINDOW 10.0

/* Set the window (seconds > 0); the default is LOG_REPEAT_WINDOW. */
void log_set_repeat_window(double seconds);
double log_repeat_window(void);

/* A message fit for a client: every file path in it ("/srv/gw/routes.lua:12:")
 * keeps only its file name ("routes.lua:12:"): a word naming a Lua file, a
 * path with a line ("/etc/gw/users:3:") or an absolute path before a colon
 * ("/etc/gw/users:").  The log keeps whole paths; a client has no business
 * learning the server's directories.  In place. */
void log_strip_dirs(char *msg);

void log_write(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* As log_write, rate limited by (file, line, topic); see above. */
void log_limited(int level, const char *file, int line, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The macros' look before formatting: false if (file, line, topic) is in its
 * window, and then the occurrence is counted; true if log_limited is to
 * decide (topic NULL: always). */
bool log_admit(const char *file, int line, const char *topic);
/* Log the counts of repeated errors whose window is over (all: every count,
 * window over or not, as at exit). */
void log_flush_repeats(bool all);

#define LOG_AT(lvl, ...)                                                       \
    do {                                                                       \
        if ((lvl) <= log_level) log_write((lvl), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)
#define LOG_LIMIT_AT(lvl, topic, ...)                                          \
    do {                                                                       \
        if ((lvl) <= log_level && log_admit(__FILE__, __LINE__, (topic)))      \
            log_limited((lvl), __FILE__, __LINE__, (topic), __VA_ARGS__);      \
    } while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_VERBOSE(...) LOG_AT(LOG_LVL_VERBOSE, __VA_ARGS__)
#define LOG_ERROR_LIMIT(topic, ...) LOG_LIMIT_AT(LOG_LVL_ERROR, (topic), __VA_ARGS__)
#define LOG_WARN_LIMIT(topic, ...) LOG_LIMIT_AT(LOG_LVL_WARN, (topic), __VA_ARGS__)
#ifdef GW_DEBUG
#define LOG_DEBUG(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)
#else
#define LOG_DEBUG(...) do { } while (0)
#endif

#endif
