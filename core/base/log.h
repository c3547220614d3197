/* log.h -- leveled logging to stderr with file:line.
 *
 * log_level is process-wide and set once at start-up (-v raises it).  Each
 * line is written with one write(2), so lines from worker threads do not
 * interleave.  LOG_DEBUG compiles to nothing unless GW_DEBUG is defined.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_VERBOSE, LOG_LVL_DEBUG };

extern int log_level;

/* A message fit for a client: every file path in it ("/srv/gw/routes.lua:12:")
 * keeps only its file name ("routes.lua:12:").  The log keeps whole paths;
 * a client has no business learning the server's directories.  In place. */
void log_strip_dirs(char *msg);

void log_write(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_AT(lvl, ...)                                                       \
    do {                                                                       \
        if ((lvl) <= log_level) log_write((lvl), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_VERBOSE(...) LOG_AT(LOG_LVL_VERBOSE, __VA_ARGS__)
#ifdef GW_DEBUG
#define LOG_DEBUG(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)
#else
#define LOG_DEBUG(...) do { } while (0)
#endif

#endif
