/* errors.c: the transport's error value (errors.h): names, setting, the one-line format. */
#include "lunnel/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
