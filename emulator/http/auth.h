/* auth.h: verification of a request's credentials for lunnel-emulator, as strict as the
 * service: the required headers, x-ots-date inside the service's skew window, the access key
 * id, the instance name, the STS token when the emulator was started with --sts-token, the
 * body's x-ots-contentmd5 and x-ots-signature (computed with the runtime's net/sign.c, the one
 * implementation). Error messages are the service's and never name the configured key id,
 * secret or token. */
#ifndef LUNNEL_EMU_AUTH_H
#define LUNNEL_EMU_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lunnel/sign.h"

/* The service rejects an x-ots-date more than 15 minutes from its clock (either way) with
 * 403 OTSAuthFailed "Mismatch between system time and x-ots-date: <date>."; the official
 * SDKs apply the same window to the response's x-ots-date. */
#define LUNNEL_EMU_AUTH_DATE_SKEW_MS (15 * 60 * 1000)

/* Why a request was refused: the HTTP status and service error code to answer with, and a
 * message naming the problem. */
typedef struct lunnel_emu_auth_error {
    int status;       /* 400 or 403 */
    const char *code; /* "OTSParameterInvalid" or "OTSAuthFailed" */
    char msg[384];
} lunnel_emu_auth_error;

/* Returns 0 when the request is authentic, else -1 with `err` filled. `headers` are the
 * request's headers (any case, NUL-terminated); `now_ms` the server's clock. */
int lunnel_emu_auth_verify(const lunnel_emu_config *cfg, const char *path,
                           const lunnel_header *headers, size_t n_headers, const uint8_t *body,
                           size_t body_len, int64_t now_ms, lunnel_emu_auth_error *err);

/* Parses an x-ots-date as the SDKs send it: ISO 8601 / RFC 3339 ("2026-11-21T10:00:00.000Z",
 * Node, Go, Java) or RFC 1123 ("Sat, 21 Nov 2026 10:00:00 GMT", Python). Returns 0 and ms
 * since the epoch, or -1. */
int lunnel_emu_auth_parse_date(const char *s, int64_t *out_ms);

/* The service's response signature, which the Java SDK verifies: the value of the
 * `authorization` response header, "OTS <access key id>:<base64 HMAC-SHA1>", where the HMAC
 * (key: the secret) covers every x-ots-* response header, lower-cased and sorted, as
 * "name:value\n", followed by the request path ("/PutRow"). `headers` are the x-ots-*
 * response headers (names lower case). Writes a NUL-terminated string to `out` (>= 128
 * bytes); returns 0, or -1 on overflow / more than 16 headers. */
int lunnel_emu_auth_sign_response(const lunnel_emu_config *cfg, const char *path,
                                  const lunnel_header *headers, size_t n_headers, char *out,
                                  size_t outlen);

#endif
