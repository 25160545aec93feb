/* bytesize.c: the one byte-size parser (rules in lunnel/bytesize.h). */
#include "lunnel/bytesize.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *unit;
    double mult;
} units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1024.0},
    {"kib", 1024.0},
    {"kb", 1e3},
    {"m", 1048576.0},
    {"mib", 1048576.0},
    {"mb", 1e6},
    {"g", 1073741824.0},
    {"gib", 1073741824.0},
    {"gb", 1e9},
    {"t", 1099511627776.0},
    {"tib", 1099511627776.0},
    {"tb", 1e12},
};

int lunnel_bytes_parse(const char *s, uint64_t *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || s[0] == '.')) return -1;
    /* digits and at most one '.', no exponent or hex forms strtod would take */
    size_t n = 0;
    int dots = 0;
    while (isdigit((unsigned char)s[n]) || (s[n] == '.' && !dots++))
        n++;
    char num[64];
    if (n == 0 || n >= sizeof num) return -1;
    memcpy(num, s, n);
    num[n] = 0;
    char *end;
    double v = strtod(num, &end);
    if (*end || !isfinite(v) || v < 0) return -1;
    const char *u = s + n;
    while (*u == ' ')
        u++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(u, units[i].unit) != 0) continue;
        double b = v * units[i].mult;
        if (b >= 9223372036854775808.0 || b != floor(b)) return -1;
        *out = (uint64_t)b;
        return 0;
    }
    return -1;
}
