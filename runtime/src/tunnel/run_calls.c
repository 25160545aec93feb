/* run_calls.c: the worker's tunnel calls (worker_env.h lunnel_worker_calls) on api.h: builds
 * the protobuf-c requests from plain strings / channel views and turns each api result back
 * into strings, a sequence number, channel views or the raw ReadRecords body for the callback.
 * A call's handle is its context here; cancelling it cancels the api call and frees it. */
#include <stdlib.h>
#include <string.h>

#include "lunnel/api.h"
#include "lunnel/worker_env.h"

typedef void (*rc_any_fn)(void); /* generic callback slot; cast back per op */

/* The handle of one call in flight (lunnel_worker_call is this struct). */
struct lunnel_worker_call {
    rc_any_fn fn; /* one of the lunnel_worker_*_cb types, cast back per op */
    void *ud;
    lunnel_api_call *call;
};
typedef struct lunnel_worker_call rc_ctx;

static rc_ctx *ctx_new(rc_any_fn fn, void *ud)
{
    rc_ctx *c = malloc(sizeof *c);
    if (c) {
        c->fn = fn;
        c->ud = ud;
        c->call = NULL;
    }
    return c;
}

/* The handle once the api took the call; NULL (and nothing left allocated) when it did not. */
static lunnel_worker_call *sent(rc_ctx *c, lunnel_api_call *call)
{
    if (!call) {
        free(c);
        return NULL;
    }
    c->call = call;
    return c;
}

static void rc_cancel(void *impl, lunnel_worker_call *c)
{
    (void)impl;
    if (!c) return;
    lunnel_api_cancel(c->call);
    free(c);
}

/* ---- connect ---- */
static void connect_done(lunnel_api_result *r, void *ud)
{
    rc_ctx *c = ud;
    lunnel_worker_connect_cb cb = (lunnel_worker_connect_cb)c->fn;
    if (r->err) {
        cb(c->ud, r->err, NULL);
    } else {
        Lunnel__Tunnel__ConnectResponse *m = (Lunnel__Tunnel__ConnectResponse *)r->msg;
        cb(c->ud, NULL, m->client_id ? m->client_id : "");
    }
    free(c);
}

static lunnel_worker_call *rc_connect(void *api, const char *tunnel_id, int64_t timeout_s,
                                      const char *client_tag, lunnel_worker_connect_cb cb, void *ud)
{
    Lunnel__Tunnel__ClientConfig cc = LUNNEL__TUNNEL__CLIENT_CONFIG__INIT;
    cc.has_timeout = 1;
    cc.timeout = timeout_s;
    cc.client_tag = (char *)client_tag;
    Lunnel__Tunnel__ConnectRequest req = LUNNEL__TUNNEL__CONNECT_REQUEST__INIT;
    req.tunnel_id = (char *)tunnel_id;
    req.client_config = &cc;
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    return c ? sent(c, lunnel_api_connect(api, &req, connect_done, c)) : NULL;
}

/* ---- heartbeat ---- */
static void heartbeat_done(lunnel_api_result *r, void *ud)
{
    rc_ctx *c = ud;
    lunnel_worker_heartbeat_cb cb = (lunnel_worker_heartbeat_cb)c->fn;
    if (r->err) {
        cb(c->ud, r->err, NULL, 0);
        free(c);
        return;
    }
    Lunnel__Tunnel__HeartbeatResponse *m = (Lunnel__Tunnel__HeartbeatResponse *)r->msg;
    lunnel_channel_view *v = calloc(m->n_channels + 1, sizeof *v);
    if (!v) {
        lunnel_error e;
        lunnel_error_clear(&e);
        lunnel_error_set(&e, LUNNEL_NET_NOMEM, "out of memory reading /tunnel/heartbeat");
        cb(c->ud, &e, NULL, 0);
        free(c);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->n_channels; i++) {
        if (!m->channels[i]->channel_id) continue;
        v[n].id = m->channels[i]->channel_id; /* valid during the callback */
        v[n].version = m->channels[i]->version;
        v[n].status = (int)m->channels[i]->status;
        n++;
    }
    cb(c->ud, NULL, v, n);
    free(v);
    free(c);
}

static lunnel_worker_call *rc_heartbeat(void *api, const char *tunnel_id, const char *client_id,
                                        const lunnel_channel_view *v, size_t n,
                                        lunnel_worker_heartbeat_cb cb, void *ud)
{
    Lunnel__Tunnel__Channel *chs = calloc(n + 1, sizeof *chs);
    Lunnel__Tunnel__Channel **ptrs = calloc(n + 1, sizeof *ptrs);
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    if (!chs || !ptrs || !c) {
        free(chs);
        free(ptrs);
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        Lunnel__Tunnel__Channel init = LUNNEL__TUNNEL__CHANNEL__INIT;
        chs[i] = init;
        chs[i].channel_id = v[i].id;
        chs[i].version = v[i].version;
        chs[i].status = (Lunnel__Tunnel__ChannelStatus)v[i].status;
        ptrs[i] = &chs[i];
    }
    Lunnel__Tunnel__HeartbeatRequest req = LUNNEL__TUNNEL__HEARTBEAT_REQUEST__INIT;
    req.tunnel_id = (char *)tunnel_id;
    req.client_id = (char *)client_id;
    req.n_channels = n;
    req.channels = ptrs;
    lunnel_api_call *call = lunnel_api_heartbeat(api, &req, heartbeat_done, c);
    free(chs); /* packed by the call */
    free(ptrs);
    return sent(c, call);
}

/* ---- shutdown / checkpoint (empty responses) ---- */
static void status_done(lunnel_api_result *r, void *ud)
{
    rc_ctx *c = ud;
    ((lunnel_worker_status_cb)c->fn)(c->ud, r->err);
    free(c);
}

static lunnel_worker_call *rc_shutdown(void *api, const char *tunnel_id, const char *client_id,
                                       lunnel_worker_status_cb cb, void *ud)
{
    Lunnel__Tunnel__ShutdownRequest req = LUNNEL__TUNNEL__SHUTDOWN_REQUEST__INIT;
    req.tunnel_id = (char *)tunnel_id;
    req.client_id = (char *)client_id;
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    return c ? sent(c, lunnel_api_shutdown(api, &req, status_done, c)) : NULL;
}

static lunnel_worker_call *rc_checkpoint(void *api, const char *tunnel_id, const char *client_id,
                                         const char *channel_id, const char *token, int64_t seq,
                                         lunnel_worker_status_cb cb, void *ud)
{
    Lunnel__Tunnel__CheckpointRequest req = LUNNEL__TUNNEL__CHECKPOINT_REQUEST__INIT;
    req.tunnel_id = (char *)tunnel_id;
    req.client_id = (char *)client_id;
    req.channel_id = (char *)channel_id;
    req.checkpoint = (char *)token;
    req.sequence_number = seq;
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    return c ? sent(c, lunnel_api_checkpoint(api, &req, status_done, c)) : NULL;
}

/* ---- getcheckpoint ---- */
static void getcp_done(lunnel_api_result *r, void *ud)
{
    rc_ctx *c = ud;
    lunnel_worker_getcp_cb cb = (lunnel_worker_getcp_cb)c->fn;
    if (r->err) {
        cb(c->ud, r->err, NULL, 0);
    } else {
        Lunnel__Tunnel__GetCheckpointResponse *m = (Lunnel__Tunnel__GetCheckpointResponse *)r->msg;
        cb(c->ud, NULL, m->checkpoint ? m->checkpoint : "", m->sequence_number);
    }
    free(c);
}

static lunnel_worker_call *rc_getcheckpoint(void *api, const char *tunnel_id, const char *client_id,
                                            const char *channel_id, lunnel_worker_getcp_cb cb,
                                            void *ud)
{
    Lunnel__Tunnel__GetCheckpointRequest req = LUNNEL__TUNNEL__GET_CHECKPOINT_REQUEST__INIT;
    req.tunnel_id = (char *)tunnel_id;
    req.client_id = (char *)client_id;
    req.channel_id = (char *)channel_id;
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    return c ? sent(c, lunnel_api_get_checkpoint(api, &req, getcp_done, c)) : NULL;
}

/* ---- readrecords ---- */
static void read_done(lunnel_api_result *r, void *ud)
{
    rc_ctx *c = ud;
    lunnel_worker_read_cb cb = (lunnel_worker_read_cb)c->fn;
    if (r->err) {
        cb(c->ud, r->err, NULL, 0, r->trace_id);
    } else {
        uint8_t *body = r->raw;
        size_t len = r->raw_len;
        r->raw = NULL; /* ownership passes to the worker */
        cb(c->ud, NULL, body, len, r->trace_id);
    }
    free(c);
}

static lunnel_worker_call *rc_readrecords(void *api, const char *tunnel_id, const char *client_id,
                                          const char *channel_id, const char *token,
                                          lunnel_worker_read_cb cb, void *ud)
{
    Lunnel__Tunnel__ReadRecordsRequest req = LUNNEL__TUNNEL__READ_RECORDS_REQUEST__INIT;
    req.tunnel_id = (char *)tunnel_id;
    req.client_id = (char *)client_id;
    req.channel_id = (char *)channel_id;
    req.token = (char *)token;
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    return c ? sent(c, lunnel_api_read_records(api, &req, read_done, c)) : NULL;
}

/* ---- describe ---- */
static void describe_done(lunnel_api_result *r, void *ud)
{
    rc_ctx *c = ud;
    lunnel_worker_describe_cb cb = (lunnel_worker_describe_cb)c->fn;
    if (r->err) {
        cb(c->ud, r->err, 0, 0);
    } else {
        Lunnel__Tunnel__DescribeTunnelResponse *m =
            (Lunnel__Tunnel__DescribeTunnelResponse *)r->msg;
        int term = 0;
        for (size_t i = 0; i < m->n_channels; i++)
            if (m->channels[i]->channel_status &&
                strcmp(m->channels[i]->channel_status, "TERMINATED") == 0)
                term++;
        cb(c->ud, NULL, (int)m->n_channels, term);
    }
    free(c);
}

static lunnel_worker_call *rc_describe(void *api, const char *table_name, const char *tunnel_name,
                                       const char *tunnel_id, lunnel_worker_describe_cb cb,
                                       void *ud)
{
    Lunnel__Tunnel__DescribeTunnelRequest req = LUNNEL__TUNNEL__DESCRIBE_TUNNEL_REQUEST__INIT;
    req.table_name = (char *)(table_name ? table_name : "");
    req.tunnel_name = (char *)(tunnel_name ? tunnel_name : "");
    req.tunnel_id = (char *)tunnel_id;
    rc_ctx *c = ctx_new((rc_any_fn)cb, ud);
    return c ? sent(c, lunnel_api_describe_tunnel(api, &req, describe_done, c)) : NULL;
}

lunnel_worker_calls lunnel_worker_calls_api(struct lunnel_api *api)
{
    return (lunnel_worker_calls){.connect = rc_connect,
                                 .heartbeat = rc_heartbeat,
                                 .shutdown = rc_shutdown,
                                 .get_checkpoint = rc_getcheckpoint,
                                 .checkpoint = rc_checkpoint,
                                 .read_records = rc_readrecords,
                                 .describe = rc_describe,
                                 .cancel = rc_cancel,
                                 .impl = api};
}
