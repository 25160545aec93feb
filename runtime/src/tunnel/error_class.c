/* error_class.c: what protocol errors mean for the tunnel client (error_class.h): the rules
 * of PROTOCOL.md's error table in one place (retry, reconnect, channel-only, fatal), the
 * outcome of a failed run or command, and the Tablestore error body reader that the tunnel
 * installs on its HTTP client. Unit-tested by runtime/tests/test_tunnel_error_class.c. */
#include "lunnel/error_class.h"

#include <proto/tunnel_service_api.pb-c.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *lunnel_error_class_str(lunnel_error_class cls)
{
    switch (cls) {
    case LUNNEL_ERRCLASS_NONE:
        return "none";
    case LUNNEL_ERRCLASS_FATAL:
        return "fatal";
    case LUNNEL_ERRCLASS_RETRY:
        return "retry";
    case LUNNEL_ERRCLASS_RECONNECT:
        return "reconnect";
    case LUNNEL_ERRCLASS_CHANNEL_ONLY:
        return "channel-only";
    }
    return "?";
}

static int code_is(const lunnel_error *e, const char *code)
{
    return strcmp(e->code, code) == 0;
}

int lunnel_error_is_retriable(const lunnel_error *e)
{
    switch (e->kind) {
    case LUNNEL_NET_TRANSPORT:
    case LUNNEL_NET_TIMEOUT:
        return 1;
    case LUNNEL_NET_SERVER:
        if (code_is(e, "OTSTunnelServerUnavailable")) return 1;
        if (e->http_status == 503 && e->code[0] == '\0') return 1;
        /* 5xx whose body did not parse: a proxy or overloaded front end; but 501 (not
         * implemented) and 505 never change on a retry: another server answered. */
        if (e->http_status == 501 || e->http_status == 505) return 0;
        return e->http_status >= 500 && e->code[0] == '\0';
    default:
        return 0;
    }
}

int lunnel_error_is_unparseable(const lunnel_error *e)
{
    if (e->kind == LUNNEL_NET_BAD_RESPONSE) return 1;
    return e->kind == LUNNEL_NET_SERVER && e->code[0] == '\0' && e->http_status >= 300 &&
           e->http_status < 500 && e->http_status != 401 && e->http_status != 403;
}

int lunnel_error_not_tablestore(const lunnel_error *e)
{
    if (lunnel_error_is_unparseable(e)) return 1;
    return e->kind == LUNNEL_NET_SERVER && e->code[0] == '\0' && e->http_status >= 500 &&
           e->http_status != 502 && e->http_status != 503 && e->http_status != 504;
}

lunnel_error_class lunnel_error_classify(const lunnel_error *e, lunnel_call_scope scope)
{
    if (e->kind == LUNNEL_NET_OK) return LUNNEL_ERRCLASS_NONE;
    if (lunnel_error_is_retriable(e)) return LUNNEL_ERRCLASS_RETRY;
    if (lunnel_error_is_unparseable(e)) {
        /* the same rule on every call: the call failed, not the run (errors.h) */
        switch (scope) {
        case LUNNEL_SCOPE_CHANNEL:
            return LUNNEL_ERRCLASS_CHANNEL_ONLY;
        case LUNNEL_SCOPE_CLIENT:
            return LUNNEL_ERRCLASS_RECONNECT;
        default:
            return LUNNEL_ERRCLASS_FATAL;
        }
    }
    if (e->kind != LUNNEL_NET_SERVER) return LUNNEL_ERRCLASS_FATAL;
    if (code_is(e, "OTSResourceGone")) return LUNNEL_ERRCLASS_RECONNECT;
    if (code_is(e, "OTSTunnelExpired") || code_is(e, "OTSPermissionDenied") ||
        code_is(e, "OTSAuthFailed"))
        return LUNNEL_ERRCLASS_FATAL;
    switch (scope) {
    case LUNNEL_SCOPE_CHANNEL:
        return LUNNEL_ERRCLASS_CHANNEL_ONLY;
    case LUNNEL_SCOPE_CLIENT:
        return e->http_status >= 500 ? LUNNEL_ERRCLASS_RECONNECT : LUNNEL_ERRCLASS_FATAL;
    case LUNNEL_SCOPE_ADMIN:
    default:
        return LUNNEL_ERRCLASS_FATAL;
    }
}

static int says_not_found(const char *msg)
{
    return strcasestr(msg, "not exist") || strcasestr(msg, "not found") ||
           strcasestr(msg, "does not exist");
}

lunnel_outcome lunnel_error_outcome(const lunnel_error *e)
{
    switch (e->kind) {
    case LUNNEL_NET_OK:
        return LUNNEL_OUTCOME_OK;
    case LUNNEL_NET_CREDENTIALS:
        return LUNNEL_OUTCOME_AUTH;
    case LUNNEL_NET_INVALID:
        return LUNNEL_OUTCOME_USAGE;
    case LUNNEL_NET_SERVER:
        break;
    default:
        return LUNNEL_OUTCOME_FAILED;
    }
    if (code_is(e, "OTSAuthFailed") || code_is(e, "OTSPermissionDenied") ||
        code_is(e, "OTSNoPermissionAccess"))
        return LUNNEL_OUTCOME_AUTH;
    if (code_is(e, "OTSTunnelExpired")) return LUNNEL_OUTCOME_EXPIRED;
    if (code_is(e, "OTSObjectNotExist") || code_is(e, "OTSTunnelNotExist") ||
        code_is(e, "OTSTableNotExist"))
        return LUNNEL_OUTCOME_NOT_FOUND;
    if (code_is(e, "OTSParameterInvalid"))
        return says_not_found(e->message) ? LUNNEL_OUTCOME_NOT_FOUND : LUNNEL_OUTCOME_USAGE;
    if (e->http_status == 401 || e->http_status == 403) return LUNNEL_OUTCOME_AUTH;
    if (e->http_status == 404) return LUNNEL_OUTCOME_NOT_FOUND;
    return LUNNEL_OUTCOME_FAILED;
}

int lunnel_tunnel_parse_error(const uint8_t *body, size_t len, lunnel_error *e)
{
    Lunnel__Tunnel__Error *pe = len ? lunnel__tunnel__error__unpack(NULL, len, body) : NULL;
    int ok = pe && pe->code;
    if (ok) {
        snprintf(e->code, sizeof e->code, "%s", pe->code);
        snprintf(e->message, sizeof e->message, "%s", pe->message ? pe->message : "");
    }
    if (pe) lunnel__tunnel__error__free_unpacked(pe, NULL);
    return ok;
}

const lunnel_http_protocol lunnel_tunnel_http_protocol = {
    .parse_error = lunnel_tunnel_parse_error,
    .retriable = lunnel_error_is_retriable,
};
