/* wal.h: the byte layer of lunnel-emulator's durable state (--data-dir, durable.c): CRC32C,
 * a growable write buffer and a bounds-checked reader for record payloads, record framing,
 * and the scanner that walks a log file and stops, with a precise report, at the first
 * truncated or corrupt record.
 *
 * File layout (the write-ahead log "wal.<gen>" and the snapshot "snapshot" alike):
 *   8-byte magic ("LNLWAL1\n" or "LNLSNP1\n"), then records back to back, each framed as
 *   u32 LE payload length | u32 LE CRC32C (Castagnoli) of the payload | payload.
 * A payload starts with a record type byte; integers inside are little-endian fixed width,
 * byte strings are u32 length + bytes. Nothing here knows what the records mean. */
#ifndef LUNNEL_EMU_WAL_H
#define LUNNEL_EMU_WAL_H

#include <stddef.h>
#include <stdint.h>

#define LUNNEL_EMU_WAL_MAGIC "LNLWAL1\n"
#define LUNNEL_EMU_SNAP_MAGIC "LNLSNP1\n"
#define LUNNEL_EMU_WAL_MAGIC_LEN 8
#define LUNNEL_EMU_WAL_FRAME 8                 /* length + crc */
#define LUNNEL_EMU_WAL_MAX_RECORD (256u << 20) /* larger lengths are corruption */

/* CRC32C (Castagnoli, reflected, init/xorout 0xFFFFFFFF) of `n` bytes; `crc` 0 to start. */
uint32_t lunnel_emu_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable table-driven version (the above uses SSE4.2's crc32 when the CPU has it);
 * exported so tests can compare the two. */
uint32_t lunnel_emu_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* Growable byte buffer. `oom` is set (and further puts ignored) on allocation failure, so a
 * run of puts needs one check at the end. Owns `p`: lunnel_emu_wbuf_free. */
typedef struct emu_wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} emu_wbuf;

void lunnel_emu_wbuf_free(emu_wbuf *b);
void emu_put(emu_wbuf *b, const void *p, size_t n);
void emu_put_u8(emu_wbuf *b, uint8_t v);
void emu_put_u32(emu_wbuf *b, uint32_t v);
void emu_put_u64(emu_wbuf *b, uint64_t v);
static inline void emu_put_i32(emu_wbuf *b, int32_t v)
{
    emu_put_u32(b, (uint32_t)v);
}
static inline void emu_put_i64(emu_wbuf *b, int64_t v)
{
    emu_put_u64(b, (uint64_t)v);
}
void emu_put_bytes(emu_wbuf *b, const void *p, size_t n); /* u32 length + bytes */
void emu_put_str(emu_wbuf *b, const char *s);             /* NULL writes as empty */

/* Framing: begin reserves the 8-byte frame header and returns its position; end fills in the
 * length and CRC of everything appended since. */
size_t lunnel_emu_wal_frame_begin(emu_wbuf *b);
void lunnel_emu_wal_frame_end(emu_wbuf *b, size_t start);

/* Bounds-checked reader over one payload. Any over-read sets `err` and yields zeros / empty
 * strings; callers check `err` once after reading a record. Borrowed bytes. */
typedef struct emu_rbuf {
    const uint8_t *p;
    size_t len, off;
    int err;
} emu_rbuf;

uint8_t emu_get_u8(emu_rbuf *r);
uint32_t emu_get_u32(emu_rbuf *r);
uint64_t emu_get_u64(emu_rbuf *r);
static inline int32_t emu_get_i32(emu_rbuf *r)
{
    return (int32_t)emu_get_u32(r);
}
static inline int64_t emu_get_i64(emu_rbuf *r)
{
    return (int64_t)emu_get_u64(r);
}
/* A u32-length byte string: pointer into the payload (NULL when empty or on error). */
const uint8_t *emu_get_bytes(emu_rbuf *r, uint32_t *len);
/* A string copied into `out` (NUL-terminated); longer than outlen-1 or containing NUL sets
 * err. */
void emu_get_str(emu_rbuf *r, char *out, size_t outlen);

/* Scan results. */
typedef enum lunnel_emu_wal_status {
    LUNNEL_EMU_WAL_OK = 0,    /* every byte belongs to a good record */
    LUNNEL_EMU_WAL_TRUNCATED, /* the last record is cut short (crash mid-write) */
    LUNNEL_EMU_WAL_CORRUPT,   /* bad CRC or impossible length */
    LUNNEL_EMU_WAL_BAD_MAGIC, /* not one of our files (nothing was read) */
    LUNNEL_EMU_WAL_REJECTED,  /* the callback refused a record (bad payload) */
} lunnel_emu_wal_status;
const char *lunnel_emu_wal_strstatus(lunnel_emu_wal_status s);

typedef struct lunnel_emu_wal_scan_result {
    lunnel_emu_wal_status status;
    size_t good_end;  /* offset just past the last good record (where appends continue) */
    uint64_t records; /* good records delivered */
    char msg[256];    /* what was wrong, with the byte offset; "" when OK */
} lunnel_emu_wal_scan_result;

/* Called per good record: payload borrowed for the call, `offset` is the frame's file
 * offset. Return 0 to go on; non-zero rejects the record (scan stops there, REJECTED) and
 * may leave a reason in `why` (size 160). */
typedef int (*lunnel_emu_wal_record_fn)(void *ud, const uint8_t *payload, size_t len, size_t offset,
                                        char *why);

/* Walks `buf` (a whole file) after checking `magic`. Never reads past len. */
void lunnel_emu_wal_scan(const uint8_t *buf, size_t len, const char *magic,
                         lunnel_emu_wal_record_fn fn, void *ud, lunnel_emu_wal_scan_result *res);

#endif
