/* api.c: the Tunnel Service calls (api.h): pack the protobuf-c request, POST it through
 * net/http.c with the op's retry window, decode the response (or hand ReadRecords' bytes
 * back untouched) and classify failures by the op's scope (PROTOCOL.md "Scope"). */
#include "lunnel/api.h"
#include "lunnel/error_class.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    lunnel_call_scope scope;
    const ProtobufCMessageDescriptor *req;
    const ProtobufCMessageDescriptor *resp; /* NULL: raw bytes (ReadRecords) */
} op_info;

static const op_info ops[LUNNEL_API_N_OPS] = {
    [LUNNEL_API_CREATE] = {"/tunnel/create", LUNNEL_SCOPE_ADMIN,
                           &lunnel__tunnel__create_tunnel_request__descriptor,
                           &lunnel__tunnel__create_tunnel_response__descriptor},
    [LUNNEL_API_DELETE] = {"/tunnel/delete", LUNNEL_SCOPE_ADMIN,
                           &lunnel__tunnel__delete_tunnel_request__descriptor,
                           &lunnel__tunnel__delete_tunnel_response__descriptor},
    [LUNNEL_API_LIST] = {"/tunnel/list", LUNNEL_SCOPE_ADMIN,
                         &lunnel__tunnel__list_tunnel_request__descriptor,
                         &lunnel__tunnel__list_tunnel_response__descriptor},
    [LUNNEL_API_DESCRIBE] = {"/tunnel/describe", LUNNEL_SCOPE_ADMIN,
                             &lunnel__tunnel__describe_tunnel_request__descriptor,
                             &lunnel__tunnel__describe_tunnel_response__descriptor},
    [LUNNEL_API_CONNECT] = {"/tunnel/connect", LUNNEL_SCOPE_CLIENT,
                            &lunnel__tunnel__connect_request__descriptor,
                            &lunnel__tunnel__connect_response__descriptor},
    [LUNNEL_API_HEARTBEAT] = {"/tunnel/heartbeat", LUNNEL_SCOPE_CLIENT,
                              &lunnel__tunnel__heartbeat_request__descriptor,
                              &lunnel__tunnel__heartbeat_response__descriptor},
    [LUNNEL_API_SHUTDOWN] = {"/tunnel/shutdown", LUNNEL_SCOPE_CLIENT,
                             &lunnel__tunnel__shutdown_request__descriptor,
                             &lunnel__tunnel__shutdown_response__descriptor},
    [LUNNEL_API_GETCHECKPOINT] = {"/tunnel/getcheckpoint", LUNNEL_SCOPE_CHANNEL,
                                  &lunnel__tunnel__get_checkpoint_request__descriptor,
                                  &lunnel__tunnel__get_checkpoint_response__descriptor},
    [LUNNEL_API_CHECKPOINT] = {"/tunnel/checkpoint", LUNNEL_SCOPE_CHANNEL,
                               &lunnel__tunnel__checkpoint_request__descriptor,
                               &lunnel__tunnel__checkpoint_response__descriptor},
    [LUNNEL_API_READRECORDS] = {"/tunnel/readrecords", LUNNEL_SCOPE_CHANNEL,
                                &lunnel__tunnel__read_records_request__descriptor, NULL},
    [LUNNEL_API_GETRPO] = {"/tunnel/getrpo", LUNNEL_SCOPE_ADMIN,
                           &lunnel__tunnel__get_rpo_request__descriptor,
                           &lunnel__tunnel__get_rpo_response__descriptor},
    [LUNNEL_API_GETRPOBYOFFSET] = {"/tunnel/getrpobyoffset", LUNNEL_SCOPE_ADMIN,
                                   &lunnel__tunnel__get_rpo_request__descriptor,
                                   &lunnel__tunnel__get_rpo_response__descriptor},
    [LUNNEL_API_SCHEDULE] = {"/tunnel/schedule", LUNNEL_SCOPE_ADMIN,
                             &lunnel__tunnel__schedule_request__descriptor,
                             &lunnel__tunnel__schedule_response__descriptor},
};

struct lunnel_api {
    lunnel_http *http;
    lunnel_api_config cfg;
};

struct lunnel_api_call {
    lunnel_api *api;
    lunnel_api_op op;
    lunnel_http_request *req;
    lunnel_api_cb cb;
    void *ud;
    int invalid; /* request did not match op: deliver an error */
};

const char *lunnel_api_op_path(lunnel_api_op op)
{
    return (unsigned)op < LUNNEL_API_N_OPS ? ops[op].path : "?";
}

lunnel_call_scope lunnel_api_op_scope(lunnel_api_op op)
{
    return (unsigned)op < LUNNEL_API_N_OPS ? ops[op].scope : LUNNEL_SCOPE_ADMIN;
}

void lunnel_api_config_defaults(lunnel_api_config *cfg)
{
    cfg->read_records_retry = lunnel_retry_read_records;
    cfg->default_retry = lunnel_retry_default;
}

lunnel_api *lunnel_api_new(lunnel_http *http, const lunnel_api_config *cfg)
{
    lunnel_api *api = calloc(1, sizeof *api);
    if (!api) return NULL;
    api->http = http;
    /* the transport reads no error bodies: Tablestore's reader and retry rule are ours */
    lunnel_http_set_protocol(http, &lunnel_tunnel_http_protocol);
    if (cfg)
        api->cfg = *cfg;
    else
        lunnel_api_config_defaults(&api->cfg);
    return api;
}

void lunnel_api_free(lunnel_api *api)
{
    free(api);
}

static void on_http(lunnel_http_response *resp, void *ud)
{
    lunnel_api_call *call = ud;
    const op_info *oi = &ops[call->op];
    lunnel_error derr;
    lunnel_api_result res = {
        .op = call->op,
        .request_id = resp->request_id,
        .trace_id = resp->trace_id,
        .attempts = resp->attempts,
    };
    if (resp->err && call->invalid) {
        derr = *resp->err;
        snprintf(derr.message, sizeof derr.message,
                 "request is not a valid %s (wrong message type or a required field missing)",
                 oi->req->short_name);
        snprintf(derr.path, sizeof derr.path, "%s", oi->path);
        res.err = &derr;
    } else if (resp->err) {
        res.err = resp->err;
    } else if (!oi->resp) {
        res.raw = resp->body;
        res.raw_len = resp->body_len;
        resp->body = NULL; /* ours now; freed below unless the callback takes it */
    } else {
        res.msg = protobuf_c_message_unpack(oi->resp, NULL, resp->body_len,
                                            resp->body ? resp->body : (const uint8_t *)"");
        if (!res.msg) {
            lunnel_error_clear(&derr);
            lunnel_error_set(&derr, LUNNEL_NET_BAD_RESPONSE,
                             "response of %zu bytes does not parse as %s", resp->body_len,
                             oi->resp->short_name);
            derr.http_status = resp->status;
            snprintf(derr.request_id, sizeof derr.request_id, "%s", resp->request_id);
            snprintf(derr.trace_id, sizeof derr.trace_id, "%s", resp->trace_id);
            snprintf(derr.path, sizeof derr.path, "%s", oi->path);
            derr.attempts = resp->attempts;
            res.err = &derr;
        }
    }
    res.cls = res.err ? lunnel_error_classify(res.err, oi->scope) : LUNNEL_ERRCLASS_NONE;
    lunnel_api_cb cb = call->cb;
    void *cud = call->ud;
    free(call); /* the http request frees itself after this callback */
    cb(&res, cud);
    if (res.msg) protobuf_c_message_free_unpacked(res.msg, NULL);
    free(res.raw);
}

lunnel_api_call *lunnel_api_send(lunnel_api *api, lunnel_api_op op, const ProtobufCMessage *req,
                                 lunnel_api_cb cb, void *ud)
{
    lunnel_api_call *call = calloc(1, sizeof *call);
    if (!call) return NULL;
    call->api = api;
    call->op = (unsigned)op < LUNNEL_API_N_OPS ? op : LUNNEL_API_LIST;
    call->cb = cb;
    call->ud = ud;
    const op_info *oi = &ops[call->op];
    uint8_t small[512];
    uint8_t *buf = small;
    size_t len = 0;
    int bad = (unsigned)op >= LUNNEL_API_N_OPS || !req || req->descriptor != oi->req ||
              !protobuf_c_message_check(req);
    call->invalid = bad;
    if (!bad) {
        len = protobuf_c_message_get_packed_size(req);
        if (len > sizeof small) buf = malloc(len);
        if (!buf) {
            free(call);
            return NULL;
        }
        protobuf_c_message_pack(req, buf);
    }
    const lunnel_retry_policy *policy =
        call->op == LUNNEL_API_READRECORDS ? &api->cfg.read_records_retry : &api->cfg.default_retry;
    /* An invalid request is sent as a call to an impossible path so the error still arrives
     * through the callback on the next loop iteration (http delivers "bad path"). */
    call->req = lunnel_http_post(api->http, bad ? "" : oi->path, buf, len,
                                 LUNNEL_TUNNEL_API_VERSION, policy, on_http, call);
    if (buf != small) free(buf);
    if (!call->req) {
        free(call);
        return NULL;
    }
    return call;
}

void lunnel_api_cancel(lunnel_api_call *call)
{
    if (!call) return;
    lunnel_http_cancel(call->req);
    free(call);
}

/* ---- synchronous helper ---- */

typedef struct {
    int done;
    lunnel_api_sync_result *out;
} sync_state;

static void on_sync(lunnel_api_result *res, void *ud)
{
    sync_state *st = ud;
    lunnel_api_sync_result *out = st->out;
    out->cls = res->cls;
    if (res->err) out->err = *res->err;
    out->msg = res->msg;
    res->msg = NULL;
    out->raw = res->raw;
    out->raw_len = res->raw_len;
    res->raw = NULL;
    snprintf(out->request_id, sizeof out->request_id, "%s", res->request_id ? res->request_id : "");
    st->done = 1;
}

int lunnel_api_call_sync(lunnel_api *api, struct ev_loop *loop, lunnel_api_op op,
                         const ProtobufCMessage *req, double timeout_s, lunnel_api_sync_result *out)
{
    memset(out, 0, sizeof *out);
    sync_state st = {.out = out};
    lunnel_api_call *call = lunnel_api_send(api, op, req, on_sync, &st);
    if (!call) {
        lunnel_error_set(&out->err, LUNNEL_NET_NOMEM, "out of memory");
        out->cls = LUNNEL_ERRCLASS_FATAL;
        return -1;
    }
    if (timeout_s <= 0) {
        const lunnel_retry_policy *p =
            op == LUNNEL_API_READRECORDS ? &api->cfg.read_records_retry : &api->cfg.default_retry;
        timeout_s = p->window_ms / 1000.0 + 120.0;
    }
    if (lunnel_http_run_until(loop, &st.done, timeout_s) != 0) {
        lunnel_api_cancel(call);
        lunnel_error_set(&out->err, LUNNEL_NET_TIMEOUT, "no answer within %.0f s", timeout_s);
        snprintf(out->err.path, sizeof out->err.path, "%s", lunnel_api_op_path(op));
        out->cls = LUNNEL_ERRCLASS_RETRY;
        return -1;
    }
    return out->err.kind == LUNNEL_NET_OK ? 0 : -1;
}

void lunnel_api_sync_result_free(lunnel_api_sync_result *out)
{
    if (out->msg) protobuf_c_message_free_unpacked(out->msg, NULL);
    free(out->raw);
    out->msg = NULL;
    out->raw = NULL;
}
