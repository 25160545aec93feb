/* durable.c: --data-dir: the write-ahead log, snapshots (compaction) and start-up restore of
 * lunnel-emulator's state (see durable.h for the policy, wal.h for the byte format,
 * tunnel_persist.h for the Tunnel Service part). */
#include "durability/durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "durability/tunnel_persist.h"
#include "durability/wal.h"

/* Record types of the store part (the tunnel part uses 20..29). */
enum {
    REC_META = 1,                 /* u32 partitions: first record of every WAL */
    REC_TABLE_CREATE = 2,         /* table definition */
    REC_TABLE_DELETE = 3,         /* str name */
    REC_WRITE = 4,                /* one committed row write */
    REC_TABLE_UPDATE = 5,         /* table definition with the options UpdateTable set */
    REC_SNAP_HEADER = 10,         /* u64 next_gen, u32 partitions, i64 seq_us, i32 row_index */
    REC_SNAP_TABLE = 11,          /* table definition + u64 changes_begin; selects the table */
    REC_SNAP_ROWS = 12,           /* u32 n, rows of the selected table */
    REC_SNAP_CHANGES = 13,        /* u32 n, changes of the selected table */
    REC_SNAP_CHANGES_ORIGIN = 14, /* the same, each with u8 has_origin + bytes origin */
    REC_SNAP_END = 19,            /* no fields: the snapshot is complete */
};

#define CHUNK (1u << 20)
#define DEFAULT_COMPACT (64u << 20)
#define MAX_CELLS 1000000u
/* Sequence timestamps are microseconds; the tunnel side works in nanoseconds (x1000). */
#define MAX_SEQ_US (INT64_MAX / 1000)

struct lunnel_emu_durable {
    lunnel_emu_durable_opts o;
    char *dir;
    lunnel_emu_store *st;
    lunnel_emu_tunnels *tunnels;
    lunnel_emu_tunnel_journal *tj;
    int lock_fd, wal_fd, dir_fd;
    uint64_t gen;
    emu_wbuf pending; /* framed records not yet written */
    int dirty;        /* written but not fsync'd (batch / never) */
    int replaying;
    int failed; /* a write failed: refuse everything after */
    uint32_t partitions;
    lunnel_emu_durable_stats stats;
    /* restore state */
    lunnel_emu_table *cur_table;
    lunnel_emu_tunnel_restore trs;
    emu_persist_changes chg; /* the store's changes, for snapshot log references */
    int snap_end_seen;
    uint64_t snap_next_gen;
    uint64_t warned;
    /* the oldest WAL generation still needed: the one the snapshot names (older ones go) */
    uint64_t snap_gen;
    /* a background compaction: a forked child writing the snapshot of the state at the
     * fork, which names compact_gen (the WAL started at the fork) */
    pid_t child;
    int child_status_fd; /* read end: the child writes one byte (0 ok) before it exits */
    uint64_t compact_gen;
    double compact_t0;
    uint64_t retry_at_bytes; /* after a failed one: the WAL size that allows the next */
};

int lunnel_emu_fsync_parse(const char *s, lunnel_emu_fsync *out)
{
    if (!s) return -1;
    if (strcmp(s, "always") == 0)
        *out = LUNNEL_EMU_FSYNC_ALWAYS;
    else if (strcmp(s, "batch") == 0)
        *out = LUNNEL_EMU_FSYNC_BATCH;
    else if (strcmp(s, "never") == 0)
        *out = LUNNEL_EMU_FSYNC_NEVER;
    else
        return -1;
    return 0;
}

const char *lunnel_emu_fsync_name(lunnel_emu_fsync f)
{
    return f == LUNNEL_EMU_FSYNC_BATCH ? "batch" : f == LUNNEL_EMU_FSYNC_NEVER ? "never" : "always";
}

const lunnel_emu_durable_stats *lunnel_emu_durable_stats_of(const lunnel_emu_durable *d)
{
    return &d->stats;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* the restore runs on its own thread */
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void path_of(const lunnel_emu_durable *d, char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", d->dir, name);
}

static void wal_name(uint64_t gen, char *out, size_t n)
{
    snprintf(out, n, "wal.%08" PRIu64, gen);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- encoding ---- */

static void put_value(emu_wbuf *b, const lunnel_emu_value *v)
{
    emu_put_u8(b, (uint8_t)v->type);
    switch (v->type) {
    case LUNNEL_EMU_V_INTEGER:
        emu_put_i64(b, v->i);
        break;
    case LUNNEL_EMU_V_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->d, 8);
        emu_put_u64(b, bits);
        break;
    }
    case LUNNEL_EMU_V_BOOLEAN:
        emu_put_u8(b, v->b ? 1 : 0);
        break;
    case LUNNEL_EMU_V_STRING:
    case LUNNEL_EMU_V_BINARY:
        emu_put_bytes(b, v->ptr, v->len);
        break;
    default:
        break;
    }
}

static int get_value(emu_rbuf *r, lunnel_emu_value *v)
{
    memset(v, 0, sizeof *v);
    uint8_t t = emu_get_u8(r);
    v->type = (lunnel_emu_vtype)t;
    switch (t) {
    case LUNNEL_EMU_V_INTEGER:
        v->i = emu_get_i64(r);
        break;
    case LUNNEL_EMU_V_DOUBLE: {
        uint64_t bits = emu_get_u64(r);
        memcpy(&v->d, &bits, 8);
        break;
    }
    case LUNNEL_EMU_V_BOOLEAN:
        v->b = emu_get_u8(r) != 0;
        break;
    case LUNNEL_EMU_V_STRING:
    case LUNNEL_EMU_V_BINARY: {
        uint32_t n;
        v->ptr = emu_get_bytes(r, &n);
        v->len = n;
        if (!v->ptr) v->ptr = (const uint8_t *)"";
        break;
    }
    case LUNNEL_EMU_V_NULL:
    case LUNNEL_EMU_V_INF_MIN:
    case LUNNEL_EMU_V_INF_MAX:
    case LUNNEL_EMU_V_AUTO_INCREMENT:
        break;
    default:
        r->err = 1;
    }
    return r->err ? -1 : 0;
}

static void put_cell(emu_wbuf *b, const lunnel_emu_cell *c)
{
    emu_put_bytes(b, c->name, c->name_len);
    emu_put_u8(b, (uint8_t)c->op);
    if (c->op == LUNNEL_EMU_OP_PUT) put_value(b, &c->value);
    emu_put_u8(b, c->has_ts ? 1 : 0);
    emu_put_i64(b, c->ts);
}

static int get_cell(emu_rbuf *r, lunnel_emu_cell *c)
{
    memset(c, 0, sizeof *c);
    uint32_t n;
    c->name = emu_get_bytes(r, &n);
    c->name_len = n;
    uint8_t op = emu_get_u8(r);
    if (op != LUNNEL_EMU_OP_PUT && op != LUNNEL_EMU_OP_DELETE_ALL_VERSIONS &&
        op != LUNNEL_EMU_OP_DELETE_ONE_VERSION)
        r->err = 1;
    c->op = (lunnel_emu_cell_op)op;
    if (op == LUNNEL_EMU_OP_PUT) get_value(r, &c->value);
    c->has_ts = emu_get_u8(r) != 0;
    c->ts = emu_get_i64(r);
    if (!c->name) c->name = (const uint8_t *)"";
    return r->err ? -1 : 0;
}

static void put_table_def(emu_wbuf *b, const lunnel_emu_table *t)
{
    const lunnel_emu_pk_schema *pk;
    size_t n = lunnel_emu_table_pk(t, &pk);
    const lunnel_emu_table_options *o = lunnel_emu_table_options_of(t);
    emu_put_str(b, lunnel_emu_table_name(t));
    emu_put_u8(b, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        emu_put_str(b, pk[i].name);
        emu_put_u8(b, (uint8_t)pk[i].type);
    }
    emu_put_i32(b, o->max_versions);
    emu_put_i32(b, o->time_to_live);
    emu_put_u8(b, o->stream_enabled ? 1 : 0);
    emu_put_i32(b, o->stream_expiration_hours);
    emu_put_i64(b, lunnel_emu_table_created_ms(t));
}

typedef struct table_def {
    char name[256];
    lunnel_emu_pk_schema pk[LUNNEL_EMU_MAX_PK];
    size_t n_pk;
    lunnel_emu_table_options o;
    int64_t created_ms;
    char origin[32][256];
    const char *origin_ptr[32];
} table_def;

/* The table definition's extension, written after the fields above (and after a snapshot
 * table's changes_begin): u8 version (2), u8 auto_increment_pk, u8 n, n origin column names,
 * then (version 2) i64 max time deviation in seconds. Records written before it existed end
 * without it; version 1 ends after the origin columns. */
static void put_table_ext(emu_wbuf *b, const lunnel_emu_table *t)
{
    const lunnel_emu_table_options *o = lunnel_emu_table_options_of(t);
    emu_put_u8(b, 2);
    emu_put_u8(b, o->auto_increment_pk);
    emu_put_u8(b, (uint8_t)o->n_origin_columns);
    for (size_t i = 0; i < o->n_origin_columns; i++)
        emu_put_str(b, o->origin_columns[i]);
    emu_put_i64(b, o->deviation_s);
}

static int get_table_ext(emu_rbuf *r, table_def *td)
{
    if (r->off == r->len) return 0;
    uint8_t version = emu_get_u8(r);
    if (version != 1 && version != 2) r->err = 1;
    td->o.auto_increment_pk = emu_get_u8(r);
    size_t n = emu_get_u8(r);
    if (n > 32) r->err = 1;
    for (size_t i = 0; i < n && !r->err; i++) {
        emu_get_str(r, td->origin[i], sizeof td->origin[i]);
        td->origin_ptr[i] = td->origin[i];
    }
    td->o.origin_columns = td->origin_ptr;
    td->o.n_origin_columns = r->err ? 0 : n;
    if (version == 2) td->o.deviation_s = emu_get_i64(r);
    return r->err ? -1 : 0;
}

static int get_table_def(emu_rbuf *r, table_def *td)
{
    memset(td, 0, sizeof *td);
    emu_get_str(r, td->name, sizeof td->name);
    td->n_pk = emu_get_u8(r);
    if (td->n_pk > LUNNEL_EMU_MAX_PK) r->err = 1;
    for (size_t i = 0; i < td->n_pk && !r->err; i++) {
        emu_get_str(r, td->pk[i].name, sizeof td->pk[i].name);
        td->pk[i].type = (lunnel_emu_pktype)emu_get_u8(r);
    }
    td->o.max_versions = emu_get_i32(r);
    td->o.time_to_live = emu_get_i32(r);
    td->o.stream_enabled = emu_get_u8(r) != 0;
    td->o.stream_expiration_hours = emu_get_i32(r);
    td->created_ms = emu_get_i64(r);
    return r->err ? -1 : 0;
}

static void frame_meta(emu_wbuf *b, uint32_t partitions)
{
    size_t at = lunnel_emu_wal_frame_begin(b);
    emu_put_u8(b, REC_META);
    emu_put_u32(b, partitions);
    lunnel_emu_wal_frame_end(b, at);
}

/* ---- journal (store and tunnel hooks) ---- */

static void on_journal(void *ud, lunnel_emu_store_event ev, const lunnel_emu_table *t,
                       const lunnel_emu_journal_write *w)
{
    lunnel_emu_durable *d = ud;
    if (d->replaying) return;
    emu_wbuf *b = &d->pending;
    size_t at = lunnel_emu_wal_frame_begin(b);
    if (ev == LUNNEL_EMU_EV_TABLE_CREATED || ev == LUNNEL_EMU_EV_TABLE_UPDATED) {
        emu_put_u8(b, ev == LUNNEL_EMU_EV_TABLE_CREATED ? REC_TABLE_CREATE : REC_TABLE_UPDATE);
        put_table_def(b, t);
        put_table_ext(b, t);
    } else if (ev == LUNNEL_EMU_EV_TABLE_DELETED) {
        emu_put_u8(b, REC_TABLE_DELETE);
        emu_put_str(b, lunnel_emu_table_name(t));
    } else if (ev == LUNNEL_EMU_EV_CHANGE_APPENDED && w) {
        emu_put_u8(b, REC_WRITE);
        emu_put_str(b, lunnel_emu_table_name(t));
        emu_put_u8(b, (uint8_t)w->action);
        emu_put_i64(b, w->change->timestamp_us);
        emu_put_i32(b, w->change->row_index);
        emu_put_u8(b, (uint8_t)w->n_pk);
        for (size_t i = 0; i < w->n_pk; i++)
            put_value(b, &w->pk[i]);
        size_t nc = w->action == LUNNEL_EMU_ACTION_DELETE ? 0 : w->n_cells;
        emu_put_u32(b, (uint32_t)nc);
        for (size_t i = 0; i < nc; i++)
            put_cell(b, &w->cells[i]);
    } else {
        b->len = at;
        return;
    }
    lunnel_emu_wal_frame_end(b, at);
}

static void on_tunnel_sync(void *ud)
{
    lunnel_emu_durable *d = ud;
    if (d->replaying || !d->tunnels) return;
    if (lunnel_emu_tunnel_journal_sync(d->tj, d->tunnels, &d->pending) < 0) d->pending.oom = 1;
}

/* ---- the store's changes as the tunnel side saw them (snapshot log references) ---- */

static void chg_range(void *ud, const char *table, uint64_t *begin, uint64_t *end)
{
    lunnel_emu_durable *d = ud;
    lunnel_emu_table *t = lunnel_emu_store_table(d->st, table);
    *begin = t ? lunnel_emu_table_changes_begin(t) : 0;
    *end = t ? lunnel_emu_table_changes_end(t) : 0;
}

static int chg_at(void *ud, const char *table, uint64_t i, emu_tunnel_change *out)
{
    lunnel_emu_durable *d = ud;
    lunnel_emu_table *t = lunnel_emu_store_table(d->st, table);
    const lunnel_emu_change *c = t ? lunnel_emu_table_change_at(t, i) : NULL;
    if (!c) return -1;
    /* exactly what tunnel_server.c's store listener passes to the tunnel side */
    *out = (emu_tunnel_change){lunnel_emu_table_name(t),
                               (int)c->action,
                               c->row,
                               c->row_len,
                               c->origin,
                               c->origin_len,
                               c->pk,
                               c->pk_len,
                               c->timestamp_us * 1000};
    return 0;
}

/* ---- restore ---- */

static void warn(lunnel_emu_durable *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(lunnel_emu_durable *d, const char *fmt, ...)
{
    if (++d->warned > 20) return;
    FILE *f = d->o.log ? d->o.log : stderr;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "lunnel-emulator: data dir %s: ", d->dir);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
}

/* Decodes and applies a REC_WRITE. -1: malformed (why set); 1: not applicable (skipped). */
static int apply_write(lunnel_emu_durable *d, emu_rbuf *r, char *why)
{
    char table[256];
    emu_get_str(r, table, sizeof table);
    lunnel_emu_action action = (lunnel_emu_action)emu_get_u8(r);
    int64_t us = emu_get_i64(r);
    int32_t ri = emu_get_i32(r);
    lunnel_emu_value pk[LUNNEL_EMU_MAX_PK];
    size_t n_pk = emu_get_u8(r);
    if (n_pk > LUNNEL_EMU_MAX_PK || action < LUNNEL_EMU_ACTION_PUT ||
        action > LUNNEL_EMU_ACTION_DELETE || us < 0 || us > MAX_SEQ_US || ri < 0)
        r->err = 1;
    for (size_t i = 0; i < n_pk && !r->err; i++)
        get_value(r, &pk[i]);
    uint32_t nc = emu_get_u32(r);
    if (nc > MAX_CELLS || nc > r->len) r->err = 1;
    if (r->err) {
        snprintf(why, 160, "malformed row write");
        return -1;
    }
    lunnel_emu_cell stack_cells[16]; /* nearly every write: no allocation */
    lunnel_emu_cell *cells = nc <= 16 ? stack_cells : calloc(nc, sizeof *cells);
    if (!cells) {
        snprintf(why, 160, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < nc && !r->err; i++)
        get_cell(r, &cells[i]);
    if (r->err || r->off != r->len) {
        if (cells != stack_cells) free(cells);
        snprintf(why, 160, "malformed row write (cells)");
        return -1;
    }
    lunnel_emu_table *t = lunnel_emu_store_table(d->st, table);
    int rc = 0;
    if (!t) {
        warn(d, "skipped a write to table '%s', which does not exist at that point", table);
        rc = 1;
    } else {
        char msg[256];
        lunnel_emu_store_err e = lunnel_emu_store_replay_write(d->st, t, action, pk, n_pk, cells,
                                                               nc, us, ri, msg, sizeof msg);
        if (e) {
            warn(d, "skipped a write to table '%s': %s", table, msg);
            rc = 1;
        }
    }
    if (cells != stack_cells) free(cells);
    return rc;
}

static int create_from_def(lunnel_emu_durable *d, const table_def *td, uint64_t changes_begin,
                           char *why)
{
    char msg[256];
    lunnel_emu_store_err e =
        lunnel_emu_store_create_table(d->st, td->name, td->pk, td->n_pk, &td->o, msg, sizeof msg);
    if (e) {
        snprintf(why, 160, "table '%.50s': %.80s", td->name, msg);
        return -1;
    }
    d->cur_table = lunnel_emu_store_table(d->st, td->name);
    lunnel_emu_table_restore_meta(d->cur_table, td->created_ms, changes_begin);
    return 0;
}

static int on_wal_record(void *ud, const uint8_t *p, size_t n, size_t off, char *why)
{
    (void)off;
    lunnel_emu_durable *d = ud;
    emu_rbuf r = {p, n, 1, 0};
    switch (p[0]) {
    case REC_META: {
        uint32_t parts = emu_get_u32(&r);
        if (r.err) break;
        if (parts != d->partitions) {
            snprintf(why, 160,
                     "data dir was created with --partitions %u, this run has --partitions %u",
                     parts, d->partitions);
            return -1;
        }
        return 0;
    }
    case REC_TABLE_CREATE: {
        table_def td;
        if (get_table_def(&r, &td) != 0 || get_table_ext(&r, &td) != 0 || r.off != r.len) break;
        char msg[160];
        if (create_from_def(d, &td, 0, msg) != 0) {
            warn(d, "skipped a table creation: %s", msg);
            d->stats.skipped_records++;
        }
        return 0;
    }
    case REC_TABLE_UPDATE: {
        table_def td;
        if (get_table_def(&r, &td) != 0 || get_table_ext(&r, &td) != 0 || r.off != r.len) break;
        lunnel_emu_table *t = lunnel_emu_store_table(d->st, td.name);
        char msg[160];
        if (!t || lunnel_emu_store_update_table(d->st, t, &td.o, msg, sizeof msg) != 0) {
            warn(d, "skipped an update of table '%s' (%s)", td.name, t ? msg : "not there");
            d->stats.skipped_records++;
        }
        return 0;
    }
    case REC_TABLE_DELETE: {
        char name[256];
        emu_get_str(&r, name, sizeof name);
        if (r.err || r.off != r.len) break;
        if (lunnel_emu_store_delete_table(d->st, name) != LUNNEL_EMU_STORE_OK) {
            warn(d, "skipped deleting table '%s' (not there)", name);
            d->stats.skipped_records++;
        }
        return 0;
    }
    case REC_WRITE: {
        int rc = apply_write(d, &r, why);
        if (rc < 0) return -1;
        d->stats.skipped_records += (uint64_t)rc;
        return 0;
    }
    default:
        if ((p[0] >= 20 && p[0] <= EMU_REC_T_TUNNEL_DEL) || p[0] == EMU_REC_T_SETTINGS) {
            if (!d->tunnels) return 0;
            char msg[160];
            if (lunnel_emu_tunnel_persist_apply(d->tunnels, &d->trs, p, n, 1, msg, sizeof msg) !=
                0) {
                warn(d, "skipped a tunnel record: %s", msg);
                d->stats.skipped_records++;
            }
            return 0;
        }
        snprintf(why, 160, "unknown record type in a WAL");
        return -1;
    }
    snprintf(why, 160, "malformed record");
    return -1;
}

/* A snapshot's REC_SNAP_ROWS: rows of the selected table, each restored as stored. */
static int snap_rows(lunnel_emu_durable *d, emu_rbuf *r, char *why)
{
    uint32_t k = emu_get_u32(r);
    lunnel_emu_cell *cells = NULL;
    size_t cap = 0;
    int rc = -1;
    for (uint32_t i = 0; i < k && !r->err; i++) {
        lunnel_emu_value pk[LUNNEL_EMU_MAX_PK];
        size_t n_pk = emu_get_u8(r);
        if (n_pk > LUNNEL_EMU_MAX_PK) r->err = 1;
        for (size_t j = 0; j < n_pk && !r->err; j++)
            get_value(r, &pk[j]);
        uint32_t nc = emu_get_u32(r);
        if (r->err || nc > MAX_CELLS || nc > r->len) {
            r->err = 1;
            break;
        }
        if (nc > cap) {
            lunnel_emu_cell *q = realloc(cells, nc * sizeof *q);
            if (!q) {
                snprintf(why, 160, "out of memory");
                goto out;
            }
            cells = q;
            cap = nc;
        }
        for (uint32_t j = 0; j < nc && !r->err; j++)
            get_cell(r, &cells[j]);
        if (r->err) break;
        char msg[160];
        if (lunnel_emu_store_restore_row(d->st, d->cur_table, pk, n_pk, cells, nc, msg,
                                         sizeof msg) != LUNNEL_EMU_STORE_OK) {
            snprintf(why, 160, "row %u of table %.40s: %.90s", i,
                     lunnel_emu_table_name(d->cur_table), msg);
            goto out;
        }
    }
    if (r->err || r->off != r->len) {
        snprintf(why, 160, "malformed record");
        goto out;
    }
    rc = 0;
out:
    free(cells);
    return rc;
}

/* A snapshot's REC_SNAP_CHANGES(_ORIGIN): the selected table's change stream, in order. */
static int snap_changes(lunnel_emu_durable *d, emu_rbuf *r, int with_origin, char *why)
{
    uint32_t k = emu_get_u32(r);
    for (uint32_t i = 0; i < k && !r->err; i++) {
        lunnel_emu_change c;
        memset(&c, 0, sizeof c);
        uint32_t rl, pl;
        c.index = emu_get_u64(r);
        c.action = (lunnel_emu_action)emu_get_u8(r);
        c.epoch = emu_get_i32(r);
        c.timestamp_us = emu_get_i64(r);
        c.row_index = emu_get_i32(r);
        c.row = emu_get_bytes(r, &rl);
        c.row_len = rl;
        c.pk = emu_get_bytes(r, &pl);
        c.pk_len = pl;
        c.partition = emu_get_u32(r);
        if (with_origin && emu_get_u8(r)) {
            uint32_t ol;
            c.origin = emu_get_bytes(r, &ol);
            c.origin_len = ol;
        }
        if (c.timestamp_us < 0 || c.timestamp_us > MAX_SEQ_US) r->err = 1;
        if (r->err) break;
        if (lunnel_emu_store_restore_change(d->st, d->cur_table, &c) != LUNNEL_EMU_STORE_OK) {
            snprintf(why, 160, "change %" PRIu64 " of table %s does not follow the stream", c.index,
                     lunnel_emu_table_name(d->cur_table));
            return -1;
        }
    }
    if (r->err || r->off != r->len) {
        snprintf(why, 160, "malformed record");
        return -1;
    }
    return 0;
}

static int on_snap_record(void *ud, const uint8_t *p, size_t n, size_t off, char *why)
{
    (void)off;
    lunnel_emu_durable *d = ud;
    emu_rbuf r = {p, n, 1, 0};
    if (d->snap_end_seen) {
        snprintf(why, 160, "record after the end record");
        return -1;
    }
    switch (p[0]) {
    case REC_SNAP_HEADER: {
        d->snap_next_gen = emu_get_u64(&r);
        uint32_t parts = emu_get_u32(&r);
        int64_t us = emu_get_i64(&r);
        int32_t ri = emu_get_i32(&r);
        if (r.err || r.off != r.len || d->snap_next_gen == 0 || us < 0 || us > MAX_SEQ_US) break;
        if (parts != d->partitions) {
            snprintf(why, 160,
                     "data dir was created with --partitions %u, this run has --partitions %u",
                     parts, d->partitions);
            return -1;
        }
        lunnel_emu_store_restore_seq(d->st, us, ri);
        return 0;
    }
    case REC_SNAP_TABLE: {
        table_def td;
        if (get_table_def(&r, &td) != 0) break;
        uint64_t begin = emu_get_u64(&r);
        if (r.err || get_table_ext(&r, &td) != 0 || r.off != r.len) break;
        return create_from_def(d, &td, begin, why);
    }
    case REC_SNAP_ROWS:
        if (!d->cur_table) break;
        return snap_rows(d, &r, why);
    case REC_SNAP_CHANGES:
    case REC_SNAP_CHANGES_ORIGIN:
        if (!d->cur_table) break;
        return snap_changes(d, &r, p[0] == REC_SNAP_CHANGES_ORIGIN, why);
    case REC_SNAP_END:
        if (r.len != 1) break;
        d->snap_end_seen = 1;
        return 0;
    default:
        if (p[0] >= 20 && p[0] <= EMU_REC_T_SETTINGS) {
            if (!d->tunnels) break;
            if (lunnel_emu_tunnel_persist_apply(d->tunnels, &d->trs, p, n, 0, why, 160) != 0)
                return -1;
            return 0;
        }
        snprintf(why, 160, "unknown record type in a snapshot");
        return -1;
    }
    snprintf(why, 160, "malformed record");
    return -1;
}

/* Maps a whole file read-only; *len 0 and NULL for an empty file. -1 on error. */
static int map_file(const char *path, const uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return -1;
    }
    if (sb.st_size > 0) {
        /* MAP_POPULATE: the whole file is read once, front to back; one populate costs far
         * less than a page fault per 4 KiB (a third of a restore's time in a VM). */
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return -1;
        }
        madvise(m, (size_t)sb.st_size, MADV_SEQUENTIAL);
        *out = m;
        *len = (size_t)sb.st_size;
    }
    close(fd);
    return 0;
}

/* ---- snapshot writing ---- */

typedef struct snap_writer {
    lunnel_emu_durable *d;
    int fd;
    emu_wbuf b;
    int failed;
    /* rows chunk */
    size_t rows_at, count_at;
    uint32_t rows_in_chunk;
} snap_writer;

static int sw_flush(void *ud, emu_wbuf *b)
{
    snap_writer *w = ud;
    if (b->oom || write_all(w->fd, b->p, b->len) != 0) {
        w->failed = 1;
        return -1;
    }
    b->len = 0;
    return 0;
}

static void sw_set_count(emu_wbuf *b, size_t at, uint32_t k)
{
    if (b->oom) return;
    for (int q = 0; q < 4; q++)
        b->p[at + q] = (uint8_t)(k >> (8 * q));
}

static void sw_rows_close(snap_writer *w)
{
    if (!w->rows_in_chunk) {
        w->b.len = w->rows_at; /* drop an empty chunk */
        return;
    }
    sw_set_count(&w->b, w->count_at, w->rows_in_chunk);
    lunnel_emu_wal_frame_end(&w->b, w->rows_at);
    w->rows_in_chunk = 0;
    if (w->b.len > CHUNK) sw_flush(w, &w->b);
}

static void sw_rows_open(snap_writer *w)
{
    w->rows_at = lunnel_emu_wal_frame_begin(&w->b);
    emu_put_u8(&w->b, REC_SNAP_ROWS);
    w->count_at = w->b.len;
    emu_put_u32(&w->b, 0);
}

static int sw_row(void *ud, const lunnel_emu_row *row)
{
    snap_writer *w = ud;
    const lunnel_emu_value *pk;
    const lunnel_emu_cell *cells;
    size_t n_pk = lunnel_emu_row_pk(row, &pk), nc = lunnel_emu_row_cells(row, &cells);
    emu_put_u8(&w->b, (uint8_t)n_pk);
    for (size_t i = 0; i < n_pk; i++)
        put_value(&w->b, &pk[i]);
    emu_put_u32(&w->b, (uint32_t)nc);
    for (size_t i = 0; i < nc; i++)
        put_cell(&w->b, &cells[i]);
    w->rows_in_chunk++;
    if (w->b.len - w->rows_at > CHUNK) {
        sw_rows_close(w);
        sw_rows_open(w);
    }
    return w->failed || w->b.oom;
}

static int write_snapshot(lunnel_emu_durable *d, const char *tmp, uint64_t next_gen, char *err,
                          size_t errlen)
{
    snap_writer w = {.d = d};
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    emu_put(&w.b, LUNNEL_EMU_SNAP_MAGIC, LUNNEL_EMU_WAL_MAGIC_LEN);
    int64_t us;
    int32_t ri;
    lunnel_emu_store_seq(d->st, &us, &ri);
    size_t at = lunnel_emu_wal_frame_begin(&w.b);
    emu_put_u8(&w.b, REC_SNAP_HEADER);
    emu_put_u64(&w.b, next_gen);
    emu_put_u32(&w.b, d->partitions);
    emu_put_i64(&w.b, us);
    emu_put_i32(&w.b, ri);
    lunnel_emu_wal_frame_end(&w.b, at);
    size_t nt = lunnel_emu_store_table_count(d->st);
    for (size_t i = 0; i < nt && !w.failed; i++) {
        lunnel_emu_table *t = lunnel_emu_store_table_at(d->st, i);
        at = lunnel_emu_wal_frame_begin(&w.b);
        emu_put_u8(&w.b, REC_SNAP_TABLE);
        put_table_def(&w.b, t);
        emu_put_u64(&w.b, lunnel_emu_table_changes_begin(t));
        put_table_ext(&w.b, t);
        lunnel_emu_wal_frame_end(&w.b, at);
        sw_rows_open(&w);
        lunnel_emu_table_rows_each(t, sw_row, &w);
        sw_rows_close(&w);
        uint64_t b = lunnel_emu_table_changes_begin(t), e = lunnel_emu_table_changes_end(t);
        while (b < e && !w.failed && !w.b.oom) {
            at = lunnel_emu_wal_frame_begin(&w.b);
            emu_put_u8(&w.b, REC_SNAP_CHANGES_ORIGIN);
            size_t cat = w.b.len;
            emu_put_u32(&w.b, 0);
            uint32_t k = 0;
            while (b < e && w.b.len - at < CHUNK) {
                const lunnel_emu_change *c = lunnel_emu_table_change_at(t, b++);
                emu_put_u64(&w.b, c->index);
                emu_put_u8(&w.b, (uint8_t)c->action);
                emu_put_i32(&w.b, c->epoch);
                emu_put_i64(&w.b, c->timestamp_us);
                emu_put_i32(&w.b, c->row_index);
                emu_put_bytes(&w.b, c->row, c->row_len);
                emu_put_bytes(&w.b, c->pk, c->pk_len);
                emu_put_u32(&w.b, c->partition);
                emu_put_u8(&w.b, c->origin != NULL);
                if (c->origin) emu_put_bytes(&w.b, c->origin, c->origin_len);
                k++;
            }
            sw_set_count(&w.b, cat, k);
            lunnel_emu_wal_frame_end(&w.b, at);
            if (w.b.len > CHUNK) sw_flush(&w, &w.b);
        }
    }
    if (!w.failed && d->tunnels &&
        lunnel_emu_tunnel_persist_snapshot_refs(d->tunnels, &w.b, sw_flush, &w, &d->chg) != 0)
        w.failed = 1;
    at = lunnel_emu_wal_frame_begin(&w.b);
    emu_put_u8(&w.b, REC_SNAP_END);
    lunnel_emu_wal_frame_end(&w.b, at);
    if (!w.failed) sw_flush(&w, &w.b);
    int rc = 0;
    if (w.failed || w.b.oom) {
        snprintf(err, errlen, "cannot write %s: %s", tmp,
                 w.b.oom ? "out of memory" : strerror(errno));
        rc = -1;
    } else if (fdatasync(w.fd) != 0) {
        snprintf(err, errlen, "cannot fsync %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    close(w.fd);
    lunnel_emu_wbuf_free(&w.b);
    if (rc) unlink(tmp);
    return rc;
}

/* ---- WAL files ---- */

static int fsync_dir(lunnel_emu_durable *d)
{
    return fsync(d->dir_fd);
}

/* Creates wal.<gen> holding the magic and the META record, durably. */
static int create_wal(lunnel_emu_durable *d, uint64_t gen, char *err, size_t errlen)
{
    char name[32], path[4200];
    wal_name(gen, name, sizeof name);
    path_of(d, path, sizeof path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    emu_wbuf b = {0};
    emu_put(&b, LUNNEL_EMU_WAL_MAGIC, LUNNEL_EMU_WAL_MAGIC_LEN);
    frame_meta(&b, d->partitions);
    if (b.oom || write_all(fd, b.p, b.len) != 0 || fdatasync(fd) != 0 || fsync_dir(d) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path,
                 b.oom ? "out of memory" : strerror(errno));
        lunnel_emu_wbuf_free(&b);
        close(fd);
        return -1;
    }
    if (d->wal_fd >= 0) close(d->wal_fd);
    d->wal_fd = fd;
    d->gen = gen;
    d->stats.generation = gen;
    d->stats.wal_bytes = b.len;
    lunnel_emu_wbuf_free(&b);
    return 0;
}

/* Removes WAL generations older than the one the snapshot names (they are in it). */
static void remove_old_wals(lunnel_emu_durable *d)
{
    DIR *dir = opendir(d->dir);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        unsigned long long g;
        char tail;
        if (sscanf(e->d_name, "wal.%llu%c", &g, &tail) != 1) continue;
        if (g >= d->snap_gen) continue;
        char path[4200];
        path_of(d, path, sizeof path, e->d_name);
        unlink(path);
    }
    closedir(dir);
}

/* ---- commit / compact ---- */

/* fdatasync of the current WAL; a failure marks the state failed (err says why). */
static int wal_fsync(lunnel_emu_durable *d, char *err, size_t errlen)
{
    if (fdatasync(d->wal_fd) != 0) {
        d->failed = 1;
        snprintf(err, errlen, "data dir %s: cannot fsync wal.%08" PRIu64 ": %s", d->dir, d->gen,
                 strerror(errno));
        return -1;
    }
    d->stats.fsyncs++;
    return 0;
}

static void compaction_reap(lunnel_emu_durable *d, int block);
static int compaction_start(lunnel_emu_durable *d, int block, char *err, size_t errlen);

int lunnel_emu_durable_commit(lunnel_emu_durable *d, char *err, size_t errlen)
{
    if (d->failed) {
        snprintf(err, errlen, "data dir %s: an earlier write failed", d->dir);
        return -1;
    }
    if (d->pending.oom) {
        d->failed = 1;
        snprintf(err, errlen, "data dir %s: out of memory journalling a change", d->dir);
        return -1;
    }
    if (d->pending.len == 0) return 0;
    if (write_all(d->wal_fd, d->pending.p, d->pending.len) != 0) {
        d->failed = 1;
        snprintf(err, errlen, "data dir %s: cannot write wal.%08" PRIu64 ": %s", d->dir, d->gen,
                 strerror(errno));
        return -1;
    }
    d->stats.wal_bytes += d->pending.len;
    d->stats.commits++;
    d->pending.len = 0;
    if (d->pending.cap > (4u << 20)) lunnel_emu_wbuf_free(&d->pending); /* after a bulk load */
    if (d->o.fsync == LUNNEL_EMU_FSYNC_ALWAYS) {
        if (wal_fsync(d, err, errlen) != 0) return -1;
    } else {
        d->dirty = 1;
    }
    compaction_reap(d, 0);
    if (d->stats.wal_bytes > d->o.compact_bytes && d->stats.wal_bytes >= d->retry_at_bytes &&
        d->child <= 0)
        return compaction_start(d, 0, err, errlen);
    return 0;
}

int lunnel_emu_durable_pending(const lunnel_emu_durable *d)
{
    return d->pending.len > 0 || d->pending.oom || d->failed;
}

int lunnel_emu_durable_tick(lunnel_emu_durable *d, char *err, size_t errlen)
{
    if (!d->dirty || d->o.fsync != LUNNEL_EMU_FSYNC_BATCH) return 0;
    if (wal_fsync(d, err, errlen) != 0) return -1;
    d->dirty = 0;
    return 0;
}

/* The end of a compaction: its snapshot now names compact_gen; older logs go. */
static void compaction_done(lunnel_emu_durable *d)
{
    d->snap_gen = d->compact_gen;
    remove_old_wals(d);
    d->stats.compactions++;
    d->stats.last_compact_ms = mono_ms() - d->compact_t0;
}

/* Reaps a finished background compaction (`block`: wait for it). The child's status byte
 * on a pipe says how it went (the process itself may be reaped by libev's SIGCHLD handler in
 * the default loop, so waitpid cannot be relied on). A failed one keeps every log (the
 * previous snapshot and the logs since still hold everything) and is retried once the log
 * has grown by another --compact-bytes; it is reported once. */
static void compaction_reap(lunnel_emu_durable *d, int block)
{
    if (d->child <= 0) return;
    uint8_t byte = 1;
    ssize_t n;
    for (;;) {
        n = read(d->child_status_fd, &byte, 1);
        if (n >= 0 || errno == EINTR) {
            if (n >= 0) break;
            continue;
        }
        if (errno != EAGAIN || !block) return; /* still writing */
        struct pollfd pfd = {d->child_status_fd, POLLIN, 0};
        (void)poll(&pfd, 1, -1);
    }
    close(d->child_status_fd);
    d->child_status_fd = -1;
    int status = 0;
    pid_t r;
    do
        r = waitpid(d->child, &status, 0); /* it is exiting; ECHILD: libev reaped it */
    while (r < 0 && errno == EINTR);
    d->child = 0;
    if (n == 1 && byte == 0) {
        compaction_done(d);
        return;
    }
    d->retry_at_bytes = d->stats.wal_bytes + d->o.compact_bytes;
    char why[64];
    if (r > 0 && WIFSIGNALED(status))
        snprintf(why, sizeof why, "signal %d", WTERMSIG(status));
    else if (n == 1)
        snprintf(why, sizeof why, "it could not write the snapshot");
    else
        snprintf(why, sizeof why, "its process ended early");
    FILE *log = d->o.log ? d->o.log : stderr;
    fprintf(log,
            "lunnel-emulator: data dir %s: the background snapshot did not finish (%s); the "
            "logs are kept and it is retried after another %zu log bytes\n",
            d->dir, why, d->o.compact_bytes);
}

void lunnel_emu_durable_poll(lunnel_emu_durable *d)
{
    compaction_reap(d, 0);
}

int lunnel_emu_durable_compacting(const lunnel_emu_durable *d)
{
    return d->child > 0;
}

/* Starts a compaction: what is pending goes to the current log, a new log generation starts
 * (later writes go there), and a forked child writes the snapshot of the state as it is at
 * the fork (copy-on-write pages: a consistent picture while the loop goes on serving), named
 * after the new generation. Until it has renamed its snapshot into place, a restart restores
 * the previous snapshot and replays every log since, the older one included. Without fork
 * (it failed), the snapshot is written here, blocking. */
static int compaction_start(lunnel_emu_durable *d, int block, char *err, size_t errlen)
{
    if (d->child > 0) {
        if (!block) return 0; /* one at a time */
        compaction_reap(d, 1);
    }
    d->compact_t0 = mono_ms();
    on_tunnel_sync(d); /* the tunnel journal's diff basis is the state being snapshotted */
    if (d->pending.len) {
        if (write_all(d->wal_fd, d->pending.p, d->pending.len) != 0) {
            d->failed = 1;
            snprintf(err, errlen, "data dir %s: cannot write wal.%08" PRIu64 ": %s", d->dir, d->gen,
                     strerror(errno));
            return -1;
        }
        d->pending.len = 0;
    }
    if (d->dirty && wal_fsync(d, err, errlen) != 0) return -1;
    d->dirty = 0;
    d->compact_gen = d->gen + 1;
    if (create_wal(d, d->compact_gen, err, errlen) != 0) {
        d->failed = 1;
        return -1;
    }
    char tmp[4200], snap[4200];
    path_of(d, tmp, sizeof tmp, "snapshot.tmp");
    path_of(d, snap, sizeof snap, "snapshot");
    fflush(NULL);
    int sp[2];
    int have_pipe = pipe2(sp, O_CLOEXEC) == 0;
    pid_t pid = have_pipe ? fork() : -1;
    if (pid < 0 && have_pipe) {
        close(sp[0]);
        close(sp[1]);
    }
    if (pid == 0) { /* the child: write, sync, rename; nothing else of this process runs */
        close(sp[0]);
        char cerr[512];
        int rc = write_snapshot(d, tmp, d->compact_gen, cerr, sizeof cerr);
        if (rc == 0 && (rename(tmp, snap) != 0 || fsync_dir(d) != 0)) rc = -1;
        if (rc != 0) {
            unlink(tmp);
            dprintf(2, "lunnel-emulator: background snapshot: %s\n", cerr);
        }
        uint8_t byte = rc == 0 ? 0 : 1;
        (void)!write(sp[1], &byte, 1);
        _exit(rc == 0 ? 0 : 1);
    }
    if (pid > 0) {
        close(sp[1]);
        fcntl(sp[0], F_SETFL, O_NONBLOCK);
        d->child_status_fd = sp[0];
        d->child = pid;
        d->stats.last_compact_block_ms = mono_ms() - d->compact_t0;
        if (block) {
            compaction_reap(d, 1);
            if (d->snap_gen != d->compact_gen) {
                snprintf(err, errlen, "data dir %s: the snapshot could not be written", d->dir);
                return -1;
            }
        }
        return 0;
    }
    /* no fork: write it here */
    if (write_snapshot(d, tmp, d->compact_gen, err, errlen) != 0) {
        d->failed = 1;
        return -1;
    }
    if (rename(tmp, snap) != 0 || fsync_dir(d) != 0) {
        d->failed = 1;
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, snap, strerror(errno));
        return -1;
    }
    compaction_done(d);
    d->stats.last_compact_block_ms = d->stats.last_compact_ms;
    if (d->tunnels && !d->replaying)
        lunnel_emu_tunnel_persist_pause_credit(d->tunnels,
                                               (int64_t)(d->stats.last_compact_ms * 1e6));
    return 0;
}

int lunnel_emu_durable_compact(lunnel_emu_durable *d, char *err, size_t errlen)
{
    return compaction_start(d, 1, err, errlen);
}

/* ---- open / close ---- */

static void durable_free(lunnel_emu_durable *d)
{
    if (d->child_status_fd >= 0) close(d->child_status_fd);
    if (d->wal_fd >= 0) close(d->wal_fd);
    if (d->dir_fd >= 0) close(d->dir_fd);
    if (d->lock_fd >= 0) close(d->lock_fd);
    lunnel_emu_tunnel_journal_free(d->tj);
    lunnel_emu_wbuf_free(&d->pending);
    free(d->dir);
    free(d);
}

static int restore(lunnel_emu_durable *d, char *err, size_t errlen)
{
    FILE *log = d->o.log ? d->o.log : stderr;
    char path[4200];
    const uint8_t *m;
    size_t len;
    lunnel_emu_wal_scan_result res;
    d->gen = 1;
    path_of(d, path, sizeof path, "snapshot");
    if (map_file(path, &m, &len) == 0) {
        lunnel_emu_wal_scan(m, len, LUNNEL_EMU_SNAP_MAGIC, on_snap_record, d, &res);
        if (m) munmap((void *)m, len);
        d->stats.snapshot_records = res.records;
        if (res.status == LUNNEL_EMU_WAL_REJECTED) {
            /* intact bytes this run cannot apply (a flag mismatch, another version): the
             * data is fine and nothing was changed */
            snprintf(err, errlen, "%s: %s; refusing to start (nothing was changed)", path, res.msg);
            return -1;
        }
        if (res.status != LUNNEL_EMU_WAL_OK || !d->snap_end_seen) {
            snprintf(err, errlen,
                     "%s: %s%s; the snapshot is written atomically, so this is damage (disk or "
                     "a copy): refusing to start, nothing was changed (keep a copy of the data "
                     "dir; a backup of it restores everything)",
                     path, res.status != LUNNEL_EMU_WAL_OK ? res.msg : "no end record",
                     res.status != LUNNEL_EMU_WAL_OK ? "" : " (incomplete)");
            return -1;
        }
        d->gen = d->snap_next_gen;
        d->cur_table = NULL;
        d->trs.log = NULL;
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    d->snap_gen = d->gen;
    /* Every log from the one the snapshot names on: more than one when a background
     * compaction had started a new log but not finished its snapshot. Only the last one may
     * end in a torn record (the others were complete before the next was created). */
    char name[32];
    for (;;) {
        char next[32], npath[4200];
        wal_name(d->gen + 1, next, sizeof next);
        path_of(d, npath, sizeof npath, next);
        struct stat nst;
        int is_last = stat(npath, &nst) != 0;
        wal_name(d->gen, name, sizeof name);
        path_of(d, path, sizeof path, name);
        if (map_file(path, &m, &len) != 0) {
            if (errno != ENOENT || !is_last) {
                snprintf(err, errlen, "cannot read %s: %s", path,
                         errno == ENOENT ? "missing while a later log exists" : strerror(errno));
                return -1;
            }
            return create_wal(d, d->gen, err, errlen);
        }
        if (len < LUNNEL_EMU_WAL_MAGIC_LEN &&
            (len == 0 || memcmp(m, LUNNEL_EMU_WAL_MAGIC, len) == 0)) {
            /* cut short while being created: nothing was ever acknowledged from it */
            if (m) munmap((void *)m, len);
            if (!is_last) {
                d->gen++;
                continue;
            }
            return create_wal(d, d->gen, err, errlen);
        }
        lunnel_emu_wal_scan(m, len, LUNNEL_EMU_WAL_MAGIC, on_wal_record, d, &res);
        if (m) munmap((void *)m, len);
        d->stats.wal_records += res.records;
        if (res.status == LUNNEL_EMU_WAL_BAD_MAGIC) {
            snprintf(err, errlen, "%s: %s", path, res.msg);
            return -1;
        }
        if (res.status == LUNNEL_EMU_WAL_REJECTED) {
            /* The CRC says the bytes are as written, but they cannot be applied (another
             * version, or a different --partitions): cutting them off would destroy them. */
            snprintf(err, errlen,
                     "%s: %s; the file is intact up to there but cannot be replayed: refusing "
                     "to start (nothing was changed)",
                     path, res.msg);
            return -1;
        }
        if (res.status != LUNNEL_EMU_WAL_OK && !is_last) {
            snprintf(err, errlen,
                     "%s: %s at offset %zu, but a later log exists: refusing to start (nothing "
                     "was changed)",
                     path, res.msg, res.good_end);
            return -1;
        }
        if (is_last) break;
        d->gen++;
    }
    if (res.status != LUNNEL_EMU_WAL_OK) {
        fprintf(log,
                "lunnel-emulator: data dir %s: %s: %s: %s; recovered %" PRIu64
                " records up to offset %zu, dropping the %zu bytes after it\n",
                d->dir, name, lunnel_emu_wal_strstatus(res.status), res.msg, res.records,
                res.good_end, len - res.good_end);
        d->stats.tail_recovered = 1;
        if (truncate(path, (off_t)res.good_end) != 0) {
            snprintf(err, errlen, "cannot truncate %s to %zu bytes: %s", path, res.good_end,
                     strerror(errno));
            return -1;
        }
    }
    d->wal_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (d->wal_fd < 0 || fdatasync(d->wal_fd) != 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    d->stats.generation = d->gen;
    d->stats.wal_bytes = res.good_end;
    if (res.records == 0) {
        /* a header-only file (no META yet): add it so later replays can check */
        emu_wbuf b = {0};
        frame_meta(&b, d->partitions);
        int bad = b.oom || write_all(d->wal_fd, b.p, b.len) != 0;
        d->stats.wal_bytes += b.len;
        lunnel_emu_wbuf_free(&b);
        if (bad) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Peek: the first record of the snapshot (its header) or of the first WAL (META) names the
 * partition count; the scan stops right there. */
typedef struct peek {
    uint32_t partitions;
    int found;
} peek;

static int on_peek(void *ud, const uint8_t *p, size_t n, size_t off, char *why)
{
    (void)off;
    peek *k = ud;
    emu_rbuf r = {p, n, 1, 0};
    if (p[0] == REC_SNAP_HEADER) (void)emu_get_u64(&r);
    if (p[0] == REC_SNAP_HEADER || p[0] == REC_META) {
        uint32_t parts = emu_get_u32(&r);
        if (!r.err) {
            k->partitions = parts;
            k->found = 1;
        }
    }
    snprintf(why, 160, "peeked");
    return -1;
}

int lunnel_emu_durable_peek_partitions(const char *dir, uint32_t *out)
{
    static const struct {
        const char *name, *magic;
    } files[] = {{"snapshot", LUNNEL_EMU_SNAP_MAGIC}, {"wal.00000001", LUNNEL_EMU_WAL_MAGIC}};
    for (size_t i = 0; i < 2; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        const uint8_t *m;
        size_t len;
        if (map_file(path, &m, &len) != 0) continue;
        peek k = {0, 0};
        lunnel_emu_wal_scan_result res;
        lunnel_emu_wal_scan(m, len, files[i].magic, on_peek, &k, &res);
        if (m) munmap((void *)m, len);
        if (k.found) {
            *out = k.partitions;
            return 1;
        }
    }
    return 0;
}

lunnel_emu_durable *lunnel_emu_durable_open(const lunnel_emu_durable_opts *o, lunnel_emu_store *st,
                                            lunnel_emu_tunnels *tunnels, char *err, size_t errlen)
{
    double t0 = mono_ms(), c0 = cpu_ms();
    lunnel_emu_durable *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->o = *o;
    if (!d->o.compact_bytes) d->o.compact_bytes = DEFAULT_COMPACT;
    d->lock_fd = d->wal_fd = d->dir_fd = d->child_status_fd = -1;
    d->st = st;
    d->tunnels = tunnels;
    d->partitions = lunnel_emu_store_partitions(st);
    d->dir = strdup(o->dir ? o->dir : "");
    d->chg = (emu_persist_changes){d, chg_range, chg_at};
    d->trs.changes = &d->chg;
    d->tj = lunnel_emu_tunnel_journal_new();
    if (!d->dir || !d->tj || !d->dir[0]) {
        snprintf(err, errlen, "%s", d->dir && !d->dir[0] ? "empty --data-dir" : "out of memory");
        durable_free(d);
        return NULL;
    }
    if (mkdir(d->dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data dir %s: %s", d->dir, strerror(errno));
        durable_free(d);
        return NULL;
    }
    d->dir_fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char path[4200];
    path_of(d, path, sizeof path, "lock");
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->dir_fd < 0 || d->lock_fd < 0) {
        snprintf(err, errlen, "cannot open data dir %s: %s", d->dir, strerror(errno));
        durable_free(d);
        return NULL;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "data dir %s is in use by another lunnel-emulator (%s is locked)",
                 d->dir, path);
        durable_free(d);
        return NULL;
    }
    path_of(d, path, sizeof path, "snapshot.tmp");
    unlink(path); /* a compaction that crashed before its rename */
    d->replaying = 1;
    int rc = restore(d, err, errlen);
    d->replaying = 0;
    if (rc != 0) {
        durable_free(d);
        return NULL;
    }
    remove_old_wals(d);
    if (tunnels) {
        /* Clients of the previous run are gone: their channels return to the pool. */
        lunnel_emu_tunnel_persist_release(tunnels);
        lunnel_emu_tunnels_set_sync(tunnels, on_tunnel_sync, d);
        on_tunnel_sync(d);
    }
    lunnel_emu_store_set_journal(st, on_journal, d);
    d->stats.restore_ms = mono_ms() - t0;
    d->stats.restore_cpu_ms = cpu_ms() - c0;
    if (lunnel_emu_durable_commit(d, err, errlen) != 0) {
        lunnel_emu_store_set_journal(st, NULL, NULL);
        if (tunnels) lunnel_emu_tunnels_set_sync(tunnels, NULL, NULL);
        durable_free(d);
        return NULL;
    }
    if (d->stats.wal_bytes > d->o.compact_bytes && compaction_start(d, 0, err, errlen) != 0) {
        lunnel_emu_store_set_journal(st, NULL, NULL);
        if (tunnels) lunnel_emu_tunnels_set_sync(tunnels, NULL, NULL);
        durable_free(d);
        return NULL;
    }
    return d;
}

void lunnel_emu_durable_detach_tunnels(lunnel_emu_durable *d)
{
    if (!d->tunnels) return;
    on_tunnel_sync(d);
    lunnel_emu_tunnels_set_sync(d->tunnels, NULL, NULL);
    d->tunnels = NULL;
}

int lunnel_emu_durable_close(lunnel_emu_durable *d, char *err, size_t errlen)
{
    if (!d) return 0;
    int rc = 0;
    if (d->tunnels) lunnel_emu_durable_detach_tunnels(d);
    lunnel_emu_store_set_journal(d->st, NULL, NULL);
    if (!d->failed) {
        lunnel_emu_fsync saved = d->o.fsync;
        d->o.compact_bytes = (size_t)-1; /* no compaction on the way out */
        rc = lunnel_emu_durable_commit(d, err, errlen);
        if (rc == 0 && saved != LUNNEL_EMU_FSYNC_NEVER && d->dirty && fdatasync(d->wal_fd) != 0) {
            snprintf(err, errlen, "cannot fsync wal: %s", strerror(errno));
            rc = -1;
        }
    }
    compaction_reap(d, 1); /* a snapshot being written finishes (and the old logs go) */
    durable_free(d);
    return rc;
}

int lunnel_emu_durable_replay_buffer(lunnel_emu_store *st, lunnel_emu_tunnels *tunnels,
                                     const uint8_t *buf, size_t len, int snapshot, FILE *log,
                                     lunnel_emu_wal_scan_result *res)
{
    lunnel_emu_durable *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->st = st;
    d->tunnels = tunnels;
    d->partitions = lunnel_emu_store_partitions(st);
    d->dir = strdup("(memory)");
    d->chg = (emu_persist_changes){d, chg_range, chg_at};
    d->trs.changes = &d->chg;
    d->o.log = log;
    d->lock_fd = d->wal_fd = d->dir_fd = -1;
    d->replaying = 1;
    lunnel_emu_wal_scan(buf, len, snapshot ? LUNNEL_EMU_SNAP_MAGIC : LUNNEL_EMU_WAL_MAGIC,
                        snapshot ? on_snap_record : on_wal_record, d, res);
    if (tunnels) lunnel_emu_tunnel_persist_release(tunnels);
    durable_free(d);
    return 0;
}
