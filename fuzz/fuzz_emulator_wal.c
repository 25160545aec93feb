/* fuzz_emulator_wal.c: untrusted bytes into the emulator's durable-state reader
 * (emulator/wal.c framing + CRC32C, durable.c record decoding and replay into a store,
 * tunnel_persist.c tunnel/partition/log records). Byte 0 picks the file kind (bit 0: 1 =
 * snapshot, 0 = write-ahead log) and bit 1 asks to recompute every frame's CRC32C first, so
 * mutated payloads reach the record decoders instead of stopping at the checksum; the rest
 * is the file. Each input replays into a fresh
 * store + tunnel registry wired like the emulator's, then a few tunnel calls run on the
 * result so restored state is also used, not just built. Seeds: real files written by the
 * emulator (fuzz/corpus/emulator_wal/). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "store.h"
#include "tunnel.h"
#include "wal.h"

typedef struct world {
    lunnel_emu_store *st;
    lunnel_emu_tunnels *tu;
} world;

static int src_exists(void *ctx, const char *table)
{
    world *w = ctx;
    return lunnel_emu_store_table(w->st, table) != NULL;
}

static int src_snapshot(void *ctx, const char *table, emu_tunnel_row_fn fn, void *arg)
{
    world *w = ctx;
    lunnel_emu_table *t = lunnel_emu_store_table(w->st, table);
    lunnel_emu_snapshot *s = t ? lunnel_emu_table_snapshot(t) : NULL;
    if (!s) return -1;
    int rc = 0;
    for (size_t i = 0; i < s->n_rows && rc == 0; i++) {
        emu_tunnel_row row = {s->rows[i].row, s->rows[i].row_len, s->rows[i].pk, s->rows[i].pk_len};
        rc = fn(arg, &row);
    }
    lunnel_emu_snapshot_free(s);
    return rc;
}

static void on_store(void *ud, lunnel_emu_store_event ev, const lunnel_emu_table *table,
                     const lunnel_emu_change *c)
{
    world *w = ud;
    if (ev == LUNNEL_EMU_EV_TABLE_DELETED)
        lunnel_emu_tunnels_drop_table(w->tu, lunnel_emu_table_name(table));
    if (ev != LUNNEL_EMU_EV_CHANGE_APPENDED) return;
    emu_tunnel_change ch = {
        lunnel_emu_table_name(table), (int)c->action, c->row, c->row_len, NULL, 0, c->pk, c->pk_len,
        c->timestamp_us * 1000};
    lunnel_emu_tunnels_on_change(w->tu, &ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    world w;
    w.st = lunnel_emu_store_new(2);
    emu_tunnel_source src = {&w, src_exists, src_snapshot};
    lunnel_emu_tunnel_opts o;
    lunnel_emu_tunnel_opts_default(&o);
    o.partitions = 2;
    w.tu = lunnel_emu_tunnels_new(&o, &src);
    lunnel_emu_store_listen(w.st, on_store, &w);
    uint8_t *file = malloc(size);
    if (!file) return 0;
    memcpy(file, data + 1, size - 1);
    size_t len = size - 1;
    if (data[0] & 2) {
        size_t off = LUNNEL_EMU_WAL_MAGIC_LEN;
        while (off + LUNNEL_EMU_WAL_FRAME <= len) {
            uint32_t n = (uint32_t)file[off] | (uint32_t)file[off + 1] << 8 |
                         (uint32_t)file[off + 2] << 16 | (uint32_t)file[off + 3] << 24;
            if (n > len - off - LUNNEL_EMU_WAL_FRAME) break;
            uint32_t crc = lunnel_emu_crc32c(0, file + off + LUNNEL_EMU_WAL_FRAME, n);
            for (int i = 0; i < 4; i++)
                file[off + 4 + i] = (uint8_t)(crc >> (8 * i));
            off += LUNNEL_EMU_WAL_FRAME + n;
        }
    }
    FILE *devnull = fopen("/dev/null", "w");
    lunnel_emu_wal_scan_result res;
    lunnel_emu_durable_replay_buffer(w.st, w.tu, file, len, data[0] & 1, devnull ? devnull : stderr,
                                     &res);
    free(file);
    /* Use what was restored: list + describe every tunnel, and a housekeeping tick. */
    static const uint8_t list_all[] = {0};
    lunnel_emu_reply r;
    lunnel_emu_tunnels_handle(w.tu, "/tunnel/list", list_all, 0, &r);
    lunnel_emu_reply_free(&r);
    lunnel_emu_tunnels_tick(w.tu);
    if (devnull) fclose(devnull);
    lunnel_emu_tunnels_free(w.tu);
    lunnel_emu_store_free(w.st);
    return 0;
}
