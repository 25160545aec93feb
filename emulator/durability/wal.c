/* wal.c: CRC32C, record framing, payload buffers and the log scanner of the emulator's
 * durable state (see wal.h for the file layout). */
#include "durability/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slicing-by-8 tables for the reflected Castagnoli polynomial 0x82F63B78: snapshots of a
 * million rows are hundreds of MB, so the bytewise loop would dominate start-up. */
static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            crc_tab[s][i] = (crc_tab[s - 1][i] >> 8) ^ crc_tab[0][crc_tab[s - 1][i] & 0xFF];
    crc_ready = 1;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_HW_CRC 1
/* SSE4.2 has a CRC32C instruction (8 bytes per step): snapshots are hundreds of MB. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

uint32_t lunnel_emu_crc32c(uint32_t crc, const void *data, size_t n)
{
#ifdef HAVE_HW_CRC
    static int hw = -1;
    if (hw < 0) hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw) return crc_hw(crc, data, n);
#endif
    return lunnel_emu_crc32c_sw(crc, data, n);
}

uint32_t lunnel_emu_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    if (!crc_ready) crc_init();
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_tab[7][lo & 0xFF] ^ crc_tab[6][(lo >> 8) & 0xFF] ^ crc_tab[5][(lo >> 16) & 0xFF] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
            crc_tab[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xFF];
    return ~c;
}

/* ---- write buffer ---- */

void lunnel_emu_wbuf_free(emu_wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void emu_put(emu_wbuf *b, const void *p, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

void emu_put_u8(emu_wbuf *b, uint8_t v)
{
    emu_put(b, &v, 1);
}

void emu_put_u32(emu_wbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    emu_put(b, x, 4);
}

void emu_put_u64(emu_wbuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    emu_put(b, x, 8);
}

void emu_put_bytes(emu_wbuf *b, const void *p, size_t n)
{
    emu_put_u32(b, (uint32_t)n);
    emu_put(b, p, n);
}

void emu_put_str(emu_wbuf *b, const char *s)
{
    emu_put_bytes(b, s, s ? strlen(s) : 0);
}

size_t lunnel_emu_wal_frame_begin(emu_wbuf *b)
{
    size_t at = b->len;
    uint8_t z[LUNNEL_EMU_WAL_FRAME] = {0};
    emu_put(b, z, sizeof z);
    return at;
}

void lunnel_emu_wal_frame_end(emu_wbuf *b, size_t start)
{
    if (b->oom) return;
    size_t n = b->len - start - LUNNEL_EMU_WAL_FRAME;
    uint32_t crc = lunnel_emu_crc32c(0, b->p + start + LUNNEL_EMU_WAL_FRAME, n);
    uint8_t *h = b->p + start;
    for (int i = 0; i < 4; i++) {
        h[i] = (uint8_t)(n >> (8 * i));
        h[4 + i] = (uint8_t)(crc >> (8 * i));
    }
}

/* ---- reader ---- */

static const uint8_t *take(emu_rbuf *r, size_t n)
{
    if (r->err || n > r->len - r->off) {
        r->err = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint8_t emu_get_u8(emu_rbuf *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t emu_get_u32(emu_rbuf *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
             : 0;
}

uint64_t emu_get_u64(emu_rbuf *r)
{
    const uint8_t *p = take(r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 7; i >= 0; i--)
            v = v << 8 | p[i];
    return v;
}

const uint8_t *emu_get_bytes(emu_rbuf *r, uint32_t *len)
{
    uint32_t n = emu_get_u32(r);
    const uint8_t *p = take(r, n);
    *len = p ? n : 0;
    return p && n ? p : NULL;
}

void emu_get_str(emu_rbuf *r, char *out, size_t outlen)
{
    uint32_t n;
    const uint8_t *p = emu_get_bytes(r, &n);
    out[0] = 0;
    if (r->err) return;
    if (n >= outlen || (n && memchr(p, 0, n))) {
        r->err = 1;
        return;
    }
    if (n) memcpy(out, p, n);
    out[n] = 0;
}

/* ---- scanner ---- */

const char *lunnel_emu_wal_strstatus(lunnel_emu_wal_status s)
{
    switch (s) {
    case LUNNEL_EMU_WAL_OK:
        return "ok";
    case LUNNEL_EMU_WAL_TRUNCATED:
        return "truncated record";
    case LUNNEL_EMU_WAL_CORRUPT:
        return "corrupt record";
    case LUNNEL_EMU_WAL_BAD_MAGIC:
        return "not a lunnel-emulator data file";
    case LUNNEL_EMU_WAL_REJECTED:
        return "unreadable record";
    }
    return "?";
}

void lunnel_emu_wal_scan(const uint8_t *buf, size_t len, const char *magic,
                         lunnel_emu_wal_record_fn fn, void *ud, lunnel_emu_wal_scan_result *res)
{
    memset(res, 0, sizeof *res);
    if (len < LUNNEL_EMU_WAL_MAGIC_LEN || memcmp(buf, magic, LUNNEL_EMU_WAL_MAGIC_LEN) != 0) {
        res->status = LUNNEL_EMU_WAL_BAD_MAGIC;
        snprintf(res->msg, sizeof res->msg,
                 "offset 0: file does not start with the magic \"%.7s\\n\" (%zu bytes long)", magic,
                 len);
        return;
    }
    size_t off = LUNNEL_EMU_WAL_MAGIC_LEN;
    res->good_end = off;
    while (off < len) {
        size_t left = len - off;
        if (left < LUNNEL_EMU_WAL_FRAME) {
            res->status = LUNNEL_EMU_WAL_TRUNCATED;
            snprintf(res->msg, sizeof res->msg,
                     "offset %zu: record header cut short (%zu of %d bytes)", off, left,
                     LUNNEL_EMU_WAL_FRAME);
            return;
        }
        const uint8_t *h = buf + off;
        uint32_t n =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        uint32_t crc =
            (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
        if (n == 0 || n > LUNNEL_EMU_WAL_MAX_RECORD) {
            res->status = LUNNEL_EMU_WAL_CORRUPT;
            snprintf(res->msg, sizeof res->msg, "offset %zu: impossible record length %u", off, n);
            return;
        }
        if ((size_t)n > left - LUNNEL_EMU_WAL_FRAME) {
            res->status = LUNNEL_EMU_WAL_TRUNCATED;
            snprintf(res->msg, sizeof res->msg,
                     "offset %zu: record of %u bytes cut short (%zu bytes left in the file)", off,
                     n, left - LUNNEL_EMU_WAL_FRAME);
            return;
        }
        const uint8_t *payload = h + LUNNEL_EMU_WAL_FRAME;
        uint32_t got = lunnel_emu_crc32c(0, payload, n);
        if (got != crc) {
            res->status = LUNNEL_EMU_WAL_CORRUPT;
            snprintf(res->msg, sizeof res->msg,
                     "offset %zu: CRC32C mismatch in a %u-byte record (stored %08x, computed %08x)",
                     off, n, crc, got);
            return;
        }
        char why[160] = "";
        if (fn && fn(ud, payload, n, off, why) != 0) {
            res->status = LUNNEL_EMU_WAL_REJECTED;
            snprintf(res->msg, sizeof res->msg, "offset %zu: record type %u: %s", off,
                     (unsigned)payload[0], why[0] ? why : "malformed payload");
            return;
        }
        off += LUNNEL_EMU_WAL_FRAME + n;
        res->good_end = off;
        res->records++;
    }
}
