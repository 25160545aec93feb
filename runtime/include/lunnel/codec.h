/* codec.h: what the codec subsystem shares across its parts (PlainBuffer decoder/encoder,
 * ReadRecordsResponse scanner): the error codes, the error report, and CRC-8.
 * The codec is pure: bytes in, views out; no I/O, no globals, thread-safe. */
#ifndef LUNNEL_CODEC_H
#define LUNNEL_CODEC_H

#include "lunnel/export.h"

#include <stddef.h>
#include <stdint.h>

/* Error codes of the codec subsystem. Every bad input is a code plus a message naming the
 * record index and the byte offset; no decoder ever reads past the bytes it was given. */
typedef enum lunnel_codec_code {
    LUNNEL_CODEC_OK = 0,
    LUNNEL_CODEC_TRUNCATED,  /* input ends inside a row / cell / field */
    LUNNEL_CODEC_BAD_HEADER, /* PlainBuffer header is not 0x75 */
    LUNNEL_CODEC_BAD_TAG,    /* unexpected tag byte */
    LUNNEL_CODEC_BAD_LENGTH, /* a length field is inconsistent with its content or input */
    LUNNEL_CODEC_BAD_VALUE,  /* unknown value type / cell type, bad boolean, ... */
    LUNNEL_CODEC_CHECKSUM,   /* cell or row CRC-8 mismatch */
    LUNNEL_CODEC_TRAILING,   /* bytes after the last row (strict), or non-zero padding */
    LUNNEL_CODEC_EMPTY,      /* no row where one is required */
    LUNNEL_CODEC_PROTOBUF,   /* malformed protobuf (scanner): varint, wire type, length */
    LUNNEL_CODEC_MISSING,    /* a required protobuf field is absent */
    LUNNEL_CODEC_TOO_LARGE,  /* a count or size beyond the codec's 32-bit limits */
    LUNNEL_CODEC_NOMEM,      /* allocation failed */
    LUNNEL_CODEC_USAGE,      /* API misuse (encoder calls out of order, ...) */
} lunnel_codec_code;

/* Static name of a code, e.g. "checksum mismatch". */
LUNNEL_API const char *lunnel_codec_strerror(int code);

/* An error report, filled by every decoding function on failure (left untouched on success).
 * Caller-owned; may be NULL when the caller only wants the return code. */
typedef struct lunnel_codec_error {
    int code;             /* lunnel_codec_code */
    int32_t record_index; /* 0-based record (row) index, -1 when not inside a record */
    uint64_t offset;      /* byte offset in the input given to the function */
    char message[200];    /* "record 3 at byte 117: cell checksum mismatch (got 0x1f, want 0x2a)" */
} lunnel_codec_error;

/* Where one ReadRecords record sits inside the response bytes (scanner output, batch decoder
 * input). Offsets are relative to the start of the buffer that was scanned. */
typedef struct lunnel_record_range {
    uint32_t offset; /* Record.record bytes */
    uint32_t len;
    uint32_t origin_offset; /* Record.origin_record bytes, when has_origin */
    uint32_t origin_len;
    uint8_t action; /* LUNNEL_ACTION_* (protobuf ActionType) */
    uint8_t has_origin;
    uint8_t pad_[6];
} lunnel_record_range;

/* CRC-8, polynomial 0x07, no reflection, no final xor: crc = table[crc ^ byte], slice-by-8.
 * Start with crc 0; feed pieces in order. */
LUNNEL_API uint8_t lunnel_crc8(uint8_t crc, const void *data, size_t len);
/* The byte-at-a-time reference (tests and the benchmark compare against it). */
LUNNEL_API uint8_t lunnel_crc8_bytewise(uint8_t crc, const void *data, size_t len);

#endif
