/* auth.c: request authentication for lunnel-emulator (see auth.h). The signature is
 * recomputed with lunnel_sign_request from the very headers the client sent and compared in
 * constant time; every failure names what was wrong, as the service's messages do. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *find(const lunnel_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0) return h[i].value;
    return NULL;
}

int lunnel_emu_auth_verify(const lunnel_emu_config *cfg, const char *path,
                           const lunnel_header *headers, size_t n_headers, const uint8_t *body,
                           size_t body_len, char *msg, size_t msglen)
{
    const char *akid = find(headers, n_headers, "x-ots-accesskeyid");
    const char *sig = find(headers, n_headers, "x-ots-signature");
    const char *md5 = find(headers, n_headers, "x-ots-contentmd5");
    const char *sts = find(headers, n_headers, "x-ots-ststoken");
    if (!akid || !*akid) {
        snprintf(msg, msglen, "Missing header x-ots-accesskeyid.");
        return -1;
    }
    if (strcmp(akid, cfg->access_key_id) != 0) {
        snprintf(msg, msglen, "The AccessKeyID '%s' does not exist (this emulator knows '%s').",
                 akid, cfg->access_key_id);
        return -1;
    }
    if (!sig || !*sig) {
        snprintf(msg, msglen, "Missing header x-ots-signature.");
        return -1;
    }
    if (!find(headers, n_headers, "x-ots-date")) {
        snprintf(msg, msglen, "Missing header x-ots-date.");
        return -1;
    }
    if (sts) {
        if (!cfg->sts_token) {
            snprintf(msg, msglen,
                     "STS token given but this emulator was started without --sts-token.");
            return -1;
        }
        if (strcmp(sts, cfg->sts_token) != 0) {
            snprintf(msg, msglen, "The STS token in x-ots-ststoken is invalid.");
            return -1;
        }
    }
    if (!md5) {
        snprintf(msg, msglen, "Missing header x-ots-contentmd5.");
        return -1;
    }
    char want_md5[LUNNEL_MD5_B64_LEN];
    lunnel_sign_content_md5(body, body_len, want_md5);
    if (strcmp(md5, want_md5) != 0) {
        snprintf(msg, msglen,
                 "x-ots-contentmd5 '%s' does not match the body (%zu bytes, MD5 base64 '%s').", md5,
                 body_len, want_md5);
        return -1;
    }
    char want[LUNNEL_SIGN_B64_LEN];
    if (lunnel_sign_request(cfg->access_key_secret, path, headers, n_headers, want) != 0) {
        snprintf(msg, msglen, "Too many x-ots-* headers to verify the signature.");
        return -1;
    }
    if (!lunnel_sign_equal(sig, want)) {
        snprintf(msg, msglen,
                 "Signature mismatch: the request signature does not match the one computed "
                 "for path '%s' (check the access key secret).",
                 path);
        return -1;
    }
    return 0;
}

int lunnel_emu_auth_sign_response(const lunnel_emu_config *cfg, const char *path,
                                  const lunnel_header *headers, size_t n_headers, char *out,
                                  size_t outlen)
{
    char sig[LUNNEL_SIGN_B64_LEN];
    if (lunnel_sign_response(cfg->access_key_secret, path, headers, n_headers, sig) != 0)
        return -1;
    int w = snprintf(out, outlen, "OTS %s:%s", cfg->access_key_id, sig);
    return (w < 0 || (size_t)w >= outlen) ? -1 : 0;
}
