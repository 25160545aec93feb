/* curl_capture.h: what the net layer's libcurl write/header callbacks share when they keep
 * a response: a body buffer that grows by doubling, and one header's value picked out of
 * the raw header lines (e.g. x-ots-requestid for error messages). Private to lunnel_net. */
#ifndef LUNNEL_NET_CURL_CAPTURE_H
#define LUNNEL_NET_CURL_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

/* Makes *buf (heap, capacity *cap) hold at least `need` bytes: doubles from 4096 up to it,
 * keeping the contents. Returns 0, or -1 when out of memory (*buf, *cap unchanged). */
int lunnel_net_capture_reserve(uint8_t **buf, size_t *cap, size_t need);

/* When the raw header line (`len` bytes, as libcurl hands it: "Name: value\r\n") starts
 * with `prefix` (the name and its colon, any case), copies the value without leading blanks
 * and trailing CR/LF/spaces into `out` (NUL-terminated, cut to outlen - 1 bytes) and returns
 * 1; else returns 0 and leaves `out` alone. */
int lunnel_net_capture_header(const char *line, size_t len, const char *prefix, char *out,
                              size_t outlen);

#endif
