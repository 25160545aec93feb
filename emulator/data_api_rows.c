/* data_api_rows.c: the row operations of lunnel-emulator's data API: PutRow, UpdateRow,
 * DeleteRow, BatchWriteRow (writes, each appending a change record through the store) and
 * GetRow, GetRange (reads, encoding stored rows back to PlainBuffer with timestamps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_api_internal.h"

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

/* Applies one write described by its (decoded) row and condition; fills res. Returns 0 on
 * success, -1 on a store error (res->err, res->msg), -2 when the condition carries a column
 * condition (unsupported). */
static int apply_write(data_api *api, lunnel_emu_table *t, lunnel_emu_action action,
                       const req_row *row, const Lunnel__Table__Condition *cond,
                       const Lunnel__Table__ReturnContent *rc, write_result *res)
{
    memset(res, 0, sizeof *res);
    if (cond && cond->has_column_condition && cond->column_condition.len > 0) {
        res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
        snprintf(res->msg, sizeof res->msg,
                 "Column conditions are not supported by lunnel-emulator.");
        return -1;
    }
    lunnel_emu_condition c =
        cond ? (lunnel_emu_condition)cond->row_existence : LUNNEL_EMU_COND_IGNORE;
    if (c > LUNNEL_EMU_COND_EXPECT_NOT_EXIST) {
        res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
        snprintf(res->msg, sizeof res->msg, "Invalid row existence expectation %d.", (int)c);
        return -1;
    }
    if (action == LUNNEL_EMU_ACTION_UPDATE && c == LUNNEL_EMU_COND_EXPECT_NOT_EXIST) {
        res->err = LUNNEL_EMU_STORE_BAD_ARGUMENT;
        snprintf(res->msg, sizeof res->msg,
                 "Invalid condition: EXPECT_NOT_EXIST while updating row.");
        return -1;
    }
    res->err = lunnel_emu_store_write(api->store, t, action, c, row->pk, row->n_pk, row->cells,
                                      row->n_cells, data_api_now_ms(), res->msg, sizeof res->msg);
    if (res->err) return -1;
    if (rc && rc->has_return_type && rc->return_type == LUNNEL__TABLE__RETURN_TYPE__RT_PK) {
        const lunnel_emu_pk_schema *schema;
        lunnel_emu_table_pk(t, &schema);
        lunnel_pb_writer *w = &api->w;
        lunnel_pb_writer_reset(w);
        lunnel_pb_write_header(w);
        lunnel_pb_begin_row(w);
        lunnel_emu_encode_pk(w, schema, row->pk, row->n_pk);
        lunnel_pb_end_row(w);
        if (!w->error) {
            res->pk_row = malloc(w->len);
            if (res->pk_row) {
                memcpy(res->pk_row, w->buf, w->len);
                res->pk_row_len = w->len;
            }
        }
    }
    return 0;
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
    Lunnel__Table__Error *errs = calloc(total + 1, sizeof *errs);
    char(*msgs)[512] = calloc(total + 1, sizeof *msgs);
    if (!tr || !trp || !rr || !rrp || !errs || !msgs) {
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
            lunnel__table__error__init(&errs[k]);
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
                    if (apply_write(api, t, a, &row, rq->condition, NULL, &res) != 0) {
                        code = lunnel_emu_store_strerror(res.err);
                        snprintf(msgs[k], sizeof msgs[k], "%s", res.msg);
                    }
                }
            }
            rr[k].is_ok = code == NULL;
            if (code) {
                errs[k].code = (char *)code;
                errs[k].message = msgs[k];
                rr[k].error = &errs[k];
            } else {
                rr[k].consumed = &consumed_write;
            }
        }
    }
    Lunnel__Table__BatchWriteRowResponse r = LUNNEL__TABLE__BATCH_WRITE_ROW_RESPONSE__INIT;
    r.n_tables = m->n_tables;
    r.tables = trp;
    lunnel_emu_respond_pb(resp, &r.base);
done:
    free(tr);
    free(trp);
    free(rr);
    free(rrp);
    free(errs);
    free(msgs);
    lunnel__table__batch_write_row_request__free_unpacked(m, NULL);
}

/* ---- reads ------------------------------------------------------------------------------ */

typedef struct read_opts {
    char **columns;
    size_t n_columns;
    int32_t max_versions;
    bool has_range;
    int64_t start_ts, end_ts; /* [start, end) */
} read_opts;

static bool wanted(const read_opts *o, const lunnel_emu_cell *c)
{
    if (o->has_range && (c->ts < o->start_ts || c->ts >= o->end_ts)) return false;
    if (!o->n_columns) return true;
    for (size_t i = 0; i < o->n_columns; i++)
        if (strlen(o->columns[i]) == c->name_len &&
            memcmp(o->columns[i], c->name, c->name_len) == 0)
            return true;
    return false;
}

/* Writes one stored row (no header) with the versions the read asks for. */
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
    for (size_t i = 0; i < n; i++) {
        bool same = i > 0 && cells[i].name_len == cells[i - 1].name_len &&
                    memcmp(cells[i].name, cells[i - 1].name, cells[i].name_len) == 0;
        if (!same) run = 0;
        if (!wanted(o, &cells[i])) continue;
        if (run >= o->max_versions) continue;
        run++;
        lunnel_emu_encode_cell(w, &cells[i]);
    }
    lunnel_pb_end_row(w);
}

static int read_opts_from(read_opts *o, char **cols, size_t n_cols, protobuf_c_boolean has_mv,
                          int32_t mv, const Lunnel__Table__TimeRange *tr, lunnel_emu_response *resp)
{
    memset(o, 0, sizeof *o);
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
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "Neither max_versions nor time_range is specified.");
        return -1;
    }
    if (has_mv && mv <= 0) {
        lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                 "max_versions must be positive, got %d.", mv);
        return -1;
    }
    if (!has_mv) o->max_versions = INT32_MAX;
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
    read_opts o;
    lunnel_emu_table *t = data_api_table(api, m->table_name, resp);
    if (t &&
        data_api_decode_row(api, m->primary_key.data, m->primary_key.len, "GetRow primary key",
                            &row, resp) == 0 &&
        read_opts_from(&o, m->columns_to_get, m->n_columns_to_get, m->has_max_versions,
                       m->max_versions, m->time_range, resp) == 0) {
        const lunnel_emu_pk_schema *schema;
        size_t n_schema = lunnel_emu_table_pk(t, &schema);
        if (row.n_pk != n_schema) {
            lunnel_emu_respond_error(resp, 400, "OTSParameterInvalid",
                                     "Validate PK size fail. Input: %zu, Meta: %zu.", row.n_pk,
                                     n_schema);
        } else {
            const lunnel_emu_row *r = lunnel_emu_table_get(t, row.pk, row.n_pk);
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
    read_opts o;
    lunnel_emu_table *t = data_api_table(api, m->table_name, resp);
    if (t &&
        data_api_decode_row(api, m->inclusive_start_primary_key.data,
                            m->inclusive_start_primary_key.len, "GetRange start primary key",
                            &start, resp) == 0 &&
        data_api_decode_row(api, m->exclusive_end_primary_key.data,
                            m->exclusive_end_primary_key.len, "GetRange end primary key", &end,
                            resp) == 0 &&
        read_opts_from(&o, m->columns_to_get, m->n_columns_to_get, m->has_max_versions,
                       m->max_versions, m->time_range, resp) == 0) {
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
    lunnel__table__get_range_request__free_unpacked(m, NULL);
}

void data_api_register_rows(data_api *api)
{
    lunnel_emu_route_add(api->srv, "/PutRow", put_row, api);
    lunnel_emu_route_add(api->srv, "/UpdateRow", update_row, api);
    lunnel_emu_route_add(api->srv, "/DeleteRow", delete_row, api);
    lunnel_emu_route_add(api->srv, "/BatchWriteRow", batch_write_row, api);
    lunnel_emu_route_add(api->srv, "/GetRow", get_row, api);
    lunnel_emu_route_add(api->srv, "/GetRange", get_range, api);
}
