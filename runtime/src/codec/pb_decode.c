/* pb_decode.c: PlainBuffer -> record view (PROTOCOL.md section 4). One forward pass per row:
 * every read is bounds-checked first (no over-read on any input), every cell and row CRC-8
 * is verified, columns are collected in the arena's scratch vector and copied into one arena
 * block per row; strings stay pointers into the input. Errors name the row (record) index
 * and the absolute byte offset. */
#include "codec/codec_internal.h"
#include "lunnel/plainbuffer.h"

typedef struct dec {
    const uint8_t *p; /* the buffer being decoded */
    size_t len;
    size_t pos;
    uint64_t base; /* offset of p inside the caller's input (messages) */
    int32_t rec;   /* record index for messages */
    lunnel_arena *a;
    lunnel_codec_error *err;
} dec;

#define AT(d) ((d)->base + (d)->pos)

static int truncated(dec *d, size_t need, const char *what)
{
    return codec_fail(d->err, LUNNEL_CODEC_TRUNCATED, d->rec, AT(d), "%s needs %zu bytes, %zu left",
                      what, need, d->len - d->pos);
}

#define NEED(d, n, what)                                                                           \
    do {                                                                                           \
        if ((d)->len - (d)->pos < (size_t)(n)) return truncated((d), (size_t)(n), (what));         \
    } while (0)

static inline uint8_t crc_byte(uint8_t crc, uint8_t b)
{
    return codec_crc8_t0[crc ^ b];
}

static int decode_value(dec *d, lunnel_value *v, uint8_t *crc)
{
    size_t at = d->pos;
    NEED(d, 5, "cell value");
    uint32_t total = rd_u32(d->p + d->pos);
    d->pos += 4;
    if (total < 1 || total > d->len - d->pos)
        return codec_fail(d->err, total < 1 ? LUNNEL_CODEC_BAD_LENGTH : LUNNEL_CODEC_TRUNCATED,
                          d->rec, d->base + at, "value length %u with %zu bytes left", total,
                          d->len - d->pos);
    const uint8_t *q = d->p + d->pos;
    uint8_t vt = q[0];
    uint32_t want;
    memset(v, 0, sizeof *v);
    switch (vt) {
    case WIRE_VT_INTEGER:
    case WIRE_VT_DOUBLE:
        want = 9;
        if (total == want) {
            v->type = vt == WIRE_VT_INTEGER ? LUNNEL_VT_INTEGER : LUNNEL_VT_DOUBLE;
            v->u.i = (int64_t)rd_u64(q + 1);
        }
        break;
    case WIRE_VT_BOOLEAN:
        want = 2;
        if (total == want) {
            if (q[1] > 1)
                return codec_fail(d->err, LUNNEL_CODEC_BAD_VALUE, d->rec, AT(d) + 1,
                                  "boolean byte 0x%02x (want 0 or 1)", q[1]);
            v->type = LUNNEL_VT_BOOLEAN;
            v->u.i = q[1];
        }
        break;
    case WIRE_VT_STRING:
    case WIRE_VT_BLOB:
        if (total < 5)
            return codec_fail(d->err, LUNNEL_CODEC_BAD_LENGTH, d->rec, d->base + at,
                              "string/blob value length %u < 5", total);
        want = 5 + rd_u32(q + 1);
        if (want < 5) want = 0; /* wrapped: never equal to a total we accepted */
        if (total == want) {
            v->type = vt == WIRE_VT_STRING ? LUNNEL_VT_STRING : LUNNEL_VT_BINARY;
            v->len = total - 5;
            v->u.ptr = q + 5;
        }
        break;
    case WIRE_VT_NULL:
        v->type = LUNNEL_VT_NULL;
        want = 1;
        break;
    case WIRE_VT_INF_MIN:
        v->type = LUNNEL_VT_INF_MIN;
        want = 1;
        break;
    case WIRE_VT_INF_MAX:
        v->type = LUNNEL_VT_INF_MAX;
        want = 1;
        break;
    case WIRE_VT_AUTO_INCREMENT:
        v->type = LUNNEL_VT_AUTO_INCREMENT;
        want = 1;
        break;
    default:
        return codec_fail(d->err, LUNNEL_CODEC_BAD_VALUE, d->rec, AT(d), "value type 0x%02x", vt);
    }
    if (total != want)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_LENGTH, d->rec, d->base + at,
                          "value length %u, type 0x%02x needs %u", total, vt, want);
    /* vtype + payload are contiguous and are exactly what the checksum covers. */
    *crc = codec_crc8(*crc, q, total);
    d->pos += total;
    return LUNNEL_CODEC_OK;
}

/* Decodes one cell; the CELL tag is already consumed. Returns the cell checksum in *cell_crc. */
static int decode_cell(dec *d, lunnel_column *c, int is_pk, uint8_t *cell_crc)
{
    size_t cell_at = d->pos - 1;
    NEED(d, 5, "cell name");
    if (d->p[d->pos] != TAG_CELL_NAME)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_TAG, d->rec, AT(d),
                          "tag 0x%02x where CELL_NAME (0x04) belongs", d->p[d->pos]);
    uint32_t nlen = rd_u32(d->p + d->pos + 1);
    d->pos += 5;
    NEED(d, nlen, "cell name");
    c->name = d->p + d->pos;
    c->name_len = nlen;
    c->name_hash = codec_name_hash(c->name, nlen);
    c->name_prefix = codec_name_prefix(c->name, nlen);
    c->timestamp = 0;
    c->op = LUNNEL_OP_PUT;
    c->has_timestamp = 0;
    memset(c->pad_, 0, sizeof c->pad_);
    memset(&c->value, 0, sizeof c->value);
    uint8_t crc = codec_crc8(0, c->name, nlen);
    d->pos += nlen;

    NEED(d, 1, "cell");
    uint8_t tag = d->p[d->pos];
    if (tag == TAG_CELL_VALUE) {
        d->pos++;
        int rc = decode_value(d, &c->value, &crc);
        if (rc) return rc;
        NEED(d, 1, "cell");
        tag = d->p[d->pos];
    } else if (is_pk) {
        return codec_fail(d->err, LUNNEL_CODEC_BAD_VALUE, d->rec, AT(d),
                          "primary-key cell without a value");
    }
    int has_type = 0;
    uint8_t wire_type = 0;
    /* Wire order is type then timestamp; accept either order, each at most once. */
    for (int k = 0; k < 2; k++) {
        if (tag == TAG_CELL_TYPE && !has_type) {
            NEED(d, 2, "cell type");
            wire_type = d->p[d->pos + 1];
            switch (wire_type) {
            case WIRE_OP_DELETE_ALL:
                c->op = LUNNEL_OP_DELETE_ALL_VERSIONS;
                break;
            case WIRE_OP_DELETE_ONE:
                c->op = LUNNEL_OP_DELETE_ONE_VERSION;
                break;
            case WIRE_OP_INCREMENT:
                c->op = LUNNEL_OP_INCREMENT;
                break;
            default:
                return codec_fail(d->err, LUNNEL_CODEC_BAD_VALUE, d->rec, AT(d) + 1,
                                  "cell type 0x%02x", wire_type);
            }
            has_type = 1;
            d->pos += 2;
        } else if (tag == TAG_CELL_TIMESTAMP && !c->has_timestamp) {
            NEED(d, 9, "cell timestamp");
            c->timestamp = (int64_t)rd_u64(d->p + d->pos + 1);
            c->has_timestamp = 1;
            d->pos += 9;
        } else {
            break;
        }
        NEED(d, 1, "cell");
        tag = d->p[d->pos];
    }
    if (tag != TAG_CELL_CHECKSUM)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_TAG, d->rec, AT(d),
                          "tag 0x%02x where CELL_CHECKSUM (0x0a) belongs", tag);
    NEED(d, 2, "cell checksum");
    if (c->has_timestamp) {
        uint8_t ts[8];
        memcpy(ts, &c->timestamp, 8);
        crc = codec_crc8(crc, ts, 8);
    }
    if (has_type) crc = crc_byte(crc, wire_type);
    uint8_t got = d->p[d->pos + 1];
    if (got != crc)
        return codec_fail(d->err, LUNNEL_CODEC_CHECKSUM, d->rec, d->base + cell_at,
                          "cell \"%.*s\" checksum 0x%02x, computed 0x%02x",
                          (int)(nlen > 64 ? 64 : nlen), (const char *)c->name, got, crc);
    d->pos += 2;
    *cell_crc = crc;
    return LUNNEL_CODEC_OK;
}

static int decode_ext(dec *d, lunnel_record *r)
{
    size_t at = d->pos; /* at EXTENSION tag */
    NEED(d, 5, "extension");
    uint32_t elen = rd_u32(d->p + d->pos + 1);
    d->pos += 5;
    if (elen > d->len - d->pos) return truncated(d, elen, "extension");
    size_t end = d->pos + elen;
    /* SEQ_INFO u32 len, EPOCH i32, TS i64, ROW_INDEX i32, each behind its tag: 24 bytes. */
    if (elen < 24)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_LENGTH, d->rec, d->base + at,
                          "extension length %u < 24", elen);
    const uint8_t *q = d->p + d->pos;
    uint32_t slen = rd_u32(q + 1);
    if (q[0] != TAG_SEQ_INFO || q[5] != TAG_SEQ_INFO_EPOCH || q[10] != TAG_SEQ_INFO_TS ||
        q[19] != TAG_SEQ_INFO_ROW_INDEX)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_TAG, d->rec, AT(d),
                          "extension is not SEQ_INFO{EPOCH,TS,ROW_INDEX}");
    if (slen < 19 || slen > elen - 5)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_LENGTH, d->rec, AT(d) + 1,
                          "sequence info length %u", slen);
    r->seq_epoch = (int32_t)rd_u32(q + 6);
    r->seq_timestamp = (int64_t)rd_u64(q + 11);
    r->seq_row_index = (int32_t)rd_u32(q + 20);
    r->has_seq = 1;
    d->pos = end; /* skip anything newer inside the extension */
    return LUNNEL_CODEC_OK;
}

/* Decodes one row at d->pos into *r (pk + cols in one arena block). */
static int decode_row(dec *d, lunnel_record *r)
{
    size_t row_at = d->pos;
    memset(r, 0, sizeof *r);
    NEED(d, 1, "row");
    if (d->p[d->pos] != TAG_ROW_PK)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_TAG, d->rec, AT(d),
                          "tag 0x%02x where ROW_PK (0x01) belongs", d->p[d->pos]);
    d->pos++;
    uint32_t n = 0, npk = 0, cap = 32;
    uint8_t row_crc = 0;
    int in_data = 0;
    lunnel_column *cols = arena_scratch_cols(d->a, cap); /* grown below, rarely */
    if (!cols) return codec_fail(d->err, LUNNEL_CODEC_NOMEM, d->rec, AT(d), "columns");
    for (;;) {
        NEED(d, 1, "row");
        uint8_t tag = d->p[d->pos];
        if (tag == TAG_ROW_DATA && !in_data) {
            in_data = 1;
            npk = n;
            d->pos++;
            continue;
        }
        if (tag != TAG_CELL) break;
        d->pos++;
        if (n == cap) {
            if (cap >= UINT32_MAX / 2 || !(cols = arena_scratch_cols(d->a, cap *= 2)))
                return codec_fail(d->err, LUNNEL_CODEC_NOMEM, d->rec, AT(d), "columns");
        }
        uint8_t cell_crc = 0;
        int rc = decode_cell(d, &cols[n], !in_data, &cell_crc);
        if (rc) return rc;
        row_crc = crc_byte(row_crc, cell_crc);
        n++;
    }
    if (!in_data) npk = n;
    if (d->p[d->pos] == TAG_DELETE_ROW_MARKER) {
        r->delete_marker = 1;
        d->pos++;
        NEED(d, 1, "row");
    }
    if (d->p[d->pos] == TAG_EXTENSION) {
        int rc = decode_ext(d, r);
        if (rc) return rc;
        NEED(d, 1, "row");
    }
    if (d->p[d->pos] != TAG_ROW_CHECKSUM)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_TAG, d->rec, AT(d),
                          "tag 0x%02x where ROW_CHECKSUM (0x09) belongs", d->p[d->pos]);
    NEED(d, 2, "row checksum");
    row_crc = crc_byte(row_crc, r->delete_marker);
    if (d->p[d->pos + 1] != row_crc)
        return codec_fail(d->err, LUNNEL_CODEC_CHECKSUM, d->rec, AT(d),
                          "row checksum 0x%02x, computed 0x%02x", d->p[d->pos + 1], row_crc);
    d->pos += 2;
    if (n) {
        lunnel_column *dst = lunnel_arena_alloc(d->a, (size_t)n * sizeof *dst);
        if (!dst) return codec_fail(d->err, LUNNEL_CODEC_NOMEM, d->rec, d->base + row_at, "row");
        memcpy(dst, cols, (size_t)n * sizeof *dst);
        r->pk = dst;
        r->cols = dst + npk;
    }
    r->pk_count = npk;
    r->col_count = n - npk;
    r->offset = (uint32_t)(d->base + row_at);
    r->size = (uint32_t)(d->pos - row_at);
    return LUNNEL_CODEC_OK;
}

static int check_header(dec *d)
{
    NEED(d, 4, "header");
    uint32_t h = rd_u32(d->p);
    if (h != PB_HEADER)
        return codec_fail(d->err, LUNNEL_CODEC_BAD_HEADER, d->rec, d->base,
                          "header 0x%08x (want 0x00000075)", h);
    d->pos = 4;
    return LUNNEL_CODEC_OK;
}

/* After the last row: strict wants nothing, lenient accepts zero bytes only. */
static int check_tail(dec *d, unsigned flags)
{
    size_t left = d->len - d->pos;
    if (!left) return LUNNEL_CODEC_OK;
    for (size_t i = d->pos; i < d->len; i++)
        if (d->p[i] != 0)
            return codec_fail(d->err, LUNNEL_CODEC_TRAILING, d->rec, d->base + i,
                              "%zu bytes after the row (byte 0x%02x)", left, d->p[i]);
    if (flags & LUNNEL_PB_LENIENT) return LUNNEL_CODEC_OK;
    return codec_fail(d->err, LUNNEL_CODEC_TRAILING, d->rec, AT(d),
                      "%zu zero bytes of padding after the last row (strict decoder)", left);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

int lunnel_pb_decode_rows(lunnel_arena *arena, const uint8_t *buf, size_t len, unsigned flags,
                          const lunnel_record **rows_out, uint32_t *count_out,
                          lunnel_codec_error *err)
{
    dec d = {buf, len, 0, 0, -1, arena, err};
    *rows_out = NULL;
    *count_out = 0;
    if (len >= UINT32_MAX)
        return codec_fail(err, LUNNEL_CODEC_TOO_LARGE, -1, 0, "buffer of %zu bytes", len);
    if (len == 0 && (flags & LUNNEL_PB_ALLOW_EMPTY)) return LUNNEL_CODEC_OK;
    int rc = check_header(&d);
    if (rc) return rc;
    uint32_t n = 0;
    while (d.pos < d.len) {
        /* Not a row start after a row: padding (lenient) or trailing bytes (check_tail). */
        if (n > 0 && d.p[d.pos] != TAG_ROW_PK) break;
        if (n == 0 && (flags & LUNNEL_PB_ALLOW_EMPTY) && all_zero(d.p + d.pos, d.len - d.pos))
            break;
        d.rec = (int32_t)n;
        lunnel_record *rows = arena_scratch_rows(arena, n + 1);
        if (!rows) return codec_fail(err, LUNNEL_CODEC_NOMEM, d.rec, AT(&d), "rows");
        rc = decode_row(&d, &rows[n]);
        if (rc) return rc;
        n++;
    }
    d.rec = n ? (int32_t)n - 1 : -1;
    if (n == 0 && !(flags & LUNNEL_PB_ALLOW_EMPTY))
        return codec_fail(err, LUNNEL_CODEC_EMPTY, -1, d.pos, "buffer holds no row");
    rc = check_tail(&d, flags);
    if (rc) return rc;
    if (n) {
        lunnel_record *dst = lunnel_arena_alloc(arena, (size_t)n * sizeof *dst);
        if (!dst) return codec_fail(err, LUNNEL_CODEC_NOMEM, -1, 0, "rows");
        memcpy(dst, arena_scratch_rows(arena, n), (size_t)n * sizeof *dst);
        *rows_out = dst;
    }
    *count_out = n;
    return LUNNEL_CODEC_OK;
}

/* One record's buffer: header + exactly one row. */
static int decode_one(dec *d, unsigned flags, lunnel_record *r)
{
    int rc = check_header(d);
    if (rc) return rc;
    rc = decode_row(d, r);
    if (rc) return rc;
    return check_tail(d, flags);
}

int lunnel_pb_decode_batch(lunnel_arena *arena, const uint8_t *data, size_t size,
                           const lunnel_record_range *ranges, uint32_t n, unsigned flags,
                           const lunnel_batch **batch_out, lunnel_codec_error *err)
{
    *batch_out = NULL;
    if (size >= UINT32_MAX)
        return codec_fail(err, LUNNEL_CODEC_TOO_LARGE, -1, 0, "batch of %zu bytes", size);
    lunnel_batch *b = lunnel_arena_alloc(arena, sizeof *b);
    lunnel_record *recs = n ? lunnel_arena_alloc(arena, (size_t)n * sizeof *recs) : NULL;
    if (!b || (n && !recs)) return codec_fail(err, LUNNEL_CODEC_NOMEM, -1, 0, "batch");
    for (uint32_t i = 0; i < n; i++) {
        const lunnel_record_range *rg = &ranges[i];
        if ((uint64_t)rg->offset + rg->len > size ||
            (rg->has_origin && (uint64_t)rg->origin_offset + rg->origin_len > size))
            return codec_fail(err, LUNNEL_CODEC_BAD_LENGTH, (int32_t)i, rg->offset,
                              "record range outside the %zu-byte batch", size);
        dec d = {data + rg->offset, rg->len, 0, rg->offset, (int32_t)i, arena, err};
        int rc = decode_one(&d, flags, &recs[i]);
        if (rc) return rc;
        recs[i].action = rg->action;
        if (rg->has_origin) {
            lunnel_record old;
            dec o = {data + rg->origin_offset,
                     rg->origin_len,
                     0,
                     rg->origin_offset,
                     (int32_t)i,
                     arena,
                     err};
            rc = decode_one(&o, flags, &old);
            if (rc) return rc;
            recs[i].old = old.cols;
            recs[i].old_count = old.col_count;
            recs[i].has_old = 1;
        }
    }
    b->records = recs;
    b->count = n;
    b->generation = lunnel_arena_generation(arena);
    b->live_generation = lunnel_arena_live(arena);
    b->data = data;
    b->size = size;
    *batch_out = b;
    return LUNNEL_CODEC_OK;
}
