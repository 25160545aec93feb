/* test_tunnel_errors.c: error classification per call scope, outcomes, the Tablestore error
 * body reader, the one-line format, and the retry backoff bounds (doubling, cap, jitter
 * range, window). */
#include <proto/tunnel_service_api.pb-c.h>

#include "lunnel/error_class.h"
#include "lunnel/errors.h"
#include "lunnel/retry.h"
#include "test_errors_util.h"
#include "testutil.h"

int main(void)
{
    const lunnel_call_scope CL = LUNNEL_SCOPE_CLIENT, CH = LUNNEL_SCOPE_CHANNEL,
                            AD = LUNNEL_SCOPE_ADMIN;
    lunnel_error e;

    e = tu_server_error(503, "OTSTunnelServerUnavailable", "busy");
    CHECK(lunnel_error_is_retriable(&e));
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RETRY);
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_RETRY);
    e = tu_server_error(502, "", "");
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_RETRY);
    e = tu_server_error(500, "OTSInternalServerError", "x"); /* 5xx with a code: not retried */
    CHECK(!lunnel_error_is_retriable(&e));
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_CHANNEL_ONLY);
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RECONNECT);
    e = tu_server_error(400, "", "");
    CHECK(!lunnel_error_is_retriable(&e));

    e = tu_server_error(400, "OTSParameterInvalid", "not the owner");
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_CHANNEL_ONLY);
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_USAGE);
    e = tu_server_error(400, "OTSParameterInvalid", "tunnel does not exist");
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_NOT_FOUND);
    e = tu_server_error(404, "OTSObjectNotExist", "table t");
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_NOT_FOUND);

    e = tu_server_error(400, "OTSTunnelExpired", "");
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_EXPIRED);

    e = tu_server_error(403, "OTSPermissionDenied", "");
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_AUTH);
    e = tu_server_error(403, "OTSAuthFailed", "");
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_AUTH);

    e = tu_server_error(400, "OTSSequenceNumberNotMatch", "");
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_CHANNEL_ONLY);
    e = tu_server_error(410, "OTSResourceGone", "");
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RECONNECT);
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_RECONNECT);
    e = tu_server_error(409, "OTSTunnelExist", "");
    CHECK_INT(lunnel_error_classify(&e, AD), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_FAILED);

    lunnel_error_clear(&e);
    lunnel_error_set(&e, LUNNEL_NET_TRANSPORT, "Connection reset by peer");
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RETRY);
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_FAILED);
    lunnel_error_set(&e, LUNNEL_NET_TIMEOUT, "t");
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_RETRY);
    lunnel_error_set(&e, LUNNEL_NET_TLS, "bad cert");
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_FATAL);
    lunnel_error_set(&e, LUNNEL_NET_CREDENTIALS, "x");
    CHECK_INT(lunnel_error_outcome(&e), LUNNEL_OUTCOME_AUTH);
    lunnel_error_set(&e, LUNNEL_NET_BAD_RESPONSE, "x");
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_CHANNEL_ONLY);
    /* unparseable replies are treated alike on every call: the call fails, not the run */
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RECONNECT);
    CHECK_INT(lunnel_error_classify(&e, AD), LUNNEL_ERRCLASS_FATAL);
    CHECK_INT(lunnel_error_is_unparseable(&e), 1);
    CHECK_INT(lunnel_error_not_tablestore(&e), 1);
    e = tu_server_error(302, "", "");
    CHECK_INT(lunnel_error_is_unparseable(&e), 1);
    CHECK_INT(lunnel_error_classify(&e, CH), LUNNEL_ERRCLASS_CHANNEL_ONLY);
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RECONNECT);
    e = tu_server_error(404, "", "");
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_RECONNECT);
    CHECK_INT(lunnel_error_not_tablestore(&e), 1);
    e = tu_server_error(403, "", "");
    CHECK_INT(lunnel_error_is_unparseable(&e), 0);
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_FATAL);
    e = tu_server_error(501, "", "");
    CHECK_INT(lunnel_error_is_retriable(&e), 0);
    CHECK_INT(lunnel_error_not_tablestore(&e), 1);
    e = tu_server_error(502, "", "");
    CHECK_INT(lunnel_error_is_retriable(&e), 1);
    CHECK_INT(lunnel_error_not_tablestore(&e), 0);
    e = tu_server_error(400, "OTSParameterInvalid", "x");
    CHECK_INT(lunnel_error_is_unparseable(&e), 0);
    CHECK_INT(lunnel_error_not_tablestore(&e), 0);
    lunnel_error_clear(&e);
    CHECK_INT(lunnel_error_classify(&e, CL), LUNNEL_ERRCLASS_NONE);
    CHECK_STR(lunnel_error_class_str(LUNNEL_ERRCLASS_CHANNEL_ONLY), "channel-only");
    CHECK_STR(lunnel_net_code_str(LUNNEL_NET_TLS), "tls");

    char line[700];
    e = tu_server_error(400, "OTSParameterInvalid", "tunnel does not exist");
    snprintf(e.path, sizeof e.path, "/tunnel/describe");
    snprintf(e.request_id, sizeof e.request_id, "rid-1");
    lunnel_error_format(&e, line, sizeof line);
    CHECK_STR(line, "/tunnel/describe failed: OTSParameterInvalid (HTTP 400): tunnel does not "
                    "exist [request id rid-1]");

    lunnel_error_clear(&e);
    lunnel_error_set(&e, LUNNEL_NET_TLS, "TLS certificate verification failed: x");
    snprintf(e.path, sizeof e.path, "/tunnel/list");
    lunnel_error_format(&e, line, sizeof line);
    CHECK_STR(line, "/tunnel/list failed: TLS certificate verification failed: x");
    lunnel_error_set(&e, LUNNEL_NET_TRANSPORT, "Connection refused");
    e.attempts = 3;
    snprintf(e.trace_id, sizeof e.trace_id, "t-1");
    lunnel_error_format(&e, line, sizeof line);
    CHECK_STR(
        line,
        "/tunnel/list failed after 3 attempts: transport error: Connection refused [trace id t-1]");

    /* Backoff: doubling from the initial delay up to the cap. */
    const lunnel_retry_policy *rr = &lunnel_retry_read_records, *df = &lunnel_retry_default;
    CHECK(lunnel_retry_base_ms(rr, 0) == 16.0);
    CHECK(lunnel_retry_base_ms(rr, 1) == 32.0);
    CHECK(lunnel_retry_base_ms(rr, 7) == 2048.0);
    CHECK(lunnel_retry_base_ms(rr, 8) == 3000.0);
    CHECK(lunnel_retry_base_ms(rr, 1000) == 3000.0);
    CHECK(lunnel_retry_base_ms(df, 0) == 100.0);
    CHECK(lunnel_retry_base_ms(df, 4) == 1600.0);
    CHECK(lunnel_retry_base_ms(df, 5) == 2000.0);
    /* Jitter stays in base*(1-0.33) .. base*(1+0.33) for any random input. */
    int in_bounds = 1;
    double lo = 1e9, hi = 0;
    for (int retry = 0; retry < 12; retry++) {
        double base = lunnel_retry_base_ms(df, retry);
        for (int i = 0; i < 1000; i++) {
            double d = lunnel_retry_delay_ms(df, retry, lunnel_retry_rand01());
            if (d < base * 0.67 - 1e-9 || d > base * 1.33 + 1e-9) in_bounds = 0;
            if (retry == 0) {
                if (d < lo) lo = d;
                if (d > hi) hi = d;
            }
        }
    }
    CHECK(in_bounds);
    CHECK(lo < 75 && hi > 125); /* the jitter really spreads (1000 draws) */
    CHECK(lunnel_retry_delay_ms(df, 0, 0.0) == 67.0);
    CHECK(lunnel_retry_delay_ms(df, 0, 2.0) <= 133.0);
    /* Window: 35 s for default, 75 s for ReadRecords; none never retries. */
    CHECK(lunnel_retry_allowed(df, 34000, 1000));
    CHECK(!lunnel_retry_allowed(df, 34500, 1000));
    CHECK(lunnel_retry_allowed(rr, 74000, 1000));
    CHECK(!lunnel_retry_allowed(&lunnel_retry_none, 0, 0));
    /* The total number of default retries inside 35 s is bounded (max delays ~2.66 s each). */
    double elapsed = 0;
    int n = 0;
    for (;; n++) {
        double d = lunnel_retry_delay_ms(df, n, 0.0);
        if (!lunnel_retry_allowed(df, elapsed, d)) break;
        elapsed += d;
    }
    CHECK(n > 15 && n < 60);
    /* the error body reader the tunnel installs on its HTTP client */
    {
        Lunnel__Tunnel__Error pe = LUNNEL__TUNNEL__ERROR__INIT;
        pe.code = "OTSTunnelExpired";
        pe.message = "tunnel t expired";
        uint8_t buf[128];
        size_t n = lunnel__tunnel__error__pack(&pe, buf);
        lunnel_error_clear(&e);
        CHECK_INT(lunnel_tunnel_parse_error(buf, n, &e), 1);
        CHECK_STR(e.code, "OTSTunnelExpired");
        CHECK_STR(e.message, "tunnel t expired");
        lunnel_error_clear(&e);
        CHECK_INT(lunnel_tunnel_parse_error((const uint8_t *)"<html>", 6, &e), 0);
        CHECK_STR(e.code, "");
        CHECK_INT(lunnel_tunnel_parse_error(NULL, 0, &e), 0);
        CHECK(lunnel_tunnel_http_protocol.retriable == lunnel_error_is_retriable);
    }
    TEST_DONE();
}
