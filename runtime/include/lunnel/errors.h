/* errors.h: the one error value of the protocol layer (net + tunnel api) and its mapping to
 * client actions and process exit statuses (PROTOCOL.md section 1, "Errors" and "Scope").
 *
 * Every failed call hands back a lunnel_error: what kind of failure (transport, TLS, server
 * error, ...), the HTTP status, the server's code/message and its x-ots-requestid, so a
 * user-facing line can always name the problem, the code and the request id. */
#ifndef LUNNEL_ERRORS_H
#define LUNNEL_ERRORS_H

/* What failed. */
typedef enum lunnel_net_code {
    LUNNEL_NET_OK = 0,
    LUNNEL_NET_TRANSPORT,    /* connect refused, reset, EOF, DNS: no HTTP status */
    LUNNEL_NET_TIMEOUT,      /* request timeout elapsed */
    LUNNEL_NET_TLS,          /* certificate verification / handshake failure */
    LUNNEL_NET_SERVER,       /* non-2xx status; `code`/`message` set when the body parsed */
    LUNNEL_NET_BAD_RESPONSE, /* 2xx with a body that does not parse as the expected message */
    LUNNEL_NET_CREDENTIALS,  /* no usable credentials (command failed, bad JSON, missing) */
    LUNNEL_NET_CANCELLED,    /* the client was freed while the call was in flight */
    LUNNEL_NET_INVALID,      /* bad argument from the caller (e.g. unencodable request) */
    LUNNEL_NET_NOMEM,
} lunnel_net_code;

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

/* Exit statuses shared by every lunnel command. */
enum {
    LUNNEL_EXIT_OK = 0,
    LUNNEL_EXIT_RUNTIME = 1,
    LUNNEL_EXIT_USAGE = 2,
    LUNNEL_EXIT_AUTH = 3,
    LUNNEL_EXIT_EXPIRED = 4,
    LUNNEL_EXIT_NOT_FOUND = 5,
    LUNNEL_EXIT_STUCK = 6, /* a script call ran past --stuck-exit-timeout (restart me) */
};

typedef struct lunnel_error {
    lunnel_net_code kind;
    int http_status;     /* 0 when no response was received */
    char code[64];       /* server code, e.g. "OTSAuthFailed"; "" when none */
    char message[512];   /* server message or local description (never contains secrets) */
    char request_id[96]; /* x-ots-requestid of the response; "" when none */
    char trace_id[64];   /* the x-ots-trace-id we sent */
    char path[48];       /* request path, e.g. "/tunnel/connect" */
    int attempts;        /* how many HTTP attempts were made (retries + 1) */
} lunnel_error;

/* "transport", "tls", ... (static). */
const char *lunnel_net_code_str(lunnel_net_code code);
/* "fatal", "retry", "reconnect", "channel-only", "none" (static). */
const char *lunnel_error_class_str(lunnel_error_class cls);

/* Resets to LUNNEL_NET_OK with empty strings. */
void lunnel_error_clear(lunnel_error *err);
/* Sets kind + printf message (other fields untouched). */
void lunnel_error_set(lunnel_error *err, lunnel_net_code kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

/* Exit status for a command that failed with `err`: 3 for OTSAuthFailed /
 * OTSPermissionDenied / credentials failures, 4 for OTSTunnelExpired, 5 for a missing table
 * or tunnel (OTSObjectNotExist, OTSTunnelNotExist, or OTSParameterInvalid whose message says
 * "not exist"/"not found"), 2 for other OTSParameterInvalid and LUNNEL_NET_INVALID, else 1. */
int lunnel_error_exit_status(const lunnel_error *err);

/* One line for humans, e.g.
 *   "/tunnel/describe failed: OTSParameterInvalid (HTTP 400): tunnel not exist
 *    [request id 0005-..., trace id ...]". Always NUL-terminated within cap. */
void lunnel_error_format(const lunnel_error *err, char *out, unsigned long cap);

#endif
