/* store.h: lunnel-emulator's tables: primary-key schemas, rows with versioned cells, and the
 * change stream of each table (what tunnels deliver). In memory, owned by the loop thread.
 *
 * Every state change goes through the few lunnel_emu_store_* mutators below (create/delete
 * table, write row, trim changes), so that the write-ahead log of --data-dir
 * (durability/durable.h) hooks in at that one place: the journal hook.
 *
 * Change stream: each successful row write appends one lunnel_emu_change with a per-table
 * index that only grows (0, 1, 2, ...). The change's `row` is the PlainBuffer buffer exactly
 * as a tunnel's ReadRecords delivers it in Record.record: header 0x75, one row with primary
 * key, the cells written (ops and timestamps as stored) or the delete marker, and the
 * sequence-info extension (epoch, timestamp, row index). */
#ifndef LUNNEL_EMU_STORE_H
#define LUNNEL_EMU_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lunnel_emu_store lunnel_emu_store;
typedef struct lunnel_emu_table lunnel_emu_table;
typedef struct lunnel_emu_row lunnel_emu_row;

/* Value types, numbered as PlainBuffer's vtype byte (PROTOCOL.md section 4). */
typedef enum lunnel_emu_vtype {
    LUNNEL_EMU_V_INTEGER = 0x0,
    LUNNEL_EMU_V_DOUBLE = 0x1,
    LUNNEL_EMU_V_BOOLEAN = 0x2,
    LUNNEL_EMU_V_STRING = 0x3,
    LUNNEL_EMU_V_NULL = 0x6,
    LUNNEL_EMU_V_BINARY = 0x7,
    LUNNEL_EMU_V_INF_MIN = 0x9,
    LUNNEL_EMU_V_INF_MAX = 0xA,
    LUNNEL_EMU_V_AUTO_INCREMENT = 0xB,
} lunnel_emu_vtype;

/* A value; bytes are borrowed (store functions copy what they keep). */
typedef struct lunnel_emu_value {
    lunnel_emu_vtype type;
    int64_t i;          /* INTEGER */
    double d;           /* DOUBLE */
    bool b;             /* BOOLEAN */
    const uint8_t *ptr; /* STRING / BINARY */
    uint32_t len;
} lunnel_emu_value;

/* Primary-key column types, numbered as the data API's PrimaryKeyType enum. */
typedef enum lunnel_emu_pktype {
    LUNNEL_EMU_PK_INTEGER = 1,
    LUNNEL_EMU_PK_STRING = 2,
    LUNNEL_EMU_PK_BINARY = 3,
} lunnel_emu_pktype;

#define LUNNEL_EMU_MAX_PK 4 /* the service allows at most 4 primary-key columns */

typedef struct lunnel_emu_pk_schema {
    char name[256];
    lunnel_emu_pktype type;
} lunnel_emu_pk_schema;

typedef struct lunnel_emu_table_options {
    int32_t max_versions; /* versions kept per cell, >= 1 (older ones dropped on write) */
    int32_t time_to_live; /* seconds, -1 forever; reads skip cells older than this */
    int64_t deviation_s;  /* max time deviation (DescribeTable's deviation_cell_version_in_sec);
                           * 0 at creation means the service's default, 86400. Reported, not
                           * enforced on writes */
    bool stream_enabled;
    int32_t stream_expiration_hours;
    /* The stream specification's columns_to_get: every UPDATE and DELETE change carries the
     * previous (latest) values of these columns as its origin row. Borrowed when creating a
     * table (copied); owned by the table in lunnel_emu_table_options_of. */
    const char *const *origin_columns;
    size_t n_origin_columns;
    /* 1-based index of the AUTO_INCREMENT primary-key column, 0 when none */
    uint8_t auto_increment_pk;
} lunnel_emu_table_options;

/* Cell operations, as PlainBuffer CELL_TYPE (0 = put). */
typedef enum lunnel_emu_cell_op {
    LUNNEL_EMU_OP_PUT = 0,
    LUNNEL_EMU_OP_DELETE_ALL_VERSIONS = 1,
    LUNNEL_EMU_OP_DELETE_ONE_VERSION = 3,
    LUNNEL_EMU_OP_INCREMENT = 4, /* atomic add of an INTEGER; stored and streamed as the PUT of
                                  * the sum */
} lunnel_emu_cell_op;

/* One cell of a write; `has_ts` false: the store stamps the server time in ms (for PUT);
 * DELETE_ONE_VERSION needs a timestamp. */
typedef struct lunnel_emu_cell {
    const uint8_t *name;
    uint32_t name_len;
    lunnel_emu_cell_op op;
    lunnel_emu_value value; /* PUT only */
    bool has_ts;
    int64_t ts;
} lunnel_emu_cell;

/* Record actions, numbered as the tunnel API's ActionType. */
typedef enum lunnel_emu_action {
    LUNNEL_EMU_ACTION_PUT = 1,
    LUNNEL_EMU_ACTION_UPDATE = 2,
    LUNNEL_EMU_ACTION_DELETE = 3,
} lunnel_emu_action;

/* Row existence conditions, numbered as the data API's RowExistenceExpectation. */
typedef enum lunnel_emu_condition {
    LUNNEL_EMU_COND_IGNORE = 0,
    LUNNEL_EMU_COND_EXPECT_EXIST = 1,
    LUNNEL_EMU_COND_EXPECT_NOT_EXIST = 2,
} lunnel_emu_condition;

/* One entry of a table's change stream. Owned by the table; valid until the change is
 * trimmed (lunnel_emu_store_trim_changes) or the table is deleted. */
typedef struct lunnel_emu_change {
    uint64_t index; /* position in the table's stream: 0, 1, 2, ... */
    lunnel_emu_action action;
    int32_t epoch;        /* sequence info: epoch (0 for this emulator run) */
    int64_t timestamp_us; /* sequence info: timestamp, microseconds since the epoch,
                           * never decreasing along the stream */
    int32_t row_index;    /* sequence info: index among changes with the same timestamp */
    const uint8_t *row;   /* PlainBuffer (header + one row + seq-info extension) */
    size_t row_len;
    const uint8_t *origin; /* UPDATE/DELETE of a row that existed, on a table whose stream
                            * names origin columns: PlainBuffer row of the primary key and
                            * those columns' previous values; else NULL */
    size_t origin_len;
    const uint8_t *pk; /* PlainBuffer of the primary key alone (header + ROW_PK cells +
                        * checksum): the row's identity, hashed for partitions */
    size_t pk_len;
    uint32_t partition; /* lunnel_emu_partition_of(pk, store's partition count) */
} lunnel_emu_change;

/* A consistent picture of a table's current rows (tunnel base data). Rows in primary-key
 * order; each row is a PlainBuffer buffer with header, primary key and the newest version of
 * every column, no extension. `change_index`: the stream index at the moment of the
 * snapshot (changes >= it happened after). Owned by the caller: lunnel_emu_snapshot_free. */
typedef struct lunnel_emu_snapshot_row {
    const uint8_t *row;
    size_t row_len;
    const uint8_t *pk;
    size_t pk_len;
    uint32_t partition;
} lunnel_emu_snapshot_row;

typedef struct lunnel_emu_snapshot {
    lunnel_emu_snapshot_row *rows;
    size_t n_rows;
    uint64_t change_index;
} lunnel_emu_snapshot;

/* Store events, delivered synchronously on the loop thread right after the change. */
typedef enum lunnel_emu_store_event {
    LUNNEL_EMU_EV_TABLE_CREATED = 1,
    LUNNEL_EMU_EV_TABLE_DELETED = 2,   /* called before the table is freed */
    LUNNEL_EMU_EV_CHANGE_APPENDED = 3, /* `change` set */
    LUNNEL_EMU_EV_TABLE_UPDATED = 4,   /* options replaced (lunnel_emu_store_update_table) */
} lunnel_emu_store_event;

typedef void (*lunnel_emu_store_listener)(void *ud, lunnel_emu_store_event ev,
                                          const lunnel_emu_table *table,
                                          const lunnel_emu_change *change);

/* Store error codes; lunnel_emu_store_strerror gives the service code string
 * ("OTSObjectNotExist", ...) and lunnel_emu_store_status the HTTP status. */
typedef enum lunnel_emu_store_err {
    LUNNEL_EMU_STORE_OK = 0,
    LUNNEL_EMU_STORE_TABLE_EXISTS,     /* OTSObjectAlreadyExist 409 */
    LUNNEL_EMU_STORE_NO_TABLE,         /* OTSObjectNotExist 404 */
    LUNNEL_EMU_STORE_CONDITION_FAILED, /* OTSConditionCheckFail 403 */
    LUNNEL_EMU_STORE_BAD_PK,           /* OTSParameterInvalid 400: pk does not match schema */
    LUNNEL_EMU_STORE_BAD_ARGUMENT,     /* OTSParameterInvalid 400 */
    LUNNEL_EMU_STORE_NO_MEMORY,        /* OTSInternalServerError 500 */
} lunnel_emu_store_err;
const char *lunnel_emu_store_strerror(lunnel_emu_store_err e);
int lunnel_emu_store_status(lunnel_emu_store_err e);

/* ---- store and tables --------------------------------------------------------------- */

/* `partitions`: the partition count used for lunnel_emu_change.partition (>= 1). */
lunnel_emu_store *lunnel_emu_store_new(uint32_t partitions);
void lunnel_emu_store_free(lunnel_emu_store *st);
uint32_t lunnel_emu_store_partitions(const lunnel_emu_store *st);

/* Adds a listener (up to 8); `ud` is borrowed. */
int lunnel_emu_store_listen(lunnel_emu_store *st, lunnel_emu_store_listener fn, void *ud);

/* Creates a table; copies everything. Names: 1-255 bytes. */
lunnel_emu_store_err lunnel_emu_store_create_table(lunnel_emu_store *st, const char *name,
                                                   const lunnel_emu_pk_schema *pk, size_t n_pk,
                                                   const lunnel_emu_table_options *opts, char *msg,
                                                   size_t msglen);
lunnel_emu_store_err lunnel_emu_store_delete_table(lunnel_emu_store *st, const char *name);

/* Lookup (NULL when absent); the pointer is valid until the table is deleted. */
lunnel_emu_table *lunnel_emu_store_table(const lunnel_emu_store *st, const char *name);
/* Tables in creation order: index 0..n-1 (NULL past the end). */
size_t lunnel_emu_store_table_count(const lunnel_emu_store *st);
lunnel_emu_table *lunnel_emu_store_table_at(const lunnel_emu_store *st, size_t i);

const char *lunnel_emu_table_name(const lunnel_emu_table *t);
size_t lunnel_emu_table_pk(const lunnel_emu_table *t, const lunnel_emu_pk_schema **out);
const lunnel_emu_table_options *lunnel_emu_table_options_of(const lunnel_emu_table *t);

/* UpdateTable: replaces what can change of `t`'s options -- max_versions, time_to_live,
 * deviation_s, stream_enabled, stream_expiration_hours and the origin columns (copied) --
 * keeping the primary key and auto_increment_pk. Values are checked by the caller (the data
 * API answers the service's errors). Journaled and notified as LUNNEL_EMU_EV_TABLE_UPDATED.
 * Versions beyond a lowered max_versions go on the row's next write; reads never return
 * more than max_versions versions meanwhile. */
lunnel_emu_store_err lunnel_emu_store_update_table(lunnel_emu_store *st, lunnel_emu_table *t,
                                                   const lunnel_emu_table_options *opts, char *msg,
                                                   size_t msglen);
int64_t lunnel_emu_table_created_ms(const lunnel_emu_table *t);
uint64_t lunnel_emu_table_row_count(const lunnel_emu_table *t);

/* ---- change stream ------------------------------------------------------------------ */

/* Next index to be assigned (= total changes ever appended). */
uint64_t lunnel_emu_table_changes_end(const lunnel_emu_table *t);
/* Oldest index still held (after trims). */
uint64_t lunnel_emu_table_changes_begin(const lunnel_emu_table *t);
/* The change at `index`, or NULL when trimmed or not yet written. Borrowed. */
const lunnel_emu_change *lunnel_emu_table_change_at(const lunnel_emu_table *t, uint64_t index);
/* Drops changes with index < `before` (retention). Returns how many were dropped. */
uint64_t lunnel_emu_store_trim_changes(lunnel_emu_store *st, lunnel_emu_table *t, uint64_t before);

/* A snapshot of the current rows (see lunnel_emu_snapshot). NULL when out of memory. */
lunnel_emu_snapshot *lunnel_emu_table_snapshot(const lunnel_emu_table *t);
void lunnel_emu_snapshot_free(lunnel_emu_snapshot *s);
/* The same rows, one at a time in key order, encoded into a reused buffer (valid during the
 * call): no copy of the whole table. Stops at fn's first nonzero return, which it returns. */
int lunnel_emu_table_snapshot_each(const lunnel_emu_table *t,
                                   int (*fn)(void *arg, const lunnel_emu_snapshot_row *row),
                                   void *arg);

/* ---- partitions --------------------------------------------------------------------- */

/* Stable partition of a primary key: FNV-1a 64 of the pk PlainBuffer bytes (as in
 * lunnel_emu_change.pk), modulo n. Same bytes, same partition, across runs. */
uint32_t lunnel_emu_partition_of(const uint8_t *pk, size_t pk_len, uint32_t n);

/* ---- rows --------------------------------------------------------------------------- */

/* Writes one row (the data API's PutRow/UpdateRow/DeleteRow, and BatchWriteRow items).
 * `pk` values in schema order, checked against the schema. PUT replaces the row by `cells`
 * (all ops PUT); UPDATE applies `cells` (any op); DELETE removes the row (`cells` ignored).
 * Checks `cond` first. On success appends one change (DELETE of an absent row included, as
 * the service streams it). `now_ms`: the write's server time (stamps cells without
 * timestamp). `msg` receives a precise error message. */
lunnel_emu_store_err lunnel_emu_store_write(lunnel_emu_store *st, lunnel_emu_table *t,
                                            lunnel_emu_action action, lunnel_emu_condition cond,
                                            const lunnel_emu_value *pk, size_t n_pk,
                                            const lunnel_emu_cell *cells, size_t n_cells,
                                            int64_t now_ms, char *msg, size_t msglen);

/* The rest of a write the data API may ask for: a column condition checked against the row
 * as it is (NULL when absent) after the existence check (`check` returns 1 to go on, 0 for
 * OTSConditionCheckFail), and the primary key as written (an AUTO_INCREMENT column gets its
 * generated value: unique and increasing per table, microseconds-based like the service's).
 * Any field may be NULL. */
typedef struct lunnel_emu_write_ext {
    int (*check)(void *ud, const lunnel_emu_row *old);
    void *check_ud;
    lunnel_emu_value *pk_out; /* LUNNEL_EMU_MAX_PK values; bytes borrowed from the request */
} lunnel_emu_write_ext;
lunnel_emu_store_err lunnel_emu_store_write_ex(lunnel_emu_store *st, lunnel_emu_table *t,
                                               lunnel_emu_action action, lunnel_emu_condition cond,
                                               const lunnel_emu_value *pk, size_t n_pk,
                                               const lunnel_emu_cell *cells, size_t n_cells,
                                               int64_t now_ms, const lunnel_emu_write_ext *ext,
                                               char *msg, size_t msglen);

/* A stored row, for reads. Cells sorted by name, then timestamp newest first; every cell
 * version is a PUT value. Borrowed: valid until the next write to the table. */
size_t lunnel_emu_row_pk(const lunnel_emu_row *r, const lunnel_emu_value **out);
size_t lunnel_emu_row_cells(const lunnel_emu_row *r, const lunnel_emu_cell **out);

/* Point read; NULL when absent. */
const lunnel_emu_row *lunnel_emu_table_get(const lunnel_emu_table *t, const lunnel_emu_value *pk,
                                           size_t n_pk);

/* Range read in primary-key order: rows with start <= pk < end (forward) or
 * start >= pk > end (backward); INF_MIN / INF_MAX allowed in bounds. Calls `fn` per row
 * until it returns nonzero (then *stopped_at is that row's position, for a next start key).
 * Returns the number of rows visited. */
typedef int (*lunnel_emu_row_fn)(void *ud, const lunnel_emu_row *row);
size_t lunnel_emu_table_range(const lunnel_emu_table *t, bool backward,
                              const lunnel_emu_value *start, const lunnel_emu_value *end,
                              size_t n_pk, lunnel_emu_row_fn fn, void *ud);

/* ---- encoding helpers (PlainBuffer, with the runtime's writer) ----------------------- */

struct lunnel_pb_writer;
/* Writes the pk cells of a row being written (between begin_row and the data cells). */
int lunnel_emu_encode_pk(struct lunnel_pb_writer *w, const lunnel_emu_pk_schema *schema,
                         const lunnel_emu_value *pk, size_t n);
/* Writes one attribute cell (op, timestamp as in `c`). */
int lunnel_emu_encode_cell(struct lunnel_pb_writer *w, const lunnel_emu_cell *c);

/* ---- durable state (durable.c, --data-dir) ------------------------------------------- */

/* What a journal sees of a committed row write: the cells exactly as stored and streamed
 * (PUT cells carry their timestamps), and the change it appended (sequence info). Borrowed
 * for the call. */
typedef struct lunnel_emu_journal_write {
    lunnel_emu_action action;
    const lunnel_emu_value *pk;
    size_t n_pk;
    const lunnel_emu_cell *cells;
    size_t n_cells;
    const lunnel_emu_change *change;
} lunnel_emu_journal_write;

/* Called for TABLE_CREATED (w NULL), TABLE_DELETED (before the table goes; w NULL) and
 * CHANGE_APPENDED (w set), before the listeners. One journal per store (NULL: none, the
 * in-memory default: a single pointer test per mutation). */
typedef void (*lunnel_emu_store_journal)(void *ud, lunnel_emu_store_event ev,
                                         const lunnel_emu_table *t,
                                         const lunnel_emu_journal_write *w);
void lunnel_emu_store_set_journal(lunnel_emu_store *st, lunnel_emu_store_journal fn, void *ud);

/* The last sequence info handed out (restored from a snapshot so the stream never goes
 * backwards after a restart). */
void lunnel_emu_store_seq(const lunnel_emu_store *st, int64_t *us, int32_t *row_index);
void lunnel_emu_store_restore_seq(lunnel_emu_store *st, int64_t us, int32_t row_index);

/* Replays a journalled write: like lunnel_emu_store_write (condition IGNORE; listeners and
 * the journal are called) but the change gets `seq_us`/`row_index` instead of the clock's. */
lunnel_emu_store_err lunnel_emu_store_replay_write(lunnel_emu_store *st, lunnel_emu_table *t,
                                                   lunnel_emu_action action,
                                                   const lunnel_emu_value *pk, size_t n_pk,
                                                   const lunnel_emu_cell *cells, size_t n_cells,
                                                   int64_t seq_us, int32_t row_index, char *msg,
                                                   size_t msglen);

/* Snapshot restore: no change appended, nobody notified. */
void lunnel_emu_table_restore_meta(lunnel_emu_table *t, int64_t created_ms,
                                   uint64_t changes_begin); /* begin: only while empty */
/* Inserts a stored row with all its cell versions (PUT, with timestamps). */
lunnel_emu_store_err lunnel_emu_store_restore_row(lunnel_emu_store *st, lunnel_emu_table *t,
                                                  const lunnel_emu_value *pk, size_t n_pk,
                                                  const lunnel_emu_cell *cells, size_t n_cells,
                                                  char *msg, size_t msglen);
/* Appends a copy of `c` to the change stream; c->index must be the stream's end. */
lunnel_emu_store_err lunnel_emu_store_restore_change(lunnel_emu_store *st, lunnel_emu_table *t,
                                                     const lunnel_emu_change *c);
/* Every row in key order (for snapshots); stops when fn returns nonzero. Returns rows seen. */
size_t lunnel_emu_table_rows_each(const lunnel_emu_table *t, lunnel_emu_row_fn fn, void *ud);

#endif
