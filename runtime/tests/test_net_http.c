/* test_net_http.c: the libcurl-on-libev client against a scripted local responder:
 * signed headers (with STS token, trace id, no Expect), keep-alive reuse, two 503s then
 * success (retried), a 403 reported once with code and request id (no retry), 5xx without
 * body retried, EOF retried, timeouts, the retry window giving up, OTSAuthFailed with
 * command credentials refreshing once, cancellation on free; a declared Content-Length over
 * the per-response cap refused before the body is read; a 2xx body not matching its
 * x-ots-contentmd5 (cut at a field boundary) retried, not used; error bodies read and retries
 * judged only by the protocol installed on the client (the tunnel's here, none in 4b). */
#include <ev.h>
#include <proto/tunnel_service_api.pb-c.h>
#include <signal.h>
#include <stdlib.h>

#include "lunnel/error_class.h"
#include "lunnel/http.h"
#include "lunnel/log.h"
#include "net_responder.h"
#include "testutil.h"

typedef struct {
    int done;
    int calls;
    lunnel_error err;
    int ok;
    int attempts;
    char request_id[96];
    char body[256];
    size_t body_len;
} outcome;

static void on_done(lunnel_http_response *resp, void *ud)
{
    outcome *o = ud;
    o->calls++;
    o->done = 1;
    o->ok = resp->err == NULL;
    if (resp->err) o->err = *resp->err;
    o->attempts = resp->attempts;
    snprintf(o->request_id, sizeof o->request_id, "%s", resp->request_id);
    o->body_len = resp->body_len < sizeof o->body ? resp->body_len : sizeof o->body - 1;
    if (resp->body) memcpy(o->body, resp->body, o->body_len);
    o->body[o->body_len] = '\0';
}

static size_t error_body(const char *code, const char *msg, uint8_t *out)
{
    Lunnel__Tunnel__Error e = LUNNEL__TUNNEL__ERROR__INIT;
    e.code = (char *)code;
    e.message = (char *)msg;
    return protobuf_c_message_pack(&e.base, out);
}

static outcome post(struct ev_loop *loop, lunnel_http *h, const char *path,
                    const lunnel_retry_policy *p)
{
    outcome o;
    memset(&o, 0, sizeof o);
    lunnel_http_request *r = lunnel_http_post(h, path, "abc", 3, "2018-04-01", p, on_done, &o);
    CHECK(r != NULL);
    CHECK(o.calls == 0); /* never from inside post */
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 20.0), 0);
    return o;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the responder writes to sockets the client dropped */
    lunnel_log_set_level(LUNNEL_LOG_WARN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    responder rs;
    CHECK_INT(resp_start(&rs, "lunnel-secret"), 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", rs.port);

    lunnel_error err;
    lunnel_credentials *creds =
        lunnel_credentials_new_static("lunnel-ak", "lunnel-secret", "sts-token-1", &err);
    CHECK(creds != NULL);
    lunnel_http_config cfg = {.endpoint = endpoint, .instance = "lunnel", .timeout_s = 1.0};
    lunnel_http *h = lunnel_http_new(loop, &cfg, creds, &err);
    if (h) lunnel_http_set_protocol(h, &lunnel_tunnel_http_protocol);
    CHECK(h != NULL);
    lunnel_retry_policy fast = {5, 20, 3000, 0.33};

    /* 1. Success: body and request id, signed headers as the server sees them. */
    resp_reply ok = {.status = 200, .body = "hello", .body_len = 5, .request_id = "req-ok-1"};
    resp_script(&rs, &ok, 1);
    outcome o = post(loop, h, "/tunnel/list", &fast);
    CHECK(o.ok);
    CHECK_STR(o.body, "hello");
    CHECK_STR(o.request_id, "req-ok-1");
    CHECK_INT(o.attempts, 1);
    CHECK_INT(rs.n_reqs, 1);
    CHECK(rs.reqs[0].sig_ok);
    CHECK_STR(rs.reqs[0].path, "/tunnel/list");
    char v[256];
    CHECK(resp_header(rs.reqs[0].headers, "x-ots-ststoken", v, sizeof v) &&
          strcmp(v, "sts-token-1") == 0);
    CHECK(resp_header(rs.reqs[0].headers, "x-ots-instancename", v, sizeof v) &&
          strcmp(v, "lunnel") == 0);
    CHECK(resp_header(rs.reqs[0].headers, "x-ots-apiversion", v, sizeof v) &&
          strcmp(v, "2018-04-01") == 0);
    CHECK(resp_header(rs.reqs[0].headers, "x-ots-trace-id", v, sizeof v) && strlen(v) == 36);
    CHECK(!resp_header(rs.reqs[0].headers, "Expect", v, sizeof v));
    CHECK(strstr(rs.reqs[0].headers, "secret") == NULL);

    /* 2. Keep-alive: three more calls, no new connection. */
    lunnel_http_stats st0, st1;
    lunnel_http_get_stats(h, &st0);
    int conns0 = rs.connections;
    for (int i = 0; i < 3; i++)
        post(loop, h, "/tunnel/list", &fast);
    lunnel_http_get_stats(h, &st1);
    CHECK_INT(rs.connections, conns0);
    CHECK_INT(st1.connections, st0.connections);
    CHECK_INT(st1.attempts, st0.attempts + 3);

    /* 3. Two 503s then success: retried, same trace id on each attempt. */
    uint8_t eb[256];
    size_t el = error_body("OTSTunnelServerUnavailable", "busy", eb);
    resp_reply two503[] = {
        {503, eb, el, "req-503-a", 0, 0, NULL, 0}, {503, eb, el, "req-503-b", 0, 0, NULL, 0}, ok};
    resp_script(&rs, two503, 3);
    o = post(loop, h, "/tunnel/describe", &fast);
    CHECK(o.ok);
    CHECK_INT(o.attempts, 3);
    CHECK_INT(rs.n_reqs, 3);
    char t0[64], t2[64];
    resp_header(rs.reqs[0].headers, "x-ots-trace-id", t0, sizeof t0);
    resp_header(rs.reqs[2].headers, "x-ots-trace-id", t2, sizeof t2);
    CHECK_STR(t0, t2);

    /* 4. 403 OTSPermissionDenied: once, with code, message and request id, no retry. */
    el = error_body("OTSPermissionDenied", "no access to tunnel", eb);
    resp_reply r403[] = {{403, eb, el, "req-403", 0, 0, NULL, 0}, ok};
    resp_script(&rs, r403, 2);
    o = post(loop, h, "/tunnel/create", &fast);
    CHECK(!o.ok);
    CHECK_INT(o.attempts, 1);
    CHECK_INT(rs.n_reqs, 1);
    CHECK_INT(o.err.kind, LUNNEL_NET_SERVER);
    CHECK_INT(o.err.http_status, 403);
    CHECK_STR(o.err.code, "OTSPermissionDenied");
    CHECK_STR(o.err.message, "no access to tunnel");
    CHECK_STR(o.err.request_id, "req-403");
    CHECK_STR(o.err.path, "/tunnel/create");
    CHECK_INT(lunnel_error_outcome(&o.err), LUNNEL_OUTCOME_AUTH);
    char line[1024];
    lunnel_error_format(&o.err, line, sizeof line);
    CHECK(strstr(line, "OTSPermissionDenied (HTTP 403)") && strstr(line, "req-403"));

    /* 4b. Without an installed protocol the transport reads no error body and retries only
     * failures before a reply: the same 403 has no code, a 503 with a body is final. */
    lunnel_http_set_protocol(h, NULL);
    resp_script(&rs, r403, 2);
    o = post(loop, h, "/tunnel/create", &fast);
    CHECK(!o.ok);
    CHECK_INT(o.err.http_status, 403);
    CHECK_STR(o.err.code, "");
    CHECK(strstr(o.err.message, "without a parseable error body") != NULL);
    resp_script(&rs, two503, 3);
    o = post(loop, h, "/tunnel/describe", &fast);
    CHECK(!o.ok);
    CHECK_INT(o.attempts, 1);
    CHECK_INT(o.err.http_status, 503);
    lunnel_http_set_protocol(h, &lunnel_tunnel_http_protocol);

    /* 5. OTSAuthFailed with static credentials: no refresh possible, no retry. */
    el = error_body("OTSAuthFailed", "signature mismatch", eb);
    resp_reply r403a[] = {{403, eb, el, "req-auth", 0, 0, NULL, 0}, ok};
    resp_script(&rs, r403a, 2);
    o = post(loop, h, "/tunnel/connect", &fast);
    CHECK(!o.ok);
    CHECK_STR(o.err.code, "OTSAuthFailed");
    CHECK_INT(o.attempts, 1);

    /* 6. 500 without a parseable body, then EOF, then success: both retried. */
    resp_reply mixed[] = {{500, "junk\xff", 5, NULL, 0, 0, NULL, 0}, {.close = 1}, ok};
    resp_script(&rs, mixed, 3);
    o = post(loop, h, "/tunnel/heartbeat", &fast);
    CHECK(o.ok);
    /* curl itself re-sends once on a fresh connection when a reused one dies before any
     * byte of the response, so the EOF may cost no attempt of ours. */
    CHECK(o.attempts == 2 || o.attempts == 3);
    CHECK_INT(rs.n_reqs, 3);

    /* 7. 400 without a parseable body: client error, not retried. */
    resp_reply bad400[] = {{400, "junk", 4, "req-400", 0, 0, NULL, 0}, ok};
    resp_script(&rs, bad400, 2);
    o = post(loop, h, "/tunnel/list", &fast);
    CHECK(!o.ok);
    CHECK_INT(o.attempts, 1);
    CHECK_INT(o.err.http_status, 400);
    CHECK_STR(o.err.code, "");

    /* 8. Always 503 within a 150 ms window: gives up with the last error, bounded attempts. */
    el = error_body("OTSTunnelServerUnavailable", "busy", eb);
    resp_reply all503 = {503, eb, el, "req-503-last", 0, 0, NULL, 0};
    resp_script(&rs, &all503, 1);
    lunnel_retry_policy tiny = {10, 40, 150, 0.33};
    double t_start = ev_time();
    o = post(loop, h, "/tunnel/readrecords", &tiny);
    double took = ev_time() - t_start;
    CHECK(!o.ok);
    CHECK_STR(o.err.code, "OTSTunnelServerUnavailable");
    CHECK_STR(o.err.request_id, "req-503-last");
    CHECK(o.attempts >= 3 && o.attempts <= 12);
    CHECK(took < 1.0);

    /* 9. Timeout (server slower than the 1 s per-attempt timeout), single attempt. */
    resp_reply slow[] = {{200, "late", 4, NULL, 1500, 0, NULL, 0}, ok};
    resp_script(&rs, slow, 2);
    o = post(loop, h, "/tunnel/list", NULL);
    CHECK(!o.ok);
    CHECK_INT(o.err.kind, LUNNEL_NET_TIMEOUT);
    CHECK(lunnel_error_is_retriable(&o.err));

    /* 10. Bad path: delivered asynchronously as INVALID. */
    o = post(loop, h, "no-slash", NULL);
    CHECK(!o.ok);
    CHECK_INT(o.err.kind, LUNNEL_NET_INVALID);

    /* 11. Free with a call in flight: callback once, CANCELLED. */
    resp_reply slow2 = {200, "x", 1, NULL, 300, 0, NULL, 0};
    resp_script(&rs, &slow2, 1);
    outcome oc;
    memset(&oc, 0, sizeof oc);
    lunnel_http_post(h, "/tunnel/list", "", 0, "2018-04-01", NULL, on_done, &oc);
    CHECK_INT(lunnel_http_pending(h), 1);
    lunnel_http_free(h);
    CHECK_INT(oc.calls, 1);
    CHECK_INT(oc.err.kind, LUNNEL_NET_CANCELLED);
    lunnel_credentials_free(creds);

    /* 12. OTSAuthFailed with a credentials command: refreshed once, retried once. */
    char dir[] = "/tmp/lunnel-http-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char script[256], cmd[600];
    snprintf(script, sizeof script, "%s/creds.sh", dir);
    FILE *f = fopen(script, "w");
    fprintf(f,
            "#!/bin/sh\nn=$(cat %s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/n\n"
            "echo "
            "'{\"AccessKeyId\":\"ak-'$n'\",\"AccessKeySecret\":\"lunnel-secret\",\"SecurityToken\":"
            "\"tok-'$n'\",\"Expiration\":\"2099-01-01T00:00:00Z\"}'\n",
            dir, dir);
    fclose(f);
    snprintf(cmd, sizeof cmd, "sh %s", script);
    creds = lunnel_credentials_new_command(cmd, 5, &err);
    CHECK(creds != NULL);
    lunnel_credentials_start(creds, loop);
    h = lunnel_http_new(loop, &cfg, creds, &err);
    if (h) lunnel_http_set_protocol(h, &lunnel_tunnel_http_protocol);
    resp_reply authfail[] = {
        {403, eb, error_body("OTSAuthFailed", "expired token", eb), "req-af", 0, 0, NULL, 0}, ok};
    resp_script(&rs, authfail, 2);
    o = post(loop, h, "/tunnel/connect", &fast);
    CHECK(o.ok);
    CHECK_INT(o.attempts, 2);
    CHECK(resp_header(rs.reqs[0].headers, "x-ots-accesskeyid", v, sizeof v) &&
          strcmp(v, "ak-1") == 0);
    CHECK(resp_header(rs.reqs[1].headers, "x-ots-accesskeyid", v, sizeof v) &&
          strcmp(v, "ak-2") == 0);
    CHECK(resp_header(rs.reqs[1].headers, "x-ots-ststoken", v, sizeof v) &&
          strcmp(v, "tok-2") == 0);
    CHECK(rs.reqs[1].sig_ok);
    lunnel_http_get_stats(h, &st1);
    CHECK_INT(st1.auth_refreshes, 1);
    /* Twice in a row: refreshed once, then fatal. */
    resp_reply authfail2 = {403,  eb, error_body("OTSAuthFailed", "bad key", eb), "req-af2", 0, 0,
                            NULL, 0};
    resp_script(&rs, &authfail2, 1);
    o = post(loop, h, "/tunnel/connect", &fast);
    CHECK(!o.ok);
    CHECK_INT(o.attempts, 2);
    CHECK_STR(o.err.code, "OTSAuthFailed");
    CHECK_INT(lunnel_error_classify(&o.err, LUNNEL_SCOPE_CLIENT), LUNNEL_ERRCLASS_FATAL);
    lunnel_http_free(h);
    lunnel_credentials_free(creds);
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    CHECK_INT(system(rm), 0);

    /* 15. A declared Content-Length over the cap: refused at the header, not after reading
     * (the responder sends 10 of the 1 GiB declared bytes and waits; reading on would end
     * in the 1 s timeout instead). */
    creds = lunnel_credentials_new_static("lunnel-ak", "lunnel-secret", NULL, &err);
    lunnel_http_config capcfg = cfg;
    capcfg.max_response_bytes = 1000;
    h = lunnel_http_new(loop, &capcfg, creds, &err);
    if (h) lunnel_http_set_protocol(h, &lunnel_tunnel_http_protocol);
    resp_reply huge = {
        .status = 200, .body = "0123456789", .body_len = 10, .declared_len = (size_t)1 << 30};
    resp_script(&rs, &huge, 1);
    o = post(loop, h, "/tunnel/readrecords", NULL);
    CHECK(!o.ok);
    CHECK_INT(o.err.kind, LUNNEL_NET_BAD_RESPONSE);
    CHECK(strstr(o.err.message, "larger than 1000 bytes") != NULL);
    lunnel_http_stats st2;
    lunnel_http_get_stats(h, &st2);
    CHECK_INT((int)st2.downloading, 0);
    CHECK_INT(st2.active, 0);

    /* 16. A body cut at a field boundary still parses; its x-ots-contentmd5 does not match:
     * a transport error, retried; the whole body is what the caller gets. */
    char md5_full[LUNNEL_MD5_B64_LEN];
    lunnel_sign_content_md5("hello", 5, md5_full);
    resp_reply cut[] = {{.status = 200, .body = "hel", .body_len = 3, .md5 = md5_full},
                        {.status = 200, .body = "hello", .body_len = 5, .md5 = md5_full}};
    resp_script(&rs, cut, 2);
    o = post(loop, h, "/tunnel/heartbeat", &fast);
    CHECK(o.ok);
    CHECK_STR(o.body, "hello");
    CHECK_INT(o.attempts, 2);
    lunnel_http_get_stats(h, &st2);
    CHECK_INT((int)st2.md5_mismatches, 1);
    /* without retries the mismatch is reported as a transport error naming the digest */
    resp_script(&rs, cut, 1);
    o = post(loop, h, "/tunnel/heartbeat", NULL);
    CHECK(!o.ok);
    CHECK_INT(o.err.kind, LUNNEL_NET_TRANSPORT);
    CHECK(strstr(o.err.message, "x-ots-contentmd5") != NULL);
    lunnel_http_free(h);
    lunnel_credentials_free(creds);

    /* 13. Connection refused: transport error, retried within the window, then reported. */
    resp_stop(&rs);
    creds = lunnel_credentials_new_static("lunnel-ak", "lunnel-secret", NULL, &err);
    h = lunnel_http_new(loop, &cfg, creds, &err);
    if (h) lunnel_http_set_protocol(h, &lunnel_tunnel_http_protocol);
    o = post(loop, h, "/tunnel/list", &tiny);
    CHECK(!o.ok);
    CHECK_INT(o.err.kind, LUNNEL_NET_TRANSPORT);
    CHECK(o.attempts >= 2);
    lunnel_http_free(h);
    lunnel_credentials_free(creds);

    /* 14. Bad endpoint is refused at creation. */
    lunnel_http_config badcfg = {.endpoint = "ftp://x", .instance = "i"};
    creds = lunnel_credentials_new_static("a", "b", NULL, &err);
    CHECK(lunnel_http_new(loop, &badcfg, creds, &err) == NULL);
    CHECK(strstr(err.message, "http://") != NULL);
    lunnel_credentials_free(creds);
    ev_loop_destroy(loop);
    TEST_DONE();
}
