/* http.c: libcurl multi on libev (http.h). The shape follows curl's evhiperfifo example:
 * curl tells us which sockets to watch (sock_cb) and when to wake it (timer_cb); libev
 * calls back into curl (on_io, on_timeout) and we then collect finished transfers
 * (check_done). Never call curl from inside timer_cb; a timeout of -1 stops our timer.
 * Each call owns its easy handle, header list, body copy and response buffer until its
 * user callback has returned.
 *
 * Bounds: at most max_connections attempts are in curl at once; further calls wait in one
 * FIFO per class without an easy handle (created when the call leaves the queue), so ten
 * thousand waiting calls cost a few hundred bytes each and no fd. Fair: each channel has a
 * call or two outstanding, so channels take turns; and the calls of running channels
 * (ReadRecords, Checkpoint) get three slots out of four while channel starts
 * (GetCheckpoint) wait, so fifty thousand starting channels do not stall the running ones. Control
 * calls (Connect, Heartbeat, Shutdown) skip the queue: a flood of GetCheckpoints must not starve
 * the heartbeat. libcurl's own CURLMOPT_MAX_TOTAL_CONNECTIONS caps sockets (cache included) at the
 * same numbers. A body is refused before any byte is read when its declared Content-Length exceeds
 * the per-response cap, and a 2xx body is checked against the response's x-ots-contentmd5 when
 * present (a mismatch is a transport error: retried like a cut connection). */
#include "lunnel/http.h"

#include <curl/curl.h>
#include <ev.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/buf.h"
#include "lunnel/log.h"
#include "lunnel/sign.h"
#include "lunnel/timeutil.h"

#include "curl_capture.h"

#define DEFAULT_TIMEOUT_S 60.0
#define DEFAULT_CONNECT_TIMEOUT_S 10.0
#define DEFAULT_MAX_RESPONSE (64u << 20)
#define DEFAULT_MAX_CONNECTIONS 32
#define PRIORITY_EXTRA_CONNECTIONS 4

enum req_state {
    REQ_QUEUED,     /* waiting for a free slot (no easy handle yet) */
    REQ_IN_CURL,    /* easy handle added to the multi */
    REQ_WAIT_RETRY, /* backoff timer running */
    REQ_WAIT_CREDS, /* credentials refresh running (after OTSAuthFailed) */
    REQ_DELIVER,    /* zero timer armed to deliver an immediate failure */
};

struct lunnel_http_request {
    lunnel_http *h;
    struct ev_loop *loop;             /* == h->loop, kept so a detached call can be freed after h */
    lunnel_http_request *prev, *next; /* in h->reqs */
    char path[48];
    char api_version[16];
    uint8_t *body;
    size_t body_len;
    lunnel_retry_policy policy;
    double start_ms;
    int attempts;
    int auth_refreshed;
    int cancelled_waiting; /* cancelled while REQ_WAIT_CREDS: free when creds call back */
    enum req_state state;
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    uint8_t *resp;
    size_t resp_len, resp_cap;
    int too_big;
    int priority;               /* a control call: never queued */
    int qclass;                 /* QCLASS_*: which wait FIFO */
    int active;                 /* counted in h->active */
    char md5[32];               /* x-ots-contentmd5 of the response, "" when absent */
    lunnel_http_request *qnext; /* h's wait FIFO */
    char request_id[96];
    char trace_id[64];
    lunnel_error err;
    ev_timer timer;
    lunnel_http_cb cb;
    void *ud;
};

struct lunnel_http {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer; /* curl's timeout */
    lunnel_credentials *creds;
    const lunnel_http_protocol *protocol; /* installed by the user (tunnel); NULL: none */
    char *base;                           /* endpoint without trailing '/' */
    char *instance;
    char *ca_file;
    double timeout_s, connect_timeout_s;
    size_t max_response;
    lunnel_http_request *reqs;
    int n_reqs;
    lunnel_http_stats stats;
    int max_active;
    lunnel_http_request *wait_head[2], *wait_tail[2]; /* by QCLASS_* */
    unsigned turn;                                    /* round robin between the classes */
};

enum { QCLASS_DATA = 0, QCLASS_START = 1 };

/* Per-socket watcher handed to curl via curl_multi_assign. */
typedef struct {
    ev_io io;
    lunnel_http *h;
} sock_watch;

static void check_done(lunnel_http *h);
static void start_attempt(lunnel_http_request *r);

/* ---- curl <-> libev glue ---- */

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_http *h = w->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    lunnel_http *h = userp;
    ev_timer_stop(h->loop, &h->timer);
    if (timeout_ms >= 0) {
        /* 0 means "now": still go through the loop, never call curl from here. */
        ev_timer_set(&h->timer, timeout_ms / 1000.0, 0.);
        ev_timer_start(h->loop, &h->timer);
    }
    return 0;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    /* Copy what we need first: socket_action may remove and free this watcher. */
    sock_watch *sw = (sock_watch *)w;
    lunnel_http *h = sw->h;
    int fd = w->fd;
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, fd, action, &running);
    check_done(h);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    lunnel_http *h = userp;
    sock_watch *sw = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sw) {
            ev_io_stop(h->loop, &sw->io);
            free(sw);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (!sw) {
        sw = calloc(1, sizeof *sw);
        if (!sw) return -1;
        sw->h = h;
        curl_multi_assign(h->multi, s, sw);
    } else {
        ev_io_stop(h->loop, &sw->io);
    }
    int ev = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    ev_io_init(&sw->io, on_io, s, ev);
    ev_io_start(h->loop, &sw->io);
    return 0;
}

/* ---- request bookkeeping ---- */

static void link_req(lunnel_http *h, lunnel_http_request *r)
{
    r->next = h->reqs;
    if (h->reqs) h->reqs->prev = r;
    h->reqs = r;
    h->n_reqs++;
}

static void unlink_req(lunnel_http_request *r)
{
    lunnel_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else if (h->reqs == r)
        h->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->n_reqs--;
}

static void queue_remove(lunnel_http_request *r)
{
    lunnel_http *h = r->h;
    lunnel_http_request **p = &h->wait_head[r->qclass], *prev = NULL;
    while (*p && *p != r) {
        prev = *p;
        p = &(*p)->qnext;
    }
    if (!*p) return;
    *p = r->qnext;
    if (h->wait_tail[r->qclass] == r) h->wait_tail[r->qclass] = prev;
    r->qnext = NULL;
    h->stats.queued--;
}

/* Leaves the slot count and the download accounting (idempotent). */
static void release_slot(lunnel_http_request *r)
{
    lunnel_http *h = r->h;
    if (!r->active) return;
    r->active = 0;
    h->stats.active--;
    h->stats.downloading -= r->resp_len;
}

static void end_attempt(lunnel_http_request *r)
{
    if (r->state == REQ_IN_CURL && r->easy) curl_multi_remove_handle(r->h->multi, r->easy);
    if (r->state == REQ_QUEUED) queue_remove(r);
    release_slot(r);
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

static void free_req(lunnel_http_request *r)
{
    ev_timer_stop(r->loop, &r->timer);
    if (!r->cancelled_waiting) end_attempt(r);
    if (r->easy) curl_easy_cleanup(r->easy);
    free(r->body);
    free(r->resp);
    free(r);
}

/* Hands the outcome to the user and frees the call. */
static void deliver(lunnel_http_request *r, int ok)
{
    lunnel_http *h = r->h;
    end_attempt(r);
    ev_timer_stop(h->loop, &r->timer);
    unlink_req(r);
    r->err.attempts = r->attempts;
    if (!r->err.trace_id[0]) snprintf(r->err.trace_id, sizeof r->err.trace_id, "%s", r->trace_id);
    snprintf(r->err.path, sizeof r->err.path, "%s", r->path);
    if (!ok && !r->err.request_id[0])
        snprintf(r->err.request_id, sizeof r->err.request_id, "%s", r->request_id);
    lunnel_http_response resp = {
        .err = ok ? NULL : &r->err,
        .status = r->err.http_status,
        .request_id = r->request_id,
        .trace_id = r->trace_id,
        .body = ok ? r->resp : NULL,
        .body_len = ok ? r->resp_len : 0,
        .attempts = r->attempts,
    };
    if (ok) r->resp = NULL; /* now owned by resp until the callback returns */
    r->cb(&resp, r->ud);
    free(resp.body);
    free_req(r);
}

static void on_req_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lunnel_http_request *r = w->data;
    if (r->state == REQ_DELIVER)
        deliver(r, 0);
    else if (r->state == REQ_WAIT_RETRY)
        start_attempt(r);
}

static void deliver_later(lunnel_http_request *r)
{
    r->state = REQ_DELIVER;
    ev_timer_stop(r->h->loop, &r->timer);
    ev_timer_set(&r->timer, 0., 0.);
    ev_timer_start(r->h->loop, &r->timer);
}

/* ---- one attempt ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    lunnel_http_request *r = ud;
    size_t n = size * nmemb;
    if (r->resp_len + n > r->h->max_response) {
        r->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (lunnel_vec_reserve(&r->resp, &r->resp_cap, r->resp_len + n, 4096) != 0) return 0;
    memcpy(r->resp + r->resp_len, ptr, n);
    r->resp_len += n;
    if (r->active) r->h->stats.downloading += n;
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    lunnel_http_request *r = ud;
    size_t n = size * nmemb;
    lunnel_net_capture_header(ptr, n, "x-ots-requestid:", r->request_id, sizeof r->request_id);
    lunnel_net_capture_header(ptr, n, "x-ots-contentmd5:", r->md5, sizeof r->md5);
    char cl[32] = "";
    lunnel_net_capture_header(ptr, n, "content-length:", cl, sizeof cl);
    if (cl[0]) {
        /* refuse an oversized body before reading any of it */
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && v > r->h->max_response) {
            r->too_big = 1;
            return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
    }
    return n;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[4400];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n) return -1;
    *list = n;
    return 0;
}

/* Builds the signed header list for this attempt (date and key as of now). */
static int build_headers(lunnel_http_request *r)
{
    lunnel_http *h = r->h;
    lunnel_cred_snapshot cred;
    lunnel_credentials_get(h->creds, &cred);
    char date[LUNNEL_DATE_LEN], md5[LUNNEL_MD5_B64_LEN], sig[LUNNEL_SIGN_B64_LEN];
    lunnel_sign_format_date(lunnel_time_now_ms(), date);
    lunnel_sign_content_md5(r->body, r->body_len, md5);
    lunnel_header hs[8];
    size_t n = 0;
    hs[n++] = (lunnel_header){"x-ots-date", date};
    hs[n++] = (lunnel_header){"x-ots-apiversion", r->api_version};
    hs[n++] = (lunnel_header){"x-ots-accesskeyid", cred.access_key_id};
    hs[n++] = (lunnel_header){"x-ots-instancename", h->instance};
    hs[n++] = (lunnel_header){"x-ots-contentmd5", md5};
    if (cred.security_token[0]) hs[n++] = (lunnel_header){"x-ots-ststoken", cred.security_token};
    hs[n++] = (lunnel_header){"x-ots-trace-id", r->trace_id};
    int rc = lunnel_sign_request(cred.access_key_secret, r->path, hs, n, sig);
    memset(cred.access_key_secret, 0, sizeof cred.access_key_secret);
    if (rc != 0) return -1;
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < n; i++)
        rc |= add_header(&list, hs[i].name, hs[i].value);
    rc |= add_header(&list, "x-ots-signature", sig);
    /* No "Expect: 100-continue" round trip; no curl default content type. */
    struct curl_slist *t = curl_slist_append(list, "Expect:");
    if (t)
        list = t;
    else
        rc = -1;
    t = curl_slist_append(list, "Content-Type: application/x.pb2");
    if (t)
        list = t;
    else
        rc = -1;
    if (rc) {
        curl_slist_free_all(list);
        return -1;
    }
    r->headers = list;
    return 0;
}

static int setup_easy(lunnel_http_request *r);
static void pump_queue(lunnel_http *h);

static void start_attempt(lunnel_http_request *r)
{
    lunnel_http *h = r->h;
    if (!r->priority && h->stats.active >= h->max_active) {
        /* wait for a slot; the FIFO is pumped when an attempt leaves curl */
        r->state = REQ_QUEUED;
        r->qnext = NULL;
        int q = r->qclass;
        if (h->wait_tail[q])
            h->wait_tail[q]->qnext = r;
        else
            h->wait_head[q] = r;
        h->wait_tail[q] = r;
        h->stats.queued++;
        return;
    }
    if (!r->easy && setup_easy(r) != 0) {
        lunnel_error_set(&r->err, LUNNEL_NET_NOMEM, "curl_easy_init failed");
        deliver_later(r);
        return;
    }
    r->attempts++;
    h->stats.attempts++;
    if (r->attempts > 1) h->stats.retries++;
    r->resp_len = 0;
    r->too_big = 0;
    r->md5[0] = '\0';
    r->request_id[0] = '\0';
    r->errbuf[0] = '\0';
    lunnel_error_clear(&r->err);
    if (build_headers(r) != 0) {
        lunnel_error_set(&r->err, LUNNEL_NET_INVALID,
                         "cannot sign the request (credentials or headers)");
        deliver_later(r);
        return;
    }
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    r->state = REQ_IN_CURL;
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        r->state = REQ_DELIVER;
        lunnel_error_set(&r->err, LUNNEL_NET_NOMEM, "curl_multi_add_handle failed");
        deliver_later(r);
        return;
    }
    r->active = 1;
    h->stats.active++;
    if (h->stats.active > h->stats.peak_active) h->stats.peak_active = h->stats.active;
}

/* Starts waiting calls while slots are free (FIFO order within a class; starts get every
 * fourth slot while calls of running channels wait). */
static void pump_queue(lunnel_http *h)
{
    while ((h->wait_head[0] || h->wait_head[1]) && h->stats.active < h->max_active) {
        int q = !h->wait_head[QCLASS_DATA] || (h->wait_head[QCLASS_START] && (h->turn++ & 3) == 3)
                    ? QCLASS_START
                    : QCLASS_DATA;
        lunnel_http_request *r = h->wait_head[q];
        h->wait_head[q] = r->qnext;
        if (!h->wait_head[q]) h->wait_tail[q] = NULL;
        r->qnext = NULL;
        h->stats.queued--;
        start_attempt(r);
    }
}

static void on_creds_refreshed(int ok, const lunnel_error *err, void *ud)
{
    lunnel_http_request *r = ud;
    if (r->cancelled_waiting) {
        free_req(r);
        return;
    }
    if (!ok) {
        /* Keep the server's OTSAuthFailed as the error, noting the refresh failure. */
        size_t l = strlen(r->err.message);
        snprintf(r->err.message + l, sizeof r->err.message - l,
                 "%s(credentials refresh failed: %s)", l ? " " : "", err ? err->message : "?");
        deliver(r, 0);
        return;
    }
    r->h->stats.auth_refreshes++;
    start_attempt(r);
}

/* Fills r->err from a finished attempt; returns 1 on success. */
static int classify_attempt(lunnel_http_request *r, CURLcode cc)
{
    lunnel_error *e = &r->err;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    long conns = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
        r->h->stats.connections += (uint64_t)conns;
    e->http_status = (int)status;
    snprintf(e->request_id, sizeof e->request_id, "%s", r->request_id);
    if (cc != CURLE_OK) {
        const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT:
            lunnel_error_set(e, LUNNEL_NET_TIMEOUT, "%s", detail);
            break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            lunnel_error_set(e, LUNNEL_NET_TLS, "TLS certificate verification failed: %s", detail);
            break;
        case CURLE_WRITE_ERROR:
            if (r->too_big) {
                lunnel_error_set(e, LUNNEL_NET_BAD_RESPONSE, "response larger than %zu bytes",
                                 r->h->max_response);
                break;
            }
            /* fallthrough */
        default:
            lunnel_error_set(e, LUNNEL_NET_TRANSPORT, "%s", detail);
            break;
        }
        e->http_status = 0;
        return 0;
    }
    if (status >= 200 && status < 300) {
        if (r->md5[0]) {
            /* a body cut at a field boundary still parses: only the digest tells */
            char got[LUNNEL_MD5_B64_LEN];
            lunnel_sign_content_md5(r->resp, r->resp_len, got);
            if (strcmp(got, r->md5) != 0) {
                r->h->stats.md5_mismatches++;
                lunnel_error_set(e, LUNNEL_NET_TRANSPORT,
                                 "response body (%zu bytes) does not match its x-ots-contentmd5",
                                 r->resp_len);
                e->http_status = 0;
                return 0;
            }
        }
        return 1;
    }
    e->kind = LUNNEL_NET_SERVER;
    const lunnel_http_protocol *proto = r->h->protocol;
    if (!proto || !proto->parse_error || !proto->parse_error(r->resp, r->resp_len, e))
        snprintf(e->message, sizeof e->message, "%s response without a parseable error body",
                 status >= 500 ? "server" : "client");
    return 0;
}

/* The installed protocol decides; without one only failures before any reply are retried. */
static int attempt_retriable(const lunnel_http *h, const lunnel_error *e)
{
    if (h->protocol && h->protocol->retriable) return h->protocol->retriable(e);
    return e->kind == LUNNEL_NET_TRANSPORT || e->kind == LUNNEL_NET_TIMEOUT;
}

static void finish_attempt(lunnel_http_request *r, CURLcode cc)
{
    lunnel_http *h = r->h;
    int ok = classify_attempt(r, cc);
    curl_multi_remove_handle(h->multi, r->easy);
    release_slot(r);
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    r->state = REQ_DELIVER; /* out of the multi now */
    if (ok) {
        deliver(r, 1);
        return;
    }
    lunnel_error *e = &r->err;
    if (e->kind == LUNNEL_NET_SERVER && strcmp(e->code, "OTSAuthFailed") == 0 &&
        !r->auth_refreshed && lunnel_credentials_refreshable(h->creds)) {
        r->auth_refreshed = 1;
        lunnel_log_kv(LUNNEL_LOG_WARN, "http", "OTSAuthFailed: refreshing credentials once", "path",
                      r->path, "request_id", r->request_id, NULL);
        r->state = REQ_WAIT_CREDS;
        if (lunnel_credentials_refresh(h->creds, on_creds_refreshed, r) == 0) return;
        r->state = REQ_DELIVER;
    }
    if (attempt_retriable(h, e)) {
        int retry = r->attempts - 1;
        double delay = lunnel_retry_delay_ms(&r->policy, retry, lunnel_retry_rand01());
        double elapsed = lunnel_time_mono_ms() - r->start_ms;
        if (lunnel_retry_allowed(&r->policy, elapsed, delay)) {
            char a[16], d[32];
            snprintf(a, sizeof a, "%d", r->attempts + 1); /* the attempt about to be made */
            snprintf(d, sizeof d, "%.0f", delay);
            /* from the third attempt on a long retry window shows progress (an interactive
             * command must not sit silent for half a minute); one line per backoff step */
            char last[600];
            snprintf(last, sizeof last, "%s%s%s",
                     e->code[0] ? e->code : lunnel_net_code_str(e->kind), e->message[0] ? ": " : "",
                     e->message);
            lunnel_log_kv(r->attempts + 1 >= 3 ? LUNNEL_LOG_WARN : LUNNEL_LOG_DEBUG, "http",
                          "retrying", "path", r->path, "attempt", a, "delay_ms", d, "error", last,
                          "request_id", r->request_id, NULL);
            r->state = REQ_WAIT_RETRY;
            ev_timer_set(&r->timer, delay / 1000.0, 0.);
            ev_timer_start(h->loop, &r->timer);
            return;
        }
    }
    r->state = REQ_DELIVER;
    deliver(r, 0);
}

static void check_done(lunnel_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        lunnel_http_request *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode cc = m->data.result;
        if (r) finish_attempt(r, cc);
    }
    pump_queue(h);
}

/* ---- public ---- */

lunnel_http *lunnel_http_new(struct ev_loop *loop, const lunnel_http_config *cfg,
                             lunnel_credentials *creds, lunnel_error *err)
{
    lunnel_error_clear(err);
    if (!cfg->endpoint ||
        (strncmp(cfg->endpoint, "http://", 7) != 0 && strncmp(cfg->endpoint, "https://", 8) != 0)) {
        lunnel_error_set(err, LUNNEL_NET_INVALID,
                         "endpoint \"%.200s\" must start with http:// or https://",
                         cfg->endpoint ? cfg->endpoint : "");
        return NULL;
    }
    if (!cfg->instance || !*cfg->instance) {
        lunnel_error_set(err, LUNNEL_NET_INVALID, "instance name is empty");
        return NULL;
    }
    if (!creds) {
        lunnel_error_set(err, LUNNEL_NET_CREDENTIALS, "no credentials");
        return NULL;
    }
    if (lunnel_net_curl_global_init() != 0) {
        lunnel_error_set(err, LUNNEL_NET_TRANSPORT, "curl_global_init failed");
        return NULL;
    }
    lunnel_http *h = calloc(1, sizeof *h);
    if (!h) {
        lunnel_error_set(err, LUNNEL_NET_NOMEM, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->creds = creds;
    h->base = strdup(cfg->endpoint);
    h->instance = strdup(cfg->instance);
    h->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    h->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
    h->connect_timeout_s =
        cfg->connect_timeout_s > 0 ? cfg->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S;
    h->max_response = cfg->max_response_bytes ? cfg->max_response_bytes : DEFAULT_MAX_RESPONSE;
    h->max_active = cfg->max_connections > 0 ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
    h->multi = curl_multi_init();
    if (!h->base || !h->instance || (cfg->ca_file && !h->ca_file) || !h->multi) {
        lunnel_error_set(err, LUNNEL_NET_NOMEM, "out of memory");
        lunnel_http_free(h);
        return NULL;
    }
    size_t bl = strlen(h->base);
    while (bl > 0 && h->base[bl - 1] == '/')
        h->base[--bl] = '\0';
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    long maxconn = h->max_active + PRIORITY_EXTRA_CONNECTIONS;
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxconn);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, maxconn);
    ev_timer_init(&h->timer, on_timeout, 0., 0.);
    h->timer.data = h;
    return h;
}

void lunnel_http_set_protocol(lunnel_http *h, const lunnel_http_protocol *p)
{
    h->protocol = p;
}

void lunnel_http_free(lunnel_http *h)
{
    if (!h) return;
    while (h->reqs) {
        lunnel_http_request *r = h->reqs;
        if (r->state == REQ_WAIT_CREDS) {
            /* The credentials callback still holds r: detach it, it frees r later. */
            unlink_req(r);
            r->cancelled_waiting = 1;
            lunnel_http_cb cb = r->cb;
            void *ud = r->ud;
            lunnel_error e = r->err;
            e.kind = LUNNEL_NET_CANCELLED;
            snprintf(e.message, sizeof e.message, "client closed");
            lunnel_http_response resp = {.err = &e, .trace_id = r->trace_id, .request_id = ""};
            end_attempt(r);
            if (r->easy) {
                curl_easy_cleanup(r->easy);
                r->easy = NULL;
            }
            ev_timer_stop(h->loop, &r->timer);
            cb(&resp, ud);
            continue;
        }
        lunnel_error_clear(&r->err);
        lunnel_error_set(&r->err, LUNNEL_NET_CANCELLED, "client closed");
        deliver(r, 0);
    }
    ev_timer_stop(h->loop, &h->timer);
    if (h->multi) curl_multi_cleanup(h->multi);
    free(h->base);
    free(h->instance);
    free(h->ca_file);
    free(h);
}

static void make_trace_id(char out[64])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)(lunnel_retry_rand01() * 256);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 64, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* The call's easy handle, made when it first leaves the queue (kept across retries). */
static int setup_easy(lunnel_http_request *r)
{
    lunnel_http *h = r->h;
    r->easy = curl_easy_init();
    if (!r->easy) return -1;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", h->base, r->path);
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? (char *)r->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(h->timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(h->connect_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file) {
        /* Trust that bundle only: drop the distribution's CA directory too. */
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "lunnel/0.1");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    return 0;
}

lunnel_http_request *lunnel_http_post(lunnel_http *h, const char *path, const void *body,
                                      size_t len, const char *api_version,
                                      const lunnel_retry_policy *retry, lunnel_http_cb cb, void *ud)
{
    lunnel_http_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->h = h;
    r->loop = h->loop;
    r->cb = cb;
    r->ud = ud;
    r->policy = retry ? *retry : lunnel_retry_none;
    r->start_ms = lunnel_time_mono_ms();
    make_trace_id(r->trace_id);
    ev_timer_init(&r->timer, on_req_timer, 0., 0.);
    r->timer.data = r;
    link_req(h, r);
    int bad = !path || path[0] != '/' || strlen(path) >= sizeof r->path || !api_version ||
              strlen(api_version) >= sizeof r->api_version;
    snprintf(r->path, sizeof r->path, "%s", path ? path : "");
    snprintf(r->api_version, sizeof r->api_version, "%s", api_version ? api_version : "");
    if (bad) {
        lunnel_error_set(&r->err, LUNNEL_NET_INVALID, "bad path or api version");
        deliver_later(r);
        return r;
    }
    if (len) {
        r->body = malloc(len);
        if (!r->body) {
            unlink_req(r);
            free(r);
            return NULL;
        }
        memcpy(r->body, body, len);
    }
    r->body_len = len;
    /* control calls skip the queue (see the top of the file) */
    r->priority = strcmp(r->path, "/tunnel/heartbeat") == 0 ||
                  strcmp(r->path, "/tunnel/connect") == 0 ||
                  strcmp(r->path, "/tunnel/shutdown") == 0;
    r->qclass = strcmp(r->path, "/tunnel/getcheckpoint") == 0 ? QCLASS_START : QCLASS_DATA;
    start_attempt(r);
    return r;
}

void lunnel_http_cancel(lunnel_http_request *r)
{
    if (!r) return;
    if (r->state == REQ_WAIT_CREDS) {
        unlink_req(r);
        r->cancelled_waiting = 1;
        return;
    }
    lunnel_http *h = r->h;
    unlink_req(r);
    free_req(r);
    pump_queue(h); /* its slot may be free now */
}

int lunnel_http_pending(const lunnel_http *h)
{
    return h->n_reqs;
}

void lunnel_http_get_stats(const lunnel_http *h, lunnel_http_stats *out)
{
    *out = h->stats;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    *(int *)w->data = 1;
}

int lunnel_http_run_until(struct ev_loop *loop, const int *done, double timeout_s)
{
    int expired = 0;
    ev_timer t;
    ev_timer_init(&t, on_deadline, timeout_s, 0.);
    t.data = &expired;
    ev_timer_start(loop, &t);
    while (!*done && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    return *done ? 0 : -1;
}
