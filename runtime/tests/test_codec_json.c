/* test_codec_json.c: the shared JSON string escaper (lunnel/json.h): short escapes, \u00XX
 * for other control bytes, UTF-8 kept, invalid UTF-8 as \ufffd, and the snprintf-style
 * cap/truncation contract of lunnel_json_escape. */
#include <string.h>

#include "lunnel/json.h"
#include "testutil.h"

/* Escapes s[0..n) into a large buffer; returns it (static storage). */
static const char *esc(const char *s, size_t n)
{
    static char buf[256];
    size_t need = lunnel_json_escape(buf, sizeof buf, s, n);
    CHECK(need == strlen(buf));
    return buf;
}
#define ESC(lit) esc(lit, sizeof(lit) - 1)

typedef struct {
    char buf[128];
    size_t len;
    int calls;
} sink;

static void sink_write(void *ctx, const char *p, size_t n)
{
    sink *k = ctx;
    if (k->len + n < sizeof k->buf) memcpy(k->buf + k->len, p, n);
    k->len += n;
    k->calls++;
}

int main(void)
{
    /* plain, quotes, backslash, slash (not escaped) */
    CHECK_STR(ESC(""), "\"\"");
    CHECK_STR(ESC("abc"), "\"abc\"");
    CHECK_STR(ESC("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");

    /* control bytes: short forms for \n \r \t, lower-case \u00XX for the rest; DEL passes */
    CHECK_STR(ESC("\n\r\t"), "\"\\n\\r\\t\"");
    CHECK_STR(ESC("\x01\x08\x0c\x1f"), "\"\\u0001\\u0008\\u000c\\u001f\"");
    CHECK_STR(ESC("a\0b"), "\"a\\u0000b\"");
    CHECK_STR(ESC("\x7f"), "\"\x7f\"");

    /* valid UTF-8 of 2, 3 and 4 bytes passes through untouched */
    CHECK_STR(ESC("\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"),
              "\"\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"");
    CHECK_STR(ESC("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */

    /* invalid UTF-8: each offending byte becomes \ufffd, the rest resynchronizes */
    CHECK_STR(ESC("\xff"), "\"\\ufffd\"");
    CHECK_STR(ESC("\x80x"), "\"\\ufffdx\"");                                /* lone continuation */
    CHECK_STR(ESC("\xc0\xaf"), "\"\\ufffd\\ufffd\"");                       /* overlong '/' */
    CHECK_STR(ESC("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"");            /* overlong 3-byte */
    CHECK_STR(ESC("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate U+D800 */
    CHECK_STR(ESC("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    CHECK_STR(ESC("a\xe4\xb8"), "\"a\\ufffd\\ufffd\""); /* truncated at the end */
    CHECK_STR(ESC("\xc3("), "\"\\ufffd(\"");            /* bad continuation */

    /* length-bounded: bytes after n are not read */
    CHECK_STR(esc("abcdef", 3), "\"abc\"");
    CHECK_STR(esc(NULL, 0), "\"\"");

    /* cap contract: returns the full length, NUL-terminates, never writes past cap */
    {
        char b[8];
        memset(b, 'X', sizeof b);
        CHECK_INT(lunnel_json_escape(b, 5, "a\nbc", 4), 7); /* quoted: 7 bytes */
        CHECK_STR(b, "\"a\\n");
        CHECK_INT(b[5], 'X');
        CHECK_INT(lunnel_json_escape(b, 1, "abc", 3), 5);
        CHECK_STR(b, "");
        CHECK_INT(lunnel_json_escape(NULL, 0, "\x01", 1), 8);
        memset(b, 'X', sizeof b);
        CHECK_INT(lunnel_json_escape(b, 8, "abcdef", 6), 8); /* exactly one byte short */
        CHECK_STR(b, "\"abcdef");
        char c[9];
        CHECK_INT(lunnel_json_escape(c, 9, "abcdef", 6), 8);
        CHECK_STR(c, "\"abcdef\"");
    }

    /* streaming: same bytes, verbatim runs written in one piece */
    {
        sink k = {{0}, 0, 0};
        lunnel_json_write_string("hello world", 11, sink_write, &k);
        CHECK_INT(k.calls, 3); /* quote, run, quote */
        CHECK_INT(k.len, 13);
        CHECK(memcmp(k.buf, "\"hello world\"", 13) == 0);
        sink m = {{0}, 0, 0};
        lunnel_json_write_string("x\ty\xff", 4, sink_write, &m);
        const char *want = "\"x\\ty\\ufffd\"";
        CHECK_INT(m.len, strlen(want));
        CHECK(memcmp(m.buf, want, strlen(want)) == 0);
    }
    TEST_DONE();
}
