/* errors.c: naming, classification and exit-status mapping of protocol errors (errors.h).
 * Pure: the rules of PROTOCOL.md's error table in one place, unit-tested by
 * runtime/tests/test_net_errors.c. */
#include "lunnel/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *lunnel_net_code_str(lunnel_net_code code)
{
    switch (code) {
    case LUNNEL_NET_OK:
        return "ok";
    case LUNNEL_NET_TRANSPORT:
        return "transport";
    case LUNNEL_NET_TIMEOUT:
        return "timeout";
    case LUNNEL_NET_TLS:
        return "tls";
    case LUNNEL_NET_SERVER:
        return "server";
    case LUNNEL_NET_BAD_RESPONSE:
        return "bad-response";
    case LUNNEL_NET_CREDENTIALS:
        return "credentials";
    case LUNNEL_NET_CANCELLED:
        return "cancelled";
    case LUNNEL_NET_INVALID:
        return "invalid";
    case LUNNEL_NET_NOMEM:
        return "nomem";
    }
    return "?";
}

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

void lunnel_error_clear(lunnel_error *err)
{
    memset(err, 0, sizeof *err);
}

void lunnel_error_set(lunnel_error *err, lunnel_net_code kind, const char *fmt, ...)
{
    err->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
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

int lunnel_error_exit_status(const lunnel_error *e)
{
    switch (e->kind) {
    case LUNNEL_NET_OK:
        return LUNNEL_EXIT_OK;
    case LUNNEL_NET_CREDENTIALS:
        return LUNNEL_EXIT_AUTH;
    case LUNNEL_NET_INVALID:
        return LUNNEL_EXIT_USAGE;
    case LUNNEL_NET_SERVER:
        break;
    default:
        return LUNNEL_EXIT_RUNTIME;
    }
    if (code_is(e, "OTSAuthFailed") || code_is(e, "OTSPermissionDenied") ||
        code_is(e, "OTSNoPermissionAccess"))
        return LUNNEL_EXIT_AUTH;
    if (code_is(e, "OTSTunnelExpired")) return LUNNEL_EXIT_EXPIRED;
    if (code_is(e, "OTSObjectNotExist") || code_is(e, "OTSTunnelNotExist") ||
        code_is(e, "OTSTableNotExist"))
        return LUNNEL_EXIT_NOT_FOUND;
    if (code_is(e, "OTSParameterInvalid"))
        return says_not_found(e->message) ? LUNNEL_EXIT_NOT_FOUND : LUNNEL_EXIT_USAGE;
    if (e->http_status == 401 || e->http_status == 403) return LUNNEL_EXIT_AUTH;
    if (e->http_status == 404) return LUNNEL_EXIT_NOT_FOUND;
    return LUNNEL_EXIT_RUNTIME;
}

void lunnel_error_format(const lunnel_error *e, char *out, unsigned long cap)
{
    if (cap == 0) return;
    char what[160];
    if (e->kind == LUNNEL_NET_SERVER && e->code[0])
        snprintf(what, sizeof what, "%s (HTTP %d)", e->code, e->http_status);
    else if (e->kind == LUNNEL_NET_SERVER)
        snprintf(what, sizeof what, "HTTP %d", e->http_status);
    else if ((e->kind == LUNNEL_NET_TLS || e->kind == LUNNEL_NET_CREDENTIALS ||
              e->kind == LUNNEL_NET_INVALID) &&
             e->message[0])
        what[0] = '\0'; /* the message already says what it is */
    else
        snprintf(what, sizeof what, "%s error", lunnel_net_code_str(e->kind));
    char ids[200] = "";
    if (e->request_id[0] && e->trace_id[0])
        snprintf(ids, sizeof ids, " [request id %s, trace id %s]", e->request_id, e->trace_id);
    else if (e->request_id[0])
        snprintf(ids, sizeof ids, " [request id %s]", e->request_id);
    else if (e->trace_id[0])
        snprintf(ids, sizeof ids, " [trace id %s]", e->trace_id);
    char attempts[40] = "";
    if (e->attempts > 1) snprintf(attempts, sizeof attempts, " after %d attempts", e->attempts);
    snprintf(out, cap, "%s%sfailed%s: %s%s%s%s", e->path, e->path[0] ? " " : "", attempts, what,
             what[0] && e->message[0] ? ": " : "", e->message, ids);
}
