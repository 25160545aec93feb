/* sink_http.c: the blocking HTTP client of the Lua sinks (lua/lunnel/sinks/http.lua and
 * tablestore.lua) and the signed headers of a table data API call.
 *
 * Why a C wrapper instead of cdef'ing libcurl in Lua: curl_easy_setopt is variadic with
 * option-dependent argument types (long vs curl_off_t vs pointer), which the FFI cannot check;
 * and capturing the response needs write callbacks, which must not call back into Lua. Here
 * both are plain C. Each lunnel_sink_http owns one easy handle (connection reuse across
 * batches) and is used by one Lua worker thread; the event loop never sees it. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lunnel/buf.h"
#include "lunnel/sign.h"
#include "lunnel/sink_support.h"

#include "net/curl_capture.h"

struct lunnel_sink_http {
    CURL *curl;
    uint8_t *body; /* response body (grown as needed, kept between posts) */
    size_t len, cap;
    int overflow; /* the response did not fit in memory */
    char request_id[128];
    char curl_err[CURL_ERROR_SIZE];
    char err[CURL_ERROR_SIZE + 128];
};

const char *lunnel_sink_strerror(int code)
{
    switch (code) {
    case LUNNEL_SINK_OK:
        return "ok";
    case LUNNEL_SINK_NOMEM:
        return "out of memory";
    case LUNNEL_SINK_USAGE:
        return "usage error";
    case LUNNEL_SINK_ENCODE:
        return "row encoding failed";
    case LUNNEL_SINK_TRANSPORT:
        return "transport error";
    case LUNNEL_SINK_BAD_RESPONSE:
        return "bad response";
    default:
        return "?";
    }
}

lunnel_sink_http *lunnel_sink_http_new(void)
{
    if (lunnel_net_curl_global_init() != 0) return NULL;
    lunnel_sink_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return NULL;
    }
    return h;
}

void lunnel_sink_http_free(lunnel_sink_http *h)
{
    if (!h) return;
    curl_easy_cleanup(h->curl);
    free(h->body);
    free(h);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    lunnel_sink_http *h = ud;
    size_t add = size * n;
    if (lunnel_vec_reserve(&h->body, &h->cap, h->len + add + 1, 4096) != 0) {
        h->overflow = 1;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    memcpy(h->body + h->len, p, add);
    h->len += add;
    h->body[h->len] = 0;
    return add;
}

/* Keeps x-ots-requestid for error messages (the id support asks for). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    lunnel_sink_http *h = ud;
    size_t len = size * n;
    lunnel_net_capture_header(p, len, "x-ots-requestid:", h->request_id, sizeof h->request_id);
    return len;
}

int lunnel_sink_http_post(lunnel_sink_http *h, const char *url, const char *headers,
                          const void *body, size_t len, long timeout_ms, const char *ca_file,
                          long *status_out)
{
    if (!h || !url || (!body && len)) return LUNNEL_SINK_USAGE;
    h->len = 0;
    h->overflow = 0;
    h->request_id[0] = h->curl_err[0] = h->err[0] = 0;
    if (status_out) *status_out = 0;

    struct curl_slist *list = NULL, *nl;
    int rc = LUNNEL_SINK_OK;
    if (headers) {
        const char *p = headers;
        while (*p) {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n) {
                char *line = strndup(p, n);
                nl = line ? curl_slist_append(list, line) : NULL;
                free(line);
                if (!nl) {
                    rc = LUNNEL_SINK_NOMEM;
                    goto out;
                }
                list = nl;
            }
            p += n + (e ? 1 : 0);
        }
    }
    nl = curl_slist_append(list, "Expect:");
    if (!nl) {
        rc = LUNNEL_SINK_NOMEM;
        goto out;
    }
    list = nl;

    CURL *c = h->curl;
    curl_easy_reset(c); /* keeps the connection cache, forgets the previous options */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 60000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms > 0 && timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
    if (ca_file && *ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);

    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(h->err, sizeof h->err, "%s",
                 h->overflow      ? "response too large for memory"
                 : h->curl_err[0] ? h->curl_err
                                  : curl_easy_strerror(cc));
        rc = h->overflow ? LUNNEL_SINK_NOMEM : LUNNEL_SINK_TRANSPORT;
    } else if (status_out) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status_out);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
out:
    curl_slist_free_all(list);
    if (rc == LUNNEL_SINK_NOMEM && !h->err[0]) snprintf(h->err, sizeof h->err, "out of memory");
    return rc;
}

const uint8_t *lunnel_sink_http_body(const lunnel_sink_http *h, size_t *len_out)
{
    if (len_out) *len_out = h ? h->len : 0;
    return h && h->body ? h->body : (const uint8_t *)"";
}

const char *lunnel_sink_http_request_id(const lunnel_sink_http *h)
{
    return h ? h->request_id : "";
}
const char *lunnel_sink_http_error(const lunnel_sink_http *h)
{
    return h ? h->err : "";
}

int lunnel_sink_ots_headers(const char *path, const char *instance, const char *access_key_id,
                            const char *access_key_secret, const char *sts_token, const void *body,
                            size_t len, char *out, size_t cap)
{
    if (!path || !instance || !access_key_id || !access_key_secret || !out || (!body && len))
        return LUNNEL_SINK_USAGE;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char date[LUNNEL_DATE_LEN], md5[LUNNEL_MD5_B64_LEN], sig[LUNNEL_SIGN_B64_LEN];
    lunnel_sign_format_date((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, date);
    lunnel_sign_content_md5(body ? body : "", len, md5);
    int sts = sts_token && *sts_token;
    lunnel_header hs[6] = {
        {"x-ots-date", date},
        {"x-ots-apiversion", "2015-12-31"},
        {"x-ots-accesskeyid", access_key_id},
        {"x-ots-instancename", instance},
        {"x-ots-contentmd5", md5},
        {"x-ots-ststoken", sts ? sts_token : ""},
    };
    size_t nh = sts ? 6 : 5;
    if (lunnel_sign_request(access_key_secret, path, hs, nh, sig) != 0) return LUNNEL_SINK_USAGE;
    size_t used = 0;
    for (size_t i = 0; i < nh; i++) {
        int n = snprintf(used < cap ? out + used : NULL, used < cap ? cap - used : 0, "%s: %s\n",
                         hs[i].name, hs[i].value);
        if (n < 0) return LUNNEL_SINK_USAGE;
        used += (size_t)n;
    }
    int n = snprintf(used < cap ? out + used : NULL, used < cap ? cap - used : 0,
                     "x-ots-signature: %s\nContent-Type: application/x.pb2\n", sig);
    if (n < 0 || used + (size_t)n >= cap) return LUNNEL_SINK_USAGE;
    return LUNNEL_SINK_OK;
}
