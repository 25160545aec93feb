/* json.h: the one JSON string escaper of lunnel (codec, pure bytes, no dependencies), used by
 * r:tojson(), the JSON log lines, dead-letter files and the CLI's JSON output so they all
 * agree byte for byte. Rules: the result is quoted; '"' and '\\' are backslash-escaped;
 * \n \r \t use their short forms, other bytes below 0x20 are \u00XX (lower-case hex);
 * 0x7F and valid UTF-8 pass through unchanged; each byte of an invalid UTF-8 sequence
 * (overlong, surrogate, > U+10FFFF, truncated) becomes \ufffd, so the output is always
 * valid JSON. '/' is not escaped. NULL handling (null vs "") stays with the callers. */
#ifndef LUNNEL_JSON_H
#define LUNNEL_JSON_H

#include <stddef.h>

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

#endif
