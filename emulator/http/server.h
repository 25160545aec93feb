/* server.h: lunnel-emulator's HTTP/1.1 server (libev) and the contract between the server and
 * the API modules that live on it (table data API, tunnel service, admin actions).
 *
 * The server accepts connections, parses requests (http_parse.h), verifies the signature,
 * content MD5 and STS token of every request (auth.h), then dispatches by path to a handler
 * registered here. Everything runs on one libev loop thread, which owns all emulator state:
 * handlers never need locks, and must never block.
 *
 * Handlers answer through the response API below. The server itself sets x-ots-requestid
 * (on every response, errors included), Content-Length, Content-Type and keep-alive.
 *
 * Modules: main.c creates the server and store, then calls each module's register function:
 *   lunnel_emu_data_api_register(server, store)            (data_api.h, helper H3)
 *   lunnel_emu_admin_register(server, store)               (admin.h: stats, changes, load)
 *   lunnel_emu_tunnel_register(server, store, config)       (tunnel.h, helper H4; main.c
 *       includes "tunnel.h" when it exists, via __has_include, and calls this function)
 * A module registers its paths with lunnel_emu_route_add / lunnel_emu_admin_add and may
 * install a filter (fault injection) with lunnel_emu_server_set_filter. */
#ifndef LUNNEL_EMU_SERVER_H
#define LUNNEL_EMU_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "lunnel/sign.h"

struct ev_loop;

typedef struct lunnel_emu_server lunnel_emu_server;
typedef struct lunnel_emu_response lunnel_emu_response;

/* One parsed, authenticated request. Every pointer is borrowed from the server and valid
 * only during the handler call (copy what a deferred response needs). */
typedef struct lunnel_emu_request {
    const char *path;             /* e.g. "/tunnel/connect", "/PutRow", query stripped */
    const lunnel_header *headers; /* all request headers, names as sent */
    size_t n_headers;
    const uint8_t *body; /* the raw body (a serialized protobuf, or JSON for admin) */
    size_t body_len;
    const char *access_key_id; /* verified x-ots-accesskeyid */
    const char *instance;      /* x-ots-instancename ("" when absent) */
    const char *request_id;    /* the x-ots-requestid this response will carry */
    const char *trace_id;      /* x-ots-trace-id or "" */
    uint64_t conn_id;          /* connection number, unique per server run */
} lunnel_emu_request;

/* A handler for one path. It must answer exactly once through `resp`: with one of the
 * lunnel_emu_respond_* calls, by deferring (lunnel_emu_response_defer) or by dropping the
 * connection (lunnel_emu_response_drop). A handler that returns without answering gets a
 * 500 OTSInternalServerError reply from the server (a bug, logged). */
typedef void (*lunnel_emu_handler)(void *ud, const lunnel_emu_request *req,
                                   lunnel_emu_response *resp);

/* Registers `handler` for an exact path ("/tunnel/create"). Returns 0, or -1 when the path is
 * already taken or the table is full (64 routes). `ud` is passed through, never freed. */
int lunnel_emu_route_add(lunnel_emu_server *srv, const char *path, lunnel_emu_handler handler,
                         void *ud);

/* Admin actions: POST /_emulator/<action>, signed like every request, JSON body in, JSON out.
 * `body` is the parsed request body (an empty object when the body is empty; a non-JSON body
 * is rejected with 400 before the handler runs); borrowed for the call. The handler answers
 * with lunnel_emu_respond_json / lunnel_emu_respond_error (error replies of admin actions
 * are JSON {"code": ..., "message": ...}). Returns 0, or -1 (taken, or full: 64 actions). */
typedef void (*lunnel_emu_admin_handler)(void *ud, const cJSON *body, const lunnel_emu_request *req,
                                         lunnel_emu_response *resp);
int lunnel_emu_admin_add(lunnel_emu_server *srv, const char *action,
                         lunnel_emu_admin_handler handler, void *ud);

/* A filter sees every authenticated request before routing (fault injection: latency,
 * 503s, dropped connections). It returns 0 to let the request through, or 1 when it has
 * answered (respond / defer / drop) itself. One filter per server; NULL removes it. */
typedef int (*lunnel_emu_filter)(void *ud, const lunnel_emu_request *req,
                                 lunnel_emu_response *resp);
void lunnel_emu_server_set_filter(lunnel_emu_server *srv, lunnel_emu_filter filter, void *ud);

/* Busy (start-up restore of --data-dir running on another thread): while `reason` is set,
 * every authenticated request is answered 503 with the service's retriable busy error
 * (OTSServerBusy; OTSTunnelServerUnavailable on tunnel paths) before any filter or handler
 * runs, so no module touches state the restore is still building. NULL ends it. Loop thread
 * only; `reason` is borrowed until cleared. */
void lunnel_emu_server_set_busy(lunnel_emu_server *srv, const char *reason);
const char *lunnel_emu_server_busy(const lunnel_emu_server *srv);

/* Durable state (group commit): while `pending(ud)` says changes are uncommitted, replies
 * are held; once per loop iteration, after every callback, `commit(ud)` runs and the held
 * replies are sent. `commit` makes the changes durable and does not return when it cannot
 * (lunnel-emulator exits rather than acknowledge a lost write). NULL removes it. */
void lunnel_emu_server_set_commit(lunnel_emu_server *srv, void (*commit)(void *ud),
                                  int (*pending)(void *ud), void *ud);

/* ---- responses ---------------------------------------------------------------------- */

/* 200 with the serialized protobuf `msg` (which may have no fields: empty body). */
void lunnel_emu_respond_pb(lunnel_emu_response *resp, const ProtobufCMessage *msg);

/* Any status with raw bytes (copied) and a content type (NULL: application/octet-stream). */
void lunnel_emu_respond_raw(lunnel_emu_response *resp, int status, const void *body, size_t len,
                            const char *content_type);

/* An error: HTTP `status`, body = protobuf Error{code, message} (for admin requests: JSON
 * {"code","message"}). `code` is the service code, e.g. "OTSParameterInvalid". */
void lunnel_emu_respond_error(lunnel_emu_response *resp, int status, const char *code,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The same, with the tunnel API's Error.tunnel_id (field 3) set when non-NULL. */
void lunnel_emu_respond_tunnel_error(lunnel_emu_response *resp, int status, const char *code,
                                     const char *tunnel_id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 200 with JSON; takes ownership of `json` (deleted by the server). */
void lunnel_emu_respond_json(lunnel_emu_response *resp, cJSON *json);

/* Closes the connection without any reply (fault injection "dropped connection"). */
void lunnel_emu_response_drop(lunnel_emu_response *resp);

/* Deferring: the handler keeps `resp` beyond its return and answers later, from a timer or
 * another event on the loop thread, with the calls above (exactly once). If the client went
 * away meanwhile, the answer is discarded and `resp` freed by that call. Requests on the same
 * connection behind it wait (HTTP/1.1 has no reordering). */
void lunnel_emu_response_defer(lunnel_emu_response *resp);

/* ---- the server --------------------------------------------------------------------- */

/* Creates a server on `loop` listening per `cfg` (cfg->listen "127.0.0.1:0" picks a free
 * port). `cfg` is borrowed for the server's life. Returns NULL with a message in `err`. */
lunnel_emu_server *lunnel_emu_server_new(struct ev_loop *loop, const lunnel_emu_config *cfg,
                                         char *err, size_t errlen);

/* Serves an already connected socket `fd` as if accepted (tests and the fuzz target use one
 * end of a socketpair). Takes ownership of fd. Returns 0 or -1. */
int lunnel_emu_server_adopt(lunnel_emu_server *srv, int fd);

/* The bound port (useful with port 0) and the loop. */
int lunnel_emu_server_port(const lunnel_emu_server *srv);
struct ev_loop *lunnel_emu_server_loop(const lunnel_emu_server *srv);
const lunnel_emu_config *lunnel_emu_server_config(const lunnel_emu_server *srv);

/* Stops accepting, closes every connection (deferred responses are discarded) and stops
 * the server's watchers so ev_run returns once modules stop their own. */
void lunnel_emu_server_stop(lunnel_emu_server *srv);

/* Called from lunnel_emu_server_free before the server goes away (modules free state). */
int lunnel_emu_server_on_free(lunnel_emu_server *srv, void (*fn)(void *ud), void *ud);
void lunnel_emu_server_free(lunnel_emu_server *srv);

/* Counters for /_emulator/stats: requests per path (all paths seen, routed or not). */
typedef struct lunnel_emu_path_stat {
    const char *path;
    uint64_t requests;
    uint64_t errors; /* non-2xx answers */
} lunnel_emu_path_stat;
size_t lunnel_emu_server_path_stats(const lunnel_emu_server *srv, const lunnel_emu_path_stat **out);

/* Modules add their own figures to the /_emulator/stats reply: `fn` adds members to the
 * reply object `stats` (e.g. cJSON_AddItemToObject(stats, "tunnels", ...)). Up to 8. */
typedef void (*lunnel_emu_stats_fn)(void *ud, cJSON *stats);
int lunnel_emu_server_add_stats(lunnel_emu_server *srv, lunnel_emu_stats_fn fn, void *ud);
/* Calls every stats function on `stats` (used by the stats action). */
void lunnel_emu_server_fill_stats(lunnel_emu_server *srv, cJSON *stats);

#endif
