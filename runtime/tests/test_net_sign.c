/* test_net_sign.c: signatures and content MD5 checked against the openssl command line,
 * computed inside the test (independent of our code path), plus header order with an STS
 * token, trimming, case folding and the date format. */
#include <stdlib.h>
#include <unistd.h>

#include "lunnel/sign.h"
#include "lunnel/timeutil.h"
#include "testutil.h"

/* Runs `openssl dgst ... -binary | openssl base64 -A` over `data` and returns the base64. */
static void openssl_b64(const char *dgst_args, const void *data, size_t len, char *out, size_t cap)
{
    char in_path[] = "/tmp/lunnel-sign-XXXXXX";
    int fd = mkstemp(in_path);
    out[0] = '\0';
    if (fd < 0) return;
    if (write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return;
    }
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "openssl dgst %s -binary < %s | openssl base64 -A", dgst_args,
             in_path);
    FILE *p = popen(cmd, "r");
    if (p) {
        size_t n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
        pclose(p);
    }
    unlink(in_path);
}

int main(void)
{
    const char *secret = "lunnel-secret";
    const char *path = "/tunnel/describe";
    /* Deliberately unsorted, mixed case, padded values, a non-x-ots header and a signature
     * header that must be ignored. */
    lunnel_header hs[] = {
        {"x-ots-signature", "ignored"},
        {"X-OTS-Date", "2026-11-21T10:00:00.000Z"},
        {"x-ots-ststoken", "  sts-token-value  "},
        {"x-ots-apiversion", "2018-04-01"},
        {"Content-Type", "application/x.pb2"},
        {"x-ots-accesskeyid", "lunnel-ak"},
        {"x-ots-instancename", "lunnel"},
        {"x-ots-contentmd5", "1B2M2Y8AsgTpgAmY7PhCfg=="},
        {"x-ots-trace-id", "trace-1"},
    };
    const char *canonical = "/tunnel/describe\nPOST\n\n"
                            "x-ots-accesskeyid:lunnel-ak\n"
                            "x-ots-apiversion:2018-04-01\n"
                            "x-ots-contentmd5:1B2M2Y8AsgTpgAmY7PhCfg==\n"
                            "x-ots-date:2026-11-21T10:00:00.000Z\n"
                            "x-ots-instancename:lunnel\n"
                            "x-ots-ststoken:sts-token-value\n"
                            "x-ots-trace-id:trace-1\n";
    char sig[LUNNEL_SIGN_B64_LEN];
    CHECK_INT(lunnel_sign_request(secret, path, hs, sizeof hs / sizeof hs[0], sig), 0);
    char want[128];
    openssl_b64("-sha1 -hmac lunnel-secret", canonical, strlen(canonical), want, sizeof want);
    CHECK(strlen(want) == 28);
    CHECK_STR(sig, want);

    /* Header order must not matter: reversed list gives the same signature. */
    lunnel_header rev[sizeof hs / sizeof hs[0]];
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        rev[i] = hs[sizeof hs / sizeof hs[0] - 1 - i];
    char sig2[LUNNEL_SIGN_B64_LEN];
    CHECK_INT(lunnel_sign_request(secret, path, rev, sizeof rev / sizeof rev[0], sig2), 0);
    CHECK_STR(sig2, sig);
    CHECK(lunnel_sign_equal(sig, sig2));

    /* Without the STS token the signature changes and matches its own canonical string. */
    lunnel_header nosts[] = {hs[1], hs[3], hs[5], hs[6], hs[7]};
    const char *canon2 = "/tunnel/describe\nPOST\n\n"
                         "x-ots-accesskeyid:lunnel-ak\n"
                         "x-ots-apiversion:2018-04-01\n"
                         "x-ots-contentmd5:1B2M2Y8AsgTpgAmY7PhCfg==\n"
                         "x-ots-date:2026-11-21T10:00:00.000Z\n"
                         "x-ots-instancename:lunnel\n";
    char sig3[LUNNEL_SIGN_B64_LEN];
    CHECK_INT(lunnel_sign_request(secret, path, nosts, 5, sig3), 0);
    openssl_b64("-sha1 -hmac lunnel-secret", canon2, strlen(canon2), want, sizeof want);
    CHECK_STR(sig3, want);
    CHECK(!lunnel_sign_equal(sig3, sig));
    CHECK(!lunnel_sign_equal("abc", "abcd"));

    /* A different secret gives a different signature. */
    char sig4[LUNNEL_SIGN_B64_LEN];
    CHECK_INT(lunnel_sign_request("other", path, nosts, 5, sig4), 0);
    CHECK(strcmp(sig4, sig3) != 0);

    /* Too many x-ots headers is refused, not overflowed. */
    lunnel_header many[70];
    for (int i = 0; i < 70; i++)
        many[i] = (lunnel_header){"x-ots-a", "b"};
    CHECK_INT(lunnel_sign_request(secret, path, many, 70, sig4), -1);

    /* Response signature: H (x-ots-* headers, sorted, lower-cased) then the path, no "POST"
     * line; non-x-ots headers ignored. */
    lunnel_header rh[] = {{"X-Ots-RequestId", "req-1"},
                          {"x-ots-contentmd5", " 1B2M2Y8AsgTpgAmY7PhCfg== "},
                          {"Content-Type", "ignored"},
                          {"x-ots-date", "2026-11-21T10:00:00.000Z"}};
    const char *rcanon = "x-ots-contentmd5:1B2M2Y8AsgTpgAmY7PhCfg==\n"
                         "x-ots-date:2026-11-21T10:00:00.000Z\n"
                         "x-ots-requestid:req-1\n/PutRow";
    char rsig[LUNNEL_SIGN_B64_LEN];
    CHECK_INT(lunnel_sign_response(secret, "/PutRow", rh, 4, rsig), 0);
    openssl_b64("-sha1 -hmac lunnel-secret", rcanon, strlen(rcanon), want, sizeof want);
    CHECK_STR(rsig, want);

    /* Content MD5: empty body and a binary body with NULs, against openssl. */
    char md5[LUNNEL_MD5_B64_LEN];
    lunnel_sign_content_md5("", 0, md5);
    CHECK_STR(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
    unsigned char body[300];
    for (int i = 0; i < 300; i++)
        body[i] = (unsigned char)(i * 7);
    lunnel_sign_content_md5(body, sizeof body, md5);
    openssl_b64("-md5", body, sizeof body, want, sizeof want);
    CHECK_STR(md5, want);

    /* Date format. */
    char date[LUNNEL_DATE_LEN];
    lunnel_sign_format_date(1795255200123LL, date);
    CHECK_STR(date, "2026-11-21T10:00:00.123Z");
    lunnel_sign_format_date(0, date);
    CHECK_STR(date, "1970-01-01T00:00:00.000Z");
    lunnel_time_format_ms(-1, date); /* the shared formatter: negative ms round down */
    CHECK_STR(date, "1969-12-31T23:59:59.999Z");
    TEST_DONE();
}
