/* test_server.c: the emulator's HTTP server over a socketpair (lunnel_emu_server_adopt):
 * signed requests reach routes, wrongly signed ones get 403 OTSAuthFailed, unsigned 400,
 * pipelined requests are answered in order even when the first is deferred, dropped
 * connections close without a reply, oversized bodies get 413, admin actions get JSON, and
 * every reply carries x-ots-requestid. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "http/server.h"
#include "lunnel/timeutil.h"
#include "testutil.h"

static struct ev_loop *loop;
static lunnel_emu_config cfg;

static void echo(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    (void)ud;
    lunnel_emu_respond_raw(resp, 200, req->body, req->body_len, NULL);
}

typedef struct later {
    ev_timer t;
    lunnel_emu_response *resp;
} later;

static void later_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)revents;
    later *x = (later *)w;
    ev_timer_stop(l, w);
    lunnel_emu_respond_raw(x->resp, 200, "late", 4, NULL);
    free(x);
}

static void deferred(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    (void)ud;
    (void)req;
    later *x = calloc(1, sizeof *x);
    x->resp = resp;
    lunnel_emu_response_defer(resp);
    ev_timer_init(&x->t, later_cb, 0.02, 0);
    ev_timer_start(loop, &x->t);
}

static void drop(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    (void)ud;
    (void)req;
    lunnel_emu_response_drop(resp);
}

static void ping(void *ud, const cJSON *body, const lunnel_emu_request *req,
                 lunnel_emu_response *resp)
{
    (void)ud;
    (void)req;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(body, "n");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "pong", cJSON_IsNumber(n) ? n->valuedouble + 1 : -1);
    lunnel_emu_respond_json(resp, out);
}

static int lazy_filter(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    (void)ud;
    if (strcmp(req->path, "/filtered") != 0) return 0;
    lunnel_emu_respond_error(resp, 503, "OTSTunnelServerUnavailable", "filtered");
    return 1;
}

/* Builds a signed POST into out; secret NULL: no signature headers at all. */
static size_t build(char *out, size_t cap, const char *path, const char *body, const char *secret)
{
    size_t blen = strlen(body);
    char md5[LUNNEL_MD5_B64_LEN], sig[LUNNEL_SIGN_B64_LEN];
    char date[LUNNEL_DATE_LEN];
    lunnel_sign_content_md5(body, blen, md5);
    lunnel_sign_format_date(lunnel_time_now_ms(), date); /* inside the 15-minute window */
    lunnel_header h[5] = {{"x-ots-date", date},
                          {"x-ots-apiversion", "2015-12-31"},
                          {"x-ots-accesskeyid", "lunnel-ak"},
                          {"x-ots-instancename", "lunnel"},
                          {"x-ots-contentmd5", md5}};
    if (!secret)
        return (size_t)snprintf(out, cap, "POST %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", path,
                                blen, body);
    lunnel_sign_request(secret, path, h, 5, sig);
    return (size_t)snprintf(out, cap,
                            "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
                            "x-ots-date: %s\r\nx-ots-apiversion: %s\r\nx-ots-accesskeyid: %s\r\n"
                            "x-ots-instancename: %s\r\nx-ots-contentmd5: %s\r\n"
                            "x-ots-signature: %s\r\n\r\n%s",
                            path, blen, h[0].value, h[1].value, h[2].value, h[3].value, md5, sig,
                            body);
}

/* Sends `req` on a fresh connection, runs the loop until `want` replies arrived or the server
 * closed (bounded: 2 s), returns what was read (static buffer) and sets *closed. */
static const char *exchange(lunnel_emu_server *srv, const char *req, size_t len, int want,
                            int *closed)
{
    static char in[262144];
    size_t got = 0;
    in[0] = 0;
    int sv[2];
    *closed = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return "";
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    lunnel_emu_server_adopt(srv, sv[0]);
    size_t off = 0;
    ev_tstamp until = ev_time() + 2.0;
    while (ev_time() < until) {
        if (off < len) {
            ssize_t n = write(sv[1], req + off, len - off);
            if (n > 0) off += (size_t)n;
        }
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        ssize_t n = read(sv[1], in + got, sizeof in - 1 - got);
        if (n == 0) {
            *closed = 1;
            break;
        }
        if (n > 0) got += (size_t)n;
        in[got] = 0;
        int replies = 0;
        for (const char *p = in; (p = strstr(p, "HTTP/1.1 ")); p++)
            replies++;
        if (replies >= want && want > 0) {
            /* the last reply's body must be complete too */
            const char *last = in, *p = in;
            while ((p = strstr(p, "HTTP/1.1 ")))
                last = p++;
            const char *cl = strstr(last, "Content-Length: ");
            const char *hend = strstr(last, "\r\n\r\n");
            if (cl && hend && (size_t)(in + got - (hend + 4)) >= (size_t)atol(cl + 16)) break;
        }
        if (n < 0) usleep(1000);
    }
    close(sv[1]);
    for (int i = 0; i < 4; i++)
        ev_run(loop, EVRUN_NOWAIT);
    return in;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

int main(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    lunnel_emu_config_defaults(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.max_request_bytes = 1000;
    char err[256];
    lunnel_emu_server *srv = lunnel_emu_server_new(loop, &cfg, err, sizeof err);
    CHECK(srv != NULL);
    if (!srv) TEST_DONE();
    CHECK(lunnel_emu_server_port(srv) > 0);
    CHECK_INT(lunnel_emu_route_add(srv, "/echo", echo, NULL), 0);
    CHECK_INT(lunnel_emu_route_add(srv, "/echo", echo, NULL), -1);
    CHECK_INT(lunnel_emu_route_add(srv, "/defer", deferred, NULL), 0);
    CHECK_INT(lunnel_emu_route_add(srv, "/drop", drop, NULL), 0);
    CHECK_INT(lunnel_emu_admin_add(srv, "ping", ping, NULL), 0);
    lunnel_emu_server_set_filter(srv, lazy_filter, NULL);

    char req[16384];
    int closed;
    size_t n = build(req, sizeof req, "/echo", "hello", "lunnel-secret");
    const char *r = exchange(srv, req, n, 1, &closed);
    CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(r, "x-ots-requestid: ") != NULL);
    CHECK(strstr(r, "\r\n\r\nhello") != NULL);
    CHECK(strstr(r, "authorization: OTS lunnel-ak:") != NULL);

    /* wrong secret, no signature */
    n = build(req, sizeof req, "/echo", "hello", "wrong");
    r = exchange(srv, req, n, 1, &closed);
    CHECK(strncmp(r, "HTTP/1.1 403 ", 13) == 0);
    CHECK(strstr(r, "OTSAuthFailed") != NULL);
    CHECK(strstr(r, "Signature mismatch") != NULL);
    CHECK(strstr(r, "x-ots-requestid: ") != NULL);
    n = build(req, sizeof req, "/echo", "hello", NULL);
    r = exchange(srv, req, n, 1, &closed);
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    CHECK(strstr(r, "Missing header: x-ots-date.") != NULL);

    /* pipelined: deferred first, then echo; replies in request order, connection kept */
    n = build(req, sizeof req, "/defer", "a", "lunnel-secret");
    n += build(req + n, sizeof req - n, "/echo", "second", "lunnel-secret");
    n += build(req + n, sizeof req - n, "/_emulator/ping", "{\"n\":41}", "lunnel-secret");
    r = exchange(srv, req, n, 3, &closed);
    CHECK_INT(count(r, "HTTP/1.1 200 OK"), 3);
    const char *late = strstr(r, "late"), *second = strstr(r, "second"),
               *pong = strstr(r, "{\"pong\":42}");
    CHECK(late && second && pong && late < second && second < pong);
    CHECK(!closed);

    /* unknown path, filter, admin errors */
    n = build(req, sizeof req, "/nope", "", "lunnel-secret");
    n += build(req + n, sizeof req - n, "/filtered", "", "lunnel-secret");
    n += build(req + n, sizeof req - n, "/_emulator/ping", "{bad", "lunnel-secret");
    n += build(req + n, sizeof req - n, "/_emulator/zzz", "{}", "lunnel-secret");
    r = exchange(srv, req, n, 4, &closed);
    CHECK(strstr(r, "HTTP/1.1 404 ") && strstr(r, "OTSUnsupportedOperation"));
    CHECK(strstr(r, "HTTP/1.1 503 ") && strstr(r, "OTSTunnelServerUnavailable"));
    CHECK(strstr(r, "not valid JSON") != NULL);
    CHECK(strstr(r, "unknown admin action 'zzz'") != NULL);

    /* drop: no reply, connection closed */
    n = build(req, sizeof req, "/drop", "", "lunnel-secret");
    r = exchange(srv, req, n, 0, &closed);
    CHECK(closed);
    CHECK_INT(count(r, "HTTP/1.1"), 0);

    /* too large: 413 then close */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    n = build(req, sizeof req, "/echo", big, "lunnel-secret");
    r = exchange(srv, req, n, 1, &closed);
    CHECK(strncmp(r, "HTTP/1.1 413 ", 13) == 0);
    CHECK(strstr(r, "OTSParameterInvalid") != NULL);

    /* deferred reply to a client that went away is discarded safely */
    n = build(req, sizeof req, "/defer", "a", "lunnel-secret");
    {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        lunnel_emu_server_adopt(srv, sv[0]);
        CHECK_INT(write(sv[1], req, n), (long long)n);
        for (int i = 0; i < 20; i++)
            ev_run(loop, EVRUN_NOWAIT);
        close(sv[1]);
        ev_tstamp until = ev_time() + 0.2;
        while (ev_time() < until)
            ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
    }

    const lunnel_emu_path_stat *ps;
    size_t np = lunnel_emu_server_path_stats(srv, &ps);
    int echo_reqs = 0;
    for (size_t i = 0; i < np; i++)
        if (strcmp(ps[i].path, "/echo") == 0) echo_reqs = (int)ps[i].requests;
    CHECK_INT(echo_reqs, 4); /* hello, wrong secret, unsigned, second (413 is "(malformed)") */
    lunnel_emu_server_free(srv);

    /* timeouts: an idle connection is closed silently, a slow head or a stalled body gets
     * 408 OTSRequestTimeout and is closed; all well inside exchange()'s 2 s */
    lunnel_emu_config cfg2 = cfg;
    cfg2.idle_timeout_s = cfg2.header_timeout_s = cfg2.body_timeout_s = 0.3;
    srv = lunnel_emu_server_new(loop, &cfg2, err, sizeof err);
    CHECK(srv != NULL);
    if (!srv) TEST_DONE();
    CHECK_INT(lunnel_emu_route_add(srv, "/echo", echo, NULL), 0);
    ev_tstamp t0 = ev_time();
    r = exchange(srv, "", 0, 0, &closed);
    CHECK(closed);
    CHECK_INT(count(r, "HTTP/1.1"), 0);
    CHECK(ev_time() - t0 >= 0.3);
    static const char slow_head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nx-ots-da";
    r = exchange(srv, slow_head, sizeof slow_head - 1, 0, &closed);
    CHECK(closed);
    CHECK(strncmp(r, "HTTP/1.1 408 ", 13) == 0);
    CHECK(strstr(r, "OTSRequestTimeout") != NULL);
    static const char stalled[] = "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc";
    r = exchange(srv, stalled, sizeof stalled - 1, 0, &closed);
    CHECK(closed);
    CHECK(strncmp(r, "HTTP/1.1 408 ", 13) == 0);
    CHECK(strstr(r, "body stopped arriving") != NULL);
    lunnel_emu_server_free(srv);
    ev_loop_destroy(loop);
    TEST_DONE();
}
