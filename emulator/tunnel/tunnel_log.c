/* tunnel_log.c: the record logs behind every channel. A log keeps each record already
 * encoded as the ReadRecordsResponse `records` field it becomes on the wire, back to back in
 * one buffer, so a ReadRecords batch is one memcpy of a byte range (see tunnel_internal.h).
 * Stream logs are trimmed from the front by retention; logical indexes never move, so a
 * token (which holds a logical index) keeps meaning the same position forever. */
#include <stdlib.h>
#include <string.h>

#include "tunnel/tunnel_internal.h"

size_t emu_pb_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

void emu_reclog_free(emu_reclog *l)
{
    free(l->buf);
    free(l->off);
    free(l->ts);
    memset(l, 0, sizeof *l);
}

static int reserve(emu_reclog *l, size_t more)
{
    if (l->len + more > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + more)
            cap *= 2;
        uint8_t *b = realloc(l->buf, cap);
        if (!b) return -1;
        l->buf = b;
        l->cap = cap;
    }
    if (l->n == l->ncap) {
        size_t ncap = l->ncap ? l->ncap * 2 : 64;
        size_t *off = realloc(l->off, ncap * sizeof *off);
        if (!off) return -1;
        l->off = off;
        int64_t *ts = realloc(l->ts, ncap * sizeof *ts);
        if (!ts) return -1;
        l->ts = ts;
        l->ncap = ncap;
    }
    return 0;
}

int emu_reclog_append(emu_reclog *l, int action, const uint8_t *row, size_t row_len,
                      const uint8_t *origin, size_t origin_len, int64_t ts)
{
    uint8_t hdr[16];
    /* Record message: field 1 varint action, field 2 bytes row, field 3 bytes origin. */
    size_t msg = 2 + 1 + emu_pb_varint(hdr, row_len) + row_len;
    if (origin) msg += 1 + emu_pb_varint(hdr, origin_len) + origin_len;
    size_t total = 1 + emu_pb_varint(hdr, msg) + msg;
    if (reserve(l, total) != 0) return -1;
    uint8_t *p = l->buf + l->len;
    l->off[l->n] = l->len;
    l->ts[l->n] = ts;
    *p++ = 0x0A; /* ReadRecordsResponse.records, length-delimited */
    p += emu_pb_varint(p, msg);
    *p++ = 0x08;
    *p++ = (uint8_t)action;
    *p++ = 0x12;
    p += emu_pb_varint(p, row_len);
    memcpy(p, row, row_len);
    p += row_len;
    if (origin) {
        *p++ = 0x1A;
        p += emu_pb_varint(p, origin_len);
        memcpy(p, origin, origin_len);
        p += origin_len;
    }
    l->len = (size_t)(p - l->buf);
    l->n++;
    return 0;
}

int emu_reclog_append_raw(emu_reclog *l, const uint8_t *field, size_t len, int64_t ts)
{
    if (reserve(l, len) != 0) return -1;
    l->off[l->n] = l->len;
    l->ts[l->n] = ts;
    memcpy(l->buf + l->len, field, len);
    l->len += len;
    l->n++;
    return 0;
}

size_t emu_reclog_trim(emu_reclog *l, int64_t cutoff_ns)
{
    size_t k = l->dead;
    while (k < l->n && l->ts[k] < cutoff_ns)
        k++;
    size_t dropped = k - l->dead;
    l->dead = k;
    if (l->dead == 0 || l->dead * 2 < l->n) return dropped;
    /* Compact: move the live entries to the front. */
    size_t cut = k < l->n ? l->off[k] : l->len;
    memmove(l->buf, l->buf + cut, l->len - cut);
    l->len -= cut;
    for (size_t i = k; i < l->n; i++) {
        l->off[i - k] = l->off[i] - cut;
        l->ts[i - k] = l->ts[i];
    }
    l->n -= k;
    l->base += k;
    l->dead = 0;
    return dropped;
}

/* FNV-1a: stable, cheap, spreads short keys well enough for partitioning. */
uint32_t emu_key_hash(const uint8_t *pk, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= pk[i];
        h *= 16777619u;
    }
    return h;
}
