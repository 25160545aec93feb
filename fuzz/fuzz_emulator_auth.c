/* fuzz_emulator_auth.c: libFuzzer target for lunnel-emulator's request authentication on
 * outside bytes: the x-ots-date parser (ISO 8601 and RFC 1123) and lunnel_emu_auth_verify on
 * arbitrary header values. Input: up to six '\n'-separated values for x-ots-date,
 * x-ots-accesskeyid, x-ots-instancename, x-ots-contentmd5, x-ots-signature, x-ots-ststoken;
 * the rest is the body. A refusal must carry a status, a code and a message without the
 * configured secret; an accepted date must lie in the parser's range. Seeds:
 * fuzz/corpus/emulator_auth. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"x-ots-date",         "x-ots-accesskeyid",
                                        "x-ots-instancename", "x-ots-contentmd5",
                                        "x-ots-signature",    "x-ots-ststoken"};
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    lunnel_header h[6];
    size_t n = 0;
    char *p = text;
    while (n < 6) {
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        if (!nl) break;
        *nl = 0;
        h[n].name = names[n];
        h[n].value = p;
        n++;
        p = nl + 1;
    }
    int64_t ms;
    if (n > 0 && lunnel_emu_auth_parse_date(h[0].value, &ms) == 0 &&
        (ms < -62167219200000LL || ms > 253402300800000LL))
        abort(); /* outside years 0000..9999 */
    lunnel_emu_config cfg;
    lunnel_emu_config_defaults(&cfg);
    cfg.sts_token = (size & 1) ? "tok" : NULL;
    lunnel_emu_auth_error err;
    memset(&err, 0, sizeof err);
    if (lunnel_emu_auth_verify(&cfg, "/ListTable", h, n, (const uint8_t *)p,
                               (size_t)(text + size - p), 1796500000000LL, &err) != 0) {
        if ((err.status != 400 && err.status != 403) || !err.code || !err.msg[0] ||
            strstr(err.msg, cfg.access_key_secret))
            abort();
    }
    free(text);
    return 0;
}
