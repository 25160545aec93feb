/* auth.c: request authentication for lunnel-emulator (see auth.h). The checks run in the
 * service's order (headers, date, key, instance, token, body MD5, signature) and answer with
 * the service's documented codes and messages; the signature is recomputed with
 * lunnel_sign_request from the very headers the client sent and compared in constant time. */
#include "http/auth.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lunnel/timeutil.h"

static const char *find(const lunnel_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0) return h[i].value;
    return NULL;
}

static int fail(lunnel_emu_auth_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(lunnel_emu_auth_error *err, int status, const char *code, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "Sat, 21 Nov 2026 10:00:00 GMT" (the weekday is not checked, as HTTP servers do):
 * rewritten as RFC 3339 for the runtime's one calendar conversion. */
static int parse_rfc1123(const char *s, int64_t *out_ms)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' || strcmp(s + 26, "GMT") != 0)
        return -1;
    int day, year, hh, mm, ss, mon = -1;
    for (int i = 0; i < 12; i++)
        if (strncmp(s + 8, months + 3 * i, 3) == 0) mon = i + 1;
    if (mon < 0 || digits(s + 5, 2, &day) || digits(s + 12, 4, &year) || digits(s + 17, 2, &hh) ||
        digits(s + 20, 2, &mm) || digits(s + 23, 2, &ss))
        return -1;
    char iso[64];
    snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, mon, day, hh, mm, ss);
    return lunnel_time_parse_rfc3339(iso, out_ms);
}

int lunnel_emu_auth_parse_date(const char *s, int64_t *out_ms)
{
    if (lunnel_time_parse_rfc3339(s, out_ms) == 0) return 0;
    return parse_rfc1123(s, out_ms);
}

int lunnel_emu_auth_verify(const lunnel_emu_config *cfg, const char *path,
                           const lunnel_header *headers, size_t n_headers, const uint8_t *body,
                           size_t body_len, int64_t now_ms, lunnel_emu_auth_error *err)
{
    static const char *const required[] = {"x-ots-date", "x-ots-accesskeyid", "x-ots-instancename",
                                           "x-ots-contentmd5", "x-ots-signature"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const char *v = find(headers, n_headers, required[i]);
        if (!v || !*v)
            return fail(err, 400, "OTSParameterInvalid", "Missing header: %s.", required[i]);
    }
    const char *date = find(headers, n_headers, "x-ots-date");
    int64_t date_ms;
    if (lunnel_emu_auth_parse_date(date, &date_ms) != 0)
        return fail(err, 400, "OTSParameterInvalid", "Invalid date format: %.64s.", date);
    int64_t skew = date_ms - now_ms;
    if (skew > LUNNEL_EMU_AUTH_DATE_SKEW_MS || skew < -LUNNEL_EMU_AUTH_DATE_SKEW_MS)
        return fail(err, 403, "OTSAuthFailed",
                    "Mismatch between system time and x-ots-date: %.64s. (%+.0f s from the "
                    "emulator's clock; at most 900 s either way is accepted)",
                    date, (double)skew / 1000.0);
    if (strcmp(find(headers, n_headers, "x-ots-accesskeyid"), cfg->access_key_id) != 0)
        return fail(err, 403, "OTSAuthFailed", "The AccessKeyID does not exist.");
    const char *instance = find(headers, n_headers, "x-ots-instancename");
    if (strcmp(instance, cfg->instance) != 0)
        return fail(err, 403, "OTSAuthFailed", "The instance is not found: '%.64s'.", instance);
    const char *sts = find(headers, n_headers, "x-ots-ststoken");
    if (sts && !cfg->sts_token)
        return fail(err, 403, "OTSAuthFailed",
                    "STS token given but this emulator was started without --sts-token.");
    if (sts && strcmp(sts, cfg->sts_token) != 0)
        return fail(err, 403, "OTSAuthFailed", "The STS token in x-ots-ststoken is invalid.");
    char want_md5[LUNNEL_MD5_B64_LEN];
    lunnel_sign_content_md5(body, body_len, want_md5);
    if (strcmp(find(headers, n_headers, "x-ots-contentmd5"), want_md5) != 0)
        return fail(err, 403, "OTSAuthFailed",
                    "Mismatch between MD5 value of request body and x-ots-contentmd5 in header "
                    "(%zu-byte body).",
                    body_len);
    char want[LUNNEL_SIGN_B64_LEN];
    if (lunnel_sign_request(cfg->access_key_secret, path, headers, n_headers, want) != 0)
        return fail(err, 400, "OTSParameterInvalid", "Too many x-ots-* headers.");
    if (!lunnel_sign_equal(find(headers, n_headers, "x-ots-signature"), want))
        return fail(err, 403, "OTSAuthFailed",
                    "Signature mismatch. (the signature over path '%.100s' and the x-ots-* "
                    "headers does not match: check the access key secret)",
                    path);
    return 0;
}

int lunnel_emu_auth_sign_response(const lunnel_emu_config *cfg, const char *path,
                                  const lunnel_header *headers, size_t n_headers, char *out,
                                  size_t outlen)
{
    char sig[LUNNEL_SIGN_B64_LEN];
    if (lunnel_sign_response(cfg->access_key_secret, path, headers, n_headers, sig) != 0) return -1;
    int w = snprintf(out, outlen, "OTS %s:%s", cfg->access_key_id, sig);
    return (w < 0 || (size_t)w >= outlen) ? -1 : 0;
}
