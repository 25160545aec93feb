/* record_abi.c: what the record view exports to LuaJIT besides the structs: the ABI version,
 * sizes and offsets (a busted spec compares them with ffi.sizeof/ffi.offsetof so a drifted
 * cdef fails loudly instead of crashing), the column-name hash, and names of enums. */
#include <stddef.h>
#include <string.h>

#include "codec/codec_internal.h"
#include "lunnel/plainbuffer.h"
#include "lunnel/record.h"

uint32_t lunnel_record_abi_version(void)
{
    return LUNNEL_RECORD_ABI_VERSION;
}

uint32_t lunnel_record_name_hash(const void *name, size_t len)
{
    return codec_name_hash(name, len);
}

uint64_t lunnel_record_name_prefix(const void *name, size_t len)
{
    return codec_name_prefix(name, len);
}

#define F(T, f)                                                                                    \
    {                                                                                              \
#T, #f, offsetof(lunnel_##T, f)                                                            \
    }
#define S(T)                                                                                       \
    {                                                                                              \
#T, "", sizeof(lunnel_##T)                                                                 \
    }
static const struct {
    const char *type, *field;
    size_t v;
} layout[] = {
    S(value),
    F(value, type),
    F(value, len),
    F(value, u),
    S(column),
    F(column, name),
    F(column, name_len),
    F(column, name_hash),
    F(column, name_prefix),
    F(column, timestamp),
    F(column, op),
    F(column, has_timestamp),
    F(column, value),
    S(record),
    F(record, pk),
    F(record, cols),
    F(record, old),
    F(record, pk_count),
    F(record, col_count),
    F(record, old_count),
    F(record, action),
    F(record, delete_marker),
    F(record, has_seq),
    F(record, has_old),
    F(record, seq_timestamp),
    F(record, seq_epoch),
    F(record, seq_row_index),
    F(record, offset),
    F(record, size),
    S(batch),
    F(batch, records),
    F(batch, count),
    F(batch, generation),
    F(batch, live_generation),
    F(batch, data),
    F(batch, size),
    S(batch_ref),
    F(batch_ref, b),
    F(batch_ref, live),
    F(batch_ref, gen),
    S(record_ref),
    F(record_ref, r),
    F(record_ref, live),
    F(record_ref, gen),
    F(record_ref, index),
    /* codec.h / plainbuffer.h types that lua/lunnel/testing.lua declares too */
    {"record_range", "", sizeof(lunnel_record_range)},
    {"record_range", "origin_offset", offsetof(lunnel_record_range, origin_offset)},
    {"record_range", "action", offsetof(lunnel_record_range, action)},
    {"record_range", "has_origin", offsetof(lunnel_record_range, has_origin)},
    {"codec_error", "", sizeof(lunnel_codec_error)},
    {"codec_error", "offset", offsetof(lunnel_codec_error, offset)},
    {"codec_error", "message", offsetof(lunnel_codec_error, message)},
    {"pb_writer", "", sizeof(lunnel_pb_writer)},
    {"pb_writer", "len", offsetof(lunnel_pb_writer, len)},
    {"pb_writer", "error", offsetof(lunnel_pb_writer, error)},
    {"pb_writer", "state", offsetof(lunnel_pb_writer, state)},
};

int64_t lunnel_record_abi_layout(const char *type, const char *field)
{
    if (!type) return -1;
    if (!field) field = "";
    for (size_t i = 0; i < sizeof layout / sizeof layout[0]; i++)
        if (strcmp(layout[i].type, type) == 0 && strcmp(layout[i].field, field) == 0)
            return (int64_t)layout[i].v;
    return -1;
}

const char *lunnel_record_type_name(int vt)
{
    static const char *const n[] = {"NONE",   "INTEGER", "DOUBLE",  "BOOLEAN", "STRING",
                                    "BINARY", "INF_MIN", "INF_MAX", "NULL",    "AUTO_INCREMENT"};
    return vt >= 0 && vt < (int)(sizeof n / sizeof n[0]) ? n[vt] : "?";
}

const char *lunnel_record_op_name(int op)
{
    static const char *const n[] = {"PUT", "DELETE_ONE_VERSION", "DELETE_ALL_VERSIONS",
                                    "INCREMENT"};
    return op >= 0 && op < (int)(sizeof n / sizeof n[0]) ? n[op] : "?";
}

const char *lunnel_record_action_name(int action)
{
    static const char *const n[] = {"NONE", "PUT", "UPDATE", "DELETE"};
    return action >= 0 && action < (int)(sizeof n / sizeof n[0]) ? n[action] : "?";
}
