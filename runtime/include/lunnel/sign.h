/* sign.h: request signing of the Tablestore / Tunnel protocol (PROTOCOL.md section 1).
 * Pure functions, no I/O: shared by the client (net/http.c) and lunnel-emulator, which
 * verifies every request with the very same code. */
#ifndef LUNNEL_SIGN_H
#define LUNNEL_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "lunnel/timeutil.h"

/* One HTTP header as name/value strings; both borrowed from the caller. */
typedef struct lunnel_header {
    const char *name;
    const char *value;
} lunnel_header;

#define LUNNEL_SIGN_B64_LEN 29             /* base64 of a 20-byte HMAC-SHA1, plus NUL */
#define LUNNEL_MD5_B64_LEN 25              /* base64 of a 16-byte MD5, plus NUL */
#define LUNNEL_DATE_LEN LUNNEL_TIME_MS_LEN /* "2026-11-21T10:00:00.000Z" plus NUL */

/* Computes x-ots-signature for a POST to `path`: base64(HMAC-SHA1(secret, S)) with
 * S = path "\n" "POST" "\n" "\n" H, H = every x-ots-* header of `headers` except
 * x-ots-signature, names lower-cased, sorted, each "name:trimmed-value\n".
 * Other headers in the list are ignored. Writes a NUL-terminated string to `out`.
 * Returns 0, or -1 when the header list is unusable (more than 64 x-ots headers). */
int lunnel_sign_request(const char *secret, const char *path, const lunnel_header *headers,
                        size_t n_headers, char out[LUNNEL_SIGN_B64_LEN]);

/* The service's response signature (what the official SDKs verify in the `authorization`
 * header, "OTS <access key id>:<signature>"): base64(HMAC-SHA1(secret, H + path)) with H as
 * above over the response's x-ots-* headers. Returns 0, or -1 as lunnel_sign_request. */
int lunnel_sign_response(const char *secret, const char *path, const lunnel_header *headers,
                         size_t n_headers, char out[LUNNEL_SIGN_B64_LEN]);

/* x-ots-contentmd5: base64 of the MD5 of the body. */
void lunnel_sign_content_md5(const void *body, size_t len, char out[LUNNEL_MD5_B64_LEN]);

/* x-ots-date for a time in milliseconds since the epoch, UTC, e.g. 2026-11-21T10:00:00.000Z. */
void lunnel_sign_format_date(int64_t epoch_ms, char out[LUNNEL_DATE_LEN]);

/* Constant-time comparison of two NUL-terminated signatures; 1 when equal. */
int lunnel_sign_equal(const char *a, const char *b);

#endif
