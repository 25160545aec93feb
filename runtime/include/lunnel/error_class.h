/* error_class.h: what a failed call means for the tunnel client (PROTOCOL.md section 1,
 * "Errors" and "Scope"): retry it, reconnect, close one channel, or stop; and what a failure
 * means for a whole run or command (its outcome, which the CLI turns into an exit status).
 * Also the Tablestore protocol that the tunnel installs on its HTTP client (http.h): how an
 * error body is read and which failed attempts are retried. */
#ifndef LUNNEL_ERROR_CLASS_H
#define LUNNEL_ERROR_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/errors.h"
#include "lunnel/http.h"

/* What the caller should do about it. */
typedef enum lunnel_error_class {
    LUNNEL_ERRCLASS_NONE = 0,     /* success */
    LUNNEL_ERRCLASS_FATAL,        /* stop the daemon / exit */
    LUNNEL_ERRCLASS_RETRY,        /* transient: retry the same call after backoff */
    LUNNEL_ERRCLASS_RECONNECT,    /* client id lost: connect again with a new client id */
    LUNNEL_ERRCLASS_CHANNEL_ONLY, /* close this channel (report CLOSE), keep the others */
} lunnel_error_class;

/* Which kind of call failed: the same server code means different things per scope. */
typedef enum lunnel_call_scope {
    LUNNEL_SCOPE_CLIENT = 0, /* Connect, Heartbeat, Shutdown: concern the whole client */
    LUNNEL_SCOPE_CHANNEL,    /* ReadRecords, GetCheckpoint, Checkpoint: one channel */
    LUNNEL_SCOPE_ADMIN,      /* create/list/describe/delete/rpo/schedule (CLI) */
} lunnel_call_scope;

/* How a run or a command ended, by cause (the CLI maps each to an exit status; the values are
 * numbered like those statuses, so the worker's "worker stopped status=N" line reads the same
 * as the exit status that follows). */
typedef enum lunnel_outcome {
    LUNNEL_OUTCOME_OK = 0,
    LUNNEL_OUTCOME_FAILED = 1, /* a runtime failure of any other kind */
    LUNNEL_OUTCOME_USAGE,      /* a parameter the service refused, a bad argument */
    LUNNEL_OUTCOME_AUTH,       /* authentication, permission, credentials */
    LUNNEL_OUTCOME_EXPIRED,    /* the tunnel expired */
    LUNNEL_OUTCOME_NOT_FOUND,  /* the table or tunnel does not exist */
} lunnel_outcome;

/* "fatal", "retry", "reconnect", "channel-only", "none" (static). */
const char *lunnel_error_class_str(lunnel_error_class cls);

/* 1 when the single HTTP attempt is worth retrying: 503 / OTSTunnelServerUnavailable, 5xx
 * without a parseable body, transport failures (reset, EOF, refused) and timeouts. */
int lunnel_error_is_retriable(const lunnel_error *err);

/* Client action for this error on a call of `scope` (PROTOCOL.md table):
 * retriable -> RETRY; OTSResourceGone -> RECONNECT; OTSTunnelExpired, OTSPermissionDenied,
 * OTSAuthFailed (already retried once after a credentials refresh), TLS and credentials
 * failures -> FATAL; other server errors -> CHANNEL_ONLY on a channel call (including
 * OTSParameterInvalid and OTSSequenceNumberNotMatch, which the caller may special-case by
 * code), FATAL on client/admin calls, except 5xx with a code -> RECONNECT on client calls. */
lunnel_error_class lunnel_error_classify(const lunnel_error *err, lunnel_call_scope scope);

/* 1 for a reply that cannot be understood: a 2xx whose body does not parse, or a 3xx/4xx
 * without an OTS error body (a redirect, another server's 404 page; 401/403 excepted: those
 * are refusals). Treated alike on every call: it fails the call, never the whole run; on a
 * channel call the channel is failed and reopened after its backoff (CHANNEL_ONLY), on a
 * client call the client is re-established after its backoff (RECONNECT), on an admin call
 * the command fails (FATAL). */
int lunnel_error_is_unparseable(const lunnel_error *err);

/* 1 when the reply says the endpoint is not Tablestore at all: unparseable, or a 5xx without
 * an OTS error body other than 502/503/504 (a proxy's or an overloaded front end's). Only
 * meaningful for the first call a process makes (a later one may be a passing proxy). */
int lunnel_error_not_tablestore(const lunnel_error *err);

/* The outcome of a run or command that failed with `err`: AUTH for OTSAuthFailed /
 * OTSPermissionDenied / OTSNoPermissionAccess / credentials failures / HTTP 401 and 403,
 * EXPIRED for OTSTunnelExpired, NOT_FOUND for a missing table or tunnel (OTSObjectNotExist,
 * OTSTunnelNotExist, OTSTableNotExist, OTSParameterInvalid whose message says "not
 * exist"/"not found", HTTP 404), USAGE for other OTSParameterInvalid and LUNNEL_NET_INVALID,
 * else FAILED (OK for no error). */
lunnel_outcome lunnel_error_outcome(const lunnel_error *err);

/* Reads a Tablestore error body (the tunnel service's Error message: code, message) into
 * err->code / err->message. 1 when it parsed with a code, else 0 (err untouched). */
int lunnel_tunnel_parse_error(const uint8_t *body, size_t len, lunnel_error *err);

/* The protocol of both Tablestore APIs for lunnel_http: the parser above and
 * lunnel_error_is_retriable. lunnel_api_new installs it on its client. */
extern const lunnel_http_protocol lunnel_tunnel_http_protocol;

#endif
