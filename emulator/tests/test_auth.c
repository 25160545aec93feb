/* test_auth.c: lunnel_emu_auth_verify refuses each case the service refuses, with the
 * service's status, code and message, and never names the configured key id, secret or STS
 * token: missing headers, unparsable and skewed x-ots-date (both directions, both date
 * formats the SDKs send), unknown key id, missing or other instance, wrong token, body MD5 and
 * signature. A correct request passes at the edges of the window. */
#include <stdio.h>
#include <string.h>

#include "http/auth.h"
#include "testutil.h"

static lunnel_emu_config cfg;
static const int64_t NOW = 1796500000000; /* 2026-12-06T...Z: any fixed clock */

typedef struct req {
    char date[64], ak[64], inst[64], md5[LUNNEL_MD5_B64_LEN], sig[LUNNEL_SIGN_B64_LEN];
    const char *sts;
    lunnel_header h[7];
    size_t n;
} req;

/* A request signed with `secret`, body "hello", date `date_ms` (or `date_text`). */
static void build(req *r, const char *secret, int64_t date_ms, const char *date_text,
                  const char *ak, const char *inst, const char *sts)
{
    memset(r, 0, sizeof *r);
    if (date_text)
        snprintf(r->date, sizeof r->date, "%s", date_text);
    else
        lunnel_sign_format_date(date_ms, r->date);
    snprintf(r->ak, sizeof r->ak, "%s", ak);
    snprintf(r->inst, sizeof r->inst, "%s", inst);
    lunnel_sign_content_md5("hello", 5, r->md5);
    size_t n = 0;
    r->h[n++] = (lunnel_header){"x-ots-date", r->date};
    r->h[n++] = (lunnel_header){"x-ots-apiversion", "2015-12-31"};
    r->h[n++] = (lunnel_header){"x-ots-accesskeyid", r->ak};
    if (*inst) r->h[n++] = (lunnel_header){"x-ots-instancename", r->inst};
    r->h[n++] = (lunnel_header){"x-ots-contentmd5", r->md5};
    if (sts) r->h[n++] = (lunnel_header){"x-ots-ststoken", sts};
    lunnel_sign_request(secret, "/ListTable", r->h, n, r->sig);
    r->h[n++] = (lunnel_header){"X-Ots-Signature", r->sig};
    r->n = n;
}

static lunnel_emu_auth_error err;

static int verify(req *r, const char *body)
{
    memset(&err, 0, sizeof err);
    return lunnel_emu_auth_verify(&cfg, "/ListTable", r->h, r->n, (const uint8_t *)body,
                                  strlen(body), NOW, &err);
}

/* The refusal names none of the configured secrets. */
static int leaks(void)
{
    return strstr(err.msg, cfg.access_key_id) || strstr(err.msg, cfg.access_key_secret) ||
           (cfg.sts_token && strstr(err.msg, cfg.sts_token));
}

static void expect(req *r, const char *body, int status, const char *code, const char *msg)
{
    CHECK_INT(verify(r, body), -1);
    CHECK_INT(err.status, status);
    CHECK(err.code && strcmp(err.code, code) == 0);
    if (!strstr(err.msg, msg)) fprintf(stderr, "message: %s (want '%s')\n", err.msg, msg);
    CHECK(strstr(err.msg, msg) != NULL);
    CHECK(!leaks());
}

int main(void)
{
    lunnel_emu_config_defaults(&cfg);
    cfg.access_key_id = "configured-ak-7";
    cfg.access_key_secret = "configured-secret-9";
    const char *S = cfg.access_key_secret, *AK = cfg.access_key_id, *I = cfg.instance;
    req r;

    build(&r, S, NOW, NULL, AK, I, NULL);
    CHECK_INT(verify(&r, "hello"), 0);
    /* the window's edges, both ways, and the Python SDK's RFC 1123 date */
    build(&r, S, NOW - LUNNEL_EMU_AUTH_DATE_SKEW_MS, NULL, AK, I, NULL);
    CHECK_INT(verify(&r, "hello"), 0);
    build(&r, S, NOW + LUNNEL_EMU_AUTH_DATE_SKEW_MS, NULL, AK, I, NULL);
    CHECK_INT(verify(&r, "hello"), 0);
    int64_t ms;
    CHECK_INT(lunnel_emu_auth_parse_date("Sun, 06 Dec 2026 21:22:58 GMT", &ms), 0);
    CHECK_INT(ms, 1796592178000LL);
    CHECK_INT(lunnel_emu_auth_parse_date("2026-12-06T21:22:58.000Z", &ms), 0);
    CHECK_INT(ms, 1796592178000LL);
    CHECK_INT(lunnel_emu_auth_parse_date("Sun, 06 Foo 2026 21:22:58 GMT", &ms), -1);
    CHECK_INT(lunnel_emu_auth_parse_date("not-a-date", &ms), -1);
    CHECK_INT(lunnel_emu_auth_parse_date("", &ms), -1);

    /* skewed dates: a replay from the past, 2001, 2099, one second past the window */
    build(&r, S, NOW - LUNNEL_EMU_AUTH_DATE_SKEW_MS - 1000, NULL, AK, I, NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "Mismatch between system time and x-ots-date: ");
    build(&r, S, NOW + LUNNEL_EMU_AUTH_DATE_SKEW_MS + 1000, NULL, AK, I, NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "Mismatch between system time and x-ots-date: ");
    build(&r, S, 0, "2001-01-01T00:00:00.000Z", AK, I, NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "x-ots-date: 2001-01-01T00:00:00.000Z.");
    build(&r, S, 0, "Thu, 01 Jan 2099 00:00:00 GMT", AK, I, NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "x-ots-date: Thu, 01 Jan 2099 00:00:00 GMT.");
    build(&r, S, 0, "not-a-date", AK, I, NULL);
    expect(&r, "hello", 400, "OTSParameterInvalid", "Invalid date format: not-a-date.");

    /* an unknown key id: refused without naming the configured one */
    build(&r, S, NOW, NULL, "someone-else", I, NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "The AccessKeyID does not exist.");
    /* the instance header is required, and must name this instance */
    build(&r, S, NOW, NULL, AK, "", NULL);
    expect(&r, "hello", 400, "OTSParameterInvalid", "Missing header: x-ots-instancename.");
    build(&r, S, NOW, NULL, AK, "other", NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "The instance is not found: 'other'.");
    /* wrong secret, wrong body */
    build(&r, "not-the-secret", NOW, NULL, AK, I, NULL);
    expect(&r, "hello", 403, "OTSAuthFailed", "Signature mismatch.");
    build(&r, S, NOW, NULL, AK, I, NULL);
    expect(&r, "hellO", 403, "OTSAuthFailed",
           "Mismatch between MD5 value of request body and x-ots-contentmd5 in header");
    /* every required header, each one missing */
    static const char *const names[] = {"x-ots-date", "x-ots-accesskeyid", "x-ots-contentmd5",
                                        "X-Ots-Signature"};
    for (size_t k = 0; k < 4; k++) {
        build(&r, S, NOW, NULL, AK, I, NULL);
        for (size_t i = 0; i < r.n; i++)
            if (strcmp(r.h[i].name, names[k]) == 0) r.h[i].name = "x-other";
        char want[64];
        snprintf(want, sizeof want, "Missing header: ");
        expect(&r, "hello", 400, "OTSParameterInvalid", want);
    }
    /* STS: a token without --sts-token, then a wrong one (not echoing the configured one) */
    build(&r, S, NOW, NULL, AK, I, "tok-1");
    expect(&r, "hello", 403, "OTSAuthFailed", "without --sts-token");
    cfg.sts_token = "configured-token-3";
    build(&r, S, NOW, NULL, AK, I, "tok-1");
    expect(&r, "hello", 403, "OTSAuthFailed", "STS token");
    build(&r, S, NOW, NULL, AK, I, "configured-token-3");
    CHECK_INT(verify(&r, "hello"), 0);
    TEST_DONE();
}
