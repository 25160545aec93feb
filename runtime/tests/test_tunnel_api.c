/* test_tunnel_api.c: the typed tunnel calls (api.h) against the scripted local responder:
 * request packing and path per op, decoded responses, ReadRecords' raw bytes handed over
 * (ownership taken by the callback), unparseable responses, request/op mismatch, error
 * classes by scope (channel vs client calls), the sync helper and cancellation. */
#include <ev.h>
#include <signal.h>
#include <stdlib.h>

#include "lunnel/api.h"
#include "lunnel/log.h"
#include "net_responder.h"
#include "testutil.h"

typedef struct {
    int done, calls;
    lunnel_api_result res; /* copied scalars */
    lunnel_error err;
    ProtobufCMessage *msg; /* taken */
    uint8_t *raw;          /* taken */
    size_t raw_len;
} out_t;

static void on_res(lunnel_api_result *r, void *ud)
{
    out_t *o = ud;
    o->done = 1;
    o->calls++;
    o->res = *r;
    if (r->err) o->err = *r->err;
    o->msg = r->msg;
    r->msg = NULL;
    o->raw = r->raw;
    o->raw_len = r->raw_len;
    r->raw = NULL;
}

static void reset(out_t *o)
{
    if (o->msg) protobuf_c_message_free_unpacked(o->msg, NULL);
    free(o->raw);
    memset(o, 0, sizeof *o);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    lunnel_log_set_level(LUNNEL_LOG_ERROR);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    responder rs;
    CHECK_INT(resp_start(&rs, "lunnel-secret"), 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", rs.port);
    lunnel_error err;
    lunnel_credentials *creds =
        lunnel_credentials_new_static("lunnel-ak", "lunnel-secret", NULL, &err);
    lunnel_http_config cfg = {.endpoint = endpoint, .instance = "lunnel", .timeout_s = 2};
    lunnel_http *h = lunnel_http_new(loop, &cfg, creds, &err);
    lunnel_api_config ac;
    lunnel_api_config_defaults(&ac);
    ac.default_retry = (lunnel_retry_policy){5, 20, 2000, 0.33};
    ac.read_records_retry = (lunnel_retry_policy){5, 20, 2000, 0.33};
    lunnel_api *api = lunnel_api_new(h, &ac);
    CHECK_STR(lunnel_api_op_path(LUNNEL_API_GETRPOBYOFFSET), "/tunnel/getrpobyoffset");
    CHECK_INT(lunnel_api_op_scope(LUNNEL_API_READRECORDS), LUNNEL_SCOPE_CHANNEL);
    CHECK_INT(lunnel_api_op_scope(LUNNEL_API_HEARTBEAT), LUNNEL_SCOPE_CLIENT);
    CHECK_INT(lunnel_api_op_scope(LUNNEL_API_CREATE), LUNNEL_SCOPE_ADMIN);

    /* Connect: request packed and sent to /tunnel/connect, response decoded. */
    Lunnel__Tunnel__ConnectResponse cresp = LUNNEL__TUNNEL__CONNECT_RESPONSE__INIT;
    cresp.client_id = "client-42";
    uint8_t cbuf[64];
    size_t cl = protobuf_c_message_pack(&cresp.base, cbuf);
    resp_reply r1 = {200, cbuf, cl, "rid-c", 0, 0, NULL, 0};
    resp_script(&rs, &r1, 1);
    Lunnel__Tunnel__ConnectRequest creq = LUNNEL__TUNNEL__CONNECT_REQUEST__INIT;
    Lunnel__Tunnel__ClientConfig ccfg = LUNNEL__TUNNEL__CLIENT_CONFIG__INIT;
    creq.tunnel_id = "tid-1";
    ccfg.has_timeout = 1;
    ccfg.timeout = 30;
    ccfg.client_tag = "tag";
    creq.client_config = &ccfg;
    out_t o = {0};
    CHECK(lunnel_api_connect(api, &creq, on_res, &o) != NULL);
    CHECK_INT(o.calls, 0);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK(o.res.err == NULL);
    CHECK_INT(o.res.cls, LUNNEL_ERRCLASS_NONE);
    CHECK_STR(((Lunnel__Tunnel__ConnectResponse *)o.msg)->client_id, "client-42");
    CHECK_STR(rs.reqs[0].path, "/tunnel/connect");
    CHECK(rs.reqs[0].sig_ok);
    Lunnel__Tunnel__ConnectRequest *sent =
        lunnel__tunnel__connect_request__unpack(NULL, rs.reqs[0].body_len, rs.reqs[0].body);
    CHECK(sent && strcmp(sent->tunnel_id, "tid-1") == 0 && sent->client_config->timeout == 30);
    if (sent) lunnel__tunnel__connect_request__free_unpacked(sent, NULL);
    reset(&o);

    /* ReadRecords: the raw body comes back untouched and the callback may keep it. */
    uint8_t raw[300];
    for (int i = 0; i < 300; i++)
        raw[i] = (uint8_t)(i * 31);
    resp_reply r2 = {200, raw, sizeof raw, "rid-r", 0, 0, NULL, 0};
    resp_script(&rs, &r2, 1);
    Lunnel__Tunnel__ReadRecordsRequest rreq = LUNNEL__TUNNEL__READ_RECORDS_REQUEST__INIT;
    rreq.tunnel_id = "tid-1";
    rreq.client_id = "client-42";
    rreq.channel_id = "p0";
    rreq.token = "tok";
    lunnel_api_read_records(api, &rreq, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK(o.res.err == NULL);
    CHECK(o.msg == NULL);
    CHECK_INT(o.raw_len, sizeof raw);
    CHECK(o.raw && memcmp(o.raw, raw, sizeof raw) == 0);
    CHECK_STR(rs.reqs[0].path, "/tunnel/readrecords");
    reset(&o);

    /* A 2xx body that is not the response message: BAD_RESPONSE, request id kept. */
    resp_reply r3 = {200, "\xff\xff\xff", 3, "rid-bad", 0, 0, NULL, 0};
    resp_script(&rs, &r3, 1);
    Lunnel__Tunnel__GetCheckpointRequest gq = LUNNEL__TUNNEL__GET_CHECKPOINT_REQUEST__INIT;
    gq.tunnel_id = "t";
    gq.client_id = "c";
    gq.channel_id = "p0";
    lunnel_api_get_checkpoint(api, &gq, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK(o.res.err != NULL);
    CHECK_INT(o.err.kind, LUNNEL_NET_BAD_RESPONSE);
    CHECK_STR(o.err.request_id, "rid-bad");
    CHECK_INT(o.res.cls, LUNNEL_ERRCLASS_CHANNEL_ONLY);
    reset(&o);

    /* Server errors classified by the op's scope. */
    Lunnel__Tunnel__Error pe = LUNNEL__TUNNEL__ERROR__INIT;
    pe.code = "OTSParameterInvalid";
    pe.message = "not the owner of channel p0";
    uint8_t ebuf[128];
    size_t el = protobuf_c_message_pack(&pe.base, ebuf);
    resp_reply r4 = {400, ebuf, el, "rid-400", 0, 0, NULL, 0};
    resp_script(&rs, &r4, 1);
    lunnel_api_read_records(api, &rreq, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK_INT(o.res.cls, LUNNEL_ERRCLASS_CHANNEL_ONLY);
    CHECK_STR(o.err.code, "OTSParameterInvalid");
    CHECK(o.raw == NULL);
    reset(&o);
    Lunnel__Tunnel__HeartbeatRequest hq = LUNNEL__TUNNEL__HEARTBEAT_REQUEST__INIT;
    hq.tunnel_id = "t";
    hq.client_id = "c";
    lunnel_api_heartbeat(api, &hq, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK_INT(o.res.cls, LUNNEL_ERRCLASS_FATAL);
    reset(&o);
    pe.code = "OTSResourceGone";
    el = protobuf_c_message_pack(&pe.base, ebuf);
    resp_reply r5 = {410, ebuf, el, "rid-410", 0, 0, NULL, 0};
    resp_script(&rs, &r5, 1);
    lunnel_api_heartbeat(api, &hq, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK_INT(o.res.cls, LUNNEL_ERRCLASS_RECONNECT);
    reset(&o);

    /* Request of the wrong type for the op: INVALID, via the callback, nothing sent. */
    resp_script(&rs, &r1, 1);
    lunnel_api_send(api, LUNNEL_API_HEARTBEAT, &creq.base, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK_INT(o.err.kind, LUNNEL_NET_INVALID);
    CHECK_INT(rs.n_reqs, 0);
    reset(&o);
    /* Missing required field: also INVALID. */
    Lunnel__Tunnel__ShutdownRequest sq = LUNNEL__TUNNEL__SHUTDOWN_REQUEST__INIT;
    sq.tunnel_id = "t";
    lunnel_api_shutdown(api, &sq, on_res, &o);
    CHECK_INT(lunnel_http_run_until(loop, &o.done, 10), 0);
    CHECK_INT(o.err.kind, LUNNEL_NET_INVALID);
    reset(&o);

    /* Sync helper: empty response message (Checkpoint) decodes to an empty struct. */
    resp_reply r6 = {200, NULL, 0, "rid-cp", 0, 0, NULL, 0};
    resp_script(&rs, &r6, 1);
    Lunnel__Tunnel__CheckpointRequest cq = LUNNEL__TUNNEL__CHECKPOINT_REQUEST__INIT;
    cq.tunnel_id = "t";
    cq.client_id = "c";
    cq.channel_id = "p0";
    cq.checkpoint = "tok2";
    cq.sequence_number = 7;
    lunnel_api_sync_result sr;
    CHECK_INT(lunnel_api_call_sync(api, loop, LUNNEL_API_CHECKPOINT, &cq.base, 10, &sr), 0);
    CHECK(sr.msg != NULL);
    CHECK_STR(sr.request_id, "rid-cp");
    lunnel_api_sync_result_free(&sr);

    /* Cancel: the callback never runs, the loop stays usable. */
    resp_reply slow = {200, cbuf, cl, "rid-slow", 200, 0, NULL, 0};
    resp_script(&rs, &slow, 1);
    lunnel_api_call *call = lunnel_api_connect(api, &creq, on_res, &o);
    lunnel_api_cancel(call);
    CHECK_INT(lunnel_http_pending(h), 0);
    int never = 0;
    lunnel_http_run_until(loop, &never, 0.4);
    CHECK_INT(o.calls, 0);
    resp_script(&rs, &r1, 1);
    CHECK_INT(lunnel_api_call_sync(api, loop, LUNNEL_API_CONNECT, &creq.base, 10, &sr), 0);
    lunnel_api_sync_result_free(&sr);

    lunnel_api_free(api);
    lunnel_http_free(h);
    lunnel_credentials_free(creds);
    resp_stop(&rs);
    ev_loop_destroy(loop);
    TEST_DONE();
}
