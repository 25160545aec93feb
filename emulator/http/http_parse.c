/* http_parse.c: HTTP/1.1 request-head parser for lunnel-emulator (see http_parse.h).
 * Written for untrusted input: every index is checked against len, and the head is bounded
 * by LUNNEL_EMU_HTTP_MAX_HEAD so a client cannot make the server buffer without limit. */
#include "http/http_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool span_ieq(lunnel_emu_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

static bool is_tchar(unsigned char c)
{
    /* RFC 9110 token characters */
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Finds "\r\n" at or after `from`; returns its index or (size_t)-1. Bare LF is refused by
 * the caller's check of the previous byte. */
static size_t find_crlf(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 1 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n') return i;
    return (size_t)-1;
}

static lunnel_emu_http_result fail(int *status, int code, char *err, size_t errlen, const char *fmt,
                                   size_t off)
{
    *status = code;
    if (err && errlen) snprintf(err, errlen, fmt, off);
    return LUNNEL_EMU_HTTP_ERROR;
}

static bool parse_size(lunnel_emu_span v, size_t *out)
{
    if (v.len == 0 || v.len > 19) return false;
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') return false;
        n = n * 10 + (size_t)(v.p[i] - '0');
    }
    *out = n;
    return true;
}

lunnel_emu_http_result lunnel_emu_http_parse(const char *buf, size_t len, size_t max_body,
                                             lunnel_emu_http_req *out, int *status, char *err,
                                             size_t errlen)
{
    memset(out, 0, sizeof *out);
    *status = 0;
    size_t scan = len < LUNNEL_EMU_HTTP_MAX_HEAD ? len : LUNNEL_EMU_HTTP_MAX_HEAD;

    /* Tolerate leading empty lines between pipelined requests (RFC 9112 2.2). */
    size_t pos = 0;
    while (pos + 1 < scan && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;

    size_t eol = find_crlf(buf, scan, pos);
    if (eol == (size_t)-1) {
        if (len >= LUNNEL_EMU_HTTP_MAX_HEAD)
            return fail(status, 431, err, errlen, "request line longer than %zu bytes",
                        (size_t)LUNNEL_EMU_HTTP_MAX_HEAD);
        return LUNNEL_EMU_HTTP_INCOMPLETE;
    }
    /* request line: METHOD SP target SP HTTP/1.x */
    size_t i = pos;
    while (i < eol && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == pos || i >= eol || buf[i] != ' ')
        return fail(status, 400, err, errlen, "malformed method at byte %zu", i);
    out->method = (lunnel_emu_span){buf + pos, i - pos};
    size_t t0 = ++i;
    while (i < eol && buf[i] != ' ') {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c == 0x7f)
            return fail(status, 400, err, errlen, "bad character in request target at byte %zu", i);
        i++;
    }
    if (i == t0 || i >= eol)
        return fail(status, 400, err, errlen, "missing request target at byte %zu", i);
    out->target = (lunnel_emu_span){buf + t0, i - t0};
    out->path = out->target;
    const char *q = memchr(out->target.p, '?', out->target.len);
    if (q) out->path.len = (size_t)(q - out->target.p);
    i++;
    if (eol - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0)
        return fail(status, 400, err, errlen, "malformed HTTP version at byte %zu", i);
    if (buf[i + 7] != '0' && buf[i + 7] != '1')
        return fail(status, 505, err, errlen, "unsupported HTTP version at byte %zu", i);
    out->minor_version = buf[i + 7] - '0';
    out->keep_alive = out->minor_version == 1;

    /* headers */
    bool have_length = false, chunked = false;
    pos = eol + 2;
    for (;;) {
        eol = find_crlf(buf, scan, pos);
        if (eol == (size_t)-1) {
            if (len >= LUNNEL_EMU_HTTP_MAX_HEAD)
                return fail(status, 431, err, errlen, "request head longer than %zu bytes",
                            (size_t)LUNNEL_EMU_HTTP_MAX_HEAD);
            return LUNNEL_EMU_HTTP_INCOMPLETE;
        }
        if (eol == pos) { /* blank line: end of head */
            pos += 2;
            break;
        }
        if (buf[pos] == ' ' || buf[pos] == '\t')
            return fail(status, 400, err, errlen, "obsolete header folding at byte %zu", pos);
        size_t c = pos;
        while (c < eol && is_tchar((unsigned char)buf[c]))
            c++;
        if (c == pos || c >= eol || buf[c] != ':')
            return fail(status, 400, err, errlen, "malformed header name at byte %zu", c);
        if (out->n_headers >= LUNNEL_EMU_HTTP_MAX_HEADERS)
            return fail(status, 431, err, errlen, "more than %zu headers",
                        (size_t)LUNNEL_EMU_HTTP_MAX_HEADERS);
        size_t v0 = c + 1, v1 = eol;
        while (v0 < v1 && (buf[v0] == ' ' || buf[v0] == '\t'))
            v0++;
        while (v1 > v0 && (buf[v1 - 1] == ' ' || buf[v1 - 1] == '\t'))
            v1--;
        for (size_t k = v0; k < v1; k++) {
            unsigned char ch = (unsigned char)buf[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return fail(status, 400, err, errlen,
                            "control character in header value at byte %zu", k);
        }
        lunnel_emu_span name = {buf + pos, c - pos}, value = {buf + v0, v1 - v0};
        out->names[out->n_headers] = name;
        out->values[out->n_headers] = value;
        out->n_headers++;
        if (span_ieq(name, "content-length")) {
            size_t n;
            if (!parse_size(value, &n))
                return fail(status, 400, err, errlen, "invalid Content-Length at byte %zu", v0);
            if (have_length && n != out->content_length)
                return fail(status, 400, err, errlen, "conflicting Content-Length at byte %zu", v0);
            have_length = true;
            out->content_length = n;
        } else if (span_ieq(name, "transfer-encoding")) {
            if (!span_ieq(value, "identity")) chunked = true;
        } else if (span_ieq(name, "connection")) {
            if (span_ieq(value, "close"))
                out->keep_alive = false;
            else if (span_ieq(value, "keep-alive"))
                out->keep_alive = true;
        } else if (span_ieq(name, "expect")) {
            if (span_ieq(value, "100-continue")) out->expect_continue = true;
        }
        pos = eol + 2;
    }
    out->head_len = pos;
    if (chunked)
        return fail(status, 501, err, errlen,
                    "Transfer-Encoding other than identity is not supported (offset %zu); send "
                    "Content-Length",
                    (size_t)0);
    if (out->content_length > max_body) {
        *status = 413;
        if (err && errlen)
            snprintf(err, errlen, "request body of %zu bytes exceeds the limit of %zu bytes",
                     out->content_length, max_body);
        return LUNNEL_EMU_HTTP_ERROR;
    }
    return LUNNEL_EMU_HTTP_HEAD_DONE;
}

const lunnel_emu_span *lunnel_emu_http_header(const lunnel_emu_http_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (span_ieq(r->names[i], name)) return &r->values[i];
    return NULL;
}
