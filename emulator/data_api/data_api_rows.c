/* data_api_rows.c: the row operations of lunnel-emulator's data API: PutRow, UpdateRow,
 * DeleteRow, BatchWriteRow (writes, each appending a change record through the store; column
 * conditions, atomic increments, AUTO_INCREMENT keys, RT_PK / RT_AFTER_MODIFY returns) and
 * GetRow, GetRange, BatchGetRow (reads, encoding stored rows back to PlainBuffer with
 * timestamps; column filters, the table's time to live). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_api/data_api_internal.h"
#include "data_api/filter.h"

#define GETRANGE_MAX_ROWS 5000
#define GETRANGE_MAX_BYTES (4u << 20)

static Lunnel__Table__CapacityUnit cu_write = {
    PROTOBUF_C_MESSAGE_INIT(&lunnel__table__capacity_unit__descriptor), 1, 0, 1, 1};
static Lunnel__Table__CapacityUnit cu_read = {
    PROTOBUF_C_MESSAGE_INIT(&lunnel__table__capacity_unit__descriptor), 1, 1, 1, 0};
static Lunnel__Table__ConsumedCapacity consumed_write = {
    PROTOBUF_C_MESSAGE_INIT(&lunnel__table__consumed_capacity__descriptor), &cu_write};
static Lunnel__Table__ConsumedCapacity consumed_read = {
    PROTOBUF_C_MESSAGE_INIT(&lunnel__table__consumed_capacity__descriptor), &cu_read};

/* ---- writes ----------------------------------------------------------------------------- */

typedef struct write_result {
    lunnel_emu_store_err err;
    char msg[512];
    /* RT_PK: the primary key to return (PlainBuffer) */
    uint8_t *pk_row;
    size_t pk_row_len;
} write_result;

/* Oldest cell timestamp (ms) a read or filter of `t` sees: the time to live. */
static int64_t visible_from(const lunnel_emu_table *t)
{
    const lunnel_emu_table_options *o = lunnel_emu_table_options_of(t);
    return o->time_to_live > 0 ? data_api_now_ms() - (int64_t)o->time_to_live * 1000 : INT64_MIN;
}

typedef struct cond_check {
    const emu_filter *f;
    int64_t min_ts;
} cond_check;

static int check_condition(void *ud, const lunnel_emu_row *old)
{
    const cond_check *c = ud;
    return emu_filter_match(c->f, old, c->min_ts);
}

/* RT_AFTER_MODIFY: the primary key and the latest version of each named column. */
static void encode_after_modify(lunnel_pb_writer *w, const lunnel_emu_table *t,
                                const lunnel_emu_value *pk, size_t n_pk, char **names,
                                size_t n_names)
{
    const lunnel_emu_pk_schema *schema;
    lunnel_emu_table_pk(t, &schema);
    const lunnel_emu_row *r = lunnel_emu_table_get(t, pk, n_pk);
    lunnel_pb_writer_reset(w);
    lunnel_pb_write_header(w);
    lunnel_pb_begin_row(w);
    lunnel_emu_encode_pk(w, schema, pk, n_pk);
    const lunnel_emu_cell *cells = NULL;
    size_t n = r ? lunnel_emu_row_cells(r, &cells) : 0;
    for (size_t k = 0; k < n_names; k++) {
        size_t nl = strlen(names[k]);
        for (size_t i = 0; i < n; i++)
            if (cells[i].name_len == nl && memcmp(cells[i].name, names[k], nl) == 0) {
                lunnel_emu_encode_cell(w, &cells[i]); /* newest first */
                break;
            }
    }
    lunnel_pb_end_row(w);
}

/* Applies one write described by its (decoded) row and condition; fills res. Returns 0 on
 * success, -1 on an error (res->err, res->msg). */
static int apply_write(data_api *api, lunnel_emu_table *t, lunnel_emu_action action,
                       const req_row *row, const Lunnel__Table__Condition *cond,
                       const Lunnel__Table__ReturnContent *rc, write_result *res)
{
    memset(res, 0, sizeof *res);
    emu_filter *colcond = NULL;
    if (cond && cond->has_column_condition && cond->column_condition.len > 0) {
        if (emu_filter_parse(cond->column_condition.data, cond->column_condition.len, &colcond,
                             res->msg, sizeof res->msg) != 0) {
            res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
            return -1;
        }
        if (emu_filter_is_pagination(colcond)) {
            emu_filter_free(colcond);
            res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
            snprintf(res->msg, sizeof res->msg,
                     "Invalid condition: a column pagination filter is not a condition.");
            return -1;
        }
    }
    int rv = 0;
    lunnel_emu_condition c =
        cond ? (lunnel_emu_condition)cond->row_existence : LUNNEL_EMU_COND_IGNORE;
    if (c > LUNNEL_EMU_COND_EXPECT_NOT_EXIST) {
        res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
        snprintf(res->msg, sizeof res->msg, "Invalid row existence expectation %d.", (int)c);
        rv = -1;
        goto done;
    }
    if (action == LUNNEL_EMU_ACTION_UPDATE && c == LUNNEL_EMU_COND_EXPECT_NOT_EXIST) {
        res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
        snprintf(res->msg, sizeof res->msg,
                 "Invalid condition: EXPECT_NOT_EXIST while updating row.");
        rv = -1;
        goto done;
    }
    lunnel_emu_value pk[LUNNEL_EMU_MAX_PK];
    cond_check cc = {colcond, visible_from(t)};
    lunnel_emu_write_ext ext = {colcond ? check_condition : NULL, &cc, pk};
    res->err =
        lunnel_emu_store_write_ex(api->store, t, action, c, row->pk, row->n_pk, row->cells,
                                  row->n_cells, data_api_now_ms(), &ext, res->msg, sizeof res->msg);
    if (res->err) {
        rv = -1;
        goto done;
    }
    int rt = rc && rc->has_return_type ? (int)rc->return_type : 0;
    if (rt == LUNNEL__TABLE__RETURN_TYPE__RT_PK ||
        rt == LUNNEL__TABLE__RETURN_TYPE__RT_AFTER_MODIFY) {
        lunnel_pb_writer *w = &api->w;
        encode_after_modify(
            w, t, pk, row->n_pk,
            rt == LUNNEL__TABLE__RETURN_TYPE__RT_AFTER_MODIFY ? rc->return_column_names : NULL,
            rt == LUNNEL__TABLE__RETURN_TYPE__RT_AFTER_MODIFY ? rc->n_return_column_names : 0);
        if (!w->error) {
            res->pk_row = malloc(w->len);
            if (res->pk_row) {
                memcpy(res->pk_row, w->buf, w->len);
                res->pk_row_len = w->len;
            }
        }
    }
done:
    emu_filter_free(colcond);
    return rv;
}

/* Where write_one_row puts its answer: the fields of a PutRowResponse, UpdateRowResponse or
 * DeleteRowResponse (one shape, {consumed, optional row}, under three names). */
typedef struct write_reply {
    ProtobufCMessage *msg;
    Lunnel__Table__ConsumedCapacity **consumed;
    protobuf_c_boolean *has_row;
    ProtobufCBinaryData *row;
} write_reply;

/* The path PutRow, UpdateRow and DeleteRow share: looks the table up, decodes the request's
 * one row (`what` names it in errors), applies the write and answers with the consumed
 * capacity and, when asked for (RT_PK), the primary key. */
static void write_one_row(data_api *api, lunnel_emu_action action, const char *table_name,
                          ProtobufCBinaryData bytes, const char *what,
                          const Lunnel__Table__Condition *cond,
                          const Lunnel__Table__ReturnContent *rc, const write_reply *reply,
                          lunnel_emu_response *resp)
{
    req_row row;
    lunnel_emu_table *t = data_api_table(api, table_name, resp);
    if (!t || data_api_decode_row(api, bytes.data, bytes.len, what, &row, resp) != 0) return;
    write_result res;
    if (apply_write(api, t, action, &row, cond, rc, &res) != 0) {
        data_api_store_error(resp, res.err, res.msg);
    } else {
        *reply->consumed = &consumed_write;
        if (res.pk_row) {
            *reply->has_row = 1;
            reply->row->data = res.pk_row;
            reply->row->len = res.pk_row_len;
        }
        lunnel_emu_respond_pb(resp, reply->msg);
    }
    free(res.pk_row);
}

static void put_row(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__PutRowRequest *m =
        data_api_unpack(&lunnel__table__put_row_request__descriptor, req, resp);
    if (!m) return;
    Lunnel__Table__PutRowResponse r = LUNNEL__TABLE__PUT_ROW_RESPONSE__INIT;
    write_reply reply = {&r.base, &r.consumed, &r.has_row, &r.row};
    write_one_row(api, LUNNEL_EMU_ACTION_PUT, m->table_name, m->row, "PutRow row", m->condition,
                  m->return_content, &reply, resp);
    lunnel__table__put_row_request__free_unpacked(m, NULL);
}

static void update_row(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__UpdateRowRequest *m =
        data_api_unpack(&lunnel__table__update_row_request__descriptor, req, resp);
    if (!m) return;
    Lunnel__Table__UpdateRowResponse r = LUNNEL__TABLE__UPDATE_ROW_RESPONSE__INIT;
    write_reply reply = {&r.base, &r.consumed, &r.has_row, &r.row};
    write_one_row(api, LUNNEL_EMU_ACTION_UPDATE, m->table_name, m->row_change, "UpdateRow row",
                  m->condition, m->return_content, &reply, resp);
    lunnel__table__update_row_request__free_unpacked(m, NULL);
}

static void delete_row(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__DeleteRowRequest *m =
        data_api_unpack(&lunnel__table__delete_row_request__descriptor, req, resp);
    if (!m) return;
    Lunnel__Table__DeleteRowResponse r = LUNNEL__TABLE__DELETE_ROW_RESPONSE__INIT;
    write_reply reply = {&r.base, &r.consumed, &r.has_row, &r.row};
    write_one_row(api, LUNNEL_EMU_ACTION_DELETE, m->table_name, m->primary_key,
                  "DeleteRow primary key", m->condition, m->return_content, &reply, resp);
    lunnel__table__delete_row_request__free_unpacked(m, NULL);
}

/* What the batch operations answer per row besides the row message itself: an Error with
 * its message, and the row bytes returned (RT_PK / RT_AFTER_MODIFY, or the row read). */
typedef struct batch_rows {
    Lunnel__Table__Error *errs;
    char (*msgs)[512];
    uint8_t **bufs;
    size_t n;
} batch_rows;

static int batch_rows_init(batch_rows *b, size_t n)
{
    b->n = n;
    b->errs = calloc(n + 1, sizeof *b->errs);
    b->msgs = calloc(n + 1, sizeof *b->msgs);
    b->bufs = calloc(n + 1, sizeof *b->bufs);
    return b->errs && b->msgs && b->bufs ? 0 : -1;
}

static void batch_rows_free(batch_rows *b)
{
    for (size_t i = 0; b->bufs && i < b->n; i++)
        free(b->bufs[i]);
    free(b->bufs);
    free(b->errs);
    free(b->msgs);
}

/* Row k failed with `code` (its message in b->msgs[k]): the Error to attach. */
static Lunnel__Table__Error *batch_rows_error(batch_rows *b, size_t k, const char *code)
{
    lunnel__table__error__init(&b->errs[k]);
    b->errs[k].code = (char *)code;
    b->errs[k].message = b->msgs[k];
    return &b->errs[k];
}

/* BatchWriteRow: each row succeeds or fails on its own (is_ok + Error), as the service does;
 * a missing table fails that table's rows. */
static void batch_write_row(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__BatchWriteRowRequest *m =
        data_api_unpack(&lunnel__table__batch_write_row_request__descriptor, req, resp);
    if (!m) return;
    size_t total = 0;
    for (size_t i = 0; i < m->n_tables; i++)
        total += m->tables[i]->n_rows;
    if (total > 200) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "Rows count exceeds the upper limit: %zu > 200.", total);
        lunnel__table__batch_write_row_request__free_unpacked(m, NULL);
        return;
    }
    Lunnel__Table__TableInBatchWriteRowResponse *tr = calloc(m->n_tables + 1, sizeof *tr);
    Lunnel__Table__TableInBatchWriteRowResponse **trp = calloc(m->n_tables + 1, sizeof *trp);
    Lunnel__Table__RowInBatchWriteRowResponse *rr = calloc(total + 1, sizeof *rr);
    Lunnel__Table__RowInBatchWriteRowResponse **rrp = calloc(total + 1, sizeof *rrp);
    batch_rows b;
    int bad = batch_rows_init(&b, total);
    char(*msgs)[512] = b.msgs;
    if (!tr || !trp || !rr || !rrp || bad) {
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError", "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < m->n_tables; i++) {
        const Lunnel__Table__TableInBatchWriteRowRequest *tq = m->tables[i];
        lunnel__table__table_in_batch_write_row_response__init(&tr[i]);
        trp[i] = &tr[i];
        tr[i].table_name = tq->table_name;
        tr[i].n_rows = tq->n_rows;
        tr[i].rows = &rrp[k];
        lunnel_emu_table *t = lunnel_emu_store_table(api->store, tq->table_name);
        for (size_t j = 0; j < tq->n_rows; j++, k++) {
            const Lunnel__Table__RowInBatchWriteRowRequest *rq = tq->rows[j];
            lunnel__table__row_in_batch_write_row_response__init(&rr[k]);
            rrp[k] = &rr[k];
            const char *code = NULL;
            if (!t) {
                code = "OTSObjectNotExist";
                snprintf(msgs[k], sizeof msgs[k], "Requested table does not exist: '%s'.",
                         tq->table_name);
            } else {
                /* decode errors are answered per row, not for the whole request */
                const lunnel_record *rows;
                uint32_t n;
                lunnel_codec_error cerr;
                int drc = lunnel_pb_decode_rows(api->arena, rq->row_change.data, rq->row_change.len,
                                                LUNNEL_PB_LENIENT, &rows, &n, &cerr);
                if (drc != LUNNEL_CODEC_OK || n != 1) {
                    code = "OTSParameterInvalid";
                    snprintf(msgs[k], sizeof msgs[k], "Invalid row %zu of table '%s': %s", j,
                             tq->table_name, drc ? cerr.message : "expected exactly one row");
                } else {
                    req_row row;
                    /* re-decode through the shared converter (same bytes, already valid) */
                    lunnel_emu_response *none = NULL;
                    (void)none;
                    if (data_api_decode_row(api, rq->row_change.data, rq->row_change.len,
                                            "BatchWriteRow row", &row, resp) != 0) {
                        goto done; /* unsupported op: answered for the whole request */
                    }
                    lunnel_emu_action a = rq->type == LUNNEL__TABLE__OPERATION_TYPE__PUT
                                              ? LUNNEL_EMU_ACTION_PUT
                                          : rq->type == LUNNEL__TABLE__OPERATION_TYPE__UPDATE
                                              ? LUNNEL_EMU_ACTION_UPDATE
                                              : LUNNEL_EMU_ACTION_DELETE;
                    write_result res;
                    if (apply_write(api, t, a, &row, rq->condition, rq->return_content, &res) !=
                        0) {
                        code = lunnel_emu_store_strerror(res.err);
                        snprintf(msgs[k], sizeof msgs[k], "%s", res.msg);
                    } else if (res.pk_row) {
                        b.bufs[k] = res.pk_row;
                        rr[k].has_row = 1;
                        rr[k].row.data = res.pk_row;
                        rr[k].row.len = res.pk_row_len;
                    }
                }
            }
            rr[k].is_ok = code == NULL;
            if (code)
                rr[k].error = batch_rows_error(&b, k, code);
            else
                rr[k].consumed = &consumed_write;
        }
    }
    Lunnel__Table__BatchWriteRowResponse r = LUNNEL__TABLE__BATCH_WRITE_ROW_RESPONSE__INIT;
    r.n_tables = m->n_tables;
    r.tables = trp;
    lunnel_emu_respond_pb(resp, &r.base);
done:
    batch_rows_free(&b);
    free(tr);
    free(trp);
    free(rr);
    free(rrp);
    lunnel__table__batch_write_row_request__free_unpacked(m, NULL);
}

/* ---- reads ------------------------------------------------------------------------------ */

typedef struct read_opts {
    char **columns;
    size_t n_columns;
    int32_t max_versions;
    bool has_range;
    int64_t start_ts, end_ts; /* [start, end) */
    int64_t min_ts;           /* time to live: older cells are gone */
    emu_filter *filter;       /* NULL: none */
    bool paginate;
    int32_t page_offset, page_limit;
} read_opts;

static bool wanted(const read_opts *o, const lunnel_emu_cell *c)
{
    if (c->ts < o->min_ts) return false;
    if (o->has_range && (c->ts < o->start_ts || c->ts >= o->end_ts)) return false;
    if (!o->n_columns) return true;
    for (size_t i = 0; i < o->n_columns; i++)
        if (strlen(o->columns[i]) == c->name_len &&
            memcmp(o->columns[i], c->name, c->name_len) == 0)
            return true;
    return false;
}

/* Is the row there for a read: it passes the filter, and the time to live did not take all
 * of its cells (a row that never had attribute columns stays). */
static bool row_visible(const lunnel_emu_row *r, const read_opts *o)
{
    const lunnel_emu_cell *cells;
    size_t n = lunnel_emu_row_cells(r, &cells);
    bool live = n == 0;
    for (size_t i = 0; i < n && !live; i++)
        live = cells[i].ts >= o->min_ts;
    return live && (!o->filter || emu_filter_match(o->filter, r, o->min_ts));
}

/* Writes one stored row (no header) with the versions the read asks for; with a column
 * pagination filter, only columns [offset, offset + limit) of the ones read. */
static void encode_read_row(lunnel_pb_writer *w, const lunnel_emu_table *t, const lunnel_emu_row *r,
                            const read_opts *o)
{
    const lunnel_emu_pk_schema *schema;
    lunnel_emu_table_pk(t, &schema);
    const lunnel_emu_value *pk;
    size_t n_pk = lunnel_emu_row_pk(r, &pk);
    const lunnel_emu_cell *cells;
    size_t n = lunnel_emu_row_cells(r, &cells);
    lunnel_pb_begin_row(w);
    lunnel_emu_encode_pk(w, schema, pk, n_pk);
    int32_t run = 0;
    int64_t column = -1; /* index of the current column among the ones read */
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && cells[i].name_len == cells[i - 1].name_len &&
                    memcmp(cells[i].name, cells[i - 1].name, cells[i].name_len) == 0;
        if (!same) run = 0;
        if (!wanted(o, &cells[i])) continue;
        if (run >= o->max_versions) continue;
        if (run == 0) column++;
        run++;
        if (o->paginate &&
            (column < o->page_offset || column >= (int64_t)o->page_offset + o->page_limit))
            continue;
        lunnel_emu_encode_cell(w, &cells[i]);
    }
    lunnel_pb_end_row(w);
}

/* Fills `o` from a read request's fields (the filter parsed: free with read_opts_done).
 * Answers 400 and returns -1 on a bad request. */
static int read_opts_from(read_opts *o, const lunnel_emu_table *t, char **cols, size_t n_cols,
                          protobuf_c_boolean has_mv, int32_t mv, const Lunnel__Table__TimeRange *tr,
                          protobuf_c_boolean has_filter, ProtobufCBinaryData filter,
                          lunnel_emu_response *resp)
{
    memset(o, 0, sizeof *o);
    o->min_ts = visible_from(t);
    if (has_filter && filter.len) {
        char err[256];
        if (emu_filter_parse(filter.data, filter.len, &o->filter, err, sizeof err) != 0) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid", "%s", err);
            return -1;
        }
        o->paginate = emu_filter_pagination(o->filter, &o->page_offset, &o->page_limit);
    }
    o->columns = cols;
    o->n_columns = n_cols;
    o->max_versions = has_mv ? mv : 0;
    if (tr) {
        o->has_range = true;
        if (tr->has_specific_time) {
            o->start_ts = tr->specific_time;
            o->end_ts = tr->specific_time + 1;
        } else {
            o->start_ts = tr->has_start_time ? tr->start_time : 0;
            o->end_ts = tr->has_end_time ? tr->end_time : INT64_MAX;
        }
    }
    if (!has_mv && !tr) {
        emu_filter_free(o->filter);
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "Neither max_versions nor time_range is specified.");
        return -1;
    }
    if (has_mv && mv <= 0) {
        emu_filter_free(o->filter);
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "max_versions must be positive, got %d.", mv);
        return -1;
    }
    if (!has_mv) o->max_versions = INT32_MAX;
    /* never more than the table keeps: a lowered max_versions (UpdateTable) hides the older
     * versions at once, before the row's next write drops them */
    int32_t kept = lunnel_emu_table_options_of(t)->max_versions;
    if (o->max_versions > kept) o->max_versions = kept;
    return 0;
}

static void get_row(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__GetRowRequest *m =
        data_api_unpack(&lunnel__table__get_row_request__descriptor, req, resp);
    if (!m) return;
    req_row row;
    read_opts o = {0};
    lunnel_emu_table *t = data_api_table(api, m->table_name, resp);
    if (t &&
        data_api_decode_row(api, m->primary_key.data, m->primary_key.len, "GetRow primary key",
                            &row, resp) == 0 &&
        read_opts_from(&o, t, m->columns_to_get, m->n_columns_to_get, m->has_max_versions,
                       m->max_versions, m->time_range, m->has_filter, m->filter, resp) == 0) {
        const lunnel_emu_pk_schema *schema;
        size_t n_schema = lunnel_emu_table_pk(t, &schema);
        if (row.n_pk != n_schema) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "Validate PK size fail. Input: %zu, Meta: %zu.", row.n_pk,
                                     n_schema);
        } else {
            const lunnel_emu_row *r = lunnel_emu_table_get(t, row.pk, row.n_pk);
            if (r && !row_visible(r, &o)) r = NULL;
            lunnel_pb_writer *w = &api->w;
            lunnel_pb_writer_reset(w);
            if (r) {
                lunnel_pb_write_header(w);
                encode_read_row(w, t, r, &o);
            }
            Lunnel__Table__GetRowResponse resp_m = LUNNEL__TABLE__GET_ROW_RESPONSE__INIT;
            resp_m.consumed = &consumed_read;
            resp_m.row.data = w->buf;
            resp_m.row.len = r ? w->len : 0;
            if (w->error)
                lunnel_emu_respond_error(resp, 500, "OTSInternalServerError",
                                         "cannot encode row: %s", lunnel_codec_strerror(w->error));
            else
                lunnel_emu_respond_pb(resp, &resp_m.base);
        }
    }
    emu_filter_free(o.filter);
    lunnel__table__get_row_request__free_unpacked(m, NULL);
}

typedef struct range_state {
    const lunnel_emu_table *t;
    const read_opts *o;
    lunnel_pb_writer *w;
    size_t limit;
    size_t rows;
    const lunnel_emu_row *next; /* first row not returned */
} range_state;

static int range_row(void *ud, const lunnel_emu_row *r)
{
    range_state *s = ud;
    if (s->rows == s->limit || s->w->len >= GETRANGE_MAX_BYTES) {
        s->next = r;
        return 1;
    }
    if (!row_visible(r, s->o)) return 0;
    encode_read_row(s->w, s->t, r, s->o);
    s->rows++;
    return 0;
}

static void get_range(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__GetRangeRequest *m =
        data_api_unpack(&lunnel__table__get_range_request__descriptor, req, resp);
    if (!m) return;
    req_row start, end;
    read_opts o = {0};
    lunnel_emu_table *t = data_api_table(api, m->table_name, resp);
    if (t &&
        data_api_decode_row(api, m->inclusive_start_primary_key.data,
                            m->inclusive_start_primary_key.len, "GetRange start primary key",
                            &start, resp) == 0 &&
        data_api_decode_row(api, m->exclusive_end_primary_key.data,
                            m->exclusive_end_primary_key.len, "GetRange end primary key", &end,
                            resp) == 0 &&
        read_opts_from(&o, t, m->columns_to_get, m->n_columns_to_get, m->has_max_versions,
                       m->max_versions, m->time_range, m->has_filter, m->filter, resp) == 0) {
        const lunnel_emu_pk_schema *schema;
        size_t n_schema = lunnel_emu_table_pk(t, &schema);
        if (start.n_pk != n_schema || end.n_pk != n_schema) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "Validate PK size fail. Input: %zu/%zu, Meta: %zu.",
                                     start.n_pk, end.n_pk, n_schema);
        } else if (m->has_limit && m->limit <= 0) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "The limit must be positive, got %d.", m->limit);
        } else {
            lunnel_pb_writer *w = &api->w;
            lunnel_pb_writer_reset(w);
            lunnel_pb_write_header(w);
            range_state s = {.t = t, .o = &o, .w = w, .limit = GETRANGE_MAX_ROWS};
            if (m->has_limit && (size_t)m->limit < s.limit) s.limit = (size_t)m->limit;
            lunnel_emu_table_range(t, m->direction == LUNNEL__TABLE__DIRECTION__BACKWARD, start.pk,
                                   end.pk, n_schema, range_row, &s);
            uint8_t *next_pk = NULL;
            size_t next_len = 0;
            if (s.next) {
                /* the next start key: the first row not returned, pk only */
                lunnel_pb_writer nw;
                lunnel_pb_writer_init(&nw);
                const lunnel_emu_value *pk;
                size_t n_pk = lunnel_emu_row_pk(s.next, &pk);
                lunnel_pb_write_header(&nw);
                lunnel_pb_begin_row(&nw);
                lunnel_emu_encode_pk(&nw, schema, pk, n_pk);
                lunnel_pb_end_row(&nw);
                next_pk = nw.buf; /* taken over from the writer */
                next_len = nw.len;
            }
            Lunnel__Table__GetRangeResponse r = LUNNEL__TABLE__GET_RANGE_RESPONSE__INIT;
            r.consumed = &consumed_read;
            r.rows.data = w->buf;
            r.rows.len = s.rows ? w->len : 0;
            if (next_pk) {
                r.has_next_start_primary_key = 1;
                r.next_start_primary_key.data = next_pk;
                r.next_start_primary_key.len = next_len;
            }
            if (w->error)
                lunnel_emu_respond_error(resp, 500, "OTSInternalServerError",
                                         "cannot encode rows: %s", lunnel_codec_strerror(w->error));
            else
                lunnel_emu_respond_pb(resp, &r.base);
            free(next_pk);
        }
    }
    emu_filter_free(o.filter);
    lunnel__table__get_range_request__free_unpacked(m, NULL);
}

/* BatchGetRow: each row is answered on its own (is_ok + Error); a missing table fails that
 * table's rows; the table's columns, versions, time range and filter apply to its rows. */
static void batch_get_row(void *ud, const lunnel_emu_request *req, lunnel_emu_response *resp)
{
    data_api *api = ud;
    lunnel_arena_reset(api->arena);
    Lunnel__Table__BatchGetRowRequest *m =
        data_api_unpack(&lunnel__table__batch_get_row_request__descriptor, req, resp);
    if (!m) return;
    size_t total = 0;
    for (size_t i = 0; i < m->n_tables; i++)
        total += m->tables[i]->n_primary_key;
    if (total == 0 || total > 100) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 total ? "Rows count exceeds the upper limit: %zu > 100."
                                       : "No row specified in the request of BatchGetRow.%.0zu",
                                 total);
        lunnel__table__batch_get_row_request__free_unpacked(m, NULL);
        return;
    }
    Lunnel__Table__TableInBatchGetRowResponse *tr = calloc(m->n_tables, sizeof *tr);
    Lunnel__Table__TableInBatchGetRowResponse **trp = calloc(m->n_tables, sizeof *trp);
    Lunnel__Table__RowInBatchGetRowResponse *rr = calloc(total, sizeof *rr);
    Lunnel__Table__RowInBatchGetRowResponse **rrp = calloc(total, sizeof *rrp);
    batch_rows b;
    int bad = batch_rows_init(&b, total);
    char(*msgs)[512] = b.msgs;
    uint8_t **bufs = b.bufs;
    if (!tr || !trp || !rr || !rrp || bad) {
        lunnel_emu_respond_error(resp, 500, "OTSInternalServerError", "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < m->n_tables; i++) {
        const Lunnel__Table__TableInBatchGetRowRequest *tq = m->tables[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->tables[j]->table_name, tq->table_name) == 0) {
                lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                         "Duplicated table name: %s.", tq->table_name);
                goto done;
            }
        lunnel__table__table_in_batch_get_row_response__init(&tr[i]);
        trp[i] = &tr[i];
        tr[i].table_name = tq->table_name;
        tr[i].n_rows = tq->n_primary_key;
        tr[i].rows = &rrp[k];
        lunnel_emu_table *t = lunnel_emu_store_table(api->store, tq->table_name);
        read_opts o = {0};
        if (t &&
            read_opts_from(&o, t, tq->columns_to_get, tq->n_columns_to_get, tq->has_max_versions,
                           tq->max_versions, tq->time_range, tq->has_filter, tq->filter, resp) != 0)
            goto done; /* a bad table request fails the whole request, as the service does */
        const lunnel_emu_pk_schema *schema = NULL;
        size_t n_schema = t ? lunnel_emu_table_pk(t, &schema) : 0;
        for (size_t j = 0; j < tq->n_primary_key; j++, k++) {
            lunnel__table__row_in_batch_get_row_response__init(&rr[k]);
            rrp[k] = &rr[k];
            const char *code = NULL;
            req_row row;
            const lunnel_record *recs;
            uint32_t nr;
            lunnel_codec_error cerr;
            if (!t) {
                code = "OTSObjectNotExist";
                snprintf(msgs[k], sizeof msgs[k], "Requested table does not exist: '%s'.",
                         tq->table_name);
            } else if (lunnel_pb_decode_rows(api->arena, tq->primary_key[j].data,
                                             tq->primary_key[j].len, LUNNEL_PB_LENIENT, &recs, &nr,
                                             &cerr) != LUNNEL_CODEC_OK ||
                       nr != 1) {
                code = "OTSParameterInvalid";
                snprintf(msgs[k], sizeof msgs[k], "Invalid primary key %zu of table '%s'.", j,
                         tq->table_name);
            } else if (data_api_decode_row(api, tq->primary_key[j].data, tq->primary_key[j].len,
                                           "BatchGetRow primary key", &row, resp) != 0) {
                emu_filter_free(o.filter);
                goto done;
            } else if (row.n_pk != n_schema) {
                code = "OTSParameterInvalid";
                snprintf(msgs[k], sizeof msgs[k], "Validate PK size fail. Input: %zu, Meta: %zu.",
                         row.n_pk, n_schema);
            } else {
                const lunnel_emu_row *r = lunnel_emu_table_get(t, row.pk, row.n_pk);
                if (r && row_visible(r, &o)) {
                    lunnel_pb_writer *w = &api->w;
                    lunnel_pb_writer_reset(w);
                    lunnel_pb_write_header(w);
                    encode_read_row(w, t, r, &o);
                    bufs[k] = w->error ? NULL : malloc(w->len);
                    if (bufs[k]) {
                        memcpy(bufs[k], w->buf, w->len);
                        rr[k].has_row = 1;
                        rr[k].row.data = bufs[k];
                        rr[k].row.len = w->len;
                    }
                }
            }
            rr[k].is_ok = code == NULL;
            if (code)
                rr[k].error = batch_rows_error(&b, k, code);
            else
                rr[k].consumed = &consumed_read;
        }
        emu_filter_free(o.filter);
    }
    Lunnel__Table__BatchGetRowResponse r = LUNNEL__TABLE__BATCH_GET_ROW_RESPONSE__INIT;
    r.n_tables = m->n_tables;
    r.tables = trp;
    lunnel_emu_respond_pb(resp, &r.base);
done:
    batch_rows_free(&b);
    free(tr);
    free(trp);
    free(rr);
    free(rrp);
    lunnel__table__batch_get_row_request__free_unpacked(m, NULL);
}

void data_api_register_rows(data_api *api)
{
    lunnel_emu_route_add(api->srv, "/PutRow", put_row, api);
    lunnel_emu_route_add(api->srv, "/UpdateRow", update_row, api);
    lunnel_emu_route_add(api->srv, "/DeleteRow", delete_row, api);
    lunnel_emu_route_add(api->srv, "/BatchWriteRow", batch_write_row, api);
    lunnel_emu_route_add(api->srv, "/GetRow", get_row, api);
    lunnel_emu_route_add(api->srv, "/GetRange", get_range, api);
    lunnel_emu_route_add(api->srv, "/BatchGetRow", batch_get_row, api);
}
