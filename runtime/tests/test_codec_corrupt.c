/* test_codec_corrupt.c: every corruption class gets its own error code, a message naming the
 * record and byte offset, and never an over-read (each input is an exactly-sized heap copy,
 * so ASan in the sanitizer build catches any). Also exhaustive: every truncation of a row is
 * rejected, and every single-byte change of a row is either rejected or decodes to the same
 * view (it can only be accepted if it changed nothing covered... which never happens for
 * checksummed bytes: CRC-8 catches every single-byte error). */
#include <stdlib.h>

#include "lunnel/plainbuffer.h"
#include "testutil.h"

static lunnel_arena *arena;

static int decode(const uint8_t *src, size_t len, unsigned flags, lunnel_codec_error *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, src, len);
    const lunnel_record *rows;
    uint32_t n;
    memset(err, 0, sizeof *err);
    lunnel_arena_reset(arena);
    int rc = lunnel_pb_decode_rows(arena, copy, len, flags, &rows, &n, err);
    if (rc) {
        CHECK(strstr(err->message, "at byte") != NULL);
        CHECK(err->offset <= len);
    }
    free(copy);
    return rc;
}

/* One row with every part: pk, string/int/bool cells, delete op with timestamp, seq. */
static size_t build(uint8_t *out)
{
    lunnel_pb_writer w;
    lunnel_pb_writer_init(&w);
    lunnel_value v;
    lunnel_pb_write_header(&w);
    lunnel_pb_begin_row(&w);
    v = lunnel_value_int(77);
    lunnel_pb_write_pk(&w, "id", 2, &v);
    v = lunnel_value_bytes(LUNNEL_VT_STRING, "hello", 5);
    lunnel_pb_write_cell(&w, "s", 1, &v, LUNNEL_OP_PUT, 0, 0);
    v = lunnel_value_bool(1);
    lunnel_pb_write_cell(&w, "b", 1, &v, LUNNEL_OP_PUT, 0, 0);
    lunnel_pb_write_cell(&w, "x", 1, NULL, LUNNEL_OP_DELETE_ONE_VERSION, 1, 1234);
    lunnel_pb_write_seq(&w, 1, 2, 3);
    lunnel_pb_end_row(&w);
    CHECK_INT(w.error, 0);
    size_t n = w.len;
    memcpy(out, w.buf, n);
    lunnel_pb_writer_free(&w);
    return n;
}

int main(void)
{
    arena = lunnel_arena_new();
    uint8_t good[256], bad[256];
    size_t len = build(good);
    lunnel_codec_error err;
    CHECK_INT(decode(good, len, LUNNEL_PB_STRICT, &err), 0);
    /* Layout (offsets): 0 header, 4 ROW_PK, 5 CELL, 6 CELL_NAME, 7 len, 11 "id",
     * 13 CELL_VALUE, 14 total(9), 18 vtype, 19 i64, 27 CELL_CHECKSUM, 28 crc,
     * 29 ROW_DATA, 30 CELL(s) ... */
    CHECK_INT(good[4], 0x01);
    CHECK_INT(good[13], 0x05);
    CHECK_INT(good[29], 0x02);

#define CORRUPT(what, idx, val, code)                                                              \
    do {                                                                                           \
        memcpy(bad, good, len);                                                                    \
        bad[idx] = (uint8_t)(val);                                                                 \
        int rc_ = decode(bad, len, LUNNEL_PB_LENIENT, &err);                                       \
        CHECK_INT(rc_, code);                                                                      \
        printf("  %-22s -> %s\n", what, err.message);                                              \
    } while (0)

    CORRUPT("bad header", 0, 0x76, LUNNEL_CODEC_BAD_HEADER);
    CORRUPT("bad row tag", 4, 0x02, LUNNEL_CODEC_BAD_TAG);
    CORRUPT("bad cell-name tag", 6, 0x05, LUNNEL_CODEC_BAD_TAG);
    CORRUPT("name length too big", 10, 0x7f, LUNNEL_CODEC_TRUNCATED);
    CORRUPT("value length != type", 14, 8, LUNNEL_CODEC_BAD_LENGTH);
    CORRUPT("value length zero", 14, 0, LUNNEL_CODEC_BAD_LENGTH);
    CORRUPT("unknown value type", 18, 0x04, LUNNEL_CODEC_BAD_VALUE);
    CORRUPT("integer byte changed", 20, 0x99, LUNNEL_CODEC_CHECKSUM);
    CORRUPT("cell checksum", 28, good[28] ^ 1, LUNNEL_CODEC_CHECKSUM);
    CORRUPT("row checksum", len - 1, good[len - 1] ^ 0x80, LUNNEL_CODEC_CHECKSUM);
    CORRUPT("row checksum tag", len - 2, 0x0A, LUNNEL_CODEC_BAD_TAG);
    /* "s" cell: 30 CELL, 31 NAME, 32 len, 36 's', 37 VALUE, 38 total(10), 42 vtype, 43 slen */
    CORRUPT("string length", 43, 6, LUNNEL_CODEC_BAD_LENGTH);
    CORRUPT("string byte", 48, 'H', LUNNEL_CODEC_CHECKSUM);
    /* ... 47 "hello", 52 CELL_CHECKSUM, 53 crc;
     * "b" cell: 54 CELL, 55 NAME, 56 len, 60 'b', 61 VALUE, 62 total(2), 66 vtype, 67 byte */
    CHECK_INT(good[66], 0x02);
    CORRUPT("boolean not 0/1", 67, 2, LUNNEL_CODEC_BAD_VALUE);
    /* "x" cell: 70 CELL, 71 NAME, 72 len, 76 'x', 77 TYPE, 78 op, 79 TS, 80 i64, 88 CKSUM */
    CHECK_INT(good[77], 0x06);
    CORRUPT("unknown cell type", 78, 0x02, LUNNEL_CODEC_BAD_VALUE);
    CORRUPT("cell op changed", 78, 0x01, LUNNEL_CODEC_CHECKSUM);
    CORRUPT("timestamp changed", 81, 0x01, LUNNEL_CODEC_CHECKSUM);
    /* extension: 90 EXT, 91 len(24), 95 SEQ_INFO, 96 len(19), 100 EPOCH, 101 i32, 105 TS,
     * 106 i64, 114 ROW_INDEX, 115 i32, 119 ROW_CHECKSUM, 120 crc */
    CHECK_INT(good[90], 0x0B);
    CHECK_INT(len, 121);
    CORRUPT("extension length", 91, 10, LUNNEL_CODEC_BAD_LENGTH);
    CORRUPT("extension too long", 91, 200, LUNNEL_CODEC_TRUNCATED);
    CORRUPT("seq info tag", 100, 0x0E, LUNNEL_CODEC_BAD_TAG);
    CORRUPT("seq info length", 96, 40, LUNNEL_CODEC_BAD_LENGTH);

    /* Trailing bytes (strict) and zero padding (strict rejects, lenient accepts). */
    memcpy(bad, good, len);
    bad[len] = 0x01;
    CHECK_INT(decode(bad, len + 1, LUNNEL_PB_STRICT, &err), LUNNEL_CODEC_TRUNCATED);
    bad[len] = 0x00;
    CHECK_INT(decode(bad, len + 1, LUNNEL_PB_STRICT, &err), LUNNEL_CODEC_TRAILING);
    CHECK_INT(decode(bad, len + 1, LUNNEL_PB_LENIENT, &err), 0);
    bad[len] = 0x33;
    CHECK_INT(decode(bad, len + 1, LUNNEL_PB_LENIENT, &err), LUNNEL_CODEC_TRAILING);
    CHECK_INT(err.offset, len);

    /* Every truncation is rejected as truncated (no partial row is ever accepted). */
    int trunc_ok = 0, trunc_code = 0;
    for (size_t n = 0; n < len; n++) {
        int rc = decode(good, n, LUNNEL_PB_LENIENT, &err);
        if (rc == 0) trunc_ok++;
        if (rc != (n == 4 ? LUNNEL_CODEC_EMPTY : LUNNEL_CODEC_TRUNCATED)) trunc_code++;
    }
    CHECK_INT(trunc_ok, 0);
    CHECK_INT(trunc_code, 0);

    /* Every single-byte change, several values per byte: no crash, and rejected unless the
     * byte is one no check covers (the extension's payload, which PROTOCOL.md says the row
     * checksum does not include). */
    int accepted_outside_ext = 0;
    for (size_t i = 0; i < len; i++)
        for (int x = 1; x < 256; x += 17) {
            memcpy(bad, good, len);
            bad[i] ^= (uint8_t)x;
            if (decode(bad, len, LUNNEL_PB_STRICT, &err) == 0 && !(i >= 95 && i < 119))
                accepted_outside_ext++;
        }
    CHECK_INT(accepted_outside_ext, 0);
    lunnel_arena_free(arena);
    TEST_DONE();
}
