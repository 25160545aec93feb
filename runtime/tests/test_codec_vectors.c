/* test_codec_vectors.c: the golden PlainBuffer vectors (encoded by the official Node.js SDK,
 * copied from shared/vectors into fuzz/corpus/plainbuffer/) decode to exactly what
 * manifest.json says; the corrupt ones are rejected with the right code; the padded one is
 * rejected by the strict decoder and accepted by the lenient one; and re-encoding every
 * decoded good vector with our writer reproduces the SDK's bytes. */
#include <stdlib.h>

#include "lunnel/plainbuffer.h"
#include "testutil.h"

typedef struct expect_col {
    const char *name;
    int type;      /* LUNNEL_VT_*, NONE for delete cells */
    const char *s; /* STRING; BINARY as raw bytes with explicit length */
    uint32_t slen;
    int64_t i; /* INTEGER, BOOLEAN */
    double d;
    int op;
    int has_ts;
    int64_t ts;
} expect_col;

static uint8_t *slurp(const char *name, size_t *len)
{
    const char *src = getenv("LUNNEL_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/fuzz/corpus/plainbuffer/%s", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    uint8_t *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    uint8_t *exact = malloc(*len ? *len : 1); /* exact size so ASan sees any over-read */
    memcpy(exact, buf, *len);
    free(buf);
    return exact;
}

static int col_eq(const lunnel_column *c, const expect_col *e)
{
    if (c->name_len != strlen(e->name) || memcmp(c->name, e->name, c->name_len) != 0) return 0;
    if (c->value.type != e->type || c->op != e->op || c->has_timestamp != e->has_ts) return 0;
    if (e->has_ts && c->timestamp != e->ts) return 0;
    switch (e->type) {
    case LUNNEL_VT_INTEGER:
    case LUNNEL_VT_BOOLEAN:
        return c->value.u.i == e->i;
    case LUNNEL_VT_DOUBLE:
        return c->value.u.d == e->d;
    case LUNNEL_VT_STRING:
    case LUNNEL_VT_BINARY: {
        uint32_t n = e->slen ? e->slen : (uint32_t)strlen(e->s);
        return c->value.len == n && memcmp(c->value.u.ptr, e->s, n) == 0;
    }
    default:
        return 1;
    }
}

/* A vector file read and decoded with `flags`: its bytes, the records and the codec's answer. */
typedef struct decoded {
    uint8_t *buf;
    size_t len;
    lunnel_arena *a;
    const lunnel_record *rows;
    uint32_t n;
    lunnel_codec_error err;
    int rc;
} decoded;

static void decode_file(decoded *d, const char *file, unsigned flags)
{
    memset(d, 0, sizeof *d);
    d->buf = slurp(file, &d->len);
    d->a = lunnel_arena_new();
    d->rc = lunnel_pb_decode_rows(d->a, d->buf, d->len, flags, &d->rows, &d->n, &d->err);
}

static void decoded_free(decoded *d)
{
    lunnel_arena_free(d->a);
    free(d->buf);
}

static void check_vector(const char *file, unsigned flags, const expect_col *pk, uint32_t npk,
                         const expect_col *cols, uint32_t ncols, int marker)
{
    decoded d;
    decode_file(&d, file, flags);
    size_t len = d.len;
    uint8_t *buf = d.buf;
    const lunnel_record *rows = d.rows;
    uint32_t n = d.n;
    lunnel_codec_error err = d.err;
    int rc = d.rc;
    if (rc) fprintf(stderr, "%s: %s\n", file, err.message);
    CHECK_INT(rc, LUNNEL_CODEC_OK);
    CHECK_INT(n, 1);
    if (rc == 0 && n == 1) {
        const lunnel_record *r = &rows[0];
        CHECK_INT(r->pk_count, npk);
        CHECK_INT(r->col_count, ncols);
        CHECK_INT(r->delete_marker, marker);
        CHECK_INT(r->has_seq, 0);
        for (uint32_t i = 0; i < npk && i < r->pk_count; i++) {
            int ok = col_eq(&r->pk[i], &pk[i]);
            if (!ok) fprintf(stderr, "%s: pk %u differs\n", file, i);
            CHECK(ok);
        }
        for (uint32_t i = 0; i < ncols && i < r->col_count; i++) {
            int ok = col_eq(&r->cols[i], &cols[i]);
            if (!ok) fprintf(stderr, "%s: col %u (%s) differs\n", file, i, cols[i].name);
            CHECK(ok);
        }
        /* Our writer reproduces the SDK's bytes exactly (padding aside). */
        lunnel_pb_writer w;
        lunnel_pb_writer_init(&w);
        CHECK_INT(lunnel_pb_write_header(&w), 0);
        CHECK_INT(lunnel_pb_write_record(&w, r), 0);
        CHECK(w.len <= len && memcmp(w.buf, buf, w.len) == 0);
        CHECK_INT(w.len, r->size + 4);
        lunnel_pb_writer_free(&w);
    }
    decoded_free(&d);
}

static void check_rejected(const char *file, unsigned flags, int want_code)
{
    decoded d;
    decode_file(&d, file, flags);
    CHECK_INT(d.rc, want_code);
    CHECK_INT(d.err.code, want_code);
    CHECK(strstr(d.err.message, "at byte") != NULL);
    CHECK(d.err.offset <= d.len);
    printf("  %s (flags %u): %s\n", file, flags, d.err.message);
    decoded_free(&d);
}

#define N(a) (uint32_t)(sizeof(a) / sizeof((a)[0]))

int main(void)
{
    static const expect_col all_pk[] = {
        {.name = "id", .type = LUNNEL_VT_INTEGER, .i = 42},
        {.name = "k", .type = LUNNEL_VT_STRING, .s = "key-42"},
    };
    static const expect_col all_cols[] = {
        {.name = "s", .type = LUNNEL_VT_STRING, .s = "hello"},
        {.name = "n", .type = LUNNEL_VT_INTEGER, .i = -1234567890123LL},
        {.name = "d", .type = LUNNEL_VT_DOUBLE, .d = 3.5},
        {.name = "b", .type = LUNNEL_VT_BOOLEAN, .i = 1},
        {.name = "f", .type = LUNNEL_VT_BOOLEAN, .i = 0},
        {.name = "bin", .type = LUNNEL_VT_BINARY, .s = "\x00\x01\x02\xff", .slen = 4},
        {.name = "u",
         .type = LUNNEL_VT_STRING,
         .s = "h\xc3\xa9llo \xc3\xbc"
              "n\xc3\xaf"
              "code"},
    };
    check_vector("put_all_types.bin", LUNNEL_PB_STRICT, all_pk, N(all_pk), all_cols, N(all_cols),
                 0);

    static const expect_col ts_pk[] = {{.name = "p", .type = LUNNEL_VT_BINARY, .s = "abc"}};
    static const expect_col ts_cols[] = {
        {.name = "a", .type = LUNNEL_VT_STRING, .s = "x", .has_ts = 1, .ts = 1700000000123LL},
        {.name = "c", .type = LUNNEL_VT_INTEGER, .i = 7, .has_ts = 1, .ts = 1700000000456LL},
    };
    check_vector("put_timestamps_binary_pk.bin", LUNNEL_PB_STRICT, ts_pk, 1, ts_cols, 2, 0);

    static const expect_col up_pk[] = {
        {.name = "id", .type = LUNNEL_VT_INTEGER, .i = 9},
        {.name = "k", .type = LUNNEL_VT_STRING, .s = "nine"},
    };
    static const expect_col up_cols[] = {
        {.name = "s", .type = LUNNEL_VT_STRING, .s = "new"},
        {.name = "n", .type = LUNNEL_VT_INTEGER, .i = 5},
        {.name = "old",
         .type = LUNNEL_VT_NONE,
         .op = LUNNEL_OP_DELETE_ONE_VERSION,
         .has_ts = 1,
         .ts = 1496826473186LL},
        {.name = "gone", .type = LUNNEL_VT_NONE, .op = LUNNEL_OP_DELETE_ALL_VERSIONS},
    };
    check_vector("update_ops.bin", LUNNEL_PB_STRICT, up_pk, 2, up_cols, 4, 0);
    check_vector("update_ops_padded.bin", LUNNEL_PB_LENIENT, up_pk, 2, up_cols, 4, 0);
    check_rejected("update_ops_padded.bin", LUNNEL_PB_STRICT, LUNNEL_CODEC_TRAILING);

    static const expect_col del_pk[] = {
        {.name = "id", .type = LUNNEL_VT_INTEGER, .i = 100},
        {.name = "k", .type = LUNNEL_VT_STRING, .s = "gone"},
    };
    check_vector("delete_row.bin", LUNNEL_PB_STRICT, del_pk, 2, NULL, 0, 1);

    static const expect_col wide_pk[] = {{.name = "id", .type = LUNNEL_VT_INTEGER, .i = 1}};
    expect_col wide_cols[15];
    static char names[15][4], vals[10][101];
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "c%d", i);
        for (int j = 0; j < 50; j++) {
            vals[i][2 * j] = 'v';
            vals[i][2 * j + 1] = (char)('0' + i);
        }
        vals[i][100] = 0;
        wide_cols[i] = (expect_col){.name = names[i], .type = LUNNEL_VT_STRING, .s = vals[i]};
    }
    for (int i = 0; i < 5; i++) {
        snprintf(names[10 + i], sizeof names[10 + i], "i%d", i);
        wide_cols[10 + i] =
            (expect_col){.name = names[10 + i], .type = LUNNEL_VT_INTEGER, .i = 1 + 1000 * i};
    }
    check_vector("put_wide.bin", LUNNEL_PB_STRICT, wide_pk, 1, wide_cols, 15, 0);

    /* Corrupt copies: rejected by both decoders, with the right class. */
    check_rejected("corrupt_checksum.bin", LUNNEL_PB_STRICT, LUNNEL_CODEC_CHECKSUM);
    check_rejected("corrupt_checksum.bin", LUNNEL_PB_LENIENT, LUNNEL_CODEC_CHECKSUM);
    check_rejected("corrupt_truncated.bin", LUNNEL_PB_STRICT, LUNNEL_CODEC_TRUNCATED);
    check_rejected("corrupt_truncated.bin", LUNNEL_PB_LENIENT, LUNNEL_CODEC_TRUNCATED);
    TEST_DONE();
}
