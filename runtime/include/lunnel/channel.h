/* channel.h: the per-channel building blocks of `lunnel run` (tunnel subsystem).
 *
 * Three pure pieces, no I/O, each unit-tested alone (runtime/tests/test_tunnel_channel*.c):
 *   - the read backoff of stream channels (PROTOCOL.md section 3, "Full batch");
 *   - the channel table and its merge with a heartbeat response (the heartbeat contract);
 *   - the checkpoint tracker: which token may be checkpointed, given which batches were
 *     handled, plus the checkpoint sequence number rules.
 * The I/O side (ReadRecords pipeline, checkpoint calls) lives in channel.c / checkpointer.c
 * and is driven by worker.c on the libev loop thread; everything here is loop-thread only. */
#ifndef LUNNEL_CHANNEL_H
#define LUNNEL_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

/* Channel status as on the wire (ChannelStatus enum of tunnel_service_api.proto). */
typedef enum lunnel_channel_status {
    LUNNEL_CHANNEL_OPEN = 1,
    LUNNEL_CHANNEL_CLOSING = 2,
    LUNNEL_CHANNEL_CLOSE = 3,
    LUNNEL_CHANNEL_TERMINATED = 4,
} lunnel_channel_status;

/* "OPEN", "CLOSING", "CLOSE", "TERMINATED" or "UNKNOWN". */
const char *lunnel_channel_status_str(int status);

/* One channel as the heartbeat carries it. `id` is owned by whoever holds the view. */
typedef struct lunnel_channel_view {
    char *id;
    int64_t version;
    int status; /* lunnel_channel_status */
} lunnel_channel_view;

/* ---- backoff ------------------------------------------------------------------------ */

/* Exponential read backoff of a stream channel: the delay starts at `base_ms`, is
 * multiplied by `factor` after every empty read, capped at `max_ms`, and each delay is
 * randomized by +-`jitter` (0.25 = +-25%, never above max_ms). A full batch resets it. */
typedef struct lunnel_backoff {
    double base_ms, factor, jitter, max_ms;
    double current_ms; /* un-jittered delay the next call starts from */
} lunnel_backoff;

/* The official defaults: 20 ms, x5, jitter 0.25, cap `max_ms` (5000 by default). */
void lunnel_backoff_init(lunnel_backoff *b, double max_ms);
void lunnel_backoff_reset(lunnel_backoff *b);
/* Next delay in ms; `rand01` is a uniform number in [0,1) supplied by the caller so tests
 * can pin it. Advances the backoff. */
double lunnel_backoff_next(lunnel_backoff *b, double rand01);

/* ---- failure pacing ------------------------------------------------------------------ */

/* The one pacing rule of persistent failures (a failed open, retries exhausted, a refused or
 * unparseable reply to a channel call, ...): the next attempt waits base_ms doubling per
 * failure in a row up to max_ms, plus up to 25% jitter (never less than the step), so a
 * failure repeats at most once per second at first and once per max_ms in the long run. A
 * run of `max_ms` without failure before the next failure counts as healthy: it starts over. */
typedef struct lunnel_pace {
    double base_ms, max_ms;
    int step; /* failures in a row so far (0: none) */
} lunnel_pace;

#define LUNNEL_PACE_BASE_MS 1000.0
#define LUNNEL_PACE_MAX_MS 60000.0
#define LUNNEL_PACE_JITTER 0.25

void lunnel_pace_init(lunnel_pace *p, double base_ms, double max_ms);
/* A failure after `healthy_ms` of uninterrupted work since the previous attempt began:
 * returns the wait in ms before the next attempt (rand01 uniform in [0,1)) and advances. */
double lunnel_pace_fail(lunnel_pace *p, double healthy_ms, double rand01);

/* "More is waiting, read again now": may_more_record when the server sent it, otherwise
 * the official rule (> 500 records or > 900 KB). has_may_more = 0 when the field was absent. */
int lunnel_batch_is_full(int has_may_more, int may_more, size_t n_records, size_t n_bytes);

/* ---- channel table and heartbeat merge ----------------------------------------------- */

/* What the worker must do with one channel after a heartbeat response. */
typedef enum lunnel_merge_action {
    LUNNEL_MERGE_NONE = 0, /* nothing changes (local view newer, or same status) */
    LUNNEL_MERGE_START,    /* OPEN channel new here (or re-offered after we stopped it):
                              GetCheckpoint, read pipeline, open(ctx) */
    LUNNEL_MERGE_DECLINE,  /* new channel offered in CLOSING: report CLOSE at version + 1 */
    LUNNEL_MERGE_DRAIN,    /* server says CLOSING: stop reading, finish, checkpoint, CLOSE */
    LUNNEL_MERGE_STOP,     /* server says CLOSE/TERMINATED, or dropped it: stop + shutdown */
    LUNNEL_MERGE_ADOPT,    /* server view newer with the same meaning: take its version */
} lunnel_merge_action;

const char *lunnel_merge_action_str(lunnel_merge_action a);

/* The decision for one channel id. `local` is NULL when this client does not know the
 * channel; `server` is NULL when the response does not list it. The higher version wins
 * (the server on a tie, as the official client does). */
lunnel_merge_action lunnel_channel_merge_one(const lunnel_channel_view *local,
                                             const lunnel_channel_view *server);

/* The channels this client knows: id -> view + an opaque owner pointer (the channel
 * object). A plain array: a client holds tens of channels, not thousands. */
typedef struct lunnel_chtable_entry {
    lunnel_channel_view view; /* id owned by the table */
    void *owner;              /* borrowed; set by the worker when it starts a channel */
    int seen;                 /* scratch flag of the merge */
} lunnel_chtable_entry;

typedef struct lunnel_chtable {
    lunnel_chtable_entry *entries;
    size_t n, cap;
} lunnel_chtable;

void lunnel_chtable_init(lunnel_chtable *t);
/* Frees the ids and the array, not the owners. */
void lunnel_chtable_free(lunnel_chtable *t);
lunnel_chtable_entry *lunnel_chtable_find(lunnel_chtable *t, const char *id);
/* Adds a copy of `v` (id copied); returns the entry, or NULL when out of memory.
 * Entry pointers are invalidated by the next add or remove. */
lunnel_chtable_entry *lunnel_chtable_add(lunnel_chtable *t, const lunnel_channel_view *v);
void lunnel_chtable_remove(lunnel_chtable *t, const char *id);

/* Called once per decision by lunnel_chtable_merge. `entry` is the table entry (NULL for
 * DECLINE, which is never added); `server` the server's view (NULL when dropped).
 * The callback must not add or remove entries; the merge removes STOPped ones after it. */
typedef void (*lunnel_merge_cb)(void *ud, lunnel_merge_action action, lunnel_chtable_entry *entry,
                                const lunnel_channel_view *server);

/* Applies a heartbeat response to the table per the heartbeat contract (PROTOCOL.md 3):
 * new OPEN channels are added (START), listed ones keep the higher version (ADOPT / DRAIN /
 * STOP), missing ones are STOPped; STOPped entries are removed after their callback.
 * Returns 0, or -1 when out of memory (the table is left consistent). */
int lunnel_chtable_merge(lunnel_chtable *t, const lunnel_channel_view *server, size_t n,
                         lunnel_merge_cb cb, void *ud);

/* ---- checkpoint tracker --------------------------------------------------------------- */

/* Batches of one channel in read order: each is numbered when read, marked when handled
 * (process returned, or with --commit manual when ctx:commit() covers it). The committable
 * token is the next_token of the newest batch such that it and every batch before it are
 * handled; that is what a checkpoint may store. */
typedef struct lunnel_cptrack_item {
    uint64_t no;
    char *token; /* owned */
    int handled;
} lunnel_cptrack_item;

typedef struct lunnel_cptrack {
    lunnel_cptrack_item *items; /* ring of outstanding (not yet folded) batches */
    size_t head, count, cap;
    uint64_t next_no;   /* number given to the next tracked batch */
    char *committable;  /* owned; newest contiguous handled token not yet checkpointed */
    char *checkpointed; /* owned; last token the service accepted */
    int64_t sequence;   /* sequence number the next Checkpoint call sends */
} lunnel_cptrack;

/* `start_sequence`: GetCheckpoint's sequence_number + 1. */
void lunnel_cptrack_init(lunnel_cptrack *t, int64_t start_sequence);
void lunnel_cptrack_free(lunnel_cptrack *t);
/* Registers a read batch whose next_token is `token` (copied). Returns its number, or
 * UINT64_MAX when out of memory. */
uint64_t lunnel_cptrack_add(lunnel_cptrack *t, const char *token);
/* Marks batch `no` handled (auto commit: process returned). Unknown / old numbers are
 * ignored. Returns 1 when the committable token moved. */
int lunnel_cptrack_mark(lunnel_cptrack *t, uint64_t no);
/* Marks every batch up to and including `no` handled (manual commit). Returns 1 when the
 * committable token moved. */
int lunnel_cptrack_mark_through(lunnel_cptrack *t, uint64_t no);
/* The token a checkpoint should store now, or NULL when nothing new is committable. */
const char *lunnel_cptrack_pending(const lunnel_cptrack *t);
/* A Checkpoint call for `token` succeeded: sequence += 1, remember it, clear pending when
 * it is still the same token. */
void lunnel_cptrack_accepted(lunnel_cptrack *t, const char *token);
/* OTSSequenceNumberNotMatch: GetCheckpoint was re-read, continue with `server_seq` + 1. */
void lunnel_cptrack_resync(lunnel_cptrack *t, int64_t server_seq);
/* Outstanding batches (read, not folded into the committable token yet). */
size_t lunnel_cptrack_outstanding(const lunnel_cptrack *t);

#endif
