/* fmt.h -- decimal numbers and short strings written into a buffer, for
 * the lines built on every request (command lines toward a server, VALUE
 * lines toward a client), where snprintf's format parsing showed in the
 * profile.
 *
 * Each function writes at out and returns the bytes written, with no NUL;
 * the caller sizes out (FMT_U64_MAX per number).
 */
#ifndef GW_FMT_H
#define GW_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FMT_U64_MAX 20   /* 18446744073709551615 */

static inline size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[FMT_U64_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static inline size_t fmt_i64(char *out, int64_t v)
{
    if (v >= 0) return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

static inline size_t fmt_mem(char *out, const void *s, size_t n)
{
    memcpy(out, s, n);
    return n;
}

/* " " then v: the fields of a command line. */
static inline size_t fmt_sp_u64(char *out, uint64_t v)
{
    out[0] = ' ';
    return 1 + fmt_u64(out + 1, v);
}

static inline size_t fmt_sp_i64(char *out, int64_t v)
{
    out[0] = ' ';
    return 1 + fmt_i64(out + 1, v);
}

#endif
