/* durable.h: lunnel-emulator's durable state (--data-dir DIR): a write-ahead log of every
 * state change, a snapshot that compacts it, and the restore that replays both at start-up.
 *
 * What is logged: table creation, option updates (UpdateTable) and deletion, and every row
 * write, as the write took effect (cells with their timestamps, the change's sequence info),
 * through the store's journal hook (store.h); and the Tunnel Service state by difference after
 * every tunnel call, admin action and tick (tunnel_persist.h). Clients are not kept (see
 * tunnel_persist.h).
 *
 * When it is durable: records are appended to an in-memory buffer as state changes, and
 * committed (written, then fsync'd per policy) by lunnel_emu_durable_commit, which the server
 * calls before any reply that could acknowledge them leaves (lunnel_emu_server_set_commit:
 * replies are held while changes are pending and sent after the commit that ends each loop
 * iteration): nothing acknowledged is lost. Policies (--fsync):
 *   always  fdatasync before acknowledging (default). One fdatasync per loop iteration covers
 *           every reply produced in it, on every connection (group commit).
 *   batch   written before acknowledging (survives a crash of the emulator, SIGKILL
 *           included), fdatasync'd every 100 ms (a power loss may lose the last 100 ms).
 *   never   written before acknowledging, never fsync'd by us (the OS flushes eventually).
 *
 * Files in DIR: "wal.<gen>" (8-digit generation), "snapshot" (covers everything before
 * wal.<gen>, and names that gen), "lock" (flock: one emulator per DIR). Format: wal.h.
 * Compaction (when the WAL passes --compact-bytes, and at start-up when it already has): a
 * new WAL generation starts, then a forked child writes snapshot.tmp from the state at the
 * fork (copy-on-write), fsyncs it and renames it over snapshot, while the loop goes on
 * serving; once it has, the older WALs are removed. A crash at any step leaves a consistent
 * set: the old snapshot plus every WAL since, which start-up replays in order.
 *
 * Recovery: the snapshot must be intact (written atomically; a damaged one stops start-up
 * with the reason). A WAL whose tail is truncated or corrupt (length or CRC) is cut back to
 * its last good record, with a message naming the file, the offset and what was wrong. A
 * record whose CRC is right but which cannot be applied (unknown type, another
 * --partitions) stops start-up without changing any file. */
#ifndef LUNNEL_EMU_DURABLE_H
#define LUNNEL_EMU_DURABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "tunnel/tunnel.h"

typedef enum lunnel_emu_fsync {
    LUNNEL_EMU_FSYNC_ALWAYS = 0,
    LUNNEL_EMU_FSYNC_BATCH,
    LUNNEL_EMU_FSYNC_NEVER,
} lunnel_emu_fsync;

/* "always" | "batch" | "never" -> 0 and *out; else -1. */
int lunnel_emu_fsync_parse(const char *s, lunnel_emu_fsync *out);
const char *lunnel_emu_fsync_name(lunnel_emu_fsync f);

typedef struct lunnel_emu_durable_opts {
    const char *dir; /* created when missing */
    lunnel_emu_fsync fsync;
    size_t compact_bytes; /* compact when the WAL grows past this (0: 64 MiB) */
    FILE *log;            /* recovery messages (NULL: stderr) */
} lunnel_emu_durable_opts;

typedef struct lunnel_emu_durable_stats {
    double restore_ms;         /* snapshot + WAL replay at open */
    double restore_cpu_ms;     /* the same in CPU time of this process (load-independent) */
    uint64_t snapshot_records; /* records read from the snapshot at open */
    uint64_t wal_records;      /* records replayed from the WAL at open */
    uint64_t skipped_records;  /* replayed records that could not be applied (reported) */
    int tail_recovered;        /* 1 when the WAL tail was cut back at open */
    uint64_t generation;       /* current WAL generation */
    uint64_t wal_bytes;        /* current WAL size */
    uint64_t commits, fsyncs, compactions;
    double last_compact_ms;       /* start to snapshot in place (in the background) */
    double last_compact_block_ms; /* of which the loop was held: log rotation and fork */
} lunnel_emu_durable_stats;

typedef struct lunnel_emu_durable lunnel_emu_durable;

/* Opens DIR, restores its state into `st` (and `tunnels`, may be NULL) which must be empty
 * and already wired together (tunnel registry listening to the store), then journals every
 * later change. Returns NULL with a message in err (bad dir, locked, damaged snapshot,
 * different --partitions, I/O error). Both `st` and `tunnels` are borrowed. */
lunnel_emu_durable *lunnel_emu_durable_open(const lunnel_emu_durable_opts *o, lunnel_emu_store *st,
                                            lunnel_emu_tunnels *tunnels, char *err, size_t errlen);

/* The partition count a data dir was created with (read from its snapshot header or first
 * log record, nothing changed): 1 and *out, or 0 when DIR holds no data yet. main.c uses it
 * so a restart without --partitions keeps the stored value and one with another value is
 * refused as a flag mismatch before anything is opened. */
int lunnel_emu_durable_peek_partitions(const char *dir, uint32_t *out);

/* Background compaction (a forked child writes the snapshot while the loop serves): reaps
 * a finished one (call it from a timer), and tells whether one is running. */
void lunnel_emu_durable_poll(lunnel_emu_durable *d);
int lunnel_emu_durable_compacting(const lunnel_emu_durable *d);

/* Writes (and fsyncs per policy) what changed since the last commit; compacts when due.
 * Cheap when nothing changed. 0, or -1 with a message: the state can no longer be made
 * durable, and the caller must not acknowledge anything (lunnel-emulator exits). */
int lunnel_emu_durable_commit(lunnel_emu_durable *d, char *err, size_t errlen);
/* 1 when changes wait for a commit (the server holds replies until then), else 0. */
int lunnel_emu_durable_pending(const lunnel_emu_durable *d);
/* Batch policy: fdatasync when something was written since the last one (call every
 * 100 ms). 0 or -1. */
int lunnel_emu_durable_tick(lunnel_emu_durable *d, char *err, size_t errlen);
/* Snapshot + new WAL generation now. 0 or -1. */
int lunnel_emu_durable_compact(lunnel_emu_durable *d, char *err, size_t errlen);
/* Records the tunnel state one last time and stops looking at the registry (call before
 * the registry is freed). */
void lunnel_emu_durable_detach_tunnels(lunnel_emu_durable *d);
/* Commits, fsyncs and frees (store/tunnels untouched). 0, or -1 when the final commit
 * failed (message in err). */
int lunnel_emu_durable_close(lunnel_emu_durable *d, char *err, size_t errlen);

const lunnel_emu_durable_stats *lunnel_emu_durable_stats_of(const lunnel_emu_durable *d);

/* Replays one file's bytes (a WAL, or a snapshot when `snapshot`) into `st`/`tunnels`
 * without touching any file: the fuzz target's entry (fuzz/fuzz_emulator_wal.c). Skipped
 * records are reported on `log`. 0, or -1 out of memory. */
struct lunnel_emu_wal_scan_result;
int lunnel_emu_durable_replay_buffer(lunnel_emu_store *st, lunnel_emu_tunnels *tunnels,
                                     const uint8_t *buf, size_t len, int snapshot, FILE *log,
                                     struct lunnel_emu_wal_scan_result *res);

#endif
