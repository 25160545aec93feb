/* curl_capture.h: what lunnel's two libcurl clients (net/http.c on the loop, the sinks'
 * blocking sinks/sink_http.c) share: libcurl's global initialisation, done once per process,
 * and one header's value picked out of the raw header lines (e.g. x-ots-requestid for error
 * messages). Response bodies grow with lunnel_vec_reserve (base). Private to the runtime. */
#ifndef LUNNEL_NET_CURL_CAPTURE_H
#define LUNNEL_NET_CURL_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

/* curl_global_init once per process, from any thread (libcurl requires it before the first
 * handle and is not thread-safe doing it itself). 0 ok, -1 when it failed (every call then
 * returns -1). */
int lunnel_net_curl_global_init(void);

/* When the raw header line (`len` bytes, as libcurl hands it: "Name: value\r\n") starts
 * with `prefix` (the name and its colon, any case), copies the value without leading blanks
 * and trailing CR/LF/spaces into `out` (NUL-terminated, cut to outlen - 1 bytes) and returns
 * 1; else returns 0 and leaves `out` alone. */
int lunnel_net_capture_header(const char *line, size_t len, const char *prefix, char *out,
                              size_t outlen);

#endif
