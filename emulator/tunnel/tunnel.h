/* tunnel.h: the emulator's Tunnel Service -- tunnels, channels, clients, the heartbeat
 * contract, tokens, checkpoints, ReadRecords, partition splits, retention, faults and stats
 * (PROTOCOL.md sections 2-3). One registry per emulator process; it is not thread safe and
 * lives on the server's loop thread.
 *
 * The registry knows nothing about HTTP: lunnel_emu_tunnels_handle() takes a request path
 * and protobuf body and produces a status + body; lunnel_emu_tunnels_admin() takes an admin
 * action and JSON body and produces JSON. The server glue (tunnel_server.c) maps those onto
 * the emulator's HTTP server. Changes reach it from the store through
 * lunnel_emu_tunnels_on_change() (tunnel_source.h). */
#ifndef LUNNEL_EMU_TUNNEL_H
#define LUNNEL_EMU_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/tunnel_source.h"

typedef struct lunnel_emu_tunnels lunnel_emu_tunnels;

/* Settings; lunnel_emu_tunnel_opts_default() fills the documented defaults. */
typedef struct lunnel_emu_tunnel_opts {
    int partitions;             /* --partitions: initial partitions per table (4) */
    int batch_records;          /* --batch-records: ReadRecords record cap (1000) */
    size_t batch_bytes;         /* --batch-bytes: ReadRecords row-bytes cap (1 MiB) */
    int64_t retention_ms;       /* --retention: stream data kept this long (7 days) */
    double heartbeat_scale;     /* --heartbeat-scale: client timeout multiplier (1.0) */
    int64_t default_timeout_ms; /* heartbeat timeout when Connect gives none (300 s) */
    const char *instance;       /* instance name reported in TunnelInfo ("lunnel") */
    uint64_t seed;              /* fault-injection random seed (1) */
    /* Clock in nanoseconds since the epoch; NULL = CLOCK_REALTIME. Tests inject a fake. */
    int64_t (*clock_ns)(void *arg);
    void *clock_arg;
} lunnel_emu_tunnel_opts;

void lunnel_emu_tunnel_opts_default(lunnel_emu_tunnel_opts *o);

/* Creates a registry. `src` is borrowed for the registry's life; opts is copied (instance
 * string too). Returns NULL on allocation failure. */
lunnel_emu_tunnels *lunnel_emu_tunnels_new(const lunnel_emu_tunnel_opts *opts,
                                           const emu_tunnel_source *src);
void lunnel_emu_tunnels_free(lunnel_emu_tunnels *t);

/* The store calls this for every committed change, in commit order. */
void lunnel_emu_tunnels_on_change(lunnel_emu_tunnels *t, const emu_tunnel_change *c);

/* The store deleted `table`: its tunnels and partition logs go too (a table created again
 * under the same name starts with a fresh stream). */
void lunnel_emu_tunnels_drop_table(lunnel_emu_tunnels *t, const char *table);

/* A reply: HTTP status and body. The body is malloc'd and owned by the reply:
 * release it with lunnel_emu_reply_free(). For errors the body is a serialized tunnel
 * Error message and `error_code` names the code (static string), else NULL. */
typedef struct lunnel_emu_reply {
    int status;
    uint8_t *body;
    size_t len;
    const char *error_code;
    /* Set by fault injection: the server should sleep this long before answering, or drop
     * the connection without answering at all. */
    int64_t delay_ms;
    int drop;
} lunnel_emu_reply;

void lunnel_emu_reply_free(lunnel_emu_reply *r);

/* Handles one tunnel API call: `path` is "/tunnel/<name>", `body` the request protobuf.
 * Always fills `out` (an error reply for unknown paths, bad bodies, protocol errors) and
 * applies fault injection and stats. Returns 0, or -1 when `path` is not a tunnel path. */
int lunnel_emu_tunnels_handle(lunnel_emu_tunnels *t, const char *path, const uint8_t *body,
                              size_t len, lunnel_emu_reply *out);

/* Handles one admin action (the part after "/_emulator/"): `body` is the parsed JSON
 * request (cJSON object, borrowed). Returns a new JSON reply (caller frees with cJSON_Delete),
 * or NULL with *status (400/404/500) and a message in err. Returns NULL with *status = 0
 * when `action` is not one of the tunnel module's. Actions and shapes: see admin_tunnel.c. */
struct cJSON;
struct cJSON *lunnel_emu_tunnels_admin(lunnel_emu_tunnels *t, const char *action,
                                       const struct cJSON *body, int *status, char *err,
                                       size_t errlen);
/* Names of the admin actions above, NULL-terminated. */
extern const char *const lunnel_emu_tunnels_admin_actions[];

/* Housekeeping: drops clients past their heartbeat timeout, trims stream data past
 * retention, marks lagging tunnels expired, rebalances. Call from a timer (every ~50 ms);
 * every request also runs it lazily, so a timer is an optimisation, not a requirement. */
void lunnel_emu_tunnels_tick(lunnel_emu_tunnels *t);

/* Fault check for any other path (data API): applies the faults configured for `path`
 * (errors are not generated here; only decided) -- lets the server reuse one fault table.
 * Returns 1 when the request should fail, with the error code in code[codelen] (default
 * OTSServerUnavailable) and its HTTP status in *status (either may be NULL), else 0;
 * sets *delay_ms, *drop. */
int lunnel_emu_tunnels_fault(lunnel_emu_tunnels *t, const char *path, int64_t *delay_ms, int *drop,
                             char *code, size_t codelen, int *status);

/* The emulator's glue (tunnel_server.c): builds a registry over the store (changes via the
 * store's listener, snapshots for base data), registers the 13 /tunnel/... routes, the admin
 * actions, the fault filter and a housekeeping timer. Called once by main.c. 0 or -1. */
struct lunnel_emu_server;
struct lunnel_emu_store;
struct lunnel_emu_config;
int lunnel_emu_tunnel_register(struct lunnel_emu_server *srv, struct lunnel_emu_store *store,
                               const struct lunnel_emu_config *cfg);
/* The same, also giving the registry (owned by the server glue, freed with the server):
 * main.c hands it to the durable state (durable.h). */
int lunnel_emu_tunnel_register_ex(struct lunnel_emu_server *srv, struct lunnel_emu_store *store,
                                  const struct lunnel_emu_config *cfg, lunnel_emu_tunnels **out);

/* Durable state hook: `fn(ud)` runs after every tunnel call, tunnel admin action and
 * housekeeping tick (the journal diffs the tunnel state then). NULL removes it. */
void lunnel_emu_tunnels_set_sync(lunnel_emu_tunnels *t, void (*fn)(void *ud), void *ud);

#endif
