/* bytesize.h: byte sizes as people write them, for every option that takes bytes (lunnel
 * run/replay, lunnel-emulator): "67108864", "64MiB", "64 MiB", "512KiB", "1GiB", "1.5GiB";
 * KiB/MiB/GiB/TiB (and K/M/G/T, k) are powers of 1024, KB/MB/GB/TB powers of 1000, "B" or no
 * unit is bytes; units are case-insensitive. Pure function, no dependencies (codec). */
#ifndef LUNNEL_BYTESIZE_H
#define LUNNEL_BYTESIZE_H

#include <stdint.h>

/* 0 with *out set, or -1 (not a size, negative, fraction of a byte, past 2^63). */
int lunnel_bytes_parse(const char *s, uint64_t *out);

#endif
