/* tunnel_internal.h: data structures shared by the tunnel module's files (tunnel_log.c,
 * tunnel_token.c, tunnel_core.c, tunnel_api.c, tunnel_faults.c, admin_tunnel*.c). Not for
 * use outside emulator/tunnel*.c and emulator/admin_tunnel*.c.
 *
 * Performance shape: every record a channel can deliver is stored once, already encoded as
 * the ReadRecordsResponse field it becomes on the wire (tag 1, length, Record message), in
 * one contiguous buffer per log. A ReadRecords batch is therefore a single memcpy of a byte
 * range plus the token: no per-request protobuf encoding of records. */
#ifndef LUNNEL_EMU_TUNNEL_INTERNAL_H
#define LUNNEL_EMU_TUNNEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel/tunnel.h"

/* ---- record logs (tunnel_log.c) ---- */

/* Append-only log of pre-encoded ReadRecordsResponse.records fields, trimmable from the
 * front. Entries have logical indexes base .. base+n-1 that never change. */
typedef struct emu_reclog {
    uint8_t *buf; /* encoded fields, back to back */
    size_t len, cap;
    size_t *off; /* off[i]: start of physical entry i in buf */
    int64_t *ts; /* commit timestamp (ns) of each entry; 0 for base data */
    size_t n, ncap;
    uint64_t base; /* logical index of physical entry 0 */
    size_t dead;   /* physical entries 0..dead-1 are trimmed, awaiting compaction */
} emu_reclog;

void emu_reclog_free(emu_reclog *l);
/* Encodes Record{action, row, origin?} as a field and appends it; 0, or -1 on ENOMEM. */
int emu_reclog_append(emu_reclog *l, int action, const uint8_t *row, size_t row_len,
                      const uint8_t *origin, size_t origin_len, int64_t ts);
static inline uint64_t emu_reclog_end(const emu_reclog *l)
{
    return l->base + l->n;
}
/* Logical index of the oldest entry still kept (positions before it were trimmed). */
static inline uint64_t emu_reclog_first(const emu_reclog *l)
{
    return l->base + l->dead;
}
/* Byte range of logical entry i (base <= i < end). */
static inline size_t emu_reclog_entry_start(const emu_reclog *l, uint64_t i)
{
    return l->off[i - l->base];
}
static inline size_t emu_reclog_entry_end(const emu_reclog *l, uint64_t i)
{
    size_t p = (size_t)(i - l->base);
    return p + 1 < l->n ? l->off[p + 1] : l->len;
}
/* Appends an already encoded field (as stored in buf) with its timestamp: snapshot restore. */
int emu_reclog_append_raw(emu_reclog *l, const uint8_t *field, size_t len, int64_t ts);
/* Drops entries with ts < cutoff_ns from the front; returns how many were dropped. The
 * bytes are reclaimed lazily (when at least half the log is dead), so trimming a long log a
 * little at a time stays O(trimmed) amortised. */
size_t emu_reclog_trim(emu_reclog *l, int64_t cutoff_ns);

/* Appends a protobuf varint; returns bytes written (max 10). */
size_t emu_pb_varint(uint8_t *p, uint64_t v);

/* ---- table streams and partitions ---- */

typedef struct emu_shard {
    char id[24];     /* "p0", "p1", ... unique within the table */
    uint64_t lo, hi; /* partition = hash range [lo, hi) of the 32-bit key hash */
    int parent;      /* index of the parent shard in the table, or -1 */
    int closed;      /* split: no more appends, readers get "finished" at the end */
    emu_reclog log;
} emu_shard;

typedef struct emu_table {
    char *name;
    emu_shard **shards;
    int nshards, cap;
} emu_table;

uint32_t emu_key_hash(const uint8_t *pk, size_t len);

/* ---- tunnels, channels, clients (tunnel_core.c) ---- */

enum { CH_WAIT = 0, CH_OPEN = 1, CH_CLOSING = 2, CH_CLOSE = 3, CH_TERMINATED = 4 };
enum { TT_BASE = 1, TT_STREAM = 2, TT_BOTH = 3 };
enum { STAGE_INIT = 0, STAGE_BASE, STAGE_STREAM };

typedef struct emu_client emu_client;

typedef struct emu_channel {
    char id[48];
    int is_base;
    emu_shard *shard; /* stream channels: the partition they read */
    emu_reclog *base; /* base channels: the snapshot of one partition (owned) */
    int parent;       /* index of the parent shard's channel in the tunnel, or -1 */
    uint64_t start;   /* logical start offset (stream) */
    int status;       /* CH_* */
    int64_t version;
    emu_client *owner;  /* holder of an OPEN/CLOSING channel, else NULL */
    char *checkpoint;   /* last checkpointed token; NULL = never (start token) */
    int64_t seq;        /* checkpoint sequence number */
    uint64_t ck_offset; /* logical offset the checkpoint points at */
    int64_t count;      /* records consumed per the checkpoint */
    int64_t rpo_ns;     /* commit time of the last consumed stream record */
    int64_t access_ns;  /* last ReadRecords/Checkpoint on it (wall clock), 0 = never */
} emu_channel;

typedef struct emu_tunnel {
    char id[40];
    char *name;
    emu_table *table;
    int type;  /* TT_* */
    int stage; /* STAGE_* */
    int expired;
    int has_config;
    int start_flag; /* 0 LATEST, 1 EARLIEST */
    uint64_t start_ns, end_ns;
    int64_t create_ns;
    emu_channel **ch;
    int nch, chcap;
} emu_tunnel;

struct emu_client {
    char id[48];
    emu_tunnel *tunnel;
    int64_t timeout_ns;
    int64_t last_ns; /* last Connect/Heartbeat */
    char *tag;
};

/* Fault rule per path ("*" matches any). */
typedef struct emu_fault {
    char path[64];
    double error_rate, drop_rate;
    int64_t delay_ms;
    int64_t remaining; /* requests left to affect; -1 = unlimited */
    char code[64];     /* error code of an injected error ("" = the default 503) */
    int status;        /* its HTTP status (0 = from the code, see emu_code_status) */
} emu_fault;

/* What an injected error answers: code (never empty) and HTTP status. */
typedef struct emu_fault_hit {
    char code[64];
    int status;
} emu_fault_hit;

typedef struct emu_path_stat {
    char path[40];
    int64_t requests, errors, records, bytes;
} emu_path_stat;

struct lunnel_emu_tunnels {
    lunnel_emu_tunnel_opts o;
    char *instance;
    const emu_tunnel_source *src;
    emu_table **tables;
    int ntables, tcap;
    emu_tunnel **tunnels;
    int ntunnels, tucap;
    emu_client **clients;
    int nclients, ccap;
    emu_fault *faults;
    int nfaults;
    emu_path_stat stats[32];
    int nstats;
    int64_t records_served, bytes_served;
    uint64_t rng;
    uint64_t next_client;
    int64_t last_tick_ns;
    /* Durable state: called by the server glue after every tunnel call, admin action and
     * housekeeping tick, so the journal can record what changed (NULL: in memory only). */
    void (*sync_fn)(void *ud);
    void *sync_ud;
};

int64_t emu_now_ns(lunnel_emu_tunnels *t);
uint64_t emu_rand(lunnel_emu_tunnels *t);

emu_table *emu_table_get(lunnel_emu_tunnels *t, const char *name, int create);
emu_shard *emu_table_route(emu_table *tb, uint32_t hash);
/* Splits an open shard into two children (halves of its hash range); returns the index of
 * the first child, or -1 (closed shard / ENOMEM). Adds child channels to every tunnel
 * reading the table's stream. */
int emu_table_split(lunnel_emu_tunnels *t, emu_table *tb, int shard_index);

emu_tunnel *emu_tunnel_find(lunnel_emu_tunnels *t, const char *id);
emu_tunnel *emu_tunnel_find_name(lunnel_emu_tunnels *t, const char *table, const char *name);
emu_client *emu_client_find(lunnel_emu_tunnels *t, const char *id);
void emu_client_drop(lunnel_emu_tunnels *t, emu_client *c);
void emu_tunnel_delete(lunnel_emu_tunnels *t, emu_tunnel *tu);
/* Re-derives stage and WAIT/eligibility, then spreads OPEN channels over live clients
 * (CLOSING the excess of over-loaded clients). Returns how many channels changed. */
int emu_tunnel_schedule(lunnel_emu_tunnels *t, emu_tunnel *tu);
/* Appends a channel (takes ownership of nothing; copies id). Returns it or NULL. */
emu_channel *emu_tunnel_add_channel(emu_tunnel *tu, const char *id, int is_base);
int emu_tunnel_channel_index(emu_tunnel *tu, const char *id);
/* Frees a channel that is in no tunnel (yet or any more): its base log, checkpoint, itself. */
void emu_channel_free(emu_channel *ch);
/* Fills the base channels of a new tunnel from a snapshot of its table taken now
 * (tunnel_api.c; also used when the durable log replays a tunnel's creation). */
void emu_tunnel_fill_base(lunnel_emu_tunnels *t, emu_tunnel *tu);
int emu_tunnel_client_count(lunnel_emu_tunnels *t, emu_tunnel *tu);

const char *emu_status_name(int status);
const char *emu_stage_name(int stage);

/* ---- tokens (tunnel_token.c) ---- */

/* Builds the base64 token of a position: stream channels get an iterator
 * "<shard>:<offset>", base channels a primary_key "<channel>:<offset>". Returns a malloc'd
 * string or NULL. */
char *emu_token_make(const emu_channel *ch, uint64_t offset, int64_t ts_ns);
/* Parses a token of channel `ch` into *offset (and *ts_ns); 0, or -1 with a message in
 * err (malformed, or a token of another channel). */
int emu_token_parse(const emu_channel *ch, const char *token, uint64_t *offset, int64_t *ts_ns,
                    char *err, size_t errlen);

/* ---- replies (tunnel_api.c) ---- */
void emu_reply_error(lunnel_emu_reply *r, const char *code, const char *tunnel_id, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
/* A 200 reply whose body is an HTML page, not protobuf (the faults' status 200). */
void emu_reply_garbage(lunnel_emu_reply *r);

/* ---- faults and stats (tunnel_faults.c) ---- */
emu_path_stat *emu_stat_for(lunnel_emu_tunnels *t, const char *path);
/* Applies fault rules to `path`: 1 = answer the error in *hit (code, status; the default
 * is `default_code` with its status), sets delay/drop. hit may be NULL. */
int emu_fault_roll(lunnel_emu_tunnels *t, const char *path, int64_t *delay_ms, int *drop,
                   const char *default_code, emu_fault_hit *hit);
/* HTTP status of a service error code (PROTOCOL.md section 1's table; 500 if unknown). */
int emu_code_status(const char *code);
/* The same code as a static string (for lunnel_emu_reply.error_code), or a generic
 * "OTSInjectedError" for a code outside the table. */
const char *emu_code_static(const char *code);

#endif
