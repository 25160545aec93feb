/* auth.h: verification of a request's credentials for lunnel-emulator: access key id,
 * x-ots-signature (computed with the runtime's net/sign.c, the one implementation), the body's
 * x-ots-contentmd5, and the STS token when the emulator was started with --sts-token. */
#ifndef LUNNEL_EMU_AUTH_H
#define LUNNEL_EMU_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lunnel/sign.h"

/* Returns 0 when the request is authentic, else -1 with a precise reason in `msg` (answered
 * with 403 OTSAuthFailed). `headers` are the request's headers (any case, NUL-terminated). */
int lunnel_emu_auth_verify(const lunnel_emu_config *cfg, const char *path,
                           const lunnel_header *headers, size_t n_headers, const uint8_t *body,
                           size_t body_len, char *msg, size_t msglen);

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
