/* codec_internal.h: helpers shared by the codec's .c files only (not public). */
#ifndef LUNNEL_CODEC_INTERNAL_H
#define LUNNEL_CODEC_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "lunnel/codec.h"
#include "lunnel/record.h"

/* PlainBuffer wire constants (PROTOCOL.md section 4). */
enum {
    PB_HEADER = 0x75,
    TAG_ROW_PK = 0x01,
    TAG_ROW_DATA = 0x02,
    TAG_CELL = 0x03,
    TAG_CELL_NAME = 0x04,
    TAG_CELL_VALUE = 0x05,
    TAG_CELL_TYPE = 0x06,
    TAG_CELL_TIMESTAMP = 0x07,
    TAG_DELETE_ROW_MARKER = 0x08,
    TAG_ROW_CHECKSUM = 0x09,
    TAG_CELL_CHECKSUM = 0x0A,
    TAG_EXTENSION = 0x0B,
    TAG_SEQ_INFO = 0x0C,
    TAG_SEQ_INFO_EPOCH = 0x0D,
    TAG_SEQ_INFO_TS = 0x0E,
    TAG_SEQ_INFO_ROW_INDEX = 0x0F,

    WIRE_VT_INTEGER = 0x0,
    WIRE_VT_DOUBLE = 0x1,
    WIRE_VT_BOOLEAN = 0x2,
    WIRE_VT_STRING = 0x3,
    WIRE_VT_NULL = 0x6,
    WIRE_VT_BLOB = 0x7,
    WIRE_VT_INF_MIN = 0x9,
    WIRE_VT_INF_MAX = 0xA,
    WIRE_VT_AUTO_INCREMENT = 0xB,

    WIRE_OP_DELETE_ALL = 0x01,
    WIRE_OP_DELETE_ONE = 0x03,
    WIRE_OP_INCREMENT = 0x04,
};

/* The CRC-8 slice tables (crc8.c; T[0] is the byte-at-a-time table). */
extern const uint8_t codec_crc8_T[8][256];
#define codec_crc8_t0 (codec_crc8_T[0])

/* lunnel_crc8, inlinable: the decoder feeds it short pieces (names, 9-byte integers, short
 * strings) where a call and the generic loop setup would cost more than the lookups. Only
 * the first byte of each 8-byte step meets the running crc (an 8-bit register), so the
 * other seven lookups stay off the dependency chain and are combined as a tree. */
static inline uint8_t codec_crc8(uint8_t crc, const uint8_t *p, size_t len)
{
    const uint8_t(*T)[256] = codec_crc8_T;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* little-endian host assumed (x86-64, aarch64) */
        uint8_t rest = (uint8_t)((T[6][(w >> 8) & 0xff] ^ T[5][(w >> 16) & 0xff]) ^
                                 (T[4][(w >> 24) & 0xff] ^ T[3][(w >> 32) & 0xff]) ^
                                 (T[2][(w >> 40) & 0xff] ^ T[1][(w >> 48) & 0xff]) ^ T[0][w >> 56]);
        crc = T[7][(uint8_t)(w ^ crc)] ^ rest;
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        uint8_t rest = (uint8_t)(T[2][(w >> 8) & 0xff] ^ T[1][(w >> 16) & 0xff] ^ T[0][w >> 24]);
        crc = T[3][(uint8_t)(w ^ crc)] ^ rest;
        p += 4;
        len -= 4;
    }
    while (len--)
        crc = T[0][crc ^ *p++];
    return crc;
}

/* Fills err (when non-NULL) with "record R at byte O: <code name>: <fmt...>" and returns code. */
int codec_fail(lunnel_codec_error *err, int code, int32_t record, uint64_t offset, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));

static inline uint32_t rd_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t rd_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* FNV-1a 32, the lunnel_column.name_hash. */
static inline uint32_t codec_name_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* First <= 8 name bytes, little-endian, zero-padded: the lunnel_column.name_prefix. */
static inline uint64_t codec_name_prefix(const uint8_t *p, size_t n)
{
    if (n >= 8) return rd_u64(p);
    /* Built in a register: a variable-length memcpy into a stack word followed by an 8-byte
     * load defeats store forwarding (it cost a quarter of the decoder's time). */
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Arena internals the decoder needs: growable scratch vectors owned by the arena. */
lunnel_column *arena_scratch_cols(lunnel_arena *a, uint32_t need);
lunnel_record *arena_scratch_rows(lunnel_arena *a, uint32_t need);

#endif
