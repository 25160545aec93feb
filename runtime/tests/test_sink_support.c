/* test_sink_support.c: the C half of the Lua sinks (lunnel/sink_support.h), alone: the
 * BatchWriteRow builder (row changes per action with ops and timestamps, protobuf body, the
 * 200-row limit), per-row response handling (retriable vs fatal codes, keeping failed rows),
 * data API error bodies, the signed headers (re-verified with lunnel_sign_request) and a
 * transport failure of the blocking HTTP client. Links the whole liblunnel (sinks sit across
 * net and codec). */
#include <stdlib.h>
#include <string.h>

#include <proto/table_store.pb-c.h>

#include "lunnel/plainbuffer.h"
#include "lunnel/sign.h"
#include "lunnel/sink_support.h"
#include "testutil.h"

/* Decodes one row written by the writer w into a record (arena-owned). */
static const lunnel_record *decode_one(lunnel_arena *a, const uint8_t *buf, size_t len, int action)
{
    const lunnel_record *rows;
    uint32_t n;
    lunnel_codec_error err;
    if (lunnel_pb_decode_rows(a, buf, len, LUNNEL_PB_STRICT, &rows, &n, &err) != 0 || n != 1) {
        fprintf(stderr, "decode: %s\n", err.message);
        return NULL;
    }
    ((lunnel_record *)rows)->action = (uint8_t)action; /* as a ReadRecords batch would carry */
    return rows;
}

/* A source record: pk id=<id>, then the given cells. */
static const lunnel_record *make(lunnel_arena *a, lunnel_pb_writer *w, int action, int64_t id,
                                 int with_cells)
{
    lunnel_pb_writer_reset(w);
    lunnel_pb_write_header(w);
    lunnel_pb_begin_row(w);
    lunnel_value pk = lunnel_value_int(id);
    lunnel_pb_write_pk(w, "id", 2, &pk);
    if (with_cells) {
        lunnel_value s = lunnel_value_bytes(LUNNEL_VT_STRING, "hello", 5);
        lunnel_pb_write_cell(w, "s", 1, &s, LUNNEL_OP_PUT, 1, 1000);
        if (action == LUNNEL_ACTION_UPDATE) {
            lunnel_pb_write_cell(w, "v", 1, NULL, LUNNEL_OP_DELETE_ONE_VERSION, 1, 900);
            lunnel_pb_write_cell(w, "g", 1, NULL, LUNNEL_OP_DELETE_ALL_VERSIONS, 0, 0);
        }
    }
    if (action == LUNNEL_ACTION_DELETE) lunnel_pb_write_delete_marker(w);
    lunnel_pb_write_seq(w, 1, 1700000000000000, 3); /* stream records carry it; not sent on */
    lunnel_pb_end_row(w);
    if (w->error) return NULL;
    uint8_t *copy = lunnel_arena_alloc(a, w->len);
    memcpy(copy, w->buf, w->len);
    return decode_one(a, copy, w->len, action);
}

static void test_encode(void)
{
    lunnel_arena *a = lunnel_arena_new();
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_sink_bwr *b = lunnel_sink_bwr_new("target");
    CHECK_INT(lunnel_sink_bwr_add(b, make(a, &w, LUNNEL_ACTION_PUT, 1, 1)), 0);
    CHECK_INT(lunnel_sink_bwr_add(b, make(a, &w, LUNNEL_ACTION_UPDATE, 2, 1)), 0);
    CHECK_INT(lunnel_sink_bwr_add(b, make(a, &w, LUNNEL_ACTION_DELETE, 3, 0)), 0);
    CHECK_INT(lunnel_sink_bwr_add(b, make(a, &w, LUNNEL_ACTION_UPDATE, 4, 0)),
              1); /* nothing to apply */
    CHECK_INT(lunnel_sink_bwr_count(b), 3);

    const uint8_t *body;
    size_t len;
    CHECK_INT(lunnel_sink_bwr_encode(b, &body, &len), LUNNEL_SINK_OK);
    Lunnel__Table__BatchWriteRowRequest *m =
        lunnel__table__batch_write_row_request__unpack(NULL, len, body);
    CHECK(m != NULL);
    if (m) {
        CHECK_INT(m->n_tables, 1);
        CHECK_STR(m->tables[0]->table_name, "target");
        CHECK_INT(m->tables[0]->n_rows, 3);
        int types[3] = {LUNNEL__TABLE__OPERATION_TYPE__PUT, LUNNEL__TABLE__OPERATION_TYPE__UPDATE,
                        LUNNEL__TABLE__OPERATION_TYPE__DELETE};
        for (size_t i = 0; i < 3 && i < m->tables[0]->n_rows; i++) {
            const Lunnel__Table__RowInBatchWriteRowRequest *rq = m->tables[0]->rows[i];
            CHECK_INT(rq->type, types[i]);
            CHECK_INT(rq->condition->row_existence,
                      LUNNEL__TABLE__ROW_EXISTENCE_EXPECTATION__IGNORE);
            const lunnel_record *r = decode_one(a, rq->row_change.data, rq->row_change.len, 0);
            CHECK(r != NULL);
            if (!r) continue;
            CHECK_INT(r->has_seq, 0); /* sequence info is not replayed */
            CHECK_INT(r->pk[0].value.u.i, (int64_t)i + 1);
            if (i == 0) {
                CHECK_INT(r->col_count, 1);
                CHECK_INT(r->cols[0].timestamp, 1000);
                CHECK_INT(r->cols[0].has_timestamp, 1);
            } else if (i == 1) {
                CHECK_INT(r->col_count, 3);
                CHECK_INT(r->cols[1].op, LUNNEL_OP_DELETE_ONE_VERSION);
                CHECK_INT(r->cols[1].timestamp, 900);
                CHECK_INT(r->cols[2].op, LUNNEL_OP_DELETE_ALL_VERSIONS);
                CHECK_INT(r->cols[2].has_timestamp, 0);
            } else {
                CHECK_INT(r->delete_marker, 1);
                CHECK_INT(r->col_count, 0);
            }
        }
        lunnel__table__batch_write_row_request__free_unpacked(m, NULL);
    }

    /* the service's limit */
    lunnel_sink_bwr_clear(b);
    const lunnel_record *one = make(a, &w, LUNNEL_ACTION_PUT, 7, 1);
    for (int i = 0; i < LUNNEL_SINK_BWR_MAX_ROWS; i++)
        lunnel_sink_bwr_add(b, one);
    CHECK_INT(lunnel_sink_bwr_count(b), LUNNEL_SINK_BWR_MAX_ROWS);
    CHECK_INT(lunnel_sink_bwr_add(b, one), -LUNNEL_SINK_USAGE);
    CHECK(strstr(lunnel_sink_bwr_message(b), "at most 200") != NULL);

    lunnel_sink_bwr_free(b);
    lunnel_pb_writer_free(&w);
    lunnel_arena_free(a);
}

/* Packs a response with one row per entry of codes (NULL = ok). */
static size_t response(const char *const *codes, size_t n, uint8_t *out)
{
    Lunnel__Table__RowInBatchWriteRowResponse rr[8], *rp[8];
    Lunnel__Table__Error e[8];
    for (size_t i = 0; i < n; i++) {
        lunnel__table__row_in_batch_write_row_response__init(&rr[i]);
        lunnel__table__error__init(&e[i]);
        rr[i].is_ok = codes[i] == NULL;
        if (codes[i]) {
            e[i].code = (char *)codes[i];
            e[i].message = "why";
            rr[i].error = &e[i];
        }
        rp[i] = &rr[i];
    }
    Lunnel__Table__TableInBatchWriteRowResponse t =
        LUNNEL__TABLE__TABLE_IN_BATCH_WRITE_ROW_RESPONSE__INIT;
    t.table_name = "target";
    t.n_rows = n;
    t.rows = rp;
    Lunnel__Table__TableInBatchWriteRowResponse *tp = &t;
    Lunnel__Table__BatchWriteRowResponse m = LUNNEL__TABLE__BATCH_WRITE_ROW_RESPONSE__INIT;
    m.n_tables = 1;
    m.tables = &tp;
    return lunnel__table__batch_write_row_response__pack(&m, out);
}

static void test_response(void)
{
    lunnel_arena *a = lunnel_arena_new();
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_sink_bwr *b = lunnel_sink_bwr_new("target");
    for (int i = 1; i <= 3; i++)
        lunnel_sink_bwr_add(b, make(a, &w, LUNNEL_ACTION_PUT, i, 1));
    const uint8_t *body;
    size_t len;
    lunnel_sink_bwr_encode(b, &body, &len);
    Lunnel__Table__BatchWriteRowRequest *before =
        lunnel__table__batch_write_row_request__unpack(NULL, len, body);
    uint8_t resp[1024];
    int fatal = -1;

    const char *busy[3] = {NULL, "OTSServerBusy", NULL};
    size_t rl = response(busy, 3, resp);
    CHECK_INT(lunnel_sink_bwr_check_response(b, resp, rl, &fatal), 1);
    CHECK_INT(fatal, 0);
    CHECK_STR(lunnel_sink_bwr_message(b), "row 1: OTSServerBusy: why");
    lunnel_sink_bwr_keep_failed(b);
    CHECK_INT(lunnel_sink_bwr_count(b), 1);
    CHECK_INT(lunnel_sink_bwr_encode(b, &body, &len), LUNNEL_SINK_OK);
    Lunnel__Table__BatchWriteRowRequest *after =
        lunnel__table__batch_write_row_request__unpack(NULL, len, body);
    CHECK(after && before && after->tables[0]->n_rows == 1 &&
          after->tables[0]->rows[0]->row_change.len == before->tables[0]->rows[1]->row_change.len &&
          memcmp(after->tables[0]->rows[0]->row_change.data,
                 before->tables[0]->rows[1]->row_change.data,
                 before->tables[0]->rows[1]->row_change.len) == 0);
    if (after) lunnel__table__batch_write_row_request__free_unpacked(after, NULL);
    if (before) lunnel__table__batch_write_row_request__free_unpacked(before, NULL);

    const char *bad[1] = {"OTSParameterInvalid"};
    rl = response(bad, 1, resp);
    CHECK_INT(lunnel_sink_bwr_check_response(b, resp, rl, &fatal), 1);
    CHECK_INT(fatal, 1);
    CHECK_STR(lunnel_sink_bwr_message(b), "row 0: OTSParameterInvalid: why");

    const char *ok2[2] = {NULL, NULL};
    rl = response(ok2, 2, resp); /* two results for one row */
    CHECK_INT(lunnel_sink_bwr_check_response(b, resp, rl, &fatal), -1);
    CHECK(strstr(lunnel_sink_bwr_message(b), "rows") != NULL);
    CHECK_INT(lunnel_sink_bwr_check_response(b, (const uint8_t *)"\xff\xff\xff", 3, &fatal), -1);
    const char *ok1[1] = {NULL};
    rl = response(ok1, 1, resp);
    CHECK_INT(lunnel_sink_bwr_check_response(b, resp, rl, &fatal), 0);

    lunnel_sink_bwr_free(b);
    lunnel_pb_writer_free(&w);
    lunnel_arena_free(a);
}

static void test_errors_and_headers(void)
{
    char msg[256];
    uint8_t buf[256];
    Lunnel__Table__Error e = LUNNEL__TABLE__ERROR__INIT;
    e.code = "OTSServerBusy";
    e.message = "slow down";
    size_t n = lunnel__table__error__pack(&e, buf);
    CHECK_INT(lunnel_sink_ots_error(buf, n, msg, sizeof msg), 1);
    CHECK_STR(msg, "OTSServerBusy: slow down");
    e.code = "OTSAuthFailed";
    n = lunnel__table__error__pack(&e, buf);
    CHECK_INT(lunnel_sink_ots_error(buf, n, msg, sizeof msg), 0);
    CHECK_INT(lunnel_sink_ots_error((const uint8_t *)"<html>", 6, msg, sizeof msg), 0);
    CHECK_STR(msg, "unparsable error body (6 bytes)");

    char hdr[2048];
    const char *body = "payload";
    CHECK_INT(lunnel_sink_ots_headers("/BatchWriteRow", "inst", "ak", "sk", "tok", body, 7, hdr,
                                      sizeof hdr),
              LUNNEL_SINK_OK);
    /* parse the lines back and verify the signature with the shared signer */
    lunnel_header hs[8];
    char *names[8], *vals[8], *sig = NULL;
    size_t k = 0;
    for (char *line = strtok(hdr, "\n"); line && k < 8; line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        if (strcmp(line, "x-ots-signature") == 0) {
            sig = colon + 2;
            continue;
        }
        names[k] = line;
        vals[k] = colon + 2;
        hs[k].name = names[k];
        hs[k].value = vals[k];
        k++;
    }
    CHECK_INT(
        k, 7); /* date, apiversion, accesskeyid, instancename, contentmd5, ststoken, Content-Type */
    char want[LUNNEL_SIGN_B64_LEN], md5[LUNNEL_MD5_B64_LEN];
    lunnel_sign_request("sk", "/BatchWriteRow", hs, k, want);
    CHECK(sig && strcmp(sig, want) == 0);
    lunnel_sign_content_md5(body, 7, md5);
    int md5_ok = 0, api_ok = 0;
    for (size_t i = 0; i < k; i++) {
        if (!strcmp(names[i], "x-ots-contentmd5")) md5_ok = !strcmp(vals[i], md5);
        if (!strcmp(names[i], "x-ots-apiversion")) api_ok = !strcmp(vals[i], "2015-12-31");
    }
    CHECK(md5_ok && api_ok);
    CHECK_INT(lunnel_sink_ots_headers("/x", "i", "a", "s", NULL, "", 0, hdr, 40),
              LUNNEL_SINK_USAGE);
}

static void test_http_transport_error(void)
{
    lunnel_sink_http *h = lunnel_sink_http_new();
    CHECK(h != NULL);
    if (!h) return;
    long status = -1;
    /* port 1 on loopback: nothing listens, the connection is refused at once */
    CHECK_INT(
        lunnel_sink_http_post(h, "http://127.0.0.1:1/x", "A: b\nC: d", "x", 1, 2000, NULL, &status),
        LUNNEL_SINK_TRANSPORT);
    CHECK(lunnel_sink_http_error(h)[0] != 0);
    CHECK_INT(status, 0);
    size_t len = 99;
    lunnel_sink_http_body(h, &len);
    CHECK_INT(len, 0);
    CHECK_INT(lunnel_sink_http_post(h, NULL, NULL, NULL, 0, 0, NULL, &status), LUNNEL_SINK_USAGE);
    lunnel_sink_http_free(h);
    CHECK_STR(lunnel_sink_strerror(LUNNEL_SINK_TRANSPORT), "transport error");
    CHECK_STR(lunnel_sink_strerror(99), "?");
}

int main(void)
{
    test_encode();
    test_response();
    test_errors_and_headers();
    test_http_transport_error();
    TEST_DONE();
}
