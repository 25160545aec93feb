/* tunnel_source.h: the narrow interface between the emulator's table store and its Tunnel
 * Service (tunnel*.c). The tunnel side needs only two things from the store:
 *   - every change, in commit order, as it happens (the store's append hook calls
 *     lunnel_emu_tunnels_on_change() with an emu_tunnel_change), and
 *   - a consistent snapshot of a table's current rows when a BaseData/BaseAndStream tunnel
 *     is created (emu_tunnel_source.snapshot).
 * Rows are opaque PlainBuffer bytes here: the store already holds them in delivered form
 * (stream rows with the sequence-info extension, base rows without), so the tunnel side
 * never decodes or re-encodes a row. The primary-key bytes only feed the partition hash, so
 * any canonical encoding of the key works as long as the same key always gives the same
 * bytes. Keeping this interface tiny lets the tunnel state machine be tested without the
 * store or the HTTP server (emulator/tests/test_tunnel_*.c use a fake source). */
#ifndef LUNNEL_EMU_TUNNEL_SOURCE_H
#define LUNNEL_EMU_TUNNEL_SOURCE_H

#include <stddef.h>
#include <stdint.h>

/* Record actions, numbered as the tunnel protocol's ActionType. */
enum { EMU_TUNNEL_PUT = 1, EMU_TUNNEL_UPDATE = 2, EMU_TUNNEL_DELETE = 3 };

/* One committed change. All pointers are borrowed for the duration of the call only: the
 * tunnel side copies what it keeps. */
typedef struct emu_tunnel_change {
    const char *table;
    int action;         /* EMU_TUNNEL_PUT / UPDATE / DELETE */
    const uint8_t *row; /* PlainBuffer (header + one row, with sequence-info ext) */
    size_t row_len;
    const uint8_t *origin; /* PlainBuffer of old values, or NULL */
    size_t origin_len;
    const uint8_t *pk; /* canonical primary-key bytes (hash input only) */
    size_t pk_len;
    int64_t timestamp_ns; /* commit time; retention and stream start/end compare it */
} emu_tunnel_change;

/* One current row of a snapshot; borrowed during the callback only. */
typedef struct emu_tunnel_row {
    const uint8_t *row; /* PlainBuffer (header + one row, no extension) */
    size_t row_len;
    const uint8_t *pk; /* same canonical key bytes as emu_tunnel_change.pk */
    size_t pk_len;
} emu_tunnel_row;

/* Return 0 to go on, non-zero to stop the iteration (snapshot then returns that value). */
typedef int (*emu_tunnel_row_fn)(void *arg, const emu_tunnel_row *row);

/* Implemented by the store adapter (or a test fake). Borrowed by the tunnel registry for
 * its whole life. */
typedef struct emu_tunnel_source {
    void *ctx;
    /* 1 when the table exists, else 0. */
    int (*table_exists)(void *ctx, const char *table);
    /* Calls fn for every current row of `table`, in primary-key order. Must see exactly
     * the rows whose changes were already passed to on_change (the emulator is single
     * threaded, so "now" is consistent). Returns 0, or fn's non-zero value, or -1 when the
     * table does not exist. */
    int (*snapshot)(void *ctx, const char *table, emu_tunnel_row_fn fn, void *arg);
} emu_tunnel_source;

#endif
