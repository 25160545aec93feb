/* fuzz_credentials.c: libFuzzer target for what a credentials command prints (outside bytes:
 * any program the user names) and the time texts inside it: the credentials JSON parser, the
 * RFC 3339 / epoch-ms time parser and the duration parser. Whatever parses must be a usable
 * snapshot (id and secret non-empty, NUL-terminated); whatever fails must say why. Seeds:
 * fuzz/corpus/credentials. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lunnel/credentials.h"
#include "lunnel/errors.h"
#include "lunnel/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;

    lunnel_cred_snapshot snap;
    lunnel_error err;
    memset(&err, 0, sizeof err);
    if (lunnel_credentials_parse_json(text, &snap, &err) == 0) {
        if (!snap.access_key_id[0] || !snap.access_key_secret[0] ||
            strnlen(snap.access_key_id, sizeof snap.access_key_id) == sizeof snap.access_key_id ||
            strnlen(snap.security_token, sizeof snap.security_token) == sizeof snap.security_token)
            abort(); /* accepted an unusable key */
    } else if (!err.message[0]) {
        abort(); /* a failure must name its reason */
    }

    int64_t ms;
    double seconds;
    (void)lunnel_time_parse(text, &ms);
    (void)lunnel_time_parse_rfc3339(text, &ms);
    if (lunnel_duration_parse(text, &seconds) == 0 && !(seconds >= 0))
        abort(); /* durations are never negative or NaN */
    free(text);
    return 0;
}
