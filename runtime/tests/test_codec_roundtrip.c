/* test_codec_roundtrip.c: writer -> decoder round trips of every value type (request-only
 * types and ops included), timestamps, delete marker, sequence info, N rows per buffer,
 * empty buffers, ReadRecords batches with origin rows, arena reuse and generations, the
 * writer's misuse checks, and the exact JSON of lunnel_record_tojson. */
#include <stdlib.h>

#include "lunnel/plainbuffer.h"
#include "testutil.h"

static lunnel_value str(const char *s)
{
    return lunnel_value_bytes(LUNNEL_VT_STRING, s, (uint32_t)strlen(s));
}

static void write_sample_row(lunnel_pb_writer *w, int64_t id, int with_seq)
{
    lunnel_value v;
    CHECK_INT(lunnel_pb_begin_row(w), 0);
    v = lunnel_value_int(id);
    CHECK_INT(lunnel_pb_write_pk(w, "id", 2, &v), 0);
    v = lunnel_value_bytes(LUNNEL_VT_BINARY, "\0\1\2", 3);
    CHECK_INT(lunnel_pb_write_pk(w, "bk", 2, &v), 0);
    v = lunnel_value_int(INT64_MIN);
    CHECK_INT(lunnel_pb_write_cell(w, "imin", 4, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_int(INT64_MAX);
    CHECK_INT(lunnel_pb_write_cell(w, "imax", 4, &v, LUNNEL_OP_PUT, 1, 1700000000000LL), 0);
    v = lunnel_value_double(-0.1);
    CHECK_INT(lunnel_pb_write_cell(w, "dbl", 3, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_bool(1);
    CHECK_INT(lunnel_pb_write_cell(w, "t", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_bool(0);
    CHECK_INT(lunnel_pb_write_cell(w, "f", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = str("tab\there \"q\" \xe2\x82\xac");
    CHECK_INT(lunnel_pb_write_cell(w, "s", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = str("");
    CHECK_INT(lunnel_pb_write_cell(w, "empty", 5, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_bytes(LUNNEL_VT_BINARY, "\xff\x00", 2);
    CHECK_INT(lunnel_pb_write_cell(w, "bin", 3, &v, LUNNEL_OP_PUT, 0, 0), 0);
    CHECK_INT(lunnel_pb_write_cell(w, "d1", 2, NULL, LUNNEL_OP_DELETE_ONE_VERSION, 1, 5), 0);
    CHECK_INT(lunnel_pb_write_cell(w, "da", 2, NULL, LUNNEL_OP_DELETE_ALL_VERSIONS, 0, 0), 0);
    if (with_seq) CHECK_INT(lunnel_pb_write_seq(w, 3, 1700000000123456LL, 7), 0);
    CHECK_INT(lunnel_pb_end_row(w), 0);
}

static void check_sample_row(const lunnel_record *r, int64_t id, int with_seq)
{
    CHECK_INT(r->pk_count, 2);
    CHECK_INT(r->col_count, 10);
    if (r->pk_count != 2 || r->col_count != 10) return;
    CHECK_INT(r->pk[0].value.type, LUNNEL_VT_INTEGER);
    CHECK_INT(r->pk[0].value.u.i, id);
    CHECK_INT(r->pk[1].value.type, LUNNEL_VT_BINARY);
    CHECK(r->pk[1].value.len == 3 && memcmp(r->pk[1].value.u.ptr, "\0\1\2", 3) == 0);
    CHECK(r->cols[0].value.u.i == INT64_MIN);
    CHECK(r->cols[1].value.u.i == INT64_MAX);
    CHECK_INT(r->cols[1].has_timestamp, 1);
    CHECK_INT(r->cols[1].timestamp, 1700000000000LL);
    CHECK(r->cols[2].value.type == LUNNEL_VT_DOUBLE && r->cols[2].value.u.d == -0.1);
    CHECK(r->cols[3].value.type == LUNNEL_VT_BOOLEAN && r->cols[3].value.u.i == 1);
    CHECK(r->cols[4].value.type == LUNNEL_VT_BOOLEAN && r->cols[4].value.u.i == 0);
    CHECK_INT(r->cols[5].value.type, LUNNEL_VT_STRING);
    CHECK_INT(r->cols[6].value.len, 0);
    CHECK_INT(r->cols[8].value.type, LUNNEL_VT_NONE);
    CHECK_INT(r->cols[8].op, LUNNEL_OP_DELETE_ONE_VERSION);
    CHECK_INT(r->cols[8].timestamp, 5);
    CHECK_INT(r->cols[9].op, LUNNEL_OP_DELETE_ALL_VERSIONS);
    CHECK_INT(r->cols[9].name_hash, lunnel_record_name_hash("da", 2));
    CHECK(r->cols[9].name_prefix == lunnel_record_name_prefix("da", 2));
    CHECK(r->cols[9].name_prefix == 0x6164u); /* "da" little-endian, zero-padded */
    CHECK_INT(r->has_seq, with_seq);
    if (with_seq) {
        CHECK_INT(r->seq_epoch, 3);
        CHECK_INT(r->seq_timestamp, 1700000000123456LL);
        CHECK_INT(r->seq_row_index, 7);
    }
}

static void test_multi_rows(void)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    CHECK_INT(lunnel_pb_write_header(&w), 0);
    for (int i = 0; i < 50; i++)
        write_sample_row(&w, i, i & 1);
    lunnel_arena *a = lunnel_arena_new();
    const lunnel_record *rows;
    uint32_t n;
    lunnel_codec_error err = {0};
    CHECK_INT(lunnel_pb_decode_rows(a, w.buf, w.len, LUNNEL_PB_STRICT, &rows, &n, &err), 0);
    CHECK_INT(n, 50);
    for (uint32_t i = 0; i < n; i++)
        check_sample_row(&rows[i], i, i & 1);
    /* Arena reuse: same memory again, generation moves on, no growth. */
    uint32_t g = lunnel_arena_generation(a);
    size_t cap = lunnel_arena_capacity(a);
    for (int k = 0; k < 20; k++) {
        lunnel_arena_reset(a);
        CHECK_INT(lunnel_pb_decode_rows(a, w.buf, w.len, LUNNEL_PB_STRICT, &rows, &n, &err), 0);
    }
    CHECK_INT(lunnel_arena_generation(a), g + 20);
    CHECK_INT(*lunnel_arena_live(a), g + 20);
    CHECK_INT(lunnel_arena_capacity(a), cap);
    lunnel_arena_free(a);
    lunnel_pb_writer_free(&w);
}

static void test_request_types(void)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_value v;
    CHECK_INT(lunnel_pb_write_header(&w), 0);
    CHECK_INT(lunnel_pb_begin_row(&w), 0);
    v = lunnel_value_of_type(LUNNEL_VT_INF_MIN);
    CHECK_INT(lunnel_pb_write_pk(&w, "a", 1, &v), 0);
    v = lunnel_value_of_type(LUNNEL_VT_INF_MAX);
    CHECK_INT(lunnel_pb_write_pk(&w, "b", 1, &v), 0);
    v = lunnel_value_of_type(LUNNEL_VT_AUTO_INCREMENT);
    CHECK_INT(lunnel_pb_write_pk(&w, "c", 1, &v), 0);
    v = lunnel_value_of_type(LUNNEL_VT_NULL);
    CHECK_INT(lunnel_pb_write_cell(&w, "n", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_int(3);
    CHECK_INT(lunnel_pb_write_cell(&w, "inc", 3, &v, LUNNEL_OP_INCREMENT, 0, 0), 0);
    CHECK_INT(lunnel_pb_write_delete_marker(&w), 0);
    CHECK_INT(lunnel_pb_end_row(&w), 0);
    /* Padding as the Node SDK sends it: lenient only. */
    size_t good = w.len;
    uint8_t *padded = calloc(1, good + 3);
    memcpy(padded, w.buf, good);
    lunnel_arena *a = lunnel_arena_new();
    const lunnel_record *rows;
    uint32_t n;
    lunnel_codec_error err = {0};
    CHECK_INT(lunnel_pb_decode_rows(a, padded, good + 3, LUNNEL_PB_LENIENT, &rows, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(rows[0].pk[0].value.type, LUNNEL_VT_INF_MIN);
        CHECK_INT(rows[0].pk[1].value.type, LUNNEL_VT_INF_MAX);
        CHECK_INT(rows[0].pk[2].value.type, LUNNEL_VT_AUTO_INCREMENT);
        CHECK_INT(rows[0].cols[0].value.type, LUNNEL_VT_NULL);
        CHECK_INT(rows[0].cols[1].op, LUNNEL_OP_INCREMENT);
        CHECK_INT(rows[0].cols[1].value.u.i, 3);
        CHECK_INT(rows[0].delete_marker, 1);
    }
    CHECK_INT(lunnel_pb_decode_rows(a, padded, good + 3, LUNNEL_PB_STRICT, &rows, &n, &err),
              LUNNEL_CODEC_TRAILING);
    padded[good + 1] = 7; /* non-zero padding: rejected even by the lenient decoder */
    memset(&err, 0, sizeof err);
    CHECK_INT(lunnel_pb_decode_rows(a, padded, good + 3, LUNNEL_PB_LENIENT, &rows, &n, &err),
              LUNNEL_CODEC_TRAILING);
    CHECK_INT(err.offset, good + 1);
    printf("  non-zero padding: %s\n", err.message);
    free(padded);
    /* Empty buffers. */
    CHECK_INT(lunnel_pb_decode_rows(a, w.buf, 0, LUNNEL_PB_ALLOW_EMPTY, &rows, &n, &err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(lunnel_pb_decode_rows(a, w.buf, 4, LUNNEL_PB_ALLOW_EMPTY, &rows, &n, &err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(lunnel_pb_decode_rows(a, w.buf, 4, LUNNEL_PB_STRICT, &rows, &n, &err),
              LUNNEL_CODEC_EMPTY);
    CHECK_INT(lunnel_pb_decode_rows(a, w.buf, 0, LUNNEL_PB_STRICT, &rows, &n, &err),
              LUNNEL_CODEC_TRUNCATED);
    lunnel_arena_free(a);
    lunnel_pb_writer_free(&w);
}

static void test_writer_misuse(void)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_value v = lunnel_value_int(1);
    CHECK_INT(lunnel_pb_begin_row(&w), LUNNEL_CODEC_USAGE);    /* no header */
    CHECK_INT(lunnel_pb_write_header(&w), LUNNEL_CODEC_USAGE); /* sticky */
    lunnel_pb_writer_reset(&w);
    CHECK_INT(lunnel_pb_write_header(&w), 0);
    CHECK_INT(lunnel_pb_begin_row(&w), 0);
    CHECK_INT(lunnel_pb_write_cell(&w, "c", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    CHECK_INT(lunnel_pb_write_pk(&w, "k", 1, &v), LUNNEL_CODEC_USAGE); /* pk after data */
    CHECK_INT(w.error, LUNNEL_CODEC_USAGE);
    lunnel_pb_writer_reset(&w);
    CHECK_INT(lunnel_pb_write_header(&w), 0);
    CHECK_INT(lunnel_pb_begin_row(&w), 0);
    CHECK_INT(lunnel_pb_write_cell(&w, "c", 1, &v, 99, 0, 0), LUNNEL_CODEC_USAGE); /* bad op */
    lunnel_pb_writer_free(&w);
}

static void test_batch_and_json(void)
{
    /* A batch laid out like a ReadRecords response: [junk][rec0][origin0][rec1]. */
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    uint8_t data[4096];
    size_t used = 3;
    memset(data, 0xEE, sizeof data);
    lunnel_record_range rg[2];
    memset(rg, 0, sizeof rg);
    lunnel_value v;

    CHECK_INT(lunnel_pb_write_header(&w), 0);
    CHECK_INT(lunnel_pb_begin_row(&w), 0);
    v = lunnel_value_int(9007199254740993LL); /* 2^53 + 1: exact in JSON */
    CHECK_INT(lunnel_pb_write_pk(&w, "id", 2, &v), 0);
    v = str("caf\xc3\xa9 \x01\xff");
    CHECK_INT(lunnel_pb_write_cell(&w, "name", 4, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_double(0.1);
    CHECK_INT(lunnel_pb_write_cell(&w, "d", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    v = lunnel_value_bytes(LUNNEL_VT_BINARY, "\xfb\xff", 2);
    CHECK_INT(lunnel_pb_write_cell(&w, "b", 1, &v, LUNNEL_OP_PUT, 0, 0), 0);
    CHECK_INT(lunnel_pb_write_cell(&w, "gone", 4, NULL, LUNNEL_OP_DELETE_ALL_VERSIONS, 0, 0), 0);
    CHECK_INT(lunnel_pb_write_seq(&w, 1, 1700000000000001LL, 2), 0);
    CHECK_INT(lunnel_pb_end_row(&w), 0);
    memcpy(data + used, w.buf, w.len);
    rg[0] = (lunnel_record_range){
        .offset = (uint32_t)used, .len = (uint32_t)w.len, .action = LUNNEL_ACTION_UPDATE};
    used += w.len + 2;

    lunnel_pb_writer_reset(&w);
    CHECK_INT(lunnel_pb_write_header(&w), 0);
    CHECK_INT(lunnel_pb_begin_row(&w), 0);
    v = lunnel_value_int(1);
    CHECK_INT(lunnel_pb_write_pk(&w, "id", 2, &v), 0);
    v = str("old");
    CHECK_INT(lunnel_pb_write_cell(&w, "name", 4, &v, LUNNEL_OP_PUT, 0, 0), 0);
    CHECK_INT(lunnel_pb_end_row(&w), 0);
    memcpy(data + used, w.buf, w.len);
    rg[0].has_origin = 1;
    rg[0].origin_offset = (uint32_t)used;
    rg[0].origin_len = (uint32_t)w.len;
    used += w.len;

    lunnel_pb_writer_reset(&w);
    CHECK_INT(lunnel_pb_write_header(&w), 0);
    CHECK_INT(lunnel_pb_begin_row(&w), 0);
    v = lunnel_value_int(-5);
    CHECK_INT(lunnel_pb_write_pk(&w, "id", 2, &v), 0);
    CHECK_INT(lunnel_pb_write_delete_marker(&w), 0);
    CHECK_INT(lunnel_pb_end_row(&w), 0);
    memcpy(data + used, w.buf, w.len);
    rg[1] = (lunnel_record_range){
        .offset = (uint32_t)used, .len = (uint32_t)w.len, .action = LUNNEL_ACTION_DELETE};
    used += w.len;

    lunnel_arena *a = lunnel_arena_new();
    const lunnel_batch *b;
    lunnel_codec_error err = {0};
    CHECK_INT(lunnel_pb_decode_batch(a, data, used, rg, 2, LUNNEL_PB_STRICT, &b, &err), 0);
    CHECK_INT(b->count, 2);
    CHECK_INT(b->generation, lunnel_arena_generation(a));
    CHECK(b->live_generation == lunnel_arena_live(a));
    CHECK_INT(b->records[0].action, LUNNEL_ACTION_UPDATE);
    CHECK_INT(b->records[0].has_old, 1);
    CHECK_INT(b->records[0].old_count, 1);
    CHECK_INT(b->records[0].offset, 3 + 4);
    CHECK_INT(b->records[1].action, LUNNEL_ACTION_DELETE);
    CHECK_INT(b->records[1].delete_marker, 1);
    CHECK_INT(b->records[1].has_old, 0);

    char js[512];
    size_t need = lunnel_record_tojson(&b->records[0], js, sizeof js);
    CHECK_STR(js, "{\"action\":\"UPDATE\",\"pk\":{\"id\":9007199254740993},"
                  "\"cols\":{\"name\":{\"string_base64\":\"Y2Fmw6kgAf8=\"},\"d\":0.1,"
                  "\"b\":{\"binary\":\"+/8=\"}},"
                  "\"deleted\":[\"gone\"],\"old\":{\"name\":\"old\"},"
                  "\"seq\":{\"epoch\":1,\"timestamp\":1700000000000001,\"row_index\":2}}");
    CHECK_INT(need, strlen(js));
    char small[10];
    CHECK_INT(lunnel_record_tojson(&b->records[0], small, sizeof small), need);
    CHECK_INT(strlen(small), 9);
    lunnel_record_tojson(&b->records[1], js, sizeof js);
    CHECK_STR(js, "{\"action\":\"DELETE\",\"pk\":{\"id\":-5},\"cols\":{},\"delete_marker\":true}");

    /* Errors carry the record index and the absolute offset. */
    data[rg[1].offset + rg[1].len - 1] ^= 0x40; /* row checksum */
    CHECK_INT(lunnel_pb_decode_batch(a, data, used, rg, 2, LUNNEL_PB_STRICT, &b, &err),
              LUNNEL_CODEC_CHECKSUM);
    CHECK_INT(err.record_index, 1);
    CHECK_INT(err.offset, rg[1].offset + rg[1].len - 2);
    CHECK(strncmp(err.message, "record 1 at byte ", 17) == 0);
    rg[1].len += 1000; /* a range outside the batch */
    CHECK_INT(lunnel_pb_decode_batch(a, data, used, rg, 2, LUNNEL_PB_STRICT, &b, &err),
              LUNNEL_CODEC_BAD_LENGTH);
    lunnel_arena_free(a);
    lunnel_pb_writer_free(&w);

    /* ABI helpers. */
    CHECK_INT(lunnel_record_abi_version(), LUNNEL_RECORD_ABI_VERSION);
    CHECK_INT(lunnel_record_abi_layout("record", NULL), sizeof(lunnel_record));
    CHECK_INT(lunnel_record_abi_layout("column", "value"), 40);
    CHECK_INT(sizeof(lunnel_column), 56);
    CHECK_INT(lunnel_record_abi_layout("column", "nope"), -1);
    CHECK_STR(lunnel_record_type_name(LUNNEL_VT_BINARY), "BINARY");
    CHECK_STR(lunnel_record_op_name(LUNNEL_OP_DELETE_ONE_VERSION), "DELETE_ONE_VERSION");
    CHECK_STR(lunnel_record_action_name(LUNNEL_ACTION_PUT), "PUT");
}

/* More columns than the decoder's initial scratch capacity (32). */
static void test_wide_row(void)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_pb_write_header(&w);
    lunnel_pb_begin_row(&w);
    lunnel_value v = lunnel_value_int(1);
    lunnel_pb_write_pk(&w, "id", 2, &v);
    char name[16];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "column_%03d", i); /* > 8 bytes: prefix + hash path */
        v = lunnel_value_int(i);
        lunnel_pb_write_cell(&w, name, strlen(name), &v, LUNNEL_OP_PUT, 0, 0);
    }
    CHECK_INT(lunnel_pb_end_row(&w), 0);
    lunnel_arena *a = lunnel_arena_new();
    const lunnel_record *rows;
    uint32_t n;
    CHECK_INT(lunnel_pb_decode_rows(a, w.buf, w.len, LUNNEL_PB_STRICT, &rows, &n, NULL), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(rows[0].col_count, 300);
        int bad = 0;
        for (int i = 0; i < 300 && i < (int)rows[0].col_count; i++) {
            snprintf(name, sizeof name, "column_%03d", i);
            const lunnel_column *c = &rows[0].cols[i];
            if (c->value.u.i != i || c->name_len != strlen(name) ||
                memcmp(c->name, name, c->name_len) != 0 ||
                c->name_prefix != lunnel_record_name_prefix(name, strlen(name)))
                bad++;
        }
        CHECK_INT(bad, 0);
    }
    lunnel_arena_free(a);
    lunnel_pb_writer_free(&w);
}

int main(void)
{
    test_wide_row();
    test_multi_rows();
    test_request_types();
    test_writer_misuse();
    test_batch_and_json();
    TEST_DONE();
}
