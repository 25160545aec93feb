/* fuzz_emulator_wal.c: untrusted bytes into the emulator's durable-state reader
 * (emulator/durability/wal.c framing + CRC32C, durable.c record decoding and replay into a store,
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

#include "durability/durable.h"
#include "durability/wal.h"
#include "store/store.h"
#include "tunnel/tunnel.h"
#include "tunnel/tunnel_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* a store feeding a tunnel registry, wired like the emulator's */
    lunnel_emu_tunnel_feed w;
    lunnel_emu_tunnel_feed_init(&w, lunnel_emu_store_new(2));
    lunnel_emu_tunnel_opts o;
    lunnel_emu_tunnel_opts_default(&o);
    o.partitions = 2;
    w.tunnels = lunnel_emu_tunnels_new(&o, &w.src);
    lunnel_emu_store_listen(w.store, lunnel_emu_tunnel_feed_on_store, &w);
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
    lunnel_emu_durable_replay_buffer(w.store, w.tunnels, file, len, data[0] & 1,
                                     devnull ? devnull : stderr, &res);
    free(file);
    /* Use what was restored: list + describe every tunnel, and a housekeeping tick. */
    static const uint8_t list_all[] = {0};
    lunnel_emu_reply r;
    lunnel_emu_tunnels_handle(w.tunnels, "/tunnel/list", list_all, 0, &r);
    lunnel_emu_reply_free(&r);
    lunnel_emu_tunnels_tick(w.tunnels);
    if (devnull) fclose(devnull);
    lunnel_emu_tunnels_free(w.tunnels);
    lunnel_emu_store_free(w.store);
    return 0;
}
