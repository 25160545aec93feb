/* record.h: the record view, the one ABI LuaJIT sees (DESIGN.md "Record view").
 *
 * Plain C structs with a fixed layout (no enums in structs, explicit padding, 64-bit only):
 *   lunnel_batch -> lunnel_record[] -> primary-key / attribute / origin lunnel_column[]
 *   -> lunnel_value (tagged union).
 * Strings and binaries are pointer + length into the decoded input bytes (never copied,
 * never NUL-terminated). Everything else (records, column arrays, the batch struct) lives in
 * a caller-owned lunnel_arena, reused from batch to batch (no malloc in steady state).
 *
 * Lifetime: a view is valid while (a) the input bytes are alive and (b) the arena has not
 * been reset since the view was made. lunnel_arena_reset() bumps the arena's live generation;
 * the Lua handles (lunnel_batch_ref / lunnel_record_ref below) carry the generation they were
 * made in and compare it with *live_generation (memory of the arena header, which is NOT
 * reused for records) on every access: stale use is a Lua error, never a read of freed
 * memory.
 *
 * lua/lunnel/record.lua holds the matching ffi.cdef; bump LUNNEL_RECORD_ABI_VERSION on ANY
 * change here, and keep lunnel_record_abi_layout() in step (a busted spec compares them). */
#ifndef LUNNEL_RECORD_H
#define LUNNEL_RECORD_H

#include "lunnel/export.h"

#include <stddef.h>
#include <stdint.h>

#define LUNNEL_RECORD_ABI_VERSION 1

/* Value types (lunnel_value.type). NONE: the cell has no value (delete ops). NUL and
 * AUTO_INCREMENT appear only in request rows (emulator side). */
enum {
    LUNNEL_VT_NONE = 0,
    LUNNEL_VT_INTEGER = 1,
    LUNNEL_VT_DOUBLE = 2,
    LUNNEL_VT_BOOLEAN = 3,
    LUNNEL_VT_STRING = 4,
    LUNNEL_VT_BINARY = 5, /* wire BLOB */
    LUNNEL_VT_INF_MIN = 6,
    LUNNEL_VT_INF_MAX = 7,
    LUNNEL_VT_NULL = 8,
    LUNNEL_VT_AUTO_INCREMENT = 9,
};

/* Cell ops (lunnel_column.op). INCREMENT only in request rows. */
enum {
    LUNNEL_OP_PUT = 0,
    LUNNEL_OP_DELETE_ONE_VERSION = 1,
    LUNNEL_OP_DELETE_ALL_VERSIONS = 2,
    LUNNEL_OP_INCREMENT = 3,
};

/* Record actions (lunnel_record.action); numbers equal the protobuf ActionType. NONE for rows
 * decoded outside a ReadRecords batch (PutRow bodies, GetRange rows). */
enum {
    LUNNEL_ACTION_NONE = 0,
    LUNNEL_ACTION_PUT = 1,
    LUNNEL_ACTION_UPDATE = 2,
    LUNNEL_ACTION_DELETE = 3,
};

/* One value: 16 bytes. */
typedef struct lunnel_value {
    uint8_t type; /* LUNNEL_VT_* */
    uint8_t pad_[3];
    uint32_t len; /* STRING / BINARY byte length */
    union {
        int64_t i;          /* INTEGER; BOOLEAN as 0/1 */
        double d;           /* DOUBLE */
        const uint8_t *ptr; /* STRING / BINARY bytes, borrowed from the input */
    } u;
} lunnel_value;

/* One cell: 56 bytes. name is borrowed from the input. name_hash and name_prefix let Lua find
 * a column by name without copying it or calling C: names of up to 8 bytes are identified
 * exactly by (name_len, name_prefix); longer ones by hash + prefix, confirmed with memcmp. */
typedef struct lunnel_column {
    const uint8_t *name;
    uint32_t name_len;
    uint32_t name_hash;   /* lunnel_record_name_hash(name) (FNV-1a 32) */
    uint64_t name_prefix; /* lunnel_record_name_prefix(name): first <= 8 bytes, LE, zero-padded */
    int64_t timestamp;    /* ms; meaningful when has_timestamp */
    uint8_t op;           /* LUNNEL_OP_*; always PUT for primary-key columns */
    uint8_t has_timestamp;
    uint8_t pad_[6];
    lunnel_value value; /* type NONE for delete ops */
} lunnel_column;

/* One record (= one PlainBuffer row, plus its origin row in a ReadRecords batch): 64 bytes. */
typedef struct lunnel_record {
    const lunnel_column *pk;   /* primary-key columns, in key order */
    const lunnel_column *cols; /* attribute columns, in wire order */
    const lunnel_column *old;  /* attribute columns of the origin (old-value) row; NULL if none */
    uint32_t pk_count;
    uint32_t col_count;
    uint32_t old_count;
    uint8_t action;        /* LUNNEL_ACTION_* */
    uint8_t delete_marker; /* the row carried DELETE_ROW_MARKER */
    uint8_t has_seq;       /* the row carried the extension (stream records) */
    uint8_t has_old;       /* an origin row was present */
    int64_t seq_timestamp; /* extension: SEQ_INFO_TS (the SDKs' Record.timestamp) */
    int32_t seq_epoch;
    int32_t seq_row_index;
    uint32_t offset; /* byte offset of the row's bytes in the batch input (diagnostics) */
    uint32_t size;   /* byte size of the row's bytes */
} lunnel_record;

/* A decoded batch: 40 bytes. Lives in the arena; live_generation points into the arena header. */
typedef struct lunnel_batch {
    const lunnel_record *records;
    uint32_t count;
    uint32_t generation;                      /* the arena generation this batch was made in */
    const volatile uint32_t *live_generation; /* valid while *live_generation == generation */
    const uint8_t *data;                      /* the input bytes (borrowed) */
    uint64_t size;
} lunnel_batch;

/* Lua-side handles (created by lua/lunnel/record.lua, never by C): a pointer plus the
 * generation it was made in; every accessor checks *live == gen first. Declared here so the
 * layout spec covers them. */
typedef struct lunnel_batch_ref {
    const lunnel_batch *b;
    const volatile uint32_t *live;
    uint32_t gen;
    uint32_t pad_;
} lunnel_batch_ref;

typedef struct lunnel_record_ref {
    const lunnel_record *r;
    const volatile uint32_t *live;
    uint32_t gen;
    uint32_t index; /* 1-based index in its batch (for messages); 0 if standalone */
} lunnel_record_ref;

/* ---- arena: caller-owned, reusable memory for record views ---- */

typedef struct lunnel_arena lunnel_arena; /* opaque */

/* Creates an arena; NULL on out of memory. Free with lunnel_arena_free (after every Lua
 * handle that may point to its generation counter is gone, i.e. after lua_close). */
LUNNEL_API lunnel_arena *lunnel_arena_new(void);
LUNNEL_API void lunnel_arena_free(lunnel_arena *a);
/* Invalidates every view made from this arena (bumps the live generation) and rewinds its
 * memory for reuse (chunks are kept). The Lua host calls this after each process() call. */
LUNNEL_API void lunnel_arena_reset(lunnel_arena *a);
/* The current generation and a pointer to it (stable for the arena's lifetime). */
LUNNEL_API uint32_t lunnel_arena_generation(const lunnel_arena *a);
LUNNEL_API const volatile uint32_t *lunnel_arena_live(const lunnel_arena *a);
/* Allocates n bytes (8-aligned) valid until the next reset; NULL on out of memory. */
LUNNEL_API void *lunnel_arena_alloc(lunnel_arena *a, size_t n);
/* Bytes currently reserved by the arena (all chunks). */
LUNNEL_API size_t lunnel_arena_capacity(const lunnel_arena *a);

/* ---- ABI helpers (exported for LuaJIT) ---- */

/* LUNNEL_RECORD_ABI_VERSION of the compiled library. */
LUNNEL_API uint32_t lunnel_record_abi_version(void);
/* sizeof(type) when field is NULL or "", else offsetof(type, field); -1 when unknown.
 * type is the struct name without "lunnel_" ("value", "column", "record", "batch",
 * "batch_ref", "record_ref"; also "record_range", "codec_error", "pb_writer", which
 * lua/lunnel/testing.lua declares); field is a member name ("u" for the value union). */
LUNNEL_API int64_t lunnel_record_abi_layout(const char *type, const char *field);
/* The hash stored in lunnel_column.name_hash (FNV-1a 32 bit). */
LUNNEL_API uint32_t lunnel_record_name_hash(const void *name, size_t len);
/* The value stored in lunnel_column.name_prefix. */
LUNNEL_API uint64_t lunnel_record_name_prefix(const void *name, size_t len);

/* Names for messages and Lua: "INTEGER", ..., "PUT", "DELETE_ONE_VERSION", ..., "UPDATE".
 * Return "?" when out of range. Static strings. */
LUNNEL_API const char *lunnel_record_type_name(int vt);
LUNNEL_API const char *lunnel_record_op_name(int op);
LUNNEL_API const char *lunnel_record_action_name(int action);

/* Writes the record as one exact JSON object, NUL-terminated, into buf (cap bytes):
 *   {"action":"UPDATE","pk":{"id":1,"k":"a"},"cols":{"name":"x","n":-3},
 *    "deleted":["gone"],"cells":[["name","PUT","x",1700000000000],...],
 *    "old":{...},"old_cells":[...],"seq":{"epoch":0,"timestamp":1700,"row_index":2},
 *    "delete_marker":true}
 * "cols": cells carrying a value, name -> value, wire order; "deleted": names of
 * DELETE_ALL_VERSIONS cells (omitted when none); "cells" (only when cols + deleted do not say
 * everything: a cell timestamp, a DELETE_ONE_VERSION or INCREMENT cell, a repeated name, a
 * value after a delete): every cell [name, op, value or null, timestamp ms or null] in wire
 * order, authoritative; "old"/"old_cells" the same for the origin row, only when present;
 * "seq" only when has_seq; "delete_marker" only when set. Values: INTEGER a JSON integer
 * (all 64 bits), DOUBLE the shortest exact form always with '.' or an exponent (non-finite:
 * {"double":"NaN"|"Infinity"|"-Infinity"}), STRING a JSON string ({"string_base64":...} when
 * not valid UTF-8), BOOLEAN true/false, BINARY {"binary":"<base64>"}, INF_MIN/INF_MAX
 * {"inf":"MIN"}/{"inf":"MAX"}. lunnel.json reads it back (docs/scripts.md).
 * Returns the full length the JSON needs (excluding NUL); if >= cap the output was truncated:
 * call again with a larger buffer. */
LUNNEL_API size_t lunnel_record_tojson(const lunnel_record *r, char *buf, size_t cap);

/* r:key(): a canonical, collision-free string of the whole primary key, usable as a Lua table
 * key: per pk column "i<decimal>" (INTEGER), "s<len>:<bytes>" (STRING), "b<len>:<bytes>"
 * (BINARY), "<" / ">" (INF_MIN / INF_MAX), "?" otherwise, concatenated in key order
 * (e.g. "i42s6:key-42"). Same return convention as lunnel_record_tojson (no NUL added when
 * cap == 0; the output may contain NUL bytes from binaries: use the returned length). */
LUNNEL_API size_t lunnel_record_key(const lunnel_record *r, char *buf, size_t cap);

#endif
