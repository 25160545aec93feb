/* sink_bwr.c: BatchWriteRowRequest bodies built from record views, for the replication sink
 * (lua/lunnel/sinks/tablestore.lua), and the per-row results of the response.
 *
 * Each record becomes one row change in PlainBuffer written by the codec's writer (the same
 * encoder the emulator answers with), so replication applies exactly what the stream
 * carried: PutRow for PUT, UpdateRow with each cell's op (put / delete one version / delete
 * all versions) for UPDATE, DeleteRow for DELETE, every cell timestamp kept. The rows live
 * back to back in one writer buffer; the protobuf request points at them (protobuf-c packs
 * without copying them twice). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <proto/table_store.pb-c.h>

#include "lunnel/buf.h"
#include "lunnel/plainbuffer.h"
#include "lunnel/sink_support.h"

typedef struct bwr_row {
    size_t off, len; /* bytes in w.buf (one header + one row) */
    uint8_t type;    /* LUNNEL__TABLE__OPERATION_TYPE__* */
    uint8_t ok;      /* set by check_response */
} bwr_row;

struct lunnel_sink_bwr {
    char *table;
    lunnel_pb_writer w;
    bwr_row rows[LUNNEL_SINK_BWR_MAX_ROWS];
    uint32_t n;
    uint32_t encoded_n; /* rows in the last encoded request */
    uint8_t *req;       /* last encoded request (owned) */
    size_t req_len, req_cap;
    char msg[640];
};

lunnel_sink_bwr *lunnel_sink_bwr_new(const char *table)
{
    if (!table) return NULL;
    lunnel_sink_bwr *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->table = strdup(table);
    if (!b->table) {
        free(b);
        return NULL;
    }
    lunnel_pb_writer_init(&b->w);
    return b;
}

void lunnel_sink_bwr_free(lunnel_sink_bwr *b)
{
    if (!b) return;
    lunnel_pb_writer_free(&b->w);
    free(b->req);
    free(b->table);
    free(b);
}

void lunnel_sink_bwr_clear(lunnel_sink_bwr *b)
{
    lunnel_pb_writer_reset(&b->w);
    b->n = b->encoded_n = 0;
    b->msg[0] = 0;
}

uint32_t lunnel_sink_bwr_count(const lunnel_sink_bwr *b)
{
    return b->n;
}
size_t lunnel_sink_bwr_bytes(const lunnel_sink_bwr *b)
{
    return b->w.len;
}
const char *lunnel_sink_bwr_message(const lunnel_sink_bwr *b)
{
    return b->msg;
}

/* Names the column a writer failure happened on. */
static int enc_fail(lunnel_sink_bwr *b, const char *what, const lunnel_column *c, int rc)
{
    snprintf(b->msg, sizeof b->msg, "cannot encode %s '%.*s': %s", what,
             c ? (int)(c->name_len > 200 ? 200 : c->name_len) : 0, c ? (const char *)c->name : "",
             lunnel_codec_strerror(rc));
    return -LUNNEL_SINK_ENCODE;
}

int lunnel_sink_bwr_add(lunnel_sink_bwr *b, const lunnel_record *r)
{
    b->msg[0] = 0;
    if (!r) return -LUNNEL_SINK_USAGE;
    if (b->n >= LUNNEL_SINK_BWR_MAX_ROWS) {
        snprintf(b->msg, sizeof b->msg, "a BatchWriteRow request holds at most %d rows",
                 LUNNEL_SINK_BWR_MAX_ROWS);
        return -LUNNEL_SINK_USAGE;
    }
    if (r->pk_count == 0) {
        snprintf(b->msg, sizeof b->msg, "record has no primary key");
        return -LUNNEL_SINK_USAGE;
    }
    uint8_t type;
    switch (r->action) {
    case LUNNEL_ACTION_NONE:
    case LUNNEL_ACTION_PUT:
        type = LUNNEL__TABLE__OPERATION_TYPE__PUT;
        break;
    case LUNNEL_ACTION_UPDATE:
        if (r->col_count == 0) return 1; /* nothing to apply; UpdateRow needs a column */
        type = LUNNEL__TABLE__OPERATION_TYPE__UPDATE;
        break;
    case LUNNEL_ACTION_DELETE:
        type = LUNNEL__TABLE__OPERATION_TYPE__DELETE;
        break;
    default:
        snprintf(b->msg, sizeof b->msg, "record has unknown action %d", r->action);
        return -LUNNEL_SINK_USAGE;
    }

    lunnel_pb_writer *w = &b->w;
    size_t off = w->len;
    int rc = lunnel_pb_write_header(w);
    if (!rc) rc = lunnel_pb_begin_row(w);
    if (rc) goto fail_row;
    for (uint32_t i = 0; i < r->pk_count; i++) {
        const lunnel_column *c = &r->pk[i];
        rc = lunnel_pb_write_pk(w, c->name, c->name_len, &c->value);
        if (rc) {
            w->len = off;
            return enc_fail(b, "primary-key column", c, rc);
        }
    }
    if (type == LUNNEL__TABLE__OPERATION_TYPE__DELETE) {
        rc = lunnel_pb_write_delete_marker(w);
    } else {
        for (uint32_t i = 0; i < r->col_count; i++) {
            const lunnel_column *c = &r->cols[i];
            /* a PutRow carries values only; a delete op inside a PUT record cannot be
             * replayed by PutRow (which replaces the row anyway): skip it */
            if (type == LUNNEL__TABLE__OPERATION_TYPE__PUT && c->op != LUNNEL_OP_PUT) continue;
            const lunnel_value *v = c->op == LUNNEL_OP_PUT ? &c->value : NULL;
            rc = lunnel_pb_write_cell(w, c->name, c->name_len, v, c->op, c->has_timestamp,
                                      c->timestamp);
            if (rc) {
                w->len = off;
                return enc_fail(b, "column", c, rc);
            }
        }
    }
    if (!rc) rc = lunnel_pb_end_row(w);
    if (rc) goto fail_row;
    b->rows[b->n].off = off;
    b->rows[b->n].len = w->len - off;
    b->rows[b->n].type = type;
    b->rows[b->n].ok = 0;
    b->n++;
    return 0;
fail_row:
    w->len = off;
    return enc_fail(b, "row", NULL, rc);
}

int lunnel_sink_bwr_encode(lunnel_sink_bwr *b, const uint8_t **body_out, size_t *len_out)
{
    b->msg[0] = 0;
    if (b->w.error) {
        snprintf(b->msg, sizeof b->msg, "row buffer: %s", lunnel_codec_strerror(b->w.error));
        return LUNNEL_SINK_ENCODE;
    }
    Lunnel__Table__Condition cond = LUNNEL__TABLE__CONDITION__INIT;
    cond.row_existence = LUNNEL__TABLE__ROW_EXISTENCE_EXPECTATION__IGNORE;
    Lunnel__Table__RowInBatchWriteRowRequest rows[LUNNEL_SINK_BWR_MAX_ROWS];
    Lunnel__Table__RowInBatchWriteRowRequest *rowp[LUNNEL_SINK_BWR_MAX_ROWS];
    for (uint32_t i = 0; i < b->n; i++) {
        lunnel__table__row_in_batch_write_row_request__init(&rows[i]);
        rows[i].type = (Lunnel__Table__OperationType)b->rows[i].type;
        rows[i].row_change.data = b->w.buf + b->rows[i].off;
        rows[i].row_change.len = b->rows[i].len;
        rows[i].condition = &cond;
        rowp[i] = &rows[i];
    }
    Lunnel__Table__TableInBatchWriteRowRequest t =
        LUNNEL__TABLE__TABLE_IN_BATCH_WRITE_ROW_REQUEST__INIT;
    t.table_name = b->table;
    t.n_rows = b->n;
    t.rows = rowp;
    Lunnel__Table__TableInBatchWriteRowRequest *tp = &t;
    Lunnel__Table__BatchWriteRowRequest m = LUNNEL__TABLE__BATCH_WRITE_ROW_REQUEST__INIT;
    m.n_tables = 1;
    m.tables = &tp;
    size_t need = lunnel__table__batch_write_row_request__get_packed_size(&m);
    if (lunnel_vec_reserve(&b->req, &b->req_cap, need, 4096) != 0) {
        snprintf(b->msg, sizeof b->msg, "out of memory for a %zu-byte request", need);
        return LUNNEL_SINK_NOMEM;
    }
    b->req_len = lunnel__table__batch_write_row_request__pack(&m, b->req);
    b->encoded_n = b->n;
    *body_out = b->req;
    *len_out = b->req_len;
    return LUNNEL_SINK_OK;
}

/* Row error codes a later attempt may clear (throttling, timeouts, transient server state). */
static int code_retriable(const char *code)
{
    static const char *const retriable[] = {
        "OTSServerBusy",           "OTSTimeout",
        "OTSServerUnavailable",    "OTSInternalServerError",
        "OTSPartitionUnavailable", "OTSRowOperationConflict",
        "OTSQuotaExhausted",       "OTSCapacityUnitExhausted",
        "OTSTableNotReady",        "OTSNotEnoughCapacityUnit",
    };
    if (!code) return 0;
    for (size_t i = 0; i < sizeof retriable / sizeof retriable[0]; i++)
        if (strcmp(code, retriable[i]) == 0) return 1;
    return 0;
}

int lunnel_sink_bwr_check_response(lunnel_sink_bwr *b, const uint8_t *body, size_t len,
                                   int *fatal_out)
{
    b->msg[0] = 0;
    if (fatal_out) *fatal_out = 0;
    Lunnel__Table__BatchWriteRowResponse *m =
        lunnel__table__batch_write_row_response__unpack(NULL, len, body);
    if (!m) {
        snprintf(b->msg, sizeof b->msg, "BatchWriteRowResponse (%zu bytes) does not parse", len);
        return -1;
    }
    size_t got = m->n_tables == 1 ? m->tables[0]->n_rows : 0;
    if (m->n_tables != 1 || got != b->encoded_n || b->encoded_n != b->n) {
        snprintf(b->msg, sizeof b->msg,
                 "BatchWriteRowResponse has %zu tables / %zu rows, the request had 1 / %u",
                 m->n_tables, got, b->encoded_n);
        lunnel__table__batch_write_row_response__free_unpacked(m, NULL);
        return -1;
    }
    int failed = 0, first_fatal = -1, first = -1;
    for (uint32_t i = 0; i < b->n; i++) {
        const Lunnel__Table__RowInBatchWriteRowResponse *rr = m->tables[0]->rows[i];
        b->rows[i].ok = rr->is_ok ? 1 : 0;
        if (rr->is_ok) continue;
        failed++;
        const char *code = rr->error && rr->error->code ? rr->error->code : NULL;
        if (first < 0) first = (int)i;
        if (!code_retriable(code) && first_fatal < 0) first_fatal = (int)i;
    }
    if (failed) {
        int show = first_fatal >= 0 ? first_fatal : first;
        const Lunnel__Table__Error *e = m->tables[0]->rows[show]->error;
        snprintf(b->msg, sizeof b->msg, "row %d: %s: %s", show,
                 e && e->code ? e->code : "(no code)", e && e->message ? e->message : "");
        if (fatal_out) *fatal_out = first_fatal >= 0;
    }
    lunnel__table__batch_write_row_response__free_unpacked(m, NULL);
    return failed;
}

void lunnel_sink_bwr_keep_failed(lunnel_sink_bwr *b)
{
    /* Compacts the failed rows' bytes to the front of the buffer, in order. */
    size_t dst = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        if (b->rows[i].ok) continue;
        if (b->rows[i].off != dst)
            memmove(b->w.buf + dst, b->w.buf + b->rows[i].off, b->rows[i].len);
        b->rows[k] = b->rows[i];
        b->rows[k].off = dst;
        dst += b->rows[i].len;
        k++;
    }
    b->n = k;
    b->w.len = dst;
    b->encoded_n = 0;
}

int lunnel_sink_ots_error(const uint8_t *body, size_t len, char *out, size_t cap)
{
    Lunnel__Table__Error *e = len ? lunnel__table__error__unpack(NULL, len, body) : NULL;
    if (!e || !e->code) {
        if (cap) snprintf(out, cap, "unparsable error body (%zu bytes)", len);
        if (e) lunnel__table__error__free_unpacked(e, NULL);
        return 0;
    }
    if (cap) snprintf(out, cap, "%s: %s", e->code, e->message ? e->message : "");
    int again = code_retriable(e->code);
    lunnel__table__error__free_unpacked(e, NULL);
    return again;
}
