/* json.h: the one JSON writer of lunnel (base): the string escaper and a document writer on a
 * lunnel_buf. The JSON log lines, dead-letter files and the CLI's JSON output are written
 * with it; r:tojson() (codec/record_json.c) streams through the same escaper into the
 * caller's fixed buffer (the record hot path: no allocation per record), so they all agree
 * byte for byte. Rules: the result is quoted; '"' and '\\' are backslash-escaped;
 * \n \r \t use their short forms, other bytes below 0x20 are \u00XX (lower-case hex);
 * 0x7F and valid UTF-8 pass through unchanged; each byte of an invalid UTF-8 sequence
 * (overlong, surrogate, > U+10FFFF, truncated) becomes \ufffd, so the output is always
 * valid JSON. '/' is not escaped. NULL handling (null vs "") stays with the callers. */
#ifndef LUNNEL_JSON_H
#define LUNNEL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/buf.h"

/* Receives consecutive pieces of the output; ctx is the caller's own buffer. */
typedef void (*lunnel_json_write_fn)(void *ctx, const char *p, size_t n);

/* Streams s[0..n) as a quoted JSON string through write (verbatim runs in one call).
 * s may contain NUL bytes (written as \u0000); s may be NULL only when n == 0. */
void lunnel_json_write_string(const char *s, size_t n, lunnel_json_write_fn write, void *ctx);

/* snprintf-style: writes the quoted JSON string of s[0..n) into out (at most cap bytes,
 * always NUL-terminated when cap > 0, truncated output may end mid-escape) and returns the
 * length the full result needs, excluding the NUL. out may be NULL when cap == 0. */
size_t lunnel_json_escape(char *out, size_t cap, const char *s, size_t n);

/* 1 when s[0..n) is entirely valid UTF-8 (what lunnel_json_write_string passes unchanged). */
int lunnel_json_is_utf8(const char *s, size_t n);

/* A JSON document written into a lunnel_buf: the writer places the commas and colons.
 *   lunnel_jw w; lunnel_jw_init(&w, &buf);
 *   lunnel_jw_object(&w); lunnel_jw_key(&w, "n"); lunnel_jw_int(&w, 3); lunnel_jw_end(&w);
 * Nesting up to 64 levels (deeper ones are written but their commas are not tracked). */
typedef struct lunnel_jw {
    lunnel_buf *b;
    unsigned depth;
    uint64_t has_item; /* bit d: the container at depth d already holds an item */
    int after_key;     /* a key was written: the next value takes no comma */
} lunnel_jw;

void lunnel_jw_init(lunnel_jw *w, lunnel_buf *b);
void lunnel_jw_object(lunnel_jw *w); /* '{' */
void lunnel_jw_array(lunnel_jw *w);  /* '[' */
void lunnel_jw_end_object(lunnel_jw *w);
void lunnel_jw_end_array(lunnel_jw *w);
void lunnel_jw_key(lunnel_jw *w, const char *key);
void lunnel_jw_keyn(lunnel_jw *w, const char *key, size_t n);
void lunnel_jw_str(lunnel_jw *w, const char *s); /* NULL -> null */
void lunnel_jw_strn(lunnel_jw *w, const char *s, size_t n);
void lunnel_jw_int(lunnel_jw *w, int64_t v);
void lunnel_jw_uint(lunnel_jw *w, uint64_t v);
void lunnel_jw_bool(lunnel_jw *w, int v);
void lunnel_jw_null(lunnel_jw *w);
/* The separator before a value the caller appends to w->b itself (base64, a record). */
void lunnel_jw_value(lunnel_jw *w);
/* Text that is already JSON (a number, a nested document rendered elsewhere). */
void lunnel_jw_raw(lunnel_jw *w, const char *json, size_t n);

#endif
