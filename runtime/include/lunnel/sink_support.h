/* sink_support.h: the C half of the Lua sinks in lua/lunnel/sinks/ (DESIGN.md "Who may include
 * whom": sinks -> net/sign + their own blocking curl). LuaJIT calls these through the FFI
 * (lua/lunnel/sinks/native.lua holds the only cdef of this header).
 *
 *   lunnel_sink_http   one blocking libcurl easy handle per sink, used by one Lua worker
 *                      thread at a time (never the loop thread): POST a body, keep the
 *                      response body and status. No Lua callbacks: the write/header
 *                      callbacks are C functions here.
 *   lunnel_sink_ots_headers  the signed x-ots-* headers of a table data API call (shared
 *                      signing of net/sign.c).
 *   lunnel_sink_bwr    a BatchWriteRowRequest being built from record views: each record
 *                      becomes a PutRow / UpdateRow / DeleteRow row change in PlainBuffer
 *                      (the real writer of codec/), cell timestamps and ops kept; then the
 *                      protobuf body, and the per-row results of the response.
 *
 * All handles are opaque, owned by the caller (free with the matching _free), and not shared
 * between threads. */
#ifndef LUNNEL_SINK_SUPPORT_H
#define LUNNEL_SINK_SUPPORT_H

#include "lunnel/export.h"

#include <stddef.h>
#include <stdint.h>

#include "lunnel/record.h"

/* Error codes of this subsystem. */
typedef enum lunnel_sink_code {
    LUNNEL_SINK_OK = 0,
    LUNNEL_SINK_NOMEM = 1,        /* out of memory */
    LUNNEL_SINK_USAGE = 2,        /* bad argument, too many rows, call out of order */
    LUNNEL_SINK_ENCODE = 3,       /* the PlainBuffer writer refused a value (message says which) */
    LUNNEL_SINK_TRANSPORT = 4,    /* no HTTP response: connect, TLS, timeout, reset */
    LUNNEL_SINK_BAD_RESPONSE = 5, /* a 2xx response that does not parse or does not match */
} lunnel_sink_code;

/* Static string naming a lunnel_sink_code ("?" when unknown). */
LUNNEL_API const char *lunnel_sink_strerror(int code);

/* ---- blocking HTTP POST -------------------------------------------------------------- */

typedef struct lunnel_sink_http lunnel_sink_http;

/* NULL on out of memory or when libcurl cannot make a handle. */
LUNNEL_API lunnel_sink_http *lunnel_sink_http_new(void);
LUNNEL_API void lunnel_sink_http_free(lunnel_sink_http *h);

/* POSTs body (len bytes, borrowed for the call) to url with extra headers given as one
 * string of "Name: value" lines separated by '\n' (NULL or "" for none; "Expect:" is always
 * sent empty). timeout_ms bounds the whole transfer (0: 60 s). ca_file: a PEM bundle for
 * HTTPS, NULL for the system store. Blocks the calling thread.
 * Returns LUNNEL_SINK_OK when a response arrived (whatever its status: *status_out), else
 * LUNNEL_SINK_TRANSPORT / NOMEM / USAGE with lunnel_sink_http_error() saying why. */
LUNNEL_API int lunnel_sink_http_post(lunnel_sink_http *h, const char *url, const char *headers,
                                     const void *body, size_t len, long timeout_ms,
                                     const char *ca_file, long *status_out);
/* The last response body; valid until the next post or free. *len_out may be 0. */
LUNNEL_API const uint8_t *lunnel_sink_http_body(const lunnel_sink_http *h, size_t *len_out);
/* The last response's x-ots-requestid header ("" when absent). Valid until the next post. */
LUNNEL_API const char *lunnel_sink_http_request_id(const lunnel_sink_http *h);
/* The last error message ("" after success). Valid until the next post. */
LUNNEL_API const char *lunnel_sink_http_error(const lunnel_sink_http *h);

/* ---- table data API signing ---------------------------------------------------------- */

/* Writes the headers of a signed data API call (x-ots-apiversion 2015-12-31) for a POST of
 * body to path (e.g. "/BatchWriteRow") at the current time, as '\n'-separated "Name: value"
 * lines ready for lunnel_sink_http_post: x-ots-date, x-ots-apiversion, x-ots-accesskeyid,
 * x-ots-instancename, x-ots-contentmd5, [x-ots-ststoken], x-ots-signature, Content-Type.
 * sts_token NULL or "" for none. Returns LUNNEL_SINK_OK, or USAGE when out is too small
 * (1024 + the lengths of the arguments is always enough) or an argument is NULL. */
LUNNEL_API int lunnel_sink_ots_headers(const char *path, const char *instance,
                                       const char *access_key_id, const char *access_key_secret,
                                       const char *sts_token, const void *body, size_t len,
                                       char *out, size_t cap);

/* ---- BatchWriteRow ------------------------------------------------------------------- */

#define LUNNEL_SINK_BWR_MAX_ROWS 200 /* the service's limit per request */

typedef struct lunnel_sink_bwr lunnel_sink_bwr;

/* A builder for one target table (name copied). NULL on out of memory. */
LUNNEL_API lunnel_sink_bwr *lunnel_sink_bwr_new(const char *table);
LUNNEL_API void lunnel_sink_bwr_free(lunnel_sink_bwr *b);
/* Forgets every row (memory kept). */
LUNNEL_API void lunnel_sink_bwr_clear(lunnel_sink_bwr *b);

/* Appends the row change that replays record r on the target table (r is read during the
 * call only: its bytes are copied):
 *   action PUT (or NONE, e.g. rows read with GetRange): PutRow, pk + every PUT cell with its
 *     timestamp when it has one;
 *   UPDATE: UpdateRow, pk + every cell with its op (PUT / DELETE_ONE_VERSION /
 *     DELETE_ALL_VERSIONS) and timestamp; an UPDATE with no cells is skipped;
 *   DELETE: DeleteRow, pk + delete marker.
 * Condition IGNORE (replay must not depend on the target's state). Sequence info is not sent.
 * Returns 0 (added), 1 (skipped: nothing to apply), or a negative lunnel_sink_code
 * (-LUNNEL_SINK_USAGE when the builder already holds LUNNEL_SINK_BWR_MAX_ROWS rows,
 * -LUNNEL_SINK_ENCODE with lunnel_sink_bwr_message() naming the column). After an error
 * the builder's buffer is unusable: call lunnel_sink_bwr_clear. */
LUNNEL_API int lunnel_sink_bwr_add(lunnel_sink_bwr *b, const lunnel_record *r);
/* Rows held, and the PlainBuffer bytes they take. */
LUNNEL_API uint32_t lunnel_sink_bwr_count(const lunnel_sink_bwr *b);
LUNNEL_API size_t lunnel_sink_bwr_bytes(const lunnel_sink_bwr *b);

/* Serializes a BatchWriteRowRequest of every row held. *body_out is owned by b, valid until
 * the next encode, clear or free. Returns LUNNEL_SINK_OK or a lunnel_sink_code. */
LUNNEL_API int lunnel_sink_bwr_encode(lunnel_sink_bwr *b, const uint8_t **body_out,
                                      size_t *len_out);

/* Reads a 2xx BatchWriteRowResponse for the request last encoded. Returns the number of rows
 * that failed (0: all applied), or -1 when the body does not parse or its row count differs
 * (lunnel_sink_bwr_message() says so). *fatal_out is set to 1 when some failed row carries a
 * code that retrying cannot fix (anything but busy / timeout / unavailable / internal /
 * conflict / quota codes); lunnel_sink_bwr_message() names the first failure:
 * "row <i>: <code>: <message>" (i 0-based in the request). */
LUNNEL_API int lunnel_sink_bwr_check_response(lunnel_sink_bwr *b, const uint8_t *body, size_t len,
                                              int *fatal_out);
/* After check_response: drops the rows that were applied, keeping the failed ones (in their
 * order) for a retry. */
LUNNEL_API void lunnel_sink_bwr_keep_failed(lunnel_sink_bwr *b);
/* The last message ("" when none); valid until the next call on b. */
LUNNEL_API const char *lunnel_sink_bwr_message(const lunnel_sink_bwr *b);

/* Describes a non-2xx data API response body (protobuf Error{code, message}) as
 * "<code>: <message>" into out (NUL-terminated, truncated to cap), or "unparsable error body
 * (<n> bytes)". Returns 1 when the code is one a retry may clear (busy, timeout, unavailable,
 * internal error, quota, row conflict), else 0. */
LUNNEL_API int lunnel_sink_ots_error(const uint8_t *body, size_t len, char *out, size_t cap);

#endif
