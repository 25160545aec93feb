/* api.h: typed asynchronous calls of the Tunnel Service API (all 13 tunnel paths) on top
 * of net/http.h, with the error classification of PROTOCOL.md.
 *
 * Requests and responses are the protobuf-c structs of proto/tunnel_service_api.proto
 * (include <proto/tunnel_service_api.pb-c.h>, types Lunnel__Tunnel__*), except ReadRecords,
 * whose response comes back as raw bytes for the zero-copy scanner (codec).
 *
 * Ownership and threads:
 *   - The request struct is borrowed only during the lunnel_api_* call (it is packed
 *     immediately); the caller may free or reuse it as soon as the call returns.
 *   - The callback runs on the loop thread of the lunnel_http the api was built on, exactly
 *     once per call (unless cancelled), never from inside the lunnel_api_* call itself.
 *   - result->msg (decoded response) is freed when the callback returns, unless the
 *     callback takes it by setting result->msg = NULL; it then frees it with
 *     protobuf_c_message_free_unpacked(msg, NULL).
 *   - result->raw (ReadRecords response bytes, malloc'd) likewise: set result->raw = NULL to
 *     keep it, then free() it (e.g. when the batch's completion comes back).
 *   - Every string/pointer in `result` is valid only during the callback.
 * Retries: each call retries retriable failures inside its window (ReadRecords uses
 * cfg.read_records_retry, everything else cfg.default_retry); an OTSAuthFailed triggers one
 * credentials refresh + one more attempt (net/http.c). What reaches the callback is final:
 * act on result->cls. */
#ifndef LUNNEL_API_H
#define LUNNEL_API_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "lunnel/error_class.h"
#include "lunnel/errors.h"
#include "lunnel/http.h"
#include "lunnel/retry.h"

struct ev_loop;

#define LUNNEL_TUNNEL_API_VERSION "2018-04-01"

typedef enum lunnel_api_op {
    LUNNEL_API_CREATE = 0,     /* CreateTunnelRequest    -> CreateTunnelResponse */
    LUNNEL_API_DELETE,         /* DeleteTunnelRequest    -> DeleteTunnelResponse */
    LUNNEL_API_LIST,           /* ListTunnelRequest      -> ListTunnelResponse */
    LUNNEL_API_DESCRIBE,       /* DescribeTunnelRequest  -> DescribeTunnelResponse */
    LUNNEL_API_CONNECT,        /* ConnectRequest         -> ConnectResponse */
    LUNNEL_API_HEARTBEAT,      /* HeartbeatRequest       -> HeartbeatResponse */
    LUNNEL_API_SHUTDOWN,       /* ShutdownRequest        -> ShutdownResponse */
    LUNNEL_API_GETCHECKPOINT,  /* GetCheckpointRequest   -> GetCheckpointResponse */
    LUNNEL_API_CHECKPOINT,     /* CheckpointRequest      -> CheckpointResponse */
    LUNNEL_API_READRECORDS,    /* ReadRecordsRequest     -> raw ReadRecordsResponse bytes */
    LUNNEL_API_GETRPO,         /* GetRpoRequest          -> GetRpoResponse */
    LUNNEL_API_GETRPOBYOFFSET, /* GetRpoRequest          -> GetRpoResponse */
    LUNNEL_API_SCHEDULE,       /* ScheduleRequest        -> ScheduleResponse */
    LUNNEL_API_N_OPS
} lunnel_api_op;

const char *lunnel_api_op_path(lunnel_api_op op);        /* "/tunnel/connect" */
lunnel_call_scope lunnel_api_op_scope(lunnel_api_op op); /* CLIENT / CHANNEL / ADMIN */

typedef struct lunnel_api_config {
    lunnel_retry_policy read_records_retry; /* default lunnel_retry_read_records */
    lunnel_retry_policy default_retry;      /* default lunnel_retry_default */
} lunnel_api_config;
void lunnel_api_config_defaults(lunnel_api_config *cfg);

typedef struct lunnel_api lunnel_api;
typedef struct lunnel_api_call lunnel_api_call;

typedef struct lunnel_api_result {
    lunnel_api_op op;
    const lunnel_error *err; /* NULL on success */
    lunnel_error_class cls;  /* LUNNEL_ERRCLASS_NONE on success, else classified by op scope */
    ProtobufCMessage *msg;   /* decoded response (all ops but READRECORDS); see ownership */
    uint8_t *raw;            /* READRECORDS only: the response body; may be NULL if empty */
    size_t raw_len;
    const char *request_id; /* x-ots-requestid, "" when none */
    const char *trace_id;
    int attempts;
} lunnel_api_result;

typedef void (*lunnel_api_cb)(lunnel_api_result *result, void *ud);

/* `http` is borrowed and must outlive the api. cfg NULL = defaults. NULL on OOM. */
lunnel_api *lunnel_api_new(lunnel_http *http, const lunnel_api_config *cfg);
/* Frees the api; calls in flight must have completed or been cancelled first. */
void lunnel_api_free(lunnel_api *api);

/* Generic send: `req` must be the request message type of `op` (checked: a mismatch is
 * delivered as a LUNNEL_NET_INVALID error). Returns a handle valid until the callback
 * returns or lunnel_api_cancel(); NULL only when out of memory (callback not called). */
lunnel_api_call *lunnel_api_send(lunnel_api *api, lunnel_api_op op, const ProtobufCMessage *req,
                                 lunnel_api_cb cb, void *ud);
/* Abandons a call; its callback is not called. Not from inside its own callback. */
void lunnel_api_cancel(lunnel_api_call *call);

/* Typed shorthands (same semantics as lunnel_api_send). */
#define LUNNEL_API_TYPED(name, op, Req)                                                            \
    static inline lunnel_api_call *lunnel_api_##name(lunnel_api *api, const Req *req,              \
                                                     lunnel_api_cb cb, void *ud)                   \
    {                                                                                              \
        return lunnel_api_send(api, op, &req->base, cb, ud);                                       \
    }
/* These need <proto/tunnel_service_api.pb-c.h>; included here so users get the types. */
#include <proto/tunnel_service_api.pb-c.h>
LUNNEL_API_TYPED(create_tunnel, LUNNEL_API_CREATE, Lunnel__Tunnel__CreateTunnelRequest)
LUNNEL_API_TYPED(delete_tunnel, LUNNEL_API_DELETE, Lunnel__Tunnel__DeleteTunnelRequest)
LUNNEL_API_TYPED(list_tunnel, LUNNEL_API_LIST, Lunnel__Tunnel__ListTunnelRequest)
LUNNEL_API_TYPED(describe_tunnel, LUNNEL_API_DESCRIBE, Lunnel__Tunnel__DescribeTunnelRequest)
LUNNEL_API_TYPED(connect, LUNNEL_API_CONNECT, Lunnel__Tunnel__ConnectRequest)
LUNNEL_API_TYPED(heartbeat, LUNNEL_API_HEARTBEAT, Lunnel__Tunnel__HeartbeatRequest)
LUNNEL_API_TYPED(shutdown, LUNNEL_API_SHUTDOWN, Lunnel__Tunnel__ShutdownRequest)
LUNNEL_API_TYPED(get_checkpoint, LUNNEL_API_GETCHECKPOINT, Lunnel__Tunnel__GetCheckpointRequest)
LUNNEL_API_TYPED(checkpoint, LUNNEL_API_CHECKPOINT, Lunnel__Tunnel__CheckpointRequest)
LUNNEL_API_TYPED(read_records, LUNNEL_API_READRECORDS, Lunnel__Tunnel__ReadRecordsRequest)
LUNNEL_API_TYPED(get_rpo, LUNNEL_API_GETRPO, Lunnel__Tunnel__GetRpoRequest)
LUNNEL_API_TYPED(get_rpo_by_offset, LUNNEL_API_GETRPOBYOFFSET, Lunnel__Tunnel__GetRpoRequest)
LUNNEL_API_TYPED(schedule, LUNNEL_API_SCHEDULE, Lunnel__Tunnel__ScheduleRequest)
#undef LUNNEL_API_TYPED

/* Synchronous helper for CLI commands and tests: runs `loop` until the call completes (or
 * timeout_s, 0 = no extra limit beyond the call's own retry window + 120 s). The result is
 * copied into *out, which the caller releases with lunnel_api_sync_result_free(). Returns 0
 * on success, -1 on failure (out->err filled; out->cls set). */
typedef struct lunnel_api_sync_result {
    lunnel_error err;
    lunnel_error_class cls;
    ProtobufCMessage *msg; /* owned: freed by lunnel_api_sync_result_free */
    uint8_t *raw;          /* owned (READRECORDS) */
    size_t raw_len;
    char request_id[96];
} lunnel_api_sync_result;
int lunnel_api_call_sync(lunnel_api *api, struct ev_loop *loop, lunnel_api_op op,
                         const ProtobufCMessage *req, double timeout_s,
                         lunnel_api_sync_result *out);
void lunnel_api_sync_result_free(lunnel_api_sync_result *out);

#endif
