/* http.h: the signed-POST client of the Tablestore / Tunnel protocol on a libev loop.
 *
 * libcurl's multi interface is driven by the loop (socket + timer callbacks, as in curl's
 * evhiperfifo example): nothing here blocks the loop thread. Connections are kept alive
 * and reused between calls to the same endpoint. HTTPS verifies the server certificate
 * (system CAs, or --ca-file). Every request carries x-ots-date, -apiversion, -accesskeyid,
 * -instancename, -contentmd5, -ststoken (STS), a fresh x-ots-trace-id, and x-ots-signature
 * computed by net/sign.c from the credentials current at that attempt.
 *
 * Retries (retry.h) happen here, inside the call's window: only failures the installed
 * protocol calls retriable are retried (lunnel_http_protocol: the transport does not read
 * error bodies itself); an OTSAuthFailed on refreshable credentials triggers one credentials
 * refresh and one more attempt.
 *
 * Threads: everything, callbacks included, runs on the loop thread of `loop`. */
#ifndef LUNNEL_HTTP_H
#define LUNNEL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/credentials.h"
#include "lunnel/errors.h"
#include "lunnel/retry.h"

struct ev_loop;

typedef struct lunnel_http lunnel_http;
typedef struct lunnel_http_request lunnel_http_request;

typedef struct lunnel_http_config {
    const char *endpoint;      /* "http://host:port" or "https://host"; a trailing '/' is ignored */
    const char *instance;      /* x-ots-instancename */
    const char *ca_file;       /* PEM bundle to trust instead of the system's; NULL = system */
    double timeout_s;          /* per attempt, whole request; 0 = 60 s */
    double connect_timeout_s;  /* 0 = 10 s */
    size_t max_response_bytes; /* larger bodies fail the attempt (a larger declared
                                  Content-Length fails it before any byte is read); 0 = 64 MiB */
    int max_connections;       /* attempts in flight at once (each holds at most one
                                  connection); more wait in a FIFO; 0 = 32. Heartbeat, Connect
                                  and Shutdown never wait (up to 4 more connections) */
} lunnel_http_config;

/* What a finished call hands to its callback. Valid only during the callback. */
typedef struct lunnel_http_response {
    const lunnel_error *err; /* NULL on a 2xx; else kind, status, code, message, ids, attempts */
    int status;              /* HTTP status of the last attempt; 0 when none was received */
    const char *request_id;  /* x-ots-requestid of the last response; "" when none */
    const char *trace_id;    /* x-ots-trace-id sent (the same on every attempt of a call) */
    uint8_t *body;           /* 2xx body (malloc'd; may be NULL when empty). The callback may
                              * take ownership by setting body = NULL and later free() it;
                              * otherwise it is freed when the callback returns. */
    size_t body_len;
    int attempts;
} lunnel_http_response;

typedef void (*lunnel_http_cb)(lunnel_http_response *resp, void *ud);

/* The protocol spoken over a client, installed by its user (the tunnel's is
 * lunnel_tunnel_http_protocol, error_class.h): how a non-2xx body names the error, and which
 * failed attempts are worth another within the call's retry window. */
typedef struct lunnel_http_protocol {
    /* fills err->code / err->message from an error body; 1 when it did, else 0 */
    int (*parse_error)(const uint8_t *body, size_t len, lunnel_error *err);
    /* 1 when a failed attempt may be retried */
    int (*retriable)(const lunnel_error *err);
} lunnel_http_protocol;

/* Creates a client on `loop`. `creds` is borrowed (must outlive the client); for refresh on
 * OTSAuthFailed call lunnel_credentials_start(creds, loop) first. Strings are copied.
 * NULL + err on a bad endpoint or libcurl init failure. */
lunnel_http *lunnel_http_new(struct ev_loop *loop, const lunnel_http_config *cfg,
                             lunnel_credentials *creds, lunnel_error *err);

/* Installs `p` (borrowed: static) for the calls posted from now on. Without one, error
 * bodies are not read and only transport failures and timeouts are retried. */
void lunnel_http_set_protocol(lunnel_http *h, const lunnel_http_protocol *p);

/* Cancels every call in flight, calling each callback once with err->kind
 * LUNNEL_NET_CANCELLED (so owners can release their user data), then frees the client.
 * Must not be called from inside one of its callbacks. */
void lunnel_http_free(lunnel_http *h);

/* POSTs `body` (copied) to endpoint + path with x-ots-apiversion `api_version`.
 * `retry` (copied; NULL = single attempt) bounds retries of retriable failures.
 * The callback is called exactly once, on the loop thread and never from inside this
 * function (immediate failures are delivered on the next loop iteration), unless the call
 * is cancelled. Returns a handle valid until the callback returns or the call is cancelled;
 * NULL only when out of memory (callback not called). */
lunnel_http_request *lunnel_http_post(lunnel_http *h, const char *path, const void *body,
                                      size_t len, const char *api_version,
                                      const lunnel_retry_policy *retry, lunnel_http_cb cb,
                                      void *ud);

/* Abandons a call: its callback will not be called. Not from inside its own callback. */
void lunnel_http_cancel(lunnel_http_request *req);

/* Number of calls in flight (tests, shutdown). */
int lunnel_http_pending(const lunnel_http *h);

/* Totals since creation, for metrics and tests: attempts sent, retries, connections opened
 * (a keep-alive reuse does not open one). */
typedef struct lunnel_http_stats {
    uint64_t attempts;
    uint64_t retries;
    uint64_t connections;
    uint64_t auth_refreshes;
    uint64_t md5_mismatches; /* 2xx bodies not matching their x-ots-contentmd5 (retried) */
    int active;              /* attempts in curl now */
    int queued;              /* calls waiting for a free slot now */
    int peak_active;         /* most attempts in curl at once */
    size_t downloading;      /* response bytes buffered by attempts in curl now */
} lunnel_http_stats;
void lunnel_http_get_stats(const lunnel_http *h, lunnel_http_stats *out);

/* Runs `loop` until *done becomes non-zero or timeout_s passes (loop-thread helper for
 * synchronous CLI commands and tests). Returns 0 when done, -1 on timeout. */
int lunnel_http_run_until(struct ev_loop *loop, const int *done, double timeout_s);

#endif
