/* json_escape.c: the shared JSON string escaper (rules in lunnel/json.h). It started as
 * r:tojson()'s escaper, which has specs pinning its bytes, so that behaviour is the one kept. */
#include <stdint.h>
#include <string.h>

#include "lunnel/json.h"

/* Length of a valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (left < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

int lunnel_json_is_utf8(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t adv = utf8_seq(p + i, n - i);
        if (!adv) return 0;
        i += adv;
    }
    return 1;
}

void lunnel_json_write_string(const char *str, size_t len, lunnel_json_write_fn write, void *ctx)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)str;
    write(ctx, "\"", 1);
    size_t i = 0, run = 0; /* run: start of the bytes still to copy verbatim */
    while (i < len) {
        uint8_t c = s[i];
        const char *esc = NULL;
        size_t esc_len = 2;
        char ubuf[6];
        size_t adv = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            esc = ubuf, esc_len = 6;
        } else if (c >= 0x80) {
            adv = utf8_seq(s + i, len - i);
            if (!adv) {
                esc = "\\ufffd", esc_len = 6;
                adv = 1;
            }
        }
        if (esc) {
            if (i > run) write(ctx, (const char *)s + run, i - run);
            write(ctx, esc, esc_len);
            run = i + adv;
        }
        i += adv;
    }
    if (len > run) write(ctx, (const char *)s + run, len - run);
    write(ctx, "\"", 1);
}

typedef struct {
    char *out;
    size_t cap, len;
} fixed_buf;

static void fixed_write(void *ctx, const char *p, size_t n)
{
    fixed_buf *b = ctx;
    if (b->cap && b->len < b->cap - 1) {
        size_t room = b->cap - 1 - b->len;
        memcpy(b->out + b->len, p, n < room ? n : room);
    }
    b->len += n;
}

size_t lunnel_json_escape(char *out, size_t cap, const char *s, size_t n)
{
    fixed_buf b = {out, cap, 0};
    lunnel_json_write_string(s, n, fixed_write, &b);
    if (cap) out[b.len < cap - 1 ? b.len : cap - 1] = '\0';
    return b.len;
}
