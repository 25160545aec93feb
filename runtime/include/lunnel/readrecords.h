/* readrecords.h: the zero-copy scanner of a serialized ReadRecordsResponse (DESIGN.md "Data
 * flow"): it walks the protobuf bytes once and yields next_token, may_more_record and the byte
 * ranges (plus action) of every Record inside the buffer, without copying any bytes field
 * (protobuf-c would). Runs on the loop thread; the ranges feed lunnel_pb_decode_batch on a Lua
 * worker. Unknown fields are skipped (all wire types); malformed varints, lengths or wire
 * types, and missing required fields, are errors with the byte offset (and record index). */
#ifndef LUNNEL_READRECORDS_H
#define LUNNEL_READRECORDS_H

#include "lunnel/export.h"

#include <stddef.h>
#include <stdint.h>

#include "lunnel/codec.h"

/* Scanner output. Initialise with lunnel_rr_init; the ranges array is owned by the struct and
 * reused by the next scan (no allocation in steady state); free with lunnel_rr_free.
 * Pointers (next_token) point into the scanned buffer. */
typedef struct lunnel_rr_response {
    const uint8_t *next_token; /* into the buffer; not NUL-terminated */
    uint32_t next_token_len;
    int8_t may_more_record; /* -1 absent, 0 false, 1 true */
    uint8_t pad_[3];
    lunnel_record_range *records; /* count entries, offsets relative to the buffer start */
    uint32_t count;
    uint32_t cap; /* internal: allocated entries */
} lunnel_rr_response;

LUNNEL_API void lunnel_rr_init(lunnel_rr_response *r);
LUNNEL_API void lunnel_rr_free(lunnel_rr_response *r);

/* Scans buf[0..len). On success fills *r (previous content replaced) and returns
 * LUNNEL_CODEC_OK. Errors: LUNNEL_CODEC_PROTOBUF (bad varint / wire type / length, offsets in
 * err), LUNNEL_CODEC_MISSING (next_token, or a Record without action_type or record),
 * LUNNEL_CODEC_BAD_VALUE (action_type not 1..3), LUNNEL_CODEC_TOO_LARGE (buffer >= 4 GiB),
 * LUNNEL_CODEC_NOMEM. Later occurrences of a non-repeated field win (protobuf semantics). */
LUNNEL_API int lunnel_rr_scan(lunnel_rr_response *r, const uint8_t *buf, size_t len,
                              lunnel_codec_error *err);

#endif
