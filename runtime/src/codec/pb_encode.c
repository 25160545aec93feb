/* pb_encode.c: the PlainBuffer writer (PROTOCOL.md section 4): rows, cells, delete marker,
 * sequence-info extension and both CRC-8 checksums, into a growable buffer. Used by the
 * emulator (ReadRecords / GetRow / GetRange responses) and lua/lunnel/testing.lua. */
#include <stdlib.h>

#include "codec/codec_internal.h"
#include "lunnel/buf.h"
#include "lunnel/plainbuffer.h"

enum { ST_FRESH, ST_BETWEEN, ST_PK, ST_DATA, ST_MARKER, ST_SEQ };

void lunnel_pb_writer_init(lunnel_pb_writer *w)
{
    memset(w, 0, sizeof *w);
}

void lunnel_pb_writer_free(lunnel_pb_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

void lunnel_pb_writer_reset(lunnel_pb_writer *w)
{
    w->len = 0;
    w->error = 0;
    w->row_crc = 0;
    w->state = ST_FRESH;
    w->marker = 0;
}

static int fail(lunnel_pb_writer *w, int code)
{
    if (!w->error) w->error = code;
    return w->error;
}

static int reserve(lunnel_pb_writer *w, size_t n)
{
    if (w->cap - w->len >= n) return 0;
    if (n > SIZE_MAX / 2 - w->len) return fail(w, LUNNEL_CODEC_NOMEM);
    if (lunnel_vec_reserve(&w->buf, &w->cap, w->len + n, 256) != 0)
        return fail(w, LUNNEL_CODEC_NOMEM);
    return 0;
}

static inline void put8(lunnel_pb_writer *w, uint8_t b)
{
    w->buf[w->len++] = b;
}
static inline void put32(lunnel_pb_writer *w, uint32_t v)
{
    memcpy(w->buf + w->len, &v, 4);
    w->len += 4;
}
static inline void put64(lunnel_pb_writer *w, uint64_t v)
{
    memcpy(w->buf + w->len, &v, 8);
    w->len += 8;
}
static inline void putn(lunnel_pb_writer *w, const void *p, size_t n)
{
    if (n) memcpy(w->buf + w->len, p, n);
    w->len += n;
}

int lunnel_pb_write_header(lunnel_pb_writer *w)
{
    if (w->error) return w->error;
    /* After end_row too: starts the next PlainBuffer in the same output (one buffer per
     * record, as ReadRecords responses carry them). */
    if (w->state != ST_FRESH && w->state != ST_BETWEEN) return fail(w, LUNNEL_CODEC_USAGE);
    if (reserve(w, 4)) return w->error;
    put32(w, PB_HEADER);
    w->state = ST_BETWEEN;
    return 0;
}

int lunnel_pb_begin_row(lunnel_pb_writer *w)
{
    if (w->error) return w->error;
    if (w->state != ST_BETWEEN) return fail(w, LUNNEL_CODEC_USAGE);
    if (reserve(w, 1)) return w->error;
    put8(w, TAG_ROW_PK);
    w->row_crc = 0;
    w->marker = 0;
    w->state = ST_PK;
    return 0;
}

/* Writes CELL .. CELL_CHECKSUM and folds the cell checksum into the row checksum. */
static int write_cell(lunnel_pb_writer *w, const void *name, size_t name_len, const lunnel_value *v,
                      int op, int has_ts, int64_t ts)
{
    uint8_t wire_vt = 0;
    size_t plen = 0; /* payload bytes after the vtype */
    int has_value = v && v->type != LUNNEL_VT_NONE;
    if (has_value) {
        switch (v->type) {
        case LUNNEL_VT_INTEGER:
            wire_vt = WIRE_VT_INTEGER;
            plen = 8;
            break;
        case LUNNEL_VT_DOUBLE:
            wire_vt = WIRE_VT_DOUBLE;
            plen = 8;
            break;
        case LUNNEL_VT_BOOLEAN:
            wire_vt = WIRE_VT_BOOLEAN;
            plen = 1;
            break;
        case LUNNEL_VT_STRING:
            wire_vt = WIRE_VT_STRING;
            plen = 4 + (size_t)v->len;
            break;
        case LUNNEL_VT_BINARY:
            wire_vt = WIRE_VT_BLOB;
            plen = 4 + (size_t)v->len;
            break;
        case LUNNEL_VT_NULL:
            wire_vt = WIRE_VT_NULL;
            break;
        case LUNNEL_VT_INF_MIN:
            wire_vt = WIRE_VT_INF_MIN;
            break;
        case LUNNEL_VT_INF_MAX:
            wire_vt = WIRE_VT_INF_MAX;
            break;
        case LUNNEL_VT_AUTO_INCREMENT:
            wire_vt = WIRE_VT_AUTO_INCREMENT;
            break;
        default:
            return fail(w, LUNNEL_CODEC_USAGE);
        }
        int bytes = v->type == LUNNEL_VT_STRING || v->type == LUNNEL_VT_BINARY;
        if (plen > INT32_MAX - 8 || (bytes && v->len && !v->u.ptr))
            return fail(w, LUNNEL_CODEC_USAGE);
    }
    int has_type = 1;
    uint8_t wire_op = 0;
    switch (op) {
    case LUNNEL_OP_PUT:
        has_type = 0;
        break;
    case LUNNEL_OP_DELETE_ONE_VERSION:
        wire_op = WIRE_OP_DELETE_ONE;
        break;
    case LUNNEL_OP_DELETE_ALL_VERSIONS:
        wire_op = WIRE_OP_DELETE_ALL;
        break;
    case LUNNEL_OP_INCREMENT:
        wire_op = WIRE_OP_INCREMENT;
        break;
    default:
        return fail(w, LUNNEL_CODEC_USAGE);
    }
    if (name_len > INT32_MAX || (name_len && !name)) return fail(w, LUNNEL_CODEC_USAGE);
    if (reserve(w, 1 + 5 + name_len + 5 + 1 + plen + 2 + 9 + 2)) return w->error;

    put8(w, TAG_CELL);
    put8(w, TAG_CELL_NAME);
    put32(w, (uint32_t)name_len);
    putn(w, name, name_len);
    uint8_t crc = codec_crc8(0, name, name_len);
    if (has_value) {
        put8(w, TAG_CELL_VALUE);
        put32(w, (uint32_t)(1 + plen));
        size_t vstart = w->len;
        put8(w, wire_vt);
        switch (v->type) {
        case LUNNEL_VT_INTEGER:
        case LUNNEL_VT_DOUBLE:
            put64(w, (uint64_t)v->u.i);
            break;
        case LUNNEL_VT_BOOLEAN:
            put8(w, v->u.i ? 1 : 0);
            break;
        case LUNNEL_VT_STRING:
        case LUNNEL_VT_BINARY:
            put32(w, v->len);
            putn(w, v->u.ptr, v->len);
            break;
        default:
            break;
        }
        crc = codec_crc8(crc, w->buf + vstart, w->len - vstart);
    }
    if (has_type) {
        put8(w, TAG_CELL_TYPE);
        put8(w, wire_op);
    }
    if (has_ts) {
        put8(w, TAG_CELL_TIMESTAMP);
        put64(w, (uint64_t)ts);
        uint8_t b[8];
        memcpy(b, &ts, 8);
        crc = codec_crc8(crc, b, 8);
    }
    if (has_type) crc = codec_crc8_t0[crc ^ wire_op];
    put8(w, TAG_CELL_CHECKSUM);
    put8(w, crc);
    w->row_crc = codec_crc8_t0[w->row_crc ^ crc];
    return 0;
}

int lunnel_pb_write_pk(lunnel_pb_writer *w, const void *name, size_t name_len,
                       const lunnel_value *v)
{
    if (w->error) return w->error;
    if (w->state != ST_PK || !v || v->type == LUNNEL_VT_NONE) return fail(w, LUNNEL_CODEC_USAGE);
    return write_cell(w, name, name_len, v, LUNNEL_OP_PUT, 0, 0);
}

int lunnel_pb_write_cell(lunnel_pb_writer *w, const void *name, size_t name_len,
                         const lunnel_value *v, int op, int has_ts, int64_t ts)
{
    if (w->error) return w->error;
    if (w->state == ST_PK) {
        if (reserve(w, 1)) return w->error;
        put8(w, TAG_ROW_DATA);
        w->state = ST_DATA;
    }
    if (w->state != ST_DATA) return fail(w, LUNNEL_CODEC_USAGE);
    return write_cell(w, name, name_len, v, op, has_ts, ts);
}

int lunnel_pb_write_delete_marker(lunnel_pb_writer *w)
{
    if (w->error) return w->error;
    if (w->state != ST_PK && w->state != ST_DATA) return fail(w, LUNNEL_CODEC_USAGE);
    if (reserve(w, 1)) return w->error;
    put8(w, TAG_DELETE_ROW_MARKER);
    w->marker = 1;
    w->state = ST_MARKER;
    return 0;
}

int lunnel_pb_write_seq(lunnel_pb_writer *w, int32_t epoch, int64_t ts, int32_t row_index)
{
    if (w->error) return w->error;
    if (w->state < ST_PK || w->state > ST_MARKER) return fail(w, LUNNEL_CODEC_USAGE);
    if (reserve(w, 29)) return w->error;
    put8(w, TAG_EXTENSION);
    put32(w, 24);
    put8(w, TAG_SEQ_INFO);
    put32(w, 19);
    put8(w, TAG_SEQ_INFO_EPOCH);
    put32(w, (uint32_t)epoch);
    put8(w, TAG_SEQ_INFO_TS);
    put64(w, (uint64_t)ts);
    put8(w, TAG_SEQ_INFO_ROW_INDEX);
    put32(w, (uint32_t)row_index);
    w->state = ST_SEQ;
    return 0;
}

int lunnel_pb_end_row(lunnel_pb_writer *w)
{
    if (w->error) return w->error;
    if (w->state < ST_PK) return fail(w, LUNNEL_CODEC_USAGE);
    if (reserve(w, 2)) return w->error;
    put8(w, TAG_ROW_CHECKSUM);
    put8(w, codec_crc8_t0[w->row_crc ^ w->marker]);
    w->state = ST_BETWEEN;
    return 0;
}

int lunnel_pb_write_record(lunnel_pb_writer *w, const lunnel_record *r)
{
    int rc = lunnel_pb_begin_row(w);
    for (uint32_t i = 0; !rc && i < r->pk_count; i++)
        rc = lunnel_pb_write_pk(w, r->pk[i].name, r->pk[i].name_len, &r->pk[i].value);
    for (uint32_t i = 0; !rc && i < r->col_count; i++) {
        const lunnel_column *c = &r->cols[i];
        rc = lunnel_pb_write_cell(w, c->name, c->name_len, &c->value, c->op, c->has_timestamp,
                                  c->timestamp);
    }
    if (!rc && r->delete_marker) rc = lunnel_pb_write_delete_marker(w);
    if (!rc && r->has_seq)
        rc = lunnel_pb_write_seq(w, r->seq_epoch, r->seq_timestamp, r->seq_row_index);
    if (!rc) rc = lunnel_pb_end_row(w);
    return rc;
}
