/* test_codec_scan.c: the hand-written ReadRecordsResponse scanner against responses serialized
 * by protobuf-c (proto/tunnel_service_api.proto): ranges point at exactly the record bytes,
 * next_token / may_more_record (absent, true, false) come out right, unknown fields of every
 * wire type are skipped, every truncation and many byte flips are either rejected with an
 * offset or accepted only where protobuf-c itself accepts the same bytes with the same
 * content, and the scanned ranges feed lunnel_pb_decode_batch. */
#include <stdlib.h>

#include <proto/tunnel_service_api.pb-c.h>

#include "lunnel/plainbuffer.h"
#include "lunnel/readrecords.h"
#include "testutil.h"

/* A PlainBuffer row with pk id=i and one string column. Caller frees *out. */
static size_t make_row(int64_t id, const char *s, uint8_t **out)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_value v = lunnel_value_int(id);
    lunnel_pb_write_header(&w);
    lunnel_pb_begin_row(&w);
    lunnel_pb_write_pk(&w, "id", 2, &v);
    v = lunnel_value_bytes(LUNNEL_VT_STRING, s, (uint32_t)strlen(s));
    lunnel_pb_write_cell(&w, "s", 1, &v, LUNNEL_OP_PUT, 0, 0);
    lunnel_pb_write_seq(&w, 0, 1000 + id, (int32_t)id);
    lunnel_pb_end_row(&w);
    *out = w.buf; /* ownership moves to the caller */
    return w.len;
}

/* Serializes a response of n records (every third with an origin row). */
static uint8_t *make_response(int n, int may_more, const char *token, size_t *len)
{
    Lunnel__Tunnel__ReadRecordsResponse resp = LUNNEL__TUNNEL__READ_RECORDS_RESPONSE__INIT;
    Lunnel__Tunnel__Record *recs = calloc((size_t)n + 1, sizeof *recs);
    Lunnel__Tunnel__Record **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    for (int i = 0; i < n; i++) {
        Lunnel__Tunnel__Record r = LUNNEL__TUNNEL__RECORD__INIT;
        recs[i] = r;
        recs[i].action_type = (Lunnel__Tunnel__ActionType)(1 + i % 3);
        recs[i].record.len = make_row(i, "value", &recs[i].record.data);
        if (i % 3 == 1) {
            recs[i].has_origin_record = 1;
            recs[i].origin_record.len = make_row(i, "old", &recs[i].origin_record.data);
        }
        ptrs[i] = &recs[i];
    }
    resp.n_records = (size_t)n;
    resp.records = ptrs;
    resp.next_token = (char *)token;
    if (may_more >= 0) {
        resp.has_may_more_record = 1;
        resp.may_more_record = may_more;
    }
    *len = lunnel__tunnel__read_records_response__get_packed_size(&resp);
    uint8_t *buf = malloc(*len + 64);
    lunnel__tunnel__read_records_response__pack(&resp, buf);
    for (int i = 0; i < n; i++) {
        free(recs[i].record.data);
        free(recs[i].origin_record.data);
    }
    free(recs);
    free(ptrs);
    return buf;
}

/* Scans a private exact-size copy (ASan catches over-reads); cross-checks with protobuf-c. */
static int scan_copy(lunnel_rr_response *r, const uint8_t *src, size_t len, lunnel_codec_error *err,
                     int *disagree)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, src, len);
    int rc = lunnel_rr_scan(r, copy, len, err);
    Lunnel__Tunnel__ReadRecordsResponse *m =
        lunnel__tunnel__read_records_response__unpack(NULL, len, copy);
    if (rc == 0) {
        /* Whatever we accept, protobuf-c accepts with the same content. */
        if (!m || m->n_records != r->count || strlen(m->next_token) != r->next_token_len ||
            memcmp(m->next_token, r->next_token, r->next_token_len) != 0 ||
            (m->has_may_more_record ? (int)m->may_more_record : -1) != r->may_more_record) {
            (*disagree)++;
        } else {
            for (size_t i = 0; i < m->n_records; i++) {
                const lunnel_record_range *g = &r->records[i];
                if (m->records[i]->record.len != g->len ||
                    memcmp(m->records[i]->record.data, copy + g->offset, g->len) != 0 ||
                    (int)m->records[i]->action_type != g->action ||
                    m->records[i]->has_origin_record != g->has_origin)
                    (*disagree)++;
            }
        }
    } else {
        CHECK(err->message[0] != '\0');
        CHECK(err->offset <= len);
    }
    if (m) lunnel__tunnel__read_records_response__free_unpacked(m, NULL);
    free(copy);
    return rc;
}

int main(void)
{
    lunnel_rr_response r;
    lunnel_rr_init(&r);
    lunnel_codec_error err;
    int disagree = 0;
    size_t len;

    /* may_more_record: true, false, absent; zero and many records. */
    const int mm[3] = {1, 0, -1};
    for (int k = 0; k < 3; k++) {
        uint8_t *buf = make_response(k * 40, mm[k], "tok-abc", &len);
        CHECK_INT(scan_copy(&r, buf, len, &err, &disagree), 0);
        CHECK_INT(r.may_more_record, mm[k]);
        CHECK_INT(r.count, k * 40);
        free(buf);
    }
    CHECK_INT(disagree, 0);

    /* Ranges feed the batch decoder. */
    uint8_t *buf = make_response(7, 1, "next", &len);
    CHECK_INT(lunnel_rr_scan(&r, buf, len, &err), 0);
    CHECK(r.next_token_len == 4 && memcmp(r.next_token, "next", 4) == 0);
    lunnel_arena *a = lunnel_arena_new();
    const lunnel_batch *b;
    CHECK_INT(lunnel_pb_decode_batch(a, buf, len, r.records, r.count, LUNNEL_PB_STRICT, &b, &err),
              0);
    CHECK_INT(b->count, 7);
    for (uint32_t i = 0; i < b->count; i++) {
        CHECK_INT(b->records[i].action, 1 + i % 3);
        CHECK_INT(b->records[i].pk[0].value.u.i, i);
        CHECK_INT(b->records[i].seq_row_index, i);
        CHECK_INT(b->records[i].has_old, i % 3 == 1);
    }
    CHECK(b->records[1].old_count == 1 && b->records[1].old[0].value.len == 3);

    /* Every truncation: rejected, or accepted exactly where protobuf-c agrees (the cut just
     * before may_more_record leaves a complete message). */
    int accepted = 0;
    for (size_t n = 0; n < len; n++)
        if (scan_copy(&r, buf, n, &err, &disagree) == 0) accepted++;
    CHECK_INT(accepted, 1);
    CHECK_INT(disagree, 0);

    /* Byte flips: never a crash, never accepted with content protobuf-c disagrees with. */
    for (size_t i = 0; i < len; i++)
        for (int x = 1; x < 256; x += 51) {
            uint8_t *m = malloc(len);
            memcpy(m, buf, len);
            m[i] ^= (uint8_t)x;
            scan_copy(&r, m, len, &err, &disagree);
            free(m);
        }
    CHECK_INT(disagree, 0);

    /* Unknown fields of each wire type, top level and inside a Record. */
    {
        uint8_t row[256];
        uint8_t *rb;
        size_t rl = make_row(5, "x", &rb);
        memcpy(row, rb, rl);
        free(rb);
        uint8_t msg[512];
        size_t n = 0;
        msg[n++] = (15 << 3) | 0; /* unknown varint */
        msg[n++] = 0x80, msg[n++] = 0x01;
        msg[n++] = 0x0A; /* records, len below */
        size_t lenpos = n++;
        size_t start = n;
        msg[n++] = (9 << 3) | 5; /* unknown fixed32 inside Record */
        memset(msg + n, 0xAB, 4), n += 4;
        msg[n++] = 0x08, msg[n++] = 0x02;        /* action_type UPDATE */
        msg[n++] = 0x12, msg[n++] = (uint8_t)rl; /* record */
        memcpy(msg + n, row, rl), n += rl;
        msg[n++] = (10 << 3) | 1; /* unknown fixed64 inside Record */
        memset(msg + n, 0xCD, 8), n += 8;
        msg[lenpos] = (uint8_t)(n - start);
        msg[n++] = (14 << 3) | 2, msg[n++] = 3; /* unknown bytes */
        memcpy(msg + n, "zzz", 3), n += 3;
        msg[n++] = 0x12, msg[n++] = 1, msg[n++] = 'T'; /* next_token */
        msg[n++] = 0x18, msg[n++] = 0x00;              /* may_more_record false */
        int urc = scan_copy(&r, msg, n, &err, &disagree);
        if (urc) printf("  unknown fields: %s\n", err.message);
        CHECK_INT(urc, 0);
        CHECK_INT(r.count, 1);
        CHECK_INT(r.records[0].action, 2);
        CHECK_INT(r.records[0].offset, start + 5 + 2 + 2);
        CHECK_INT(r.records[0].len, rl);
        CHECK_INT(r.may_more_record, 0);
        CHECK_INT(disagree, 0);

        /* Malformed: group wire type, 11-byte varint, missing next_token, bad action. */
        static const uint8_t group[] = {(4 << 3) | 3, 0x12, 0x01, 'T'};
        CHECK_INT(lunnel_rr_scan(&r, group, sizeof group, &err), LUNNEL_CODEC_PROTOBUF);
        static const uint8_t longv[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
        CHECK_INT(lunnel_rr_scan(&r, longv, sizeof longv, &err), LUNNEL_CODEC_PROTOBUF);
        CHECK_INT(err.offset, 1);
        static const uint8_t notoken[] = {0x18, 0x01};
        CHECK_INT(lunnel_rr_scan(&r, notoken, sizeof notoken, &err), LUNNEL_CODEC_MISSING);
        static const uint8_t badact[] = {0x0A, 0x05, 0x08, 0x07, 0x12, 0x01, 0x00, 0x12, 0x00};
        CHECK_INT(lunnel_rr_scan(&r, badact, sizeof badact, &err), LUNNEL_CODEC_BAD_VALUE);
        CHECK_INT(err.record_index, 0);
        static const uint8_t norecord[] = {0x0A, 0x02, 0x08, 0x01, 0x12, 0x00};
        CHECK_INT(lunnel_rr_scan(&r, norecord, sizeof norecord, &err), LUNNEL_CODEC_MISSING);
        static const uint8_t overlong[] = {0x12, 0x05, 'a'};
        CHECK_INT(lunnel_rr_scan(&r, overlong, sizeof overlong, &err), LUNNEL_CODEC_PROTOBUF);
        printf("  overlong token: %s\n", err.message);
        static const uint8_t empty_ok[] = {0x12, 0x00};
        CHECK_INT(lunnel_rr_scan(&r, empty_ok, sizeof empty_ok, &err), 0);
        CHECK_INT(r.next_token_len, 0);
        CHECK_INT(r.may_more_record, -1);
    }
    lunnel_arena_free(a);
    free(buf);
    lunnel_rr_free(&r);
    TEST_DONE();
}
