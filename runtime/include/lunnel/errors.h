/* errors.h: the one error value of the transport (net) and everything above it.
 *
 * Every failed call hands back a lunnel_error: what kind of failure (transport, TLS, server
 * error, ...), the HTTP status, the server's code/message and its x-ots-requestid, so a
 * user-facing line can always name the problem, the code and the request id. What an error
 * means for the tunnel (retry, reconnect, fatal; PROTOCOL.md "Errors" and "Scope") is the
 * tunnel's: error_class.h. Exit statuses are the CLI's (runtime/src/cli/exit_status.h). */
#ifndef LUNNEL_ERRORS_H
#define LUNNEL_ERRORS_H

/* What failed. */
typedef enum lunnel_net_code {
    LUNNEL_NET_OK = 0,
    LUNNEL_NET_TRANSPORT,    /* connect refused, reset, EOF, DNS: no HTTP status */
    LUNNEL_NET_TIMEOUT,      /* request timeout elapsed */
    LUNNEL_NET_TLS,          /* certificate verification / handshake failure */
    LUNNEL_NET_SERVER,       /* non-2xx status; `code`/`message` set when the body parsed
                                (by the protocol the caller installed, http.h) */
    LUNNEL_NET_BAD_RESPONSE, /* 2xx with a body that does not parse as the expected message */
    LUNNEL_NET_CREDENTIALS,  /* no usable credentials (command failed, bad JSON, missing) */
    LUNNEL_NET_CANCELLED,    /* the client was freed while the call was in flight */
    LUNNEL_NET_INVALID,      /* bad argument from the caller (e.g. unencodable request) */
    LUNNEL_NET_NOMEM,
} lunnel_net_code;

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

/* Resets to LUNNEL_NET_OK with empty strings. */
void lunnel_error_clear(lunnel_error *err);
/* Sets kind + printf message (other fields untouched). */
void lunnel_error_set(lunnel_error *err, lunnel_net_code kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line for humans, e.g.
 *   "/tunnel/describe failed: OTSParameterInvalid (HTTP 400): tunnel not exist
 *    [request id 0005-..., trace id ...]". Always NUL-terminated within cap. */
void lunnel_error_format(const lunnel_error *err, char *out, unsigned long cap);

#endif
