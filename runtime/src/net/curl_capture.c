/* curl_capture.c: libcurl helpers shared by the runtime's HTTP clients (curl_capture.h). */
#include "curl_capture.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init_once(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

int lunnel_net_curl_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
    return curl_ok ? 0 : -1;
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
