/* testutil.h: the few assertion macros the C tests share. A failed check prints file:line
 * and the expression, counts a failure and goes on; TEST_DONE() prints the summary line
 * "N passed, N failed" and returns the exit status. */
#ifndef LUNNEL_TESTUTIL_H
#define LUNNEL_TESTUTIL_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tu_passed, tu_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            tu_passed++;                                                                           \
        } else {                                                                                   \
            tu_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a == _b) {                                                                            \
            tu_passed++;                                                                           \
        } else {                                                                                   \
            tu_failed++;                                                                           \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    _a, _b);                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *_a = (a), *_b = (b);                                                           \
        if (_a && _b && strcmp(_a, _b) == 0) {                                                     \
            tu_passed++;                                                                           \
        } else {                                                                                   \
            tu_failed++;                                                                           \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, _a ? _a : "(null)", _b ? _b : "(null)");                                   \
        }                                                                                          \
    } while (0)

#define TEST_DONE()                                                                                \
    do {                                                                                           \
        printf("%d passed, %d failed\n", tu_passed, tu_failed);                                    \
        return tu_failed == 0 ? 0 : 1;                                                             \
    } while (0)

#endif
