/* plainbuffer.h: the PlainBuffer row format of Tablestore (PROTOCOL.md section 4): a decoder
 * that produces the record view of record.h, and an encoder (writer) into a growable buffer.
 *
 * Users: the Lua host decodes ReadRecords batches on its worker threads
 * (lunnel_pb_decode_batch, strict); lunnel-emulator decodes request rows
 * (lunnel_pb_decode_rows, LUNNEL_PB_LENIENT for PutRow/UpdateRow/BatchWriteRow bodies) and
 * encodes rows for ReadRecords / GetRow / GetRange responses (lunnel_pb_writer);
 * lua/lunnel/testing.lua builds records through both. */
#ifndef LUNNEL_PLAINBUFFER_H
#define LUNNEL_PLAINBUFFER_H

#include "lunnel/export.h"

#include <stddef.h>
#include <stdint.h>

#include "lunnel/codec.h"
#include "lunnel/record.h"

/* Decoder flags. */
enum {
    LUNNEL_PB_STRICT = 0,      /* exactly header + rows; checksums verified */
    LUNNEL_PB_LENIENT = 1,     /* also accept zero bytes after the last row (the Node SDK pads
                                * UpdateRow bodies); any non-zero trailing byte is still an error */
    LUNNEL_PB_ALLOW_EMPTY = 2, /* an empty buffer or a bare header decodes as zero rows
                                * (GetRange with no rows); otherwise LUNNEL_CODEC_EMPTY */
};

/* Decodes one PlainBuffer buffer (header + N rows) into records allocated in arena.
 * *rows_out: array of *count_out records (action NONE, no origin), valid until the arena is
 * reset; strings point into buf, which must outlive the views. Does not reset the arena.
 * Returns LUNNEL_CODEC_OK or an error code (err filled: record_index = row index, offset =
 * byte offset in buf). Never reads outside buf[0..len). */
LUNNEL_API int lunnel_pb_decode_rows(lunnel_arena *arena, const uint8_t *buf, size_t len,
                                     unsigned flags, const lunnel_record **rows_out,
                                     uint32_t *count_out, lunnel_codec_error *err);

/* Decodes a whole ReadRecords batch: n records, each exactly one row at
 * data[ranges[i].offset, +len) (its own header included), plus its origin row when
 * has_origin (origin attribute columns become record.old). Actions are copied from ranges.
 * The batch struct and all records live in arena; data must outlive the views.
 * *batch_out->generation = the arena's generation now. Does not reset the arena: the Lua host
 * resets it after the process() call (that invalidates the views). Errors name the record
 * index i and the absolute offset in data. */
LUNNEL_API int lunnel_pb_decode_batch(lunnel_arena *arena, const uint8_t *data, size_t size,
                                      const lunnel_record_range *ranges, uint32_t n, unsigned flags,
                                      const lunnel_batch **batch_out, lunnel_codec_error *err);

/* ---- encoder ---- */

/* A growable output buffer plus the state of the row being written. Stack-allocate it, call
 * lunnel_pb_writer_init; the buffer is owned by the writer (free with lunnel_pb_writer_free;
 * lunnel_pb_writer_reset keeps the memory for the next use). Errors are sticky: after the
 * first failure every call returns that code and the writer keeps it in `error`.
 *
 * Call order per buffer: header, then per row: begin_row, pk*, cell*, [delete_marker],
 * [seq], end_row. A header after end_row starts another buffer in the same output (a
 * ReadRecords layout: one header + row per record, back to back). */
typedef struct lunnel_pb_writer {
    uint8_t *buf; /* bytes written so far (owned) */
    size_t len;
    size_t cap;
    int error;       /* first lunnel_codec_code failure, 0 when fine */
    uint8_t row_crc; /* running row checksum (internal) */
    uint8_t state;   /* internal: 0 fresh, 1 between rows, 2 in pk, 3 in data, 4 marker, 5 seq */
    uint8_t marker;  /* internal: delete marker written */
    uint8_t pad_;
} lunnel_pb_writer;

LUNNEL_API void lunnel_pb_writer_init(lunnel_pb_writer *w);
LUNNEL_API void lunnel_pb_writer_free(lunnel_pb_writer *w);
LUNNEL_API void lunnel_pb_writer_reset(lunnel_pb_writer *w);

/* Each returns LUNNEL_CODEC_OK, LUNNEL_CODEC_NOMEM or LUNNEL_CODEC_USAGE (out of order, a
 * name or value longer than 2^31, an unknown type/op). */
LUNNEL_API int lunnel_pb_write_header(lunnel_pb_writer *w);
LUNNEL_API int lunnel_pb_begin_row(lunnel_pb_writer *w);
/* A primary-key cell: INTEGER, STRING, BINARY (or INF_MIN / INF_MAX / AUTO_INCREMENT in
 * requests). name is name_len bytes; value strings are copied into the buffer. */
LUNNEL_API int lunnel_pb_write_pk(lunnel_pb_writer *w, const void *name, size_t name_len,
                                  const lunnel_value *v);
/* An attribute cell. v NULL or type NONE: no value (delete ops). op LUNNEL_OP_*;
 * has_ts: write CELL_TIMESTAMP ts (ms). */
LUNNEL_API int lunnel_pb_write_cell(lunnel_pb_writer *w, const void *name, size_t name_len,
                                    const lunnel_value *v, int op, int has_ts, int64_t ts);
LUNNEL_API int lunnel_pb_write_delete_marker(lunnel_pb_writer *w);
/* The extension with sequence info (stream records). */
LUNNEL_API int lunnel_pb_write_seq(lunnel_pb_writer *w, int32_t epoch, int64_t ts,
                                   int32_t row_index);
/* Writes the row checksum. */
LUNNEL_API int lunnel_pb_end_row(lunnel_pb_writer *w);
/* Convenience: begin_row .. end_row from a decoded view (pk, cols, marker, seq if has_seq). */
LUNNEL_API int lunnel_pb_write_record(lunnel_pb_writer *w, const lunnel_record *r);

/* Value constructors for the writer. */
static inline lunnel_value lunnel_value_int(int64_t i)
{
    lunnel_value v = {0};
    v.type = LUNNEL_VT_INTEGER;
    v.u.i = i;
    return v;
}
static inline lunnel_value lunnel_value_double(double d)
{
    lunnel_value v = {0};
    v.type = LUNNEL_VT_DOUBLE;
    v.u.d = d;
    return v;
}
static inline lunnel_value lunnel_value_bool(int b)
{
    lunnel_value v = {0};
    v.type = LUNNEL_VT_BOOLEAN;
    v.u.i = b ? 1 : 0;
    return v;
}
/* type LUNNEL_VT_STRING or LUNNEL_VT_BINARY; p is borrowed until the write call returns. */
static inline lunnel_value lunnel_value_bytes(int type, const void *p, uint32_t len)
{
    lunnel_value v = {0};
    v.type = (uint8_t)type;
    v.len = len;
    v.u.ptr = (const uint8_t *)p;
    return v;
}
static inline lunnel_value
lunnel_value_of_type(int type) /* INF_MIN, INF_MAX, NULL, AUTO_INCREMENT */
{
    lunnel_value v = {0};
    v.type = (uint8_t)type;
    return v;
}

#endif
