/* tunnel_persist.h: the Tunnel Service's part of the emulator's durable state (durable.c,
 * --data-dir): tunnels, channels (status, version, checkpoint, sequence number, positions),
 * partitions and their splits, the expired flag, and the id generator -- as framed records
 * (wal.h) for the write-ahead log and the snapshot, and applied back on start-up.
 *
 * Journal by difference: after every tunnel call, admin action and tick, the journal
 * re-serializes each tunnel (a few hundred bytes) and each table's partition layout and
 * appends a record only for those whose bytes changed, plus a delete record for tunnels that
 * went away. No mutation site in the tunnel code has to know about durability, and a record
 * always holds a whole, consistent tunnel.
 *
 * Admin settings (retention, tunnel_config, faults with what remains of their counts) are one
 * record, journaled the same way, so test controls survive a restart like the data.
 *
 * Not persisted: clients. After a restart every channel that was OPEN or CLOSING goes back
 * to the pool as CLOSE at version + 1 (as when a client times out), and the old clients'
 * next Heartbeat gets OTSResourceGone, so they reconnect -- what the real service does to a
 * client it dropped. Record logs are derived state: the WAL rebuilds them by replaying the
 * store's changes; the snapshot stores them as they are (their logical indexes included). */
#ifndef LUNNEL_EMU_TUNNEL_PERSIST_H
#define LUNNEL_EMU_TUNNEL_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "durability/wal.h"
#include "tunnel/tunnel.h"

/* Record types of this module (the store's are in durable.c, below 20). */
enum {
    EMU_REC_T_REGISTRY = 20,    /* id generator state */
    EMU_REC_T_SHARDS = 21,      /* one table's partitions */
    EMU_REC_T_TUNNEL = 22,      /* one whole tunnel and its channels */
    EMU_REC_T_TUNNEL_DEL = 23,  /* a tunnel id that is gone */
    EMU_REC_T_LOG = 24,         /* snapshot: selects a record log (shard or base channel) */
    EMU_REC_T_LOG_ENTRIES = 25, /* snapshot: entries appended to the selected log */
    EMU_REC_T_LOG_REFS = 26,    /* snapshot: a partition log as indexes of store changes */
    EMU_REC_T_SETTINGS = 27,    /* admin settings: retention, tunnel_config, faults */
};

/* The store's change streams as the tunnel side received them (lunnel_emu_tunnels_on_change
 * arguments), so a snapshot can name a partition log's entries by change index instead of
 * copying their bytes a second time. Implemented by durable.c over the store. */
typedef struct emu_persist_changes {
    void *ud;
    /* the retained change indexes [*begin, *end) of `table` (both 0 when unknown) */
    void (*range)(void *ud, const char *table, uint64_t *begin, uint64_t *end);
    /* change `i` of `table`: 0, or -1 when it is not held */
    int (*at)(void *ud, const char *table, uint64_t i, emu_tunnel_change *out);
} emu_persist_changes;

typedef struct lunnel_emu_tunnel_journal lunnel_emu_tunnel_journal;
lunnel_emu_tunnel_journal *lunnel_emu_tunnel_journal_new(void);
void lunnel_emu_tunnel_journal_free(lunnel_emu_tunnel_journal *j);

/* Appends a framed record to `out` for everything that changed since the last call (the
 * first call writes everything). Returns the number of records, or -1 out of memory. */
int lunnel_emu_tunnel_journal_sync(lunnel_emu_tunnel_journal *j, lunnel_emu_tunnels *t,
                                   emu_wbuf *out);

/* Writes the whole tunnel state as framed records into `b`, calling flush(ud, b) (which
 * empties b) whenever it holds more than 1 MiB. 0, or -1 when flush failed / no memory. */
int lunnel_emu_tunnel_persist_snapshot(lunnel_emu_tunnels *t, emu_wbuf *b,
                                       int (*flush)(void *ud, emu_wbuf *b), void *ud);
/* The same, writing a partition log as change indexes (EMU_REC_T_LOG_REFS) when every one
 * of its entries is a change `chg` still holds, byte for byte; other logs are copied. */
int lunnel_emu_tunnel_persist_snapshot_refs(lunnel_emu_tunnels *t, emu_wbuf *b,
                                            int (*flush)(void *ud, emu_wbuf *b), void *ud,
                                            const emu_persist_changes *chg);

/* Restore-time state across records (the log selected by EMU_REC_T_LOG). */
typedef struct lunnel_emu_tunnel_restore {
    void *log;
    const emu_persist_changes *changes; /* for EMU_REC_T_LOG_REFS (NULL: refused) */
} lunnel_emu_tunnel_restore;

/* Applies one record of this module (payload including its type byte). `from_wal`: a
 * tunnel seen for the first time is being created now, so its base channels are filled
 * from the store as it stands (the log replays in order); from a snapshot they come as LOG
 * records. Returns 0, or -1 with a message (malformed or inconsistent record). */
int lunnel_emu_tunnel_persist_apply(lunnel_emu_tunnels *t, lunnel_emu_tunnel_restore *rs,
                                    const uint8_t *p, size_t n, int from_wal, char *err,
                                    size_t errlen);

/* The loop was blocked `ns` (a compaction): clients could not heartbeat meanwhile, so their
 * heartbeat clocks move on by that much instead of timing them out. */
void lunnel_emu_tunnel_persist_pause_credit(lunnel_emu_tunnels *t, int64_t ns);

/* End of restore: channels owned by clients of the previous run return to the pool. */
void lunnel_emu_tunnel_persist_release(lunnel_emu_tunnels *t);

#endif
