/* http_parse.h: parser for the head of one HTTP/1.1 request (request line, headers, framing).
 * Pure function over bytes, no allocation: the server feeds it its input buffer until a whole
 * request is there; the fuzz target feeds it anything. Only what the Tablestore protocol
 * uses is supported: Content-Length framing (chunked bodies are refused), keep-alive. */
#ifndef LUNNEL_EMU_HTTP_PARSE_H
#define LUNNEL_EMU_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LUNNEL_EMU_HTTP_MAX_HEADERS 64
#define LUNNEL_EMU_HTTP_MAX_HEAD 65536 /* request line + headers */

/* A byte range inside the parsed buffer (not NUL-terminated). */
typedef struct lunnel_emu_span {
    const char *p;
    size_t len;
} lunnel_emu_span;

typedef struct lunnel_emu_http_req {
    lunnel_emu_span method;
    lunnel_emu_span target; /* as sent, query included */
    lunnel_emu_span path;   /* target without "?query" */
    int minor_version;      /* HTTP/1.x */
    lunnel_emu_span names[LUNNEL_EMU_HTTP_MAX_HEADERS];
    lunnel_emu_span values[LUNNEL_EMU_HTTP_MAX_HEADERS]; /* trimmed of spaces and tabs */
    size_t n_headers;
    size_t head_len; /* bytes of request line + headers + blank line */
    size_t content_length;
    bool keep_alive;      /* HTTP/1.1 default on; "Connection: close" turns it off */
    bool expect_continue; /* "Expect: 100-continue" */
} lunnel_emu_http_req;

typedef enum lunnel_emu_http_result {
    LUNNEL_EMU_HTTP_INCOMPLETE = 0, /* need more bytes */
    LUNNEL_EMU_HTTP_HEAD_DONE = 1,  /* head parsed; body is content_length bytes after it */
    LUNNEL_EMU_HTTP_ERROR = -1,     /* malformed: *status and err tell why */
} lunnel_emu_http_result;

/* Parses the head at the start of buf[0..len). On ERROR, *status is the HTTP status to
 * answer (400 malformed, 413 too large, 431 headers too large, 501 chunked, 505 version)
 * and `err` a message naming the problem and its byte offset. `max_body` bounds
 * Content-Length (413 beyond). Never reads outside buf[0..len). */
lunnel_emu_http_result lunnel_emu_http_parse(const char *buf, size_t len, size_t max_body,
                                             lunnel_emu_http_req *out, int *status, char *err,
                                             size_t errlen);

/* Case-insensitive header lookup; NULL when absent. */
const lunnel_emu_span *lunnel_emu_http_header(const lunnel_emu_http_req *r, const char *name);

#endif
