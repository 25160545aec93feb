/* curl_capture.c: response capture helpers for the libcurl callbacks (curl_capture.h). */
#include "curl_capture.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lunnel_net_capture_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

int lunnel_net_capture_header(const char *line, size_t len, const char *prefix, char *out,
                              size_t outlen)
{
    size_t pl = strlen(prefix);
    if (len <= pl || strncasecmp(line, prefix, pl) != 0) return 0;
    const char *v = line + pl;
    size_t vl = len - pl;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= outlen) vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return 1;
}
