/* tunnel_http_client.h: a minimal blocking HTTP client of lunnel-emulator for tests and the
 * ReadRecords benchmark: signed POSTs (lunnel/sign.h, PROTOCOL.md section 1) over one
 * keep-alive libcurl handle. Header-only; include once per program. */
#ifndef TUNNEL_HTTP_CLIENT_H
#define TUNNEL_HTTP_CLIENT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "lunnel/sign.h"

typedef struct th_client {
    CURL *curl;
    int port;
    const char *ak, *secret, *instance;
    uint8_t *buf; /* last response body (owned; reused) */
    size_t len, cap;
} th_client;

static size_t th_write(char *p, size_t sz, size_t n, void *ud)
{
    th_client *c = ud;
    size_t add = sz * n;
    if (c->len + add > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + add)
            cap *= 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b) return 0;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, add);
    c->len += add;
    return add;
}

static inline int th_init(th_client *c, int port)
{
    memset(c, 0, sizeof *c);
    c->curl = curl_easy_init();
    c->port = port;
    c->ak = "lunnel-ak";
    c->secret = "lunnel-secret";
    c->instance = "lunnel";
    return c->curl ? 0 : -1;
}

static inline void th_free(th_client *c)
{
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

/* POSTs body to path; returns the HTTP status (0 when the connection failed or was
 * dropped). The body is in c->buf / c->len until the next call. */
static inline int th_post(th_client *c, const char *path, const void *body, size_t len)
{
    char url[256], date[LUNNEL_DATE_LEN], md5[LUNNEL_MD5_B64_LEN], sig[LUNNEL_SIGN_B64_LEN];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lunnel_sign_format_date((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, date);
    lunnel_sign_content_md5(body, len, md5);
    const char *apiver = strncmp(path, "/tunnel/", 8) == 0 ? "2018-04-01" : "2015-12-31";
    lunnel_header hs[5] = {{"x-ots-date", date},
                           {"x-ots-apiversion", apiver},
                           {"x-ots-accesskeyid", c->ak},
                           {"x-ots-instancename", c->instance},
                           {"x-ots-contentmd5", md5}};
    if (lunnel_sign_request(c->secret, path, hs, 5, sig) != 0) return 0;
    struct curl_slist *h = NULL;
    char line[256];
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof line, "%s: %s", hs[i].name, hs[i].value);
        h = curl_slist_append(h, line);
    }
    snprintf(line, sizeof line, "x-ots-signature: %s", sig);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Content-Type: application/x-protobuf");
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", c->port, path);
    c->len = 0;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, len ? body : "");
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, th_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c->curl);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return (int)status;
}

/* POSTs a JSON string to /_emulator/<action>; returns the status; reply JSON in c->buf
 * (NUL-terminated). */
static inline int th_admin(th_client *c, const char *action, const char *json)
{
    char path[128];
    snprintf(path, sizeof path, "/_emulator/%s", action);
    int st = th_post(c, path, json, strlen(json));
    th_write("", 1, 1, c); /* NUL */
    c->len--;
    return st;
}

#endif
