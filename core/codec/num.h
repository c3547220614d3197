/* num.h -- decimal numbers read from (pointer, length) pairs, for the
 * request parsers (proto.c, meta.c).
 *
 * The read buffer is not NUL-terminated, so strtoull and friends do not
 * apply.  Both functions read the whole of s[0..n) or fail: an optional
 * sign, then one or more digits, nothing else (memcached's safe_strto*
 * also stop at a space, but a token never holds one).  They never write
 * *out on failure.
 */
#ifndef GW_NUM_H
#define GW_NUM_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest data block memcached takes (its bound on <bytes>). */
#define MC_VLEN_MAX ((int64_t)INT_MAX - 2)

/* Unsigned: an optional '+', then digits.  Fails on overflow of uint64_t. */
static inline bool mc_parse_u64(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    if (n && s[0] == '+')
        i = 1;
    if (i >= n)
        return false;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, d, &v))
            return false;
    }
    *out = v;
    return true;
}

/* Signed: an optional '+' or '-', then digits.  Fails outside int64_t. */
static inline bool mc_parse_i64(const char *s, size_t n, int64_t *out)
{
    uint64_t m;
    bool neg = n && s[0] == '-';
    if (neg) {
        if (n < 2 || s[1] == '+' || !mc_parse_u64(s + 1, n - 1, &m))
            return false;
        if (m > (uint64_t)INT64_MAX + 1)
            return false;
        *out = (int64_t)(0 - m);
        return true;
    }
    if (!mc_parse_u64(s, n, &m) || m > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)m;
    return true;
}

/* A storage command's <bytes> (ms: <datalen>): its value, or -1 when it is
 * not a decimal in 0 .. MC_VLEN_MAX (memcached's test). */
static inline int64_t mc_parse_vlen(const char *s, size_t n)
{
    int64_t v;
    if (!mc_parse_i64(s, n, &v) || v < 0 || v > MC_VLEN_MAX)
        return -1;
    return v;
}

#endif
