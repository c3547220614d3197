/* unit.h -- a minimal unit-test harness for the C tests.
 *
 * Each test file defines test functions and a main() that calls RUN(fn) for
 * each, then returns unit_report().  CHECK records a failure with file:line and
 * goes on; the last line printed is "N passed, N failed" (what CI reads).
 */
#ifndef GW_UNIT_H
#define GW_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed, unit_current_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            unit_current_failed = 1;                                           \
        }                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
    do {                                                                       \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);          \
        if (unit_a_ != unit_b_) {                                              \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",          \
                    __FILE__, __LINE__, #a, #b, unit_a_, unit_b_);             \
            unit_current_failed = 1;                                           \
        }                                                                      \
    } while (0)

#define CHECK_EQ_MEM(p, len, str)                                              \
    do {                                                                       \
        size_t unit_l_ = strlen(str);                                          \
        if ((size_t)(len) != unit_l_ || memcmp((p), (str), unit_l_) != 0) {    \
            fprintf(stderr, "%s:%d: %s: got '%.*s', want '%s'\n", __FILE__,    \
                    __LINE__, #p, (int)(len), (const char *)(p), (str));       \
            unit_current_failed = 1;                                           \
        }                                                                      \
    } while (0)

#define RUN(fn)                                                                \
    do {                                                                       \
        unit_current_failed = 0;                                               \
        fn();                                                                  \
        if (unit_current_failed) {                                             \
            unit_failed++;                                                     \
            fprintf(stderr, "FAIL %s\n", #fn);                                 \
        } else {                                                               \
            unit_passed++;                                                     \
        }                                                                      \
    } while (0)

static inline int unit_report(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, unit_passed, unit_failed);
    return unit_failed ? 1 : 0;
}

#endif
