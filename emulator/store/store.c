/* store.c: lunnel-emulator's in-memory tables and change streams (see store.h).
 *
 * A table keeps its rows in an array sorted by a "sort key": the primary key encoded so that
 * memcmp order equals the service's primary-key order (integers signed, strings and binaries
 * bytewise, shorter first), which also encodes INF_MIN / INF_MAX bounds of ranges. Appends
 * in key order (the bulk loader, most tests) are O(1); other inserts shift pointers.
 * Change records are encoded to PlainBuffer once, at write time, with the runtime's encoder
 * (lunnel/plainbuffer.h), and are never modified afterwards: tunnels serve their bytes. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lunnel/plainbuffer.h"

#define MAX_TABLES 1024
#define MAX_LISTENERS 8

/* One allocation per row: the struct, then its sort key, its primary-key PlainBuffer and the
 * bytes of its string/binary key values (restoring a million rows is a million mallocs, not
 * four million). Cells have their own array once there is more than one. */
struct lunnel_emu_row {
    uint8_t *key; /* sort key */
    size_t key_len;
    uint8_t *pk_pb; /* PlainBuffer of the primary key alone */
    size_t pk_pb_len;
    uint32_t partition;
    lunnel_emu_value pk[LUNNEL_EMU_MAX_PK]; /* bytes point into the row's block */
    size_t n_pk;
    lunnel_emu_cell *cells; /* sorted by name, then ts newest first; names/values own memory */
    size_t n_cells, cap_cells;
    lunnel_emu_cell cell0; /* `cells` while the row holds a single cell */
};

/* The bytes of a table's changes (row, pk, origin) are packed into chunks in stream order
 * instead of one allocation each: a restore of a million changes makes a few hundred
 * allocations. Chunks grow from 4 KiB to 1 MiB (a table with few changes holds little), and
 * trimming the stream frees every chunk whose last change went. */
typedef struct change_chunk {
    struct change_chunk *next;
    uint64_t last_index; /* index of the newest change with bytes here */
    size_t used, cap;
    uint8_t data[];
} change_chunk;

#define CHANGE_CHUNK_MIN 4096
#define CHANGE_CHUNK_MAX ((size_t)1 << 20)

struct lunnel_emu_table {
    char name[256];
    lunnel_emu_pk_schema pk[LUNNEL_EMU_MAX_PK];
    size_t n_pk;
    lunnel_emu_table_options opts;
    int64_t created_ms;
    lunnel_emu_row **rows;
    size_t n_rows, cap_rows;
    lunnel_emu_change *changes; /* changes[0] has index changes_begin */
    size_t n_changes, cap_changes;
    uint64_t changes_begin;
    change_chunk *chunk_head, *chunk_tail; /* the changes' bytes, oldest chunk first */
    char **origin;                         /* opts.origin_columns points here */
    int64_t auto_incr_last;                /* largest value of the AUTO_INCREMENT column seen */
};

struct lunnel_emu_store {
    uint32_t partitions;
    lunnel_emu_table **tables;
    size_t n_tables;
    struct {
        lunnel_emu_store_listener fn;
        void *ud;
    } listeners[MAX_LISTENERS];
    size_t n_listeners;
    int64_t last_seq_us; /* sequence timestamps never go backwards, across tables */
    int32_t last_row_index;
    lunnel_pb_writer w; /* scratch encoder, reused */
    /* Durable state (durable.c): the journal sees every committed mutation; a replayed
     * write carries its original sequence info instead of the clock's. */
    lunnel_emu_store_journal journal;
    void *journal_ud;
    bool forced_seq;
    int64_t forced_us;
    int32_t forced_row_index;
};

const char *lunnel_emu_store_strerror(lunnel_emu_store_err e)
{
    switch (e) {
    case LUNNEL_EMU_STORE_OK:
        return "OK";
    case LUNNEL_EMU_STORE_TABLE_EXISTS:
        return "OTSObjectAlreadyExist";
    case LUNNEL_EMU_STORE_NO_TABLE:
        return "OTSObjectNotExist";
    case LUNNEL_EMU_STORE_CONDITION_FAILED:
        return "OTSConditionCheckFail";
    case LUNNEL_EMU_STORE_BAD_PK:
        return "OTSParameterInvalid";
    case LUNNEL_EMU_STORE_BAD_ARGUMENT:
        return "OTSParameterInvalid";
    case LUNNEL_EMU_STORE_NO_MEMORY:
        return "OTSInternalServerError";
    }
    return "OTSInternalServerError";
}

int lunnel_emu_store_status(lunnel_emu_store_err e)
{
    switch (e) {
    case LUNNEL_EMU_STORE_OK:
        return 200;
    case LUNNEL_EMU_STORE_TABLE_EXISTS:
        return 409;
    case LUNNEL_EMU_STORE_NO_TABLE:
        return 404;
    case LUNNEL_EMU_STORE_CONDITION_FAILED:
        return 403;
    case LUNNEL_EMU_STORE_BAD_PK:
    case LUNNEL_EMU_STORE_BAD_ARGUMENT:
        return 400;
    case LUNNEL_EMU_STORE_NO_MEMORY:
        return 500;
    }
    return 500;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint32_t lunnel_emu_partition_of(const uint8_t *pk, size_t len, uint32_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= pk[i];
        h *= 1099511628211ull;
    }
    return n ? (uint32_t)(h % n) : 0;
}

/* ---- store / tables ------------------------------------------------------------------ */

lunnel_emu_store *lunnel_emu_store_new(uint32_t partitions)
{
    lunnel_emu_store *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->partitions = partitions ? partitions : 1;
    st->tables = calloc(MAX_TABLES, sizeof *st->tables);
    if (!st->tables) {
        free(st);
        return NULL;
    }
    lunnel_pb_writer_init(&st->w);
    return st;
}

static void cell_free(lunnel_emu_cell *c)
{
    free((void *)c->name);
}

static void row_free(lunnel_emu_row *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_cells; i++)
        cell_free(&r->cells[i]);
    if (r->cells != &r->cell0) free(r->cells);
    free(r);
}

static void free_origin(char **origin, size_t n)
{
    for (size_t i = 0; origin && i < n; i++)
        free(origin[i]);
    free(origin);
}

static void table_free(lunnel_emu_table *t)
{
    for (size_t i = 0; i < t->n_rows; i++)
        row_free(t->rows[i]);
    free(t->rows);
    for (change_chunk *c = t->chunk_head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(t->changes);
    free_origin(t->origin, t->opts.n_origin_columns);
    free(t);
}

void lunnel_emu_store_free(lunnel_emu_store *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n_tables; i++)
        table_free(st->tables[i]);
    free(st->tables);
    lunnel_pb_writer_free(&st->w);
    free(st);
}

uint32_t lunnel_emu_store_partitions(const lunnel_emu_store *st)
{
    return st->partitions;
}

int lunnel_emu_store_listen(lunnel_emu_store *st, lunnel_emu_store_listener fn, void *ud)
{
    if (st->n_listeners == MAX_LISTENERS) return -1;
    st->listeners[st->n_listeners].fn = fn;
    st->listeners[st->n_listeners].ud = ud;
    st->n_listeners++;
    return 0;
}

static void notify(lunnel_emu_store *st, lunnel_emu_store_event ev, const lunnel_emu_table *t,
                   const lunnel_emu_change *c)
{
    for (size_t i = 0; i < st->n_listeners; i++)
        st->listeners[i].fn(st->listeners[i].ud, ev, t, c);
}

/* Sets t's options to a copy of `opts` (origin column names duplicated); on failure (out of
 * memory) t keeps its options. */
static int set_options(lunnel_emu_table *t, const lunnel_emu_table_options *opts)
{
    char **origin = NULL;
    if (opts->n_origin_columns) {
        origin = calloc(opts->n_origin_columns, sizeof *origin);
        if (!origin) return -1;
        for (size_t i = 0; i < opts->n_origin_columns; i++) {
            origin[i] = strdup(opts->origin_columns[i] ? opts->origin_columns[i] : "");
            if (!origin[i]) {
                free_origin(origin, i);
                return -1;
            }
        }
    }
    free_origin(t->origin, t->opts.n_origin_columns);
    t->origin = origin;
    t->opts = *opts;
    if (t->opts.max_versions < 1) t->opts.max_versions = 1;
    if (t->opts.deviation_s <= 0) t->opts.deviation_s = 86400;
    t->opts.origin_columns = (const char *const *)origin;
    return 0;
}

lunnel_emu_store_err lunnel_emu_store_update_table(lunnel_emu_store *st, lunnel_emu_table *t,
                                                   const lunnel_emu_table_options *opts, char *msg,
                                                   size_t msglen)
{
    if (opts->n_origin_columns > 32) {
        snprintf(msg, msglen, "The stream specification names %zu columns (at most 32).",
                 opts->n_origin_columns);
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    lunnel_emu_table_options o = *opts;
    o.auto_increment_pk = t->opts.auto_increment_pk;
    if (set_options(t, &o) != 0) return LUNNEL_EMU_STORE_NO_MEMORY;
    if (st->journal) st->journal(st->journal_ud, LUNNEL_EMU_EV_TABLE_UPDATED, t, NULL);
    notify(st, LUNNEL_EMU_EV_TABLE_UPDATED, t, NULL);
    return LUNNEL_EMU_STORE_OK;
}

lunnel_emu_store_err lunnel_emu_store_create_table(lunnel_emu_store *st, const char *name,
                                                   const lunnel_emu_pk_schema *pk, size_t n_pk,
                                                   const lunnel_emu_table_options *opts, char *msg,
                                                   size_t msglen)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 255) {
        snprintf(msg, msglen, "Invalid table name: '%s' (1 to 255 bytes).", name);
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    if (n_pk == 0 || n_pk > LUNNEL_EMU_MAX_PK) {
        snprintf(msg, msglen,
                 "The number of primary key columns must be in range: [1, %d], got %zu.",
                 LUNNEL_EMU_MAX_PK, n_pk);
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    for (size_t i = 0; i < n_pk; i++) {
        if (!pk[i].name[0]) {
            snprintf(msg, msglen, "Primary key column %zu has an empty name.", i);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        if (pk[i].type < LUNNEL_EMU_PK_INTEGER || pk[i].type > LUNNEL_EMU_PK_BINARY) {
            snprintf(msg, msglen, "Primary key column '%s' has an invalid type %d.", pk[i].name,
                     (int)pk[i].type);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(pk[i].name, pk[j].name) == 0) {
                snprintf(msg, msglen, "Duplicated primary key name: '%s'.", pk[i].name);
                return LUNNEL_EMU_STORE_BAD_ARGUMENT;
            }
    }
    if (opts->auto_increment_pk) {
        size_t k = opts->auto_increment_pk - 1u;
        if (k >= n_pk || pk[k].type != LUNNEL_EMU_PK_INTEGER) {
            snprintf(msg, msglen, "AUTO_INCREMENT primary key must be integer.");
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        if (k == 0) {
            snprintf(msg, msglen, "First primary key can't be auto increment, table: %s.", name);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
    }
    if (opts->n_origin_columns > 32) {
        snprintf(msg, msglen, "The stream specification names %zu columns (at most 32).",
                 opts->n_origin_columns);
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    if (lunnel_emu_store_table(st, name)) {
        snprintf(msg, msglen, "Requested table already exists.");
        return LUNNEL_EMU_STORE_TABLE_EXISTS;
    }
    if (st->n_tables == MAX_TABLES) {
        snprintf(msg, msglen, "Too many tables (the emulator holds at most %d).", MAX_TABLES);
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    lunnel_emu_table *t = calloc(1, sizeof *t);
    if (!t) return LUNNEL_EMU_STORE_NO_MEMORY;
    snprintf(t->name, sizeof t->name, "%s", name);
    memcpy(t->pk, pk, n_pk * sizeof *pk);
    t->n_pk = n_pk;
    if (set_options(t, opts) != 0) {
        table_free(t);
        return LUNNEL_EMU_STORE_NO_MEMORY;
    }
    t->created_ms = now_us() / 1000;
    st->tables[st->n_tables++] = t;
    if (st->journal) st->journal(st->journal_ud, LUNNEL_EMU_EV_TABLE_CREATED, t, NULL);
    notify(st, LUNNEL_EMU_EV_TABLE_CREATED, t, NULL);
    return LUNNEL_EMU_STORE_OK;
}

lunnel_emu_store_err lunnel_emu_store_delete_table(lunnel_emu_store *st, const char *name)
{
    for (size_t i = 0; i < st->n_tables; i++) {
        if (strcmp(st->tables[i]->name, name) != 0) continue;
        lunnel_emu_table *t = st->tables[i];
        if (st->journal) st->journal(st->journal_ud, LUNNEL_EMU_EV_TABLE_DELETED, t, NULL);
        notify(st, LUNNEL_EMU_EV_TABLE_DELETED, t, NULL);
        memmove(&st->tables[i], &st->tables[i + 1], (st->n_tables - i - 1) * sizeof *st->tables);
        st->n_tables--;
        table_free(t);
        return LUNNEL_EMU_STORE_OK;
    }
    return LUNNEL_EMU_STORE_NO_TABLE;
}

lunnel_emu_table *lunnel_emu_store_table(const lunnel_emu_store *st, const char *name)
{
    for (size_t i = 0; i < st->n_tables; i++)
        if (strcmp(st->tables[i]->name, name) == 0) return st->tables[i];
    return NULL;
}

size_t lunnel_emu_store_table_count(const lunnel_emu_store *st)
{
    return st->n_tables;
}
lunnel_emu_table *lunnel_emu_store_table_at(const lunnel_emu_store *st, size_t i)
{
    return i < st->n_tables ? st->tables[i] : NULL;
}
const char *lunnel_emu_table_name(const lunnel_emu_table *t)
{
    return t->name;
}
size_t lunnel_emu_table_pk(const lunnel_emu_table *t, const lunnel_emu_pk_schema **out)
{
    *out = t->pk;
    return t->n_pk;
}
const lunnel_emu_table_options *lunnel_emu_table_options_of(const lunnel_emu_table *t)
{
    return &t->opts;
}
int64_t lunnel_emu_table_created_ms(const lunnel_emu_table *t)
{
    return t->created_ms;
}
uint64_t lunnel_emu_table_row_count(const lunnel_emu_table *t)
{
    return t->n_rows;
}

/* ---- sort keys ------------------------------------------------------------------------ */

/* A sort key being built: in `inl` while it fits (almost every key: no allocation per
 * lookup or write), else on the heap. */
typedef struct keybuf {
    uint8_t *p;
    size_t len, cap;
    uint8_t inl[128];
} keybuf;

static void kb_init(keybuf *k)
{
    k->p = k->inl;
    k->len = 0;
    k->cap = sizeof k->inl;
}

static void kb_free(keybuf *k)
{
    if (k->p != k->inl) free(k->p);
    k->p = k->inl;
}

static int kb_put(keybuf *k, const void *p, size_t n)
{
    if (k->len + n > k->cap) {
        size_t c = k->cap * 2;
        while (c < k->len + n)
            c *= 2;
        uint8_t *q = malloc(c);
        if (!q) return -1;
        memcpy(q, k->p, k->len);
        kb_free(k);
        k->p = q;
        k->cap = c;
    }
    memcpy(k->p + k->len, p, n);
    k->len += n;
    return 0;
}

/* Encodes pk values (or range bounds) as a sort key. Returns 0 or -1 (no memory). */
static int sort_key(const lunnel_emu_value *pk, size_t n, keybuf *k)
{
    k->len = 0;
    for (size_t i = 0; i < n; i++) {
        const lunnel_emu_value *v = &pk[i];
        uint8_t tag;
        if (v->type == LUNNEL_EMU_V_INF_MIN) {
            tag = 0x00;
            return kb_put(k, &tag, 1);
        }
        if (v->type == LUNNEL_EMU_V_INF_MAX) {
            tag = 0x02;
            return kb_put(k, &tag, 1);
        }
        tag = 0x01;
        if (kb_put(k, &tag, 1)) return -1;
        if (v->type == LUNNEL_EMU_V_INTEGER) {
            uint64_t u = (uint64_t)v->i ^ 0x8000000000000000ull;
            uint8_t be[8];
            for (int b = 0; b < 8; b++)
                be[b] = (uint8_t)(u >> (56 - 8 * b));
            if (kb_put(k, be, 8)) return -1;
        } else {
            for (uint32_t j = 0; j < v->len; j++) {
                uint8_t c = v->ptr[j];
                if (c == 0) {
                    static const uint8_t esc[2] = {0x00, 0xFF};
                    if (kb_put(k, esc, 2)) return -1;
                } else if (kb_put(k, &c, 1)) {
                    return -1;
                }
            }
            static const uint8_t end[2] = {0x00, 0x01};
            if (kb_put(k, end, 2)) return -1;
        }
    }
    return 0;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    if (c) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* First position whose key is >= key (lower bound). */
static size_t lower_bound(const lunnel_emu_table *t, const uint8_t *key, size_t len)
{
    size_t lo = 0, hi = t->n_rows;
    /* appends in key order (bulk loads, sequential ids) skip the search */
    if (hi > 0 && key_cmp(t->rows[hi - 1]->key, t->rows[hi - 1]->key_len, key, len) < 0) return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(t->rows[mid]->key, t->rows[mid]->key_len, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static lunnel_emu_store_err check_pk(const lunnel_emu_table *t, const lunnel_emu_value *pk,
                                     size_t n, bool allow_inf, char *msg, size_t msglen)
{
    if (n != t->n_pk) {
        snprintf(msg, msglen, "Validate PK size fail. Input: %zu, Meta: %zu (table '%s').", n,
                 t->n_pk, t->name);
        return LUNNEL_EMU_STORE_BAD_PK;
    }
    for (size_t i = 0; i < n; i++) {
        lunnel_emu_vtype vt = pk[i].type;
        if (allow_inf && (vt == LUNNEL_EMU_V_INF_MIN || vt == LUNNEL_EMU_V_INF_MAX)) continue;
        lunnel_emu_vtype want = t->pk[i].type == LUNNEL_EMU_PK_INTEGER  ? LUNNEL_EMU_V_INTEGER
                                : t->pk[i].type == LUNNEL_EMU_PK_STRING ? LUNNEL_EMU_V_STRING
                                                                        : LUNNEL_EMU_V_BINARY;
        if (vt != want) {
            snprintf(msg, msglen,
                     "Validate PK type fail: primary key column %zu ('%s') has value type 0x%x, "
                     "schema wants 0x%x.",
                     i, t->pk[i].name, (unsigned)vt, (unsigned)want);
            return LUNNEL_EMU_STORE_BAD_PK;
        }
    }
    return LUNNEL_EMU_STORE_OK;
}

/* ---- encoding ------------------------------------------------------------------------- */

static lunnel_value to_lv(const lunnel_emu_value *v)
{
    switch (v->type) {
    case LUNNEL_EMU_V_INTEGER:
        return lunnel_value_int(v->i);
    case LUNNEL_EMU_V_DOUBLE:
        return lunnel_value_double(v->d);
    case LUNNEL_EMU_V_BOOLEAN:
        return lunnel_value_bool(v->b);
    case LUNNEL_EMU_V_STRING:
        return lunnel_value_bytes(LUNNEL_VT_STRING, v->ptr, v->len);
    case LUNNEL_EMU_V_BINARY:
        return lunnel_value_bytes(LUNNEL_VT_BINARY, v->ptr, v->len);
    case LUNNEL_EMU_V_INF_MIN:
        return lunnel_value_of_type(LUNNEL_VT_INF_MIN);
    case LUNNEL_EMU_V_INF_MAX:
        return lunnel_value_of_type(LUNNEL_VT_INF_MAX);
    case LUNNEL_EMU_V_NULL:
        return lunnel_value_of_type(LUNNEL_VT_NULL);
    case LUNNEL_EMU_V_AUTO_INCREMENT:
        return lunnel_value_of_type(LUNNEL_VT_AUTO_INCREMENT);
    }
    return lunnel_value_of_type(LUNNEL_VT_NONE);
}

static int to_lop(lunnel_emu_cell_op op)
{
    return op == LUNNEL_EMU_OP_DELETE_ALL_VERSIONS  ? LUNNEL_OP_DELETE_ALL_VERSIONS
           : op == LUNNEL_EMU_OP_DELETE_ONE_VERSION ? LUNNEL_OP_DELETE_ONE_VERSION
                                                    : LUNNEL_OP_PUT;
}

int lunnel_emu_encode_pk(lunnel_pb_writer *w, const lunnel_emu_pk_schema *schema,
                         const lunnel_emu_value *pk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lunnel_value v = to_lv(&pk[i]);
        int rc = lunnel_pb_write_pk(w, schema[i].name, strlen(schema[i].name), &v);
        if (rc) return rc;
    }
    return 0;
}

int lunnel_emu_encode_cell(lunnel_pb_writer *w, const lunnel_emu_cell *c)
{
    lunnel_value v = to_lv(&c->value);
    return lunnel_pb_write_cell(w, c->name, c->name_len, c->op == LUNNEL_EMU_OP_PUT ? &v : NULL,
                                to_lop(c->op), c->has_ts, c->ts);
}

/* ---- rows ----------------------------------------------------------------------------- */

static lunnel_emu_row *row_new(lunnel_emu_store *st, const lunnel_emu_table *t,
                               const lunnel_emu_value *pk, size_t n, const keybuf *k)
{
    lunnel_pb_writer_reset(&st->w);
    lunnel_pb_write_header(&st->w);
    lunnel_pb_begin_row(&st->w);
    lunnel_emu_encode_pk(&st->w, t->pk, pk, n);
    lunnel_pb_end_row(&st->w);
    if (st->w.error) return NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (pk[i].type == LUNNEL_EMU_V_STRING || pk[i].type == LUNNEL_EMU_V_BINARY)
            bytes += pk[i].len;
    lunnel_emu_row *r = malloc(sizeof *r + k->len + st->w.len + bytes);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    uint8_t *tail = (uint8_t *)(r + 1);
    r->key = tail;
    memcpy(r->key, k->p, k->len);
    r->key_len = k->len;
    r->pk_pb = tail + k->len;
    memcpy(r->pk_pb, st->w.buf, st->w.len);
    r->pk_pb_len = st->w.len;
    r->partition = lunnel_emu_partition_of(r->pk_pb, r->pk_pb_len, st->partitions);
    uint8_t *pk_bytes = r->pk_pb + r->pk_pb_len;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        r->pk[i] = pk[i];
        if (pk[i].type == LUNNEL_EMU_V_STRING || pk[i].type == LUNNEL_EMU_V_BINARY) {
            if (pk[i].len) memcpy(pk_bytes + off, pk[i].ptr, pk[i].len);
            r->pk[i].ptr = pk_bytes + off;
            off += pk[i].len;
        }
    }
    r->n_pk = n;
    return r;
}

static int name_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
    return key_cmp(a, al, b, bl);
}

/* Copies a PUT cell (name + value bytes in one block) into the row, keeping the order
 * (name, ts desc); an existing version with the same timestamp is replaced. */
static int row_put_cell(lunnel_emu_row *r, const lunnel_emu_cell *c, int64_t ts)
{
    size_t vlen = (c->value.type == LUNNEL_EMU_V_STRING || c->value.type == LUNNEL_EMU_V_BINARY)
                      ? c->value.len
                      : 0;
    uint8_t *blk = malloc(c->name_len + vlen + 1);
    if (!blk) return -1;
    memcpy(blk, c->name, c->name_len);
    if (vlen) memcpy(blk + c->name_len, c->value.ptr, vlen);
    lunnel_emu_cell nc = *c;
    nc.name = blk;
    nc.op = LUNNEL_EMU_OP_PUT;
    nc.has_ts = true;
    nc.ts = ts;
    if (vlen || c->value.type == LUNNEL_EMU_V_STRING || c->value.type == LUNNEL_EMU_V_BINARY)
        nc.value.ptr = blk + c->name_len;
    size_t pos = 0;
    while (pos < r->n_cells) {
        const lunnel_emu_cell *e = &r->cells[pos];
        int cmp = name_cmp(e->name, e->name_len, c->name, c->name_len);
        if (cmp > 0 || (cmp == 0 && e->ts <= ts)) break;
        pos++;
    }
    if (pos < r->n_cells && r->cells[pos].ts == ts &&
        name_cmp(r->cells[pos].name, r->cells[pos].name_len, c->name, c->name_len) == 0) {
        cell_free(&r->cells[pos]);
        r->cells[pos] = nc;
        return 0;
    }
    if (r->n_cells == r->cap_cells) {
        if (r->cap_cells == 0) { /* most rows hold one cell: the slot inside the row */
            r->cells = &r->cell0;
            r->cap_cells = 1;
        } else {
            size_t cap = r->cap_cells * 2;
            lunnel_emu_cell *p = r->cells == &r->cell0 ? malloc(cap * sizeof *p)
                                                       : realloc(r->cells, cap * sizeof *p);
            if (!p) {
                free(blk);
                return -1;
            }
            if (r->cells == &r->cell0) p[0] = r->cell0;
            r->cells = p;
            r->cap_cells = cap;
        }
    }
    memmove(&r->cells[pos + 1], &r->cells[pos], (r->n_cells - pos) * sizeof *r->cells);
    r->cells[pos] = nc;
    r->n_cells++;
    return 0;
}

/* Removes versions of `name`: all (ts < 0) or the one with timestamp ts. */
static void row_delete_cells(lunnel_emu_row *r, const uint8_t *name, uint32_t len, int64_t ts,
                             bool all)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n_cells; i++) {
        lunnel_emu_cell *c = &r->cells[i];
        bool match = name_cmp(c->name, c->name_len, name, len) == 0 && (all || c->ts == ts);
        if (match)
            cell_free(c);
        else
            r->cells[w++] = *c;
    }
    r->n_cells = w;
}

/* Keeps only the newest max_versions versions of each column. The first cell of each name
 * is always kept, so its name stays valid for comparing the cells after it. */
static void row_trim_versions(lunnel_emu_row *r, int32_t max_versions)
{
    size_t w = 0, run = 0;
    const uint8_t *prev = NULL;
    uint32_t prev_len = 0;
    for (size_t i = 0; i < r->n_cells; i++) {
        lunnel_emu_cell c = r->cells[i];
        bool same = prev && name_cmp(prev, prev_len, c.name, c.name_len) == 0;
        run = same ? run + 1 : 0;
        if (run == 0) {
            prev = c.name;
            prev_len = c.name_len;
        }
        if ((int64_t)run >= max_versions)
            cell_free(&c);
        else
            r->cells[w++] = c;
    }
    r->n_cells = w;
}

size_t lunnel_emu_row_pk(const lunnel_emu_row *r, const lunnel_emu_value **out)
{
    *out = r->pk;
    return r->n_pk;
}

size_t lunnel_emu_row_cells(const lunnel_emu_row *r, const lunnel_emu_cell **out)
{
    *out = r->cells;
    return r->n_cells;
}

const lunnel_emu_row *lunnel_emu_table_get(const lunnel_emu_table *t, const lunnel_emu_value *pk,
                                           size_t n_pk)
{
    char msg[8];
    if (check_pk(t, pk, n_pk, false, msg, sizeof msg) != LUNNEL_EMU_STORE_OK) return NULL;
    keybuf k;
    kb_init(&k);
    if (sort_key(pk, n_pk, &k) != 0) {
        kb_free(&k);
        return NULL;
    }
    size_t pos = lower_bound(t, k.p, k.len);
    const lunnel_emu_row *r = NULL;
    if (pos < t->n_rows && key_cmp(t->rows[pos]->key, t->rows[pos]->key_len, k.p, k.len) == 0)
        r = t->rows[pos];
    kb_free(&k);
    return r;
}

/* Adds `c` to t's change stream, its row and pk bytes copied into one owned block (row
 * bytes, then pk bytes). Returns the stored change, or NULL when out of memory (nothing
 * added). */
static lunnel_emu_change *push_change(lunnel_emu_table *t, const lunnel_emu_change *c)
{
    if (t->n_changes == t->cap_changes) {
        size_t cap = t->cap_changes ? t->cap_changes * 2 : 1024;
        lunnel_emu_change *p = realloc(t->changes, cap * sizeof *p);
        if (!p) return NULL;
        t->changes = p;
        t->cap_changes = cap;
    }
    size_t olen = c->origin ? c->origin_len : 0;
    size_t need = c->row_len + c->pk_len + olen;
    change_chunk *ch = t->chunk_tail;
    if (!ch || ch->cap - ch->used < need) {
        size_t cap = ch ? ch->cap * 2 : CHANGE_CHUNK_MIN;
        if (cap > CHANGE_CHUNK_MAX) cap = CHANGE_CHUNK_MAX;
        if (cap < need) cap = need;
        ch = malloc(sizeof *ch + cap);
        if (!ch) return NULL;
        ch->next = NULL;
        ch->used = 0;
        ch->cap = cap;
        if (t->chunk_tail)
            t->chunk_tail->next = ch;
        else
            t->chunk_head = ch;
        t->chunk_tail = ch;
    }
    uint8_t *blk = ch->data + ch->used;
    ch->used += need;
    ch->last_index = c->index;
    memcpy(blk, c->row, c->row_len);
    memcpy(blk + c->row_len, c->pk, c->pk_len);
    if (olen) memcpy(blk + c->row_len + c->pk_len, c->origin, olen);
    lunnel_emu_change *out = &t->changes[t->n_changes++];
    *out = *c;
    out->row = blk;
    out->pk = blk + c->row_len;
    out->origin = c->origin ? blk + c->row_len + c->pk_len : NULL;
    return out;
}

/* The origin row of an UPDATE or DELETE: the primary key and the latest version of each
 * column the stream specification names, as the row was before the write. Returns a malloc'd
 * PlainBuffer (or NULL: nothing to carry, or out of memory). */
static uint8_t *origin_of(const lunnel_emu_table *t, const lunnel_emu_row *old, size_t *len)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_pb_write_header(&w);
    lunnel_pb_begin_row(&w);
    lunnel_emu_encode_pk(&w, t->pk, old->pk, old->n_pk);
    for (size_t k = 0; k < t->opts.n_origin_columns; k++) {
        const char *name = t->opts.origin_columns[k];
        uint32_t nl = (uint32_t)strlen(name);
        for (size_t i = 0; i < old->n_cells; i++) {
            const lunnel_emu_cell *c = &old->cells[i];
            if (c->name_len == nl && memcmp(c->name, name, nl) == 0) { /* newest first */
                lunnel_emu_encode_cell(&w, c);
                break;
            }
        }
    }
    lunnel_pb_end_row(&w);
    if (w.error) {
        lunnel_pb_writer_free(&w);
        return NULL;
    }
    *len = w.len;
    return w.buf; /* taken over from the writer */
}

/* Appends the change for a successful write. */
static lunnel_emu_store_err append_change(lunnel_emu_store *st, lunnel_emu_table *t,
                                          lunnel_emu_action action, const lunnel_emu_row *r,
                                          const lunnel_emu_cell *cells, size_t n_cells,
                                          const uint8_t *origin, size_t origin_len, char *msg,
                                          size_t msglen)
{
    int64_t us;
    if (st->forced_seq) { /* replay: the sequence info the write had the first time */
        us = st->forced_us;
        if (us > st->last_seq_us ||
            (us == st->last_seq_us && st->forced_row_index > st->last_row_index)) {
            st->last_seq_us = us;
            st->last_row_index = st->forced_row_index;
        }
    } else {
        us = now_us();
        if (us <= st->last_seq_us) {
            us = st->last_seq_us;
            st->last_row_index++;
        } else {
            st->last_row_index = 0;
        }
        st->last_seq_us = us;
    }
    int32_t row_index = st->forced_seq ? st->forced_row_index : st->last_row_index;
    lunnel_pb_writer *w = &st->w;
    lunnel_pb_writer_reset(w);
    lunnel_pb_write_header(w);
    lunnel_pb_begin_row(w);
    lunnel_emu_encode_pk(w, t->pk, r->pk, r->n_pk);
    if (action == LUNNEL_EMU_ACTION_DELETE) {
        lunnel_pb_write_delete_marker(w);
    } else {
        for (size_t i = 0; i < n_cells; i++)
            lunnel_emu_encode_cell(w, &cells[i]);
    }
    lunnel_pb_write_seq(w, 0, us, row_index);
    lunnel_pb_end_row(w);
    if (w->error) {
        snprintf(msg, msglen, "cannot encode the change record: %s",
                 lunnel_codec_strerror(w->error));
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    lunnel_emu_change change = {
        .index = t->changes_begin + t->n_changes,
        .action = action,
        .epoch = 0,
        .timestamp_us = us,
        .row_index = row_index,
        .row = w->buf,
        .row_len = w->len,
        .pk = r->pk_pb,
        .pk_len = r->pk_pb_len,
        .partition = r->partition,
        .origin = origin,
        .origin_len = origin ? origin_len : 0,
    };
    lunnel_emu_change *c = push_change(t, &change);
    if (!c) return LUNNEL_EMU_STORE_NO_MEMORY;
    if (st->journal) {
        lunnel_emu_journal_write jw = {action, r->pk, r->n_pk, cells, n_cells, c};
        st->journal(st->journal_ud, LUNNEL_EMU_EV_CHANGE_APPENDED, t, &jw);
    }
    notify(st, LUNNEL_EMU_EV_CHANGE_APPENDED, t, c);
    return LUNNEL_EMU_STORE_OK;
}

lunnel_emu_store_err lunnel_emu_store_write(lunnel_emu_store *st, lunnel_emu_table *t,
                                            lunnel_emu_action action, lunnel_emu_condition cond,
                                            const lunnel_emu_value *pk, size_t n_pk,
                                            const lunnel_emu_cell *cells, size_t n_cells,
                                            int64_t now_ms, char *msg, size_t msglen)
{
    return lunnel_emu_store_write_ex(st, t, action, cond, pk, n_pk, cells, n_cells, now_ms, NULL,
                                     msg, msglen);
}

/* The latest version of column `name` in `r`, or NULL. */
static const lunnel_emu_cell *latest_cell(const lunnel_emu_row *r, const uint8_t *name,
                                          uint32_t len)
{
    for (size_t i = 0; r && i < r->n_cells; i++)
        if (name_cmp(r->cells[i].name, r->cells[i].name_len, name, len) == 0) return &r->cells[i];
    return NULL;
}

/* Resolves an AUTO_INCREMENT placeholder in the primary key into `out` (a copy of pk). */
static lunnel_emu_store_err resolve_auto_increment(lunnel_emu_table *t, lunnel_emu_action action,
                                                   lunnel_emu_condition cond, bool has_check,
                                                   const lunnel_emu_value *pk, size_t n_pk,
                                                   lunnel_emu_value *out, char *msg, size_t msglen)
{
    memcpy(out, pk, n_pk * sizeof *pk);
    size_t k = t->opts.auto_increment_pk;
    int n_auto = 0;
    for (size_t i = 0; i < n_pk; i++)
        n_auto += pk[i].type == LUNNEL_EMU_V_AUTO_INCREMENT;
    if (n_auto == 0) {
        if (k && k <= n_pk && pk[k - 1].type == LUNNEL_EMU_V_INTEGER &&
            pk[k - 1].i > t->auto_incr_last)
            t->auto_incr_last = pk[k - 1].i;
        return LUNNEL_EMU_STORE_OK;
    }
    if (!k || k > n_pk || pk[k - 1].type != LUNNEL_EMU_V_AUTO_INCREMENT || n_auto > 1) {
        snprintf(msg, msglen, "%d pk auto increment exist in row; the table's is %s.", n_auto,
                 k ? t->pk[k - 1].name : "(none)");
        return LUNNEL_EMU_STORE_BAD_PK;
    }
    if (action == LUNNEL_EMU_ACTION_DELETE) {
        snprintf(msg, msglen, "Invalid row to delete which with pk auto increment.");
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    if (cond != LUNNEL_EMU_COND_IGNORE) {
        snprintf(msg, msglen, "Invalid expect: %s when modify row with pk auto increment.",
                 cond == LUNNEL_EMU_COND_EXPECT_EXIST ? "EXPECT_EXIST" : "EXPECT_NOT_EXIST");
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    if (has_check) {
        snprintf(msg, msglen, "Can't set condition when modify row with pk auto increment.");
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    int64_t v = now_us();
    if (v <= t->auto_incr_last) v = t->auto_incr_last + 1;
    t->auto_incr_last = v;
    out[k - 1].type = LUNNEL_EMU_V_INTEGER;
    out[k - 1].i = v;
    return LUNNEL_EMU_STORE_OK;
}

lunnel_emu_store_err lunnel_emu_store_write_ex(lunnel_emu_store *st, lunnel_emu_table *t,
                                               lunnel_emu_action action, lunnel_emu_condition cond,
                                               const lunnel_emu_value *pk_in, size_t n_pk,
                                               const lunnel_emu_cell *cells, size_t n_cells,
                                               int64_t now_ms, const lunnel_emu_write_ext *ext,
                                               char *msg, size_t msglen)
{
    if (n_pk > LUNNEL_EMU_MAX_PK) return check_pk(t, pk_in, n_pk, false, msg, msglen);
    lunnel_emu_value pk[LUNNEL_EMU_MAX_PK];
    lunnel_emu_store_err e =
        resolve_auto_increment(t, action, cond, ext && ext->check, pk_in, n_pk, pk, msg, msglen);
    if (e) return e;
    if (ext && ext->pk_out) memcpy(ext->pk_out, pk, n_pk * sizeof *pk);
    e = check_pk(t, pk, n_pk, false, msg, msglen);
    if (e) return e;
    for (size_t i = 0; i < n_cells && action != LUNNEL_EMU_ACTION_DELETE; i++) {
        const lunnel_emu_cell *c = &cells[i];
        if (c->name_len == 0) {
            snprintf(msg, msglen, "Attribute column %zu has an empty name.", i);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        if (action == LUNNEL_EMU_ACTION_PUT && c->op != LUNNEL_EMU_OP_PUT) {
            snprintf(msg, msglen, "PutRow cells cannot carry delete operations (column '%.*s').",
                     (int)c->name_len, (const char *)c->name);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        if (c->op == LUNNEL_EMU_OP_PUT &&
            (c->value.type == LUNNEL_EMU_V_INF_MIN || c->value.type == LUNNEL_EMU_V_INF_MAX ||
             c->value.type == LUNNEL_EMU_V_NULL || c->value.type == LUNNEL_EMU_V_AUTO_INCREMENT)) {
            snprintf(msg, msglen, "Column '%.*s' has a value type not allowed for attributes.",
                     (int)c->name_len, (const char *)c->name);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        if (c->op == LUNNEL_EMU_OP_INCREMENT &&
            (action != LUNNEL_EMU_ACTION_UPDATE || c->value.type != LUNNEL_EMU_V_INTEGER ||
             c->has_ts)) {
            snprintf(msg, msglen,
                     "INCREMENT of column '%.*s' needs UpdateRow, an INTEGER and no timestamp.",
                     (int)c->name_len, (const char *)c->name);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
        if (c->op == LUNNEL_EMU_OP_DELETE_ONE_VERSION && !c->has_ts) {
            snprintf(msg, msglen, "DELETE_ONE_VERSION of column '%.*s' needs a timestamp.",
                     (int)c->name_len, (const char *)c->name);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
    }
    keybuf k;
    kb_init(&k);
    if (sort_key(pk, n_pk, &k) != 0) {
        kb_free(&k);
        return LUNNEL_EMU_STORE_NO_MEMORY;
    }
    size_t pos = lower_bound(t, k.p, k.len);
    bool exists =
        pos < t->n_rows && key_cmp(t->rows[pos]->key, t->rows[pos]->key_len, k.p, k.len) == 0;
    if ((cond == LUNNEL_EMU_COND_EXPECT_EXIST && !exists) ||
        (cond == LUNNEL_EMU_COND_EXPECT_NOT_EXIST && exists)) {
        kb_free(&k);
        snprintf(msg, msglen, "Condition check failed.");
        return LUNNEL_EMU_STORE_CONDITION_FAILED;
    }
    if (ext && ext->check && !ext->check(ext->check_ud, exists ? t->rows[pos] : NULL)) {
        kb_free(&k);
        snprintf(msg, msglen, "Condition check failed.");
        return LUNNEL_EMU_STORE_CONDITION_FAILED;
    }

    /* Cells as stored and streamed: PUTs get the write's time when they carry none. */
    lunnel_emu_cell stackc[64];
    lunnel_emu_cell *fixed = n_cells <= 64 ? stackc : malloc(n_cells * sizeof *fixed);
    if (!fixed) {
        kb_free(&k);
        return LUNNEL_EMU_STORE_NO_MEMORY;
    }
    lunnel_emu_row *r = exists ? t->rows[pos] : NULL;
    for (size_t i = 0; i < n_cells; i++) {
        fixed[i] = cells[i];
        if (fixed[i].op == LUNNEL_EMU_OP_INCREMENT) { /* becomes the PUT of the sum */
            const lunnel_emu_cell *cur = latest_cell(r, cells[i].name, cells[i].name_len);
            if (cur && cur->value.type != LUNNEL_EMU_V_INTEGER) {
                snprintf(msg, msglen, "INCREMENT of column '%.*s', which is not an INTEGER.",
                         (int)cells[i].name_len, (const char *)cells[i].name);
                if (fixed != stackc) free(fixed);
                kb_free(&k);
                return LUNNEL_EMU_STORE_BAD_ARGUMENT;
            }
            fixed[i].op = LUNNEL_EMU_OP_PUT;
            fixed[i].value.i =
                (int64_t)((uint64_t)(cur ? cur->value.i : 0) + (uint64_t)cells[i].value.i);
        }
        if (fixed[i].op == LUNNEL_EMU_OP_PUT && !fixed[i].has_ts) {
            fixed[i].has_ts = true;
            fixed[i].ts = now_ms;
        }
    }
    uint8_t *origin = NULL;
    size_t origin_len = 0;
    if (r && t->opts.stream_enabled && t->opts.n_origin_columns &&
        action != LUNNEL_EMU_ACTION_PUT) {
        origin = origin_of(t, r, &origin_len);
        if (!origin) {
            if (fixed != stackc) free(fixed);
            kb_free(&k);
            return LUNNEL_EMU_STORE_NO_MEMORY;
        }
    }

    lunnel_emu_row *tmp_deleted = NULL; /* keeps pk alive for the change record */
    e = LUNNEL_EMU_STORE_OK;
    if (action == LUNNEL_EMU_ACTION_DELETE) {
        if (r) {
            memmove(&t->rows[pos], &t->rows[pos + 1], (t->n_rows - pos - 1) * sizeof *t->rows);
            t->n_rows--;
            tmp_deleted = r;
        } else {
            tmp_deleted = row_new(st, t, pk, n_pk, &k);
            if (!tmp_deleted) e = LUNNEL_EMU_STORE_NO_MEMORY;
        }
        r = tmp_deleted;
    } else {
        if (!r) {
            r = row_new(st, t, pk, n_pk, &k);
            if (r && t->n_rows == t->cap_rows) {
                size_t cap = t->cap_rows ? t->cap_rows * 2 : 1024;
                lunnel_emu_row **p = realloc(t->rows, cap * sizeof *p);
                if (p) {
                    t->rows = p;
                    t->cap_rows = cap;
                }
            }
            if (!r || t->n_rows == t->cap_rows) {
                row_free(r);
                e = LUNNEL_EMU_STORE_NO_MEMORY;
                goto out;
            }
            memmove(&t->rows[pos + 1], &t->rows[pos], (t->n_rows - pos) * sizeof *t->rows);
            t->rows[pos] = r;
            t->n_rows++;
        } else if (action == LUNNEL_EMU_ACTION_PUT) {
            for (size_t i = 0; i < r->n_cells; i++)
                cell_free(&r->cells[i]);
            r->n_cells = 0;
        }
        for (size_t i = 0; i < n_cells; i++) {
            const lunnel_emu_cell *c = &fixed[i];
            if (c->op == LUNNEL_EMU_OP_PUT) {
                if (row_put_cell(r, c, c->ts) != 0) {
                    e = LUNNEL_EMU_STORE_NO_MEMORY;
                    goto out;
                }
            } else {
                row_delete_cells(r, c->name, c->name_len, c->ts,
                                 c->op == LUNNEL_EMU_OP_DELETE_ALL_VERSIONS);
            }
        }
        row_trim_versions(r, t->opts.max_versions);
    }
    if (e == LUNNEL_EMU_STORE_OK)
        e = append_change(st, t, action, r, fixed, n_cells, origin, origin_len, msg, msglen);
out:
    free(origin);
    row_free(tmp_deleted);
    if (fixed != stackc) free(fixed);
    kb_free(&k);
    return e;
}

/* ---- change stream -------------------------------------------------------------------- */

uint64_t lunnel_emu_table_changes_end(const lunnel_emu_table *t)
{
    return t->changes_begin + t->n_changes;
}
uint64_t lunnel_emu_table_changes_begin(const lunnel_emu_table *t)
{
    return t->changes_begin;
}

const lunnel_emu_change *lunnel_emu_table_change_at(const lunnel_emu_table *t, uint64_t index)
{
    if (index < t->changes_begin || index >= t->changes_begin + t->n_changes) return NULL;
    return &t->changes[index - t->changes_begin];
}

uint64_t lunnel_emu_store_trim_changes(lunnel_emu_store *st, lunnel_emu_table *t, uint64_t before)
{
    (void)st;
    if (before <= t->changes_begin) return 0;
    uint64_t n = before - t->changes_begin;
    if (n > t->n_changes) n = t->n_changes;
    memmove(t->changes, t->changes + n, (t->n_changes - n) * sizeof *t->changes);
    t->n_changes -= n;
    t->changes_begin += n;
    while (t->chunk_head && t->chunk_head->last_index < t->changes_begin) {
        change_chunk *c = t->chunk_head;
        t->chunk_head = c->next;
        if (!t->chunk_head) t->chunk_tail = NULL;
        free(c);
    }
    return n;
}

/* ---- snapshot and ranges ---------------------------------------------------------------- */

/* Encodes row `r` as a base-data row (newest version of each column) into `w`. */
static void encode_snapshot_row(lunnel_pb_writer *w, const lunnel_emu_table *t,
                                const lunnel_emu_row *r)
{
    lunnel_pb_writer_reset(w);
    lunnel_pb_write_header(w);
    lunnel_pb_begin_row(w);
    lunnel_emu_encode_pk(w, t->pk, r->pk, r->n_pk);
    for (size_t j = 0; j < r->n_cells; j++) {
        if (j > 0 && name_cmp(r->cells[j].name, r->cells[j].name_len, r->cells[j - 1].name,
                              r->cells[j - 1].name_len) == 0)
            continue; /* newest version only */
        lunnel_emu_encode_cell(w, &r->cells[j]);
    }
    lunnel_pb_end_row(w);
}

int lunnel_emu_table_snapshot_each(const lunnel_emu_table *t,
                                   int (*fn)(void *arg, const lunnel_emu_snapshot_row *row),
                                   void *arg)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    int rc = 0;
    for (size_t i = 0; i < t->n_rows && rc == 0; i++) {
        const lunnel_emu_row *r = t->rows[i];
        encode_snapshot_row(&w, t, r);
        if (w.error) {
            rc = -1;
            break;
        }
        lunnel_emu_snapshot_row row = {w.buf, w.len, r->pk_pb, r->pk_pb_len, r->partition};
        rc = fn(arg, &row);
    }
    lunnel_pb_writer_free(&w);
    return rc;
}

lunnel_emu_snapshot *lunnel_emu_table_snapshot(const lunnel_emu_table *t)
{
    lunnel_emu_snapshot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->change_index = lunnel_emu_table_changes_end(t);
    s->rows = calloc(t->n_rows ? t->n_rows : 1, sizeof *s->rows);
    if (!s->rows) {
        free(s);
        return NULL;
    }
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    for (size_t i = 0; i < t->n_rows; i++) {
        const lunnel_emu_row *r = t->rows[i];
        encode_snapshot_row(&w, t, r);
        uint8_t *blk = w.error ? NULL : malloc(w.len + r->pk_pb_len);
        if (!blk) {
            s->n_rows = i;
            lunnel_pb_writer_free(&w);
            lunnel_emu_snapshot_free(s);
            return NULL;
        }
        memcpy(blk, w.buf, w.len);
        memcpy(blk + w.len, r->pk_pb, r->pk_pb_len);
        s->rows[i].row = blk;
        s->rows[i].row_len = w.len;
        s->rows[i].pk = blk + w.len;
        s->rows[i].pk_len = r->pk_pb_len;
        s->rows[i].partition = r->partition;
    }
    s->n_rows = t->n_rows;
    lunnel_pb_writer_free(&w);
    return s;
}

void lunnel_emu_snapshot_free(lunnel_emu_snapshot *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_rows; i++)
        free((void *)s->rows[i].row);
    free(s->rows);
    free(s);
}

size_t lunnel_emu_table_range(const lunnel_emu_table *t, bool backward,
                              const lunnel_emu_value *start, const lunnel_emu_value *end,
                              size_t n_pk, lunnel_emu_row_fn fn, void *ud)
{
    keybuf ks, ke;
    kb_init(&ks);
    kb_init(&ke);
    size_t visited = 0;
    if (sort_key(start, n_pk, &ks) != 0 || sort_key(end, n_pk, &ke) != 0) goto done;
    if (!backward) {
        for (size_t i = lower_bound(t, ks.p, ks.len); i < t->n_rows; i++) {
            const lunnel_emu_row *r = t->rows[i];
            if (key_cmp(r->key, r->key_len, ke.p, ke.len) >= 0) break;
            visited++;
            if (fn(ud, r)) break;
        }
    } else {
        /* rows with end < key <= start, from the largest down */
        size_t i = lower_bound(t, ks.p, ks.len);
        if (i < t->n_rows && key_cmp(t->rows[i]->key, t->rows[i]->key_len, ks.p, ks.len) == 0) i++;
        while (i-- > 0) {
            const lunnel_emu_row *r = t->rows[i];
            if (key_cmp(r->key, r->key_len, ke.p, ke.len) <= 0) break;
            visited++;
            if (fn(ud, r)) break;
        }
    }
done:
    kb_free(&ks);
    kb_free(&ke);
    return visited;
}

/* ---- durable state (durable.c) ---------------------------------------------------------- */

void lunnel_emu_store_set_journal(lunnel_emu_store *st, lunnel_emu_store_journal fn, void *ud)
{
    st->journal = fn;
    st->journal_ud = ud;
}

void lunnel_emu_store_seq(const lunnel_emu_store *st, int64_t *us, int32_t *row_index)
{
    *us = st->last_seq_us;
    *row_index = st->last_row_index;
}

void lunnel_emu_store_restore_seq(lunnel_emu_store *st, int64_t us, int32_t row_index)
{
    st->last_seq_us = us;
    st->last_row_index = row_index;
}

lunnel_emu_store_err lunnel_emu_store_replay_write(lunnel_emu_store *st, lunnel_emu_table *t,
                                                   lunnel_emu_action action,
                                                   const lunnel_emu_value *pk, size_t n_pk,
                                                   const lunnel_emu_cell *cells, size_t n_cells,
                                                   int64_t seq_us, int32_t row_index, char *msg,
                                                   size_t msglen)
{
    st->forced_seq = true;
    st->forced_us = seq_us;
    st->forced_row_index = row_index;
    lunnel_emu_store_err e = lunnel_emu_store_write(st, t, action, LUNNEL_EMU_COND_IGNORE, pk, n_pk,
                                                    cells, n_cells, seq_us / 1000, msg, msglen);
    st->forced_seq = false;
    return e;
}

void lunnel_emu_table_restore_meta(lunnel_emu_table *t, int64_t created_ms, uint64_t changes_begin)
{
    t->created_ms = created_ms;
    if (t->n_changes == 0) t->changes_begin = changes_begin;
}

lunnel_emu_store_err lunnel_emu_store_restore_row(lunnel_emu_store *st, lunnel_emu_table *t,
                                                  const lunnel_emu_value *pk, size_t n_pk,
                                                  const lunnel_emu_cell *cells, size_t n_cells,
                                                  char *msg, size_t msglen)
{
    lunnel_emu_store_err e = check_pk(t, pk, n_pk, false, msg, msglen);
    if (e) return e;
    keybuf k;
    kb_init(&k);
    if (sort_key(pk, n_pk, &k) != 0) {
        kb_free(&k);
        return LUNNEL_EMU_STORE_NO_MEMORY;
    }
    size_t pos = lower_bound(t, k.p, k.len);
    if (pos < t->n_rows && key_cmp(t->rows[pos]->key, t->rows[pos]->key_len, k.p, k.len) == 0) {
        kb_free(&k);
        snprintf(msg, msglen, "row stored twice in the snapshot");
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    }
    size_t ak = t->opts.auto_increment_pk;
    if (ak && ak <= n_pk && pk[ak - 1].type == LUNNEL_EMU_V_INTEGER &&
        pk[ak - 1].i > t->auto_incr_last)
        t->auto_incr_last = pk[ak - 1].i;
    lunnel_emu_row *r = row_new(st, t, pk, n_pk, &k);
    kb_free(&k);
    if (!r) return LUNNEL_EMU_STORE_NO_MEMORY;
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 1024;
        lunnel_emu_row **p = realloc(t->rows, cap * sizeof *p);
        if (!p) {
            row_free(r);
            return LUNNEL_EMU_STORE_NO_MEMORY;
        }
        t->rows = p;
        t->cap_rows = cap;
    }
    for (size_t i = 0; i < n_cells; i++) {
        if (cells[i].op != LUNNEL_EMU_OP_PUT || !cells[i].has_ts || cells[i].name_len == 0 ||
            row_put_cell(r, &cells[i], cells[i].ts) != 0) {
            row_free(r);
            snprintf(msg, msglen, "bad stored cell %zu", i);
            return LUNNEL_EMU_STORE_BAD_ARGUMENT;
        }
    }
    memmove(&t->rows[pos + 1], &t->rows[pos], (t->n_rows - pos) * sizeof *t->rows);
    t->rows[pos] = r;
    t->n_rows++;
    return LUNNEL_EMU_STORE_OK;
}

lunnel_emu_store_err lunnel_emu_store_restore_change(lunnel_emu_store *st, lunnel_emu_table *t,
                                                     const lunnel_emu_change *src)
{
    (void)st;
    if (src->index != t->changes_begin + t->n_changes || !src->row || !src->pk)
        return LUNNEL_EMU_STORE_BAD_ARGUMENT;
    lunnel_emu_change copy = *src;
    return push_change(t, &copy) ? LUNNEL_EMU_STORE_OK : LUNNEL_EMU_STORE_NO_MEMORY;
}

size_t lunnel_emu_table_rows_each(const lunnel_emu_table *t, lunnel_emu_row_fn fn, void *ud)
{
    size_t i = 0;
    for (; i < t->n_rows; i++)
        if (fn(ud, t->rows[i])) break;
    return i;
}
